/*
 * export.c - the reader of `lazybackend export --clickhouse-url URL`: the rows the ClickHouse
 * sink wrote, played back as profiles events through the store-independent half of the
 * replay (sinks/replay.h), which the SQLite reader shares, so the OTLP and pprof encoders get
 * the same events from either store for what both keep.
 *
 * Four SELECTs over HTTP, answered in RowBinary and kept for the whole export (the events
 * point into them): the matching samples in (batch, row) order, with --sample-type, the
 * window's end and --where applied in SQL as `top` applies them; then the resources, stacks
 * and frames those samples name. The time window cuts each sample in C (replay_cut_series),
 * --frame-type keeps whole stacks, as over SQLite.
 *
 * What the rows give back: one exported request per stored batch (and layout), its resources
 * in the order their samples come, a profile per run of samples of the same scope, sample
 * type, period and profile id; attribute values as the text the sink rendered (strings); each
 * frame a location of its own. docs/export.md lists what the ClickHouse tables do not keep.
 * Every answer comes from the network: each length and count is checked before use.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/attrblob.h"
#include "sinks/clickhouse/export_impl.h"

/* ---------- small helpers ---------- */

int chx_fail(struct clickhouse_replay *r, const char *what)
{
    return qresult_fail(&r->res, "ClickHouse's answer (%s) is malformed", what);
}

void *chx_keep(struct clickhouse_replay *r, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        return NULL;
    if (r->n_owned == r->cap_owned) {
        void *g = q_grow(r->owned, r->n_owned, &r->cap_owned, sizeof *r->owned, 64);
        if (!g) {
            free(p);
            return NULL;
        }
        r->owned = g;
    }
    r->owned[r->n_owned++] = p;
    return p;
}

bool chx_room(void **v, size_t n, size_t *cap, size_t size)
{
    while (*cap < n) {
        void *g = q_grow(*v, *cap, cap, size, 16);
        if (!g)
            return false;
        *v = g;
    }
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The sink keeps ids as hex text: back to bytes (into out, 64 bytes at most). Text that is
 * not an id's hex comes back as it is. */
lb_str chx_unhex(lb_str s, uint8_t out[64])
{
    if (s.n % 2 || s.n > 128)
        return s;
    for (size_t i = 0; i < s.n; i += 2) {
        int hi = hexval(s.p[i]), lo = hexval(s.p[i + 1]);
        if (hi < 0 || lo < 0)
            return s;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (lb_str){ (const char *)out, s.n / 2 };
}

/* Parallel key and value arrays (Array(String) twice) into attributes; values are strings. */
bool chx_read_attrs(struct rd *keys, struct rd *values, size_t n, struct lb_attr *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].key = rd_str(keys);
        out[i].value.kind = LB_VALUE_STRING;
        out[i].value.u.str = rd_str(values);
        out[i].unit = LB_STR_NULL;
    }
    return !keys->bad && !values->bad;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_res(const void *a, const void *b) { return cmp_u64(((const struct cres *)a)->hash, ((const struct cres *)b)->hash); }
static int cmp_frame(const void *a, const void *b) { return cmp_u64(((const struct cframe *)a)->hash, ((const struct cframe *)b)->hash); }
static int cmp_stack(const void *a, const void *b) { return cmp_u64(((const struct cstack *)a)->hash, ((const struct cstack *)b)->hash); }

bool chx_blob_attrs(struct clickhouse_replay *r, lb_str blob, struct lb_attrs *out)
{
    *out = (struct lb_attrs){ NULL, 0 };
    if (blob.n == 0)
        return true;
    size_t n = attrblob_count(blob);
    if (n == (size_t)-1)
        return chx_fail(r, "an attribute list"), false;
    struct lb_attr *a = chx_keep(r, n * sizeof *a);
    if (!a)
        return qresult_oom(&r->res), false;
    attrblob_get(blob, a, n);
    *out = (struct lb_attrs){ a, n };
    return true;
}

const struct cres *chx_resource(const struct clickhouse_replay *r, uint64_t hash)
{
    struct cres key = { .hash = hash };
    return bsearch(&key, r->resources, r->n_resources, sizeof *r->resources, cmp_res);
}

/* ---------- the content answers ---------- */

static int read_resources(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_RESOURCES];
    struct rd d = rd_of(in);
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!chx_room((void **)&r->resources, r->n_resources + 1, &cap, sizeof *r->resources))
            return qresult_oom(&r->res);
        struct cres *c = &r->resources[r->n_resources];
        c->hash = rd_fixed(&d, 8);
        c->schema_url = rd_str(&d);
        size_t n = (size_t)rd_count(&d, 1);
        struct rd keys = d;
        for (size_t i = 0; i < n; i++)
            rd_str(&d);
        size_t nv = (size_t)rd_count(&d, 1);
        struct rd values = d;
        for (size_t i = 0; i < nv; i++)
            rd_str(&d);
        if (d.bad || nv != n)
            return chx_fail(r, "resources");
        struct lb_attr *a = chx_keep(r, n * sizeof *a);
        if (!a)
            return qresult_oom(&r->res);
        chx_read_attrs(&keys, &values, n, a);
        c->attrs = (struct lb_attrs){ a, n };
        r->n_resources++;
    }
    if (d.bad)
        return chx_fail(r, "resources");
    qsort(r->resources, r->n_resources, sizeof *r->resources, cmp_res);
    return 0;
}

static int read_stacks(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_STACKS];
    struct rd d = rd_of(in);
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!chx_room((void **)&r->stacks, r->n_stacks + 1, &cap, sizeof *r->stacks))
            return qresult_oom(&r->res);
        struct cstack *c = &r->stacks[r->n_stacks];
        memset(c, 0, sizeof *c);
        c->hash = rd_fixed(&d, 8);
        c->n = (size_t)rd_count(&d, 8);
        c->hashes = d.p;
        if (d.bad)
            return chx_fail(r, "stacks");
        d.p += c->n * 8;
        r->n_stacks++;
    }
    if (d.bad)
        return chx_fail(r, "stacks");
    qsort(r->stacks, r->n_stacks, sizeof *r->stacks, cmp_stack);
    return 0;
}

static int read_frames(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_FRAMES];
    struct rd d = rd_of(in);
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!chx_room((void **)&r->frames, r->n_frames + 1, &cap, sizeof *r->frames))
            return qresult_oom(&r->res);
        struct cframe *c = &r->frames[r->n_frames];
        struct lb_frame *f = &c->f;
        memset(c, 0, sizeof *c);
        c->hash = rd_fixed(&d, 8);
        f->type = rd_str(&d);
        f->function = rd_str(&d);
        f->system_name = rd_str(&d);
        f->file = rd_str(&d);
        f->line = (int64_t)rd_fixed(&d, 8);
        f->column = (int64_t)rd_fixed(&d, 8);
        f->address = rd_fixed(&d, 8);
        f->symbolized = rd_fixed(&d, 1) != 0;
        struct lb_mapping *m = &c->m;   /* f->mapping is set once the frames stop moving */
        m->file = rd_str(&d);
        m->build_id = rd_str(&d);
        m->build_id_kind = rd_str(&d);
        /* schema version 2; an older row has zeroes and empty strings */
        f->start_line = (int64_t)rd_fixed(&d, 8);
        uint64_t line_index = rd_fixed(&d, 4), line_count = rd_fixed(&d, 4);
        f->has_mapping = rd_fixed(&d, 1) || m->file.n || m->build_id.n;
        m->start = rd_fixed(&d, 8);
        m->limit = rd_fixed(&d, 8);
        m->offset = rd_fixed(&d, 8);
        lb_str loc = rd_str(&d), map = rd_str(&d);
        if (d.bad || line_count > UINT16_MAX || line_index >= (line_count ? line_count : 1))
            return chx_fail(r, "frames");
        f->line_index = (uint16_t)line_index;
        f->line_count = (uint16_t)(line_count ? line_count : f->symbolized);
        if (!chx_blob_attrs(r, loc, &f->location_attrs) || !chx_blob_attrs(r, map, &m->attrs))
            return -1;
        r->n_frames++;
    }
    qsort(r->frames, r->n_frames, sizeof *r->frames, cmp_frame);
    for (size_t i = 0; i < r->n_frames; i++)
        r->frames[i].f.mapping = &r->frames[i].m;
    return 0;
}

/* A stack's frames, leaf first, each frame a location of its own; NULL when out of memory
 * or a frame is missing (r->res.err set). */
struct cstack *chx_stack_of(struct clickhouse_replay *r, uint64_t hash)
{
    struct cstack key = { .hash = hash };
    struct cstack *s = bsearch(&key, r->stacks, r->n_stacks, sizeof *r->stacks, cmp_stack);
    if (!s) {
        qresult_fail(&r->res, "stack %016llx is missing from the stacks table", (unsigned long long)hash);
        return NULL;
    }
    if (s->built)
        return s;
    s->frames = chx_keep(r, s->n * sizeof *s->frames);
    if (!s->frames) {
        qresult_oom(&r->res);
        return NULL;
    }
    s->type_ok = r->o.n_frame_type == 0;
    uint32_t loc = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct rd d = { s->hashes + i * 8, s->hashes + i * 8 + 8, false };
        struct cframe fk = { .hash = rd_fixed(&d, 8) };
        const struct cframe *f = bsearch(&fk, r->frames, r->n_frames, sizeof *r->frames, cmp_frame);
        if (!f) {
            qresult_fail(&r->res, "frame %016llx is missing from the frames table", (unsigned long long)fk.hash);
            return NULL;
        }
        s->frames[i] = f->f;
        /* a new location starts at a line 0 (every frame of an older row is one) */
        if (i == 0 || f->f.line_index == 0)
            loc = (uint32_t)i;
        s->frames[i].location_index = loc;
        s->type_ok = s->type_ok || replay_frame_type_wanted(&r->o, f->f.type);
    }
    s->built = true;
    return s;
}

int clickhouse_replay_next(struct clickhouse_replay *r, struct otlp_consumer c)
{
    while (rd_more(&r->next) || rd_more(&r->next_req)) {
        int rc = chx_replay_one(r, c);
        if (rc != 0)   /* else nothing of it was kept (the window, --frame-type) */
            return rc;
    }
    return r->next.bad || r->next_req.bad ? chx_fail(r, "samples") : 0;
}

/* ---------- the questions ---------- */

/* Tables no version 2 sink has written to lack its columns: their defaults are selected. */
static bool sql_samples(struct buf *b, const struct qopts *o, const char *db, bool v1)
{
    const char *base = "batch_id, layout, resource_hash, scope_name, sample_type, sample_unit, period_type, "
                       "period_unit, period, profile_id, time_unix_nano, stack_hash, timestamps, sample_values, "
                       "attr_keys, attr_values, trace_id, span_id";
    const char *v2 = "request_index, resource_index, profile_index, attributes";
    const char *dflt = "toUInt32(0) AS request_index, toUInt32(0) AS resource_index, toUInt32(0) AS profile_index, "
                       "'' AS attributes";
    return buf_printf(b, "SELECT %s, %s FROM (SELECT %s, %s, row_index FROM `%s`.samples FINAL ", base, v2, base,
                      v1 ? dflt : v2, db) &&
           ch_put_prefilter(b, o) && buf_putc(b, ')') &&
           (!o->n_where || buf_printf(b, " GLOBAL ANY LEFT JOIN (SELECT resource_hash, attr_keys AS rk, "
                                         "attr_values AS rv FROM `%s`.resources) USING resource_hash", db)) &&
           buf_printf(b, " WHERE 1") && ch_put_where(b, o) &&
           buf_printf(b, " ORDER BY batch_id, row_index FORMAT RowBinary") && buf_putc(b, '\0');
}

static bool sql_content(struct buf *b, const struct qopts *o, const char *db, int which, bool v1)
{
    bool ok = true;
    switch (which) {
    case A_REQUESTS:
        ok = buf_printf(b, "SELECT batch_id, request_index, received_unix_nano, transport, peer, layout, content "
                           "FROM `%s`.requests FINAL", db) &&
             (!replay_filtered(o) || (buf_printf(b, " WHERE batch_id GLOBAL IN (SELECT batch_id FROM `%s`.samples ", db) &&
                                      ch_put_prefilter(b, o) && buf_putc(b, ')'))) &&
             buf_printf(b, " ORDER BY batch_id, request_index");
        break;
    case A_RESOURCES:
        ok = buf_printf(b, "SELECT resource_hash, any(schema_url), any(attr_keys), any(attr_values) FROM "
                           "`%s`.resources WHERE resource_hash GLOBAL IN (SELECT resource_hash FROM `%s`.samples ",
                        db, db) && ch_put_prefilter(b, o) && buf_printf(b, ") GROUP BY resource_hash");
        break;
    case A_STACKS:
        ok = buf_printf(b, "SELECT stack_hash, any(frame_hashes) FROM `%s`.stacks WHERE stack_hash GLOBAL IN "
                           "(SELECT stack_hash FROM `%s`.samples ", db, db) &&
             ch_put_prefilter(b, o) && buf_printf(b, ") GROUP BY stack_hash");
        break;
    default:
        ok = buf_printf(b, "SELECT frame_hash, any(frame_type), any(function), any(system_name), any(file), "
                           "any(line_number), any(column_number), any(address), any(symbolized), any(mapping_file), "
                           "any(build_id), any(build_id_kind), %s FROM `%s`.frames WHERE frame_hash GLOBAL IN "
                           "(SELECT arrayJoin(frame_hashes) FROM `%s`.stacks WHERE stack_hash GLOBAL IN "
                           "(SELECT stack_hash FROM `%s`.samples ",
                        v1 ? "toInt64(0), toUInt32(0), toUInt32(0), toUInt8(0), toUInt64(0), toUInt64(0), toUInt64(0), "
                             "'', ''"
                           : "any(start_line), any(line_index), any(line_count), any(has_mapping), any(mapping_start), "
                             "any(mapping_limit), any(mapping_offset), any(location_attrs), any(mapping_attrs)",
                        db, db, db) &&
             ch_put_prefilter(b, o) && buf_printf(b, ")) GROUP BY frame_hash");
        break;
    }
    return ok && buf_printf(b, " FORMAT RowBinary") && buf_putc(b, '\0');
}

const char *clickhouse_replay_error(const struct clickhouse_replay *r)
{
    return r->res.err[0] ? r->res.err : "failed";
}

void clickhouse_replay_close(struct clickhouse_replay *r)
{
    if (!r)
        return;
    for (int i = 0; i < A_COUNT; i++)
        buf_free(&r->ans[i]);
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->resources);
    free(r->frames);
    free(r->stacks);
    free(r->ts);
    free(r->vals);
    free(r->attrs);
    q_free_args(&r->o);
    if (r->curl_up)
        curl_global_cleanup();
    free(r);
}

int clickhouse_replay_open(struct qopts *o, struct clickhouse_replay **out)
{
    *out = NULL;
    struct clickhouse_replay *r = calloc(1, sizeof *r);
    if (!r) {
        q_free_args(o);
        fprintf(stderr, "lazybackend export: out of memory\n");
        return 1;
    }
    r->o = *o;   /* owns the --where keys from here */
    const char *db = r->o.ch_database ? r->o.ch_database : CLICKHOUSE_DEFAULT_DATABASE;
    for (int i = 0; i < A_COUNT; i++)
        buf_init(&r->ans[i], MAX_RESPONSE);
    struct buf sql;
    buf_init(&sql, 1 << 20);
    int rc = 0;
    r->curl_up = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!r->curl_up)
        rc = qresult_fail(&r->res, "libcurl failed to initialise");
    /* Written by a version 2 sink (or upgraded by one)? */
    bool v1 = false;
    if (rc == 0) {
        bool built = buf_printf(&sql, "SELECT count() FROM system.columns WHERE database = ") &&
                     ch_put_literal(&sql, db) &&
                     buf_printf(&sql, " AND table = 'samples' AND name = 'attributes' FORMAT TabSeparated") &&
                     buf_putc(&sql, '\0');
        rc = built ? ch_post(&r->o, &r->res, (const char *)sql.data, &r->ans[A_SAMPLES]) : qresult_oom(&r->res);
        v1 = rc == 0 && (r->ans[A_SAMPLES].len == 0 || r->ans[A_SAMPLES].data[0] == '0');
    }
    for (int i = 0; rc == 0 && i < A_COUNT; i++) {
        buf_reset(&sql);
        bool built = i == A_SAMPLES ? sql_samples(&sql, &r->o, db, v1) : sql_content(&sql, &r->o, db, i, v1);
        rc = built ? ch_post(&r->o, &r->res, (const char *)sql.data, &r->ans[i]) : qresult_oom(&r->res);
        if (rc != 0 && i == A_REQUESTS && strstr(r->res.err, "Code: 60")) {
            /* no requests table: written by an older version only */
            r->res.err[0] = 0;
            buf_reset(&r->ans[i]);
            rc = 0;
        }
    }
    buf_free(&sql);
    if (rc == 0)
        rc = read_resources(r);
    if (rc == 0)
        rc = read_stacks(r);
    if (rc == 0)
        rc = read_frames(r);
    if (rc != 0) {
        fprintf(stderr, "lazybackend export: %s\n", clickhouse_replay_error(r));
        clickhouse_replay_close(r);
        return 1;
    }
    r->next = (struct rd){ r->ans[A_SAMPLES].data, r->ans[A_SAMPLES].data + r->ans[A_SAMPLES].len, false };
    r->next_req = (struct rd){ r->ans[A_REQUESTS].data, r->ans[A_REQUESTS].data + r->ans[A_REQUESTS].len, false };
    *out = r;
    return 0;
}
