/*
 * spans.c - the stdout sink's span formats: TEXT (a block per resource, a block per span) and
 * JSON (one object per span per line, each line standing alone like the sample lines of
 * json.c). Every wire string goes through the escaper (lib/escape.h), times through
 * timefmt.h, exactly as for profiles, so the same terminal-safety holds for traces. What a
 * span shares with a profile (the JSON resource prefix, attribute lists and lines, the scope,
 * times, ids, the "  Name[i]: " list lines, the JSON output cap) is written by json.c's and
 * text.c's own functions, so the two signals read alike and cannot drift apart.
 *
 * It writes into the sink's per-request output (internal.h) and leaves the I/O, failure
 * and commit handling to stdout.c; the grammar is documented in docs/receiving.md.
 */
#include "sinks/stdout/spans.h"

#include <string.h>

#include "sinks/stdout/internal.h"
#include "sinks/timefmt.h"

#define BANNER_NEW_RESOURCE "--------------- New Resource Spans ----------------\n"
#define BANNER_END_RESOURCE "--------------- End Resource Spans ----------------\n"
#define BANNER_NEW_SPAN     "-------------------- New Span ---------------------\n"
#define BANNER_END_SPAN     "-------------------- End Span ---------------------\n"

_Static_assert(sizeof BANNER_NEW_RESOURCE == 53 && sizeof BANNER_END_RESOURCE == 53 &&
               sizeof BANNER_NEW_SPAN == 53 && sizeof BANNER_END_SPAN == 53,
               "banners are 51 characters and a newline, like the profile banners");

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
        text_indexed(o, "Event", i);
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
        text_indexed(o, "Link", i);
        OUT_LIT(o, "trace_id=");
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
    text_scope(o, sp->scope);
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

/* Strings of the span's own vocabulary (kind and status names): null when the value has no
 * name. */
static void json_cstr_or_null(struct out *o, const char *s)
{
    if (s)
        out_json_str(o, (lb_str){ s, strlen(s) });
    else
        OUT_LIT(o, "null");
}

/* What spans, events and links all end with: their attributes and how many were dropped. */
static void json_attributes(struct out *o, struct lb_attrs attrs, uint64_t dropped)
{
    OUT_LIT(o, ",\"attributes\":");
    json_attrs(o, attrs);
    OUT_LIT(o, ",\"dropped_attributes_count\":");
    out_u64(o, dropped);
}

static void json_event(struct out *o, const void *item)
{
    const struct lb_span_event *e = item;
    OUT_LIT(o, "\"time_unix_nano\":");
    out_u64(o, e->time_unix_nano);
    OUT_LIT(o, ",\"time\":");
    json_time(o, e->time_unix_nano);
    OUT_LIT(o, ",\"name\":");
    out_json_str(o, e->name);
    json_attributes(o, e->attrs, e->dropped_attributes_count);
}

static void json_link(struct out *o, const void *item)
{
    const struct lb_span_link *l = item;
    OUT_LIT(o, "\"trace_id\":");
    json_hex(o, l->trace_id);
    OUT_LIT(o, ",\"span_id\":");
    json_hex(o, l->span_id);
    OUT_LIT(o, ",\"trace_state\":");
    out_json_str(o, l->trace_state);
    OUT_LIT(o, ",\"flags\":");
    out_u64(o, l->flags);
    json_attributes(o, l->attrs, l->dropped_attributes_count);
}

/* A span's events or links: ,"<key>":[{..},..],"dropped_<key>_count":<dropped>, each object's
 * members written by `members` from the n items of `size` bytes at `items`. */
static void json_list(struct out *o, const char *key, const void *items, size_t n, size_t size,
                      void (*members)(struct out *o, const void *item), uint64_t dropped)
{
    OUT_LIT(o, ",\"");
    out_raw(o, key, strlen(key));
    OUT_LIT(o, "\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            out_c(o, ',');
        out_c(o, '{');
        members(o, (const char *)items + i * size);
        out_c(o, '}');
    }
    OUT_LIT(o, "],\"dropped_");
    out_raw(o, key, strlen(key));
    OUT_LIT(o, "_count\":");
    out_u64(o, dropped);
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
    json_cstr_or_null(o, kind_name(sp->kind));
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
    json_cstr_or_null(o, status_name(sp->status_code));
    OUT_LIT(o, ",\"message\":");
    out_json_str(o, sp->status_message);
    out_c(o, '}');
    json_attributes(o, sp->attrs, sp->dropped_attributes_count);
    json_list(o, "events", sp->events, sp->n_events, sizeof *sp->events, json_event,
              sp->dropped_events_count);
    json_list(o, "links", sp->links, sp->n_links, sizeof *sp->links, json_link,
              sp->dropped_links_count);
    out_c(o, '}');
}

/* One line; false when the request's JSON output passed its cap (json_within_budget). */
static bool json_span(struct stdout_state *st, const struct lb_span *sp)
{
    struct out *o = &st->out;
    out_raw(o, st->json_resource.b.data, st->json_resource.b.len);
    json_scope(o, sp->scope, true);
    json_span_body(o, sp);
    OUT_LIT(o, "}\n");
    return json_within_budget(st, sp->resource ? sp->resource->request : NULL);
}

/* ------------------------------------------------------------------ sink callbacks */

void stdout_span_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct stdout_state *st = state(s);
    if (st->failed || st->format == STDOUT_FORMAT_FOLDED)
        return;
    if (st->format == STDOUT_FORMAT_JSON) {
        json_resource_begin(st, r);   /* the same {"request":..,"resource":.., as sample lines */
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
    if (st->format == STDOUT_FORMAT_TEXT)
        text_span(st, sp);
    else if (!json_span(st, sp))
        return;   /* the request failed: json_within_budget */
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
