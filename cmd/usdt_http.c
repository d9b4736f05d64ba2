/*
 * usdt_http.c - the bridge's OTLP/HTTP client: one POST at a time on libcurl's multi
 * interface, driven by the process's event loop.
 *
 * Why the multi interface: the same thread reads bpftrace's output; a receiver that is slow
 * or gone must never stop that reading (bpftrace's buffers would overflow and lose events).
 * libcurl says which sockets to watch and when to call it back; each watched socket carries
 * a marker (curl_multi_assign) saying it is on the loop, and curl's timeout is a loop timer.
 * One easy handle is reused, so the connection to the receiver is kept alive between
 * batches.
 *
 * Loopback never goes through a proxy (the default receiver is a local lazybackend).
 * The answer is kept up to 4 MiB (the OTLP specification's cap on what a client parses; a
 * larger one is an error that is not retried), with the status and Retry-After.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/usdt_internal.h"
#include "cmd/version.h"
#include "lib/buf.h"
#include "lib/log.h"

#define MAX_ANSWER ((size_t)4 << 20)

struct usdt_http {
    struct loop *loop;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    bool running;
    bool closing;            /* in usdt_http_free: curl's last calls set no timer */
    bool too_large;
    uint64_t timer;
    struct buf answer;
    char errbuf[CURL_ERROR_SIZE];
    usdt_http_done_fn done;
    void *ud;
};

static char on_loop_marker;   /* curl_multi_assign's value for a socket that is on the loop */

static void deliver(struct usdt_http *h, CURLcode code)
{
    struct usdt_http_result r = { 0 };
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_off_t after = 0;
    if (curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
        r.retry_after_s = after > 86400 ? 86400 : (long)after;
    curl_multi_remove_handle(h->multi, h->easy);
    h->running = false;
    r.curl_code = (int)code;
    r.error = code == CURLE_OK ? "" : h->errbuf[0] ? h->errbuf : curl_easy_strerror(code);
    r.body = h->answer.data;
    r.body_len = h->answer.len;
    r.too_large = h->too_large;
    h->done(h->ud, &r);   /* may post the next request */
}

static void drive(struct usdt_http *h, curl_socket_t fd, int flags)
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
    struct usdt_http *h = ud;
    h->timer = 0;
    drive(h, CURL_SOCKET_TIMEOUT, 0);
}

static int want_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    struct usdt_http *h = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp)
            loop_del_fd(h->loop, fd);
        return 0;
    }
    int events = (what & CURL_POLL_IN ? LOOP_READ : 0) | (what & CURL_POLL_OUT ? LOOP_WRITE : 0);
    int rc = socketp ? loop_mod_fd(h->loop, fd, events) : loop_add_fd(h->loop, fd, events, on_socket_ready, h);
    if (rc != 0) {
        log_error("usdt: export: cannot watch socket %d: %s", (int)fd, strerror(errno));
        return -1;
    }
    if (!socketp)
        curl_multi_assign(h->multi, fd, &on_loop_marker);
    return 0;
}

static int want_timer(CURLM *m, long ms, void *userp)
{
    (void)m;
    struct usdt_http *h = userp;
    if (h->timer)
        loop_del_timer(h->loop, h->timer);
    h->timer = 0;
    if (ms >= 0 && !h->closing && !(h->timer = loop_add_timer(h->loop, (uint64_t)ms, on_timeout, h)))
        return -1;
    return 0;
}

static size_t on_answer(char *p, size_t size, size_t n, void *ud)
{
    struct usdt_http *h = ud;
    if (!buf_append(&h->answer, p, size * n)) {
        h->too_large = true;
        return 0;   /* curl stops with CURLE_WRITE_ERROR */
    }
    return size * n;
}

struct usdt_http *usdt_http_new(struct loop *loop, const char *url, const char *const *headers, size_t n_headers,
                                usdt_http_done_fn done, void *ud, char *err, size_t errlen)
{
    struct usdt_http *h = malloc(sizeof *h);
    bool started = h && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!started) {   /* usdt_http_free would end a libcurl that did not start */
        snprintf(err, errlen, h ? "libcurl did not start" : "out of memory");
        free(h);
        return NULL;
    }
    *h = (struct usdt_http){ .loop = loop, .done = done, .ud = ud };
    buf_init(&h->answer, MAX_ANSWER);
    bool ok = true;
    for (size_t i = 0; ok && i < n_headers; i++) {
        struct curl_slist *l = curl_slist_append(h->headers, headers[i]);
        ok = l != NULL;
        h->headers = l ? l : h->headers;
    }
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    ok = ok && h->multi && h->easy &&
         curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, want_socket) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, want_timer) == CURLM_OK &&
         curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) == CURLM_OK &&
         curl_easy_setopt(h->easy, CURLOPT_URL, url) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "lazybackend-usdt/" LAZYBACKEND_VERSION) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_POST, 1L) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1") == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_answer) == CURLE_OK &&
         curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h) == CURLE_OK;
    if (!ok) {
        snprintf(err, errlen, "cannot set up libcurl for %s", url);
        usdt_http_free(h);
        return NULL;
    }
    return h;
}

void usdt_http_free(struct usdt_http *h)
{
    if (!h)
        return;
    h->closing = true;
    if (h->timer)
        loop_del_timer(h->loop, h->timer);
    h->timer = 0;
    usdt_http_cancel(h);
    curl_easy_cleanup(h->easy);      /* both take NULL */
    curl_multi_cleanup(h->multi);    /* closes the kept connection: its REMOVE comes here */
    curl_slist_free_all(h->headers);
    buf_free(&h->answer);
    free(h);
    curl_global_cleanup();
}

int usdt_http_post(struct usdt_http *h, const void *body, size_t len, uint64_t timeout_ms)
{
    if (h->running)
        return -1;
    buf_reset(&h->answer);
    h->too_large = false;
    h->errbuf[0] = 0;
    if (curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, len ? body : "") != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 86400000 ? 86400000 : timeout_ms)) != CURLE_OK ||
        curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return -1;
    h->running = true;
    return 0;
}

void usdt_http_cancel(struct usdt_http *h)
{
    if (h->running)
        curl_multi_remove_handle(h->multi, h->easy);
    h->running = false;
}

bool usdt_http_retryable(const struct usdt_http_result *r)
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
        return true;
    default:
        return false;
    }
}
