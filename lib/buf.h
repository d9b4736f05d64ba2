/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Everything that accumulates bytes from the network (a gRPC message, an inflated body, a
 * sink's output) grows one of these, and every one of them has a cap: appending past it fails
 * instead of allocating, so a hostile peer can make a request fail but cannot make the
 * process grow without bound.
 */
#ifndef LB_BUF_H
#define LB_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;     /* allocated */
    size_t limit;   /* never grow beyond this many bytes */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
static inline void buf_reset(struct buf *b) { b->len = 0; }
/* buf_reserve when the room is not there yet: grows (or fails at the limit). */
bool buf_grow(struct buf *b, size_t more);
/* Make room for `more` bytes; false (nothing changed) when that would pass the limit. On
 * success `data` is never NULL, even for 0 bytes, so `data + len` is a valid pointer. The room
 * already there is tested inline (cap never passes the limit): the call for that test was a
 * tenth of writing folded stacks, a few hundred thousand of them a second. */
static inline bool buf_reserve(struct buf *b, size_t more)
{
    return (b->data && more <= b->cap - b->len) || buf_grow(b, more);
}
bool buf_append(struct buf *b, const void *p, size_t n);

/* Up to 64 bytes as two overlapping fixed-size copies, which the compiler inlines as a few
 * loads and stores. Most appends are a name or a number of a few dozen bytes, and a memcpy
 * call for those cost more than the copy in the static build, whose C library (musl) starts
 * every memcpy slowly: a fifth of `decode --format folded` there. */
static inline void buf_copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
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

/* Any n, inline up to 256 bytes (32-byte steps, the last one overlapping): frame names and
 * folded stacks' names run to a few hundred bytes, and musl's memcpy, which starts each copy
 * with a `rep movsq`, made their copies a seventh of the static build's `decode --format
 * folded`. Past 256 bytes that start is paid back by the length. */
static inline void buf_copy(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n <= 64) {
        buf_copy_short(d, s, n);
    } else if (n <= 256) {
        for (size_t i = 0; i + 32 < n; i += 32)
            memcpy(d + i, s + i, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else {
        memcpy(d, s, n);
    }
}

/* Appends n bytes into room the caller has made (buf_reserve): an append whose test for room
 * is shared with other bytes, without buf_append's call. */
static inline void buf_put(struct buf *b, const void *p, size_t n)
{
    buf_copy(b->data + b->len, p, n);
    b->len += n;
}
static inline bool buf_putc(struct buf *b, char c)
{
    if (b->len < b->cap) {
        b->data[b->len++] = (uint8_t)c;
        return true;
    }
    return buf_append(b, &c, 1);
}
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
bool buf_printf(struct buf *b, const char *fmt, ...);

#endif
