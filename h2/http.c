/*
 * http.c - the semantics of one HTTP request on the HTTP port, whatever carried it (HTTP/1.1
 * in http1.c, an h2c stream in session.c): which route, whether the method, size and encoding
 * are acceptable, collecting and inflating the body, calling the handler, and the error
 * responses the transport gives itself.
 *
 * Memory bounds: a body is at most max_message_size as received and again after gzip; all
 * bodies being received together are at most max_inflight_bytes (the budget the gRPC port's
 * messages draw from too). A refused request's body is counted and dropped, never kept.
 */
#include "h2/internal.h"

#include "h2/auth.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/gzip.h"
#include "lib/log.h"

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

void http_exchange_init(struct http_exchange *ex, struct h2_server *s, const char *peer,
                        const char *protocol)
{
    memset(ex, 0, sizeof *ex);
    ex->srv = s;
    ex->peer = peer;
    ex->protocol = protocol;
    ex->state = EX_HEADERS;
    buf_init(&ex->body, s->cfg.max_message_size);
    buf_init(&ex->resp.body, s->cfg.max_message_size);
}

/* Gives the body's bytes back to the in-flight budget and its memory back. */
static void release_body(struct http_exchange *ex)
{
    struct h2_server *s = ex->srv;
    assert(s->inflight >= ex->held);
    s->inflight -= ex->held;
    ex->held = 0;
    buf_free(&ex->body);
}

void http_exchange_free(struct http_exchange *ex)
{
    push_abandon(ex->resp.push);   /* never sent */
    ex->resp.push = NULL;
    release_body(ex);
    buf_free(&ex->resp.body);
}

void http_exchange_move(struct http_exchange *to, struct http_exchange *from)
{
    *to = *from;   /* the buffers and the budget go with the struct */
    from->held = 0;
    from->resp.push = NULL;
    buf_init(&from->body, 0);
    buf_init(&from->resp.body, 0);
}

/* Copies bytes from the wire that may end up in a log line or an error message: anything
 * but printable ASCII becomes '?' (no terminal escapes, no forged log lines). Values we
 * match (paths, media types, encodings) are plain ASCII, so nothing that matters changes. */
static void copy_printable(char *dst, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
    dst[n] = '\0';
}

/* Copies a header value; an over-long one is cut (and then matches nothing we accept). */
static void copy_value(char *dst, size_t dstlen, const char *v, size_t vlen)
{
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    copy_printable(dst, v, vlen < dstlen - 1 ? vlen : dstlen - 1);
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* Decimal Content-Length; false on anything else (the request is then refused). */
static bool parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    size_t start = i;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (i == start)
        return false;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    *out = x;
    return i == n;
}

void http_exchange_header(struct http_exchange *ex, const char *name, size_t namelen,
                          const char *value, size_t valuelen)
{
    if (name_is(name, namelen, ":method")) {
        copy_value(ex->method, sizeof ex->method, value, valuelen);
    } else if (name_is(name, namelen, "content-type")) {
        copy_value(ex->ctype, sizeof ex->ctype, value, valuelen);
    } else if (name_is(name, namelen, "content-encoding")) {
        copy_value(ex->encoding, sizeof ex->encoding, value, valuelen);
    } else if (name_is(name, namelen, "content-length")) {
        uint64_t v;
        if (parse_length(value, valuelen, &v)) {
            ex->has_length = true;
            ex->content_length = v;
        }
    } else if (name_is(name, namelen, "authorization") && ex->srv->cfg.auth) {
        ex->auth_headers++;
        ex->authorized = h2_auth_check(ex->srv->cfg.auth, value, valuelen);
    } else if (name_is(name, namelen, "expect")) {
        char v[32];
        copy_value(v, sizeof v, value, valuelen);
        ex->expect_continue = strcasecmp(v, "100-continue") == 0;
    }
}

bool http_exchange_target(struct http_exchange *ex, const char *t, size_t n)
{
    /* absolute-form (a request to a proxy): "http://host:port/path" */
    if (n > 7 && (strncasecmp(t, "http://", 7) == 0 || (n > 8 && strncasecmp(t, "https://", 8) == 0))) {
        const char *slash = memchr(t + 8, '/', n - 8);
        if (!slash)
            return false;
        n -= (size_t)(slash - t);
        t = slash;
    }
    if (n == 0 || t[0] != '/')
        return false;
    const char *hash = memchr(t, '#', n);
    if (hash)
        n = (size_t)(hash - t);
    const char *q = memchr(t, '?', n);
    ex->query[0] = '\0';
    ex->query_long = false;
    if (q) {
        size_t qn = n - (size_t)(q - t) - 1;
        ex->query_long = qn >= sizeof ex->query;
        if (!ex->query_long)
            copy_printable(ex->query, q + 1, qn);
        n = (size_t)(q - t);
    }
    if (n >= sizeof ex->path) {
        /* Longer than any route: keep a cut form, which matches nothing (404). */
        n = sizeof ex->path - 1;
    }
    copy_printable(ex->path, t, n);
    return true;
}

/* The request as far as it is known, for the handler or an error formatter. */
static void request_view(const struct http_exchange *ex, struct http_request *req,
                         const struct buf *body)
{
    memset(req, 0, sizeof *req);
    req->method = ex->method;
    req->path = ex->path;
    req->query = ex->query;
    req->content_type = ex->ctype;
    req->body = body && body->data ? body->data : (const uint8_t *)"";
    req->length = body ? body->len : 0;
    req->wire_bytes = ex->body.len;
    req->compressed = ex->encoding[0] && strcasecmp(ex->encoding, "identity") != 0;
    req->peer = ex->peer;
    req->protocol = ex->protocol;
}

static void default_error_body(int status, const char *message, struct http_response *resp)
{
    (void)status;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; charset=utf-8");
    if (!buf_printf(&resp->body, "%s\n", message))
        buf_reset(&resp->body);
}

void http_exchange_error(struct http_exchange *ex, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    release_body(ex);
    buf_reset(&ex->resp.body);
    push_abandon(ex->resp.push);
    ex->resp.push = NULL;
    ex->resp.n_headers = 0;
    ex->resp.status = status;
    ex->resp.content_type[0] = '\0';
    ex->resp.retry_after = status == 503 ? 1 : 0;
    ex->resp.www_authenticate[0] = '\0';
    struct http_request req;
    request_view(ex, &req, NULL);
    log_info("http error: peer=%s %s %s %s status=%d: %s", ex->peer, ex->protocol,
             ex->method[0] ? ex->method : "-", ex->path[0] ? ex->path : "-", status, message);
    if (ex->srv->error_fn)
        ex->srv->error_fn(ex->srv->error_ud, &req, status, message, &ex->resp);
    else
        default_error_body(status, message, &ex->resp);
    ex->state = EX_REJECTED;
}

static struct http_route *find_route(struct h2_server *s, const char *path,
                                           const char *method, bool *path_known, char *allow,
                                           size_t allowlen)
{
    struct http_route *hit = NULL;
    size_t n = 0;
    allow[0] = '\0';
    *path_known = false;
    for (size_t i = 0; i < s->nroutes; i++) {
        struct http_route *r = &s->routes[i];
        if (strcmp(r->path, path) != 0)
            continue;
        *path_known = true;
        bool get = strcmp(r->method, "GET") == 0;
        if (strcmp(r->method, method) == 0 || (get && strcmp(method, "HEAD") == 0))
            hit = r;
        int w = snprintf(allow + n, allowlen - n, "%s%s%s", n ? ", " : "", r->method, get ? ", HEAD" : "");
        if (w > 0 && (size_t)w < allowlen - n)
            n += (size_t)w;
    }
    return hit;
}

/* A path whose routes were made public (h2_server_make_public): no token needed. */
static bool path_is_open(const struct h2_server *s, const char *path)
{
    for (size_t i = 0; i < s->nroutes; i++)
        if (s->routes[i].open && strcmp(s->routes[i].path, path) == 0)
            return true;
    return false;
}

enum http_verdict http_exchange_headers_done(struct http_exchange *ex)
{
    struct h2_server *s = ex->srv;
    size_t max = s->cfg.max_message_size;
    bool path_known;
    if (!ex->counted) {
        ex->counted = true;
        s->stats.calls++;
    }
    ex->route = find_route(s, ex->path, ex->method, &path_known, ex->allow, sizeof ex->allow);
    ex->head = strcmp(ex->method, "HEAD") == 0;
    if (s->cfg.auth && !path_is_open(s, ex->path) && !(ex->auth_headers == 1 && ex->authorized)) {
        /* First: without a token nothing about the server is told, not even its paths. */
        s->stats.unauthenticated++;
        http_exchange_error(ex, 401, "%s", ex->auth_headers == 0 ? "a bearer token is required (Authorization: Bearer TOKEN)"
                                           : ex->auth_headers > 1 ? "more than one Authorization header"
                                                                  : "the bearer token is not accepted");
        snprintf(ex->resp.www_authenticate, sizeof ex->resp.www_authenticate, "Bearer realm=\"lazybackend\"%s",
                 ex->auth_headers ? ", error=\"invalid_token\"" : "");
    } else if (ex->query_long) {
        http_exchange_error(ex, 414, "query string longer than %zu bytes", sizeof ex->query - 1);
    } else if (!path_known) {
        http_exchange_error(ex, 404, "no such path: %s", ex->path);
    } else if (!ex->route) {
        http_exchange_error(ex, 405, "method %s is not allowed on %s (allowed: %s)", ex->method,
                            ex->path, ex->allow);
    } else if (ex->has_length && ex->content_length > max) {
        http_exchange_error(ex, 413, "body of %llu bytes is larger than the limit of %zu bytes",
                            (unsigned long long)ex->content_length, max);
    } else if (ex->encoding[0] && strcasecmp(ex->encoding, "identity") != 0 &&
               strcasecmp(ex->encoding, "gzip") != 0 && strcasecmp(ex->encoding, "x-gzip") != 0) {
        http_exchange_error(ex, 415, "Content-Encoding \"%s\" is not supported (supported: gzip, identity)",
                            ex->encoding);
    } else {
        ex->state = EX_BODY;
        return HTTP_GO_ON;
    }
    return HTTP_ANSWER_NOW;
}

enum http_verdict http_exchange_body(struct http_exchange *ex, const uint8_t *p, size_t n)
{
    struct h2_server *s = ex->srv;
    if (ex->state == EX_REJECTED) {
        ex->discarded += n;
        return HTTP_GO_ON;
    }
    if (ex->state != EX_BODY)
        return HTTP_GO_ON;
    size_t max = s->cfg.max_message_size;
    if (n > max - ex->body.len) {
        http_exchange_error(ex, 413, "body larger than the limit of %zu bytes", max);
        ex->discarded += n;
        return HTTP_ANSWER_NOW;
    }
    if (n > s->cfg.max_inflight_bytes - s->inflight) {
        http_exchange_error(ex, 503, "server busy: %zu bytes of requests in flight, limit %zu",
                            s->inflight, s->cfg.max_inflight_bytes);
        ex->discarded += n;
        return HTTP_ANSWER_NOW;
    }
    if (!buf_append(&ex->body, p, n)) {
        http_exchange_error(ex, 503, "server busy: out of memory");
        return HTTP_ANSWER_NOW;
    }
    s->inflight += n;
    ex->held += n;
    return HTTP_GO_ON;
}

/* Inflates a gzip body into `out`; false (and the error response) when that fails. */
static bool inflate_body(struct http_exchange *ex, struct buf *out)
{
    size_t max = ex->srv->cfg.max_message_size;
    char err[128];
    buf_init(out, max);
    switch (gzip_inflate(ex->body.data ? ex->body.data : (const uint8_t *)"", ex->body.len, max,
                         out, err, sizeof err)) {
    case GZIP_OK:
        return true;
    case GZIP_TOO_LARGE:
        http_exchange_error(ex, 413, "body larger than %zu bytes after gzip decompression", max);
        break;
    case GZIP_CORRUPT:
        http_exchange_error(ex, 400, "gzip: %s", err);
        break;
    case GZIP_NOMEM:
        http_exchange_error(ex, 503, "server busy: out of memory");
        break;
    }
    buf_free(out);
    return false;
}

void http_exchange_finish(struct http_exchange *ex)
{
    if (ex->state == EX_REJECTED || ex->state == EX_READY) {
        ex->state = EX_READY;
        return;
    }
    assert(ex->state == EX_BODY);
    if (ex->has_length && ex->body.len != ex->content_length) {
        /* h2 only: HTTP/1.1 framing is the length itself. */
        http_exchange_error(ex, 400, "body of %zu bytes, but content-length said %llu",
                            ex->body.len, (unsigned long long)ex->content_length);
        ex->state = EX_READY;
        return;
    }
    struct buf inflated;
    buf_init(&inflated, 0);
    bool gz = ex->encoding[0] && strcasecmp(ex->encoding, "identity") != 0;
    if (gz && !inflate_body(ex, &inflated)) {
        ex->state = EX_READY;
        return;
    }
    struct http_request req;
    request_view(ex, &req, gz ? &inflated : &ex->body);
    ex->resp.status = 200;
    ex->route->fn(ex->route->ud, &req, &ex->resp);
    ex->resp.content_type[sizeof ex->resp.content_type - 1] = '\0';   /* whatever it did */
    buf_free(&inflated);
    release_body(ex);
    ex->state = EX_READY;
}

void http_exchange_account(struct http_exchange *ex)
{
    struct h2_server *s = ex->srv;
    if (ex->answered)
        return;
    ex->answered = true;
    if (!ex->counted) {
        ex->counted = true;
        s->stats.calls++;
    }
    int st = ex->resp.status;   /* errors are logged where the status was decided */
    enum h2_outcome o = st >= 200 && st < 300 ? H2_OUT_OK
                        : st == 408           ? H2_OUT_TIMED_OUT
                        : st == 413 || st == 431 ? H2_OUT_EXHAUSTED
                        : st == 503           ? H2_OUT_UNAVAILABLE
                        : st < 500            ? H2_OUT_INVALID
                                              : H2_OUT_FAILED;
    count_reply(s, ex->route ? ex->route->replies : NULL, o);
}
