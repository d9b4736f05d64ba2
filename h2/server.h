/*
 * server.h - the gRPC server: cleartext HTTP/2 (prior knowledge) on the event loop.
 *
 * This layer knows sockets, HTTP/2 and gRPC framing; it knows nothing of OTLP. A unary method
 * is a path plus a handler: the server assembles the length-prefixed request message from
 * DATA frames, inflates it when it is gzip-compressed (bounded by max_message_size), calls
 * the handler synchronously, and answers with the handler's reply message and the
 * grpc-status / grpc-message trailers. Errors of the transport itself (unknown method,
 * malformed framing, too large, unsupported encoding) are answered here without calling any
 * handler.
 */
#ifndef LB_H2_SERVER_H
#define LB_H2_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct loop;
struct h2_server;

/* gRPC status codes used by this project (grpc/doc/statuscodes.md). */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

struct grpc_call {
    const char *path;        /* ":path", e.g. "/opentelemetry...ProfilesService/Export" */
    const uint8_t *message;  /* the request message, decompressed */
    size_t length;
    size_t wire_bytes;       /* the message as it arrived (compressed size when gzip) */
    bool compressed;
    const char *peer;        /* "127.0.0.1:53412" */
};

struct grpc_reply {
    enum grpc_status status;
    char message[1024];      /* grpc-message; percent-encoded by the server when sent */
    struct buf body;         /* serialized response message (sent only when status is OK) */
};

typedef void (*grpc_method_fn)(void *ud, const struct grpc_call *call, struct grpc_reply *reply);

struct h2_server_config {
    const char *address;          /* "127.0.0.1:4317", "[::1]:4317", "0.0.0.0:4317" */
    size_t max_message_size;      /* per message, compressed and decompressed */
    size_t max_inflight_bytes;    /* all partially received messages together */
    unsigned max_connections;
    unsigned max_concurrent_streams;  /* per connection, announced in SETTINGS */
    unsigned idle_timeout_ms;     /* close a connection idle this long (0 = never) */
};

struct h2_stats {
    uint64_t connections_accepted, connections_open, connections_refused;
    uint64_t calls, calls_ok, calls_failed;
    uint64_t bytes_received;
    uint64_t calls_abandoned;   /* part of calls_failed: the client left before the reply */
};

struct h2_server *h2_server_new(struct loop *loop, const struct h2_server_config *cfg);
int h2_server_add_method(struct h2_server *s, const char *path, grpc_method_fn fn, void *ud);
/* Bind and listen; on failure `err` says why (e.g. "127.0.0.1:4317: Address in use"). */
int h2_server_listen(struct h2_server *s, char *err, size_t errlen);
/* The bound address (useful with port 0), e.g. "127.0.0.1:40123". */
const char *h2_server_address(const struct h2_server *s);
/* Graceful shutdown, step 1: close the listener, send GOAWAY on every connection; calls in
 * flight complete. */
void h2_server_shutdown(struct h2_server *s);
/* True when no connection has a call in flight or output pending. */
bool h2_server_drained(const struct h2_server *s);
const struct h2_stats *h2_server_stats(const struct h2_server *s);
void h2_server_free(struct h2_server *s);

#endif
