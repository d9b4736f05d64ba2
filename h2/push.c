/*
 * push.c - long-lived responses (server.h, "push"): a route's 200 response that stays open
 * so the application can append to it later, as Server-Sent Events need. Generic: bytes in,
 * bytes out, whatever they mean.
 *
 * On HTTP/1.1 the response is chunked and written into the connection's output buffer; the
 * connection then serves nothing else (its further input is read and dropped, which is how a
 * client leaving is noticed) and closes after the last chunk. On h2 the response body is the
 * stream's ex.resp.body, read by nghttp2 through session.c's data callback, which defers
 * while it is empty and the push open. Output is queued, never written from here: the loop
 * is asked for a writable event (conn_want_write), so nothing in the application's call can
 * close a connection under its feet, and `gone` is only ever called from the transport's own
 * events.
 *
 * A deferred response (h2_defer_open) is a push bound before anything is sent: the transport
 * keeps the exchange (its stream, or the HTTP/1.1 connection's current request) and sends
 * its response, whole, when the application calls h2_defer_send.
 */
#include "h2/internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

bool http_response_header(struct http_response *r, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (r->n_headers >= HTTP_MAX_RESPONSE_HEADERS || nl == 0 || nl >= sizeof r->headers[0].name ||
        vl >= sizeof r->headers[0].value || strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n"))
        return false;
    struct http_header *h = &r->headers[r->n_headers++];
    memcpy(h->name, name, nl + 1);
    memcpy(h->value, value, vl + 1);
    return true;
}

struct h2_push *h2_push_open(struct http_response *resp, h2_push_gone_fn gone, void *ud)
{
    assert(!resp->push && gone);
    struct h2_push *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->gone = gone;
    p->ud = ud;
    resp->push = p;
    return p;
}

void push_abandon(struct h2_push *p)
{
    if (!p)
        return;
    if (p->st)
        p->st->push = NULL;
    else if (p->conn)
        p->conn->push = NULL;
    p->gone(p->ud, p);
    free(p);
}

void push_bind_h1(struct h2_conn *c, struct h2_push *p)
{
    assert(!c->push);
    p->conn = c;
    c->push = p;
}

void push_bind_h2(struct h2_stream *st, struct h2_push *p)
{
    assert(!st->push);
    p->conn = st->conn;
    p->st = st;
    st->push = p;
}

static bool h1_write(struct h2_conn *c, const void *data, size_t n)
{
    if (out_pending(c) + n > H2_PUSH_MAX_PENDING)
        return false;
    if (n == 0)
        return true;   /* an empty chunk would end the response */
    size_t before = c->out.len;
    if (!buf_printf(&c->out, "%zx\r\n", n) || !buf_append(&c->out, data, n) ||
        !buf_append(&c->out, "\r\n", 2)) {
        c->out.len = before;   /* never half a chunk */
        return false;
    }
    return true;
}

static bool h2_write(struct h2_stream *st, const void *data, size_t n)
{
    struct buf *b = &st->ex.resp.body;
    if (b->len - st->resp_off + n > H2_PUSH_MAX_PENDING)
        return false;
    if (st->resp_off > 0 && st->resp_off == b->len) {   /* all sent: start over */
        buf_reset(b);
        st->resp_off = 0;
    }
    if (n && !buf_append(b, data, n))
        return false;
    nghttp2_session_resume_data(st->conn->ng, st->id);
    return true;
}

struct h2_push *h2_defer_open(struct http_response *resp, h2_push_gone_fn gone, void *ud)
{
    struct h2_push *p = h2_push_open(resp, gone, ud);
    if (p)
        p->deferred = true;
    return p;
}

struct http_response *h2_defer_response(struct h2_push *p)
{
    assert(p->deferred && p->conn);
    return p->st ? &p->st->ex.resp : http1_defer_response(p->conn);
}

void h2_defer_send(struct h2_push *p)
{
    assert(p->deferred && p->conn);   /* bound: the handler has returned */
    struct h2_conn *c = p->conn;
    struct h2_stream *st = p->st;
    if (st) {
        st->push = NULL;
        free(p);
        session_submit_http(st);
    } else {
        c->push = NULL;
        free(p);
        http1_defer_send(c);
    }
    conn_want_write(c);
}

bool h2_push_write(struct h2_push *p, const void *data, size_t n)
{
    assert(!p->deferred);
    if (!p->conn)
        return false;   /* not sent yet: only the handler's body goes first */
    bool ok = p->st ? h2_write(p->st, data, n) : h1_write(p->conn, data, n);
    if (ok)
        conn_want_write(p->conn);
    return ok;
}

void h2_push_close(struct h2_push *p)
{
    assert(!p->deferred);
    struct h2_conn *c = p->conn;
    if (p->st) {
        p->st->push = NULL;
        p->st->push_ended = true;
        nghttp2_session_resume_data(c->ng, p->st->id);
        conn_want_write(c);
    } else if (c) {
        c->push = NULL;
        if (!buf_append(&c->out, "0\r\n\r\n", 5))
            log_debug("peer=%s: the last chunk did not fit: closing", c->peer);
        c->close_after_flush = true;
        conn_want_write(c);
    }
    free(p);
}
