/*
 * test_usdt_pair.c - the bridge's pairing (cmd/usdt_pair.c) with a clock the test moves, and
 * its encoding (cmd/usdt_encode.c) read back.
 *
 * Pairing: every case of the reference's list (start then end, end first within the grace
 * period, an end that never meets its start, duplicate starts and ends, the TTL, a full
 * table, shutdown), and many ids in a shuffled order against a plain count of what must come
 * out. Encoding: the protobuf is read back by the server's own traces decoder (otlp/traces.c,
 * nanopb: written apart from this encoder), the JSON compared with text written here.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/usdt.h"
#include "otlp/traces.h"
#include "sinks/sink.h"
#include "test/unit/check.h"

#define T0 1796400430172630642LL

struct out {
    int n;
    struct { char id[USDT_REQID_MAX + 1]; int64_t start, end, duration; enum usdt_how how; } s[64];
    int complete;
};

static void on_span(void *ud, const struct usdt_span *sp)
{
    struct out *o = ud;
    if (sp->how == USDT_COMPLETE)
        o->complete++;
    if (o->n == 64)
        return;
    snprintf(o->s[o->n].id, sizeof o->s[0].id, "%.*s", (int)sp->reqid_len, sp->reqid);
    o->s[o->n].start = sp->start_ns;
    o->s[o->n].end = sp->end_ns;
    o->s[o->n].duration = sp->duration_ns;
    o->s[o->n].how = sp->how;
    o->n++;
}

static struct usdt_pairing *table(struct out *o, size_t max_open)
{
    memset(o, 0, sizeof *o);
    struct usdt_pair_options opt = { .max_open = max_open, .ttl_ms = 10000, .grace_ms = 500 };
    struct usdt_pairing *pt = usdt_pair_new(&opt, on_span, o);
    CHECK(pt != NULL);
    return pt;
}

static void start(struct usdt_pairing *pt, const char *id, int64_t ts, uint64_t now)
{
    usdt_pair_start(pt, id, strlen(id), ts, now);
}

static void end(struct usdt_pairing *pt, const char *id, int64_t d, bool has_start, int64_t st, uint64_t now)
{
    usdt_pair_end(pt, id, strlen(id), d, has_start, st, now);
}

TEST(start_then_end)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    start(pt, "a", T0, 0);
    CHECK_EQ_INT(o.n, 0);
    CHECK_EQ_INT(usdt_pair_pending(pt), 1);
    end(pt, "a", 1500, true, T0, 3);
    CHECK_EQ_INT(o.n, 1);
    CHECK(o.s[0].how == USDT_COMPLETE && o.s[0].start == T0 && o.s[0].end == T0 + 1500 && o.s[0].duration == 1500);
    CHECK_EQ_STR(o.s[0].id, "a");
    CHECK_EQ_INT(usdt_pair_pending(pt), 0);
    CHECK_EQ_INT(usdt_pair_stats(pt)->complete, 1);
    usdt_pair_free(pt);
}

TEST(end_before_start_within_grace)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    end(pt, "a", 7, true, T0, 100);
    usdt_pair_expire(pt, 599);           /* 499 ms: still waiting */
    CHECK_EQ_INT(o.n, 0);
    start(pt, "a", T0, 599);
    CHECK_EQ_INT(o.n, 1);
    CHECK(o.s[0].how == USDT_COMPLETE && o.s[0].start == T0 && o.s[0].end == T0 + 7);
    CHECK_EQ_INT(usdt_pair_stats(pt)->reordered, 1);
    usdt_pair_free(pt);
}

TEST(end_without_start_after_grace)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    end(pt, "with", 9, true, T0, 0);
    end(pt, "without", 9, false, 0, 0);
    usdt_pair_expire(pt, 499);
    CHECK_EQ_INT(o.n, 0);
    usdt_pair_expire(pt, 500);
    CHECK_EQ_INT(o.n, 1);                /* dated by its own "start" */
    CHECK(o.s[0].how == USDT_NO_START && o.s[0].start == T0 && o.s[0].end == T0 + 9);
    CHECK_EQ_STR(o.s[0].id, "with");
    CHECK_EQ_INT(usdt_pair_stats(pt)->no_start, 1);
    CHECK_EQ_INT(usdt_pair_stats(pt)->orphan_ends, 1);
    start(pt, "with", T0, 600);          /* too late: a start that will wait for its end */
    CHECK_EQ_INT(usdt_pair_pending(pt), 1);
    usdt_pair_free(pt);
}

TEST(duplicate_starts_and_ends)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    start(pt, "a", T0, 0);
    start(pt, "a", T0 + 100, 1);         /* the first is given up, not leaked */
    CHECK_EQ_INT(o.n, 1);
    CHECK(o.s[0].how == USDT_UNF_DUPLICATE && o.s[0].start == T0 && o.s[0].end == T0);
    end(pt, "a", 50, true, T0 + 100, 2);
    CHECK(o.n == 2 && o.s[1].how == USDT_COMPLETE && o.s[1].start == T0 + 100);
    end(pt, "a", 50, true, T0 + 100, 3); /* the same end again: no second span */
    usdt_pair_expire(pt, 10000);
    CHECK_EQ_INT(o.n, 2);
    CHECK_EQ_INT(usdt_pair_stats(pt)->duplicate_starts, 1);
    CHECK_EQ_INT(usdt_pair_stats(pt)->duplicate_ends, 1);
    end(pt, "b", 1, false, 0, 20000);    /* two ends before any start: the second is the duplicate */
    end(pt, "b", 2, false, 0, 20001);
    start(pt, "b", T0, 20002);
    CHECK(o.n == 3 && o.s[2].duration == 1);
    CHECK_EQ_INT(usdt_pair_stats(pt)->duplicate_ends, 2);
    start(pt, "a", T0 + 500, 30000);     /* an id used again later is a new request */
    end(pt, "a", 5, false, 0, 30001);
    CHECK(o.n == 4 && o.s[3].how == USDT_COMPLETE && o.s[3].start == T0 + 500);
    usdt_pair_free(pt);
}

TEST(start_mismatch_counted)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    start(pt, "a", T0, 0);
    end(pt, "a", 10, true, T0 + 1, 1);
    CHECK(o.n == 1 && o.s[0].start == T0);   /* the start event's own timestamp wins */
    CHECK_EQ_INT(usdt_pair_stats(pt)->start_mismatch, 1);
    usdt_pair_free(pt);
}

TEST(ttl_and_shutdown)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 16);
    start(pt, "old", T0, 0);
    start(pt, "new", T0, 5000);
    usdt_pair_expire(pt, 9999);
    CHECK_EQ_INT(o.n, 0);
    usdt_pair_expire(pt, 10000);
    CHECK(o.n == 1 && o.s[0].how == USDT_UNF_TTL);
    CHECK_EQ_STR(o.s[0].id, "old");
    end(pt, "parked", 3, true, T0, 10001);
    usdt_pair_drain(pt);
    CHECK_EQ_INT(o.n, 3);
    CHECK(o.s[1].how == USDT_NO_START);  /* ends are resolved first, then the open starts */
    CHECK(o.s[2].how == USDT_UNF_SHUTDOWN);
    CHECK_EQ_STR(o.s[2].id, "new");
    CHECK_EQ_INT(usdt_pair_pending(pt), 0);
    usdt_pair_free(pt);
}

TEST(full_table_evicts_oldest)
{
    struct out o;
    struct usdt_pairing *pt = table(&o, 4);
    start(pt, "a", T0, 0);
    end(pt, "a", 1, false, 0, 1);        /* "a" is now a recent end */
    start(pt, "b", T0, 2);
    start(pt, "c", T0, 3);
    start(pt, "d", T0, 4);
    start(pt, "e", T0, 5);               /* full: the recent end makes room, silently */
    CHECK_EQ_INT(o.n, 1);
    start(pt, "f", T0, 6);               /* then the oldest start */
    CHECK(o.n == 2 && o.s[1].how == USDT_UNF_EVICTED);
    CHECK_EQ_STR(o.s[1].id, "b");
    CHECK_EQ_INT(usdt_pair_stats(pt)->evicted, 1);
    CHECK_EQ_INT(usdt_pair_pending(pt), 4);
    usdt_pair_free(pt);
}

/* Many ids, ends in a shuffled order, a quarter of them before their start: the index
 * grows, entries move on deletion; every request must come out exactly once. */
TEST(many_ids_shuffled)
{
    enum { N = 20000 };
    struct out o;
    struct usdt_pairing *pt = table(&o, N * 2);
    int *order = malloc(N * sizeof *order);
    CHECK(order != NULL);
    for (int i = 0; i < N; i++)
        order[i] = i;
    srand(7);
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "req-%d", i);
        if (i % 4)
            start(pt, id, T0 + i, 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "req-%d", order[i]);
        end(pt, id, order[i], false, 0, 0);
    }
    for (int i = 0; i < N; i += 4) {
        snprintf(id, sizeof id, "req-%d", i);
        start(pt, id, T0 + i, 0);
    }
    CHECK_EQ_INT(o.complete, N);
    CHECK_EQ_INT(usdt_pair_stats(pt)->reordered, N / 4);
    CHECK_EQ_INT(usdt_pair_pending(pt), 0);
    usdt_pair_expire(pt, 1000000);
    usdt_pair_drain(pt);
    CHECK_EQ_INT(o.complete, N);
    free(order);
    usdt_pair_free(pt);
}

/* ---------------------------------------------------------------- encoding */

struct seen {
    int spans;
    char name[32], service[32], scope[32], reqid[32];
    int kind, status;
    uint64_t start, end;
    int64_t duration_ns;
    double duration_ms;
    bool start_missing, has_duration;
    char unfinished[32];
    uint8_t trace_id[16], span_id[8];
    uint32_t flags;
};

static void copy(char *dst, size_t n, lb_str s) { snprintf(dst, n, "%.*s", (int)s.n, s.p); }

static void seen_span(struct sink *s, const struct lb_span *sp)
{
    struct seen *w = s->ctx;
    if (w->spans++)
        return;
    copy(w->name, sizeof w->name, sp->name);
    copy(w->scope, sizeof w->scope, sp->scope->name);
    const struct lb_attr *svc = lb_attrs_find(sp->resource->attrs, "service.name");
    if (svc)
        copy(w->service, sizeof w->service, svc->value.u.str);
    w->kind = sp->kind;
    w->status = sp->status_code;
    w->start = sp->start_time_unix_nano;
    w->end = sp->end_time_unix_nano;
    w->flags = sp->flags;
    memcpy(w->trace_id, sp->trace_id.p, sp->trace_id.n == 16 ? 16 : 0);
    memcpy(w->span_id, sp->span_id.p, sp->span_id.n == 8 ? 8 : 0);
    for (size_t i = 0; i < sp->attrs.n; i++) {
        const struct lb_attr *a = &sp->attrs.v[i];
        if (LB_STR_EQ(a->key, "request.id"))
            copy(w->reqid, sizeof w->reqid, a->value.u.str);
        else if (LB_STR_EQ(a->key, "duration_ns"))
            w->duration_ns = a->value.u.integer, w->has_duration = true;
        else if (LB_STR_EQ(a->key, "duration_ms"))
            w->duration_ms = a->value.u.dbl;
        else if (LB_STR_EQ(a->key, "usdt.start_missing"))
            w->start_missing = a->value.u.boolean;
        else if (LB_STR_EQ(a->key, "usdt.unfinished"))
            copy(w->unfinished, sizeof w->unfinished, a->value.u.str);
    }
}

static int commit(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    (void)s, (void)r, (void)why, (void)whylen;
    return 0;
}

static const struct sink_type recorder = { .name = "recorder", .request_end = commit, .span = seen_span };

static struct usdt_kv service = { "service.name", "shop" };
static const struct usdt_resource resource = { &service, 1, "lazybackend-usdt", "0.1.0", "http.request" };

static struct usdt_span_rec rec(const char *id, int64_t start, int64_t duration, enum usdt_how how)
{
    struct usdt_span_rec r;
    memset(&r, 0, sizeof r);
    memset(r.trace_id, 0xab, 16);
    memset(r.span_id, 0xcd, 8);
    r.start_ns = start;
    r.end_ns = USDT_UNFINISHED(how) ? start : start + duration;
    r.duration_ns = duration;
    r.how = (uint8_t)how;
    r.reqid_len = (uint8_t)strlen(id);
    memcpy(r.reqid, id, r.reqid_len);
    return r;
}

static struct seen decode(const struct usdt_span_rec *spans, size_t n)
{
    struct seen w;
    memset(&w, 0, sizeof w);
    struct buf body;
    buf_init(&body, 1 << 20);
    CHECK(usdt_encode_proto(&body, &resource, spans, n));
    struct sink s = { &recorder, &w };
    struct sink_set set = { &s, 1 };
    struct otlp_trace_decoder *d = otlp_trace_decoder_new();
    struct lb_request r = { .transport = "test", .peer = "test" };
    struct otlp_trace_result res;
    CHECK_EQ_INT(otlp_export_traces(d, body.data, body.len, &r, sink_set_consumer(&set), &res), OTLP_OK);
    CHECK_EQ_INT(res.spans, n);
    CHECK_EQ_INT(res.rejected_spans, 0);
    otlp_trace_decoder_free(d);
    buf_free(&body);
    return w;
}

TEST(protobuf_read_back)
{
    struct usdt_span_rec r = rec("req-1", T0, 1500000, USDT_COMPLETE);
    struct seen w = decode(&r, 1);
    CHECK_EQ_INT(w.spans, 1);
    CHECK_EQ_STR(w.name, "http.request");
    CHECK_EQ_STR(w.service, "shop");
    CHECK_EQ_STR(w.scope, "lazybackend-usdt");
    CHECK_EQ_STR(w.reqid, "req-1");
    CHECK_EQ_INT(w.kind, 2);             /* SERVER */
    CHECK_EQ_INT(w.status, 0);
    CHECK(w.start == (uint64_t)T0 && w.end == (uint64_t)T0 + 1500000);
    CHECK(w.has_duration && w.duration_ns == 1500000 && w.duration_ms == 1.5);
    CHECK(w.trace_id[0] == 0xab && w.trace_id[15] == 0xab && w.span_id[7] == 0xcd);
    CHECK_EQ_INT(w.flags, 0x101);
    CHECK(!w.start_missing && !w.unfinished[0]);
}

TEST(protobuf_unfinished_and_no_start)
{
    struct usdt_span_rec r = rec("r", T0, 0, USDT_UNF_TTL);
    struct seen w = decode(&r, 1);
    CHECK_EQ_INT(w.status, 2);           /* ERROR */
    CHECK_EQ_STR(w.unfinished, "ttl");
    CHECK(!w.has_duration && w.start == w.end);
    r = rec("r", T0, 4, USDT_NO_START);
    w = decode(&r, 1);
    CHECK(w.start_missing && w.status == 0 && w.duration_ns == 4);
    /* many spans, and lengths that need two-byte varints */
    struct usdt_span_rec many[300];
    for (int i = 0; i < 300; i++)
        many[i] = rec("a-somewhat-longer-request-id-to-pass-127-bytes-soon", T0 + i, i, USDT_COMPLETE);
    w = decode(many, 300);
    CHECK_EQ_INT(w.spans, 300);
}

TEST(json_text)
{
    struct usdt_span_rec r[2] = { rec("q\"1", T0, 1500000, USDT_COMPLETE), rec("x", 5, 0, USDT_UNF_SHUTDOWN) };
    struct buf b;
    buf_init(&b, 1 << 16);
    CHECK(usdt_encode_json(&b, &resource, r, 2) && buf_putc(&b, 0));
    const char *want =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
        "\"shop\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lazybackend-usdt\",\"version\":\"0.1.0\"},\"spans\":["
        "{\"traceId\":\"abababababababababababababababab\",\"spanId\":\"cdcdcdcdcdcdcdcd\",\"name\":\"http.request\","
        "\"kind\":2,\"startTimeUnixNano\":\"1796400430172630642\",\"endTimeUnixNano\":\"1796400430174130642\","
        "\"attributes\":[{\"key\":\"request.id\",\"value\":{\"stringValue\":\"q\\\"1\"}},{\"key\":\"duration_ns\","
        "\"value\":{\"intValue\":\"1500000\"}},{\"key\":\"duration_ms\",\"value\":{\"doubleValue\":1.5}}],"
        "\"flags\":257},"
        "{\"traceId\":\"abababababababababababababababab\",\"spanId\":\"cdcdcdcdcdcdcdcd\",\"name\":\"http.request\","
        "\"kind\":2,\"startTimeUnixNano\":\"5\",\"endTimeUnixNano\":\"5\",\"attributes\":[{\"key\":\"request.id\","
        "\"value\":{\"stringValue\":\"x\"}},{\"key\":\"usdt.unfinished\",\"value\":{\"stringValue\":\"shutdown\"}}],"
        "\"status\":{\"message\":\"the request's end was not seen\",\"code\":2},\"flags\":257}]}]}]}";
    CHECK_EQ_STR((const char *)b.data, want);
    buf_free(&b);
}

TEST(partial_success_answers)
{
    int64_t rejected;
    char msg[64];
    CHECK(usdt_partial_success(NULL, 0, false, &rejected, msg, sizeof msg) && rejected == 0 && !msg[0]);
    /* partial_success { rejected_spans: 3, error_message: "bad" } */
    static const uint8_t pb[] = { 0x0a, 0x07, 0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd' };
    CHECK(usdt_partial_success(pb, sizeof pb, false, &rejected, msg, sizeof msg));
    CHECK(rejected == 3 && strcmp(msg, "bad") == 0);
    static const uint8_t cut[] = { 0x0a, 0x07, 0x08, 0x03 };
    CHECK(!usdt_partial_success(cut, sizeof cut, false, &rejected, msg, sizeof msg));
    const char *js = "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"no\"}}";
    CHECK(usdt_partial_success((const uint8_t *)js, strlen(js), true, &rejected, msg, sizeof msg));
    CHECK(rejected == 2 && strcmp(msg, "no") == 0);
    CHECK(usdt_partial_success((const uint8_t *)"{}", 2, true, &rejected, msg, sizeof msg) && rejected == 0);
    CHECK(!usdt_partial_success((const uint8_t *)"{", 1, true, &rejected, msg, sizeof msg));
}

int main(void)
{
    RUN(start_then_end);
    RUN(end_before_start_within_grace);
    RUN(end_without_start_after_grace);
    RUN(duplicate_starts_and_ends);
    RUN(start_mismatch_counted);
    RUN(ttl_and_shutdown);
    RUN(full_table_evicts_oldest);
    RUN(many_ids_shuffled);
    RUN(protobuf_read_back);
    RUN(protobuf_unfinished_and_no_start);
    RUN(json_text);
    RUN(partial_success_answers);
    return check_done();
}
