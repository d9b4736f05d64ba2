/*
 * http.c - the ClickHouse sink's HTTP client: libcurl's multi interface driven by the
 * process's event loop, so a slow or dead ClickHouse never blocks the thread that serves
 * gRPC.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> loop_add/mod/del_fd)
 * and when to call it back (CURLMOPT_TIMERFUNCTION -> a loop timer); readiness and timeouts
 * go back through curl_multi_socket_action. One easy handle is reused for every request so
 * the HTTP/1.1 connection is kept alive between inserts. At shutdown the loop has stopped, so
 * ch_http_poll waits on the same sockets with poll(2) and drives curl the same way.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"

#define MAX_BODY ((size_t)64 << 10)   /* error texts are short; the rest is not kept */
#define MAX_SOCKETS 8                 /* one connection (plus a resolver socket, at most) */

struct sock {
    curl_socket_t fd;
    int what;          /* CURL_POLL_IN / OUT / INOUT */
};

struct ch_http {
    struct loop *loop;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdr_gzip, *hdr_plain;
    bool busy;
    uint64_t timer_id;       /* loop timer standing for curl's timeout, 0 = none */
    int64_t timer_due;       /* the same as an absolute ch_now_ms(), -1 = none */
    struct sock socks[MAX_SOCKETS];
    size_t nsocks;
    struct buf body;
    char errbuf[CURL_ERROR_SIZE];
    ch_http_done_fn done;
    void *ud;
};

uint64_t ch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- completions ---- */

static void finish(struct ch_http *h, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(h->multi, h->easy);
    h->busy = false;
    if (!buf_putc(&h->body, 0))   /* NUL-terminate; the cap leaves room (see on_body) */
        h->body.len = 0;
    else
        h->body.len--;
    struct ch_http_result res = {
        .ok = code == CURLE_OK && status == 200,
        .status = status,
        .curl_code = (int)code,
        .body = h->body.data ? (const char *)h->body.data : "",
        .body_len = h->body.len,
        .error = code == CURLE_OK ? "" : (h->errbuf[0] ? h->errbuf : curl_easy_strerror(code)),
    };
    h->done(h->ud, &res);   /* may start the next request */
}

static void check_done(struct ch_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy && h->busy) {
            finish(h, m->data.result);
            return;   /* the callback may have reused the handle; nothing else is queued */
        }
    }
}

static void socket_action(struct ch_http *h, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

/* ---- the loop side ---- */

static void on_fd(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    int flags = 0;
    if (events & LOOP_READ)
        flags |= CURL_CSELECT_IN;
    if (events & LOOP_WRITE)
        flags |= CURL_CSELECT_OUT;
    socket_action(ud, fd, flags);
}

static void on_timer(struct loop *l, void *ud)
{
    (void)l;
    struct ch_http *h = ud;
    h->timer_id = 0;
    h->timer_due = -1;
    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

static int loop_events(int what)
{
    return (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? LOOP_READ : 0) |
           (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? LOOP_WRITE : 0);
}

static struct sock *find_sock(struct ch_http *h, curl_socket_t fd)
{
    for (size_t i = 0; i < h->nsocks; i++)
        if (h->socks[i].fd == fd)
            return &h->socks[i];
    return NULL;
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    struct ch_http *h = userp;
    struct sock *s = find_sock(h, fd);
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            loop_del_fd(h->loop, fd);
            *s = h->socks[--h->nsocks];
        }
        return 0;
    }
    if (!s) {
        if (h->nsocks == MAX_SOCKETS || loop_add_fd(h->loop, fd, loop_events(what), on_fd, h) != 0) {
            log_error("clickhouse: cannot watch socket %d: %s", (int)fd, strerror(errno));
            return -1;
        }
        s = &h->socks[h->nsocks++];
        s->fd = fd;
    } else if (loop_mod_fd(h->loop, fd, loop_events(what)) != 0) {
        log_error("clickhouse: cannot watch socket %d: %s", (int)fd, strerror(errno));
        return -1;
    }
    s->what = what;
    return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct ch_http *h = userp;
    if (h->timer_id) {
        loop_del_timer(h->loop, h->timer_id);
        h->timer_id = 0;
    }
    h->timer_due = -1;
    if (timeout_ms < 0)
        return 0;
    h->timer_due = (int64_t)(ch_now_ms() + (uint64_t)timeout_ms);
    h->timer_id = loop_add_timer(h->loop, (uint64_t)timeout_ms, on_timer, h);
    return h->timer_id ? 0 : -1;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct ch_http *h = ud;
    size_t len = size * n;
    size_t room = h->body.len < MAX_BODY ? MAX_BODY - h->body.len : 0;
    (void)buf_append(&h->body, p, len < room ? len : room);
    return len;   /* the rest is read and dropped: only the start of an error matters */
}

/* ---- life cycle ---- */

static bool setup_easy(struct ch_http *h, const struct ch_http_options *o)
{
    CURL *e = h->easy;
    bool ok = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEDATA, h) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK;
    if (ok && o->user && o->user[0]) {
        ok = curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_USERNAME, o->user) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PASSWORD, o->password ? o->password : "") == CURLE_OK;
    }
    return ok;
}

struct ch_http *ch_http_new(struct loop *loop, const struct ch_http_options *o, ch_http_done_fn done,
                            void *ud, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    struct ch_http *h = calloc(1, sizeof *h);
    if (!h) {
        curl_global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->done = done;
    h->ud = ud;
    h->timer_due = -1;
    buf_init(&h->body, MAX_BODY + 1);
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    /* "Expect:" off: curl would wait up to a second for "100 Continue" on large bodies. */
    h->hdr_plain = curl_slist_append(NULL, "Expect:");
    h->hdr_plain = h->hdr_plain ? curl_slist_append(h->hdr_plain, "Content-Type: application/octet-stream") : NULL;
    h->hdr_gzip = curl_slist_append(NULL, "Expect:");
    h->hdr_gzip = h->hdr_gzip ? curl_slist_append(h->hdr_gzip, "Content-Type: application/octet-stream") : NULL;
    h->hdr_gzip = h->hdr_gzip ? curl_slist_append(h->hdr_gzip, "Content-Encoding: gzip") : NULL;
    if (!h->multi || !h->easy || !h->hdr_plain || !h->hdr_gzip || !setup_easy(h, o) ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        snprintf(err, errlen, "cannot set up libcurl");
        ch_http_free(h);
        return NULL;
    }
    return h;
}

void ch_http_free(struct ch_http *h)
{
    if (!h)
        return;
    ch_http_cancel(h);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);   /* closes the kept-alive connection: REMOVE callbacks */
    if (h->timer_id)
        loop_del_timer(h->loop, h->timer_id);
    for (size_t i = 0; i < h->nsocks; i++)
        loop_del_fd(h->loop, h->socks[i].fd);
    curl_slist_free_all(h->hdr_plain);
    curl_slist_free_all(h->hdr_gzip);
    buf_free(&h->body);
    free(h);
    curl_global_cleanup();
}

bool ch_http_busy(const struct ch_http *h) { return h->busy; }

int ch_http_post(struct ch_http *h, const char *url, const void *body, size_t len, bool gzip)
{
    if (h->busy)
        return -1;
    buf_reset(&h->body);
    h->errbuf[0] = 0;
    if (curl_easy_setopt(h->easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, gzip ? h->hdr_gzip : h->hdr_plain) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, len ? body : "") != CURLE_OK)
        return -1;
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
        return -1;
    h->busy = true;
    return 0;
}

void ch_http_cancel(struct ch_http *h)
{
    if (!h->busy)
        return;
    curl_multi_remove_handle(h->multi, h->easy);
    h->busy = false;
}

/* ---- without the loop ---- */

void ch_http_poll(struct ch_http *h, int timeout_ms)
{
    struct pollfd pfd[MAX_SOCKETS];
    size_t n = h->nsocks;
    for (size_t i = 0; i < n; i++) {
        int w = h->socks[i].what;
        pfd[i] = (struct pollfd){
            .fd = h->socks[i].fd,
            .events = (short)((w == CURL_POLL_IN || w == CURL_POLL_INOUT ? POLLIN : 0) |
                              (w == CURL_POLL_OUT || w == CURL_POLL_INOUT ? POLLOUT : 0)),
        };
    }
    if (h->timer_due >= 0) {
        int64_t left = h->timer_due - (int64_t)ch_now_ms();
        if (left < timeout_ms)
            timeout_ms = left < 0 ? 0 : (int)left;
    }
    int k = poll(pfd, (nfds_t)n, timeout_ms < 0 ? 0 : timeout_ms);
    if (k < 0 && errno != EINTR)
        return;
    for (size_t i = 0; k > 0 && i < n; i++) {
        int flags = 0;
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
            flags |= CURL_CSELECT_IN;
        if (pfd[i].revents & POLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (pfd[i].revents & POLLERR)
            flags |= CURL_CSELECT_ERR;
        if (flags)
            socket_action(h, pfd[i].fd, flags);   /* may change h->socks: we use our copy */
    }
    if (h->timer_due >= 0 && (int64_t)ch_now_ms() >= h->timer_due) {
        h->timer_due = -1;
        if (h->timer_id) {
            loop_del_timer(h->loop, h->timer_id);
            h->timer_id = 0;
        }
        socket_action(h, CURL_SOCKET_TIMEOUT, 0);
    }
}
