/*
 * query_names.c - stored ids to what the query commands show: a frame's name as the folded
 * format writes it, a stack as its frames, the group value (executable, container, thread)
 * of an attribute set, an attribute value as text, the names of the sample type.
 *
 * Each is read from the database the first time the scan meets its id and memoised, so a
 * command reads every frame, stack and set once however many samples share it; names are
 * interned in q->r->names, so the answer compares and sums integers, not strings.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/sqlite/internal.h"

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
    if (!q->r->any_unit || q->unit_type_id < 0)
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
            q->r->unit_type = strdup(buf_text(&b));
        buf_reset(&b);
        if (esc_col(&b, st, 1) && buf_putc(&b, '\0'))
            q->r->unit_unit = strdup(buf_text(&b));
        buf_free(&b);
        if (!q->r->unit_type || !q->r->unit_unit)
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
    if (!ok || (*name = strtab_intern(&q->r->names, buf_text(b), b->len)) == NONE)
        return qoom(q);
    if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
        *type = q->r->unknown_type;
        return 0;
    }
    buf_reset(b);
    if (!esc_col(b, st, 3) || (*type = strtab_intern(&q->r->names, buf_text(b), b->len)) == NONE)
        return qoom(q);
    return 0;
}

/* The index of a stored frame in q->r->frames, loading it the first time. */
static int64_t load_frame(struct q *q, int64_t id)
{
    int64_t ix;
    if (memo_get(&q->frame_ix, (uint64_t)id, &ix))
        return ix;
    sqlite3_stmt *st = q->st_frame;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    struct qframe f = { q->r->unknown_group, q->r->unknown_type };   /* a dangling id: shown, not fatal */
    if (rc == SQLITE_ROW && frame_name(q, st, &f.name, &f.type) != 0) {
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return qfail(q, "reading a frame");
    ix = qresult_add_frame(q->r, f.name, f.type);
    if (ix >= 0 && !memo_put(&q->frame_ix, (uint64_t)id, ix))
        return qoom(q);
    return ix;
}

/* The index of a stored stack in q->r->stacks, loading its frames the first time. */
int64_t q_load_stack(struct q *q, int64_t id)
{
    int64_t ix;
    if (memo_get(&q->stack_ix, (uint64_t)id, &ix))
        return ix;
    if ((ix = qresult_begin_stack(q->r, q->o)) < 0)
        return -1;
    sqlite3_stmt *st = q->st_stack;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t f = load_frame(q, sqlite3_column_int64(st, 0));
        if (f < 0 || qresult_stack_push(q->r, q->o, ix, (uint32_t)f) != 0) {
            sqlite3_reset(st);
            return -1;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return qfail(q, "reading a stack");
    if (!memo_put(&q->stack_ix, (uint64_t)id, ix))
        return qoom(q);
    return ix;
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
        uint32_t name = ok ? strtab_intern(&q->r->names, buf_text(&q->tmp), q->tmp.len) : NONE;
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
    return q->r->unknown_group;
}
