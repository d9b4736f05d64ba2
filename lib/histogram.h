/*
 * histogram.h - a fixed-bucket histogram of unsigned integers (durations in nanoseconds, in
 * practice), for the /metrics page.
 *
 * Why fixed buckets and integers: an observation is made on the hot path (once per request,
 * once per SQLite commit), so it must cost a few comparisons and increments - no allocation,
 * no floating point, no lock (the process has one thread). The buckets are chosen once, when
 * the histogram is made; what Prometheus needs (cumulative counts, the sum, the count) is
 * computed when the page is rendered (lib/prom.h), not here.
 */
#ifndef LB_LIB_HISTOGRAM_H
#define LB_LIB_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_MAX_BOUNDS 20

struct histogram {
    const uint64_t *bounds;    /* ascending upper bounds, inclusive: v <= bounds[i] */
    unsigned n_bounds;
    /* Observations per bucket, not cumulative; bucket[n_bounds] holds those above every
     * bound (Prometheus' le="+Inf" less the others). */
    uint64_t bucket[HISTOGRAM_MAX_BOUNDS + 1];
    uint64_t count, sum;
};

/* Request and commit durations in nanoseconds: 100 us to 10 s in 1-2.5-5 steps (decoding the
 * example payload takes about 100 us; an fsync'd commit milliseconds). */
extern const uint64_t histogram_latency_ns[];
extern const unsigned histogram_latency_n;

/* An empty histogram over `bounds` (kept, not copied; at most HISTOGRAM_MAX_BOUNDS). */
void histogram_init(struct histogram *h, const uint64_t *bounds, unsigned n_bounds);

static inline void histogram_observe(struct histogram *h, uint64_t v)
{
    unsigned i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

#endif
