/*
 * test_filter.c - the filter stage driven as the decoder drives it, on hand-built views, in
 * front of a recording sink. What the inner sink receives is compared with event sequences
 * written by hand from sinks/filter.h: which resources, profiles and samples pass, that
 * nothing empty is forwarded (no begin/end pair without a sample), that frames are filtered
 * in a copy and the decoder's array is left alone, and that options are checked. Also the
 * counts /metrics shows: what each filter dropped (filter_stats), and the fan-out's per-sink
 * refusals and commits, and its side-effect-free readiness question (sinks/sink.h).
 */
#include <stdlib.h>

#include "check.h"
#include "lib/buf.h"
#include "sinks/filter.h"

static lb_str S(const char *s) { return (lb_str){ s, strlen(s) }; }

/* ---- a sink that writes down what it receives ---- */

struct recorder {
    struct buf log;
    const struct lb_frame *last_frames;   /* the array the last sample came with */
    int admits, closes, aborts;
    bool refuse;                          /* admit (and ready) say no */
    bool fail;                            /* request_end fails */
};

static void rec(struct recorder *r, const char *s)
{
    buf_append(&r->log, s, strlen(s));
}

static void rec_str(struct recorder *r, lb_str s)
{
    buf_append(&r->log, s.p, s.n);
}

static struct recorder *R(struct sink *s) { return s->ctx; }

static int r_admit(struct sink *s, char *why, size_t whylen)
{
    R(s)->admits++;
    if (R(s)->refuse)
        snprintf(why, whylen, "full");
    return R(s)->refuse ? -1 : 0;
}
static void r_req_begin(struct sink *s, const struct lb_request *r) { (void)r; rec(R(s), "{"); }
static void r_res_begin(struct sink *s, const struct lb_resource *r)
{
    const struct lb_attr *a = lb_attrs_find(r->attrs, "name");
    rec(R(s), " R(");
    if (a)
        rec_str(R(s), a->value.u.str);
    rec(R(s), ")");
}
static void r_prof_begin(struct sink *s, const struct lb_profile *p)
{
    rec(R(s), " P(");
    rec_str(R(s), p->sample_type);
    rec(R(s), ")");
}
/* " s<index>[f1,f2]": the sample's index and its frames' function names. */
static void r_sample(struct sink *s, const struct lb_sample *smp)
{
    char t[32];
    snprintf(t, sizeof t, " s%u[", smp->index);
    rec(R(s), t);
    for (size_t i = 0; i < smp->n_frames; i++) {
        if (i)
            rec(R(s), ",");
        rec_str(R(s), smp->frames[i].function);
    }
    rec(R(s), "]");
    R(s)->last_frames = smp->frames;
}
static void r_prof_end(struct sink *s, const struct lb_profile *p) { (void)p; rec(R(s), " p"); }
static void r_res_end(struct sink *s, const struct lb_resource *r) { (void)r; rec(R(s), " r"); }
static int r_req_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    (void)r;
    rec(R(s), " }");
    if (R(s)->fail)
        snprintf(why, whylen, "disk");
    return R(s)->fail ? -1 : 0;
}
static int r_ready(const struct sink *s, char *why, size_t whylen)
{
    const struct recorder *r = s->ctx;
    if (r->refuse)
        snprintf(why, whylen, "not ready");
    return r->refuse ? -1 : 0;
}
static void r_abort(struct sink *s, const struct lb_request *r, const char *reason)
{
    (void)r;
    R(s)->aborts++;
    rec(R(s), " ABORT(");
    rec(R(s), reason);
    rec(R(s), ")");
}
static void r_close(struct sink *s, int deadline_ms) { (void)deadline_ms; R(s)->closes++; }

static const struct sink_type recorder_type = {
    .name = "recorder", .admit = r_admit, .ready = r_ready, .request_begin = r_req_begin,
    .resource_begin = r_res_begin, .profile_begin = r_prof_begin, .sample = r_sample,
    .profile_end = r_prof_end, .resource_end = r_res_end, .request_end = r_req_end,
    .request_abort = r_abort, .close = r_close,
};

/* The recorder behind a filter: `outer` is what the decoder would drive. */
struct rig {
    struct recorder rec;
    struct sink inner_sink, outer;
    struct sink_set inner;
};

static void rig_open(struct rig *g, const struct filter_config *cfg)
{
    memset(g, 0, sizeof *g);
    buf_init(&g->rec.log, 1 << 20);
    g->inner_sink = (struct sink){ &recorder_type, &g->rec };
    g->inner = (struct sink_set){ &g->inner_sink, 1 };
    CHECK_EQ_INT(filter_open(&g->outer, cfg, &g->inner), 0);
}

/* What the recorder saw, as a C string (the log is reset). */
static const char *rig_log(struct rig *g)
{
    static char t[4096];
    snprintf(t, sizeof t, "%.*s", (int)g->rec.log.len, g->rec.log.data ? (char *)g->rec.log.data : "");
    buf_reset(&g->rec.log);
    return t;
}

static void rig_close(struct rig *g)
{
    g->outer.type->close(&g->outer, 0);
    CHECK_EQ_INT(g->rec.closes, 1);   /* the stage closes what it wraps */
    buf_free(&g->rec.log);
}

/* ---- a request to send: resources of profiles of samples ---- */

static const struct lb_request REQ = { "grpc", "127.0.0.1:1", "v1.11", 0, 0, 0, 7 };

/* A rig with a request begun: the sink to drive. */
static struct sink *rig_begin(struct rig *g, const struct filter_config *cfg)
{
    rig_open(g, cfg);
    g->outer.type->request_begin(&g->outer, &REQ);
    return &g->outer;
}

static struct lb_frame F(const char *type, const char *fn)
{
    return (struct lb_frame){ .type = S(type), .symbolized = true, .function = S(fn), .line_count = 1 };
}

static struct lb_attr A(const char *k, const char *v)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = LB_VALUE_STRING, .u.str = S(v) } };
}

static struct lb_attr AI(const char *k, int64_t v)
{
    return (struct lb_attr){ .key = S(k), .value = { .kind = LB_VALUE_INT, .u.integer = v } };
}

#define ATTRS(arr) ((struct lb_attrs){ (arr), sizeof(arr) / sizeof((arr)[0]) })
#define NO_ATTRS ((struct lb_attrs){ NULL, 0 })

/* Drives one profile of `n` samples, each with the same frames and attributes. */
static void send_profile(struct sink *s, const struct lb_resource *r, const char *type,
                         const struct lb_frame *frames, size_t n_frames, struct lb_attrs sattrs,
                         unsigned n)
{
    static const uint64_t ts[] = { 1 };
    struct lb_profile p = { .resource = r, .sample_type = S(type), .sample_unit = S("count") };
    s->type->profile_begin(s, &p);
    for (unsigned i = 0; i < n; i++) {
        struct lb_sample smp = { .profile = &p, .index = i, .timestamps = ts, .n_timestamps = 1,
                                 .attrs = sattrs, .frames = frames, .n_frames = n_frames };
        s->type->sample(s, &smp);
    }
    s->type->profile_end(s, &p);
}

/* A resource holding one such profile. */
static void send_resource(struct sink *s, const struct lb_resource *r, const char *type,
                          const struct lb_frame *frames, size_t n_frames, struct lb_attrs sattrs,
                          unsigned n)
{
    s->type->resource_begin(s, r);
    send_profile(s, r, type, frames, n_frames, sattrs, n);
    s->type->resource_end(s, r);
}

/* Ends the request, which must succeed; the recorder must have seen `want`. Closes the rig. */
static void rig_finish(struct rig *g, const char *want)
{
    char why[64];
    CHECK_EQ_INT(g->outer.type->request_end(&g->outer, &REQ, why, sizeof why), 0);
    CHECK_EQ_STR(rig_log(g), want);
    rig_close(g);
}

/* ---- tests ---- */

TEST(config_active_and_check)
{
    struct filter_config c = { 0 };
    char err[256] = "";
    CHECK(!filter_config_active(&c));
    CHECK_EQ_INT(filter_config_check(&c, err, sizeof err), 0);
    c.min_frames = 1;
    CHECK(filter_config_active(&c));

    struct filter_config bad1 = { .resource = { "service.name" }, .n_resource = 1 };
    CHECK_EQ_INT(filter_config_check(&bad1, err, sizeof err), -1);
    CHECK(strstr(err, "--resource 'service.name' is not key=value") != NULL);
    struct filter_config bad2 = { .resource = { "=x" }, .n_resource = 1 };
    CHECK_EQ_INT(filter_config_check(&bad2, err, sizeof err), -1);
    struct filter_config bad3 = { .sample_types = { " , ," }, .n_sample_types = 1 };
    CHECK_EQ_INT(filter_config_check(&bad3, err, sizeof err), -1);
    CHECK(strstr(err, "names no sample type") != NULL);
    struct filter_config bad4 = { .frame_types = { "" }, .n_frame_types = 1 };
    CHECK_EQ_INT(filter_config_check(&bad4, err, sizeof err), -1);
    struct filter_config bad5 = { .container_id = "" };
    CHECK_EQ_INT(filter_config_check(&bad5, err, sizeof err), -1);
    struct sink s;
    struct sink_set none = { NULL, 0 };
    CHECK_EQ_INT(filter_open(&s, &bad1, &none), -1);

    struct filter_config ok = { .resource = { "k=" , "a=b=c" }, .n_resource = 2 };
    CHECK_EQ_INT(filter_config_check(&ok, err, sizeof err), 0);
}

/* --sample-types, trimmed, several lists adding up; a resource all of whose profiles are
 * filtered out produces nothing, not an empty block. */
TEST(sample_types_and_no_empty_blocks)
{
    struct filter_config c = { .sample_types = { " off_cpu ,", "events" }, .n_sample_types = 2 };
    struct lb_frame fr[] = { F("native", "main") };
    struct lb_attr ra1[] = { A("name", "one") }, ra2[] = { A("name", "two") };
    struct lb_resource r1 = { .request = &REQ, .attrs = ATTRS(ra1) };
    struct lb_resource r2 = { .request = &REQ, .index = 1, .attrs = ATTRS(ra2) };
    struct rig g;
    struct sink *s = rig_begin(&g, &c);
    send_resource(s, &r1, "samples", fr, 1, NO_ATTRS, 2);
    s->type->resource_begin(s, &r2);
    send_profile(s, &r2, "samples", fr, 1, NO_ATTRS, 1);
    send_profile(s, &r2, "off_cpu", fr, 1, NO_ATTRS, 2);
    send_profile(s, &r2, "Off_cpu", fr, 1, NO_ATTRS, 1);     /* exact, case-sensitive */
    send_profile(s, &r2, "events", fr, 1, NO_ATTRS, 1);
    s->type->resource_end(s, &r2);
    rig_finish(&g, "{ R(two) P(off_cpu) s0[main] s1[main] p P(events) s0[main] p r }");
}

/* --container-id and --require-container-id on the resource; an empty container.id counts as
 * none. */
TEST(container_filters)
{
    struct lb_frame fr[] = { F("native", "f") };
    struct lb_attr ra[] = { A("name", "a"), A("container.id", "c1") };
    struct lb_attr rb[] = { A("name", "b"), A("container.id", "c2") };
    struct lb_attr rc[] = { A("name", "c"), A("container.id", "") };
    struct lb_attr rd[] = { A("name", "d") };
    struct lb_resource res[] = { { .attrs = ATTRS(ra) }, { .attrs = ATTRS(rb) },
                                 { .attrs = ATTRS(rc) }, { .attrs = ATTRS(rd) } };
    struct filter_config by_id = { .container_id = "c2" };
    struct filter_config required = { .require_container_id = true };
    const struct { const struct filter_config *cfg; const char *want; } cases[] = {
        { &by_id, "{ R(b) P(samples) s0[f] p r }" },
        { &required, "{ R(a) P(samples) s0[f] p r R(b) P(samples) s0[f] p r }" },
    };
    for (size_t k = 0; k < 2; k++) {
        struct rig g;
        struct sink *s = rig_begin(&g, cases[k].cfg);
        for (size_t i = 0; i < 4; i++)
            send_resource(s, &res[i], "samples", fr, 1, NO_ATTRS, 1);
        rig_finish(&g, cases[k].want);
    }
}

/* --resource: all must match; ints by decimal form, booleans as true/false; a key the resource
 * lacks is looked up on each sample (old profilers put process.* there), but a key the
 * resource has decides for all its samples. */
TEST(resource_matching)
{
    struct filter_config c = { .resource = { "process.pid=42", "process.executable.name=java" },
                               .n_resource = 2 };
    struct lb_frame fr[] = { F("jvm", "run") };
    struct lb_attr r1[] = { A("name", "pid42"), AI("process.pid", 42) };
    struct lb_attr r2[] = { A("name", "pid042"), A("process.pid", "042") };
    struct lb_attr r3[] = { A("name", "pid42-python"), AI("process.pid", 42),
                            A("process.executable.name", "python") };
    struct lb_attr java[] = { A("process.executable.name", "java") };
    struct lb_attr node[] = { A("process.executable.name", "node") };
    struct lb_resource res1 = { .attrs = ATTRS(r1) }, res2 = { .attrs = ATTRS(r2) },
                       res3 = { .attrs = ATTRS(r3) };
    struct rig g;
    struct sink *s = rig_begin(&g, &c);
    s->type->resource_begin(s, &res1);
    send_profile(s, &res1, "samples", fr, 1, ATTRS(node), 1);   /* sample says node: dropped */
    send_profile(s, &res1, "samples", fr, 1, ATTRS(java), 2);   /* sample says java: kept */
    send_profile(s, &res1, "samples", fr, 1, NO_ATTRS, 1);      /* nowhere: dropped */
    s->type->resource_end(s, &res1);
    send_resource(s, &res2, "samples", fr, 1, ATTRS(java), 1);   /* "042" is not 42 */
    send_resource(s, &res3, "samples", fr, 1, ATTRS(java), 1);   /* the resource decides */
    rig_finish(&g, "{ R(pid42) P(samples) s0[run] s1[run] p r }");

    struct filter_config b = { .resource = { "sampled=true" }, .n_resource = 1 };
    struct lb_attr rb[] = { A("name", "flag"),
                            { .key = S("sampled"), .value = { .kind = LB_VALUE_BOOL, .u.boolean = true } } };
    struct lb_resource resb = { .attrs = ATTRS(rb) };
    s = rig_begin(&g, &b);
    send_resource(s, &resb, "samples", fr, 1, NO_ATTRS, 1);
    rig_finish(&g, "{ R(flag) P(samples) s0[run] p r }");
}

/* --frame-types keeps only those frames, in a copy: the caller's array is unchanged, and a
 * sample whose frames all pass is forwarded as it came. "unknown" matches a frame without a
 * type. A sample left with no frame is dropped, and so is its profile if it was the only one. */
TEST(frame_types_copy)
{
    struct filter_config c = { .frame_types = { "go,unknown" }, .n_frame_types = 1 };
    struct lb_frame mixed[] = { F("kernel", "k1"), F("go", "g1"), F("native", "n1"), F("", "x1"),
                                F("go", "g2") };
    struct lb_frame saved[5];
    memcpy(saved, mixed, sizeof saved);
    struct lb_frame all_go[] = { F("go", "a"), F("go", "b") };
    struct lb_frame none[] = { F("kernel", "k"), F("jvm", "j") };
    struct lb_attr ra[] = { A("name", "r") };
    struct lb_resource r = { .attrs = ATTRS(ra) };
    struct rig g;
    struct sink *s = rig_begin(&g, &c);
    s->type->resource_begin(s, &r);
    send_profile(s, &r, "samples", mixed, 5, NO_ATTRS, 1);
    CHECK(g.rec.last_frames != mixed);
    CHECK(memcmp(saved, mixed, sizeof saved) == 0);
    send_profile(s, &r, "events", all_go, 2, NO_ATTRS, 1);
    CHECK(g.rec.last_frames == all_go);
    send_profile(s, &r, "off_cpu", none, 2, NO_ATTRS, 1);
    s->type->resource_end(s, &r);
    rig_finish(&g, "{ R(r) P(samples) s0[g1,x1,g2] p P(events) s0[a,b] p r }");
}

/* --min-frames counts the frames the sinks would get (after --frame-types). */
TEST(min_frames)
{
    struct filter_config c = { .min_frames = 2, .frame_types = { "go" }, .n_frame_types = 1 };
    struct lb_frame three[] = { F("go", "a"), F("native", "b"), F("go", "c") };
    struct lb_frame two_one_go[] = { F("go", "a"), F("native", "b") };
    struct lb_attr ra[] = { A("name", "r") };
    struct lb_resource r = { .attrs = ATTRS(ra) };
    struct filter_config m = { .min_frames = 3 };
    const struct { const struct filter_config *cfg; const char *want; } cases[] = {
        { &c, "{ R(r) P(samples) s0[a,c] p r }" },
        { &m, "{ R(r) P(samples) s0[a,b,c] p r }" },
    };
    for (size_t k = 0; k < 2; k++) {
        struct rig g;
        struct sink *s = rig_begin(&g, cases[k].cfg);
        s->type->resource_begin(s, &r);
        send_profile(s, &r, "samples", two_one_go, 2, NO_ATTRS, 1);
        send_profile(s, &r, "samples", three, 3, NO_ATTRS, 1);
        s->type->resource_end(s, &r);
        rig_finish(&g, cases[k].want);
    }
}

/* admit is asked of the inner sinks; an abort mid-resource reaches them and the next request
 * starts clean (its resource is opened again). */
TEST(admit_and_abort)
{
    struct filter_config c = { .min_frames = 1 };
    struct lb_frame fr[] = { F("native", "f") };
    struct lb_attr ra[] = { A("name", "r") };
    struct lb_resource r = { .attrs = ATTRS(ra) };
    struct lb_profile p = { .resource = &r, .sample_type = S("samples") };
    struct lb_sample smp = { .profile = &p, .frames = fr, .n_frames = 1 };
    struct rig g;
    char why[64] = "";
    rig_open(&g, &c);
    struct sink *s = &g.outer;
    CHECK_EQ_INT(s->type->admit(s, why, sizeof why), 0);
    g.rec.refuse = true;
    CHECK_EQ_INT(s->type->admit(s, why, sizeof why), -1);
    CHECK_EQ_STR(why, "full");
    CHECK_EQ_INT(g.rec.admits, 2);

    s->type->request_begin(s, &REQ);
    s->type->resource_begin(s, &r);
    s->type->profile_begin(s, &p);
    s->type->sample(s, &smp);
    s->type->request_abort(s, &REQ, "malformed");
    CHECK_EQ_STR(rig_log(&g), "{ R(r) P(samples) s0[f] ABORT(malformed)");
    s->type->request_begin(s, &REQ);
    send_resource(s, &r, "samples", fr, 1, NO_ATTRS, 1);
    rig_finish(&g, "{ R(r) P(samples) s0[f] p r }");
}

/* filter_stats: what each filter dropped, counted when a request ends; an aborted request
 * counts nothing. The expectations are counted by hand from the samples sent. */
TEST(stats_per_filter)
{
    struct filter_config c = { .sample_types = { "samples" }, .n_sample_types = 1, .container_id = "c1",
                               .frame_types = { "go,native" }, .n_frame_types = 1, .min_frames = 2 };
    struct lb_frame two[] = { F("go", "a"), F("native", "b") };
    struct lb_frame kernel[] = { F("kernel", "k") };
    struct lb_frame go_kernel[] = { F("go", "a"), F("kernel", "k"), F("kernel", "k2") };
    struct lb_attr a1[] = { A("name", "one"), A("container.id", "c1") };
    struct lb_attr a2[] = { A("name", "two"), A("container.id", "c2") };
    struct lb_resource r1 = { .attrs = ATTRS(a1) }, r2 = { .attrs = ATTRS(a2) };
    struct rig g;
    struct filter_stats st;
    struct sink *s = rig_begin(&g, &c);
    filter_stats(s, &st);
    CHECK_EQ_INT(st.samples_in, 0);
    s->type->resource_begin(s, &r1);
    send_profile(s, &r1, "samples", two, 2, NO_ATTRS, 3);        /* 3 pass */
    send_profile(s, &r1, "off_cpu", two, 2, NO_ATTRS, 2);        /* 2 by --sample-types */
    send_profile(s, &r1, "samples", kernel, 1, NO_ATTRS, 1);     /* 1 by --frame-types, 1 frame */
    send_profile(s, &r1, "samples", go_kernel, 3, NO_ATTRS, 2);  /* 2 by --min-frames, 2x2 frames */
    s->type->resource_end(s, &r1);
    send_resource(s, &r2, "samples", two, 2, NO_ATTRS, 4);       /* 4 by --container-id */
    filter_stats(s, &st);
    CHECK_EQ_INT(st.samples_in, 0);   /* not before the request ends */
    char why[64];
    CHECK_EQ_INT(s->type->request_end(s, &REQ, why, sizeof why), 0);
    filter_stats(s, &st);
    CHECK_EQ_INT(st.samples_in, 12);
    CHECK_EQ_INT(st.samples_passed, 3);
    CHECK_EQ_INT(st.dropped[FILTER_BY_SAMPLE_TYPE], 2);
    CHECK_EQ_INT(st.dropped[FILTER_BY_CONTAINER_ID], 4);
    CHECK_EQ_INT(st.dropped[FILTER_BY_FRAME_TYPES], 1);
    CHECK_EQ_INT(st.dropped[FILTER_BY_MIN_FRAMES], 2);
    CHECK_EQ_INT(st.dropped[FILTER_BY_RESOURCE], 0);
    CHECK_EQ_INT(st.dropped[FILTER_BY_REQUIRE_CONTAINER_ID], 0);
    CHECK_EQ_INT(st.frames_removed, 5);
    CHECK_EQ_STR(filter_reason_name(FILTER_BY_MIN_FRAMES), "min_frames");
    CHECK_EQ_STR(filter_reason_name(FILTER_BY_REQUIRE_CONTAINER_ID), "require_container_id");

    s->type->request_begin(s, &REQ);
    send_resource(s, &r2, "samples", two, 2, NO_ATTRS, 4);
    s->type->request_abort(s, &REQ, "malformed");
    filter_stats(s, &st);
    CHECK_EQ_INT(st.samples_in, 12);
    CHECK_EQ_INT(st.dropped[FILTER_BY_CONTAINER_ID], 4);
    filter_stats(&g.inner_sink, &st);   /* not a filter stage: nothing */
    CHECK_EQ_INT(st.samples_in, 0);
    rig_log(&g);
    rig_close(&g);
}

/* The fan-out counts per sink: refusals in admit, commits and failed commits; ready asks
 * every sink (through the filter stage too) without counting anything. */
TEST(fanout_counts_and_ready)
{
    struct recorder a = { 0 }, b = { 0 };
    buf_init(&a.log, 1 << 16);
    buf_init(&b.log, 1 << 16);
    struct sink v[2] = { { &recorder_type, &a }, { &recorder_type, &b } };
    struct sink_set set = { v, 2 };
    char why[64] = "";
    CHECK_EQ_INT(sink_set_admit(&set, why, sizeof why), 0);
    b.refuse = true;
    CHECK_EQ_INT(sink_set_admit(&set, why, sizeof why), -1);
    CHECK_EQ_INT(v[0].counts.refused, 0);
    CHECK_EQ_INT(v[1].counts.refused, 1);
    CHECK_EQ_INT(sink_set_ready(&set, why, sizeof why), -1);
    CHECK_EQ_STR(why, "not ready");
    CHECK_EQ_INT(b.admits, 2);       /* ready is not admit */
    CHECK_EQ_INT(v[1].counts.refused, 1);

    struct sink stage;
    struct filter_config c = { .min_frames = 1 };
    CHECK_EQ_INT(filter_open(&stage, &c, &set), 0);
    CHECK_EQ_INT(stage.type->ready(&stage, why, sizeof why), -1);
    b.refuse = false;
    CHECK_EQ_INT(stage.type->ready(&stage, why, sizeof why), 0);
    CHECK_EQ_INT(sink_set_ready(&set, why, sizeof why), 0);

    CHECK_EQ_INT(sink_set_request_end(&set, &REQ, why, sizeof why), 0);
    a.fail = true;
    CHECK_EQ_INT(sink_set_request_end(&set, &REQ, why, sizeof why), -1);
    CHECK_EQ_STR(why, "recorder sink: disk");
    CHECK_EQ_INT(v[0].counts.committed, 1);
    CHECK_EQ_INT(v[0].counts.failed, 1);
    CHECK_EQ_INT(v[1].counts.committed, 2);   /* asked even after the first one failed */
    CHECK_EQ_INT(v[1].counts.failed, 0);
    stage.type->close(&stage, 0);
    buf_free(&a.log);
    buf_free(&b.log);
}

int main(void)
{
    RUN(config_active_and_check);
    RUN(sample_types_and_no_empty_blocks);
    RUN(container_filters);
    RUN(resource_matching);
    RUN(frame_types_copy);
    RUN(min_frames);
    RUN(admit_and_abort);
    RUN(stats_per_filter);
    RUN(fanout_counts_and_ready);
    return check_done();
}
