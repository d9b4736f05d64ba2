/*
 * usdt_encode.c - a batch of spans as one OTLP ExportTraceServiceRequest (protobuf or
 * OTLP/JSON), and the partial_success of the answer.
 *
 * Why hand-written and not nanopb: the project's nanopb options make the trace messages
 * decode-side (callbacks and pb_ref_t into a request buffer), and the bridge's request is
 * always the same shape: one resource, one scope, spans with the same few fields. Sizes are
 * computed first, so every nested length is known before it is written and the output is
 * canonical protobuf, written in one pass into a buffer reserved once. Field numbers and
 * wire types are those of opentelemetry/proto/trace/v1/trace.proto and common.proto (see
 * pb/).
 *
 * The span: 16-byte trace id, 8-byte span id, kind SERVER, the configured name, start and
 * end from the probe's own timestamps, flags 0x101 (sampled; a local root), attributes
 * request.id (string), duration_ns (int) and duration_ms (double) when the duration is
 * known, usdt.start_missing (bool) for a span made from its end alone, and for a span whose
 * end never came usdt.unfinished (string: why) with status ERROR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/usdt.h"
#include "lib/escape.h"
#include "otlp/varint.h"
#include "otlp/wire.h"

#define SPAN_KIND_SERVER 2
#define STATUS_ERROR 2
#define SPAN_FLAGS 0x101u
#define MAX_ATTRS 4

enum atype { A_STR, A_INT, A_DOUBLE, A_BOOL };

struct attr {
    const char *key;
    enum atype type;
    const char *s;
    size_t len;
    int64_t i;
    double d;
};

const char *usdt_how_name(enum usdt_how how)
{
    switch (how) {
    case USDT_UNF_TTL: return "ttl";
    case USDT_UNF_DUPLICATE: return "duplicate_start";
    case USDT_UNF_EVICTED: return "evicted";
    case USDT_UNF_SHUTDOWN: return "shutdown";
    default: return NULL;
    }
}

static size_t span_attrs(const struct usdt_span_rec *s, struct attr *a)
{
    size_t n = 0;
    a[n++] = (struct attr){ .key = "request.id", .type = A_STR, .s = s->reqid, .len = s->reqid_len };
    if (!USDT_UNFINISHED(s->how)) {
        a[n++] = (struct attr){ .key = "duration_ns", .type = A_INT, .i = s->duration_ns };
        a[n++] = (struct attr){ .key = "duration_ms", .type = A_DOUBLE, .d = (double)s->duration_ns / 1e6 };
    }
    if (s->how == USDT_NO_START)
        a[n++] = (struct attr){ .key = "usdt.start_missing", .type = A_BOOL, .i = 1 };
    const char *why = usdt_how_name((enum usdt_how)s->how);
    if (why)
        a[n++] = (struct attr){ .key = "usdt.unfinished", .type = A_STR, .s = why, .len = strlen(why) };
    return n;
}

static const char *status_message(const struct usdt_span_rec *s)
{
    return USDT_UNFINISHED(s->how) ? "the request's end was not seen" : NULL;
}

/* ---------------------------------------------------------------- protobuf sizes */

static size_t vsize(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A length-delimited payload of n bytes with its length (the tag not included). */
static size_t ld(size_t n) { return vsize(n) + n; }

static size_t anyvalue_size(const struct attr *a)
{
    switch (a->type) {
    case A_STR: return 1 + ld(a->len);
    case A_INT: return 1 + vsize((uint64_t)a->i);
    case A_DOUBLE: return 9;
    default: return 2;
    }
}

static size_t kv_size(const struct attr *a)
{
    return 1 + ld(strlen(a->key)) + 1 + ld(anyvalue_size(a));
}

static size_t status_size(const char *msg)
{
    return msg ? 1 + ld(strlen(msg)) + 2 : 0;
}

static size_t span_size(const struct usdt_resource *r, const struct usdt_span_rec *s)
{
    struct attr a[MAX_ATTRS];
    size_t n = span_attrs(s, a), size = 18 + 10 + 1 + ld(strlen(r->span_name)) + 2 + 9 + 9 + 6;
    for (size_t i = 0; i < n; i++)
        size += 1 + ld(kv_size(&a[i]));
    const char *msg = status_message(s);
    if (msg)
        size += 1 + ld(status_size(msg));
    return size;
}

/* ---------------------------------------------------------------- protobuf writing */

struct w {
    uint8_t *p;
};

static void put_byte(struct w *w, uint8_t b) { *w->p++ = b; }

static void put_varint(struct w *w, uint64_t v) { w->p += varint_encode(v, w->p); }

static void put_le(struct w *w, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

/* tag, length, bytes */
static void put_ld(struct w *w, uint8_t tag, const void *p, size_t n)
{
    put_byte(w, tag);
    put_varint(w, n);
    memcpy(w->p, p, n);
    w->p += n;
}

static void put_kv(struct w *w, uint8_t tag, const struct attr *a)
{
    put_byte(w, tag);
    put_varint(w, kv_size(a));
    put_ld(w, 0x0a, a->key, strlen(a->key));
    put_byte(w, 0x12);
    put_varint(w, anyvalue_size(a));
    if (a->type == A_STR) {
        put_ld(w, 0x0a, a->s, a->len);
    } else if (a->type == A_INT) {
        put_byte(w, 0x18);
        put_varint(w, (uint64_t)a->i);
    } else if (a->type == A_DOUBLE) {
        uint64_t bits;
        memcpy(&bits, &a->d, 8);
        put_byte(w, 0x21);
        put_le(w, bits, 8);
    } else {
        put_byte(w, 0x10);
        put_byte(w, a->i ? 1 : 0);
    }
}

static void put_span(struct w *w, const struct usdt_resource *r, const struct usdt_span_rec *s)
{
    struct attr a[MAX_ATTRS];
    size_t n = span_attrs(s, a);
    put_byte(w, 0x12);                               /* ScopeSpans.spans */
    put_varint(w, span_size(r, s));
    put_ld(w, 0x0a, s->trace_id, 16);
    put_ld(w, 0x12, s->span_id, 8);
    put_ld(w, 0x2a, r->span_name, strlen(r->span_name));
    put_byte(w, 0x30);
    put_byte(w, SPAN_KIND_SERVER);
    put_byte(w, 0x39);
    put_le(w, (uint64_t)s->start_ns, 8);
    put_byte(w, 0x41);
    put_le(w, (uint64_t)s->end_ns, 8);
    for (size_t i = 0; i < n; i++)
        put_kv(w, 0x4a, &a[i]);
    const char *msg = status_message(s);
    if (msg) {
        put_byte(w, 0x7a);
        put_varint(w, status_size(msg));
        put_ld(w, 0x12, msg, strlen(msg));
        put_byte(w, 0x18);
        put_byte(w, STATUS_ERROR);
    }
    put_byte(w, 0x85);                               /* flags: field 16, fixed32 */
    put_byte(w, 0x01);
    put_le(w, SPAN_FLAGS, 4);
}

static struct attr resource_attr(const struct usdt_kv *kv)
{
    return (struct attr){ .key = kv->key, .type = A_STR, .s = kv->value, .len = strlen(kv->value) };
}

bool usdt_encode_proto(struct buf *out, const struct usdt_resource *r, const struct usdt_span_rec *spans, size_t n)
{
    size_t resource = 0, scope = 1 + ld(strlen(r->scope_name)), spans_size = 0;
    for (size_t i = 0; i < r->n_attrs; i++) {
        struct attr a = resource_attr(&r->attrs[i]);
        resource += 1 + ld(kv_size(&a));
    }
    if (r->scope_version && r->scope_version[0])
        scope += 1 + ld(strlen(r->scope_version));
    for (size_t i = 0; i < n; i++)
        spans_size += 1 + ld(span_size(r, &spans[i]));
    size_t scope_spans = 1 + ld(scope) + spans_size;
    size_t resource_spans = 1 + ld(resource) + 1 + ld(scope_spans);
    size_t total = 1 + ld(resource_spans);
    if (!buf_reserve(out, total))
        return false;
    struct w w = { out->data + out->len };
    put_byte(&w, 0x0a);                              /* ExportTraceServiceRequest.resource_spans */
    put_varint(&w, resource_spans);
    put_byte(&w, 0x0a);                              /* ResourceSpans.resource */
    put_varint(&w, resource);
    for (size_t i = 0; i < r->n_attrs; i++) {
        struct attr a = resource_attr(&r->attrs[i]);
        put_kv(&w, 0x0a, &a);
    }
    put_byte(&w, 0x12);                              /* ResourceSpans.scope_spans */
    put_varint(&w, scope_spans);
    put_byte(&w, 0x0a);                              /* ScopeSpans.scope */
    put_varint(&w, scope);
    put_ld(&w, 0x0a, r->scope_name, strlen(r->scope_name));
    if (r->scope_version && r->scope_version[0])
        put_ld(&w, 0x12, r->scope_version, strlen(r->scope_version));
    for (size_t i = 0; i < n; i++)
        put_span(&w, r, &spans[i]);
    out->len += total;
    return (size_t)(w.p - out->data) == out->len;
}

/* ---------------------------------------------------------------- OTLP/JSON */

static bool json_str(struct buf *b, const char *s, size_t n)
{
    return esc_json_quoted(b, s, n);
}

static bool json_hex(struct buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf_putc(b, '"'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!buf_putc(b, hex[p[i] >> 4]) || !buf_putc(b, hex[p[i] & 15]))
            return false;
    return buf_putc(b, '"');
}

/* The shortest form that reads back as the same double. */
static bool json_double(struct buf *b, double d)
{
    char t[40];
    snprintf(t, sizeof t, "%.15g", d);
    if (strtod(t, NULL) != d)
        snprintf(t, sizeof t, "%.17g", d);
    return buf_printf(b, "%s", t);
}

static bool json_attrs(struct buf *b, const struct attr *a, size_t n)
{
    bool ok = buf_printf(b, "\"attributes\":[");
    for (size_t i = 0; ok && i < n; i++) {
        ok = buf_printf(b, "%s{\"key\":", i ? "," : "") && json_str(b, a[i].key, strlen(a[i].key));
        if (!ok)
            break;
        if (a[i].type == A_STR)
            ok = buf_printf(b, ",\"value\":{\"stringValue\":") && json_str(b, a[i].s, a[i].len);
        else if (a[i].type == A_INT)
            ok = buf_printf(b, ",\"value\":{\"intValue\":\"%lld\"", (long long)a[i].i);
        else if (a[i].type == A_DOUBLE)
            ok = buf_printf(b, ",\"value\":{\"doubleValue\":") && json_double(b, a[i].d);
        else
            ok = buf_printf(b, ",\"value\":{\"boolValue\":%s", a[i].i ? "true" : "false");
        ok = ok && buf_printf(b, "}}");
    }
    return ok && buf_putc(b, ']');
}

static bool json_span(struct buf *b, const struct usdt_resource *r, const struct usdt_span_rec *s)
{
    struct attr a[MAX_ATTRS];
    size_t n = span_attrs(s, a);
    const char *msg = status_message(s);
    bool ok = buf_printf(b, "{\"traceId\":") && json_hex(b, s->trace_id, 16) &&
              buf_printf(b, ",\"spanId\":") && json_hex(b, s->span_id, 8) &&
              buf_printf(b, ",\"name\":") && json_str(b, r->span_name, strlen(r->span_name)) &&
              buf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\",",
                         SPAN_KIND_SERVER, (long long)s->start_ns, (long long)s->end_ns) &&
              json_attrs(b, a, n);
    if (ok && msg)
        ok = buf_printf(b, ",\"status\":{\"message\":") && json_str(b, msg, strlen(msg)) &&
             buf_printf(b, ",\"code\":%d}", STATUS_ERROR);
    return ok && buf_printf(b, ",\"flags\":%u}", SPAN_FLAGS);
}

bool usdt_encode_json(struct buf *out, const struct usdt_resource *r, const struct usdt_span_rec *spans, size_t n)
{
    struct attr a[64];
    size_t na = r->n_attrs < 64 ? r->n_attrs : 64;
    for (size_t i = 0; i < na; i++)
        a[i] = resource_attr(&r->attrs[i]);
    bool ok = buf_printf(out, "{\"resourceSpans\":[{\"resource\":{") && json_attrs(out, a, na) &&
              buf_printf(out, "},\"scopeSpans\":[{\"scope\":{\"name\":") &&
              json_str(out, r->scope_name, strlen(r->scope_name));
    if (ok && r->scope_version && r->scope_version[0])
        ok = buf_printf(out, ",\"version\":") && json_str(out, r->scope_version, strlen(r->scope_version));
    ok = ok && buf_printf(out, "},\"spans\":[");
    for (size_t i = 0; ok && i < n; i++)
        ok = (i == 0 || buf_putc(out, ',')) && json_span(out, r, &spans[i]);
    return ok && buf_printf(out, "]}]}]}");
}

/* ---------------------------------------------------------------- the answer */

static bool partial_json(const uint8_t *body, size_t len, int64_t *rejected, char *msg, size_t msglen)
{
    struct uj_member m[8], in[8];
    int n = uj_object((const char *)body, len, m, 8);
    if (n < 0)
        return false;
    const struct uj_member *ps = uj_find(m, n, "partialSuccess");
    if (!ps)
        ps = uj_find(m, n, "partial_success");
    if (!ps || ps->type != UJ_OBJECT)
        return true;
    int k = uj_object(ps->raw, ps->raw_len, in, 8);
    const struct uj_member *r = k > 0 ? uj_find(in, k, "rejectedSpans") : NULL, *e;
    if (k > 0 && !r)
        r = uj_find(in, k, "rejected_spans");
    e = k > 0 ? uj_find(in, k, "errorMessage") : NULL;
    if (k > 0 && !e)
        e = uj_find(in, k, "error_message");
    if (r && !uj_int64(r, rejected))
        return false;
    size_t l = 0;
    if (e && msglen && uj_string(e, msg, msglen - 1, &l))
        msg[l] = 0;
    return true;
}

/* ExportTraceServiceResponse { partial_success (1) { rejected_spans (1), error_message (2) } } */
static bool partial_proto(const uint8_t *body, size_t len, bool outer, int64_t *rejected, char *msg, size_t msglen)
{
    struct cursor c = { body, body + len };
    while (c.p < c.end) {
        uint64_t tag, v;
        if (!wire_varint(&c, &tag))
            return false;
        switch (tag & 7) {
        case WT_VARINT:
            if (!wire_varint(&c, &v))
                return false;
            if (!outer && tag >> 3 == 1)
                *rejected = (int64_t)v;
            break;
        case WT_I64:
        case WT_I32:
            if ((size_t)(c.end - c.p) < ((tag & 7) == WT_I64 ? 8u : 4u))
                return false;
            c.p += (tag & 7) == WT_I64 ? 8 : 4;
            break;
        case WT_LEN:
            if (!wire_varint(&c, &v) || v > (uint64_t)(c.end - c.p))
                return false;
            if (outer && tag >> 3 == 1 && !partial_proto(c.p, (size_t)v, false, rejected, msg, msglen))
                return false;
            if (!outer && tag >> 3 == 2 && msglen)
                snprintf(msg, msglen, "%.*s", (int)(v < msglen ? v : msglen - 1), (const char *)c.p);
            c.p += v;
            break;
        default:
            return false;
        }
    }
    return true;
}

bool usdt_partial_success(const uint8_t *body, size_t len, bool json, int64_t *rejected, char *msg, size_t msglen)
{
    *rejected = 0;
    if (msglen)
        msg[0] = 0;
    if (len == 0)
        return true;
    return json ? partial_json(body, len, rejected, msg, msglen) : partial_proto(body, len, true, rejected, msg, msglen);
}
