/*
 * writer.c - the SQLite sink: resolved samples into the normalized schema of schema.c, one
 * transaction per request (see sqlite.h for the contract). This file holds the sink itself:
 * its prepared statements, the transaction around each request, and the events that write
 * the request, resource, profile and sample rows. The rows kept once per database are found
 * or stored by writer_dedup.c, attributes turned into rows by writer_attrs.c, the samples rows
 * written by writer_samples.c.
 *
 * The hot path is one sample: its stack and attribute set become ids, then its samples row,
 * its timestamps and values packed into it (series.c), waits for the profile's next multi-row
 * INSERT (writer_samples.c). Everything that repeats is kept away from SQL twice over: a per-request memo maps the request's own stack
 * and location indices to ids (the same stack index is the same stack within a request), and
 * bounded id caches (cache.c) map content across requests. Only content never seen by
 * this process reaches a SELECT, and only content new to the database an INSERT.
 *
 * Failure model: the first SQL error of a request marks it failed; the rest of its events are
 * ignored and request_end rolls back and reports the error, so the transport answers with an
 * error and the client retries. A rollback also forgets the cache entries created inside the
 * transaction, since their rows no longer exist.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/histogram.h"
#include "lib/log.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

/* The statements of the S_* names (internal.h), prepared once at open; the multi-row rollup
 * upserts (NULL here) are made by sq_rollup_prepare. */
static const char *const SQL[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT request",
    [S_RELEASE] = "RELEASE request",
    [S_ROLLBACK_TO] = "ROLLBACK TO request",
    [S_STR_FIND] = "SELECT id FROM strings WHERE hash=?1 AND value=?2",
    [S_STR_INS] = "INSERT INTO strings(hash, value) VALUES (?1, ?2)",
    [S_ATTR_FIND] = "SELECT id FROM attributes WHERE hash=?1 AND key_id IS ?2 AND kind=?3 AND value IS ?4 "
                    "AND unit_id IS ?5 AND encoded IS ?6",
    [S_ATTR_INS] = "INSERT INTO attributes(hash, key_id, kind, value, unit_id, encoded) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_SET_FIND] = "SELECT id FROM attribute_sets WHERE hash=?1 AND size=?2",
    [S_SET_ITEMS] = "SELECT attribute_id FROM attribute_set_items WHERE set_id=?1 ORDER BY pos",
    [S_SET_INS] = "INSERT INTO attribute_sets(hash, size) VALUES (?1, ?2)",
    [S_SET_ITEM_INS] = "INSERT INTO attribute_set_items(set_id, pos, attribute_id) VALUES (?1, ?2, ?3)",
    [S_MAP_FIND] = "SELECT id FROM mappings WHERE hash=?1 AND file_id IS ?2 AND build_id_id IS ?3 AND "
                   "build_id_kind_id IS ?4 AND memory_start=?5 AND memory_limit=?6 AND file_offset=?7 "
                   "AND attributes_id IS ?8",
    [S_MAP_INS] = "INSERT INTO mappings(hash, file_id, build_id_id, build_id_kind_id, memory_start, "
                  "memory_limit, file_offset, attributes_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_FRAME_FIND] = "SELECT id FROM frames WHERE hash=?1 AND type_id IS ?2 AND symbolized=?3 AND "
                     "function_id IS ?4 AND system_name_id IS ?5 AND file_id IS ?6 AND line=?7 AND "
                     "column=?8 AND start_line=?9 AND address=?10 AND mapping_id IS ?11 AND "
                     "attributes_id IS ?12 AND line_index=?13 AND line_count=?14",
    [S_FRAME_INS] = "INSERT INTO frames(hash, type_id, symbolized, function_id, system_name_id, file_id, "
                    "line, column, start_line, address, mapping_id, attributes_id, line_index, line_count) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [S_STACK_FIND] = "SELECT id FROM stacks WHERE hash=?1 AND depth=?2",
    [S_STACK_ITEMS] = "SELECT frame_id FROM stack_frames WHERE stack_id=?1 ORDER BY pos",
    [S_STACK_INS] = "INSERT INTO stacks(hash, depth) VALUES (?1, ?2)",
    [S_STACK_ITEM_INS] = "INSERT INTO stack_frames(stack_id, pos, frame_id) VALUES (?1, ?2, ?3)",
    [S_SCOPE_FIND] = "SELECT id FROM scopes WHERE hash=?1 AND name_id IS ?2 AND version_id IS ?3 AND "
                     "schema_url_id IS ?4 AND attributes_id IS ?5 AND dropped_attributes_count=?6",
    [S_SCOPE_INS] = "INSERT INTO scopes(hash, name_id, version_id, schema_url_id, attributes_id, "
                    "dropped_attributes_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_REQ_INS] = "INSERT INTO requests(sequence, transport_id, peer_id, layout_id, received_unix_nano, "
                  "wire_bytes, message_bytes, unknown_fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_UNKNOWN_INS] = "INSERT INTO unknown_fields(request_id, idx, path, message, field, wire_type, size, "
                      "value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_ENTITY_INS] = "INSERT INTO entity_refs(resource_id, idx, schema_url_id, type_id) VALUES (?1, ?2, ?3, ?4)",
    [S_ENTITY_KEY_INS] = "INSERT INTO entity_ref_keys(resource_id, ref_idx, description, pos, key_id) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_REQ_END] = "UPDATE requests SET resources=?2, profiles=?3, samples=?4 WHERE id=?1",
    [S_RES_INS] = "INSERT INTO resources(request_id, idx, attributes_id, schema_url_id, "
                  "dropped_attributes_count) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_PROF_INS] = "INSERT INTO profiles(resource_id, scope_id, scope_index, idx, sample_type_id, "
                   "sample_unit_id, period_type_id, period_unit_id, period, time_unix_nano, "
                   "duration_nano, profile_id, dropped_attributes_count, original_payload_format_id, "
                   "original_payload_len, attributes_id, original_payload, id, samples, first_sample_id, "
                   "last_sample_id, first_time_unix_nano, last_time_unix_nano) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                   "?18, ?19, ?20, ?21, ?22, ?23)",
    [S_PROF_MAX] = "SELECT coalesce(max(id), 0) FROM profiles",
    [S_ROLL_MINUTE] = "INSERT INTO rollup_minute VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                      "ON CONFLICT DO UPDATE SET weight = weight + excluded.weight",
    [S_ROLL_HOUR] = "INSERT INTO rollup_hour VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                    "ON CONFLICT DO UPDATE SET weight = weight + excluded.weight",
    [S_ROLL_TOTAL] = "INSERT INTO rollup_minute_totals VALUES (?1, ?2, ?3) "
                     "ON CONFLICT DO UPDATE SET weight = weight + excluded.weight",
    [S_ROLL_SETS] = "INSERT INTO rollup_minute_sets VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT DO UPDATE SET weight = weight + excluded.weight",
    [S_ROLL_TYPES] = "INSERT INTO rollup_minute_frame_types VALUES (?1, ?2, ?3, ?4) "
                     "ON CONFLICT DO UPDATE SET weight = weight + excluded.weight",
};

/* Cache sizes (the C_* caches of internal.h): slots (log2), bytes of keys, longest key kept.
 * Strings and frames are the bulk; a key longer than the limit is simply looked up in SQL
 * every time. All together they hold at most about 75 MB of keys plus 12 MB of slots. */
struct cache_size { unsigned slots_log2; size_t max_bytes, max_len; };
static const struct cache_size CACHE_SIZES[C_COUNT] = {
    [C_STR]   = { 16, 16u << 20, 4096 },
    [C_ATTR]  = { 15, 4u << 20, 1024 },
    [C_SET]   = { 14, 4u << 20, 1024 },
    [C_MAP]   = { 10, 1u << 20, 1024 },
    [C_FRAME] = { 16, 8u << 20, 128 },
    [C_STACK] = { 15, 16u << 20, 8 * 1024 },
    [C_SCOPE] = { 8, 1u << 20, 1024 },
    [C_FRAME_CONTENT] = { 16, 16u << 20, 2048 },
    [C_ATTR_CONTENT] = { 15, 8u << 20, 1024 },
};

/* The per-request memos stop growing here (a request with more distinct stacks or locations
 * still works, through the caches). */
#define MEMO_MAX ((size_t)1 << 20)
/* JSON of one array/kvlist attribute value. */
#define JSON_MAX ((size_t)16 << 20)

/* ---------- SQL plumbing ---------- */

/* Records the first failure of the request; always returns -1. */
int64_t sq_fail(struct sq *q, const char *what, const char *detail)
{
    if (!q->failed) {
        q->failed = true;
        snprintf(q->why, sizeof q->why, "%s: %s", what, detail ? detail : sqlite3_errmsg(q->db));
    }
    return -1;
}

/* Runs an INSERT or UPDATE; the new rowid, or -1. */
int64_t sq_step_write(struct sq *q, int s, const char *what)
{
    sqlite3_stmt *st = q->st[s];
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(q->db) : sq_fail(q, what, NULL);
    sqlite3_reset(st);
    return id;
}

/* Runs a lookup; the first column of the first row, 0 when none, -1 on error. */
int64_t sq_step_find(struct sq *q, int s, const char *what)
{
    sqlite3_stmt *st = q->st[s];
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : sq_fail(q, what, NULL);
    sqlite3_reset(st);
    return id;
}

/* ---------- events ---------- */

static struct sq *state(struct sink *s)
{
    return s->ctx;
}

/* Rolls the open request back to its savepoint, if one is open, keeping its batch-mates. */
static bool rollback(struct sq *q)
{
    if (!q->in_req)
        return false;
    sq_req_undo(q);
    q->rolled_back++;
    return true;
}

static void on_request_begin(struct sink *s, const struct lb_request *r)
{
    struct sq *q = state(s);
    rollback(q);   /* a request neither ended nor aborted leaves nothing */
    q->failed = false;
    q->why[0] = '\0';
    q->n_resources = q->n_profiles = q->n_samples = 0;
    memo_clear(&q->frame_memo);
    memo_clear(&q->stack_memo);
    memo_clear(&q->types_memo);   /* by stack id: a rolled-back request's ids come back */
    q->n_type_seen = 0;
    q->next_profile_id = 0;   /* a rolled-back request's ids come back */
    q->n_pend = 0;
    buf_reset(&q->pend_bytes);
    sq_attrs_seen_clear(q);
    sq_rollup_reset(q->rollup);
    q->txn++;
    if (sq_req_open(q) < 0)
        return;
    int64_t transport = sq_intern_cstr(q, r->transport), peer = sq_intern_cstr(q, r->peer),
            layout = sq_intern_cstr(q, r->layout);
    if (transport < 0 || peer < 0 || layout < 0)
        return;
    sqlite3_stmt *st = q->st[S_REQ_INS];
    sqlite3_bind_int64(st, 1, (int64_t)r->sequence);
    bind_id(st, 2, transport);
    bind_id(st, 3, peer);
    bind_id(st, 4, layout);
    sqlite3_bind_int64(st, 5, (int64_t)r->received_unix_nano);
    sqlite3_bind_int64(st, 6, (int64_t)r->wire_bytes);
    sqlite3_bind_int64(st, 7, (int64_t)r->message_bytes);
    sqlite3_bind_int64(st, 8, (int64_t)r->unknown_fields_total);
    q->request_id = sq_step_write(q, S_REQ_INS, "storing the request");
    for (size_t i = 0; q->request_id >= 0 && i < r->n_unknown_fields; i++) {
        const struct lb_unknown_field *u = &r->unknown_fields[i];
        st = q->st[S_UNKNOWN_INS];
        sqlite3_bind_int64(st, 1, q->request_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_text(st, 3, u->path.p, (int)u->path.n, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, u->message.p, (int)u->message.n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, u->number);
        sqlite3_bind_int64(st, 6, u->wire_type);
        sqlite3_bind_int64(st, 7, (int64_t)u->raw.n);
        sqlite3_bind_blob64(st, 8, u->raw.n ? u->raw.p : "", u->raw.n, SQLITE_STATIC);
        if (sq_step_write(q, S_UNKNOWN_INS, "storing an unknown field") < 0)
            return;
    }
}

/* The keys of one entity ref (description: 0 its id_keys, 1 its description_keys): 0 or -1. */
static int store_entity_keys(struct sq *q, int64_t ref, int description, const lb_str *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t key = sq_intern_str(q, keys[i]);
        if (key < 0)
            return -1;
        sqlite3_stmt *st = q->st[S_ENTITY_KEY_INS];
        sqlite3_bind_int64(st, 1, q->resource_id);
        sqlite3_bind_int64(st, 2, ref);
        sqlite3_bind_int64(st, 3, description);
        sqlite3_bind_int64(st, 4, (int64_t)i);
        bind_id(st, 5, key);
        if (sq_step_write(q, S_ENTITY_KEY_INS, "storing an entity ref key") < 0)
            return -1;
    }
    return 0;
}

/* The resource's entity refs, in order, beside its row (schema step 11). */
static void store_entity_refs(struct sq *q, const struct lb_resource *r)
{
    for (size_t i = 0; q->resource_id >= 0 && i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *er = &r->entity_refs[i];
        int64_t url = sq_intern_str(q, er->schema_url), type = sq_intern_str(q, er->type);
        if (url < 0 || type < 0)
            return;
        sqlite3_stmt *st = q->st[S_ENTITY_INS];
        sqlite3_bind_int64(st, 1, q->resource_id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        bind_id(st, 3, url);
        bind_id(st, 4, type);
        if (sq_step_write(q, S_ENTITY_INS, "storing an entity ref") < 0 ||
            store_entity_keys(q, (int64_t)i, 0, er->id_keys, er->n_id_keys) != 0 ||
            store_entity_keys(q, (int64_t)i, 1, er->description_keys, er->n_description_keys) != 0)
            return;
    }
}

static void on_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    int64_t attrs = sq_intern_attrs(q, r->attrs), url = sq_intern_str(q, r->schema_url);
    if (attrs < 0 || url < 0)
        return;
    sqlite3_stmt *st = q->st[S_RES_INS];
    sqlite3_bind_int64(st, 1, q->request_id);
    sqlite3_bind_int64(st, 2, r->index);
    bind_id(st, 3, attrs);
    bind_id(st, 4, url);
    sqlite3_bind_int64(st, 5, r->dropped_attributes_count);
    q->resource_id = sq_step_write(q, S_RES_INS, "storing a resource");
    q->resource_attrs_id = attrs;
    q->n_resources++;
    store_entity_refs(q, r);
}

/* A profile's row is written whole at its end: written at its beginning, it had to be
 * updated at its end with what its samples told (their count, first and last ids and times),
 * and that UPDATE (the row read back and rewritten, and its entry in profiles_last_time moved)
 * cost more than the INSERT. Its samples need its id before that: the id SQLite would give it
 * at its beginning, the largest id + 1 (nothing else writes profiles rows in between), found
 * once per request and counted on from there. The strings and sets it refers to are still
 * interned at its beginning, so every id is the same as before. */
static void on_profile_begin(struct sink *s, const struct lb_profile *p)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    memset(&q->prof, 0, sizeof q->prof);
    q->n_pend = 0;
    int64_t ids[7] = {
        sq_intern_scope(q, p->scope), sq_intern_str(q, p->sample_type), sq_intern_str(q, p->sample_unit),
        sq_intern_str(q, p->period_type), sq_intern_str(q, p->period_unit),
        sq_intern_str(q, p->original_payload_format), sq_intern_attrs(q, p->attrs),
    };
    for (int i = 0; i < 7; i++)
        if (ids[i] < 0)
            return;
    if (q->next_profile_id == 0) {
        int64_t max = sq_step_find(q, S_PROF_MAX, "numbering a profile");
        if (max < 0)
            return;
        q->next_profile_id = max + 1;
    }
    q->profile_id = q->next_profile_id;
    q->prof.scope_id = ids[0];
    q->prof.type_id = ids[1];
    q->prof.unit_id = ids[2];
    q->prof.period_type_id = ids[3];
    q->prof.period_unit_id = ids[4];
    q->prof.format_id = ids[5];
    q->prof.attrs_id = ids[6];
    q->n_profiles++;
}

static void note_time(struct sq *q, uint64_t t)
{
    if (!q->prof.any_time || t < q->prof.tmin)
        q->prof.tmin = t;
    if (!q->prof.any_time || t > q->prof.tmax)
        q->prof.tmax = t;
    q->prof.any_time = true;
}

static void on_sample(struct sink *s, const struct lb_sample *smp)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    int64_t stack = sq_stack_id(q, smp), attrs = stack < 0 ? -1 : sq_intern_attrs(q, smp->attrs);
    if (stack < 0 || attrs < 0)
        return;
    if (sq_sample_add(q, smp, stack, attrs) < 0 || sq_rollup_sample(q, smp, stack, attrs) < 0)
        return;
    for (size_t i = 0; i < smp->n_timestamps; i++)
        note_time(q, smp->timestamps[i]);
    if (smp->n_timestamps == 0)
        note_time(q, smp->profile->time_unix_nano);   /* where the time filters place it */
    q->prof.samples++;
    q->n_samples++;
}

static void on_profile_end(struct sink *s, const struct lb_profile *p)
{
    struct sq *q = state(s);
    if (q->failed || sq_samples_flush(q) < 0)   /* its samples' ids first */
        return;
    sqlite3_stmt *st = q->st[S_PROF_INS];
    sqlite3_bind_int64(st, 1, q->resource_id);
    bind_id(st, 2, q->prof.scope_id);
    sqlite3_bind_int64(st, 3, p->scope_index);
    sqlite3_bind_int64(st, 4, p->index);
    bind_id(st, 5, q->prof.type_id);
    bind_id(st, 6, q->prof.unit_id);
    bind_id(st, 7, q->prof.period_type_id);
    bind_id(st, 8, q->prof.period_unit_id);
    sqlite3_bind_int64(st, 9, p->period);
    sqlite3_bind_int64(st, 10, (int64_t)p->time_unix_nano);
    sqlite3_bind_int64(st, 11, (int64_t)p->duration_nano);
    bind_blob_or_null(st, 12, p->profile_id, p->profile_id.n > 0);
    sqlite3_bind_int64(st, 13, p->dropped_attributes_count);
    bind_id(st, 14, q->prof.format_id);
    sqlite3_bind_int64(st, 15, (int64_t)p->original_payload_len);
    bind_id(st, 16, q->prof.attrs_id);
    bind_blob_or_null(st, 17, p->original_payload, p->original_payload.n > 0);
    sqlite3_bind_int64(st, 18, q->profile_id);
    sqlite3_bind_int64(st, 19, (int64_t)q->prof.samples);
    bind_id(st, 20, q->prof.first_sample);
    bind_id(st, 21, q->prof.last_sample);
    if (q->prof.any_time) {
        sqlite3_bind_int64(st, 22, (int64_t)q->prof.tmin);
        sqlite3_bind_int64(st, 23, (int64_t)q->prof.tmax);
    } else {
        sqlite3_bind_null(st, 22);
        sqlite3_bind_null(st, 23);
    }
    if (sq_step_write(q, S_PROF_INS, "storing a profile") == q->profile_id)
        q->next_profile_id = q->profile_id + 1;
}

/* The request's rows join the batch; the batch is committed here when a bound is reached
 * (otherwise at the end of the loop turn, by the group commit, or at close). 0 = the request
 * may be acknowledged once its batch is committed: at once without a gate, where the commit
 * has already happened or is a bound away, and nobody is acknowledged anyway. */
static int keep_request(struct sq *q, const struct lb_request *r)
{
    if (sq_req_keep(q, r ? r->message_bytes : 0) < 0)
        return -1;
    if (!sq_batch_due(q))
        return 0;
    uint64_t samples = q->n_samples;
    if (sq_batch_commit(q) == 0)
        return 0;
    if (!q->gate)
        q->lost_samples -= samples;   /* this request is told: only its batch-mates are lost */
    return (int)sq_fail(q, "committing its batch", q->batch_why);
}

static int on_request_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    struct sq *q = state(s);
    if (!q->failed && q->in_req) {
        sqlite3_stmt *st = q->st[S_REQ_END];
        sqlite3_bind_int64(st, 1, q->request_id);
        sqlite3_bind_int64(st, 2, (int64_t)q->n_resources);
        sqlite3_bind_int64(st, 3, (int64_t)q->n_profiles);
        sqlite3_bind_int64(st, 4, (int64_t)q->n_samples);
        if (sq_step_write(q, S_REQ_END, "finishing the request") >= 0 && keep_request(q, r) == 0)
            return 0;
        if (!q->in_req) {   /* its batch was lost when committed: already counted */
            snprintf(why, whylen, "%s", q->why);
            log_warn("sqlite sink: request %" PRIu64 " failed: %s", r ? r->sequence : 0, q->why);
            return -1;
        }
    }
    if (!q->failed)
        sq_fail(q, "committing", "no transaction");
    snprintf(why, whylen, "%s", q->why);
    log_warn("sqlite sink: request %" PRIu64 " rolled back: %s", r ? r->sequence : 0, q->why);
    rollback(q);
    return -1;
}

static void on_request_abort(struct sink *s, const struct lb_request *r, const char *reason)
{
    struct sq *q = state(s);
    (void)r;
    if (rollback(q) && !reason)   /* a retraction (otlp/events.h): decoded again next, not a failure */
        q->rolled_back--;
}

static void log_cache_stats(const struct sq *q)
{
    static const char *const names[C_COUNT] = { "strings", "attributes", "attribute sets", "mappings",
                                                "frames", "stacks", "scopes", "frame contents",
                                                "attribute contents" };
    for (int c = 0; c < C_COUNT; c++) {
        struct idcache_stats cs;
        idcache_stats(q->cache[c], &cs);
        log_debug("sqlite sink: %s cache: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                  " evictions, %" PRIu64 " entries, %" PRIu64 " key bytes",
                  names[c], cs.hits, cs.misses, cs.evictions, cs.entries, cs.key_bytes);
    }
}

static void sq_free(struct sq *q)
{
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    for (int c = 0; c < C_COUNT; c++)
        idcache_free(q->cache[c]);
    memo_free(&q->frame_memo);
    memo_free(&q->stack_memo);
    sq_rollup_free(q->rollup);
    sq_rollup_free(q->batch_sums);
    sq_rollup_free(q->totals);
    sq_rollup_free(q->hours);
    sq_rollup_free(q->sets);
    sq_rollup_free(q->kinds);
    memo_free(&q->types_memo);
    memo_free(&q->sig_of);
    buf_free(&q->type_sigs);
    buf_free(&q->sig);
    free(q->type_ids);
    buf_free(&q->key);
    buf_free(&q->ckey);
    buf_free(&q->attrs_copy);
    buf_free(&q->pend_bytes);
    buf_free(&q->json);
    buf_free(&q->venc);
    buf_free(&q->ts_packed);
    buf_free(&q->vals_packed);
    free(q->ids);
    free(q->stack_ids);
    if (q->db && sqlite3_close(q->db) != SQLITE_OK)
        log_error("sqlite sink: closing the database: %s", sqlite3_errmsg(q->db));
    free(q);
}

static void on_close(struct sink *s, int deadline_ms)
{
    struct sq *q = state(s);
    (void)deadline_ms;   /* the open batch is committed now, however long it takes */
    if (!q)
        return;
    sq_gate_del(q);
    rollback(q);
    sq_batch_commit(q);
    s->counts.lost += q->lost_samples;
    log_cache_stats(q);
    log_info("sqlite sink: %" PRIu64 " requests committed, %" PRIu64 " rolled back",
             q->committed, q->rolled_back);
    sqlite3_exec(q->db, "PRAGMA optimize", NULL, NULL, NULL);
    sq_free(q);
    s->ctx = NULL;
}

static const struct sink_type sqlite_sink_type = {
    .name = "sqlite",
    .request_begin = on_request_begin,
    .resource_begin = on_resource_begin,
    .profile_begin = on_profile_begin,
    .sample = on_sample,
    .profile_end = on_profile_end,
    .request_end = on_request_end,
    .request_abort = on_request_abort,
    .close = on_close,
};

int sqlite_sink_open(struct sink *out, const struct sqlite_sink_options *o, const struct sink_env *env,
                     char *err, size_t errlen)
{
    const char *path = o && o->path ? o->path : SQLITE_SINK_DEFAULT_PATH;
    struct sq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    histogram_init(&q->commit_ns, histogram_latency_ns, histogram_latency_n);
    q->max_requests = o && o->batch_requests ? o->batch_requests : SQLITE_SINK_BATCH_REQUESTS;
    q->max_bytes = SQLITE_SINK_BATCH_BYTES;
    q->max_ns = (uint64_t)SQLITE_SINK_BATCH_MS * 1000000u;
    buf_init(&q->key, SIZE_MAX);
    buf_init(&q->ckey, SIZE_MAX);
    buf_init(&q->attrs_copy, SIZE_MAX);
    buf_init(&q->pend_bytes, SIZE_MAX);
    buf_init(&q->json, JSON_MAX);
    buf_init(&q->venc, JSON_MAX);
    buf_init(&q->ts_packed, SIZE_MAX);
    buf_init(&q->vals_packed, SIZE_MAX);
    memo_init(&q->frame_memo, MEMO_MAX);
    memo_init(&q->stack_memo, MEMO_MAX);
    memo_init(&q->types_memo, MEMO_MAX);
    memo_init(&q->sig_of, MEMO_MAX);
    buf_init(&q->type_sigs, SIZE_MAX);
    buf_init(&q->sig, SIZE_MAX);
    if (!(q->rollup = sq_rollup_new()) || !(q->batch_sums = sq_rollup_new()) || !(q->totals = sq_rollup_new()) || !(q->hours = sq_rollup_new()) ||
        !(q->sets = sq_rollup_new()) || !(q->kinds = sq_rollup_new())) {
        snprintf(err, errlen, "out of memory");
        sq_free(q);
        return -1;
    }
    const char *sync = o && o->sync == SQLITE_SINK_SYNC_NORMAL ? "NORMAL" : "FULL";
    if (sqlstore_open_writer(path, sync, &q->db, err, errlen) != 0) {
        sq_free(q);
        return -1;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (SQL[i] &&
            sqlite3_prepare_v3(q->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing \"%s\": %s", path, SQL[i], sqlite3_errmsg(q->db));
            sq_free(q);
            return -1;
        }
    }
    char why[256];
    if (sq_rollup_prepare(q, why, sizeof why) != 0 || sq_samples_prepare(q, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        sq_free(q);
        return -1;
    }
    for (int c = 0; c < C_COUNT; c++) {
        const struct cache_size *cs = &CACHE_SIZES[c];
        if (!(q->cache[c] = idcache_new(cs->slots_log2, cs->max_bytes, cs->max_len))) {
            snprintf(err, errlen, "out of memory");
            sq_free(q);
            return -1;
        }
    }
    if (sq_gate_add(q, env ? env->commit : NULL) != 0) {
        snprintf(err, errlen, "cannot join the group commit");
        sq_free(q);
        return -1;
    }
    out->type = &sqlite_sink_type;
    out->ctx = q;
    return 0;
}

int sqlite_sink_stats(const struct sink *s, struct sqlite_sink_stats *out)
{
    memset(out, 0, sizeof *out);
    if (s->type != &sqlite_sink_type || !s->ctx)
        return -1;
    const struct sq *q = s->ctx;
    out->committed = q->committed;
    out->rolled_back = q->rolled_back;
    out->commit_ns = q->commit_ns;
    return 0;
}
