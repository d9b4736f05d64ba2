/*
 * test_stdout_sink.c - the stdout sink driven through its vtable, as the decoder drives it,
 * on views built by hand; what it writes to a file is compared with expected text written by
 * hand from the grammar (docs/output.md), not produced by the code under test.
 * Covers the TEXT grammar (every line kind, escaping, fixes over the Go output), FOLDED
 * (order, merging, weights), streaming past max_buffer, aborts and write failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sinks/stdout/stdout.h"

#define CALL(s, fn, ...) do { if ((s)->type->fn) (s)->type->fn((s), __VA_ARGS__); } while (0)

static lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

/* ---- building views ---- */

static struct lb_attr a_str(const char *k, const char *v)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = LB_VALUE_STRING, .u.str = S(v) } };
}

static struct lb_attr a_raw(const char *k, enum lb_value_kind kind, const char *p, size_t n)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = kind, .u.str = { p, n } } };
}

static struct lb_frame sym(const char *type, const char *fn, const char *file, int64_t line, int64_t col)
{
    return (struct lb_frame){ .type = S(type), .symbolized = true, .function = S(fn),
                              .file = S(file), .line = line, .column = col, .line_count = 1 };
}

/* mapping NULL = the location has no mapping; bid "" = the mapping has no build id. */
static struct lb_frame unsym(const char *type, uint64_t addr, const char *mapping,
                             const char *kind, const char *bid)
{
    return (struct lb_frame){ .type = S(type), .address = addr, .has_mapping = mapping != NULL,
                              .mapping_file = S(mapping ? mapping : ""), .build_id = S(bid),
                              .build_id_kind = S(kind) };
}

/* ---- capturing what the sink writes ---- */

struct capture {
    FILE *f;
    int fd;
};

static struct capture capture_open(void)
{
    struct capture c;
    c.f = tmpfile();
    c.fd = c.f ? fileno(c.f) : -1;
    return c;
}

/* Everything written so far, NUL-terminated; the caller frees it. */
static char *captured(const struct capture *c)
{
    struct stat st;
    if (fstat(c->fd, &st) != 0)
        return strdup("<fstat failed>");
    char *s = malloc((size_t)st.st_size + 1);
    ssize_t n = pread(c->fd, s, (size_t)st.st_size, 0);
    s[n < 0 ? 0 : n] = '\0';
    return s;
}

/* Compares whole outputs; on a difference prints the first differing line of each. */
static void check_text(const char *got, const char *want, int line)
{
    if (strcmp(got, want) == 0)
        return;
    check_current_failed = 1;
    int ln = 1;
    while (*got && *got == *want) {
        if (*got == '\n')
            ln++;
        got++, want++;
    }
    while (ln > 1 && got[-1] != '\n')
        got--, want--;
    printf("#   line %d of the test: output differs at output line %d\n", line, ln);
    printf("#   got:  %.*s\n", (int)strcspn(got, "\n"), got);
    printf("#   want: %.*s\n", (int)strcspn(want, "\n"), want);
}
#define CHECK_TEXT(got, want) check_text((got), (want), __LINE__)

/* No layout: the "  Layout:" line is covered by the golden file of test/e2e/decode_fixtures.py. */
static const struct lb_request REQ = { "grpc", "127.0.0.1:5000", NULL, 0, 0, 0, 1 };

static struct sink open_sink(enum stdout_format format, int fd, size_t max_buffer)
{
    struct sink s = { 0 };
    struct stdout_sink_options o = { format, fd, max_buffer };
    CHECK_EQ_INT(stdout_sink_open(&s, &o), 0);
    CHECK(s.type && s.type->name && strcmp(s.type->name, "stdout") == 0);
    return s;
}

/* Most tests: a sink writing into a capture. */
struct rig {
    struct capture c;
    struct sink s;
};

static struct rig rig_open(enum stdout_format format, size_t max_buffer)
{
    struct rig r;
    r.c = capture_open();
    r.s = open_sink(format, r.c.fd, max_buffer);
    return r;
}

static void rig_close(struct rig *r)
{
    CALL(&r->s, close, 0);
    fclose(r->c.f);
}

/* Ends the request, which must succeed. */
static void end_request_ok(struct sink *s)
{
    char why[64];
    CHECK_EQ_INT(s->type->request_end(s, &REQ, why, sizeof why), 0);
}

/* Everything written so far is `want` (compared as CHECK_TEXT does). */
static void check_captured(const struct capture *c, const char *want, int line)
{
    char *got = captured(c);
    check_text(got, want, line);
    free(got);
}
#define CHECK_CAPTURED(c, want) check_captured((c), (want), __LINE__)

/* Ends the request (which must succeed) and closes the rig; what was written, to be freed. */
static char *rig_end(struct rig *g)
{
    end_request_ok(&g->s);
    char *got = captured(&g->c);
    rig_close(g);
    return got;
}

static void check_nothing_captured(const struct capture *c)
{
    char *got = captured(c);
    CHECK_EQ_STR(got, "");
    free(got);
}

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

/* ---- FOLDED ---- */

static void send_samples(struct sink *s, struct lb_profile *p, struct lb_sample *v, size_t n)
{
    CALL(s, profile_begin, p);
    for (size_t i = 0; i < n; i++) {
        v[i].profile = p;
        CALL(s, sample, &v[i]);
    }
    CALL(s, profile_end, p);
}

/* One resource holding profile `p` (whose resource it is) of the samples in `v`. */
static void send_resource(struct sink *s, struct lb_profile *p, struct lb_sample *v, size_t n)
{
    CALL(s, resource_begin, p->resource);
    send_samples(s, p, v, n);
    CALL(s, resource_end, p->resource);
}

/* A whole request of that one resource, which must succeed. */
static void send_request(struct sink *s, struct lb_profile *p, struct lb_sample *v, size_t n)
{
    CALL(s, request_begin, &REQ);
    send_resource(s, p, v, n);
    end_request_ok(s);
}

TEST(folded_merge_sort_weights)
{
    struct rig g = rig_open(STDOUT_FORMAT_FOLDED, 0);
    static const uint64_t ts2[] = { 10, 20 }, ts1[] = { 30 };
    static const int64_t v5[] = { 5 }, v12[] = { 1, 2 }, v34[] = { 3, 4 }, vm2[] = { -2 };
    struct lb_frame st1[] = { sym("native", "leaf", "", 0, 0), unsym("native", 0x10, "libc.so.6", "", ""),
                              sym("go", "main", "m.go", 1, 0) };
    struct lb_frame st2[] = { unsym("kernel", 0xabc, NULL, "", ""), sym("go", "main", "m.go", 1, 0) };
    struct lb_frame st3[] = { sym("native", "inl", "a.c", 1, 0), sym("native", "outer", "a.c", 2, 0),
                              sym("go", "main", "m.go", 1, 0) };
    st3[0].line_count = st3[1].line_count = 2;
    st3[1].line_index = 1;
    struct lb_frame st5[] = { sym("", "evil\nname;x", "", 0, 0), sym("", "Zed", "", 0, 0) };
    struct lb_frame st6[] = { sym("", "a", "", 0, 0) };
    struct lb_frame st7[] = { sym("", "a !", "", 0, 0) };
    struct lb_frame st8[] = { sym("", "main", "", 0, 0) };

    struct lb_sample pa[] = {
        { .stack_index = 1, .timestamps = ts2, .n_timestamps = 2, .frames = st1, .n_frames = 3 },
        { .stack_index = 2, .values = v5, .n_values = 1, .frames = st2, .n_frames = 2 },
        /* values win over timestamps */
        { .stack_index = 3, .values = v12, .n_values = 2, .timestamps = ts2, .n_timestamps = 2,
          .frames = st3, .n_frames = 3 },
    };
    struct lb_sample pb[] = {
        { .stack_index = 1, .values = v34, .n_values = 2, .frames = st1, .n_frames = 3 },
        { .stack_index = 5, .timestamps = ts1, .n_timestamps = 1, .frames = st5, .n_frames = 2 },
        { .stack_index = 6, .values = v5, .n_values = 1, .frames = st6, .n_frames = 1 },
        { .stack_index = 7, .timestamps = ts1, .n_timestamps = 1, .frames = st7, .n_frames = 1 },
        { .stack_index = 8, .frames = st8, .n_frames = 1 },
        { .stack_index = 2, .values = vm2, .n_values = 1, .frames = st2, .n_frames = 2 },
    };
    struct lb_resource ra = { .request = &REQ }, rb = { .request = &REQ, .index = 1 };
    struct lb_profile p1 = { .resource = &ra }, p2 = { .resource = &rb };

    CALL(&g.s, request_begin, &REQ);
    send_resource(&g.s, &p1, pa, 3);
    send_resource(&g.s, &p2, pb, 6);
    check_nothing_captured(&g.c);    /* nothing before request_end */
    end_request_ok(&g.s);
    CHECK_CAPTURED(&g.c,
                   "Zed;evil\\nname;x 1\n"
                   "a ! 1\n"
                   "a 5\n"
                   "main 0\n"
                   "main;+0xabc 3\n"
                   "main;libc.so.6+0x10;leaf 9\n"
                   "main;outer;inl 3\n");

    /* the table starts empty for the next request */
    CHECK(ftruncate(g.c.fd, 0) == 0 && lseek(g.c.fd, 0, SEEK_SET) == 0);
    struct lb_sample one[] = { { .values = v5, .n_values = 1, .frames = st6, .n_frames = 1 } };
    send_request(&g.s, &p1, one, 1);
    CHECK_CAPTURED(&g.c, "a 5\n");
    rig_close(&g);
}

TEST(folded_abort_forgets_the_request)
{
    struct rig g = rig_open(STDOUT_FORMAT_FOLDED, 1);
    static const int64_t v7[] = { 7 }, v1[] = { 1 };
    struct lb_frame fa[] = { sym("", "aborted", "", 0, 0) };
    struct lb_frame fb[] = { sym("", "b", "", 0, 0), sym("", "a", "", 0, 0) };
    struct lb_sample sa[] = { { .values = v7, .n_values = 1, .frames = fa, .n_frames = 1 },
                              { .values = v7, .n_values = 1, .frames = fb, .n_frames = 2 } };
    struct lb_sample sb[] = { { .values = v1, .n_values = 1, .frames = fb, .n_frames = 2 } };
    struct lb_resource r = { .request = &REQ };
    struct lb_profile p = { .resource = &r };

    CALL(&g.s, request_begin, &REQ);
    CALL(&g.s, resource_begin, &r);
    send_samples(&g.s, &p, sa, 2);
    CALL(&g.s, request_abort, &REQ, "refused");
    check_nothing_captured(&g.c);    /* nothing was out yet, so not even a marker */

    send_request(&g.s, &p, sb, 1);
    CHECK_CAPTURED(&g.c, "a;b 1\n");
    rig_close(&g);
}

/* A request whose stacks and frames repeat, as the decoder marks them (stack_id, location
 * index and line), written by a sink that keeps their text and copies it: the output must be
 * the same as when nothing repeats (every stack and frame new, so each is written out).
 * Stacks are shown once, twice and three times (the text is kept from the second); a frame
 * that claims another's location index but is another frame is written as itself. */
static char *repeated_stacks(enum stdout_format format, bool marked)
{
    struct lb_frame fa = sym("jvm", "void A.a()", "A.java", 3, 0);
    struct lb_frame fb = unsym("native", 0x1234, "libjvm.so", "htlhash", "597c");
    struct lb_frame fc = sym("native", "inl", "c.c", 9, 1), fd = sym("native", "outer", "c.c", 20, 0);
    fc.line_count = fd.line_count = 2;
    fd.line_index = 1;
    struct lb_frame impostor = sym("go", "main.main", "m.go", 1, 0);
    struct lb_frame s1[] = { fa, fb, fc, fd }, s2[] = { fb, fc, fd }, s3[] = { impostor, fa };
    if (marked) {
        s1[0].location_index = s3[1].location_index = 1;
        s1[1].location_index = s2[0].location_index = 2;
        s1[2].location_index = s1[3].location_index = s2[1].location_index = s2[2].location_index = 3;
        s3[0].location_index = 2;   /* not the frame it names: must not be taken for it */
    } else {   /* every frame of every sample a location of its own */
        uint32_t next = 100;
        struct lb_frame *all[] = { &s1[0], &s1[1], &s1[2], &s1[3], &s2[0], &s2[1], &s2[2], &s3[0], &s3[1] };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            all[i]->location_index = next++;
    }
    static const int64_t v1[] = { 1 };
    struct lb_sample v[] = {
        { .stack_id = 1, .values = v1, .n_values = 1, .frames = s1, .n_frames = 4 },
        { .stack_id = 2, .values = v1, .n_values = 1, .frames = s2, .n_frames = 3 },
        { .stack_id = 1, .values = v1, .n_values = 1, .frames = s1, .n_frames = 4 },
        { .stack_id = 3, .values = v1, .n_values = 1, .frames = s3, .n_frames = 2 },
        { .stack_id = 1, .values = v1, .n_values = 1, .frames = s1, .n_frames = 4 },
        { .stack_id = 2, .values = v1, .n_values = 1, .frames = s2, .n_frames = 3 },
        { .stack_id = 4, .values = v1, .n_values = 1, .frames = s1, .n_frames = 0 },
    };
    for (size_t i = 0; !marked && i < sizeof v / sizeof v[0]; i++)
        v[i].stack_id = 0;
    struct lb_resource r = { .request = &REQ };
    struct lb_profile p = { .resource = &r };
    struct rig g = rig_open(format, 0);
    send_request(&g.s, &p, v, sizeof v / sizeof v[0]);
    send_request(&g.s, &p, v, sizeof v / sizeof v[0]);   /* the next request starts afresh */
    char *got = captured(&g.c);
    rig_close(&g);
    return got;
}

TEST(repeated_stacks_and_frames_are_written_the_same)
{
    for (int fmt = 0; fmt < 2; fmt++) {
        enum stdout_format format = fmt ? STDOUT_FORMAT_JSON : STDOUT_FORMAT_TEXT;
        char *kept = repeated_stacks(format, true), *fresh = repeated_stacks(format, false);
        CHECK_TEXT(kept, fresh);
        CHECK(strstr(fresh, fmt ? "\"function\":\"main.main\"" : "Function: main.main, File: m.go") != NULL);
        CHECK(strstr(fresh, fmt ? "\"function\":\"outer\"" : "Function: outer, File: c.c, Line: 20") != NULL);
        free(kept);
        free(fresh);
    }
}

/* Samples as the decoder marks them (stack_id, location indices) with a thread root: a
 * (stack, root) pair met again only adds its weight, two roots with the same text at
 * different places are one line, two stacks with the same names are one line, and the
 * table is empty again for the next request. Expected lines written by hand. */
TEST(folded_by_stack_and_root)
{
    struct capture c = capture_open();
    struct sink s = { 0 };
    struct stdout_sink_options o = { .format = STDOUT_FORMAT_FOLDED, .fd = c.fd,
                                     .folded_root = FOLDED_ROOT_THREAD };
    CHECK_EQ_INT(stdout_sink_open(&s, &o), 0);
    static const int64_t v1[] = { 1 }, v2[] = { 2 }, v7[] = { 7 };
    struct lb_frame leaf = sym("go", "leaf", "l.go", 1, 0), leaf2 = sym("go", "leaf", "l.go", 2, 0);
    struct lb_frame top = sym("go", "main", "m.go", 1, 0);
    leaf.location_index = 1;
    leaf2.location_index = 2;   /* another location, the same name */
    top.location_index = 3;
    struct lb_frame s1[] = { leaf, top }, s2[] = { leaf2, top };
    char w1[] = "worker", w2[] = "worker";   /* the same text at two places */
    struct lb_attr ta[] = { a_str("thread.name", w1) }, tb[] = { a_str("thread.name", w2) },
                   tc[] = { a_str("thread.name", "gc") };
    struct lb_sample v[] = {
        { .stack_id = 1, .values = v1, .n_values = 1, .attrs = { ta, 1 }, .frames = s1, .n_frames = 2 },
        { .stack_id = 1, .values = v2, .n_values = 1, .attrs = { ta, 1 }, .frames = s1, .n_frames = 2 },
        { .stack_id = 1, .values = v1, .n_values = 1, .attrs = { tb, 1 }, .frames = s1, .n_frames = 2 },
        { .stack_id = 2, .values = v7, .n_values = 1, .attrs = { ta, 1 }, .frames = s2, .n_frames = 2 },
        { .stack_id = 1, .values = v1, .n_values = 1, .attrs = { tc, 1 }, .frames = s1, .n_frames = 2 },
        { .stack_id = 1, .values = v2, .n_values = 1, .frames = s1, .n_frames = 2 },
        { .stack_id = 1, .values = v1, .n_values = 1, .attrs = { tc, 1 }, .frames = s1, .n_frames = 2 },
    };
    struct lb_resource r = { .request = &REQ };
    struct lb_profile p = { .resource = &r };
    send_request(&s, &p, v, sizeof v / sizeof v[0]);
    send_request(&s, &p, v + 4, 1);
    CHECK_CAPTURED(&c, "[unknown];main;leaf 2\n"
                       "gc;main;leaf 2\n"
                       "worker;main;leaf 11\n"
                       "gc;main;leaf 1\n");
    CALL(&s, close, 0);
    fclose(c.f);
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
    RUN(folded_merge_sort_weights);
    RUN(folded_abort_forgets_the_request);
    RUN(repeated_stacks_and_frames_are_written_the_same);
    RUN(folded_by_stack_and_root);
    RUN(bad_options_are_refused);
    return check_done();
}
