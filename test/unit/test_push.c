/*
 * test_push.c - the transport's long-lived and deferred responses (h2/push.c) and what
 * handlers see and set around them (the query string, extra response headers), on HTTP/1.1:
 * a real server on
 * 127.0.0.1:0 driven by the event loop in short bursts, raw client sockets, expected bytes
 * written by hand. The h2 side of the same responses is tested end to end with curl
 * (test/e2e/ui_api.py, the live tail over h2c; test/e2e/ui_clickhouse.py, deferred responses
 * over h2c).
 */
#include "h2/server.h"
#include "lib/loop.h"
#include "test/unit/check.h"
#include "test/unit/server_rig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fixture {
    struct loop *loop;
    struct h2_server *srv;
    int port;
    struct h2_push *push;   /* the open response, NULL once gone or closed */
    int gone;
    char query[64];
};

static void gone(void *ud, struct h2_push *p)
{
    struct fixture *f = ud;
    CHECK(p == f->push);
    f->push = NULL;
    f->gone++;
}

static void stream(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct fixture *f = ud;
    snprintf(f->query, sizeof f->query, "%s", req->query);
    snprintf(resp->content_type, sizeof resp->content_type, "text/event-stream");
    CHECK(http_response_header(resp, "X-Test", "1"));
    CHECK(!http_response_header(resp, "Bad", "a\r\nb"));   /* no header injection */
    f->push = h2_push_open(resp, gone, f);
    CHECK(f->push != NULL);
    buf_printf(&resp->body, "hello");
}

/* A deferred response: nothing is sent until the test calls h2_defer_send. */
static void later(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct fixture *f = ud;
    (void)req;
    CHECK(http_response_header(resp, "X-Test", "2"));
    f->push = h2_defer_open(resp, gone, f);
    CHECK(f->push != NULL);
}

static void pump(struct fixture *f, unsigned ms)
{
    rig_pump(f->loop, ms);
}

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->loop = loop_new();
    struct h2_server_config cfg = {
        .address = "127.0.0.1:0", .protocol = H2_SERVER_HTTP, .max_message_size = 1 << 20,
    };
    f->srv = h2_server_new(f->loop, &cfg);
    char err[128];
    CHECK(f->srv != NULL);
    CHECK_EQ_INT(h2_server_add_route(f->srv, "GET", "/stream", stream, f), 0);
    CHECK_EQ_INT(h2_server_add_route(f->srv, "GET", "/later", later, f), 0);
    CHECK_EQ_INT(h2_server_listen(f->srv, err, sizeof err), 0);
    f->port = rig_port(f->srv);
}

static void teardown(struct fixture *f)
{
    h2_server_free(f->srv);
    loop_free(f->loop);
}

static int client(const struct fixture *f, const char *request)
{
    int fd = rig_connect(f->port, 4096);
    if (fd < 0)
        return -1;
    CHECK(send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request));
    return fd;
}

/* Everything readable now, appended; *eof set when the server closed. */
static void take(int fd, struct buf *into, bool *eof)
{
    *eof = false;
    for (;;) {
        if (!buf_reserve(into, 65536))
            return;
        ssize_t n = recv(fd, into->data + into->len, 65536, 0);
        if (n > 0) {
            into->len += (size_t)n;
            continue;
        }
        *eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        return;
    }
}

static bool has(const struct buf *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static bool ends(const struct buf *b, const char *s)
{
    size_t n = strlen(s);
    return b->len >= n && memcmp(b->data + b->len - n, s, n) == 0;
}

TEST(a_response_stays_open_and_grows_until_closed)
{
    struct fixture f;
    setup(&f);
    int fd = client(&f, "GET /stream?x=1&y=%20 HTTP/1.1\r\nHost: x\r\n\r\n");
    struct buf in;
    buf_init(&in, 1 << 20);
    bool eof;
    pump(&f, 100);
    take(fd, &in, &eof);
    CHECK_EQ_STR(f.query, "x=1&y=%20");
    CHECK(has(&in, "HTTP/1.1 200 OK\r\n") && has(&in, "Transfer-Encoding: chunked\r\n") &&
          has(&in, "X-Test: 1\r\n") && !has(&in, "Content-Length") && !has(&in, "Bad"));
    CHECK(ends(&in, "\r\n\r\n5\r\nhello\r\n") && !eof);
    CHECK(f.push != NULL);
    CHECK(h2_push_write(f.push, "more", 4));
    CHECK(h2_push_write(f.push, "", 0));   /* nothing: not the last chunk */
    pump(&f, 50);
    take(fd, &in, &eof);
    CHECK(ends(&in, "5\r\nhello\r\n4\r\nmore\r\n") && !eof);
    h2_push_close(f.push);
    f.push = NULL;
    pump(&f, 50);
    take(fd, &in, &eof);
    CHECK(ends(&in, "4\r\nmore\r\n0\r\n\r\n"));
    CHECK(eof);   /* the connection carried the response only: closed after it */
    CHECK_EQ_INT(f.gone, 0);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(a_client_that_leaves_is_told_once)
{
    struct fixture f;
    setup(&f);
    int fd = client(&f, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&f, 100);
    CHECK(f.push != NULL);
    close(fd);
    pump(&f, 100);
    CHECK_EQ_INT(f.gone, 1);
    CHECK(f.push == NULL);
    teardown(&f);
    CHECK_EQ_INT(f.gone, 1);
}

TEST(a_client_that_does_not_read_is_refused_more)
{
    struct fixture f;
    setup(&f);
    int fd = client(&f, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&f, 100);
    CHECK(f.push != NULL);
    static char chunk[64 * 1024];
    memset(chunk, 'x', sizeof chunk);
    int accepted = 0;
    while (accepted < 256 && h2_push_write(f.push, chunk, sizeof chunk)) {   /* bounded: 16 MiB */
        accepted++;
        pump(&f, 1);
    }
    CHECK(accepted < 256);   /* refused before 16 MiB: the bound is H2_PUSH_MAX_PENDING unsent */
    CHECK(accepted >= H2_PUSH_MAX_PENDING / (int)sizeof chunk - 1);
    h2_push_close(f.push);
    f.push = NULL;
    CHECK_EQ_INT(f.gone, 0);
    close(fd);
    teardown(&f);
}

TEST(head_and_http10_do_not_stay_open)
{
    static const char *const requests[] = { "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n",
                                            "GET /stream HTTP/1.0\r\n\r\n" };
    for (int i = 0; i < 2; i++) {
        struct fixture f;
        setup(&f);
        int fd = client(&f, requests[i]);
        pump(&f, 100);
        CHECK_EQ_INT(f.gone, 1);   /* told right after the handler */
        struct buf in;
        buf_init(&in, 1 << 20);
        bool eof;
        take(fd, &in, &eof);
        CHECK(has(&in, "Content-Length: 5\r\n") && !has(&in, "chunked"));
        buf_free(&in);
        close(fd);
        teardown(&f);
    }
}

TEST(shutdown_ends_open_responses)
{
    struct fixture f;
    setup(&f);
    int fd = client(&f, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&f, 100);
    CHECK(f.push != NULL);
    h2_server_shutdown(f.srv);
    pump(&f, 50);
    CHECK_EQ_INT(f.gone, 1);
    CHECK(h2_server_drained(f.srv));
    close(fd);
    teardown(&f);
}

TEST(an_overlong_query_is_414)
{
    struct fixture f;
    setup(&f);
    char req[2200];
    char q[1700];
    memset(q, 'a', sizeof q - 1);
    q[sizeof q - 1] = 0;
    snprintf(req, sizeof req, "GET /stream?%s HTTP/1.1\r\nHost: x\r\n\r\n", q);
    int fd = client(&f, req);
    pump(&f, 100);
    struct buf in;
    buf_init(&in, 1 << 20);
    bool eof;
    take(fd, &in, &eof);
    CHECK(has(&in, "HTTP/1.1 414 URI Too Long\r\n"));
    CHECK(f.push == NULL && f.gone == 0);   /* the handler never ran */
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(a_deferred_response_is_sent_whole_when_the_application_says)
{
    struct fixture f;
    setup(&f);
    /* a pipelined second request: the connection carries the deferred one only */
    int fd = client(&f, "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    struct buf in;
    buf_init(&in, 1 << 20);
    bool eof;
    pump(&f, 100);
    take(fd, &in, &eof);
    CHECK(in.len == 0 && !eof && f.push != NULL);   /* nothing yet */
    struct http_response *r = h2_defer_response(f.push);
    r->status = 502;
    snprintf(r->content_type, sizeof r->content_type, "application/json");
    buf_printf(&r->body, "{\"error\":\"upstream\"}");
    h2_defer_send(f.push);
    f.push = NULL;
    pump(&f, 100);
    take(fd, &in, &eof);
    CHECK(has(&in, "HTTP/1.1 502 Bad Gateway\r\n") && has(&in, "X-Test: 2\r\n") &&
          has(&in, "Content-Length: 20\r\n") && has(&in, "Connection: close\r\n"));
    CHECK(ends(&in, "\r\n\r\n{\"error\":\"upstream\"}") && eof);
    CHECK(!has(&in, "HTTP/1.1 200"));   /* the pipelined request was not served */
    CHECK_EQ_INT(f.gone, 0);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(a_client_gone_before_a_deferred_response_is_told_once)
{
    struct fixture f;
    setup(&f);
    int fd = client(&f, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    pump(&f, 100);
    CHECK(f.push != NULL && f.gone == 0);
    close(fd);
    pump(&f, 100);
    CHECK(f.push == NULL && f.gone == 1);
    teardown(&f);
}

int main(void)
{
    RUN(a_response_stays_open_and_grows_until_closed);
    RUN(a_client_that_leaves_is_told_once);
    RUN(a_client_that_does_not_read_is_refused_more);
    RUN(head_and_http10_do_not_stay_open);
    RUN(shutdown_ends_open_responses);
    RUN(an_overlong_query_is_414);
    RUN(a_deferred_response_is_sent_whole_when_the_application_says);
    RUN(a_client_gone_before_a_deferred_response_is_told_once);
    return check_done();
}
