/*
 * base64.h - decoding base64 (RFC 4648), for the two places the wire carries it: bytes fields
 * of OTLP/JSON (the proto3 JSON mapping) and the HTTP2-Settings header of an h2c upgrade
 * (base64url). One decoder accepts both alphabets.
 */
#ifndef LB_BASE64_H
#define LB_BASE64_H

#include <stddef.h>

#include "lib/buf.h"

enum base64_result { BASE64_OK = 0, BASE64_INVALID = 1, BASE64_FULL = 2 };

/* Appends the bytes `in[0..n)` stands for to `out`. Accepts the standard ('+', '/') and the
 * URL-safe ('-', '_') alphabet, with or without '=' padding (padding only at the end).
 * BASE64_INVALID for any other character or an impossible length; BASE64_FULL when `out`
 * refused to grow. */
enum base64_result base64_decode(const char *in, size_t n, struct buf *out);

#endif
