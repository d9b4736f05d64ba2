/*
 * frame_cache.c - the ClickHouse sink's frame hashes remembered across requests.
 *
 * Why: a frame's content hash (FNV-1a 64 over every stored field, the frames table's key and
 * part of every stack's) is computed one byte at a time, and a profiler sends the same few
 * hundred frames in every request; rows.c memoises it within a request, by location, but a
 * location index means nothing in the next request. Here the frame's hashed bytes themselves
 * (rows.c's frame_key) find the hash again: a word-at-a-time hash picks the slot, the bytes are
 * compared in full, so a hit is the hash those very bytes have and the stored hashes do not
 * change (no schema change). A miss costs one FNV pass, as before.
 *
 * Bounded: SLOTS entries (2-way sets, the older way replaced), keys up to MAX_KEY bytes (a
 * longer one is simply hashed every time), at most SLOTS * MAX_KEY bytes of keys in all. A
 * sender of endless distinct frames makes the sink no faster, never bigger.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "sinks/clickhouse/internal.h"

#define SLOTS ((size_t)1 << 13)
#define WAYS 2
#define MAX_KEY ((size_t)1024)

struct slot {
    uint64_t quick;     /* hash64 of the key */
    uint64_t fnv;       /* the frame's content hash */
    uint8_t *key;       /* NULL = empty */
    uint32_t len;
    uint32_t age;       /* the cache's clock at the last use: the older way goes */
};

struct ch_frame_cache {
    struct slot slot[SLOTS];
    uint32_t clock;
    uint64_t hits, misses;
};

struct ch_frame_cache *ch_frame_cache_new(void)
{
    return calloc(1, sizeof(struct ch_frame_cache));
}

void ch_frame_cache_free(struct ch_frame_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        free(c->slot[i].key);
    free(c);
}

static struct slot *set_of(struct ch_frame_cache *c, uint64_t quick)
{
    return &c->slot[((size_t)(quick >> 32) & (SLOTS / WAYS - 1)) * WAYS];
}

uint64_t ch_frame_cache_hash(struct ch_frame_cache *c, const uint8_t *key, size_t len)
{
    if (!c || len > MAX_KEY)
        return ch_fnv_bytes(CH_FNV_OFFSET, key, len);
    uint64_t quick = hash64(key, len);
    struct slot *set = set_of(c, quick), *victim = &set[0];
    for (int w = 0; w < WAYS; w++) {
        struct slot *s = &set[w];
        if (s->key && s->quick == quick && s->len == len && memcmp(s->key, key, len) == 0) {
            s->age = ++c->clock;
            c->hits++;
            return s->fnv;
        }
        if (!s->key || (victim->key && s->age < victim->age))
            victim = s;
    }
    c->misses++;
    uint64_t fnv = ch_fnv_bytes(CH_FNV_OFFSET, key, len);
    uint8_t *copy = realloc(victim->key, len ? len : 1);
    if (!copy)
        return fnv;   /* the old key is still there and still right: a cache may always forget */
    memcpy(copy, key, len);
    *victim = (struct slot){ quick, fnv, copy, (uint32_t)len, ++c->clock };
    return fnv;
}

/* Integers as 8 little-endian bytes, strings as their length then their bytes, so field
 * boundaries are unambiguous. The key is written in place after one reservation: a frame's
 * two dozen fields cost stores, not a growth check each. */
static uint8_t *key_u64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);   /* one store where the byte order already matches */
#else
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
#endif
    return p + 8;
}

static uint8_t *key_bytes(uint8_t *p, const void *s, size_t n)
{
    p = key_u64(p, n);
    if (n)
        memcpy(p, s, n);
    return p + n;
}

/* a mark no blob length can be: usual lists hash apart from any encoded one */
static uint8_t *key_blob(uint8_t *p, const struct buf *blob)
{
    return blob ? key_bytes(p, blob->data, blob->len) : key_u64(p, UINT64_MAX);
}

bool ch_frame_key(struct buf *b, const struct lb_frame *f, const struct buf *loc_blob, const struct buf *map_blob)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    lb_str mapping_file = f->has_mapping ? map->file : LB_STR_NULL;
    /* 7 integers, 7 strings and 2 lists with their lengths, 3 integers more with a mapping;
     * each length is bounded by the request or the batch, so the sum cannot wrap */
    size_t len = 8 * (7 + 7 + 2 + (f->has_mapping ? 3 : 0)) + f->type.n + f->function.n +
                 f->system_name.n + f->file.n + mapping_file.n + map->build_id.n + map->build_id_kind.n +
                 (loc_blob ? loc_blob->len : 0) + (map_blob ? map_blob->len : 0);
    buf_reset(b);
    if (!buf_reserve(b, len))
        return false;
    uint8_t *p = b->data;
    p = key_bytes(p, f->type.p, f->type.n);
    p = key_u64(p, f->symbolized);
    p = key_bytes(p, f->function.p, f->function.n);
    p = key_bytes(p, f->system_name.p, f->system_name.n);
    p = key_bytes(p, f->file.p, f->file.n);
    p = key_u64(p, (uint64_t)f->line);
    p = key_u64(p, (uint64_t)f->column);
    p = key_u64(p, f->address);
    p = key_u64(p, f->has_mapping);
    p = key_bytes(p, mapping_file.p, mapping_file.n);
    p = key_bytes(p, map->build_id.p, map->build_id.n);
    p = key_bytes(p, map->build_id_kind.p, map->build_id_kind.n);
    p = key_u64(p, (uint64_t)f->start_line);
    p = key_u64(p, (uint64_t)f->line_index << 32 | f->line_count);
    if (f->has_mapping) {
        p = key_u64(p, map->start);
        p = key_u64(p, map->limit);
        p = key_u64(p, map->offset);
    }
    p = key_blob(p, loc_blob);
    p = key_blob(p, map_blob);
    b->len = (size_t)(p - b->data);
    assert(b->len == len);
    return true;
}

void ch_frame_cache_stats(const struct ch_frame_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
}
