/*
 * metrics.h - the server's own counters and GET /metrics, the page that shows them and what
 * the ports, the sinks and the process report (docs/metrics.md lists every metric).
 *
 * Two halves, for two costs. Counting happens on the hot path, once per request, in the
 * functions below: plain integer increments into fixed arrays and one histogram
 * observation - no allocation, no lock (one thread), no string built. Rendering happens when
 * /metrics is scraped: it reads these counters and asks the other layers for theirs (the
 * ports' h2_stats, the fan-out's per-sink counts, the filter's, SQLite's and ClickHouse's
 * statistics, /proc for the process) and writes the Prometheus text format (lib/prom.h).
 *
 *   metrics.c        the request counters: counting, and their part of the page
 *   metrics_parts.c  the rest of the page: ports, sinks, filter, process, build, health
 *
 * Requests refused by the HTTP route before decoding (a content type that is not OTLP's, JSON
 * that does not transcode) are counted too, so every export request either port answered
 * with a decoder's verdict or a refusal is in lazybackend_requests_total exactly once.
 */
#ifndef LB_CMD_METRICS_H
#define LB_CMD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/histogram.h"
#include "lib/prom.h"
#include "otlp/check.h"
#include "otlp/decode.h"
#include "otlp/layout.h"
#include "otlp/traces.h"

struct app;

enum metrics_transport { METRICS_GRPC, METRICS_HTTP, METRICS_TRANSPORTS };
#define METRICS_SIGNALS 2   /* indexed by enum otlp_signal */

/* A request's outcome: accepted whole, accepted with something rejected (partial_success),
 * refused as invalid, refused because a sink could not take it (admit), failed (a sink could
 * not commit, or out of memory). */
enum metrics_outcome {
    METRICS_OK, METRICS_PARTIAL, METRICS_INVALID, METRICS_UNAVAILABLE, METRICS_FAILED, METRICS_OUTCOMES
};

/* Why a request was refused whole: the decoders' kinds (enum otlp_problem, same values), then
 * the HTTP route's own. */
enum metrics_problem {
    METRICS_JSON = OTLP_PROBLEM_OUT_OF_MEMORY + 1,   /* JSON that does not transcode */
    METRICS_CONTENT_TYPE,                            /* neither protobuf nor JSON (415) */
    METRICS_PROBLEMS
};

struct metrics {
    double start_time_s;         /* Unix time the counting began (serve's start) */
    uint64_t requests[METRICS_TRANSPORTS][METRICS_SIGNALS][METRICS_OUTCOMES];
    uint64_t wire_bytes[METRICS_TRANSPORTS][METRICS_SIGNALS];
    uint64_t inflated_bytes[METRICS_TRANSPORTS][METRICS_SIGNALS];
    struct histogram duration[METRICS_TRANSPORTS][METRICS_SIGNALS];
    uint64_t problems[METRICS_SIGNALS][METRICS_PROBLEMS];
    uint64_t layouts[OTLP_LAYOUT_COUNT + 1];         /* otlp_layouts' order, then "none" */
    uint64_t unknown_fields[METRICS_SIGNALS];        /* fields no layout explained, kept */
    struct {
        uint64_t received, rejected, delivered;
    } samples[METRICS_TRANSPORTS];
    struct {
        uint64_t received, rejected, delivered, not_kept;
    } spans[METRICS_TRANSPORTS];
    /* --check: requests by verdict (enum check_verdict), findings by rule, strict refusals */
    uint64_t check_verdicts[CHECK_NOMEM + 1];
    uint64_t check_findings[CR_COUNT];
    uint64_t check_rejected;
};

void metrics_init(struct metrics *m);

/* "grpc" or "http" (struct lb_request's transport) as an index. */
enum metrics_transport metrics_transport(const char *name);

/* A profiles request the decoder answered: `layout` the one it was read as (NULL: none),
 * `delivered` the samples the sinks committed (after the filter stage), `started_ns` when it
 * was taken (lib/clock.h). */
void metrics_count_profiles(struct metrics *m, const struct lb_request *req, const struct otlp_result *res,
                            const struct otlp_layout *layout, uint64_t delivered, uint64_t started_ns);

/* A profiles request's conformance verdict (serve --check); `rejected`: strict mode refused it. */
void metrics_count_check(struct metrics *m, const struct check_report *r, bool rejected);

/* A traces request: `kept` whether a configured sink takes spans. */
void metrics_count_traces(struct metrics *m, const struct lb_request *req, const struct otlp_trace_result *res,
                          bool kept, uint64_t started_ns);

/* A request refused before decoding; `kind` is the decode error's label ("json",
 * "content_type", "too_large": struct otlp_http_refusal's). */
void metrics_count_refused(struct metrics *m, enum metrics_transport t, enum otlp_signal sig, const char *kind,
                           size_t wire_bytes, size_t length, uint64_t started_ns);

/* GET /metrics (struct otlp_http_service's `metrics`; `ud` is the app): the whole page
 * appended to `out`. 0, or -1 when `out` could not hold it. */
int metrics_page(void *ud, struct buf *out);

/* ---- metrics_parts.c: the page's other parts, written into `p` ---- */

/* The ports: connections, bytes received and held, calls answered. */
void metrics_write_ports(struct prom *p, const struct app *app);
/* The sinks: the fan-out's counts per sink, the filter stage, SQLite, ClickHouse. */
void metrics_write_sinks(struct prom *p, const struct app *app);
/* The process and the build: memory, descriptors, CPU, start time, version, health. */
void metrics_write_process(struct prom *p, struct app *app);

#endif
