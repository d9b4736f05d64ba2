/*
 * query.h - what the ClickHouse reader's two files share (query.c asks, query_rows.c reads
 * the answers): the three RowBinary answers into the store-independent result.
 */
#ifndef LB_SINKS_CLICKHOUSE_QUERY_H
#define LB_SINKS_CLICKHOUSE_QUERY_H

#include "lib/buf.h"
#include "sinks/query/query.h"

/* sums: (stack_hash UInt64, g_found UInt8, g_val String, sample_type String, sample_unit
 * String, weight Int64, samples UInt64) rows; stacks: (stack_hash UInt64, frame_hashes
 * Array(UInt64)); frames: (frame_hash UInt64, name String, frame_type String). 0, or -1 with
 * r->err set (a malformed answer, out of memory). */
int ch_query_fill(const struct qopts *o, struct qresult *r, const struct buf *sums, const struct buf *stacks,
                  const struct buf *frames);

#endif
