/*
 * buf.c - see buf.h. Growth doubles, clamped to the limit.
 */
#include "lib/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

bool buf_grow(struct buf *b, size_t more)
{
    if (more > b->limit || b->len > b->limit - more)
        return false;
    size_t need = b->len + more;
    /* Even for zero bytes a success leaves `data` non-NULL: callers write at data + len, and
     * NULL + 0 is undefined behaviour in C (found by the fuzzers, test_buf.c). */
    if (need <= b->cap && b->data)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    uint8_t *p = realloc(b->data, cap ? cap : 1);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

/* Up to 64 bytes as two overlapping fixed-size copies, which the compiler inlines as a few
 * loads and stores. Most appends are a name or a number of a few dozen bytes, and a memcpy
 * call for those cost more than the copy in the static build, whose C library (musl) starts
 * every memcpy slowly: a fifth of `decode --format folded` there. */
static void copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
    assert(n <= 64);
    if (n >= 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return true;
    if (!buf_reserve(b, n))
        return false;
    if (n <= 64)
        copy_short(b->data + b->len, p, n);
    else
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n + 1))
        return false;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}
