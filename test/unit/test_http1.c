/*
 * test_http1.c - the HTTP port's HTTP/1.1 side (h2/http1.c, h2/http.c) in one process: a real
 * server on 127.0.0.1:0 driven by the event loop in short bursts, and raw client sockets.
 *
 * Why here and not only end to end: these pin the mechanics a client cannot easily provoke on
 * purpose - pipelined requests held back while a slow reader has not taken the responses,
 * chunk extensions and trailers, the absolute request form, gzip handed to the handler
 * decompressed, the request timeout, and the lingering close after a refused upload.
 * Expected bytes are written by hand.
 */
#include "h2/server.h"
#include "lib/gzip.h"
#include "lib/loop.h"
#include "test/unit/check.h"
#include "test/unit/server_rig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BIG = 1 << 20 };

struct fixture {
    struct loop *loop;
    struct h2_server *srv;
    int port;
    int handled;
    char body[256];
    size_t body_len;
    bool compressed;
    char protocol[16];
};

static void echo(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct fixture *f = ud;
    f->handled++;
    f->body_len = req->length;
    f->compressed = req->compressed;
    snprintf(f->protocol, sizeof f->protocol, "%s", req->protocol);
    size_t n = req->length < sizeof f->body - 1 ? req->length : sizeof f->body - 1;
    memcpy(f->body, req->body, n);
    f->body[n] = 0;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain");
    buf_printf(&resp->body, "n=%zu", req->length);
}

/* 1 MiB of the digit of its request's number, so a response's order can be seen. */
static void big(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct fixture *f = ud;
    char c = (char)('0' + f->handled % 10);
    f->handled++;
    if (buf_reserve(&resp->body, BIG)) {
        memset(resp->body.data, c, BIG);
        resp->body.len = BIG;
    }
}

static void pump(struct fixture *f, unsigned ms)
{
    rig_pump(f->loop, ms);
}

static void setup(struct fixture *f, size_t max_message, unsigned request_timeout_ms)
{
    memset(f, 0, sizeof *f);
    f->loop = loop_new();
    struct h2_server_config cfg = {
        .address = "127.0.0.1:0", .protocol = H2_SERVER_HTTP, .max_message_size = max_message,
        .request_timeout_ms = request_timeout_ms,
    };
    f->srv = h2_server_new(f->loop, &cfg);
    char err[128];
    CHECK(f->srv != NULL);
    CHECK_EQ_INT(h2_server_add_route(f->srv, "POST", "/echo", echo, f), 0);
    CHECK_EQ_INT(h2_server_add_route(f->srv, "GET", "/big", big, f), 0);
    CHECK_EQ_INT(h2_server_add_route(f->srv, "POST", "/echo", echo, f), -1);   /* one per pair */
    CHECK_EQ_INT(h2_server_listen(f->srv, err, sizeof err), 0);
    f->port = rig_port(f->srv);
}

static void teardown(struct fixture *f)
{
    h2_server_free(f->srv);
    loop_free(f->loop);
}

static int client(const struct fixture *f, int rcvbuf)
{
    return rig_connect(f->port, rcvbuf);
}

static void send_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Everything readable now; *eof set when the server closed. */
static size_t take(int fd, struct buf *into, bool *eof)
{
    size_t got = 0;
    for (;;) {
        if (!buf_reserve(into, 65536))
            return got;
        ssize_t n = recv(fd, into->data + into->len, 65536, 0);
        if (n > 0) {
            into->len += (size_t)n;
            got += (size_t)n;
            continue;
        }
        if (eof)
            *eof = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        return got;
    }
}

static bool starts(const struct buf *b, const char *s)
{
    return b->len >= strlen(s) && memcmp(b->data, s, strlen(s)) == 0;
}

TEST(pipelined_requests_wait_for_a_slow_reader)
{
    struct fixture f;
    setup(&f, 1 << 20, 0);
    int fd = client(&f, 4096);
    CHECK(fd >= 0);
    static const char get[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    char all[8 * sizeof get];
    for (int i = 0; i < 8; i++)
        memcpy(all + i * (sizeof get - 1), get, sizeof get - 1);
    send_all(fd, all, 8 * (sizeof get - 1));
    pump(&f, 200);
    /* 8 MiB of responses cannot all sit in the kernel's buffers: the server must have held
     * some requests back instead of producing their responses. */
    CHECK(f.handled < 8);
    int before = f.handled;
    struct buf in;
    buf_init(&in, (size_t)64 << 20);
    uint64_t deadline = loop_now_ms(f.loop) + 30000;   /* generous: sanitizers, busy machine */
    while (in.len < 8 * (size_t)(BIG + 40) && loop_now_ms(f.loop) < deadline) {
        take(fd, &in, NULL);
        pump(&f, 2);
    }
    take(fd, &in, NULL);
    CHECK(before >= 1);
    CHECK_EQ_INT(f.handled, 8);
    /* Eight complete responses, in request order. */
    size_t pos = 0;
    for (int i = 0; i < 8; i++) {
        const uint8_t *hdr_end = memmem(in.data + pos, in.len - pos, "\r\n\r\n", 4);
        CHECK(hdr_end != NULL);
        if (!hdr_end)
            break;
        CHECK(memmem(in.data + pos, (size_t)(hdr_end - in.data) + 2 - pos, "Content-Length: 1048576\r\n", 25) != NULL);
        pos = (size_t)(hdr_end - in.data) + 4;
        CHECK(pos + BIG <= in.len);
        if (pos + BIG > in.len)
            break;
        CHECK(in.data[pos] == '0' + i && in.data[pos + BIG - 1] == '0' + i);
        pos += BIG;
    }
    CHECK_EQ_INT(pos, in.len);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(chunked_body_with_extensions_and_trailers)
{
    struct fixture f;
    setup(&f, 1 << 20, 0);
    int fd = client(&f, 0);
    static const char req[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    pump(&f, 100);
    struct buf in;
    buf_init(&in, 1 << 20);
    take(fd, &in, NULL);
    CHECK_EQ_INT(f.handled, 1);
    CHECK_EQ_STR(f.body, "hello world");
    CHECK(starts(&in, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nn=11"));
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(keep_alive_absolute_form_and_gzip)
{
    struct fixture f;
    setup(&f, 1 << 20, 0);
    int fd = client(&f, 0);
    static const char req1[] = "POST http://127.0.0.1:4318/echo?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    send_all(fd, req1, sizeof req1 - 1);
    pump(&f, 50);
    CHECK_EQ_INT(f.handled, 1);
    CHECK_EQ_STR(f.body, "abc");
    CHECK_EQ_STR(f.protocol, "HTTP/1.1");
    struct buf gz, req, in;
    buf_init(&gz, 1 << 20);
    buf_init(&req, 1 << 20);
    buf_init(&in, 1 << 20);
    CHECK_EQ_INT(gzip_deflate((const uint8_t *)"compressed body", 15, &gz, 6), 0);
    CHECK(buf_printf(&req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: GZIP\r\nContent-Length: %zu\r\n\r\n", gz.len));
    CHECK(buf_append(&req, gz.data, gz.len));
    send_all(fd, req.data, req.len);   /* the same connection */
    pump(&f, 50);
    CHECK_EQ_INT(f.handled, 2);
    CHECK_EQ_STR(f.body, "compressed body");
    CHECK(f.compressed);
    bool eof = false;
    take(fd, &in, &eof);
    CHECK(!eof);
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nn=3"
                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nn=15";
    CHECK(in.len == sizeof two - 1 && memcmp(in.data, two, in.len) == 0);
    buf_free(&gz);
    buf_free(&req);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(expect_100_continue)
{
    struct fixture f;
    setup(&f, 1 << 20, 0);
    int fd = client(&f, 0);
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    pump(&f, 50);
    struct buf in;
    buf_init(&in, 1 << 20);
    take(fd, &in, NULL);
    CHECK(in.len == 25 && starts(&in, "HTTP/1.1 100 Continue\r\n\r\n"));
    CHECK_EQ_INT(f.handled, 0);
    send_all(fd, "hi", 2);
    pump(&f, 50);
    buf_reset(&in);
    take(fd, &in, NULL);
    CHECK_EQ_INT(f.handled, 1);
    CHECK(starts(&in, "HTTP/1.1 200 OK\r\n"));
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(request_timeout_cuts_a_trickling_client)
{
    struct fixture f;
    setup(&f, 1 << 20, 100);
    int slow = client(&f, 0);
    send_all(slow, "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\nabc", 48);
    struct buf in;
    buf_init(&in, 1 << 20);
    bool eof = false;
    for (int i = 0; i < 100 && !eof; i++) {   /* a byte every 20 ms: never idle, never done */
        send_all(slow, "d", 1);
        pump(&f, 20);
        take(slow, &in, &eof);
    }
    CHECK(eof);
    CHECK(starts(&in, "HTTP/1.1 408 Request Timeout\r\n"));
    CHECK(memmem(in.data, in.len, "Connection: close\r\n", 19) != NULL);
    CHECK_EQ_INT(f.handled, 0);
    CHECK_EQ_INT(h2_server_stats(f.srv)->requests_timed_out, 1);
    buf_free(&in);
    close(slow);
    teardown(&f);
}

TEST(refused_upload_lingers_instead_of_resetting)
{
    struct fixture f;
    setup(&f, 1024, 0);
    int fd = client(&f, 0);
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    struct buf in;
    buf_init(&in, 1 << 20);
    bool eof = false;
    for (int i = 0; i < 60 && !eof; i++) {   /* the client keeps uploading after the 413 */
        send_all(fd, chunk, sizeof chunk);
        pump(&f, 5);
        take(fd, &in, &eof);
    }
    CHECK(starts(&in, "HTTP/1.1 413 Content Too Large\r\n"));
    CHECK(memmem(in.data, in.len, "Connection: close\r\n", 19) != NULL);
    CHECK(memmem(in.data, in.len, "larger than the limit of 1024 bytes", 35) != NULL);
    CHECK_EQ_INT(f.handled, 0);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

TEST(head_limits)
{
    struct fixture f;
    setup(&f, 1 << 20, 0);
    int fd = client(&f, 0);
    struct buf req, in;
    buf_init(&req, 1 << 20);
    buf_init(&in, 1 << 20);
    CHECK(buf_printf(&req, "POST /echo HTTP/1.1\r\n"));
    for (int i = 0; i < 101; i++)
        CHECK(buf_printf(&req, "X-%d: v\r\n", i));
    CHECK(buf_printf(&req, "\r\n"));
    send_all(fd, req.data, req.len);
    pump(&f, 50);
    bool eof = false;
    take(fd, &in, &eof);
    CHECK(starts(&in, "HTTP/1.1 431 "));
    CHECK(eof);
    close(fd);
    fd = client(&f, 0);
    buf_reset(&in);
    send_all(fd, "GET /nowhere HTTP/1.1\r\n\r\n", 25);
    pump(&f, 50);
    take(fd, &in, NULL);
    CHECK(starts(&in, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    CHECK_EQ_INT(h2_server_stats(f.srv)->calls_failed, 2);
    buf_free(&req);
    buf_free(&in);
    close(fd);
    teardown(&f);
}

int main(void)
{
    RUN(pipelined_requests_wait_for_a_slow_reader);
    RUN(chunked_body_with_extensions_and_trailers);
    RUN(keep_alive_absolute_form_and_gzip);
    RUN(expect_100_continue);
    RUN(request_timeout_cuts_a_trickling_client);
    RUN(refused_upload_lingers_instead_of_resetting);
    RUN(head_limits);
    return check_done();
}
