/*
 * test_traces.c - otlp/traces.c on requests written byte by byte here, for the shapes the
 * fuzzers found mishandled (regression checks; the end-to-end trace tests use requests made
 * by the reference protobuf library).
 *
 * A span whose events and links carry no attributes at all left the decoder's attribute pool
 * without storage, and each event's and link's attribute pointer was computed as NULL + 0
 * (undefined behaviour; clang's UBSan under test/fuzz/fuzz_json). The decoder must deliver
 * such a span with its event and link, each with zero attributes, and a span with attributes
 * on its link but not on its event must point each at its own slice.
 */
#include "otlp/traces.h"
#include "sinks/sink.h"
#include "test/unit/check.h"

#include <stdint.h>
#include <string.h>

struct seen {
    int spans;
    size_t n_events, n_links;
    size_t event_attrs, link_attrs;
    char event_name[16], link_key[16];
};

static void on_span(struct sink *s, const struct lb_span *sp)
{
    struct seen *w = s->ctx;
    w->spans++;
    w->n_events = sp->n_events;
    w->n_links = sp->n_links;
    if (sp->n_events) {
        w->event_attrs = sp->events[0].attrs.n;
        snprintf(w->event_name, sizeof w->event_name, "%.*s", (int)sp->events[0].name.n, sp->events[0].name.p);
    }
    if (sp->n_links) {
        w->link_attrs = sp->links[0].attrs.n;
        if (w->link_attrs)
            snprintf(w->link_key, sizeof w->link_key, "%.*s", (int)sp->links[0].attrs.v[0].key.n,
                     sp->links[0].attrs.v[0].key.p);
    }
}

static int commit(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    (void)s, (void)r, (void)why, (void)whylen;
    return 0;
}

static const struct sink_type recorder = { .name = "recorder", .request_end = commit, .span = on_span };

/* Appends field `tag` (wire type 2) holding `inner`; every length here is below 128. */
static void wrap(struct buf *out, uint8_t tag, const struct buf *inner)
{
    CHECK(inner->len < 128);
    CHECK(buf_putc(out, (char)tag) && buf_putc(out, (char)inner->len) &&
          buf_append(out, inner->data, inner->len));
}

static void bytes_field(struct buf *out, uint8_t tag, uint8_t fill, size_t n)
{
    uint8_t v[16];
    memset(v, fill, sizeof v);
    CHECK(buf_putc(out, (char)tag) && buf_putc(out, (char)n) && buf_append(out, v, n));
}

/* ExportTraceServiceRequest{resource_spans{scope_spans{spans{...one span...}}}}, the span
 * with one event ("e") and one link; `link_attr` gives the link the attribute "k"="v". */
static void request(struct buf *req, bool link_attr)
{
    struct buf span, event, link, kv, scope, resource;
    buf_init(&span, 1024), buf_init(&event, 1024), buf_init(&link, 1024), buf_init(&kv, 1024);
    buf_init(&scope, 1024), buf_init(&resource, 1024);
    bytes_field(&span, 0x0a, 0x11, 16);                      /* trace_id (1) */
    bytes_field(&span, 0x12, 0x22, 8);                       /* span_id (2) */
    CHECK(buf_append(&span, "\x2a\x01s", 3));                /* name (5) = "s" */
    CHECK(buf_append(&event, "\x09\x05\0\0\0\0\0\0\0", 9));  /* time_unix_nano (1, fixed64) */
    CHECK(buf_append(&event, "\x12\x01" "e", 3));            /* name (2) */
    wrap(&span, 0x5a, &event);                               /* events (11) */
    bytes_field(&link, 0x0a, 0xff, 16);                      /* trace_id (1) */
    bytes_field(&link, 0x12, 0xee, 8);                       /* span_id (2) */
    if (link_attr) {
        /* KeyValue{key (1) = "k", value (2) = AnyValue{string_value (1) = "v"}} */
        CHECK(buf_append(&kv, "\x0a\x01k\x12\x03\x0a\x01v", 8));
        wrap(&link, 0x22, &kv);                              /* attributes (4) */
    }
    wrap(&span, 0x6a, &link);                                /* links (13) */
    wrap(&scope, 0x12, &span);                               /* ScopeSpans.spans (2) */
    wrap(&resource, 0x12, &scope);                           /* ResourceSpans.scope_spans (2) */
    wrap(req, 0x0a, &resource);                              /* resource_spans (1) */
    buf_free(&span), buf_free(&event), buf_free(&link), buf_free(&kv);
    buf_free(&scope), buf_free(&resource);
}

static struct seen decode(bool link_attr)
{
    struct seen w;
    memset(&w, 0, sizeof w);
    struct sink s = { &recorder, &w };
    struct sink_set set = { &s, 1 };
    struct buf req;
    buf_init(&req, 4096);
    request(&req, link_attr);
    struct otlp_trace_decoder *d = otlp_trace_decoder_new();
    CHECK(d != NULL);
    struct lb_request r = { .transport = "test", .peer = "test" };
    struct otlp_trace_result res;
    CHECK_EQ_INT(otlp_export_traces(d, req.data, req.len, &r, sink_set_consumer(&set), &res), OTLP_OK);
    CHECK_EQ_INT(res.spans, 1);
    CHECK_EQ_INT(res.events, 1);
    CHECK_EQ_INT(res.links, 1);
    otlp_trace_decoder_free(d);
    buf_free(&req);
    return w;
}

TEST(event_and_link_without_any_attribute)
{
    struct seen w = decode(false);
    CHECK_EQ_INT(w.spans, 1);
    CHECK_EQ_INT(w.n_events, 1);
    CHECK_EQ_INT(w.n_links, 1);
    CHECK_EQ_INT(w.event_attrs, 0);
    CHECK_EQ_INT(w.link_attrs, 0);
    CHECK_EQ_STR(w.event_name, "e");
}

TEST(link_attributes_beside_an_event_without)
{
    struct seen w = decode(true);
    CHECK_EQ_INT(w.spans, 1);
    CHECK_EQ_INT(w.event_attrs, 0);
    CHECK_EQ_INT(w.link_attrs, 1);
    CHECK_EQ_STR(w.link_key, "k");
}

int main(void)
{
    RUN(event_and_link_without_any_attribute);
    RUN(link_attributes_beside_an_event_without);
    return check_done();
}
