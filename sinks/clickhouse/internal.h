/*
 * internal.h - what the ClickHouse sink's files share: the table list, the sealed batch,
 * the row encoder (rows.c), the on-disk spool (spool.c) and the HTTP driver
 * (http.c). clickhouse.c ties them together (queue, sender, shutdown). Not for other sinks.
 *
 * A batch is the unit of delivery and of durability: the rows of one or more whole requests,
 * one gzip'd RowBinary body per table, sent table by table in CH_TABLES order (frames and
 * stacks before the samples that reference them), deleted only when ClickHouse has answered
 * 200 to every part.
 */
#ifndef LB_SINKS_CH_INTERNAL_H
#define LB_SINKS_CH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/view.h"

struct loop;

/* Send order: the tables a sample row references come first. */
enum ch_table { CH_FRAMES, CH_STACKS, CH_RESOURCES, CH_SAMPLES, CH_TABLES };

/* Table names, and the column lists the encoder writes (INSERT ... (cols) FORMAT RowBinary).
 * Naming the columns lets users add their own columns to the tables. */
extern const char *const ch_table_name[CH_TABLES];
extern const char *const ch_table_columns[CH_TABLES];
/* CREATE statements; "%s" is the database (already checked to be an identifier). */
extern const char *const ch_create_database;
extern const char *const ch_create_table[CH_TABLES];
/* Bumped whenever a column list changes: spool files written for other columns are kept
 * aside rather than inserted wrongly. */
#define CH_SCHEMA_VERSION 1u

struct ch_part {
    uint32_t rows;
    size_t len;
    uint8_t *data;          /* gzip'd RowBinary; NULL when rows == 0 */
};

struct ch_batch {
    uint64_t id;            /* the batch_id column of its sample rows */
    uint64_t seq;           /* delivery order, also the spool file name */
    struct ch_part part[CH_TABLES];
    size_t bytes;           /* sum of the parts' lengths */
    struct ch_batch *next;  /* memory queue link */
};

void ch_batch_free(struct ch_batch *b);

/* ---- 64-bit FNV-1a, the content hash of frames, stacks and resources ---- */

#define CH_FNV_OFFSET 0xcbf29ce484222325ull
#define CH_FNV_PRIME 0x100000001b3ull

static inline uint64_t ch_fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * CH_FNV_PRIME;
    return h;
}

/* Integers are hashed as 8 little-endian bytes. */
static inline uint64_t ch_fnv_u64(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        h = (h ^ (v & 0xff)) * CH_FNV_PRIME;
    return h;
}

/* Strings as their length (8 bytes) then their bytes, so field boundaries are unambiguous. */
static inline uint64_t ch_fnv_str(uint64_t h, lb_str s)
{
    return ch_fnv_bytes(ch_fnv_u64(h, s.n), s.p, s.n);
}

/* ---- rows.c: the open batch, built event by event ---- */

struct ch_rows;

/* `limit` caps the open batch's uncompressed bytes (all tables together). */
struct ch_rows *ch_rows_new(size_t limit);
void ch_rows_free(struct ch_rows *r);

/* A request starts: remember where to roll back to. */
void ch_rows_request_begin(struct ch_rows *r, const struct lb_request *req, uint64_t batch_id_if_new);
void ch_rows_resource(struct ch_rows *r, const struct lb_resource *res);
void ch_rows_profile(struct ch_rows *r, const struct lb_profile *p);
void ch_rows_sample(struct ch_rows *r, const struct lb_sample *s);
/* The request's rows stay (commit) or go (rollback); rollback also forgets which stacks and
 * frames were written, since some of them were written by the request being dropped. */
void ch_rows_commit(struct ch_rows *r);
void ch_rows_rollback(struct ch_rows *r);
/* After a failed event (the batch's byte limit, out of memory): why, else NULL. */
const char *ch_rows_failed(const struct ch_rows *r);
/* The open batch: sample rows and uncompressed bytes (committed and pending). */
uint64_t ch_rows_samples(const struct ch_rows *r);
size_t ch_rows_bytes(const struct ch_rows *r);
/* Compresses the committed rows into a batch and starts an empty one; NULL on out of memory
 * (the rows stay). Only between requests. */
struct ch_batch *ch_rows_seal(struct ch_rows *r, uint64_t seq);
/* Forget which stacks/frames/resources were sent (after ClickHouse lost tables). */
void ch_rows_forget(struct ch_rows *r);

/* ---- spool.c: batches on disk, oldest first ---- */

struct ch_spool;

/* Opens (creating) the directory and indexes the batch files already there. */
struct ch_spool *ch_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
void ch_spool_free(struct ch_spool *sp);
size_t ch_spool_count(const struct ch_spool *sp);
uint64_t ch_spool_bytes(const struct ch_spool *sp);
uint64_t ch_spool_max_bytes(const struct ch_spool *sp);
/* Highest sequence number on disk (0 when empty): new batches continue after it. */
uint64_t ch_spool_last_seq(const struct ch_spool *sp);
/* Writes the batch as a file (tmp + fsync + rename + directory fsync). Refused when the spool
 * already holds max_bytes unless `force` (shutdown: better over the cap than lost). */
int ch_spool_write(struct ch_spool *sp, const struct ch_batch *b, bool force, char *err, size_t errlen);
/* Loads the oldest batch; NULL with err when the file is unreadable or corrupt (then
 * ch_spool_quarantine_head moves it aside). */
struct ch_batch *ch_spool_load_head(struct ch_spool *sp, char *err, size_t errlen);
uint64_t ch_spool_head_seq(const struct ch_spool *sp);
void ch_spool_remove_head(struct ch_spool *sp);
void ch_spool_quarantine_head(struct ch_spool *sp);
/* Encoding of a batch file, exposed for the unit tests. */
int ch_spool_encode(const struct ch_batch *b, struct buf *out);
struct ch_batch *ch_spool_decode(const uint8_t *p, size_t n, char *err, size_t errlen);

/* ---- http.c: one HTTP request at a time through libcurl's multi interface ---- */

struct ch_http;

struct ch_http_result {
    bool ok;                /* transfer done and HTTP 200 */
    long status;            /* HTTP status, 0 when no response */
    int curl_code;          /* CURLcode */
    const char *body;       /* response body (NUL-terminated, truncated to 64 KiB) */
    size_t body_len;
    const char *error;      /* curl's message when the transfer failed */
};

typedef void (*ch_http_done_fn)(void *ud, const struct ch_http_result *res);

struct ch_http_options {
    const char *user, *password;   /* NULL: none (ClickHouse's default user) */
    long connect_timeout_ms, timeout_ms;
};

/* Registers its sockets and timer on `loop`. */
struct ch_http *ch_http_new(struct loop *loop, const struct ch_http_options *o, ch_http_done_fn done,
                            void *ud, char *err, size_t errlen);
void ch_http_free(struct ch_http *h);
/* Starts a POST; `body` must stay valid until the done callback. 0, or -1 (busy, curl). */
int ch_http_post(struct ch_http *h, const char *url, const void *body, size_t len, bool gzip);
bool ch_http_busy(const struct ch_http *h);
/* Abandons the request in flight (no callback). */
void ch_http_cancel(struct ch_http *h);
/* Without the event loop (shutdown): waits up to timeout_ms for the sockets or curl's timer
 * and lets curl progress; the done callback runs from here. */
void ch_http_poll(struct ch_http *h, int timeout_ms);

/* Monotonic milliseconds (the sink's own clock: close runs after the loop has stopped). */
uint64_t ch_now_ms(void);

#endif
