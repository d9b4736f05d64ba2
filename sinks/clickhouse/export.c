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

#include "sinks/clickhouse/clickhouse.h"
#include "sinks/clickhouse/query.h"
#include "sinks/replay.h"

enum { A_SAMPLES, A_RESOURCES, A_STACKS, A_FRAMES, A_COUNT };

struct cres {
    uint64_t hash;
    lb_str schema_url;
    struct lb_attrs attrs;
};

struct cframe {
    uint64_t hash;
    struct lb_frame f;
};

struct cstack {
    uint64_t hash;
    const uint8_t *hashes;     /* n little-endian UInt64 frame hashes, in the stacks answer */
    size_t n;
    struct lb_frame *frames;   /* built on first use */
    bool built, type_ok;
};

/* One sample row as read (strings point into the samples answer). */
struct crow {
    uint64_t batch, resource, stack, time;
    lb_str layout, scope, stype, sunit, ptype, punit, profile_id, trace_id, span_id;
    int64_t period;
    struct rd ts, vals, keys, values;   /* the arrays' bytes, counted */
    size_t n_ts, n_vals, n_attrs;
};

struct clickhouse_replay {
    struct qopts o;
    struct qresult res;           /* only its err */
    struct buf ans[A_COUNT];
    struct rd next;               /* the next sample row */
    struct cres *resources;
    size_t n_resources;
    struct cframe *frames;
    size_t n_frames;
    struct cstack *stacks;
    size_t n_stacks;
    void **owned;                 /* frame arrays and attribute arrays the events point into */
    size_t n_owned, cap_owned;
    /* one sample's series and attributes, reused */
    uint64_t *ts;
    int64_t *vals;
    struct lb_attr *attrs;
    size_t cap_ts, cap_vals, cap_attrs;
    uint8_t ids[3][64];           /* profile id, trace id, span id as bytes */
    char layout[32];
    bool curl_up;
};

/* ---------- small helpers ---------- */

static int fail(struct clickhouse_replay *r, const char *what)
{
    return qresult_fail(&r->res, "ClickHouse's answer (%s) is malformed", what);
}

static void *keep(struct clickhouse_replay *r, size_t size)
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

static bool room(void **v, size_t n, size_t *cap, size_t size)
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
static lb_str unhex(lb_str s, uint8_t out[64])
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
static bool read_attrs(struct rd *keys, struct rd *values, size_t n, struct lb_attr *out)
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

/* ---------- the content answers ---------- */

static int read_resources(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_RESOURCES];
    struct rd d = { in->data, in->data + in->len, false };
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!room((void **)&r->resources, r->n_resources + 1, &cap, sizeof *r->resources))
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
            return fail(r, "resources");
        struct lb_attr *a = keep(r, n * sizeof *a);
        if (!a)
            return qresult_oom(&r->res);
        read_attrs(&keys, &values, n, a);
        c->attrs = (struct lb_attrs){ a, n };
        r->n_resources++;
    }
    if (d.bad)
        return fail(r, "resources");
    qsort(r->resources, r->n_resources, sizeof *r->resources, cmp_res);
    return 0;
}

static int read_stacks(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_STACKS];
    struct rd d = { in->data, in->data + in->len, false };
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!room((void **)&r->stacks, r->n_stacks + 1, &cap, sizeof *r->stacks))
            return qresult_oom(&r->res);
        struct cstack *c = &r->stacks[r->n_stacks];
        memset(c, 0, sizeof *c);
        c->hash = rd_fixed(&d, 8);
        c->n = (size_t)rd_count(&d, 8);
        c->hashes = d.p;
        if (d.bad)
            return fail(r, "stacks");
        d.p += c->n * 8;
        r->n_stacks++;
    }
    if (d.bad)
        return fail(r, "stacks");
    qsort(r->stacks, r->n_stacks, sizeof *r->stacks, cmp_stack);
    return 0;
}

static int read_frames(struct clickhouse_replay *r)
{
    const struct buf *in = &r->ans[A_FRAMES];
    struct rd d = { in->data, in->data + in->len, false };
    size_t cap = 0;
    while (rd_more(&d)) {
        if (!room((void **)&r->frames, r->n_frames + 1, &cap, sizeof *r->frames))
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
        f->mapping_file = rd_str(&d);
        f->build_id = rd_str(&d);
        f->build_id_kind = rd_str(&d);
        f->has_mapping = f->mapping_file.n || f->build_id.n;
        f->line_count = f->symbolized ? 1 : 0;
        if (d.bad)
            return fail(r, "frames");
        r->n_frames++;
    }
    qsort(r->frames, r->n_frames, sizeof *r->frames, cmp_frame);
    return 0;
}

/* A stack's frames, leaf first, each frame a location of its own; NULL when out of memory
 * or a frame is missing (r->res.err set). */
static struct cstack *stack_of(struct clickhouse_replay *r, uint64_t hash)
{
    struct cstack key = { .hash = hash };
    struct cstack *s = bsearch(&key, r->stacks, r->n_stacks, sizeof *r->stacks, cmp_stack);
    if (!s) {
        qresult_fail(&r->res, "stack %016llx is missing from the stacks table", (unsigned long long)hash);
        return NULL;
    }
    if (s->built)
        return s;
    s->frames = keep(r, s->n * sizeof *s->frames);
    if (!s->frames) {
        qresult_oom(&r->res);
        return NULL;
    }
    s->type_ok = r->o.n_frame_type == 0;
    for (size_t i = 0; i < s->n; i++) {
        struct rd d = { s->hashes + i * 8, s->hashes + i * 8 + 8, false };
        struct cframe fk = { .hash = rd_fixed(&d, 8) };
        const struct cframe *f = bsearch(&fk, r->frames, r->n_frames, sizeof *r->frames, cmp_frame);
        if (!f) {
            qresult_fail(&r->res, "frame %016llx is missing from the frames table", (unsigned long long)fk.hash);
            return NULL;
        }
        s->frames[i] = f->f;
        s->frames[i].location_index = (uint32_t)i;
        s->type_ok = s->type_ok || replay_frame_type_wanted(&r->o, f->f.type);
    }
    s->built = true;
    return s;
}

/* ---------- the samples answer ---------- */

/* Skips an Array whose elements are `size` bytes (0: strings); the array's reader in *arr. */
static size_t skip_array(struct rd *d, size_t size, struct rd *arr)
{
    size_t n = (size_t)rd_count(d, size ? size : 1);
    *arr = *d;
    for (size_t i = 0; i < n && !d->bad; i++) {
        if (size)
            rd_fixed(d, size);
        else
            rd_str(d);
    }
    arr->end = d->p;
    return n;
}

static bool read_row(struct rd *d, struct crow *w)
{
    w->batch = rd_fixed(d, 8);
    w->layout = rd_str(d);
    w->resource = rd_fixed(d, 8);
    w->scope = rd_str(d);
    w->stype = rd_str(d);
    w->sunit = rd_str(d);
    w->ptype = rd_str(d);
    w->punit = rd_str(d);
    w->period = (int64_t)rd_fixed(d, 8);
    w->profile_id = rd_str(d);
    w->time = rd_fixed(d, 8);
    w->stack = rd_fixed(d, 8);
    w->n_ts = skip_array(d, 8, &w->ts);
    w->n_vals = skip_array(d, 8, &w->vals);
    w->n_attrs = skip_array(d, 0, &w->keys);
    size_t nv = skip_array(d, 0, &w->values);
    w->trace_id = rd_str(d);
    w->span_id = rd_str(d);
    return !d->bad && nv == w->n_attrs;
}

static bool same_str(lb_str a, lb_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool same_profile(const struct crow *a, const struct crow *b)
{
    return a->batch == b->batch && a->resource == b->resource && same_str(a->layout, b->layout) &&
           same_str(a->scope, b->scope) && same_str(a->stype, b->stype) && same_str(a->sunit, b->sunit) &&
           same_str(a->ptype, b->ptype) && same_str(a->punit, b->punit) && a->period == b->period &&
           same_str(a->profile_id, b->profile_id);
}

/* Emits one sample row, cut to the window; 0, or -1 with the error set. */
static int emit_sample(struct clickhouse_replay *r, struct replay_emit *s, const struct crow *w, unsigned *kept)
{
    struct cstack *st = stack_of(r, w->stack);
    if (!st)
        return -1;
    if (!st->type_ok)
        return 0;
    if (!room((void **)&r->ts, w->n_ts, &r->cap_ts, sizeof *r->ts) ||
        !room((void **)&r->vals, w->n_vals, &r->cap_vals, sizeof *r->vals) ||
        !room((void **)&r->attrs, w->n_attrs, &r->cap_attrs, sizeof *r->attrs))
        return qresult_oom(&r->res);
    struct rd ts = w->ts, vals = w->vals, keys = w->keys, values = w->values;
    for (size_t i = 0; i < w->n_ts; i++)
        r->ts[i] = rd_fixed(&ts, 8);
    for (size_t i = 0; i < w->n_vals; i++)
        r->vals[i] = (int64_t)rd_fixed(&vals, 8);
    size_t nts = w->n_ts, nvals = w->n_vals;
    if (!replay_cut_series(&r->o, w->time, r->ts, &nts, r->vals, &nvals))
        return 0;
    struct lb_sample smp;
    memset(&smp, 0, sizeof smp);
    smp.profile = &s->prof;
    smp.index = (*kept)++;
    smp.timestamps = r->ts;
    smp.n_timestamps = nts;
    smp.values = r->vals;
    smp.n_values = nvals;
    smp.frames = st->frames;
    smp.n_frames = st->n;
    read_attrs(&keys, &values, w->n_attrs, r->attrs);
    smp.attrs = (struct lb_attrs){ r->attrs, w->n_attrs };
    smp.trace_id = unhex(w->trace_id, r->ids[1]);
    smp.span_id = unhex(w->span_id, r->ids[2]);
    smp.has_link = smp.trace_id.n || smp.span_id.n;
    replay_sample(s, &smp);
    return 0;
}

/* Starts the profile of row w (rows after it with the same profile follow): its time is its
 * earliest sample's. */
static void begin_profile(struct clickhouse_replay *r, struct replay_emit *s, const struct crow *w, unsigned scope_index,
                          unsigned index)
{
    struct lb_profile *p = &s->prof;
    memset(p, 0, sizeof *p);
    p->resource = &s->res;
    p->scope = &s->scope;
    p->scope_index = scope_index;
    p->index = index;
    p->sample_type = w->stype;
    p->sample_unit = w->sunit;
    p->period_type = w->ptype;
    p->period_unit = w->punit;
    p->period = w->period;
    p->profile_id = unhex(w->profile_id, r->ids[0]);
    p->original_payload_format = LB_STR_NULL;
    p->original_payload = LB_STR_NULL;
    uint64_t t = w->time;
    struct rd d = r->next;
    struct crow n;
    while (rd_more(&d) && read_row(&d, &n) && same_profile(w, &n))
        t = n.time < t ? n.time : t;
    p->time_unix_nano = t;
}

/* The rows of one stored batch: 1 a request emitted, 0 nothing of it kept, -1 error. */
static int replay_batch(struct clickhouse_replay *r, struct otlp_consumer c)
{
    struct replay_emit s;
    memset(&s, 0, sizeof s);
    s.c = c;
    struct crow w, prev;
    unsigned kept = 0, scope_index = 0, index = 0, resources = 0;
    bool first = true;
    while (rd_more(&r->next)) {
        struct rd at = r->next;
        if (!read_row(&r->next, &w))
            return fail(r, "samples");
        if (first) {
            snprintf(r->layout, sizeof r->layout, "%.*s", (int)w.layout.n, w.layout.p);
            s.req = (struct lb_request){ .transport = "clickhouse", .peer = "-", .layout = r->layout };
        } else if (w.batch != prev.batch || !same_str(w.layout, prev.layout)) {
            r->next = at;   /* the next request's first row */
            break;
        }
        if (first || w.resource != prev.resource) {
            replay_resource_end(&s);
            struct cres key = { .hash = w.resource };
            const struct cres *res = bsearch(&key, r->resources, r->n_resources, sizeof *r->resources, cmp_res);
            memset(&s.res, 0, sizeof s.res);
            s.res.request = &s.req;
            s.res.index = resources++;
            if (res) {
                s.res.attrs = res->attrs;
                s.res.schema_url = res->schema_url;
            }
            scope_index = 0;
            index = 0;
            memset(&s.scope, 0, sizeof s.scope);
            s.scope.name = w.scope;
        } else if (!same_str(w.scope, prev.scope)) {
            replay_profile_end(&s);
            scope_index++;
            index = 0;
            s.scope.name = w.scope;
        }
        if (first || !same_profile(&w, &prev)) {
            if (!first && same_str(w.scope, prev.scope) && w.resource == prev.resource)
                index++;
            replay_profile_end(&s);
            begin_profile(r, &s, &w, scope_index, index);
            kept = 0;
        }
        if (emit_sample(r, &s, &w, &kept) != 0) {
            if (s.req_open)
                OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &s.req, r->res.err);
            return -1;
        }
        prev = w;
        first = false;
    }
    return replay_request_end(&s, r->res.err, sizeof r->res.err);
}

int clickhouse_replay_next(struct clickhouse_replay *r, struct otlp_consumer c)
{
    for (;;) {
        if (!rd_more(&r->next))
            return r->next.bad ? fail(r, "samples") : 0;
        int rc = replay_batch(r, c);
        if (rc != 0)   /* else nothing of that batch was kept (the window, --frame-type) */
            return rc;
    }
}

/* ---------- the questions ---------- */

static bool sql_samples(struct buf *b, const struct qopts *o, const char *db)
{
    const char *cols = "batch_id, layout, resource_hash, scope_name, sample_type, sample_unit, period_type, "
                       "period_unit, period, profile_id, time_unix_nano, stack_hash, timestamps, sample_values, "
                       "attr_keys, attr_values, trace_id, span_id";
    return buf_printf(b, "SELECT %s FROM (SELECT %s, row_index FROM `%s`.samples FINAL ", cols, cols, db) &&
           ch_put_prefilter(b, o) && buf_putc(b, ')') &&
           (!o->n_where || buf_printf(b, " GLOBAL ANY LEFT JOIN (SELECT resource_hash, attr_keys AS rk, "
                                         "attr_values AS rv FROM `%s`.resources) USING resource_hash", db)) &&
           buf_printf(b, " WHERE 1") && ch_put_where(b, o) &&
           buf_printf(b, " ORDER BY batch_id, row_index FORMAT RowBinary") && buf_putc(b, '\0');
}

static bool sql_content(struct buf *b, const struct qopts *o, const char *db, int which)
{
    bool ok = true;
    switch (which) {
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
                           "any(build_id), any(build_id_kind) FROM `%s`.frames WHERE frame_hash GLOBAL IN "
                           "(SELECT arrayJoin(frame_hashes) FROM `%s`.stacks WHERE stack_hash GLOBAL IN "
                           "(SELECT stack_hash FROM `%s`.samples ", db, db, db) &&
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
    for (int i = 0; rc == 0 && i < A_COUNT; i++) {
        buf_reset(&sql);
        bool built = i == A_SAMPLES ? sql_samples(&sql, &r->o, db) : sql_content(&sql, &r->o, db, i);
        rc = built ? ch_post(&r->o, &r->res, (const char *)sql.data, &r->ans[i]) : qresult_oom(&r->res);
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
    *out = r;
    return 0;
}
