/*
 * histogram.c - the shared bucket bounds and making an empty histogram (see histogram.h).
 */
#include "lib/histogram.h"

#include <string.h>

#define US 1000ull
#define MS (1000ull * US)
#define S (1000ull * MS)

const uint64_t histogram_latency_ns[] = {
    100 * US, 250 * US, 500 * US, 1 * MS, 2500 * US, 5 * MS, 10 * MS, 25 * MS, 50 * MS,
    100 * MS, 250 * MS, 500 * MS, 1 * S, 2500 * MS, 5 * S, 10 * S,
};
const unsigned histogram_latency_n = sizeof histogram_latency_ns / sizeof histogram_latency_ns[0];

void histogram_init(struct histogram *h, const uint64_t *bounds, unsigned n_bounds)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n_bounds < HISTOGRAM_MAX_BOUNDS ? n_bounds : HISTOGRAM_MAX_BOUNDS;
}
