/*
 * json.c - the stdout sink's JSON format: one JSON object per sample, one per line, for
 * scripts (jq, Python, a log shipper). Each line stands alone: it repeats the request,
 * resource, scope and profile the sample belongs to, so lines can be filtered, split or
 * shipped one by one. docs/output.md documents every key; the names are stable.
 *
 * The parts of a line that are the same for every sample of a resource or a profile are
 * built once (at resource_begin / profile_begin) and copied into each line. That copy is an
 * amplification a sender controls (a huge attribute times many samples), so a request's JSON
 * output is capped relative to its size; past the cap the request fails.
 *
 * Span lines (spans.c) are made of the same pieces: the resource prefix, attribute lists,
 * scope, times, hex ids and the cap are exported to it through internal.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sinks/stdout/internal.h"
#include "sinks/timefmt.h"

/* "2025-10-31T05:09:03.453558373Z" (timefmt.h): RFC 3339 in UTC, always nine fraction
 * digits, so the strings sort as the times do. */
void json_time(struct out *o, uint64_t unix_nano)
{
    char t[TIMEFMT_RFC3339_MAX + 2];
    t[0] = '"';
    size_t n = 1 + timefmt_rfc3339(t + 1, unix_nano);
    t[n++] = '"';
    out_raw(o, t, n);
}

static void out_cstr(struct out *o, const char *s)
{
    out_json_str(o, (lb_str){ s ? s : "", s ? strlen(s) : 0 });
}

void json_hex(struct out *o, lb_str bytes)
{
    out_c(o, '"');
    out_hexbytes(o, bytes);
    out_c(o, '"');
}

static const char *kind_name(enum lb_value_kind k)
{
    switch (k) {
    case LB_VALUE_STRING: return "string";
    case LB_VALUE_BOOL:   return "bool";
    case LB_VALUE_INT:    return "int";
    case LB_VALUE_DOUBLE: return "double";
    case LB_VALUE_BYTES:  return "bytes";
    case LB_VALUE_ARRAY:  return "array";
    case LB_VALUE_KVLIST: return "kvlist";
    case LB_VALUE_EMPTY:
    default:              return "empty";
    }
}

/* [{"key":..,"type":..,"value":..}] in wire order (keys may repeat: nothing is merged).
 * "unit" only when the attribute has one (spans' never do), "error" only when a list was cut
 * short. */
static void json_attr(struct out *o, const struct lb_attr *a)
{
    OUT_LIT(o, "{\"key\":");
    out_json_str(o, a->key);
    OUT_LIT(o, ",\"type\":\"");
    out_raw(o, kind_name(a->value.kind), strlen(kind_name(a->value.kind)));
    OUT_LIT(o, "\",\"value\":");
    const char *err = json_value_strict(o, &a->value);
    if (a->unit.n) {
        OUT_LIT(o, ",\"unit\":");
        out_json_str(o, a->unit);
    }
    if (err) {
        OUT_LIT(o, ",\"error\":");
        out_cstr(o, err);
    }
    out_c(o, '}');
}

void json_attrs(struct out *o, struct lb_attrs attrs)
{
    out_c(o, '[');
    for (size_t i = 0; i < attrs.n; i++) {
        if (i)
            out_c(o, ',');
        json_attr(o, &attrs.v[i]);
    }
    out_c(o, ']');
}

static void out_request(struct out *o, const struct lb_request *r)
{
    OUT_LIT(o, "\"request\":{\"sequence\":");
    out_u64(o, r ? r->sequence : 0);
    OUT_LIT(o, ",\"transport\":");
    out_cstr(o, r ? r->transport : NULL);
    OUT_LIT(o, ",\"peer\":");
    out_cstr(o, r ? r->peer : NULL);
    OUT_LIT(o, ",\"layout\":");
    out_cstr(o, r ? r->layout : NULL);
    OUT_LIT(o, ",\"received_unix_nano\":");
    out_u64(o, r ? r->received_unix_nano : 0);
    OUT_LIT(o, ",\"received\":");
    json_time(o, r ? r->received_unix_nano : 0);
    OUT_LIT(o, ",\"unknown_fields_total\":");
    out_u64(o, r ? r->unknown_fields_total : 0);
    OUT_LIT(o, ",\"unknown_fields\":[");
    for (size_t i = 0; r && i < r->n_unknown_fields; i++) {
        const struct lb_unknown_field *u = &r->unknown_fields[i];
        if (i)
            out_c(o, ',');
        OUT_LIT(o, "{\"path\":");
        out_json_str(o, u->path);
        OUT_LIT(o, ",\"message\":");
        out_json_str(o, u->message);
        OUT_LIT(o, ",\"field\":");
        out_u64(o, u->number);
        OUT_LIT(o, ",\"wire_type\":");
        out_cstr(o, lb_wire_type_name(u->wire_type));
        OUT_LIT(o, ",\"size\":");
        out_u64(o, u->raw.n);
        OUT_LIT(o, ",\"decoded\":");
        out_json_str(o, u->decoded);
        out_c(o, '}');
    }
    OUT_LIT(o, "]}");
}

/* The end of the resource and profile objects: the dropped count, the attributes unless a
 * detail switch leaves them out (`shown`), the closing brace. A prefix is built in its own
 * buffer; running out of memory there fails the request like any other append. */
static void prefix_end(struct stdout_state *st, struct out *prefix, uint64_t dropped,
                       bool shown, struct lb_attrs attrs)
{
    OUT_LIT(prefix, ",\"dropped_attributes_count\":");
    out_u64(prefix, dropped);
    if (shown) {
        OUT_LIT(prefix, ",\"attributes\":");
        json_attrs(prefix, attrs);
    }
    OUT_LIT(prefix, "},");
    if (prefix->oom)
        st->out.oom = true;
}

static void out_str_array(struct out *o, const lb_str *v, size_t n)
{
    out_c(o, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            out_c(o, ',');
        out_json_str(o, v[i]);
    }
    out_c(o, ']');
}

void json_resource_begin(struct stdout_state *st, const struct lb_resource *r)
{
    struct out *o = &st->json_resource;
    buf_reset(&o->b);
    out_c(o, '{');
    out_request(o, r->request);
    OUT_LIT(o, ",\"resource\":{\"index\":");
    out_u64(o, r->index);
    OUT_LIT(o, ",\"schema_url\":");
    out_json_str(o, r->schema_url);
    OUT_LIT(o, ",\"entity_refs\":[");
    for (size_t i = 0; i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *e = &r->entity_refs[i];
        if (i)
            out_c(o, ',');
        OUT_LIT(o, "{\"type\":");
        out_json_str(o, e->type);
        OUT_LIT(o, ",\"schema_url\":");
        out_json_str(o, e->schema_url);
        OUT_LIT(o, ",\"id_keys\":");
        out_str_array(o, e->id_keys, e->n_id_keys);
        OUT_LIT(o, ",\"description_keys\":");
        out_str_array(o, e->description_keys, e->n_description_keys);
        out_c(o, '}');
    }
    out_c(o, ']');
    prefix_end(st, o, r->dropped_attributes_count, !st->opt.no_resource_attributes, r->attrs);
}

/* {"type":..,"unit":..,"aggregation_temporality":..} */
static void out_value_type_obj(struct out *o, lb_str type, lb_str unit, int32_t temporality)
{
    OUT_LIT(o, "{\"type\":");
    out_json_str(o, type);
    OUT_LIT(o, ",\"unit\":");
    out_json_str(o, unit);
    OUT_LIT(o, ",\"aggregation_temporality\":");
    out_i64(o, temporality);
    out_c(o, '}');
}

static void out_value_type(struct out *o, const char *name, lb_str type, lb_str unit, int32_t temporality)
{
    out_c(o, '"');
    out_raw(o, name, strlen(name));
    OUT_LIT(o, "\":");
    out_value_type_obj(o, type, unit, temporality);
}

void json_scope(struct out *o, const struct lb_scope *sc, bool schema_url)
{
    OUT_LIT(o, "\"scope\":{\"name\":");
    out_json_str(o, sc ? sc->name : LB_STR_NULL);
    OUT_LIT(o, ",\"version\":");
    out_json_str(o, sc ? sc->version : LB_STR_NULL);
    if (schema_url) {
        OUT_LIT(o, ",\"schema_url\":");
        out_json_str(o, sc ? sc->schema_url : LB_STR_NULL);
    }
    OUT_LIT(o, ",\"dropped_attributes_count\":");
    out_u64(o, sc ? sc->dropped_attributes_count : 0);
    OUT_LIT(o, ",\"attributes\":");
    json_attrs(o, sc ? sc->attrs : (struct lb_attrs){ NULL, 0 });
    OUT_LIT(o, "},");
}

void json_profile_begin(struct stdout_state *st, const struct lb_profile *p)
{
    struct out *o = &st->json_profile;
    buf_reset(&o->b);
    json_scope(o, p->scope, true);
    OUT_LIT(o, "\"profile\":{\"scope_index\":");
    out_u64(o, p->scope_index);
    OUT_LIT(o, ",\"index\":");
    out_u64(o, p->index);
    OUT_LIT(o, ",\"profile_id\":");
    json_hex(o, p->profile_id);
    OUT_LIT(o, ",\"time_unix_nano\":");
    out_u64(o, p->time_unix_nano);
    OUT_LIT(o, ",\"time\":");
    json_time(o, p->time_unix_nano);
    OUT_LIT(o, ",\"duration_nano\":");
    out_u64(o, p->duration_nano);
    out_c(o, ',');
    out_value_type(o, "period_type", p->period_type, p->period_unit, p->period_aggregation_temporality);
    OUT_LIT(o, ",\"period\":");
    out_i64(o, p->period);
    out_c(o, ',');
    out_value_type(o, "sample_type", p->sample_type, p->sample_unit, p->sample_aggregation_temporality);
    OUT_LIT(o, ",\"sample_types\":[");
    for (size_t i = 0; i < p->n_sample_types; i++) {
        if (i)
            out_c(o, ',');
        out_value_type_obj(o, p->sample_types[i].type, p->sample_types[i].unit,
                           p->sample_types[i].aggregation_temporality);
    }
    if (p->n_sample_types == 0)   /* a view made without the list: the one sample type */
        out_value_type_obj(o, p->sample_type, p->sample_unit, p->sample_aggregation_temporality);
    OUT_LIT(o, "],\"default_sample_type_index\":");
    out_i64(o, p->default_sample_type_index);
    OUT_LIT(o, ",\"comments\":");
    out_str_array(o, p->comments, p->n_comments);
    OUT_LIT(o, ",\"original_payload_format\":");
    out_json_str(o, p->original_payload_format);
    OUT_LIT(o, ",\"original_payload_size\":");
    out_u64(o, p->original_payload_len);
    prefix_end(st, o, p->dropped_attributes_count, !st->opt.no_profile_attributes, p->attrs);
}

/* A mapping attribute that is a build id: process.executable.build_id.<kind>, a string (or
 * bytes) value. Its kind, or empty. */
static lb_str build_id_kind_of(const struct lb_attr *a)
{
    lb_str kind = lb_build_id_kind(a->key);
    return kind.n && (a->value.kind == LB_VALUE_STRING || a->value.kind == LB_VALUE_BYTES) ? kind : LB_STR_NULL;
}

/* The location's attributes but the profile.frame.type shown as the frame's "type". */
static void out_location_attributes(struct out *o, const struct lb_frame *f)
{
    bool skip = f->type.n > 0, first = true;
    out_c(o, '[');
    for (size_t i = 0; i < f->location_attrs.n; i++) {
        const struct lb_attr *a = &f->location_attrs.v[i];
        if (skip && a->value.kind == LB_VALUE_STRING && a->value.u.str.p == f->type.p &&
            a->value.u.str.n == f->type.n && LB_STR_EQ(a->key, "profile.frame.type")) {
            skip = false;
            continue;
        }
        if (!first)
            out_c(o, ',');
        first = false;
        json_attr(o, a);
    }
    out_c(o, ']');
}

/* "mapping_info": null without a mapping, else its range, offset, build ids (its attributes
 * process.executable.build_id.<kind>), its other attributes and v1.7 flags. */
static void out_mapping_info(struct out *o, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    OUT_LIT(o, ",\"mapping_info\":");
    if (!f->has_mapping) {
        OUT_LIT(o, "null");
        return;
    }
    struct lb_attrs attrs = map->attrs;
    OUT_LIT(o, "{\"start\":\"0x");
    out_hex64(o, map->start);
    OUT_LIT(o, "\",\"limit\":\"0x");
    out_hex64(o, map->limit);
    OUT_LIT(o, "\",\"offset\":\"0x");
    out_hex64(o, map->offset);
    OUT_LIT(o, "\",\"build_ids\":[");
    bool first = true;
    for (size_t i = 0; i < attrs.n; i++) {
        lb_str kind = build_id_kind_of(&attrs.v[i]);
        const struct lb_value *v = &attrs.v[i].value;
        if (!kind.n)
            continue;
        if (!first)
            out_c(o, ',');
        first = false;
        OUT_LIT(o, "{\"kind\":");
        out_json_str(o, kind);
        OUT_LIT(o, ",\"id\":");
        if (v->kind == LB_VALUE_STRING)
            out_json_str(o, v->u.str);
        else
            json_hex(o, v->u.str);
        out_c(o, '}');
    }
    OUT_LIT(o, "],\"attributes\":[");
    first = true;
    for (size_t i = 0; i < attrs.n; i++) {
        if (build_id_kind_of(&attrs.v[i]).n)
            continue;
        if (!first)
            out_c(o, ',');
        first = false;
        json_attr(o, &attrs.v[i]);
    }
    OUT_LIT(o, "],\"flags\":[");
    static const char *const flags[] = { "\"has_functions\"", "\"has_filenames\"",
                                         "\"has_line_numbers\"", "\"has_inline_frames\"" };
    first = true;
    for (unsigned i = 0; i < 4; i++) {
        if (!(map->flags & (1u << i)))
            continue;
        if (!first)
            out_c(o, ',');
        first = false;
        out_raw(o, flags[i], strlen(flags[i]));
    }
    OUT_LIT(o, "]}");
}

/* Every frame has the same keys (file, line, column left out by --no-file-line). */
static void out_frame(struct out *o, const struct lb_frame *f, bool file_line)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    OUT_LIT(o, "{\"type\":");
    out_json_str(o, f->type.n ? f->type : LB_STR_LIT("unknown"));
    OUT_LIT(o, ",\"symbolized\":");
    if (f->symbolized)
        OUT_LIT(o, "true");
    else
        OUT_LIT(o, "false");
    OUT_LIT(o, ",\"function\":");
    out_json_str(o, f->function);
    if (file_line) {
        OUT_LIT(o, ",\"file\":");
        out_json_str(o, f->file);
        OUT_LIT(o, ",\"line\":");
        out_i64(o, f->line);
        OUT_LIT(o, ",\"column\":");
        out_i64(o, f->column);
    }
    OUT_LIT(o, ",\"address\":\"0x");
    out_hex64(o, f->address);
    OUT_LIT(o, "\",\"mapping\":");
    if (f->has_mapping)
        out_json_str(o, map->file);
    else
        OUT_LIT(o, "null");
    OUT_LIT(o, ",\"build_id\":");
    out_json_str(o, f->has_mapping ? map->build_id : LB_STR_NULL);
    OUT_LIT(o, ",\"build_id_kind\":");
    out_json_str(o, f->has_mapping ? map->build_id_kind : LB_STR_NULL);
    OUT_LIT(o, ",\"system_name\":");
    out_json_str(o, f->system_name);
    OUT_LIT(o, ",\"start_line\":");
    out_i64(o, f->start_line);
    OUT_LIT(o, ",\"is_folded\":");
    if (f->is_folded)
        OUT_LIT(o, "true");
    else
        OUT_LIT(o, "false");
    OUT_LIT(o, ",\"location_attributes\":");
    out_location_attributes(o, f);
    out_mapping_info(o, f);
    out_c(o, '}');
}

static void out_sample(struct stdout_state *st, const struct lb_sample *s)
{
    struct out *o = &st->out;
    OUT_LIT(o, "\"sample\":{\"index\":");
    out_u64(o, s->index);
    OUT_LIT(o, ",\"timestamps_unix_nano\":[");
    for (size_t i = 0; i < s->n_timestamps; i++) {
        if (i)
            out_c(o, ',');
        out_u64(o, s->timestamps[i]);
    }
    OUT_LIT(o, "],\"timestamps\":[");
    for (size_t i = 0; i < s->n_timestamps; i++) {
        if (i)
            out_c(o, ',');
        json_time(o, s->timestamps[i]);
    }
    OUT_LIT(o, "],\"values\":[");
    for (size_t i = 0; i < s->n_values; i++) {
        if (i)
            out_c(o, ',');
        out_i64(o, s->values[i]);
    }
    OUT_LIT(o, "],\"weight\":");
    out_i64(o, lb_sample_weight(s));
    OUT_LIT(o, ",\"link\":");
    if (s->has_link) {
        OUT_LIT(o, "{\"trace_id\":");
        json_hex(o, s->trace_id);
        OUT_LIT(o, ",\"span_id\":");
        json_hex(o, s->span_id);
        out_c(o, '}');
    } else {
        OUT_LIT(o, "null");
    }
    if (!st->opt.no_sample_attributes) {
        OUT_LIT(o, ",\"attributes\":");
        json_attrs(o, s->attrs);
    }
    if (!st->opt.no_frames) {
        OUT_LIT(o, ",\"frames\":[");
        stack_write(st, s, out_frame, ',');
        out_c(o, ']');
    }
    out_c(o, '}');
}

bool json_within_budget(struct stdout_state *st, const struct lb_request *r)
{
    uint64_t message = r ? r->message_bytes : 0;
    if (st->flushed + st->out.b.len <= JSON_BUDGET_BASE + JSON_BUDGET_FACTOR * message)
        return true;
    if (!st->failed) {   /* the first failure of a request is the one it reports */
        st->failed = true;
        snprintf(st->why, sizeof st->why, "json output of the request exceeds %d times its size "
                 "plus %d MiB", JSON_BUDGET_FACTOR, (int)(JSON_BUDGET_BASE >> 20));
    }
    return false;
}

bool json_sample(struct stdout_state *st, const struct lb_sample *s)
{
    struct out *o = &st->out;
    out_raw(o, st->json_resource.b.data, st->json_resource.b.len);
    out_raw(o, st->json_profile.b.data, st->json_profile.b.len);
    out_sample(st, s);
    OUT_LIT(o, "}\n");
    return json_within_budget(st, s->profile && s->profile->resource ? s->profile->resource->request : NULL);
}
