/*
 * http1.c - HTTP/1.1 on the HTTP port: request parsing with nodejs' http_parser (Debian's
 * libhttp-parser), responses written into the connection's output buffer.
 *
 * Why a library parser: request framing (chunked bodies, Content-Length, header folding,
 * invalid characters, both Content-Length and Transfer-Encoding) is where hand-written HTTP
 * servers get request smuggling wrong; http_parser is the maintained one Debian ships.
 * What we add on top, because every byte is hostile:
 *   - bounds: request-head bytes and header count (431), body size (413, via http.c);
 *   - one request at a time per connection, in order: after each request the parser is
 *     paused, and the rest of the input (pipelined requests) waits while the output has more
 *     than OUT_HIGH_WATER unsent bytes, so a client that does not read its responses cannot
 *     make us produce more;
 *   - Expect: 100-continue is answered with 100 only when the request is acceptable; a
 *     refused one is answered at once and the connection closed (the client may not send the
 *     body at all);
 *   - "Upgrade: h2c" with a valid HTTP2-Settings: the request is read whole, then the
 *     connection becomes HTTP/2 (server.c) and the request is answered on stream 1 (RFC 7540
 *     §3.2). Another Upgrade is ignored, and the connection closes after the response (the
 *     parser cannot tell what follows).
 * The request timeout (server.c) cuts off a request whose bytes trickle in: 408, close.
 */
#include "h2/internal.h"

#include <assert.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/loop.h"

enum {
    MAX_HEAD_BYTES = 16 * 1024,   /* request line and headers, as on the h2 side */
    URL_MAX = 2048,
    NAME_MAX_LEN = 64,
    VALUE_MAX_LEN = 512,
    SETTINGS_MAX = 1024,          /* decoded HTTP2-Settings (6 bytes per setting) */
};

struct http1 {
    http_parser parser;
    struct h2_conn *conn;
    struct http_exchange ex;
    bool ex_live;            /* `ex` holds the current request */
    bool answered;           /* its response is written (maybe before its body) */
    bool stop;               /* parse no more: the connection closes after the output */
    bool message_done;       /* the request is complete (the parser is paused after it) */
    bool keep_alive;
    char url[URL_MAX];
    size_t url_len;
    bool url_long;
    char name[NAME_MAX_LEN];
    size_t name_len;
    char value[VALUE_MAX_LEN];
    size_t value_len;
    bool in_value;           /* the last header callback was a value */
    size_t head_bytes;
    unsigned header_count;
    bool upgrade_h2c;        /* "Upgrade: h2c" and HTTP2-Settings both sent */
    bool has_settings;
    struct buf settings;
    struct buf pending;      /* input held back while output drains */
};

static const http_parser_settings parser_settings;

static struct http1 *of(http_parser *p) { return p->data; }

/* ------------------------------------------------------------------ responses */

/* Appends the exchange's response; false when the output buffer refused it (the connection
 * must then close at once: half a response is in the stream). */
static bool write_response(struct h2_conn *c, struct http_exchange *ex, bool close)
{
    struct http_response *r = &ex->resp;
    struct buf *o = &c->out;
    struct h2_push *push = r->push;
    r->push = NULL;
    if (push && (close || ex->head || r->status != 200 || strcmp(ex->protocol, "HTTP/1.1") != 0)) {
        push_abandon(push);   /* no chunked response possible, or none wanted */
        push = NULL;
    }
    bool ok = buf_printf(o, "HTTP/1.1 %d %s\r\n", r->status, http_reason(r->status));
    if (r->content_type[0])
        ok = ok && buf_printf(o, "Content-Type: %s\r\n", r->content_type);
    if (push)
        ok = ok && buf_printf(o, "Transfer-Encoding: chunked\r\n");
    else
        ok = ok && buf_printf(o, "Content-Length: %zu\r\n", r->body.len);
    for (unsigned i = 0; i < r->n_headers; i++)
        ok = ok && buf_printf(o, "%s: %s\r\n", r->headers[i].name, r->headers[i].value);
    if (r->status == 405 && ex->allow[0])
        ok = ok && buf_printf(o, "Allow: %s\r\n", ex->allow);
    if (r->retry_after)
        ok = ok && buf_printf(o, "Retry-After: %u\r\n", r->retry_after);
    if (r->www_authenticate[0])
        ok = ok && buf_printf(o, "WWW-Authenticate: %s\r\n", r->www_authenticate);
    if (close)
        ok = ok && buf_printf(o, "Connection: close\r\n");
    else if (strcmp(ex->protocol, "HTTP/1.0") == 0)
        ok = ok && buf_printf(o, "Connection: keep-alive\r\n");
    ok = ok && buf_append(o, "\r\n", 2);
    if (push && r->body.len)
        ok = ok && buf_printf(o, "%zx\r\n", r->body.len) && buf_append(o, r->body.data, r->body.len) &&
             buf_append(o, "\r\n", 2);
    else if (!ex->head && !push)
        ok = ok && buf_append(o, r->body.data, r->body.len);
    http_exchange_account(ex);
    if (push) {
        if (ok)
            push_bind_h1(c, push);
        else
            push_abandon(push);
    }
    return ok;
}

/* Answers the current request now (it is EX_REJECTED or EX_READY). With `close`, nothing
 * more is parsed and the connection closes once the output is written. */
static void answer(struct http1 *h, bool close)
{
    struct h2_conn *c = h->conn;
    struct h2_push *d = h->ex.resp.push;
    if (d && d->deferred) {   /* http1_defer_send answers; nothing else is served meanwhile */
        h->ex.resp.push = NULL;
        push_bind_h1(c, d);
        h->stop = true;
        return;
    }
    close = close || !h->keep_alive || c->srv->shutting_down;
    if (!write_response(c, &h->ex, close))
        close = true;
    h->answered = true;
    if (c->push)
        h->stop = true;   /* the connection now carries the long-lived response only */
    if (close) {
        h->stop = true;
        c->close_after_flush = true;
    }
    http_exchange_free(&h->ex);
}

/* A request the parser or our bounds refused before it could be routed. */
static void answer_error(struct http1 *h, int status, const char *why)
{
    if (h->answered)
        return;
    if (!h->ex_live) {
        http_exchange_init(&h->ex, h->conn->srv, h->conn->peer, "HTTP/1.1");
        h->ex_live = true;
    }
    http_exchange_error(&h->ex, status, "%s", why);
    h->ex.state = EX_READY;
    answer(h, true);
}

/* ------------------------------------------------------------------ headers */

static bool has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* A complete header line: the ones HTTP/1.1 needs here, the rest to the exchange. */
static void finish_header(struct http1 *h)
{
    if (!h->in_value && h->name_len == 0)
        return;
    h->name[h->name_len] = '\0';
    h->value[h->value_len] = '\0';
    if (strcasecmp(h->name, "upgrade") == 0) {
        h->upgrade_h2c = has_token(h->value, "h2c");
    } else if (strcasecmp(h->name, "http2-settings") == 0) {
        buf_reset(&h->settings);
        h->has_settings = !h->has_settings &&   /* exactly one, RFC 7540 §3.2.1 */
                          base64_decode(h->value, h->value_len, &h->settings) == BASE64_OK;
    } else {
        http_exchange_header(&h->ex, h->name, h->name_len, h->value, h->value_len);
    }
    h->name_len = h->value_len = 0;
    h->in_value = false;
}

static bool count_head(struct http1 *h, size_t n)
{
    h->head_bytes += n;
    if (h->head_bytes <= MAX_HEAD_BYTES)
        return true;
    answer_error(h, 431, "request line and headers are larger than 16 KiB");
    return false;
}

static void append_bounded(char *dst, size_t *len, size_t cap, const char *p, size_t n)
{
    size_t room = cap - 1 - *len;   /* one byte for the terminator */
    if (n > room)
        n = room;
    memcpy(dst + *len, p, n);
    *len += n;
}

/* ------------------------------------------------------------------ parser callbacks */

static int on_message_begin(http_parser *p)
{
    struct http1 *h = of(p);
    struct h2_conn *c = h->conn;
    http_exchange_init(&h->ex, c->srv, c->peer, "HTTP/1.1");
    h->ex_live = true;
    h->answered = h->message_done = false;
    h->url_len = h->name_len = h->value_len = h->head_bytes = 0;
    h->url_long = h->in_value = h->upgrade_h2c = h->has_settings = false;
    h->header_count = 0;
    if (!c->request_started)
        c->request_started = loop_now_ms(c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http1 *h = of(p);
    if (!count_head(h, n))
        return -1;
    if (h->url_len + n >= sizeof h->url)
        h->url_long = true;
    append_bounded(h->url, &h->url_len, sizeof h->url, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http1 *h = of(p);
    if (!count_head(h, n + 4))   /* ": " and CRLF */
        return -1;
    if (h->in_value)
        finish_header(h);
    if (h->name_len == 0 && ++h->header_count > MAX_HEADERS) {
        answer_error(h, 431, "more than 100 header fields");
        return -1;
    }
    append_bounded(h->name, &h->name_len, sizeof h->name, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http1 *h = of(p);
    if (!count_head(h, n))
        return -1;
    h->in_value = true;
    append_bounded(h->value, &h->value_len, sizeof h->value, at, n);
    return 0;
}

/* The request line and headers are in: route it, and decide about its body. */
static int on_headers_complete(http_parser *p)
{
    struct http1 *h = of(p);
    struct http_exchange *ex = &h->ex;
    finish_header(h);
    h->keep_alive = http_should_keep_alive(p) != 0;
    ex->protocol = p->http_major == 1 && p->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    snprintf(ex->method, sizeof ex->method, "%s", http_method_str((enum http_method)p->method));
    if (p->flags & F_CONTENTLENGTH) {
        ex->has_length = true;
        ex->content_length = p->content_length;
    } else {
        ex->has_length = false;   /* chunked, or no body */
    }
    if (p->upgrade && (p->method == HTTP_CONNECT || !h->upgrade_h2c || !h->has_settings)) {
        h->upgrade_h2c = false;
        h->keep_alive = false;    /* what follows the request is another protocol */
    }
    if (h->url_len == 0 || !http_exchange_target(ex, h->url, h->url_len)) {
        answer_error(h, 400, "request target is not a path");
        return -1;
    }
    if (http_exchange_headers_done(ex) == HTTP_ANSWER_NOW) {
        /* Answer now when waiting for the body would be pointless or costly: the client
         * waits for a 100, the body is large, or the request wanted another protocol. */
        bool now = ex->expect_continue || h->upgrade_h2c || !h->keep_alive ||
                   (ex->has_length && ex->content_length > DISCARD_MAX_BYTES);
        if (now) {
            ex->state = EX_READY;
            answer(h, true);
            return -1;
        }
        return 0;   /* read and drop the body, answer at its end, keep the connection */
    }
    if (ex->expect_continue && strcmp(ex->protocol, "HTTP/1.1") == 0 &&
        !buf_append(&h->conn->out, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
        answer_error(h, 503, "server busy: output buffer full");
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http1 *h = of(p);
    struct http_exchange *ex = &h->ex;
    bool was_rejected = ex->state == EX_REJECTED;
    if (http_exchange_body(ex, (const uint8_t *)at, n) == HTTP_ANSWER_NOW ||
        (was_rejected && ex->discarded > DISCARD_MAX_BYTES)) {
        ex->state = EX_READY;
        answer(h, true);
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http1 *h = of(p);
    struct h2_conn *c = h->conn;
    h->message_done = true;
    c->request_started = 0;
    progress_made(c);   /* a whole request */
    h->keep_alive = h->keep_alive && http_should_keep_alive(p) != 0;
    if (!h->upgrade_h2c) {
        http_exchange_finish(&h->ex);
        conn_depend(c);
        answer(h, false);
        h->ex_live = c->push && c->push->deferred;   /* a deferred response still needs it */
    }
    /* One request per step: the caller looks at the output (and at an upgrade) before the
     * parser may go on with what follows. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------ driving the parser */

struct http1 *http1_new(struct h2_conn *c)
{
    struct http1 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->conn = c;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    h->keep_alive = true;
    buf_init(&h->settings, SETTINGS_MAX);
    buf_init(&h->pending, READ_CHUNK);
    return h;
}

void http1_free(struct http1 *h)
{
    if (!h)
        return;
    if (h->ex_live) {
        struct h2_server *s = h->conn->srv;
        if (h->ex.counted && !h->ex.answered) {
            s->stats.calls_failed++;
            s->stats.calls_abandoned++;
            log_info("http request abandoned: peer=%s path=%s (%zu bytes of body received)",
                     h->conn->peer, h->ex.path, h->ex.body.len);
        }
        http_exchange_free(&h->ex);
    }
    buf_free(&h->settings);
    buf_free(&h->pending);
    free(h);
}

/* The parse loop: one request per step (the parser pauses after each). Input that must wait
 * for the output to drain goes to h->pending. */
static bool parse(struct h2_conn *c, const uint8_t *p, size_t n)
{
    struct http1 *h = c->h1;
    while (n > 0 && !h->stop) {
        size_t used = http_parser_execute(&h->parser, &parser_settings, (const char *)p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (h->stop)
            return true;   /* answered and closing: the rest is dropped */
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
        } else if (e != HPE_OK) {
            char why[160];
            snprintf(why, sizeof why, "malformed HTTP/1.1 request: %s", http_errno_description(e));
            answer_error(h, 400, why);
            return true;
        }
        p += used;
        n -= used;
        if (h->message_done && h->upgrade_h2c) {
            struct http_exchange ex;
            struct buf settings = h->settings;
            http_exchange_move(&ex, &h->ex);
            h->ex_live = false;
            buf_init(&h->settings, 0);   /* ownership goes with `settings` */
            bool ok = conn_upgrade_h2c(c, settings.data, settings.len, &ex, p, n);
            buf_free(&settings);
            http_exchange_free(&ex);     /* empty unless the upgrade failed */
            return ok;                   /* h is gone */
        }
        h->message_done = false;
        if (c->close_after_flush)
            return true;
        if (used == 0 && e == HPE_OK)
            break;   /* cannot happen with a paused-per-request parser; never spin */
        if (n > 0 && out_pending(c) >= OUT_HIGH_WATER) {
            buf_reset(&h->pending);
            if (!buf_append(&h->pending, p, n))
                return false;
            return true;
        }
    }
    return true;
}

bool http1_feed(struct h2_conn *c, const uint8_t *p, size_t n)
{
    struct http1 *h = c->h1;
    if (h->stop)
        return true;
    if (h->pending.len) {   /* reading is paused meanwhile; be safe anyway */
        if (!buf_append(&h->pending, p, n))
            return false;
        return true;
    }
    return parse(c, p, n);
}

bool http1_resume(struct h2_conn *c)
{
    struct http1 *h = c->h1;
    if (h->pending.len == 0 || out_pending(c) >= OUT_HIGH_WATER)
        return true;
    /* parse() may stash part of it again, into the same buffer: work on a copy. */
    struct buf in = h->pending;
    buf_init(&h->pending, READ_CHUNK);
    bool ok = parse(c, in.data, in.len);
    buf_free(&in);
    return ok;
}

struct http_response *http1_defer_response(struct h2_conn *c)
{
    return &c->h1->ex.resp;
}

void http1_defer_send(struct h2_conn *c)
{
    struct http1 *h = c->h1;
    assert(h->ex_live && !c->push);
    answer(h, true);
    h->ex_live = false;
}

bool http1_paused(const struct h2_conn *c)
{
    return c->h1 && (c->h1->pending.len > 0 || c->h1->stop);
}

void http1_timeout(struct h2_conn *c)
{
    struct http1 *h = c->h1;
    if (h->answered && h->ex_live) {
        h->stop = true;
        c->close_after_flush = true;
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "request not received within %u ms", c->srv->cfg.request_timeout_ms);
    answer_error(h, 408, why);
}
