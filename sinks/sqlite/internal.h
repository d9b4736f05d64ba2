/*
 * internal.h - what the SQLite store's files share: opening a database at the right
 * schema version, the content hash that keys the deduplicated tables, and the bounded id
 * caches the writer uses to keep repeated strings, frames and stacks away from SQL; then
 * what the writer's files share among themselves, and what the query commands' files share.
 *
 * The writer (writer*.c) and the readers (query*.c, behind `lazybackend top|folded|
 * flamegraph`) must agree on the schema and on the hash, so both live here and nowhere
 * else. Not for other sinks.
 */
#ifndef LB_SINKS_SQLITE_IMPL_H
#define LB_SINKS_SQLITE_IMPL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/commit.h"
#include "lib/hash.h"
#include "lib/histogram.h"
#include "lib/memo.h"
#include "otlp/view.h"
#include "sinks/query/query.h"

/* The schema this build writes and reads (PRAGMA user_version). schema.c holds the
 * steps that lead to it; docs/sqlite.md describes it. */
#define SQLSTORE_SCHEMA_VERSION 11

/* How long a connection waits for a lock another connection holds. The writer runs on the
 * event loop, so its wait is short; readers can afford more. */
#define SQLSTORE_WRITER_BUSY_MS 2000
#define SQLSTORE_READER_BUSY_MS 10000

/* Opens (creating it if needed) and upgrades a database for writing: WAL, the given
 * synchronous level ("FULL" or "NORMAL"). 0, or -1 with a message in err. */
int sqlstore_open_writer(const char *path, const char *synchronous, sqlite3 **out,
                         char *err, size_t errlen);

/* Opens an existing database read-only, refusing one at another schema version. */
int sqlstore_open_reader(const char *path, sqlite3 **out, char *err, size_t errlen);

/* Applies the migration steps up to `target` (1..SQLSTORE_SCHEMA_VERSION), each in its own
 * transaction. Refuses a database newer than this build, or one with foreign tables. */
int sqlstore_migrate(sqlite3 *db, int target, char *err, size_t errlen);

/* Runs SQL with no result rows; -1 with sqlite's message in err. */
int sqlstore_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* The content hash of the deduplicated tables' `hash` columns: 64 bits over the canonical key
 * bytes (docs/sqlite.md). Only a lookup accelerator: every match is confirmed on content, so
 * collisions cost a comparison, never a wrong id. Fixed forever for a schema version. */
uint64_t sqlstore_hash(const void *p, size_t n);

/* The id caches hash their keys with hash64_lanes (lib/hash.h): never stored, so free to be
 * faster than sqlstore_hash on long keys. A cache hit never needs sqlstore_hash; only the SQL
 * behind a miss does. */

/* ---- bounded id cache (cache.c) ----
 * Canonical key bytes -> row id, for rows that exist in the database. 4-way set associative,
 * least recently used way evicted; keys are copied and compared in full (a hash hit alone is
 * never trusted). Bounded twice: by its slot count and by the bytes of keys it holds. Each
 * entry remembers the transaction that created its row, so a rollback can forget exactly
 * the ids that no longer exist. `hash` is the key's hash64_lanes. */
struct idcache;

struct idcache *idcache_new(unsigned slots_log2, size_t max_key_bytes, size_t max_key_len);
void idcache_free(struct idcache *c);
/* The id, or 0 when not cached. */
int64_t idcache_get(struct idcache *c, uint64_t hash, const void *key, size_t len);
/* Remembers key -> id (ignored when the key is too long or the byte budget is spent). */
void idcache_put(struct idcache *c, uint64_t hash, const void *key, size_t len, int64_t id,
                 uint64_t txn);
/* Forgets every entry created by transaction txn (it was rolled back). */
void idcache_drop_txn(struct idcache *c, uint64_t txn);
/* Forgets every entry created by transactions first_txn and after (a batch was lost). */
void idcache_drop_since(struct idcache *c, uint64_t first_txn);
struct idcache_stats {
    uint64_t hits, misses, evictions, entries, key_bytes;
};
void idcache_stats(const struct idcache *c, struct idcache_stats *out);

/* ---- the writer (writer.c, writer_dedup.c, writer_attrs.c, writer_samples.c) ----
 * writer.c is the sink: its statements, its transaction per request and the events;
 * writer_dedup.c finds or stores the rows kept once per database (strings, mappings, frames,
 * scopes, stacks, attribute sets); writer_attrs.c turns attributes into rows. */

/* The most samples rows one INSERT writes (writer_samples.c), a power of two. */
#define SQ_SAMPLE_BATCH_LOG2 5
#define SQ_SAMPLE_BATCH (1 << SQ_SAMPLE_BATCH_LOG2)

/* The largest multi-row rollup upsert holds 2^SQ_ROLL_BATCH_SIZES rows (writer_rollup.c). */
#define SQ_ROLL_BATCH_SIZES 5

/* Prepared statements, all made at open (their SQL is writer.c's table). Lookups bind ?1 =
 * hash and the content after it, inserts the same parameters in the same order, so one binder
 * serves both. */
enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_STR_FIND, S_STR_INS,
    S_ATTR_FIND, S_ATTR_INS,
    S_SET_FIND, S_SET_ITEMS, S_SET_INS, S_SET_ITEM_INS,
    S_MAP_FIND, S_MAP_INS,
    S_FRAME_FIND, S_FRAME_INS,
    S_STACK_FIND, S_STACK_ITEMS, S_STACK_INS, S_STACK_ITEM_INS,
    S_SCOPE_FIND, S_SCOPE_INS,
    S_REQ_INS, S_REQ_END, S_RES_INS, S_PROF_INS, S_PROF_MAX,
    S_ROLL_MINUTE, S_ROLL_HOUR, S_ROLL_TOTAL, S_ROLL_SETS, S_ROLL_TYPES,
    S_UNKNOWN_INS,
    S_ENTITY_INS, S_ENTITY_KEY_INS,
    /* the multi-row rollup upserts, made by sq_rollup_prepare: per table (minute, hour, totals,
     * sets) one statement for each power-of-two row count 2, 4, .. 2^SQ_ROLL_BATCH_SIZES */
    S_ROLL_BATCH,
    S_ROLL_BATCH_END = S_ROLL_BATCH + 4 * SQ_ROLL_BATCH_SIZES - 1,
    /* the multi-row samples inserts, made by sq_samples_prepare: 1, 2, 4, .. SQ_SAMPLE_BATCH rows */
    S_SAMPLE_BATCH,
    S_SAMPLE_BATCH_END = S_SAMPLE_BATCH + SQ_SAMPLE_BATCH_LOG2,
    S_COUNT
};

/* The id caches (their sizes are writer.c's table). C_FRAME_CONTENT and C_ATTR_CONTENT key a
 * whole frame or attribute by its bytes, so a repeated one costs one lookup instead of one per
 * string in it plus one for the row. */
enum { C_STR, C_ATTR, C_SET, C_MAP, C_FRAME, C_STACK, C_SCOPE, C_FRAME_CONTENT, C_ATTR_CONTENT, C_COUNT };

/* A samples row waiting for its INSERT: its blobs are kept in sq.pend_bytes (offsets, as
 * the buffer may move while it fills). */
struct sq_blob { size_t off, n; bool present; };
struct sq_pending {
    int64_t index, stack, attrs, n_timestamps, n_values, weight;
    struct sq_blob trace, span, ts, vals;
};

/* Slots of the per-request attribute list memo (a power of two). */
#define SQ_ATTRS_SEEN 64

struct sq {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct idcache *cache[C_COUNT];
    struct memo frame_memo, stack_memo;
    struct buf key;          /* a canonical key being built */
    struct buf ckey;         /* a content key (C_*_CONTENT), kept across the slow path */
    struct buf json;         /* an attribute value rendered as JSON */
    struct buf venc;         /* an array or kvlist value, self-contained (lb_value_encode) */
    struct buf ts_packed, vals_packed;   /* a sample's series, packed (series.c) */
    int64_t *ids;            /* attribute ids of a set */
    size_t ids_cap;
    int64_t *stack_ids;      /* frame ids of a stack */
    size_t stack_ids_cap;
    uint64_t txn;            /* numbers this sink's requests (each a savepoint), for idcache_drop_txn */
    bool failed;
    /* The batch (writer_batch.c): one transaction holds many requests, each in a savepoint of
     * its own; it is committed at the end of a loop turn (the group commit's sync, with the
     * replies held until then), or when a bound is reached, and at close. */
    struct commit *gate;     /* lib/commit.h; NULL when nothing is acknowledged (decode) */
    bool in_batch, in_req;   /* the transaction is open; the request's savepoint is open */
    struct {
        uint64_t first_txn;  /* the first request's txn: a lost batch forgets the ids from there */
        uint64_t requests, bytes, samples;
        uint64_t started_ns;
        uint64_t max_gen;    /* the newest reply generation that depends on it */
    } batch;
    uint64_t max_requests, max_bytes, max_ns;   /* the batch's bounds */
    uint64_t lost_through;   /* every reply generation <= this had rows in a lost batch */
    uint64_t lost_samples;   /* samples whose request_end said stored, lost with their batch */
    char batch_why[320];     /* why the last batch was lost */
    char why[512];
    int64_t request_id, resource_id, profile_id;
    uint64_t n_resources, n_profiles, n_samples;
    struct {
        uint64_t samples;
        int64_t first_sample, last_sample;
        bool any_time;
        uint64_t tmin, tmax;
        int64_t type_id, unit_id, attrs_id;   /* the rollups' keys (0 = none) */
        int64_t scope_id, period_type_id, period_unit_id, format_id;   /* for its row, at its end */
    } prof;
    int64_t next_profile_id;     /* the id the next profiles row gets; 0 = not known yet */
    struct sq_pending pend[SQ_SAMPLE_BATCH];   /* the current profile's samples not written yet */
    size_t n_pend;
    struct buf pend_bytes;
    int64_t resource_attrs_id;   /* the current resource's set (0 = none), for the rollups */
    struct rollup *rollup;       /* this request's rollup sums (writer_rollup.c) */
    struct rollup *batch_sums;   /* ... and its batch's, the requests kept so far */
    struct rollup *totals;       /* ... and per minute and sample type, at a flush */
    struct rollup *hours;        /* ... and per hour, at a flush */
    struct rollup *sets;         /* ... and per minute, sample type and attribute sets */
    struct rollup *kinds;        /* ... and per minute, sample type and frame types */
    /* This request's stacks' frame types (schema step 10): stack id -> offset + 1 of its
     * ",id,id," text in type_sigs (NUL-terminated texts, each once: sig_of hashes them). */
    struct memo types_memo, sig_of;
    struct buf type_sigs, sig;
    int64_t *type_ids;
    size_t type_ids_cap;
    /* The last frame type strings of this request and their ids: a request names a few types
     * from its string table, so the same bytes (pointer and length) come back for every frame. */
    struct { const char *p; size_t n; int64_t id; } type_seen[8];
    size_t n_type_seen;
    /* The attribute lists this request has interned, by where the decoder keeps them and
     * their entries' bytes (writer_attrs.c): a request's samples repeat a few lists, which
     * the decoder resolves once and hands out at the same address, so a repeated one costs a
     * compare instead of hashing every attribute and the set. Forgotten at each request. */
    struct sq_attrs_seen { const struct lb_attr *v; size_t n, off; int64_t id; } attrs_seen[SQ_ATTRS_SEEN];
    struct buf attrs_copy;   /* the entries of each attrs_seen, copied when seen */
    uint64_t committed, rolled_back;
    struct histogram commit_ns;   /* how long each COMMIT took (the fsync, by default) */
};

/* SQL plumbing (writer.c): sq_fail records the request's first failure and returns -1;
 * sq_step_write runs statement s, an INSERT or UPDATE (the new rowid, or -1); sq_step_find
 * runs a lookup (the first column of the first row, 0 when none, -1 on error). */
int64_t sq_fail(struct sq *q, const char *what, const char *detail);
int64_t sq_step_write(struct sq *q, int s, const char *what);
int64_t sq_step_find(struct sq *q, int s, const char *what);

static inline void bind_id(sqlite3_stmt *st, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(st, i, id);
    else
        sqlite3_bind_null(st, i);
}

static inline void bind_text(sqlite3_stmt *st, int i, lb_str s)
{
    sqlite3_bind_text64(st, i, s.n ? s.p : "", s.n, SQLITE_STATIC, SQLITE_UTF8);
}

static inline void bind_blob_or_null(sqlite3_stmt *st, int i, lb_str s, bool present)
{
    if (present)
        sqlite3_bind_blob64(st, i, s.n ? s.p : "", s.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* The batch (writer_batch.c). sq_req_open starts the request's savepoint (and the batch's
 * transaction first, when none is open): 0, or -1 with the request failed. sq_req_keep
 * releases it into the batch and counts it; sq_req_undo rolls it back (and when SQLite had
 * rolled back the whole transaction, the batch is lost: sq_batch_lost). sq_batch_commit
 * commits the batch: 0, or -1 with the batch lost and the reason in batch_why. */
int sq_req_open(struct sq *q);
int sq_req_keep(struct sq *q, uint64_t bytes);
void sq_req_undo(struct sq *q);
bool sq_batch_due(const struct sq *q);
int sq_batch_commit(struct sq *q);
void sq_batch_lost(struct sq *q, const char *why);
/* Joins and leaves the group commit (env->commit): 0, or -1. */
int sq_gate_add(struct sq *q, struct commit *gate);
void sq_gate_del(struct sq *q);

/* Canonical keys (writer_dedup.c): integers as 8 little-endian bytes, strings as their length
 * then their bytes. */
bool sq_key_u64_grow(struct buf *b, uint64_t v);
bool sq_key_str_grow(struct buf *b, lb_str s);

/* Every frame, attribute and string of every request goes through these, so the common case
 * (room left in the buffer, which is reused) is written in place here; the _grow variants
 * (writer_dedup.c) make room first. cap never exceeds the buffer's limit, so room within cap
 * is room within the limit. */
static inline void sq_key_put_u64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* one store: gcc -O2 left the byte loop below a loop (a byte store may alias the buffer's
     * own fields), about a sixth of the writer's instructions on small requests */
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline bool sq_key_u64(struct buf *b, uint64_t v)
{
    if (!b->data || b->cap - b->len < 8)
        return sq_key_u64_grow(b, v);
    sq_key_put_u64(b->data + b->len, v);
    b->len += 8;
    return true;
}

static inline bool sq_key_str(struct buf *b, lb_str s)
{
    if (!b->data || b->cap - b->len < 8 || b->cap - b->len - 8 < s.n)
        return sq_key_str_grow(b, s);
    sq_key_put_u64(b->data + b->len, s.n);
    if (s.n)
        memcpy(b->data + b->len + 8, s.p, s.n);
    b->len += 8 + s.n;
    return true;
}
/* Room for n ids in q->ids; false past the longest stack the scratch holds. */
bool sq_ids_reserve(struct sq *q, size_t n);

/* Rows found by content, stored when new (writer_dedup.c). Each returns the row's id, 0 for
 * nothing (the empty string, no scope, no attributes), or -1 with the request failed. */
int64_t sq_intern_str(struct sq *q, lb_str s);
int64_t sq_intern_cstr(struct sq *q, const char *s);
int64_t sq_intern_scope(struct sq *q, const struct lb_scope *sc);
/* The set of the attribute ids ids[0..n), in that order. */
int64_t sq_intern_set(struct sq *q, const int64_t *ids, size_t n);
/* The stack of a sample's frames. */
int64_t sq_stack_id(struct sq *q, const struct lb_sample *smp);
/* The set of attributes in wire order (writer_attrs.c). */
int64_t sq_intern_attrs(struct sq *q, struct lb_attrs attrs);
/* Forgets the lists sq_intern_attrs remembers (a new request: its addresses mean other lists). */
void sq_attrs_seen_clear(struct sq *q);

/* The samples rows (writer_samples.c): sq_sample_add keeps a sample's row for the next
 * multi-row INSERT (writing the waiting ones first when they are SQ_SAMPLE_BATCH);
 * sq_samples_flush writes the waiting rows and sets the profile's first and last sample ids.
 * Both 0, or -1 with the request failed. sq_samples_prepare: 0, or -1 with a message. */
int sq_sample_add(struct sq *q, const struct lb_sample *smp, int64_t stack, int64_t attrs);
int sq_samples_flush(struct sq *q);
int sq_samples_prepare(struct sq *q, char *err, size_t errlen);

/* The rollup tables (writer_rollup.c, schema step 3): a request's weights are summed in
 * memory per (minute, stack, sample type, attribute sets) as its samples arrive, and added to
 * rollup_minute and rollup_hour by sq_rollup_flush inside the request's transaction (also
 * early, when the sums grow past their bound). sq_rollup_reset forgets unflushed sums (a
 * new request, a rollback). */
struct rollup *sq_rollup_new(void);
void sq_rollup_free(struct rollup *r);
void sq_rollup_reset(struct rollup *r);
/* 0, or -1 with the request failed. */
int sq_rollup_sample(struct sq *q, const struct lb_sample *smp, int64_t stack_id, int64_t attrs_id);
int sq_rollup_flush(struct sq *q);
/* The request's sums (its savepoint released) join the batch's, written early past the
 * bound; sq_rollup_flush_batch writes the batch's before its COMMIT. 0, or -1 (q->failed). */
int sq_rollup_keep(struct sq *q);
int sq_rollup_flush_batch(struct sq *q);
/* Prepares the multi-row upserts (S_ROLL_BATCH..): 0, or -1 with a message in err. */
int sq_rollup_prepare(struct sq *q, char *err, size_t errlen);

/* A sample's timestamps or values as stored in samples.timestamps_packed / values_packed since
 * schema step 8 (series.c): zigzag varints of the differences. Rows written before that step
 * have NULL there and their series in sample_timestamps / sample_values. sq_series_pack
 * replaces b's content with the packing of n 8-byte numbers (false when out of memory);
 * sq_series_unpack reads exactly n numbers from a blob: 0, or -1 when it does not hold them. */
bool sq_series_pack(struct buf *b, const void *nums, size_t n);
int sq_series_unpack(const void *blob, size_t len, uint64_t *out, size_t n);

/* ---- the query commands' reader (query.c and query_*.c) ----
 * Fills the store-independent result of sinks/query/query.h, which renders it: query.c runs
 * the steps, query_scan.c scans the matching samples, query_names.c turns stored ids into
 * names. */

struct q {
    const struct qopts *o;
    struct qresult *r;                /* what the reader fills; r->err holds the first error */
    sqlite3 *db;
    sqlite3_stmt *st_frame, *st_stack, *st_group;
    struct memo frame_ix, stack_ix;   /* database id -> index in r->frames / r->stacks */
    const struct group_attr *group;   /* what items are grouped by, NULL = nothing */
    int64_t group_key_id;             /* strings.id of group->key, 0 when never stored */
    struct memo group_of_set;         /* set id -> name id + 1, or 0 when the set lacks it */
    struct memo where_sets[MAX_FILTERS];
    bool where_impossible;
    struct aggtab scan;               /* weight per (stack, sample set, profile set, resource set) */
    int64_t unit_type_id, unit_unit_id;   /* the one sample type seen, or -1 when mixed */
    struct buf tmp;
};

/* query.c: the first error of the command into q->err (sqlite's message after `what`, or
 * "out of memory"); both return -1. q_prepare prepares sql into *st: 0, or qfail's -1. */
int qfail(struct q *q, const char *what);
int qoom(struct q *q);
int q_prepare(struct q *q, const char *sql, sqlite3_stmt **st);

/* ---- stored ids to names (query_names.c) ---- */

/* The columns and join that give an attribute's value as q_attr_text reads it (a is the
 * attributes row). */
#define ATTR_VALUE_COLUMNS "a.kind, a.value, sv.value"
#define ATTR_VALUE_JOIN "LEFT JOIN strings sv ON sv.id = a.value AND a.kind IN ('string','array','kvlist')"

/* Prepares the statements that read frames, stacks and group values. */
int q_prepare_names(struct q *q);
bool q_attr_text(struct buf *b, sqlite3_stmt *st, int col);
int64_t q_string_id(struct q *q, const char *s);
int64_t q_load_stack(struct q *q, int64_t id);
int64_t q_group_of(struct q *q, const int64_t sets[3]);
int q_load_unit(struct q *q);

/* ---- the scan (query_scan.c) ---- */
int q_load_where(struct q *q, size_t i);
int q_scan(struct q *q);
int q_group_items(struct q *q);

#endif
