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
 * adds the weight per minute and sample type to rollup_minute_totals (step 7), and per
 * minute, sample type and attribute sets to rollup_minute_sets (step 9), and per minute,
 * sample type and the frame types its stacks hold to rollup_minute_frame_types (step 10).
 *
 * Requests come in batches (writer_batch.c): a request's sums join the batch's when its
 * savepoint is released (sq_rollup_keep), and the batch's are written just before its COMMIT
 * (sq_rollup_flush_batch), so requests repeating the same minutes and stacks cost one upsert
 * per key and batch. A request rolled back takes only its own sums with it. The frame-type
 * key (an offset in q->type_sigs) stays valid for the whole batch: the texts are kept until
 * the next batch begins.
 *
 * A flush sums the hours and the totals in memory too (minutes of one hour become one
 * rollup_hour row), then writes each table with multi-row upserts: a request of a few hundred
 * sums costs a few statements per table instead of one per row.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/internal.h"

/* ROLLUP_BATCH: rows of the largest multi-row upsert (8 x 32 = 256 parameters, far below
 * SQLite's limit). KEYS: the STORED_KEYS columns of rollup_minute, then the stack's frame types (an offset in
 * q->type_sigs: a function of the stack, so it never splits an entry). */
enum { KEYS = 8, STORED_KEYS = 7, ROLLUP_MAX = 1 << 16, ROLLUP_BATCH = 1 << SQ_ROLL_BATCH_SIZES };

/* The tables with multi-row upserts, in the order of their statements from S_ROLL_BATCH on. */
enum { T_MINUTE, T_HOUR, T_TOTALS, T_SETS, T_COUNT };
_Static_assert(S_ROLL_BATCH_END - S_ROLL_BATCH + 1 == T_COUNT * SQ_ROLL_BATCH_SIZES,
               "one upsert per table and power-of-two row count");

#define NS_PER_MINUTE 60000000000ull

struct rollup_entry {
    int64_t k[KEYS];   /* minute, sample type, unit, stack, resource/profile/sample set, frame types */
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

/* A frame type's strings id, from the request's last few types when its bytes are one of them. */
static int64_t type_id(struct sq *q, lb_str t)
{
    for (size_t i = 0; i < q->n_type_seen; i++)
        if (q->type_seen[i].p == t.p && q->type_seen[i].n == t.n)
            return q->type_seen[i].id;
    int64_t id = sq_intern_str(q, t);
    if (id >= 0) {
        size_t slot = q->n_type_seen < 8 ? q->n_type_seen++ : (size_t)id % 8;
        q->type_seen[slot].p = t.p;
        q->type_seen[slot].n = t.n;
        q->type_seen[slot].id = id;
    }
    return id;
}

/* The frame types a stack holds as ",id,id," (their strings ids, ascending, once each; 0 for a
 * frame without a type), kept once per request in q->type_sigs: its offset there, or -1. */
static int64_t stack_types(struct sq *q, const struct lb_sample *smp, int64_t stack_id)
{
    int64_t off;
    if (memo_get(&q->types_memo, (uint64_t)stack_id, &off))
        return off;
    if (smp->n_frames > q->type_ids_cap) {
        int64_t *v = realloc(q->type_ids, smp->n_frames * sizeof *v);
        if (!v)
            return sq_fail(q, "summing rollups", "out of memory");
        q->type_ids = v;
        q->type_ids_cap = smp->n_frames;
    }
    size_t n = 0;   /* distinct ids, ascending: insertion (a stack has a few types) */
    for (size_t i = 0; i < smp->n_frames; i++) {
        int64_t id = type_id(q, smp->frames[i].type);
        if (id < 0)
            return -1;
        size_t j = n;
        while (j > 0 && q->type_ids[j - 1] > id)
            j--;
        if (j > 0 && q->type_ids[j - 1] == id)
            continue;
        memmove(q->type_ids + j + 1, q->type_ids + j, (n - j) * sizeof *q->type_ids);
        q->type_ids[j] = id;
        n++;
    }
    buf_reset(&q->sig);
    bool ok = buf_putc(&q->sig, ',');
    for (size_t i = 0; i < n && ok; i++) {   /* "%lld," without printf: once per stack and request */
        char d[21];
        size_t k = sizeof d;
        uint64_t v = (uint64_t)q->type_ids[i];   /* a strings id or 0: never negative */
        d[--k] = ',';
        do {
            d[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        ok = buf_append(&q->sig, d + k, sizeof d - k);
    }
    if (!ok)
        return sq_fail(q, "summing rollups", "out of memory");
    uint64_t h = sqlstore_hash(q->sig.data, q->sig.len);
    if (!memo_get(&q->sig_of, h, &off) || off + q->sig.len >= q->type_sigs.len ||
        memcmp(q->type_sigs.data + off, q->sig.data, q->sig.len) != 0 || q->type_sigs.data[off + q->sig.len]) {
        off = (int64_t)q->type_sigs.len;
        if (!buf_append(&q->type_sigs, q->sig.data, q->sig.len) || !buf_putc(&q->type_sigs, '\0'))
            return sq_fail(q, "summing rollups", "out of memory");
        memo_put(&q->sig_of, h, off);   /* when full, the text is only kept twice */
    }
    memo_put(&q->types_memo, (uint64_t)stack_id, off);   /* when full, made again next time */
    return off;
}

int sq_rollup_sample(struct sq *q, const struct lb_sample *smp, int64_t stack_id, int64_t attrs_id)
{
    int64_t k[KEYS] = { 0, q->prof.type_id, q->prof.unit_id, stack_id, q->resource_attrs_id,
                        q->prof.attrs_id, attrs_id, 0 };
    for (int i = 1; i < STORED_KEYS; i++)
        if (k[i] < 0)
            k[i] = 0;
    if ((k[7] = stack_types(q, smp, stack_id)) < 0)
        return -1;
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

/* Writes a summed table's entries (their first `keys` keys, then the weight) with upserts of
 * the largest power-of-two row count left (at most ROLLUP_BATCH): one statement's overhead is
 * shared by its rows, and n rows take at most n / 32 + 5 statements (49 rows: 32 + 16 + 1)
 * where single-row upserts for the remainder took up to 31 more. */
static int write_sums(struct sq *q, const struct rollup *r, int keys, int s_one, int table)
{
    size_t i = 0;
    while (i < r->n && !q->failed) {
        size_t left = r->n - i, rows = ROLLUP_BATCH;
        int log2 = SQ_ROLL_BATCH_SIZES;
        while (rows > left) {
            rows >>= 1;
            log2--;
        }
        int s = log2 == 0 ? s_one : S_ROLL_BATCH + table * SQ_ROLL_BATCH_SIZES + (log2 - 1);
        sqlite3_stmt *st = q->st[s];
        int col = 1;
        for (size_t end = i + rows; i < end; i++) {
            for (int k = 0; k < keys; k++)
                sqlite3_bind_int64(st, col++, r->v[i].k[k]);
            sqlite3_bind_int64(st, col++, r->v[i].w);
        }
        if (sq_step_write(q, s, "storing rollups") < 0)
            break;
    }
    return q->failed ? -1 : 0;
}

/* rollup_minute_frame_types, one upsert a row: a request has a few (minutes x sample types x
 * the frame type mixes of its stacks). */
static int write_types(struct sq *q, const struct rollup *f)
{
    sqlite3_stmt *st = q->st[S_ROLL_TYPES];
    for (size_t i = 0; i < f->n && !q->failed; i++) {
        const int64_t *k = f->v[i].k;
        assert(k[2] >= 0 && (size_t)k[2] < q->type_sigs.len);
        sqlite3_bind_int64(st, 1, k[0]);
        sqlite3_bind_int64(st, 2, k[1]);
        sqlite3_bind_text(st, 3, (const char *)q->type_sigs.data + k[2], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, f->v[i].w);
        if (sq_step_write(q, S_ROLL_TYPES, "storing rollups") < 0)
            break;
    }
    return q->failed ? -1 : 0;
}

static int flush_sums(struct sq *q, struct rollup *r);

int sq_rollup_flush(struct sq *q) { return flush_sums(q, q->rollup); }

int sq_rollup_keep(struct sq *q)
{
    struct rollup *r = q->rollup, *b = q->batch_sums;
    while (b->n + r->n > b->cap) {
        if (!grow(b))
            return flush_sums(q, r);   /* no room to merge: this request's sums go to SQL now */
    }
    for (size_t i = 0; i < r->n; i++)
        add(b, r->v[i].k, r->v[i].w);   /* room was made: cannot fail */
    sq_rollup_reset(r);
    return b->n >= ROLLUP_MAX ? flush_sums(q, b) : 0;
}

int sq_rollup_flush_batch(struct sq *q) { return q->batch_sums->n ? flush_sums(q, q->batch_sums) : 0; }

static int flush_sums(struct sq *q, struct rollup *r)
{
    struct rollup *h = q->hours, *t = q->totals, *a = q->sets, *f = q->kinds;
    sq_rollup_reset(h);
    sq_rollup_reset(t);
    sq_rollup_reset(a);
    sq_rollup_reset(f);
    for (size_t i = 0; i < r->n && !q->failed; i++) {
        const struct rollup_entry *e = &r->v[i];
        int64_t hk[KEYS], tk[KEYS] = { e->k[0], e->k[1] };   /* minute and sample type only */
        int64_t ak[KEYS] = { e->k[0], e->k[1], e->k[4], e->k[5], e->k[6] };   /* ... and the sets */
        int64_t fk[KEYS] = { e->k[0], e->k[1], e->k[7] };   /* ... and the frame types */
        memcpy(hk, e->k, sizeof hk);
        hk[0] = e->k[0] / 60;
        if (!add(h, hk, e->w) || !add(t, tk, e->w) || !add(a, ak, e->w) || !add(f, fk, e->w))
            sq_fail(q, "summing rollups", "out of memory");
    }
    if (!q->failed && write_sums(q, r, STORED_KEYS, S_ROLL_MINUTE, T_MINUTE) == 0 &&
        write_sums(q, h, STORED_KEYS, S_ROLL_HOUR, T_HOUR) == 0 &&
        write_sums(q, t, 2, S_ROLL_TOTAL, T_TOTALS) == 0 &&
        write_sums(q, a, 5, S_ROLL_SETS, T_SETS) == 0)
        write_types(q, f);
    sq_rollup_reset(r);
    sq_rollup_reset(h);
    sq_rollup_reset(t);
    sq_rollup_reset(a);
    sq_rollup_reset(f);
    return q->failed ? -1 : 0;
}

/* The batch upserts' SQL: `rows` rows of `cols` parameters. */
static bool batch_sql(struct buf *b, const char *table, int cols, int rows)
{
    bool ok = buf_printf(b, "INSERT INTO %s VALUES ", table);
    for (int r = 0; ok && r < rows; r++) {
        ok = buf_printf(b, "%s(", r ? "," : "");
        for (int c = 0; ok && c < cols; c++)
            ok = buf_printf(b, "%s?", c ? "," : "");
        ok = ok && buf_putc(b, ')');
    }
    return ok && buf_printf(b, " ON CONFLICT DO UPDATE SET weight = weight + excluded.weight") &&
           buf_putc(b, '\0');
}

int sq_rollup_prepare(struct sq *q, char *err, size_t errlen)
{
    static const struct { const char *table; int cols; } B[T_COUNT] = {
        [T_MINUTE] = { "rollup_minute", STORED_KEYS + 1 },
        [T_HOUR] = { "rollup_hour", STORED_KEYS + 1 },
        [T_TOTALS] = { "rollup_minute_totals", 3 },
        [T_SETS] = { "rollup_minute_sets", 6 },
    };
    struct buf sql;
    buf_init(&sql, SIZE_MAX);
    int rc = 0;
    for (int t = 0; t < T_COUNT && rc == 0; t++) {
        for (int log2 = 1; log2 <= SQ_ROLL_BATCH_SIZES && rc == 0; log2++) {
            sqlite3_stmt **st = &q->st[S_ROLL_BATCH + t * SQ_ROLL_BATCH_SIZES + (log2 - 1)];
            buf_reset(&sql);
            if (!batch_sql(&sql, B[t].table, B[t].cols, 1 << log2)) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            } else if (sqlite3_prepare_v3(q->db, (const char *)sql.data, -1, SQLITE_PREPARE_PERSISTENT, st,
                                          NULL) != SQLITE_OK) {
                snprintf(err, errlen, "preparing the %s upsert: %s", B[t].table, sqlite3_errmsg(q->db));
                rc = -1;
            }
        }
    }
    buf_free(&sql);
    return rc;
}
