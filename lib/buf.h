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

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;     /* allocated */
    size_t limit;   /* never grow beyond this many bytes */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
static inline void buf_reset(struct buf *b) { b->len = 0; }
/* Make room for `more` bytes; false (nothing changed) when that would pass the limit. On
 * success `data` is never NULL, even for 0 bytes, so `data + len` is a valid pointer. */
bool buf_reserve(struct buf *b, size_t more);
bool buf_append(struct buf *b, const void *p, size_t n);
bool buf_putc(struct buf *b, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
bool buf_printf(struct buf *b, const char *fmt, ...);

#endif
