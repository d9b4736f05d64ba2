/*
 * text.c - the stdout sink's TEXT format: the Go lazybackend's blocks and lines, with its
 * defects fixed (sample unit shown, sample timestamps in UTC, duration as a duration,
 * unsymbolized frames in the same grammar as symbolized ones plus address, mapping and build
 * id, every wire string escaped) and what it never showed added (scope, values, link). The
 * detail switches (--no-frames etc.) leave lines out as the Collector exporter's options do.
 * It also holds the JSON value walker, shared with json.c, and the attribute, scope, time and
 * indexed ("  Name[i]: ") lines that span blocks (spans.c) print the same way.
 * docs/output.md is the reference for every line written here; docs/output.md
 * for the detail switches.
 */
#include <math.h>
#include <string.h>

#include "sinks/numfmt.h"
#include "sinks/stdout/internal.h"
#include "sinks/timefmt.h"

/* Banners are exactly 51 characters, as in the Go lazybackend: scripts split on them. */
#define BANNER_NEW_RESOURCE "--------------- New Resource Profile --------------\n"
#define BANNER_NEW_PROFILE  "------------------- New Profile -------------------\n"
#define BANNER_NEW_SAMPLE   "------------------- New Sample --------------------\n"
#define SEP_SAMPLE_ATTRS    "---------------------------------------------------\n"
#define BANNER_END_SAMPLE   "------------------- End Sample --------------------\n"
#define BANNER_END_PROFILE  "------------------- End Profile -------------------\n"
#define BANNER_END_RESOURCE "-------------- End Resource Profile ---------------\n"
#define SEP_PROFILE_ATTRS   "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"

_Static_assert(sizeof BANNER_NEW_RESOURCE == 53 && sizeof BANNER_NEW_PROFILE == 53 &&
               sizeof BANNER_NEW_SAMPLE == 53 && sizeof SEP_SAMPLE_ATTRS == 53 &&
               sizeof BANNER_END_SAMPLE == 53 && sizeof BANNER_END_PROFILE == 53 &&
               sizeof BANNER_END_RESOURCE == 53, "banners are 51 characters and a newline");
_Static_assert(sizeof SEP_PROFILE_ATTRS == 50, "the profile attribute separator is 48 tildes");

/* Nesting deeper than this is not walked: the recursion must stay bounded whatever the
 * request holds, and no real attribute nests this deep. */
#define JSON_MAX_DEPTH 32

#define ELLIPSIS "\xe2\x80\xa6"   /* U+2026, marks an incomplete value */

/* ---- scalars ---- */

/* As every sink writes a double (numfmt.h): 0.1 as 0.1, NaN, +Inf and -Inf by name. */
static void out_double(struct out *o, double d)
{
    char t[NUMFMT_DOUBLE_MAX];
    out_raw(o, t, numfmt_double(t, d));
}

/* JSON has no NaN or infinities: written as strings, with the proto3 JSON mapping's names. */
static void json_double(struct out *o, double d)
{
    if (isnan(d))
        OUT_LIT(o, "\"NaN\"");
    else if (isinf(d))
        out_json_str(o, d > 0 ? LB_STR_LIT("Infinity") : LB_STR_LIT("-Infinity"));
    else
        out_double(o, d);
}

static void out_bool(struct out *o, bool v)
{
    if (v)
        OUT_LIT(o, "true");
    else
        OUT_LIT(o, "false");
}

/* ---- JSON for arrays and kvlists ---- */

/* A walk of one value: in strict mode an incomplete list is closed and the first reason
 * kept for the caller; otherwise the reason is shown inside the brackets. */
struct json_walk {
    struct out *o;
    bool strict;
    const char *err;
};

static void json_value_at(struct json_walk *w, const struct lb_value *v, unsigned depth);

/* What ended a walk early: the walked part stays, then "…<why>" (text) or nothing (strict). */
static void walk_error(struct json_walk *w, const char *err)
{
    if (w->strict) {
        if (!w->err)
            w->err = err;
        return;
    }
    OUT_LIT(w->o, ELLIPSIS);
    if (!esc_text(&w->o->b, err, strlen(err)))
        w->o->oom = true;
}

static void json_array(struct json_walk *w, const struct lb_value *v, unsigned depth)
{
    struct lb_value_iter it;
    struct lb_value e;
    bool first = true;
    lb_value_iter_init(&it, v);
    out_c(w->o, '[');
    while (lb_array_next(&it, &e)) {
        if (!first)
            out_c(w->o, ',');
        first = false;
        json_value_at(w, &e, depth + 1);
    }
    if (it.err)
        walk_error(w, it.err);
    out_c(w->o, ']');
}

static void json_kvlist(struct json_walk *w, const struct lb_value *v, unsigned depth)
{
    struct lb_value_iter it;
    struct lb_value e;
    lb_str key;
    bool first = true;
    lb_value_iter_init(&it, v);
    out_c(w->o, '{');
    while (lb_kvlist_next(&it, &key, &e)) {
        if (!first)
            out_c(w->o, ',');
        first = false;
        out_json_str(w->o, key);
        out_c(w->o, ':');
        json_value_at(w, &e, depth + 1);
    }
    if (it.err)
        walk_error(w, it.err);
    out_c(w->o, '}');
}

static void json_value_at(struct json_walk *w, const struct lb_value *v, unsigned depth)
{
    struct out *o = w->o;
    switch (v->kind) {
    case LB_VALUE_STRING: out_json_str(o, v->u.str); break;
    case LB_VALUE_BOOL:   out_bool(o, v->u.boolean); break;
    case LB_VALUE_INT:    out_i64(o, v->u.integer); break;
    case LB_VALUE_DOUBLE: json_double(o, v->u.dbl); break;
    case LB_VALUE_BYTES:
        out_c(o, '"');
        out_hexbytes(o, v->u.str);
        out_c(o, '"');
        break;
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST:
        if (depth >= JSON_MAX_DEPTH) {
            out_c(o, v->kind == LB_VALUE_ARRAY ? '[' : '{');
            walk_error(w, "nested too deep");
            out_c(o, v->kind == LB_VALUE_ARRAY ? ']' : '}');
        } else if (v->kind == LB_VALUE_ARRAY) {
            json_array(w, v, depth);
        } else {
            json_kvlist(w, v, depth);
        }
        break;
    case LB_VALUE_EMPTY:
    default:
        OUT_LIT(o, "null");
        break;
    }
}

void json_value(struct out *o, const struct lb_value *v)
{
    struct json_walk w = { o, false, NULL };
    json_value_at(&w, v, 0);
}

const char *json_value_strict(struct out *o, const struct lb_value *v)
{
    struct json_walk w = { o, true, NULL };
    json_value_at(&w, v, 0);
    return w.err;
}

void text_value(struct out *o, const struct lb_value *v)
{
    switch (v->kind) {
    case LB_VALUE_STRING: out_esc(o, v->u.str); break;
    case LB_VALUE_BOOL:   out_bool(o, v->u.boolean); break;
    case LB_VALUE_INT:    out_i64(o, v->u.integer); break;
    case LB_VALUE_DOUBLE: out_double(o, v->u.dbl); break;
    case LB_VALUE_BYTES:  out_hexbytes(o, v->u.str); break;
    case LB_VALUE_ARRAY:
    case LB_VALUE_KVLIST: json_value(o, v); break;
    case LB_VALUE_EMPTY:
    default:
        break;
    }
}

/* ---- lines ---- */

/* "<key>: <value>", then " (unit: <unit>)" when the attribute has a unit. */
static void out_attr(struct out *o, const struct lb_attr *a)
{
    out_esc(o, a->key);
    OUT_LIT(o, ": ");
    text_value(o, &a->value);
    if (a->unit.n) {
        OUT_LIT(o, " (unit: ");
        out_esc(o, a->unit);
        out_c(o, ')');
    }
}

void text_attrs(struct stdout_state *st, const char *indent, struct lb_attrs attrs)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < attrs.n; i++) {
        out_raw(o, indent, strlen(indent));
        out_attr(o, &attrs.v[i]);
        out_c(o, '\n');
        stdout_maybe_flush(st);
    }
}

void text_indexed(struct out *o, const char *name, size_t i)
{
    OUT_LIT(o, "  ");
    out_raw(o, name, strlen(name));
    out_c(o, '[');
    out_u64(o, i);
    OUT_LIT(o, "]: ");
}

void text_time(struct out *o, uint64_t unix_nano)
{
    char t[TIMEFMT_TIME_MAX];
    out_raw(o, t, timefmt_go_time(t, unix_nano));
}

/* "[<type>, <unit>]", the form of both PeriodType and SampleType, then the
 * aggregation_temporality of v1.7 and v1.8 when it is set. */
static void out_value_type(struct out *o, lb_str type, lb_str unit, int32_t temporality)
{
    out_c(o, '[');
    out_esc(o, type);
    OUT_LIT(o, ", ");
    out_esc(o, unit);
    out_c(o, ']');
    if (temporality) {
        OUT_LIT(o, " (aggregation_temporality: ");
        out_i64(o, temporality);
        out_c(o, ')');
    }
    out_c(o, '\n');
}

/* "[a, b]": a list of strings (entity keys). */
static void out_str_list(struct out *o, const lb_str *v, size_t n)
{
    out_c(o, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            OUT_LIT(o, ", ");
        out_esc(o, v[i]);
    }
    out_c(o, ']');
}

/* "  Unknown: <path>: unknown <Message> field <n> (<wire type>, <size> bytes): <decoded>" per
 * field the request's layout does not have, then how many more were only counted. */
static void text_unknown_fields(struct stdout_state *st, const struct lb_request *req)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < req->n_unknown_fields; i++) {
        const struct lb_unknown_field *u = &req->unknown_fields[i];
        OUT_LIT(o, "  Unknown: ");
        if (u->path.n)
            out_esc(o, u->path);
        else
            OUT_LIT(o, "(request)");
        OUT_LIT(o, ": unknown ");
        out_esc(o, u->message);
        OUT_LIT(o, " field ");
        out_u64(o, u->number);
        OUT_LIT(o, " (");
        const char *wt = lb_wire_type_name(u->wire_type);
        out_raw(o, wt, strlen(wt));
        OUT_LIT(o, ", ");
        out_u64(o, u->raw.n);
        if (u->raw.n == 1)
            OUT_LIT(o, " byte): ");
        else
            OUT_LIT(o, " bytes): ");
        out_esc(o, u->decoded);
        out_c(o, '\n');
    }
    if (req->unknown_fields_total > req->n_unknown_fields) {
        OUT_LIT(o, "  Unknown: ");
        out_u64(o, req->unknown_fields_total - req->n_unknown_fields);
        OUT_LIT(o, " more unknown field(s), counted but not described\n");
    }
}

void text_resource_begin(struct stdout_state *st, const struct lb_resource *r)
{
    OUT_LIT(&st->out, BANNER_NEW_RESOURCE);
    if (r->request && r->request->layout) {   /* the proto layout it was read as (otlp/detect.h) */
        OUT_LIT(&st->out, "  Layout: ");
        out_esc(&st->out, (lb_str){ r->request->layout, strlen(r->request->layout) });
        out_c(&st->out, '\n');
    }
    if (r->request && r->request->unknown_fields_total && !st->unknown_shown) {
        st->unknown_shown = true;   /* in the request's first block only */
        text_unknown_fields(st, r->request);
    }
    if (!st->opt.no_resource_attributes)
        text_attrs(st, "  ", r->attrs);
    struct out *o = &st->out;
    if (r->schema_url.n) {
        OUT_LIT(o, "  SchemaURL: ");
        out_esc(o, r->schema_url);
        out_c(o, '\n');
    }
    if (r->dropped_attributes_count) {
        OUT_LIT(o, "  Dropped attributes count: ");
        out_u64(o, r->dropped_attributes_count);
        out_c(o, '\n');
    }
    for (size_t i = 0; i < r->n_entity_refs; i++) {
        const struct lb_entity_ref *e = &r->entity_refs[i];
        text_indexed(o, "EntityRef", i);
        OUT_LIT(o, "type=");
        out_esc(o, e->type);
        OUT_LIT(o, ", schema_url=");
        out_esc(o, e->schema_url);
        OUT_LIT(o, ", id_keys=");
        out_str_list(o, e->id_keys, e->n_id_keys);
        OUT_LIT(o, ", description_keys=");
        out_str_list(o, e->description_keys, e->n_description_keys);
        out_c(o, '\n');
        stdout_maybe_flush(st);
    }
}

void text_scope(struct out *o, const struct lb_scope *sc)
{
    if (!sc || (sc->name.n == 0 && sc->version.n == 0))
        return;
    OUT_LIT(o, "  Scope: ");
    out_esc(o, sc->name);
    if (sc->version.n > 0) {     /* no trailing space when there is no version */
        out_c(o, ' ');
        out_esc(o, sc->version);
    }
    out_c(o, '\n');
}

/* The scope of a profile block: "  Scope: <name> <version>", then, 4 spaces in, its attributes,
 * schema URL and dropped count when it has them (the Scope line is then never left out). */
static void text_profile_scope(struct stdout_state *st, const struct lb_scope *sc)
{
    struct out *o = &st->out;
    if (!sc)
        return;
    bool details = sc->attrs.n || sc->schema_url.n || sc->dropped_attributes_count;
    if (details && sc->name.n == 0 && sc->version.n == 0)
        OUT_LIT(o, "  Scope:\n");
    else
        text_scope(o, sc);
    text_attrs(st, "    ", sc->attrs);
    if (sc->schema_url.n) {
        OUT_LIT(o, "    SchemaURL: ");
        out_esc(o, sc->schema_url);
        out_c(o, '\n');
    }
    if (sc->dropped_attributes_count) {
        OUT_LIT(o, "    Dropped attributes count: ");
        out_u64(o, sc->dropped_attributes_count);
        out_c(o, '\n');
    }
}

/* What only some profiles carry: v1.7's list of sample types, comments (v1.7, v1.8), the
 * original payload's format and size. */
static void text_profile_extras(struct stdout_state *st, const struct lb_profile *p)
{
    struct out *o = &st->out;
    if (p->n_sample_types > 1 || p->default_sample_type_index != 0) {
        for (size_t i = 0; i < p->n_sample_types; i++) {
            text_indexed(o, "SampleType", i);
            out_value_type(o, p->sample_types[i].type, p->sample_types[i].unit,
                           p->sample_types[i].aggregation_temporality);
        }
        OUT_LIT(o, "  DefaultSampleTypeIndex: ");
        out_i64(o, p->default_sample_type_index);
        out_c(o, '\n');
    }
    for (size_t i = 0; i < p->n_comments; i++) {
        text_indexed(o, "Comment", i);
        out_esc(o, p->comments[i]);
        out_c(o, '\n');
        stdout_maybe_flush(st);
    }
    if (p->original_payload_format.n || p->original_payload_len) {
        OUT_LIT(o, "  OriginalPayload: ");
        out_esc(o, p->original_payload_format);
        OUT_LIT(o, ", ");
        out_u64(o, p->original_payload_len);
        OUT_LIT(o, " bytes\n");
    }
}

void text_profile_begin(struct stdout_state *st, const struct lb_profile *p)
{
    struct out *o = &st->out;
    char dur[TIMEFMT_DURATION_MAX];

    OUT_LIT(o, BANNER_NEW_PROFILE);
    text_profile_scope(st, p->scope);
    OUT_LIT(o, "  ProfileID: ");
    if (p->profile_id.n == 0)
        OUT_LIT(o, "00000000000000000000000000000000");
    else
        out_hexbytes(o, p->profile_id);
    OUT_LIT(o, "\n  Time: ");
    text_time(o, p->time_unix_nano);
    OUT_LIT(o, "\n  Duration: ");
    out_raw(o, dur, timefmt_go_duration(dur, p->duration_nano));
    OUT_LIT(o, "\n  PeriodType: ");
    out_value_type(o, p->period_type, p->period_unit, p->period_aggregation_temporality);
    OUT_LIT(o, "  Period: ");
    out_i64(o, p->period);
    OUT_LIT(o, "\n  Dropped attributes count: ");
    out_u64(o, p->dropped_attributes_count);
    OUT_LIT(o, "\n  SampleType: ");
    out_value_type(o, p->sample_type, p->sample_unit, p->sample_aggregation_temporality);
    text_profile_extras(st, p);
    if (!st->opt.no_profile_attributes && p->attrs.n > 0) {
        text_attrs(st, "  ", p->attrs);
        OUT_LIT(o, SEP_PROFILE_ATTRS);
    }
}

static void out_instrumentation(struct out *o, lb_str type)
{
    OUT_LIT(o, "Instrumentation: ");
    if (type.n == 0)
        OUT_LIT(o, "unknown");
    else
        out_esc(o, type);
}

/* An unsymbolized frame keeps the symbolized grammar (empty function and file, zero line and
 * column) so one parser reads both, then says where the code is. Without file and line
 * (--no-file-line) it is the short grammar's "Function: " and then where the code is. */
static void out_unsymbolized(struct out *o, const struct lb_frame *f, bool file_line)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    if (file_line)
        OUT_LIT(o, ", Function: , File: , Line: 0, Column: 0, Address: 0x");
    else
        OUT_LIT(o, ", Function: , Address: 0x");
    out_hex64(o, f->address);
    OUT_LIT(o, ", Mapping: ");
    if (f->has_mapping)
        out_esc(o, map->file);
    else
        OUT_LIT(o, "<unknown>");
    OUT_LIT(o, ", BuildID: ");
    if (f->has_mapping && map->build_id.n > 0) {
        out_esc(o, map->build_id_kind);
        out_c(o, ':');
        out_esc(o, map->build_id);
    }
}

/* ", <key>: <value>" per attribute; a build id as ", BuildID: <kind>:<id>". `skip_type`
 * leaves out the profile.frame.type the frame line already shows. */
static void out_attr_items(struct out *o, struct lb_attrs attrs, lb_str skip_type, bool *first)
{
    for (size_t i = 0; i < attrs.n; i++) {
        const struct lb_attr *a = &attrs.v[i];
        if (skip_type.n && a->value.kind == LB_VALUE_STRING && LB_STR_EQ(a->key, "profile.frame.type") &&
            a->value.u.str.n == skip_type.n && memcmp(a->value.u.str.p, skip_type.p, skip_type.n) == 0) {
            skip_type = LB_STR_NULL;   /* only the one shown */
            continue;
        }
        if (!*first)
            OUT_LIT(o, ", ");
        *first = false;
        lb_str kind = lb_build_id_kind(a->key);
        if (kind.n && (a->value.kind == LB_VALUE_STRING || a->value.kind == LB_VALUE_BYTES)) {
            OUT_LIT(o, "BuildID: ");
            out_esc(o, kind);
            out_c(o, ':');
            text_value(o, &a->value);
        } else {
            out_attr(o, a);
        }
    }
}

/* The lines under a frame line, 4 spaces in, for what the frame line does not say: its
 * mapping (file, range, offset, every attribute with every build id, v1.7's has_* flags), its
 * location's other attributes and is_folded (v1.7), its function's system name and start
 * line. Each only when there is something to show. */
static void out_frame_details(struct out *o, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    if (f->has_mapping) {
        OUT_LIT(o, "    Mapping: ");
        out_esc(o, map->file);
        OUT_LIT(o, ", Start: 0x");
        out_hex64(o, map->start);
        OUT_LIT(o, ", Limit: 0x");
        out_hex64(o, map->limit);
        OUT_LIT(o, ", Offset: 0x");
        out_hex64(o, map->offset);
        bool first = false;
        out_attr_items(o, map->attrs, LB_STR_NULL, &first);
        static const char *const flags[] = { "has_functions", "has_filenames", "has_line_numbers",
                                             "has_inline_frames" };
        if (map->flags) {
            OUT_LIT(o, ", Flags:");
            for (unsigned i = 0; i < 4; i++)
                if (map->flags & (1u << i)) {
                    out_c(o, ' ');
                    out_raw(o, flags[i], strlen(flags[i]));
                }
        }
        out_c(o, '\n');
    }
    size_t others = f->location_attrs.n;
    for (size_t i = 0; i < f->location_attrs.n && others == f->location_attrs.n; i++) {
        const struct lb_attr *a = &f->location_attrs.v[i];
        if (f->type.n && a->value.kind == LB_VALUE_STRING && LB_STR_EQ(a->key, "profile.frame.type") &&
            a->value.u.str.p == f->type.p && a->value.u.str.n == f->type.n)
            others--;   /* the one the frame line shows */
    }
    if (others > 0 || f->is_folded) {
        bool first = true;
        OUT_LIT(o, "    Location: ");
        out_attr_items(o, f->location_attrs, f->type, &first);
        if (f->is_folded && !first)
            OUT_LIT(o, ", ");
        if (f->is_folded)
            OUT_LIT(o, "IsFolded: true");
        out_c(o, '\n');
    }
    if (f->system_name.n || f->start_line) {
        OUT_LIT(o, "    Function: SystemName: ");
        out_esc(o, f->system_name);
        OUT_LIT(o, ", StartLine: ");
        out_i64(o, f->start_line);
        out_c(o, '\n');
    }
}

/* The Collector exporter's short form without file and line (export_function_file: false) is
 * "Instrumentation: <type>, Function: <name>". */
static void out_frame(struct out *o, const struct lb_frame *f, bool file_line)
{
    out_instrumentation(o, f->type);
    if (f->symbolized) {
        OUT_LIT(o, ", Function: ");
        out_esc(o, f->function);
        if (!file_line) {
            out_c(o, '\n');
            out_frame_details(o, f);
            return;
        }
        OUT_LIT(o, ", File: ");
        out_esc(o, f->file);
        OUT_LIT(o, ", Line: ");
        out_i64(o, f->line);
        OUT_LIT(o, ", Column: ");
        out_i64(o, f->column);
    } else {
        out_unsymbolized(o, f, file_line);
    }
    out_c(o, '\n');
    out_frame_details(o, f);
}

/* "  Timestamp[i]: <ns> (<UTC time>)", "  Value[i]: <v>", "  Link: ...". */
static void out_sample_header(struct stdout_state *st, const struct lb_sample *s)
{
    struct out *o = &st->out;
    /* Each line is put together in place and appended whole: there are many of them. */
    char line[sizeof "  Timestamp[" + 20 + sizeof "]: " + 20 + sizeof " (" + TIMEFMT_TIME_MAX + sizeof ")\n"];
    memcpy(line, "  Timestamp[", 12);
    for (size_t i = 0; i < s->n_timestamps; i++) {
        char *p = line + 12;
        p += fmt_u64(p, i);
        memcpy(p, "]: ", 3);
        p += 3;
        p += fmt_u64(p, s->timestamps[i]);
        memcpy(p, " (", 2);
        p += 2;
        p += timefmt_go_time(p, s->timestamps[i]);
        memcpy(p, ")\n", 2);
        out_raw(o, line, (size_t)(p + 2 - line));
        stdout_maybe_flush(st);
    }
    for (size_t i = 0; i < s->n_values; i++) {
        text_indexed(o, "Value", i);
        out_i64(o, s->values[i]);
        out_c(o, '\n');
        stdout_maybe_flush(st);
    }
    if (s->has_link) {
        OUT_LIT(o, "  Link: trace_id=");
        out_hexbytes(o, s->trace_id);
        OUT_LIT(o, ", span_id=");
        out_hexbytes(o, s->span_id);
        out_c(o, '\n');
    }
}

void text_sample(struct stdout_state *st, const struct lb_sample *s)
{
    OUT_LIT(&st->out, BANNER_NEW_SAMPLE);
    out_sample_header(st, s);
    /* As in the Collector exporter, the dashes go with the sample attributes. */
    if (!st->opt.no_sample_attributes) {
        text_attrs(st, "  ", s->attrs);
        OUT_LIT(&st->out, SEP_SAMPLE_ATTRS);
    }
    if (!st->opt.no_frames)
        stack_write(st, s, out_frame, 0);   /* leaf first, a line (and its details) each */
    OUT_LIT(&st->out, BANNER_END_SAMPLE);
}

void text_profile_end(struct stdout_state *st)
{
    OUT_LIT(&st->out, BANNER_END_PROFILE);
}

void text_resource_end(struct stdout_state *st)
{
    OUT_LIT(&st->out, BANNER_END_RESOURCE "\n");
}
