/*
 * cache.c - the SQLite writer's memory: a bounded cache of ids of rows already in the
 * database (see internal.h; the per-request memo is lib/memo.c).
 *
 * Why: most of what a profiler sends repeats (the same stacks every 5 seconds, the same
 * thread names, the same frames), and a SQL lookup costs microseconds where a hash probe
 * costs nanoseconds. The cache is bounded so that a sender of endless distinct stacks makes
 * the writer slower, not bigger.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "sinks/sqlite/internal.h"

#define WAYS 4

struct slot {
    uint64_t hash;
    int64_t id;       /* 0 = empty */
    uint64_t txn;
    uint64_t used;    /* the cache clock at the last hit: LRU inside a set */
    uint8_t *key;
    size_t len;
};

/* A cache starts with this many slots and doubles, while it can, when it is half full or a new
 * key finds its set full (growing keeps every entry; evicting would cost a SQL lookup later):
 * the slots of a full-sized cache (2^16 of 48 bytes) spread a few hundred entries over 3 MB,
 * one cache line and page each, and a writer of small requests paid for those misses on every
 * lookup (and for faulting in the whole array when it freed it). */
#define START_SLOTS_LOG2 8

struct idcache {
    struct slot *slots;
    size_t sets;      /* a power of two; slots = sets * WAYS */
    size_t max_sets;  /* the bound idcache_new was given */
    size_t key_bytes, max_key_bytes, max_key_len;
    size_t hand;      /* where the byte-budget eviction sweep continues */
    uint64_t clock;
    uint64_t hits, misses, evictions, entries;
};

uint64_t sqlstore_hash(const void *data, size_t n)
{
    return hash64(data, n);
}

struct idcache *idcache_new(unsigned slots_log2, size_t max_key_bytes, size_t max_key_len)
{
    assert(slots_log2 >= 2 && slots_log2 < 32);
    struct idcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max_sets = ((size_t)1 << slots_log2) / WAYS;
    c->sets = ((size_t)1 << (slots_log2 < START_SLOTS_LOG2 ? slots_log2 : START_SLOTS_LOG2)) / WAYS;
    c->slots = calloc(c->sets * WAYS, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->max_key_bytes = max_key_bytes;
    c->max_key_len = max_key_len;
    return c;
}

static void slot_clear(struct idcache *c, struct slot *s)
{
    if (!s->id)
        return;
    assert(c->key_bytes >= s->len && c->entries > 0);
    c->key_bytes -= s->len;
    c->entries--;
    free(s->key);
    memset(s, 0, sizeof *s);
}

void idcache_free(struct idcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->sets * WAYS; i++)
        slot_clear(c, &c->slots[i]);
    free(c->slots);
    free(c);
}

static size_t set_index(uint64_t hash, size_t sets)
{
    /* bits other than the lowest: the memo and other tables index by the low ones */
    return (size_t)(hash >> 20) & (sets - 1);
}

static struct slot *set_of(struct idcache *c, uint64_t hash)
{
    return &c->slots[set_index(hash, c->sets) * WAYS];
}

/* Twice the sets, every entry kept: a set's entries split between two new sets, so each finds
 * a free way. Out of memory, the cache stays as it is. */
static void grow(struct idcache *c)
{
    size_t sets = c->sets * 2;
    struct slot *n = calloc(sets * WAYS, sizeof *n);
    if (!n)
        return;
    for (size_t i = 0; i < c->sets * WAYS; i++) {
        const struct slot *s = &c->slots[i];
        if (!s->id)
            continue;
        struct slot *set = &n[set_index(s->hash, sets) * WAYS];
        int w = 0;
        while (w < WAYS - 1 && set[w].id)
            w++;
        assert(!set[w].id);
        set[w] = *s;
    }
    free(c->slots);
    c->slots = n;
    c->sets = sets;
    c->hand = 0;
}

int64_t idcache_get(struct idcache *c, uint64_t hash, const void *key, size_t len)
{
    struct slot *set = set_of(c, hash);
    for (int w = 0; w < WAYS; w++) {
        struct slot *s = &set[w];
        if (s->id && s->hash == hash && s->len == len && (len == 0 || memcmp(s->key, key, len) == 0)) {
            s->used = ++c->clock;
            c->hits++;
            return s->id;
        }
    }
    c->misses++;
    return 0;
}

static bool set_full(const struct slot *set)
{
    for (int w = 0; w < WAYS; w++)
        if (!set[w].id)
            return false;
    return true;
}

void idcache_put(struct idcache *c, uint64_t hash, const void *key, size_t len, int64_t id,
                 uint64_t txn)
{
    assert(id != 0);
    if (len > c->max_key_len)
        return;
    if (c->sets < c->max_sets && c->entries >= c->sets * WAYS / 2)
        grow(c);
    struct slot *set = set_of(c, hash);
    /* A full set in a cache that may still grow: grow rather than evict (at most once per
     * doubling left; a failed growth ends it). */
    while (c->sets < c->max_sets && set_full(set)) {
        size_t before = c->sets;
        grow(c);
        if (c->sets == before)
            break;
        set = set_of(c, hash);
    }
    struct slot *victim = &set[0];
    for (int w = 0; w < WAYS; w++) {
        if (!set[w].id) {
            victim = &set[w];
            break;
        }
        if (set[w].used < victim->used)
            victim = &set[w];
    }
    if (victim->id)
        c->evictions++;
    slot_clear(c, victim);
    if (len > c->max_key_bytes)
        return;
    /* Over the byte budget: a sweep evicts entries anywhere (like a clock hand) until the key
     * fits; it ends because the budget holds this key alone. */
    size_t n = c->sets * WAYS;
    while (c->key_bytes + len > c->max_key_bytes) {
        struct slot *s = &c->slots[c->hand];
        c->hand = (c->hand + 1) % n;
        if (s->id && s != victim) {
            c->evictions++;
            slot_clear(c, s);
        }
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;   /* a cache may always forget */
    if (len)
        memcpy(copy, key, len);
    *victim = (struct slot){ hash, id, txn, ++c->clock, copy, len };
    c->key_bytes += len;
    c->entries++;
}

void idcache_drop_txn(struct idcache *c, uint64_t txn)
{
    for (size_t i = 0; i < c->sets * WAYS; i++)
        if (c->slots[i].id && c->slots[i].txn == txn)
            slot_clear(c, &c->slots[i]);
}

void idcache_drop_since(struct idcache *c, uint64_t first_txn)
{
    for (size_t i = 0; i < c->sets * WAYS; i++)
        if (c->slots[i].id && c->slots[i].txn >= first_txn)
            slot_clear(c, &c->slots[i]);
}

void idcache_stats(const struct idcache *c, struct idcache_stats *out)
{
    *out = (struct idcache_stats){ c->hits, c->misses, c->evictions, c->entries, c->key_bytes };
}
