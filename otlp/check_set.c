/*
 * check_set.c - the conformance checker's one hash set: table indices, found again by an
 * equality callback, so that every duplicate test (strings, mappings, the strict tables,
 * attribute keys) costs one hash of the entry and, on a hash match, one comparison.
 *
 * Why capped: a request of 64 MiB can hold tens of millions of two-byte entries; hashing
 * them all would cost more memory than the request. The set takes CHECK_MAX_HASHED entries
 * (its arrays then use 8 bytes a slot, 32 MiB at most); entries past that are not tested and
 * the checker says so with a `check-limit` finding.
 */
#include <stdlib.h>
#include <string.h>

#include "otlp/check_internal.h"

uint64_t check_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, b, 8);
        h = (h ^ x) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
        b += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < n; i++)
        tail |= (uint64_t)b[i] << (8 * i);
    h = (h ^ tail) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

bool check_set_reset(struct check_set *s, size_t expect)
{
    if (expect > CHECK_MAX_HASHED)
        expect = CHECK_MAX_HASHED;
    size_t cap = 16;
    while (cap < expect * 2)
        cap <<= 1;
    if (cap > s->cap) {
        uint32_t *slot = realloc(s->slot, cap * sizeof *slot);
        if (!slot)
            return false;
        s->slot = slot;
        uint32_t *tag = realloc(s->tag, cap * sizeof *tag);
        if (!tag)
            return false;
        s->tag = tag;
        s->cap = cap;
    }
    /* only the part this table needs is cleared and used: a small table after a large one
     * costs its own size, not the largest one's */
    s->n = 0;
    s->full = false;
    memset(s->slot, 0, cap * sizeof *s->slot);
    s->used = cap;
    return true;
}

void check_set_free(struct check_set *s)
{
    free(s->slot);
    free(s->tag);
    memset(s, 0, sizeof *s);
}

int64_t check_set_find_or_add(struct check_set *s, uint64_t hash, uint32_t idx, check_eq_fn eq, void *ctx)
{
    size_t mask = s->used - 1;
    size_t h = (size_t)(hash >> 7) & mask;
    uint32_t tag = (uint32_t)hash;
    while (s->slot[h]) {
        uint32_t other = s->slot[h] - 1;
        if (s->tag[h] == tag && eq(ctx, other, idx))
            return other;
        h = (h + 1) & mask;
    }
    if (s->n >= CHECK_MAX_HASHED || s->n * 2 >= s->used) {
        s->full = true;
        return -1;
    }
    s->slot[h] = idx + 1;
    s->tag[h] = tag;
    s->n++;
    return -1;
}
