/*
 * memo.c - a growable uint64 -> int64 hash map with a cap on its entries (lib/memo.h).
 *
 * Open addressing with linear probing, kept at most half full; keys are stored plus one so
 * that zero marks an empty slot.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lib/memo.h"

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
