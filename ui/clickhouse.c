/*
 * clickhouse.c - the UI's rows from ClickHouse (`lazybackend ui --clickhouse-url`): the same
 * views (views.c) over the tables the ClickHouse sink writes, so the same data gives the same
 * JSON whichever store holds it.
 *
 * A window scan is the query commands' reader (sinks/clickhouse/query.c): the UI's filters
 * become its options (the window in whole minutes, as the SQLite rollups read it), and its
 * result (weights per stack and group, stacks, frames) becomes the store's frames, stacks and
 * names, rebuilt for every request since ClickHouse names them by hash, not by row id. The
 * timeline and the metadata are SELECTs of their own, answered in RowBinary and read with
 * every length checked (the answer comes from the network).
 *
 * The HTTP calls block the loop: this serves only the offline command, never a server's loop
 * (a slow ClickHouse must not delay ingest). Each call is bounded by --clickhouse-timeout;
 * ClickHouse down or failing is a 502, too slow a 504, with the reason. What ClickHouse does
 * not keep (mappings and build ids, the requests list) is a 501.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/clickhouse/query.h"
#include "ui/store.h"
#include "ui/ui.h"

#define NS_PER_MINUTE 60000000000LL
#define TIMELINE_MAX_MINUTES (3 * 24 * 60)   /* as views_meta.c: past this, per hour */

int ui_ch_unsupported(struct ui_store *s, const char *what)
{
    s->err_status = 501;
    snprintf(s->err, sizeof s->err, "%s: ClickHouse does not keep them (use --sink sqlite and `lazybackend ui --db`)",
             what);
    return -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The query options for p: ClickHouse's address, the window in whole minutes (from rounded
 * down, to up, as the rollups read it), the attribute filters as --where, the rest as is. */
static void to_qopts(const struct ui_store *s, const struct ui_params *p, struct qopts *o)
{
    const struct ui_clickhouse *c = s->ch;
    memset(o, 0, sizeof *o);
    o->cmd = CMD_TOP;
    o->ch_url = c->url;
    o->ch_database = c->database;
    o->ch_user = c->user;
    o->ch_password = c->password;
    o->ch_timeout_s = c->timeout_s;
    o->ch_ask = s->ch_ask;
    o->ch_ask_ud = s->ch_ask_ud;
    o->limit = SIZE_MAX;
    o->by = p->by == UI_BY_EXECUTABLE ? BY_EXECUTABLE
          : p->by == UI_BY_CONTAINER  ? BY_CONTAINER
          : p->by == UI_BY_THREAD     ? BY_THREAD
                                      : BY_FUNCTION;
    /* minutes far beyond any real data stay far from int64's ends once in nanoseconds */
    const int64_t far = (int64_t)1 << 32;
    if ((o->has_since = p->has_from)) {
        int64_t m = floor_div(p->from, 60);
        o->since = (m < -far ? -far : m > far ? far : m) * NS_PER_MINUTE;
    }
    if ((o->has_until = p->has_to)) {
        int64_t m = -floor_div(-p->to, 60);
        o->until = (m < -far ? -far : m > far ? far : m) * NS_PER_MINUTE;
    }
    if (p->sample_type)
        o->sample_type[o->n_sample_type++] = p->sample_type;
    for (size_t i = 0; i < p->n_frame_types && o->n_frame_type < MAX_FILTERS; i++)
        o->frame_type[o->n_frame_type++] = p->frame_types[i];
    if (p->container)
        o->where[o->n_where++] = (struct where){ "container.id", p->container };
    if (p->executable)
        o->where[o->n_where++] = (struct where){ "process.executable.name", p->executable };
    if (p->thread)
        o->where[o->n_where++] = (struct where){ "thread.name", p->thread };
    for (size_t i = 0; i < p->n_attrs && o->n_where < MAX_FILTERS; i++)
        o->where[o->n_where++] = (struct where){ p->attr_key[i], p->attr_value[i] };
}

static int from_qresult_fail(struct ui_store *s, const struct qresult *r)
{
    s->err_status = r->upstream == Q_UPSTREAM_TIMEOUT ? 504 : r->upstream == Q_UPSTREAM_FAILED ? 502 : 0;
    snprintf(s->err, sizeof s->err, "%s", r->err[0] ? r->err : "reading ClickHouse failed");
    return -1;
}

static int oom(struct ui_store *s)
{
    snprintf(s->err, sizeof s->err, "out of memory");
    return -1;
}

/* The store's frame for a result's frame: one per (name, type), as folded stacks merge them. */
static int64_t frame_of(struct ui_store *s, const struct qresult *r, uint32_t qf, int64_t *map)
{
    if (map[qf] >= 0)
        return map[qf];
    uint32_t name = strtab_cstr(&s->names, r->names.v[r->frames[qf].name]);
    uint32_t type = strtab_cstr(&s->names, r->names.v[r->frames[qf].type]);
    if (name == NONE || type == NONE)
        return -1;
    uint64_t key = (uint64_t)name << 32 | type;
    int64_t ix;
    if (!memo_get(&s->frame_same, key, &ix)) {
        struct ui_frame *v = q_grow(s->frames, s->n_frames, &s->cap_frames, sizeof *v, 1024);
        if (!v)
            return -1;
        s->frames = v;
        ix = (int64_t)s->n_frames;
        if (!memo_put(&s->frame_same, key, ix))
            return -1;
        s->frames[s->n_frames++] = (struct ui_frame){ .name = name, .type = type };
    }
    return map[qf] = ix;
}

/* The store's stack for a result's stack (frames root first). */
static int64_t stack_of(struct ui_store *s, const struct qresult *r, size_t qs, int64_t *fmap, int64_t *smap)
{
    if (smap[qs] >= 0)
        return smap[qs];
    const struct qstack *q = &r->stacks[qs];
    void *v = q_grow(s->stacks, s->n_stacks, &s->cap_stacks, sizeof *s->stacks, 1024);
    if (!v || s->n_stacks >= UINT32_MAX - 1)
        return -1;
    s->stacks = v;
    uint32_t off = (uint32_t)s->n_sf;
    for (uint32_t j = q->n; j-- > 0;) {
        int64_t f = frame_of(s, r, r->stack_frames[q->off + j], fmap);
        uint32_t *sf = f < 0 ? NULL : q_grow(s->sf, s->n_sf, &s->cap_sf, sizeof *sf, 4096);
        if (!sf || s->n_sf >= UINT32_MAX)
            return -1;
        s->sf = sf;
        s->sf[s->n_sf++] = (uint32_t)f;
    }
    s->stacks[s->n_stacks].off = off;
    s->stacks[s->n_stacks].n = q->n;
    return smap[qs] = (int64_t)s->n_stacks++;
}

int ui_ch_scan(struct ui_store *s, const struct ui_params *p, enum ui_scan how, ui_row_fn fn, void *ctx)
{
    if (how != UI_SCAN_WINDOW)
        return ui_ch_unsupported(s, "per-minute rows");
    if (p->by == UI_BY_MAPPING)
        return ui_ch_unsupported(s, "mappings and build ids");
    struct qopts o;
    struct qresult r;
    memset(&r, 0, sizeof r);
    to_qopts(s, p, &o);
    if (qresult_init(&r, &o) != 0) {
        qresult_free(&r);
        return oom(s);
    }
    int rc = clickhouse_query_load(&o, &r);
    if (rc != 0) {
        from_qresult_fail(s, &r);
        qresult_free(&r);
        return -1;
    }
    ui_store_reset(s);
    int64_t *fmap = malloc((r.n_frames + 1) * sizeof *fmap), *smap = malloc((r.n_stacks + 1) * sizeof *smap);
    if (!fmap || !smap) {
        rc = oom(s);
        goto done;
    }
    memset(fmap, 0xff, (r.n_frames + 1) * sizeof *fmap);   /* -1: not made yet */
    memset(smap, 0xff, (r.n_stacks + 1) * sizeof *smap);
    for (size_t i = 0; i < r.items.n && rc == 0; i++) {
        const struct agg_entry *e = &r.items.v[i];
        if (e->k[0] < 0 || (size_t)e->k[0] >= r.n_stacks || !r.stacks[e->k[0]].type_ok)
            continue;
        int64_t st = stack_of(s, &r, (size_t)e->k[0], fmap, smap);
        /* the group as the SQLite store names it: its value, "" when no attribute has it or
         * it is empty (the reader's "[empty]": a value spelt so is taken for empty too) */
        uint32_t g = 0;
        if (e->k[1] != NONE && (uint32_t)e->k[1] != r.unknown_group && strcmp(r.names.v[e->k[1]], "[empty]") != 0)
            g = strtab_cstr(&s->names, r.names.v[e->k[1]]);
        if (st < 0 || g == NONE) {
            rc = oom(s);
            break;
        }
        int64_t sets[3] = { g, 0, 0 };
        rc = fn(ctx, s, (uint32_t)st, 0, sets, e->w);
    }
done:
    free(fmap);
    free(smap);
    qresult_free(&r);
    return rc;
}

/* ---------- the timeline and the metadata: SELECTs of their own ---------- */

static const char *db_of(const struct ui_store *s)
{
    return s->ch->database ? s->ch->database : CLICKHOUSE_DEFAULT_DATABASE;
}

/* POSTs sql (NUL-terminated in b) and reads the answer into out: 0, or -1 with s->err. */
static int ask(struct ui_store *s, const struct qopts *o, struct buf *sql, struct buf *out)
{
    struct qresult r;
    memset(&r, 0, sizeof r);
    if (!buf_putc(sql, '\0'))
        return oom(s);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(s->err, sizeof s->err, "libcurl failed to initialise");
        return -1;
    }
    int rc = ch_post(o, &r, (const char *)sql->data, out);
    curl_global_cleanup();
    return rc == 0 ? 0 : from_qresult_fail(s, &r);
}

/* The weight of the matching samples per minute of their timestamps (the query reader's
 * weight rule, each part in its own minute), as (m Int64, sw Int64) rows. */
static bool put_points(struct buf *b, const struct qopts *o, const char *db)
{
    bool ok = buf_printf(b, "SELECT toInt64(intDiv(pt, %lld)) AS m, sum(pw) AS sw FROM (SELECT "
                            "if(length(timestamps) = 0, [time_unix_nano], if(length(sample_values) = 0 OR "
                            "length(sample_values) = length(timestamps), timestamps, [timestamps[1]])) AS ms, "
                            "if(length(timestamps) = 0, [weight], if(length(sample_values) = 0, "
                            "arrayMap(x -> toInt64(1), timestamps), if(length(sample_values) = length(timestamps), "
                            "sample_values, [weight]))) AS ws FROM (SELECT stack_hash, resource_hash, weight, "
                            "time_unix_nano, timestamps, sample_values, attr_keys, attr_values FROM `%s`.samples FINAL ",
                         NS_PER_MINUTE, db) &&
              ch_put_prefilter(b, o) && buf_putc(b, ')');
    if (o->n_where)
        ok = ok && buf_printf(b, " GLOBAL ANY LEFT JOIN (SELECT resource_hash, attr_keys AS rk, attr_values AS rv "
                                 "FROM `%s`.resources) USING resource_hash", db);
    ok = ok && buf_printf(b, " WHERE 1") && ch_put_where(b, o);
    if (o->n_frame_type) {
        ok = ok && buf_printf(b, " AND stack_hash GLOBAL IN (SELECT stack_hash FROM `%s`.stacks ARRAY JOIN "
                                 "frame_hashes AS fh WHERE fh GLOBAL IN (SELECT frame_hash FROM `%s`.frames WHERE "
                                 "frame_type IN (", db, db);
        for (size_t i = 0; i < o->n_frame_type; i++)
            ok = ok && (i == 0 || buf_putc(b, ',')) && ch_put_literal(b, o->frame_type[i]);
        ok = ok && buf_printf(b, ")))");
    }
    ok = ok && buf_printf(b, ") ARRAY JOIN ms AS pt, ws AS pw WHERE 1");
    if (o->has_since)
        ok = ok && buf_printf(b, " AND pt >= %lld", (long long)(o->since < 0 ? 0 : o->since));
    if (o->has_until)
        ok = ok && buf_printf(b, " AND pt < %lld", (long long)(o->until < 0 ? 0 : o->until));
    return ok && buf_printf(b, " GROUP BY m");
}

int ui_ch_timeline(struct ui_store *s, const struct ui_params *p, struct buf *out)
{
    struct qopts o;
    to_qopts(s, p, &o);
    struct buf sql, ans;
    buf_init(&sql, 1 << 20);
    buf_init(&ans, MAX_RESPONSE);
    int rc = put_points(&sql, &o, db_of(s)) && buf_printf(&sql, " ORDER BY m FORMAT RowBinary") ? 0 : oom(s);
    if (rc == 0)
        rc = ask(s, &o, &sql, &ans);
    struct rd d = { ans.data, ans.data + ans.len, false };
    /* minutes ascending; per hour past three days, as over SQLite */
    int64_t first = 0, last = 0, step = 60;
    bool any = false;
    for (struct rd e = d; rc == 0 && rd_more(&e);) {
        int64_t m = (int64_t)rd_fixed(&e, 8);
        rd_fixed(&e, 8);
        if (!any)
            first = m;
        last = m;
        any = true;
        if (e.bad)
            rc = -1;
    }
    if (any && last - first > TIMELINE_MAX_MINUTES)
        step = 3600;
    bool ok = rc == 0 && buf_printf(out, "{\"step\":%" PRId64 ",", step);
    if (ok && any)
        ok = buf_printf(out, "\"first\":%" PRId64 ",\"last\":%" PRId64 ",", floor_div(first * 60, step) * step,
                        floor_div(last * 60, step) * step + step);
    ok = ok && buf_printf(out, "\"points\":[");
    int64_t cur = 0, w = 0;
    size_t n = 0;
    while (ok && rd_more(&d)) {
        int64_t b = floor_div((int64_t)rd_fixed(&d, 8) * 60, step) * step, v = (int64_t)rd_fixed(&d, 8);
        if (n && b == cur) {
            w = sat_add(w, v);
            continue;
        }
        if (n)
            ok = buf_printf(out, "%s[%" PRId64 ",%" PRId64 "]", n > 1 ? "," : "", cur, w);
        cur = b;
        w = v;
        n++;
    }
    if (ok && n)
        ok = buf_printf(out, "%s[%" PRId64 ",%" PRId64 "]", n > 1 ? "," : "", cur, w);
    ok = ok && buf_printf(out, "]}");
    if (rc == 0 && (d.bad || !ok)) {
        rc = -1;
        snprintf(s->err, sizeof s->err, d.bad ? "ClickHouse's timeline answer is malformed" : "out of memory");
    } else if (rc != 0 && !s->err[0]) {
        snprintf(s->err, sizeof s->err, "ClickHouse's timeline answer is malformed");
    }
    buf_free(&sql);
    buf_free(&ans);
    return rc;
}

/* A JSON string from a RowBinary string (bytes as stored, escaped). */
static bool put_rd_str(struct buf *out, struct rd *d)
{
    lb_str v = rd_str(d);
    return !d->bad && esc_json_quoted(out, v.p, v.n);
}

int ui_ch_meta(struct ui_store *s, struct buf *out)
{
    const char *db = db_of(s);
    struct qopts o;
    struct ui_params none;
    memset(&none, 0, sizeof none);
    to_qopts(s, &none, &o);
    struct buf sql, range, types, ftypes, reqs;
    buf_init(&sql, 1 << 20);
    buf_init(&range, 4096);
    buf_init(&types, MAX_RESPONSE);
    buf_init(&ftypes, MAX_RESPONSE);
    buf_init(&reqs, 4096);
    int rc = buf_printf(&sql, "SELECT toInt64(min(m)), toInt64(max(m)), count() FROM (") && put_points(&sql, &o, db) &&
             buf_printf(&sql, ") FORMAT RowBinary") ? ask(s, &o, &sql, &range) : oom(s);
    buf_reset(&sql);
    if (rc == 0)
        rc = buf_printf(&sql, "SELECT sample_type, sample_unit, sum(weight) AS sw FROM `%s`.samples FINAL "
                              "GROUP BY sample_type, sample_unit ORDER BY sw DESC FORMAT RowBinary", db)
             ? ask(s, &o, &sql, &types) : oom(s);
    buf_reset(&sql);
    if (rc == 0)
        rc = buf_printf(&sql, "SELECT DISTINCT frame_type FROM `%s`.frames ORDER BY frame_type FORMAT RowBinary", db)
             ? ask(s, &o, &sql, &ftypes) : oom(s);
    buf_reset(&sql);
    if (rc == 0)
        rc = buf_printf(&sql, "SELECT count() FROM `%s`.requests FORMAT RowBinary", db) ? ask(s, &o, &sql, &reqs)
                                                                                      : oom(s);
    bool ok = rc == 0;
    if (ok) {
        struct rd d = { range.data, range.data + range.len, false };
        int64_t lo = (int64_t)rd_fixed(&d, 8), hi = (int64_t)rd_fixed(&d, 8);
        uint64_t n = rd_fixed(&d, 8);
        ok = !d.bad && buf_putc(out, '{') &&
             (n == 0 || buf_printf(out, "\"first\":%" PRId64 ",\"last\":%" PRId64 ",", lo * 60, hi * 60 + 60));
        ok = ok && buf_printf(out, "\"sample_types\":[");
        d = (struct rd){ types.data, types.data + types.len, false };
        for (size_t i = 0; ok && rd_more(&d); i++)
            ok = buf_printf(out, "%s{\"type\":", i ? "," : "") && put_rd_str(out, &d) &&
                 buf_printf(out, ",\"unit\":") && put_rd_str(out, &d) &&
                 buf_printf(out, ",\"weight\":%" PRId64 "}", (int64_t)rd_fixed(&d, 8)) && !d.bad;
        ok = ok && buf_printf(out, "],\"frame_types\":[");
        d = (struct rd){ ftypes.data, ftypes.data + ftypes.len, false };
        for (size_t i = 0; ok && rd_more(&d); i++)
            ok = (i == 0 || buf_putc(out, ',')) && put_rd_str(out, &d);
        d = (struct rd){ reqs.data, reqs.data + reqs.len, false };
        uint64_t nreq = rd_fixed(&d, 8);
        ok = ok && !d.bad && buf_printf(out, "],\"requests\":[\"%" PRIu64 "\"]}", nreq);
        if (!ok) {
            rc = -1;
            snprintf(s->err, sizeof s->err, "ClickHouse's metadata answer is malformed, or out of memory");
        }
    }
    buf_free(&sql);
    buf_free(&range);
    buf_free(&types);
    buf_free(&ftypes);
    buf_free(&reqs);
    return rc;
}
