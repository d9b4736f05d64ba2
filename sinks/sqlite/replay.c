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
#include <stdlib.h>
#include <string.h>

#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/replay_impl.h"
#include "sinks/replay.h"

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
    [R_SAMPLE] = "SELECT id, stack_id, attributes_id, trace_id, span_id, n_timestamps, n_values, "
                 "timestamps_packed, values_packed FROM samples "
                 "WHERE id BETWEEN ?1 AND ?2 AND profile_id = ?3 ORDER BY id",
    [R_TS] = "SELECT time_unix_nano FROM sample_timestamps WHERE sample_id = ?1 ORDER BY idx",
    [R_VAL] = "SELECT value FROM sample_values WHERE sample_id = ?1 ORDER BY idx",
    [R_STR] = "SELECT value FROM strings WHERE id = ?1",
    [R_ATTR] = "SELECT key_id, kind, value, unit_id, encoded FROM attributes WHERE id = ?1",
    [R_SET] = "SELECT attribute_id FROM attribute_set_items WHERE set_id = ?1 ORDER BY pos",
    [R_MAP] = "SELECT file_id, build_id_id, build_id_kind_id, memory_start, memory_limit, file_offset, "
              "attributes_id FROM mappings WHERE id = ?1",
    [R_FRAME] = "SELECT type_id, symbolized, function_id, system_name_id, file_id, line, column, "
                "start_line, address, mapping_id, attributes_id, line_index, line_count "
                "FROM frames WHERE id = ?1",
    [R_STACK] = "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY pos",
    [R_SCOPE] = "SELECT name_id, version_id, schema_url_id, attributes_id, dropped_attributes_count "
                "FROM scopes WHERE id = ?1",
    [R_ENT] = "SELECT idx, schema_url_id, type_id FROM entity_refs WHERE resource_id = ?1 ORDER BY idx",
    [R_ENT_KEY] = "SELECT ref_idx, description, key_id FROM entity_ref_keys WHERE resource_id = ?1 "
                  "ORDER BY ref_idx, description, pos",
};

/* ---------- filters ---------- */

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

/* The n numbers packed in column col of st (schema step 8) into *v. 0, or -1 with the error. */
static int unpack_series(struct sqlite_replay *r, sqlite3_stmt *st, int col, int64_t n, void **v, size_t *cap)
{
    const void *blob = sqlite3_column_blob(st, col);
    size_t bytes = (size_t)sqlite3_column_bytes(st, col);
    if (n < 0 || (uint64_t)n > bytes) {   /* every number takes at least one byte */
        snprintf(r->q.r->err, sizeof r->q.r->err, "reading a sample's series: %lld numbers in %zu bytes",
                 (long long)n, bytes);
        return -1;
    }
    while (*cap < (size_t)n)
        if (!rp_grow(v, *cap, cap, 8))
            return qoom(&r->q);
    if (n > 0 && sq_series_unpack(blob, bytes, *v, (size_t)n) != 0) {
        snprintf(r->q.r->err, sizeof r->q.r->err, "reading a sample's series: not %lld packed numbers",
                 (long long)n);
        return -1;
    }
    return 0;
}

/* Reads a sample's timestamps and values (packed in its R_SAMPLE row since schema step 8, in
 * their own tables before), and cuts them to the time window the way `top` weighs them: a
 * timestamp inside counts (with its value when they pair), unpaired values go with the first
 * timestamp, a sample without timestamps goes with its profile's time. 1: in the window; 0:
 * nothing of it lies inside; -1: an error. */
static int load_series(struct sqlite_replay *r, sqlite3_stmt *row, uint64_t ptime, size_t *nts, size_t *nvals)
{
    int64_t sample = sqlite3_column_int64(row, 0);
    bool packed = sqlite3_column_type(row, 7) != SQLITE_NULL || sqlite3_column_type(row, 8) != SQLITE_NULL;
    if (packed) {
        int64_t n_ts = sqlite3_column_type(row, 7) == SQLITE_NULL ? 0 : sqlite3_column_int64(row, 5);
        int64_t n_vals = sqlite3_column_type(row, 8) == SQLITE_NULL ? 0 : sqlite3_column_int64(row, 6);
        if (unpack_series(r, row, 7, n_ts, (void **)&r->ts, &r->ts_cap) != 0 ||
            unpack_series(r, row, 8, n_vals, (void **)&r->vals, &r->vals_cap) != 0)
            return -1;
        *nts = (size_t)n_ts;
        *nvals = (size_t)n_vals;
    }
    for (int s = R_TS; !packed && s <= R_VAL; s++) {
        sqlite3_stmt *st = r->st[s];
        size_t n = 0;
        int rc;
        sqlite3_bind_int64(st, 1, sample);
        while ((rc = rp_step(r, s, "reading a sample's series")) > 0) {
            size_t *cap = s == R_TS ? &r->ts_cap : &r->vals_cap;
            void **v = s == R_TS ? (void **)&r->ts : (void **)&r->vals;
            if (n == *cap && !rp_grow(v, n, cap, 8)) {
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
    return replay_cut_series(&r->o, ptime, r->ts, nts, r->vals, nvals);
}

/* ---------- one stored request ---------- */

static int replay_samples(struct sqlite_replay *r, struct replay_emit *s, int64_t prof_id, int64_t first,
                          int64_t last, const int64_t sets[3], unsigned *n_kept)
{
    sqlite3_stmt *st = r->st[R_SAMPLE];
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, last);
    sqlite3_bind_int64(st, 3, prof_id);
    int rc;
    int result = 0;
    while (result == 0 && (rc = rp_step(r, R_SAMPLE, "reading samples")) > 0) {
        int64_t all[3] = { sqlite3_column_int64(st, 2), sets[1], sets[2] };
        if (!in_where(r, all))
            continue;
        struct rstack stack;
        if (!rp_load_stack(r, sqlite3_column_int64(st, 1), &stack)) {
            result = -1;
            break;
        }
        if (!stack.type_ok)
            continue;
        size_t nts = 0, nvals = 0;
        int in = load_series(r, st, s->prof.time_unix_nano, &nts, &nvals);
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
        if (!rp_load_set(r, all[0], &smp.attrs)) {
            result = -1;
            break;
        }
        replay_sample(s, &smp);
    }
    sqlite3_reset(st);
    return result;
}

/* The profiles of one resource; statement R_PROF is reset by the caller. */
static int replay_profiles(struct sqlite_replay *r, struct replay_emit *s, int64_t res_set)
{
    sqlite3_stmt *st = r->st[R_PROF];
    int rc;
    unsigned idx_in_scope = 0, last_scope = UINT32_MAX;
    while ((rc = rp_step(r, R_PROF, "reading profiles")) > 0) {
        int64_t c[16];
        for (int i = 0; i < 16; i++)
            c[i] = sqlite3_column_int64(st, i);
        int64_t first = sqlite3_column_int64(st, 17), last = sqlite3_column_int64(st, 18);
        int64_t tfirst = sqlite3_column_int64(st, 19), tlast = sqlite3_column_int64(st, 20);
        bool has_samples = sqlite3_column_type(st, 17) != SQLITE_NULL;
        struct lb_profile *p = &s->prof;
        memset(p, 0, sizeof *p);
        lb_str stype, sunit, ptype, punit, fmt;
        if (!rp_load_str(r, c[4], &stype) || !rp_load_str(r, c[5], &sunit) || !rp_load_str(r, c[6], &ptype) ||
            !rp_load_str(r, c[7], &punit) || !rp_load_str(r, c[13], &fmt) || !rp_load_scope(r, c[1], &s->scope) ||
            !rp_load_set(r, c[15], &p->attrs))
            return -1;
        /* filters a whole profile can fail */
        const struct qopts *o = &r->o;
        if (!replay_sample_type_wanted(o, stype))
            continue;
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
            replay_open_upto(s, REPLAY_PROFILE);
        unsigned kept = 0;
        int64_t sets[3] = { 0, c[15], res_set };
        if (has_samples && replay_samples(r, s, c[0], first, last, sets, &kept) != 0)
            return -1;
        replay_profile_end(s);
    }
    return rc < 0 ? -1 : 0;
}

static int replay_resources(struct sqlite_replay *r, struct replay_emit *s, int64_t request_id)
{
    sqlite3_stmt *st = r->st[R_RES];
    sqlite3_bind_int64(st, 1, request_id);
    int rc, result = 0;
    /* resources are few per request: read them all before walking each */
    struct rres { int64_t id, idx, attrs, url, dropped; };
    VEC_OF(struct rres) res = { 0 };
    while ((rc = rp_step(r, R_RES, "reading resources")) > 0) {
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
        if (!rp_load_set(r, res.v[i].attrs, &lr->attrs) || !rp_load_str(r, res.v[i].url, &lr->schema_url) ||
            !rp_load_entity_refs(r, res.v[i].id, lr)) {
            result = -1;
            break;
        }
        s->res_open = false;
        if (!r->filtered)
            replay_open_upto(s, REPLAY_RESOURCE);
        sqlite3_bind_int64(r->st[R_PROF], 1, res.v[i].id);
        result = replay_profiles(r, s, res.v[i].attrs);
        sqlite3_reset(r->st[R_PROF]);
        if (result == 0)
            replay_resource_end(s);
    }
    free(res.v);
    return result;
}

static void copy_col(struct sqlite_replay *r, int64_t id, char *out, size_t len)
{
    lb_str v;
    if (!rp_load_str(r, id, &v))
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
        int rc = rp_step(r, R_REQ, "reading requests");
        if (rc <= 0) {
            sqlite3_reset(st);
            return rc;
        }
        struct replay_emit s;
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
            replay_open_upto(&s, REPLAY_REQUEST);
        if (replay_resources(r, &s, id) != 0) {
            if (s.req_open)
                OTLP_EMIT(c, request_abort, OTLP_SIGNAL_PROFILES, &s.req, r->res.err);
            return -1;
        }
        int ended = replay_request_end(&s, r->res.err, sizeof r->res.err);
        if (ended != 0)
            return ended;
    }
}

const char *sqlite_replay_error(const struct sqlite_replay *r)
{
    return r->res.err[0] ? r->res.err : "failed";
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
    free(r->erefs.v);
    free(r->eidx.v);
    free(r->ekeys.v);
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

int sqlite_replay_open(struct qopts *opts, struct sqlite_replay **out)
{
    *out = NULL;
    struct sqlite_replay *r = calloc(1, sizeof *r);
    if (!r) {
        q_free_args(opts);
        fprintf(stderr, "lazybackend export: out of memory\n");
        return 1;
    }
    r->o = *opts;   /* owns the --where keys from here */
    if (!r->o.db)
        r->o.db = SQLITE_SINK_DEFAULT_PATH;
    const struct qopts *o = &r->o;
    r->filtered = replay_filtered(o);
    r->q.o = &r->o;
    r->q.r = &r->res;
    buf_init(&r->q.tmp, SIZE_MAX);
    for (int i = 0; i < R_COUNT; i++)
        memo_init(&r->ix[i], SIZE_MAX);
    bool ok = sqlstore_open_reader(o->db, &r->q.db, r->res.err, sizeof r->res.err) == 0 &&
              sqlstore_exec(r->q.db, "BEGIN", r->res.err, sizeof r->res.err) == 0;
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
