/*
 * http_post.c - one POST at a time on libcurl's multi interface, on the event loop
 * (http_post.h says why). Each socket curl wants watched goes on the loop and is also kept in
 * a small table, so that http_post_poll can wait on the same sockets with poll(2) once the
 * loop has stopped; curl's timeout is a loop timer, and its due time is kept for the same
 * reason.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"

#define MAX_SOCKETS 8                      /* one connection, plus a resolver socket at most */
#define MAX_HEADER_BYTES ((size_t)64 << 10)   /* headers and trailers of one answer */

struct sock {
    curl_socket_t fd;
    int what;                              /* CURL_POLL_IN / OUT / INOUT */
};

struct http_post {
    struct loop *loop;
    CURLM *multi;
    CURL *tmpl;                            /* every option but the request's own */
    CURL *easy;                            /* the request in flight: a copy of tmpl */
    struct curl_slist *headers;
    struct curl_slist *headers_gzip;       /* the same, and Content-Encoding: gzip */
    size_t max_answer;
    bool running;
    bool closing;                          /* in http_post_free: curl's last calls set no timer */
    bool h2c_no_reuse;                     /* see http_post_start */
    bool too_large;
    uint64_t timer;                        /* loop timer standing for curl's timeout, 0 = none */
    int64_t timer_due;                     /* the same as an absolute now_ms(), -1 = none */
    struct sock socks[MAX_SOCKETS];
    size_t nsocks;
    struct buf answer;
    struct buf heads;                      /* "name\0value\0" pairs of the last answer */
    char errbuf[CURL_ERROR_SIZE];
    http_post_done_fn done;
    void *ud;
};

static char on_loop_marker;   /* curl_multi_assign's value for a socket that is on the loop */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deliver(struct http_post *h, CURLcode code)
{
    struct http_post_result r = { 0 };
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_off_t after = 0;
    if (curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
        r.retry_after_s = after > 86400 ? 86400 : (long)after;
    curl_multi_remove_handle(h->multi, h->easy);
    curl_easy_cleanup(h->easy);
    h->easy = NULL;
    h->running = false;
    r.curl_code = (int)code;
    r.error = code == CURLE_OK ? "" : h->errbuf[0] ? h->errbuf : curl_easy_strerror(code);
    /* Room for the NUL was kept (on_answer): the answer can be read as a string. */
    if (buf_putc(&h->answer, 0))
        h->answer.len--;
    r.body = h->answer.data ? h->answer.data : (const uint8_t *)"";
    r.body_len = h->answer.len;
    r.too_large = h->too_large;
    h->done(h->ud, &r);   /* may start the next request */
}

static void drive(struct http_post *h, curl_socket_t fd, int flags)
{
    int still;
    curl_multi_socket_action(h->multi, fd, flags, &still);
    CURLMsg *msg;
    int queued;
    while (h->running && (msg = curl_multi_info_read(h->multi, &queued)) != NULL)
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->easy)
            deliver(h, msg->data.result);
}

static void on_socket_ready(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    drive(ud, fd, (events & LOOP_READ ? CURL_CSELECT_IN : 0) | (events & LOOP_WRITE ? CURL_CSELECT_OUT : 0));
}

static void on_timeout(struct loop *l, void *ud)
{
    (void)l;
    struct http_post *h = ud;
    h->timer = 0;
    h->timer_due = -1;
    drive(h, CURL_SOCKET_TIMEOUT, 0);
}

static void forget_socket(struct http_post *h, curl_socket_t fd)
{
    for (size_t i = 0; i < h->nsocks; i++)
        if (h->socks[i].fd == fd) {
            h->socks[i] = h->socks[--h->nsocks];
            return;
        }
}

static int want_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    struct http_post *h = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp)
            loop_del_fd(h->loop, fd);
        forget_socket(h, fd);
        return 0;
    }
    int events = (what & CURL_POLL_IN ? LOOP_READ : 0) | (what & CURL_POLL_OUT ? LOOP_WRITE : 0);
    size_t i = 0;
    while (i < h->nsocks && h->socks[i].fd != fd)
        i++;
    if (i == h->nsocks) {
        if (h->nsocks == MAX_SOCKETS) {
            log_error("http: more than %d sockets for one request", MAX_SOCKETS);
            return -1;
        }
        h->socks[h->nsocks++] = (struct sock){ .fd = fd };
    }
    h->socks[i].what = what;
    int rc = socketp ? loop_mod_fd(h->loop, fd, events) : loop_add_fd(h->loop, fd, events, on_socket_ready, h);
    if (rc != 0) {
        log_error("http: cannot watch socket %d: %s", (int)fd, strerror(errno));
        return -1;
    }
    if (!socketp)
        curl_multi_assign(h->multi, fd, &on_loop_marker);
    return 0;
}

static int want_timer(CURLM *m, long ms, void *userp)
{
    (void)m;
    struct http_post *h = userp;
    if (h->timer)
        loop_del_timer(h->loop, h->timer);
    h->timer = 0;
    h->timer_due = -1;
    if (ms < 0 || h->closing)
        return 0;
    h->timer_due = now_ms() + ms;
    return (h->timer = loop_add_timer(h->loop, (uint64_t)ms, on_timeout, h)) ? 0 : -1;
}

static size_t on_answer(char *p, size_t size, size_t n, void *ud)
{
    struct http_post *h = ud;
    if (size * n > h->max_answer - h->answer.len || !buf_append(&h->answer, p, size * n)) {
        h->too_large = true;
        return 0;   /* curl stops with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Headers, then (HTTP/2) trailers, one line per call. A status line starts a new answer
 * (a 100 Continue's headers are not the final answer's). Lines past the cap are dropped. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_post *h = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        buf_reset(&h->heads);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p)
        return len;
    size_t name_len = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t mark = h->heads.len;
    if (!buf_append(&h->heads, p, name_len) || !buf_putc(&h->heads, 0) ||
        !buf_append(&h->heads, v, (size_t)(end - v)) || !buf_putc(&h->heads, 0))
        h->heads.len = mark;
    return len;
}

static bool add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l)
        *list = l;
    return l != NULL;
}

struct http_post *http_post_new(struct loop *loop, const struct http_post_options *o, http_post_done_fn done,
                                void *ud, char *err, size_t errlen)
{
    struct http_post *h = malloc(sizeof *h);
    bool started = h && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!started) {   /* http_post_free would end a libcurl that did not start */
        snprintf(err, errlen, h ? "libcurl did not start" : "out of memory");
        free(h);
        return NULL;
    }
    *h = (struct http_post){ .loop = loop, .done = done, .ud = ud, .timer_due = -1, .max_answer = o->max_answer };
    buf_init(&h->answer, o->max_answer + 1);   /* + the NUL that deliver puts after it */
    buf_init(&h->heads, MAX_HEADER_BYTES);
    bool ok = add_header(&h->headers, "Expect:") && add_header(&h->headers_gzip, "Expect:") &&
              add_header(&h->headers_gzip, "Content-Encoding: gzip");
    for (size_t i = 0; ok && i < o->n_headers; i++)
        ok = add_header(&h->headers, o->headers[i]) && add_header(&h->headers_gzip, o->headers[i]);
    h->multi = curl_multi_init();
    h->tmpl = curl_easy_init();
    ok = ok && h->multi && h->tmpl &&
         curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, want_socket) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, want_timer) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) == CURLM_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_USERAGENT, o->user_agent) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_POST, 1L) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1") == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_WRITEFUNCTION, on_answer) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_WRITEDATA, h) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
         curl_easy_setopt(h->tmpl, CURLOPT_HEADERDATA, h) == CURLE_OK &&
         (!o->ca_file || curl_easy_setopt(h->tmpl, CURLOPT_CAINFO, o->ca_file) == CURLE_OK) &&
         (!o->user || !o->user[0] ||
          (curl_easy_setopt(h->tmpl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
           curl_easy_setopt(h->tmpl, CURLOPT_USERNAME, o->user) == CURLE_OK &&
           curl_easy_setopt(h->tmpl, CURLOPT_PASSWORD, o->password ? o->password : "") == CURLE_OK)) &&
         (o->connect_timeout_ms <= 0 ||
          curl_easy_setopt(h->tmpl, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms) == CURLE_OK);
    /* gRPC answers are not content-encoded by HTTP (grpc-encoding is its own): only OTLP/HTTP
     * asks for a compressed answer. */
    if (ok && o->http2)
        ok = curl_easy_setopt(h->tmpl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE) == CURLE_OK;
    else if (ok)
        ok = curl_easy_setopt(h->tmpl, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK;
    /* libcurl before 8.0 fails the second request on a kept h2c (prior knowledge) connection
     * with "Error in the HTTP2 framing layer" (curl issue 10634): there, one connection per
     * request. TLS connections negotiate HTTP/2 by ALPN and are kept. */
    h->h2c_no_reuse = o->http2 && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    if (!ok) {
        snprintf(err, errlen, "cannot set up libcurl");
        http_post_free(h);
        return NULL;
    }
    return h;
}

void http_post_free(struct http_post *h)
{
    if (!h)
        return;
    h->closing = true;
    if (h->timer)
        loop_del_timer(h->loop, h->timer);
    h->timer = 0;
    http_post_cancel(h);
    curl_easy_cleanup(h->tmpl);      /* both take NULL */
    curl_multi_cleanup(h->multi);    /* closes the kept connection: its REMOVE comes here */
    curl_slist_free_all(h->headers);
    curl_slist_free_all(h->headers_gzip);
    buf_free(&h->answer);
    buf_free(&h->heads);
    free(h);
    curl_global_cleanup();
}

static int start(struct http_post *h, const char *url, const void *body, size_t len, uint64_t timeout_ms, bool gzip)
{
    if (h->running)
        return -1;
    buf_reset(&h->answer);
    buf_reset(&h->heads);
    h->too_large = false;
    h->errbuf[0] = 0;
    /* A fresh copy of the template per request, so that nothing of the last one is left. */
    if (!(h->easy = curl_easy_duphandle(h->tmpl)))
        return -1;
    bool h2c = h->h2c_no_reuse && strncasecmp(url, "http://", 7) == 0;
    if (curl_easy_setopt(h->easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, gzip ? h->headers_gzip : h->headers) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, h2c ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, len ? body : "") != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 86400000 ? 86400000 : timeout_ms)) != CURLE_OK ||
        curl_multi_add_handle(h->multi, h->easy) != CURLM_OK) {
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
        return -1;
    }
    h->running = true;
    return 0;
}

int http_post_start(struct http_post *h, const char *url, const void *body, size_t len, uint64_t timeout_ms)
{
    return start(h, url, body, len, timeout_ms, false);
}

int http_post_start_gzip(struct http_post *h, const char *url, const void *body, size_t len, uint64_t timeout_ms)
{
    return start(h, url, body, len, timeout_ms, true);
}

bool http_post_busy(const struct http_post *h) { return h->running; }

void http_post_cancel(struct http_post *h)
{
    if (h->running)
        curl_multi_remove_handle(h->multi, h->easy);
    curl_easy_cleanup(h->easy);
    h->easy = NULL;
    h->running = false;
}

void http_post_poll(struct http_post *h, int timeout_ms)
{
    struct pollfd pfd[MAX_SOCKETS];
    size_t n = h->nsocks;
    for (size_t i = 0; i < n; i++) {
        int w = h->socks[i].what;
        pfd[i] = (struct pollfd){
            .fd = h->socks[i].fd,
            .events = (short)((w & CURL_POLL_IN ? POLLIN : 0) | (w & CURL_POLL_OUT ? POLLOUT : 0)),
        };
    }
    if (h->timer_due >= 0) {
        int64_t left = h->timer_due - now_ms();
        if (left < timeout_ms)
            timeout_ms = left < 0 ? 0 : (int)left;
    }
    int k = poll(pfd, (nfds_t)n, timeout_ms < 0 ? 0 : timeout_ms);
    for (size_t i = 0; k > 0 && i < n && h->running; i++) {
        if (!pfd[i].revents)
            continue;
        int flags = (pfd[i].revents & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
                    (pfd[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) | (pfd[i].revents & POLLERR ? CURL_CSELECT_ERR : 0);
        drive(h, pfd[i].fd, flags);
    }
    if (h->running && h->timer_due >= 0 && now_ms() >= h->timer_due) {
        if (h->timer)
            loop_del_timer(h->loop, h->timer);
        h->timer = 0;
        h->timer_due = -1;
        drive(h, CURL_SOCKET_TIMEOUT, 0);
    }
}

const char *http_post_header(const struct http_post *h, const char *name)
{
    const char *found = NULL;
    const char *p = (const char *)h->heads.data, *end = p + h->heads.len;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            found = v;
        p = v + strlen(v) + 1;
    }
    return found;
}

bool http_post_retryable(const struct http_post_result *r)
{
    if (r->too_large)
        return false;
    switch ((CURLcode)r->curl_code) {
    case CURLE_OK:
        return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}
