/*
 * hash.c - hash64 (lib/hash.h): 64-bit words, multiply-xorshift mixing.
 */
#include <string.h>

#include "lib/hash.h"

/* 64-bit words, multiply-xorshift mixing, explicit little-endian loads so the value is the
 * same on every machine (the SQLite store keeps it in its files). */
static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&w, p, n);   /* one load where the byte order already matches */
#else
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
#endif
    return w;
}

uint64_t hash64(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xc2b2ae3d27d4eb4full);
    for (; n >= 8; p += 8, n -= 8) {
        h = (h ^ load_le(p, 8)) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    h = (h ^ load_le(p, n)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}
