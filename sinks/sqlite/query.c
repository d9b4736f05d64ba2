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
 * This file runs the reader through steps 1 to 3 into the store-independent result
 * (sinks/query/query.h, which also parses the options and renders step 4); the scan is
 * query_scan.c's, ids to names query_names.c's (internal.h lists what they share).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

/* ---------- errors: the first one is the one reported ---------- */

int qfail(struct q *q, const char *what)
{
    if (!q->r->err[0])
        snprintf(q->r->err, sizeof q->r->err, "%s: %s", what, q->db ? sqlite3_errmsg(q->db) : "");
    return -1;
}

int qoom(struct q *q)
{
    if (!q->r->err[0])
        snprintf(q->r->err, sizeof q->r->err, "out of memory");
    return -1;
}

int q_prepare(struct q *q, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK)
        return qfail(q, "preparing a query");
    return 0;
}

/* ---------- the reader ---------- */

static int setup(struct q *q)
{
    const struct qopts *o = q->o;
    q->group = q_group_attr(o);
    if (q->group && (q->group_key_id = q_string_id(q, q->group->key)) < 0)
        return -1;
    for (size_t i = 0; i < o->n_where; i++)
        if (q_load_where(q, i) != 0)
            return -1;
    return q_prepare_names(q);
}

static void q_free(struct q *q)
{
    sqlite3_finalize(q->st_frame);
    sqlite3_finalize(q->st_stack);
    sqlite3_finalize(q->st_group);
    memo_free(&q->frame_ix);
    memo_free(&q->stack_ix);
    memo_free(&q->group_of_set);
    for (size_t i = 0; i < MAX_FILTERS; i++)
        memo_free(&q->where_sets[i]);
    agg_free(&q->scan);
    buf_free(&q->tmp);
    if (q->db)
        sqlite3_close(q->db);
}

int sqlite_query_load(const struct qopts *o, struct qresult *r)
{
    struct q q = { .o = o, .r = r };
    memo_init(&q.frame_ix, SIZE_MAX);
    memo_init(&q.stack_ix, SIZE_MAX);
    memo_init(&q.group_of_set, SIZE_MAX);
    buf_init(&q.tmp, SIZE_MAX);
    int rc = -1;
    /* one read transaction: every query of the command sees the same snapshot */
    if (sqlstore_open_reader(o->db ? o->db : SQLITE_SINK_DEFAULT_PATH, &q.db, r->err, sizeof r->err) == 0 &&
        sqlstore_exec(q.db, "BEGIN", r->err, sizeof r->err) == 0 && setup(&q) == 0 &&
        (q.where_impossible || (q_scan(&q) == 0 && q_group_items(&q) == 0 && q_load_unit(&q) == 0)))
        rc = 0;
    q_free(&q);
    return rc;
}

static query_load_fn choose_sqlite(const struct qopts *o)
{
    (void)o;
    return sqlite_query_load;
}

int sqlite_query_main(const char *command, int argc, char **argv)
{
    return query_command_main(command, argc, argv, choose_sqlite);
}
