/*
 * check_dict.c - the conformance checker's view of the dictionary: index 0 of every table is
 * the zero value, every index an entry holds points inside its table, the entries' own rules
 * (mapping address ranges, link id lengths, non-negative lines), duplicates, and (orphans)
 * entries nothing references.
 *
 * How "the zero value" is decided: profcheck compares entry 0 with an empty message
 * (proto.Equal), which counts any field sent with a non-default value, any element of a
 * repeated field, any present sub-message and any unknown field. The same is read here from
 * the entry's bytes with the layout's wire schema, so it holds in every layout. The attribute
 * table is the exception profcheck makes too: its entry 0 may carry an AnyValue with nothing
 * set.
 *
 * Duplicates are tested on a canonical form of each entry (fixed-width fields in a fixed
 * order, attribute lists sorted), so two encodings of the same entry are equal; mappings are
 * compared as profcheck compares them (file name, sorted attributes, address range, offset).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pb_decode.h>

#include "otlp/check_internal.h"
#include "otlp/wire.h"

const char *const ck_table_names[DICT_TABLES] = {
    [DICT_MAPPING] = "mapping_table", [DICT_LOCATION] = "location_table", [DICT_FUNCTION] = "function_table",
    [DICT_LINK] = "link_table", [DICT_STRING] = "string_table", [DICT_ATTRIBUTE] = "attribute_table",
    [DICT_STACK] = "stack_table", [DICT_ATTRIBUTE_UNIT] = "attribute_units",
};

static const char *const entry_nouns[DICT_TABLES] = {
    [DICT_MAPPING] = "mapping", [DICT_LOCATION] = "location", [DICT_FUNCTION] = "function",
    [DICT_LINK] = "link", [DICT_STRING] = "string", [DICT_ATTRIBUTE] = "attribute", [DICT_STACK] = "stack",
};

/* Entries larger than this are not tested for duplicates: their canonical form could be ten
 * times their size, and no profiler sends one. */
#define CHECK_MAX_KEYED_ENTRY ((size_t)64 << 10)

bool ck_entry_quiet(struct otlp_checker *c, enum dict_table t, uint32_t idx, void *out)
{
    pb_ref_t ref;
    if (!dict_entry(&c->dict, t, idx, &ref))
        return false;
    struct pbref_stream s;
    pbref_open_ref(&s, ref);
    return layout_entry(c->layout, t, &s.is, out);
}

static pb_ref_t entry_bytes(const struct otlp_checker *c, enum dict_table t, size_t idx)
{
    const struct dict_ref *r = &c->dict.tables.t[t].v[idx];
    return (pb_ref_t){ c->dict.tables.base + r->off, r->len };
}

static void limit_note(struct otlp_checker *c, enum dict_table t, const char *what)
{
    char sub[64];
    snprintf(sub, sizeof sub, ".%s", ck_table_names[t]);
    ck_report(c, CR_CHECK_LIMIT, sub, "%zu entries: %s", dict_len(&c->dict, t), what);
}

/* ---------- preparing: string identities, attribute keys, orphan marks ---------- */

static bool strings_equal(void *ctx, uint32_t a, uint32_t b)
{
    struct otlp_checker *c = ctx;
    pb_ref_t x = entry_bytes(c, DICT_STRING, a), y = entry_bytes(c, DICT_STRING, b);
    return x.n == y.n && (x.n == 0 || memcmp(x.p, y.p, x.n) == 0);
}

static bool inline_keys_equal(void *ctx, uint32_t a, uint32_t b)
{
    struct otlp_checker *c = ctx;
    struct raw_attribute x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    ck_entry_quiet(c, DICT_ATTRIBUTE, a, &x);
    ck_entry_quiet(c, DICT_ATTRIBUTE, b, &y);
    return x.key.n == y.key.n && (x.key.n == 0 || memcmp(x.key.p, y.key.p, x.key.n) == 0);
}

static int64_t string_identity(const struct otlp_checker *c, int64_t idx)
{
    return (uint64_t)idx < c->str_canon.n ? c->str_canon.v[idx] : idx;
}

bool ck_dict_prepare(struct otlp_checker *c)
{
    c->orphans = (c->groups & CHECK_GROUP_ORPHANS) && layout_has_stacks(c->layout);
    for (int t = 0; t < DICT_TABLES; t++) {
        size_t n = c->orphans ? dict_len(&c->dict, t) : 0;
        if (!VEC_RESERVE(c->refs[t], n))
            return false;
        c->refs[t].n = n;
        if (n) {
            memset(c->refs[t].v, 0, n);
            c->refs[t].v[0] = 1;   /* the zero entry needs no reference */
        }
    }

    size_t n_str = dict_len(&c->dict, DICT_STRING);
    size_t hashed = n_str < CHECK_MAX_HASHED ? n_str : CHECK_MAX_HASHED;
    if (!VEC_RESERVE(c->str_canon, hashed) || !check_set_reset(&c->set, hashed))
        return false;
    c->str_canon.n = hashed;
    for (size_t i = 0; i < hashed; i++) {
        pb_ref_t s = entry_bytes(c, DICT_STRING, i);
        int64_t same = check_set_find_or_add(&c->set, check_hash(s.p, s.n), (uint32_t)i, strings_equal, c);
        c->str_canon.v[i] = same >= 0 ? (int32_t)same : (int32_t)i;
    }
    c->in_dictionary = true;
    if (hashed < n_str)
        limit_note(c, DICT_STRING, "equal strings are found among the first 2097152 only");

    size_t n_attr = dict_len(&c->dict, DICT_ATTRIBUTE);
    size_t keyed = n_attr < CHECK_MAX_HASHED ? n_attr : CHECK_MAX_HASHED;
    if (!VEC_RESERVE(c->attr_key, keyed) || !check_set_reset(&c->set, keyed))
        return false;
    c->attr_key.n = keyed;
    for (size_t i = 0; i < keyed; i++) {
        struct raw_attribute ra;
        memset(&ra, 0, sizeof ra);
        int64_t key = CK_KEY_BAD;
        if (!ck_entry_quiet(c, DICT_ATTRIBUTE, (uint32_t)i, &ra)) {
            key = CK_KEY_MALFORMED;   /* reported by the table walk */
        } else if (!layout_has_stacks(c->layout)) {   /* v1.7: the key is inline */
            int64_t same = check_set_find_or_add(&c->set, check_hash(ra.key.p, ra.key.n), (uint32_t)i,
                                                 inline_keys_equal, c);
            key = (int64_t)n_str + (same >= 0 ? same : (int64_t)i);
        } else if (ra.key_strindex >= 0 && (size_t)ra.key_strindex < n_str) {
            key = string_identity(c, ra.key_strindex);
        }
        c->attr_key.v[i] = key;
    }
    if (keyed < n_attr)
        limit_note(c, DICT_ATTRIBUTE, "attribute keys are compared among the first 2097152 only");
    c->in_dictionary = false;
    return true;
}

/* ---------- the zero entry ---------- */

static enum wmsg table_message(const struct otlp_layout *layout, enum dict_table t)
{
    const struct wmsg_desc *d = layout->wire->m[WM_DICTIONARY];
    for (unsigned f = 1; f <= WMAX_FIELD; f++)
        if (d->f[f].dest == D_DICT && d->f[f].off == t && d->f[f].kind == W_MSG)
            return (enum wmsg)d->f[f].msg;
    return WM_COUNT;
}

/* True when the encoded message has no field that an empty message would not have. */
static bool bytes_are_zero(const struct otlp_layout *layout, enum wmsg m, pb_ref_t e)
{
    const struct wmsg_desc *desc = layout->wire->m[m];
    struct cursor cur = { e.p, e.p + e.n };
    while (cur.p < cur.end) {
        uint64_t tag, v = 0;
        if (!wire_varint(&cur, &tag))
            return false;
        unsigned wt = (unsigned)(tag & 7);
        uint64_t fnum = tag >> 3;
        if (wt == WT_VARINT) {
            if (!wire_varint(&cur, &v))
                return false;
        } else if (wt == WT_I64) {
            if (cur.end - cur.p < 8)
                return false;
            v = wire_fixed64(cur.p);
            cur.p += 8;
        } else if (wt == WT_LEN) {
            if (!wire_varint(&cur, &v) || v > (uint64_t)(cur.end - cur.p))
                return false;
            cur.p += v;
        } else {
            return false;
        }
        const struct wfield *f = desc && fnum >= 1 && fnum <= WMAX_FIELD ? &desc->f[fnum] : NULL;
        if (!f || f->kind == W_NONE || f->dest == D_I32_OPT)   /* unknown, or a present optional */
            return false;
        bool zero;
        switch (f->kind) {
        case W_VARINT: zero = wt == WT_VARINT && v == 0; break;
        case W_I64: zero = wt == WT_I64 && v == 0; break;
        case W_BYTES: zero = !f->repeated && wt == WT_LEN && v == 0; break;
        case W_PVARINT:
        case W_PI64: zero = wt == WT_LEN && v == 0; break;   /* an empty packed run */
        default: zero = false; break;                        /* a message, even empty, is there */
        }
        if (!zero)
            return false;
    }
    return true;
}

/* profcheck's checkZeroVal (checkAttributeTableZeroVal for the attribute table): the table
 * has an entry 0, and it is the zero value. */
static void check_zero(struct otlp_checker *c, enum dict_table t)
{
    char sub[64];
    snprintf(sub, sizeof sub, ".%s", ck_table_names[t]);
    if (dict_len(&c->dict, t) == 0) {
        ck_report(c, CR_ZERO_ENTRY, sub, "empty table, must have at least zero value entry");
        return;
    }
    snprintf(sub, sizeof sub, ".%s[0]", ck_table_names[t]);
    if (t == DICT_ATTRIBUTE) {
        struct raw_attribute ra;
        memset(&ra, 0, sizeof ra);
        if (!ck_entry_quiet(c, t, 0, &ra))
            return;   /* the table walk reports it */
        if (ra.key_strindex != 0 || ra.unit_strindex != 0 || ra.key.n != 0)
            ck_report(c, CR_ZERO_ENTRY, sub, "first attribute must have zero key/unit indices, got "
                      "key_strindex=%d, unit_strindex=%d%s", ra.key_strindex, ra.unit_strindex,
                      ra.key.n ? ", and an inline key" : "");
        else if (ra.value.kind != RAW_EMPTY)
            ck_report(c, CR_ZERO_ENTRY, sub, "first attribute value must be nil");
        return;
    }
    if (!bytes_are_zero(c->layout, table_message(c->layout, t), entry_bytes(c, t, 0)))
        ck_report(c, CR_ZERO_ENTRY, sub, "must have zero value at index 0, got a %s with fields set",
                  c->layout->wire->m[table_message(c->layout, t)]->name);
}

/* ---------- duplicates ---------- */

struct dup_test {
    struct otlp_checker *c;
    enum dict_table t;
    bool on, limited;
};

static bool put(struct buf *b, const void *p, size_t n) { return n == 0 || buf_append(b, p, n); }
static bool put_i64(struct buf *b, int64_t x) { return put(b, &x, sizeof x); }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* An attribute list, sorted (the order of a list of attributes means nothing). */
static bool put_sorted(struct otlp_checker *c, struct buf *b, const ivec *v)
{
    if (!put_i64(b, (int64_t)v->n) || !VEC_RESERVE(c->loc_idx, v->n))
        return false;
    if (v->n == 0)
        return true;
    memcpy(c->loc_idx.v, v->v, v->n * sizeof *v->v);
    qsort(c->loc_idx.v, v->n, sizeof *v->v, cmp_i32);
    return put(b, c->loc_idx.v, v->n * sizeof *v->v);
}

/* The canonical form of a decoded entry of table t into b. */
static bool canonical(struct otlp_checker *c, enum dict_table t, const void *raw, struct buf *b)
{
    buf_reset(b);
    switch (t) {
    case DICT_MAPPING: {
        const struct raw_mapping *m = raw;
        return put_i64(b, m->filename_strindex) && put_i64(b, (int64_t)m->memory_start) &&
               put_i64(b, (int64_t)m->memory_limit) && put_i64(b, (int64_t)m->file_offset) &&
               put_sorted(c, b, m->attribute_indices);
    }
    case DICT_LOCATION: {
        const struct raw_location *l = raw;
        bool ok = put_i64(b, l->mapping_index) && put_i64(b, l->mapping_explicit) &&
                  put_i64(b, (int64_t)l->address) && put_i64(b, (int64_t)l->lines->n);
        for (size_t i = 0; ok && i < l->lines->n; i++)
            ok = put_i64(b, l->lines->v[i].function_index) && put_i64(b, l->lines->v[i].line) &&
                 put_i64(b, l->lines->v[i].column);
        return ok && put_sorted(c, b, l->attribute_indices);
    }
    case DICT_FUNCTION: {
        const struct raw_function *f = raw;
        return put_i64(b, f->name_strindex) && put_i64(b, f->system_name_strindex) &&
               put_i64(b, f->filename_strindex) && put_i64(b, f->start_line);
    }
    case DICT_LINK: {
        const struct raw_link *l = raw;
        return put_i64(b, (int64_t)l->trace_id.n) && put(b, l->trace_id.p, l->trace_id.n) &&
               put_i64(b, (int64_t)l->span_id.n) && put(b, l->span_id.p, l->span_id.n);
    }
    case DICT_ATTRIBUTE: {
        const struct raw_attribute *a = raw;
        return put_i64(b, (int64_t)a->key.n) && put(b, a->key.p, a->key.n) && put_i64(b, a->key_strindex) &&
               put_i64(b, a->unit_strindex) && put_i64(b, a->value.kind) && put_i64(b, a->value.i) &&
               put(b, &a->value.d, sizeof a->value.d) && put_i64(b, (int64_t)a->value.ref.n) &&
               put(b, a->value.ref.p, a->value.ref.n);
    }
    case DICT_STACK: {
        const struct raw_stack *s = raw;
        return put(b, s->location_indices->v, s->location_indices->n * sizeof(int32_t));
    }
    default:
        return false;
    }
}

/* A raw struct of any table, its vectors pointing at the checker's scratch. */
union raw_entry {
    struct raw_mapping mapping;
    struct raw_location location;
    struct raw_function function;
    struct raw_link link;
    struct raw_attribute attribute;
    struct raw_stack stack;
};

static void raw_prepare(struct otlp_checker *c, enum dict_table t, union raw_entry *e)
{
    memset(e, 0, sizeof *e);
    VEC_RESET(c->attr_idx);
    VEC_RESET(c->lines);
    VEC_RESET(c->values);
    if (t == DICT_MAPPING)
        e->mapping.attribute_indices = &c->attr_idx;
    else if (t == DICT_LOCATION) {
        e->location.attribute_indices = &c->attr_idx;
        e->location.lines = &c->lines;
    } else if (t == DICT_STACK)
        e->stack.location_indices = &c->attr_idx;
}

static bool entries_equal(void *ctx, uint32_t a, uint32_t b)
{
    struct dup_test *d = ctx;
    (void)b;   /* its canonical form is in key_b already */
    union raw_entry e;
    raw_prepare(d->c, d->t, &e);
    if (!ck_entry_quiet(d->c, d->t, a, &e) || !canonical(d->c, d->t, &e, &d->c->key_a))
        return false;
    const struct buf *x = &d->c->key_a, *y = &d->c->key_b;
    return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

/* The duplicate test of entry idx (decoded in e) against the entries before it. */
static void dup_test(struct dup_test *d, uint32_t idx, const union raw_entry *e, enum check_rule_id rule)
{
    struct otlp_checker *c = d->c;
    if (!d->on)
        return;
    if (entry_bytes(c, d->t, idx).n > CHECK_MAX_KEYED_ENTRY || idx >= CHECK_MAX_HASHED) {
        d->limited = true;
        return;
    }
    if (!canonical(c, d->t, e, &c->key_b)) {
        c->oom = true;
        return;
    }
    int64_t same = check_set_find_or_add(&c->set, check_hash(c->key_b.data, c->key_b.len), idx, entries_equal, d);
    if (same >= 0) {
        char sub[64];
        snprintf(sub, sizeof sub, ".%s[%u]", ck_table_names[d->t], idx);
        ck_report(c, rule, sub, "duplicate %s at index %u, orig index %lld", entry_nouns[d->t], idx,
                  (long long)same);
    }
}

static void dup_begin(struct dup_test *d, struct otlp_checker *c, enum dict_table t, enum check_rule_id rule)
{
    d->c = c;
    d->t = t;
    d->limited = false;
    d->on = ck_on(c, rule) && check_set_reset(&c->set, dict_len(&c->dict, t));
    if (ck_on(c, rule) && !d->on)
        c->oom = true;
}

static void dup_end(struct dup_test *d)
{
    if (d->on && (d->limited || d->c->set.full))
        limit_note(d->c, d->t, "entries past the first 2097152, or over 64 KiB, were not tested for duplicates");
}

/* ---------- the tables ---------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void check_non_negative(struct otlp_checker *c, int64_t v, const char *sub, ...)
{
    if (v >= 0)
        return;
    char path[160];
    va_list ap;
    va_start(ap, sub);
    vsnprintf(path, sizeof path, sub, ap);
    va_end(ap);
    ck_report(c, CR_NON_NEGATIVE, path, "%lld < 0, must be non-negative", (long long)v);
}

static void check_mappings(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_MAPPING, CR_DUPLICATE_MAPPING);
    size_t n = dict_len(&c->dict, DICT_MAPPING), n_str = dict_len(&c->dict, DICT_STRING);
    if (n > 0 && c->orphans) {   /* what entry 0 references counts, even when it is no zero value */
        union raw_entry e;
        raw_prepare(c, DICT_MAPPING, &e);
        if (ck_entry_quiet(c, DICT_MAPPING, 0, &e)) {
            ck_ref(c, DICT_STRING, e.mapping.filename_strindex);
            for (size_t k = 0; k < e.mapping.attribute_indices->n; k++)
                ck_ref(c, DICT_ATTRIBUTE, e.mapping.attribute_indices->v[k]);
        }
    }
    for (size_t i = 1; i < n && !c->oom; i++) {   /* profcheck checks entries from 1 here */
        union raw_entry e;
        char sub[96];
        raw_prepare(c, DICT_MAPPING, &e);
        if (!ck_entry(c, DICT_MAPPING, (uint32_t)i, &e))
            continue;
        const struct raw_mapping *m = &e.mapping;
        ck_index(c, m->filename_strindex, n_str, ".mapping_table[%zu].filename_strindex", i);
        ck_ref(c, DICT_STRING, m->filename_strindex);
        snprintf(sub, sizeof sub, ".mapping_table[%zu].attribute_indices", i);
        ck_attribute_list(c, m->attribute_indices, sub);
        if (!(m->memory_start == 0 && m->memory_limit == 0) && !(m->memory_start < m->memory_limit))
            ck_report(c, CR_MAPPING_RANGE, "", "mapping_table[%zu]: memory_start=%016llx, memory_limit=%016llx: "
                      "must be both zero or start < limit", i, (unsigned long long)m->memory_start,
                      (unsigned long long)m->memory_limit);
        dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_MAPPING);
    }
    dup_end(&d);
}

static void check_locations(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_LOCATION, CR_DUPLICATE_LOCATION);
    size_t n = dict_len(&c->dict, DICT_LOCATION), n_map = dict_len(&c->dict, DICT_MAPPING);
    size_t n_fn = dict_len(&c->dict, DICT_FUNCTION);
    for (size_t i = 0; i < n && !c->oom; i++) {
        union raw_entry e;
        char sub[128];
        raw_prepare(c, DICT_LOCATION, &e);
        if (!ck_entry(c, DICT_LOCATION, (uint32_t)i, &e))
            continue;
        const struct raw_location *l = &e.location;
        if (layout_has_stacks(c->layout) || l->mapping_explicit || l->mapping_index != 0) {
            ck_index(c, l->mapping_index, n_map, ".location_table[%zu].mapping_index", i);
            ck_ref(c, DICT_MAPPING, l->mapping_index);
        }
        snprintf(sub, sizeof sub, ".location_table[%zu].attribute_indices", i);
        ck_attribute_list(c, l->attribute_indices, sub);
        for (size_t j = 0; j < l->lines->n; j++) {
            const struct raw_line *ln = &l->lines->v[j];
            ck_index(c, ln->function_index, n_fn, ".location_table[%zu].line[%zu].function_index", i, j);
            ck_ref(c, DICT_FUNCTION, ln->function_index);
            check_non_negative(c, ln->line, ".location_table[%zu].line[%zu].line", i, j);
            check_non_negative(c, ln->column, ".location_table[%zu].line[%zu].column", i, j);
        }
        if (i > 0)
            dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_LOCATION);
    }
    dup_end(&d);
}

static void check_functions(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_FUNCTION, CR_DUPLICATE_FUNCTION);
    size_t n = dict_len(&c->dict, DICT_FUNCTION), n_str = dict_len(&c->dict, DICT_STRING);
    for (size_t i = 0; i < n && !c->oom; i++) {
        union raw_entry e;
        raw_prepare(c, DICT_FUNCTION, &e);
        if (!ck_entry(c, DICT_FUNCTION, (uint32_t)i, &e))
            continue;
        const struct raw_function *f = &e.function;
        const struct { const char *name; int32_t v; } idx[] = {
            { "name_strindex", f->name_strindex }, { "system_name_strindex", f->system_name_strindex },
            { "filename_strindex", f->filename_strindex } };
        for (size_t k = 0; k < 3; k++) {
            ck_index(c, idx[k].v, n_str, ".function_table[%zu].%s", i, idx[k].name);
            ck_ref(c, DICT_STRING, idx[k].v);
        }
        check_non_negative(c, f->start_line, ".function_table[%zu].start_line", i);
        if (i > 0)
            dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_FUNCTION);
    }
    dup_end(&d);
}

static void check_links(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_LINK, CR_DUPLICATE_LINK);
    size_t n = dict_len(&c->dict, DICT_LINK);
    for (size_t i = 1; i < n && !c->oom; i++) {   /* profcheck checks entries from 1 here */
        union raw_entry e;
        char sub[64];
        raw_prepare(c, DICT_LINK, &e);
        if (!ck_entry(c, DICT_LINK, (uint32_t)i, &e))
            continue;
        if (e.link.trace_id.n != 16) {
            snprintf(sub, sizeof sub, ".link_table[%zu].trace_id", i);
            ck_report(c, CR_LINK_ID_LENGTH, sub, "len(trace_id) == %zu, want 16", e.link.trace_id.n);
        }
        if (e.link.span_id.n != 8) {
            snprintf(sub, sizeof sub, ".link_table[%zu].span_id", i);
            ck_report(c, CR_LINK_ID_LENGTH, sub, "len(span_id) == %zu, want 8", e.link.span_id.n);
        }
        dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_LINK);
    }
    dup_end(&d);
}

static void check_strings(struct otlp_checker *c)
{
    size_t n = dict_len(&c->dict, DICT_STRING);
    if (n == 0) {
        ck_report(c, CR_ZERO_ENTRY, ".string_table", "empty string table, must have at least empty string");
        return;
    }
    pb_ref_t first = entry_bytes(c, DICT_STRING, 0);
    if (first.n != 0) {
        ck_report(c, CR_ZERO_ENTRY, ".string_table[0]", "must have empty string at index 0, got %zu bytes", first.n);
        return;
    }
    if (!ck_on(c, CR_DUPLICATE_STRING))
        return;
    for (size_t i = 1; i < c->str_canon.n; i++) {
        int32_t same = c->str_canon.v[i];
        if ((size_t)same == i)
            continue;
        struct check_finding *f = ck_add(c, CR_DUPLICATE_STRING, ".string_table[%zu]", i);
        if (f) {
            pb_ref_t s = entry_bytes(c, DICT_STRING, i);
            size_t shown = s.n < 32 ? s.n : 32, k = 0;
            char text[32 * 4 + 1] = "";
            for (size_t j = 0; j < shown; j++)
                k += (size_t)snprintf(text + k, sizeof text - k, s.p[j] >= 0x20 && s.p[j] < 0x7f && s.p[j] != '\\'
                                      ? "%c" : "\\x%02x", s.p[j]);
            snprintf(f->message, sizeof f->message, "duplicate string at index %zu, orig index %d: %s%s", i,
                     same, text, shown < s.n ? "..." : "");
        }
    }
}

static void check_attributes(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_ATTRIBUTE, CR_DUPLICATE_ATTRIBUTE);
    size_t n = dict_len(&c->dict, DICT_ATTRIBUTE), n_str = dict_len(&c->dict, DICT_STRING);
    bool keyed_by_index = layout_has_stacks(c->layout);   /* v1.7 keys are inline, no units */
    for (size_t i = 0; i < n && !c->oom; i++) {
        union raw_entry e;
        raw_prepare(c, DICT_ATTRIBUTE, &e);
        if (!ck_entry(c, DICT_ATTRIBUTE, (uint32_t)i, &e))
            continue;
        const struct raw_attribute *a = &e.attribute;
        if (keyed_by_index) {
            ck_index(c, a->key_strindex, n_str, ".attribute_table[%zu].key_strindex", i);
            ck_index(c, a->unit_strindex, n_str, ".attribute_table[%zu].unit_strindex", i);
            ck_ref(c, DICT_STRING, a->key_strindex);
            ck_ref(c, DICT_STRING, a->unit_strindex);
        }
        if (a->value.kind == RAW_STRINDEX)   /* a value in the string table is a reference too */
            ck_ref(c, DICT_STRING, a->value.i);
        if (i > 0)
            dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_ATTRIBUTE);
    }
    dup_end(&d);
}

static void check_stacks(struct otlp_checker *c)
{
    struct dup_test d;
    dup_begin(&d, c, DICT_STACK, CR_DUPLICATE_STACK);
    size_t n = dict_len(&c->dict, DICT_STACK), n_loc = dict_len(&c->dict, DICT_LOCATION);
    for (size_t i = 0; i < n && !c->oom; i++) {
        union raw_entry e;
        raw_prepare(c, DICT_STACK, &e);
        if (!ck_entry(c, DICT_STACK, (uint32_t)i, &e))
            continue;
        const ivec *locs = e.stack.location_indices;
        for (size_t j = 0; j < locs->n; j++) {
            ck_index(c, locs->v[j], n_loc, ".stack_table[%zu].location_indices[%zu]", i, j);
            ck_ref(c, DICT_LOCATION, locs->v[j]);
        }
        if (i > 0)
            dup_test(&d, (uint32_t)i, &e, CR_DUPLICATE_STACK);
    }
    dup_end(&d);
}

void ck_dict_check(struct otlp_checker *c)
{
    check_zero(c, DICT_MAPPING);
    check_mappings(c);
    check_zero(c, DICT_LOCATION);
    check_locations(c);
    check_zero(c, DICT_FUNCTION);
    check_functions(c);
    check_zero(c, DICT_LINK);
    check_links(c);
    check_strings(c);
    check_zero(c, DICT_ATTRIBUTE);
    check_attributes(c);
    if (layout_has_stacks(c->layout)) {
        check_zero(c, DICT_STACK);
        check_stacks(c);
    }
}

void ck_orphans(struct otlp_checker *c)
{
    static const enum dict_table order[] = { DICT_STRING, DICT_ATTRIBUTE, DICT_MAPPING, DICT_FUNCTION,
                                             DICT_LOCATION, DICT_STACK, DICT_LINK };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        enum dict_table t = order[k];
        for (size_t i = 0; i < c->refs[t].n; i++)
            if (!c->refs[t].v[i]) {
                char sub[64];
                snprintf(sub, sizeof sub, ".%s[%zu]", ck_table_names[t], i);
                ck_report(c, CR_UNREFERENCED, sub, "%s: unreferenced entry at index %zu", ck_table_names[t], i);
            }
    }
}
