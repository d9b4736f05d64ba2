/*
 * query_rows.c - the ClickHouse reader's answers (RowBinary) into the store-independent
 * result: sums per (stack, group, sample type), stacks as frame hashes, frames as names.
 *
 * The answers come from the network, so every length and count is checked against the bytes
 * left before anything is read or allocated; a malformed answer is an error, never a crash.
 * Stacks and frames are sorted by hash and found by binary search (a hash may be any 64-bit
 * value, so no sentinel is needed), and each is turned into the result's form once.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "otlp/view.h"
#include "sinks/clickhouse/query.h"

/* ---------- names ---------- */

/* The id of the text-escaped form of s in t (NONE when out of memory). */
static uint32_t intern_escaped(struct strtab *t, struct buf *tmp, lb_str s)
{
    buf_reset(tmp);
    return esc_text(tmp, s.p, s.n) ? strtab_intern(t, buf_text(tmp), tmp->len) : NONE;
}

/* ---------- stacks and frames, sorted by hash ---------- */

struct stack_row {
    uint64_t hash;
    size_t off;        /* into frame_hashes, leaf first */
    uint32_t n;
    int64_t ix;        /* the result's stack, -1 until made */
};

struct frame_row {
    uint64_t hash;
    uint32_t name, type;
    int64_t ix;        /* the result's frame, -1 until made */
};

struct fill {
    const struct qopts *o;
    struct qresult *r;
    struct stack_row *stacks;
    size_t n_stacks, cap_stacks;
    uint64_t *frame_hashes;
    size_t n_fh, cap_fh;
    struct frame_row *frames;
    size_t n_frames, cap_frames;
    int64_t missing_stack, missing_frame;   /* shared stand-ins for hashes no row has */
    struct strtab units;
    struct buf tmp;
};

static int cmp_hash(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;   /* hash is each row's first member */
    return (x > y) - (x < y);
}

static int read_stacks(struct fill *f, const struct buf *in)
{
    struct rd d = rd_of(in);
    while (rd_more(&d)) {
        uint64_t hash = rd_fixed(&d, 8), n = rd_varint(&d);
        if (d.bad || n > (uint64_t)(d.end - d.p) / 8 || n > UINT32_MAX)
            return qresult_fail(f->r, "ClickHouse's stacks answer is malformed");
        struct stack_row *v = q_grow(f->stacks, f->n_stacks, &f->cap_stacks, sizeof *v, 1024);
        if (!v)
            return qresult_oom(f->r);
        f->stacks = v;
        f->stacks[f->n_stacks++] = (struct stack_row){ hash, f->n_fh, (uint32_t)n, -1 };
        for (uint64_t i = 0; i < n; i++) {
            uint64_t *h = q_grow(f->frame_hashes, f->n_fh, &f->cap_fh, sizeof *h, 4096);
            if (!h)
                return qresult_oom(f->r);
            f->frame_hashes = h;
            f->frame_hashes[f->n_fh++] = rd_fixed(&d, 8);
        }
    }
    if (d.bad)
        return qresult_fail(f->r, "ClickHouse's stacks answer is malformed");
    if (f->n_stacks > 1)   /* never qsort NULL (no rows) */
        qsort(f->stacks, f->n_stacks, sizeof *f->stacks, cmp_hash);
    return 0;
}

static int read_frames(struct fill *f, const struct buf *in)
{
    struct rd d = rd_of(in);
    while (rd_more(&d)) {
        uint64_t hash = rd_fixed(&d, 8);
        lb_str name = rd_str(&d), type = rd_str(&d);
        if (d.bad)
            return qresult_fail(f->r, "ClickHouse's frames answer is malformed");
        struct frame_row fr = { hash, intern_escaped(&f->r->names, &f->tmp, name), f->r->unknown_type, -1 };
        if (type.n)   /* no profile.frame.type is stored as '' and shown as unknown, as in SQLite */
            fr.type = intern_escaped(&f->r->names, &f->tmp, type);
        struct frame_row *v = q_grow(f->frames, f->n_frames, &f->cap_frames, sizeof *v, 1024);
        if (fr.name == NONE || fr.type == NONE || !v)
            return qresult_oom(f->r);
        f->frames = v;
        f->frames[f->n_frames++] = fr;
    }
    if (f->n_frames > 1)
        qsort(f->frames, f->n_frames, sizeof *f->frames, cmp_hash);
    return 0;
}

/* The result's frame for a hash (a frame no row names is shown as [unknown], as in SQLite). */
static int64_t frame_ix(struct fill *f, uint64_t hash)
{
    struct frame_row *fr = f->n_frames ? bsearch(&hash, f->frames, f->n_frames, sizeof *f->frames, cmp_hash) : NULL;
    int64_t *ix = fr ? &fr->ix : &f->missing_frame;
    if (*ix < 0)
        *ix = fr ? qresult_add_frame(f->r, fr->name, fr->type)
                 : qresult_add_frame(f->r, f->r->unknown_group, f->r->unknown_type);
    return *ix;
}

/* The result's stack for a hash, made from its frames the first time. */
static int64_t stack_ix(struct fill *f, uint64_t hash)
{
    struct stack_row *s = f->n_stacks ? bsearch(&hash, f->stacks, f->n_stacks, sizeof *f->stacks, cmp_hash) : NULL;
    int64_t *ix = s ? &s->ix : &f->missing_stack;
    if (*ix >= 0)
        return *ix;
    int64_t made = qresult_begin_stack(f->r, f->o);
    for (uint32_t i = 0; made >= 0 && s && i < s->n; i++) {
        int64_t fx = frame_ix(f, f->frame_hashes[s->off + i]);
        if (fx < 0 || qresult_stack_push(f->r, f->o, made, (uint32_t)fx) != 0)
            made = -1;
    }
    return *ix = made;
}

/* ---------- the sums ---------- */

/* The group's name: the value (escaped; [empty] when empty), or [unknown] when no attribute
 * has the key; NONE when the command groups by nothing. */
static uint32_t group_name(struct fill *f, bool grouped, bool found, lb_str val)
{
    if (!grouped)
        return NONE;
    if (!found)
        return f->r->unknown_group;
    return intern_escaped(&f->r->names, &f->tmp, val.n ? val : (lb_str){ "[empty]", 7 });
}

static int read_sums(struct fill *f, const struct buf *in)
{
    struct qresult *r = f->r;
    bool grouped = q_group_attr(f->o) != NULL;
    uint32_t unit_t = NONE, unit_u = NONE;
    bool mixed = false;
    struct rd d = rd_of(in);
    while (rd_more(&d)) {
        uint64_t hash = rd_fixed(&d, 8);
        bool found = rd_fixed(&d, 1) != 0;
        lb_str val = rd_str(&d), type = rd_str(&d), unit = rd_str(&d);
        int64_t w = (int64_t)rd_fixed(&d, 8);
        uint64_t n = rd_fixed(&d, 8);
        if (d.bad)
            return qresult_fail(r, "ClickHouse's sums answer is malformed");
        int64_t six = stack_ix(f, hash);
        if (six < 0)
            return -1;
        if (!r->stacks[six].type_ok)
            continue;
        uint32_t g = group_name(f, grouped, found, val);
        uint32_t t = intern_escaped(&f->units, &f->tmp, type), u = intern_escaped(&f->units, &f->tmp, unit);
        int64_t k[4] = { six, g, 0, 0 };
        if ((grouped && g == NONE) || t == NONE || u == NONE || !agg_add(&r->items, k, w))
            return qresult_oom(r);
        r->total_w = sat_add(r->total_w, w);
        r->n_samples += n;
        if (!r->any_unit) {
            r->any_unit = true;
            unit_t = t;
            unit_u = u;
        } else if (unit_t != t || unit_u != u) {
            mixed = true;
        }
    }
    if (r->any_unit && !mixed &&
        (!(r->unit_type = strdup(f->units.v[unit_t])) || !(r->unit_unit = strdup(f->units.v[unit_u]))))
        return qresult_oom(r);
    return 0;
}

int ch_query_fill(const struct qopts *o, struct qresult *r, const struct buf *sums, const struct buf *stacks,
                  const struct buf *frames)
{
    struct fill f = { .o = o, .r = r, .missing_stack = -1, .missing_frame = -1 };
    buf_init(&f.tmp, SIZE_MAX);
    int rc = read_stacks(&f, stacks) == 0 && read_frames(&f, frames) == 0 && read_sums(&f, sums) == 0 ? 0 : -1;
    free(f.stacks);
    free(f.frame_hashes);
    free(f.frames);
    strtab_free(&f.units);
    buf_free(&f.tmp);
    return rc;
}
