/*
 * content.c - a request's resources, scopes and profiles as one string (content.h). Read back
 * from the database server: every length is checked against the bytes left.
 */
#include <string.h>

#include "otlp/varint.h"
#include "sinks/attrblob.h"
#include "sinks/clickhouse/content.h"

static bool put_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[VARINT_MAX];
    return buf_append(b, tmp, varint_encode(v, tmp));
}

static bool put_str(struct buf *b, lb_str s)
{
    return put_varint(b, s.n) && buf_append(b, s.p, s.n);
}

static bool put_le64(struct buf *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++, v >>= 8)
        tmp[i] = (uint8_t)v;
    return buf_append(b, tmp, 8);
}

/* An attribute list, length-prefixed: encoded at the end of out, then moved behind its length
 * (known only once it is encoded). */
static bool put_attrs(struct buf *out, struct buf *scratch, struct lb_attrs attrs)
{
    size_t at = out->len;
    if (!attrblob_put(out, scratch, attrs))
        return false;
    size_t n = out->len - at;
    uint8_t len[VARINT_MAX];
    size_t k = varint_encode(n, len);
    if (!buf_append(out, len, k))   /* room for the length, then shift the blob behind it */
        return false;
    memmove(out->data + at + k, out->data + at, n);
    memcpy(out->data + at, len, k);
    return true;
}

static bool put_keys(struct buf *out, const lb_str *keys, size_t n)
{
    bool ok = put_varint(out, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = put_str(out, keys[i]);
    return ok;
}

bool ch_content_resource(struct buf *out, struct buf *scratch, const struct lb_resource *r)
{
    bool ok = buf_putc(out, 'R') && put_attrs(out, scratch, r->attrs) &&
              put_varint(out, r->dropped_attributes_count) && put_str(out, r->schema_url);
    for (size_t i = 0; ok && i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *e = &r->entity_refs[i];
        ok = buf_putc(out, 'E') && put_str(out, e->schema_url) && put_str(out, e->type) &&
             put_keys(out, e->id_keys, e->n_id_keys) && put_keys(out, e->description_keys, e->n_description_keys);
    }
    return ok;
}

bool ch_content_profile(struct buf *out, struct buf *scratch, const struct lb_profile *p)
{
    static const struct lb_scope none;
    const struct lb_scope *s = p->scope ? p->scope : &none;
    return buf_putc(out, 'P') && put_varint(out, p->scope_index) && put_str(out, s->name) &&
           put_str(out, s->version) && put_str(out, s->schema_url) && put_attrs(out, scratch, s->attrs) &&
           put_varint(out, s->dropped_attributes_count) && put_str(out, p->sample_type) &&
           put_str(out, p->sample_unit) && put_str(out, p->period_type) && put_str(out, p->period_unit) &&
           put_le64(out, (uint64_t)p->period) && put_le64(out, p->time_unix_nano) && put_le64(out, p->duration_nano) &&
           put_str(out, p->profile_id) && put_varint(out, p->dropped_attributes_count) &&
           put_str(out, p->original_payload_format) && put_str(out, p->original_payload) &&
           put_attrs(out, scratch, p->attrs);
}

/* ---- reading ---- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t rd_varint(struct rd *d)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && d->p < d->end; shift += 7) {
        uint8_t b = *d->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    d->bad = true;
    return 0;
}

static lb_str rd_str(struct rd *d)
{
    uint64_t n = rd_varint(d);
    if (d->bad || n > (uint64_t)(d->end - d->p)) {
        d->bad = true;
        return LB_STR_NULL;
    }
    lb_str s = { n ? (const char *)d->p : "", (size_t)n };
    d->p += n;
    return s;
}

static uint64_t rd_le64(struct rd *d)
{
    if (d->bad || d->end - d->p < 8) {
        d->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)d->p[i] << (8 * i);
    d->p += 8;
    return v;
}

static uint32_t rd_u32(struct rd *d)
{
    uint64_t v = rd_varint(d);
    if (v > UINT32_MAX)
        d->bad = true;
    return (uint32_t)v;
}

/* A count of keys then the keys: their span (checked), the count in *n. */
static lb_str rd_keys(struct rd *d, uint32_t *n)
{
    *n = rd_u32(d);
    const uint8_t *from = d->p;
    if (*n > (uint64_t)(d->end - d->p))   /* every key takes at least a byte */
        d->bad = true;
    for (uint32_t i = 0; !d->bad && i < *n; i++)
        rd_str(d);
    if (d->bad)
        return LB_STR_NULL;
    return (lb_str){ (const char *)from, (size_t)(d->p - from) };
}

void ch_content_keys(lb_str keys, lb_str *out, uint32_t n)
{
    if (n == 0)
        return;
    struct rd d = { (const uint8_t *)keys.p, (const uint8_t *)keys.p + keys.n, false };
    for (uint32_t i = 0; i < n; i++)
        out[i] = rd_str(&d);
}

int ch_content_next(const uint8_t **pos, const uint8_t *end, struct ch_content_item *it)
{
    struct rd d = { *pos, end, false };
    if (d.p >= d.end)
        return 0;
    memset(it, 0, sizeof *it);
    it->tag = (char)*d.p++;
    if (it->tag == 'R') {
        it->attrs = rd_str(&d);
        it->dropped = rd_u32(&d);
        it->schema_url = rd_str(&d);
    } else if (it->tag == 'E') {
        it->schema_url = rd_str(&d);
        it->entity_type = rd_str(&d);
        it->id_keys = rd_keys(&d, &it->n_id_keys);
        it->description_keys = rd_keys(&d, &it->n_description_keys);
    } else if (it->tag == 'P') {
        it->scope_index = rd_u32(&d);
        it->scope.name = rd_str(&d);
        it->scope.version = rd_str(&d);
        it->scope.schema_url = rd_str(&d);
        it->scope_attrs = rd_str(&d);
        it->scope.dropped_attributes_count = rd_u32(&d);
        it->sample_type = rd_str(&d);
        it->sample_unit = rd_str(&d);
        it->period_type = rd_str(&d);
        it->period_unit = rd_str(&d);
        it->period = (int64_t)rd_le64(&d);
        it->time_unix_nano = rd_le64(&d);
        it->duration_nano = rd_le64(&d);
        it->profile_id = rd_str(&d);
        it->dropped = rd_u32(&d);
        it->payload_format = rd_str(&d);
        it->payload = rd_str(&d);
        it->attrs = rd_str(&d);
    } else {
        return -1;
    }
    if (d.bad)
        return -1;
    *pos = d.p;
    return 1;
}
