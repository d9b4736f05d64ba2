/*
 * test_buf.c - lib/buf.c: the cap, and the pointer a successful reserve leaves.
 *
 * Why: every byte from the network accumulates in a struct buf, and encoders write at
 * `data + len` right after buf_reserve. A reserve of 0 bytes on a fresh buffer (an empty
 * protobuf response: full success) used to leave `data` NULL, and NULL + 0 is undefined
 * behaviour (UBSan under clang; found by test/fuzz/fuzz_traces).
 */
#include "lib/buf.h"
#include "test/unit/check.h"

TEST(reserve_zero_on_a_fresh_buffer_gives_a_pointer)
{
    struct buf b;
    buf_init(&b, 100);
    CHECK(buf_reserve(&b, 0));
    CHECK(b.data != NULL);
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);
    buf_init(&b, 0);   /* not even one byte may be stored */
    CHECK(buf_reserve(&b, 0));
    CHECK(b.data != NULL);
    CHECK(!buf_reserve(&b, 1));
    CHECK(!buf_append(&b, "x", 1));
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);
}

TEST(limit_is_exact)
{
    struct buf b;
    buf_init(&b, 5);
    CHECK(buf_append(&b, "abc", 3));
    CHECK(!buf_append(&b, "def", 3));   /* would be 6 */
    CHECK_EQ_INT(b.len, 3);
    CHECK(buf_append(&b, "de", 2));
    CHECK(memcmp(b.data, "abcde", 5) == 0);
    CHECK(!buf_putc(&b, 'f'));
    CHECK(!buf_printf(&b, "%s", ""));   /* its terminator needs a byte */
    buf_free(&b);
    CHECK(b.data == NULL && b.len == 0);
}

/* Every length from 0 to 300 appended after every offset 0..8: the short copies (up to 64
 * bytes, two overlapping fixed-size halves), the 32-byte steps (up to 256) and the C library's
 * land each byte once, in place. */
TEST(append_every_length_at_every_offset)
{
    uint8_t src[300], want[8 + 300];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 1);
    for (size_t off = 0; off <= 8; off++) {
        for (size_t n = 0; n <= sizeof src; n++) {
            struct buf b;
            buf_init(&b, 1024);
            for (size_t i = 0; i < off; i++)
                CHECK(buf_putc(&b, (char)0xee));
            CHECK(buf_append(&b, src, n));
            memset(want, 0xee, off);
            for (size_t i = 0; i < n; i++)
                want[off + i] = src[i];
            CHECK_EQ_INT(b.len, off + n);
            CHECK(off + n == 0 || memcmp(b.data, want, off + n) == 0);   /* nothing: data may be NULL */
            buf_free(&b);
        }
    }
}

/* buf_copy writes exactly [d, d + n): the bytes on either side, within a step's reach, stay. */
TEST(copy_touches_nothing_around_it)
{
    uint8_t src[300], dst[8 + 300 + 40];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 13 + 5);
    for (size_t off = 0; off <= 8; off++) {
        for (size_t n = 0; n <= sizeof src; n++) {
            memset(dst, 0xee, sizeof dst);
            buf_copy(dst + off, src, n);
            for (size_t i = 0; i < sizeof dst; i++) {
                uint8_t want = i >= off && i < off + n ? src[i - off] : 0xee;
                if (dst[i] != want) {
                    CHECK_EQ_INT(dst[i], want);
                    return;
                }
            }
        }
    }
}

int main(void)
{
    RUN(reserve_zero_on_a_fresh_buffer_gives_a_pointer);
    RUN(limit_is_exact);
    RUN(append_every_length_at_every_offset);
    RUN(copy_touches_nothing_around_it);
    return check_done();
}
