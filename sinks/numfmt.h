/*
 * numfmt.h - a double written the same way wherever a sink shows one.
 *
 * Why its own file: an attribute's double is printed by the stdout sink (text and JSON),
 * stored inside JSON by the SQLite sink and printed again by its queries (top, --where, group
 * keys). One formatter keeps a value reading the same in all of them: 0.1 as 0.1, not
 * 0.10000000000000001, and NaN and the infinities named alike.
 */
#ifndef LB_SINKS_NUMFMT_H
#define LB_SINKS_NUMFMT_H

#include <stddef.h>

/* Longest output, NUL included. */
#define NUMFMT_DOUBLE_MAX 40

/* The shortest of %.15g, %.16g and %.17g that reads back as the same double (%.17g always
 * does); NaN, +Inf and -Inf by those names (Go's spelling: printf's would be nan and inf).
 * JSON writers quote the three names, JSON having no such numbers. Returns the length. */
size_t numfmt_double(char out[NUMFMT_DOUBLE_MAX], double d);

#endif
