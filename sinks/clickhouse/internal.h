/*
 * internal.h - what the ClickHouse sink's files share: the table list, the sealed batch,
 * the row encoder (rows.c), the on-disk spool (spool.c), and the sink's own state, which four
 * files tie together: clickhouse.c (the sink's events, open and close), queue.c (sealing, the
 * memory queue and what spills to the spool), sender.c (one request at a time through
 * lib/http_post, retries, backoff) and options.c (the options, the URLs and statements they
 * make). Not for other sinks.
 *
 * A batch is the unit of delivery and of durability: the rows of one or more whole requests,
 * one RowBinary body per table (gzip'd or not, as the batch says), sent table by table in CH_TABLES order (frames and
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
#include "sinks/clickhouse/clickhouse.h"

struct loop;
struct http_post;
struct http_post_result;

/* Send order: the tables a sample row references come first; samples last, since a batch
 * whose samples are all in ClickHouse counts as delivered (sender.c). */
enum ch_table { CH_FRAMES, CH_STACKS, CH_RESOURCES, CH_REQUESTS, CH_SAMPLES, CH_TABLES };
/* Schema version 1 had no requests table: its batches list frames, stacks, resources and
 * samples, in that order. */
#define CH_TABLES_V1 4
extern const enum ch_table ch_v1_tables[CH_TABLES_V1];

/* Table names, and the column lists the encoder writes (INSERT ... (cols) FORMAT RowBinary).
 * Naming the columns lets users add their own columns to the tables. */
extern const char *const ch_table_name[CH_TABLES];
extern const char *const ch_table_columns[CH_TABLES];
extern const char *const ch_table_columns_v1[CH_TABLES];   /* NULL: not in version 1 */
#define CH_ADD_COLUMNS 13
extern const char *const ch_add_columns[CH_ADD_COLUMNS];
/* CREATE statements; "%s" is the database (already checked to be an identifier). */
extern const char *const ch_create_database;
extern const char *const ch_create_table[CH_TABLES];
/* Bumped whenever a column list changes: spool files written for other columns are kept
 * aside rather than inserted wrongly. */
#define CH_SCHEMA_VERSION 2u

struct ch_part {
    uint32_t rows;
    size_t len;
    uint8_t *data;          /* RowBinary, gzip'd when the batch is; NULL when rows == 0 */
};

struct ch_batch {
    uint64_t id;            /* the batch_id column of its sample rows */
    uint64_t seq;           /* delivery order, also the spool file or log segment name */
    uint32_t schema;        /* the column lists its rows were written for: 1 or CH_SCHEMA_VERSION */
    bool gzip;              /* the parts are gzip'd (sent with Content-Encoding: gzip) */
    struct ch_part part[CH_TABLES];
    size_t bytes;           /* sum of the parts' lengths */
    struct ch_batch *next;  /* memory queue link */
    /* With the write-ahead log: */
    bool in_log_only;       /* parts dropped from memory; read back from segment `seq` */
    bool maybe_stored;      /* ClickHouse may hold its samples already (an earlier run, or a
                             * failed INSERT): count them by batch_id before sending */
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

/* ---- frame_cache.c: frame hashes across requests ----
 * A frame's content hash (the frames table's key) is FNV-1a 64 of the bytes ch_frame_key puts
 * in b: every stored field, integers as 8 little-endian bytes, strings as their length then
 * their bytes, and the typed attribute lists as encoded (attrblob.h) or, when they are the
 * usual ones (NULL: they follow from the frame type and build id), as a mark; false when out
 * of memory. ch_frame_cache_hash(c, key, len) is ch_fnv_bytes(CH_FNV_OFFSET, key, len),
 * remembered for keys seen before (compared in full); c may be NULL (nothing remembered). */
bool ch_frame_key(struct buf *b, const struct lb_frame *f, const struct buf *loc_blob, const struct buf *map_blob);
struct ch_frame_cache;
struct ch_frame_cache *ch_frame_cache_new(void);
void ch_frame_cache_free(struct ch_frame_cache *c);
uint64_t ch_frame_cache_hash(struct ch_frame_cache *c, const uint8_t *key, size_t len);
void ch_frame_cache_stats(const struct ch_frame_cache *c, uint64_t *hits, uint64_t *misses);

/* ---- render.c: a value as the text of attr_values (a string inside JSON when json) ---- */

bool ch_render_value(struct buf *b, const struct lb_value *v, bool json);

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
/* The request's own row (requests table), once its samples are in: before it is logged. */
void ch_rows_request_end(struct ch_rows *r);
/* The request's rows stay (commit) or go (rollback); rollback also forgets which stacks and
 * frames were written, since some of them were written by the request being dropped. */
void ch_rows_commit(struct ch_rows *r);
void ch_rows_rollback(struct ch_rows *r);
/* After a failed event (the batch's byte limit, out of memory): why, else NULL. */
const char *ch_rows_failed(const struct ch_rows *r);
/* The open batch: sample rows and uncompressed bytes (committed and pending). */
uint64_t ch_rows_samples(const struct ch_rows *r);
size_t ch_rows_bytes(const struct ch_rows *r);
/* The current request's rows of table t so far (from its request_begin on). */
void ch_rows_pending(const struct ch_rows *r, int t, const uint8_t **p, size_t *n, uint32_t *rows);
uint64_t ch_rows_batch_id(const struct ch_rows *r);
/* Whether sealed batches are gzip'd (the default) or carry the rows as they are. */
void ch_rows_set_gzip(struct ch_rows *r, bool gzip);
/* Makes the committed rows a batch (gzip'd or copied, as set) and starts an empty one; NULL on
 * out of memory (the rows stay). Only between requests. */
struct ch_batch *ch_rows_seal(struct ch_rows *r, uint64_t seq);
/* Forget which stacks/frames/resources were sent (after ClickHouse lost tables). */
void ch_rows_forget(struct ch_rows *r);

/* ---- spool.c: batches on disk, oldest first ---- */

struct ch_spool;

/* Opens (creating) the directory and indexes the batch files already there. */
struct ch_spool *ch_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
/* The same without the lock: the batch files an earlier version left in the directory the
 * write-ahead log (which holds the lock) now uses. */
struct ch_spool *ch_spool_open_unlocked(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
/* Whether `dir` holds batch files. */
bool ch_spool_has_files(const char *dir);
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

/* ---- walrec.c: the sink's records in the write-ahead log (sinks/wal.h) ----
 * One record per acknowledged request: its rows of each table, as they stand in the batch
 * (batch_id and row_index included), so a segment read back is the batch, byte for byte
 * before compression. */

struct ch_sink;
struct wal;

/* Appends the current request's rows to the log's segment `seq`: 0, 1 when the log is full,
 * -1 with err on a write error. */
int ch_wal_append(struct wal *w, uint64_t seq, const struct ch_rows *r, char *err, size_t errlen);
/* Rebuilds batch `seq` from its segment (parts gzip'd when `gzip`, as the sealing does). NULL
 * with err when unreadable; *empty when the segment holds no complete record (nothing to send). */
struct ch_batch *ch_wal_load(struct wal *w, uint64_t seq, bool gzip, bool *empty, char *err, size_t errlen);

/* Monotonic milliseconds (the sink's own clock: close runs after the loop has stopped). */
uint64_t ch_now_ms(void);

/* ---- the sink: its state, shared by clickhouse.c, queue.c, sender.c and options.c ---- */

#define CH_MAX_DISTINCT_ERRORS 32

struct ch_sink {
    struct clickhouse_sink_options o;
    char *strings;               /* one allocation holding the copied option strings */
    struct loop *loop;
    struct http_post *http;
    struct ch_rows *rows;
    size_t seal_bytes;
    bool gzip;                   /* seal and send gzip'd (--clickhouse-compression gzip) */
    /* URLs and statements */
    char *ddl_url;
    char *insert_url[CH_TABLES];
    char *insert_url_v1[CH_TABLES];   /* batches of schema version 1; NULL for requests */
    char *ddl[1 + CH_TABLES + CH_ADD_COLUMNS];
    /* durability: the write-ahead log and its group commit (NULL in memory mode) */
    struct wal *wal;
    struct commit *commit;
    bool wal_failing;            /* the last append failed (logged once until one succeeds) */
    /* the spool (memory mode), or an earlier version's batch files (with the log) */
    struct ch_spool *spool;
    uint64_t spool_retry_at;     /* after a write error, don't try again before this */
    /* the memory queue: sealed batches, oldest first */
    struct ch_batch *qhead, *qtail;
    size_t qbytes;
    uint64_t next_seq;
    /* the sender */
    struct ch_batch *cur;        /* being sent (popped from the queue or loaded from the spool) */
    bool cur_spooled, cur_retried;
    bool cur_checked;            /* its samples were counted in ClickHouse (maybe_stored) */
    char count_query[160];       /* the body of the count in flight */
    int part;                    /* next part of cur to send */
    int inflight;                /* table of the request in flight; CH_INFLIGHT_* otherwise */
    bool schema_ready;
    size_t ddl_next;
    unsigned attempts;           /* consecutive failures */
    uint64_t retry_at;
    uint64_t retry_timer, flush_timer, stats_timer;
    uint64_t rng;
    bool closing, refusing;
    /* The open batch's bytes when the current request began, and how many bytes of rows the
     * last request made (committed or refused): ready asks whether one like it would fit. */
    size_t request_begin_bytes, last_request_bytes;
    /* errors already logged since the last success */
    struct ch_logged_error { int table, code; } errs[CH_MAX_DISTINCT_ERRORS];
    size_t n_errs;
    char last_error[256];
    struct clickhouse_counts st;   /* clickhouse.h */
};

#define CH_INFLIGHT_DDL (-1)
#define CH_INFLIGHT_COUNT (-2)      /* SELECT count() of a batch's samples */

/* splitmix64: batch ids and the backoff's jitter. */
static inline uint64_t ch_random(struct ch_sink *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* queue.c: sealed batches in memory, or on disk when memory is full or older ones wait there. */
/* Bytes of sealed batches in memory (the queue and the one being sent). */
size_t ch_mem_bytes(const struct ch_sink *s);
/* The spool is there, did not just fail a write, and is under its cap. */
bool ch_can_spool(const struct ch_sink *s);
/* Something is left to send (in memory or on disk). */
bool ch_has_work(const struct ch_sink *s);
void ch_enqueue(struct ch_sink *s, struct ch_batch *b);
struct ch_batch *ch_dequeue(struct ch_sink *s);
/* Closes the open batch (if it has rows) and places it: memory or spool. */
void ch_seal(struct ch_sink *s);
/* Seals after the flush interval unless something seals earlier. */
void ch_seal_later(struct ch_sink *s);
/* Shutdown: what is still in memory goes to the spool, or is reported lost. */
void ch_spill(struct ch_sink *s);

/* sender.c: the DDL statements, then the batches part by part, one request at a time. */
/* Starts the next request if none is in flight and no backoff is pending. */
void ch_kick(struct ch_sink *s);
/* The HTTP driver's done callback. */
void ch_on_http_done(void *ud, const struct http_post_result *res);
/* Shutdown, without the event loop: sends what it can before `end`. */
void ch_drain(struct ch_sink *s, uint64_t end);

/* options.c */
int ch_check_options(const struct clickhouse_sink_options *o, char *err, size_t errlen);
/* Copies the option strings into s->strings so the caller's may go away. */
int ch_copy_strings(struct ch_sink *s, char *err, size_t errlen);
/* The INSERT URLs (one per table) and the CREATE statements with their URL. */
int ch_build_statements(struct ch_sink *s, char *err, size_t errlen);

#endif
