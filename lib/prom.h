/*
 * prom.h - writing the Prometheus text exposition format (version 0.0.4), the body of
 * GET /metrics.
 *
 * Why a writer of our own: the format is a few line rules (a "# HELP" and a "# TYPE" line per
 * family, then `name{label="value",...} value` per sample, histograms as cumulative _bucket
 * samples with an `le` label plus _sum and _count), and the escaping that keeps a label
 * value or a help text on its line. This file knows those rules and nothing of what is
 * counted; cmd/metrics*.c say what the numbers are.
 *
 * Labels are given as name/value string pairs ending with NULL:
 *     prom_u64(&p, "lazybackend_requests_total", 3, "transport", "grpc", NULL);
 * Values are escaped here (backslash, double quote, newline), names are the caller's and
 * must already be valid ([a-zA-Z_:][a-zA-Z0-9_:]*).
 */
#ifndef LB_LIB_PROM_H
#define LB_LIB_PROM_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/histogram.h"

#if defined(__GNUC__)
#define PROM_SENTINEL __attribute__((sentinel))
#else
#define PROM_SENTINEL
#endif

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom {
    struct buf *out;
    bool failed;     /* the buffer refused to grow: the page is incomplete */
};

void prom_init(struct prom *p, struct buf *out);

/* A family's "# HELP" and "# TYPE" lines; its samples follow. `type` is "counter", "gauge"
 * or "histogram". */
void prom_family(struct prom *p, const char *name, const char *type, const char *help);

/* One sample of the family just begun: `name` (for a counter, the family's name with its
 * _total), the labels, the value. */
PROM_SENTINEL void prom_u64(struct prom *p, const char *name, uint64_t v, ...);
PROM_SENTINEL void prom_double(struct prom *p, const char *name, double v, ...);

/* A histogram's samples: name_bucket (cumulative, one per bound and le="+Inf"), name_sum and
 * name_count. `scale` turns the histogram's unit into the exposed one (1e-9: nanoseconds to
 * seconds). */
PROM_SENTINEL void prom_histogram(struct prom *p, const char *name, const struct histogram *h,
                                  double scale, ...);

/* A family with one unlabelled sample, in one call. */
void prom_single(struct prom *p, const char *name, const char *type, const char *help, double v);

/* The shortest text that reads back as `v` ("0.00025", "+Inf", "NaN"); `out` holds 32. */
void prom_format_double(double v, char *out);

#endif
