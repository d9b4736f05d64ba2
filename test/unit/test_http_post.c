/*
 * test_http_post.c - the loop-driven POST client (lib/http_post.h) against a canned HTTP/1.1
 * server on the same event loop: the request arrives with its body and configured headers;
 * the answer's status, body, Retry-After and headers come back (names without case, the last
 * of a name winning); an answer past max_answer is too large and not retryable; a refused
 * connection is retryable with no status.
 */
#include "lib/http_post.h"
#include "lib/loop.h"
#include "test/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct canned {
    struct loop *loop;
    int listen_fd, conn_fd;
    char got[8192];
    size_t kept, n;   /* bytes in got, bytes read */
    const char *answer;
    bool answered;
};

static void on_conn(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct canned *c = ud;
    char in[65536];
    ssize_t k = read(fd, in, sizeof in);
    if (k > 0) {   /* the start is kept (headers and a body's first bytes); the rest is counted */
        size_t keep = sizeof c->got - 1 - c->kept;
        keep = (size_t)k < keep ? (size_t)k : keep;
        memcpy(c->got + c->kept, in, keep);
        c->kept += keep;
        c->n += (size_t)k;
    }
    c->got[c->kept] = 0;
    const char *end = strstr(c->got, "\r\n\r\n");
    const char *cl = strstr(c->got, "Content-Length: ");
    size_t want = cl ? (size_t)atoi(cl + 16) : 0;
    if (k <= 0 || (end && c->n >= (size_t)(end + 4 - c->got) + want)) {
        if (k > 0 && !c->answered && write(fd, c->answer, strlen(c->answer)) < 0)
            perror("write");
        c->answered = true;
        loop_del_fd(l, fd);
        close(fd);
        c->conn_fd = -1;
    }
}

static void on_listen(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct canned *c = ud;
    int conn = accept(fd, NULL, NULL);
    if (conn >= 0) {
        c->conn_fd = conn;
        loop_add_fd(l, conn, LOOP_READ, on_conn, c);
    }
}

/* Listens on 127.0.0.1, a free port; writes the URL. */
static bool canned_start(struct canned *c, struct loop *l, const char *answer, char *url, size_t urllen)
{
    memset(c, 0, sizeof *c);
    c->loop = l;
    c->answer = answer;
    c->conn_fd = -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    c->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(c->listen_fd, 4) != 0 ||
        getsockname(c->listen_fd, (struct sockaddr *)&a, &len) != 0)
        return false;
    snprintf(url, urllen, "http://127.0.0.1:%d/v1/traces", ntohs(a.sin_port));
    return loop_add_fd(l, c->listen_fd, LOOP_READ, on_listen, c) == 0;
}

static void canned_stop(struct canned *c)
{
    loop_del_fd(c->loop, c->listen_fd);
    close(c->listen_fd);
    if (c->conn_fd >= 0) {
        loop_del_fd(c->loop, c->conn_fd);
        close(c->conn_fd);
    }
}

struct outcome {
    bool done;
    struct http_post_result r;
    char body[64];
    char header[64];
    char error[256];
    bool header_found;
    bool body_nul_terminated;
    struct http_post *h;
    struct loop *loop;
};

static void on_done(void *ud, const struct http_post_result *r)
{
    struct outcome *o = ud;
    o->done = true;
    o->r = *r;
    snprintf(o->body, sizeof o->body, "%.*s", (int)r->body_len, r->body ? (const char *)r->body : "");
    const char *v = http_post_header(o->h, "X-THING");
    o->header_found = v != NULL;
    o->body_nul_terminated = r->body && r->body[r->body_len] == 0;
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    snprintf(o->header, sizeof o->header, "%s", v ? v : "");
    loop_stop(o->loop);
}

static void give_up(struct loop *l, void *ud)
{
    (void)ud;
    loop_stop(l);
}

/* One POST of "hello" with the header X-Sent: yes; the loop runs until the answer (at most
 * 5 s). */
static void post_once(struct outcome *o, const char *url, size_t max_answer)
{
    struct loop *l = o->loop;
    const char *headers[] = { "X-Sent: yes", "Expect:" };
    struct http_post_options opt = { .user_agent = "test", .headers = headers, .n_headers = 2,
                                     .max_answer = max_answer };
    char err[256];
    o->h = http_post_new(l, &opt, on_done, o, err, sizeof err);
    CHECK(o->h != NULL);
    if (!o->h)
        return;
    CHECK_EQ_INT(http_post_start(o->h, url, "hello", 5, 3000), 0);
    CHECK(http_post_busy(o->h));
    CHECK_EQ_INT(http_post_start(o->h, url, "again", 5, 3000), -1);   /* one at a time */
    uint64_t t = loop_add_timer(l, 5000, give_up, NULL);
    loop_run(l);
    loop_del_timer(l, t);
    CHECK(o->done);
    CHECK(!http_post_busy(o->h));
    http_post_free(o->h);
}

TEST(answer_status_body_headers)
{
    struct loop *l = loop_new();
    struct canned c;
    char url[128];
    CHECK(canned_start(&c, l, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nX-Thing: first\r\n"
                              "x-thing:  last  \r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
                       url, sizeof url));
    struct outcome o = { .loop = l };
    post_once(&o, url, 1024);
    CHECK_EQ_INT(o.r.curl_code, 0);
    CHECK_EQ_INT(o.r.status, 503);
    CHECK_EQ_INT(o.r.retry_after_s, 2);
    CHECK_EQ_STR(o.body, "busy");
    CHECK(o.header_found);
    CHECK_EQ_STR(o.header, "last");
    CHECK(http_post_retryable(&o.r));
    CHECK(strstr(c.got, "POST /v1/traces HTTP/1.1\r\n") == c.got);
    CHECK(strstr(c.got, "\r\nX-Sent: yes\r\n") != NULL);
    CHECK(strstr(c.got, "\r\n\r\nhello") != NULL);
    CHECK(o.body_nul_terminated);
    canned_stop(&c);
    loop_free(l);
}

TEST(answer_too_large)
{
    struct loop *l = loop_new();
    struct canned c;
    char url[128];
    CHECK(canned_start(&c, l, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
                       url, sizeof url));
    struct outcome o = { .loop = l };
    post_once(&o, url, 4);
    CHECK(o.r.too_large);
    CHECK(o.r.curl_code != 0);
    CHECK(!http_post_retryable(&o.r));
    canned_stop(&c);
    loop_free(l);
}

TEST(refused_connection_is_retryable)
{
    struct loop *l = loop_new();
    struct canned c;
    char url[128];
    CHECK(canned_start(&c, l, "", url, sizeof url));
    canned_stop(&c);   /* the port is closed again: connecting is refused */
    struct outcome o = { .loop = l };
    post_once(&o, url, 1024);
    CHECK(o.r.curl_code != 0);
    CHECK_EQ_INT(o.r.status, 0);
    CHECK(o.error[0] != 0);
    CHECK(http_post_retryable(&o.r));
    CHECK(!o.header_found);
    loop_free(l);
}

/* Per request: a gzip'd body says so, a plain one does not; Basic authentication from the
 * options; never "Expect: 100-continue", even for a body curl would otherwise hold back. */
TEST(gzip_header_per_request_and_basic_auth)
{
    struct loop *l = loop_new();
    struct canned c;
    char url[128], err[256];
    static char big[2 << 20];   /* over curl's threshold for Expect: 100-continue (1 MiB) */
    memset(big, 'x', sizeof big);
    const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    struct http_post_options opt = { .user_agent = "test", .max_answer = 64, .user = "u", .password = "p" };
    for (int gz = 0; gz < 2; gz++) {
        CHECK(canned_start(&c, l, answer, url, sizeof url));
        struct outcome o = { .loop = l };
        o.h = http_post_new(l, &opt, on_done, &o, err, sizeof err);
        CHECK(o.h != NULL);
        if (!o.h)
            break;
        CHECK_EQ_INT(gz ? http_post_start_gzip(o.h, url, big, sizeof big, 3000) : http_post_start(o.h, url, big, sizeof big, 3000), 0);
        uint64_t t = loop_add_timer(l, 5000, give_up, NULL);
        loop_run(l);
        loop_del_timer(l, t);
        CHECK(o.done);
        CHECK_EQ_INT(o.r.status, 200);
        CHECK_EQ_STR(o.body, "ok");
        CHECK(o.body_nul_terminated);
        CHECK((strstr(c.got, "\r\nContent-Encoding: gzip\r\n") != NULL) == (gz == 1));
        CHECK(strstr(c.got, "\r\nAuthorization: Basic dTpw\r\n") != NULL);   /* base64("u:p") */
        CHECK(strcasestr(c.got, "\r\nExpect:") == NULL);
        http_post_free(o.h);
        canned_stop(&c);
    }
    loop_free(l);
}

int main(void)
{
    RUN(answer_status_body_headers);
    RUN(answer_too_large);
    RUN(gzip_header_per_request_and_basic_auth);
    RUN(refused_connection_is_retryable);
    return check_done();
}
