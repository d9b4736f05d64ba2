/*
 * attrblob.c - attribute lists as self-contained byte strings (attrblob.h). The reader
 * checks every length against the bytes left: the blob comes back from a database server.
 */
#include <string.h>

#include "otlp/varint.h"
#include "sinks/attrblob.h"

static bool put_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[VARINT_MAX];
    return buf_append(b, tmp, varint_encode(v, tmp));
}

static bool put_bytes(struct buf *b, const void *p, size_t n)
{
    return put_varint(b, n) && buf_append(b, p, n);
}

static bool put_le64(struct buf *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++, v >>= 8)
        tmp[i] = (uint8_t)v;
    return buf_append(b, tmp, 8);
}

bool attrblob_put(struct buf *out, struct buf *scratch, struct lb_attrs attrs)
{
    for (size_t i = 0; i < attrs.n; i++) {
        const struct lb_attr *a = &attrs.v[i];
        const struct lb_value *v = &a->value;
        uint8_t kind = (uint8_t)v->kind;
        /* a nested value too deep or malformed to walk (the sender's) is kept as empty */
        bool list = v->kind == LB_VALUE_ARRAY || v->kind == LB_VALUE_KVLIST;
        if (list && !lb_value_encode(v, scratch))
            kind = LB_VALUE_EMPTY;
        if (!put_bytes(out, a->key.p, a->key.n) || !put_bytes(out, a->unit.p, a->unit.n) || !buf_append(out, &kind, 1))
            return false;
        bool ok = true;
        uint64_t bits;
        switch ((enum lb_value_kind)kind) {
        case LB_VALUE_EMPTY:
            break;
        case LB_VALUE_BOOL:
            kind = v->u.boolean ? 1 : 0;
            ok = buf_append(out, &kind, 1);
            break;
        case LB_VALUE_INT:
            ok = put_le64(out, (uint64_t)v->u.integer);
            break;
        case LB_VALUE_DOUBLE:
            memcpy(&bits, &v->u.dbl, 8);
            ok = put_le64(out, bits);
            break;
        case LB_VALUE_STRING:
        case LB_VALUE_BYTES:
            ok = put_bytes(out, v->u.str.p, v->u.str.n);
            break;
        case LB_VALUE_ARRAY:
        case LB_VALUE_KVLIST:
            ok = put_bytes(out, scratch->data, scratch->len);
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

struct rd {
    const uint8_t *p, *end;
};

static bool rd_varint(struct rd *d, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && d->p < d->end; shift += 7) {
        uint8_t b = *d->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool rd_bytes(struct rd *d, lb_str *s)
{
    uint64_t n;
    if (!rd_varint(d, &n) || n > (uint64_t)(d->end - d->p))
        return false;
    *s = (lb_str){ n ? (const char *)d->p : "", (size_t)n };
    d->p += n;
    return true;
}

static bool rd_le64(struct rd *d, uint64_t *v)
{
    if (d->end - d->p < 8)
        return false;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)d->p[i] << (8 * i);
    d->p += 8;
    return true;
}

/* One attribute from d into a (NULL: skipped). */
static bool rd_attr(struct rd *d, struct lb_attr *a)
{
    struct lb_attr tmp;
    if (!a)
        a = &tmp;
    memset(a, 0, sizeof *a);
    if (!rd_bytes(d, &a->key) || !rd_bytes(d, &a->unit) || d->p >= d->end)
        return false;
    uint8_t kind = *d->p++;
    uint64_t bits;
    struct lb_value *v = &a->value;
    v->kind = (enum lb_value_kind)kind;
    switch (kind) {
    case LB_VALUE_EMPTY:
        return true;
    case LB_VALUE_BOOL:
        if (d->p >= d->end)
            return false;
        v->u.boolean = *d->p++ != 0;
        return true;
    case LB_VALUE_INT:
        if (!rd_le64(d, &bits))
            return false;
        v->u.integer = (int64_t)bits;
        return true;
    case LB_VALUE_DOUBLE:
        if (!rd_le64(d, &bits))
            return false;
        memcpy(&v->u.dbl, &bits, 8);
        return true;
    case LB_VALUE_STRING:
    case LB_VALUE_BYTES:
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST:
        return rd_bytes(d, &v->u.str);   /* arrays and kvlists: walked with no dictionary */
    default:
        return false;
    }
}

size_t attrblob_count(lb_str blob)
{
    if (blob.n == 0)   /* the empty list; p may be NULL (an empty buffer), and NULL + 0 is undefined */
        return 0;
    struct rd d = { (const uint8_t *)blob.p, (const uint8_t *)blob.p + blob.n };
    size_t n = 0;
    while (d.p < d.end) {
        if (!rd_attr(&d, NULL))
            return (size_t)-1;
        n++;
    }
    return n;
}

bool attrblob_get(lb_str blob, struct lb_attr *out, size_t n)
{
    if (blob.n == 0)
        return n == 0;
    struct rd d = { (const uint8_t *)blob.p, (const uint8_t *)blob.p + blob.n };
    for (size_t i = 0; i < n; i++)
        if (!rd_attr(&d, &out[i]))
            return false;
    return d.p == d.end;
}
