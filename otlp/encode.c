/*
 * encode.c - see encode.h: resolved profiles events in, a v1.11 ExportProfilesServiceRequest
 * out.
 *
 * The request is written inside out: each sample is encoded as it arrives (its stack,
 * locations, functions, mappings, attributes and link interned into the dictionary being
 * built), a profile is closed at profile_end, a ScopeProfiles when the scope index changes or
 * the resource ends, a ResourceProfiles at resource_end. otlp_encoder_finish appends the
 * dictionary. Field numbers are those of docs/layouts.md's v1.10/v1.11 tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp/encode.h"
#include "otlp/itab.h"
#include "otlp/pbwrite.h"
#include "otlp/vec.h"

/* ---------- the encoder ---------- */

enum { T_MAPPING, T_LOCATION, T_FUNCTION, T_LINK, T_STRING, T_ATTRIBUTE, T_STACK, T_COUNT };

struct otlp_encoder {
    size_t max_bytes;
    struct itab t[T_COUNT];
    struct buf body;       /* ExportProfilesServiceRequest.resource_profiles entries */
    struct buf res;        /* the ResourceProfiles being built */
    struct buf scope;      /* the ScopeProfiles being built */
    struct buf prof;       /* the samples of the profile being built */
    struct buf msg, ent, packed, packed2, lines;   /* scratch, one level each */
    struct buf scope_url;
    bool in_scope;
    unsigned scope_index;
    size_t resources, request_mark, request_resources;
    bool failed;
    char why[256];
};

static void fail(struct otlp_encoder *e, const char *what)
{
    if (!e->failed)
        snprintf(e->why, sizeof e->why, "%s: the request grew past %zu bytes, or out of memory",
                 what, e->max_bytes);
    e->failed = true;
}

struct otlp_encoder *otlp_encoder_new(size_t max_bytes)
{
    struct otlp_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->max_bytes = max_bytes;
    for (int i = 0; i < T_COUNT; i++) {
        itab_init(&e->t[i], max_bytes);
        if (!itab_reset(&e->t[i])) {
            otlp_encoder_free(e);
            return NULL;
        }
    }
    struct buf *bufs[] = { &e->body, &e->res, &e->scope, &e->prof, &e->msg, &e->ent,
                           &e->packed, &e->packed2, &e->lines, &e->scope_url };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_init(bufs[i], max_bytes);
    return e;
}

void otlp_encoder_free(struct otlp_encoder *e)
{
    if (!e)
        return;
    for (int i = 0; i < T_COUNT; i++)
        itab_free(&e->t[i]);
    struct buf *bufs[] = { &e->body, &e->res, &e->scope, &e->prof, &e->msg, &e->ent,
                           &e->packed, &e->packed2, &e->lines, &e->scope_url };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_free(bufs[i]);
    free(e);
}

size_t otlp_encoder_resources(const struct otlp_encoder *e)
{
    return e->resources;
}

static int64_t str_index(struct otlp_encoder *e, lb_str s)
{
    if (s.n == 0)
        return 0;
    int64_t i = itab_intern(&e->t[T_STRING], s.p, s.n);
    if (i < 0)
        fail(e, "string_table");
    return i < 0 ? 0 : i;
}

/* ---------- values ---------- */

static bool put_any(size_t max, struct buf *out, uint32_t field, const struct lb_value *v);

static bool put_kv(size_t max, struct buf *out, uint32_t field, lb_str key, const struct lb_value *v)
{
    struct buf kv;
    buf_init(&kv, max);
    bool ok = pbw_bytes(&kv, 1, key.p, key.n) && put_any(max, &kv, 2, v) && pbw_msg(out, field, &kv);
    buf_free(&kv);
    return ok;
}

/* An AnyValue as field `field` of out; a oneof member is written even when it is zero, so
 * the kind survives (an empty string is not an absent value). */
/* The elements of an ARRAY or KVLIST as the body of an ArrayValue / KeyValueList (field 1 each). */
static bool put_list(size_t max, struct buf *list, const struct lb_value *v)
{
    struct lb_value_iter it;
    struct lb_value el;
    lb_str key;
    bool ok = true;
    lb_value_iter_init(&it, v);
    if (v->kind == LB_VALUE_ARRAY)
        while (ok && lb_array_next(&it, &el))
            ok = put_any(max, list, 1, &el);
    else
        while (ok && lb_kvlist_next(&it, &key, &el))
            ok = put_kv(max, list, 1, key, &el);
    return ok && !it.err;
}

bool lb_value_encode(const struct lb_value *v, struct buf *out)
{
    buf_reset(out);
    return (v->kind == LB_VALUE_ARRAY || v->kind == LB_VALUE_KVLIST) && put_list(out->limit, out, v);
}

static bool put_any(size_t max, struct buf *out, uint32_t field, const struct lb_value *v)
{
    struct buf any;
    buf_init(&any, max);
    bool ok = true;
    switch (v->kind) {
    case LB_VALUE_EMPTY:
        break;
    case LB_VALUE_STRING:
        ok = pbw_bytes_always(&any, 1, v->u.str.p, v->u.str.n);
        break;
    case LB_VALUE_BOOL:
        ok = pbw_tag(&any, 2, PBW_VARINT) && pbw_varint(&any, v->u.boolean);
        break;
    case LB_VALUE_INT:
        ok = pbw_tag(&any, 3, PBW_VARINT) && pbw_varint(&any, (uint64_t)v->u.integer);
        break;
    case LB_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.dbl, 8);
        ok = pbw_tag(&any, 4, PBW_I64) && pbw_fixed64_raw(&any, bits);
        break;
    }
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST: {
        struct buf list;
        buf_init(&list, max);
        ok = put_list(max, &list, v) && pbw_msg(&any, v->kind == LB_VALUE_ARRAY ? 5 : 6, &list);
        buf_free(&list);
        break;
    }
    case LB_VALUE_BYTES:
        ok = pbw_bytes_always(&any, 7, v->u.str.p, v->u.str.n);
        break;
    }
    ok = ok && pbw_msg(out, field, &any);
    buf_free(&any);
    return ok;
}

/* attribute_table index of one KeyValueAndUnit. */
static int64_t attr_index(struct otlp_encoder *e, const struct lb_attr *a)
{
    struct buf b;
    buf_init(&b, e->max_bytes);
    int64_t key = str_index(e, a->key), unit = str_index(e, a->unit), i = -1;
    if (pbw_int(&b, 1, key) && put_any(e->max_bytes, &b, 2, &a->value) && pbw_int(&b, 3, unit))
        i = itab_intern(&e->t[T_ATTRIBUTE], b.data, b.len);
    buf_free(&b);
    if (i < 0)
        fail(e, "attribute_table");
    return i < 0 ? 0 : i;
}

/* attribute_indices as a packed field into out (scratch: e->packed2). */
static bool put_attr_indices(struct otlp_encoder *e, struct buf *out, uint32_t field, struct lb_attrs attrs)
{
    if (attrs.n == 0)
        return true;
    struct buf *p = &e->packed2;
    buf_reset(p);
    for (size_t i = 0; i < attrs.n; i++)
        if (!pbw_varint(p, (uint64_t)attr_index(e, &attrs.v[i])))
            return false;
    return pbw_msg(out, field, p);
}

/* One synthesized string attribute (old stores kept only the frame type and one build id). */
static struct lb_attrs one_attr(struct lb_attr *a, lb_str key, lb_str value)
{
    a->key = key;
    a->unit = LB_STR_NULL;
    memset(&a->value, 0, sizeof a->value);
    a->value.kind = LB_VALUE_STRING;
    a->value.u.str = value;
    return (struct lb_attrs){ a, 1 };
}

/* Attributes of KeyValue form (resource, scope) into out as repeated field `field`. */
static bool put_keyvalues(struct otlp_encoder *e, struct buf *out, uint32_t field, struct lb_attrs attrs)
{
    for (size_t i = 0; i < attrs.n; i++)
        if (!put_kv(e->max_bytes, out, field, attrs.v[i].key, &attrs.v[i].value))
            return false;
    return true;
}

/* ---------- frames to locations ---------- */

static int64_t mapping_index(struct otlp_encoder *e, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    struct buf *b = &e->ent;
    buf_reset(b);
    struct lb_attrs attrs = map->attrs;
    struct lb_attr synth;
    char key[64];
    if (attrs.n == 0 && map->build_id.n && map->build_id_kind.n && map->build_id_kind.n < 32) {
        int kn = snprintf(key, sizeof key, "process.executable.build_id.%.*s", (int)map->build_id_kind.n,
                          map->build_id_kind.p);
        attrs = one_attr(&synth, (lb_str){ key, (size_t)kn }, map->build_id);
    }
    bool ok = pbw_uint(b, 1, map->start) && pbw_uint(b, 2, map->limit) &&
              pbw_uint(b, 3, map->offset) && pbw_int(b, 4, str_index(e, map->file));
    /* put_attr_indices uses packed2, not ent */
    ok = ok && put_attr_indices(e, b, 5, attrs);
    int64_t i = ok ? itab_intern(&e->t[T_MAPPING], b->data, b->len) : -1;
    if (i < 0)
        fail(e, "mapping_table");
    return i < 0 ? 0 : i;
}

static int64_t function_index(struct otlp_encoder *e, const struct lb_frame *f)
{
    struct buf *b = &e->ent;
    buf_reset(b);
    int64_t i = -1;
    if (pbw_int(b, 1, str_index(e, f->function)) && pbw_int(b, 2, str_index(e, f->system_name)) &&
        pbw_int(b, 3, str_index(e, f->file)) && pbw_int(b, 4, f->start_line))
        i = itab_intern(&e->t[T_FUNCTION], b->data, b->len);
    if (i < 0)
        fail(e, "function_table");
    return i < 0 ? 0 : i;
}

/* The location made of frames f[0..n) (its lines, innermost first). */
static int64_t location_index(struct otlp_encoder *e, const struct lb_frame *f, size_t n)
{
    struct buf *lines = &e->lines, *b = &e->msg;
    buf_reset(lines);
    bool ok = true;
    if (f->symbolized) {
        for (size_t i = 0; ok && i < n; i++) {
            int64_t fn = function_index(e, &f[i]);
            struct buf *l = &e->ent;
            buf_reset(l);
            ok = pbw_int(l, 1, fn) && pbw_int(l, 2, f[i].line) && pbw_int(l, 3, f[i].column) &&
                 pbw_msg(lines, 3, l);
        }
    }
    int64_t map = f->has_mapping ? mapping_index(e, f) : 0;
    struct lb_attrs attrs = f->location_attrs;
    struct lb_attr synth;
    if (attrs.n == 0 && f->type.n)
        attrs = one_attr(&synth, LB_STR_LIT("profile.frame.type"), f->type);
    buf_reset(b);
    ok = ok && pbw_int(b, 1, map) && pbw_uint(b, 2, f->address) &&
         buf_append(b, lines->data ? lines->data : (const uint8_t *)"", lines->len) &&
         put_attr_indices(e, b, 4, attrs);
    int64_t i = ok ? itab_intern(&e->t[T_LOCATION], b->data, b->len) : -1;
    if (i < 0)
        fail(e, "location_table");
    return i < 0 ? 0 : i;
}

static int64_t stack_index(struct otlp_encoder *e, const struct lb_sample *s)
{
    if (s->n_frames == 0)
        return 0;
    struct buf *p = &e->packed;
    buf_reset(p);
    for (size_t i = 0; i < s->n_frames;) {
        size_t n = lb_location_span(&s->frames[i], s->n_frames - i);
        if (!pbw_varint(p, (uint64_t)location_index(e, &s->frames[i], n)))
            break;
        i += n;
    }
    struct buf *b = &e->msg;
    buf_reset(b);
    int64_t i = pbw_msg(b, 1, p) ? itab_intern(&e->t[T_STACK], b->data, b->len) : -1;
    if (i < 0)
        fail(e, "stack_table");
    return i < 0 ? 0 : i;
}

/* ---------- the events ---------- */

static int ev_admit(void *ctx, enum otlp_signal sig, char *why, size_t whylen)
{
    (void)ctx, (void)why, (void)whylen;
    return sig == OTLP_SIGNAL_PROFILES ? 0 : -1;
}

static void ev_request_begin(void *ctx, enum otlp_signal sig, const struct lb_request *r)
{
    struct otlp_encoder *e = ctx;
    (void)sig, (void)r;
    e->request_mark = e->body.len;
    e->request_resources = e->resources;
}

/* Resource.entity_refs (3) into b, each an EntityRef built in ent. A key is written even when
 * empty: repeated strings keep their empty elements. */
static bool put_entity_refs(struct otlp_encoder *e, struct buf *b, const struct lb_resource *r)
{
    for (size_t i = 0; i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *er = &r->entity_refs[i];
        struct buf *m = &e->ent;
        buf_reset(m);
        bool ok = pbw_bytes(m, 1, er->schema_url.p, er->schema_url.n) && pbw_bytes(m, 2, er->type.p, er->type.n);
        for (size_t k = 0; ok && k < er->n_id_keys; k++)
            ok = pbw_bytes_always(m, 3, er->id_keys[k].p, er->id_keys[k].n);
        for (size_t k = 0; ok && k < er->n_description_keys; k++)
            ok = pbw_bytes_always(m, 4, er->description_keys[k].p, er->description_keys[k].n);
        if (!ok || !pbw_msg(b, 3, m))
            return false;
    }
    return true;
}

static void ev_resource_begin(void *ctx, const struct lb_resource *r)
{
    struct otlp_encoder *e = ctx;
    buf_reset(&e->res);
    e->in_scope = false;
    struct buf *b = &e->msg;
    buf_reset(b);
    if (!put_keyvalues(e, b, 1, r->attrs) || !pbw_uint(b, 2, r->dropped_attributes_count) ||
        !put_entity_refs(e, b, r) || !pbw_msg(&e->res, 1, b))
        fail(e, "resource");
}

static void close_scope(struct otlp_encoder *e)
{
    if (!e->in_scope)
        return;
    e->in_scope = false;
    if (!pbw_bytes(&e->scope, 3, e->scope_url.data, e->scope_url.len) || !pbw_msg(&e->res, 2, &e->scope))
        fail(e, "scope_profiles");
}

static void ev_profile_begin(void *ctx, const struct lb_profile *p)
{
    struct otlp_encoder *e = ctx;
    if (!e->in_scope || p->scope_index != e->scope_index) {
        close_scope(e);
        e->in_scope = true;
        e->scope_index = p->scope_index;
        buf_reset(&e->scope);
        buf_reset(&e->scope_url);
        const struct lb_scope *sc = p->scope;
        struct buf *b = &e->msg;
        buf_reset(b);
        bool ok = true;
        if (sc) {
            ok = pbw_bytes(b, 1, sc->name.p, sc->name.n) && pbw_bytes(b, 2, sc->version.p, sc->version.n) &&
                 put_keyvalues(e, b, 3, sc->attrs) && pbw_uint(b, 4, sc->dropped_attributes_count) &&
                 pbw_msg(&e->scope, 1, b) &&
                 (sc->schema_url.n == 0 || buf_append(&e->scope_url, sc->schema_url.p, sc->schema_url.n));
        }
        if (!ok)
            fail(e, "scope");
    }
    buf_reset(&e->prof);
}

static void ev_sample(void *ctx, const struct lb_sample *s)
{
    struct otlp_encoder *e = ctx;
    struct buf b;
    buf_init(&b, e->max_bytes);
    int64_t stack = stack_index(e, s);
    bool ok = pbw_int(&b, 1, stack) && put_attr_indices(e, &b, 2, s->attrs);
    if (ok && s->has_link) {
        struct buf *l = &e->ent;
        buf_reset(l);
        int64_t li = pbw_bytes(l, 1, s->trace_id.p, s->trace_id.n) && pbw_bytes(l, 2, s->span_id.p, s->span_id.n)
                         ? itab_intern(&e->t[T_LINK], l->data, l->len) : -1;
        ok = li > 0 && pbw_int(&b, 3, li);
    }
    struct buf *p = &e->packed;
    buf_reset(p);
    for (size_t i = 0; ok && i < s->n_values; i++)
        ok = pbw_varint(p, (uint64_t)s->values[i]);
    ok = ok && (s->n_values == 0 || pbw_msg(&b, 4, p));
    buf_reset(p);
    for (size_t i = 0; ok && i < s->n_timestamps; i++)
        ok = pbw_fixed64_raw(p, s->timestamps[i]);
    ok = ok && (s->n_timestamps == 0 || pbw_msg(&b, 5, p)) && pbw_msg(&e->prof, 2, &b);
    buf_free(&b);
    if (!ok)
        fail(e, "sample");
}

static bool put_value_type(struct otlp_encoder *e, struct buf *out, uint32_t field, lb_str type, lb_str unit)
{
    struct buf *b = &e->ent;
    buf_reset(b);
    return pbw_int(b, 1, str_index(e, type)) && pbw_int(b, 2, str_index(e, unit)) && pbw_msg(out, field, b);
}

static void ev_profile_end(void *ctx, const struct lb_profile *p)
{
    struct otlp_encoder *e = ctx;
    struct buf m;
    buf_init(&m, e->max_bytes);
    bool ok = put_value_type(e, &m, 1, p->sample_type, p->sample_unit) &&
              buf_append(&m, e->prof.data ? e->prof.data : (const uint8_t *)"", e->prof.len) &&
              pbw_fixed64(&m, 3, p->time_unix_nano) && pbw_uint(&m, 4, p->duration_nano) &&
              put_value_type(e, &m, 5, p->period_type, p->period_unit) && pbw_int(&m, 6, p->period) &&
              pbw_bytes(&m, 7, p->profile_id.p, p->profile_id.n) &&
              pbw_uint(&m, 8, p->dropped_attributes_count) &&
              pbw_bytes(&m, 9, p->original_payload_format.p, p->original_payload_format.n) &&
              pbw_bytes(&m, 10, p->original_payload.p, p->original_payload.n) &&
              put_attr_indices(e, &m, 11, p->attrs) && pbw_msg(&e->scope, 2, &m);
    buf_free(&m);
    buf_reset(&e->prof);
    if (!ok)
        fail(e, "profile");
}

static void ev_resource_end(void *ctx, const struct lb_resource *r)
{
    struct otlp_encoder *e = ctx;
    close_scope(e);
    if (!pbw_bytes(&e->res, 3, r->schema_url.p, r->schema_url.n) || !pbw_msg(&e->body, 1, &e->res))
        fail(e, "resource_profiles");
    e->resources++;
}

static int ev_request_end(void *ctx, enum otlp_signal sig, const struct lb_request *r, char *why, size_t whylen)
{
    (void)ctx, (void)sig, (void)r, (void)why, (void)whylen;
    return 0;
}

/* What the aborted request added to the body goes; its dictionary entries stay (unused
 * entries are harmless). */
static void ev_request_abort(void *ctx, enum otlp_signal sig, const struct lb_request *r, const char *reason)
{
    struct otlp_encoder *e = ctx;
    (void)sig, (void)r, (void)reason;
    e->body.len = e->request_mark;
    e->resources = e->request_resources;
}

static void ev_nop_resource(void *ctx, const struct lb_resource *r) { (void)ctx, (void)r; }
static void ev_nop_span(void *ctx, const struct lb_span *sp) { (void)ctx, (void)sp; }

static const struct otlp_events ENCODER_EVENTS = {
    .admit = ev_admit, .request_begin = ev_request_begin, .resource_begin = ev_resource_begin,
    .profile_begin = ev_profile_begin, .sample = ev_sample, .profile_end = ev_profile_end,
    .resource_end = ev_resource_end, .span_resource_begin = ev_nop_resource, .span = ev_nop_span,
    .span_resource_end = ev_nop_resource, .request_end = ev_request_end,
    .request_abort = ev_request_abort,
};

struct otlp_consumer otlp_encoder_consumer(struct otlp_encoder *e)
{
    return (struct otlp_consumer){ &ENCODER_EVENTS, e };
}

/* ---------- the request ---------- */

int otlp_encoder_finish(struct otlp_encoder *e, struct buf *out, char *err, size_t errlen)
{
    static const uint32_t field[T_COUNT] = {
        [T_MAPPING] = 1, [T_LOCATION] = 2, [T_FUNCTION] = 3, [T_LINK] = 4,
        [T_STRING] = 5, [T_ATTRIBUTE] = 6, [T_STACK] = 7,
    };
    struct buf dict;
    buf_init(&dict, e->max_bytes);
    bool ok = !e->failed;
    for (int t = 0; ok && t < T_COUNT; t++) {
        const struct itab *it = &e->t[t];
        for (size_t i = 0; ok && i < it->e.n; i++)
            ok = pbw_bytes_always(&dict, field[t], it->e.v[i].len ? it->data.data + it->e.v[i].off : NULL,
                                  it->e.v[i].len);   /* a table of empty entries has no bytes at all */
    }
    buf_reset(out);
    ok = ok && buf_append(out, e->body.data ? e->body.data : (const uint8_t *)"", e->body.len) &&
         pbw_msg(out, 2, &dict);
    buf_free(&dict);
    if (!ok)
        snprintf(err, errlen, "%s", e->failed ? e->why : "the request grew past the size limit");
    e->failed = false;
    buf_reset(&e->body);
    e->resources = 0;
    for (int t = 0; t < T_COUNT; t++)
        if (!itab_reset(&e->t[t]))
            ok = false;
    return ok ? 0 : -1;
}
