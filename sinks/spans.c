/*
 * spans.c - the stdout sink's span formats: TEXT (a block per resource, a block per span) and
 * JSON (one object per span per line, each line standing alone like the sample lines of
 * json.c). Every wire string goes through the escaper (sinks/escape.h), times through
 * timefmt.h, exactly as for profiles, so the same terminal-safety holds for traces.
 *
 * It writes into the sink's per-request output (stdout_impl.h) and leaves the I/O, failure
 * and commit handling to stdout.c; the grammar is documented in docs/http.md.
 */
#include "sinks/spans.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sinks/stdout_impl.h"
#include "sinks/timefmt.h"

#define BANNER_NEW_RESOURCE "--------------- New Resource Spans ----------------\n"
#define BANNER_END_RESOURCE "--------------- End Resource Spans ----------------\n"
#define BANNER_NEW_SPAN     "-------------------- New Span ---------------------\n"
#define BANNER_END_SPAN     "-------------------- End Span ---------------------\n"

_Static_assert(sizeof BANNER_NEW_RESOURCE == 53 && sizeof BANNER_END_RESOURCE == 53 &&
               sizeof BANNER_NEW_SPAN == 53 && sizeof BANNER_END_SPAN == 53,
               "banners are 51 characters and a newline, like the profile banners");

#define RFC3339_MAX 40

static struct stdout_state *state(struct sink *s) { return s->ctx; }

static const char *kind_name(int32_t kind)
{
    static const char *const names[] = { "UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT",
                                         "PRODUCER", "CONSUMER" };
    return kind >= 0 && kind <= LB_SPAN_KIND_CONSUMER ? names[kind] : NULL;
}

static const char *status_name(int32_t code)
{
    static const char *const names[] = { "UNSET", "OK", "ERROR" };
    return code >= 0 && code <= LB_STATUS_ERROR ? names[code] : NULL;
}

static void out_cstr_raw(struct out *o, const char *s) { out_raw(o, s, strlen(s)); }

/* end - start; negative when a sender ended a span before it started. */
static int64_t span_duration(const struct lb_span *sp)
{
    uint64_t a = sp->start_time_unix_nano, b = sp->end_time_unix_nano;
    if (b >= a)
        return b - a > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(b - a);
    return a - b > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(a - b);
}

/* ------------------------------------------------------------------ text */

static void text_time(struct out *o, uint64_t unix_nano)
{
    char t[TIMEFMT_TIME_MAX];
    out_raw(o, t, timefmt_go_time(t, unix_nano));
}

/* `indent` then "<key>: <value>" per attribute, in wire order. */
static void text_attrs(struct stdout_state *st, const char *indent, struct lb_attrs attrs)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < attrs.n; i++) {
        out_cstr_raw(o, indent);
        out_esc(o, attrs.v[i].key);
        OUT_LIT(o, ": ");
        text_value(o, &attrs.v[i].value);
        out_c(o, '\n');
        stdout_maybe_flush(st);
    }
}

static void text_id(struct out *o, const char *label, lb_str id)
{
    out_cstr_raw(o, label);
    out_hexbytes(o, id);
    out_c(o, '\n');
}

static void text_kind(struct out *o, int32_t kind)
{
    OUT_LIT(o, "  Kind: ");
    if (kind_name(kind))
        out_cstr_raw(o, kind_name(kind));
    else
        out_i64(o, kind);
    out_c(o, '\n');
}

static void text_status(struct out *o, const struct lb_span *sp)
{
    OUT_LIT(o, "  Status: ");
    if (status_name(sp->status_code))
        out_cstr_raw(o, status_name(sp->status_code));
    else
        out_i64(o, sp->status_code);
    if (sp->status_message.n) {
        OUT_LIT(o, " (");
        out_esc(o, sp->status_message);
        out_c(o, ')');
    }
    out_c(o, '\n');
}

static void text_duration(struct out *o, const struct lb_span *sp)
{
    char d[TIMEFMT_DURATION_MAX];
    int64_t dur = span_duration(sp);
    OUT_LIT(o, "  Duration: ");
    if (dur < 0) {
        out_c(o, '-');
        out_raw(o, d, timefmt_go_duration(d, 0 - (uint64_t)dur));
        OUT_LIT(o, " (ends before it starts)");
    } else {
        out_raw(o, d, timefmt_go_duration(d, (uint64_t)dur));
    }
    out_c(o, '\n');
}

/* Lines that only appear when they say something: trace state, flags, dropped counts. */
static void text_optional(struct out *o, const struct lb_span *sp)
{
    if (sp->trace_state.n) {
        OUT_LIT(o, "  TraceState: ");
        out_esc(o, sp->trace_state);
        out_c(o, '\n');
    }
    if (sp->flags) {
        OUT_LIT(o, "  Flags: 0x");
        out_hex64(o, sp->flags);
        out_c(o, '\n');
    }
    if (sp->dropped_attributes_count || sp->dropped_events_count || sp->dropped_links_count) {
        OUT_LIT(o, "  Dropped: attributes ");
        out_u64(o, sp->dropped_attributes_count);
        OUT_LIT(o, ", events ");
        out_u64(o, sp->dropped_events_count);
        OUT_LIT(o, ", links ");
        out_u64(o, sp->dropped_links_count);
        out_c(o, '\n');
    }
}

static void text_events(struct stdout_state *st, const struct lb_span *sp)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < sp->n_events; i++) {
        const struct lb_span_event *e = &sp->events[i];
        OUT_LIT(o, "  Event[");
        out_u64(o, i);
        OUT_LIT(o, "]: ");
        out_esc(o, e->name);
        OUT_LIT(o, " at ");
        text_time(o, e->time_unix_nano);
        if (e->dropped_attributes_count) {
            OUT_LIT(o, " (dropped attributes ");
            out_u64(o, e->dropped_attributes_count);
            out_c(o, ')');
        }
        out_c(o, '\n');
        text_attrs(st, "    ", e->attrs);
    }
}

static void text_links(struct stdout_state *st, const struct lb_span *sp)
{
    struct out *o = &st->out;
    for (size_t i = 0; i < sp->n_links; i++) {
        const struct lb_span_link *l = &sp->links[i];
        OUT_LIT(o, "  Link[");
        out_u64(o, i);
        OUT_LIT(o, "]: trace_id=");
        out_hexbytes(o, l->trace_id);
        OUT_LIT(o, ", span_id=");
        out_hexbytes(o, l->span_id);
        if (l->trace_state.n) {
            OUT_LIT(o, ", trace_state=");
            out_esc(o, l->trace_state);
        }
        if (l->flags) {
            OUT_LIT(o, ", flags=0x");
            out_hex64(o, l->flags);
        }
        if (l->dropped_attributes_count) {
            OUT_LIT(o, ", dropped attributes ");
            out_u64(o, l->dropped_attributes_count);
        }
        out_c(o, '\n');
        text_attrs(st, "    ", l->attrs);
    }
}

static void text_span(struct stdout_state *st, const struct lb_span *sp)
{
    struct out *o = &st->out;
    OUT_LIT(o, BANNER_NEW_SPAN);
    if (sp->scope && (sp->scope->name.n || sp->scope->version.n)) {
        OUT_LIT(o, "  Scope: ");
        out_esc(o, sp->scope->name);
        if (sp->scope->version.n) {
            out_c(o, ' ');
            out_esc(o, sp->scope->version);
        }
        out_c(o, '\n');
    }
    text_id(o, "  TraceID: ", sp->trace_id);
    text_id(o, "  SpanID: ", sp->span_id);
    if (sp->parent_span_id.n)
        text_id(o, "  ParentSpanID: ", sp->parent_span_id);
    else
        OUT_LIT(o, "  ParentSpanID: (root)\n");
    OUT_LIT(o, "  Name: ");
    out_esc(o, sp->name);
    out_c(o, '\n');
    text_kind(o, sp->kind);
    OUT_LIT(o, "  Start: ");
    text_time(o, sp->start_time_unix_nano);
    OUT_LIT(o, "\n  End: ");
    text_time(o, sp->end_time_unix_nano);
    out_c(o, '\n');
    text_duration(o, sp);
    text_status(o, sp);
    text_optional(o, sp);
    if (sp->attrs.n) {
        OUT_LIT(o, "  Attributes:\n");
        text_attrs(st, "    ", sp->attrs);
    }
    text_events(st, sp);
    text_links(st, sp);
    OUT_LIT(o, BANNER_END_SPAN);
}

/* ------------------------------------------------------------------ json */

/* RFC 3339 in UTC with nine fraction digits, as json.c writes sample times. */
static void json_time(struct out *o, uint64_t unix_nano)
{
    char t[RFC3339_MAX];
    time_t secs = (time_t)(unix_nano / 1000000000u);
    struct tm tm;
    int n = gmtime_r(&secs, &tm)
        ? snprintf(t, sizeof t, "\"%04d-%02d-%02dT%02d:%02d:%02d.%09uZ\"", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (unsigned)(unix_nano % 1000000000u))
        : snprintf(t, sizeof t, "\"invalid\"");
    if (n > 0 && (size_t)n < sizeof t)
        out_raw(o, t, (size_t)n);
}

static void json_cstr(struct out *o, const char *s)
{
    if (s)
        out_json_str(o, (lb_str){ s, strlen(s) });
    else
        OUT_LIT(o, "null");
}

static void json_hex(struct out *o, lb_str bytes)
{
    out_c(o, '"');
    out_hexbytes(o, bytes);
    out_c(o, '"');
}

static const char *value_kind_name(enum lb_value_kind k)
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

/* The attribute list of the README (Filters and machine-readable output): [{"key","type","value"[,"error"]}] in wire order. */
static void json_attrs(struct out *o, struct lb_attrs attrs)
{
    out_c(o, '[');
    for (size_t i = 0; i < attrs.n; i++) {
        const struct lb_attr *a = &attrs.v[i];
        if (i)
            out_c(o, ',');
        OUT_LIT(o, "{\"key\":");
        out_json_str(o, a->key);
        OUT_LIT(o, ",\"type\":");
        json_cstr(o, value_kind_name(a->value.kind));
        OUT_LIT(o, ",\"value\":");
        const char *err = json_value_strict(o, &a->value);
        if (err) {
            OUT_LIT(o, ",\"error\":");
            json_cstr(o, err);
        }
        out_c(o, '}');
    }
    out_c(o, ']');
}

/* {"request":{..},"resource":{..}, : the start of every span line of a resource. */
static void json_resource_prefix(struct stdout_state *st, const struct lb_resource *r)
{
    struct out *o = &st->json_resource;
    const struct lb_request *q = r->request;
    buf_reset(&o->b);
    OUT_LIT(o, "{\"request\":{\"sequence\":");
    out_u64(o, q ? q->sequence : 0);
    OUT_LIT(o, ",\"transport\":");
    json_cstr(o, q ? q->transport : "");
    OUT_LIT(o, ",\"peer\":");
    json_cstr(o, q ? q->peer : "");
    OUT_LIT(o, ",\"layout\":");
    json_cstr(o, q ? q->layout : "");
    OUT_LIT(o, ",\"received_unix_nano\":");
    out_u64(o, q ? q->received_unix_nano : 0);
    OUT_LIT(o, ",\"received\":");
    json_time(o, q ? q->received_unix_nano : 0);
    OUT_LIT(o, "},\"resource\":{\"index\":");
    out_u64(o, r->index);
    OUT_LIT(o, ",\"schema_url\":");
    out_json_str(o, r->schema_url);
    OUT_LIT(o, ",\"dropped_attributes_count\":");
    out_u64(o, r->dropped_attributes_count);
    if (!st->opt.no_resource_attributes) {
        OUT_LIT(o, ",\"attributes\":");
        json_attrs(o, r->attrs);
    }
    OUT_LIT(o, "},");
    if (o->oom)
        st->out.oom = true;
}

static void json_scope(struct out *o, const struct lb_scope *sc)
{
    OUT_LIT(o, "\"scope\":{\"name\":");
    out_json_str(o, sc ? sc->name : LB_STR_NULL);
    OUT_LIT(o, ",\"version\":");
    out_json_str(o, sc ? sc->version : LB_STR_NULL);
    OUT_LIT(o, ",\"schema_url\":");
    out_json_str(o, sc ? sc->schema_url : LB_STR_NULL);
    OUT_LIT(o, ",\"attributes\":");
    json_attrs(o, sc ? sc->attrs : (struct lb_attrs){ NULL, 0 });
    OUT_LIT(o, "},");
}

static void json_events(struct out *o, const struct lb_span *sp)
{
    OUT_LIT(o, ",\"events\":[");
    for (size_t i = 0; i < sp->n_events; i++) {
        const struct lb_span_event *e = &sp->events[i];
        if (i)
            out_c(o, ',');
        OUT_LIT(o, "{\"time_unix_nano\":");
        out_u64(o, e->time_unix_nano);
        OUT_LIT(o, ",\"time\":");
        json_time(o, e->time_unix_nano);
        OUT_LIT(o, ",\"name\":");
        out_json_str(o, e->name);
        OUT_LIT(o, ",\"attributes\":");
        json_attrs(o, e->attrs);
        OUT_LIT(o, ",\"dropped_attributes_count\":");
        out_u64(o, e->dropped_attributes_count);
        out_c(o, '}');
    }
    OUT_LIT(o, "],\"dropped_events_count\":");
    out_u64(o, sp->dropped_events_count);
}

static void json_links(struct out *o, const struct lb_span *sp)
{
    OUT_LIT(o, ",\"links\":[");
    for (size_t i = 0; i < sp->n_links; i++) {
        const struct lb_span_link *l = &sp->links[i];
        if (i)
            out_c(o, ',');
        OUT_LIT(o, "{\"trace_id\":");
        json_hex(o, l->trace_id);
        OUT_LIT(o, ",\"span_id\":");
        json_hex(o, l->span_id);
        OUT_LIT(o, ",\"trace_state\":");
        out_json_str(o, l->trace_state);
        OUT_LIT(o, ",\"flags\":");
        out_u64(o, l->flags);
        OUT_LIT(o, ",\"attributes\":");
        json_attrs(o, l->attrs);
        OUT_LIT(o, ",\"dropped_attributes_count\":");
        out_u64(o, l->dropped_attributes_count);
        out_c(o, '}');
    }
    OUT_LIT(o, "],\"dropped_links_count\":");
    out_u64(o, sp->dropped_links_count);
}

static void json_span_body(struct out *o, const struct lb_span *sp)
{
    OUT_LIT(o, "\"span\":{\"scope_index\":");
    out_u64(o, sp->scope_index);
    OUT_LIT(o, ",\"index\":");
    out_u64(o, sp->index);
    OUT_LIT(o, ",\"trace_id\":");
    json_hex(o, sp->trace_id);
    OUT_LIT(o, ",\"span_id\":");
    json_hex(o, sp->span_id);
    OUT_LIT(o, ",\"parent_span_id\":");
    json_hex(o, sp->parent_span_id);
    OUT_LIT(o, ",\"trace_state\":");
    out_json_str(o, sp->trace_state);
    OUT_LIT(o, ",\"flags\":");
    out_u64(o, sp->flags);
    OUT_LIT(o, ",\"name\":");
    out_json_str(o, sp->name);
    OUT_LIT(o, ",\"kind\":");
    out_i64(o, sp->kind);
    OUT_LIT(o, ",\"kind_name\":");
    json_cstr(o, kind_name(sp->kind));
    OUT_LIT(o, ",\"start_time_unix_nano\":");
    out_u64(o, sp->start_time_unix_nano);
    OUT_LIT(o, ",\"start\":");
    json_time(o, sp->start_time_unix_nano);
    OUT_LIT(o, ",\"end_time_unix_nano\":");
    out_u64(o, sp->end_time_unix_nano);
    OUT_LIT(o, ",\"end\":");
    json_time(o, sp->end_time_unix_nano);
    OUT_LIT(o, ",\"duration_nano\":");
    out_i64(o, span_duration(sp));
    OUT_LIT(o, ",\"status\":{\"code\":");
    out_i64(o, sp->status_code);
    OUT_LIT(o, ",\"code_name\":");
    json_cstr(o, status_name(sp->status_code));
    OUT_LIT(o, ",\"message\":");
    out_json_str(o, sp->status_message);
    OUT_LIT(o, "},\"attributes\":");
    json_attrs(o, sp->attrs);
    OUT_LIT(o, ",\"dropped_attributes_count\":");
    out_u64(o, sp->dropped_attributes_count);
    json_events(o, sp);
    json_links(o, sp);
    out_c(o, '}');
}

/* One line; false when the request's JSON output passed its cap (as json_sample). */
static bool json_span(struct stdout_state *st, const struct lb_span *sp)
{
    struct out *o = &st->out;
    out_raw(o, st->json_resource.b.data, st->json_resource.b.len);
    json_scope(o, sp->scope);
    json_span_body(o, sp);
    OUT_LIT(o, "}\n");
    const struct lb_request *r = sp->resource ? sp->resource->request : NULL;
    uint64_t message = r ? r->message_bytes : 0;
    return st->flushed + o->b.len <= JSON_BUDGET_BASE + JSON_BUDGET_FACTOR * message;
}

/* ------------------------------------------------------------------ sink callbacks */

void stdout_span_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct stdout_state *st = state(s);
    if (st->failed || st->format == STDOUT_FORMAT_FOLDED)
        return;
    if (st->format == STDOUT_FORMAT_JSON) {
        json_resource_prefix(st, r);
        return;
    }
    OUT_LIT(&st->out, BANNER_NEW_RESOURCE);
    if (!st->opt.no_resource_attributes)
        text_attrs(st, "  ", r->attrs);
}

void stdout_span(struct sink *s, const struct lb_span *sp)
{
    struct stdout_state *st = state(s);
    if (st->failed || st->format == STDOUT_FORMAT_FOLDED)
        return;
    if (st->format == STDOUT_FORMAT_TEXT) {
        text_span(st, sp);
    } else if (!json_span(st, sp)) {
        st->failed = true;
        snprintf(st->why, sizeof st->why, "json output of the request exceeds %d times its size "
                 "plus %d MiB", JSON_BUDGET_FACTOR, (int)(JSON_BUDGET_BASE >> 20));
        return;
    }
    stdout_maybe_flush(st);
}

void stdout_span_resource_end(struct sink *s, const struct lb_resource *r)
{
    struct stdout_state *st = state(s);
    (void)r;
    if (st->failed || st->format != STDOUT_FORMAT_TEXT)
        return;
    OUT_LIT(&st->out, BANNER_END_RESOURCE "\n");
    stdout_maybe_flush(st);
}
