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

/* One lane step: the word mixed in, then multiply-xorshift. */
static inline uint64_t lane(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static inline uint64_t rotl(uint64_t x, int r)
{
    return x << r | x >> (64 - r);
}

/* Four lanes of a word each per 32-byte step (scalars, not an array: gcc would make an array a
 * vector, without a 64-bit multiply on x86-64), the rest a word at a time into the first, a
 * tail into the second; then the lanes are folded and avalanched, so that the low bits (a
 * table's slot index) depend on every byte. */
uint64_t hash64_lanes(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xbf58476d1ce4e5b9ull, c = 0x94d049bb133111ebull,
             d = 0xc2b2ae3d27d4eb4full, w[4];
    for (; n >= 32; p += 32, n -= 32) {
        memcpy(w, p, 32);
        a = lane(a, w[0]);
        b = lane(b, w[1]);
        c = lane(c, w[2]);
        d = lane(d, w[3]);
    }
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(w, p, 8);
        a = lane(a, w[0]);
    }
    if (n) {
        w[0] = 0;
        memcpy(w, p, n);
        b = lane(b, w[0]);
    }
    uint64_t h = a ^ rotl(b, 16) ^ rotl(c, 32) ^ rotl(d, 48);
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}
