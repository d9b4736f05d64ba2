/*
 * tables.c - the tables a query fills, in memory: interned strings (every name the answer
 * shows, once), sums keyed by four integers (weights per stack and attribute sets, then per
 * stack and group), and the result every store's reader fills with them (query.h).
 *
 * Both are open-addressing hash tables probed about once per scanned row, so a query costs
 * a hash probe per sample, and memory that grows with distinct stacks and names, never with
 * samples.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "sinks/query/query.h"

/* What the whole answer may hold in names and frames; far above any real profile. */
#define MAX_NAMES ((size_t)1 << 30)

void *q_grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(v, c * size);
    if (p)
        *cap = c;
    return p;
}

/* ---------- interned strings ---------- */

static bool strtab_grow(struct strtab *t)
{
    size_t scap = t->scap ? t->scap * 2 : 1024;
    uint32_t *s = calloc(scap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < t->scap; i++) {
        if (!t->slots[i])
            continue;
        const char *str = t->v[t->slots[i] - 1];
        size_t j = (size_t)hash64(str, strlen(str)) & (scap - 1);
        while (s[j])
            j = (j + 1) & (scap - 1);
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->scap = scap;
    return true;
}

uint32_t strtab_intern(struct strtab *t, const char *p, size_t n)
{
    if ((t->n + 1) * 2 > t->scap && !strtab_grow(t))
        return NONE;
    size_t j = (size_t)hash64(p, n) & (t->scap - 1);
    for (; t->slots[j]; j = (j + 1) & (t->scap - 1)) {
        const char *s = t->v[t->slots[j] - 1];
        if (strncmp(s, p, n) == 0 && s[n] == '\0')
            return t->slots[j] - 1;
    }
    if (t->n == t->cap && t->cap * 2 > MAX_NAMES)
        return NONE;
    char **v = q_grow(t->v, t->n, &t->cap, sizeof *v, 1024);
    if (!v)
        return NONE;
    t->v = v;
    char *copy = malloc(n + 1);
    if (!copy)
        return NONE;
    memcpy(copy, p, n);
    copy[n] = '\0';
    t->v[t->n] = copy;
    t->slots[j] = (uint32_t)++t->n;
    return (uint32_t)(t->n - 1);
}

uint32_t strtab_cstr(struct strtab *t, const char *s)
{
    return strtab_intern(t, s, strlen(s));
}

void strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof *t);   /* empty and usable again (the UI's store drops and refills) */
}

/* ---------- sums ---------- */

static size_t agg_slot(const int64_t k[4], size_t scap)
{
    return (size_t)hash64(k, 4 * sizeof k[0]) & (scap - 1);
}

static bool agg_grow(struct aggtab *a)
{
    size_t scap = a->scap ? a->scap * 2 : 1024;
    uint32_t *s = scap <= ((size_t)1 << 31) ? calloc(scap, sizeof *s) : NULL;
    if (!s)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = agg_slot(a->v[i].k, scap);
        while (s[j])
            j = (j + 1) & (scap - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(a->slots);
    a->slots = s;
    a->scap = scap;
    return true;
}


bool agg_add(struct aggtab *a, const int64_t k[4], int64_t w)
{
    if ((a->n + 1) * 2 > a->scap && !agg_grow(a))
        return false;
    size_t j = agg_slot(k, a->scap);
    for (; a->slots[j]; j = (j + 1) & (a->scap - 1)) {
        struct agg_entry *e = &a->v[a->slots[j] - 1];
        if (memcmp(e->k, k, sizeof e->k) == 0) {
            e->w = sat_add(e->w, w);
            return true;
        }
    }
    struct agg_entry *v = q_grow(a->v, a->n, &a->cap, sizeof *v, 1024);
    if (!v)
        return false;
    a->v = v;
    memcpy(a->v[a->n].k, k, sizeof a->v[a->n].k);
    a->v[a->n].w = w;
    a->slots[j] = (uint32_t)++a->n;
    return true;
}

void agg_free(struct aggtab *a)
{
    free(a->v);
    free(a->slots);
    memset(a, 0, sizeof *a);
}

/* ---------- the result ---------- */

int qresult_fail(struct qresult *r, const char *fmt, ...)
{
    if (!r->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, sizeof r->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int qresult_oom(struct qresult *r)
{
    return qresult_fail(r, "out of memory");
}

int qresult_init(struct qresult *r, const struct qopts *o)
{
    if ((r->unknown_type = strtab_cstr(&r->names, "unknown")) == NONE ||
        (r->root_type = strtab_cstr(&r->names, "\x01root")) == NONE ||
        (r->unknown_group = strtab_cstr(&r->names, "[unknown]")) == NONE)
        return qresult_oom(r);
    for (size_t i = 0; i < o->n_frame_type; i++)
        if ((r->frame_types[i] = strtab_cstr(&r->names, o->frame_type[i])) == NONE)
            return qresult_oom(r);
    return 0;
}

void qresult_free(struct qresult *r)
{
    strtab_free(&r->names);
    free(r->frames);
    free(r->stacks);
    free(r->stack_frames);
    agg_free(&r->items);
    free(r->unit_type);
    free(r->unit_unit);
    r->frames = NULL;
    r->stacks = NULL;
    r->stack_frames = NULL;
    r->unit_type = r->unit_unit = NULL;
}

int64_t qresult_add_frame(struct qresult *r, uint32_t name, uint32_t type)
{
    struct qframe *v = q_grow(r->frames, r->n_frames, &r->cap_frames, sizeof *v, 1024);
    if (!v)
        return qresult_oom(r);
    r->frames = v;
    r->frames[r->n_frames] = (struct qframe){ name, type };
    return (int64_t)r->n_frames++;
}

int64_t qresult_begin_stack(struct qresult *r, const struct qopts *o)
{
    struct qstack *v = q_grow(r->stacks, r->n_stacks, &r->cap_stacks, sizeof *v, 1024);
    if (!v)
        return qresult_oom(r);
    r->stacks = v;
    r->stacks[r->n_stacks] = (struct qstack){ r->n_sf, 0, o->n_frame_type == 0 };
    return (int64_t)r->n_stacks++;
}

int qresult_stack_push(struct qresult *r, const struct qopts *o, int64_t stack, uint32_t frame)
{
    assert(stack >= 0 && (size_t)stack + 1 == r->n_stacks && frame < r->n_frames);
    uint32_t *v = q_grow(r->stack_frames, r->n_sf, &r->cap_sf, sizeof *v, 4096);
    if (!v)
        return qresult_oom(r);
    r->stack_frames = v;
    r->stack_frames[r->n_sf++] = frame;
    struct qstack *s = &r->stacks[stack];
    s->n++;
    for (size_t i = 0; !s->type_ok && i < o->n_frame_type; i++)
        if (r->frame_types[i] == r->frames[frame].type)
            s->type_ok = true;
    return 0;
}
