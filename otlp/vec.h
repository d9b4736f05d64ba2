/*
 * vec.h - typed growable arrays for the decoder's scratch space.
 *
 * The decoder reuses the same vectors for every request (reset, not freed), so steady-state
 * decoding allocates nothing. Growth is bounded by the request itself: nothing is pushed that
 * did not occupy at least one byte of the request, and VEC_MAX_ITEMS stops pathological
 * counts before the multiplication of item size by count can overflow.
 */
#ifndef LB_OTLP_VEC_H
#define LB_OTLP_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#define VEC_MAX_ITEMS ((size_t)1 << 28)

#define VEC(T) struct { T *v; size_t n, cap; }

bool vec_grow_(void **v, size_t *cap, size_t need, size_t item);

/* Append `x`; evaluates to false when out of memory or past VEC_MAX_ITEMS. */
#define VEC_PUSH(vec, x)                                                             \
    (((vec).n < (vec).cap ||                                                         \
      vec_grow_((void **)&(vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v)))       \
         ? ((vec).v[(vec).n++] = (x), true)                                          \
         : false)
/* Make room for `count` items in total (contents beyond n are uninitialised). */
#define VEC_RESERVE(vec, count) \
    ((count) <= (vec).cap || vec_grow_((void **)&(vec).v, &(vec).cap, (count), sizeof(*(vec).v)))
#define VEC_RESET(vec) ((vec).n = 0)
#define VEC_FREE(vec) (free((vec).v), (vec).v = NULL, (vec).n = (vec).cap = 0)

#endif
