/*
 * writer_rollup.c - the writer's side of the rollup tables (schema step 3): each request's
 * weights summed per (minute, sample type, unit, stack, resource/profile/sample attribute
 * sets), then added to rollup_minute and rollup_hour in the request's transaction.
 *
 * Why in memory first: the samples of one request repeat few keys (one export covers a few
 * seconds, its stacks and threads repeat), so summing here turns thousands of samples into a
 * few hundred upserts. The table is bounded (ROLLUP_MAX entries): past it the sums are
 * flushed early, still inside the transaction, so a hostile request costs upserts, not memory.
 * The weight rule is the one schema.c's step 3 describes and query.c applies. Each flush also
 * adds the weight per minute and sample type to rollup_minute_totals (step 7).
 */
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/internal.h"

enum { KEYS = 7, ROLLUP_MAX = 1 << 16 };

#define NS_PER_MINUTE 60000000000ull

struct rollup_entry {
    int64_t k[KEYS];   /* minute, sample type, unit, stack, resource set, profile set, sample set */
    int64_t w;
};

struct rollup {
    struct rollup_entry *v;
    size_t n, cap;        /* entries used, and allocated */
    uint32_t *slots;      /* index + 1; 0 = empty */
    size_t nslots;        /* a power of two, at least twice cap */
};

struct rollup *sq_rollup_new(void)
{
    return calloc(1, sizeof(struct rollup));
}

void sq_rollup_free(struct rollup *r)
{
    if (!r)
        return;
    free(r->v);
    free(r->slots);
    free(r);
}

void sq_rollup_reset(struct rollup *r)
{
    if (!r || r->n == 0)
        return;
    r->n = 0;
    memset(r->slots, 0, r->nslots * sizeof *r->slots);
}

static uint64_t key_hash(const int64_t k[KEYS])
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < KEYS; i++) {
        h ^= (uint64_t)k[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static bool grow(struct rollup *r)
{
    size_t cap = r->cap ? r->cap * 2 : 256;
    struct rollup_entry *v = realloc(r->v, cap * sizeof *v);
    if (!v)
        return false;
    r->v = v;
    uint32_t *slots = calloc(cap * 2, sizeof *slots);
    if (!slots)
        return false;
    free(r->slots);
    r->slots = slots;
    r->nslots = cap * 2;
    r->cap = cap;
    for (size_t i = 0; i < r->n; i++) {
        size_t s = key_hash(r->v[i].k) & (r->nslots - 1);
        while (r->slots[s])
            s = (s + 1) & (r->nslots - 1);
        r->slots[s] = (uint32_t)i + 1;
    }
    return true;
}

/* Adds w to the key's sum; false when out of memory. */
static bool add(struct rollup *r, const int64_t k[KEYS], int64_t w)
{
    if (r->n == r->cap && !grow(r))
        return false;
    size_t s = key_hash(k) & (r->nslots - 1);
    for (; r->slots[s]; s = (s + 1) & (r->nslots - 1)) {
        struct rollup_entry *e = &r->v[r->slots[s] - 1];
        if (memcmp(e->k, k, sizeof e->k) == 0) {
            e->w = sat_add(e->w, w);
            return true;
        }
    }
    struct rollup_entry *e = &r->v[r->n];
    memcpy(e->k, k, sizeof e->k);
    e->w = w;
    r->slots[s] = (uint32_t)++r->n;
    return true;
}

static int put(struct sq *q, int64_t k[KEYS], uint64_t t, int64_t w)
{
    k[0] = (int64_t)(t / NS_PER_MINUTE);
    if (q->rollup->n >= ROLLUP_MAX && sq_rollup_flush(q) != 0)
        return -1;
    if (!add(q->rollup, k, w))
        return (int)sq_fail(q, "summing rollups", "out of memory");
    return 0;
}

int sq_rollup_sample(struct sq *q, const struct lb_sample *smp, int64_t stack_id, int64_t attrs_id)
{
    int64_t k[KEYS] = { 0, q->prof.type_id, q->prof.unit_id, stack_id, q->resource_attrs_id,
                        q->prof.attrs_id, attrs_id };
    for (int i = 1; i < KEYS; i++)
        if (k[i] < 0)
            k[i] = 0;
    size_t nts = smp->n_timestamps, nv = smp->n_values;
    if (nts == 0)
        return put(q, k, smp->profile->time_unix_nano, lb_sample_weight(smp));
    if (nv != 0 && nv != nts)   /* values that do not pair: all of it at the first timestamp */
        return put(q, k, smp->timestamps[0], lb_sample_weight(smp));
    for (size_t i = 0; i < nts; i++)
        if (put(q, k, smp->timestamps[i], nv ? smp->values[i] : 1) != 0)
            return -1;
    return 0;
}

static int upsert(struct sq *q, int s, const struct rollup_entry *e, int64_t bucket)
{
    sqlite3_stmt *st = q->st[s];
    sqlite3_bind_int64(st, 1, bucket);
    for (int i = 1; i < KEYS; i++)
        sqlite3_bind_int64(st, i + 1, e->k[i]);
    sqlite3_bind_int64(st, KEYS + 1, e->w);
    return sq_step_write(q, s, "storing rollups") < 0 ? -1 : 0;
}

int sq_rollup_flush(struct sq *q)
{
    struct rollup *r = q->rollup, *t = q->totals;
    sq_rollup_reset(t);
    for (size_t i = 0; i < r->n && !q->failed; i++) {
        const struct rollup_entry *e = &r->v[i];
        int64_t k[KEYS] = { e->k[0], e->k[1] };   /* minute and sample type only */
        if (!add(t, k, e->w)) {
            sq_fail(q, "summing rollups", "out of memory");
            break;
        }
        if (upsert(q, S_ROLL_MINUTE, e, e->k[0]) != 0 || upsert(q, S_ROLL_HOUR, e, e->k[0] / 60) != 0)
            break;
    }
    sqlite3_stmt *st = q->st[S_ROLL_TOTAL];
    for (size_t i = 0; i < t->n && !q->failed; i++) {
        sqlite3_bind_int64(st, 1, t->v[i].k[0]);
        sqlite3_bind_int64(st, 2, t->v[i].k[1]);
        sqlite3_bind_int64(st, 3, t->v[i].w);
        if (sq_step_write(q, S_ROLL_TOTAL, "storing rollups") < 0)
            break;
    }
    sq_rollup_reset(r);
    sq_rollup_reset(t);
    return q->failed ? -1 : 0;
}
