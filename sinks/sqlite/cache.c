/*
 * cache.c - the SQLite writer's memory: a bounded cache of ids of rows already in the
 * database, and a per-request memo of request-local indices (see internal.h).
 *
 * Why: most of what a profiler sends repeats (the same stacks every 5 seconds, the same
 * thread names, the same frames), and a SQL lookup costs microseconds where a hash probe
 * costs nanoseconds. The cache is bounded so that a sender of endless distinct stacks makes
 * the writer slower, not bigger.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

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

struct idcache {
    struct slot *slots;
    size_t sets;      /* a power of two; slots = sets * WAYS */
    size_t key_bytes, max_key_bytes, max_key_len;
    size_t hand;      /* where the byte-budget eviction sweep continues */
    uint64_t clock;
    uint64_t hits, misses, evictions, entries;
};

/* 64-bit words, multiply-xorshift mixing, explicit little-endian loads so the value is the
 * same on every machine (it is stored in the database). */
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

uint64_t sqlstore_hash(const void *data, size_t n)
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

struct idcache *idcache_new(unsigned slots_log2, size_t max_key_bytes, size_t max_key_len)
{
    assert(slots_log2 >= 2 && slots_log2 < 32);
    struct idcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->sets = ((size_t)1 << slots_log2) / WAYS;
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

static struct slot *set_of(struct idcache *c, uint64_t hash)
{
    /* bits other than the lowest: the memo and other tables index by the low ones */
    return &c->slots[((size_t)(hash >> 20) & (c->sets - 1)) * WAYS];
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

void idcache_put(struct idcache *c, uint64_t hash, const void *key, size_t len, int64_t id,
                 uint64_t txn)
{
    assert(id != 0);
    if (len > c->max_key_len)
        return;
    struct slot *set = set_of(c, hash);
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

void idcache_stats(const struct idcache *c, struct idcache_stats *out)
{
    *out = (struct idcache_stats){ c->hits, c->misses, c->evictions, c->entries, c->key_bytes };
}

/* ---- memo ---- */

void memo_init(struct memo *m, size_t max)
{
    memset(m, 0, sizeof *m);
    m->max = max;
}

void memo_clear(struct memo *m)
{
    if (m->n)
        memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->n = 0;
}

void memo_free(struct memo *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static size_t memo_slot(uint64_t key, size_t cap)
{
    key *= 0x9e3779b97f4a7c15ull;
    return (size_t)(key >> 17) & (cap - 1);
}

bool memo_get(const struct memo *m, uint64_t key, int64_t *val)
{
    if (!m->cap)
        return false;
    uint64_t k = key + 1;
    for (size_t j = memo_slot(k, m->cap);; j = (j + 1) & (m->cap - 1)) {
        if (m->keys[j] == 0)
            return false;
        if (m->keys[j] == k) {
            *val = m->vals[j];
            return true;
        }
    }
}

static bool memo_grow(struct memo *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint64_t *keys = calloc(cap, sizeof *keys);
    int64_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = memo_slot(m->keys[i], cap);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

bool memo_put(struct memo *m, uint64_t key, int64_t val)
{
    assert(key != UINT64_MAX);
    uint64_t k = key + 1;
    if (m->cap) {
        for (size_t j = memo_slot(k, m->cap); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
            if (m->keys[j] == k) {
                m->vals[j] = val;
                return true;
            }
        }
    }
    if (m->n >= m->max || ((m->n + 1) * 2 > m->cap && !memo_grow(m)))
        return false;
    size_t j = memo_slot(k, m->cap);
    while (m->keys[j])
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = k;
    m->vals[j] = val;
    m->n++;
    return true;
}
