/*
 * hash.h - a fast, well-mixed 64-bit hash of bytes, the same on every machine: the SQLite
 * store's content hash (kept in its files, so fixed forever for a schema version), the query
 * tables' slots, the flame graph's colour shades.
 */
#ifndef LB_LIB_HASH_H
#define LB_LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *data, size_t n);

#endif
