/*
 * replay.h - what `lazybackend export` reads from a SQLite store: the stored requests played
 * back as profiles events (otlp/events.h), with the query commands' filters, and the export
 * options parsed with theirs (query_args.c). The command (cmd/export.c) does the writing;
 * the store only replays, and knows nothing of the formats it is written in. The options
 * (struct export_opts) are sinks/query/query.h's.
 */
#ifndef LB_SINKS_SQLITE_REPLAY_H
#define LB_SINKS_SQLITE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "otlp/events.h"
#include "sinks/query/query.h"

/* Replays the stored requests that pass the filters (--since, --until, --where,
 * --sample-type, --frame-type): one request_begin..request_end per stored request that keeps
 * any sample; without filters every stored request whole, empty resources and profiles too. */
struct sqlite_replay;

/* Opens the database export's options name (o->db, or the default): the replay takes o's
 * --where keys over. 0 with *out set; otherwise 1 (the reason on stderr). */
int sqlite_replay_open(struct qopts *o, struct sqlite_replay **out);

/* Emits the next stored request into c: 1 emitted, 0 no more, -1 error (sqlite_replay_error). */
int sqlite_replay_next(struct sqlite_replay *r, struct otlp_consumer c);
const char *sqlite_replay_error(const struct sqlite_replay *r);
void sqlite_replay_close(struct sqlite_replay *r);

#endif
