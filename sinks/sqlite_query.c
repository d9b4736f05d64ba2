/*
 * sqlite_query.c - `lazybackend top|folded|flamegraph`: questions asked of a SQLite store.
 * (being written)
 */
#include <stdio.h>

#include "sinks/sqlite.h"

int sqlite_query_main(const char *command, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "lazybackend %s: not implemented yet\n", command);
    return 2;
}
