/*
 * pbwrite.h - writing protobuf wire format into a buffer: the few primitives the encoders
 * (encode.c: OTLP requests; pprof.c: pprof profiles) need.
 *
 * Messages are written inside out: a sub-message is built in its own buffer, then appended to
 * its parent with its tag and length. Every function returns false when the buffer hit its
 * limit or memory ran out; callers keep going and check a sticky flag at the end.
 */
#ifndef LB_OTLP_PBWRITE_H
#define LB_OTLP_PBWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"

enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2 };

static inline bool pbw_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return buf_append(b, tmp, n);
}

static inline bool pbw_tag(struct buf *b, uint32_t field, unsigned wire)
{
    return pbw_varint(b, (uint64_t)field << 3 | wire);
}

/* A varint field, left out when zero (proto3 default). */
static inline bool pbw_uint(struct buf *b, uint32_t field, uint64_t v)
{
    return v == 0 || (pbw_tag(b, field, PBW_VARINT) && pbw_varint(b, v));
}

/* int32/int64 fields: negative numbers are ten-byte two's complement varints. */
static inline bool pbw_int(struct buf *b, uint32_t field, int64_t v)
{
    return pbw_uint(b, field, (uint64_t)v);
}

static inline bool pbw_fixed64_raw(struct buf *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return buf_append(b, tmp, 8);
}

static inline bool pbw_fixed64(struct buf *b, uint32_t field, uint64_t v)
{
    return v == 0 || (pbw_tag(b, field, PBW_I64) && pbw_fixed64_raw(b, v));
}

/* A length-delimited field written even when empty (a present sub-message). */
static inline bool pbw_bytes_always(struct buf *b, uint32_t field, const void *p, size_t n)
{
    return pbw_tag(b, field, PBW_LEN) && pbw_varint(b, n) && (n == 0 || buf_append(b, p, n));
}

/* A string or bytes field, left out when empty. */
static inline bool pbw_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
    return n == 0 || pbw_bytes_always(b, field, p, n);
}

/* A sub-message held in `m`, present even when empty. */
static inline bool pbw_msg(struct buf *b, uint32_t field, const struct buf *m)
{
    return pbw_bytes_always(b, field, m->data, m->len);
}

#endif
