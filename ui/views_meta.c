/*
 * views_meta.c - the API's smaller answers: the timeline (weight per minute, or per hour
 * over long ranges), what the store holds (sample types, frame types, time range: what the
 * page's filters offer), and the requests it stored, newest first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "ui/store.h"

/* Past this many minutes the timeline is read per hour. */
#define TIMELINE_MAX_MINUTES (3 * 24 * 60)

static bool jstr(struct buf *b, const char *s)
{
    return esc_json_quoted(b, s ? s : "", s ? strlen(s) : 0);
}

static int fail(struct ui_store *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

struct timeline {
    struct memo ix;          /* bucket -> index */
    int64_t *bucket, *w;
    size_t n, cap, cap2;
};

static int timeline_row(void *ctx, const struct ui_store *s, uint32_t stack, int64_t bucket,
                        const int64_t sets[3], int64_t w)
{
    struct timeline *t = ctx;
    (void)s;
    (void)stack;
    (void)sets;
    int64_t ix;
    if (!memo_get(&t->ix, (uint64_t)bucket, &ix)) {
        int64_t *b = q_grow(t->bucket, t->n, &t->cap, sizeof *b, 256);
        if (!b)
            return -1;
        t->bucket = b;
        int64_t *v = q_grow(t->w, t->n, &t->cap2, sizeof *v, 256);
        if (!v)
            return -1;
        t->w = v;
        if (!memo_put(&t->ix, (uint64_t)bucket, (int64_t)t->n))
            return -1;
        t->bucket[t->n] = bucket;
        t->w[t->n] = 0;
        ix = (int64_t)t->n++;
    }
    t->w[ix] = sat_add(t->w[ix], w);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* The first and last minute with data in [m0, m1) (the per-minute totals: one row a minute,
 * each bound found through the primary key); false when none. */
static int minute_range(struct ui_store *s, int64_t m0, int64_t m1, int64_t *lo, int64_t *hi, bool *any)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT (SELECT min(bucket) FROM rollup_minute_totals WHERE bucket >= ?1 AND bucket < ?2), "
                           "(SELECT max(bucket) FROM rollup_minute_totals WHERE bucket >= ?1 AND bucket < ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading the time range");
    sqlite3_bind_int64(st, 1, m0);
    sqlite3_bind_int64(st, 2, m1);
    int rc = sqlite3_step(st);
    *any = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (*any) {
        *lo = (int64_t)sqlite3_column_int64(st, 0);
        *hi = (int64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(s, "reading the time range");
}

static void timeline_free(struct timeline *t)
{
    memo_free(&t->ix);
    free(t->bucket);
    free(t->w);
    memset(t, 0, sizeof *t);
    memo_init(&t->ix, SIZE_MAX);
}

/* Without filters on stacks or attributes: the per-minute totals (schema step 7), one row a
 * minute. */
static int totals_scan(struct ui_store *s, const struct ui_params *p, struct timeline *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT bucket, weight FROM rollup_minute_totals WHERE bucket >= ?1 AND bucket < ?2 "
                                  "AND (?3 IS NULL OR sample_type_id = (SELECT id FROM strings WHERE hash = ?4 AND value = ?3))",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading the timeline");
    sqlite3_bind_int64(st, 1, p->has_from ? p->from / 60 : INT64_MIN / 2);
    sqlite3_bind_int64(st, 2, p->has_to ? (p->to + 59) / 60 : INT64_MAX / 2);
    if (p->sample_type) {
        sqlite3_bind_text(st, 3, p->sample_type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)sqlstore_hash(p->sample_type, strlen(p->sample_type)));
    }
    int rc, r = 0;
    const int64_t none[3] = { 0, 0, 0 };
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        r = timeline_row(t, s, 0, sqlite3_column_int64(st, 0), none, sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    if (r != 0)
        return -1;
    return rc == SQLITE_DONE ? 0 : fail(s, "reading the timeline");
}

static bool unfiltered(const struct ui_params *p)
{
    return !p->container && !p->executable && !p->thread && !p->n_attrs && !p->n_frame_types;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The span of the buckets found, in buckets (0 when none). */
static int64_t span(const struct timeline *t)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < t->n; i++) {
        lo = t->bucket[i] < lo ? t->bucket[i] : lo;
        hi = t->bucket[i] > hi ? t->bucket[i] : hi;
    }
    return t->n ? hi - lo + 1 : 0;
}

/* The timeline under filters: per minute when the matching data spans at most three days,
 * else per hour. Filters on attributes alone read rollup_minute_sets (one row per minute and
 * combination of attribute sets, no stacks): directly when all the window's data spans at
 * most three days (found from the per-minute totals), else after the matching rows' hours
 * (few rows) showed their span. Filters on frame types alone read rollup_minute_frame_types
 * (one row per minute and mix of frame types) the same way. Both together need the stacks and
 * the sets: the matching rows' hours first, then the same rows per minute over just that span
 * and the window. */
static int filtered_scan(struct ui_store *s, const struct ui_params *p, struct timeline *t, int64_t *step)
{
    bool attrs = p->container || p->executable || p->thread || p->n_attrs;
    enum ui_scan minutes = !p->n_frame_types ? UI_SCAN_MINUTE_SETS : attrs ? UI_SCAN_MINUTES : UI_SCAN_MINUTE_TYPES;
    int64_t m0 = p->has_from ? floor_div(p->from, 60) : INT64_MIN / 2;
    int64_t m1 = p->has_to ? -floor_div(-p->to, 60) : INT64_MAX / 2;
    *step = 60;
    if (minutes != UI_SCAN_MINUTES) {
        int64_t lo = 0, hi = 0;
        bool any;
        if (minute_range(s, m0, m1, &lo, &hi, &any) != 0)
            return -1;
        if (!any)
            return 0;
        if (hi - lo + 1 <= TIMELINE_MAX_MINUTES)
            return ui_store_scan(s, p, minutes, timeline_row, t);
    }
    if (ui_store_scan(s, p, UI_SCAN_HOURS, timeline_row, t) != 0)
        return -1;
    if (t->n == 0)
        return 0;
    if (span(t) * 60 > TIMELINE_MAX_MINUTES) {
        *step = 3600;
        return 0;
    }
    int64_t lo = INT64_MAX;
    for (size_t i = 0; i < t->n; i++)
        lo = t->bucket[i] < lo ? t->bucket[i] : lo;
    struct ui_params q = *p;   /* the hours found, within the window asked for */
    q.has_from = q.has_to = true;
    q.from = p->has_from && p->from > lo * 3600 ? p->from : lo * 3600;
    q.to = (lo + span(t)) * 3600;
    q.to = p->has_to && p->to < q.to ? p->to : q.to;
    timeline_free(t);
    return ui_store_scan(s, &q, minutes, timeline_row, t);
}

/* Per minute when the data spans at most three days, else per hour. Without filters on
 * stacks or attributes the per-minute totals are read (one row a minute); with them, see
 * filtered_scan. */
int ui_view_timeline(struct ui_store *s, const struct ui_params *p, struct buf *out)
{
    struct timeline t = { 0 };
    memo_init(&t.ix, SIZE_MAX);
    int64_t step = 60;
    int rc;
    if (unfiltered(p)) {
        rc = totals_scan(s, p, &t);
        if (rc == 0 && span(&t) > TIMELINE_MAX_MINUTES) {
            step = 3600;
            for (size_t i = 0; i < t.n; i++)
                t.bucket[i] = floor_div(t.bucket[i], 60);
        }
    } else {
        rc = filtered_scan(s, p, &t, &step);
    }
    if (rc != 0 && !s->err[0])
        snprintf(s->err, sizeof s->err, "out of memory");
    int64_t (*pairs)[2] = rc == 0 && t.n ? malloc(t.n * sizeof *pairs) : NULL;
    size_t np = 0;
    if (rc == 0 && t.n && !pairs) {
        snprintf(s->err, sizeof s->err, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        pairs[i][0] = t.bucket[i] * step;
        pairs[i][1] = t.w[i];
    }
    if (rc == 0 && t.n) {
        qsort(pairs, t.n, sizeof *pairs, cmp_i64);
        for (size_t i = 0; i < t.n; i++) {   /* minutes summed into their hour */
            if (np && pairs[np - 1][0] == pairs[i][0]) {
                pairs[np - 1][1] = sat_add(pairs[np - 1][1], pairs[i][1]);
            } else {
                pairs[np][0] = pairs[i][0];
                pairs[np++][1] = pairs[i][1];
            }
        }
    }
    if (rc == 0) {
        bool ok = buf_printf(out, "{\"step\":%" PRId64 ",", step);
        if (np)
            ok = ok && buf_printf(out, "\"first\":%" PRId64 ",\"last\":%" PRId64 ",", pairs[0][0],
                                  pairs[np - 1][0] + step);
        ok = ok && buf_printf(out, "\"points\":[");
        for (size_t i = 0; i < np && ok; i++)
            ok = buf_printf(out, "%s[%" PRId64 ",%" PRId64 "]", i ? "," : "", pairs[i][0], pairs[i][1]);
        if (!(ok && buf_printf(out, "]}"))) {
            snprintf(s->err, sizeof s->err, "out of memory");
            rc = -1;
        }
    }
    free(pairs);
    timeline_free(&t);
    memo_free(&t.ix);
    return rc;
}

/* Rows of one query as a JSON array of strings (the first column). */
static int string_list(struct ui_store *s, const char *sql, struct buf *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading the store");
    bool ok = buf_putc(out, '[');
    int rc, n = 0;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ok = (n++ == 0 || buf_putc(out, ',')) && jstr(out, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!ok)
        return fail(s, "out of memory");
    if (rc != SQLITE_DONE)
        return fail(s, "reading the store");
    return buf_putc(out, ']') ? 0 : -1;
}

int ui_view_meta(struct ui_store *s, struct buf *out)
{
    int64_t lo = 0, hi = 0;
    bool any;
    if (minute_range(s, INT64_MIN, INT64_MAX, &lo, &hi, &any) != 0)
        return -1;
    bool ok = buf_printf(out, "{");
    if (any)
        ok = ok && buf_printf(out, "\"first\":%" PRId64 ",\"last\":%" PRId64 ",", lo * 60, hi * 60 + 60);
    ok = ok && buf_printf(out, "\"sample_types\":[");
    if (!ok)
        return fail(s, "out of memory");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT COALESCE(t.value, ''), COALESCE(u.value, ''), SUM(r.weight) FROM rollup_hour r "
                           "LEFT JOIN strings t ON t.id = r.sample_type_id LEFT JOIN strings u ON u.id = r.sample_unit_id "
                           "GROUP BY 1, 2 ORDER BY 3 DESC", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading sample types");
    int rc, n = 0;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ok = buf_printf(out, "%s{\"type\":", n++ ? "," : "") && jstr(out, (const char *)sqlite3_column_text(st, 0)) &&
             buf_printf(out, ",\"unit\":") && jstr(out, (const char *)sqlite3_column_text(st, 1)) &&
             buf_printf(out, ",\"weight\":%" PRId64 "}", (int64_t)sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    if (!ok || rc != SQLITE_DONE)
        return fail(s, "reading sample types");
    if (!buf_printf(out, "],\"frame_types\":") ||
        string_list(s, "SELECT DISTINCT t.value FROM frames f JOIN strings t ON t.id = f.type_id ORDER BY 1", out) != 0 ||
        !buf_printf(out, ",\"requests\":") ||
        string_list(s, "SELECT CAST(count(*) AS TEXT) FROM requests", out) != 0 || !buf_putc(out, '}'))
        return s->err[0] ? -1 : fail(s, "out of memory");
    return 0;
}

/* The attributes that say which resource a request came from, when it has them. */
#define RESOURCE_DESC                                                                              \
    "(SELECT group_concat(k.value || '=' || sv.value, ' ') FROM resources r "                      \
    " JOIN attribute_set_items i ON i.set_id = r.attributes_id JOIN attributes a ON a.id = i.attribute_id " \
    " JOIN strings k ON k.id = a.key_id JOIN strings sv ON sv.id = a.value AND a.kind = 'string' " \
    " WHERE r.request_id = q.id AND r.idx = 0 AND k.value IN ('service.name', 'container.id', 'host.name'))"

int ui_store_request_resource(struct ui_store *s, uint64_t sequence, struct buf *out)
{
    sqlite3_stmt *st;
    buf_reset(out);
    /* the newest rows only: sequences start again at 1 when a server restarts */
    if (sqlite3_prepare_v2(s->db, "SELECT " RESOURCE_DESC " FROM requests q WHERE q.id > "
                           "(SELECT max(id) FROM requests) - 64 AND q.sequence = ?1 ORDER BY q.id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading requests");
    sqlite3_bind_int64(st, 1, (int64_t)sequence);
    int rc = sqlite3_step(st);
    const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    bool ok = !v || buf_append(out, v, strlen(v));
    sqlite3_finalize(st);
    return ok && (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : fail(s, "reading requests");
}

int ui_view_requests(struct ui_store *s, size_t limit, struct buf *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT q.id, q.sequence, q.received_unix_nano, t.value, p.value, l.value, q.wire_bytes, "
                           "q.resources, q.profiles, q.samples, " RESOURCE_DESC " FROM requests q "
                           "LEFT JOIN strings t ON t.id = q.transport_id LEFT JOIN strings p ON p.id = q.peer_id "
                           "LEFT JOIN strings l ON l.id = q.layout_id ORDER BY q.id DESC LIMIT ?1", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading requests");
    sqlite3_bind_int64(st, 1, (int64_t)limit);
    bool ok = buf_printf(out, "{\"requests\":[");
    int rc, n = 0;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ok = buf_printf(out, "%s{\"id\":%" PRId64 ",\"sequence\":%" PRId64 ",\"received_unix_nano\":%" PRIu64,
                        n++ ? "," : "", (int64_t)sqlite3_column_int64(st, 0), (int64_t)sqlite3_column_int64(st, 1),
                        (uint64_t)sqlite3_column_int64(st, 2)) &&
             buf_printf(out, ",\"transport\":") && jstr(out, (const char *)sqlite3_column_text(st, 3)) &&
             buf_printf(out, ",\"peer\":") && jstr(out, (const char *)sqlite3_column_text(st, 4)) &&
             buf_printf(out, ",\"layout\":") && jstr(out, (const char *)sqlite3_column_text(st, 5)) &&
             buf_printf(out, ",\"wire_bytes\":%" PRId64 ",\"resources\":%" PRId64 ",\"profiles\":%" PRId64
                             ",\"samples\":%" PRId64 ",\"resource\":",
                        (int64_t)sqlite3_column_int64(st, 6), (int64_t)sqlite3_column_int64(st, 7), (int64_t)sqlite3_column_int64(st, 8),
                        (int64_t)sqlite3_column_int64(st, 9)) &&
             jstr(out, (const char *)sqlite3_column_text(st, 10)) && buf_printf(out, ",\"outcome\":\"stored\"}");
    }
    sqlite3_finalize(st);
    if (!ok || rc != SQLITE_DONE)
        return fail(s, "reading requests");
    return buf_printf(out, "]}") ? 0 : fail(s, "out of memory");
}
