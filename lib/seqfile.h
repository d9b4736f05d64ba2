/*
 * seqfile.h - the file helpers of the directories that keep numbered files: the write-ahead
 * log's segments ("<seq>.wal", sinks/wal.c) and the ClickHouse sink's spool ("<seq>.batch",
 * sinks/clickhouse/spool.c). Both name a file by a 20-digit, zero-padded sequence number and
 * a suffix, so names sort as numbers, and both write a file whole through partial writes.
 */
#ifndef LB_LIB_SEQFILE_H
#define LB_LIB_SEQFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQFILE_DIGITS 20   /* UINT64_MAX has 20 decimal digits */

/* "<seq as 20 digits><suffix>" into out (n bytes, truncated as snprintf truncates). */
void seqfile_name(uint64_t seq, const char *suffix, char *out, size_t n);
/* name is exactly 20 digits then suffix: true with the number in *seq; false otherwise. */
bool seqfile_parse(const char *name, const char *suffix, uint64_t *seq);

/* Writes all n bytes to fd through partial writes and EINTR. 0, or -1 with errno set (ENOSPC
 * when write(2) wrote nothing without an error). */
int seqfile_write_all(int fd, const void *p, size_t n);

#endif
