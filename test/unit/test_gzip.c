/*
 * test_gzip.c - gzip_inflate's bound and error handling, checked against expectations that
 * do not come from the code under test: the inflated bytes must equal the original input,
 * a bomb must stop at the limit without the buffer ever allocating past it, and malformed
 * streams (truncated, trailing garbage, not gzip at all) must be GZIP_CORRUPT.
 */
#include "lib/buf.h"
#include "lib/gzip.h"
#include "test/unit/check.h"

#include <stdlib.h>
#include <string.h>

/* Deterministic, poorly compressible input (xorshift), so round trips span many chunks. */
static void fill_pseudo_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x & 0x3f);   /* 6 bits: compressible, but not trivially */
    }
}

static size_t compress_into(struct buf *z, const uint8_t *p, size_t n)
{
    buf_init(z, SIZE_MAX);
    CHECK_EQ_INT(gzip_deflate(p, n, z, 6), 0);
    return z->len;
}

/* `n` pseudo-random bytes into `data`, and their compressed form into `z`. */
static void compress_random(struct buf *z, uint8_t *data, size_t n, uint32_t seed)
{
    fill_pseudo_random(data, n, seed);
    compress_into(z, data, n);
}

TEST(round_trip)
{
    size_t n = 1000 * 1000 + 7;
    uint8_t *orig = malloc(n);
    struct buf z, out;
    compress_random(&z, orig, n, 42);
    CHECK(z.len > 18 && z.len < n);
    CHECK_EQ_INT(z.data[0], 0x1f);   /* RFC 1952 magic: deflate really wrote gzip */
    CHECK_EQ_INT(z.data[1], 0x8b);
    buf_init(&out, SIZE_MAX);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, n, &out, err, sizeof err), GZIP_OK);
    CHECK_EQ_INT(out.len, n);
    CHECK(out.len == n && memcmp(out.data, orig, n) == 0);
    buf_free(&z);
    buf_free(&out);
    free(orig);
}

TEST(empty_payload_round_trip)
{
    struct buf z, out;
    compress_into(&z, (const uint8_t *)"", 0);
    buf_init(&out, 100);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, 100, &out, err, sizeof err), GZIP_OK);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&z);
    buf_free(&out);
}

TEST(exactly_at_limit_is_ok)
{
    uint8_t data[5000];
    struct buf z, out;
    compress_random(&z, data, sizeof data, 7);
    buf_init(&out, SIZE_MAX);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, sizeof data, &out, err, sizeof err), GZIP_OK);
    CHECK_EQ_INT(out.len, sizeof data);
    buf_reset(&out);
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, sizeof data - 1, &out, err, sizeof err),
                 GZIP_TOO_LARGE);
    CHECK(out.len <= sizeof data - 1);
    buf_free(&z);
    buf_free(&out);
}

TEST(bomb_stops_at_limit)
{
    size_t n = 200u * 1024 * 1024;   /* 200 MiB of zeros compresses to ~200 KiB */
    uint8_t *zeros = calloc(1, n);
    CHECK(zeros != NULL);
    if (!zeros)
        return;
    struct buf z, out;
    compress_into(&z, zeros, n);
    free(zeros);
    CHECK(z.len < 1024 * 1024);
    size_t limit = 1024 * 1024 + 3;   /* deliberately not a power of two */
    buf_init(&out, SIZE_MAX);         /* the buffer itself would allow anything */
    char err[128] = "";
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, limit, &out, err, sizeof err), GZIP_TOO_LARGE);
    CHECK(out.len <= limit);
    CHECK(out.cap <= limit);          /* never allocated past the bound */
    CHECK_EQ_INT(out.limit, SIZE_MAX); /* the caller's own limit is restored */
    CHECK(err[0] != '\0');
    buf_free(&z);
    buf_free(&out);
}

TEST(buffer_limit_is_also_respected)
{
    uint8_t data[10000];
    memset(data, 'a', sizeof data);
    struct buf z, out;
    compress_into(&z, data, sizeof data);
    buf_init(&out, 100);   /* tighter than the limit passed */
    char err[128];
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, 1 << 20, &out, err, sizeof err), GZIP_TOO_LARGE);
    CHECK(out.cap <= 100);
    buf_free(&z);
    buf_free(&out);
}

TEST(truncated)
{
    uint8_t data[20000];
    struct buf z, out;
    compress_random(&z, data, sizeof data, 9);
    char err[128];
    size_t cuts[] = { 1, 5, 10, z.len / 2, z.len - 4, z.len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        buf_init(&out, SIZE_MAX);
        err[0] = '\0';
        CHECK_EQ_INT(gzip_inflate(z.data, cuts[i], 1 << 20, &out, err, sizeof err), GZIP_CORRUPT);
        CHECK(err[0] != '\0');
        buf_free(&out);
    }
    buf_free(&z);
}

TEST(trailing_garbage)
{
    const char *msg = "hello, profiles";
    struct buf z, out;
    compress_into(&z, (const uint8_t *)msg, strlen(msg));
    buf_append(&z, "XYZ", 3);
    buf_init(&out, SIZE_MAX);
    char err[128] = "";
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, 1 << 20, &out, err, sizeof err), GZIP_CORRUPT);
    CHECK(strstr(err, "trailing") != NULL);
    buf_free(&z);
    buf_free(&out);
}

TEST(not_gzip)
{
    const uint8_t junk[] = "this is not gzip at all";
    struct buf out;
    buf_init(&out, SIZE_MAX);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(junk, sizeof junk, 1 << 20, &out, err, sizeof err), GZIP_CORRUPT);
    CHECK_EQ_INT(gzip_inflate(junk, 0, 1 << 20, &out, err, sizeof err), GZIP_CORRUPT);
    /* A raw zlib (RFC 1950) stream is not gzip either. */
    const uint8_t zlib_hdr[] = { 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01 };
    CHECK_EQ_INT(gzip_inflate(zlib_hdr, sizeof zlib_hdr, 1 << 20, &out, err, sizeof err),
                 GZIP_CORRUPT);
    buf_free(&out);
}

TEST(concatenated_members)
{
    struct buf a, b, out;
    compress_into(&a, (const uint8_t *)"first-", 6);
    compress_into(&b, (const uint8_t *)"second", 6);
    buf_append(&a, b.data, b.len);
    buf_init(&out, SIZE_MAX);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(a.data, a.len, 100, &out, err, sizeof err), GZIP_OK);
    CHECK_EQ_INT(out.len, 12);
    CHECK(out.len == 12 && memcmp(out.data, "first-second", 12) == 0);
    /* The limit counts across members. */
    buf_reset(&out);
    CHECK_EQ_INT(gzip_inflate(a.data, a.len, 8, &out, err, sizeof err), GZIP_TOO_LARGE);
    buf_free(&a);
    buf_free(&b);
    buf_free(&out);
}

TEST(appends_to_existing_content)
{
    struct buf z, out;
    compress_into(&z, (const uint8_t *)"tail", 4);
    buf_init(&out, SIZE_MAX);
    buf_append(&out, "head-", 5);
    char err[128];
    CHECK_EQ_INT(gzip_inflate(z.data, z.len, 9, &out, err, sizeof err), GZIP_OK);
    CHECK(out.len == 9 && memcmp(out.data, "head-tail", 9) == 0);
    buf_free(&z);
    buf_free(&out);
}

int main(void)
{
    RUN(round_trip);
    RUN(empty_payload_round_trip);
    RUN(exactly_at_limit_is_ok);
    RUN(bomb_stops_at_limit);
    RUN(buffer_limit_is_also_respected);
    RUN(truncated);
    RUN(trailing_garbage);
    RUN(not_gzip);
    RUN(concatenated_members);
    RUN(appends_to_existing_content);
    return check_done();
}
