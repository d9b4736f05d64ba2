/*
 * test_prom.c - the Prometheus text writer (lib/prom.h) and the histogram (lib/histogram.h)
 * against hand-written pages: escaping of label values and help texts, label lists, number
 * forms, and a histogram's cumulative buckets, sum and count. The end-to-end test
 * (test/e2e/metrics.py) reads the real page with Prometheus' own parsers.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "lib/buf.h"
#include "lib/histogram.h"
#include "lib/prom.h"

/* The page written so far, as a C string (owned by `b`, valid until the next write). */
static const char *page(struct buf *b)
{
    if (!buf_putc(b, '\0'))
        return "<full>";
    b->len--;
    return (const char *)b->data;
}

/* A writer on a fresh buffer of `limit` bytes. */
static void open_page(struct buf *b, struct prom *p, size_t limit)
{
    buf_init(b, limit);
    prom_init(p, b);
}

TEST(family_and_plain_samples)
{
    struct buf b;
    struct prom p;
    open_page(&b, &p, 1 << 16);
    prom_family(&p, "x_total", "counter", "Things.");
    prom_u64(&p, "x_total", 18446744073709551615ull, (const char *)NULL);
    prom_u64(&p, "x_total", 0, "a", "1", "b", "two", (const char *)NULL);
    CHECK_EQ_STR(page(&b), "# HELP x_total Things.\n# TYPE x_total counter\n"
                           "x_total 18446744073709551615\n"
                           "x_total{a=\"1\",b=\"two\"} 0\n");
    CHECK(!p.failed);
    buf_free(&b);
}

TEST(escaping)
{
    struct buf b;
    struct prom p;
    open_page(&b, &p, 1 << 16);
    prom_family(&p, "y", "gauge", "a \\ and a \"quote\"\nsecond line");
    prom_double(&p, "y", 1.5, "v", "back\\slash \"q\"\nnl", (const char *)NULL);
    CHECK_EQ_STR(page(&b), "# HELP y a \\\\ and a \"quote\"\\nsecond line\n# TYPE y gauge\n"
                           "y{v=\"back\\\\slash \\\"q\\\"\\nnl\"} 1.5\n");
    buf_free(&b);
}

TEST(number_forms)
{
    char s[32];
    prom_format_double(0.00025, s);
    CHECK_EQ_STR(s, "0.00025");
    prom_format_double(10, s);
    CHECK_EQ_STR(s, "10");
    prom_format_double(0.1 + 0.2, s);
    CHECK_EQ_STR(s, "0.30000000000000004");
    prom_format_double(INFINITY, s);
    CHECK_EQ_STR(s, "+Inf");
    prom_format_double(-INFINITY, s);
    CHECK_EQ_STR(s, "-Inf");
    prom_format_double(NAN, s);
    CHECK_EQ_STR(s, "NaN");
    prom_format_double(1e21, s);
    CHECK_EQ_STR(s, "1e+21");
}

TEST(histogram_buckets_are_cumulative)
{
    static const uint64_t bounds[] = { 10, 100, 1000 };
    struct histogram h;
    histogram_init(&h, bounds, 3);
    const uint64_t obs[] = { 0, 10, 11, 100, 5000, 999, 1000, 1001 };
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        histogram_observe(&h, obs[i]);
    CHECK_EQ_INT(h.count, 8);
    CHECK_EQ_INT(h.sum, 0 + 10 + 11 + 100 + 5000 + 999 + 1000 + 1001);
    struct buf b;
    struct prom p;
    open_page(&b, &p, 1 << 16);
    prom_histogram(&p, "d_seconds", &h, 0.001, "k", "v", (const char *)NULL);
    CHECK_EQ_STR(page(&b), "d_seconds_bucket{k=\"v\",le=\"0.01\"} 2\n"
                           "d_seconds_bucket{k=\"v\",le=\"0.1\"} 4\n"
                           "d_seconds_bucket{k=\"v\",le=\"1\"} 6\n"
                           "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 8\n"
                           "d_seconds_sum{k=\"v\"} 8.121\n"
                           "d_seconds_count{k=\"v\"} 8\n");
    buf_reset(&b);
    histogram_init(&h, bounds, 1);
    prom_histogram(&p, "e", &h, 1, (const char *)NULL);
    CHECK_EQ_STR(page(&b), "e_bucket{le=\"10\"} 0\ne_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n");
    buf_free(&b);
}

TEST(latency_bounds_ascend)
{
    CHECK(histogram_latency_n > 8 && histogram_latency_n <= HISTOGRAM_MAX_BOUNDS);
    for (unsigned i = 1; i < histogram_latency_n; i++)
        CHECK(histogram_latency_ns[i] > histogram_latency_ns[i - 1]);
    CHECK_EQ_INT(histogram_latency_ns[0], 100000);
    CHECK_EQ_INT(histogram_latency_ns[histogram_latency_n - 1], 10000000000ll);
}

TEST(a_full_buffer_is_reported)
{
    struct buf b;
    struct prom p;
    open_page(&b, &p, 20);
    prom_single(&p, "a_rather_long_name", "gauge", "Help text longer than twenty bytes.", 1);
    CHECK(p.failed);
    CHECK(b.len <= 20);
    buf_free(&b);
}

int main(void)
{
    RUN(family_and_plain_samples);
    RUN(escaping);
    RUN(number_forms);
    RUN(histogram_buckets_are_cumulative);
    RUN(latency_bounds_ascend);
    RUN(a_full_buffer_is_reported);
    return check_done();
}
