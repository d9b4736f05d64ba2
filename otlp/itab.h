/*
 * itab.h - interned tables for the encoders (encode.c, pprof.c): equal entries (compared as
 * their encoded bytes) get one index, in first-seen order. Index 0 is the null entry, kept
 * apart: an entry whose bytes are empty still gets an index of its own.
 */
#ifndef LB_OTLP_ITAB_H
#define LB_OTLP_ITAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/vec.h"

struct ient {
    size_t off, len;
    uint64_t hash;
};

struct itab {
    struct buf data;        /* the entries' bytes, one after the other */
    VEC(struct ient) e;     /* e.v[0] is the null entry (empty) */
    uint32_t *slots;        /* index + 1; 0 = empty slot */
    size_t scap;            /* a power of two, kept at least twice the entries */
};

/* limit bounds the entries' bytes together. */
void itab_init(struct itab *t, size_t limit);
void itab_free(struct itab *t);
/* Back to the null entry alone; false when out of memory. */
bool itab_reset(struct itab *t);
/* The index of the entry with these bytes (added when new, never 0); -1 when full. */
int64_t itab_intern(struct itab *t, const void *p, size_t n);

#endif
