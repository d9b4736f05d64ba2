/*
 * itab.c - see itab.h: interned tables, open addressing over the entries' bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "otlp/itab.h"

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

void itab_init(struct itab *t, size_t limit)
{
    memset(t, 0, sizeof *t);
    buf_init(&t->data, limit);
}

void itab_free(struct itab *t)
{
    buf_free(&t->data);
    VEC_FREE(t->e);
    free(t->slots);
    t->slots = NULL;
    t->scap = 0;
}

/* Back to the null entry alone. */
bool itab_reset(struct itab *t)
{
    buf_reset(&t->data);
    VEC_RESET(t->e);
    if (t->slots)
        memset(t->slots, 0, t->scap * sizeof *t->slots);
    return VEC_PUSH(t->e, ((struct ient){ 0, 0, 0 }));
}

static bool itab_rehash(struct itab *t)
{
    size_t cap = t->scap ? t->scap * 2 : 1024;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 1; i < t->e.n; i++) {
        size_t j = t->e.v[i].hash & (cap - 1);
        while (s[j])
            j = (j + 1) & (cap - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = s;
    t->scap = cap;
    return true;
}

/* The index of the entry with these bytes (added when new, never 0); -1 when full. */
int64_t itab_intern(struct itab *t, const void *p, size_t n)
{
    if (t->e.n >= INT32_MAX - 1)
        return -1;
    if ((t->e.n + 1) * 2 > t->scap && !itab_rehash(t))
        return -1;
    uint64_t h = hash_bytes(p, n);
    size_t j = h & (t->scap - 1);
    for (; t->slots[j]; j = (j + 1) & (t->scap - 1)) {
        const struct ient *x = &t->e.v[t->slots[j] - 1];
        if (x->hash == h && x->len == n && (n == 0 || memcmp(t->data.data + x->off, p, n) == 0))
            return t->slots[j] - 1;
    }
    struct ient x = { t->data.len, n, h };
    if ((n && !buf_append(&t->data, p, n)) || !VEC_PUSH(t->e, x))
        return -1;
    t->slots[j] = (uint32_t)t->e.n;   /* index e.n - 1, stored + 1 */
    return (int64_t)t->e.n - 1;
}
