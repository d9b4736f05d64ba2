/*
 * query.c - `lazybackend top|folded|flamegraph`: the questions a user debugging
 * profiles asks of a SQLite store after the fact (which functions burn CPU in this container,
 * what does this executable's flame graph look like, did frames of type X arrive at all).
 *
 * All three share one pipeline:
 *   1. open the database read-only (it may be written by a running server at the same time:
 *      WAL gives this reader one consistent snapshot for the whole command);
 *   2. scan the matching samples once, in SQL only as far as indexes help (profiles by time
 *      and sample type), and filter and weigh them in C (attribute filters, time ranges per
 *      timestamp, frame types), summing weights per (stack, attribute sets);
 *   3. turn stacks into frame names exactly as the stdout sink's folded format names them, so
 *      `folded` over one stored request equals what the stdout sink printed for it;
 *   4. render: a table (top), folded lines (folded) or an SVG (flamegraph.c).
 * Memory grows with distinct stacks and frames of the answer, never with samples.
 *
 * Weight: the sum of a sample's values, else its number of timestamps (the fixtures' rule).
 * With --since/--until a sample counts only for what falls inside the range: each timestamp
 * inside counts 1 (no values), or its own value (as many values as timestamps); a sample whose
 * values do not pair with its timestamps counts whole when its first timestamp is inside; a
 * sample without timestamps counts whole when its profile's time is inside.
 *
 * This file runs a command through the steps; the options are query_args.c's, the scan
 * query_scan.c's, ids to names query_names.c's, the rendering query_top.c's and
 * query_paths.c's (internal.h lists what they share).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

/* ---------- errors: the first one is the one reported ---------- */

int qfail(struct q *q, const char *what)
{
    if (!q->err[0])
        snprintf(q->err, sizeof q->err, "%s: %s", what, q->db ? sqlite3_errmsg(q->db) : "");
    return -1;
}

int qoom(struct q *q)
{
    if (!q->err[0])
        snprintf(q->err, sizeof q->err, "out of memory");
    return -1;
}

int q_prepare(struct q *q, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK)
        return qfail(q, "preparing a query");
    return 0;
}

/* ---------- main ---------- */

static int setup(struct q *q)
{
    const struct qopts *o = q->o;
    if ((q->unknown_type = strtab_cstr(&q->names, "unknown")) == NONE ||
        (q->root_type = strtab_cstr(&q->names, "\x01root")) == NONE ||
        (q->unknown_group = strtab_cstr(&q->names, "[unknown]")) == NONE)
        return qoom(q);
    for (size_t i = 0; i < o->n_frame_type; i++)
        if ((q->frame_types[i] = strtab_cstr(&q->names, o->frame_type[i])) == NONE)
            return qoom(q);
    if (o->cmd == CMD_TOP)
        q->group = o->by == BY_EXECUTABLE ? &GROUP_EXECUTABLE : o->by == BY_CONTAINER ? &GROUP_CONTAINER
                 : o->by == BY_THREAD ? &GROUP_THREAD : NULL;
    else
        q->group = o->root;
    if (q->group && (q->group_key_id = q_string_id(q, q->group->key)) < 0)
        return -1;
    for (size_t i = 0; i < o->n_where; i++)
        if (q_load_where(q, i) != 0)
            return -1;
    return q_prepare_names(q);
}

static int run(struct q *q)
{
    if (setup(q) != 0)
        return -1;
    if (!q->where_impossible && (q_scan(q) != 0 || q_group_items(q) != 0 || q_load_unit(q) != 0))
        return -1;
    switch (q->o->cmd) {
    case CMD_TOP: return q_out_top(q);
    case CMD_FOLDED: return q_out_folded(q);
    case CMD_FLAMEGRAPH: return q_out_flamegraph(q);
    case CMD_EXPORT: break;   /* replay.c's, not a query */
    }
    return -1;
}

static void q_free(struct q *q)
{
    sqlite3_finalize(q->st_frame);
    sqlite3_finalize(q->st_stack);
    sqlite3_finalize(q->st_group);
    strtab_free(&q->names);
    memo_free(&q->frame_ix);
    memo_free(&q->stack_ix);
    memo_free(&q->group_of_set);
    for (size_t i = 0; i < MAX_FILTERS; i++)
        memo_free(&q->where_sets[i]);
    free(q->frames);
    free(q->stacks);
    free(q->stack_frames);
    agg_free(&q->scan);
    agg_free(&q->items);
    buf_free(&q->tmp);
    free(q->unit_type);
    free(q->unit_unit);
    if (q->db)
        sqlite3_close(q->db);
}

int sqlite_query_main(const char *command, int argc, char **argv)
{
    struct qopts o = { .name = command, .db = SQLITE_SINK_DEFAULT_PATH, .limit = 20, .width = 1200 };
    if (strcmp(command, "top") == 0)
        o.cmd = CMD_TOP;
    else if (strcmp(command, "folded") == 0)
        o.cmd = CMD_FOLDED;
    else if (strcmp(command, "flamegraph") == 0)
        o.cmd = CMD_FLAMEGRAPH;
    else
        return 2;
    int rc = q_parse_args(&o, argc, argv);
    if (rc == 0) {
        q_record_cmdline(&o, command, argc, argv);
        struct q q = { .o = &o };
        memo_init(&q.frame_ix, SIZE_MAX);
        memo_init(&q.stack_ix, SIZE_MAX);
        memo_init(&q.group_of_set, SIZE_MAX);
        buf_init(&q.tmp, SIZE_MAX);
        rc = 1;
        /* one read transaction: every query of the command sees the same snapshot */
        if (sqlstore_open_reader(o.db, &q.db, q.err, sizeof q.err) == 0 &&
            sqlstore_exec(q.db, "BEGIN", q.err, sizeof q.err) == 0 && run(&q) == 0)
            rc = 0;
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
            snprintf(q.err, sizeof q.err, "writing the output: %s", strerror(errno));
            rc = 1;
        }
        if (rc != 0)
            fprintf(stderr, "lazybackend %s: %s\n", command, q.err[0] ? q.err : "failed");
        q_free(&q);
        buf_free(&o.cmdline);
    }
    for (size_t i = 0; i < o.n_where; i++)
        free((void *)o.where[i].key);
    return rc;
}
