/*
 * writer_dedup.c - the rows the SQLite writer keeps once per database: strings, mappings,
 * frames, scopes, stacks and attribute sets, each found again by content, stored only when
 * new (attributes themselves are writer_attrs.c's).
 *
 * Why: a profiler sends the same stacks, frames and names over and over, and the file should
 * grow with distinct content, not with repeats. Each row is keyed by canonical bytes and
 * their hash (sqlstore_hash): the bounded id caches answer for content seen before, a SELECT
 * on (hash, content) for content the database already holds, an INSERT for the rest. Within
 * a request, the memos map the request's own frame and stack indices to ids first.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/internal.h"

/* The longest stack the id scratch holds: the decoder's own limit bounds it first. */
#define MAX_IDS ((size_t)1 << 24)

/* ---------- canonical keys ---------- */

/* The keys of stored rows are the schema's (their sqlstore_hash is the `hash` column): their
 * bytes are fixed like the hash. */
bool sq_key_u64_grow(struct buf *b, uint64_t v)
{
    uint8_t t[8];
    sq_key_put_u64(t, v);
    return buf_append(b, t, 8);
}

bool sq_key_str_grow(struct buf *b, lb_str s)
{
    return sq_key_u64_grow(b, s.n) && buf_append(b, s.p, s.n);
}

static bool ids_reserve(int64_t **ids, size_t *ids_cap, size_t n)
{
    if (n <= *ids_cap)
        return true;
    if (n > MAX_IDS)
        return false;
    size_t cap = *ids_cap ? *ids_cap : 64;
    while (cap < n)
        cap *= 2;
    int64_t *p = realloc(*ids, cap * sizeof *p);
    if (!p)
        return false;
    *ids = p;
    *ids_cap = cap;
    return true;
}

bool sq_ids_reserve(struct sq *q, size_t n)
{
    return ids_reserve(&q->ids, &q->ids_cap, n);
}

/* ---------- strings ---------- */

/* The id of a string, 0 for the empty string, -1 on error. */
int64_t sq_intern_str(struct sq *q, lb_str s)
{
    if (s.n == 0)
        return 0;
    uint64_t ch = hash64_lanes(s.p, s.n);
    int64_t id = idcache_get(q->cache[C_STR], ch, s.p, s.n);
    if (id)
        return id;
    uint64_t h = sqlstore_hash(s.p, s.n);
    sqlite3_bind_int64(q->st[S_STR_FIND], 1, (int64_t)h);
    bind_text(q->st[S_STR_FIND], 2, s);
    id = sq_step_find(q, S_STR_FIND, "looking up a string");
    if (id == 0) {
        sqlite3_bind_int64(q->st[S_STR_INS], 1, (int64_t)h);
        bind_text(q->st[S_STR_INS], 2, s);
        id = sq_step_write(q, S_STR_INS, "storing a string");
    }
    if (id > 0)
        idcache_put(q->cache[C_STR], ch, s.p, s.n, id, q->txn);
    return id;
}

int64_t sq_intern_cstr(struct sq *q, const char *s)
{
    return sq_intern_str(q, (lb_str){ s ? s : "", s ? strlen(s) : 0 });
}

/* ---------- tuples: mappings, frames, scopes ---------- */

/* A row of fixed integer columns. `nullable` has bit i set when v[i] is an id (0 = NULL). */
struct tuple {
    int64_t v[13];
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
        if (!sq_key_u64(&q->key, (uint64_t)t->v[i]))
            return sq_fail(q, what, "out of memory");
    uint64_t ch = hash64_lanes(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[cache], ch, q->key.data, q->key.len);
    if (id)
        return id;
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    bind_tuple(q->st[find], h, t);
    id = sq_step_find(q, find, what);
    if (id == 0) {
        bind_tuple(q->st[ins], h, t);
        id = sq_step_write(q, ins, what);
    }
    if (id > 0)
        idcache_put(q->cache[cache], ch, q->key.data, q->key.len, id, q->txn);
    return id;
}

static int64_t intern_mapping(struct sq *q, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    int64_t file = sq_intern_str(q, map->file);
    int64_t build = sq_intern_str(q, map->build_id);
    int64_t kind = sq_intern_str(q, map->build_id_kind);
    int64_t attrs = sq_intern_attrs(q, map->attrs);
    if (file < 0 || build < 0 || kind < 0 || attrs < 0)
        return -1;
    struct tuple t = { { file, build, kind, (int64_t)map->start, (int64_t)map->limit,
                         (int64_t)map->offset, attrs }, 7, 0x7 | 0x40 };
    return intern_tuple(q, C_MAP, S_MAP_FIND, S_MAP_INS, &t, "storing a mapping");
}

static int64_t intern_frame(struct sq *q, const struct lb_frame *f)
{
    int64_t type = sq_intern_str(q, f->type);
    int64_t fn = sq_intern_str(q, f->function);
    int64_t sys = sq_intern_str(q, f->system_name);
    int64_t file = sq_intern_str(q, f->file);
    int64_t map = f->has_mapping ? intern_mapping(q, f) : 0;
    int64_t attrs = sq_intern_attrs(q, f->location_attrs);
    if (type < 0 || fn < 0 || sys < 0 || file < 0 || map < 0 || attrs < 0)
        return -1;
    struct tuple t = { { type, f->symbolized, fn, sys, file, f->line, f->column, f->start_line,
                         (int64_t)f->address, map, attrs, f->line_index, f->line_count }, 13,
                       0x1 | 0x4 | 0x8 | 0x10 | 0x200 | 0x400 };
    return intern_tuple(q, C_FRAME, S_FRAME_FIND, S_FRAME_INS, &t, "storing a frame");
}

int64_t sq_intern_scope(struct sq *q, const struct lb_scope *sc)
{
    if (!sc)
        return 0;
    int64_t name = sq_intern_str(q, sc->name), version = sq_intern_str(q, sc->version),
            url = sq_intern_str(q, sc->schema_url), attrs = sq_intern_attrs(q, sc->attrs);
    if (name < 0 || version < 0 || url < 0 || attrs < 0)
        return -1;
    struct tuple t = { { name, version, url, attrs, sc->dropped_attributes_count }, 5, 0xf };
    return intern_tuple(q, C_SCOPE, S_SCOPE_FIND, S_SCOPE_INS, &t, "storing a scope");
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
        same = (int)sq_fail(q, k->what, NULL);
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
        found = sq_fail(q, k->what, NULL);
    sqlite3_reset(st);
    return found;
}

static int64_t insert_list(struct sq *q, const struct list_kind *k, uint64_t h, const int64_t *ids, size_t n)
{
    sqlite3_bind_int64(q->st[k->ins], 1, (int64_t)h);
    sqlite3_bind_int64(q->st[k->ins], 2, (int64_t)n);
    int64_t id = sq_step_write(q, k->ins, k->what);
    for (size_t i = 0; id > 0 && i < n; i++) {
        sqlite3_stmt *st = q->st[k->item_ins];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, ids[i]);
        if (sq_step_write(q, k->item_ins, k->what) < 0)
            id = -1;
    }
    return id;
}

static int64_t intern_list(struct sq *q, const struct list_kind *k, const int64_t *ids, size_t n)
{
    buf_reset(&q->key);
    for (size_t i = 0; i < n; i++)
        if (!sq_key_u64(&q->key, (uint64_t)ids[i]))
            return sq_fail(q, k->what, "out of memory");
    uint64_t ch = hash64_lanes(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[k->cache], ch, q->key.data, q->key.len);
    if (id)
        return id;
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    id = find_list(q, k, h, ids, n);
    if (id == 0)
        id = insert_list(q, k, h, ids, n);
    if (id > 0) {
        /* find/insert did not touch the key buffer */
        idcache_put(q->cache[k->cache], ch, q->key.data, q->key.len, id, q->txn);
    }
    return id;
}

int64_t sq_intern_set(struct sq *q, const int64_t *ids, size_t n)
{
    return intern_list(q, &SETS, ids, n);
}

/* ---------- a sample's frames and stack ---------- */

/* Attributes as bytes for a content key; false for values whose bytes may depend on the
 * request (arrays and kvlists may hold string indices): such a frame is not cached by content. */
static bool attrs_content_key(struct buf *b, struct lb_attrs attrs)
{
    if (!sq_key_u64(b, attrs.n))
        return false;
    for (size_t i = 0; i < attrs.n; i++) {
        const struct lb_attr *a = &attrs.v[i];
        const struct lb_value *v = &a->value;
        if (v->kind == LB_VALUE_ARRAY || v->kind == LB_VALUE_KVLIST)
            return false;
        uint64_t bits = 0;
        if (v->kind == LB_VALUE_BOOL)
            bits = v->u.boolean;
        else if (v->kind == LB_VALUE_INT)
            bits = (uint64_t)v->u.integer;
        else if (v->kind == LB_VALUE_DOUBLE)
            memcpy(&bits, &v->u.dbl, 8);
        bool str = v->kind == LB_VALUE_STRING || v->kind == LB_VALUE_BYTES;
        if (!sq_key_str(b, a->key) || !sq_key_str(b, a->unit) || !sq_key_u64(b, v->kind) ||
            !(str ? sq_key_str(b, v->u.str) : sq_key_u64(b, bits)))
            return false;
    }
    return true;
}

/* Every field intern_frame stores, as bytes: equal keys, equal frame rows. False: out of
 * memory, or a frame not to be cached by content (attrs_content_key). */
static bool frame_content_key(struct buf *b, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    buf_reset(b);
    return sq_key_u64(b, f->line_index) && sq_key_u64(b, f->line_count) &&
           attrs_content_key(b, f->location_attrs) &&
           (!f->has_mapping || attrs_content_key(b, map->attrs)) &&
           sq_key_str(b, f->type) && sq_key_str(b, f->function) && sq_key_str(b, f->system_name) &&
           sq_key_str(b, f->file) && sq_key_u64(b, f->symbolized) &&
           sq_key_u64(b, (uint64_t)f->line) && sq_key_u64(b, (uint64_t)f->column) &&
           sq_key_u64(b, (uint64_t)f->start_line) && sq_key_u64(b, f->address) &&
           sq_key_u64(b, f->has_mapping) &&
           (!f->has_mapping ||
            (sq_key_str(b, map->file) && sq_key_str(b, map->build_id) &&
             sq_key_str(b, map->build_id_kind) && sq_key_u64(b, map->start) &&
             sq_key_u64(b, map->limit) && sq_key_u64(b, map->offset)));
}

/* Frames are memoised by (location index, line index) within a request, and found by content
 * across requests. */
static int64_t frame_id(struct sq *q, const struct lb_frame *f)
{
    uint64_t key = (uint64_t)f->location_index << 16 | f->line_index;
    int64_t id;
    if (memo_get(&q->frame_memo, key, &id))
        return id;
    if (!frame_content_key(&q->ckey, f)) {
        id = intern_frame(q, f);
    } else {
        uint64_t h = hash64_lanes(q->ckey.data, q->ckey.len);
        id = idcache_get(q->cache[C_FRAME_CONTENT], h, q->ckey.data, q->ckey.len);
        /* intern_frame reuses q->ckey (for the attributes' own content keys): rebuilt */
        if (!id && (id = intern_frame(q, f)) > 0 && frame_content_key(&q->ckey, f))
            idcache_put(q->cache[C_FRAME_CONTENT], h, q->ckey.data, q->ckey.len, id, q->txn);
    }
    if (id > 0)
        memo_put(&q->frame_memo, key, id);
    return id;
}

/* Stacks are memoised by the request's stack (lb_sample.stack_id: same id, same frames). A
 * sample whose stack is not known to be shared (v1.7's slices of a profile's location list,
 * whose offsets repeat from profile to profile) is looked up by content every time. */
int64_t sq_stack_id(struct sq *q, const struct lb_sample *smp)
{
    int64_t id;
    if (smp->stack_id && memo_get(&q->stack_memo, smp->stack_id, &id))
        return id;
    /* its own scratch: a frame's attributes go through q->ids (sq_intern_attrs) */
    if (!ids_reserve(&q->stack_ids, &q->stack_ids_cap, smp->n_frames))
        return sq_fail(q, "storing a stack", "stack too deep");
    for (size_t i = 0; i < smp->n_frames; i++) {
        int64_t f = frame_id(q, &smp->frames[i]);
        if (f < 0)
            return -1;
        q->stack_ids[i] = f;
    }
    id = intern_list(q, &STACKS, q->stack_ids, smp->n_frames);
    if (id > 0 && smp->stack_id)
        memo_put(&q->stack_memo, smp->stack_id, id);
    return id;
}
