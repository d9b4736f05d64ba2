/*
 * vec.c - the one out-of-line part of vec.h's growable arrays: growth, by doubling, bounded
 * by VEC_MAX_ITEMS so that item size times count can never overflow.
 */
#include "otlp/vec.h"

bool vec_grow_(void **v, size_t *cap, size_t need, size_t item)
{
    if (need > VEC_MAX_ITEMS)
        return false;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*v, ncap * item);
    if (!p)
        return false;
    *v = p;
    *cap = ncap;
    return true;
}
