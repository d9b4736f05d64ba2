/*
 * writer_samples.c - a profile's samples rows, written several to a statement.
 *
 * A samples row is the one row the writer adds for every sample, and one INSERT each cost
 * more around the row (the statement's start, its cursor opened and freed, its end) than the
 * row itself. So samples wait here, their values copied, and go out in multi-row INSERTs of
 * up to SQ_SAMPLE_BATCH rows (one prepared statement per power of two), at the latest when
 * their profile ends: its row needs their first and last ids. SQLite numbers the rows of one
 * INSERT one after the other, as it numbered the INSERTs before, so every id is the same.
 */
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/internal.h"

#define SAMPLE_COLS 11

/* "INSERT INTO samples(...) VALUES (?, ...), ... " with `rows` rows of parameters. */
static bool batch_sql(struct buf *b, size_t rows)
{
    static const char head[] = "INSERT INTO samples(profile_id, idx, stack_id, attributes_id, n_timestamps, "
                               "n_values, weight, trace_id, span_id, timestamps_packed, values_packed) VALUES ";
    if (!buf_append(b, head, sizeof head - 1))
        return false;
    for (size_t r = 0; r < rows; r++) {
        if (!buf_append(b, r ? ",(?" : "(?", r ? 3 : 2))
            return false;
        for (int c = 1; c < SAMPLE_COLS; c++)
            if (!buf_append(b, ",?", 2))
                return false;
        if (!buf_append(b, ")", 1))
            return false;
    }
    return buf_append(b, "", 1);
}

int sq_samples_prepare(struct sq *q, char *err, size_t errlen)
{
    struct buf sql;
    buf_init(&sql, SIZE_MAX);
    int rc = 0;
    for (int log2 = 0; (1 << log2) <= SQ_SAMPLE_BATCH && rc == 0; log2++) {
        buf_reset(&sql);
        if (!batch_sql(&sql, (size_t)1 << log2)) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (sqlite3_prepare_v3(q->db, (const char *)sql.data, -1, SQLITE_PREPARE_PERSISTENT,
                                      &q->st[S_SAMPLE_BATCH + log2], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "preparing the samples insert: %s", sqlite3_errmsg(q->db));
            rc = -1;
        }
    }
    buf_free(&sql);
    return rc;
}

/* Copies n bytes into the waiting rows' bytes: their offset, or SIZE_MAX when out of memory. */
static size_t keep_bytes(struct sq *q, const void *p, size_t n)
{
    size_t off = q->pend_bytes.len;
    if (n && !buf_append(&q->pend_bytes, p, n))
        return SIZE_MAX;
    return off;
}

/* A packed series (series.c) kept for its row; an empty one is NULL there. */
static bool keep_series(struct sq *q, struct sq_blob *out, struct buf *tmp, const void *nums, size_t n)
{
    out->present = n > 0;
    out->n = 0;
    out->off = 0;
    if (!n)
        return true;
    if (!sq_series_pack(tmp, nums, n))
        return false;
    out->n = tmp->len;
    return (out->off = keep_bytes(q, tmp->data, tmp->len)) != SIZE_MAX;
}

int sq_sample_add(struct sq *q, const struct lb_sample *smp, int64_t stack, int64_t attrs)
{
    if (q->n_pend == SQ_SAMPLE_BATCH && sq_samples_flush(q) < 0)
        return -1;
    struct sq_pending *r = &q->pend[q->n_pend];
    r->index = smp->index;
    r->stack = stack;
    r->attrs = attrs;
    r->n_timestamps = (int64_t)smp->n_timestamps;
    r->n_values = (int64_t)smp->n_values;
    r->weight = lb_sample_weight(smp);
    r->trace.present = r->span.present = smp->has_link;
    r->trace.n = r->span.n = 0;
    if (smp->has_link) {
        r->trace.n = smp->trace_id.n;
        r->span.n = smp->span_id.n;
        if ((r->trace.off = keep_bytes(q, smp->trace_id.p, smp->trace_id.n)) == SIZE_MAX ||
            (r->span.off = keep_bytes(q, smp->span_id.p, smp->span_id.n)) == SIZE_MAX)
            return (int)sq_fail(q, "storing a sample", "out of memory");
    }
    if (!keep_series(q, &r->ts, &q->ts_packed, smp->timestamps, smp->n_timestamps) ||
        !keep_series(q, &r->vals, &q->vals_packed, smp->values, smp->n_values))
        return (int)sq_fail(q, "packing a sample's series", "out of memory");
    q->n_pend++;
    return 0;
}

static void bind_kept(struct sq *q, sqlite3_stmt *st, int i, const struct sq_blob *b)
{
    if (b->present)
        sqlite3_bind_blob64(st, i, b->n ? (const char *)q->pend_bytes.data + b->off : "", b->n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Writes the rows [from, from + 2^log2) with one statement: the last one's id, or -1. */
static int64_t write_rows(struct sq *q, size_t from, int log2)
{
    int s = S_SAMPLE_BATCH + log2;
    sqlite3_stmt *st = q->st[s];
    for (size_t k = 0; k < (size_t)1 << log2; k++) {
        const struct sq_pending *r = &q->pend[from + k];
        int b = (int)k * SAMPLE_COLS;
        sqlite3_bind_int64(st, b + 1, q->profile_id);
        sqlite3_bind_int64(st, b + 2, r->index);
        sqlite3_bind_int64(st, b + 3, r->stack);
        bind_id(st, b + 4, r->attrs);
        sqlite3_bind_int64(st, b + 5, r->n_timestamps);
        sqlite3_bind_int64(st, b + 6, r->n_values);
        sqlite3_bind_int64(st, b + 7, r->weight);
        bind_kept(q, st, b + 8, &r->trace);
        bind_kept(q, st, b + 9, &r->span);
        bind_kept(q, st, b + 10, &r->ts);
        bind_kept(q, st, b + 11, &r->vals);
    }
    return sq_step_write(q, s, "storing a sample");
}

int sq_samples_flush(struct sq *q)
{
    size_t n = q->n_pend, done = 0;
    q->n_pend = 0;
    for (int log2 = SQ_SAMPLE_BATCH_LOG2; log2 >= 0 && !q->failed; log2--) {
        while (n - done >= (size_t)1 << log2) {
            int64_t last = write_rows(q, done, log2);
            if (last < 0)
                break;
            done += (size_t)1 << log2;
            if (!q->prof.first_sample)
                q->prof.first_sample = last - (int64_t)done + 1;
            q->prof.last_sample = last;
        }
    }
    buf_reset(&q->pend_bytes);
    return q->failed ? -1 : 0;
}
