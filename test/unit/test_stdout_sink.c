/*
 * test_stdout_sink.c - the stdout sink driven through its vtable, as the decoder drives it,
 * on views built by hand; what it writes to a file is compared with expected text written by
 * hand from the grammar (docs/output.md), not produced by the code under test.
 * Covers the TEXT grammar (every line kind, escaping, fixes over the Go output), streaming
 * past max_buffer, aborts and write failures; FOLDED is in test_stdout_folded.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include "stdout_rig.h"

/* ---- the TEXT request: every line kind ---- */

/* ArrayValue ["a", 1, true, "q\"<U+009B>"], encoded by hand: each element is field 1 (0x0a)
 * holding an AnyValue (string_value = 1, bool_value = 2, int_value = 3). */
static const char ARRAY_PB[] = {
    0x0a, 0x03, 0x0a, 0x01, 'a',
    0x0a, 0x02, 0x18, 0x01,
    0x0a, 0x02, 0x10, 0x01,
    0x0a, 0x06, 0x0a, 0x04, 'q', '"', (char)0xc2, (char)0x9b,
};

/* KeyValueList {"k": "v", "n": [2.5, "x\ny"]}: KeyValue = key (1), value (2); the nested
 * array is AnyValue.array_value (5), 2.5 is AnyValue.double_value (4, fixed64). */
static const char KVLIST_PB[] = {
    0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 'v',
    0x0a, 0x19, 0x0a, 0x01, 'n', 0x12, 0x14, 0x2a, 0x12,
        0x0a, 0x09, 0x21, 0, 0, 0, 0, 0, 0, 0x04, 0x40,
        0x0a, 0x05, 0x0a, 0x03, 'x', '\n', 'y',
};

static const char EXPECTED_TEXT[] =
    "--------------- New Resource Profile --------------\n"
    "  service.name: svc\n"
    "  process.pid: 1234\n"
    "  evil\\nkey: a\\x1b[2Jb\n"
    "  flag: true\n"
    "  off: false\n"
    "  ratio: 0.1\n"
    "  third: 0.6666666666666666\n"
    "  neg: -1.5e+300\n"
    "  nan: NaN\n"
    "  blob: dead00\n"
    "  nothing: \n"
    "  arr: [\"a\",1,true,\"q\\\"\\u009b\"]\n"
    "  kv: {\"k\":\"v\",\"n\":[2.5,\"x\\u000ay\"]}\n"
    "------------------- New Profile -------------------\n"
    "  Scope: otel-ebpf v1.2\n"
    "  ProfileID: 000102030405060708090a0b0c0d0e0f\n"
    "  Time: 2025-09-23 04:55:35.51787723 +0000 UTC\n"
    "  Duration: 4.986107396s\n"
    "  PeriodType: [cpu, nanoseconds]\n"
    "  Period: 50000000\n"
    "  Dropped attributes count: 2\n"
    "  SampleType: [samples, count]\n"
    "  profile.kind: cpu\n"
    "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
    "------------------- New Sample --------------------\n"
    "  Timestamp[0]: 1758603335517877230 (2025-09-23 04:55:35.51787723 +0000 UTC)\n"
    "  Timestamp[1]: 1758603336000000000 (2025-09-23 04:55:36 +0000 UTC)\n"
    "  Link: trace_id=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf, span_id=b0b1b2b3b4b5b6b7\n"
    "  thread.name: worker\\x07\n"
    "---------------------------------------------------\n"
    "Instrumentation: kernel, Function: do_syscall_64, File: , Line: 0, Column: 0\n"
    "Instrumentation: native, Function: memcpy_inl, File: src/a.c, Line: 10, Column: 3\n"
    "Instrumentation: native, Function: caller, File: src/a.c, Line: 42, Column: 0\n"
    "Instrumentation: native, Function: , File: , Line: 0, Column: 0, Address: 0x29d64, Mapping: libc.so.6, BuildID: gnu:0123abcd\n"
    "    Mapping: libc.so.6, Start: 0x0, Limit: 0x0, Offset: 0x0\n"
    "Instrumentation: unknown, Function: , File: , Line: 0, Column: 0, Address: 0x0, Mapping: /tmp/x\\x1b, BuildID: \n"
    "    Mapping: /tmp/x\\x1b, Start: 0x0, Limit: 0x0, Offset: 0x0\n"
    "Instrumentation: go, Function: , File: , Line: 0, Column: 0, Address: 0xdeadbeef, Mapping: <unknown>, BuildID: \n"
    "------------------- End Sample --------------------\n"
    "------------------- New Sample --------------------\n"
    "  Value[0]: 3\n"
    "  Value[1]: -1\n"
    "  Value[2]: 5\n"
    "---------------------------------------------------\n"
    "Instrumentation: jvm, Function: void Foo.bar(), File: Foo.java, Line: 7, Column: 0\n"
    "------------------- End Sample --------------------\n"
    "------------------- End Profile -------------------\n"
    "------------------- New Profile -------------------\n"
    "  ProfileID: 00000000000000000000000000000000\n"
    "  Time: 1970-01-01 00:00:00 +0000 UTC\n"
    "  Duration: 0s\n"
    "  PeriodType: [, ]\n"
    "  Period: 0\n"
    "  Dropped attributes count: 0\n"
    "  SampleType: [events, count]\n"
    "------------------- New Sample --------------------\n"
    "---------------------------------------------------\n"
    "------------------- End Sample --------------------\n"
    "------------------- End Profile -------------------\n"
    "-------------- End Resource Profile ---------------\n"
    "\n"
    "--------------- New Resource Profile --------------\n"
    "-------------- End Resource Profile ---------------\n"
    "\n";

/* Sends the request above; `abort_reason` non-NULL aborts it after the first profile instead
 * of ending it. Returns request_end's result (0 after an abort). */
static int send_text_request(struct sink *s, const char *abort_reason, char *why, size_t whylen)
{
    static const char blob[] = { (char)0xde, (char)0xad, 0 };
    struct lb_attr rattrs[] = {
        a_str("service.name", "svc"),
        { .key = S("process.pid"), .value = { .kind = LB_VALUE_INT, .u.integer = 1234 } },
        a_str("evil\nkey", "a\x1b[2Jb"),
        { .key = S("flag"), .value = { .kind = LB_VALUE_BOOL, .u.boolean = true } },
        { .key = S("off"), .value = { .kind = LB_VALUE_BOOL, .u.boolean = false } },
        { .key = S("ratio"), .value = { .kind = LB_VALUE_DOUBLE, .u.dbl = 0.1 } },
        { .key = S("third"), .value = { .kind = LB_VALUE_DOUBLE, .u.dbl = 2.0 / 3.0 } },
        { .key = S("neg"), .value = { .kind = LB_VALUE_DOUBLE, .u.dbl = -1.5e300 } },
        { .key = S("nan"), .value = { .kind = LB_VALUE_DOUBLE, .u.dbl = __builtin_nan("") } },
        a_raw("blob", LB_VALUE_BYTES, blob, sizeof blob),
        { .key = S("nothing"), .value = { .kind = LB_VALUE_EMPTY } },
        a_raw("arr", LB_VALUE_ARRAY, ARRAY_PB, sizeof ARRAY_PB),
        a_raw("kv", LB_VALUE_KVLIST, KVLIST_PB, sizeof KVLIST_PB),
    };
    struct lb_resource res = { .request = &REQ, .attrs = { rattrs, sizeof rattrs / sizeof rattrs[0] } };
    struct lb_scope scope = { .name = S("otel-ebpf"), .version = S("v1.2") };
    static const char pid[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    struct lb_attr pattrs[] = { a_str("profile.kind", "cpu") };
    struct lb_profile prof = {
        .resource = &res, .scope = &scope,
        .sample_type = S("samples"), .sample_unit = S("count"),
        .period_type = S("cpu"), .period_unit = S("nanoseconds"), .period = 50000000,
        .time_unix_nano = 1758603335517877230ull, .duration_nano = 4986107396ull,
        .profile_id = { pid, sizeof pid }, .dropped_attributes_count = 2,
        .attrs = { pattrs, 1 },
    };
    struct lb_frame f0[] = {
        sym("kernel", "do_syscall_64", "", 0, 0),
        sym("native", "memcpy_inl", "src/a.c", 10, 3),
        sym("native", "caller", "src/a.c", 42, 0),
        unsym("native", 0x29d64, "libc.so.6", "gnu", "0123abcd"),
        unsym("", 0, "/tmp/x\x1b", "", ""),
        unsym("go", 0xdeadbeef, NULL, "", ""),
    };
    f0[1].location_index = f0[2].location_index = 5;       /* one location, two lines */
    f0[1].line_count = f0[2].line_count = 2;
    f0[2].line_index = 1;
    static const uint64_t ts[] = { 1758603335517877230ull, 1758603336000000000ull };
    static const char trace[16] = { (char)0xa0, (char)0xa1, (char)0xa2, (char)0xa3, (char)0xa4,
        (char)0xa5, (char)0xa6, (char)0xa7, (char)0xa8, (char)0xa9, (char)0xaa, (char)0xab,
        (char)0xac, (char)0xad, (char)0xae, (char)0xaf };
    static const char span[8] = { (char)0xb0, (char)0xb1, (char)0xb2, (char)0xb3, (char)0xb4,
        (char)0xb5, (char)0xb6, (char)0xb7 };
    struct lb_attr sattrs[] = { a_str("thread.name", "worker\a") };
    struct lb_sample s0 = { .profile = &prof, .timestamps = ts, .n_timestamps = 2,
        .attrs = { sattrs, 1 }, .has_link = true, .trace_id = { trace, 16 },
        .span_id = { span, 8 }, .frames = f0, .n_frames = 6 };
    static const int64_t vals[] = { 3, -1, 5 };
    struct lb_frame f1[] = { sym("jvm", "void Foo.bar()", "Foo.java", 7, 0) };
    struct lb_sample s1 = { .profile = &prof, .index = 1, .values = vals, .n_values = 3,
        .frames = f1, .n_frames = 1 };

    struct lb_scope noscope = { .name = S(""), .version = S("") };
    struct lb_profile prof2 = { .resource = &res, .scope = &noscope, .index = 1,
        .sample_type = S("events"), .sample_unit = S("count") };
    struct lb_sample s2 = { .profile = &prof2 };
    struct lb_resource res2 = { .request = &REQ, .index = 1 };

    CALL(s, request_begin, &REQ);
    CALL(s, resource_begin, &res);
    CALL(s, profile_begin, &prof);
    CALL(s, sample, &s0);
    CALL(s, sample, &s1);
    CALL(s, profile_end, &prof);
    if (abort_reason) {
        CALL(s, request_abort, &REQ, abort_reason);
        return 0;
    }
    CALL(s, profile_begin, &prof2);
    CALL(s, sample, &s2);
    CALL(s, profile_end, &prof2);
    CALL(s, resource_end, &res);
    CALL(s, resource_begin, &res2);
    CALL(s, resource_end, &res2);
    return s->type->request_end(s, &REQ, why, whylen);
}

/* The request above through a fresh sink: its output is EXPECTED_TEXT. */
static void check_text_request(size_t max_buffer, int line)
{
    struct rig r = rig_open(STDOUT_FORMAT_TEXT, max_buffer);
    char why[256] = "";
    CHECK_EQ_INT(send_text_request(&r.s, NULL, why, sizeof why), 0);
    check_captured(&r.c, EXPECTED_TEXT, line);
    rig_close(&r);
}

TEST(text_grammar)
{
    check_text_request(0, __LINE__);
}

/* The Scope line: "name version"; no trailing space without a version; no line without both. */
static char *profile_header(const char *name, const char *version)
{
    struct rig g = rig_open(STDOUT_FORMAT_TEXT, 0);
    struct lb_resource r = { .request = &REQ };
    struct lb_scope sc = { .name = S(name), .version = S(version) };
    struct lb_profile p = { .resource = &r, .scope = &sc, .period = -5, .dropped_attributes_count = 7,
                            .duration_nano = 1500 };
    CALL(&g.s, request_begin, &REQ);
    CALL(&g.s, profile_begin, &p);
    CALL(&g.s, profile_end, &p);
    return rig_end(&g);
}

TEST(text_scope_line)
{
    static const char rest[] =
        "  ProfileID: 00000000000000000000000000000000\n"
        "  Time: 1970-01-01 00:00:00 +0000 UTC\n"
        "  Duration: 1.5\xc2\xb5s\n"
        "  PeriodType: [, ]\n"
        "  Period: -5\n"
        "  Dropped attributes count: 7\n"
        "  SampleType: [, ]\n"
        "------------------- End Profile -------------------\n";
    static const char banner[] = "------------------- New Profile -------------------\n";
    static const struct { const char *name, *version, *scope_line; } cases[] = {
        { "go.opentelemetry.io/ebpf-profiler", "", "  Scope: go.opentelemetry.io/ebpf-profiler\n" },
        { "lib", "1.0\x1b", "  Scope: lib 1.0\\x1b\n" },
        { "", "2.0", "  Scope:  2.0\n" },
        { "", "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[1024];
        char *got = profile_header(cases[i].name, cases[i].version);
        snprintf(want, sizeof want, "%s%s%s", banner, cases[i].scope_line, rest);
        CHECK_TEXT(got, want);
        free(got);
    }
}

/* One resource attribute, rendered: the line after the banner. */
static char *attr_line(struct lb_attr a)
{
    struct rig g = rig_open(STDOUT_FORMAT_TEXT, 0);
    struct lb_resource r = { .request = &REQ, .attrs = { &a, 1 } };
    CALL(&g.s, request_begin, &REQ);
    CALL(&g.s, resource_begin, &r);
    CALL(&g.s, resource_end, &r);
    char *got = rig_end(&g);
    char *line = strchr(got, '\n');
    line = strdup(line ? line + 1 : "");
    free(got);
    char *nl = strchr(line, '\n');
    if (nl)
        nl[1] = '\0';
    return line;
}

/* A malformed array shows what was walked, then "…<why>"; absurd nesting stays bounded. */
TEST(text_value_walk_errors)
{
    static const char bad[] = { 0x0a, 0x03, 0x0a, 0x01, 'a', 0x0a, 0x05, 0x0a };
    char *got = attr_line(a_raw("bad", LB_VALUE_ARRAY, bad, sizeof bad));
    CHECK(strncmp(got, "  bad: [\"a\"\xe2\x80\xa6", 14) == 0);
    CHECK(strlen(got) > 16 && strcmp(got + strlen(got) - 2, "]\n") == 0);
    free(got);

    char nested[4 * 200];   /* [[[[...]]]] 200 deep, built inside out */
    size_t n = 0;
    for (int level = 0; level < 200; level++) {
        char tmp[sizeof nested];
        size_t any = n + 2;   /* AnyValue{array_value (5): ArrayValue} */
        if (n >= 128 - 4)
            break;            /* keep every length a one-byte varint */
        tmp[0] = 0x0a, tmp[1] = (char)any, tmp[2] = 0x2a, tmp[3] = (char)n;
        memcpy(tmp + 4, nested, n);
        n += 4;
        memcpy(nested, tmp, n);
    }
    got = attr_line(a_raw("deep", LB_VALUE_ARRAY, nested, n));
    size_t open = 0, close = 0;
    for (const char *p = got; *p; p++)
        open += *p == '[', close += *p == ']';
    CHECK(open == close && open > 1 && open <= 40);
    CHECK(strstr(got, "\xe2\x80\xa6") != NULL);
    free(got);
}

/* Nothing reaches the fd before request_end: a reader never sees half a request. */
TEST(text_written_whole_at_request_end)
{
    struct rig g = rig_open(STDOUT_FORMAT_TEXT, 0);
    struct lb_resource res = { .request = &REQ };
    CALL(&g.s, request_begin, &REQ);
    CALL(&g.s, resource_begin, &res);
    check_nothing_captured(&g.c);
    CALL(&g.s, resource_end, &res);
    end_request_ok(&g.s);
    CHECK_CAPTURED(&g.c, "--------------- New Resource Profile --------------\n"
                         "-------------- End Resource Profile ---------------\n\n");
    rig_close(&g);
}

/* A tiny max_buffer streams the request out in pieces; the bytes are the same. */
TEST(text_streamed_output_is_identical)
{
    for (size_t max = 1; max <= 4096; max *= 8)
        check_text_request(max, __LINE__);
}

TEST(abort_discards_buffered_output)
{
    struct rig g = rig_open(STDOUT_FORMAT_TEXT, 0);
    char why[256] = "";
    send_text_request(&g.s, "malformed protobuf", why, sizeof why);
    check_nothing_captured(&g.c);
    /* the next request comes out alone, nothing of the aborted one before it */
    CHECK_EQ_INT(send_text_request(&g.s, NULL, why, sizeof why), 0);
    CHECK_CAPTURED(&g.c, EXPECTED_TEXT);
    rig_close(&g);
}

/* Once part of a request is out, an abort leaves a marker line (reason escaped). */
TEST(abort_after_streaming_leaves_a_marker)
{
    struct rig g = rig_open(STDOUT_FORMAT_TEXT, 64);
    char why[256] = "";
    send_text_request(&g.s, "bad\nvarint \x1b[0m", why, sizeof why);
    char *got = captured(&g.c);
    static const char marker[] = "!!! request aborted: bad\\nvarint \\x1b[0m\n";
    size_t n = strlen(got);
    CHECK(n > sizeof marker && strcmp(got + n - (sizeof marker - 1), marker) == 0);
    /* what came before the marker is a prefix of the full request's output */
    CHECK(n > sizeof marker && strncmp(got, EXPECTED_TEXT, 200) == 0);
    CHECK(strstr(got, "End Resource Profile") == NULL);
    free(got);
    rig_close(&g);
}

TEST(empty_request_writes_nothing)
{
    struct capture c = capture_open();
    for (int f = 0; f < 2; f++) {
        struct sink s = open_sink(f ? STDOUT_FORMAT_FOLDED : STDOUT_FORMAT_TEXT, c.fd, 0);
        CALL(&s, request_begin, &REQ);
        end_request_ok(&s);
        CALL(&s, close, 0);
    }
    check_nothing_captured(&c);
    fclose(c.f);
}

/* A reader that went away: request_end fails with the reason instead of pretending. */
TEST(write_error_fails_request_end)
{
    int p[2];
    CHECK(pipe(p) == 0);
    close(p[0]);
    struct sink s = open_sink(STDOUT_FORMAT_TEXT, p[1], 0);
    char why[256] = "";
    CHECK_EQ_INT(send_text_request(&s, NULL, why, sizeof why), -1);
    CHECK(strstr(why, "Broken pipe") != NULL);
    /* and the sink still works for the next request (which fails again, same reason) */
    why[0] = '\0';
    CHECK_EQ_INT(send_text_request(&s, NULL, why, sizeof why), -1);
    CHECK(strstr(why, "Broken pipe") != NULL);
    CALL(&s, close, 0);
    close(p[1]);
}

struct drain {
    int fd;
    size_t total;
    char *data;
};

static void *drain_pipe(void *arg)
{
    struct drain *d = arg;
    usleep(100 * 1000);   /* let the writer fill the pipe and hit EAGAIN */
    size_t cap = 1 << 16;
    d->data = malloc(cap);
    for (;;) {
        if (d->total == cap)
            d->data = realloc(d->data, cap *= 2);
        ssize_t n = read(d->fd, d->data + d->total, cap - d->total);
        if (n <= 0)
            break;
        d->total += (size_t)n;
    }
    return NULL;
}

/* A non-blocking fd that fills up: the sink waits for POLLOUT and loses nothing. */
TEST(nonblocking_fd_is_waited_for)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
    struct drain d = { p[0], 0, NULL };
    pthread_t th;
    CHECK(pthread_create(&th, NULL, drain_pipe, &d) == 0);
    struct sink s = open_sink(STDOUT_FORMAT_TEXT, p[1], 0);
    char why[256] = "";
    enum { ROUNDS = 60 };   /* ~200 KB, more than a pipe holds */
    for (int i = 0; i < ROUNDS; i++)
        CHECK_EQ_INT(send_text_request(&s, NULL, why, sizeof why), 0);
    CALL(&s, close, 0);
    close(p[1]);
    pthread_join(th, NULL);
    size_t one = strlen(EXPECTED_TEXT);
    CHECK_EQ_INT(d.total, one * ROUNDS);
    int same = 1;
    for (int i = 0; i < ROUNDS && d.total == one * ROUNDS; i++)
        same &= memcmp(d.data + (size_t)i * one, EXPECTED_TEXT, one) == 0;
    CHECK(same);
    free(d.data);
    close(p[0]);
}

TEST(bad_options_are_refused)
{
    struct sink s = { 0 };
    struct stdout_sink_options bad_fd = { STDOUT_FORMAT_TEXT, -1, 0 };
    struct stdout_sink_options bad_format = { (enum stdout_format)7, 1, 0 };
    CHECK_EQ_INT(stdout_sink_open(&s, &bad_fd), -1);
    CHECK_EQ_INT(stdout_sink_open(&s, &bad_format), -1);
    CHECK_EQ_INT(stdout_sink_open(&s, NULL), -1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);   /* as the commands do (cmd/): EPIPE, not death */
    RUN(text_grammar);
    RUN(text_scope_line);
    RUN(text_value_walk_errors);
    RUN(text_written_whole_at_request_end);
    RUN(text_streamed_output_is_identical);
    RUN(abort_discards_buffered_output);
    RUN(abort_after_streaming_leaves_a_marker);
    RUN(empty_request_writes_nothing);
    RUN(write_error_fails_request_end);
    RUN(nonblocking_fd_is_waited_for);
    RUN(bad_options_are_refused);
    return check_done();
}
