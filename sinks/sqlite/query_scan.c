/*
 * query_scan.c - step 2 of a query: one pass over the matching samples, summing weights per
 * (stack, attribute sets), then per (stack, group).
 *
 * SQL narrows the scan only as far as indexes help (profiles by time and sample type, each
 * profile's samples as a rowid range); the rest is filtered in C, row by row: the time range
 * per timestamp (which also decides what a row weighs), --where against the sample's,
 * profile's and resource's attribute sets (loaded once as sets of set ids), --frame-type
 * through the stack. See query.c for the weight rule.
 */
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/internal.h"

/* ---------- --where ---------- */

/* The attribute sets that hold key=value, for each --where. */
int q_load_where(struct q *q, size_t i)
{
    const struct where *w = &q->o->where[i];
    int64_t key = q_string_id(q, w->key);
    if (key < 0)
        return -1;
    memo_init(&q->where_sets[i], SIZE_MAX);
    if (key == 0) {
        q->where_impossible = true;
        return 0;
    }
    sqlite3_stmt *st;
    if (q_prepare(q, "SELECT i.set_id, " ATTR_VALUE_COLUMNS " FROM attributes a "
                     "JOIN attribute_set_items i ON i.attribute_id = a.id " ATTR_VALUE_JOIN
                     " WHERE a.key_id = ?1", &st) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    int rc;
    size_t vlen = strlen(w->value);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!q_attr_text(&q->tmp, st, 1)) {
            sqlite3_finalize(st);
            return qoom(q);
        }
        if (q->tmp.len == vlen && (vlen == 0 || memcmp(q->tmp.data, w->value, vlen) == 0) &&
            !memo_put(&q->where_sets[i], (uint64_t)sqlite3_column_int64(st, 0), 1)) {
            sqlite3_finalize(st);
            return qoom(q);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return qfail(q, "reading attributes");
    if (q->where_sets[i].n == 0)
        q->where_impossible = true;
    return 0;
}

static bool in_set(const struct memo *m, int64_t set)
{
    int64_t v;
    return set > 0 && memo_get(m, (uint64_t)set, &v);
}

static bool where_ok(const struct q *q, const int64_t sets[3])
{
    for (size_t i = 0; i < q->o->n_where; i++)
        if (!in_set(&q->where_sets[i], sets[0]) && !in_set(&q->where_sets[i], sets[1]) &&
            !in_set(&q->where_sets[i], sets[2]))
            return false;
    return true;
}

/* ---------- the scan ---------- */

static bool in_range(const struct qopts *o, int64_t t)
{
    return (!o->has_since || t >= o->since) && (!o->has_until || t < o->until);
}

enum {
    COL_STACK, COL_SA, COL_PA, COL_RA, COL_SID, COL_NTS, COL_NV, COL_WEIGHT, COL_PTIME, COL_STYPE, COL_SUNIT,
    COL_TIDX, COL_TIME, COL_VALUE, COL_TS_PACKED, COL_VALS_PACKED
};

/* The plan is fixed by hand: profiles first (by their time index when there is a window), then
 * each profile's samples as a rowid range. CROSS JOIN keeps SQLite to that order, and the
 * unary + keeps it from building a temporary index over every sample for profile_id. */
static int build_scan_sql(const struct q *q, struct buf *sql)
{
    const struct qopts *o = q->o;
    bool timed = o->has_since || o->has_until;
    bool ok = buf_printf(sql,
        "SELECT s.stack_id, s.attributes_id, p.attributes_id, r.attributes_id, s.id, "
        "s.n_timestamps, s.n_values, s.weight, p.time_unix_nano, p.sample_type_id, p.sample_unit_id%s "
        "FROM profiles p CROSS JOIN resources r ON r.id = p.resource_id "
        "CROSS JOIN samples s ON s.id BETWEEN p.first_sample_id AND p.last_sample_id AND +s.profile_id = p.id %s"
        "WHERE p.samples > 0",
        timed ? ", t.idx, t.time_unix_nano, v.value, s.timestamps_packed, s.values_packed" : "",
        /* rows from before schema step 8 have their series in these tables, one row each */
        timed ? "LEFT JOIN sample_timestamps t ON t.sample_id = s.id AND s.timestamps_packed IS NULL "
                "LEFT JOIN sample_values v ON v.sample_id = s.id AND v.idx = t.idx AND s.n_values = s.n_timestamps "
              : "");
    if (o->has_since)
        ok = ok && buf_printf(sql, " AND p.last_time_unix_nano >= %lld", (long long)o->since);
    if (o->has_until)
        ok = ok && buf_printf(sql, " AND p.first_time_unix_nano < %lld", (long long)o->until);
    if (o->n_sample_type) {
        ok = ok && buf_printf(sql, " AND p.sample_type_id IN (SELECT id FROM strings WHERE value IN (");
        for (size_t i = 0; i < o->n_sample_type; i++)
            ok = ok && buf_printf(sql, "%s?%zu", i ? "," : "", i + 1);
        ok = ok && buf_printf(sql, "))");
    }
    ok = ok && buf_putc(sql, '\0');
    return ok ? 0 : -1;
}

/* What a sample's timestamps inside the window weigh, its series packed in the row (schema
 * step 8): 1 and the weight in *w, 0 when none lies inside, -1 on error. */
static int packed_weight(struct q *q, sqlite3_stmt *st, struct buf *scratch, int64_t *w)
{
    const struct qopts *o = q->o;
    int64_t nts = sqlite3_column_int64(st, COL_NTS), nv = sqlite3_column_int64(st, COL_NV);
    size_t ts_bytes = (size_t)sqlite3_column_bytes(st, COL_TS_PACKED);
    size_t v_bytes = (size_t)sqlite3_column_bytes(st, COL_VALS_PACKED);
    bool paired = nv == nts;
    /* every number takes at least one byte; unpaired values are not read (the weight is) */
    if (nts < 0 || nv < 0 || (uint64_t)nts > ts_bytes || (paired && (uint64_t)nv > v_bytes)) {
        snprintf(q->r->err, sizeof q->r->err, "scanning samples: sample %lld: a malformed series",
                 (long long)sqlite3_column_int64(st, COL_SID));
        return -1;
    }
    size_t n = (size_t)nts;
    buf_reset(scratch);
    if (!buf_reserve(scratch, 2 * n * sizeof(uint64_t)))
        return qoom(q);
    uint64_t *ts = (uint64_t *)(void *)scratch->data, *vals = ts + n;
    if (sq_series_unpack(sqlite3_column_blob(st, COL_TS_PACKED), ts_bytes, ts, n) != 0 ||
        (paired && nv > 0 && sq_series_unpack(sqlite3_column_blob(st, COL_VALS_PACKED), v_bytes, vals, n) != 0)) {
        snprintf(q->r->err, sizeof q->r->err, "scanning samples: sample %lld: a malformed series",
                 (long long)sqlite3_column_int64(st, COL_SID));
        return -1;
    }
    bool any = false;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_range(o, (int64_t)ts[i]))
            continue;
        if (nv == 0)
            sum = sat_add(sum, 1);
        else if (paired)
            sum = sat_add(sum, (int64_t)vals[i]);
        else if (i == 0)
            sum = sat_add(sum, sqlite3_column_int64(st, COL_WEIGHT));
        else
            continue;
        any = true;
    }
    *w = sum;
    return any;
}

/* What a scanned row weighs: 1 with the weight in *w, 0 when it falls outside the time range,
 * -1 on error. */
static int row_weight(struct q *q, sqlite3_stmt *st, struct buf *scratch, int64_t *w)
{
    const struct qopts *o = q->o;
    int64_t weight = sqlite3_column_int64(st, COL_WEIGHT);
    if (!o->has_since && !o->has_until) {
        *w = weight;
        return 1;
    }
    int64_t nts = sqlite3_column_int64(st, COL_NTS), nv = sqlite3_column_int64(st, COL_NV);
    if (nts > 0 && sqlite3_column_type(st, COL_TS_PACKED) != SQLITE_NULL)
        return packed_weight(q, st, scratch, w);
    if (nts == 0 || sqlite3_column_type(st, COL_TIME) == SQLITE_NULL) {
        *w = weight;
        return in_range(o, sqlite3_column_int64(st, COL_PTIME));
    }
    if (!in_range(o, sqlite3_column_int64(st, COL_TIME)))
        return 0;
    if (nv == 0)
        *w = 1;
    else if (nv == nts)
        *w = sqlite3_column_int64(st, COL_VALUE);
    else if (sqlite3_column_int64(st, COL_TIDX) == 0)
        *w = weight;
    else
        return 0;
    return 1;
}

static void note_unit(struct q *q, sqlite3_stmt *st)
{
    int64_t t = sqlite3_column_int64(st, COL_STYPE), u = sqlite3_column_int64(st, COL_SUNIT);
    if (!q->r->any_unit) {
        q->r->any_unit = true;
        q->unit_type_id = t;
        q->unit_unit_id = u;
    } else if (q->unit_type_id != t || q->unit_unit_id != u) {
        q->unit_type_id = q->unit_unit_id = -1;
    }
}

int q_scan(struct q *q)
{
    struct buf sql;
    sqlite3_stmt *st;
    buf_init(&sql, 1 << 20);
    if (build_scan_sql(q, &sql) != 0) {
        buf_free(&sql);
        return qoom(q);
    }
    int rc = q_prepare(q, (const char *)sql.data, &st);
    buf_free(&sql);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < q->o->n_sample_type; i++)
        sqlite3_bind_text(st, (int)i + 1, q->o->sample_type[i], -1, SQLITE_STATIC);
    int64_t last_sample = 0;
    struct buf scratch;   /* a packed sample's series, unpacked */
    buf_init(&scratch, SIZE_MAX);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t w = 0, sets[3] = { sqlite3_column_int64(st, COL_SA), sqlite3_column_int64(st, COL_PA),
                               sqlite3_column_int64(st, COL_RA) };
        int in = row_weight(q, st, &scratch, &w);
        if (in < 0)
            break;
        if (!in || !where_ok(q, sets))
            continue;
        int64_t six = q_load_stack(q, sqlite3_column_int64(st, COL_STACK));
        if (six < 0)
            break;
        if (!q->r->stacks[six].type_ok)
            continue;
        int64_t k[4] = { six, sets[0], sets[1], sets[2] };
        if (!agg_add(&q->scan, k, w)) {
            qoom(q);
            break;
        }
        q->r->total_w = sat_add(q->r->total_w, w);
        int64_t sid = sqlite3_column_int64(st, COL_SID);
        if (sid != last_sample) {
            q->r->n_samples++;
            last_sample = sid;
        }
        note_unit(q, st);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        qfail(q, "scanning samples");
    buf_free(&scratch);
    sqlite3_finalize(st);
    return q->r->err[0] ? -1 : 0;
}

/* (stack, attribute sets) -> (stack, group). */
int q_group_items(struct q *q)
{
    for (size_t i = 0; i < q->scan.n; i++) {
        const struct agg_entry *e = &q->scan.v[i];
        int64_t g = q_group_of(q, &e->k[1]);
        if (g < 0)
            return -1;
        int64_t k[4] = { e->k[0], g, 0, 0 };
        if (!agg_add(&q->r->items, k, e->w))
            return qoom(q);
    }
    agg_free(&q->scan);
    return 0;
}
