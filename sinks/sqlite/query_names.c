/*
 * query_names.c - stored ids to what the query commands show: a frame's name as the folded
 * format writes it, a stack as its frames, the group value (executable, container, thread)
 * of an attribute set, an attribute value as text, the names of the sample type.
 *
 * Each is read from the database the first time the scan meets its id and memoised, so a
 * command reads every frame, stack and set once however many samples share it; names are
 * interned in q->names, so the answer compares and sums integers, not strings.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/sqlite/internal.h"

const struct group_attr GROUP_EXECUTABLE = { "process.executable.name", { 0, 1, 2 } };
const struct group_attr GROUP_CONTAINER = { "container.id", { 2, 1, 0 } };
const struct group_attr GROUP_THREAD = { "thread.name", { 0, 1, 2 } };

/* ---------- statements ---------- */

int q_prepare_names(struct q *q)
{
    return q_prepare(q, "SELECT f.symbolized, f.address, fn.value, t.value, mf.value FROM frames f "
                        "LEFT JOIN strings fn ON fn.id = f.function_id LEFT JOIN strings t ON t.id = f.type_id "
                        "LEFT JOIN mappings m ON m.id = f.mapping_id LEFT JOIN strings mf ON mf.id = m.file_id "
                        "WHERE f.id = ?1", &q->st_frame) ||
           q_prepare(q, "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY pos", &q->st_stack) ||
           q_prepare(q, "SELECT " ATTR_VALUE_COLUMNS " FROM attribute_set_items i "
                        "JOIN attributes a ON a.id = i.attribute_id " ATTR_VALUE_JOIN
                        " WHERE i.set_id = ?1 AND a.key_id = ?2 ORDER BY i.pos LIMIT 1", &q->st_group);
}

/* ---------- columns as text ---------- */

/* A text or blob column: never NULL, text called before bytes as SQLite asks. */
static lb_str col_str(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    return p ? (lb_str){ p, n } : (lb_str){ "", 0 };
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
bool q_attr_text(struct buf *b, sqlite3_stmt *st, int col)
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
int64_t q_string_id(struct q *q, const char *s)
{
    sqlite3_stmt *st;
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    if (q_prepare(q, "SELECT id FROM strings WHERE hash=?1 AND value=?2", &st) != 0)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)sqlstore_hash(s, n));
    sqlite3_bind_text(st, 2, s, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : qfail(q, "looking up a string");
    sqlite3_finalize(st);
    return id;
}

/* ---------- the sample type ---------- */

/* The names of the one sample type scanned, when there was exactly one. */
int q_load_unit(struct q *q)
{
    if (!q->any_unit || q->unit_type_id < 0)
        return 0;
    sqlite3_stmt *st;
    if (q_prepare(q, "SELECT (SELECT value FROM strings WHERE id=?1), (SELECT value FROM strings WHERE id=?2)", &st) != 0)
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
    struct qframe *v = q_grow(q->frames, q->n_frames, &q->cap_frames, sizeof *v, 1024);
    if (!v)
        return qoom(q);
    q->frames = v;
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
    uint32_t *v = q_grow(q->stack_frames, q->n_sf, &q->cap_sf, sizeof *v, 4096);
    if (!v)
        return qoom(q);
    q->stack_frames = v;
    q->stack_frames[q->n_sf++] = f;
    return 0;
}

/* The index of a stored stack in q->stacks, loading its frames the first time. */
int64_t q_load_stack(struct q *q, int64_t id)
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
    struct qstack *v = q_grow(q->stacks, q->n_stacks, &q->cap_stacks, sizeof *v, 1024);
    if (!v)
        return qoom(q);
    q->stacks = v;
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
        bool ok = q_attr_text(&raw, st, 0);
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
int64_t q_group_of(struct q *q, const int64_t sets[3])
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
