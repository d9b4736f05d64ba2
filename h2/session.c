/*
 * session.c - the HTTP/2 side of a connection: one nghttp2 server session, its streams, and
 * what each stream is (a gRPC call on the gRPC port, an HTTP exchange on the HTTP port).
 *
 * nghttp2 is used purely as a state machine: server.c puts the socket's bytes into
 * nghttp2_session_mem_recv and writes what nghttp2_session_mem_send produces; the callbacks
 * here build the streams. The gRPC port (prior knowledge) and the h2c side of the HTTP port
 * (prior knowledge or upgrade) share all of it; only the per-stream protocol differs
 * (grpc_call.c or http.c). nghttp2 bounds headers and streams per connection; we bound header
 * bytes and count as well.
 */
#include "h2/internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/loop.h"

/* ------------------------------------------------------------------ streams */

static struct h2_stream *stream_get(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* Drops the message buffer and gives its bytes back to the server-wide in-flight budget. */
void stream_release_msg(struct h2_stream *st)
{
    struct h2_server *s = st->conn->srv;
    assert(s->inflight >= st->held);
    s->inflight -= st->held;
    st->held = 0;
    buf_free(&st->msg);
}

struct h2_stream *stream_new(struct h2_conn *c, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->conn = c;
    st->id = id;
    st->state = ST_HEADERS;
    st->started_ms = loop_now_ms(c->srv->loop);
    grpc_framer_init(&st->framer);
    buf_init(&st->msg, 0);
    buf_init(&st->resp, 0);
    st->is_http = c->srv->cfg.protocol == H2_SERVER_HTTP;
    if (st->is_http)
        http_exchange_init(&st->ex, c->srv, c->peer, "h2c");
    DLIST_PUSH(c->streams, st);
    c->nstreams++;
    return st;
}

/* Frees a stream; a call that never got its answer counts as failed and abandoned. */
void stream_free(struct h2_stream *st, const char *why)
{
    struct h2_conn *c = st->conn;
    struct h2_server *s = c->srv;
    if (st->is_http) {
        push_abandon(st->push);
        if (st->ex.counted && !st->ex.answered) {
            s->stats.calls_failed++;
            s->stats.calls_abandoned++;
            log_info("http request abandoned: peer=%s path=%s: %s (%zu bytes of body received)",
                     c->peer, st->ex.path, why, st->ex.body.len);
        }
        http_exchange_free(&st->ex);
    } else if (st->is_call && !st->responded) {
        s->stats.calls_failed++;
        s->stats.calls_abandoned++;
        log_info("grpc call abandoned: peer=%s path=%s: %s (%zu bytes of message received)",
                 c->peer, st->path, why, st->msg.len);
    }
    stream_release_msg(st);
    buf_free(&st->resp);
    free(st->trailer_msg);
    DLIST_UNLINK(c->streams, st);
    assert(c->nstreams > 0);
    c->nstreams--;
    free(st);
}

/* ------------------------------------------------------------------ HTTP exchanges on h2 */

/* nghttp2 pulls the response body from here. */
static ssize_t http_body_read(nghttp2_session *ng, int32_t id, uint8_t *out, size_t length,
                              uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)ud;
    struct h2_stream *st = src->ptr;
    const struct buf *b = &st->ex.resp.body;
    assert(st->resp_off <= b->len);
    size_t n = b->len - st->resp_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(out, b->data + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == b->len) {
        if (st->push && n == 0)
            return NGHTTP2_ERR_DEFERRED;   /* push.c resumes it when there is more */
        if (!st->push)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

void session_submit_http(struct h2_stream *st)
{
    struct http_exchange *ex = &st->ex;
    assert((ex->state == EX_READY || ex->state == EX_REJECTED) && !st->http_submitted);
    if (ex->resp.push && ex->resp.push->deferred) {   /* h2_defer_send submits it later */
        push_bind_h2(st, ex->resp.push);
        ex->resp.push = NULL;
        return;
    }
    ex->state = EX_READY;   /* a refusal is answered before its body: later DATA is dropped */
    st->http_submitted = true;
    http_exchange_account(ex);
    char status[8], length[24], retry[16];
    snprintf(status, sizeof status, "%d", ex->resp.status);
    snprintf(length, sizeof length, "%zu", ex->resp.body.len);
    struct h2_push *push = ex->resp.push;
    ex->resp.push = NULL;
    if (push && (ex->head || ex->resp.status != 200)) {
        push_abandon(push);
        push = NULL;
    }
    nghttp2_nv nv[6 + HTTP_MAX_RESPONSE_HEADERS];
    size_t n = 0;
    nv[n++] = (nghttp2_nv)NV(":status", status);
    if (ex->resp.content_type[0])
        nv[n++] = (nghttp2_nv)NV("content-type", ex->resp.content_type);
    if (!push)
        nv[n++] = (nghttp2_nv)NV("content-length", length);
    for (unsigned i = 0; i < ex->resp.n_headers; i++) {
        /* nghttp2 wants lower-case names on h2 */
        struct http_header *h = &ex->resp.headers[i];
        for (char *q = h->name; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        nv[n++] = (nghttp2_nv){ (uint8_t *)h->name, (uint8_t *)h->value, strlen(h->name),
                                strlen(h->value), NGHTTP2_NV_FLAG_NONE };
    }
    if (ex->resp.status == 405 && ex->allow[0])
        nv[n++] = (nghttp2_nv)NV("allow", ex->allow);
    if (ex->resp.retry_after) {
        snprintf(retry, sizeof retry, "%u", ex->resp.retry_after);
        nv[n++] = (nghttp2_nv)NV("retry-after", retry);
    }
    if (ex->resp.www_authenticate[0])
        nv[n++] = (nghttp2_nv)NV("www-authenticate", ex->resp.www_authenticate);
    st->resp_off = 0;
    nghttp2_data_provider prd = { .source = { .ptr = st }, .read_callback = http_body_read };
    bool body = (ex->resp.body.len > 0 && !ex->head) || push;
    if (push)
        push_bind_h2(st, push);
    int rv = nghttp2_submit_response(st->conn->ng, st->id, nv, n, body ? &prd : NULL);
    if (rv != 0)
        log_debug("peer=%s stream %d: submit_response: %s", st->conn->peer, (int)st->id,
                  nghttp2_strerror(rv));
}

static void http_on_request(struct h2_stream *st)
{
    struct http_exchange *ex = &st->ex;
    if (!ex->path[0]) {
        http_exchange_error(ex, 400, "request without a usable :path");
        session_submit_http(st);
        return;
    }
    if (http_exchange_headers_done(ex) == HTTP_ANSWER_NOW)
        session_submit_http(st);
}

static void http_on_data(struct h2_stream *st, const uint8_t *p, size_t n)
{
    if (st->http_submitted) {   /* answered early: the rest of the body is dropped */
        uint64_t before = st->ex.discarded;
        st->ex.discarded += n;
        if (before <= DISCARD_MAX_BYTES && st->ex.discarded > DISCARD_MAX_BYTES)
            nghttp2_submit_rst_stream(st->conn->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
        return;
    }
    if (st->ex.state != EX_BODY && st->ex.state != EX_REJECTED)
        return;
    if (http_exchange_body(&st->ex, p, n) == HTTP_ANSWER_NOW)
        session_submit_http(st);
}

static void http_on_end(struct h2_stream *st)
{
    if (st->http_submitted || st->ex.state == EX_HEADERS)
        return;
    http_exchange_finish(&st->ex);
    conn_depend(st->conn);
    session_submit_http(st);
}

/* ------------------------------------------------------------------ request timeout */

void session_expire_streams(struct h2_conn *c, uint64_t now)
{
    unsigned timeout = c->srv->cfg.request_timeout_ms;
    for (struct h2_stream *st = c->streams; st; st = st->next) {
        if (st->remote_ended || st->expired || now - st->started_ms < timeout)
            continue;
        st->expired = true;
        if (st->is_http && !st->http_submitted) {
            http_exchange_error(&st->ex, 408, "request not received within %u ms", timeout);
            session_submit_http(st);   /* on_frame_send then resets the stream */
        } else if (!st->is_http && !st->responded) {
            grpc_stream_timeout(st, timeout);
        } else {
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        }
    }
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
    if (st->header_bytes > MAX_HEADER_BYTES || ++st->header_count > MAX_HEADERS)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!st->is_http) {
        grpc_stream_on_header(st, name, namelen, value, valuelen);
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        if (!http_exchange_target(&st->ex, (const char *)value, valuelen))
            st->ex.path[0] = 0;
    } else {
        http_exchange_header(&st->ex, (const char *)name, namelen, (const char *)value, valuelen);
    }
    return 0;
}

/* Once the connection was told to calm down, nothing more it sent is processed. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    (void)ng;
    (void)hd;
    const struct h2_conn *c = ud;
    return c->calm ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2_stream *st = frame->hd.stream_id ? stream_get(ng, frame->hd.stream_id) : NULL;
    progress_frame_received(ud, frame, st != NULL);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    if (!st)
        return 0;
    bool request_headers = frame->hd.type == NGHTTP2_HEADERS &&
                           frame->headers.cat == NGHTTP2_HCAT_REQUEST;
    if (request_headers && st->is_http && st->ex.state == EX_HEADERS)
        http_on_request(st);
    else if (request_headers && !st->is_http && st->state == ST_HEADERS)
        grpc_stream_on_request(st);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->remote_ended = true;
        if (st->is_http)
            http_on_end(st);
        else
            grpc_stream_on_end(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct h2_stream *st = stream_get(ng, id);
    if (st && st->is_http)
        http_on_data(st, data, len);
    else if (st)
        grpc_stream_on_data(st, data, len);
    return 0;
}

/* After our last frame of a gRPC stream went out while the client is still sending, reset
 * the stream with NO_ERROR (as grpc-go does) so that it stops sending a body nobody reads.
 * HTTP clients (curl among them) take such a reset for a failed request, so an HTTP stream
 * answered early has the rest of its body read and dropped instead, up to DISCARD_MAX_BYTES
 * (http_on_data), unless it was cut off by the request timeout. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    progress_frame_sent(ud, frame);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *st = stream_get(ng, frame->hd.stream_id);
    if (st && !st->remote_ended && (!st->is_http || st->expired))
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

int session_make_callbacks(struct h2_server *s)
{
    if (nghttp2_session_callbacks_new(&s->cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(s->cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
    return nghttp2_option_new(&s->opt) == 0 ? 0 : -1;
}

/* Our SETTINGS: the stream limit, a generous window, the header-list bound. */
int session_start(struct h2_conn *c)
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
