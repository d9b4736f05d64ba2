/*
 * server.h - the gRPC and HTTP server: cleartext HTTP/2 (and HTTP/1.1) on the event loop.
 *
 * This layer knows sockets, HTTP/2 and gRPC framing; it knows nothing of OTLP. A unary method
 * is a path plus a handler: the server assembles the length-prefixed request message from
 * DATA frames, inflates it when it is gzip-compressed (bounded by max_message_size), calls
 * the handler synchronously, and answers with the handler's reply message and the
 * grpc-status / grpc-message trailers. Errors of the transport itself (unknown method,
 * malformed framing, too large, unsupported encoding) are answered here without calling any
 * handler.
 *
 * The same server, created with H2_SERVER_HTTP, is the OTLP/HTTP port: HTTP/1.1 (keep-alive,
 * Content-Length and chunked bodies, Expect: 100-continue) and h2c (prior knowledge, or an
 * HTTP/1.1 "Upgrade: h2c") on one port, with plain HTTP routes instead of gRPC methods. The
 * HTTP/2 session code is the one the gRPC port uses.
 */
#ifndef LB_H2_SERVER_H
#define LB_H2_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct loop;
struct h2_server;
struct h2_tls;
struct h2_auth;

/* gRPC status codes used by this project (grpc/doc/statuscodes.md). */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_UNAUTHENTICATED = 16,
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

/* What a server speaks on its port. */
enum h2_server_protocol {
    H2_SERVER_GRPC,   /* HTTP/2 with prior knowledge; gRPC unary methods (h2_server_add_method) */
    H2_SERVER_HTTP,   /* HTTP/1.1 and h2c (prior knowledge or "Upgrade: h2c") on one port;
                       * plain HTTP routes (h2_server_add_route) */
};

struct h2_server_config {
    const char *address;          /* "127.0.0.1:4317", "[::1]:4317", "0.0.0.0:4317" */
    enum h2_server_protocol protocol;
    unsigned request_timeout_ms;  /* a request (headers and body) must arrive whole within
                                   * this, or it is cut off (0 = 60 s) */
    size_t max_message_size;      /* per message, compressed and decompressed */
    size_t max_inflight_bytes;    /* all partially received messages together */
    unsigned max_connections;
    unsigned max_concurrent_streams;  /* per connection, announced in SETTINGS */
    unsigned idle_timeout_ms;     /* close a connection idle this long (0 = never) */
    struct commit *commit;        /* lib/commit.h: output waits until the commit generation it
                                   * depends on is synced; when that sync fails, the connection
                                   * is closed unanswered. NULL: replies go out at once. */
    struct h2_tls *tls;           /* TLS on this port (tls.h), or NULL: cleartext */
    const struct h2_auth *auth;   /* bearer tokens every request must carry (auth.h), except
                                   * on paths made public; NULL = none asked */
    unsigned max_connections_per_ip;  /* from one IPv4 address or IPv6 /64 (0 = 128) */
};

/* A reply's outcome, as the shutdown summary and /metrics count replies. From a gRPC status
 * or an HTTP status: OK / 2xx; INVALID_ARGUMENT, UNIMPLEMENTED, NOT_FOUND / other 4xx;
 * RESOURCE_EXHAUSTED / 413, 431 (too large, or the server busy); DEADLINE_EXCEEDED / 408;
 * UNAVAILABLE / 503; anything else (INTERNAL, other 5xx). */
enum h2_outcome {
    H2_OUT_OK, H2_OUT_INVALID, H2_OUT_EXHAUSTED, H2_OUT_TIMED_OUT, H2_OUT_UNAVAILABLE, H2_OUT_FAILED,
    H2_OUTCOMES
};
/* "ok", "invalid", "exhausted", "timed_out", "unavailable", "failed" */
const char *h2_outcome_name(enum h2_outcome o);

struct h2_stats {
    uint64_t connections_accepted, connections_open, connections_refused;
    uint64_t replies[H2_OUTCOMES];   /* every reply sent, by outcome (calls_ok + calls_failed) */
    uint64_t calls, calls_ok, calls_failed;
    uint64_t bytes_received;
    uint64_t calls_abandoned;   /* part of calls_failed: the client left before the reply */
    uint64_t requests_timed_out;   /* HTTP/1.1 requests cut off by the request timeout */
    uint64_t tls_handshake_failures;   /* connections whose TLS handshake failed */
    uint64_t unauthenticated;      /* requests refused for a missing or wrong bearer token */
    /* Connections that made no progress (docs/receiving.md): */
    uint64_t connections_refused_per_ip;   /* max_connections_per_ip open, none evictable */
    uint64_t connections_evicted;          /* closed to make room for a newcomer */
    uint64_t setup_timeouts;        /* no HTTP/2 preface and SETTINGS within the request timeout */
    uint64_t idle_closed;           /* no progress for idle_timeout_ms */
    uint64_t goaway_pings;          /* GOAWAY ENHANCE_YOUR_CALM: too many PINGs */
    uint64_t goaway_no_progress;    /* GOAWAY ENHANCE_YOUR_CALM: too many frames without progress */
};

/* ---- HTTP routes (H2_SERVER_HTTP) ----
 * The transport checks the path (404), the method (405 with Allow), the size (413, before
 * and after gzip), the Content-Encoding (identity or gzip, else 415) and the time the
 * request takes to arrive (408); the handler sees only complete, decompressed requests. */
struct http_request {
    const char *method;           /* "POST", "GET", ... */
    const char *path;             /* without the query string */
    const char *query;            /* after '?' (before any '#'), as sent; "" when none */
    const char *content_type;     /* "" when absent */
    const uint8_t *body;          /* decompressed */
    size_t length;
    size_t wire_bytes;            /* the body as received */
    bool compressed;              /* it came with Content-Encoding: gzip */
    const char *peer;
    const char *protocol;         /* "HTTP/1.1", "HTTP/1.0" or "h2c" */
};

enum { HTTP_MAX_RESPONSE_HEADERS = 8 };

struct http_header {
    char name[32];
    char value[256];
};

struct h2_push;

struct http_response {
    int status;
    char content_type[64];        /* with no body, may stay empty */
    unsigned retry_after;         /* seconds; 0 = no Retry-After header */
    char www_authenticate[96];    /* WWW-Authenticate (401), or empty */
    struct buf body;              /* limited to max_message_size */
    struct http_header headers[HTTP_MAX_RESPONSE_HEADERS];   /* more, set by the handler */
    unsigned n_headers;
    struct h2_push *push;         /* set by h2_push_open: the response stays open */
};

/* Adds a response header (http_response_header); false when it does not fit (too many, too
 * long, or a byte that would break the header block: CR, LF, NUL). */
bool http_response_header(struct http_response *r, const char *name, const char *value);

/* ---- long-lived responses ("push"), e.g. Server-Sent Events ----
 * A handler that calls h2_push_open keeps its 200 response open after the body it wrote: the
 * transport sends the headers and that body at once (HTTP/1.1 chunked, or an h2 stream left
 * open), and the application appends more with h2_push_write whenever it likes, until it ends
 * the response with h2_push_close or the client goes away. The transport knows nothing of
 * what is pushed.
 *   - `gone` is called exactly once if the response ends without h2_push_close: the client
 *     closed the connection or the stream, the server shuts down, the request was a HEAD or
 *     HTTP/1.0, or the transport could not send the headers. After it the handle is freed:
 *     the application must forget it. It is never called from inside h2_push_write or
 *     h2_push_close, but may be called right after the handler returns.
 *   - h2_push_write queues bytes (never blocks); false when the client does not read fast
 *     enough (more than H2_PUSH_MAX_PENDING unsent) or the response is over: the application
 *     should then h2_push_close it.
 *   - An HTTP/1.1 connection carrying a push serves nothing else and closes after it. */
enum { H2_PUSH_MAX_PENDING = 1024 * 1024 };
typedef void (*h2_push_gone_fn)(void *ud, struct h2_push *p);
/* NULL when out of memory (the response is then an ordinary one). */
struct h2_push *h2_push_open(struct http_response *resp, h2_push_gone_fn gone, void *ud);
bool h2_push_write(struct h2_push *p, const void *data, size_t n);
/* Ends the response; the handle is freed. */
void h2_push_close(struct h2_push *p);

/* ---- deferred responses: answered later from the loop ----
 * A handler that calls h2_defer_open sends nothing when it returns: the application fills the
 * response later (h2_defer_response: status, headers, body, as a handler would) and sends it
 * with h2_defer_send, e.g. once an upstream answered. The handle is a push (the same `gone`
 * rules: called exactly once if the client leaves, the server shuts down or the transport
 * cannot carry it; the handle is then freed and must be forgotten; never from inside
 * h2_defer_send). h2_push_write/h2_push_close do not apply to it. On HTTP/1.1 the connection
 * serves nothing else meanwhile and closes after the response; on h2 other streams go on.
 * At shutdown, h2 answers 503 for the application (after `gone`). */
struct h2_push *h2_defer_open(struct http_response *resp, h2_push_gone_fn gone, void *ud);
/* The response to fill; valid until h2_defer_send or `gone`. */
struct http_response *h2_defer_response(struct h2_push *p);
/* Sends the response; the handle is freed. Not from inside the handler. */
void h2_defer_send(struct h2_push *p);

typedef void (*http_handler_fn)(void *ud, const struct http_request *req, struct http_response *resp);
/* Fills the body of an error the transport answers itself (status 4xx/5xx, message for a
 * human). `req` has the request headers (no body). Without one, errors are text/plain. */
typedef void (*http_error_fn)(void *ud, const struct http_request *req, int status,
                              const char *message, struct http_response *resp);

struct h2_server *h2_server_new(struct loop *loop, const struct h2_server_config *cfg);
/* `method` is "POST", "GET", ... (a GET route answers HEAD too); one handler per pair. */
int h2_server_add_route(struct h2_server *s, const char *method, const char *path,
                        http_handler_fn fn, void *ud);
void h2_server_set_error_body(struct h2_server *s, http_error_fn fn, void *ud);
int h2_server_add_method(struct h2_server *s, const char *path, grpc_method_fn fn, void *ud);
/* The method or routes at `path` need no bearer token even when the server asks for one
 * (health checks). -1 when nothing is registered there. */
int h2_server_make_public(struct h2_server *s, const char *path);
/* 1 when a listen address ("127.0.0.1:4317", "[::1]:4317", "localhost:4317") is loopback
 * (127.0.0.0/8, ::1), 0 when it is another address, -1 when it is not one the server takes. */
int h2_address_loopback(const char *address);
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
/* Replies to requests for `path` (a gRPC method, or the routes of an HTTP path whatever their
 * method), by outcome, added to `out`. Replies to no registered method or route (404, 405,
 * unusable requests) are only in h2_stats.replies. */
void h2_server_path_replies(const struct h2_server *s, const char *path, uint64_t out[H2_OUTCOMES]);
/* Bytes of partially received request bodies held now (counted against max_inflight_bytes). */
size_t h2_server_inflight_bytes(const struct h2_server *s);
void h2_server_free(struct h2_server *s);

#endif
