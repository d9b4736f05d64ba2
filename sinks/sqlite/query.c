/*
 * query.c - `lazybackend top|folded|flamegraph`: the questions a user debugging
 * profiles asks of a SQLite store after the fact (which functions burn CPU in this container,
 * what does this executable's flame graph look like, did frames of type X arrive at all).
 *
 * All three share one pipeline:
 *   1. open the database read-only (it may be written by a running server at the same time:
 *      WAL gives this reader one consistent snapshot for the whole command);
 *   2. scan the matching samples once, in SQL only as far as indexes help (profiles by time
 *      and sample type), and filter and weigh them in C (attribute filters, time ranges per
 *      timestamp, frame types), summing weights per (stack, attribute sets);
 *   3. turn stacks into frame names exactly as the stdout sink's folded format names them, so
 *      `folded` over one stored request equals what the stdout sink printed for it;
 *   4. render: a table (top), folded lines (folded) or an SVG (flamegraph.c).
 * Memory grows with distinct stacks and frames of the answer, never with samples.
 *
 * Weight: the sum of a sample's values, else its number of timestamps (the fixtures' rule).
 * With --since/--until a sample counts only for what falls inside the range: each timestamp
 * inside counts 1 (no values), or its own value (as many values as timestamps); a sample whose
 * values do not pair with its timestamps counts whole when its first timestamp is inside; a
 * sample without timestamps counts whole when its profile's time is inside.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/sqlite/internal.h"

#define MAX_FILTERS 32
#define NONE UINT32_MAX
/* What the whole answer may hold in names and frames; far above any real profile. */
#define MAX_NAMES ((size_t)1 << 30)

enum cmd { CMD_TOP, CMD_FOLDED, CMD_FLAMEGRAPH };
enum by { BY_FUNCTION, BY_FRAME_TYPE, BY_EXECUTABLE, BY_CONTAINER, BY_THREAD };

/* An attribute used as a grouping key, looked up at the sample, profile and resource levels
 * in the given order (the first level that has it wins). */
struct group_attr {
    const char *key;
    int order[3];   /* 0 sample, 1 profile, 2 resource */
};
static const struct group_attr GROUP_EXECUTABLE = { "process.executable.name", { 0, 1, 2 } };
static const struct group_attr GROUP_CONTAINER = { "container.id", { 2, 1, 0 } };
static const struct group_attr GROUP_THREAD = { "thread.name", { 0, 1, 2 } };

struct where {
    const char *key, *value;
};

struct qopts {
    enum cmd cmd;
    const char *name;
    const char *db;
    enum by by;
    bool total;
    bool has_since, has_until;
    int64_t since, until;          /* unix ns; since <= t < until */
    struct where where[MAX_FILTERS];
    size_t n_where;
    const char *sample_type[MAX_FILTERS];
    size_t n_sample_type;
    const char *frame_type[MAX_FILTERS];
    size_t n_frame_type;
    size_t limit;
    const struct group_attr *root;  /* folded/flamegraph: a root frame per group; NULL = none */
    const char *title;
    unsigned width;
    struct buf cmdline;             /* the command as typed, for the SVG's subtitle */
};

/* ---------- small tables ---------- */

/* Interned strings: id -> NUL-terminated text; the query's one name space (frame names, frame
 * types, group values). */
struct strtab {
    char **v;
    size_t n, cap;
    uint32_t *slots;   /* id + 1; 0 = empty */
    size_t scap;
};

static bool strtab_grow(struct strtab *t)
{
    size_t scap = t->scap ? t->scap * 2 : 1024;
    uint32_t *s = calloc(scap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < t->scap; i++) {
        if (!t->slots[i])
            continue;
        const char *str = t->v[t->slots[i] - 1];
        size_t j = (size_t)sqlstore_hash(str, strlen(str)) & (scap - 1);
        while (s[j])
            j = (j + 1) & (scap - 1);
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->scap = scap;
    return true;
}

/* The id of p[0..n) (which holds no NUL), NONE when out of memory. */
static uint32_t strtab_intern(struct strtab *t, const char *p, size_t n)
{
    if ((t->n + 1) * 2 > t->scap && !strtab_grow(t))
        return NONE;
    size_t j = (size_t)sqlstore_hash(p, n) & (t->scap - 1);
    for (; t->slots[j]; j = (j + 1) & (t->scap - 1)) {
        const char *s = t->v[t->slots[j] - 1];
        if (strncmp(s, p, n) == 0 && s[n] == '\0')
            return t->slots[j] - 1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        char **v = cap <= MAX_NAMES ? realloc(t->v, cap * sizeof *v) : NULL;
        if (!v)
            return NONE;
        t->v = v;
        t->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return NONE;
    memcpy(copy, p, n);
    copy[n] = '\0';
    t->v[t->n] = copy;
    t->slots[j] = (uint32_t)++t->n;
    return (uint32_t)(t->n - 1);
}

static uint32_t strtab_cstr(struct strtab *t, const char *s)
{
    return strtab_intern(t, s, strlen(s));
}

static void strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slots);
}

/* Sums keyed by four integers: (stack, sample set, profile set, resource set) while scanning,
 * then (stack, group) for the answer. */
struct agg_entry {
    int64_t k[4];
    int64_t w;
};

struct aggtab {
    struct agg_entry *v;
    size_t n, cap;
    uint32_t *slots;   /* index + 1 */
    size_t scap;
};

static size_t agg_slot(const int64_t k[4], size_t scap)
{
    return (size_t)sqlstore_hash(k, 4 * sizeof k[0]) & (scap - 1);
}

static bool agg_grow(struct aggtab *a)
{
    size_t scap = a->scap ? a->scap * 2 : 1024;
    uint32_t *s = scap <= ((size_t)1 << 31) ? calloc(scap, sizeof *s) : NULL;
    if (!s)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = agg_slot(a->v[i].k, scap);
        while (s[j])
            j = (j + 1) & (scap - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(a->slots);
    a->slots = s;
    a->scap = scap;
    return true;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

static bool agg_add(struct aggtab *a, const int64_t k[4], int64_t w)
{
    if ((a->n + 1) * 2 > a->scap && !agg_grow(a))
        return false;
    size_t j = agg_slot(k, a->scap);
    for (; a->slots[j]; j = (j + 1) & (a->scap - 1)) {
        struct agg_entry *e = &a->v[a->slots[j] - 1];
        if (memcmp(e->k, k, sizeof e->k) == 0) {
            e->w = sat_add(e->w, w);
            return true;
        }
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        struct agg_entry *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return false;
        a->v = v;
        a->cap = cap;
    }
    memcpy(a->v[a->n].k, k, sizeof a->v[a->n].k);
    a->v[a->n].w = w;
    a->slots[j] = (uint32_t)++a->n;
    return true;
}

static void agg_free(struct aggtab *a)
{
    free(a->v);
    free(a->slots);
    memset(a, 0, sizeof *a);
}

/* ---------- the query state ---------- */

struct qframe {
    uint32_t name, type;
};

struct qstack {
    size_t off;        /* into stack_frames, leaf first */
    uint32_t n;
    bool type_ok;      /* passes --frame-type */
};

struct q {
    const struct qopts *o;
    sqlite3 *db;
    sqlite3_stmt *st_frame, *st_stack, *st_group;
    struct strtab names;
    uint32_t unknown_type, root_type, unknown_group;
    struct memo frame_ix, stack_ix;   /* database id -> index in frames / stacks */
    struct qframe *frames;
    size_t n_frames, cap_frames;
    struct qstack *stacks;
    size_t n_stacks, cap_stacks;
    uint32_t *stack_frames;
    size_t n_sf, cap_sf;
    const struct group_attr *group;   /* what items are grouped by, NULL = nothing */
    int64_t group_key_id;             /* strings.id of group->key, 0 when never stored */
    struct memo group_of_set;         /* set id -> name id + 1, or 0 when the set lacks it */
    struct memo where_sets[MAX_FILTERS];
    bool where_impossible;
    uint32_t frame_types[MAX_FILTERS];
    struct aggtab scan, items;
    int64_t total_w;
    uint64_t n_samples;
    int64_t unit_type_id, unit_unit_id;   /* the one sample type seen, or -1 when mixed */
    bool any_unit;
    char *unit_type, *unit_unit;          /* ... its names, escaped (NULL when none or mixed) */
    struct buf tmp;
    char err[512];
};

static int qfail(struct q *q, const char *what)
{
    if (!q->err[0])
        snprintf(q->err, sizeof q->err, "%s: %s", what, q->db ? sqlite3_errmsg(q->db) : "");
    return -1;
}

static int qoom(struct q *q)
{
    if (!q->err[0])
        snprintf(q->err, sizeof q->err, "out of memory");
    return -1;
}

static int prepare(struct q *q, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK)
        return qfail(q, "preparing a query");
    return 0;
}

/* A text or blob column: never NULL, text called before bytes as SQLite asks. */
static lb_str col_str(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    return p ? (lb_str){ p, n } : (lb_str){ "", 0 };
}

static const char *buf_text(const struct buf *b)
{
    return b->data ? (const char *)b->data : "";
}

static bool esc_col(struct buf *b, sqlite3_stmt *st, int i)
{
    lb_str s = col_str(st, i);
    return esc_text(b, s.p, s.n);
}

/* ---------- attribute values as text ---------- */

static bool put_double(struct buf *b, double d)
{
    char t[NUMFMT_DOUBLE_MAX];
    return buf_append(b, t, numfmt_double(t, d));
}

/* The text of an attribute value from (kind, value, string value) columns: what --where
 * compares with, and what a group key shows (strings as stored, numbers in decimal, booleans
 * true/false, bytes in hex, arrays and kvlists as JSON). Raw: the caller escapes. */
static bool attr_text(struct buf *b, sqlite3_stmt *st, int col)
{
    const char *kind = (const char *)sqlite3_column_text(st, col);
    buf_reset(b);
    if (!kind)
        return true;
    if (!strcmp(kind, "string") || !strcmp(kind, "array") || !strcmp(kind, "kvlist")) {
        lb_str v = col_str(st, col + 2);
        return buf_append(b, v.p, v.n);
    }
    if (!strcmp(kind, "int"))
        return buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, col + 1));
    if (!strcmp(kind, "bool"))
        return sqlite3_column_int64(st, col + 1) ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    if (!strcmp(kind, "double"))
        return put_double(b, sqlite3_column_type(st, col + 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col + 1));
    if (!strcmp(kind, "bytes")) {
        const uint8_t *p = sqlite3_column_blob(st, col + 1);
        int n = sqlite3_column_bytes(st, col + 1);
        for (int i = 0; i < n; i++)
            if (!buf_printf(b, "%02x", p[i]))
                return false;
    }
    return true;
}

/* strings.id of s, 0 when the database never stored it, -1 on error. */
static int64_t string_id(struct q *q, const char *s)
{
    sqlite3_stmt *st;
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    if (prepare(q, "SELECT id FROM strings WHERE hash=?1 AND value=?2", &st) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)sqlstore_hash(s, n));
    sqlite3_bind_text(st, 2, s, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : qfail(q, "looking up a string");
    sqlite3_finalize(st);
    return id;
}

/* ---------- filters ---------- */

#define ATTR_VALUE_COLUMNS "a.kind, a.value, sv.value"
#define ATTR_VALUE_JOIN "LEFT JOIN strings sv ON sv.id = a.value AND a.kind IN ('string','array','kvlist')"

/* The attribute sets that hold key=value, for each --where. */
static int load_where(struct q *q, size_t i)
{
    const struct where *w = &q->o->where[i];
    int64_t key = string_id(q, w->key);
    if (key < 0)
        return -1;
    memo_init(&q->where_sets[i], SIZE_MAX);
    if (key == 0) {
        q->where_impossible = true;
        return 0;
    }
    sqlite3_stmt *st;
    if (prepare(q, "SELECT i.set_id, " ATTR_VALUE_COLUMNS " FROM attributes a "
                   "JOIN attribute_set_items i ON i.attribute_id = a.id " ATTR_VALUE_JOIN
                   " WHERE a.key_id = ?1", &st) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    int rc;
    size_t vlen = strlen(w->value);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!attr_text(&q->tmp, st, 1)) {
            sqlite3_finalize(st);
            return qoom(q);
        }
        if (q->tmp.len == vlen && (vlen == 0 || memcmp(q->tmp.data, w->value, vlen) == 0) &&
            !memo_put(&q->where_sets[i], (uint64_t)sqlite3_column_int64(st, 0), 1)) {
            sqlite3_finalize(st);
            return qoom(q);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return qfail(q, "reading attributes");
    if (q->where_sets[i].n == 0)
        q->where_impossible = true;
    return 0;
}

static bool in_set(const struct memo *m, int64_t set)
{
    int64_t v;
    return set > 0 && memo_get(m, (uint64_t)set, &v);
}

static bool where_ok(const struct q *q, const int64_t sets[3])
{
    for (size_t i = 0; i < q->o->n_where; i++)
        if (!in_set(&q->where_sets[i], sets[0]) && !in_set(&q->where_sets[i], sets[1]) &&
            !in_set(&q->where_sets[i], sets[2]))
            return false;
    return true;
}

/* ---------- frames and stacks ---------- */

/* A frame's name as the folded format writes it: the function, or "<mapping file>+0x<hex
 * address>" for an unsymbolized frame; escaped like the stdout sink escapes it. */
static int frame_name(struct q *q, sqlite3_stmt *st, uint32_t *name, uint32_t *type)
{
    struct buf *b = &q->tmp;
    buf_reset(b);
    bool ok;
    if (sqlite3_column_int64(st, 0))
        ok = esc_col(b, st, 2);
    else
        ok = esc_col(b, st, 4) && buf_printf(b, "+0x%" PRIx64, (uint64_t)sqlite3_column_int64(st, 1));
    if (!ok || (*name = strtab_intern(&q->names, buf_text(b), b->len)) == NONE)
        return qoom(q);
    if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
        *type = q->unknown_type;
        return 0;
    }
    buf_reset(b);
    if (!esc_col(b, st, 3) || (*type = strtab_intern(&q->names, buf_text(b), b->len)) == NONE)
        return qoom(q);
    return 0;
}

/* The index of a stored frame in q->frames, loading it the first time. */
static int64_t load_frame(struct q *q, int64_t id)
{
    int64_t ix;
    if (memo_get(&q->frame_ix, (uint64_t)id, &ix))
        return ix;
    sqlite3_stmt *st = q->st_frame;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    struct qframe f = { q->unknown_group, q->unknown_type };   /* a dangling id: shown, not fatal */
    if (rc == SQLITE_ROW && frame_name(q, st, &f.name, &f.type) != 0) {
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return qfail(q, "reading a frame");
    if (q->n_frames == q->cap_frames) {
        size_t cap = q->cap_frames ? q->cap_frames * 2 : 1024;
        struct qframe *v = realloc(q->frames, cap * sizeof *v);
        if (!v)
            return qoom(q);
        q->frames = v;
        q->cap_frames = cap;
    }
    q->frames[q->n_frames] = f;
    if (!memo_put(&q->frame_ix, (uint64_t)id, (int64_t)q->n_frames))
        return qoom(q);
    return (int64_t)q->n_frames++;
}

static bool type_wanted(const struct q *q, uint32_t type)
{
    for (size_t i = 0; i < q->o->n_frame_type; i++)
        if (q->frame_types[i] == type)
            return true;
    return false;
}

static int push_stack_frame(struct q *q, uint32_t f)
{
    if (q->n_sf == q->cap_sf) {
        size_t cap = q->cap_sf ? q->cap_sf * 2 : 4096;
        uint32_t *v = realloc(q->stack_frames, cap * sizeof *v);
        if (!v)
            return qoom(q);
        q->stack_frames = v;
        q->cap_sf = cap;
    }
    q->stack_frames[q->n_sf++] = f;
    return 0;
}

/* The index of a stored stack in q->stacks, loading its frames the first time. */
static int64_t load_stack(struct q *q, int64_t id)
{
    int64_t ix;
    if (memo_get(&q->stack_ix, (uint64_t)id, &ix))
        return ix;
    struct qstack s = { q->n_sf, 0, q->o->n_frame_type == 0 };
    sqlite3_stmt *st = q->st_stack;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t f = load_frame(q, sqlite3_column_int64(st, 0));
        if (f < 0 || push_stack_frame(q, (uint32_t)f) != 0) {
            sqlite3_reset(st);
            return -1;
        }
        s.n++;
        if (!s.type_ok && type_wanted(q, q->frames[f].type))
            s.type_ok = true;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return qfail(q, "reading a stack");
    if (q->n_stacks == q->cap_stacks) {
        size_t cap = q->cap_stacks ? q->cap_stacks * 2 : 1024;
        struct qstack *v = realloc(q->stacks, cap * sizeof *v);
        if (!v)
            return qoom(q);
        q->stacks = v;
        q->cap_stacks = cap;
    }
    q->stacks[q->n_stacks] = s;
    if (!memo_put(&q->stack_ix, (uint64_t)id, (int64_t)q->n_stacks))
        return qoom(q);
    return (int64_t)q->n_stacks++;
}

/* ---------- groups (executable, container, thread) ---------- */

/* The group value held by one attribute set: name id + 1, or 0 when the set lacks the key. */
static int64_t group_in_set(struct q *q, int64_t set)
{
    int64_t v;
    if (set <= 0 || q->group_key_id <= 0)
        return 0;
    if (memo_get(&q->group_of_set, (uint64_t)set, &v))
        return v;
    sqlite3_stmt *st = q->st_group;
    sqlite3_bind_int64(st, 1, set);
    sqlite3_bind_int64(st, 2, q->group_key_id);
    int rc = sqlite3_step(st);
    v = 0;
    if (rc == SQLITE_ROW) {
        struct buf raw;
        buf_init(&raw, SIZE_MAX);
        bool ok = attr_text(&raw, st, 0);
        buf_reset(&q->tmp);
        /* an empty value would make an empty root frame or a blank row */
        if (ok && raw.len == 0)
            ok = buf_append(&raw, "[empty]", 7);
        ok = ok && esc_text(&q->tmp, buf_text(&raw), raw.len);
        buf_free(&raw);
        uint32_t name = ok ? strtab_intern(&q->names, buf_text(&q->tmp), q->tmp.len) : NONE;
        if (name == NONE) {
            sqlite3_reset(st);
            return qoom(q);
        }
        v = (int64_t)name + 1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return qfail(q, "reading attributes");
    if (!memo_put(&q->group_of_set, (uint64_t)set, v))
        return qoom(q);
    return v;
}

/* The name id of the group of (sample set, profile set, resource set). */
static int64_t group_of(struct q *q, const int64_t sets[3])
{
    if (!q->group)
        return NONE;
    for (int i = 0; i < 3; i++) {
        int64_t v = group_in_set(q, sets[q->group->order[i]]);
        if (v < 0)
            return -1;
        if (v > 0)
            return v - 1;
    }
    return q->unknown_group;
}

/* ---------- the scan ---------- */

static bool in_range(const struct qopts *o, int64_t t)
{
    return (!o->has_since || t >= o->since) && (!o->has_until || t < o->until);
}

enum {
    COL_STACK, COL_SA, COL_PA, COL_RA, COL_SID, COL_NTS, COL_NV, COL_WEIGHT, COL_PTIME, COL_STYPE, COL_SUNIT,
    COL_TIDX, COL_TIME, COL_VALUE
};

/* The plan is fixed by hand: profiles first (by their time index when there is a window), then
 * each profile's samples as a rowid range. CROSS JOIN keeps SQLite to that order, and the
 * unary + keeps it from building a temporary index over every sample for profile_id. */
static int build_scan_sql(const struct q *q, struct buf *sql)
{
    const struct qopts *o = q->o;
    bool timed = o->has_since || o->has_until;
    bool ok = buf_printf(sql,
        "SELECT s.stack_id, s.attributes_id, p.attributes_id, r.attributes_id, s.id, "
        "s.n_timestamps, s.n_values, s.weight, p.time_unix_nano, p.sample_type_id, p.sample_unit_id%s "
        "FROM profiles p CROSS JOIN resources r ON r.id = p.resource_id "
        "CROSS JOIN samples s ON s.id BETWEEN p.first_sample_id AND p.last_sample_id AND +s.profile_id = p.id %s"
        "WHERE p.samples > 0",
        timed ? ", t.idx, t.time_unix_nano, v.value" : "",
        timed ? "LEFT JOIN sample_timestamps t ON t.sample_id = s.id "
                "LEFT JOIN sample_values v ON v.sample_id = s.id AND v.idx = t.idx AND s.n_values = s.n_timestamps "
              : "");
    if (o->has_since)
        ok = ok && buf_printf(sql, " AND p.last_time_unix_nano >= %lld", (long long)o->since);
    if (o->has_until)
        ok = ok && buf_printf(sql, " AND p.first_time_unix_nano < %lld", (long long)o->until);
    if (o->n_sample_type) {
        ok = ok && buf_printf(sql, " AND p.sample_type_id IN (SELECT id FROM strings WHERE value IN (");
        for (size_t i = 0; i < o->n_sample_type; i++)
            ok = ok && buf_printf(sql, "%s?%zu", i ? "," : "", i + 1);
        ok = ok && buf_printf(sql, "))");
    }
    ok = ok && buf_putc(sql, '\0');
    return ok ? 0 : -1;
}

/* What a scanned row weighs, or false when it falls outside the time range. */
static bool row_weight(const struct qopts *o, sqlite3_stmt *st, int64_t *w)
{
    int64_t weight = sqlite3_column_int64(st, COL_WEIGHT);
    if (!o->has_since && !o->has_until) {
        *w = weight;
        return true;
    }
    int64_t nts = sqlite3_column_int64(st, COL_NTS), nv = sqlite3_column_int64(st, COL_NV);
    if (nts == 0 || sqlite3_column_type(st, COL_TIME) == SQLITE_NULL) {
        *w = weight;
        return in_range(o, sqlite3_column_int64(st, COL_PTIME));
    }
    if (!in_range(o, sqlite3_column_int64(st, COL_TIME)))
        return false;
    if (nv == 0)
        *w = 1;
    else if (nv == nts)
        *w = sqlite3_column_int64(st, COL_VALUE);
    else if (sqlite3_column_int64(st, COL_TIDX) == 0)
        *w = weight;
    else
        return false;
    return true;
}

static void note_unit(struct q *q, sqlite3_stmt *st)
{
    int64_t t = sqlite3_column_int64(st, COL_STYPE), u = sqlite3_column_int64(st, COL_SUNIT);
    if (!q->any_unit) {
        q->any_unit = true;
        q->unit_type_id = t;
        q->unit_unit_id = u;
    } else if (q->unit_type_id != t || q->unit_unit_id != u) {
        q->unit_type_id = q->unit_unit_id = -1;
    }
}

static int scan(struct q *q)
{
    struct buf sql;
    sqlite3_stmt *st;
    buf_init(&sql, 1 << 20);
    if (build_scan_sql(q, &sql) != 0) {
        buf_free(&sql);
        return qoom(q);
    }
    int rc = prepare(q, (const char *)sql.data, &st);
    buf_free(&sql);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < q->o->n_sample_type; i++)
        sqlite3_bind_text(st, (int)i + 1, q->o->sample_type[i], -1, SQLITE_STATIC);
    int64_t last_sample = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t w, sets[3] = { sqlite3_column_int64(st, COL_SA), sqlite3_column_int64(st, COL_PA),
                               sqlite3_column_int64(st, COL_RA) };
        if (!row_weight(q->o, st, &w) || !where_ok(q, sets))
            continue;
        int64_t six = load_stack(q, sqlite3_column_int64(st, COL_STACK));
        if (six < 0)
            break;
        if (!q->stacks[six].type_ok)
            continue;
        int64_t k[4] = { six, sets[0], sets[1], sets[2] };
        if (!agg_add(&q->scan, k, w)) {
            qoom(q);
            break;
        }
        q->total_w = sat_add(q->total_w, w);
        int64_t sid = sqlite3_column_int64(st, COL_SID);
        if (sid != last_sample) {
            q->n_samples++;
            last_sample = sid;
        }
        note_unit(q, st);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        qfail(q, "scanning samples");
    sqlite3_finalize(st);
    return q->err[0] ? -1 : 0;
}

/* (stack, attribute sets) -> (stack, group). */
static int group_items(struct q *q)
{
    for (size_t i = 0; i < q->scan.n; i++) {
        const struct agg_entry *e = &q->scan.v[i];
        int64_t g = group_of(q, &e->k[1]);
        if (g < 0)
            return -1;
        int64_t k[4] = { e->k[0], g, 0, 0 };
        if (!agg_add(&q->items, k, e->w))
            return qoom(q);
    }
    agg_free(&q->scan);
    return 0;
}

/* ---------- paths: root first ---------- */

/* The item's frames root first (its group first when there is one) into *out. */
static int item_path(struct q *q, const struct agg_entry *it, struct fg_elem **out, size_t *cap, size_t *n)
{
    const struct qstack *s = &q->stacks[it->k[0]];
    size_t need = s->n + 1;
    if (need > *cap) {
        struct fg_elem *v = realloc(*out, need * sizeof *v);
        if (!v)
            return qoom(q);
        *out = v;
        *cap = need;
    }
    size_t k = 0;
    if (it->k[1] != NONE)
        (*out)[k++] = (struct fg_elem){ (uint32_t)it->k[1], q->root_type };
    for (size_t i = s->n; i-- > 0;) {
        const struct qframe *f = &q->frames[q->stack_frames[s->off + i]];
        (*out)[k++] = (struct fg_elem){ f->name, f->type };
    }
    *n = k;
    return 0;
}

/* ---------- folded ---------- */

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int out_folded(struct q *q)
{
    struct strtab lines = { 0 };
    int64_t *weights = NULL;
    size_t wcap = 0;
    struct fg_elem *path = NULL;
    size_t pcap = 0, n;
    struct buf line;
    int rc = -1;
    buf_init(&line, SIZE_MAX);
    for (size_t i = 0; i < q->items.n; i++) {
        if (item_path(q, &q->items.v[i], &path, &pcap, &n) != 0)
            goto out;
        buf_reset(&line);
        bool ok = true;
        for (size_t j = 0; j < n && ok; j++)
            ok = (j == 0 || buf_putc(&line, ';')) &&
                 buf_append(&line, q->names.v[path[j].name], strlen(q->names.v[path[j].name]));
        uint32_t id = ok ? strtab_intern(&lines, buf_text(&line), line.len) : NONE;
        if (id == NONE) {
            qoom(q);
            goto out;
        }
        if (id >= wcap) {
            size_t cap = wcap ? wcap * 2 : 1024;
            int64_t *v = realloc(weights, cap * sizeof *v);
            if (!v) {
                qoom(q);
                goto out;
            }
            memset(v + wcap, 0, (cap - wcap) * sizeof *v);
            weights = v;
            wcap = cap;
        }
        weights[id] = sat_add(weights[id], q->items.v[i].w);
    }
    /* Lines are sorted as whole lines, weight included, like the stdout sink sorts them. */
    char **all = calloc(lines.n ? lines.n : 1, sizeof *all);
    if (!all) {
        qoom(q);
        goto out;
    }
    size_t made = 0;
    for (; made < lines.n; made++) {
        buf_reset(&line);
        if (!buf_printf(&line, "%s %lld", lines.v[made], (long long)weights[made]) || !buf_putc(&line, '\0') ||
            !(all[made] = strdup((const char *)line.data)))
            break;
    }
    if (made == lines.n) {
        qsort(all, lines.n, sizeof *all, cmp_lines);
        for (size_t i = 0; i < lines.n; i++)
            fprintf(stdout, "%s\n", all[i]);
        rc = 0;
    } else {
        qoom(q);
    }
    for (size_t i = 0; i < made; i++)
        free(all[i]);
    free(all);
out:
    buf_free(&line);
    free(path);
    free(weights);
    strtab_free(&lines);
    return rc;
}

/* ---------- top ---------- */

struct top_row {
    uint32_t key;
    int64_t self, total;
    int64_t first, second;   /* the sort keys: (self, total) or (total, self) */
    const char *name;        /* the last one */
};

/* Heaviest first, names in byte order among equals, so the table is deterministic. */
static int cmp_top(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    if (x->first != y->first)
        return x->first > y->first ? -1 : 1;
    if (x->second != y->second)
        return x->second > y->second ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Adds one item's weight: self to its leaf's key, total once to each distinct key of the stack. */
static int top_add_frames(struct q *q, const struct agg_entry *it, int64_t *self, int64_t *total,
                          bool *seen, uint32_t **keys, size_t *kcap)
{
    const struct qstack *s = &q->stacks[it->k[0]];
    bool by_type = q->o->by == BY_FRAME_TYPE;
    if (s->n == 0)
        return 0;
    if (s->n > *kcap) {
        uint32_t *v = realloc(*keys, s->n * sizeof *v);
        if (!v)
            return qoom(q);
        *keys = v;
        *kcap = s->n;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        const struct qframe *f = &q->frames[q->stack_frames[s->off + i]];
        (*keys)[i] = by_type ? f->type : f->name;
    }
    self[(*keys)[0]] = sat_add(self[(*keys)[0]], it->w);
    seen[(*keys)[0]] = true;
    qsort(*keys, s->n, sizeof **keys, cmp_u32);
    for (uint32_t i = 0; i < s->n; i++) {
        if (i > 0 && (*keys)[i] == (*keys)[i - 1])
            continue;
        total[(*keys)[i]] = sat_add(total[(*keys)[i]], it->w);
        seen[(*keys)[i]] = true;
    }
    return 0;
}

static const char *by_heading(enum by by)
{
    switch (by) {
    case BY_FUNCTION: return "FUNCTION";
    case BY_FRAME_TYPE: return "FRAME TYPE";
    case BY_EXECUTABLE: return "EXECUTABLE";
    case BY_CONTAINER: return "CONTAINER";
    case BY_THREAD: return "THREAD";
    }
    return "";
}

static double pct(int64_t part, int64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static int out_top(struct q *q)
{
    size_t n = q->names.n;
    int64_t *self = calloc(n ? n : 1, sizeof *self), *total = calloc(n ? n : 1, sizeof *total);
    bool *seen = calloc(n ? n : 1, sizeof *seen);
    uint32_t *keys = NULL;
    size_t kcap = 0;
    struct top_row *rows = NULL;
    int rc = -1;
    if (!self || !total || !seen) {
        qoom(q);
        goto out;
    }
    for (size_t i = 0; i < q->items.n; i++) {
        const struct agg_entry *it = &q->items.v[i];
        if (q->group) {
            uint32_t g = (uint32_t)it->k[1];
            self[g] = sat_add(self[g], it->w);
            total[g] = sat_add(total[g], it->w);
            seen[g] = true;
        } else if (top_add_frames(q, it, self, total, seen, &keys, &kcap) != 0) {
            goto out;
        }
    }
    size_t nr = 0;
    rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows) {
        qoom(q);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (seen[i])
            rows[nr++] = (struct top_row){ (uint32_t)i, self[i], total[i], q->o->total ? total[i] : self[i],
                                           q->o->total ? self[i] : total[i], q->names.v[i] };
    qsort(rows, nr, sizeof *rows, cmp_top);
    printf("# %" PRIu64 " samples, weight %lld", q->n_samples, (long long)q->total_w);
    if (q->unit_type)
        printf(" (%s/%s)", q->unit_type, q->unit_unit);
    else if (q->any_unit)
        printf(" (mixed sample types: choose one with --sample-type)");
    printf(", heaviest %s first\n", q->o->total ? "total" : "self");
    printf("%12s %7s %12s %7s  %s\n", "SELF", "SELF%", "TOTAL", "TOTAL%", by_heading(q->o->by));
    for (size_t i = 0; i < nr && (q->o->limit == 0 || i < q->o->limit); i++)
        printf("%12lld %6.2f%% %12lld %6.2f%%  %s\n", (long long)rows[i].self, pct(rows[i].self, q->total_w),
               (long long)rows[i].total, pct(rows[i].total, q->total_w), q->names.v[rows[i].key]);
    rc = 0;
out:
    free(self);
    free(total);
    free(seen);
    free(keys);
    free(rows);
    return rc;
}

/* The names of the one sample type scanned, when there was exactly one. */
static int load_unit(struct q *q)
{
    if (!q->any_unit || q->unit_type_id < 0)
        return 0;
    sqlite3_stmt *st;
    if (prepare(q, "SELECT (SELECT value FROM strings WHERE id=?1), (SELECT value FROM strings WHERE id=?2)", &st) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, q->unit_type_id);
    sqlite3_bind_int64(st, 2, q->unit_unit_id);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        if (esc_col(&b, st, 0) && buf_putc(&b, '\0'))
            q->unit_type = strdup(buf_text(&b));
        buf_reset(&b);
        if (esc_col(&b, st, 1) && buf_putc(&b, '\0'))
            q->unit_unit = strdup(buf_text(&b));
        buf_free(&b);
        if (!q->unit_type || !q->unit_unit)
            rc = qoom(q);
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---------- flamegraph ---------- */

/* What the x axis counts: the sample type for counts ("samples"), else its unit. */
static const char *count_name(const struct q *q)
{
    if (!q->unit_type)
        return "weight";
    return strcmp(q->unit_unit, "count") == 0 || !q->unit_unit[0] ? q->unit_type : q->unit_unit;
}

static int out_flamegraph(struct q *q)
{
    struct fg_path *paths = calloc(q->items.n ? q->items.n : 1, sizeof *paths);
    struct fg_elem *scratch = NULL;
    size_t scap = 0, n;
    int rc = -1;
    if (!paths)
        return qoom(q);
    for (size_t i = 0; i < q->items.n; i++) {
        if (item_path(q, &q->items.v[i], &scratch, &scap, &n) != 0)
            goto out;
        struct fg_elem *e = malloc((n ? n : 1) * sizeof *e);
        if (!e) {
            qoom(q);
            goto out;
        }
        memcpy(e, scratch, n * sizeof *e);
        paths[i] = (struct fg_path){ e, n, q->items.v[i].w };
    }
    struct fg_options fo = {
        .title = q->o->title ? q->o->title : "Flame Graph",
        .subtitle = q->o->cmdline.data ? (const char *)q->o->cmdline.data : "",
        .count_name = count_name(q),
        .width = q->o->width,
    };
    if (flamegraph_write(stdout, (const char *const *)q->names.v, q->names.n, paths, q->items.n, &fo) != 0)
        snprintf(q->err, sizeof q->err, "writing the SVG failed");
    else
        rc = 0;
out:
    for (size_t i = 0; i < q->items.n; i++)
        free((void *)paths[i].e);
    free(paths);
    free(scratch);
    return rc;
}

/* ---------- options ---------- */

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
"Usage: lazybackend top        [--db FILE] [FILTERS] [--by function|executable|frame-type|container|thread]\n"
"                              [--self|--total] [--limit N]\n"
"       lazybackend folded     [--db FILE] [FILTERS] [--root none|executable|container|thread]\n"
"       lazybackend flamegraph [--db FILE] [FILTERS] [--root ...] [--title TEXT] [--width PX] > out.svg\n"
"\n"
"Reads a database written by `--sink sqlite` (it may be written at the same time).\n"
"  --db FILE            the database (default lazybackend.db)\n"
"FILTERS (all must hold; repeat an option to accept any of its values):\n"
"  --since T, --until T sample timestamps in [since, until): RFC3339 UTC (2025-10-31T05:09:00Z),\n"
"                       unix seconds (1761887340), or relative to now (-15m, -2h, -30s, -1d)\n"
"  --where KEY=VALUE    an attribute of the sample, its profile or its resource\n"
"                       (container.id=..., process.executable.name=java, thread.name=...)\n"
"  --sample-type TYPE   profiles of this sample type (samples, off_cpu, ...)\n"
"  --frame-type TYPE    stacks with at least one frame of this type (native, kernel, jvm, go, ...)\n"
"top: the heaviest entries; SELF = weight where the entry is the leaf frame, TOTAL = weight of\n"
"     the stacks it appears in (once per stack); sorted by --self (default) or --total;\n"
"     --limit N rows (default 20, 0 = all).\n"
"folded: root;...;leaf weight lines, sorted (flamegraph.pl, speedscope, inferno read them);\n"
"     --root adds the process name, container id or thread name as the root frame.\n"
"flamegraph: a self-contained interactive SVG (hover, click to zoom, Ctrl+F to search).\n");
    (void)cmd;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "lazybackend: %s needs a value\n", name);
        *bad = true;
        return "";
    }
    return argv[++*i];
}

static bool is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == 0 || a[n] == '=');
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

/* RFC3339: 2025-10-31T05:09:00Z, with optional fraction and a Z or +hh:mm offset. */
static bool parse_rfc3339(const char *s, int64_t *ns)
{
    int Y, M, D, h, m, sec, oh = 0, om = 0;
    const char *p = s;
    if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' || !digits(&p, 2, &D) ||
        (*p != 'T' && *p != 't' && *p != ' ') || !(++p) || !digits(&p, 2, &h) || *p++ != ':' ||
        !digits(&p, 2, &m) || *p++ != ':' || !digits(&p, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return false;
    int64_t frac = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; isdigit((unsigned char)*p); p++, nd++)
            if (nd < 9)
                frac = frac * 10 + (*p - '0');
        if (nd == 0)
            return false;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec -
                   sign * (oh * 3600 + om * 60);
    *ns = secs * 1000000000 + frac;
    return true;
}

/* -15m, -2h, -30s, -1d: relative to now. */
static bool parse_relative(const char *s, int64_t *ns)
{
    if (*s != '-' || !isdigit((unsigned char)s[1]))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s + 1, &end, 10);
    int64_t unit;
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return false;
    }
    if (errno || end[1] || v > 100LL * 365 * 86400 / unit)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *ns = ((int64_t)ts.tv_sec - v * unit) * 1000000000 + ts.tv_nsec;
    return true;
}

/* Unix seconds, possibly with a fraction: 1761887340 or 1761887340.5. */
static bool parse_unix(const char *s, int64_t *ns)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v > INT64_MAX / 1000000000 - 1)
        return false;
    int64_t frac = 0;
    if (*end == '.') {
        int nd = 0;
        for (end++; isdigit((unsigned char)*end); end++, nd++)
            if (nd < 9)
                frac = frac * 10 + (*end - '0');
        for (; nd < 9; nd++)
            frac *= 10;
    }
    if (*end)
        return false;
    *ns = v * 1000000000 + frac;
    return true;
}

static bool parse_time(const char *s, int64_t *ns)
{
    return parse_rfc3339(s, ns) || parse_relative(s, ns) || parse_unix(s, ns);
}

static bool parse_by(const char *v, enum by *by)
{
    static const struct { const char *name; enum by by; } T[] = {
        { "function", BY_FUNCTION }, { "frame-type", BY_FRAME_TYPE }, { "executable", BY_EXECUTABLE },
        { "container", BY_CONTAINER }, { "thread", BY_THREAD },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(v, T[i].name) == 0) {
            *by = T[i].by;
            return true;
        }
    return false;
}

static bool parse_root(const char *v, const struct group_attr **root)
{
    if (strcmp(v, "none") == 0)
        *root = NULL;
    else if (strcmp(v, "executable") == 0)
        *root = &GROUP_EXECUTABLE;
    else if (strcmp(v, "container") == 0)
        *root = &GROUP_CONTAINER;
    else if (strcmp(v, "thread") == 0)
        *root = &GROUP_THREAD;
    else
        return false;
    return true;
}

static int bad(const char *name, const char *v)
{
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (see --help)\n", name, v);
    return 2;
}

static int add_filter(const char **list, size_t *n, const char *name, const char *v)
{
    if (*n == MAX_FILTERS) {
        fprintf(stderr, "lazybackend: at most %d %s options\n", MAX_FILTERS, name);
        return 2;
    }
    list[(*n)++] = v;
    return 0;
}

/* An option only some commands take. */
static int not_for(const struct qopts *o, const char *opt, bool ok)
{
    if (ok)
        return 0;
    fprintf(stderr, "lazybackend %s: %s does not apply here (see --help)\n", o->name, opt);
    return 2;
}

static int parse_args(struct qopts *o, int argc, char **argv)
{
    bool b = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        unsigned long long u;
        char *end;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, o->name);
            exit(0);
        } else if (is_opt(a, "--db")) {
            o->db = opt_value(argc, argv, &i, "--db", &b);
        } else if (is_opt(a, "--by")) {
            v = opt_value(argc, argv, &i, "--by", &b);
            rc = not_for(o, "--by", o->cmd == CMD_TOP);
            if (!rc && !b && !parse_by(v, &o->by))
                rc = bad("--by", v);
        } else if (strcmp(a, "--self") == 0 || strcmp(a, "--total") == 0) {
            rc = not_for(o, a, o->cmd == CMD_TOP);
            o->total = strcmp(a, "--total") == 0;
        } else if (is_opt(a, "--since") || is_opt(a, "--until")) {
            bool since = is_opt(a, "--since");
            v = opt_value(argc, argv, &i, since ? "--since" : "--until", &b);
            if (!b && !parse_time(v, since ? &o->since : &o->until))
                rc = bad(since ? "--since" : "--until", v);
            *(since ? &o->has_since : &o->has_until) = true;
        } else if (is_opt(a, "--where")) {
            v = opt_value(argc, argv, &i, "--where", &b);
            const char *eq = strchr(v, '=');
            if (!b && (!eq || eq == v))
                rc = bad("--where (KEY=VALUE)", v);
            else if (!b && o->n_where == MAX_FILTERS)
                rc = bad("--where (too many)", v);
            else if (!b && !(o->where[o->n_where].key = strndup(v, (size_t)(eq - v))))
                rc = bad("--where (out of memory)", v);
            else if (!b)
                o->where[o->n_where++].value = eq + 1;
        } else if (is_opt(a, "--sample-type")) {
            v = opt_value(argc, argv, &i, "--sample-type", &b);
            rc = add_filter(o->sample_type, &o->n_sample_type, "--sample-type", v);
        } else if (is_opt(a, "--frame-type")) {
            v = opt_value(argc, argv, &i, "--frame-type", &b);
            rc = add_filter(o->frame_type, &o->n_frame_type, "--frame-type", v);
        } else if (is_opt(a, "--limit")) {
            v = opt_value(argc, argv, &i, "--limit", &b);
            rc = not_for(o, "--limit", o->cmd == CMD_TOP);
            errno = 0;
            u = strtoull(v, &end, 10);
            if (!rc && !b && (errno || end == v || *end || *v == '-'))
                rc = bad("--limit", v);
            o->limit = (size_t)u;
        } else if (is_opt(a, "--root")) {
            v = opt_value(argc, argv, &i, "--root", &b);
            rc = not_for(o, "--root", o->cmd != CMD_TOP);
            if (!rc && !b && !parse_root(v, &o->root))
                rc = bad("--root", v);
        } else if (is_opt(a, "--title")) {
            o->title = opt_value(argc, argv, &i, "--title", &b);
            rc = not_for(o, "--title", o->cmd == CMD_FLAMEGRAPH);
        } else if (is_opt(a, "--width")) {
            v = opt_value(argc, argv, &i, "--width", &b);
            rc = not_for(o, "--width", o->cmd == CMD_FLAMEGRAPH);
            errno = 0;
            u = strtoull(v, &end, 10);
            if (!rc && !b && (errno || end == v || *end || u < 200 || u > 100000))
                rc = bad("--width", v);
            o->width = (unsigned)u;
        } else {
            fprintf(stderr, "lazybackend %s: unexpected argument '%s' (see --help)\n", o->name, a);
            rc = 2;
        }
        if (b || rc)
            return 2;
    }
    if (o->has_since && o->has_until && o->since >= o->until) {
        fprintf(stderr, "lazybackend %s: --since must be before --until\n", o->name);
        return 2;
    }
    return 0;
}

/* ---------- main ---------- */

static int prepare_all(struct q *q)
{
    return prepare(q, "SELECT f.symbolized, f.address, fn.value, t.value, mf.value FROM frames f "
                      "LEFT JOIN strings fn ON fn.id = f.function_id LEFT JOIN strings t ON t.id = f.type_id "
                      "LEFT JOIN mappings m ON m.id = f.mapping_id LEFT JOIN strings mf ON mf.id = m.file_id "
                      "WHERE f.id = ?1", &q->st_frame) ||
           prepare(q, "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY pos", &q->st_stack) ||
           prepare(q, "SELECT " ATTR_VALUE_COLUMNS " FROM attribute_set_items i "
                      "JOIN attributes a ON a.id = i.attribute_id " ATTR_VALUE_JOIN
                      " WHERE i.set_id = ?1 AND a.key_id = ?2 ORDER BY i.pos LIMIT 1", &q->st_group);
}

static int setup(struct q *q)
{
    const struct qopts *o = q->o;
    if ((q->unknown_type = strtab_cstr(&q->names, "unknown")) == NONE ||
        (q->root_type = strtab_cstr(&q->names, "\x01root")) == NONE ||
        (q->unknown_group = strtab_cstr(&q->names, "[unknown]")) == NONE)
        return qoom(q);
    for (size_t i = 0; i < o->n_frame_type; i++)
        if ((q->frame_types[i] = strtab_cstr(&q->names, o->frame_type[i])) == NONE)
            return qoom(q);
    if (o->cmd == CMD_TOP)
        q->group = o->by == BY_EXECUTABLE ? &GROUP_EXECUTABLE : o->by == BY_CONTAINER ? &GROUP_CONTAINER
                 : o->by == BY_THREAD ? &GROUP_THREAD : NULL;
    else
        q->group = o->root;
    if (q->group && (q->group_key_id = string_id(q, q->group->key)) < 0)
        return -1;
    for (size_t i = 0; i < o->n_where; i++)
        if (load_where(q, i) != 0)
            return -1;
    return prepare_all(q);
}

static int run(struct q *q)
{
    if (setup(q) != 0)
        return -1;
    if (!q->where_impossible && (scan(q) != 0 || group_items(q) != 0 || load_unit(q) != 0))
        return -1;
    switch (q->o->cmd) {
    case CMD_TOP: return out_top(q);
    case CMD_FOLDED: return out_folded(q);
    case CMD_FLAMEGRAPH: return out_flamegraph(q);
    }
    return -1;
}

static void q_free(struct q *q)
{
    sqlite3_finalize(q->st_frame);
    sqlite3_finalize(q->st_stack);
    sqlite3_finalize(q->st_group);
    strtab_free(&q->names);
    memo_free(&q->frame_ix);
    memo_free(&q->stack_ix);
    memo_free(&q->group_of_set);
    for (size_t i = 0; i < MAX_FILTERS; i++)
        memo_free(&q->where_sets[i]);
    free(q->frames);
    free(q->stacks);
    free(q->stack_frames);
    agg_free(&q->scan);
    agg_free(&q->items);
    buf_free(&q->tmp);
    free(q->unit_type);
    free(q->unit_unit);
    if (q->db)
        sqlite3_close(q->db);
}

static void record_cmdline(struct qopts *o, const char *command, int argc, char **argv)
{
    buf_init(&o->cmdline, 4096);
    bool ok = buf_printf(&o->cmdline, "lazybackend %s", command);
    for (int i = 0; ok && i < argc; i++)
        ok = buf_putc(&o->cmdline, ' ') && esc_text(&o->cmdline, argv[i], strlen(argv[i]));
    if (!ok || !buf_putc(&o->cmdline, '\0'))
        buf_free(&o->cmdline);
}

int sqlite_query_main(const char *command, int argc, char **argv)
{
    struct qopts o = { .name = command, .db = SQLITE_SINK_DEFAULT_PATH, .limit = 20, .width = 1200 };
    if (strcmp(command, "top") == 0)
        o.cmd = CMD_TOP;
    else if (strcmp(command, "folded") == 0)
        o.cmd = CMD_FOLDED;
    else if (strcmp(command, "flamegraph") == 0)
        o.cmd = CMD_FLAMEGRAPH;
    else
        return 2;
    int rc = parse_args(&o, argc, argv);
    if (rc == 0) {
        record_cmdline(&o, command, argc, argv);
        struct q q = { .o = &o };
        memo_init(&q.frame_ix, SIZE_MAX);
        memo_init(&q.stack_ix, SIZE_MAX);
        memo_init(&q.group_of_set, SIZE_MAX);
        buf_init(&q.tmp, SIZE_MAX);
        rc = 1;
        /* one read transaction: every query of the command sees the same snapshot */
        if (sqlstore_open_reader(o.db, &q.db, q.err, sizeof q.err) == 0 &&
            sqlstore_exec(q.db, "BEGIN", q.err, sizeof q.err) == 0 && run(&q) == 0)
            rc = 0;
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
            snprintf(q.err, sizeof q.err, "writing the output: %s", strerror(errno));
            rc = 1;
        }
        if (rc != 0)
            fprintf(stderr, "lazybackend %s: %s\n", command, q.err[0] ? q.err : "failed");
        q_free(&q);
        buf_free(&o.cmdline);
    }
    for (size_t i = 0; i < o.n_where; i++)
        free((void *)o.where[i].key);
    return rc;
}
