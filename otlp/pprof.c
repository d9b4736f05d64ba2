/*
 * pprof.c - see pprof.h: profiles events in, one gzipped profile.proto per sample type out.
 *
 * profile.proto field numbers used (perftools.profiles):
 *   Profile   sample_type 1, sample 2, mapping 3, location 4, function 5, string_table 6,
 *             time_nanos 9, duration_nanos 10, period_type 11, period 12
 *   ValueType type 1, unit 2 (string indices)
 *   Sample    location_id 1 (packed, leaf first), value 2 (packed), label 3
 *   Label     key 1, str 2, num 3, num_unit 4
 *   Mapping   id 1, memory_start 2, memory_limit 3, file_offset 4, filename 5, build_id 6,
 *             has_functions 7, has_filenames 8, has_line_numbers 9, has_inline_frames 10
 *   Location  id 1, mapping_id 2, address 3, line 4
 *   Line      function_id 1, line 2, column 3
 *   Function  id 1, name 2, system_name 3, filename 4, start_line 5
 * Ids are 1-based; string index 0 is "". Functions, locations and mappings are interned by
 * their encoding without the id (itab.h), so the id is their index in the table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gzip.h"
#include "otlp/itab.h"
#include "otlp/pbwrite.h"
#include "otlp/pprof.h"

#define PPROF_MAX_BYTES ((size_t)1 << 30)

/* What one mapping's locations showed: pprof's has_* flags. */
enum { M_FUNCTIONS = 1, M_FILENAMES = 2, M_LINES = 4, M_INLINE = 8 };

struct pprof_prof {
    char *type, *unit;
    size_t type_n, unit_n;
    struct itab strs, funcs, locs, maps;
    VEC(uint8_t) mflags;
    struct buf samples;
    bool have_period, have_time;
    int64_t period_type, period_unit, period;
    uint64_t t_min, t_end;
};

struct pprof_writer {
    VEC(struct pprof_prof *) profs;
    struct pprof_prof *cur;
    struct buf ent, line, packed, sample, label;
    bool failed;
};

static void prof_free(struct pprof_prof *p)
{
    if (!p)
        return;
    free(p->type);
    free(p->unit);
    itab_free(&p->strs);
    itab_free(&p->funcs);
    itab_free(&p->locs);
    itab_free(&p->maps);
    VEC_FREE(p->mflags);
    buf_free(&p->samples);
    free(p);
}

struct pprof_writer *pprof_writer_new(void)
{
    struct pprof_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    struct buf *bufs[] = { &w->ent, &w->line, &w->packed, &w->sample, &w->label };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_init(bufs[i], PPROF_MAX_BYTES);
    return w;
}

void pprof_writer_free(struct pprof_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->profs.n; i++)
        prof_free(w->profs.v[i]);
    VEC_FREE(w->profs);
    struct buf *bufs[] = { &w->ent, &w->line, &w->packed, &w->sample, &w->label };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_free(bufs[i]);
    free(w);
}

/* ---------- tables ---------- */

static int64_t str_ix(struct pprof_writer *w, struct pprof_prof *p, const void *s, size_t n)
{
    if (n == 0)
        return 0;
    int64_t i = itab_intern(&p->strs, s, n);
    if (i < 0)
        w->failed = true;
    return i < 0 ? 0 : i;
}

static int64_t str_lb(struct pprof_writer *w, struct pprof_prof *p, lb_str s)
{
    return str_ix(w, p, s.p, s.n);
}

static char *dup_str(lb_str s)
{
    char *c = malloc(s.n + 1);
    if (c) {
        if (s.n)
            memcpy(c, s.p, s.n);
        c[s.n] = 0;
    }
    return c;
}

static struct pprof_prof *prof_for(struct pprof_writer *w, const struct lb_profile *lp)
{
    for (size_t i = 0; i < w->profs.n; i++) {
        struct pprof_prof *p = w->profs.v[i];
        if (lb_str_eq(lp->sample_type, p->type, p->type_n) && lb_str_eq(lp->sample_unit, p->unit, p->unit_n))
            return p;
    }
    struct pprof_prof *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->type = dup_str(lp->sample_type);
    p->unit = dup_str(lp->sample_unit);
    p->type_n = lp->sample_type.n;
    p->unit_n = lp->sample_unit.n;
    itab_init(&p->strs, PPROF_MAX_BYTES);
    itab_init(&p->funcs, PPROF_MAX_BYTES);
    itab_init(&p->locs, PPROF_MAX_BYTES);
    itab_init(&p->maps, PPROF_MAX_BYTES);
    buf_init(&p->samples, PPROF_MAX_BYTES);
    if (!p->type || !p->unit || !itab_reset(&p->strs) || !itab_reset(&p->funcs) || !itab_reset(&p->locs) ||
        !itab_reset(&p->maps) || !VEC_PUSH(p->mflags, 0) || !VEC_PUSH(w->profs, p)) {
        prof_free(p);
        return NULL;
    }
    return p;
}

static int64_t mapping_id(struct pprof_writer *w, struct pprof_prof *p, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    struct buf *b = &w->ent;
    buf_reset(b);
    int64_t file = str_lb(w, p, map->file), build = str_lb(w, p, map->build_id);
    int64_t id = -1;
    if (pbw_uint(b, 2, map->start) && pbw_uint(b, 3, map->limit) &&
        pbw_uint(b, 4, map->offset) && pbw_int(b, 5, file) && pbw_int(b, 6, build))
        id = itab_intern(&p->maps, b->data, b->len);
    if (id > 0 && (size_t)id >= p->mflags.n && !VEC_PUSH(p->mflags, 0))
        id = -1;
    if (id < 0)
        w->failed = true;
    return id < 0 ? 0 : id;
}

static int64_t function_id(struct pprof_writer *w, struct pprof_prof *p, const struct lb_frame *f)
{
    struct buf *b = &w->ent;
    int64_t name = str_lb(w, p, f->function), sys = str_lb(w, p, f->system_name), file = str_lb(w, p, f->file);
    buf_reset(b);
    int64_t id = -1;
    if (pbw_int(b, 2, name) && pbw_int(b, 3, sys) && pbw_int(b, 4, file) && pbw_int(b, 5, f->start_line))
        id = itab_intern(&p->funcs, b->data, b->len);
    if (id < 0)
        w->failed = true;
    return id < 0 ? 0 : id;
}

/* The location of frames f[0..n) (one location's lines, innermost first). */
static int64_t location_id(struct pprof_writer *w, struct pprof_prof *p, const struct lb_frame *f, size_t n)
{
    struct buf *lines = &w->line;
    buf_reset(lines);
    bool ok = true;
    for (size_t i = 0; f->symbolized && ok && i < n; i++) {
        int64_t fn = function_id(w, p, &f[i]);
        struct buf *l = &w->ent;
        buf_reset(l);
        ok = pbw_uint(l, 1, (uint64_t)fn) && pbw_int(l, 2, f[i].line) && pbw_int(l, 3, f[i].column) &&
             pbw_msg(lines, 4, l);
    }
    int64_t map = f->has_mapping ? mapping_id(w, p, f) : 0;
    if (map > 0 && f->symbolized) {
        uint8_t fl = M_FUNCTIONS | (f->file.n ? M_FILENAMES : 0) | (f->line ? M_LINES : 0) | (n > 1 ? M_INLINE : 0);
        p->mflags.v[map] |= fl;
    }
    struct buf *b = &w->ent;
    buf_reset(b);
    ok = ok && pbw_uint(b, 2, (uint64_t)map) && pbw_uint(b, 3, f->address) &&
         (lines->len == 0 || buf_append(b, lines->data, lines->len));
    int64_t id = ok ? itab_intern(&p->locs, b->data, b->len) : -1;
    if (id < 0)
        w->failed = true;
    return id < 0 ? 0 : id;
}

/* ---------- labels ---------- */

static bool put_label(struct pprof_writer *w, struct pprof_prof *p, struct buf *out, const struct lb_attr *a)
{
    const struct lb_value *v = &a->value;
    struct buf *b = &w->label;
    char tmp[64];
    buf_reset(b);
    bool ok = pbw_int(b, 1, str_lb(w, p, a->key));
    switch (v->kind) {
    case LB_VALUE_INT:
        ok = ok && pbw_tag(b, 3, PBW_VARINT) && pbw_varint(b, (uint64_t)v->u.integer) &&
             pbw_int(b, 4, str_lb(w, p, a->unit));
        break;
    case LB_VALUE_STRING:
        ok = ok && pbw_int(b, 2, str_lb(w, p, v->u.str));
        break;
    case LB_VALUE_BOOL:
        ok = ok && pbw_int(b, 2, v->u.boolean ? str_ix(w, p, "true", 4) : str_ix(w, p, "false", 5));
        break;
    case LB_VALUE_DOUBLE: {
        int n = snprintf(tmp, sizeof tmp, "%.17g", v->u.dbl);
        ok = ok && pbw_int(b, 2, str_ix(w, p, tmp, (size_t)n));
        break;
    }
    case LB_VALUE_BYTES: {
        struct buf hex;
        buf_init(&hex, PPROF_MAX_BYTES);
        for (size_t i = 0; ok && i < v->u.str.n; i++)
            ok = buf_printf(&hex, "%02x", (unsigned char)v->u.str.p[i]);
        ok = ok && pbw_int(b, 2, str_ix(w, p, hex.data, hex.len));
        buf_free(&hex);
        break;
    }
    default:   /* empty, arrays and kvlists: no label */
        return true;
    }
    return ok && pbw_msg(out, 3, b);
}

/* ---------- events ---------- */

static void ev_profile_begin(void *ctx, const struct lb_profile *lp)
{
    struct pprof_writer *w = ctx;
    struct pprof_prof *p = w->cur = prof_for(w, lp);
    if (!p) {
        w->failed = true;
        return;
    }
    if (!p->have_period) {
        p->have_period = true;
        p->period_type = str_lb(w, p, lp->period_type);
        p->period_unit = str_lb(w, p, lp->period_unit);
        p->period = lp->period;
    }
    if (lp->time_unix_nano) {
        uint64_t end = lp->time_unix_nano + lp->duration_nano;
        if (!p->have_time || lp->time_unix_nano < p->t_min)
            p->t_min = lp->time_unix_nano;
        if (!p->have_time || end > p->t_end)
            p->t_end = end;
        p->have_time = true;
    }
}

static void ev_sample(void *ctx, const struct lb_sample *s)
{
    struct pprof_writer *w = ctx;
    struct pprof_prof *p = w->cur;
    if (!p)
        return;
    struct buf *ids = &w->packed, *b = &w->sample;
    buf_reset(ids);
    buf_reset(b);
    bool ok = true;
    for (size_t i = 0; ok && i < s->n_frames;) {
        size_t n = lb_location_span(&s->frames[i], s->n_frames - i);
        ok = pbw_varint(ids, (uint64_t)location_id(w, p, &s->frames[i], n));
        i += n;
    }
    ok = ok && (ids->len == 0 || pbw_msg(b, 1, ids));
    buf_reset(ids);
    ok = ok && pbw_varint(ids, (uint64_t)lb_sample_weight(s)) && pbw_msg(b, 2, ids);
    for (size_t i = 0; ok && i < s->attrs.n; i++)
        ok = put_label(w, p, b, &s->attrs.v[i]);
    if (!ok || !pbw_msg(&p->samples, 2, b))
        w->failed = true;
}

static int ev_admit(void *ctx, enum otlp_signal sig, char *why, size_t whylen)
{
    (void)ctx, (void)why, (void)whylen;
    return sig == OTLP_SIGNAL_PROFILES ? 0 : -1;
}
static void ev_request_begin(void *ctx, enum otlp_signal sig, const struct lb_request *r) { (void)ctx, (void)sig, (void)r; }
static void ev_resource(void *ctx, const struct lb_resource *r) { (void)ctx, (void)r; }
static void ev_profile_end(void *ctx, const struct lb_profile *p)
{
    struct pprof_writer *w = ctx;
    (void)p;
    w->cur = NULL;
}
static void ev_span(void *ctx, const struct lb_span *sp) { (void)ctx, (void)sp; }
static int ev_request_end(void *ctx, enum otlp_signal sig, const struct lb_request *r, char *why, size_t whylen)
{
    (void)ctx, (void)sig, (void)r, (void)why, (void)whylen;
    return 0;
}
/* Its input is a store played back (export), whole requests that are never aborted or
 * retracted (events.h): nothing to roll back. */
static void ev_request_abort(void *ctx, enum otlp_signal sig, const struct lb_request *r, const char *reason)
{
    (void)ctx, (void)sig, (void)r, (void)reason;
}

static const struct otlp_events PPROF_EVENTS = {
    .admit = ev_admit, .request_begin = ev_request_begin, .resource_begin = ev_resource,
    .profile_begin = ev_profile_begin, .sample = ev_sample, .profile_end = ev_profile_end,
    .resource_end = ev_resource, .span_resource_begin = ev_resource, .span = ev_span,
    .span_resource_end = ev_resource, .request_end = ev_request_end, .request_abort = ev_request_abort,
};

struct otlp_consumer pprof_writer_consumer(struct pprof_writer *w)
{
    return (struct otlp_consumer){ &PPROF_EVENTS, w };
}

/* ---------- the files ---------- */

/* Table entries, each with its id (its index) first, as repeated field `field`. */
static bool put_table(struct buf *out, uint32_t field, const struct itab *t, const uint8_t *flags)
{
    struct buf m;
    buf_init(&m, PPROF_MAX_BYTES);
    bool ok = true;
    for (size_t i = 1; ok && i < t->e.n; i++) {
        buf_reset(&m);
        ok = pbw_uint(&m, 1, i) &&
             (t->e.v[i].len == 0 || buf_append(&m, t->data.data + t->e.v[i].off, t->e.v[i].len));
        for (unsigned f = 0; ok && flags && f < 4; f++)
            ok = pbw_uint(&m, 7 + f, (flags[i] >> f) & 1);
        ok = ok && pbw_msg(out, field, &m);
    }
    buf_free(&m);
    return ok;
}

static bool encode_profile(struct pprof_writer *w, struct pprof_prof *p, struct buf *out)
{
    struct buf *vt = &w->ent;
    int64_t type = str_ix(w, p, p->type, p->type_n), unit = str_ix(w, p, p->unit, p->unit_n);
    buf_reset(vt);
    bool ok = !w->failed && pbw_int(vt, 1, type) && pbw_int(vt, 2, unit) && pbw_msg(out, 1, vt) &&
              (p->samples.len == 0 || buf_append(out, p->samples.data, p->samples.len)) &&
              put_table(out, 3, &p->maps, p->mflags.v) && put_table(out, 4, &p->locs, NULL) &&
              put_table(out, 5, &p->funcs, NULL);
    for (size_t i = 0; ok && i < p->strs.e.n; i++)
        ok = pbw_bytes_always(out, 6, p->strs.data.data + p->strs.e.v[i].off, p->strs.e.v[i].len);
    buf_reset(vt);
    ok = ok && pbw_int(out, 9, (int64_t)p->t_min) && pbw_int(out, 10, (int64_t)(p->t_end - p->t_min)) &&
         pbw_int(vt, 1, p->period_type) && pbw_int(vt, 2, p->period_unit) && pbw_msg(out, 11, vt) &&
         pbw_int(out, 12, p->period);
    return ok;
}

static void safe_name(char *out, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || c == '_';
        out[i] = ok ? c : '_';
    }
    out[i] = 0;
}

static int write_file(const char *path, const struct buf *raw, char *err, size_t errlen)
{
    struct buf gz;
    buf_init(&gz, raw->len + (raw->len >> 1) + (1u << 20));
    int rc = -1;
    FILE *f = NULL;
    if (gzip_deflate(raw->data ? raw->data : (const uint8_t *)"", raw->len, &gz, 6) != 0)
        snprintf(err, errlen, "%s: gzip failed", path);
    else if (!(f = fopen(path, "wb")))
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (fwrite(gz.data, 1, gz.len, f) != gz.len || fflush(f) != 0)
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
    else
        rc = 0;
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "closing %s: %s", path, strerror(errno));
        rc = -1;
    }
    buf_free(&gz);
    return rc;
}

int pprof_writer_write_files(struct pprof_writer *w, const char *prefix, bool exact, unsigned *written,
                             pprof_file_fn on_file, void *ud, char *err, size_t errlen)
{
    *written = 0;
    if (w->failed) {
        snprintf(err, errlen, "a profile grew past %zu bytes, or out of memory", PPROF_MAX_BYTES);
        return -1;
    }
    if (w->profs.n == 0) {
        snprintf(err, errlen, "no samples matched: no pprof file written");
        return -1;
    }
    for (size_t i = 0; i < w->profs.n; i++) {
        struct pprof_prof *p = w->profs.v[i];
        char type[128], unit[64], path[4096];
        safe_name(type, sizeof type, p->type[0] ? p->type : "unknown");
        safe_name(unit, sizeof unit, p->unit);
        bool shared = false;   /* another profile of this type name, with another unit */
        for (size_t j = 0; j < w->profs.n; j++)
            shared = shared || (j != i && strcmp(w->profs.v[j]->type, p->type) == 0);
        int n = exact && w->profs.n == 1 ? snprintf(path, sizeof path, "%s", prefix)
              : shared ? snprintf(path, sizeof path, "%s.%s.%s.pb.gz", prefix, type, unit[0] ? unit : "none")
                       : snprintf(path, sizeof path, "%s.%s.pb.gz", prefix, type);
        if (n < 0 || (size_t)n >= sizeof path) {
            snprintf(err, errlen, "the output name is too long");
            return -1;
        }
        struct buf raw;
        buf_init(&raw, PPROF_MAX_BYTES);
        bool ok = encode_profile(w, p, &raw);
        int rc = ok ? write_file(path, &raw, err, errlen) : -1;
        if (!ok)
            snprintf(err, errlen, "%s: the profile grew past %zu bytes, or out of memory", path, PPROF_MAX_BYTES);
        buf_free(&raw);
        if (rc != 0)
            return -1;
        if (on_file)
            on_file(ud, path, p->type, p->unit);
        (*written)++;
    }
    return 0;
}
