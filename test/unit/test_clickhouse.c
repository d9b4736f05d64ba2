/*
 * test_clickhouse.c - the ClickHouse sink's parts without a ClickHouse: the content hash,
 * the RowBinary rows (decoded here field by field against hand-written expectations), stacks
 * and frames written once, rollback, sealing with and without gzip, and the spool's file
 * format and its failure handling.
 * The sink itself, driven through its vtable against a fake server, is test_clickhouse_sink.c.
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
#include <zlib.h>

#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/attrblob.h"
#include "sinks/clickhouse/content.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/wal.h"
#include "sinks/clickhouse/clickhouse.h"
#include "test/unit/check.h"
#include "test/unit/clickhouse_fixture.h"

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

/* The next String as it is (a typed attribute list may hold any byte). */
static lb_str rd_blob(struct rd *r)
{
    uint64_t n = rd_varint(r);
    if ((uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return (lb_str){ "", 0 };
    }
    lb_str s = { (const char *)r->p, (size_t)n };
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

TEST(frame_cache_gives_the_fnv_of_its_key)
{
    /* The cache must answer exactly FNV-1a of the key bytes, hit or miss, and never the hash
     * of another key of the same length. */
    struct ch_frame_cache *c = ch_frame_cache_new();
    CHECK(c != NULL);
    static uint8_t big[2048];
    memset(big, 'x', sizeof big);
    const char *keys[] = { "", "a", "foobar", "foobaz", "a longer key than one word, twice over" };
    for (int round = 0; round < 2; round++) {   /* the first fills the cache, the second hits it */
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            CHECK(ch_frame_cache_hash(c, (const uint8_t *)keys[i], strlen(keys[i])) ==
                  ch_fnv_bytes(CH_FNV_OFFSET, keys[i], strlen(keys[i])));
        CHECK(ch_frame_cache_hash(c, big, sizeof big) == ch_fnv_bytes(CH_FNV_OFFSET, big, sizeof big));
    }
    CHECK(ch_frame_cache_hash(c, (const uint8_t *)"foobar", 6) == 0x85944171f73967e8ull);
    uint64_t hits, misses;
    ch_frame_cache_stats(c, &hits, &misses);
    CHECK_EQ_INT(hits, 6);     /* the second round's five keys and "foobar" again; big is not kept */
    CHECK_EQ_INT(misses, 5);
    CHECK(ch_frame_cache_hash(NULL, (const uint8_t *)"a", 1) == 0xaf63dc4c8601ec8cull);
    ch_frame_cache_free(c);
}

TEST(decimal_integers_as_printf_writes_them)
{
    const int64_t v[] = { 0, 7, -1, 42, 1000000, -987654321, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct buf b;
        buf_init(&b, 64);
        struct lb_value val = { .kind = LB_VALUE_INT, .u.integer = v[i] };
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)v[i]);
        CHECK(ch_render_value(&b, &val, false) && buf_putc(&b, '\0'));
        CHECK_EQ_STR((const char *)b.data, want);
        buf_free(&b);
    }
}

/* ---------------------------------------------------------------- rows */

TEST(sample_row_fields)
{
    struct fixture f;
    fixture_init(&f);
    struct ch_rows *r = ch_rows_new((size_t)1 << 20);
    feed(r, &f, 3);
    ch_rows_request_end(r);
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
    CHECK_EQ_INT(b->part[CH_REQUESTS].rows, 1);
    CHECK_EQ_INT(b->schema, CH_SCHEMA_VERSION);

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
        CHECK_EQ_INT(rd_fixed(&rd, 4), 0);                   /* request, resource, profile */
        CHECK_EQ_INT(rd_fixed(&rd, 4), 0);
        CHECK_EQ_INT(rd_fixed(&rd, 4), 0);
        lb_str blob = rd_blob(&rd);                          /* typed attributes */
        struct lb_attr a[2];
        CHECK_EQ_INT(attrblob_count(blob), row == 1 ? 0 : 2);
        if (row != 1 && attrblob_count(blob) == 2) {
            CHECK(attrblob_get(blob, a, 2));
            CHECK(lb_str_eq(a[0].key, "thread.name", 11) && a[0].value.kind == LB_VALUE_STRING &&
                  lb_str_eq(a[0].value.u.str, "worker", 6));
            CHECK(lb_str_eq(a[1].key, "thread.id", 9) && a[1].value.kind == LB_VALUE_INT && a[1].value.u.integer == 42);
        }
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
    CHECK_EQ_INT(rd_fixed(&rd, 8), 0);                       /* start line */
    CHECK_EQ_INT(rd_fixed(&rd, 4), 0);                       /* line 0 of 1 */
    CHECK_EQ_INT(rd_fixed(&rd, 4), 1);
    CHECK_EQ_INT(rd_fixed(&rd, 1), 0);                       /* no mapping */
    rd.p += 24;
    CHECK_EQ_INT(attrblob_count(rd_blob(&rd)), 0);
    CHECK_EQ_INT(attrblob_count(rd_blob(&rd)), 0);
    /* The empty list as an empty buffer holds it (no bytes, NULL data) is read without
     * NULL + 0, which clang's UBSan reports (found by fuzz_store_blobs). */
    CHECK_EQ_INT(attrblob_count((lb_str){ NULL, 0 }), 0);
    CHECK(attrblob_get((lb_str){ NULL, 0 }, NULL, 0));
    CHECK(!attrblob_get((lb_str){ NULL, 0 }, NULL, 1));
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

    /* The request's row: its resource and profile, every field, in content.h's form. */
    CHECK(inflate_part(&b->part[CH_REQUESTS], &s));
    rd = (struct rd){ s.data, s.data + s.len, false };
    CHECK_EQ_INT(rd_fixed(&rd, 4), 1700000000);
    CHECK(rd_fixed(&rd, 8) == b->id);
    CHECK_EQ_INT(rd_fixed(&rd, 4), 0);
    CHECK(rd_fixed(&rd, 8) == 1700000000000000000ull);
    CHECK_EQ_STR(rd_str(&rd), "test");
    CHECK_EQ_STR(rd_str(&rd), "-");
    CHECK_EQ_STR(rd_str(&rd), "v1.11");
    lb_str content = rd_blob(&rd);
    CHECK(!rd.bad && rd.p == rd.end);
    const uint8_t *pos = (const uint8_t *)content.p, *end = pos + content.n;
    struct ch_content_item it;
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'R' && attrblob_count(it.attrs) == 2 && lb_str_eq(it.schema_url, "https://x", 9));
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'P' && lb_str_eq(it.scope.name, "scope-a", 7) && lb_str_eq(it.period_type, "cpu", 3) &&
          it.period == 50000000 && it.time_unix_nano == 1761887343000000000ull &&
          lb_str_eq(it.profile_id, "\x01\xab", 2));
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 0);
    /* cut short anywhere: malformed, never read past the end */
    for (size_t cut = 1; cut < content.n; cut++) {
        pos = (const uint8_t *)content.p;
        end = pos + cut;
        int rc = 1;
        while (rc == 1)
            rc = ch_content_next(&pos, end, &it);
        CHECK(rc == -1 || pos == end);
    }
    buf_free(&s);
    ch_batch_free(b);
    ch_rows_free(r);
}

/* A resource's entity refs follow its 'R' item as 'E' items, keys in order (an empty one kept);
 * a resource without refs is the 'R' item alone, as before they were kept. */
TEST(content_keeps_entity_refs)
{
    const lb_str ids[] = { LB_STR_LIT("service.name"), LB_STR_LIT("service.namespace") };
    const lb_str desc[] = { LB_STR_LIT(""), LB_STR_LIT("service.version") };
    const struct lb_entity_ref refs[] = {
        { LB_STR_LIT("https://s/1"), LB_STR_LIT("service"), ids, 2, desc, 2 },
        { LB_STR_LIT(""), LB_STR_LIT("host"), ids + 1, 1, NULL, 0 },
    };
    struct lb_resource res = { .schema_url = LB_STR_LIT("https://x"), .entity_refs = refs, .n_entity_refs = 2 };
    struct buf out, scratch;
    buf_init(&out, 1 << 16);
    buf_init(&scratch, 1 << 16);
    CHECK(ch_content_resource(&out, &scratch, &res));
    size_t with = out.len;
    res.n_entity_refs = 0;
    CHECK(ch_content_resource(&out, &scratch, &res));
    /* by hand: 'R', no attributes (0), dropped 0, "https://x"; the second resource likewise */
    CHECK_EQ_INT((long long)(out.len - with), 13);
    CHECK(memcmp(out.data + with, "R\0\0\x09https://x", 13) == 0);
    const uint8_t *pos = out.data, *end = out.data + out.len;
    struct ch_content_item it;
    lb_str k[2];
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'R');
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'E' && lb_str_eq(it.schema_url, "https://s/1", 11) && lb_str_eq(it.entity_type, "service", 7));
    CHECK_EQ_INT(it.n_id_keys, 2);
    CHECK_EQ_INT(it.n_description_keys, 2);
    ch_content_keys(it.id_keys, k, 2);
    CHECK(lb_str_eq(k[0], "service.name", 12) && lb_str_eq(k[1], "service.namespace", 17));
    ch_content_keys(it.description_keys, k, 2);
    CHECK(k[0].n == 0 && lb_str_eq(k[1], "service.version", 15));
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'E' && it.schema_url.n == 0 && lb_str_eq(it.entity_type, "host", 4));
    CHECK_EQ_INT(it.n_id_keys, 1);
    CHECK_EQ_INT(it.n_description_keys, 0);
    ch_content_keys(it.id_keys, k, 1);
    CHECK(lb_str_eq(k[0], "service.namespace", 17));
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 1);
    CHECK(it.tag == 'R');
    CHECK_EQ_INT(ch_content_next(&pos, end, &it), 0);
    /* cut short anywhere, or a key count past the bytes: malformed, never read past the end */
    for (size_t cut = 1; cut < with; cut++) {
        pos = out.data;
        end = pos + cut;
        int rc = 1;
        while (rc == 1)
            rc = ch_content_next(&pos, end, &it);
        CHECK(rc == -1 || pos == end);
    }
    static const uint8_t huge[] = { 'E', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'a' };
    pos = huge;
    CHECK_EQ_INT(ch_content_next(&pos, huge + sizeof huge, &it), -1);
    buf_free(&out);
    buf_free(&scratch);
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

/* The jvm frame's hash, from its fields as docs/clickhouse.md lists them: every stored field
 * (integers as 8 little-endian bytes, strings as their length then bytes), its location's
 * attribute list as encoded (empty: none, although it has a type) and its mapping's as the
 * usual mark (no mapping, no build id). */
static uint64_t jvm_frame_hash(void)
{
    uint64_t h = CH_FNV_OFFSET;
    h = ch_fnv_str(h, S("jvm"));
    h = ch_fnv_u64(h, 1);
    h = ch_fnv_str(h, S("leaf()"));
    h = ch_fnv_str(h, S(""));
    h = ch_fnv_str(h, S("A.java"));
    h = ch_fnv_u64(h, 9);
    h = ch_fnv_u64(h, 0);
    h = ch_fnv_u64(h, 0);
    h = ch_fnv_u64(h, 0);
    h = ch_fnv_str(h, S(""));
    h = ch_fnv_str(h, S(""));
    h = ch_fnv_str(h, S(""));
    h = ch_fnv_u64(h, 0);
    h = ch_fnv_u64(h, 1);          /* line 0 of 1 */
    h = ch_fnv_u64(h, 0);          /* the location's list: encoded, 0 bytes */
    return ch_fnv_u64(h, UINT64_MAX);
}

TEST(frame_hash_is_the_same_in_every_request)
{
    struct fixture f;
    fixture_init(&f);
    struct ch_rows *r = ch_rows_new((size_t)1 << 20);
    /* The first request hashes the frame; the later ones find its hash again (frame_cache.c):
     * forgetting what was written makes each batch write the frame row again. */
    for (uint64_t seq = 1; seq <= 3; seq++) {
        f.req.sequence = seq;
        feed(r, &f, 3);
        ch_rows_commit(r);
        struct ch_batch *b = ch_rows_seal(r, seq);
        struct buf s;
        CHECK(b && inflate_part(&b->part[CH_FRAMES], &s));
        struct rd rd = { s.data, s.data + s.len, false };
        CHECK(rd_fixed(&rd, 8) == jvm_frame_hash());
        CHECK_EQ_STR(rd_str(&rd), "jvm");
        buf_free(&s);
        ch_batch_free(b);
        ch_rows_forget(r);
    }
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

/* --clickhouse-compression none: a sealed part is the RowBinary the gzip'd one inflates to. */
TEST(plain_batches_hold_the_rows_gzip_would_compress)
{
    struct ch_batch *b[2];
    for (int plain = 0; plain < 2; plain++) {
        struct fixture f;
        fixture_init(&f);
        struct ch_rows *r = ch_rows_new((size_t)1 << 20);
        if (plain)
            ch_rows_set_gzip(r, false);
        feed(r, &f, 3);
        ch_rows_request_end(r);
        ch_rows_commit(r);
        b[plain] = ch_rows_seal(r, 5);
        ch_rows_free(r);
    }
    CHECK(b[0] && b[1] && b[0]->gzip && !b[1]->gzip);
    for (int t = 0; b[0] && b[1] && t < CH_TABLES; t++) {
        struct buf s;
        CHECK(inflate_part(&b[0]->part[t], &s));
        CHECK(b[1]->part[t].rows == b[0]->part[t].rows && b[1]->part[t].len == s.len &&
              (s.len == 0 || memcmp(b[1]->part[t].data, s.data, s.len) == 0));
        buf_free(&s);
    }
    ch_batch_free(b[0]);
    ch_batch_free(b[1]);
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

/* The spool's temporary file is created, never reused: a symbolic link or a file planted at
 * its name (after the open that sweeps leftovers) fails the write; nothing is written through
 * the link, the planted file keeps its bytes, and the batch is not counted as spooled. */
TEST(spool_temporary_file_is_never_followed_or_reused)
{
    char *dir = temp_dir();
    char err[300], tmp[512], target[512], planted[512];
    if (!dir)
        return;
    struct ch_spool *sp = ch_spool_open(dir, 1 << 20, err, sizeof err);
    CHECK(sp != NULL);
    snprintf(target, sizeof target, "%s.target", dir);   /* outside the spool */
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "keep", 4) == 4);
    close(fd);
    snprintf(tmp, sizeof tmp, "%s/.%020llu.tmp", dir, 7ULL);
    CHECK(symlink(target, tmp) == 0);
    struct ch_batch *b = make_batch(7, 64);
    CHECK_EQ_INT(ch_spool_write(sp, b, true, err, sizeof err), -1);   /* even when forced */
    CHECK(strstr(err, ".tmp") != NULL);
    struct stat st;
    CHECK(stat(target, &st) == 0 && st.st_size == 4);
    unlink(target);
    /* a dangling link: its target must not be created */
    CHECK_EQ_INT(ch_spool_write(sp, b, false, err, sizeof err), -1);
    CHECK(access(target, F_OK) != 0);
    unlink(tmp);
    /* a regular file another process left: not truncated, not taken over */
    snprintf(planted, sizeof planted, "%s/.%020llu.tmp", dir, 8ULL);
    fd = open(planted, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "mine", 4) == 4);
    close(fd);
    struct ch_batch *b8 = make_batch(8, 64);
    CHECK_EQ_INT(ch_spool_write(sp, b8, false, err, sizeof err), -1);
    CHECK(stat(planted, &st) == 0 && st.st_size == 4);
    CHECK(ch_spool_count(sp) == 0 && count_suffix(dir, ".batch") == 0);
    /* with the names free again the same batches are spooled */
    unlink(planted);
    CHECK_EQ_INT(ch_spool_write(sp, b, false, err, sizeof err), 0);
    CHECK_EQ_INT(ch_spool_write(sp, b8, false, err, sizeof err), 0);
    CHECK(ch_spool_count(sp) == 2 && count_suffix(dir, ".batch") == 2);
    ch_batch_free(b);
    ch_batch_free(b8);
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
    /* how the parts are held travels with the file: plain "LBCHB002", gzip'd "LBCHB001" */
    CHECK(memcmp(enc.data, "LBCHB002", 8) == 0 && d && !d->gzip);
    ch_batch_free(d);
    b->gzip = true;
    buf_reset(&enc);
    CHECK_EQ_INT(ch_spool_encode(b, &enc), 0);
    d = ch_spool_decode(enc.data, enc.len, err, sizeof err);
    CHECK(memcmp(enc.data, "LBCHB001", 8) == 0 && d && d->gzip && d->bytes == 40 &&
          memcmp(d->part[CH_SAMPLES].data, b->part[CH_SAMPLES].data, 40) == 0);
    ch_batch_free(d);
    ch_batch_free(b);
    buf_free(&enc);
}

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

/* A batch file an older version (schema 1: four tables, no requests) wrote, by hand: read with
 * its schema, its samples in place; written back as schema 1, byte for byte. */
TEST(spool_reads_schema_1_files)
{
    uint8_t f[8 + 4 + 8 + 8 + 4 + 4 * 12 + 5 + 4];
    memcpy(f, "LBCHB001", 8);
    le(f + 8, 1, 4);
    le(f + 12, 0xabcdef, 8);
    le(f + 20, 77, 8);
    le(f + 28, 4, 4);
    for (int t = 0; t < 4; t++) {   /* frames, stacks, resources empty; samples 2 rows, 5 bytes */
        le(f + 32 + t * 12, t == 3 ? 2 : 0, 4);
        le(f + 36 + t * 12, t == 3 ? 5 : 0, 8);
    }
    memcpy(f + 80, "hello", 5);
    le(f + 85, crc32(crc32(0L, Z_NULL, 0), f, 85), 4);
    char err[200];
    struct ch_batch *b = ch_spool_decode(f, sizeof f, err, sizeof err);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK(b->schema == 1 && b->id == 0xabcdef && b->seq == 77 && b->part[CH_REQUESTS].rows == 0);
    CHECK(b->part[CH_SAMPLES].rows == 2 && b->part[CH_SAMPLES].len == 5 &&
          memcmp(b->part[CH_SAMPLES].data, "hello", 5) == 0);
    struct buf enc;
    buf_init(&enc, 1 << 20);
    CHECK_EQ_INT(ch_spool_encode(b, &enc), 0);
    CHECK(enc.len == sizeof f && memcmp(enc.data, f, sizeof f) == 0);
    le(f + 8, 3, 4);   /* a schema this version does not know: refused */
    le(f + 85, crc32(crc32(0L, Z_NULL, 0), f, 85), 4);
    CHECK(ch_spool_decode(f, sizeof f, err, sizeof err) == NULL && strstr(err, "schema version 3") != NULL);
    buf_free(&enc);
    ch_batch_free(b);
}

/* A write-ahead log an older version (schema 1) left: its records hold four tables; the batch
 * read back is of schema 1, its samples where they belong. A segment mixing versions is refused. */
TEST(wal_reads_schema_1_records)
{
    char *dir = temp_dir();
    char err[300];
    struct wal *w = wal_open(dir, 1 << 20, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    uint8_t rec[4 + 8 + 4 * 8 + 5];
    memcpy(rec, "CHR\x01", 4);
    le(rec + 4, 0x55aa, 8);
    for (int t = 0; t < 4; t++) {
        le(rec + 12 + t * 8, t == 3 ? 2 : 0, 4);
        le(rec + 16 + t * 8, t == 3 ? 5 : 0, 4);
    }
    memcpy(rec + 44, "hello", 5);
    CHECK(wal_append(w, 3, rec, sizeof rec, err, sizeof err) == WAL_APPENDED);
    CHECK(wal_append(w, 3, rec, sizeof rec, err, sizeof err) == WAL_APPENDED);
    bool empty;
    struct ch_batch *b = ch_wal_load(w, 3, true, &empty, err, sizeof err);
    CHECK(b && b->schema == 1 && b->id == 0x55aa && b->part[CH_SAMPLES].rows == 4 && b->part[CH_REQUESTS].rows == 0);
    CHECK(b && b->gzip);
    ch_batch_free(b);
    b = ch_wal_load(w, 3, false, &empty, err, sizeof err);   /* plain: the records' rows as they are */
    CHECK(b && !b->gzip && b->part[CH_SAMPLES].len == 10 && memcmp(b->part[CH_SAMPLES].data, "hellohello", 10) == 0 &&
          b->bytes == 10);
    ch_batch_free(b);
    rec[3] = CH_SCHEMA_VERSION;   /* the same bytes as version 2 are too short: refused */
    CHECK(wal_append(w, 4, rec, sizeof rec, err, sizeof err) == WAL_APPENDED);
    CHECK(ch_wal_load(w, 4, true, &empty, err, sizeof err) == NULL);
    wal_close(w);
    remove_dir(dir);
    free(dir);
}

int main(void)
{
    log_set_level(LOG_OFF);   /* the failures below are on purpose */
    RUN(fnv1a_64_reference_vectors);
    RUN(frame_cache_gives_the_fnv_of_its_key);
    RUN(decimal_integers_as_printf_writes_them);
    RUN(frame_hash_is_the_same_in_every_request);
    RUN(sample_row_fields);
    RUN(content_keeps_entity_refs);
    RUN(stacks_and_frames_written_once);
    RUN(batch_limit_fails_the_request);
    RUN(plain_batches_hold_the_rows_gzip_would_compress);
    RUN(spool_roundtrip_order_and_corruption);
    RUN(spool_cap_and_forced_writes);
    RUN(spool_temporary_file_is_never_followed_or_reused);
    RUN(spool_reads_schema_1_files);
    RUN(wal_reads_schema_1_records);
    RUN(spool_decode_rejects_garbage);
    return check_done();
}
