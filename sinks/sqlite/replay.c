/*
 * replay.c - the stored requests played back as profiles events (otlp/events.h), for
 * `lazybackend export`: whatever consumes events (the OTLP encoder, the pprof encoder, a
 * sink) gets the requests as the decoder gave them to this store.
 *
 * One stored request at a time: its resources by position, their profiles in arrival order
 * (scope by scope), each profile's samples by id, each sample with its timestamps and values
 * in wire order. Content rows (strings, attributes and their sets, mappings, frames, stacks,
 * scopes) are read once and kept for the whole export, so memory grows with distinct content,
 * not with samples.
 *
 * Filters are the query commands' (query_args.c) and mean the same: --where against the
 * sample's, profile's and resource's attribute sets, --sample-type, --frame-type on whole
 * stacks, and the time window cutting each sample down to what lies inside (as `top` weighs
 * it, see query.c). Without any filter every stored request is replayed whole, empty
 * resources and profiles included; with one, only what keeps a sample.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

/* Growable arrays (q_grow doubles them). */
#define VEC_OF(T) struct { T *v; size_t n, cap; }
#define VEC_ADD(vec, x)                                                                        \
    (((vec).n < (vec).cap || grow_((void **)&(vec).v, (vec).n, &(vec).cap, sizeof *(vec).v))  \
         ? ((vec).v[(vec).n++] = (x), true)                                                    \
         : false)

static bool grow_(void **v, size_t n, size_t *cap, size_t size)
{
    void *p = q_grow(*v, n, cap, size, 16);
    if (!p)
        return false;
    *v = p;
    return true;
}

/* Everything read once per export: id -> position in one of these arrays (memo). */
struct rmapping {
    lb_str file, build_id, kind;
    uint64_t start, limit, offset;
    struct lb_attrs attrs;
};

struct rstack {
    struct lb_frame *f;
    size_t n;
    bool type_ok;
};

enum {
    R_REQ, R_RES, R_PROF, R_SAMPLE, R_TS, R_VAL,
    R_STR, R_ATTR, R_SET, R_MAP, R_FRAME, R_STACK, R_SCOPE, R_COUNT
};

static const char *const REPLAY_SQL[R_COUNT] = {
    [R_REQ] = "SELECT id, sequence, transport_id, peer_id, layout_id, received_unix_nano, wire_bytes, "
              "message_bytes FROM requests WHERE id > ?1 ORDER BY id LIMIT 1",
    [R_RES] = "SELECT id, idx, attributes_id, schema_url_id, dropped_attributes_count FROM resources "
              "WHERE request_id = ?1 ORDER BY idx, id",
    [R_PROF] = "SELECT id, scope_id, scope_index, idx, sample_type_id, sample_unit_id, period_type_id, "
               "period_unit_id, period, time_unix_nano, duration_nano, profile_id, "
               "dropped_attributes_count, original_payload_format_id, original_payload_len, "
               "attributes_id, original_payload, first_sample_id, last_sample_id, "
               "first_time_unix_nano, last_time_unix_nano FROM profiles WHERE resource_id = ?1 ORDER BY id",
    [R_SAMPLE] = "SELECT id, stack_id, attributes_id, trace_id, span_id FROM samples "
                 "WHERE id BETWEEN ?1 AND ?2 AND profile_id = ?3 ORDER BY id",
    [R_TS] = "SELECT time_unix_nano FROM sample_timestamps WHERE sample_id = ?1 ORDER BY idx",
    [R_VAL] = "SELECT value FROM sample_values WHERE sample_id = ?1 ORDER BY idx",
    [R_STR] = "SELECT value FROM strings WHERE id = ?1",
    [R_ATTR] = "SELECT key_id, kind, value, unit_id FROM attributes WHERE id = ?1",
    [R_SET] = "SELECT attribute_id FROM attribute_set_items WHERE set_id = ?1 ORDER BY pos",
    [R_MAP] = "SELECT file_id, build_id_id, build_id_kind_id, memory_start, memory_limit, file_offset, "
              "attributes_id FROM mappings WHERE id = ?1",
    [R_FRAME] = "SELECT type_id, symbolized, function_id, system_name_id, file_id, line, column, "
                "start_line, address, mapping_id, attributes_id, line_index, line_count "
                "FROM frames WHERE id = ?1",
    [R_STACK] = "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY pos",
    [R_SCOPE] = "SELECT name_id, version_id, schema_url_id, attributes_id, dropped_attributes_count "
                "FROM scopes WHERE id = ?1",
};

struct sqlite_replay {
    struct qopts o;
    struct q q;                 /* the query commands' state: --where sets, errors */
    sqlite3_stmt *st[R_COUNT];
    bool filtered;              /* any filter: only what keeps a sample is replayed */
    int64_t last_request;
    struct memo ix[R_COUNT];    /* id -> index + 1 in the arrays below, per content kind */
    VEC_OF(lb_str) strs;
    VEC_OF(struct lb_attr) attrs;
    VEC_OF(struct lb_attrs) sets;
    VEC_OF(struct rmapping) maps;
    VEC_OF(struct lb_frame) frames;
    VEC_OF(struct rstack) stacks;
    VEC_OF(struct lb_scope) scopes;
    VEC_OF(void *) owned;       /* every allocation the views point into */
    uint64_t *ts;
    int64_t *vals;
    size_t ts_cap, vals_cap;
    uint32_t frame_type_ids[MAX_FILTERS];
    char transport[64], peer[256], layout[32];
};

/* ---------- small helpers ---------- */

static int rfail(struct sqlite_replay *r, const char *what)
{
    return qfail(&r->q, what);
}

static void *keep(struct sqlite_replay *r, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p && !VEC_ADD(r->owned, p)) {
        free(p);
        return NULL;
    }
    return p;
}

static int step(struct sqlite_replay *r, int s, const char *what)
{
    int rc = sqlite3_step(r->st[s]);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rfail(r, what);
        return -1;
    }
    return rc == SQLITE_ROW;
}

/* ---------- content, read once ---------- */

/* A string by id (0 = the empty string); false on error. */
static bool load_str(struct sqlite_replay *r, int64_t id, lb_str *out)
{
    int64_t ix;
    *out = LB_STR_NULL;
    if (id <= 0)
        return true;
    if (memo_get(&r->ix[R_STR], (uint64_t)id, &ix)) {
        *out = r->strs.v[ix];
        return true;
    }
    sqlite3_stmt *st = r->st[R_STR];
    sqlite3_bind_int64(st, 1, id);
    int rc = step(r, R_STR, "reading a string");
    bool ok = rc >= 0;
    if (rc > 0) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        char *copy = keep(r, n);
        ok = copy != NULL;
        if (ok) {
            if (n)
                memcpy(copy, p, n);
            *out = (lb_str){ copy, n };
            ok = VEC_ADD(r->strs, *out) && memo_put(&r->ix[R_STR], (uint64_t)id, (int64_t)r->strs.n - 1);
        }
        if (!ok)
            qoom(&r->q);
    }
    sqlite3_reset(st);
    return ok;
}

static bool load_attr(struct sqlite_replay *r, int64_t id, struct lb_attr *out)
{
    int64_t ix;
    if (memo_get(&r->ix[R_ATTR], (uint64_t)id, &ix)) {
        *out = r->attrs.v[ix];
        return true;
    }
    sqlite3_stmt *st = r->st[R_ATTR];
    sqlite3_bind_int64(st, 1, id);
    int rc = step(r, R_ATTR, "reading an attribute");
    memset(out, 0, sizeof *out);
    int64_t key = 0, unit = 0, sid = 0;
    const char *kind = "";
    struct lb_value v = { .kind = LB_VALUE_EMPTY };
    if (rc > 0) {
        key = sqlite3_column_int64(st, 0);
        unit = sqlite3_column_int64(st, 3);
        kind = (const char *)sqlite3_column_text(st, 1);
        kind = kind ? kind : "";
        /* arrays and kvlists are kept as their JSON text: they come back as that string */
        if (!strcmp(kind, "string") || !strcmp(kind, "array") || !strcmp(kind, "kvlist")) {
            v.kind = LB_VALUE_STRING;
            sid = sqlite3_column_int64(st, 2);
        } else if (!strcmp(kind, "int") || !strcmp(kind, "bool")) {
            v.kind = kind[0] == 'i' ? LB_VALUE_INT : LB_VALUE_BOOL;
            v.u.integer = sqlite3_column_int64(st, 2);
            if (v.kind == LB_VALUE_BOOL)
                v.u.boolean = v.u.integer != 0;
        } else if (!strcmp(kind, "double")) {
            v.kind = LB_VALUE_DOUBLE;
            v.u.dbl = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
        } else if (!strcmp(kind, "bytes")) {
            v.kind = LB_VALUE_BYTES;
            size_t n = (size_t)sqlite3_column_bytes(st, 2);
            const void *p = sqlite3_column_blob(st, 2);
            char *copy = keep(r, n);
            if (!copy) {
                sqlite3_reset(st);
                return qoom(&r->q), false;
            }
            if (n)
                memcpy(copy, p, n);
            v.u.str = (lb_str){ copy, n };
        }
    }
    sqlite3_reset(st);
    if (rc < 0)
        return false;
    out->value = v;
    if (!load_str(r, key, &out->key) || !load_str(r, unit, &out->unit) ||
        (sid && !load_str(r, sid, &out->value.u.str)))
        return false;
    if (!VEC_ADD(r->attrs, *out) || !memo_put(&r->ix[R_ATTR], (uint64_t)id, (int64_t)r->attrs.n - 1))
        return qoom(&r->q), false;
    return true;
}

/* An attribute set by id (0 = none). */
static bool load_set(struct sqlite_replay *r, int64_t id, struct lb_attrs *out)
{
    int64_t ix;
    *out = (struct lb_attrs){ NULL, 0 };
    if (id <= 0)
        return true;
    if (memo_get(&r->ix[R_SET], (uint64_t)id, &ix)) {
        *out = r->sets.v[ix];
        return true;
    }
    int64_t ids[256];
    size_t n = 0;
    VEC_OF(int64_t) more = { 0 };
    sqlite3_stmt *st = r->st[R_SET];
    sqlite3_bind_int64(st, 1, id);
    int rc;
    bool ok = true;
    while (ok && (rc = step(r, R_SET, "reading an attribute set")) > 0) {
        int64_t a = sqlite3_column_int64(st, 0);
        if (n < 256)
            ids[n++] = a;
        else
            ok = VEC_ADD(more, a) || qoom(&r->q) == 0;
    }
    sqlite3_reset(st);
    ok = ok && rc == 0;
    size_t total = n + more.n;
    struct lb_attr *v = ok ? keep(r, total * sizeof *v) : NULL;
    ok = ok && (v || qoom(&r->q) == 0);
    for (size_t i = 0; ok && i < total; i++)
        ok = load_attr(r, i < n ? ids[i] : more.v[i - n], &v[i]);
    free(more.v);
    if (!ok)
        return false;
    *out = (struct lb_attrs){ v, total };
    if (!VEC_ADD(r->sets, *out) || !memo_put(&r->ix[R_SET], (uint64_t)id, (int64_t)r->sets.n - 1))
        return qoom(&r->q), false;
    return true;
}

static bool load_mapping(struct sqlite_replay *r, int64_t id, struct rmapping *out)
{
    int64_t ix;
    if (memo_get(&r->ix[R_MAP], (uint64_t)id, &ix)) {
        *out = r->maps.v[ix];
        return true;
    }
    sqlite3_stmt *st = r->st[R_MAP];
    sqlite3_bind_int64(st, 1, id);
    int rc = step(r, R_MAP, "reading a mapping");
    int64_t c[7] = { 0 };
    for (int i = 0; rc > 0 && i < 7; i++)
        c[i] = sqlite3_column_int64(st, i);
    sqlite3_reset(st);
    if (rc <= 0)
        return rc == 0 ? (snprintf(r->q.err, sizeof r->q.err, "mapping %lld is missing", (long long)id), false)
                       : false;
    memset(out, 0, sizeof *out);
    out->start = (uint64_t)c[3];
    out->limit = (uint64_t)c[4];
    out->offset = (uint64_t)c[5];
    if (!load_str(r, c[0], &out->file) || !load_str(r, c[1], &out->build_id) ||
        !load_str(r, c[2], &out->kind) || !load_set(r, c[6], &out->attrs))
        return false;
    if (!VEC_ADD(r->maps, *out) || !memo_put(&r->ix[R_MAP], (uint64_t)id, (int64_t)r->maps.n - 1))
        return qoom(&r->q), false;
    return true;
}

static bool load_frame(struct sqlite_replay *r, int64_t id, struct lb_frame *f)
{
    int64_t ix;
    if (memo_get(&r->ix[R_FRAME], (uint64_t)id, &ix)) {
        *f = r->frames.v[ix];
        return true;
    }
    sqlite3_stmt *st = r->st[R_FRAME];
    sqlite3_bind_int64(st, 1, id);
    int rc = step(r, R_FRAME, "reading a frame");
    int64_t c[13] = { 0 };
    for (int i = 0; rc > 0 && i < 13; i++)
        c[i] = sqlite3_column_int64(st, i);
    sqlite3_reset(st);
    if (rc <= 0)
        return rc == 0 ? (snprintf(r->q.err, sizeof r->q.err, "frame %lld is missing", (long long)id), false)
                       : false;
    memset(f, 0, sizeof *f);
    f->symbolized = c[1] != 0;
    f->line = c[5];
    f->column = c[6];
    f->start_line = c[7];
    f->address = (uint64_t)c[8];
    f->line_index = (uint16_t)c[11];
    f->line_count = (uint16_t)c[12];
    if (!load_str(r, c[0], &f->type) || !load_str(r, c[2], &f->function) ||
        !load_str(r, c[3], &f->system_name) || !load_str(r, c[4], &f->file) ||
        !load_set(r, c[10], &f->location_attrs))
        return false;
    if (c[9] > 0) {
        struct rmapping m;
        if (!load_mapping(r, c[9], &m))
            return false;
        f->has_mapping = true;
        f->mapping_file = m.file;
        f->mapping_start = m.start;
        f->mapping_limit = m.limit;
        f->mapping_offset = m.offset;
        f->build_id = m.build_id;
        f->build_id_kind = m.kind;
        f->mapping_attrs = m.attrs;
    }
    if (!VEC_ADD(r->frames, *f) || !memo_put(&r->ix[R_FRAME], (uint64_t)id, (int64_t)r->frames.n - 1))
        return qoom(&r->q), false;
    return true;
}

static bool type_wanted(const struct sqlite_replay *r, lb_str type)
{
    for (size_t i = 0; i < r->o.n_frame_type; i++) {
        const char *want = r->o.frame_type[i];
        if (strcmp(want, "unknown") == 0 ? type.n == 0 : lb_str_eq(type, want, strlen(want)))
            return true;
    }
    return false;
}

/* A stack by id: its frames leaf first, each location's lines numbered as one location. */
static bool load_stack(struct sqlite_replay *r, int64_t id, struct rstack *out)
{
    int64_t ix;
    if (memo_get(&r->ix[R_STACK], (uint64_t)id, &ix)) {
        *out = r->stacks.v[ix];
        return true;
    }
    VEC_OF(int64_t) ids = { 0 };
    sqlite3_stmt *st = r->st[R_STACK];
    sqlite3_bind_int64(st, 1, id);
    int rc;
    bool ok = true;
    while (ok && (rc = step(r, R_STACK, "reading a stack")) > 0)
        ok = VEC_ADD(ids, sqlite3_column_int64(st, 0)) || qoom(&r->q) == 0;
    sqlite3_reset(st);
    ok = ok && rc == 0;
    struct lb_frame *f = ok ? keep(r, ids.n * sizeof *f) : NULL;
    ok = ok && (f || qoom(&r->q) == 0);
    bool type_ok = r->o.n_frame_type == 0;
    uint32_t loc = 0;
    for (size_t i = 0; ok && i < ids.n; i++) {
        ok = load_frame(r, ids.v[i], &f[i]);
        if (!ok)
            break;
        /* a new location starts at a line 0 (or at any frame of an older store) */
        if (f[i].line_index == 0 || i == 0)
            loc = (uint32_t)i;
        f[i].location_index = loc;
        type_ok = type_ok || type_wanted(r, f[i].type);
    }
    free(ids.v);
    if (!ok)
        return false;
    *out = (struct rstack){ f, ids.n, type_ok };
    if (!VEC_ADD(r->stacks, *out) || !memo_put(&r->ix[R_STACK], (uint64_t)id, (int64_t)r->stacks.n - 1))
        return qoom(&r->q), false;
    return true;
}

static bool load_scope(struct sqlite_replay *r, int64_t id, struct lb_scope *out)
{
    int64_t ix;
    memset(out, 0, sizeof *out);
    if (id <= 0)
        return true;
    if (memo_get(&r->ix[R_SCOPE], (uint64_t)id, &ix)) {
        *out = r->scopes.v[ix];
        return true;
    }
    sqlite3_stmt *st = r->st[R_SCOPE];
    sqlite3_bind_int64(st, 1, id);
    int rc = step(r, R_SCOPE, "reading a scope");
    int64_t c[5] = { 0 };
    for (int i = 0; rc > 0 && i < 5; i++)
        c[i] = sqlite3_column_int64(st, i);
    sqlite3_reset(st);
    if (rc < 0)
        return false;
    out->dropped_attributes_count = (uint32_t)c[4];
    if (!load_str(r, c[0], &out->name) || !load_str(r, c[1], &out->version) ||
        !load_str(r, c[2], &out->schema_url) || !load_set(r, c[3], &out->attrs))
        return false;
    if (!VEC_ADD(r->scopes, *out) || !memo_put(&r->ix[R_SCOPE], (uint64_t)id, (int64_t)r->scopes.n - 1))
        return qoom(&r->q), false;
    return true;
}

/* ---------- filters ---------- */

static bool in_window(const struct qopts *o, int64_t t)
{
    return (!o->has_since || t >= o->since) && (!o->has_until || t < o->until);
}

static bool in_where(const struct sqlite_replay *r, const int64_t sets[3])
{
    for (size_t i = 0; i < r->o.n_where; i++) {
        bool hit = false;
        for (int k = 0; k < 3 && !hit; k++) {
            int64_t v;
            hit = sets[k] > 0 && memo_get(&r->q.where_sets[i], (uint64_t)sets[k], &v);
        }
        if (!hit)
            return false;
    }
    return true;
}

/* Reads a sample's timestamps and values, and cuts them to the time window the way `top`
 * weighs them: a timestamp inside counts (with its value when they pair), unpaired values go
 * with the first timestamp, a sample without timestamps goes with its profile's time. False:
 * nothing of it lies inside. */
static int load_series(struct sqlite_replay *r, int64_t sample, uint64_t ptime, size_t *nts, size_t *nvals)
{
    for (int s = R_TS; s <= R_VAL; s++) {
        sqlite3_stmt *st = r->st[s];
        size_t n = 0;
        int rc;
        sqlite3_bind_int64(st, 1, sample);
        while ((rc = step(r, s, "reading a sample's series")) > 0) {
            size_t *cap = s == R_TS ? &r->ts_cap : &r->vals_cap;
            void **v = s == R_TS ? (void **)&r->ts : (void **)&r->vals;
            if (n == *cap && !grow_(v, n, cap, 8)) {
                sqlite3_reset(st);
                return qoom(&r->q);
            }
            int64_t x = sqlite3_column_int64(st, 0);
            memcpy((uint8_t *)*v + n * 8, &x, 8);
            n++;
        }
        sqlite3_reset(st);
        if (rc < 0)
            return -1;
        *(s == R_TS ? nts : nvals) = n;
    }
    const struct qopts *o = &r->o;
    if (!o->has_since && !o->has_until)
        return 1;
    if (*nts == 0)
        return in_window(o, (int64_t)ptime);
    if (*nvals != 0 && *nvals != *nts)
        return in_window(o, (int64_t)r->ts[0]);
    size_t k = 0;
    for (size_t i = 0; i < *nts; i++) {
        if (!in_window(o, (int64_t)r->ts[i]))
            continue;
        r->ts[k] = r->ts[i];
        if (*nvals)
            r->vals[k] = r->vals[i];
        k++;
    }
    *nts = k;
    if (*nvals)
        *nvals = k;
    return k > 0;
}

/* ---------- one stored request ---------- */

struct open_state {
    struct otlp_consumer c;
    struct lb_request req;
    struct lb_resource res;
    struct lb_scope scope;
    struct lb_profile prof;
    bool req_open, res_open, prof_open;
};

/* Opens whatever encloses the next event and is not open yet. */
static void open_upto(struct open_state *s, int level)
{
    if (!s->req_open) {
        OTLP_EMIT(s->c, request_begin, OTLP_SIGNAL_PROFILES, &s->req);
        s->req_open = true;
    }
    if (level >= 1 && !s->res_open) {
        OTLP_EMIT(s->c, resource_begin, &s->res);
        s->res_open = true;
    }
    if (level >= 2 && !s->prof_open) {
        OTLP_EMIT(s->c, profile_begin, &s->prof);
        s->prof_open = true;
    }
}

static int replay_samples(struct sqlite_replay *r, struct open_state *s, int64_t prof_id, int64_t first,
                          int64_t last, const int64_t sets[3], unsigned *n_kept)
{
    sqlite3_stmt *st = r->st[R_SAMPLE];
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, last);
    sqlite3_bind_int64(st, 3, prof_id);
    int rc;
    int result = 0;
    while (result == 0 && (rc = step(r, R_SAMPLE, "reading samples")) > 0) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t all[3] = { sqlite3_column_int64(st, 2), sets[1], sets[2] };
        if (!in_where(r, all))
            continue;
        struct rstack stack;
        if (!load_stack(r, sqlite3_column_int64(st, 1), &stack)) {
            result = -1;
            break;
        }
        if (!stack.type_ok)
            continue;
        size_t nts = 0, nvals = 0;
        int in = load_series(r, id, s->prof.time_unix_nano, &nts, &nvals);
        if (in < 0) {
            result = -1;
            break;
        }
        if (!in)
            continue;
        struct lb_sample smp;
        memset(&smp, 0, sizeof smp);
        smp.profile = &s->prof;
        smp.index = (*n_kept)++;
        smp.stack_index = (uint32_t)sqlite3_column_int64(st, 1);
        smp.timestamps = r->ts;
        smp.n_timestamps = nts;
        smp.values = r->vals;
        smp.n_values = nvals;
        smp.frames = stack.f;
        smp.n_frames = stack.n;
        smp.has_link = sqlite3_column_type(st, 3) != SQLITE_NULL || sqlite3_column_type(st, 4) != SQLITE_NULL;
        smp.trace_id = (lb_str){ sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3) };
        smp.span_id = (lb_str){ sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4) };
        if (!smp.trace_id.p)
            smp.trace_id = LB_STR_NULL;
        if (!smp.span_id.p)
            smp.span_id = LB_STR_NULL;
        if (!load_set(r, all[0], &smp.attrs)) {
            result = -1;
            break;
        }
        open_upto(s, 2);
        OTLP_EMIT(s->c, sample, &smp);
    }
    sqlite3_reset(st);
    return result;
}

/* The profiles of one resource; statement R_PROF is reset by the caller. */
static int replay_profiles(struct sqlite_replay *r, struct open_state *s, int64_t res_set)
{
    sqlite3_stmt *st = r->st[R_PROF];
    int rc;
    unsigned idx_in_scope = 0, last_scope = UINT32_MAX;
    while ((rc = step(r, R_PROF, "reading profiles")) > 0) {
        int64_t c[16];
        for (int i = 0; i < 16; i++)
            c[i] = sqlite3_column_int64(st, i);
        int64_t first = sqlite3_column_int64(st, 17), last = sqlite3_column_int64(st, 18);
        int64_t tfirst = sqlite3_column_int64(st, 19), tlast = sqlite3_column_int64(st, 20);
        bool has_samples = sqlite3_column_type(st, 17) != SQLITE_NULL;
        struct lb_profile *p = &s->prof;
        memset(p, 0, sizeof *p);
        lb_str stype, sunit, ptype, punit, fmt;
        if (!load_str(r, c[4], &stype) || !load_str(r, c[5], &sunit) || !load_str(r, c[6], &ptype) ||
            !load_str(r, c[7], &punit) || !load_str(r, c[13], &fmt) || !load_scope(r, c[1], &s->scope) ||
            !load_set(r, c[15], &p->attrs))
            return -1;
        /* filters a whole profile can fail */
        const struct qopts *o = &r->o;
        if (o->n_sample_type) {
            bool want = false;
            for (size_t i = 0; i < o->n_sample_type && !want; i++)
                want = lb_str_eq(stype, o->sample_type[i], strlen(o->sample_type[i]));
            if (!want)
                continue;
        }
        if (r->filtered && (!has_samples || (o->has_since && tlast < o->since) ||
                            (o->has_until && tfirst >= o->until)))
            continue;
        p->resource = &s->res;
        p->scope = c[1] > 0 ? &s->scope : NULL;
        p->scope_index = (unsigned)c[2];
        if (p->scope_index != last_scope)
            idx_in_scope = 0;
        last_scope = p->scope_index;
        p->index = idx_in_scope++;
        p->sample_type = stype;
        p->sample_unit = sunit;
        p->period_type = ptype;
        p->period_unit = punit;
        p->period = c[8];
        p->time_unix_nano = (uint64_t)c[9];
        p->duration_nano = (uint64_t)c[10];
        p->profile_id = (lb_str){ sqlite3_column_blob(st, 11), (size_t)sqlite3_column_bytes(st, 11) };
        if (!p->profile_id.p)
            p->profile_id = LB_STR_NULL;
        p->dropped_attributes_count = (uint32_t)c[12];
        p->original_payload_format = fmt;
        p->original_payload = (lb_str){ sqlite3_column_blob(st, 16), (size_t)sqlite3_column_bytes(st, 16) };
        if (!p->original_payload.p)
            p->original_payload = LB_STR_NULL;
        p->original_payload_len = p->original_payload.n;
        s->prof_open = false;
        if (!r->filtered)
            open_upto(s, 2);
        unsigned kept = 0;
        int64_t sets[3] = { 0, c[15], res_set };
        if (has_samples && replay_samples(r, s, c[0], first, last, sets, &kept) != 0)
            return -1;
        if (s->prof_open)
            OTLP_EMIT(s->c, profile_end, p);
        s->prof_open = false;
    }
    return rc < 0 ? -1 : 0;
}

static int replay_resources(struct sqlite_replay *r, struct open_state *s, int64_t request_id)
{
    sqlite3_stmt *st = r->st[R_RES];
    sqlite3_bind_int64(st, 1, request_id);
    int rc, result = 0;
    /* resources are few per request: read them all before walking each */
    struct rres { int64_t id, idx, attrs, url, dropped; };
    VEC_OF(struct rres) res = { 0 };
    while ((rc = step(r, R_RES, "reading resources")) > 0) {
        struct rres x = { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                 sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                                 sqlite3_column_int64(st, 4) };
        if (!VEC_ADD(res, x)) {
            rc = qoom(&r->q);
            break;
        }
    }
    sqlite3_reset(st);
    if (rc < 0)
        result = -1;
    for (size_t i = 0; result == 0 && i < res.n; i++) {
        struct lb_resource *lr = &s->res;
        memset(lr, 0, sizeof *lr);
        lr->request = &s->req;
        lr->index = (unsigned)res.v[i].idx;
        lr->dropped_attributes_count = (uint32_t)res.v[i].dropped;
        if (!load_set(r, res.v[i].attrs, &lr->attrs) || !load_str(r, res.v[i].url, &lr->schema_url)) {
            result = -1;
            break;
        }
        s->res_open = false;
        if (!r->filtered)
            open_upto(s, 1);
        sqlite3_bind_int64(r->st[R_PROF], 1, res.v[i].id);
        result = replay_profiles(r, s, res.v[i].attrs);
        sqlite3_reset(r->st[R_PROF]);
        if (result == 0 && s->res_open)
            OTLP_EMIT(s->c, resource_end, lr);
    }
    free(res.v);
    return result;
}

static void copy_col(struct sqlite_replay *r, int64_t id, char *out, size_t len)
{
    lb_str v;
    if (!load_str(r, id, &v))
        v = LB_STR_NULL;
    snprintf(out, len, "%.*s", (int)v.n, v.p);
}

int sqlite_replay_next(struct sqlite_replay *r, struct otlp_consumer c)
{
    for (;;) {
        if (r->q.where_impossible)
            return 0;
        sqlite3_stmt *st = r->st[R_REQ];
        sqlite3_bind_int64(st, 1, r->last_request);
        int rc = step(r, R_REQ, "reading requests");
        if (rc <= 0) {
            sqlite3_reset(st);
            return rc;
        }
        struct open_state s;
        memset(&s, 0, sizeof s);
        s.c = c;
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t col[8];
        for (int i = 0; i < 8; i++)
            col[i] = sqlite3_column_int64(st, i);
        sqlite3_reset(st);
        r->last_request = id;
        copy_col(r, col[2], r->transport, sizeof r->transport);
        copy_col(r, col[3], r->peer, sizeof r->peer);
        copy_col(r, col[4], r->layout, sizeof r->layout);
        s.req = (struct lb_request){ r->transport, r->peer, r->layout, (uint64_t)col[5], (size_t)col[6],
                                     (size_t)col[7], (uint64_t)col[1] };
        if (!r->filtered)
            open_upto(&s, 0);
        if (replay_resources(r, &s, id) != 0) {
            if (s.req_open)
                OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &s.req, r->q.err);
            return -1;
        }
        if (s.req_open) {
            char why[256] = "";
            if (OTLP_EMIT(c, request_end, OTLP_SIGNAL_PROFILES, &s.req, why, sizeof why) != 0) {
                snprintf(r->q.err, sizeof r->q.err, "%s", why[0] ? why : "the request was refused");
                return -1;
            }
            return 1;
        }
    }
}

const char *sqlite_replay_error(const struct sqlite_replay *r)
{
    return r->q.err[0] ? r->q.err : "failed";
}

void sqlite_replay_close(struct sqlite_replay *r)
{
    if (!r)
        return;
    for (int i = 0; i < R_COUNT; i++) {
        sqlite3_finalize(r->st[i]);
        memo_free(&r->ix[i]);
    }
    for (size_t i = 0; i < MAX_FILTERS; i++)
        memo_free(&r->q.where_sets[i]);
    for (size_t i = 0; i < r->owned.n; i++)
        free(r->owned.v[i]);
    free(r->owned.v);
    free(r->strs.v);
    free(r->attrs.v);
    free(r->sets.v);
    free(r->maps.v);
    free(r->frames.v);
    free(r->stacks.v);
    free(r->scopes.v);
    free(r->ts);
    free(r->vals);
    buf_free(&r->q.tmp);
    if (r->q.db) {
        sqlite3_exec(r->q.db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(r->q.db);
    }
    for (size_t i = 0; i < r->o.n_where; i++)
        free((void *)r->o.where[i].key);
    free(r);
}

int sqlite_replay_open(int argc, char **argv, struct sqlite_export_opts *eo, struct sqlite_replay **out)
{
    *out = NULL;
    struct sqlite_replay *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "lazybackend export: out of memory\n");
        return 1;
    }
    r->o = (struct qopts){ .cmd = CMD_EXPORT, .name = "export", .db = SQLITE_SINK_DEFAULT_PATH };
    r->o.exp.batch = 1;
    int rc = q_parse_args(&r->o, argc, argv);
    if (rc != 0) {
        sqlite_replay_close(r);
        return rc;
    }
    *eo = r->o.exp;
    const struct qopts *o = &r->o;
    r->filtered = o->has_since || o->has_until || o->n_where || o->n_sample_type || o->n_frame_type;
    r->q.o = &r->o;
    buf_init(&r->q.tmp, SIZE_MAX);
    for (int i = 0; i < R_COUNT; i++)
        memo_init(&r->ix[i], SIZE_MAX);
    bool ok = sqlstore_open_reader(o->db, &r->q.db, r->q.err, sizeof r->q.err) == 0 &&
              sqlstore_exec(r->q.db, "BEGIN", r->q.err, sizeof r->q.err) == 0;
    for (int i = 0; ok && i < R_COUNT; i++)
        ok = q_prepare(&r->q, REPLAY_SQL[i], &r->st[i]) == 0;
    for (size_t i = 0; ok && i < o->n_where; i++)
        ok = q_load_where(&r->q, i) == 0;
    if (!ok) {
        fprintf(stderr, "lazybackend export: %s\n", sqlite_replay_error(r));
        sqlite_replay_close(r);
        return 1;
    }
    *out = r;
    return 0;
}
