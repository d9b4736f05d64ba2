/*
 * memo.h - uint64 -> int64, a small hash map for ids: request-local indices in the SQLite
 * writer (a stack index, a location's line, cleared at the next request), stored ids to
 * in-memory indices in the query commands, a flame graph's children.
 *
 * Stops growing at `max` entries (a put then fails and the caller takes a slower path or
 * reports out of memory), so hostile input cannot make it huge where a cap is given.
 */
#ifndef LB_LIB_MEMO_H
#define LB_LIB_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memo {
    uint64_t *keys;   /* key + 1; 0 = empty slot */
    int64_t *vals;
    size_t cap, n, max;
};

void memo_init(struct memo *m, size_t max);
void memo_clear(struct memo *m);
void memo_free(struct memo *m);
bool memo_get(const struct memo *m, uint64_t key, int64_t *val);
/* False when not stored (full, or out of memory). key must not be UINT64_MAX. */
bool memo_put(struct memo *m, uint64_t key, int64_t val);

#endif
