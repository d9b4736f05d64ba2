/*
 * writer_attrs.c - attributes into the SQLite store: each (key, value, unit) a row of
 * `attributes`, each attribute list a row of `attribute_sets` (writer_dedup.c), both stored
 * once per database.
 *
 * A value is stored by kind: strings as string ids, numbers and booleans as themselves, bytes
 * as a blob, arrays and kvlists as the string id of their JSON text (the only form of them
 * that means the same in every request). The canonical key of a row is built from the same
 * ids and bits, so equal attributes get one row whatever request they came in.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/sqlite/internal.h"

enum attr_kind { K_EMPTY, K_STRING, K_INT, K_DOUBLE, K_BOOL, K_BYTES, K_ARRAY, K_KVLIST };
static const char *const KIND_NAME[] = {
    [K_EMPTY] = "empty", [K_STRING] = "string", [K_INT] = "int", [K_DOUBLE] = "double",
    [K_BOOL] = "bool", [K_BYTES] = "bytes", [K_ARRAY] = "array", [K_KVLIST] = "kvlist",
};

/* ---------- arrays and kvlists as JSON ---------- */

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

/* ---------- attribute rows ---------- */

/* A double's key bits: every NaN is one NULL in the table, and one key here. */
static bool key_double(struct buf *b, double d)
{
    uint64_t bits = 0;
    if (!isnan(d))
        memcpy(&bits, &d, sizeof bits);
    return sq_key_u64(b, bits);
}

/* Binds ?4 (value) of the attribute statements and appends the value to the key. */
static int attr_value(struct sq *q, const struct lb_value *v, enum attr_kind *kind, int64_t *str_id)
{
    *str_id = 0;
    switch (v->kind) {
    case LB_VALUE_STRING: *kind = K_STRING; *str_id = sq_intern_str(q, v->u.str); break;
    case LB_VALUE_BOOL:   *kind = K_BOOL; break;
    case LB_VALUE_INT:    *kind = K_INT; break;
    case LB_VALUE_DOUBLE: *kind = K_DOUBLE; break;
    case LB_VALUE_BYTES:  *kind = K_BYTES; break;
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST:
        *kind = v->kind == LB_VALUE_ARRAY ? K_ARRAY : K_KVLIST;
        buf_reset(&q->json);
        if (!json_value(&q->json, v))
            return (int)sq_fail(q, "storing an attribute", "array or kvlist value over 16 MiB as JSON");
        *str_id = sq_intern_str(q, (lb_str){ (const char *)q->json.data, q->json.len });
        /* the JSON text is for people; the typed content, to give the value back, is this */
        if (*str_id >= 0 && !lb_value_encode(v, &q->venc))
            return (int)sq_fail(q, "storing an attribute", "array or kvlist value malformed or over 16 MiB");
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
    if (kind == K_ARRAY || kind == K_KVLIST)
        sqlite3_bind_blob64(st, 6, q->venc.len ? (const void *)q->venc.data : "", q->venc.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
}

/* Canonical key: key id, kind, unit id, then the value (8 bytes, or the raw bytes; for arrays
 * and kvlists the JSON text's id, then the encoded content). */
static bool attr_key(struct sq *q, int64_t key_id, enum attr_kind kind, int64_t unit_id,
                     int64_t str_id, const struct lb_value *v)
{
    struct buf *b = &q->key;
    buf_reset(b);
    if (!sq_key_u64(b, (uint64_t)key_id) || !sq_key_u64(b, kind) || !sq_key_u64(b, (uint64_t)unit_id))
        return false;
    switch (kind) {
    case K_STRING: return sq_key_u64(b, (uint64_t)str_id);
    case K_ARRAY: case K_KVLIST:
        return sq_key_u64(b, (uint64_t)str_id) && (q->venc.len == 0 || buf_append(b, q->venc.data, q->venc.len));
    case K_BOOL:   return sq_key_u64(b, v->u.boolean);
    case K_INT:    return sq_key_u64(b, (uint64_t)v->u.integer);
    case K_DOUBLE: return key_double(b, v->u.dbl);
    case K_BYTES:  return buf_append(b, v->u.str.p, v->u.str.n);
    case K_EMPTY:  return true;
    }
    return true;
}

static int64_t intern_attr(struct sq *q, const struct lb_attr *a)
{
    enum attr_kind kind;
    int64_t str_id, key_id = sq_intern_str(q, a->key), unit_id = sq_intern_str(q, a->unit);
    if (key_id < 0 || unit_id < 0 || attr_value(q, &a->value, &kind, &str_id) < 0)
        return -1;
    if (!attr_key(q, key_id, kind, unit_id, str_id, &a->value))
        return sq_fail(q, "storing an attribute", "out of memory");
    uint64_t ch = hash64_lanes(q->key.data, q->key.len);
    int64_t id = idcache_get(q->cache[C_ATTR], ch, q->key.data, q->key.len);
    if (id)
        return id;
    uint64_t h = sqlstore_hash(q->key.data, q->key.len);
    bind_attr(q, S_ATTR_FIND, h, key_id, kind, str_id, &a->value, unit_id);
    id = sq_step_find(q, S_ATTR_FIND, "looking up an attribute");
    if (id == 0) {
        bind_attr(q, S_ATTR_INS, h, key_id, kind, str_id, &a->value, unit_id);
        id = sq_step_write(q, S_ATTR_INS, "storing an attribute");
    }
    if (id > 0)
        idcache_put(q->cache[C_ATTR], ch, q->key.data, q->key.len, id, q->txn);
    return id;
}

/* An attribute as bytes, for scalar values only: arrays and kvlists are kept encoded, and
 * their encoding refers to the request's own string table, so equal bytes are not equal
 * content across requests. False for those (and when out of memory): they take the slow path. */
static bool attr_content_key(struct buf *b, const struct lb_attr *a)
{
    const struct lb_value *v = &a->value;
    buf_reset(b);
    if (v->kind == LB_VALUE_ARRAY || v->kind == LB_VALUE_KVLIST)
        return false;
    if (!sq_key_str(b, a->key) || !sq_key_str(b, a->unit) || !sq_key_u64(b, v->kind))
        return false;
    switch (v->kind) {
    case LB_VALUE_STRING: case LB_VALUE_BYTES: return sq_key_str(b, v->u.str);
    case LB_VALUE_BOOL: return sq_key_u64(b, v->u.boolean);
    case LB_VALUE_INT: return sq_key_u64(b, (uint64_t)v->u.integer);
    case LB_VALUE_DOUBLE: return key_double(b, v->u.dbl);
    default: return true;
    }
}

static int64_t attr_id(struct sq *q, const struct lb_attr *a)
{
    if (!attr_content_key(&q->ckey, a))
        return intern_attr(q, a);
    uint64_t h = hash64_lanes(q->ckey.data, q->ckey.len);
    int64_t id = idcache_get(q->cache[C_ATTR_CONTENT], h, q->ckey.data, q->ckey.len);
    if (!id && (id = intern_attr(q, a)) > 0)
        idcache_put(q->cache[C_ATTR_CONTENT], h, q->ckey.data, q->ckey.len, id, q->txn);
    return id;
}

/* The memo's keys are the entries' own bytes (strings by address and length): within one
 * request those addresses point into its bytes or its dictionary, which do not change, so
 * equal entries are equal content. The address alone is not enough: the decoder reuses one
 * scratch list for every resource's attributes, and for samples past its pool. A padding
 * byte that differs only costs a miss. Bounded: past it, lists are interned as before. */
#define ATTRS_COPY_MAX ((size_t)1 << 20)

void sq_attrs_seen_clear(struct sq *q)
{
    for (size_t i = 0; i < SQ_ATTRS_SEEN; i++)
        q->attrs_seen[i].n = 0;
    buf_reset(&q->attrs_copy);
}

static size_t attrs_slot(struct lb_attrs attrs)
{
    uint64_t h = ((uint64_t)(uintptr_t)attrs.v ^ attrs.n) * 0x9e3779b97f4a7c15u;
    return (size_t)(h >> 58) & (SQ_ATTRS_SEEN - 1);
}

static int64_t intern_list(struct sq *q, struct lb_attrs attrs);

/* The id of a set of attributes in wire order, 0 for none, -1 on error. */
int64_t sq_intern_attrs(struct sq *q, struct lb_attrs attrs)
{
    if (attrs.n == 0)
        return 0;
    size_t bytes = attrs.n * sizeof *attrs.v, slot = attrs_slot(attrs);
    if (attrs.n <= ATTRS_COPY_MAX / sizeof *attrs.v) {
        struct sq_attrs_seen *e = &q->attrs_seen[slot];
        if (e->n == attrs.n && e->v == attrs.v && memcmp(q->attrs_copy.data + e->off, attrs.v, bytes) == 0)
            return e->id;
    }
    int64_t id = intern_list(q, attrs);
    if (id > 0 && attrs.n <= ATTRS_COPY_MAX / sizeof *attrs.v && q->attrs_copy.len + bytes <= ATTRS_COPY_MAX) {
        size_t off = q->attrs_copy.len;
        if (buf_append(&q->attrs_copy, attrs.v, bytes)) {
            struct sq_attrs_seen *e = &q->attrs_seen[slot];
            e->v = attrs.v;
            e->n = attrs.n;
            e->off = off;
            e->id = id;
        }
    }
    return id;
}

/* sq_intern_attrs without the memo: each attribute's id, then the set's. */
static int64_t intern_list(struct sq *q, struct lb_attrs attrs)
{
    if (!sq_ids_reserve(q, attrs.n))
        return sq_fail(q, "storing attributes", "too many attributes");
    for (size_t i = 0; i < attrs.n; i++) {
        int64_t id = attr_id(q, &attrs.v[i]);
        if (id < 0)
            return -1;
        q->ids[i] = id;
    }
    return sq_intern_set(q, q->ids, attrs.n);
}
