/*
 * test_clickhouse_sink.c - the ClickHouse sink through its vtable against a scripted fake
 * HTTP server on the event loop: delivery (schema, then the parts), retries that re-send
 * byte-identical batches, refusal when full, spooling at shutdown and replay at the next
 * start, all in memory mode (--clickhouse-durability memory); the write-ahead log is tested in
 * test_wal.c and, with the sink, end to end (clickhouse_durability.py). The parts it is made of
 * are tested one by one in test_clickhouse.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/clickhouse/clickhouse.h"
#include "test/unit/check.h"
#include "test/unit/clickhouse_fixture.h"

/* ---------------------------------------------------------------- a fake ClickHouse */

#define FAKE_MAX_REQ 64

struct fake_conn {
    int fd;
    struct buf in;
    struct fake *fk;
};

struct fake {
    struct loop *loop;
    int lfd, port;
    int fail_inserts;       /* answer the next N INSERTs with HTTP 500 */
    int nreq;
    char target[FAKE_MAX_REQ][2048];
    struct buf body[FAKE_MAX_REQ];
    struct fake_conn conns[8];
};

static void fake_respond(struct fake_conn *c, bool ok)
{
    static const char good[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    static const char bad[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 76\r\n\r\n"
                              "Code: 241, e.displayText() = DB::Exception: Memory limit (fake), e.what() = DB\n";
    const char *r = ok ? good : bad;
    size_t n = strlen(r);
    CHECK(write(c->fd, r, n) == (ssize_t)n);
}

/* One complete request at the front of c->in: record it, answer it, consume it. */
static bool fake_take_request(struct fake_conn *c)
{
    struct fake *fk = c->fk;
    uint8_t *p = c->in.data;
    uint8_t *end = p ? memmem(p, c->in.len, "\r\n\r\n", 4) : NULL;
    if (!end)
        return false;
    size_t head = (size_t)(end - p) + 4, clen = 0;
    const char *cl = strcasestr((const char *)p, "\r\ncontent-length:");
    if (cl && (const uint8_t *)cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    if (c->in.len < head + clen)
        return false;
    bool insert = memcmp(p, "POST /?query=INSERT", 19) == 0;
    if (fk->nreq < FAKE_MAX_REQ) {
        const char *sp = memchr(p, ' ', head);
        size_t tl = sp ? strcspn(sp + 1, " ") : 0;
        snprintf(fk->target[fk->nreq], sizeof fk->target[0], "%.*s", (int)tl, sp ? sp + 1 : "");
        buf_init(&fk->body[fk->nreq], 1 << 24);
        buf_append(&fk->body[fk->nreq], p + head, clen);
        fk->nreq++;
    }
    bool ok = !(insert && fk->fail_inserts > 0);
    if (insert && fk->fail_inserts > 0)
        fk->fail_inserts--;
    fake_respond(c, ok);
    memmove(p, p + head + clen, c->in.len - head - clen);
    c->in.len -= head + clen;
    return true;
}

static void fake_on_conn(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct fake_conn *c = ud;
    uint8_t tmp[65536];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) {
        loop_del_fd(l, fd);
        close(fd);
        buf_free(&c->in);
        c->fd = -1;
        return;
    }
    buf_append(&c->in, tmp, (size_t)n);
    buf_putc(&c->in, 0);   /* keep it a string for strcasestr; not counted */
    c->in.len--;
    while (fake_take_request(c)) {
        buf_putc(&c->in, 0);
        c->in.len--;
    }
}

static void fake_on_accept(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct fake *fk = ud;
    int cfd = accept(fd, NULL, NULL);
    if (cfd < 0)
        return;
    for (int i = 0; i < 8; i++) {
        if (fk->conns[i].fd < 0) {
            fk->conns[i].fd = cfd;
            fk->conns[i].fk = fk;
            buf_init(&fk->conns[i].in, 1 << 24);
            loop_add_fd(l, cfd, LOOP_READ, fake_on_conn, &fk->conns[i]);
            return;
        }
    }
    close(cfd);
}

static void fake_start(struct fake *fk, struct loop *l)
{
    memset(fk, 0, sizeof *fk);
    fk->loop = l;
    for (int i = 0; i < 8; i++)
        fk->conns[i].fd = -1;
    fk->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    CHECK(bind(fk->lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fk->lfd, 8) == 0 &&
          getsockname(fk->lfd, (struct sockaddr *)&a, &al) == 0);
    fk->port = ntohs(a.sin_port);
    loop_add_fd(l, fk->lfd, LOOP_READ, fake_on_accept, fk);
}

static void fake_stop(struct fake *fk)
{
    for (int i = 0; i < 8; i++) {
        if (fk->conns[i].fd >= 0) {
            loop_del_fd(fk->loop, fk->conns[i].fd);
            close(fk->conns[i].fd);
            buf_free(&fk->conns[i].in);
            fk->conns[i].fd = -1;
        }
    }
    if (fk->lfd >= 0) {
        loop_del_fd(fk->loop, fk->lfd);
        close(fk->lfd);
        fk->lfd = -1;
    }
    for (int i = 0; i < fk->nreq; i++)
        buf_free(&fk->body[i]);
    fk->nreq = 0;
}

static int count_inserts(const struct fake *fk, const char *table)
{
    char needle[64];
    snprintf(needle, sizeof needle, "%%60.%s%%20", table);   /* `db`.table, URL-encoded */
    int n = 0;
    for (int i = 0; i < fk->nreq; i++)
        n += strstr(fk->target[i], "INSERT") && strstr(fk->target[i], needle);
    return n;
}

/* ---------------------------------------------------------------- driving the sink */

struct until {
    struct fake *fk;
    const struct sink *s;   /* and, when set, once this sink has nothing left to deliver */
    int samples_inserts;    /* stop once this many samples INSERTs arrived */
    uint64_t deadline;
};

/* The fake answers an INSERT as it reads it, but the sink learns of the answer on a later
 * turn of the loop: only then is the batch counted as sent and dropped from the queue. */
static int sink_drained(const struct sink *s)
{
    struct clickhouse_sink_stats st;
    if (!s)
        return 1;
    CHECK_EQ_INT(clickhouse_sink_stats(s, &st), 0);
    return st.queue_rows == 0 && st.queue_bytes == 0 && st.spool_batches == 0;
}

static void until_tick(struct loop *l, void *ud)
{
    struct until *u = ud;
    if ((count_inserts(u->fk, "samples") >= u->samples_inserts && sink_drained(u->s)) ||
        ch_now_ms() > u->deadline) {
        loop_stop(l);
        return;
    }
    loop_add_timer(l, 5, until_tick, u);
}

static void run_until(struct loop *l, struct fake *fk, const struct sink *s, int samples_inserts, unsigned ms)
{
    struct until u = { fk, s, samples_inserts, ch_now_ms() + ms };
    loop_add_timer(l, 5, until_tick, &u);
    loop_run(l);
}

static int send_request(struct sink *s, struct fixture *f, char *why, size_t whylen)
{
    if (s->type->admit(s, why, whylen) != 0)
        return -1;
    s->type->request_begin(s, &f->req);
    s->type->resource_begin(s, &f->res);
    s->type->profile_begin(s, &f->prof);
    for (int i = 0; i < 3; i++)
        s->type->sample(s, &f->smp[i]);
    return s->type->request_end(s, &f->req, why, whylen);
}

/* The sink against the fake server on loop `l`, and a request to send. */
struct live {
    struct loop *l;
    struct fake fk;
    struct clickhouse_sink_options o;
    char url[64];
    struct sink_env env;
    struct sink s;
    struct fixture f;
};

/* The sink's --clickhouse-compression in live_start. */
static enum clickhouse_compression live_compression = CLICKHOUSE_COMPRESSION_GZIP;

/* `fail_inserts`: how many INSERTs the fake fails first (struct fake); `spool_dir` may be NULL.
 * live_stop frees the loop. */
static void live_start(struct live *v, struct loop *l, int fail_inserts, const char *spool_dir)
{
    char err[256];
    v->l = l;
    fake_start(&v->fk, l);
    v->fk.fail_inserts = fail_inserts;
    clickhouse_sink_defaults(&v->o);
    v->o.durability = CLICKHOUSE_DURABILITY_MEMORY;   /* memory mode and its spool, here */
    snprintf(v->url, sizeof v->url, "http://127.0.0.1:%d/", v->fk.port);
    v->o.url = v->url;
    v->o.database = "t";
    v->o.flush_interval_ms = 20;
    v->o.spool_dir = spool_dir;
    v->o.compression = live_compression;
    v->env = (struct sink_env){ l };
    CHECK_EQ_INT(clickhouse_sink_open(&v->s, &v->o, &v->env, err, sizeof err), 0);
    fixture_init(&v->f);
}

static void live_stop(struct live *v)
{
    v->s.type->close(&v->s, 1000);
    fake_stop(&v->fk);
    loop_free(v->l);
}

TEST(sink_delivers_schema_then_parts)
{
    struct live v;
    char why[256];
    live_start(&v, loop_new(), 0, NULL);
    struct fake *fk = &v.fk;
    CHECK_EQ_INT(send_request(&v.s, &v.f, why, sizeof why), 0);
    run_until(v.l, fk, &v.s, 1, 5000);
    /* CREATE DATABASE, 5 x CREATE TABLE, the ALTERs adding schema version 2's columns to older
     * tables, then frames, stacks, resources, requests, samples. */
    enum { DDL = 1 + CH_TABLES + CH_ADD_COLUMNS, LAST = DDL + 4 };
    CHECK_EQ_INT(fk->nreq, LAST + 1);
    CHECK(fk->nreq >= DDL && strncmp((char *)fk->body[0].data, "CREATE DATABASE IF NOT EXISTS `t`", 33) == 0);
    CHECK(fk->nreq >= DDL && strstr((char *)fk->body[4].data, "ENGINE = ReplacingMergeTree") != NULL);
    CHECK(fk->nreq >= DDL && strncmp((char *)fk->body[DDL - 1].data, "ALTER TABLE `t`.samples ADD COLUMN", 34) == 0);
    CHECK_EQ_INT(count_inserts(fk, "requests"), 1);
    CHECK_EQ_INT(count_inserts(fk, "frames"), 1);
    CHECK_EQ_INT(count_inserts(fk, "stacks"), 1);
    CHECK_EQ_INT(count_inserts(fk, "resources"), 1);
    CHECK_EQ_INT(count_inserts(fk, "samples"), 1);
    CHECK(fk->nreq == LAST + 1 && strstr(fk->target[LAST], "FORMAT%20RowBinary") != NULL &&
          strstr(fk->target[LAST], "samples") != NULL);
    struct clickhouse_sink_stats st;
    CHECK_EQ_INT(clickhouse_sink_stats(&v.s, &st), 0);
    CHECK_EQ_INT(st.counts.requests_queued, 1);
    CHECK_EQ_INT(st.counts.batches_sealed, 1);
    CHECK_EQ_INT(st.counts.batches_sent, 1);
    CHECK_EQ_INT(st.counts.rows_sent, 3);
    CHECK_EQ_INT(st.queue_rows + st.queue_bytes + st.counts.batches_retried + st.counts.requests_refused, 0);
    CHECK_EQ_INT(v.s.type->ready(&v.s, why, sizeof why), 0);
    /* The samples body is RowBinary, gzip'd unless --clickhouse-compression none: three rows,
     * the first one's service is "svc". */
    struct buf raw;
    char gzerr[100];
    buf_init(&raw, 1 << 20);
    if (live_compression == CLICKHOUSE_COMPRESSION_GZIP)
        CHECK(fk->nreq == LAST + 1 &&
              gzip_inflate(fk->body[LAST].data, fk->body[LAST].len, raw.limit, &raw, gzerr, sizeof gzerr) == GZIP_OK);
    else
        CHECK(fk->nreq == LAST + 1 && buf_append(&raw, fk->body[LAST].data, fk->body[LAST].len));
    CHECK(raw.len > 16 && memcmp(raw.data + 12, "\x03svc", 4) == 0);
    buf_free(&raw);
    live_stop(&v);
}

TEST(sink_delivers_plain_when_asked)
{
    live_compression = CLICKHOUSE_COMPRESSION_NONE;
    test_sink_delivers_schema_then_parts();
    live_compression = CLICKHOUSE_COMPRESSION_GZIP;
}

TEST(sink_retries_with_identical_bodies)
{
    struct live v;
    char why[256];
    live_start(&v, loop_new(), 3, NULL);   /* frames fails 3 times, then everything passes */
    struct fake *fk = &v.fk;
    uint64_t t0 = ch_now_ms();
    CHECK_EQ_INT(send_request(&v.s, &v.f, why, sizeof why), 0);
    run_until(v.l, fk, &v.s, 1, 10000);
    uint64_t took = ch_now_ms() - t0;
    CHECK_EQ_INT(count_inserts(fk, "frames"), 4);
    CHECK_EQ_INT(count_inserts(fk, "samples"), 1);
    /* Backoff: 100, 200, 400 ms +-50% between the attempts: at least 350 ms in all. */
    CHECK(took >= 350);
    enum { FRAMES = 1 + CH_TABLES + CH_ADD_COLUMNS };   /* the first INSERT, after the DDL */
    for (int i = FRAMES + 1; i < FRAMES + 4 && i < fk->nreq; i++)
        CHECK(fk->body[i].len == fk->body[FRAMES].len &&
              memcmp(fk->body[i].data, fk->body[FRAMES].data, fk->body[FRAMES].len) == 0);
    live_stop(&v);
}

TEST(sink_refuses_when_full_without_spool)
{
    struct loop *l = loop_new();
    struct clickhouse_sink_options o;
    char err[256], why[256];
    clickhouse_sink_defaults(&o);
    o.durability = CLICKHOUSE_DURABILITY_MEMORY;
    o.url = "http://127.0.0.1:1";     /* nothing listens there */
    o.max_queue_bytes = 4096;
    o.batch_rows = 3;
    struct sink s;
    struct sink_env env = { l };
    CHECK_EQ_INT(clickhouse_sink_open(&s, &o, &env, err, sizeof err), 0);
    struct fixture f;
    fixture_init(&f);
    int accepted = 0, rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        f.req.sequence++;
        rc = send_request(&s, &f, why, sizeof why);
        accepted += rc == 0;
    }
    CHECK(rc != 0 && accepted > 3);
    CHECK(strstr(why, "full") != NULL);
    /* The refusal came at request_end (its rows did not fit) and rolled them back. */
    struct clickhouse_sink_stats st;
    CHECK_EQ_INT(clickhouse_sink_stats(&s, &st), 0);
    CHECK_EQ_INT(st.counts.requests_refused, 1);
    CHECK_EQ_INT(st.counts.requests_queued, accepted);
    CHECK_EQ_INT(st.queue_rows, 3 * accepted);   /* nothing reached ClickHouse */
    CHECK(st.queue_bytes > 0 && st.queue_bytes <= 4096);
    CHECK_EQ_INT(st.queue_max_bytes, 4096);
    CHECK_EQ_INT(st.counts.batches_sent + st.counts.rows_sent + st.spool_bytes + st.spool_max_bytes, 0);
    /* admit would let a request in (the memory left is not nothing), but ready knows that one
     * like the last would not fit: not ready, as often as asked, and no refusal counted. */
    for (int i = 0; i < 3; i++) {
        char again[256] = "";
        CHECK_EQ_INT(s.type->ready(&s, again, sizeof again), -1);
        CHECK(strncmp(again, "ClickHouse sink full: ", 22) == 0);
    }
    CHECK_EQ_INT(clickhouse_sink_stats(&s, &st), 0);
    CHECK_EQ_INT(st.counts.requests_refused, 1);
    s.type->close(&s, 0);   /* nothing to spool into: the loss is logged */
    loop_free(l);
}

TEST(sink_spools_at_shutdown_and_replays)
{
    char *dir = temp_dir();
    if (!dir)
        return;
    struct loop *l = loop_new();
    struct clickhouse_sink_options o;
    char err[256], why[256];
    clickhouse_sink_defaults(&o);
    o.durability = CLICKHOUSE_DURABILITY_MEMORY;
    o.url = "http://127.0.0.1:1";
    o.spool_dir = dir;
    o.batch_rows = 3;                 /* one batch per request */
    struct sink s;
    struct sink_env env = { l };
    CHECK_EQ_INT(clickhouse_sink_open(&s, &o, &env, err, sizeof err), 0);
    struct fixture f;
    fixture_init(&f);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(send_request(&s, &f, why, sizeof why), 0);
    s.type->close(&s, 300);
    CHECK_EQ_INT(count_suffix(dir, ".batch"), 4);
    /* Next start, ClickHouse up: the spooled batches go first, in order, then the files go. */
    struct live v;
    live_start(&v, l, 0, dir);
    run_until(l, &v.fk, &v.s, 4, 5000);
    CHECK_EQ_INT(count_inserts(&v.fk, "samples"), 4);
    CHECK_EQ_INT(count_inserts(&v.fk, "frames"), 1);    /* the first batch had the frames */
    live_stop(&v);
    CHECK_EQ_INT(count_suffix(dir, ".batch"), 0);
    remove_dir(dir);
    free(dir);
}

int main(void)
{
    log_set_level(LOG_OFF);   /* the failures below are on purpose */
    RUN(sink_delivers_schema_then_parts);
    RUN(sink_delivers_plain_when_asked);
    RUN(sink_retries_with_identical_bodies);
    RUN(sink_refuses_when_full_without_spool);
    RUN(sink_spools_at_shutdown_and_replays);
    return check_done();
}
