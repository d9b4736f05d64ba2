/*
 * gzip.h - bounded decompression of gzip (RFC 1952) payloads.
 *
 * The limit is enforced while inflating: output stops at `limit` bytes and the call fails
 * with GZIP_TOO_LARGE, so a gzip bomb costs at most `limit` bytes of memory and the time to
 * produce them, never more.
 */
#ifndef LB_GZIP_H
#define LB_GZIP_H

#include <stddef.h>
#include <stdint.h>
#include "lib/buf.h"

enum gzip_result { GZIP_OK = 0, GZIP_TOO_LARGE = 1, GZIP_CORRUPT = 2, GZIP_NOMEM = 3 };

/* Appends the inflated bytes of `in` to `out` (reset first by the caller if needed), never
 * growing `out` past `limit` bytes. Concatenated gzip members are accepted. On error `err`
 * holds a short reason. */
enum gzip_result gzip_inflate(const uint8_t *in, size_t len, size_t limit, struct buf *out,
                              char *err, size_t errlen);

/* Compresses `in` into `out` (appended); 0 or -1. Used by tests and the ClickHouse sink. */
int gzip_deflate(const uint8_t *in, size_t len, struct buf *out, int level);

#endif
