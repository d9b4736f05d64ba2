/*
 * view.c - the helpers sinks call on the resolved view: walking array/kvlist values (kept
 * encoded until someone asks), finding an attribute, a sample's weight, a build id's kind, a wire type's
 * name.
 */
#include "otlp/view.h"

#include <string.h>
#include <pb_decode.h>

#include "otlp/dict.h"

bool dict_value(const struct lb_dict *d, const struct raw_value *rv, unsigned depth, struct lb_value *out)
{
    memset(out, 0, sizeof *out);
    out->dict = d;
    out->depth = depth;
    switch (rv->kind) {
    case RAW_EMPTY: out->kind = LB_VALUE_EMPTY; return true;
    case RAW_STRING: out->kind = LB_VALUE_STRING; break;
    case RAW_BYTES: out->kind = LB_VALUE_BYTES; break;
    case RAW_ARRAY: out->kind = LB_VALUE_ARRAY; break;
    case RAW_KVLIST: out->kind = LB_VALUE_KVLIST; break;
    case RAW_BOOL: out->kind = LB_VALUE_BOOL; out->u.boolean = rv->i != 0; return true;
    case RAW_INT: out->kind = LB_VALUE_INT; out->u.integer = rv->i; return true;
    case RAW_DOUBLE: out->kind = LB_VALUE_DOUBLE; out->u.dbl = rv->d; return true;
    case RAW_STRINDEX:
        out->kind = LB_VALUE_STRING;
        return d && dict_string(d, rv->i, &out->u.str);
    }
    out->u.str = (lb_str){ (const char *)rv->ref.p, rv->ref.n };
    return true;
}

void lb_value_iter_init(struct lb_value_iter *it, const struct lb_value *container)
{
    memset(it, 0, sizeof *it);
    it->dict = container->dict;
    it->depth = container->depth + 1;
    if (container->kind != LB_VALUE_ARRAY && container->kind != LB_VALUE_KVLIST) {
        it->err = "not an array or kvlist";
        return;
    }
    if (it->depth > LB_VALUE_MAX_DEPTH) {
        it->err = "nested too deep";
        return;
    }
    it->pos = (const uint8_t *)container->u.str.p;
    it->end = it->pos + container->u.str.n;
}

/* Finds the next occurrence of field 1 (ArrayValue.values / KeyValueList.values, the only
 * field either message has) and returns its encoded bytes. */
static bool next_element(struct lb_value_iter *it, pb_ref_t *el)
{
    while (!it->err && it->pos < it->end) {
        struct pbref_stream s;
        pbref_open(&s, it->pos, (size_t)(it->end - it->pos));
        uint32_t tag;
        pb_wire_type_t wt;
        bool eof;
        if (!pb_decode_tag(&s.is, &wt, &tag, &eof)) {
            it->err = "malformed value";
            return false;
        }
        if (tag == 1 && wt == PB_WT_STRING) {
            uint32_t len;
            if (!pb_decode_varint32(&s.is, &len) || len > s.is.bytes_left) {
                it->err = "malformed value";
                return false;
            }
            *el = (pb_ref_t){ s.pos, len };
            it->pos = s.pos + len;
            return true;
        }
        if (!pb_skip_field(&s.is, wt)) {
            it->err = "malformed value";
            return false;
        }
        it->pos = s.pos;
    }
    return false;
}

bool lb_array_next(struct lb_value_iter *it, struct lb_value *out)
{
    pb_ref_t el;
    if (!next_element(it, &el))
        return false;
    struct pbref_stream s;
    struct raw_value rv;
    pbref_open_ref(&s, el);
    if (!raw_any_value(&s.is, &rv) || !dict_value(it->dict, &rv, it->depth, out)) {
        it->err = "malformed or out-of-range array element";
        return false;
    }
    return true;
}

bool lb_kvlist_next(struct lb_value_iter *it, lb_str *key, struct lb_value *out)
{
    pb_ref_t el;
    if (!next_element(it, &el))
        return false;
    struct pbref_stream s;
    struct raw_key_value kv;
    pbref_open_ref(&s, el);
    if (!raw_key_value(&s.is, &kv) || !dict_value(it->dict, &kv.value, it->depth, out)) {
        it->err = "malformed or out-of-range kvlist entry";
        return false;
    }
    *key = (lb_str){ (const char *)kv.key.p, kv.key.n };
    if (key->n == 0 && kv.key_strindex > 0 && !(it->dict && dict_string(it->dict, kv.key_strindex, key))) {
        it->err = "kvlist key_strindex out of range";
        return false;
    }
    return true;
}

const struct lb_attr *lb_attrs_find(struct lb_attrs attrs, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < attrs.n; i++)
        if (lb_str_eq(attrs.v[i].key, key, n))
            return &attrs.v[i];
    return NULL;
}

int64_t lb_sample_weight(const struct lb_sample *s)
{
    if (s->n_values == 0)
        return (int64_t)s->n_timestamps;
    int64_t sum = 0;
    for (size_t i = 0; i < s->n_values; i++)
        if (__builtin_add_overflow(sum, s->values[i], &sum))
            return s->values[i] < 0 ? INT64_MIN : INT64_MAX;   /* saturate */
    return sum;
}

size_t lb_location_span(const struct lb_frame *f, size_t left)
{
    if (!f->symbolized || f->line_index != 0 || f->line_count < 2)
        return 1;
    size_t n = 1;
    while (n < f->line_count && n < left && f[n].symbolized && f[n].location_index == f->location_index &&
           f[n].line_index == n)
        n++;
    return n;
}

const struct lb_mapping lb_no_mapping = {
    { "", 0 }, 0, 0, 0, { "", 0 }, { "", 0 }, { NULL, 0 }, 0,
};

lb_str lb_build_id_kind(lb_str key)
{
    static const char prefix[] = "process.executable.build_id.";
    size_t n = sizeof prefix - 1;
    if (key.n <= n || memcmp(key.p, prefix, n) != 0)
        return LB_STR_NULL;
    return (lb_str){ key.p + n, key.n - n };
}

const char *lb_wire_type_name(uint8_t wire_type)
{
    static const char *const names[8] = { "VARINT", "I64", "LEN", "SGROUP", "EGROUP", "I32", "6", "7" };
    return names[wire_type & 7];
}
