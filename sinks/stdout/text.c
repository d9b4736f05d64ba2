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

void text_attrs(struct stdout_state *st, const char *indent, struct lb_attrs attrs)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < attrs.n; i++) {
        out_raw(o, indent, strlen(indent));
        out_esc(o, attrs.v[i].key);
        OUT_LIT(o, ": ");
        text_value(o, &attrs.v[i].value);
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

/* "[<type>, <unit>]", the form of both PeriodType and SampleType. */
static void out_value_type(struct out *o, lb_str type, lb_str unit)
{
    out_c(o, '[');
    out_esc(o, type);
    OUT_LIT(o, ", ");
    out_esc(o, unit);
    OUT_LIT(o, "]\n");
}

void text_resource_begin(struct stdout_state *st, const struct lb_resource *r)
{
    OUT_LIT(&st->out, BANNER_NEW_RESOURCE);
    if (r->request && r->request->layout) {   /* the proto layout it was read as (otlp/detect.h) */
        OUT_LIT(&st->out, "  Layout: ");
        out_esc(&st->out, (lb_str){ r->request->layout, strlen(r->request->layout) });
        out_c(&st->out, '\n');
    }
    if (!st->opt.no_resource_attributes)
        text_attrs(st, "  ", r->attrs);
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

void text_profile_begin(struct stdout_state *st, const struct lb_profile *p)
{
    struct out *o = &st->out;
    char dur[TIMEFMT_DURATION_MAX];

    OUT_LIT(o, BANNER_NEW_PROFILE);
    text_scope(o, p->scope);
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
    out_value_type(o, p->period_type, p->period_unit);
    OUT_LIT(o, "  Period: ");
    out_i64(o, p->period);
    OUT_LIT(o, "\n  Dropped attributes count: ");
    out_u64(o, p->dropped_attributes_count);
    OUT_LIT(o, "\n  SampleType: ");
    out_value_type(o, p->sample_type, p->sample_unit);
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
    if (file_line)
        OUT_LIT(o, ", Function: , File: , Line: 0, Column: 0, Address: 0x");
    else
        OUT_LIT(o, ", Function: , Address: 0x");
    out_hex64(o, f->address);
    OUT_LIT(o, ", Mapping: ");
    if (f->has_mapping)
        out_esc(o, f->mapping_file);
    else
        OUT_LIT(o, "<unknown>");
    OUT_LIT(o, ", BuildID: ");
    if (f->has_mapping && f->build_id.n > 0) {
        out_esc(o, f->build_id_kind);
        out_c(o, ':');
        out_esc(o, f->build_id);
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
}

/* Every frame line of a sample, leaf first (stack_text_copy's renderer). */
static void out_frames(struct out *o, const struct lb_sample *s, bool file_line)
{
    for (size_t i = 0; i < s->n_frames; i++)
        out_frame(o, &s->frames[i], file_line);
}

/* "  Timestamp[i]: <ns> (<UTC time>)", "  Value[i]: <v>", "  Link: ...". */
static void out_sample_header(struct stdout_state *st, const struct lb_sample *s)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < s->n_timestamps; i++) {
        text_indexed(o, "Timestamp", i);
        out_u64(o, s->timestamps[i]);
        OUT_LIT(o, " (");
        text_time(o, s->timestamps[i]);
        OUT_LIT(o, ")\n");
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
    if (!st->opt.no_frames && !stack_text_copy(st, s, out_frames)) {
        for (size_t i = 0; i < s->n_frames; i++) {
            out_frame(&st->out, &s->frames[i], !st->opt.no_file_line);
            stdout_maybe_flush(st);
        }
    }
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
