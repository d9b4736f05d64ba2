/*
 * traces.c - the trace decoder behind traces.h: walks one ExportTraceServiceRequest and hands
 * each span, resolved, to the sinks that take spans.
 *
 * The walk mirrors decode.c's for profiles: each ResourceSpans is read twice (first its
 * resource attributes, so they are known before its first span; then its ScopeSpans), each
 * ScopeSpans twice (scope, then spans), and each Span once, whole: its attributes, events and
 * links land in scratch vectors the decoder reuses across requests, so steady-state decoding
 * allocates nothing. The KeyValue/AnyValue decoding is layout_common.c's (raw_key_value),
 * the same code that reads profiles' resource attributes.
 */
#include "otlp/traces.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pb_decode.h>

#include "otlp/detect.h"
#include "otlp/dict.h"
#include "otlp/layout.h"
#include "otlp/pbref.h"
#include "otlp/report.h"
#include "otlp/vec.h"
#include "trace.pb.h"
#include "trace_service.pb.h"

#define T(name) opentelemetry_proto_trace_v1_##name
#define TRACE_ID_LEN 16
#define SPAN_ID_LEN 8

typedef VEC(struct lb_attr) attrvec;
typedef VEC(size_t) sizevec;

struct otlp_trace_decoder {
    /* scratch, reset per use */
    attrvec resource_attrs, scope_attrs, span_attrs;
    attrvec nested_attrs;                 /* attributes of the span's events and links */
    VEC(struct lb_span_event) events;
    VEC(struct lb_span_link) links;
    sizevec event_first, link_first;      /* where each one's attributes start in nested_attrs */

    /* the request being decoded */
    struct otlp_consumer out;
    struct otlp_trace_result *res;
    struct lb_request *req;
    struct lb_resource resource;
    struct lb_scope scope;
    struct otlp_report rep;               /* where the walk stands, the first problem (report.h) */
    const char *bad_resource;             /* its spans are rejected for this reason */
    const char *bad_scope;
    bool bad_attr;                        /* an attribute of the current message is invalid */
    /* the fields of the request that traces v1 does not have: found by the detector's walk
     * (otlp/detect.h) with the traces schema, kept and counted, never refused */
    struct otlp_detection unknown_walk;
    struct lb_unknown_field unknown[OTLP_MAX_UNKNOWN_FIELDS];
};

static const struct otlp_layout *const otlp_traces_schema_ptr = &otlp_traces_schema;

/* The levels of rep.at; rep.depth is 1 in a resource, 2 in a scope, 3 in a span. */
enum { AT_RESOURCE, AT_SCOPE, AT_SPAN };
static const char *const path_levels[] = { "resource_spans", "scope_spans", "spans" };

/* One named callback per message with pb_ref_t fields (nanopb calls them by name). */
PBREF_MESSAGE(opentelemetry_proto_trace_v1_ResourceSpans)
PBREF_MESSAGE(opentelemetry_proto_trace_v1_ScopeSpans)
PBREF_MESSAGE(opentelemetry_proto_trace_v1_Span)
PBREF_MESSAGE(opentelemetry_proto_trace_v1_Span_Event)
PBREF_MESSAGE(opentelemetry_proto_trace_v1_Span_Link)
PBREF_MESSAGE(opentelemetry_proto_trace_v1_Status)

static lb_str str_of(pb_ref_t r) { return (lb_str){ (const char *)r.p, r.n }; }

/* ---------- attributes ---------- */

/* Appends one KeyValue to `out`. A malformed one makes the request malformed; one that uses
 * the profiles-only string-table fields marks the current message bad (d->bad_attr). */
static bool push_key_value(struct otlp_trace_decoder *d, pb_ref_t el, attrvec *out, const char *what)
{
    struct raw_key_value kv;
    struct pbref_stream s;
    memset(&kv, 0, sizeof kv);
    pbref_open_ref(&s, el);
    if (!raw_key_value(&s.is, &kv))
        return otlp_malformed(&d->rep, what, &s.is);
    struct lb_attr a;
    memset(&a, 0, sizeof a);
    a.key = str_of(kv.key);
    if (kv.key_strindex != 0 || !dict_value(NULL, &kv.value, 0, &a.value)) {
        if (!d->bad_attr)
            otlp_reject(&d->rep, "%s uses a string-table index (key_strindex or "
                        "string_value_strindex), which traces do not have", what);
        d->bad_attr = true;
        return true;
    }
    if (!VEC_PUSH(*out, a))
        return otlp_out_of_memory(&d->rep);
    return true;
}

/* The callbacks of the four lists of KeyValues: the same append, each to its list's vector.
 * A raw_each carries one context, the decoder, so the callback is what picks the vector. */
#define ATTRIBUTE_CALLBACK(fn, vec, what)                  \
    static bool fn(void *ctx, pb_ref_t el)                 \
    {                                                      \
        struct otlp_trace_decoder *d = ctx;                \
        return push_key_value(d, el, &d->vec, what);       \
    }
ATTRIBUTE_CALLBACK(on_resource_attribute, resource_attrs, "resource attribute")
ATTRIBUTE_CALLBACK(on_scope_attribute, scope_attrs, "scope attribute")
ATTRIBUTE_CALLBACK(on_span_attribute, span_attrs, "attribute")
ATTRIBUTE_CALLBACK(on_nested_attribute, nested_attrs, "event/link attribute")

/* Decodes one element of a repeated message field into `msg`, whose callbacks the caller set;
 * a failure the callbacks did not already describe is described as malformed `what`. */
static bool decode_element(struct otlp_trace_decoder *d, pb_ref_t el, const pb_msgdesc_t *fields,
                           void *msg, const char *what)
{
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    return pb_decode_ex(&s.is, fields, msg, PB_DECODE_NOINIT) || otlp_malformed(&d->rep, what, &s.is);
}

/* ---------- events and links ---------- */

/* Decodes an event or a link into `msg` (of `size` bytes), its attributes appended to the
 * pool of nested attributes; *first is where they start in it. */
static bool decode_nested(struct otlp_trace_decoder *d, pb_ref_t el, const pb_msgdesc_t *fields,
                          void *msg, size_t size, pb_callback_t *attributes, size_t *first,
                          const char *what)
{
    struct raw_each each;
    memset(msg, 0, size);
    raw_set_each(attributes, &each, on_nested_attribute, d);
    *first = d->nested_attrs.n;
    return decode_element(d, el, fields, msg, what);
}

static bool on_event(void *ctx, pb_ref_t el)
{
    struct otlp_trace_decoder *d = ctx;
    T(Span_Event) ev;
    size_t first;
    if (!decode_nested(d, el, T(Span_Event_fields), &ev, sizeof ev, &ev.attributes, &first, "span event"))
        return false;
    struct lb_span_event e = {
        .time_unix_nano = ev.time_unix_nano,
        .name = str_of(ev.name),
        .attrs = { NULL, d->nested_attrs.n - first },   /* pointer set once the pool is final */
        .dropped_attributes_count = ev.dropped_attributes_count,
    };
    if (!VEC_PUSH(d->events, e) || !VEC_PUSH(d->event_first, first))
        return otlp_out_of_memory(&d->rep);
    return true;
}

static bool on_link(void *ctx, pb_ref_t el)
{
    struct otlp_trace_decoder *d = ctx;
    T(Span_Link) ln;
    size_t first;
    if (!decode_nested(d, el, T(Span_Link_fields), &ln, sizeof ln, &ln.attributes, &first, "span link"))
        return false;
    struct lb_span_link l = {
        .trace_id = str_of(ln.trace_id),
        .span_id = str_of(ln.span_id),
        .trace_state = str_of(ln.trace_state),
        .flags = ln.flags,
        .attrs = { NULL, d->nested_attrs.n - first },
        .dropped_attributes_count = ln.dropped_attributes_count,
    };
    if (!VEC_PUSH(d->links, l) || !VEC_PUSH(d->link_first, first))
        return otlp_out_of_memory(&d->rep);
    return true;
}

/* ---------- spans ---------- */

static bool all_zero(pb_ref_t r)
{
    for (size_t i = 0; i < r.n; i++)
        if (r.p[i])
            return false;
    return true;
}

/* The id rules of the OTLP trace spec; false with d->rep.why set when the span breaks one. */
static bool check_ids(struct otlp_trace_decoder *d, const T(Span) *sp)
{
    if (sp->trace_id.n != TRACE_ID_LEN)
        otlp_reject(&d->rep, "trace_id is %zu bytes (want %d)", sp->trace_id.n, TRACE_ID_LEN);
    else if (all_zero(sp->trace_id))
        otlp_reject(&d->rep, "trace_id is all zero (invalid)");
    else if (sp->span_id.n != SPAN_ID_LEN)
        otlp_reject(&d->rep, "span_id is %zu bytes (want %d)", sp->span_id.n, SPAN_ID_LEN);
    else if (all_zero(sp->span_id))
        otlp_reject(&d->rep, "span_id is all zero (invalid)");
    else if (sp->parent_span_id.n != 0 && sp->parent_span_id.n != SPAN_ID_LEN)
        otlp_reject(&d->rep, "parent_span_id is %zu bytes (want 0 or %d)", sp->parent_span_id.n,
                    SPAN_ID_LEN);
    else
        return true;
    return false;
}

/* Where an event's or link's attributes start in the pool. A pool that never held one has
 * no storage, and NULL + 0 is undefined behaviour (found by fuzz_json): no pointer then. */
static const struct lb_attr *pool_slice(const struct otlp_trace_decoder *d, size_t first)
{
    assert(first <= d->nested_attrs.n);
    return d->nested_attrs.v ? d->nested_attrs.v + first : NULL;
}

static void fill_span(struct otlp_trace_decoder *d, const T(Span) *sp, struct lb_span *out)
{
    memset(out, 0, sizeof *out);
    out->resource = &d->resource;
    out->scope = &d->scope;
    out->scope_index = d->rep.at[AT_SCOPE];
    out->index = d->rep.at[AT_SPAN];
    out->trace_id = str_of(sp->trace_id);
    out->span_id = str_of(sp->span_id);
    out->parent_span_id = str_of(sp->parent_span_id);
    out->trace_state = str_of(sp->trace_state);
    out->name = str_of(sp->name);
    out->kind = (int32_t)sp->kind;
    out->flags = sp->flags;
    out->start_time_unix_nano = sp->start_time_unix_nano;
    out->end_time_unix_nano = sp->end_time_unix_nano;
    out->attrs = (struct lb_attrs){ d->span_attrs.v, d->span_attrs.n };
    out->dropped_attributes_count = sp->dropped_attributes_count;
    out->dropped_events_count = sp->dropped_events_count;
    out->dropped_links_count = sp->dropped_links_count;
    /* The attribute pool no longer moves: point each event and link at its slice. */
    for (size_t i = 0; i < d->events.n; i++)
        d->events.v[i].attrs.v = pool_slice(d, d->event_first.v[i]);
    for (size_t i = 0; i < d->links.n; i++)
        d->links.v[i].attrs.v = pool_slice(d, d->link_first.v[i]);
    out->events = d->events.v;
    out->n_events = d->events.n;
    out->links = d->links.v;
    out->n_links = d->links.n;
    if (sp->has_status) {
        out->status_code = (int32_t)sp->status.code;
        out->status_message = str_of(sp->status.message);
    }
}

static bool on_span(void *ctx, pb_ref_t el)
{
    struct otlp_trace_decoder *d = ctx;
    T(Span) sp;
    struct raw_each attr_each, event_each, link_each;
    memset(&sp, 0, sizeof sp);
    VEC_RESET(d->span_attrs);
    VEC_RESET(d->nested_attrs);
    VEC_RESET(d->events);
    VEC_RESET(d->links);
    VEC_RESET(d->event_first);
    VEC_RESET(d->link_first);
    d->rep.depth = 3;
    d->bad_attr = false;
    d->rep.why[0] = 0;
    raw_set_each(&sp.attributes, &attr_each, on_span_attribute, d);
    raw_set_each(&sp.events, &event_each, on_event, d);
    raw_set_each(&sp.links, &link_each, on_link, d);
    if (!decode_element(d, el, T(Span_fields), &sp, "span"))
        return false;
    const char *bad = d->bad_resource ? d->bad_resource : d->bad_scope;
    if (bad || d->bad_attr || !check_ids(d, &sp)) {
        otlp_note_first(&d->rep, bad ? bad : d->rep.why);
        d->res->rejected_spans++;
    } else {
        struct lb_span span;
        fill_span(d, &sp, &span);
        OTLP_EMIT(d->out, span, &span);
        d->res->spans++;
        d->res->events += span.n_events;
        d->res->links += span.n_links;
    }
    d->rep.at[AT_SPAN]++;
    return true;
}

/* ---------- scopes and resources ---------- */

/* A ResourceSpans or ScopeSpans element and who takes its parts. The walk reads it twice (see
 * the top of the file): first only the attributes of its resource or scope, then only its
 * children (scope_spans or spans). */
struct two_pass {
    const pb_msgdesc_t *fields;
    void *msg;
    size_t size;
    pb_callback_t *attributes, *children;
    raw_each_fn on_attribute, on_child;
    const char *what;
};

enum pass { PASS_ATTRIBUTES, PASS_CHILDREN };

/* One pass over the element, from the start: the part the pass does not read has no callback,
 * so nanopb skips it. */
static bool read_pass(struct otlp_trace_decoder *d, pb_ref_t el, const struct two_pass *tp,
                      enum pass pass)
{
    struct raw_each attr_each, child_each;
    memset(tp->msg, 0, tp->size);
    raw_set_each(tp->attributes, &attr_each, pass == PASS_ATTRIBUTES ? tp->on_attribute : NULL, d);
    raw_set_each(tp->children, &child_each, pass == PASS_CHILDREN ? tp->on_child : NULL, d);
    return decode_element(d, el, tp->fields, tp->msg, tp->what);
}

/* Enters a resource (AT_RESOURCE) or a scope (AT_SCOPE) and reads its first pass: `attrs`, the
 * level's attribute vector, starts empty and its children are counted from 0. */
static bool begin_level(struct otlp_trace_decoder *d, pb_ref_t el, const struct two_pass *tp,
                        int level, attrvec *attrs)
{
    VEC_RESET(*attrs);
    d->rep.depth = level + 1;
    d->rep.at[level + 1] = 0;
    d->bad_attr = false;
    return read_pass(d, el, tp, PASS_ATTRIBUTES);
}

static bool on_scope_spans(void *ctx, pb_ref_t el)
{
    struct otlp_trace_decoder *d = ctx;
    T(ScopeSpans) ss;
    const struct two_pass tp = { T(ScopeSpans_fields), &ss, sizeof ss, &ss.scope.attributes,
                                 &ss.spans, on_scope_attribute, on_span, "scope_spans" };
    d->bad_scope = NULL;
    if (!begin_level(d, el, &tp, AT_SCOPE, &d->scope_attrs))
        return false;
    /* The reason must outlive d->rep.why, which each span reuses. */
    static const char scope_attr_bad[] = "a scope attribute uses a string-table index, which traces do not have";
    if (d->bad_attr)
        d->bad_scope = scope_attr_bad;
    struct lb_scope *sc = &d->scope;
    sc->name = str_of(ss.scope.name);
    sc->version = str_of(ss.scope.version);
    sc->schema_url = str_of(ss.schema_url);
    sc->dropped_attributes_count = ss.scope.dropped_attributes_count;
    sc->attrs = (struct lb_attrs){ d->scope_attrs.v, d->scope_attrs.n };

    if (!read_pass(d, el, &tp, PASS_CHILDREN))
        return false;
    d->rep.depth = 2;
    d->rep.at[AT_SCOPE]++;
    return true;
}

static bool on_resource_spans(void *ctx, pb_ref_t el)
{
    struct otlp_trace_decoder *d = ctx;
    T(ResourceSpans) rs;
    const struct two_pass tp = { T(ResourceSpans_fields), &rs, sizeof rs, &rs.resource.attributes,
                                 &rs.scope_spans, on_resource_attribute, on_scope_spans,
                                 "resource_spans" };
    d->bad_resource = NULL;
    if (!begin_level(d, el, &tp, AT_RESOURCE, &d->resource_attrs))
        return false;
    static const char resource_attr_bad[] = "a resource attribute uses a string-table index, which traces do not have";
    if (d->bad_attr)
        d->bad_resource = resource_attr_bad;
    struct lb_resource *r = &d->resource;
    r->request = d->req;
    r->index = d->rep.at[AT_RESOURCE];
    r->attrs = (struct lb_attrs){ d->resource_attrs.v, d->resource_attrs.n };
    r->dropped_attributes_count = rs.resource.dropped_attributes_count;
    r->schema_url = str_of(rs.schema_url);
    bool emit = !d->bad_resource;
    if (emit)
        OTLP_EMIT(d->out, span_resource_begin, r);

    if (!read_pass(d, el, &tp, PASS_CHILDREN))
        return false;
    d->rep.depth = 1;
    if (emit) {
        OTLP_EMIT(d->out, span_resource_end, r);
        d->res->resources++;
    }
    d->rep.at[AT_RESOURCE]++;
    return true;
}

/* ---------- the request ---------- */

static bool walk_request(struct otlp_trace_decoder *d, const uint8_t *msg, size_t len)
{
    opentelemetry_proto_collector_trace_v1_ExportTraceServiceRequest rq;
    struct raw_each each;
    struct pbref_stream s;
    memset(&rq, 0, sizeof rq);
    raw_set_each(&rq.resource_spans, &each, on_resource_spans, d);
    pbref_open(&s, msg, len);
    if (pb_decode_ex(&s.is, opentelemetry_proto_collector_trace_v1_ExportTraceServiceRequest_fields,
                     &rq, PB_DECODE_NOINIT))
        return true;
    if (!d->rep.malformed && !d->rep.nomem) {
        d->rep.depth = 0;   /* the problem is in the request itself, not in its last resource */
        otlp_malformed(&d->rep, "request", &s.is);
    }
    return false;
}

static void finish_message(struct otlp_trace_decoder *d)
{
    if (d->res->rejected_spans == 0)
        return;
    otlp_prefix_message(&d->rep, "rejected %llu span(s); first problem: ",
                        (unsigned long long)d->res->rejected_spans);
}

enum otlp_status otlp_export_traces(struct otlp_trace_decoder *d, const uint8_t *msg, size_t len,
                                    struct lb_request *req, struct otlp_consumer out,
                                    struct otlp_trace_result *res)
{
    memset(res, 0, sizeof *res);
    d->res = res;
    d->req = req;
    d->out = out;
    otlp_report_begin(&d->rep, res->message, sizeof res->message);
    req->layout = "traces v1";
    req->message_bytes = len;
    req->message = msg;
    req->signal = LB_SIGNAL_TRACES;
    if (!otlp_check_size(&d->rep, len)) {
        res->problem = OTLP_PROBLEM_TOO_LARGE;
        return res->status = OTLP_INVALID;
    }
    if (OTLP_EMIT(out, admit, OTLP_SIGNAL_TRACES, res->message, sizeof res->message) != 0)
        return res->status = OTLP_UNAVAILABLE;
    /* Only the unknown fields are taken from this walk: whether the request is readable is the
     * decoder's to say, below. */
    req->unknown_fields = NULL;
    req->n_unknown_fields = 0;
    req->unknown_fields_total = 0;
    if (otlp_detect_among(msg, len, &otlp_traces_schema_ptr, 1, &d->unknown_walk) == 0) {
        req->n_unknown_fields = otlp_unknown_view(&d->unknown_walk, d->unknown);
        req->unknown_fields = req->n_unknown_fields ? d->unknown : NULL;
        req->unknown_fields_total = res->unknown_fields = d->unknown_walk.n_unknown;
    }
    OTLP_EMIT(out, request_begin, OTLP_SIGNAL_TRACES, req);
    if (!walk_request(d, msg, len)) {
        if (d->rep.nomem)
            otlp_note_nomem(&d->rep, len);
        OTLP_EMIT(out, request_abort, OTLP_SIGNAL_TRACES, req, res->message);
        res->resources = res->spans = res->events = res->links = res->unknown_fields = 0;
        res->problem = d->rep.nomem ? OTLP_PROBLEM_OUT_OF_MEMORY : OTLP_PROBLEM_MALFORMED;
        return res->status = d->rep.nomem ? OTLP_NOMEM : OTLP_INVALID;
    }
    if (OTLP_EMIT(out, request_end, OTLP_SIGNAL_TRACES, req, res->message, sizeof res->message) != 0)
        return res->status = OTLP_SINK_FAILED;
    finish_message(d);
    return res->status = OTLP_OK;
}

struct otlp_trace_decoder *otlp_trace_decoder_new(void)
{
    struct otlp_trace_decoder *d = calloc(1, sizeof *d);
    if (d)
        d->rep.levels = path_levels;
    return d;
}

void otlp_trace_decoder_free(struct otlp_trace_decoder *d)
{
    if (!d)
        return;
    VEC_FREE(d->resource_attrs);
    VEC_FREE(d->scope_attrs);
    VEC_FREE(d->span_attrs);
    VEC_FREE(d->nested_attrs);
    VEC_FREE(d->events);
    VEC_FREE(d->links);
    VEC_FREE(d->event_first);
    VEC_FREE(d->link_first);
    free(d);
}

int otlp_encode_traces_response(const struct otlp_trace_result *res, struct buf *out)
{
    opentelemetry_proto_collector_trace_v1_ExportTraceServiceResponse resp;
    memset(&resp, 0, sizeof resp);
    if (res->rejected_spans) {
        resp.has_partial_success = true;
        resp.partial_success.rejected_spans = (int64_t)res->rejected_spans;
        snprintf(resp.partial_success.error_message, sizeof resp.partial_success.error_message,
                 "%s", res->message);
    }
    return otlp_encode_response(opentelemetry_proto_collector_trace_v1_ExportTraceServiceResponse_fields,
                                &resp, out);
}
