/*
 * store.c - the UI's read side of the SQLite store: rollup rows (schema step 3) for a time
 * window and filters, and the stacks and frames they name.
 *
 * Why rollups: an API call must answer in well under a second over millions of samples, so
 * it never reads samples. A window is split into whole hours (rollup_hour) and the minutes at
 * its edges (rollup_minute); windows are whole minutes (from rounded down, to up). Filters on
 * attributes are decided once per attribute set (a few hundred sets for millions of rows) and
 * frame types once per stack. Stacks and frames are content rows that never change, so they
 * are read once per process and kept (dropped whole past a bound), which makes the second
 * call over the same data much cheaper than the first.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/store.h"

enum { UI_CACHE_MAX_FRAMES = 1 << 21, UI_CACHE_MAX_SF = 1 << 24 };

/* Minutes since the epoch beyond any real data: "no bound". */
#define FAR_MINUTES ((int64_t)1 << 40)

void ui_store_init(struct ui_store *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->path = path ? strdup(path) : NULL;
    buf_init(&s->tmp, 1 << 20);
}

void ui_store_reset(struct ui_store *s)
{
    strtab_free(&s->names);
    memo_free(&s->frame_ix);
    memo_free(&s->stack_ix);
    memo_free(&s->frame_same);
    memo_free(&s->group_of);
    free(s->frames);
    free(s->stacks);
    free(s->sf);
    s->frames = NULL;
    s->stacks = NULL;
    s->sf = NULL;
    s->n_frames = s->cap_frames = s->n_stacks = s->cap_stacks = s->n_sf = s->cap_sf = 0;
    memo_init(&s->frame_ix, SIZE_MAX);
    memo_init(&s->stack_ix, SIZE_MAX);
    memo_init(&s->frame_same, SIZE_MAX);
    memo_init(&s->group_of, SIZE_MAX);
    for (size_t i = 0; i < sizeof s->group_key_id / sizeof s->group_key_id[0]; i++)
        s->group_key_id[i] = -1;
    strtab_cstr(&s->names, "");   /* id 0 */
}

static void close_db(struct ui_store *s)
{
    sqlite3_finalize(s->st_frame);
    sqlite3_finalize(s->st_stack);
    sqlite3_finalize(s->st_filter);
    sqlite3_finalize(s->st_group);
    s->st_frame = s->st_stack = s->st_filter = s->st_group = NULL;
    sqlite3_close(s->db);
    s->db = NULL;
}

void ui_store_close(struct ui_store *s)
{
    close_db(s);
    strtab_free(&s->names);
    memo_free(&s->frame_ix);
    memo_free(&s->stack_ix);
    memo_free(&s->frame_same);
    memo_free(&s->group_of);
    free(s->frames);
    free(s->stacks);
    free(s->sf);
    buf_free(&s->tmp);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static int fail(struct ui_store *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
    return -1;
}

static int oom(struct ui_store *s)
{
    snprintf(s->err, sizeof s->err, "out of memory");
    return -1;
}

static const char SQL_FRAME[] =
    "SELECT f.symbolized, f.address, fn.value, t.value, mf.value, fi.value, f.line, bi.value "
    "FROM frames f LEFT JOIN strings fn ON fn.id = f.function_id LEFT JOIN strings t ON t.id = f.type_id "
    "LEFT JOIN mappings m ON m.id = f.mapping_id LEFT JOIN strings mf ON mf.id = m.file_id "
    "LEFT JOIN strings fi ON fi.id = f.file_id LEFT JOIN strings bi ON bi.id = m.build_id_id "
    "WHERE f.id = ?1";
static const char SQL_STACK[] = "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY pos DESC";
/* An attribute's value as text: strings as stored, other kinds as SQLite prints them. */
#define VALUE_TEXT "COALESCE(sv.value, CAST(a.value AS TEXT), '')"
#define VALUE_JOIN "LEFT JOIN strings sv ON sv.id = a.value AND a.kind IN ('string','array','kvlist')"
static const char SQL_FILTER[] =
    "SELECT 1 FROM attribute_set_items i JOIN attributes a ON a.id = i.attribute_id " VALUE_JOIN
    " WHERE i.set_id = ?1 AND a.key_id = ?2 AND " VALUE_TEXT " = ?3 LIMIT 1";
static const char SQL_GROUP[] =
    "SELECT " VALUE_TEXT " FROM attribute_set_items i JOIN attributes a ON a.id = i.attribute_id "
    VALUE_JOIN " WHERE i.set_id = ?1 AND a.key_id = ?2 ORDER BY i.pos LIMIT 1";

int ui_store_begin(struct ui_store *s)
{
    s->err[0] = '\0';
    s->err_status = 0;
    if (s->ch)
        return 0;
    if (!s->path) {
        /* a server with neither the sqlite nor the clickhouse sink (serve.c) */
        snprintf(s->err, sizeof s->err, "this server keeps no profiles to show: start it with --sink sqlite "
                 "or --sink clickhouse, or run `lazybackend ui --db FILE` (or `--clickhouse-url URL`) where "
                 "they are kept");
        return -1;
    }
    if (!s->db) {
        if (sqlstore_open_reader(s->path, &s->db, s->err, sizeof s->err) != 0)
            return -1;
        if (sqlite3_prepare_v2(s->db, SQL_FRAME, -1, &s->st_frame, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, SQL_STACK, -1, &s->st_stack, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, SQL_FILTER, -1, &s->st_filter, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, SQL_GROUP, -1, &s->st_group, NULL) != SQLITE_OK) {
            fail(s, "preparing the UI's queries");
            close_db(s);
            return -1;
        }
        ui_store_reset(s);
    }
    if (s->n_frames > UI_CACHE_MAX_FRAMES || s->n_sf > UI_CACHE_MAX_SF)
        ui_store_reset(s);
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, "starting a read");
        close_db(s);   /* opened again by the next call */
        return -1;
    }
    return 0;
}

void ui_store_end(struct ui_store *s)
{
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

const char *ui_name(const struct ui_store *s, uint32_t id)
{
    return id < s->names.n ? s->names.v[id] : "";
}

/* A text column as a name id; text up to a NUL byte (names never hold one in practice). */
static int col_name(struct ui_store *s, sqlite3_stmt *st, int col, uint32_t *out)
{
    const char *p = (const char *)sqlite3_column_text(st, col);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, col) : 0;
    const char *nul = n ? memchr(p, 0, n) : NULL;
    if (nul)
        n = (size_t)(nul - p);
    if ((*out = strtab_intern(&s->names, p ? p : "", n)) == NONE)
        return oom(s);
    return 0;
}

static int64_t load_frame(struct ui_store *s, int64_t id)
{
    int64_t ix;
    if (memo_get(&s->frame_ix, (uint64_t)id, &ix))
        return ix;
    sqlite3_stmt *st = s->st_frame;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    struct ui_frame f;
    memset(&f, 0, sizeof f);   /* padding too: frames are compared and hashed as bytes */
    int bad = 0;
    if (rc == SQLITE_ROW) {
        f.native = sqlite3_column_int64(st, 0) == 0;
        f.line = sqlite3_column_int64(st, 6);
        bad = col_name(s, st, 3, &f.type) || col_name(s, st, 4, &f.mapping) || col_name(s, st, 5, &f.file) ||
              col_name(s, st, 7, &f.build_id);
        if (!bad && f.native) {
            buf_reset(&s->tmp);
            const char *m = ui_name(s, f.mapping);
            bad = !buf_printf(&s->tmp, "%s+0x%" PRIx64, m, (uint64_t)sqlite3_column_int64(st, 1)) ||
                  (f.name = strtab_intern(&s->names, (const char *)s->tmp.data, s->tmp.len)) == NONE;
        } else if (!bad) {
            bad = col_name(s, st, 2, &f.name);
        }
        if (!bad && !sqlite3_column_text(st, 3))
            bad = (f.type = strtab_cstr(&s->names, "unknown")) == NONE;
    } else if (rc == SQLITE_DONE) {   /* a dangling id: shown, not fatal */
        bad = (f.name = strtab_cstr(&s->names, "[unknown]")) == NONE ||
              (f.type = strtab_cstr(&s->names, "unknown")) == NONE;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, "reading a frame");
    if (bad)
        return oom(s);
    /* Frames that show the same (name, type, file, line, mapping, build id) are one frame
     * here, as folded stacks merge them: the same function stored once per process is one
     * box in the flame graph, not one per program. */
    uint64_t key = sqlstore_hash(&f, sizeof f);
    int64_t same;
    if (memo_get(&s->frame_same, key, &same) && memcmp(&s->frames[same], &f, sizeof f) == 0)
        return memo_put(&s->frame_ix, (uint64_t)id, same) ? same : oom(s);
    struct ui_frame *v = q_grow(s->frames, s->n_frames, &s->cap_frames, sizeof *v, 1024);
    if (!v)
        return oom(s);
    s->frames = v;
    v[s->n_frames] = f;
    if (!memo_put(&s->frame_ix, (uint64_t)id, (int64_t)s->n_frames) ||
        !memo_put(&s->frame_same, key, (int64_t)s->n_frames))
        return oom(s);
    return (int64_t)s->n_frames++;
}

/* The index of a stack in s->stacks, reading it the first time. */
static int64_t load_stack(struct ui_store *s, int64_t id)
{
    int64_t ix;
    if (memo_get(&s->stack_ix, (uint64_t)id, &ix))
        return ix;
    /* frame ids first: load_frame uses another statement, the stack's stays open */
    size_t off = s->n_sf;
    sqlite3_stmt *st = s->st_stack;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t *v = q_grow(s->sf, s->n_sf, &s->cap_sf, sizeof *v, 4096);
        if (!v) {
            sqlite3_reset(st);
            return oom(s);
        }
        s->sf = v;
        int64_t fid = sqlite3_column_int64(st, 0);
        if (fid < 0 || fid > UINT32_MAX) {
            sqlite3_reset(st);
            snprintf(s->err, sizeof s->err, "frame id %" PRId64 " out of range", fid);
            return -1;
        }
        s->sf[s->n_sf++] = (uint32_t)fid;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(s, "reading a stack");
    for (size_t i = off; i < s->n_sf; i++) {
        int64_t f = load_frame(s, s->sf[i]);
        if (f < 0)
            return -1;
        s->sf[i] = (uint32_t)f;
    }
    void *v = q_grow(s->stacks, s->n_stacks, &s->cap_stacks, sizeof *s->stacks, 1024);
    if (!v)
        return oom(s);
    s->stacks = v;
    s->stacks[s->n_stacks].off = (uint32_t)off;
    s->stacks[s->n_stacks].n = (uint32_t)(s->n_sf - off);
    if (!memo_put(&s->stack_ix, (uint64_t)id, (int64_t)s->n_stacks))
        return oom(s);
    return (int64_t)s->n_stacks++;
}

/* strings.id of a value; 0 when never stored; -1 on error. */
static int64_t string_id(struct ui_store *s, const char *v)
{
    size_t n = strlen(v);
    if (n == 0)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM strings WHERE hash = ?1 AND value = ?2", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "looking up a string");
    sqlite3_bind_int64(st, 1, (int64_t)sqlstore_hash(v, n));
    sqlite3_bind_text(st, 2, v, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -2;
    sqlite3_finalize(st);
    return id == -2 ? fail(s, "looking up a string") : id;
}

/* ---------- attribute filters and groups ---------- */

struct afilter {
    int64_t key_id;
    const char *value;
    struct memo sets;   /* set id -> 1 holds it, 2 does not */
};

static int set_has(struct ui_store *s, struct afilter *f, int64_t set, bool *yes)
{
    int64_t v;
    *yes = false;
    if (set <= 0)
        return 0;
    if (memo_get(&f->sets, (uint64_t)set, &v)) {
        *yes = v == 1;
        return 0;
    }
    sqlite3_stmt *st = s->st_filter;
    sqlite3_bind_int64(st, 1, set);
    sqlite3_bind_int64(st, 2, f->key_id);
    sqlite3_bind_text(st, 3, f->value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, "reading attributes");
    *yes = rc == SQLITE_ROW;
    return memo_put(&f->sets, (uint64_t)set, *yes ? 1 : 2) ? 0 : oom(s);
}

static const char *group_key(enum ui_by by)
{
    switch (by) {
    case UI_BY_EXECUTABLE: return "process.executable.name";
    case UI_BY_CONTAINER: return "container.id";
    case UI_BY_THREAD: return "thread.name";
    default: return NULL;
    }
}

/* The value of the group's key in one set: its name id + 1, 0 when the set lacks it. */
static int set_group(struct ui_store *s, enum ui_by by, int64_t set, int64_t *out)
{
    uint64_t k = (uint64_t)set * 8 + (uint64_t)by;
    if (memo_get(&s->group_of, k, out))
        return 0;
    sqlite3_stmt *st = s->st_group;
    sqlite3_bind_int64(st, 1, set);
    sqlite3_bind_int64(st, 2, s->group_key_id[by]);
    int rc = sqlite3_step(st);
    uint32_t name = 0;
    int bad = rc == SQLITE_ROW ? col_name(s, st, 0, &name) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, "reading attributes");
    if (bad)
        return -1;
    *out = rc == SQLITE_ROW ? (int64_t)name + 1 : 0;
    return memo_put(&s->group_of, k, *out) ? 0 : oom(s);
}

int ui_store_group(struct ui_store *s, enum ui_by by, const int64_t sets[3], uint32_t *out)
{
    *out = 0;
    if (s->ch) {   /* the ClickHouse reader grouped already: sets[0] is the name id */
        *out = (uint32_t)sets[0];
        return 0;
    }
    const char *key = group_key(by);
    if (!key)
        return 0;
    if (s->group_key_id[by] <= 0 && (s->group_key_id[by] = string_id(s, key)) < 0)
        return -1;
    if (s->group_key_id[by] == 0)
        return 0;
    /* the container is a resource's; executables and threads are a sample's first */
    static const int resource_first[3] = { 0, 1, 2 }, sample_first[3] = { 2, 1, 0 };
    const int *order = by == UI_BY_CONTAINER ? resource_first : sample_first;
    for (int i = 0; i < 3; i++) {
        int64_t set = sets[order[i]], v;
        if (set <= 0)
            continue;
        if (set_group(s, by, set, &v) != 0)
            return -1;
        if (v > 0) {
            *out = (uint32_t)(v - 1);
            return 0;
        }
    }
    return 0;
}

/* ---------- the scan ---------- */

struct scan {
    struct ui_store *s;
    const struct ui_params *p;
    struct afilter f[UI_MAX_ATTRS + 3];
    size_t nf;
    uint32_t types[UI_MAX_LIST];
    struct memo stack_ok;   /* stack index -> 1 passes the frame types, 2 not */
    ui_row_fn fn;
    void *ctx;
};

static int rows_ok(struct scan *sc, const int64_t sets[3], bool *ok)
{
    *ok = true;
    for (size_t i = 0; i < sc->nf && *ok; i++) {
        bool any = false;
        for (int j = 0; j < 3 && !any; j++)
            if (set_has(sc->s, &sc->f[i], sets[j], &any) != 0)
                return -1;
        *ok = any;
    }
    return 0;
}

static bool stack_types_ok(struct scan *sc, uint32_t stack)
{
    const struct ui_store *s = sc->s;
    if (sc->p->n_frame_types == 0)
        return true;
    int64_t v;
    if (memo_get(&sc->stack_ok, stack, &v))
        return v == 1;
    bool ok = false;
    for (uint32_t i = 0; i < s->stacks[stack].n && !ok; i++) {
        uint32_t t = s->frames[s->sf[s->stacks[stack].off + i]].type;
        for (size_t j = 0; j < sc->p->n_frame_types && !ok; j++)
            ok = sc->types[j] == t;
    }
    memo_put(&sc->stack_ok, stack, ok ? 1 : 2);   /* a miss only costs the loop again */
    return ok;
}

/* Rows of one rollup table with lo <= bucket < hi; rollup_minute_sets has no stack. */
static int scan_range(struct scan *sc, const char *table, int64_t lo, int64_t hi, int64_t type_id)
{
    struct ui_store *s = sc->s;
    if (lo >= hi)
        return 0;
    bool stacks = strcmp(table, "rollup_minute_sets") != 0;
    assert(stacks || sc->p->n_frame_types == 0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT bucket, %s, resource_attributes_id, profile_attributes_id, "
             "sample_attributes_id, weight FROM %s WHERE bucket >= ?1 AND bucket < ?2%s",
             stacks ? "stack_id" : "0", table, type_id ? " AND sample_type_id = ?3" : "");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading rollups");
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    if (type_id)
        sqlite3_bind_int64(st, 3, type_id);
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t sets[3] = { sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4) };
        bool ok;
        if ((r = rows_ok(sc, sets, &ok)) != 0 || !ok)
            continue;
        if (!stacks) {
            r = sc->fn(sc->ctx, s, UI_NO_STACK, sqlite3_column_int64(st, 0), sets, sqlite3_column_int64(st, 5));
            continue;
        }
        int64_t stack = load_stack(s, sqlite3_column_int64(st, 1));
        if (stack < 0) {
            r = -1;
            break;
        }
        if (!stack_types_ok(sc, (uint32_t)stack))
            continue;
        r = sc->fn(sc->ctx, s, (uint32_t)stack, sqlite3_column_int64(st, 0), sets, sqlite3_column_int64(st, 5));
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = fail(s, "reading rollups");
    sqlite3_finalize(st);
    return r;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Frame type filters alone, per minute: the rows of rollup_minute_frame_types (schema step 10)
 * whose ",id,id," list holds one of the types asked for. A frame without a type is id 0,
 * which the UI calls "unknown" (load_frame). */
static int scan_frame_types(struct scan *sc, int64_t m0, int64_t m1, int64_t type_id)
{
    struct ui_store *s = sc->s;
    const struct ui_params *p = sc->p;
    char tokens[2 * UI_MAX_LIST][24];   /* a type's id, and 0 too for "unknown" */
    size_t nt = 0;
    for (size_t i = 0; i < p->n_frame_types; i++) {
        int64_t id = string_id(s, p->frame_types[i]);
        if (id < 0)
            return -1;
        if (id > 0)
            snprintf(tokens[nt++], sizeof tokens[0], ",%" PRId64 ",", id);
        if (strcmp(p->frame_types[i], "unknown") == 0)
            snprintf(tokens[nt++], sizeof tokens[0], ",0,");
        assert(nt <= sizeof tokens / sizeof tokens[0]);
    }
    if (nt == 0 || m0 >= m1)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           type_id ? "SELECT bucket, frame_types, weight FROM rollup_minute_frame_types "
                                     "WHERE bucket >= ?1 AND bucket < ?2 AND sample_type_id = ?3"
                                   : "SELECT bucket, frame_types, weight FROM rollup_minute_frame_types "
                                     "WHERE bucket >= ?1 AND bucket < ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading rollups");
    sqlite3_bind_int64(st, 1, m0);
    sqlite3_bind_int64(st, 2, m1);
    if (type_id)
        sqlite3_bind_int64(st, 3, type_id);
    const int64_t none[3] = { 0, 0, 0 };
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *types = (const char *)sqlite3_column_text(st, 1);
        bool ok = false;
        for (size_t i = 0; types && i < nt && !ok; i++)
            ok = strstr(types, tokens[i]) != NULL;
        if (ok)
            r = sc->fn(sc->ctx, s, UI_NO_STACK, sqlite3_column_int64(st, 0), none, sqlite3_column_int64(st, 2));
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = fail(s, "reading rollups");
    sqlite3_finalize(st);
    return r;
}

static int add_filter(struct scan *sc, const char *key, const char *value, bool *impossible)
{
    int64_t id = string_id(sc->s, key);
    if (id < 0)
        return -1;
    if (id == 0)
        *impossible = true;
    struct afilter *f = &sc->f[sc->nf++];
    f->key_id = id;
    f->value = value;
    memo_init(&f->sets, SIZE_MAX);
    return 0;
}

int ui_store_scan(struct ui_store *s, const struct ui_params *p, enum ui_scan how, ui_row_fn fn, void *ctx)
{
    if (s->ch)
        return ui_ch_scan(s, p, how, fn, ctx);
    struct scan sc = { .s = s, .p = p, .fn = fn, .ctx = ctx };
    memo_init(&sc.stack_ok, SIZE_MAX);
    bool impossible = false;
    int rc = 0;
    int64_t type_id = 0;
    if (p->sample_type) {
        if ((type_id = string_id(s, p->sample_type)) < 0)
            return -1;
        impossible = type_id == 0;
    }
    if ((p->container && add_filter(&sc, "container.id", p->container, &impossible) != 0) ||
        (p->executable && add_filter(&sc, "process.executable.name", p->executable, &impossible) != 0) ||
        (p->thread && add_filter(&sc, "thread.name", p->thread, &impossible) != 0))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < p->n_attrs; i++)
        rc = add_filter(&sc, p->attr_key[i], p->attr_value[i], &impossible);
    for (size_t i = 0; rc == 0 && i < p->n_frame_types; i++)
        if ((sc.types[i] = strtab_cstr(&s->names, p->frame_types[i])) == NONE)
            rc = oom(s);
    if (rc == 0 && !impossible) {
        int64_t m0 = p->has_from ? floor_div(p->from, 60) : -FAR_MINUTES;
        int64_t m1 = p->has_to ? -floor_div(-p->to, 60) : FAR_MINUTES;
        int64_t h0 = -floor_div(-m0, 60), h1 = floor_div(m1, 60);
        if (how == UI_SCAN_MINUTE_TYPES && sc.nf == 0 && p->n_frame_types > 0) {
            rc = scan_frame_types(&sc, m0, m1, type_id);
        } else if (how == UI_SCAN_MINUTE_SETS && p->n_frame_types == 0) {
            rc = scan_range(&sc, "rollup_minute_sets", m0, m1, type_id);
        } else if (how == UI_SCAN_HOURS) {
            rc = scan_range(&sc, "rollup_hour", floor_div(m0, 60), -floor_div(-m1, 60), type_id);
        } else if (how == UI_SCAN_WINDOW && h0 < h1) {
            rc = scan_range(&sc, "rollup_minute", m0, h0 * 60, type_id);
            if (rc == 0)
                rc = scan_range(&sc, "rollup_hour", h0, h1, type_id);
            if (rc == 0)
                rc = scan_range(&sc, "rollup_minute", h1 * 60, m1, type_id);
        } else {
            rc = scan_range(&sc, "rollup_minute", m0, m1, type_id);
        }
    }
    for (size_t i = 0; i < sc.nf; i++)
        memo_free(&sc.f[i].sets);
    memo_free(&sc.stack_ok);
    return rc;
}
