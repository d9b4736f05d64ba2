/*
 * http_post.h - one HTTP POST at a time on libcurl's multi interface, driven by the event
 * loop: the client of the clients that must never block the thread they share (the usdt
 * bridge's exporter reading bpftrace, the forward sink beside the gRPC server).
 *
 * libcurl says which sockets to watch and when to call it back: its sockets go on the loop,
 * its timeout is a loop timer. One easy handle is reused, so the connection is kept alive
 * between requests (HTTP/2 too). http_post_poll drives the same sockets with poll(2) when the
 * loop no longer runs (a final flush at shutdown).
 *
 * HTTP/2 for gRPC: prior knowledge on http:// (h2c), ALPN on https://. The response's headers
 * and trailers (grpc-status arrives in the trailers) are kept and looked up by name. Loopback
 * never goes through a proxy. "Expect: 100-continue" is never sent: curl would wait up to a
 * second for the interim answer before sending a large body.
 */
#ifndef LB_HTTP_POST_H
#define LB_HTTP_POST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct http_post;

struct http_post_options {
    const char *user_agent;
    const char *const *headers;   /* "Name: value" lines sent with every request */
    size_t n_headers;
    bool http2;                   /* HTTP/2 only (gRPC) */
    size_t max_answer;            /* body bytes kept; a larger answer is an error (too_large) */
    long connect_timeout_ms;      /* 0: libcurl's default */
    const char *ca_file;          /* https://: the CAs to trust (PEM); NULL: the system's */
    const char *user, *password;  /* HTTP Basic authentication when user is set and not "" */
};

struct http_post_result {
    long status;                  /* HTTP status, 0 when none came */
    int curl_code;                /* CURLE_OK (0) or why the transfer failed */
    const char *error;            /* "" or curl's words */
    const uint8_t *body;          /* followed by a NUL byte, not counted: a C string when the */
    size_t body_len;              /* answer holds none of its own */
    long retry_after_s;           /* Retry-After, 0 when none */
    bool too_large;               /* the answer passed max_answer */
};

/* The result's pointers are valid during the callback only. */
typedef void (*http_post_done_fn)(void *ud, const struct http_post_result *r);

/* NULL with err. Nothing is sent before http_post_start. */
struct http_post *http_post_new(struct loop *loop, const struct http_post_options *o, http_post_done_fn done,
                                void *ud, char *err, size_t errlen);
void http_post_free(struct http_post *h);
/* Starts one POST of `body` (valid until done is called) to `url`; none may be running. done
 * is called from the loop (or from http_post_poll). 0 or -1. */
int http_post_start(struct http_post *h, const char *url, const void *body, size_t len, uint64_t timeout_ms);
/* The same for a gzip'd body: sent with Content-Encoding: gzip besides the options' headers. */
int http_post_start_gzip(struct http_post *h, const char *url, const void *body, size_t len, uint64_t timeout_ms);
bool http_post_busy(const struct http_post *h);
/* Abandons the request in flight: done is not called. */
void http_post_cancel(struct http_post *h);
/* Without the loop: waits up to timeout_ms on the sockets or curl's timer and lets curl
 * progress; done may be called from here. */
void http_post_poll(struct http_post *h, int timeout_ms);
/* A header or trailer of the last answer (the last one of that name; names are compared
 * without case), NUL-terminated, valid until the next start; NULL when absent. */
const char *http_post_header(const struct http_post *h, const char *name);
/* Whether a retry could help: a connection or transfer failure, 429, 502, 503, 504. */
bool http_post_retryable(const struct http_post_result *r);

#endif
