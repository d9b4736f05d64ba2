/*
 * internal.h - what the SQLite store's files share: opening a database at the right
 * schema version, the content hash that keys the deduplicated tables, and the bounded id
 * caches the writer uses to keep repeated strings, frames and stacks away from SQL.
 *
 * The writer (sqlite.c) and the readers (query.c, behind `lazybackend top|folded|
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

/* The schema this build writes and reads (PRAGMA user_version). schema.c holds the
 * steps that lead to it; the README (SQLite sink) describes it. */
#define SQLSTORE_SCHEMA_VERSION 2

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
 * bytes (the README (SQLite sink)). Only a lookup accelerator: every match is confirmed on content, so
 * collisions cost a comparison, never a wrong id. Fixed forever for a schema version. */
uint64_t sqlstore_hash(const void *p, size_t n);

/* ---- bounded id cache (cache.c) ----
 * Canonical key bytes -> row id, for rows that exist in the database. 4-way set associative,
 * least recently used way evicted; keys are copied and compared in full (a hash hit alone is
 * never trusted). Bounded twice: by its slot count and by the bytes of keys it holds. Each
 * entry remembers the transaction that created its row, so a rollback can forget exactly
 * the ids that no longer exist. */
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
struct idcache_stats {
    uint64_t hits, misses, evictions, entries, key_bytes;
};
void idcache_stats(const struct idcache *c, struct idcache_stats *out);

/* ---- per-request memo (cache.c) ----
 * uint64 -> int64 for request-local indices (a stack index, a location's line): valid for
 * one request only, cleared at the next. Stops growing at max entries (lookups then miss and
 * the caller takes the slower path), so a hostile request cannot make it huge. */
struct memo {
    uint64_t *keys;   /* key + 1; 0 = empty slot */
    int64_t *vals;
    size_t cap, n, max;
};

void memo_init(struct memo *m, size_t max);
void memo_clear(struct memo *m);
void memo_free(struct memo *m);
bool memo_get(const struct memo *m, uint64_t key, int64_t *val);
/* False when not stored (full, or out of memory). */
bool memo_put(struct memo *m, uint64_t key, int64_t val);

/* ---- flame graph (flamegraph.c) ----
 * Weighted stacks in, a self-contained interactive SVG out. Names are indices into `strs`
 * (already escaped for display by esc_text; the writer escapes them for XML). */
struct fg_elem {
    uint32_t name, type;   /* type: the frame type's name, colours the frame */
};
struct fg_path {
    const struct fg_elem *e;   /* root first */
    size_t n;
    int64_t weight;
};
struct fg_options {
    const char *title, *subtitle;
    const char *count_name;    /* "samples", "nanoseconds", ... */
    unsigned width;            /* pixels */
};
/* 0, or -1 (out of memory, or a write error on out). */
int flamegraph_write(FILE *out, const char *const *strs, size_t n_strs, const struct fg_path *paths,
                     size_t n_paths, const struct fg_options *o);

#endif
