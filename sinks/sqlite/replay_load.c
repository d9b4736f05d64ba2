/*
 * replay_load.c - the content rows of a store (strings, attributes and their sets, mappings,
 * frames, stacks, scopes) read once by id and kept for the whole export, as the views
 * (otlp/view.h) the replay hands out point into them. Each kind has an id -> position memo;
 * everything the views point to is allocated once and freed when the replay closes. A
 * resource's entity refs are read with it, into arrays reused from one resource to the next.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/replay.h"
#include "sinks/sqlite/replay_impl.h"

bool rp_grow(void **v, size_t n, size_t *cap, size_t size)
{
    void *p = q_grow(*v, n, cap, size, 16);
    if (!p)
        return false;
    *v = p;
    return true;
}

/* ---------- small helpers ---------- */

int rp_fail(struct sqlite_replay *r, const char *what)
{
    return qfail(&r->q, what);
}

void *rp_keep(struct sqlite_replay *r, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p && !VEC_ADD(r->owned, p)) {
        free(p);
        return NULL;
    }
    return p;
}

int rp_step(struct sqlite_replay *r, int s, const char *what)
{
    int rc = sqlite3_step(r->st[s]);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rp_fail(r, what);
        return -1;
    }
    return rc == SQLITE_ROW;
}

/* One row of integer columns by id: statement s bound to id, stepped once, its first n
 * columns into c (left 0 without a row), reset. 1 (a row), 0 (no row), -1 (failed: r->res.err). */
static int read_ints(struct sqlite_replay *r, int s, int64_t id, const char *what, int64_t *c, int n)
{
    sqlite3_stmt *st = r->st[s];
    sqlite3_bind_int64(st, 1, id);
    int rc = rp_step(r, s, what);
    for (int i = 0; rc > 0 && i < n; i++)
        c[i] = sqlite3_column_int64(st, i);
    sqlite3_reset(st);
    return rc;
}

/* A row that rp_step found absent though another row points at it. */
static bool row_missing(struct sqlite_replay *r, const char *what, int64_t id)
{
    snprintf(r->res.err, sizeof r->res.err, "%s %lld is missing", what, (long long)id);
    return false;
}

/* ---------- content, read once ---------- */

/* A string by id (0 = the empty string); false on error. */
bool rp_load_str(struct sqlite_replay *r, int64_t id, lb_str *out)
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
    int rc = rp_step(r, R_STR, "reading a string");
    bool ok = rc >= 0;
    if (rc > 0) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        char *copy = rp_keep(r, n);
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
    int rc = rp_step(r, R_ATTR, "reading an attribute");
    memset(out, 0, sizeof *out);
    int64_t key = 0, unit = 0, sid = 0;
    const char *kind = "";
    struct lb_value v = { .kind = LB_VALUE_EMPTY };
    if (rc > 0) {
        key = sqlite3_column_int64(st, 0);
        unit = sqlite3_column_int64(st, 3);
        kind = (const char *)sqlite3_column_text(st, 1);
        kind = kind ? kind : "";
        bool list = !strcmp(kind, "array") || !strcmp(kind, "kvlist");
        if (list && sqlite3_column_type(st, 4) == SQLITE_BLOB) {
            /* the typed content (schema step 6): walked with a NULL dictionary */
            v.kind = kind[0] == 'a' ? LB_VALUE_ARRAY : LB_VALUE_KVLIST;
            size_t n = (size_t)sqlite3_column_bytes(st, 4);
            const void *p = sqlite3_column_blob(st, 4);
            char *copy = rp_keep(r, n);
            if (!copy) {
                sqlite3_reset(st);
                return qoom(&r->q), false;
            }
            if (n)
                memcpy(copy, p, n);
            v.u.str = (lb_str){ copy, n };
        } else if (!strcmp(kind, "string") || list) {
            /* older rows keep arrays and kvlists as JSON text only: they come back as it */
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
            char *copy = rp_keep(r, n);
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
    if (!rp_load_str(r, key, &out->key) || !rp_load_str(r, unit, &out->unit) ||
        (sid && !rp_load_str(r, sid, &out->value.u.str)))
        return false;
    if (!VEC_ADD(r->attrs, *out) || !memo_put(&r->ix[R_ATTR], (uint64_t)id, (int64_t)r->attrs.n - 1))
        return qoom(&r->q), false;
    return true;
}

/* An attribute set by id (0 = none). */
bool rp_load_set(struct sqlite_replay *r, int64_t id, struct lb_attrs *out)
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
    while (ok && (rc = rp_step(r, R_SET, "reading an attribute set")) > 0) {
        int64_t a = sqlite3_column_int64(st, 0);
        if (n < 256)
            ids[n++] = a;
        else
            ok = VEC_ADD(more, a) || qoom(&r->q) == 0;
    }
    sqlite3_reset(st);
    ok = ok && rc == 0;
    size_t total = n + more.n;
    struct lb_attr *v = ok ? rp_keep(r, total * sizeof *v) : NULL;
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

static bool load_mapping(struct sqlite_replay *r, int64_t id, const struct lb_mapping **out)
{
    int64_t ix;
    if (memo_get(&r->ix[R_MAP], (uint64_t)id, &ix)) {
        *out = r->maps.v[ix];
        return true;
    }
    int64_t c[7] = { 0 };
    int rc = read_ints(r, R_MAP, id, "reading a mapping", c, 7);
    if (rc <= 0)
        return rc == 0 ? row_missing(r, "mapping", id) : false;
    struct lb_mapping *m = rp_keep(r, sizeof *m);
    if (!m)
        return qoom(&r->q), false;
    memset(m, 0, sizeof *m);
    m->start = (uint64_t)c[3];
    m->limit = (uint64_t)c[4];
    m->offset = (uint64_t)c[5];
    if (!rp_load_str(r, c[0], &m->file) || !rp_load_str(r, c[1], &m->build_id) ||
        !rp_load_str(r, c[2], &m->build_id_kind) || !rp_load_set(r, c[6], &m->attrs))
        return false;
    if (!VEC_ADD(r->maps, m) || !memo_put(&r->ix[R_MAP], (uint64_t)id, (int64_t)r->maps.n - 1))
        return qoom(&r->q), false;
    *out = m;
    return true;
}

static bool load_frame(struct sqlite_replay *r, int64_t id, struct lb_frame *f)
{
    int64_t ix;
    if (memo_get(&r->ix[R_FRAME], (uint64_t)id, &ix)) {
        *f = r->frames.v[ix];
        return true;
    }
    int64_t c[13] = { 0 };
    int rc = read_ints(r, R_FRAME, id, "reading a frame", c, 13);
    if (rc <= 0)
        return rc == 0 ? row_missing(r, "frame", id) : false;
    memset(f, 0, sizeof *f);
    f->symbolized = c[1] != 0;
    f->line = c[5];
    f->column = c[6];
    f->start_line = c[7];
    f->address = (uint64_t)c[8];
    f->line_index = (uint16_t)c[11];
    f->line_count = (uint16_t)c[12];
    if (!rp_load_str(r, c[0], &f->type) || !rp_load_str(r, c[2], &f->function) ||
        !rp_load_str(r, c[3], &f->system_name) || !rp_load_str(r, c[4], &f->file) ||
        !rp_load_set(r, c[10], &f->location_attrs))
        return false;
    if (c[9] > 0) {
        if (!load_mapping(r, c[9], &f->mapping))
            return false;
        f->has_mapping = true;
    }
    if (!VEC_ADD(r->frames, *f) || !memo_put(&r->ix[R_FRAME], (uint64_t)id, (int64_t)r->frames.n - 1))
        return qoom(&r->q), false;
    return true;
}

/* A stack by id: its frames leaf first, each location's lines numbered as one location. */
bool rp_load_stack(struct sqlite_replay *r, int64_t id, struct rstack *out)
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
    while (ok && (rc = rp_step(r, R_STACK, "reading a stack")) > 0)
        ok = VEC_ADD(ids, sqlite3_column_int64(st, 0)) || qoom(&r->q) == 0;
    sqlite3_reset(st);
    ok = ok && rc == 0;
    struct lb_frame *f = ok ? rp_keep(r, ids.n * sizeof *f) : NULL;
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
        type_ok = type_ok || replay_frame_type_wanted(&r->o, f[i].type);
    }
    free(ids.v);
    if (!ok)
        return false;
    *out = (struct rstack){ f, ids.n, type_ok };
    if (!VEC_ADD(r->stacks, *out) || !memo_put(&r->ix[R_STACK], (uint64_t)id, (int64_t)r->stacks.n - 1))
        return qoom(&r->q), false;
    return true;
}

bool rp_load_scope(struct sqlite_replay *r, int64_t id, struct lb_scope *out)
{
    int64_t ix;
    memset(out, 0, sizeof *out);
    if (id <= 0)
        return true;
    if (memo_get(&r->ix[R_SCOPE], (uint64_t)id, &ix)) {
        *out = r->scopes.v[ix];
        return true;
    }
    int64_t c[5] = { 0 };
    int rc = read_ints(r, R_SCOPE, id, "reading a scope", c, 5);
    if (rc < 0)
        return false;
    out->dropped_attributes_count = (uint32_t)c[4];
    if (!rp_load_str(r, c[0], &out->name) || !rp_load_str(r, c[1], &out->version) ||
        !rp_load_str(r, c[2], &out->schema_url) || !rp_load_set(r, c[3], &out->attrs))
        return false;
    if (!VEC_ADD(r->scopes, *out) || !memo_put(&r->ix[R_SCOPE], (uint64_t)id, (int64_t)r->scopes.n - 1))
        return qoom(&r->q), false;
    return true;
}

/* The keys of the refs are rows ordered by (ref, description, pos): each ref's id keys, then its
 * description keys, each run contiguous in r->ekeys. Offsets first, pointers once the keys
 * vector stops moving. A key row whose ref is not stored is left out. */
static bool load_entity_keys(struct sqlite_replay *r, int64_t id)
{
    sqlite3_stmt *st = r->st[R_ENT_KEY];
    sqlite3_bind_int64(st, 1, id);
    size_t *off = calloc(2 * r->erefs.n + 1, sizeof *off);
    int rc = off ? 1 : -1;
    size_t j = 0;
    while (off && (rc = rp_step(r, R_ENT_KEY, "reading entity ref keys")) > 0) {
        int64_t ref = sqlite3_column_int64(st, 0), desc = sqlite3_column_int64(st, 1) != 0;
        while (j < r->erefs.n && r->eidx.v[j] < ref)
            j++;
        if (j == r->erefs.n || r->eidx.v[j] != ref)
            continue;
        lb_str key;
        if (!rp_load_str(r, sqlite3_column_int64(st, 2), &key)) {
            rc = -1;
            break;
        }
        struct lb_entity_ref *er = &r->erefs.v[j];
        size_t *n = desc ? &er->n_description_keys : &er->n_id_keys;
        if (*n == 0)
            off[2 * j + (size_t)desc] = r->ekeys.n;
        if (!VEC_ADD(r->ekeys, key)) {
            qoom(&r->q);
            rc = -1;
            break;
        }
        (*n)++;
    }
    sqlite3_reset(st);
    if (!off)
        qoom(&r->q);
    for (size_t i = 0; rc == 0 && i < r->erefs.n; i++) {
        struct lb_entity_ref *er = &r->erefs.v[i];
        er->id_keys = er->n_id_keys ? r->ekeys.v + off[2 * i] : NULL;
        er->description_keys = er->n_description_keys ? r->ekeys.v + off[2 * i + 1] : NULL;
    }
    free(off);
    return rc == 0;
}

bool rp_load_entity_refs(struct sqlite_replay *r, int64_t id, struct lb_resource *out)
{
    r->erefs.n = r->eidx.n = r->ekeys.n = 0;
    out->entity_refs = NULL;
    out->n_entity_refs = 0;
    sqlite3_stmt *st = r->st[R_ENT];
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = rp_step(r, R_ENT, "reading entity refs")) > 0) {
        struct lb_entity_ref er = { 0 };
        int64_t idx = sqlite3_column_int64(st, 0);
        if (!rp_load_str(r, sqlite3_column_int64(st, 1), &er.schema_url) ||
            !rp_load_str(r, sqlite3_column_int64(st, 2), &er.type)) {
            rc = -1;
            break;
        }
        if (!VEC_ADD(r->erefs, er) || !VEC_ADD(r->eidx, idx)) {
            qoom(&r->q);
            rc = -1;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc < 0 || (r->erefs.n && !load_entity_keys(r, id)))
        return false;
    out->entity_refs = r->erefs.n ? r->erefs.v : NULL;
    out->n_entity_refs = r->erefs.n;
    return true;
}
