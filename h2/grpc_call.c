/*
 * grpc_call.c - one gRPC unary call on an HTTP/2 stream (the gRPC port).
 *
 * Exists so that the session code (session.c) is protocol-neutral: it hands a gRPC stream's
 * headers, DATA bytes and end here. The length prefix is parsed by h2/grpc.c; a complete
 * request is inflated if needed, handed to the registered method synchronously, and answered
 * (reply + trailers, or a trailers-only error). Each message is bounded by max_message_size
 * (before and after gzip), all partially received messages together by max_inflight_bytes.
 */
#include "h2/internal.h"

#include "h2/auth.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gzip.h"
#include "lib/log.h"

#define ACCEPT_ENCODING "identity,gzip"
enum { ENCODED_MSG_LEN = 3 * sizeof(((struct grpc_reply *)0)->message) + 1 };

struct h2_method *find_method(struct h2_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

/* Copies a header value into a fixed field; an over-long value is cut (and so cannot match
 * anything the server knows, since registered paths are shorter than the field). */
static void copy_header(char *dst, size_t dstlen, const uint8_t *v, size_t vlen)
{
    size_t n = vlen < dstlen - 1 ? vlen : dstlen - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static bool header_is(const uint8_t *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

void grpc_stream_on_header(struct h2_stream *st, const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen)
{
    if (header_is(name, namelen, ":method"))
        copy_header(st->method, sizeof st->method, value, valuelen);
    else if (header_is(name, namelen, ":path"))
        copy_header(st->path, sizeof st->path, value, valuelen);
    else if (header_is(name, namelen, "content-type"))
        copy_header(st->ctype, sizeof st->ctype, value, valuelen);
    else if (header_is(name, namelen, "grpc-encoding"))
        copy_header(st->encoding, sizeof st->encoding, value, valuelen);
    else if (header_is(name, namelen, "authorization") && st->conn->srv->cfg.auth) {
        st->auth_headers++;
        st->authorized = h2_auth_check(st->conn->srv->cfg.auth, (const char *)value, valuelen);
    }
}

static enum h2_outcome outcome_of(enum grpc_status status)
{
    switch (status) {
    case GRPC_OK: return H2_OUT_OK;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_NOT_FOUND:
    case GRPC_UNIMPLEMENTED: return H2_OUT_INVALID;
    case GRPC_UNAUTHENTICATED: return H2_OUT_INVALID;
    case GRPC_RESOURCE_EXHAUSTED: return H2_OUT_EXHAUSTED;
    case GRPC_DEADLINE_EXCEEDED: return H2_OUT_TIMED_OUT;
    case GRPC_UNAVAILABLE: return H2_OUT_UNAVAILABLE;
    default: return H2_OUT_FAILED;
    }
}

/* Marks the stream answered (no more handler, no more buffering) and counts the reply, under
 * its method when the path is one. */
static void stream_finish(struct h2_stream *st, enum h2_outcome outcome)
{
    assert(!st->responded);
    st->responded = true;
    st->state = ST_DONE;
    stream_release_msg(st);
    struct h2_method *m = st->is_call ? find_method(st->conn->srv, st->path) : NULL;
    count_reply(st->conn->srv, m ? m->replies : NULL, outcome);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
/* Trailers-only error response (one HEADERS frame with END_STREAM). */
static void reply_error(struct h2_stream *st, enum grpc_status status, const char *fmt, ...)
{
    char reason[sizeof(((struct grpc_reply *)0)->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    log_info("grpc error: peer=%s path=%s status=%s: %s", st->conn->peer, st->path,
             grpc_status_name(status), reason);
    char code[16], enc[ENCODED_MSG_LEN];
    snprintf(code, sizeof code, "%d", (int)status);
    grpc_percent_encode(reason, enc, sizeof enc);
    nghttp2_nv nv[] = {
        NV(":status", "200"), NV("content-type", "application/grpc"),
        NV("grpc-accept-encoding", ACCEPT_ENCODING), NV("grpc-status", code),
        NV("grpc-message", enc),
    };
    size_t n = sizeof nv / sizeof nv[0] - (enc[0] ? 0 : 1);
    int rv = nghttp2_submit_response(st->conn->ng, st->id, nv, n, NULL);
    if (rv != 0)
        log_debug("peer=%s stream %d: submit_response: %s", st->conn->peer, (int)st->id,
                  nghttp2_strerror(rv));
    stream_finish(st, outcome_of(status));
}

/* Plain HTTP error for requests that are not gRPC at all (wrong method or content-type). */
static void reply_http(struct h2_stream *st, const char *status, const char *reason)
{
    log_info("http error: peer=%s path=%s status=%s: %s", st->conn->peer, st->path, status,
             reason);
    nghttp2_nv nv[] = { NV(":status", status), NV("allow", "POST") };
    size_t n = strcmp(status, "405") == 0 ? 2 : 1;
    nghttp2_submit_response(st->conn->ng, st->id, nv, n, NULL);
    stream_finish(st, H2_OUT_INVALID);
}

/* nghttp2 pulls the reply body from here; at its end the trailers are submitted. */
static ssize_t resp_read(nghttp2_session *ng, int32_t id, uint8_t *out, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud;
    struct h2_stream *st = src->ptr;
    assert(st->resp_off <= st->resp.len);
    size_t n = st->resp.len - st->resp_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(out, st->resp.data + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off < st->resp.len)
        return (ssize_t)n;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv nv[] = { NV("grpc-status", "0"),
                        NV("grpc-message", st->trailer_msg ? st->trailer_msg : "") };
    if (nghttp2_submit_trailer(ng, id, nv, st->trailer_msg ? 2 : 1) != 0)
        *flags &= ~(uint32_t)NGHTTP2_DATA_FLAG_NO_END_STREAM;   /* at least end the stream */
    return (ssize_t)n;
}

/* Success: HEADERS, one DATA frame (prefix + body), then trailers from resp_read(). */
static void reply_ok(struct h2_stream *st, const struct buf *body, const char *message)
{
    if (body->len > UINT32_MAX) {
        reply_error(st, GRPC_INTERNAL, "reply of %zu bytes does not fit a gRPC message", body->len);
        return;
    }
    uint32_t len = (uint32_t)body->len;
    uint8_t prefix[GRPC_PREFIX_LEN] = { 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                        (uint8_t)(len >> 8), (uint8_t)len };
    buf_init(&st->resp, GRPC_PREFIX_LEN + body->len);
    if (!buf_append(&st->resp, prefix, sizeof prefix) ||
        !buf_append(&st->resp, body->data, body->len)) {
        reply_error(st, GRPC_RESOURCE_EXHAUSTED, "server busy: out of memory for the reply");
        return;
    }
    if (message[0]) {
        st->trailer_msg = malloc(ENCODED_MSG_LEN);
        if (st->trailer_msg)
            grpc_percent_encode(message, st->trailer_msg, ENCODED_MSG_LEN);
    }
    nghttp2_nv nv[] = { NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-accept-encoding", ACCEPT_ENCODING) };
    nghttp2_data_provider prd = { .source = { .ptr = st }, .read_callback = resp_read };
    int rv = nghttp2_submit_response(st->conn->ng, st->id, nv, sizeof nv / sizeof nv[0], &prd);
    if (rv != 0)
        log_debug("peer=%s stream %d: submit_response: %s", st->conn->peer, (int)st->id,
                  nghttp2_strerror(rv));
    stream_finish(st, H2_OUT_OK);
}

/* Request headers are complete: decide whether this is a call we can take at all. */
void grpc_stream_on_request(struct h2_stream *st)
{
    struct h2_server *s = st->conn->srv;
    st->is_call = true;
    s->stats.calls++;
    /* Before anything else, so that a caller without a token learns nothing of the server
     * (not even which methods exist); health checks stay open. */
    const struct h2_method *m = find_method(s, st->path);
    if (s->cfg.auth && !(m && m->open) && !(st->auth_headers == 1 && st->authorized)) {
        s->stats.unauthenticated++;
        st->state = ST_UNAUTHENTICATED;
        return;
    }
    if (strcmp(st->method, "POST") != 0) {
        reply_http(st, "405", "method is not POST");
        return;
    }
    if (!grpc_content_type_ok(st->ctype)) {
        reply_http(st, "415", "content-type is not application/grpc");
        return;
    }
    st->handler = find_method(s, st->path);
    if (!st->handler) {
        reply_error(st, GRPC_UNIMPLEMENTED, "unknown method %s", st->path);
        return;
    }
    /* Like grpc-go: an encoding we cannot decode fails the call up front, whatever the
     * messages' flags say; the client learns what we accept from grpc-accept-encoding. */
    if (st->encoding[0] && strcmp(st->encoding, "identity") != 0 &&
        strcmp(st->encoding, "gzip") != 0) {
        reply_error(st, GRPC_UNIMPLEMENTED, "grpc-encoding %s is not supported (accepted: %s)",
                    st->encoding, ACCEPT_ENCODING);
        return;
    }
    st->state = ST_BODY;
}

/* A message prefix is complete: validate it before accepting any payload byte. */
static bool stream_on_prefix(struct h2_stream *st)
{
    const struct grpc_framer *f = &st->framer;
    size_t max = st->conn->srv->cfg.max_message_size;
    if (f->flag > 1) {
        reply_error(st, GRPC_INVALID_ARGUMENT, "invalid gRPC compressed flag %u", f->flag);
        return false;
    }
    if (f->length > max) {
        reply_error(st, GRPC_RESOURCE_EXHAUSTED, "message larger than max (%u vs. %zu bytes)",
                    (unsigned)f->length, max);
        return false;
    }
    /* A compressed message without a grpc-encoding saying how is the client's mistake, not
     * ours: INVALID_ARGUMENT (docs/receiving.md), so that it is not retried as a server
     * fault. */
    if (f->flag == 1 && strcmp(st->encoding, "gzip") != 0) {
        reply_error(st, GRPC_INVALID_ARGUMENT, "compressed flag set but grpc-encoding is \"%s\"",
                    st->encoding[0] ? st->encoding : "identity");
        return false;
    }
    buf_free(&st->msg);
    buf_init(&st->msg, f->length);
    return true;
}

/* Payload bytes: charged to the server-wide in-flight budget before they are kept. */
static bool stream_on_body(struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct h2_server *s = st->conn->srv;
    size_t limit = s->cfg.max_inflight_bytes;
    if (n > limit - s->inflight) {
        reply_error(st, GRPC_RESOURCE_EXHAUSTED,
                    "server busy: %zu bytes of partial messages in flight, limit %zu",
                    s->inflight, limit);
        return false;
    }
    if (!buf_append(&st->msg, p, n)) {
        reply_error(st, GRPC_RESOURCE_EXHAUSTED, "server busy: out of memory");
        return false;
    }
    s->inflight += n;
    st->held += n;
    return true;
}

/* DATA bytes of a stream, cut anywhere. */
/* A call without an accepted token is answered once its body has arrived (read and dropped,
 * nothing kept): answering at once would be followed by a reset of the stream (on_frame_send,
 * session.c), and some clients (curl 7.88) then lose the answer and report a broken stream
 * instead of UNAUTHENTICATED. A body longer than DISCARD_MAX_BYTES is answered at once. */
static void reply_unauthenticated(struct h2_stream *st)
{
    reply_error(st, GRPC_UNAUTHENTICATED, "%s",
                st->auth_headers == 0 ? "a bearer token is required (authorization: Bearer TOKEN)"
                : st->auth_headers > 1 ? "more than one authorization header"
                                       : "the bearer token is not accepted");
}

void grpc_stream_on_data(struct h2_stream *st, const uint8_t *p, size_t n)
{
    if (st->state == ST_UNAUTHENTICATED) {
        st->dropped += n;
        if (st->dropped > DISCARD_MAX_BYTES)
            reply_unauthenticated(st);
        return;
    }
    while (st->state == ST_BODY) {
        if (st->have_msg && n > 0) {
            reply_error(st, GRPC_INVALID_ARGUMENT,
                        "more than one request message in a unary call");
            return;
        }
        size_t used;
        enum grpc_step step = grpc_framer_step(&st->framer, p, n, &used);
        const uint8_t *chunk = p;
        p += used;
        n -= used;
        switch (step) {
        case GRPC_STEP_NEED_MORE:
            return;
        case GRPC_STEP_PREFIX:
            if (!stream_on_prefix(st))
                return;
            break;
        case GRPC_STEP_BODY:
            if (!stream_on_body(st, chunk, used))
                return;
            break;
        case GRPC_STEP_END:
            st->have_msg = true;
            break;
        }
    }
}

/* Inflates a gzip message into `out`; false (after answering) when that fails. */
static bool stream_inflate(struct h2_stream *st, struct buf *out)
{
    size_t max = st->conn->srv->cfg.max_message_size;
    char err[128];
    buf_init(out, max);
    switch (gzip_inflate(st->msg.data, st->msg.len, max, out, err, sizeof err)) {
    case GZIP_OK:
        return true;
    case GZIP_TOO_LARGE:
        reply_error(st, GRPC_RESOURCE_EXHAUSTED,
                    "message larger than %zu bytes after decompression", max);
        break;
    case GZIP_CORRUPT:
        reply_error(st, GRPC_INVALID_ARGUMENT, "gzip: %s", err);
        break;
    case GZIP_NOMEM:
        reply_error(st, GRPC_RESOURCE_EXHAUSTED, "server busy: out of memory");
        break;
    }
    buf_free(out);
    return false;
}

/* The request is complete: run the method and answer with its reply. */
static void stream_dispatch(struct h2_stream *st)
{
    struct h2_server *s = st->conn->srv;
    bool compressed = st->framer.flag == 1;
    struct buf inflated;
    buf_init(&inflated, 0);
    if (compressed && !stream_inflate(st, &inflated))
        return;
    const struct buf *m = compressed ? &inflated : &st->msg;
    struct grpc_call call = {
        .path = st->path,
        .message = m->data ? m->data : (const uint8_t *)"",
        .length = m->len,
        .wire_bytes = st->msg.len,
        .compressed = compressed,
        .peer = st->conn->peer,
    };
    struct grpc_reply reply;
    reply.status = GRPC_OK;
    reply.message[0] = '\0';
    buf_init(&reply.body, s->cfg.max_message_size);
    st->handler->fn(st->handler->ud, &call, &reply);
    conn_depend(st->conn);
    buf_free(&inflated);
    reply.message[sizeof reply.message - 1] = '\0';   /* whatever the handler did */
    if (reply.status != GRPC_OK)
        reply_error(st, reply.status, "%s", reply.message);
    else
        reply_ok(st, &reply.body, reply.message);
    buf_free(&reply.body);
}

/* The client half-closed the stream: the request is whatever arrived. */
void grpc_stream_on_end(struct h2_stream *st)
{
    if (st->state == ST_UNAUTHENTICATED)
        reply_unauthenticated(st);
    if (st->state != ST_BODY)
        return;
    bool in_prefix;
    size_t got, want;
    if (grpc_framer_partial(&st->framer, &in_prefix, &got, &want))
        reply_error(st, GRPC_INVALID_ARGUMENT, "truncated gRPC message%s: got %zu of %zu bytes",
                    in_prefix ? " prefix" : "", got, want);
    else if (!st->have_msg)
        reply_error(st, GRPC_INVALID_ARGUMENT, "no request message");
    else
        stream_dispatch(st);
}

/* The request did not arrive within the request timeout (a client trickling its message). */
void grpc_stream_timeout(struct h2_stream *st, unsigned timeout_ms)
{
    if (st->responded)
        return;
    if (!st->is_call) {   /* headers never completed: nothing to answer, just reset */
        nghttp2_submit_rst_stream(st->conn->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        return;
    }
    if (st->state == ST_UNAUTHENTICATED) {   /* the refusal it was owed, now */
        reply_unauthenticated(st);
        return;
    }
    reply_error(st, GRPC_DEADLINE_EXCEEDED, "request not received within %u ms (%zu bytes of message received)",
                timeout_ms, st->msg.len);
}
