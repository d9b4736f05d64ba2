/*
 * schema.c - the ClickHouse sink's tables: one DDL for ClickHouse 18.16 (Debian 12) and
 * current releases alike, and the column lists rows.c writes, kept side by side so they
 * cannot drift apart. docs/clickhouse.md explains the design and the queries.
 *
 * Portability (see build-and-test-env.md 5.5): no CODEC, TTL, Map, DateTime64 or
 * LowCardinality; times as DateTime seconds plus UInt64 nanoseconds; attributes as parallel
 * key/value arrays; new-style MergeTree clauses.
 *
 * Schema version 2 added what `export` needs to give requests back whole: the requests table
 * (one row per request: its resources, scopes and profiles as one `content` string,
 * content.c), the frames' line grouping, start line, mapping and typed attributes, the
 * samples' position in their request and typed attributes (sinks/attrblob.h).
 *
 * Every table is a ReplacingMergeTree so that a batch re-sent after an ambiguous failure
 * collapses on merge: frames, stacks and resources are keyed by their content hash, samples by
 * (..., batch_id, row_index), which no two distinct rows share. Queries that must be exact
 * before the merge read samples with FINAL (or LIMIT 1 BY batch_id, row_index).
 */
#include "sinks/clickhouse/internal.h"

const enum ch_table ch_v1_tables[CH_TABLES_V1] = { CH_FRAMES, CH_STACKS, CH_RESOURCES, CH_SAMPLES };

const char *const ch_table_name[CH_TABLES] = { "frames", "stacks", "resources", "requests", "samples" };

#define FRAMES_V1 "frame_hash, frame_type, name, function, system_name, file, line_number, column_number, address, " \
                  "symbolized, mapping_file, build_id, build_id_kind"
#define SAMPLES_V1 "ts, time_unix_nano, service_name, container_id, host_name, pid, executable, thread_name, " \
                   "thread_id, sample_type, sample_unit, period_type, period_unit, period, weight, stack_hash, " \
                   "resource_hash, timestamps, sample_values, attr_keys, attr_values, trace_id, span_id, " \
                   "profile_id, scope_name, layout, batch_id, row_index"

const char *const ch_table_columns[CH_TABLES] = {
    FRAMES_V1 ", start_line, line_index, line_count, has_mapping, mapping_start, mapping_limit, mapping_offset, "
              "location_attrs, mapping_attrs",
    "stack_hash, frame_hashes",
    "resource_hash, schema_url, attr_keys, attr_values",
    "ts, batch_id, request_index, received_unix_nano, transport, peer, layout, content",
    SAMPLES_V1 ", request_index, resource_index, profile_index, attributes",
};

/* Schema version 1 (batches an older version left in the write-ahead log or the spool are
 * inserted with the columns they were written for; the new ones take their defaults). */
const char *const ch_table_columns_v1[CH_TABLES] = {
    FRAMES_V1, "stack_hash, frame_hashes", "resource_hash, schema_url, attr_keys, attr_values", NULL, SAMPLES_V1,
};

/* Tables created by an older version get the new columns in place. 18.16 has no ADD COLUMN IF
 * NOT EXISTS: a column already there is ClickHouse's error 44, which the sender takes as done. */
const char *const ch_add_columns[CH_ADD_COLUMNS] = {
    "ALTER TABLE `%s`.frames ADD COLUMN start_line Int64",
    "ALTER TABLE `%s`.frames ADD COLUMN line_index UInt32",
    "ALTER TABLE `%s`.frames ADD COLUMN line_count UInt32",
    "ALTER TABLE `%s`.frames ADD COLUMN has_mapping UInt8",
    "ALTER TABLE `%s`.frames ADD COLUMN mapping_start UInt64",
    "ALTER TABLE `%s`.frames ADD COLUMN mapping_limit UInt64",
    "ALTER TABLE `%s`.frames ADD COLUMN mapping_offset UInt64",
    "ALTER TABLE `%s`.frames ADD COLUMN location_attrs String",
    "ALTER TABLE `%s`.frames ADD COLUMN mapping_attrs String",
    "ALTER TABLE `%s`.samples ADD COLUMN request_index UInt32",
    "ALTER TABLE `%s`.samples ADD COLUMN resource_index UInt32",
    "ALTER TABLE `%s`.samples ADD COLUMN profile_index UInt32",
    "ALTER TABLE `%s`.samples ADD COLUMN attributes String",
};

const char *const ch_create_database = "CREATE DATABASE IF NOT EXISTS `%s`";

const char *const ch_create_table[CH_TABLES] = {
    "CREATE TABLE IF NOT EXISTS `%s`.frames (\n"
    "    frame_hash UInt64,\n"
    "    frame_type String,\n"
    "    name String,\n"
    "    function String,\n"
    "    system_name String,\n"
    "    file String,\n"
    "    line_number Int64,\n"
    "    column_number Int64,\n"
    "    address UInt64,\n"
    "    symbolized UInt8,\n"
    "    mapping_file String,\n"
    "    build_id String,\n"
    "    build_id_kind String,\n"
    "    start_line Int64,\n"
    "    line_index UInt32,\n"
    "    line_count UInt32,\n"
    "    has_mapping UInt8,\n"
    "    mapping_start UInt64,\n"
    "    mapping_limit UInt64,\n"
    "    mapping_offset UInt64,\n"
    "    location_attrs String,\n"
    "    mapping_attrs String\n"
    ") ENGINE = ReplacingMergeTree ORDER BY frame_hash",

    "CREATE TABLE IF NOT EXISTS `%s`.stacks (\n"
    "    stack_hash UInt64,\n"
    "    frame_hashes Array(UInt64)\n"
    ") ENGINE = ReplacingMergeTree ORDER BY stack_hash",

    "CREATE TABLE IF NOT EXISTS `%s`.resources (\n"
    "    resource_hash UInt64,\n"
    "    schema_url String,\n"
    "    attr_keys Array(String),\n"
    "    attr_values Array(String)\n"
    ") ENGINE = ReplacingMergeTree ORDER BY resource_hash",

    "CREATE TABLE IF NOT EXISTS `%s`.requests (\n"
    "    ts DateTime,\n"
    "    batch_id UInt64,\n"
    "    request_index UInt32,\n"
    "    received_unix_nano UInt64,\n"
    "    transport String,\n"
    "    peer String,\n"
    "    layout String,\n"
    "    content String\n"
    ") ENGINE = ReplacingMergeTree\n"
    "PARTITION BY toYYYYMMDD(ts)\n"
    "ORDER BY (batch_id, request_index)",

    "CREATE TABLE IF NOT EXISTS `%s`.samples (\n"
    "    ts DateTime,\n"
    "    time_unix_nano UInt64,\n"
    "    service_name String,\n"
    "    container_id String,\n"
    "    host_name String,\n"
    "    pid Int64,\n"
    "    executable String,\n"
    "    thread_name String,\n"
    "    thread_id Int64,\n"
    "    sample_type String,\n"
    "    sample_unit String,\n"
    "    period_type String,\n"
    "    period_unit String,\n"
    "    period Int64,\n"
    "    weight Int64,\n"
    "    stack_hash UInt64,\n"
    "    resource_hash UInt64,\n"
    "    timestamps Array(UInt64),\n"
    "    sample_values Array(Int64),\n"
    "    attr_keys Array(String),\n"
    "    attr_values Array(String),\n"
    "    trace_id String,\n"
    "    span_id String,\n"
    "    profile_id String,\n"
    "    scope_name String,\n"
    "    layout String,\n"
    "    batch_id UInt64,\n"
    "    row_index UInt32,\n"
    "    request_index UInt32,\n"
    "    resource_index UInt32,\n"
    "    profile_index UInt32,\n"
    "    attributes String\n"
    ") ENGINE = ReplacingMergeTree\n"
    "PARTITION BY toYYYYMMDD(ts)\n"
    "ORDER BY (service_name, container_id, sample_type, ts, batch_id, row_index)",
};
