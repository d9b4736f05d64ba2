/*
 * test_usdt.c - the bridge's readers without bpftrace: the JSON scanner (cmd/usdt_json.c),
 * bpftrace's lines into events (cmd/usdt_parse.c), the line splitter (cmd/usdt_lines.c) and
 * the OTEL_* values (cmd/usdt_env.c). Pairing and encoding are in test_usdt_pair.c.
 *
 * The lines are what bpftrace 0.17 prints (copied from a real run, with its spacing), what
 * 0.24+ prints (counts at the top level, big integers as strings), bare event lines as replay
 * files have them, and hostile lines. Every expectation is written here by hand: the exact
 * nanosecond values are above 2^53, so a parser going through a double fails them.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/usdt.h"
#include "cmd/usdt_internal.h"
#include "test/unit/check.h"

#define T0 1796400430172630642LL   /* not a multiple of 256: a double would round it */

/* One parser for every test (freed at the end): an event's text points into it. */
static struct usdt_parser parser;

static struct usdt_event parse(const char *line)
{
    struct usdt_event ev;
    if (!parser.scratch)
        CHECK(usdt_parser_init(&parser, 4096) == 0);
    usdt_parse_line(&parser, line, strlen(line), &ev);
    return ev;
}

static const char *reqid(const struct usdt_event *ev)
{
    static char s[USDT_REQID_MAX + 1];
    memcpy(s, ev->reqid, ev->reqid_len);
    s[ev->reqid_len] = 0;
    return s;
}

/* ---------------------------------------------------------------- the scanner */

TEST(scanner_members_and_nesting)
{
    struct uj_member m[4];
    const char *s = " {\"a\": \"x\\\"y\", \"b\" : [1, {\"c\": null}], \"n\": -12.5e3, \"t\":true, \"o\":{}} \n";
    int n = uj_object(s, strlen(s), m, 4);
    CHECK_EQ_INT(n, 4);   /* five members, four kept */
    CHECK(uj_find(m, n, "a") && uj_find(m, n, "a")->type == UJ_STRING);
    CHECK_EQ_INT(uj_find(m, n, "a")->raw_len, 4);   /* x\"y, escapes not decoded */
    CHECK(uj_find(m, n, "b") && uj_find(m, n, "b")->type == UJ_ARRAY);
    CHECK(uj_find(m, n, "n") && uj_find(m, n, "n")->raw_len == 7);
    CHECK(uj_find(m, n, "o") == NULL);
    char out[16];
    size_t len;
    CHECK(uj_string(uj_find(m, n, "a"), out, sizeof out, &len) && len == 3 && memcmp(out, "x\"y", 3) == 0);
}

TEST(scanner_refuses_what_is_not_one_object)
{
    static const char *bad[] = {
        "", "   ", "[1]", "\"s\"", "{", "{\"a\":1", "{\"a\":1}x", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":\"open}", "{\"a\":1}{\"b\":2}", "{\"a\":[1,]}", "{\"a\":\"\\u12\"}",
    };
    struct uj_member m[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (uj_object(bad[i], strlen(bad[i]), m, 4) != -1) {
            printf("#   accepted: %s\n", bad[i]);
            CHECK(0);
        }
    /* a raw NUL inside a string is a control byte */
    CHECK_EQ_INT(uj_object("{\"a\":\"x\0y\"}", 10, m, 4), -1);
}

TEST(scanner_depth_is_bounded)
{
    char deep[200];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4), n += 4;
    for (int i = 0; i < UJ_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < UJ_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    struct uj_member m[2];
    CHECK_EQ_INT(uj_object(deep, n, m, 2), -1);   /* the object is level 1: 33 levels */
    /* one level less is fine */
    char ok[200];
    size_t k = 0;
    ok[k++] = '{';
    memcpy(ok + k, "\"a\":", 4), k += 4;
    for (int i = 0; i < UJ_MAX_DEPTH - 1; i++)
        ok[k++] = '[';
    for (int i = 0; i < UJ_MAX_DEPTH - 1; i++)
        ok[k++] = ']';
    ok[k++] = '}';
    CHECK_EQ_INT(uj_object(ok, k, m, 2), 1);
}

TEST(scanner_integers_exact)
{
    struct uj_member m[8];
    const char *s = "{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":9223372036854775808,"
                    "\"d\":\"1796400430172630642\",\"e\":1.5,\"f\":1e3,\"g\":\"12x\",\"h\":-0}";
    int n = uj_object(s, strlen(s), m, 8);
    int64_t v = 0;
    CHECK_EQ_INT(n, 8);
    CHECK(uj_int64(uj_find(m, n, "a"), &v) && v == INT64_MAX);
    CHECK(uj_int64(uj_find(m, n, "b"), &v) && v == INT64_MIN);
    CHECK(!uj_int64(uj_find(m, n, "c"), &v));
    CHECK(uj_int64(uj_find(m, n, "d"), &v) && v == T0);
    CHECK(!uj_int64(uj_find(m, n, "e"), &v));
    CHECK(!uj_int64(uj_find(m, n, "f"), &v));
    CHECK(!uj_int64(uj_find(m, n, "g"), &v));
    CHECK(uj_int64(uj_find(m, n, "h"), &v) && v == 0);
}

TEST(scanner_strings_decoded)
{
    struct uj_member m[4];
    const char *s = "{\"a\":\"\\u00e9\\ud83d\\ude00\\n\\/\",\"b\":\"\\ud800x\",\"c\":\"0123456789\"}";
    int n = uj_object(s, strlen(s), m, 4);
    char out[32];
    size_t len = 0;
    CHECK_EQ_INT(n, 3);
    CHECK(uj_string(uj_find(m, n, "a"), out, sizeof out, &len));
    CHECK(len == 8 && memcmp(out, "\xc3\xa9\xf0\x9f\x98\x80\n/", 8) == 0);
    CHECK(uj_string(uj_find(m, n, "b"), out, sizeof out, &len));   /* a lone surrogate: U+FFFD */
    CHECK(len == 4 && memcmp(out, "\xef\xbf\xbdx", 4) == 0);
    CHECK(!uj_string(uj_find(m, n, "c"), out, 9, &len));            /* does not fit */
    CHECK(uj_string(uj_find(m, n, "c"), out, 10, &len) && len == 10);
}

/* ---------------------------------------------------------------- lines into events */

TEST(bpftrace_017_envelope)
{
    struct usdt_event ev = parse("{\"type\": \"printf\", \"data\": \"{\\\"event\\\":\\\"request_start\\\","
                                 "\\\"reqid\\\":\\\"req-5\\\",\\\"timestamp\\\":1796400430172630642}\\n\"}");
    CHECK_EQ_INT(ev.kind, USDT_START);
    CHECK_EQ_STR(reqid(&ev), "req-5");
    CHECK(ev.timestamp == T0);
    ev = parse("{\"type\": \"printf\", \"data\": \"{\\\"event\\\":\\\"request_end\\\",\\\"reqid\\\":\\\"req-5\\\","
               "\\\"start\\\":1796400430172630642,\\\"duration\\\":100000000}\\r\\n\"}");
    CHECK_EQ_INT(ev.kind, USDT_END);
    CHECK(ev.has_start && ev.start == T0 && ev.duration == 100000000);
}

TEST(bare_lines_and_numbers_as_strings)
{
    struct usdt_event ev = parse("{\"event\":\"request_end\",\"reqid\":\"a b\",\"duration\":0}");
    CHECK_EQ_INT(ev.kind, USDT_END);
    CHECK(!ev.has_start && ev.duration == 0);   /* 0 is a duration, not a missing one */
    ev = parse("{\"reqid\":\"r\",\"timestamp\":\"1796400430172630642\",\"event\":\"request_start\"}");
    CHECK_EQ_INT(ev.kind, USDT_START);
    CHECK(ev.timestamp == T0);
}

TEST(integer_ids_exact_to_64_bits)
{
    struct usdt_event ev = parse("{\"event\":\"request_start\",\"reqid\":18446744073709551615,\"timestamp\":5}");
    CHECK_EQ_INT(ev.kind, USDT_START);
    CHECK_EQ_STR(reqid(&ev), "18446744073709551615");
    ev = parse("{\"event\":\"request_start\",\"reqid\":18446744073709551614,\"timestamp\":5}");
    CHECK_EQ_STR(reqid(&ev), "18446744073709551614");
    ev = parse("{\"event\":\"request_start\",\"reqid\":0,\"timestamp\":5}");
    CHECK_EQ_STR(reqid(&ev), "0");
    static const char *bad[] = { "18446744073709551616", "-1", "1.5", "1e3", "99999999999999999999", "-0" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"event\":\"request_start\",\"reqid\":%s,\"timestamp\":5}", bad[i]);
        ev = parse(line);
        CHECK(ev.kind == USDT_BAD && ev.bad == USDT_BAD_REQID);
    }
    ev = parse("{\"event\":\"request_start\",\"reqid\":007,\"timestamp\":5}");   /* not JSON */
    CHECK(ev.kind == USDT_BAD && ev.bad == USDT_BAD_JSON);
}

TEST(bpftrace_messages)
{
    struct usdt_event ev = parse("{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}");
    CHECK(ev.kind == USDT_ATTACHED && ev.count == 2);
    ev = parse("{\"type\": \"attached_probes\", \"count\": 3, \"data\": {}}");   /* 0.24+ */
    CHECK(ev.kind == USDT_ATTACHED && ev.count == 3);
    ev = parse("{\"type\": \"lost_events\", \"data\": {\"events\": 17}}");
    CHECK(ev.kind == USDT_LOST && ev.count == 17);
    ev = parse("{\"type\": \"map\", \"data\": {\"@s\": {\"kdamond.0\": 2, \"swapper/0\": 47}}}");
    CHECK_EQ_INT(ev.kind, USDT_OTHER);
    ev = parse("{\"type\": \"hist\", \"data\": {\"@bytes\": [{\"min\": 512, \"max\": 1023, \"count\": 4}]}}");
    CHECK_EQ_INT(ev.kind, USDT_OTHER);
    ev = parse("{\"type\": \"tseries\", \"data\": {}}");   /* a type from a later version */
    CHECK_EQ_INT(ev.kind, USDT_OTHER);
    ev = parse("{\"type\": \"helper_error\", \"helper\": \"probe_read\", \"retcode\": -14, \"line\": 1, \"col\": 2}");
    CHECK_EQ_INT(ev.kind, USDT_NOTE);
    ev = parse("{\"type\": \"errorf\", \"msg\": \"bad \\\"x\\\"\", \"line\": 1}");
    CHECK(ev.kind == USDT_NOTE && ev.text_len == 7 && memcmp(ev.text, "bad \"x\"", 7) == 0);
    ev = parse("{\"type\": \"printf\", \"data\": \"hi\\n\"}");
    CHECK(ev.kind == USDT_TEXT && ev.text_len == 2 && memcmp(ev.text, "hi", 2) == 0);
    CHECK_EQ_INT(parse("").kind, USDT_BLANK);
    CHECK_EQ_INT(parse(" \t\r").kind, USDT_BLANK);
}

TEST(bad_lines_say_why)
{
    static const struct { const char *line; enum usdt_bad why; } cases[] = {
        { "not json", USDT_BAD_JSON },
        { "{\"type\": \"printf\", \"data\": \"{\\\"a\\\"\\n\"}", USDT_BAD_EVENT_JSON },
        { "{\"type\": \"printf\", \"data\": 5}", USDT_BAD_SHAPE },
        { "{\"type\": \"printf\"}", USDT_BAD_SHAPE },
        { "{\"hello\": 1}", USDT_BAD_SHAPE },
        { "{\"type\": \"printf\", \"data\": \"{\\\"x\\\":1}\"}", USDT_BAD_SHAPE },
        { "{\"event\":\"request_middle\",\"reqid\":\"r\",\"timestamp\":1}", USDT_BAD_EVENT },
        { "{\"event\":5,\"reqid\":\"r\",\"timestamp\":1}", USDT_BAD_EVENT },
        { "{\"event\":\"request_start\",\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":\"\",\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":true,\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":\"\\u0000\",\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":\"\xff\",\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":\"\xc0\xaf\",\"timestamp\":1}", USDT_BAD_REQID },
        { "{\"event\":\"request_start\",\"reqid\":\"r\"}", USDT_BAD_TIME },
        { "{\"event\":\"request_start\",\"reqid\":\"r\",\"timestamp\":0}", USDT_BAD_TIME },
        { "{\"event\":\"request_start\",\"reqid\":\"r\",\"timestamp\":-5}", USDT_BAD_TIME },
        { "{\"event\":\"request_start\",\"reqid\":\"r\",\"timestamp\":1.796400430172630642e18}", USDT_BAD_TIME },
        { "{\"event\":\"request_start\",\"reqid\":\"r\",\"timestamp\":99999999999999999999}", USDT_BAD_TIME },
        { "{\"event\":\"request_end\",\"reqid\":\"r\"}", USDT_BAD_DURATION },
        { "{\"event\":\"request_end\",\"reqid\":\"r\",\"duration\":-1}", USDT_BAD_DURATION },
        { "{\"event\":\"request_end\",\"reqid\":\"r\",\"duration\":\"x\"}", USDT_BAD_DURATION },
        { "{\"event\":\"request_end\",\"reqid\":\"r\",\"duration\":1,\"start\":-3}", USDT_BAD_TIME },
        { "{\"event\":\"request_end\",\"reqid\":\"r\",\"duration\":9223372036854775807,\"start\":2}", USDT_BAD_TIME },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct usdt_event ev = parse(cases[i].line);
        if (ev.kind != USDT_BAD || ev.bad != cases[i].why) {
            printf("#   %s: kind %d bad %d, expected bad %d\n", cases[i].line, ev.kind, ev.bad, cases[i].why);
            CHECK(0);
        }
    }
}

TEST(reqid_length_bound)
{
    char line[512], id[USDT_REQID_MAX + 2];
    memset(id, 'x', sizeof id);
    id[USDT_REQID_MAX] = 0;   /* exactly the limit: kept */
    snprintf(line, sizeof line, "{\"event\":\"request_start\",\"reqid\":\"%s\",\"timestamp\":1}", id);
    struct usdt_event ev = parse(line);
    CHECK(ev.kind == USDT_START && ev.reqid_len == USDT_REQID_MAX);
    id[USDT_REQID_MAX] = 'x';
    id[USDT_REQID_MAX + 1] = 0;
    snprintf(line, sizeof line, "{\"event\":\"request_start\",\"reqid\":\"%s\",\"timestamp\":1}", id);
    ev = parse(line);
    CHECK(ev.kind == USDT_BAD && ev.bad == USDT_BAD_REQID);
}

/* ---------------------------------------------------------------- lines */

TEST(lines_long_ones_skipped_last_one_without_newline)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    char big[300];
    memset(big, 'y', sizeof big);
    CHECK(write(fds[1], "one\n", 4) == 4);
    CHECK(write(fds[1], big, sizeof big) == (ssize_t)sizeof big);
    CHECK(write(fds[1], "\ntwo\nthree", 10) == 10);
    close(fds[1]);
    struct usdt_lines l;
    CHECK(usdt_lines_init(&l, 256) == 0);
    const char *line;
    size_t len;
    char seen[5][8];
    int n = 0, too_long = 0, r;
    for (int reads = 0; reads < 100; reads++) {   /* a pipe: read until its end */
        CHECK(usdt_lines_read(&l, fds[0]) >= 0);
        while ((r = usdt_lines_next(&l, &line, &len)) != 0) {
            if (r == 2)
                too_long++;
            else if (n < 5)
                snprintf(seen[n++], sizeof seen[0], "%.*s", (int)len, line);
        }
        if (l.eof)
            break;
    }
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(too_long, 1);
    CHECK_EQ_STR(seen[0], "one");
    CHECK_EQ_STR(seen[1], "two");
    CHECK_EQ_STR(seen[2], "three");
    usdt_lines_free(&l);
    close(fds[0]);
}

/* ---------------------------------------------------------------- OTEL_* values */

TEST(traces_url_rules)
{
    static const struct { const char *base, *traces, *want; } cases[] = {
        { NULL, NULL, "http://127.0.0.1:4318/v1/traces" },
        { "", "", "http://127.0.0.1:4318/v1/traces" },
        { "http://c:4318", NULL, "http://c:4318/v1/traces" },
        { "http://c:4318/", NULL, "http://c:4318/v1/traces" },
        { "http://c:4318/my/", NULL, "http://c:4318/my/v1/traces" },
        { "https://c/my", NULL, "https://c/my/v1/traces" },
        { "otel-collector:4318", NULL, "http://otel-collector:4318/v1/traces" },
        { "http://ignored:1", "http://t:9/custom", "http://t:9/custom" },
        { NULL, "http://t:9", "http://t:9/" },
        { NULL, "t:9/x", "http://t:9/x" },
    };
    char url[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(usdt_traces_url(cases[i].base, cases[i].traces, url, sizeof url), 0);
        CHECK_EQ_STR(url, cases[i].want);
    }
    CHECK_EQ_INT(usdt_traces_url("ftp://x:1", NULL, url, sizeof url), -1);
    CHECK_EQ_INT(usdt_traces_url("http://a b", NULL, url, sizeof url), -1);
    CHECK_EQ_INT(usdt_traces_url("http://", NULL, url, sizeof url), -1);
    CHECK_EQ_INT(usdt_traces_url("http://x:1", NULL, url, 10), -1);
}

TEST(key_value_lists)
{
    struct usdt_kv kv[3];
    unsigned bad = 0;
    int n = usdt_kv_parse(" api-key = s%20e%2Ccret ,x-tenant=a=b,, novalue ,=v,bad key=1,k=%0d%0aX: y", kv, 3, &bad);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(bad, 4);   /* novalue, =v, "bad key", a CR LF after decoding */
    CHECK_EQ_STR(kv[0].key, "api-key");
    CHECK_EQ_STR(kv[0].value, "s e,cret");
    CHECK_EQ_STR(kv[1].key, "x-tenant");
    CHECK_EQ_STR(kv[1].value, "a=b");
    usdt_kv_free(kv, (size_t)n);
    n = usdt_kv_parse("a=1,b=2,c=3,d=4,e=%zz", kv, 3, &bad);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(bad, 2);   /* past the maximum */
    usdt_kv_free(kv, (size_t)n);
    CHECK_EQ_INT(usdt_kv_parse(NULL, kv, 3, &bad), 0);
    CHECK_EQ_INT(usdt_kv_parse("service.name=%e2%9c%93", kv, 3, &bad), 1);
    CHECK_EQ_STR(kv[0].value, "\xe2\x9c\x93");
    usdt_kv_free(kv, 1);
}

int main(void)
{
    RUN(scanner_members_and_nesting);
    RUN(scanner_refuses_what_is_not_one_object);
    RUN(scanner_depth_is_bounded);
    RUN(scanner_integers_exact);
    RUN(scanner_strings_decoded);
    RUN(bpftrace_017_envelope);
    RUN(bare_lines_and_numbers_as_strings);
    RUN(integer_ids_exact_to_64_bits);
    RUN(bpftrace_messages);
    RUN(bad_lines_say_why);
    RUN(reqid_length_bound);
    RUN(lines_long_ones_skipped_last_one_without_newline);
    RUN(traces_url_rules);
    RUN(key_value_lists);
    usdt_parser_free(&parser);
    return check_done();
}
