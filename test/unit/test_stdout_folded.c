/*
 * test_stdout_folded.c - the stdout sink's FOLDED format driven through its vtable: order,
 * merging of equal stacks, weights, the sample's root frames, and stacks and frames seen again
 * written the same; expected lines written by hand from docs/output.md.
 */
#include "stdout_rig.h"

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

int main(void)
{
    RUN(folded_merge_sort_weights);
    RUN(folded_abort_forgets_the_request);
    RUN(repeated_stacks_and_frames_are_written_the_same);
    RUN(folded_by_stack_and_root);
    return check_done();
}
