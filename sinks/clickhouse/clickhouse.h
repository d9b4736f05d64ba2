/*
 * clickhouse.h - the ClickHouse sink: the scale-out store, asynchronous and loss-free.
 *
 * Samples go to ClickHouse's HTTP interface in batches (gzip'd RowBinary, or plain), with frames, stacks
 * and resources stored once by content hash (schema and queries: docs/clickhouse.md). By
 * default a request is acknowledged once its rows are in the write-ahead log and synced (the
 * group commit, lib/commit.h); the log is read back for batches memory cannot hold, after a
 * crash, and after a shutdown ClickHouse did not let finish; a batch that may have arrived
 * already is counted by batch_id first (exactly once). Requests are refused (UNAVAILABLE) only
 * when the log is full or failing. Memory mode (--clickhouse-durability memory) acknowledges
 * once the rows are queued in memory (with an optional spool): lossy in a crash.
 */
#ifndef LB_SINKS_CLICKHOUSE_H
#define LB_SINKS_CLICKHOUSE_H

#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

/* Whether an acknowledged request survives a crash. */
enum clickhouse_durability {
    CLICKHOUSE_DURABILITY_WAL,     /* written and fdatasync'ed to the write-ahead log first */
    CLICKHOUSE_DURABILITY_MEMORY,  /* queued in memory (and the spool when given): lossy */
};

/* Whether insert bodies are gzip'd. gzip is the default even towards a ClickHouse on the same
 * host: 18.16 spent more CPU taking the same rows plain than inflating them
 * (docs/bench-clickhouse.md), and plain batches hold ~50x the memory in the queue. */
enum clickhouse_compression {
    CLICKHOUSE_COMPRESSION_GZIP,   /* level 1, Content-Encoding: gzip */
    CLICKHOUSE_COMPRESSION_NONE,   /* RowBinary as it is */
};

struct clickhouse_sink_options {
    const char *url;              /* http://host:port (a path prefix is kept); default below */
    const char *database;         /* an identifier: [A-Za-z_][A-Za-z0-9_]* */
    const char *user, *password;  /* NULL: ClickHouse's default user */
    unsigned batch_rows;          /* seal a batch at this many sample rows */
    unsigned flush_interval_ms;   /* ... or this long after its first row */
    size_t max_queue_bytes;       /* memory for batches not yet sent */
    enum clickhouse_durability durability;
    const char *spool_dir;        /* the log's (or memory mode's spool) directory; NULL: the
                                   * log goes to CLICKHOUSE_DEFAULT_SPOOL_DIR, memory mode
                                   * has no spool */
    uint64_t spool_max_bytes;     /* refuse new requests once the log/spool holds this much */
    unsigned request_timeout_ms;  /* one HTTP request to ClickHouse */
    enum clickhouse_compression compression;
};

#define CLICKHOUSE_DEFAULT_URL "http://127.0.0.1:8123"
#define CLICKHOUSE_DEFAULT_DATABASE "otel"
#define CLICKHOUSE_DEFAULT_BATCH_ROWS 20000u
#define CLICKHOUSE_DEFAULT_FLUSH_INTERVAL_MS 1000u
#define CLICKHOUSE_DEFAULT_MAX_QUEUE_BYTES ((size_t)64 << 20)
#define CLICKHOUSE_DEFAULT_SPOOL_MAX_BYTES ((uint64_t)1 << 30)
#define CLICKHOUSE_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define CLICKHOUSE_DEFAULT_SPOOL_DIR "lazybackend-spool"   /* relative to the working directory */

/* Fills the defaults. */
void clickhouse_sink_defaults(struct clickhouse_sink_options *o);



/* Fills out->type and out->ctx. The sink registers its sockets and timers on env->loop (which
 * may be a loop that never runs, as in `lazybackend decode`: then everything is sent by
 * close). The database and tables are created asynchronously, right after the loop starts.
 * 0, or -1 with err (bad options, spool directory unusable). */
int clickhouse_sink_open(struct sink *out, const struct clickhouse_sink_options *o, const struct sink_env *env,
                         char *err, size_t errlen);

/* What the sink did since it was opened (its shutdown log line says the same): requests
 * whose rows were queued, refused (full) or failed (the open batch's limit, out of memory);
 * batches sealed, sent (every part accepted), retried (at least one failed attempt), spooled
 * (written to disk), replayed (read back from the spool), quarantined (unreadable spool
 * files set aside); failed HTTP attempts; sample rows and compressed bytes ClickHouse
 * accepted. */
struct clickhouse_counts {
    uint64_t requests_queued, requests_refused, requests_failed;
    uint64_t requests_refused_full;      /* of requests_refused: the log's byte cap */
    uint64_t duplicates_skipped;         /* batches found already stored, not sent again */
    uint64_t lost_batches, lost_rows;    /* acknowledged, then neither delivered nor kept */
    uint64_t batches_sealed, batches_sent, rows_sent, bytes_sent;
    uint64_t attempts_failed, batches_retried, batches_spooled, batches_replayed, batches_quarantined;
};

/* The counts, and what the sink holds now, for /metrics: sample rows and bytes in memory
 * (sealed batches compressed, the open batch uncompressed) and the queue's limit; the spool's
 * batches, bytes and limit (0 without a spool). */
struct clickhouse_sink_stats {
    struct clickhouse_counts counts;
    uint64_t queue_rows, queue_bytes, queue_max_bytes;
    uint64_t spool_batches, spool_bytes, spool_max_bytes;
    /* the write-ahead log (zeroes in memory mode) */
    uint64_t wal_bytes, wal_records, wal_segments, wal_max_bytes, wal_syncs, wal_sync_failures;
};

/* 0 and the statistics when `s` is a ClickHouse sink; -1 (zeroes) otherwise. */
int clickhouse_sink_stats(const struct sink *s, struct clickhouse_sink_stats *out);

/* The reader behind `lazybackend top|folded|flamegraph --clickhouse-url` (query.c): fills the
 * store-independent result for the options from the sink's tables. 0, or -1 with r->err set. */
struct qopts;
struct qresult;
int clickhouse_query_load(const struct qopts *o, struct qresult *r);

/* The reader behind `lazybackend export --clickhouse-url` (export.c): the sink's rows played
 * back as profiles events (sinks/replay.h), filtered by export's options. open asks the server
 * and takes o's --where keys over: 0 with *out set, else 1 (the reason on stderr). next emits
 * the next request: 1 emitted, 0 no more, -1 error (clickhouse_replay_error). */
struct clickhouse_replay;
struct otlp_consumer;
int clickhouse_replay_open(struct qopts *o, struct clickhouse_replay **out);
int clickhouse_replay_next(struct clickhouse_replay *r, struct otlp_consumer c);
const char *clickhouse_replay_error(const struct clickhouse_replay *r);
void clickhouse_replay_close(struct clickhouse_replay *r);

#endif
