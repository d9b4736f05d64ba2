/*
 * hash.h - fast, well-mixed 64-bit hashes of bytes. hash64 is the same on every machine: the
 * SQLite store's content hash (kept in its files, so fixed forever for a schema version), the
 * query tables' slots, the flame graph's colour shades. hash64_lanes is faster on long keys,
 * for what only lives in memory.
 */
#ifndef LB_LIB_HASH_H
#define LB_LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *data, size_t n);

/* For tables in memory only (the SQLite writer's id caches, the folded output's stacks): four
 * lanes, so that the multiplications of a long key (a frame's content, a folded stack: hundreds
 * of bytes) run side by side instead of one after another as in hash64. Nothing stores it, so it
 * reads words in the machine's own byte order and may change from one version to the next. */
uint64_t hash64_lanes(const void *data, size_t n);

#endif
