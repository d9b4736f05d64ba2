/*
 * query.c - `lazybackend top|folded|flamegraph`: picks the store the options name (a SQLite
 * file, or ClickHouse with --clickhouse-url) and runs the store-independent command
 * (sinks/query/run.c) with that store's reader.
 */
#include <stddef.h>

#include "cmd/cmd.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/query/query.h"
#include "sinks/sqlite/sqlite.h"

static query_load_fn choose_store(const struct qopts *o)
{
    return o->ch_url ? clickhouse_query_load : sqlite_query_load;
}

int query_command(const char *command, int argc, char **argv)
{
    return query_command_main(command, argc, argv, choose_store);
}
