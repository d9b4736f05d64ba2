/*
 * server.c - the gRPC-over-cleartext-HTTP/2 server behind server.h.
 *
 * Exists because the backend must take OTLP Export calls from agents that speak insecure
 * gRPC (HTTP/2 with prior knowledge), without threads and without letting any peer make the
 * process allocate without bound. Shape:
 *
 *   listener --accept--> conn (one nghttp2 server session, one output buffer)
 *                        `-- stream (one gRPC call: headers, framer, message buffer, reply)
 *
 * nghttp2 is used purely as a state machine: bytes read from the socket go into
 * nghttp2_session_mem_recv, its callbacks build the streams, and nghttp2_session_mem_send
 * output is copied into the connection's buffer and written when the socket takes it. The
 * gRPC length prefix is parsed by h2/grpc.c; a complete request is inflated if needed, handed
 * to the registered method synchronously, and answered (reply + trailers, or a trailers-only
 * error). Memory bounds: each message <= max_message_size (before and after gzip), all
 * partially received messages together <= max_inflight_bytes, output per connection is
 * produced only while less than OUT_HIGH_WATER is unsent (and reading pauses meanwhile), and
 * nghttp2 bounds headers and streams per connection.
 *
 * Nothing here is global: everything hangs off struct h2_server.
 */
#include "h2/server.h"

#include "h2/grpc.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/loop.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    READ_CHUNK = 64 * 1024,
    OUT_HIGH_WATER = 256 * 1024,          /* unsent bytes above which we stop producing/reading */
    OUT_LIMIT = 8 * 1024 * 1024,          /* hard cap on a connection's output buffer */
    STREAM_WINDOW = 1024 * 1024,          /* announced SETTINGS_INITIAL_WINDOW_SIZE */
    CONN_WINDOW = 8 * 1024 * 1024,        /* connection-level receive window */
    MAX_HEADER_BYTES = 16 * 1024,         /* per request header block (RFC 7541 sizes) */
    PATH_LEN = 256,
    ACCEPT_BATCH = 64,
    ACCEPT_PAUSE_MS = 100,                /* after EMFILE & co., before accepting again */
    ADDR_LEN = INET6_ADDRSTRLEN + 16,
    ENCODED_MSG_LEN = 3 * sizeof(((struct grpc_reply *)0)->message) + 1,
};

#define DEFAULT_MAX_MESSAGE ((size_t)64 * 1024 * 1024)   /* the OTLP spec's recommendation */
#define ACCEPT_ENCODING "identity,gzip"

struct h2_method {
    char *path;
    grpc_method_fn fn;
    void *ud;
};

enum stream_state {
    ST_HEADERS,   /* request headers not complete yet */
    ST_BODY,      /* accepting the request message */
    ST_DONE,      /* answered (or failed): further request bytes are discarded */
};

struct h2_conn;

struct h2_stream {
    struct h2_conn *conn;
    struct h2_stream *prev, *next;
    int32_t id;
    enum stream_state state;
    bool is_call;          /* request headers completed: counted in stats.calls */
    bool responded;        /* a response was submitted: counted in calls_ok/failed */
    bool remote_ended;     /* the client sent END_STREAM */
    bool have_msg;         /* one complete message is in `msg` */
    size_t header_bytes;
    char method[8];
    char path[PATH_LEN];
    char ctype[64];
    char encoding[32];
    const struct h2_method *handler;
    struct grpc_framer framer;
    struct buf msg;        /* the request message as received (maybe compressed) */
    size_t held;           /* bytes of `msg` counted in server->inflight */
    struct buf resp;       /* prefix + reply body, fed to nghttp2 by resp_read() */
    size_t resp_off;
    char *trailer_msg;     /* percent-encoded grpc-message for the trailers, or NULL */
};

struct h2_conn {
    struct h2_server *srv;
    struct h2_conn *prev, *next;
    int fd;
    int events;            /* what the loop watches for now */
    char peer[ADDR_LEN];
    nghttp2_session *ng;
    struct buf out;        /* bytes produced by nghttp2, not yet written */
    size_t out_off;
    uint64_t last_active;
    bool terminating;      /* GOAWAY submitted because of idleness */
    struct h2_stream *streams;
    unsigned nstreams;
};

struct h2_server {
    struct loop *loop;
    struct h2_server_config cfg;
    char *address;
    char bound[ADDR_LEN];
    int lfd;
    bool shutting_down;
    uint64_t idle_timer, accept_timer;
    struct h2_method *methods;
    size_t nmethods;
    struct h2_conn *conns;
    size_t inflight;       /* sum of stream->held */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    struct h2_stats stats;
    uint8_t rbuf[READ_CHUNK];
};

static bool conn_update(struct h2_conn *c);
static void conn_close(struct h2_conn *c, const char *why);

/* ------------------------------------------------------------------ helpers */

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static size_t out_pending(const struct h2_conn *c) { return c->out.len - c->out_off; }

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    } else {
        snprintf(out, outlen, "?");
    }
}

/* "a.b.c.d:port", "[v6]:port" or "localhost:port"; port 0 = any free port. */
static int parse_address(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[INET6_ADDRSTRLEN];
    const char *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - addr - 1);
        if (hlen >= sizeof host)
            return -1;
        memcpy(host, addr + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - addr);
        if (hlen >= sizeof host)
            return -1;
        memcpy(host, addr, hlen);
    }
    host[hlen] = '\0';
    const char *p = colon + 1;
    unsigned long port = 0;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return -1;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (addr[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *a4;
        return 0;
    }
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *a6;
        return 0;
    }
    return -1;
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

static const struct h2_method *find_method(const struct h2_server *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

/* ------------------------------------------------------------------ streams */

static struct h2_stream *stream_get(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* Drops the message buffer and gives its bytes back to the server-wide in-flight budget. */
static void stream_release_msg(struct h2_stream *st)
{
    struct h2_server *s = st->conn->srv;
    assert(s->inflight >= st->held);
    s->inflight -= st->held;
    st->held = 0;
    buf_free(&st->msg);
}

static struct h2_stream *stream_new(struct h2_conn *c, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->conn = c;
    st->id = id;
    st->state = ST_HEADERS;
    grpc_framer_init(&st->framer);
    buf_init(&st->msg, 0);
    buf_init(&st->resp, 0);
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->nstreams++;
    return st;
}

/* Frees a stream; a call that never got its answer counts as failed and abandoned. */
static void stream_free(struct h2_stream *st, const char *why)
{
    struct h2_conn *c = st->conn;
    struct h2_server *s = c->srv;
    if (st->is_call && !st->responded) {
        s->stats.calls_failed++;
        s->stats.calls_abandoned++;
        log_info("grpc call abandoned: peer=%s path=%s: %s (%zu bytes of message received)",
                 c->peer, st->path, why, st->msg.len);
    }
    stream_release_msg(st);
    buf_free(&st->resp);
    free(st->trailer_msg);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    assert(c->nstreams > 0);
    c->nstreams--;
    free(st);
}

/* Marks the stream answered: no more handler, no more buffering. */
static void stream_finish(struct h2_stream *st, bool ok)
{
    assert(!st->responded);
    st->responded = true;
    st->state = ST_DONE;
    stream_release_msg(st);
    if (ok)
        st->conn->srv->stats.calls_ok++;
    else
        st->conn->srv->stats.calls_failed++;
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
    stream_finish(st, false);
}

/* Plain HTTP error for requests that are not gRPC at all (wrong method or content-type). */
static void reply_http(struct h2_stream *st, const char *status, const char *reason)
{
    log_info("http error: peer=%s path=%s status=%s: %s", st->conn->peer, st->path, status,
             reason);
    nghttp2_nv nv[] = { NV(":status", status), NV("allow", "POST") };
    size_t n = strcmp(status, "405") == 0 ? 2 : 1;
    nghttp2_submit_response(st->conn->ng, st->id, nv, n, NULL);
    stream_finish(st, false);
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
    stream_finish(st, true);
}

/* Request headers are complete: decide whether this is a call we can take at all. */
static void stream_on_request(struct h2_stream *st)
{
    struct h2_server *s = st->conn->srv;
    st->is_call = true;
    s->stats.calls++;
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
    /* PROTOCOL-HTTP2.md calls a compressed message without a grpc-encoding a protocol error;
     * like grpc-go we answer INTERNAL. */
    if (f->flag == 1 && strcmp(st->encoding, "gzip") != 0) {
        reply_error(st, GRPC_INTERNAL, "compressed flag set but grpc-encoding is \"%s\"",
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
static void stream_on_data(struct h2_stream *st, const uint8_t *p, size_t n)
{
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
    buf_free(&inflated);
    reply.message[sizeof reply.message - 1] = '\0';   /* whatever the handler did */
    if (reply.status != GRPC_OK)
        reply_error(st, reply.status, "%s", reply.message);
    else
        reply_ok(st, &reply.body, reply.message);
    buf_free(&reply.body);
}

/* The client half-closed the stream: the request is whatever arrived. */
static void stream_on_end(struct h2_stream *st)
{
    st->remote_ended = true;
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

/* ------------------------------------------------------------------ nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = stream_new(c, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets just this stream */
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;   /* client trailers carry nothing we use */
    struct h2_stream *st = stream_get(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > MAX_HEADER_BYTES)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (header_is(name, namelen, ":method"))
        copy_header(st->method, sizeof st->method, value, valuelen);
    else if (header_is(name, namelen, ":path"))
        copy_header(st->path, sizeof st->path, value, valuelen);
    else if (header_is(name, namelen, "content-type"))
        copy_header(st->ctype, sizeof st->ctype, value, valuelen);
    else if (header_is(name, namelen, "grpc-encoding"))
        copy_header(st->encoding, sizeof st->encoding, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = stream_get(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        st->state == ST_HEADERS)
        stream_on_request(st);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        stream_on_end(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct h2_stream *st = stream_get(ng, id);
    if (st)
        stream_on_data(st, data, len);
    return 0;
}

/* After our last frame of a stream went out while the client is still sending, reset the
 * stream with NO_ERROR (as grpc-go does) so that it stops sending a body nobody reads. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    (void)ud;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *st = stream_get(ng, frame->hd.stream_id);
    if (st && !st->remote_ended)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    (void)ud;
    struct h2_stream *st = stream_get(ng, id);
    if (!st)
        return 0;
    char why[64];
    snprintf(why, sizeof why, "stream closed (%s)", nghttp2_http2_strerror(error_code));
    stream_free(st, why);
    return 0;
}

static int make_callbacks(struct h2_server *s)
{
    if (nghttp2_session_callbacks_new(&s->cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
    return nghttp2_option_new(&s->opt) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ connections */

/* Moves nghttp2's output into the buffer (up to the high-water mark) and the buffer into
 * the socket, until one of them runs dry. False when the connection broke. */
static bool conn_flush(struct h2_conn *c)
{
    for (;;) {
        while (out_pending(c) < OUT_HIGH_WATER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->ng, &data);
            if (n < 0)
                return false;
            if (n == 0)
                break;
            if (!buf_append(&c->out, data, (size_t)n))
                return false;
        }
        if (out_pending(c) == 0)
            return true;
        ssize_t w = send(c->fd, c->out.data + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->out_off += (size_t)w;
        c->last_active = loop_now_ms(c->srv->loop);
        if (c->out_off == c->out.len) {
            c->out_off = 0;
            buf_reset(&c->out);
        } else if (c->out_off >= OUT_HIGH_WATER) {
            memmove(c->out.data, c->out.data + c->out_off, out_pending(c));
            c->out.len -= c->out_off;
            c->out_off = 0;
        }
    }
}

/* Flushes, then closes the connection when HTTP/2 is done with it, or re-arms the loop:
 * reading pauses while too much output is unsent (a client that does not read its replies
 * does not get to send more requests). False when the connection was closed. */
static bool conn_update(struct h2_conn *c)
{
    if (!conn_flush(c)) {
        conn_close(c, "write failed");
        return false;
    }
    size_t pending = out_pending(c);
    if (pending == 0 && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
        conn_close(c, "session finished");
        return false;
    }
    int events = (pending < OUT_HIGH_WATER ? LOOP_READ : 0) | (pending ? LOOP_WRITE : 0);
    if (events != c->events && loop_mod_fd(c->srv->loop, c->fd, events) == 0)
        c->events = events;
    return true;
}

/* One read per readiness event (level-triggered), so a busy peer cannot starve others. */
static bool conn_read(struct h2_conn *c, const char **why)
{
    struct h2_server *s = c->srv;
    ssize_t n = read(c->fd, s->rbuf, sizeof s->rbuf);
    if (n < 0) {
        *why = "read error";
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    if (n == 0) {
        *why = "peer closed";
        return false;
    }
    s->stats.bytes_received += (uint64_t)n;
    c->last_active = loop_now_ms(s->loop);
    ssize_t rv = nghttp2_session_mem_recv(c->ng, s->rbuf, (size_t)n);
    if (rv < 0) {
        *why = nghttp2_strerror((int)rv);
        return false;
    }
    return true;
}

static void conn_on_io(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)fd;
    struct h2_conn *c = ud;
    const char *why = "";
    if ((events & LOOP_READ) && !conn_read(c, &why)) {
        conn_close(c, why);
        return;
    }
    conn_update(c);
}

static void conn_close(struct h2_conn *c, const char *why)
{
    struct h2_server *s = c->srv;
    log_debug("connection closed: peer=%s (%s)", c->peer, why);
    while (c->streams)
        stream_free(c->streams, why);
    nghttp2_session_del(c->ng);
    loop_del_fd(s->loop, c->fd);
    close(c->fd);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    assert(s->stats.connections_open > 0);
    s->stats.connections_open--;
    free(c);
}

/* Our SETTINGS: the stream limit, a generous window, the header-list bound. */
static int conn_start_session(struct h2_conn *c)
{
    const struct h2_server_config *cfg = &c->srv->cfg;
    if (nghttp2_session_server_new2(&c->ng, c->srv->cbs, c, c->srv->opt) != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES },
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0)
        return -1;
    return nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
}

static void conn_new(struct h2_server *s, int fd, const struct sockaddr_storage *ss)
{
    struct h2_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->events = LOOP_READ;
    c->last_active = loop_now_ms(s->loop);
    buf_init(&c->out, OUT_LIMIT);
    format_addr(ss, c->peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* small frames, now */
    if (conn_start_session(c) != 0 || loop_add_fd(s->loop, fd, LOOP_READ, conn_on_io, c) != 0) {
        log_warn("connection from %s dropped: cannot set up the session", c->peer);
        if (c->ng)
            nghttp2_session_del(c->ng);
        close(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->stats.connections_accepted++;
    s->stats.connections_open++;
    log_debug("connection opened: peer=%s", c->peer);
    conn_update(c);   /* our SETTINGS go out at once */
}

/* ------------------------------------------------------------------ listener, timers */

static void listener_on_io(struct loop *l, int fd, int events, void *ud);

static void accept_resume(struct loop *l, void *ud)
{
    struct h2_server *s = ud;
    s->accept_timer = 0;
    if (s->lfd >= 0)
        loop_mod_fd(l, s->lfd, LOOP_READ);
}

/* Out of descriptors or memory: a level-triggered listener would spin, so pause it. */
static void accept_pause(struct h2_server *s, int err)
{
    log_warn("accept on %s: %s; pausing for %d ms", s->bound, strerror(err), ACCEPT_PAUSE_MS);
    loop_mod_fd(s->loop, s->lfd, 0);
    if (!s->accept_timer)
        s->accept_timer = loop_add_timer(s->loop, ACCEPT_PAUSE_MS, accept_resume, s);
}

static void listener_on_io(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)events;
    struct h2_server *s = ud;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(s, errno);
            return;   /* EAGAIN: drained */
        }
        if (s->stats.connections_open >= s->cfg.max_connections) {
            char peer[ADDR_LEN];
            format_addr(&ss, peer, sizeof peer);
            log_debug("connection refused: peer=%s (%u connections open)", peer,
                      s->cfg.max_connections);
            s->stats.connections_refused++;
            close(cfd);
            continue;
        }
        conn_new(s, cfd, &ss);
    }
}

static uint64_t idle_period(const struct h2_server *s)
{
    uint64_t p = s->cfg.idle_timeout_ms / 4;
    return p < 50 ? 50 : p > 1000 ? 1000 : p;
}

/* One timer for all connections: those silent for idle_timeout_ms get a GOAWAY and close. */
static void idle_tick(struct loop *l, void *ud)
{
    struct h2_server *s = ud;
    uint64_t now = loop_now_ms(l);
    struct h2_conn *next;
    for (struct h2_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->terminating || now - c->last_active < s->cfg.idle_timeout_ms)
            continue;
        log_debug("connection idle: peer=%s, closing", c->peer);
        c->terminating = true;
        nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
        conn_update(c);
    }
    s->idle_timer = loop_add_timer(l, idle_period(s), idle_tick, s);
}

/* ------------------------------------------------------------------ public API */

static void apply_defaults(struct h2_server_config *cfg)
{
    if (cfg->max_message_size == 0)
        cfg->max_message_size = DEFAULT_MAX_MESSAGE;
    if (cfg->max_message_size > UINT32_MAX)   /* the gRPC length prefix is 32-bit */
        cfg->max_message_size = UINT32_MAX;
    if (cfg->max_inflight_bytes == 0)
        cfg->max_inflight_bytes = cfg->max_message_size > SIZE_MAX / 4 ? SIZE_MAX
                                                                       : cfg->max_message_size * 4;
    if (cfg->max_connections == 0)
        cfg->max_connections = 1024;
    if (cfg->max_concurrent_streams == 0)
        cfg->max_concurrent_streams = 100;
}

struct h2_server *h2_server_new(struct loop *loop, const struct h2_server_config *cfg)
{
    struct h2_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    s->lfd = -1;
    apply_defaults(&s->cfg);
    s->address = strdup(cfg->address ? cfg->address : "127.0.0.1:4317");
    s->cfg.address = s->address;
    if (!s->address || make_callbacks(s) != 0) {
        h2_server_free(s);
        return NULL;
    }
    return s;
}

int h2_server_add_method(struct h2_server *s, const char *path, grpc_method_fn fn, void *ud)
{
    if (!path || !fn || strlen(path) >= PATH_LEN || find_method(s, path))
        return -1;
    struct h2_method *m = realloc(s->methods, (s->nmethods + 1) * sizeof *m);
    if (!m)
        return -1;
    s->methods = m;
    char *p = strdup(path);
    if (!p)
        return -1;
    s->methods[s->nmethods++] = (struct h2_method){ .path = p, .fn = fn, .ud = ud };
    return 0;
}

static int listen_fail(struct h2_server *s, int fd, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s%s%s", s->address, what, errno ? ": " : "",
             errno ? strerror(errno) : "");
    if (fd >= 0)
        close(fd);
    return -1;
}

int h2_server_listen(struct h2_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    errno = 0;
    if (s->lfd >= 0)
        return listen_fail(s, -1, err, errlen, "already listening");
    if (parse_address(s->address, &ss, &len) != 0)
        return listen_fail(s, -1, err, errlen, "expected a.b.c.d:port or [v6]:port");
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return listen_fail(s, fd, err, errlen, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        return listen_fail(s, fd, err, errlen, "bind");
    if (listen(fd, 511) != 0)
        return listen_fail(s, fd, err, errlen, "listen");
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return listen_fail(s, fd, err, errlen, "getsockname");
    if (loop_add_fd(s->loop, fd, LOOP_READ, listener_on_io, s) != 0)
        return listen_fail(s, fd, err, errlen, "event loop");
    format_addr(&ss, s->bound, sizeof s->bound);
    s->lfd = fd;
    if (s->cfg.idle_timeout_ms && !s->idle_timer)
        s->idle_timer = loop_add_timer(s->loop, idle_period(s), idle_tick, s);
    return 0;
}

const char *h2_server_address(const struct h2_server *s)
{
    return s->bound[0] ? s->bound : s->address;
}

static void close_listener(struct h2_server *s)
{
    if (s->accept_timer) {
        loop_del_timer(s->loop, s->accept_timer);
        s->accept_timer = 0;
    }
    if (s->lfd >= 0) {
        loop_del_fd(s->loop, s->lfd);
        close(s->lfd);
        s->lfd = -1;
    }
}

void h2_server_shutdown(struct h2_server *s)
{
    s->shutting_down = true;
    close_listener(s);
    struct h2_conn *next;
    for (struct h2_conn *c = s->conns; c; c = next) {
        next = c->next;
        int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
        conn_update(c);
    }
}

bool h2_server_drained(const struct h2_server *s)
{
    for (const struct h2_conn *c = s->conns; c; c = c->next)
        if (c->nstreams > 0 || out_pending(c) > 0 || nghttp2_session_want_write(c->ng))
            return false;
    return true;
}

const struct h2_stats *h2_server_stats(const struct h2_server *s) { return &s->stats; }

void h2_server_free(struct h2_server *s)
{
    if (!s)
        return;
    close_listener(s);
    if (s->idle_timer)
        loop_del_timer(s->loop, s->idle_timer);
    while (s->conns)
        conn_close(s->conns, "server stopped");
    for (size_t i = 0; i < s->nmethods; i++)
        free(s->methods[i].path);
    free(s->methods);
    if (s->cbs)
        nghttp2_session_callbacks_del(s->cbs);
    if (s->opt)
        nghttp2_option_del(s->opt);
    free(s->address);
    free(s);
}
