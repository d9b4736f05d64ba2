/*
 * otlp_http.h - the OTLP/HTTP binding: the routes of the HTTP port.
 *
 *   POST /v1development/profiles   ExportProfilesServiceRequest
 *   POST /v1/traces                ExportTraceServiceRequest
 *   GET  /healthz                  200 "ok" while serving; 503 and why during shutdown or
 *                                  while a sink cannot take requests
 *   GET  /metrics                  the application's counters in the Prometheus text format
 *                                  (when it passes a `metrics` function)
 *
 * Why a layer of its own: the HTTP server (server.h) knows requests and responses, the
 * decoders know protobuf; this file is the OTLP/HTTP specification between them - content
 * types (application/x-protobuf or application/json, the response in the request's), JSON
 * transcoded to protobuf (otlp/json.h) so there is one decoder, and the status codes: 200
 * with an Export*ServiceResponse (partial_success when something was rejected), 400 with a
 * google.rpc.Status for a bad payload, 415 for another content type, 503 + Retry-After when
 * a sink refuses. Errors the transport answers itself (404, 405, 408, 413, 415 for an
 * encoding) get a google.rpc.Status too when the request's content type says which encoding
 * the client reads.
 *
 * Decoding and delivering are the application's (cmd/serve.c): it passes two functions that
 * take the request as protobuf bytes, so the HTTP path ends in exactly the code the gRPC
 * path ends in. Counting is the application's too: this file tells it about the requests it
 * answered without decoding them (`refused`) and asks it for the /metrics page, but knows no
 * counter.
 */
#ifndef LB_H2_OTLP_HTTP_H
#define LB_H2_OTLP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2/server.h"
#include "otlp/decode.h"
#include "otlp/traces.h"

#define PROFILES_HTTP_PATH "/v1development/profiles"
#define HEALTH_HTTP_PATH "/healthz"
#define METRICS_HTTP_PATH "/metrics"

/* One OTLP/HTTP request, as the application sees it. */
struct otlp_http_call {
    const char *peer;
    const char *format;          /* "protobuf" or "json" (how it arrived) */
    const char *protocol;        /* "HTTP/1.1", "HTTP/1.0", "h2c" */
    bool compressed;             /* Content-Encoding: gzip */
    size_t wire_bytes;           /* the body as received */
    const uint8_t *message;      /* protobuf, decompressed (transcoded when it came as JSON) */
    size_t length;
    uint64_t started_ns;         /* when the route took it (lib/clock.h), before any JSON
                                  * transcoding: the request's duration runs from here */
};

/* An export request the route answered itself, without decoding it: a content type that is
 * not OTLP's (415), JSON that does not transcode (400), or whose protobuf form is too large
 * (413). */
struct otlp_http_refusal {
    const char *peer;
    enum otlp_signal signal;
    int status;                  /* the HTTP status answered */
    const char *kind;            /* "content_type", "json", "too_large" */
    size_t wire_bytes;           /* the body as received */
    size_t length;               /* ... and decompressed */
    uint64_t started_ns;
};

struct otlp_http_service {
    void (*profiles)(void *ud, const struct otlp_http_call *call, struct otlp_result *res);
    void (*traces)(void *ud, const struct otlp_http_call *call, struct otlp_trace_result *res);
    /* GET /healthz: NULL while healthy (200 "ok"), else why not (503 with the reason). */
    const char *(*unhealthy)(void *ud);
    /* For the application's counts; may be NULL. */
    void (*refused)(void *ud, const struct otlp_http_refusal *r);
    /* GET /metrics: appends the page (Prometheus text format 0.0.4) to `out`; 0, or -1 when
     * it could not be made whole (500). NULL: no /metrics route. */
    int (*metrics)(void *ud, struct buf *out);
    void *ud;
    size_t max_message_size;     /* the JSON transcoder's output limit */
    unsigned retry_after_s;      /* Retry-After of a 503 (0 = 1 s) */
};

/* Registers the routes and the error bodies on an H2_SERVER_HTTP server. `svc` must outlive
 * the server. 0 or -1. */
int otlp_http_register(struct h2_server *s, const struct otlp_http_service *svc);

/* google.rpc.Status{code, message} as protobuf (what OTLP/HTTP error bodies are). */
int otlp_http_encode_status(int code, const char *message, struct buf *out);

#endif
