/*
 * varint.h - the base-128 varint, written by hand in one place.
 *
 * Why: three writers need it outside nanopb's streams: the OTLP/JSON transcoder (otlp/json.c)
 * writes protobuf into a growing buffer, the OTLP/HTTP error body (h2/otlp_http.c) is a
 * google.rpc.Status built without a schema, and the ClickHouse row writer (sinks/clickhouse/rows.c)
 * writes RowBinary lengths, which are the same unsigned LEB128. One encoder serves them all.
 */
#ifndef LB_OTLP_VARINT_H
#define LB_OTLP_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The longest encoding: a uint64 in 7-bit groups. */
#define VARINT_MAX 10

/* Writes `v` to out (low group first, high bit set on all but the last byte); returns the
 * number of bytes written, 1 to VARINT_MAX. */
static inline size_t varint_encode(uint64_t v, uint8_t out[VARINT_MAX])
{
    size_t n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

#endif
