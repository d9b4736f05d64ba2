/*
 * attrblob.h - a list of attributes (key, typed value, unit) as one self-contained byte
 * string, for a store that keeps attribute lists in one column and gives them back typed
 * (the ClickHouse sink's *_attrs columns, read back by `export`).
 *
 * Per attribute: key and unit (LEB128 length + bytes), a kind byte (enum lb_value_kind), then
 * the value: nothing (empty), one byte (bool), 8 little-endian bytes (int, double bits), or a
 * length-prefixed byte string (string, bytes, and arrays and kvlists as the self-contained
 * encoding lb_value_encode makes, which lb_value_iter walks with no dictionary). No attributes:
 * the empty string.
 */
#ifndef LB_SINKS_ATTRBLOB_H
#define LB_SINKS_ATTRBLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "otlp/view.h"

/* Appends attrs to out (scratch: reused for arrays and kvlists). False when out of memory or
 * past out's limit. An array or kvlist too deep or malformed to walk is kept as an empty value. */
bool attrblob_put(struct buf *out, struct buf *scratch, struct lb_attrs attrs);

/* How many attributes blob holds: (size_t)-1 when it is malformed. */
size_t attrblob_count(lb_str blob);
/* Reads blob's attributes into out (attrblob_count of them); their strings point into blob.
 * False when it is malformed. */
bool attrblob_get(lb_str blob, struct lb_attr *out, size_t n);

#endif
