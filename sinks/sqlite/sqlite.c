/*
 * sqlite.c - the SQLite sink: resolved samples into the normalized schema of
 * schema.c, one transaction per request (see sqlite.h for the contract).
 *
 * The hot path is one sample: its stack and attribute set become ids, then one samples row
 * and one row per timestamp and value are inserted with prepared statements. Everything that
 * repeats is kept away from SQL twice over: a per-request memo maps the request's own stack
 * and location indices to ids (the same stack index is the same stack within a request), and
 * bounded id caches (cache.c) map content across requests. Only content never seen by
 * this process reaches a SELECT, and only content new to the database an INSERT.
 *
 * Failure model: the first SQL error of a request marks it failed; the rest of its events are
 * ignored and request_end rolls back and reports the error, so the transport answers with an
 * error and the client retries. A rollback also forgets the cache entries created inside the
 * transaction, since their rows no longer exist.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

/* Prepared statements, all made at open. Lookups bind ?1 = hash and the content after it,
 * inserts the same parameters in the same order, so one binder serves both. */
enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK,
    S_STR_FIND, S_STR_INS,
    S_ATTR_FIND, S_ATTR_INS,
    S_SET_FIND, S_SET_ITEMS, S_SET_INS, S_SET_ITEM_INS,
    S_MAP_FIND, S_MAP_INS,
    S_FRAME_FIND, S_FRAME_INS,
    S_STACK_FIND, S_STACK_ITEMS, S_STACK_INS, S_STACK_ITEM_INS,
    S_SCOPE_FIND, S_SCOPE_INS,
    S_REQ_INS, S_REQ_END, S_RES_INS, S_PROF_INS, S_PROF_END,
    S_SAMPLE_INS, S_TS_INS, S_VAL_INS,
    S_COUNT
};

static const char *const SQL[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_STR_FIND] = "SELECT id FROM strings WHERE hash=?1 AND value=?2",
    [S_STR_INS] = "INSERT INTO strings(hash, value) VALUES (?1, ?2)",
    [S_ATTR_FIND] = "SELECT id FROM attributes WHERE hash=?1 AND key_id IS ?2 AND kind=?3 AND value IS ?4 AND unit_id IS ?5",
    [S_ATTR_INS] = "INSERT INTO attributes(hash, key_id, kind, value, unit_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_SET_FIND] = "SELECT id FROM attribute_sets WHERE hash=?1 AND size=?2",
    [S_SET_ITEMS] = "SELECT attribute_id FROM attribute_set_items WHERE set_id=?1 ORDER BY pos",
    [S_SET_INS] = "INSERT INTO attribute_sets(hash, size) VALUES (?1, ?2)",
    [S_SET_ITEM_INS] = "INSERT INTO attribute_set_items(set_id, pos, attribute_id) VALUES (?1, ?2, ?3)",
    [S_MAP_FIND] = "SELECT id FROM mappings WHERE hash=?1 AND file_id IS ?2 AND build_id_id IS ?3 AND "
                   "build_id_kind_id IS ?4 AND memory_start=?5 AND memory_limit=?6 AND file_offset=?7",
    [S_MAP_INS] = "INSERT INTO mappings(hash, file_id, build_id_id, build_id_kind_id, memory_start, "
                  "memory_limit, file_offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_FRAME_FIND] = "SELECT id FROM frames WHERE hash=?1 AND type_id IS ?2 AND symbolized=?3 AND "
                     "function_id IS ?4 AND system_name_id IS ?5 AND file_id IS ?6 AND line=?7 AND "
                     "column=?8 AND start_line=?9 AND address=?10 AND mapping_id IS ?11",
    [S_FRAME_INS] = "INSERT INTO frames(hash, type_id, symbolized, function_id, system_name_id, file_id, "
                    "line, column, start_line, address, mapping_id) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_STACK_FIND] = "SELECT id FROM stacks WHERE hash=?1 AND depth=?2",
    [S_STACK_ITEMS] = "SELECT frame_id FROM stack_frames WHERE stack_id=?1 ORDER BY pos",
    [S_STACK_INS] = "INSERT INTO stacks(hash, depth) VALUES (?1, ?2)",
    [S_STACK_ITEM_INS] = "INSERT INTO stack_frames(stack_id, pos, frame_id) VALUES (?1, ?2, ?3)",
    [S_SCOPE_FIND] = "SELECT id FROM scopes WHERE hash=?1 AND name_id IS ?2 AND version_id IS ?3 AND "
                     "schema_url_id IS ?4 AND attributes_id IS ?5 AND dropped_attributes_count=?6",
    [S_SCOPE_INS] = "INSERT INTO scopes(hash, name_id, version_id, schema_url_id, attributes_id, "
                    "dropped_attributes_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_REQ_INS] = "INSERT INTO requests(sequence, transport_id, peer_id, layout_id, received_unix_nano, "
                  "wire_bytes, message_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_REQ_END] = "UPDATE requests SET resources=?2, profiles=?3, samples=?4 WHERE id=?1",
    [S_RES_INS] = "INSERT INTO resources(request_id, idx, attributes_id, schema_url_id, "
                  "dropped_attributes_count) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_PROF_INS] = "INSERT INTO profiles(resource_id, scope_id, scope_index, idx, sample_type_id, "
                   "sample_unit_id, period_type_id, period_unit_id, period, time_unix_nano, "
                   "duration_nano, profile_id, dropped_attributes_count, original_payload_format_id, "
                   "original_payload_len, attributes_id) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [S_PROF_END] = "UPDATE profiles SET samples=?2, first_sample_id=?3, last_sample_id=?4, "
                   "first_time_unix_nano=?5, last_time_unix_nano=?6 WHERE id=?1",
    [S_SAMPLE_INS] = "INSERT INTO samples(profile_id, idx, stack_id, attributes_id, n_timestamps, "
                     "n_values, weight, trace_id, span_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_TS_INS] = "INSERT INTO sample_timestamps(sample_id, idx, time_unix_nano) VALUES (?1, ?2, ?3)",
    [S_VAL_INS] = "INSERT INTO sample_values(sample_id, idx, value) VALUES (?1, ?2, ?3)",
};

/* Cache sizes: slots (log2), bytes of keys, longest key kept. Strings and frames are the
 * bulk; a key longer than the limit is simply looked up in SQL every time. All together they
 * hold at most about 75 MB of keys plus 12 MB of slots. */
struct cache_size { unsigned slots_log2; size_t max_bytes, max_len; };
/* C_FRAME_CONTENT and C_ATTR_CONTENT key a whole frame or attribute by its bytes, so a repeated
 * one costs one lookup instead of one per string in it plus one for the row. */
enum { C_STR, C_ATTR, C_SET, C_MAP, C_FRAME, C_STACK, C_SCOPE, C_FRAME_CONTENT, C_ATTR_CONTENT, C_COUNT };
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
/* The longest stack the id scratch holds: the decoder's own limit bounds it first. */
#define MAX_IDS ((size_t)1 << 24)

enum attr_kind { K_EMPTY, K_STRING, K_INT, K_DOUBLE, K_BOOL, K_BYTES, K_ARRAY, K_KVLIST };
static const char *const KIND_NAME[] = {
    [K_EMPTY] = "empty", [K_STRING] = "string", [K_INT] = "int", [K_DOUBLE] = "double",
    [K_BOOL] = "bool", [K_BYTES] = "bytes", [K_ARRAY] = "array", [K_KVLIST] = "kvlist",
};

struct sq {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    struct idcache *cache[C_COUNT];
    struct memo frame_memo, stack_memo;
    struct buf key;          /* a canonical key being built */
    struct buf ckey;         /* a content key (C_*_CONTENT), kept across the slow path */
    struct buf json;         /* an attribute value rendered as JSON */
    int64_t *ids;            /* frame ids of a stack, attribute ids of a set */
    size_t ids_cap;
    uint64_t txn;            /* numbers this sink's transactions, for idcache_drop_txn */
    bool in_txn, failed;
    char why[512];
    int64_t request_id, resource_id, profile_id;
    uint64_t n_resources, n_profiles, n_samples;
    struct {
        uint64_t samples;
        int64_t first_sample, last_sample;
        bool any_time;
        uint64_t tmin, tmax;
    } prof;
    uint64_t committed, rolled_back;
};

/* ---------- SQL plumbing ---------- */

/* Records the first failure of the request; always returns -1. */
static int64_t fail(struct sq *q, const char *what, const char *detail)
{
    if (!q->failed) {
        q->failed = true;
        snprintf(q->why, sizeof q->why, "%s: %s", what, detail ? detail : sqlite3_errmsg(q->db));
    }
    return -1;
}

static void bind_id(sqlite3_stmt *st, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(st, i, id);
    else
        sqlite3_bind_null(st, i);
}

static void bind_text(sqlite3_stmt *st, int i, lb_str s)
{
    sqlite3_bind_text64(st, i, s.n ? s.p : "", s.n, SQLITE_STATIC, SQLITE_UTF8);
}

static void bind_blob_or_null(sqlite3_stmt *st, int i, lb_str s, bool present)
{
    if (present)
        sqlite3_bind_blob64(st, i, s.n ? s.p : "", s.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Runs an INSERT or UPDATE; the new rowid, or -1. */
static int64_t step_write(struct sq *q, int s, const char *what)
{
    sqlite3_stmt *st = q->st[s];
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(q->db) : fail(q, what, NULL);
    sqlite3_reset(st);
    return id;
}

/* Runs a lookup; the first column of the first row, 0 when none, -1 on error. */
static int64_t step_find(struct sq *q, int s, const char *what)
{
    sqlite3_stmt *st = q->st[s];
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : fail(q, what, NULL);
    sqlite3_reset(st);
    return id;
}

/* ---------- canonical keys ---------- */

static bool key_u64(struct buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return buf_append(b, t, 8);
}

static bool key_str(struct buf *b, lb_str s)
{
    return key_u64(b, s.n) && buf_append(b, s.p, s.n);
}

static bool ids_reserve(struct sq *q, size_t n)
{
    if (n <= q->ids_cap)
        return true;
    if (n > MAX_IDS)
        return false;
    size_t cap = q->ids_cap ? q->ids_cap : 64;
    while (cap < n)
        cap *= 2;
    int64_t *p = realloc(q->ids, cap * sizeof *p);
    if (!p)
        return false;
    q->ids = p;
    q->ids_cap = cap;
    return true;
}

/* ---------- strings ---------- */

/* The id of a string, 0 for the empty string, -1 on error. */
static int64_t intern_str(struct sq *q, lb_str s)
{
    if (s.n == 0)
        return 0;
    uint64_t h = sqlstore_hash(s.p, s.n);
    int64_t id = idcache_get(q->cache[C_STR], h, s.p, s.n);
    if (id)
        return id;
    sqlite3_bind_int64(q->st[S_STR_FIND], 1, (int64_t)h);
    bind_text(q->st[S_STR_FIND], 2, s);
    id = step_find(q, S_STR_FIND, "looking up a string");
    if (id == 0) {
        sqlite3_bind_int64(q->st[S_STR_INS], 1, (int64_t)h);
        bind_text(q->st[S_STR_INS], 2, s);
        id = step_write(q, S_STR_INS, "storing a string");
    }
    if (id > 0)
        idcache_put(q->cache[C_STR], h, s.p, s.n, id, q->txn);
    return id;
}

static int64_t intern_cstr(struct sq *q, const char *s)
{
    return intern_str(q, (lb_str){ s ? s : "", s ? strlen(s) : 0 });
}

/* ---------- tuples: mappings, frames, scopes ---------- */

/* A row of fixed integer columns. `nullable` has bit i set when v[i] is an id (0 = NULL). */
struct tuple {
    int64_t v[10];
    unsigned n;
    unsigned nullable;
};

static void bind_tuple(sqlite3_stmt *st, uint64_t h, const struct tuple *t)
{
    sqlite3_bind_int64(st, 1, (int64_t)h);
    for (unsigned i = 0; i < t->n; i++) {
        if (t->nullable & (1u << i))
            bind_id(st, (int)i + 2, t->v[i]);
        else
            sqlite3_bind_int64(st, (int)i + 2, t->v[i]);
    }
}

static int64_t intern_tuple(struct sq *q, int cache, int find, int ins, const struct tuple *t,
                            const char *what)
{
    buf_reset(&q->key);
    for (unsigned i = 0; i < t->n; i++)
        if (!key_u64(&q->key, (uint64_t)t->v[i]))
            return fail(q, what, "out of memory");
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[cache], h, q->key.data, q->key.len);
    if (id)
        return id;
    bind_tuple(q->st[find], h, t);
    id = step_find(q, find, what);
    if (id == 0) {
        bind_tuple(q->st[ins], h, t);
        id = step_write(q, ins, what);
    }
    if (id > 0)
        idcache_put(q->cache[cache], h, q->key.data, q->key.len, id, q->txn);
    return id;
}

static int64_t intern_mapping(struct sq *q, const struct lb_frame *f)
{
    int64_t file = intern_str(q, f->mapping_file);
    int64_t build = intern_str(q, f->build_id);
    int64_t kind = intern_str(q, f->build_id_kind);
    if (file < 0 || build < 0 || kind < 0)
        return -1;
    struct tuple t = { { file, build, kind, (int64_t)f->mapping_start, (int64_t)f->mapping_limit,
                         (int64_t)f->mapping_offset }, 6, 0x7 };
    return intern_tuple(q, C_MAP, S_MAP_FIND, S_MAP_INS, &t, "storing a mapping");
}

static int64_t intern_frame(struct sq *q, const struct lb_frame *f)
{
    int64_t type = intern_str(q, f->type);
    int64_t fn = intern_str(q, f->function);
    int64_t sys = intern_str(q, f->system_name);
    int64_t file = intern_str(q, f->file);
    int64_t map = f->has_mapping ? intern_mapping(q, f) : 0;
    if (type < 0 || fn < 0 || sys < 0 || file < 0 || map < 0)
        return -1;
    struct tuple t = { { type, f->symbolized, fn, sys, file, f->line, f->column, f->start_line,
                         (int64_t)f->address, map }, 10, 0x1 | 0x4 | 0x8 | 0x10 | 0x200 };
    return intern_tuple(q, C_FRAME, S_FRAME_FIND, S_FRAME_INS, &t, "storing a frame");
}

/* ---------- lists: stacks, attribute sets ---------- */

struct list_kind {
    int cache, find, items, ins, item_ins;
    const char *what;
};

static const struct list_kind STACKS = { C_STACK, S_STACK_FIND, S_STACK_ITEMS, S_STACK_INS, S_STACK_ITEM_INS, "storing a stack" };
static const struct list_kind SETS = { C_SET, S_SET_FIND, S_SET_ITEMS, S_SET_INS, S_SET_ITEM_INS, "storing an attribute set" };

/* Is the stored list `id` exactly ids[0..n)? 1 yes, 0 no, -1 error. */
static int list_equals(struct sq *q, const struct list_kind *k, int64_t id, const int64_t *ids, size_t n)
{
    sqlite3_stmt *st = q->st[k->items];
    sqlite3_bind_int64(st, 1, id);
    size_t i = 0;
    int rc, same = 1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (i >= n || sqlite3_column_int64(st, 0) != ids[i]) {
            same = 0;
            break;
        }
        i++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        same = (int)fail(q, k->what, NULL);
    else if (same && i != n)
        same = 0;
    sqlite3_reset(st);
    return same;
}

/* Candidates share hash and length; the first whose items match is the one. */
static int64_t find_list(struct sq *q, const struct list_kind *k, uint64_t h, const int64_t *ids, size_t n)
{
    sqlite3_stmt *st = q->st[k->find];
    sqlite3_bind_int64(st, 1, (int64_t)h);
    sqlite3_bind_int64(st, 2, (int64_t)n);
    int64_t found = 0;
    int rc;
    while (found == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cand = sqlite3_column_int64(st, 0);
        int eq = list_equals(q, k, cand, ids, n);
        if (eq < 0)
            found = -1;
        else if (eq)
            found = cand;
    }
    if (found == 0 && rc != SQLITE_DONE)
        found = fail(q, k->what, NULL);
    sqlite3_reset(st);
    return found;
}

static int64_t insert_list(struct sq *q, const struct list_kind *k, uint64_t h, const int64_t *ids, size_t n)
{
    sqlite3_bind_int64(q->st[k->ins], 1, (int64_t)h);
    sqlite3_bind_int64(q->st[k->ins], 2, (int64_t)n);
    int64_t id = step_write(q, k->ins, k->what);
    for (size_t i = 0; id > 0 && i < n; i++) {
        sqlite3_stmt *st = q->st[k->item_ins];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, ids[i]);
        if (step_write(q, k->item_ins, k->what) < 0)
            id = -1;
    }
    return id;
}

static int64_t intern_list(struct sq *q, const struct list_kind *k, const int64_t *ids, size_t n)
{
    buf_reset(&q->key);
    for (size_t i = 0; i < n; i++)
        if (!key_u64(&q->key, (uint64_t)ids[i]))
            return fail(q, k->what, "out of memory");
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[k->cache], h, q->key.data, q->key.len);
    if (id)
        return id;
    id = find_list(q, k, h, ids, n);
    if (id == 0)
        id = insert_list(q, k, h, ids, n);
    if (id > 0) {
        /* find/insert did not touch the key buffer */
        idcache_put(q->cache[k->cache], h, q->key.data, q->key.len, id, q->txn);
    }
    return id;
}

/* ---------- attributes ---------- */

static bool json_value(struct buf *b, const struct lb_value *v);

/* JSON has no NaN or infinities: their names are stored as strings. */
static bool json_double(struct buf *b, double d)
{
    char t[NUMFMT_DOUBLE_MAX];
    size_t n = numfmt_double(t, d);
    if (isfinite(d))
        return buf_append(b, t, n);
    return buf_putc(b, '"') && buf_append(b, t, n) && buf_putc(b, '"');
}

static bool json_hex(struct buf *b, lb_str s)
{
    if (!buf_putc(b, '"'))
        return false;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = (uint8_t)s.p[i];
        if (!buf_putc(b, "0123456789abcdef"[c >> 4]) || !buf_putc(b, "0123456789abcdef"[c & 15]))
            return false;
    }
    return buf_putc(b, '"');
}

/* A walk cut short (malformed or too deep) leaves a marker element, keeping the JSON valid. */
static bool json_container(struct buf *b, const struct lb_value *v)
{
    bool kv = v->kind == LB_VALUE_KVLIST, first = true, ok = buf_putc(b, kv ? '{' : '[');
    struct lb_value_iter it;
    struct lb_value e;
    lb_str key;
    lb_value_iter_init(&it, v);
    while (ok && (kv ? lb_kvlist_next(&it, &key, &e) : lb_array_next(&it, &e))) {
        ok = (first || buf_putc(b, ',')) && (!kv || (esc_json_quoted(b, key.p, key.n) && buf_putc(b, ':'))) &&
             json_value(b, &e);
        first = false;
    }
    if (ok && it.err) {
        ok = (first || buf_putc(b, ',')) && buf_append(b, "\"\xe2\x80\xa6", 4) &&
             esc_json(b, it.err, strlen(it.err)) && buf_putc(b, '"') &&
             (!kv || buf_append(b, ":null", 5));
    }
    return ok && buf_putc(b, kv ? '}' : ']');
}

static bool json_value(struct buf *b, const struct lb_value *v)
{
    switch (v->kind) {
    case LB_VALUE_STRING: return esc_json_quoted(b, v->u.str.p, v->u.str.n);
    case LB_VALUE_BOOL:   return v->u.boolean ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    case LB_VALUE_INT:    return buf_printf(b, "%" PRId64, v->u.integer);
    case LB_VALUE_DOUBLE: return json_double(b, v->u.dbl);
    case LB_VALUE_BYTES:  return json_hex(b, v->u.str);
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST: return json_container(b, v);
    case LB_VALUE_EMPTY:
    default:              return buf_append(b, "null", 4);
    }
}

/* Binds ?4 (value) of the attribute statements and appends the value to the key. */
static int attr_value(struct sq *q, const struct lb_value *v, enum attr_kind *kind, int64_t *str_id)
{
    *str_id = 0;
    switch (v->kind) {
    case LB_VALUE_STRING: *kind = K_STRING; *str_id = intern_str(q, v->u.str); break;
    case LB_VALUE_BOOL:   *kind = K_BOOL; break;
    case LB_VALUE_INT:    *kind = K_INT; break;
    case LB_VALUE_DOUBLE: *kind = K_DOUBLE; break;
    case LB_VALUE_BYTES:  *kind = K_BYTES; break;
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST:
        *kind = v->kind == LB_VALUE_ARRAY ? K_ARRAY : K_KVLIST;
        buf_reset(&q->json);
        if (!json_value(&q->json, v))
            return (int)fail(q, "storing an attribute", "array or kvlist value over 16 MiB as JSON");
        *str_id = intern_str(q, (lb_str){ (const char *)q->json.data, q->json.len });
        break;
    case LB_VALUE_EMPTY:
    default:              *kind = K_EMPTY; break;
    }
    return *str_id < 0 ? -1 : 0;
}

static void bind_attr(struct sq *q, int s, uint64_t h, int64_t key_id, enum attr_kind kind,
                      int64_t str_id, const struct lb_value *v, int64_t unit_id)
{
    sqlite3_stmt *st = q->st[s];
    sqlite3_bind_int64(st, 1, (int64_t)h);
    bind_id(st, 2, key_id);
    sqlite3_bind_text(st, 3, KIND_NAME[kind], -1, SQLITE_STATIC);
    switch (kind) {
    case K_STRING: case K_ARRAY: case K_KVLIST: bind_id(st, 4, str_id); break;
    case K_BOOL:   sqlite3_bind_int64(st, 4, v->u.boolean); break;
    case K_INT:    sqlite3_bind_int64(st, 4, v->u.integer); break;
    case K_DOUBLE: sqlite3_bind_double(st, 4, v->u.dbl); break;   /* NaN is stored as NULL */
    case K_BYTES:  bind_blob_or_null(st, 4, v->u.str, true); break;
    case K_EMPTY:  sqlite3_bind_null(st, 4); break;
    }
    bind_id(st, 5, unit_id);
}

/* Canonical key: key id, kind, unit id, then the value (8 bytes, or the raw bytes). */
static bool attr_key(struct sq *q, int64_t key_id, enum attr_kind kind, int64_t unit_id,
                     int64_t str_id, const struct lb_value *v)
{
    struct buf *b = &q->key;
    uint64_t bits = 0;
    buf_reset(b);
    if (!key_u64(b, (uint64_t)key_id) || !key_u64(b, kind) || !key_u64(b, (uint64_t)unit_id))
        return false;
    switch (kind) {
    case K_STRING: case K_ARRAY: case K_KVLIST: return key_u64(b, (uint64_t)str_id);
    case K_BOOL:   return key_u64(b, v->u.boolean);
    case K_INT:    return key_u64(b, (uint64_t)v->u.integer);
    case K_DOUBLE:
        if (!isnan(v->u.dbl))      /* every NaN is one NULL in the table, and one key here */
            memcpy(&bits, &v->u.dbl, sizeof bits);
        return key_u64(b, bits);
    case K_BYTES:  return buf_append(b, v->u.str.p, v->u.str.n);
    case K_EMPTY:  return true;
    }
    return true;
}

static int64_t intern_attr(struct sq *q, const struct lb_attr *a)
{
    enum attr_kind kind;
    int64_t str_id, key_id = intern_str(q, a->key), unit_id = intern_str(q, a->unit);
    if (key_id < 0 || unit_id < 0 || attr_value(q, &a->value, &kind, &str_id) < 0)
        return -1;
    if (!attr_key(q, key_id, kind, unit_id, str_id, &a->value))
        return fail(q, "storing an attribute", "out of memory");
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[C_ATTR], h, q->key.data, q->key.len);
    if (id)
        return id;
    bind_attr(q, S_ATTR_FIND, h, key_id, kind, str_id, &a->value, unit_id);
    id = step_find(q, S_ATTR_FIND, "looking up an attribute");
    if (id == 0) {
        bind_attr(q, S_ATTR_INS, h, key_id, kind, str_id, &a->value, unit_id);
        id = step_write(q, S_ATTR_INS, "storing an attribute");
    }
    if (id > 0)
        idcache_put(q->cache[C_ATTR], h, q->key.data, q->key.len, id, q->txn);
    return id;
}

/* An attribute as bytes, for scalar values only: arrays and kvlists are kept encoded, and
 * their encoding refers to the request's own string table, so equal bytes are not equal
 * content across requests. False for those (and when out of memory): they take the slow path. */
static bool attr_content_key(struct buf *b, const struct lb_attr *a)
{
    const struct lb_value *v = &a->value;
    uint64_t bits = 0;
    buf_reset(b);
    if (v->kind == LB_VALUE_ARRAY || v->kind == LB_VALUE_KVLIST)
        return false;
    if (!key_str(b, a->key) || !key_str(b, a->unit) || !key_u64(b, v->kind))
        return false;
    switch (v->kind) {
    case LB_VALUE_STRING: case LB_VALUE_BYTES: return key_str(b, v->u.str);
    case LB_VALUE_BOOL: return key_u64(b, v->u.boolean);
    case LB_VALUE_INT: return key_u64(b, (uint64_t)v->u.integer);
    case LB_VALUE_DOUBLE:
        if (!isnan(v->u.dbl))
            memcpy(&bits, &v->u.dbl, sizeof bits);
        return key_u64(b, bits);
    default: return true;
    }
}

static int64_t attr_id(struct sq *q, const struct lb_attr *a)
{
    if (!attr_content_key(&q->ckey, a))
        return intern_attr(q, a);
    uint64_t h = sqlstore_hash(q->ckey.data, q->ckey.len);
    int64_t id = idcache_get(q->cache[C_ATTR_CONTENT], h, q->ckey.data, q->ckey.len);
    if (!id && (id = intern_attr(q, a)) > 0)
        idcache_put(q->cache[C_ATTR_CONTENT], h, q->ckey.data, q->ckey.len, id, q->txn);
    return id;
}

/* The id of a set of attributes in wire order, 0 for none, -1 on error. */
static int64_t intern_attrs(struct sq *q, struct lb_attrs attrs)
{
    if (attrs.n == 0)
        return 0;
    if (!ids_reserve(q, attrs.n))
        return fail(q, "storing attributes", "too many attributes");
    for (size_t i = 0; i < attrs.n; i++) {
        int64_t id = attr_id(q, &attrs.v[i]);
        if (id < 0)
            return -1;
        q->ids[i] = id;
    }
    return intern_list(q, &SETS, q->ids, attrs.n);
}

/* ---------- events ---------- */

static struct sq *state(struct sink *s)
{
    return s->ctx;
}

/* Ends the open transaction, if any, without keeping anything. */
static void rollback(struct sq *q)
{
    if (!q->in_txn)
        return;
    q->in_txn = false;
    /* SQLite may have rolled back by itself (disk full, I/O error) */
    if (!sqlite3_get_autocommit(q->db)) {
        sqlite3_step(q->st[S_ROLLBACK]);
        sqlite3_reset(q->st[S_ROLLBACK]);
    }
    for (int c = 0; c < C_COUNT; c++)
        idcache_drop_txn(q->cache[c], q->txn);
    q->rolled_back++;
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
    q->txn++;
    if (step_write(q, S_BEGIN, "starting a transaction") < 0)
        return;
    q->in_txn = true;
    int64_t transport = intern_cstr(q, r->transport), peer = intern_cstr(q, r->peer),
            layout = intern_cstr(q, r->layout);
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
    q->request_id = step_write(q, S_REQ_INS, "storing the request");
}

static void on_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    int64_t attrs = intern_attrs(q, r->attrs), url = intern_str(q, r->schema_url);
    if (attrs < 0 || url < 0)
        return;
    sqlite3_stmt *st = q->st[S_RES_INS];
    sqlite3_bind_int64(st, 1, q->request_id);
    sqlite3_bind_int64(st, 2, r->index);
    bind_id(st, 3, attrs);
    bind_id(st, 4, url);
    sqlite3_bind_int64(st, 5, r->dropped_attributes_count);
    q->resource_id = step_write(q, S_RES_INS, "storing a resource");
    q->n_resources++;
}

static int64_t intern_scope(struct sq *q, const struct lb_scope *sc)
{
    if (!sc)
        return 0;
    int64_t name = intern_str(q, sc->name), version = intern_str(q, sc->version),
            url = intern_str(q, sc->schema_url), attrs = intern_attrs(q, sc->attrs);
    if (name < 0 || version < 0 || url < 0 || attrs < 0)
        return -1;
    struct tuple t = { { name, version, url, attrs, sc->dropped_attributes_count }, 5, 0xf };
    return intern_tuple(q, C_SCOPE, S_SCOPE_FIND, S_SCOPE_INS, &t, "storing a scope");
}

static void on_profile_begin(struct sink *s, const struct lb_profile *p)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    memset(&q->prof, 0, sizeof q->prof);
    int64_t ids[7] = {
        intern_scope(q, p->scope), intern_str(q, p->sample_type), intern_str(q, p->sample_unit),
        intern_str(q, p->period_type), intern_str(q, p->period_unit),
        intern_str(q, p->original_payload_format), intern_attrs(q, p->attrs),
    };
    for (int i = 0; i < 7; i++)
        if (ids[i] < 0)
            return;
    sqlite3_stmt *st = q->st[S_PROF_INS];
    sqlite3_bind_int64(st, 1, q->resource_id);
    bind_id(st, 2, ids[0]);
    sqlite3_bind_int64(st, 3, p->scope_index);
    sqlite3_bind_int64(st, 4, p->index);
    for (int i = 1; i <= 4; i++)
        bind_id(st, 4 + i, ids[i]);
    sqlite3_bind_int64(st, 9, p->period);
    sqlite3_bind_int64(st, 10, (int64_t)p->time_unix_nano);
    sqlite3_bind_int64(st, 11, (int64_t)p->duration_nano);
    bind_blob_or_null(st, 12, p->profile_id, p->profile_id.n > 0);
    sqlite3_bind_int64(st, 13, p->dropped_attributes_count);
    bind_id(st, 14, ids[5]);
    sqlite3_bind_int64(st, 15, (int64_t)p->original_payload_len);
    bind_id(st, 16, ids[6]);
    q->profile_id = step_write(q, S_PROF_INS, "storing a profile");
    q->n_profiles++;
}

/* Every field intern_frame stores, as bytes: equal keys, equal frame rows. */
static bool frame_content_key(struct buf *b, const struct lb_frame *f)
{
    buf_reset(b);
    return key_str(b, f->type) && key_str(b, f->function) && key_str(b, f->system_name) &&
           key_str(b, f->file) && key_u64(b, f->symbolized) && key_u64(b, (uint64_t)f->line) &&
           key_u64(b, (uint64_t)f->column) && key_u64(b, (uint64_t)f->start_line) &&
           key_u64(b, f->address) && key_u64(b, f->has_mapping) &&
           (!f->has_mapping ||
            (key_str(b, f->mapping_file) && key_str(b, f->build_id) && key_str(b, f->build_id_kind) &&
             key_u64(b, f->mapping_start) && key_u64(b, f->mapping_limit) && key_u64(b, f->mapping_offset)));
}

/* Frames are memoised by (location index, line index) within a request, and found by content
 * across requests. */
static int64_t frame_id(struct sq *q, const struct lb_frame *f)
{
    uint64_t key = (uint64_t)f->location_index << 16 | f->line_index;
    int64_t id;
    if (memo_get(&q->frame_memo, key, &id))
        return id;
    if (!frame_content_key(&q->ckey, f))
        return fail(q, "storing a frame", "out of memory");
    uint64_t h = sqlstore_hash(q->ckey.data, q->ckey.len);
    id = idcache_get(q->cache[C_FRAME_CONTENT], h, q->ckey.data, q->ckey.len);
    if (!id && (id = intern_frame(q, f)) > 0)
        idcache_put(q->cache[C_FRAME_CONTENT], h, q->ckey.data, q->ckey.len, id, q->txn);
    if (id > 0)
        memo_put(&q->frame_memo, key, id);
    return id;
}

/* Stacks are memoised by the request's stack index: same index, same frames. */
static int64_t stack_id(struct sq *q, const struct lb_sample *smp)
{
    int64_t id;
    if (memo_get(&q->stack_memo, smp->stack_index, &id))
        return id;
    if (!ids_reserve(q, smp->n_frames))
        return fail(q, "storing a stack", "stack too deep");
    for (size_t i = 0; i < smp->n_frames; i++) {
        int64_t f = frame_id(q, &smp->frames[i]);
        if (f < 0)
            return -1;
        q->ids[i] = f;   /* frame_id never uses q->ids */
    }
    id = intern_list(q, &STACKS, q->ids, smp->n_frames);
    if (id > 0)
        memo_put(&q->stack_memo, smp->stack_index, id);
    return id;
}

static void note_time(struct sq *q, uint64_t t)
{
    if (!q->prof.any_time || t < q->prof.tmin)
        q->prof.tmin = t;
    if (!q->prof.any_time || t > q->prof.tmax)
        q->prof.tmax = t;
    q->prof.any_time = true;
}

static int insert_series(struct sq *q, int s, int64_t sample, const void *vals, size_t n, const char *what)
{
    sqlite3_stmt *st = q->st[s];
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, (const uint8_t *)vals + i * 8, 8);   /* uint64 timestamps, int64 values */
        sqlite3_bind_int64(st, 1, sample);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, v);
        if (step_write(q, s, what) < 0)
            return -1;
    }
    return 0;
}

static void on_sample(struct sink *s, const struct lb_sample *smp)
{
    struct sq *q = state(s);
    if (q->failed)
        return;
    int64_t stack = stack_id(q, smp), attrs = stack < 0 ? -1 : intern_attrs(q, smp->attrs);
    if (stack < 0 || attrs < 0)
        return;
    sqlite3_stmt *st = q->st[S_SAMPLE_INS];
    sqlite3_bind_int64(st, 1, q->profile_id);
    sqlite3_bind_int64(st, 2, smp->index);
    sqlite3_bind_int64(st, 3, stack);
    bind_id(st, 4, attrs);
    sqlite3_bind_int64(st, 5, (int64_t)smp->n_timestamps);
    sqlite3_bind_int64(st, 6, (int64_t)smp->n_values);
    sqlite3_bind_int64(st, 7, lb_sample_weight(smp));
    bind_blob_or_null(st, 8, smp->trace_id, smp->has_link);
    bind_blob_or_null(st, 9, smp->span_id, smp->has_link);
    int64_t id = step_write(q, S_SAMPLE_INS, "storing a sample");
    if (id < 0 ||
        insert_series(q, S_TS_INS, id, smp->timestamps, smp->n_timestamps, "storing timestamps") < 0 ||
        insert_series(q, S_VAL_INS, id, smp->values, smp->n_values, "storing values") < 0)
        return;
    for (size_t i = 0; i < smp->n_timestamps; i++)
        note_time(q, smp->timestamps[i]);
    if (smp->n_timestamps == 0)
        note_time(q, smp->profile->time_unix_nano);   /* where the time filters place it */
    if (!q->prof.samples++)
        q->prof.first_sample = id;
    q->prof.last_sample = id;
    q->n_samples++;
}

static void on_profile_end(struct sink *s, const struct lb_profile *p)
{
    struct sq *q = state(s);
    (void)p;
    if (q->failed)
        return;
    sqlite3_stmt *st = q->st[S_PROF_END];
    sqlite3_bind_int64(st, 1, q->profile_id);
    sqlite3_bind_int64(st, 2, (int64_t)q->prof.samples);
    bind_id(st, 3, q->prof.first_sample);
    bind_id(st, 4, q->prof.last_sample);
    if (q->prof.any_time) {
        sqlite3_bind_int64(st, 5, (int64_t)q->prof.tmin);
        sqlite3_bind_int64(st, 6, (int64_t)q->prof.tmax);
    } else {
        sqlite3_bind_null(st, 5);
        sqlite3_bind_null(st, 6);
    }
    (void)step_write(q, S_PROF_END, "finishing a profile");
}

static int on_request_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    struct sq *q = state(s);
    (void)r;
    if (!q->failed && q->in_txn) {
        sqlite3_stmt *st = q->st[S_REQ_END];
        sqlite3_bind_int64(st, 1, q->request_id);
        sqlite3_bind_int64(st, 2, (int64_t)q->n_resources);
        sqlite3_bind_int64(st, 3, (int64_t)q->n_profiles);
        sqlite3_bind_int64(st, 4, (int64_t)q->n_samples);
        if (step_write(q, S_REQ_END, "finishing the request") >= 0 &&
            step_write(q, S_COMMIT, "committing") >= 0) {
            q->in_txn = false;
            q->committed++;
            return 0;
        }
    }
    if (!q->failed)
        fail(q, "committing", "no transaction");
    snprintf(why, whylen, "%s", q->why);
    log_warn("sqlite sink: request %" PRIu64 " rolled back: %s", r ? r->sequence : 0, q->why);
    rollback(q);
    return -1;
}

static void on_request_abort(struct sink *s, const struct lb_request *r, const char *reason)
{
    (void)r;
    (void)reason;
    rollback(state(s));
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
    buf_free(&q->key);
    buf_free(&q->ckey);
    buf_free(&q->json);
    free(q->ids);
    if (q->db && sqlite3_close(q->db) != SQLITE_OK)
        log_error("sqlite sink: closing the database: %s", sqlite3_errmsg(q->db));
    free(q);
}

static void on_close(struct sink *s, int deadline_ms)
{
    struct sq *q = state(s);
    (void)deadline_ms;   /* every request is committed by request_end: nothing is queued */
    if (!q)
        return;
    rollback(q);
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

int sqlite_sink_open(struct sink *out, const struct sqlite_sink_options *o, char *err, size_t errlen)
{
    const char *path = o && o->path ? o->path : SQLITE_SINK_DEFAULT_PATH;
    struct sq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    buf_init(&q->key, SIZE_MAX);
    buf_init(&q->ckey, SIZE_MAX);
    buf_init(&q->json, JSON_MAX);
    memo_init(&q->frame_memo, MEMO_MAX);
    memo_init(&q->stack_memo, MEMO_MAX);
    const char *sync = o && o->sync == SQLITE_SYNC_NORMAL ? "NORMAL" : "FULL";
    if (sqlstore_open_writer(path, sync, &q->db, err, errlen) != 0) {
        sq_free(q);
        return -1;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(q->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing \"%s\": %s", path, SQL[i], sqlite3_errmsg(q->db));
            sq_free(q);
            return -1;
        }
    }
    for (int c = 0; c < C_COUNT; c++) {
        const struct cache_size *cs = &CACHE_SIZES[c];
        if (!(q->cache[c] = idcache_new(cs->slots_log2, cs->max_bytes, cs->max_len))) {
            snprintf(err, errlen, "out of memory");
            sq_free(q);
            return -1;
        }
    }
    out->type = &sqlite_sink_type;
    out->ctx = q;
    return 0;
}
