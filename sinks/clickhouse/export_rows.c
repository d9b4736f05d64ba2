/*
 * export_rows.c - the ClickHouse export reader's walk (export.c asks the questions): the sample
 * rows, in (batch, row) order, emitted as events through sinks/replay.h. A batch written with
 * schema version 2 has its requests in the requests table: each is given back whole, its
 * resources, scopes and profiles from the row's content (content.h), its samples from the
 * sample rows that name it. A batch an older version wrote has only sample rows: they are
 * grouped back into one request, resources by hash, profiles by runs of rows alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/attrblob.h"
#include "sinks/clickhouse/content.h"
#include "sinks/clickhouse/export_impl.h"

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
    w->request_index = (uint32_t)rd_fixed(d, 4);
    w->resource_index = (uint32_t)rd_fixed(d, 4);
    w->profile_index = (uint32_t)rd_fixed(d, 4);
    w->attributes = rd_str(d);
    return !d->bad && nv == w->n_attrs;
}

bool chx_same_str(lb_str a, lb_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool same_profile(const struct crow *a, const struct crow *b)
{
    return a->batch == b->batch && a->resource == b->resource && chx_same_str(a->layout, b->layout) &&
           chx_same_str(a->scope, b->scope) && chx_same_str(a->stype, b->stype) && chx_same_str(a->sunit, b->sunit) &&
           chx_same_str(a->ptype, b->ptype) && chx_same_str(a->punit, b->punit) && a->period == b->period &&
           chx_same_str(a->profile_id, b->profile_id);
}

/* Emits one sample row, cut to the window; 0, or -1 with the error set. */
static int emit_sample(struct clickhouse_replay *r, struct replay_emit *s, const struct crow *w, uint64_t ptime,
                       unsigned *kept)
{
    struct cstack *st = chx_stack_of(r, w->stack);
    if (!st)
        return -1;
    if (!st->type_ok)
        return 0;
    size_t n_attrs = w->attributes.n ? attrblob_count(w->attributes) : w->n_attrs;
    if (n_attrs == (size_t)-1)
        return chx_fail(r, "a sample's attributes");
    if (!chx_room((void **)&r->ts, w->n_ts, &r->cap_ts, sizeof *r->ts) ||
        !chx_room((void **)&r->vals, w->n_vals, &r->cap_vals, sizeof *r->vals) ||
        !chx_room((void **)&r->attrs, n_attrs, &r->cap_attrs, sizeof *r->attrs))
        return qresult_oom(&r->res);
    struct rd ts = w->ts, vals = w->vals, keys = w->keys, values = w->values;
    for (size_t i = 0; i < w->n_ts; i++)
        r->ts[i] = rd_fixed(&ts, 8);
    for (size_t i = 0; i < w->n_vals; i++)
        r->vals[i] = (int64_t)rd_fixed(&vals, 8);
    size_t nts = w->n_ts, nvals = w->n_vals;
    if (!replay_cut_series(&r->o, ptime, r->ts, &nts, r->vals, &nvals))
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
    if (w->attributes.n)   /* typed */
        attrblob_get(w->attributes, r->attrs, n_attrs);
    else                   /* an older row: the text */
        chx_read_attrs(&keys, &values, n_attrs, r->attrs);
    smp.attrs = (struct lb_attrs){ r->attrs, n_attrs };
    smp.trace_id = chx_unhex(w->trace_id, r->ids[1]);
    smp.span_id = chx_unhex(w->span_id, r->ids[2]);
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
    p->profile_id = chx_unhex(w->profile_id, r->ids[0]);
    p->original_payload_format = LB_STR_NULL;
    p->original_payload = LB_STR_NULL;
    uint64_t t = w->time;
    struct rd d = r->next;
    struct crow n;
    while (rd_more(&d) && read_row(&d, &n) && same_profile(w, &n))
        t = n.time < t ? n.time : t;
    p->time_unix_nano = t;
}

/* The rows of one batch an older version wrote: 1 a request emitted, 0 nothing of it kept,
 * -1 error. */
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
            return chx_fail(r, "samples");
        if (first) {
            snprintf(r->layout, sizeof r->layout, "%.*s", (int)w.layout.n, w.layout.p);
            s.req = (struct lb_request){ .transport = "clickhouse", .peer = "-", .layout = r->layout };
        } else if (w.batch != prev.batch || !chx_same_str(w.layout, prev.layout)) {
            r->next = at;   /* the next request's first row */
            break;
        }
        if (first || w.resource != prev.resource) {
            replay_resource_end(&s);
            struct cres key = { .hash = w.resource };
            const struct cres *res = chx_resource(r, key.hash);
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
        } else if (!chx_same_str(w.scope, prev.scope)) {
            replay_profile_end(&s);
            scope_index++;
            index = 0;
            s.scope.name = w.scope;
        }
        if (first || !same_profile(&w, &prev)) {
            if (!first && chx_same_str(w.scope, prev.scope) && w.resource == prev.resource)
                index++;
            replay_profile_end(&s);
            begin_profile(r, &s, &w, scope_index, index);
            kept = 0;
        }
        if (emit_sample(r, &s, &w, w.time, &kept) != 0) {
            if (s.req_open)
                OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &s.req, r->res.err);
            return -1;
        }
        prev = w;
        first = false;
    }
    return replay_request_end(&s, r->res.err, sizeof r->res.err);
}


/* ---------- requests (schema version 2) ---------- */

struct req_row {
    uint64_t batch, received;
    uint32_t index;
    lb_str transport, peer, layout, content;
};

static bool read_req(struct rd *d, struct req_row *q)
{
    q->batch = rd_fixed(d, 8);
    q->index = (uint32_t)rd_fixed(d, 4);
    q->received = rd_fixed(d, 8);
    q->transport = rd_str(d);
    q->peer = rd_str(d);
    q->layout = rd_str(d);
    q->content = rd_str(d);
    return !d->bad;
}

/* The next sample row when it belongs to request q (and, with where >= 0, to its resource
 * `res` and profile `prof`); the reader moves past it. */
static bool next_of(struct clickhouse_replay *r, const struct req_row *q, long res, long prof, struct crow *w)
{
    struct rd d = r->next;
    if (!rd_more(&d) || !read_row(&d, w) || w->batch != q->batch || w->request_index != q->index)
        return false;
    if (res >= 0 && (w->resource_index != (uint32_t)res || w->profile_index != (uint32_t)prof))
        return false;
    r->next = d;
    return true;
}

static void text_of(lb_str s, char *out, size_t len)
{
    snprintf(out, len, "%.*s", (int)s.n, s.p);
}

static int replay_profile(struct clickhouse_replay *r, struct replay_emit *s, const struct req_row *q,
                          const struct ch_content_item *it, long res, long prof, unsigned *idx_in_scope)
{
    struct lb_profile *p = &s->prof;
    s->scope = it->scope;
    memset(p, 0, sizeof *p);
    if (!chx_blob_attrs(r, it->scope_attrs, &s->scope.attrs) || !chx_blob_attrs(r, it->attrs, &p->attrs))
        return -1;
    p->resource = &s->res;
    p->scope = &s->scope;
    p->scope_index = it->scope_index;
    p->index = (*idx_in_scope)++;
    p->sample_type = it->sample_type;
    p->sample_unit = it->sample_unit;
    p->period_type = it->period_type;
    p->period_unit = it->period_unit;
    p->period = it->period;
    p->time_unix_nano = it->time_unix_nano;
    p->duration_nano = it->duration_nano;
    p->profile_id = it->profile_id;
    p->dropped_attributes_count = it->dropped;
    p->original_payload_format = it->payload_format;
    p->original_payload = it->payload;
    p->original_payload_len = it->payload.n;
    bool want = replay_sample_type_wanted(&r->o, p->sample_type);
    if (!replay_filtered(&r->o))
        replay_open_upto(s, REPLAY_PROFILE);
    unsigned kept = 0;
    struct crow w;
    while (next_of(r, q, res, prof, &w))
        if (want && emit_sample(r, s, &w, p->time_unix_nano, &kept) != 0)
            return -1;
    replay_profile_end(s);
    return 0;
}

/* The entity refs of the resource just read: the 'E' items that follow its 'R' (*pos moves past
 * them). A malformed item is left for the caller to find. 0, or -1 out of memory. */
static int read_entity_refs(struct clickhouse_replay *r, const uint8_t **pos, const uint8_t *end,
                            struct lb_resource *res)
{
    struct ch_content_item e;
    const uint8_t *p = *pos, *at = p;
    size_t n = 0;
    while (ch_content_next(&p, end, &e) > 0 && e.tag == 'E') {   /* each item takes a byte at least */
        at = p;
        n++;
    }
    if (n == 0)
        return 0;
    struct lb_entity_ref *refs = chx_keep(r, n * sizeof *refs);
    if (!refs)
        return qresult_oom(&r->res);
    p = *pos;
    for (size_t i = 0; i < n && ch_content_next(&p, end, &e) > 0; i++) {
        lb_str *ids = e.n_id_keys ? chx_keep(r, e.n_id_keys * sizeof *ids) : NULL;
        lb_str *desc = e.n_description_keys ? chx_keep(r, e.n_description_keys * sizeof *desc) : NULL;
        if ((e.n_id_keys && !ids) || (e.n_description_keys && !desc))
            return qresult_oom(&r->res);
        ch_content_keys(e.id_keys, ids, e.n_id_keys);
        ch_content_keys(e.description_keys, desc, e.n_description_keys);
        refs[i] = (struct lb_entity_ref){ e.schema_url, e.entity_type, ids, e.n_id_keys, desc, e.n_description_keys };
    }
    *pos = at;
    res->entity_refs = refs;
    res->n_entity_refs = n;
    return 0;
}

/* One request whole: its resources, scopes and profiles from its content, its samples from
 * the rows that name it. 1 emitted, 0 nothing kept, -1 error. */
static int replay_request(struct clickhouse_replay *r, struct otlp_consumer c, const struct req_row *q)
{
    struct replay_emit s;
    memset(&s, 0, sizeof s);
    s.c = c;
    text_of(q->layout, r->layout, sizeof r->layout);
    text_of(q->transport, r->transport, sizeof r->transport);
    text_of(q->peer, r->peer, sizeof r->peer);
    s.req = (struct lb_request){ .transport = r->transport, .peer = r->peer, .layout = r->layout,
                                 .received_unix_nano = q->received };
    bool filtered = replay_filtered(&r->o);
    if (!filtered)
        replay_open_upto(&s, REPLAY_REQUEST);
    const uint8_t *pos = (const uint8_t *)q->content.p, *end = pos + q->content.n;
    struct ch_content_item it;
    long res = -1, prof = 0;
    unsigned idx_in_scope = 0, last_scope = UINT32_MAX;
    int rc, result = 0;
    while (result == 0 && (rc = ch_content_next(&pos, end, &it)) > 0) {
        if (it.tag == 'R') {
            replay_resource_end(&s);
            memset(&s.res, 0, sizeof s.res);
            s.res.request = &s.req;
            s.res.index = (unsigned)++res;
            s.res.dropped_attributes_count = it.dropped;
            s.res.schema_url = it.schema_url;
            prof = 0;
            last_scope = UINT32_MAX;
            if (!chx_blob_attrs(r, it.attrs, &s.res.attrs) || read_entity_refs(r, &pos, end, &s.res) != 0)
                result = -1;
            else if (!filtered)
                replay_open_upto(&s, REPLAY_RESOURCE);
        } else if (res < 0 || it.tag == 'E') {   /* an entity ref away from its resource */
            rc = -1;
            break;
        } else {
            if (it.scope_index != last_scope)
                idx_in_scope = 0;
            last_scope = it.scope_index;
            result = replay_profile(r, &s, q, &it, res, prof++, &idx_in_scope);
        }
    }
    if (result == 0 && rc < 0)
        result = chx_fail(r, "a request's content");
    if (result != 0) {
        if (s.req_open)
            OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &s.req, r->res.err);
        return -1;
    }
    struct crow w;
    while (next_of(r, q, -1, 0, &w))   /* rows naming no stored profile: not ours to invent */
        ;
    return replay_request_end(&s, r->res.err, sizeof r->res.err);
}

int chx_replay_one(struct clickhouse_replay *r, struct otlp_consumer c)
{
    struct rd qd = r->next_req, sd = r->next;
    struct req_row q;
    struct crow w;
    bool have_q = rd_more(&qd), have_s = rd_more(&sd);
    if (have_q && !read_req(&qd, &q))
        return chx_fail(r, "requests");
    if (have_s && !read_row(&sd, &w))
        return chx_fail(r, "samples");
    if (have_q && (!have_s || q.batch <= w.batch)) {
        r->next_req = qd;
        return replay_request(r, c, &q);
    }
    return replay_batch(r, c);
}
