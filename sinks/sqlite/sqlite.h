/*
 * sqlite.h - the SQLite sink: every request kept in one local database file, for asking
 * questions afterwards (`lazybackend top|folded|flamegraph`, or plain SQL).
 *
 * Requests are written in batches: one transaction holds many requests, each in a savepoint
 * (rolled back alone on request_abort or failure), so the file only ever holds whole requests.
 * A batch is committed before any of its requests is acknowledged: in `serve` at the end of
 * the loop turn, through the group commit (lib/commit.h) that holds the replies until then;
 * in `decode` at a bound (SQLITE_SINK_BATCH_*) and at close (writer_batch.c). Strings, frames,
 * stacks and attribute sets are stored once per database (found again by content), so the
 * file grows with distinct stacks and with samples' timestamps, not with repeated stacks.
 * docs/sqlite.md describes the schema, the durability choice and the figures.
 */
#ifndef LB_SINKS_SQLITE_H
#define LB_SINKS_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/histogram.h"
#include "sinks/sink.h"

enum sqlite_sync {
    SQLITE_SINK_SYNC_FULL,     /* fsync the WAL at every commit: acknowledged = on disk */
    SQLITE_SINK_SYNC_NORMAL,   /* no fsync at commit: survives kill -9, not a power cut */
};

struct sqlite_sink_options {
    const char *path;           /* created when missing; NULL = "lazybackend.db" */
    enum sqlite_sync sync;
    unsigned batch_requests;    /* requests per transaction at most; 0 = SQLITE_SINK_BATCH_REQUESTS */
};

#define SQLITE_SINK_DEFAULT_PATH "lazybackend.db"

/* A batch is committed when it holds this many requests, this many bytes of messages, or is
 * this old at the end of a request (whichever comes first; in `serve` also at the end of
 * every loop turn). */
#define SQLITE_SINK_BATCH_REQUESTS 256
#define SQLITE_SINK_BATCH_BYTES ((uint64_t)32 << 20)
#define SQLITE_SINK_BATCH_MS 1000

/* Opens (creates, upgrades) the database and fills out->type and out->ctx; with env->commit
 * (serve) the sink joins the group commit, env may be NULL (decode). 0, or -1 with the
 * reason in err (cannot open, newer schema, not a lazybackend database, ...). The sink's close
 * finishes the database. */
int sqlite_sink_open(struct sink *out, const struct sqlite_sink_options *o, const struct sink_env *env,
                     char *err, size_t errlen);

/* What the sink did since it was opened, for /metrics: requests committed (with their batch)
 * and rolled back (alone, or with a lost batch), and how long each batch's COMMIT took (nanoseconds; with --sqlite-sync full, the fsync). */
struct sqlite_sink_stats {
    uint64_t committed, rolled_back;
    struct histogram commit_ns;
};

/* 0 and the statistics when `s` is a SQLite sink; -1 (zeroes) otherwise. */
int sqlite_sink_stats(const struct sink *s, struct sqlite_sink_stats *out);

/* `lazybackend top|folded|flamegraph ...` over a database (query.c): argv holds the command's
 * own arguments (argv[0] is the first option). Returns the process exit status. */
int sqlite_query_main(const char *command, int argc, char **argv);

/* The reader behind them: fills the store-independent result for the options (o->db, the
 * filters, the time window) from a database opened read-only. 0, or -1 with r->err set. */
struct qopts;
struct qresult;
int sqlite_query_load(const struct qopts *o, struct qresult *r);

#endif
