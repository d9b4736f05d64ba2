/*
 * test_json.c - the OTLP/JSON transcoder (otlp/json.c) against protobuf bytes worked out by
 * hand from the field numbers, its refusals, the JSON responses, base64, and one round trip
 * through the trace decoder into a recording sink.
 *
 * Why by hand: the e2e tests compare whole requests made by Google's json_format; these pin
 * the wire details one by one (tags, packed fields, sign extension, multi-byte lengths,
 * escapes, ids in hex), so a failure says exactly which rule broke.
 */
#include "lib/base64.h"
#include "otlp/json.h"
#include "otlp/traces.h"
#include "sinks/sink.h"
#include "test/unit/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static enum otlp_json_result tj(enum otlp_json_doc doc, const char *json, struct buf *out, char *err, size_t errlen)
{
    buf_reset(out);
    return otlp_json_to_protobuf(doc, (const uint8_t *)json, strlen(json), out, err, errlen);
}

static bool bytes_eq(const struct buf *b, const uint8_t *want, size_t n)
{
    if (b->len != n || (n && memcmp(b->data, want, n) != 0)) {
        printf("#   got %zu bytes:", b->len);
        for (size_t i = 0; i < b->len && i < 80; i++)
            printf(" %02x", b->data[i]);
        printf("\n");
        return false;
    }
    return true;
}

static bool contains(const struct buf *b, const uint8_t *needle, size_t n)
{
    return b->len >= n && memmem(b->data, b->len, needle, n) != NULL;
}

/* One span, worked out by hand: see the byte comments. */
static const uint8_t SPAN_REQUEST[] = {
    0x0a, 0x3d,                                   /* resource_spans (1), 61 bytes */
    0x12, 0x3b,                                   /*  scope_spans (2), 59 bytes */
    0x12, 0x39,                                   /*   spans (2), 57 bytes */
    0x0a, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,   /* trace_id */
    0x12, 0x08, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,          /* span_id */
    0x2a, 0x01, 'x',                              /* name (5) */
    0x30, 0x02,                                   /* kind (6) = SERVER */
    0x39, 1, 0, 0, 0, 0, 0, 0, 0,                 /* start_time_unix_nano (7), fixed64 */
    0x41, 2, 0, 0, 0, 0, 0, 0, 0,                 /* end_time_unix_nano (8), fixed64 */
    0x85, 0x01, 0x01, 0x01, 0, 0,                 /* flags (16), fixed32 257 */
};

TEST(span_camel_case)
{
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST,
                    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                    "\"spanId\":\"A1A2A3A4A5A6A7A8\",\"name\":\"x\",\"kind\":2,\"startTimeUnixNano\":\"1\","
                    "\"endTimeUnixNano\":2,\"flags\":257}]}]}]}", &out, err, sizeof err), OTLP_JSON_OK);
    CHECK(bytes_eq(&out, SPAN_REQUEST, sizeof SPAN_REQUEST));
    buf_free(&out);
}

TEST(span_proto_names_enum_names_whitespace)
{
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST,
                    "\xef\xbb\xbf { \"resource_spans\" : [ { \"scope_spans\" : [ { \"spans\" : [ {\n"
                    "  \"trace_id\": \"0102030405060708090a0b0c0d0e0f10\", \"span_id\": \"a1a2a3a4a5a6a7a8\",\n"
                    "  \"name\": \"x\", \"kind\": \"SPAN_KIND_SERVER\", \"start_time_unix_nano\": 1,\n"
                    "  \"end_time_unix_nano\": \"2\", \"flags\": \"257\", \"unknownField\": {\"a\": [1, {\"b\": null}], \"c\": \"}\"}\n"
                    "} ] } ] } ] }\r\n", &out, err, sizeof err), OTLP_JSON_OK);
    CHECK(bytes_eq(&out, SPAN_REQUEST, sizeof SPAN_REQUEST));
    buf_free(&out);
}

TEST(packed_and_sign_extension)
{
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    static const uint8_t stack[] = {
        0x12, 0x08,               /* dictionary (2), 8 bytes */
        0x3a, 0x06,               /*  stack_table (7), 6 bytes */
        0x0a, 0x04, 0x01, 0x02, 0xac, 0x02,   /* location_indices (1), packed 1, 2, 300 */
    };
    CHECK_EQ_INT(tj(OTLP_JSON_PROFILES_REQUEST, "{\"dictionary\":{\"stackTable\":[{\"locationIndices\":[1,2,300]}]}}",
                    &out, err, sizeof err), OTLP_JSON_OK);
    CHECK(bytes_eq(&out, stack, sizeof stack));
    static const uint8_t neg[] = {
        0x0a, 0x1e, 0x12, 0x1c, 0x12, 0x1a, 0x12, 0x18,      /* resource, scope, profile, samples */
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,   /* stack_index -1 */
        0x22, 0x0b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x03,  /* values -2, 3 */
    };
    CHECK_EQ_INT(tj(OTLP_JSON_PROFILES_REQUEST,
                    "{\"resourceProfiles\":[{\"scopeProfiles\":[{\"profiles\":[{\"samples\":[{\"stackIndex\":-1,"
                    "\"values\":[\"-2\",3],\"timestampsUnixNano\":[],\"attributeIndices\":null}]}]}]}]}",
                    &out, err, sizeof err), OTLP_JSON_OK);
    CHECK(bytes_eq(&out, neg, sizeof neg));
    buf_free(&out);
}

TEST(long_submessage_lengths)
{
    struct buf out, json;
    char err[256];
    buf_init(&out, 1 << 20);
    buf_init(&json, 1 << 20);
    CHECK(buf_printf(&json, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\""));
    for (int i = 0; i < 200; i++)
        CHECK(buf_putc(&json, 'a'));
    CHECK(buf_printf(&json, "\"}}]}}]}"));
    CHECK(buf_putc(&json, 0));
    uint8_t want[218];
    static const uint8_t head[] = {
        0x0a, 0xd7, 0x01,        /* resource_spans, 215 */
        0x0a, 0xd4, 0x01,        /*  resource, 212 */
        0x0a, 0xd1, 0x01,        /*   attributes, 209 */
        0x0a, 0x01, 'k',         /*    key */
        0x12, 0xcb, 0x01,        /*    value, 203 */
        0x0a, 0xc8, 0x01,        /*     string_value, 200 */
    };
    memcpy(want, head, sizeof head);
    memset(want + sizeof head, 'a', 200);
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST, (const char *)json.data, &out, err, sizeof err), OTLP_JSON_OK);
    CHECK(bytes_eq(&out, want, sizeof want));
    buf_free(&out);
    buf_free(&json);
}

TEST(values_and_escapes)
{
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST,
                    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                    "{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},"
                    "{\"key\":\"e\",\"value\":{\"doubleValue\":-2.5e-1}},"
                    "{\"key\":\"b\",\"value\":{\"bytesValue\":\"AQID\"}},"
                    "{\"key\":\"t\",\"value\":{\"boolValue\":true}},"
                    "{\"key\":\"i\",\"value\":{\"intValue\":\"0\"}},"
                    "{\"key\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\",\"value\":{}}]}}]}",
                    &out, err, sizeof err), OTLP_JSON_OK);
    static const uint8_t bytes_value[] = { 0x3a, 0x03, 0x01, 0x02, 0x03 };
    static const uint8_t bool_value[] = { 0x0a, 0x01, 't', 0x12, 0x02, 0x10, 0x01 };
    static const uint8_t zero_int[] = { 0x0a, 0x01, 'i', 0x12, 0x02, 0x18, 0x00 };   /* a oneof 0 is kept */
    static const uint8_t key[] = { 0x0a, 0x0a, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, '\n', '"', '\\', '/', 0x12, 0x00 };
    CHECK(contains(&out, bytes_value, sizeof bytes_value));
    CHECK(contains(&out, bool_value, sizeof bool_value));
    CHECK(contains(&out, zero_int, sizeof zero_int));
    CHECK(contains(&out, key, sizeof key));
    double minus_quarter = -0.25;
    uint8_t dbl[11] = { 0x12, 0x09, 0x21 };   /* value (2), 9 bytes: double_value (4) */
    memcpy(dbl + 3, &minus_quarter, 8);       /* little-endian host, as the wire */
    CHECK(contains(&out, dbl, sizeof dbl));
    const uint8_t *nan_at = memmem(out.data, out.len, "\x0a\x01" "d\x12\x09\x21", 6);
    CHECK(nan_at != NULL);
    if (nan_at) {
        double d;
        memcpy(&d, nan_at + 6, 8);
        CHECK(isnan(d));
    }
    buf_free(&out);
}

struct refusal { const char *json; enum otlp_json_result want; const char *needle; };

TEST(refusals)
{
    static const struct refusal cases[] = {
        { "{\"resourceSpans\":[}", OTLP_JSON_INVALID, "at byte 18" },
        { "{} x", OTLP_JSON_INVALID, "unexpected data after the document" },
        { "", OTLP_JSON_INVALID, "expected '{'" },
        { "[]", OTLP_JSON_INVALID, "expected '{'" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"abc\"}]}]}]}", OTLP_JSON_INVALID, "odd length" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"zz\"}]}]}]}", OTLP_JSON_INVALID, "field \"span_id\"" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SPAN_KIND_NOPE\"}]}]}]}", OTLP_JSON_INVALID, "not an integer" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedEventsCount\":4294967296}]}]}]}", OTLP_JSON_INVALID, "out of range" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedEventsCount\":-1}]}]}]}", OTLP_JSON_INVALID, "out of range" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":1.5}]}]}]}", OTLP_JSON_INVALID, "not an integer" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":01}]}]}]}", OTLP_JSON_INVALID, "malformed number" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\\ud800\"}]}]}]}", OTLP_JSON_INVALID, "surrogate" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\\qb\"}]}]}]}", OTLP_JSON_INVALID, "bad escape" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\nb\"}]}]}]}", OTLP_JSON_INVALID, "control character" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"ab", OTLP_JSON_INVALID, "unterminated string" },
        { "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"value\":{\"bytesValue\":\"!!\"}}]}}]}", OTLP_JSON_INVALID, "base64" },
        { "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"value\":{\"boolValue\":\"true\"}}]}}]}", OTLP_JSON_INVALID, "true or false" },
        { "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"value\":{\"doubleValue\":\"inf\"}}]}}]}", OTLP_JSON_INVALID, "not a number" },
        { "{\"resourceSpans\":[null]}", OTLP_JSON_INVALID, "null inside an array" },
        { "{\"resourceSpans\":{}}", OTLP_JSON_INVALID, "expected '['" },
    };
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum otlp_json_result r = tj(OTLP_JSON_TRACES_REQUEST, cases[i].json, &out, err, sizeof err);
        if (r != cases[i].want || !strstr(err, cases[i].needle)) {
            printf("#   case %zu: result %d, err \"%s\" (want %d, \"%s\")\n", i, (int)r, err,
                   (int)cases[i].want, cases[i].needle);
            CHECK(0);
        }
    }
    buf_free(&out);
}

/* A reason quotes the sender's text with its escapes decoded; it goes into log lines and
 * error bodies, so it must stay one line of printable ASCII (found by test/fuzz/fuzz_json). */
TEST(reasons_are_one_printable_line)
{
    static const struct refusal cases[] = {
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"\\n1\"}]}]}]}",
          OTLP_JSON_INVALID, "\"?1\" is not an integer" },
        { "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"value\":{\"doubleValue\":\"\\u001b[31m\"}}]}}]}",
          OTLP_JSON_INVALID, "\"?[31m\" is not a number" },
        { "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"flags\":\"\xc3\xa9\"}]}]}]}",
          OTLP_JSON_INVALID, "\"??\" is not an integer" },
    };
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST, cases[i].json, &out, err, sizeof err), cases[i].want);
        CHECK(strstr(err, cases[i].needle) != NULL);
        for (const char *c = err; *c; c++)
            CHECK(*c >= 0x20 && *c < 0x7f);
    }
    buf_free(&out);
}

TEST(depth_and_size_bounds)
{
    struct buf out, json;
    char err[256];
    buf_init(&out, 1 << 20);
    buf_init(&json, 1 << 20);
    /* An unknown field nested 1000 deep: refused at OTLP_JSON_MAX_DEPTH, not by the stack. */
    CHECK(buf_printf(&json, "{\"x\":"));
    for (int i = 0; i < 1000; i++)
        CHECK(buf_putc(&json, '['));
    for (int i = 0; i < 1000; i++)
        CHECK(buf_putc(&json, ']'));
    CHECK(buf_printf(&json, "}"));
    CHECK(buf_putc(&json, 0));
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST, (const char *)json.data, &out, err, sizeof err), OTLP_JSON_INVALID);
    CHECK(strstr(err, "nested deeper") != NULL);
    /* AnyValue nesting through kvlists hits the same bound. */
    buf_reset(&json);
    CHECK(buf_printf(&json, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["));
    for (int i = 0; i < 60; i++)
        CHECK(buf_printf(&json, "{\"key\":\"k\",\"value\":{\"kvlistValue\":{\"values\":["));
    for (int i = 0; i < 60; i++)
        CHECK(buf_printf(&json, "]}}}"));
    CHECK(buf_printf(&json, "]}}]}"));
    CHECK(buf_putc(&json, 0));
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST, (const char *)json.data, &out, err, sizeof err), OTLP_JSON_INVALID);
    CHECK(strstr(err, "nested deeper") != NULL);
    /* The output limit: the span request needs 63 bytes. */
    struct buf small;
    buf_init(&small, 62);
    static const char span[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
        "\"spanId\":\"a1a2a3a4a5a6a7a8\",\"name\":\"x\",\"kind\":2,\"startTimeUnixNano\":\"1\","
        "\"endTimeUnixNano\":2,\"flags\":257}]}]}]}";
    CHECK_EQ_INT(otlp_json_to_protobuf(OTLP_JSON_TRACES_REQUEST, (const uint8_t *)span, sizeof span - 1,
                                       &small, err, sizeof err), OTLP_JSON_TOO_LARGE);
    CHECK(strstr(err, "larger than 62 bytes") != NULL);
    buf_free(&small);
    buf_free(&out);
    buf_free(&json);
}

TEST(responses)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    struct otlp_trace_result tr;
    memset(&tr, 0, sizeof tr);
    CHECK_EQ_INT(otlp_json_traces_response(&tr, &out), 0);
    CHECK(bytes_eq(&out, (const uint8_t *)"{}", 2));
    buf_reset(&out);
    tr.rejected_spans = 2;
    snprintf(tr.message, sizeof tr.message, "a \"b\"");
    CHECK_EQ_INT(otlp_json_traces_response(&tr, &out), 0);
    static const char want[] = "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"a \\\"b\\\"\"}}";
    CHECK(bytes_eq(&out, (const uint8_t *)want, sizeof want - 1));
    buf_reset(&out);
    struct otlp_result pr;
    memset(&pr, 0, sizeof pr);
    pr.rejected_profiles = 1;
    pr.rejected_samples = 3;
    snprintf(pr.message, sizeof pr.message, "x");
    CHECK_EQ_INT(otlp_json_profiles_response(&pr, &out), 0);
    static const char want_p[] = "{\"partialSuccess\":{\"rejectedProfiles\":\"1\",\"errorMessage\":\"x\"}}";
    CHECK(bytes_eq(&out, (const uint8_t *)want_p, sizeof want_p - 1));
    buf_reset(&out);
    CHECK_EQ_INT(otlp_json_status(3, "bad", &out), 0);
    CHECK(bytes_eq(&out, (const uint8_t *)"{\"code\":3,\"message\":\"bad\"}", 26));
    buf_free(&out);
}

TEST(base64)
{
    struct { const char *in; int rc; const char *out; size_t n; } cases[] = {
        { "AQID", BASE64_OK, "\x01\x02\x03", 3 },
        { "AQI", BASE64_OK, "\x01\x02", 2 },
        { "AQI=", BASE64_OK, "\x01\x02", 2 },
        { "AQ==", BASE64_OK, "\x01", 1 },
        { "AQ", BASE64_OK, "\x01", 1 },
        { "-_8", BASE64_OK, "\xfb\xff", 2 },
        { "+/8=", BASE64_OK, "\xfb\xff", 2 },
        { "", BASE64_OK, "", 0 },
        { "AR", BASE64_INVALID, "", 0 },      /* leftover bits set: not canonical */
        { "A", BASE64_INVALID, "", 0 },
        { "AQ=", BASE64_INVALID, "", 0 },
        { "A=Q=", BASE64_INVALID, "", 0 },
        { "AQ\nID", BASE64_INVALID, "", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b;
        buf_init(&b, 64);
        int rc = (int)base64_decode(cases[i].in, strlen(cases[i].in), &b);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == BASE64_OK)
            CHECK(bytes_eq(&b, (const uint8_t *)cases[i].out, cases[i].n));
        buf_free(&b);
    }
    struct buf tiny;
    buf_init(&tiny, 2);
    CHECK_EQ_INT(base64_decode("AQIDBA", 6, &tiny), BASE64_FULL);
    buf_free(&tiny);
}

/* A sink that keeps what it was given, to look at the decoded span. */
struct rec { int begins, spans, ends; char name[32]; int32_t kind; uint64_t start, end; uint32_t flags; uint8_t trace_id[16]; };

static struct rec *rec_of(struct sink *s) { return s->ctx; }
static void rec_begin(struct sink *s, const struct lb_request *r) { (void)r; rec_of(s)->begins++; }
static void rec_span(struct sink *s, const struct lb_span *sp)
{
    struct rec *r = rec_of(s);
    r->spans++;
    snprintf(r->name, sizeof r->name, "%.*s", (int)sp->name.n, sp->name.p);
    r->kind = sp->kind;
    r->start = sp->start_time_unix_nano;
    r->end = sp->end_time_unix_nano;
    r->flags = sp->flags;
    if (sp->trace_id.n == 16)
        memcpy(r->trace_id, sp->trace_id.p, 16);
}
static int rec_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    (void)r;
    (void)why;
    (void)whylen;
    rec_of(s)->ends++;
    return 0;
}

TEST(round_trip_through_the_trace_decoder)
{
    static const struct sink_type rec_type = { .name = "rec", .request_begin = rec_begin, .span = rec_span,
                                               .request_end = rec_end };
    static const struct sink_type deaf_type = { .name = "deaf", .request_begin = rec_begin, .request_end = rec_end };
    struct rec r, deaf;
    memset(&r, 0, sizeof r);
    memset(&deaf, 0, sizeof deaf);
    struct sink sinks[2] = { { &rec_type, &r }, { &deaf_type, &deaf } };
    struct sink_set set = { sinks, 2 };
    struct buf out;
    char err[256];
    buf_init(&out, 1 << 20);
    CHECK_EQ_INT(tj(OTLP_JSON_TRACES_REQUEST,
                    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                    "\"spanId\":\"a1a2a3a4a5a6a7a8\",\"name\":\"x\",\"kind\":2,\"startTimeUnixNano\":\"1\","
                    "\"endTimeUnixNano\":2,\"flags\":257}]}]}]}", &out, err, sizeof err), OTLP_JSON_OK);
    struct otlp_trace_decoder *d = otlp_trace_decoder_new();
    struct lb_request req = { .transport = "test", .peer = "-" };
    struct otlp_trace_result res;
    CHECK_EQ_INT(otlp_export_traces(d, out.data, out.len, &req, sink_set_consumer(&set), &res), OTLP_OK);
    CHECK_EQ_INT(res.spans, 1);
    CHECK_EQ_INT(r.begins, 1);
    CHECK_EQ_INT(r.spans, 1);
    CHECK_EQ_INT(r.ends, 1);
    CHECK_EQ_STR(r.name, "x");
    CHECK_EQ_INT(r.kind, 2);
    CHECK_EQ_INT(r.start, 1);
    CHECK_EQ_INT(r.end, 2);
    CHECK_EQ_INT(r.flags, 257);
    CHECK(memcmp(r.trace_id, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16) == 0);
    /* The sink without a span callback never heard of the request. */
    CHECK_EQ_INT(deaf.begins, 0);
    CHECK_EQ_INT(deaf.ends, 0);
    CHECK(!sink_set_takes_spans(&(struct sink_set){ &sinks[1], 1 }));
    otlp_trace_decoder_free(d);
    buf_free(&out);
}

int main(void)
{
    RUN(span_camel_case);
    RUN(span_proto_names_enum_names_whitespace);
    RUN(packed_and_sign_extension);
    RUN(long_submessage_lengths);
    RUN(values_and_escapes);
    RUN(refusals);
    RUN(reasons_are_one_printable_line);
    RUN(depth_and_size_bounds);
    RUN(responses);
    RUN(base64);
    RUN(round_trip_through_the_trace_decoder);
    return check_done();
}
