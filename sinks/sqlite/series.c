/*
 * series.c - the packed form of a sample's timestamps and values in the samples table (schema
 * step 8): each number's difference from the one before it (the first from 0), zigzag mapped
 * and written as a base-128 varint, low group first. A sample's few timestamps sit close
 * together, so most take 2 to 5 bytes instead of a 20-byte row each, and they are written with
 * the sample in one INSERT. docs/sqlite.md describes the format for people reading it by hand.
 *
 * Differences wrap modulo 2^64, so every uint64 timestamp and int64 value round-trips exactly.
 * The reader trusts nothing: a blob must hold exactly the count its sample row says.
 */
#include <string.h>

#include "sinks/sqlite/internal.h"

/* The most bytes one number takes: ceil(64 / 7). */
#define VARINT_MAX 10

bool sq_series_pack(struct buf *b, const void *nums, size_t n)
{
    buf_reset(b);
    if (n > SIZE_MAX / VARINT_MAX || !buf_reserve(b, n * VARINT_MAX))
        return false;
    uint8_t *out = b->data;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        memcpy(&x, (const uint8_t *)nums + i * 8, 8);   /* uint64 timestamps or int64 values */
        uint64_t d = x - prev;
        uint64_t z = (d << 1) ^ (uint64_t)-(int64_t)(d >> 63);   /* zigzag of (int64)d */
        prev = x;
        while (z >= 0x80) {
            *out++ = (uint8_t)(z | 0x80);
            z >>= 7;
        }
        *out++ = (uint8_t)z;
    }
    b->len = (size_t)(out - b->data);
    return true;
}

int sq_series_unpack(const void *blob, size_t len, uint64_t *out, size_t n)
{
    const uint8_t *p = blob, *end = p + len;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (p == end || shift >= 64)
                return -1;
            uint8_t c = *p++;
            z |= (uint64_t)(c & 0x7f) << shift;
            if (c < 0x80)
                break;
        }
        prev += (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
        out[i] = prev;
    }
    return p == end ? 0 : -1;
}
