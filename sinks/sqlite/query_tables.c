/*
 * query_tables.c - the tables a query fills, in memory: interned strings (every name the
 * answer shows, once) and sums keyed by four integers (weights per stack and attribute sets,
 * then per stack and group).
 *
 * Both are open-addressing hash tables probed about once per scanned row, so a query costs
 * a hash probe per sample, and memory that grows with distinct stacks and names, never with
 * samples.
 */
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/internal.h"

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
        size_t j = (size_t)sqlstore_hash(str, strlen(str)) & (scap - 1);
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
    size_t j = (size_t)sqlstore_hash(p, n) & (t->scap - 1);
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
}

/* ---------- sums ---------- */

static size_t agg_slot(const int64_t k[4], size_t scap)
{
    return (size_t)sqlstore_hash(k, 4 * sizeof k[0]) & (scap - 1);
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
