/*
 * query.h - what the ClickHouse reader's two files share (query.c asks, query_rows.c reads
 * the answers), and what export.c (the export reader) takes from them: the HTTP client, the
 * SQL pieces of the filters, and a bounded RowBinary reader.
 */
#ifndef LB_SINKS_CLICKHOUSE_QUERY_H
#define LB_SINKS_CLICKHOUSE_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/view.h"
#include "sinks/query/query.h"

/* sums: (stack_hash UInt64, g_found UInt8, g_val String, sample_type String, sample_unit
 * String, weight Int64, samples UInt64) rows; stacks: (stack_hash UInt64, frame_hashes
 * Array(UInt64)); frames: (frame_hash UInt64, name String, frame_type String). 0, or -1 with
 * r->err set (a malformed answer, out of memory). */
int ch_query_fill(const struct qopts *o, struct qresult *r, const struct buf *sums, const struct buf *stacks,
                  const struct buf *frames);

#define MAX_RESPONSE ((size_t)1 << 30)   /* one answer's bytes: far above any real one */

/* POSTs sql to the server of o->ch_url; the body into out (reset first). 0, or -1 with r->err
 * set (the server unreachable, an HTTP error with ClickHouse's message). libcurl must be
 * initialised (curl_global_init). */
int ch_post(const struct qopts *o, struct qresult *r, const char *sql, struct buf *out);
/* The URL ch_post POSTs to for the server at base (its path kept, one '/' after it); false
 * when it does not fit. */
bool ch_query_url(const char *base, char *url, size_t size);
/* An answer's HTTP status checked: 0 for 200, else -1 with r->err naming the status and the
 * first line of ClickHouse's message (made safe to print), r->upstream failed. */
int ch_check_status(struct qresult *r, long status, const uint8_t *body, size_t len);
/* s as a ClickHouse string literal. */
bool ch_put_literal(struct buf *b, const char *s);
/* "WHERE ..." on samples: the conditions SQL checks on samples alone (--sample-type, the
 * window's end). */
bool ch_put_prefilter(struct buf *b, const struct qopts *o);
/* " AND ..." per --where, against the sample's attr_keys/attr_values and its resource's rk/rv. */
bool ch_put_where(struct buf *b, const struct qopts *o);

/* ---- RowBinary, read with every length checked against the bytes left ---- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

/* A reader over a whole answer (an empty one may have no buffer: NULL + 0 is undefined). */
static inline struct rd rd_of(const struct buf *b)
{
    return (struct rd){ b->data, b->data ? b->data + b->len : b->data, false };
}

static inline bool rd_more(const struct rd *d)
{
    return !d->bad && d->p < d->end;
}

static inline uint64_t rd_fixed(struct rd *d, size_t n)
{
    uint64_t v = 0;
    if (d->bad || (size_t)(d->end - d->p) < n) {
        d->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)d->p[i] << (8 * i);
    d->p += n;
    return v;
}

static inline uint64_t rd_varint(struct rd *d)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint64_t b = rd_fixed(d, 1);
        if (d->bad)
            return 0;
        v |= (b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    d->bad = true;
    return 0;
}

static inline lb_str rd_str(struct rd *d)
{
    uint64_t n = rd_varint(d);
    if (d->bad || n > (uint64_t)(d->end - d->p)) {
        d->bad = true;
        return (lb_str){ "", 0 };
    }
    lb_str s = { (const char *)d->p, (size_t)n };
    d->p += n;
    return s;
}

/* An array's element count, checked against the bytes left (each element takes at least
 * min_size bytes), so a hostile count cannot make the reader allocate. */
static inline uint64_t rd_count(struct rd *d, size_t min_size)
{
    uint64_t n = rd_varint(d);
    if (d->bad || (min_size && n > (uint64_t)(d->end - d->p) / min_size)) {
        d->bad = true;
        return 0;
    }
    return n;
}

#endif
