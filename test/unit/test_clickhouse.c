/*
 * test_clickhouse.c - the ClickHouse sink's parts without a ClickHouse: the content hash,
 * the RowBinary rows (decoded here field by field against hand-written expectations), stacks
 * and frames written once, rollback, the spool's file format and its failure handling, and
 * the sink itself through its vtable against a scripted fake HTTP server on the event loop:
 * delivery, retries that re-send byte-identical batches, refusal when full, spooling at
 * shutdown and replay at the next start.
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

/* ---------------------------------------------------------------- a request, by hand */

struct fixture {
    struct lb_request req;
    struct lb_attr rattr[2];
    struct lb_resource res;
    struct lb_scope scope;
    struct lb_profile prof;
    struct lb_attr sattr[2];
    struct lb_frame frames[3];
    uint64_t ts[2];
    int64_t values[2];
    struct lb_sample smp[3];
};

static struct lb_value str_value(const char *s)
{
    return (struct lb_value){ .kind = LB_VALUE_STRING, .u.str = { s, strlen(s) } };
}

static lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

/* Three samples: 0 and 1 share a stack (leaf jvm frame, then an unsymbolized native frame),
 * 2 has another (the native frame alone) under the same stack_index, as v1.7 requests can
 * (their "stack index" is the start of a slice). */
static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->req = (struct lb_request){ .transport = "test", .peer = "-", .layout = "v1.11",
                                  .received_unix_nano = 1700000000000000000ull, .sequence = 1 };
    f->rattr[0] = (struct lb_attr){ .key = S("service.name"), .value = str_value("svc") };
    f->rattr[1] = (struct lb_attr){ .key = S("container.id"), .value = str_value("c1") };
    f->res = (struct lb_resource){ .request = &f->req, .attrs = { f->rattr, 2 }, .schema_url = S("https://x") };
    f->scope = (struct lb_scope){ .name = S("scope-a") };
    f->prof = (struct lb_profile){ .resource = &f->res, .scope = &f->scope, .sample_type = S("samples"),
                                   .sample_unit = S("count"), .period_type = S("cpu"),
                                   .period_unit = S("nanoseconds"), .period = 50000000,
                                   .time_unix_nano = 1761887343000000000ull, .profile_id = { "\x01\xab", 2 } };
    f->sattr[0] = (struct lb_attr){ .key = S("thread.name"), .value = str_value("worker") };
    f->sattr[1] = (struct lb_attr){ .key = S("thread.id"), .value = { .kind = LB_VALUE_INT, .u.integer = 42 } };
    f->frames[0] = (struct lb_frame){ .type = S("jvm"), .symbolized = true, .function = S("leaf()"),
                                      .file = S("A.java"), .line = 9, .location_index = 1, .line_count = 1 };
    f->frames[1] = (struct lb_frame){ .type = S("native"), .address = 0x1234, .has_mapping = true,
                                      .mapping_file = S("libc.so"), .build_id = S("abcd"),
                                      .build_id_kind = S("gnu"), .location_index = 2 };
    f->frames[2] = f->frames[1];
    f->ts[0] = 1761887345500000000ull;   /* not sorted: the earliest is the second */
    f->ts[1] = 1761887344250000000ull;
    f->values[0] = 5;
    f->values[1] = 7;
    for (int i = 0; i < 3; i++)
        f->smp[i] = (struct lb_sample){ .profile = &f->prof, .index = (unsigned)i, .stack_index = 7,
                                        .timestamps = f->ts, .n_timestamps = 2, .attrs = { f->sattr, 2 },
                                        .frames = f->frames, .n_frames = 2 };
    f->smp[1].n_timestamps = 0;
    f->smp[1].values = f->values;
    f->smp[1].n_values = 2;
    f->smp[1].attrs.n = 0;
    f->smp[2].stack_index = 7;
    f->smp[2].frames = &f->frames[2];
    f->smp[2].n_frames = 1;
    f->smp[2].has_link = true;
    f->smp[2].trace_id = (lb_str){ "\x00\x11", 2 };
    f->smp[2].span_id = (lb_str){ "\xff", 1 };
}

static void feed(struct ch_rows *r, struct fixture *f, size_t n_samples)
{
    ch_rows_request_begin(r, &f->req, 0x1122334455667788ull);
    ch_rows_resource(r, &f->res);
    ch_rows_profile(r, &f->prof);
    for (size_t i = 0; i < n_samples; i++)
        ch_rows_sample(r, &f->smp[i]);
}

/* ---------------------------------------------------------------- reading RowBinary */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t rd_fixed(struct rd *r, int n)
{
    uint64_t v = 0;
    if (r->end - r->p < n) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* The next String, NUL-terminated into a static buffer (one at a time). */
static const char *rd_str(struct rd *r)
{
    static char s[256];
    uint64_t n = rd_varint(r);
    if (n >= sizeof s || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return "";
    }
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    return s;
}

static bool inflate_part(const struct ch_part *p, struct buf *out)
{
    char err[128];
    buf_init(out, (size_t)64 << 20);
    return p->rows == 0 || gzip_inflate(p->data, p->len, out->limit, out, err, sizeof err) == GZIP_OK;
}

/* ---------------------------------------------------------------- hash */

TEST(fnv1a_64_reference_vectors)
{
    /* The published FNV-1a 64 test vectors. */
    CHECK(ch_fnv_bytes(CH_FNV_OFFSET, "", 0) == 0xcbf29ce484222325ull);
    CHECK(ch_fnv_bytes(CH_FNV_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(ch_fnv_bytes(CH_FNV_OFFSET, "foobar", 6) == 0x85944171f73967e8ull);
    CHECK(ch_fnv_u64(CH_FNV_OFFSET, 0x61) == ch_fnv_bytes(CH_FNV_OFFSET, "a\0\0\0\0\0\0\0", 8));
    /* Length prefixes keep ("ab","c") and ("a","bc") apart. */
    CHECK(ch_fnv_str(ch_fnv_str(CH_FNV_OFFSET, S("ab")), S("c")) !=
          ch_fnv_str(ch_fnv_str(CH_FNV_OFFSET, S("a")), S("bc")));
}

/* ---------------------------------------------------------------- rows */

TEST(sample_row_fields)
{
    struct fixture f;
    fixture_init(&f);
    struct ch_rows *r = ch_rows_new((size_t)1 << 20);
    feed(r, &f, 3);
    CHECK(ch_rows_failed(r) == NULL);
    ch_rows_commit(r);
    CHECK_EQ_INT(ch_rows_samples(r), 3);
    struct ch_batch *b = ch_rows_seal(r, 5);
    CHECK(b != NULL);
    if (!b) {
        ch_rows_free(r);
        return;
    }
    CHECK_EQ_INT(b->seq, 5);
    CHECK(b->id == 0x1122334455667788ull);
    CHECK_EQ_INT(b->part[CH_SAMPLES].rows, 3);
    CHECK_EQ_INT(b->part[CH_STACKS].rows, 2);      /* by content, not by stack_index */
    CHECK_EQ_INT(b->part[CH_FRAMES].rows, 2);      /* the jvm frame and the native one */
    CHECK_EQ_INT(b->part[CH_RESOURCES].rows, 1);

    struct buf s;
    CHECK(inflate_part(&b->part[CH_SAMPLES], &s));
    struct rd rd = { s.data, s.data + s.len, false };
    uint64_t stack0 = 0;
    for (int row = 0; row < 3; row++) {
        uint64_t t = row == 1 ? f.prof.time_unix_nano : f.ts[1];   /* earliest; else the profile's */
        CHECK_EQ_INT(rd_fixed(&rd, 4), t / 1000000000u);
        CHECK(rd_fixed(&rd, 8) == t);
        CHECK_EQ_STR(rd_str(&rd), "svc");
        CHECK_EQ_STR(rd_str(&rd), "c1");
        CHECK_EQ_STR(rd_str(&rd), "");                 /* host.name absent */
        CHECK_EQ_INT(rd_fixed(&rd, 8), 0);             /* pid */
        CHECK_EQ_STR(rd_str(&rd), "");                 /* executable */
        CHECK_EQ_STR(rd_str(&rd), row == 1 ? "" : "worker");
        CHECK_EQ_INT(rd_fixed(&rd, 8), row == 1 ? 0 : 42);
        CHECK_EQ_STR(rd_str(&rd), "samples");
        CHECK_EQ_STR(rd_str(&rd), "count");
        CHECK_EQ_STR(rd_str(&rd), "cpu");
        CHECK_EQ_STR(rd_str(&rd), "nanoseconds");
        CHECK_EQ_INT(rd_fixed(&rd, 8), 50000000);
        CHECK_EQ_INT(rd_fixed(&rd, 8), row == 1 ? 12 : 2);   /* values summed, else timestamps */
        uint64_t stack = rd_fixed(&rd, 8);
        if (row == 0)
            stack0 = stack;
        CHECK(row == 2 ? stack != stack0 : stack == stack0);
        rd_fixed(&rd, 8);                                    /* resource hash */
        uint64_t nts = rd_varint(&rd);
        CHECK_EQ_INT(nts, row == 1 ? 0 : 2);
        for (uint64_t i = 0; i < nts && i < 2; i++)
            CHECK(rd_fixed(&rd, 8) == f.ts[i]);              /* as sent, unsorted */
        uint64_t nv = rd_varint(&rd);
        CHECK_EQ_INT(nv, row == 1 ? 2 : 0);
        for (uint64_t i = 0; i < nv && i < 2; i++)
            CHECK_EQ_INT(rd_fixed(&rd, 8), f.values[i]);
        uint64_t nk = rd_varint(&rd);
        CHECK_EQ_INT(nk, row == 1 ? 0 : 2);
        if (nk == 2) {
            CHECK_EQ_STR(rd_str(&rd), "thread.name");
            CHECK_EQ_STR(rd_str(&rd), "thread.id");
            CHECK_EQ_INT(rd_varint(&rd), 2);
            CHECK_EQ_STR(rd_str(&rd), "worker");
            CHECK_EQ_STR(rd_str(&rd), "42");
        } else {
            CHECK_EQ_INT(rd_varint(&rd), 0);
        }
        CHECK_EQ_STR(rd_str(&rd), row == 2 ? "0011" : "");  /* trace id, hex */
        CHECK_EQ_STR(rd_str(&rd), row == 2 ? "ff" : "");
        CHECK_EQ_STR(rd_str(&rd), "01ab");
        CHECK_EQ_STR(rd_str(&rd), "scope-a");
        CHECK_EQ_STR(rd_str(&rd), "v1.11");
        CHECK(rd_fixed(&rd, 8) == b->id);
        CHECK_EQ_INT(rd_fixed(&rd, 4), row);
    }
    CHECK(!rd.bad && rd.p == rd.end);
    buf_free(&s);

    /* Frames: the unsymbolized one is named like a folded stack frame. */
    CHECK(inflate_part(&b->part[CH_FRAMES], &s));
    rd = (struct rd){ s.data, s.data + s.len, false };
    rd_fixed(&rd, 8);
    CHECK_EQ_STR(rd_str(&rd), "jvm");
    CHECK_EQ_STR(rd_str(&rd), "leaf()");
    CHECK_EQ_STR(rd_str(&rd), "leaf()");
    CHECK_EQ_STR(rd_str(&rd), "");
    CHECK_EQ_STR(rd_str(&rd), "A.java");
    CHECK_EQ_INT(rd_fixed(&rd, 8), 9);
    CHECK_EQ_INT(rd_fixed(&rd, 8), 0);
    CHECK_EQ_INT(rd_fixed(&rd, 8), 0);
    CHECK_EQ_INT(rd_fixed(&rd, 1), 1);
    CHECK_EQ_STR(rd_str(&rd), "");
    CHECK_EQ_STR(rd_str(&rd), "");
    CHECK_EQ_STR(rd_str(&rd), "");
    rd_fixed(&rd, 8);
    CHECK_EQ_STR(rd_str(&rd), "native");
    CHECK_EQ_STR(rd_str(&rd), "libc.so+0x1234");
    buf_free(&s);

    /* Stacks: the first row is samples 0 and 1's stack, with two frames. */
    CHECK(inflate_part(&b->part[CH_STACKS], &s));
    rd = (struct rd){ s.data, s.data + s.len, false };
    CHECK(rd_fixed(&rd, 8) == stack0);
    CHECK_EQ_INT(rd_varint(&rd), 2);
    buf_free(&s);
    ch_batch_free(b);
    ch_rows_free(r);
}

TEST(stacks_and_frames_written_once)
{
    struct fixture f;
    fixture_init(&f);
    struct ch_rows *r = ch_rows_new((size_t)1 << 20);
    feed(r, &f, 3);
    ch_rows_commit(r);
    ch_batch_free(ch_rows_seal(r, 1));
    /* The same content again, in a new batch: only sample rows. */
    f.req.sequence = 2;
    feed(r, &f, 3);
    ch_rows_commit(r);
    struct ch_batch *b = ch_rows_seal(r, 2);
    CHECK(b && b->part[CH_SAMPLES].rows == 3 && b->part[CH_STACKS].rows == 0 &&
          b->part[CH_FRAMES].rows == 0 && b->part[CH_RESOURCES].rows == 0);
    CHECK(b && b->id == 0x1122334455667788ull);
    ch_batch_free(b);
    /* A new frame in a request that is rolled back: the next request writes it again. */
    f.frames[2].address = 0x9999;
    feed(r, &f, 3);
    CHECK_EQ_INT(ch_rows_samples(r), 3);
    ch_rows_rollback(r);
    CHECK_EQ_INT(ch_rows_samples(r), 0);
    CHECK_EQ_INT(ch_rows_bytes(r), 0);
    feed(r, &f, 3);
    ch_rows_commit(r);
    b = ch_rows_seal(r, 3);
    CHECK(b && b->part[CH_FRAMES].rows == 2 && b->part[CH_STACKS].rows == 2 && b->part[CH_RESOURCES].rows == 1);
    ch_batch_free(b);
    ch_rows_free(r);
}

TEST(batch_limit_fails_the_request)
{
    struct fixture f;
    fixture_init(&f);
    struct ch_rows *r = ch_rows_new(300);
    feed(r, &f, 3);
    CHECK(ch_rows_failed(r) != NULL);
    ch_rows_rollback(r);
    CHECK(ch_rows_failed(r) == NULL && ch_rows_bytes(r) == 0);
    ch_rows_free(r);
}

/* ---------------------------------------------------------------- spool */

static struct ch_batch *make_batch(uint64_t seq, size_t bytes)
{
    struct ch_batch *b = calloc(1, sizeof *b);
    b->id = 1000 + seq;
    b->seq = seq;
    b->part[CH_SAMPLES].rows = 7;
    b->part[CH_SAMPLES].len = bytes;
    b->part[CH_SAMPLES].data = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        b->part[CH_SAMPLES].data[i] = (uint8_t)(seq * 31 + i);
    b->bytes = bytes;
    return b;
}

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/lb-test-spool-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        n += l > k && strcmp(e->d_name + l - k, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TEST(spool_roundtrip_order_and_corruption)
{
    char *dir = temp_dir();
    char err[300];
    CHECK(dir != NULL);
    if (!dir)
        return;
    struct ch_spool *sp = ch_spool_open(dir, 1 << 20, err, sizeof err);
    CHECK(sp != NULL);
    /* One process per spool: a second open is refused while the first holds it. */
    CHECK(ch_spool_open(dir, 1 << 20, err, sizeof err) == NULL && strstr(err, "in use"));
    for (uint64_t seq = 3; seq <= 5; seq++) {
        struct ch_batch *b = make_batch(seq, 100 + seq);
        CHECK_EQ_INT(ch_spool_write(sp, b, false, err, sizeof err), 0);
        ch_batch_free(b);
    }
    ch_spool_free(sp);
    /* A write cut short by a crash leaves a temporary file: removed at the next open. */
    char p[512];
    snprintf(p, sizeof p, "%s/.00000000000000000009.tmp", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    sp = ch_spool_open(dir, 1 << 20, err, sizeof err);
    CHECK(sp && ch_spool_count(sp) == 3 && ch_spool_last_seq(sp) == 5 && ch_spool_head_seq(sp) == 3);
    CHECK_EQ_INT(count_suffix(dir, ".tmp"), 0);
    struct ch_batch *b = ch_spool_load_head(sp, err, sizeof err);
    struct ch_batch *want = make_batch(3, 103);
    CHECK(b && b->id == want->id && b->part[CH_SAMPLES].rows == 7 && b->part[CH_SAMPLES].len == 103 &&
          memcmp(b->part[CH_SAMPLES].data, want->part[CH_SAMPLES].data, 103) == 0 && b->bytes == 103);
    ch_batch_free(b);
    ch_batch_free(want);
    ch_spool_remove_head(sp);
    CHECK(ch_spool_count(sp) == 2 && ch_spool_head_seq(sp) == 4);
    /* One flipped byte: the CRC catches it; the file is moved aside, not inserted, not lost. */
    snprintf(p, sizeof p, "%s/00000000000000000004.batch", dir);
    int fd = open(p, O_RDWR);
    uint8_t x;
    CHECK(pread(fd, &x, 1, 70) == 1);
    x ^= 0x40;
    CHECK(pwrite(fd, &x, 1, 70) == 1);
    close(fd);
    CHECK(ch_spool_load_head(sp, err, sizeof err) == NULL && strstr(err, "CRC"));
    ch_spool_quarantine_head(sp);
    CHECK_EQ_INT(count_suffix(dir, ".bad"), 1);
    b = ch_spool_load_head(sp, err, sizeof err);
    CHECK(b && b->seq == 5);
    ch_batch_free(b);
    ch_spool_free(sp);
    remove_dir(dir);
    free(dir);
}

TEST(spool_cap_and_forced_writes)
{
    char *dir = temp_dir();
    char err[300];
    if (!dir)
        return;
    struct ch_spool *sp = ch_spool_open(dir, 200, err, sizeof err);
    struct ch_batch *b1 = make_batch(1, 150), *b2 = make_batch(2, 150), *b0 = make_batch(0, 10);
    CHECK_EQ_INT(ch_spool_write(sp, b1, false, err, sizeof err), 0);   /* under the cap when written */
    CHECK_EQ_INT(ch_spool_write(sp, b2, false, err, sizeof err), -1);  /* now at/over the cap */
    CHECK(strstr(err, "full") != NULL);
    CHECK_EQ_INT(ch_spool_write(sp, b2, true, err, sizeof err), 0);    /* shutdown: forced */
    CHECK_EQ_INT(ch_spool_write(sp, b0, true, err, sizeof err), 0);    /* older, forced: sorted */
    CHECK(ch_spool_count(sp) == 3 && ch_spool_head_seq(sp) == 0);
    ch_batch_free(b0);
    ch_batch_free(b1);
    ch_batch_free(b2);
    ch_spool_free(sp);
    remove_dir(dir);
    free(dir);
}

TEST(spool_decode_rejects_garbage)
{
    char err[200];
    uint8_t junk[100] = { 0 };
    CHECK(ch_spool_decode(junk, sizeof junk, err, sizeof err) == NULL);
    struct ch_batch *b = make_batch(9, 40);
    struct buf enc;
    buf_init(&enc, 1 << 20);
    CHECK_EQ_INT(ch_spool_encode(b, &enc), 0);
    for (size_t cut = 0; cut < enc.len; cut += 7)   /* every truncation is refused */
        CHECK(ch_spool_decode(enc.data, cut, err, sizeof err) == NULL);
    struct ch_batch *d = ch_spool_decode(enc.data, enc.len, err, sizeof err);
    CHECK(d && d->seq == 9 && d->id == b->id && d->bytes == 40);
    ch_batch_free(d);
    ch_batch_free(b);
    buf_free(&enc);
}

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
    int samples_inserts;    /* stop once this many samples INSERTs arrived */
    uint64_t deadline;
};

static void until_tick(struct loop *l, void *ud)
{
    struct until *u = ud;
    if (count_inserts(u->fk, "samples") >= u->samples_inserts || ch_now_ms() > u->deadline) {
        loop_stop(l);
        return;
    }
    loop_add_timer(l, 5, until_tick, u);
}

static void run_until(struct loop *l, struct fake *fk, int samples_inserts, unsigned ms)
{
    struct until u = { fk, samples_inserts, ch_now_ms() + ms };
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

/* `fail_inserts`: how many INSERTs the fake fails first (struct fake); `spool_dir` may be NULL.
 * live_stop frees the loop. */
static void live_start(struct live *v, struct loop *l, int fail_inserts, const char *spool_dir)
{
    char err[256];
    v->l = l;
    fake_start(&v->fk, l);
    v->fk.fail_inserts = fail_inserts;
    clickhouse_sink_defaults(&v->o);
    snprintf(v->url, sizeof v->url, "http://127.0.0.1:%d/", v->fk.port);
    v->o.url = v->url;
    v->o.database = "t";
    v->o.flush_interval_ms = 20;
    v->o.spool_dir = spool_dir;
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
    run_until(v.l, fk, 1, 5000);
    /* CREATE DATABASE, 4 x CREATE TABLE, then frames, stacks, resources, samples. */
    CHECK_EQ_INT(fk->nreq, 9);
    CHECK(fk->nreq >= 5 && strncmp((char *)fk->body[0].data, "CREATE DATABASE IF NOT EXISTS `t`", 33) == 0);
    CHECK(fk->nreq >= 5 && strstr((char *)fk->body[4].data, "ENGINE = ReplacingMergeTree") != NULL);
    CHECK_EQ_INT(count_inserts(fk, "frames"), 1);
    CHECK_EQ_INT(count_inserts(fk, "stacks"), 1);
    CHECK_EQ_INT(count_inserts(fk, "resources"), 1);
    CHECK_EQ_INT(count_inserts(fk, "samples"), 1);
    CHECK(fk->nreq == 9 && strstr(fk->target[8], "FORMAT%20RowBinary") != NULL);
    /* The samples body is gzip'd RowBinary: three rows, the first one's service is "svc". */
    struct buf raw;
    char gzerr[100];
    buf_init(&raw, 1 << 20);
    CHECK(fk->nreq == 9 && gzip_inflate(fk->body[8].data, fk->body[8].len, raw.limit, &raw, gzerr, sizeof gzerr) == GZIP_OK);
    CHECK(raw.len > 16 && memcmp(raw.data + 12, "\x03svc", 4) == 0);
    buf_free(&raw);
    live_stop(&v);
}

TEST(sink_retries_with_identical_bodies)
{
    struct live v;
    char why[256];
    live_start(&v, loop_new(), 3, NULL);   /* frames fails 3 times, then everything passes */
    struct fake *fk = &v.fk;
    uint64_t t0 = ch_now_ms();
    CHECK_EQ_INT(send_request(&v.s, &v.f, why, sizeof why), 0);
    run_until(v.l, fk, 1, 10000);
    uint64_t took = ch_now_ms() - t0;
    CHECK_EQ_INT(count_inserts(fk, "frames"), 4);
    CHECK_EQ_INT(count_inserts(fk, "samples"), 1);
    /* Backoff: 100, 200, 400 ms +-50% between the attempts: at least 350 ms in all. */
    CHECK(took >= 350);
    for (int i = 6; i < 8 && i < fk->nreq; i++)
        CHECK(fk->body[i].len == fk->body[5].len && memcmp(fk->body[i].data, fk->body[5].data, fk->body[5].len) == 0);
    live_stop(&v);
}

TEST(sink_refuses_when_full_without_spool)
{
    struct loop *l = loop_new();
    struct clickhouse_sink_options o;
    char err[256], why[256];
    clickhouse_sink_defaults(&o);
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
    run_until(l, &v.fk, 4, 5000);
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
    RUN(fnv1a_64_reference_vectors);
    RUN(sample_row_fields);
    RUN(stacks_and_frames_written_once);
    RUN(batch_limit_fails_the_request);
    RUN(spool_roundtrip_order_and_corruption);
    RUN(spool_cap_and_forced_writes);
    RUN(spool_decode_rejects_garbage);
    RUN(sink_delivers_schema_then_parts);
    RUN(sink_retries_with_identical_bodies);
    RUN(sink_refuses_when_full_without_spool);
    RUN(sink_spools_at_shutdown_and_replays);
    return check_done();
}
