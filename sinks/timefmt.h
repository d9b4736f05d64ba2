/*
 * timefmt.h - times and durations written the way Go writes them.
 *
 * The stdout sink keeps the Go lazybackend's output grammar, and that grammar prints times with
 * Go's time.Time.String() and durations with time.Duration.String(); users and scripts already
 * read those forms. Both are done here by arithmetic, without the C library's time zone machinery
 * (always UTC, no locale, no global state), because they run for every timestamp of every
 * sample.
 */
#ifndef LB_SINKS_TIMEFMT_H
#define LB_SINKS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Longest output of each function, NUL included. */
#define TIMEFMT_TIME_MAX 48
#define TIMEFMT_DURATION_MAX 32

/* Go's `2006-01-02 15:04:05.999999999 -0700 MST` layout in UTC, e.g.
 * "2025-09-23 04:55:35.51787723 +0000 UTC": trailing zeros of the fraction dropped, no dot
 * when it is zero. The whole uint64 range is valid (up to year 2554). Returns the length. */
size_t timefmt_go_time(char out[TIMEFMT_TIME_MAX], uint64_t unix_nano);

/* RFC 3339 in UTC with always nine fraction digits, e.g. "2025-10-31T05:09:03.453558373Z"
 * (the JSON format's times: the strings sort as the times do). The whole uint64 range is
 * valid. Returns the length. */
#define TIMEFMT_RFC3339_MAX 32
size_t timefmt_rfc3339(char out[TIMEFMT_RFC3339_MAX], uint64_t unix_nano);

/* Go's time.Duration.String(): "0s", "1ns", "1.5µs", "1.5ms", "4.986107396s", "1m2.5s",
 * "1h0m0s". Values above INT64_MAX (not a Go Duration) are written as "<n>ns". Returns the
 * length. */
size_t timefmt_go_duration(char out[TIMEFMT_DURATION_MAX], uint64_t nanos);

#endif
