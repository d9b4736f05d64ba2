/*
 * forward.h - the forward sink: a tap that passes every accepted request on, byte for byte,
 * to an upstream OTLP endpoint (an OpenTelemetry Collector, Pyroscope, another lazybackend),
 * over gRPC or OTLP/HTTP, profiles and traces alike.
 *
 * It sends the request's decoded protobuf message (lb_request.message) and never parses it;
 * filters shape what the other sinks show and store, not what is forwarded. Delivery is
 * asynchronous on the event loop (lib/http_post.h) behind a bounded queue and, by default, a
 * write-ahead log (sinks/wal.h): a request is acknowledged to its sender only once it is on
 * disk, and the log is replayed in order by the next start. docs/forward.md tells the rest.
 */
#ifndef LB_SINKS_FORWARD_H
#define LB_SINKS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

#define FORWARD_MAX_HEADERS 16

enum forward_protocol { FORWARD_GRPC, FORWARD_HTTP };
enum forward_durability { FORWARD_DURABILITY_WAL, FORWARD_DURABILITY_MEMORY };
enum forward_compression { FORWARD_GZIP, FORWARD_NONE };

/* The default log directory outside systemd (under it: $STATE_DIRECTORY/forward-spool). */
#define FORWARD_DEFAULT_SPOOL_DIR "./lazybackend-forward-spool"

struct forward_sink_options {
    const char *url;                 /* http://HOST:PORT or https://...; OTLP/HTTP: the base URL */
    enum forward_protocol protocol;
    const char *headers[FORWARD_MAX_HEADERS];   /* "Name: value" */
    size_t n_headers;
    enum forward_compression compression;
    const char *ca_file;             /* https://: the CAs to trust; NULL: the system's */
    uint64_t timeout_ms;             /* one attempt */
    enum forward_durability durability;
    const char *spool_dir;           /* NULL: FORWARD_DEFAULT_SPOOL_DIR */
    uint64_t spool_max_bytes;        /* the log's cap */
    uint64_t max_queue_bytes;        /* requests kept in memory; the log holds the rest */
};

void forward_sink_defaults(struct forward_sink_options *o);
/* Checks what can be checked before anything is opened (the URL's scheme, the headers). */
int forward_check_options(const struct forward_sink_options *o, char *err, size_t errlen);
/* Needs env->loop; registers on env->commit when given. */
int forward_sink_open(struct sink *out, const struct forward_sink_options *o, const struct sink_env *env, char *err,
                      size_t errlen);

struct forward_sink_stats {
    uint64_t queued;                 /* requests accepted (acknowledged once synced) */
    uint64_t delivered;              /* accepted by the upstream */
    uint64_t retried;                /* attempts that failed and were retried */
    uint64_t rejected;               /* permanently refused by the upstream: logged, dropped */
    uint64_t refused_full;           /* requests refused: queue or log full */
    uint64_t failed;                 /* requests refused: the log could not be written */
    uint64_t replayed;               /* left in the log by an earlier run */
    uint64_t unreadable;             /* records of the log that could not be read back */
    uint64_t lost;                   /* acknowledged, neither delivered nor kept (memory mode) */
    uint64_t pending;                /* requests not yet delivered (gauge) */
    uint64_t memory_bytes;           /* of them in memory (gauge) */
    uint64_t wal_bytes;              /* the log's size (gauge) */
    uint64_t wal_max_bytes;
};

/* -1 when `sk` is not a forward sink. */
int forward_sink_stats(const struct sink *sk, struct forward_sink_stats *out);

#endif
