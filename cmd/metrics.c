/*
 * metrics.c - the request counters (see metrics.h): counting each request as the pipeline
 * finishes it, and writing them, then the other parts (metrics_parts.c), as the /metrics page.
 */
#include "cmd/metrics.h"

#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "lib/clock.h"
#include "lib/prom.h"

static const char *const transport_name[METRICS_TRANSPORTS] = { "grpc", "http" };
static const char *const signal_name[METRICS_SIGNALS] = { "profiles", "traces" };
static const char *const outcome_name[METRICS_OUTCOMES] = {
    "ok", "partial", "invalid", "unavailable", "failed",
};
static const char *const problem_name[METRICS_PROBLEMS] = {
    [OTLP_PROBLEM_TOO_LARGE] = "too_large", [OTLP_PROBLEM_MALFORMED] = "malformed",
    [OTLP_PROBLEM_NO_LAYOUT] = "no_layout", [OTLP_PROBLEM_OUT_OF_MEMORY] = "out_of_memory",
    [METRICS_JSON] = "json", [METRICS_CONTENT_TYPE] = "content_type",
};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    for (int t = 0; t < METRICS_TRANSPORTS; t++)
        for (int s = 0; s < METRICS_SIGNALS; s++)
            histogram_init(&m->duration[t][s], histogram_latency_ns, histogram_latency_n);
}

enum metrics_transport metrics_transport(const char *name)
{
    return name && strcmp(name, "http") == 0 ? METRICS_HTTP : METRICS_GRPC;
}

static enum metrics_outcome outcome_of(enum otlp_status st, bool rejected_some)
{
    switch (st) {
    case OTLP_OK: return rejected_some ? METRICS_PARTIAL : METRICS_OK;
    case OTLP_INVALID: return METRICS_INVALID;
    case OTLP_UNAVAILABLE: return METRICS_UNAVAILABLE;
    case OTLP_SINK_FAILED:
    case OTLP_NOMEM: break;
    }
    return METRICS_FAILED;
}

/* What every request counts, whatever its signal and however it ended. */
static void count_request(struct metrics *m, enum metrics_transport t, enum otlp_signal sig,
                          enum metrics_outcome o, int problem, size_t wire, size_t inflated, uint64_t started_ns)
{
    m->requests[t][sig][o]++;
    m->wire_bytes[t][sig] += wire;
    m->inflated_bytes[t][sig] += inflated;
    if (problem > 0 && problem < METRICS_PROBLEMS)
        m->problems[sig][problem]++;
    histogram_observe(&m->duration[t][sig], clock_mono_ns() - started_ns);
}

void metrics_count_profiles(struct metrics *m, const struct lb_request *req, const struct otlp_result *res,
                            const struct otlp_layout *layout, uint64_t delivered, uint64_t started_ns)
{
    enum metrics_transport t = metrics_transport(req->transport);
    bool partial = res->rejected_profiles || res->rejected_samples || res->rejected_whole;
    count_request(m, t, OTLP_SIGNAL_PROFILES, outcome_of(res->status, partial), (int)res->problem, req->wire_bytes, req->message_bytes, started_ns);
    if (res->status != OTLP_UNAVAILABLE && res->problem != OTLP_PROBLEM_TOO_LARGE) {   /* was looked at */
        size_t i = 0;
        while (i < OTLP_LAYOUT_COUNT && otlp_layouts[i] != layout)
            i++;
        m->layouts[i]++;
    }
    m->unknown_fields[OTLP_SIGNAL_PROFILES] += res->unknown_fields;
    m->samples[t].received += res->samples + res->rejected_samples;
    m->samples[t].rejected += res->rejected_samples;
    if (res->status == OTLP_OK)
        m->samples[t].delivered += delivered;
}

void metrics_count_check(struct metrics *m, const struct check_report *r, bool rejected)
{
    m->check_verdicts[r->verdict]++;
    for (int i = 0; i < CR_COUNT; i++)
        m->check_findings[i] += r->per_rule[i];
    m->check_rejected += rejected;
}

void metrics_count_traces(struct metrics *m, const struct lb_request *req, const struct otlp_trace_result *res,
                          bool kept, uint64_t started_ns)
{
    enum metrics_transport t = metrics_transport(req->transport);
    count_request(m, t, OTLP_SIGNAL_TRACES, outcome_of(res->status, res->rejected_spans > 0), (int)res->problem,
                  req->wire_bytes, req->message_bytes, started_ns);
    m->unknown_fields[OTLP_SIGNAL_TRACES] += res->unknown_fields;
    m->spans[t].received += res->spans + res->rejected_spans;
    m->spans[t].rejected += res->rejected_spans;
    if (res->status != OTLP_OK)
        return;
    if (kept)
        m->spans[t].delivered += res->spans;
    else
        m->spans[t].not_kept += res->spans;
}

void metrics_count_refused(struct metrics *m, enum metrics_transport t, enum otlp_signal sig, const char *kind,
                           size_t wire_bytes, size_t length, uint64_t started_ns)
{
    int k = 1;
    while (k < METRICS_PROBLEMS && strcmp(problem_name[k], kind) != 0)
        k++;   /* not found: counted as a request, under no kind */
    count_request(m, t, sig, METRICS_INVALID, k, wire_bytes, length, started_ns);
}

/* ---------- the page ---------- */

/* One sample per transport and signal of a [transport][signal] array. */
static void per_transport_signal(struct prom *p, const char *name, const char *type, const char *help,
                                 const uint64_t v[METRICS_TRANSPORTS][METRICS_SIGNALS])
{
    prom_family(p, name, type, help);
    for (int t = 0; t < METRICS_TRANSPORTS; t++)
        for (int s = 0; s < METRICS_SIGNALS; s++)
            prom_u64(p, name, v[t][s], "transport", transport_name[t], "signal", signal_name[s], (char *)NULL);
}

static void write_requests(struct prom *p, const struct metrics *m)
{
    const char *name = "lazybackend_requests_total";
    prom_family(p, name, "counter",
                "Export requests answered, by transport, signal and outcome (ok; partial: accepted with "
                "something rejected; invalid; unavailable: a sink refused it; failed: a sink could not "
                "commit it, or out of memory).");
    for (int t = 0; t < METRICS_TRANSPORTS; t++)
        for (int s = 0; s < METRICS_SIGNALS; s++)
            for (int o = 0; o < METRICS_OUTCOMES; o++)
                prom_u64(p, name, m->requests[t][s][o], "transport", transport_name[t], "signal",
                         signal_name[s], "outcome", outcome_name[o], (char *)NULL);
    name = "lazybackend_request_duration_seconds";
    prom_family(p, name, "histogram",
                "Time from a whole request (inflated) to its answer: JSON transcoding, decoding, "
                "delivery to the sinks.");
    for (int t = 0; t < METRICS_TRANSPORTS; t++)
        for (int s = 0; s < METRICS_SIGNALS; s++)
            prom_histogram(p, name, &m->duration[t][s], 1e-9, "transport", transport_name[t], "signal",
                           signal_name[s], (char *)NULL);
    per_transport_signal(p, "lazybackend_received_wire_bytes_total", "counter",
                         "Export request bodies as received (compressed when gzip).", m->wire_bytes);
    per_transport_signal(p, "lazybackend_received_inflated_bytes_total", "counter",
                         "Export request messages after gzip, as protobuf (a JSON body: its protobuf "
                         "form; a body refused before decoding: as decompressed).", m->inflated_bytes);
    name = "lazybackend_decode_errors_total";
    prom_family(p, name, "counter",
                "Requests refused whole, by signal and kind: malformed (not protobuf any layout reads), "
                "no_layout (every proto layout contradicts it), too_large, out_of_memory, json (OTLP/JSON "
                "that does not transcode), content_type (neither protobuf nor JSON).");
    for (int s = 0; s < METRICS_SIGNALS; s++)
        for (int k = 1; k < METRICS_PROBLEMS; k++)
            prom_u64(p, name, m->problems[s][k], "signal", signal_name[s], "kind", problem_name[k], (char *)NULL);
    name = "lazybackend_layout_requests_total";
    prom_family(p, name, "counter",
                "Profiles requests by the proto layout they were read as (none: fitting no layout).");
    for (int i = 0; i <= OTLP_LAYOUT_COUNT; i++)
        prom_u64(p, name, m->layouts[i], "layout", i < OTLP_LAYOUT_COUNT ? otlp_layouts[i]->name : "none",
                 (char *)NULL);
    name = "lazybackend_unknown_fields_total";
    prom_family(p, name, "counter",
                "Fields of accepted requests that their proto layout does not have: kept, shown and "
                "stored, never a reason to refuse.");
    for (int s = 0; s < METRICS_SIGNALS; s++)
        prom_u64(p, name, m->unknown_fields[s], "signal", signal_name[s], (char *)NULL);
}

/* One sample per transport from a per-transport struct's member. */
#define PER_TRANSPORT(p, name, help, arr, member)                                       \
    do {                                                                                \
        prom_family(p, name, "counter", help);                                          \
        for (int t_ = 0; t_ < METRICS_TRANSPORTS; t_++)                                 \
            prom_u64(p, name, (arr)[t_].member, "transport", transport_name[t_], (char *)NULL); \
    } while (0)

static void write_items(struct prom *p, const struct metrics *m)
{
    PER_TRANSPORT(p, "lazybackend_samples_received_total",
                  "Samples in decoded profiles requests (valid or rejected).", m->samples, received);
    PER_TRANSPORT(p, "lazybackend_samples_rejected_total",
                  "Samples the decoder rejected (bad indices, too deep, in a rejected profile).", m->samples,
                  rejected);
    PER_TRANSPORT(p, "lazybackend_samples_delivered_total",
                  "Samples the sinks committed, after the filter stage.", m->samples, delivered);
    PER_TRANSPORT(p, "lazybackend_spans_received_total", "Spans in decoded traces requests (valid or rejected).",
                  m->spans, received);
    PER_TRANSPORT(p, "lazybackend_spans_rejected_total", "Spans the decoder rejected.", m->spans, rejected);
    PER_TRANSPORT(p, "lazybackend_spans_delivered_total", "Spans the sinks that take spans committed.", m->spans,
                  delivered);
    PER_TRANSPORT(p, "lazybackend_spans_not_kept_total",
                  "Spans of accepted requests no configured sink takes (sqlite, clickhouse: profiles only).",
                  m->spans, not_kept);
}

static void write_check(struct prom *p, const struct metrics *m)
{
    static const char *const verdicts[] = { "clean", "findings", "unreadable", "out_of_memory" };
    const char *name = "lazybackend_check_requests_total";
    prom_family(p, name, "counter",
                "Profiles requests the conformance checks (--check log|strict) looked at, by verdict: "
                "clean, findings, unreadable (no layout reads it: the decoder refuses it), out_of_memory.");
    for (int v = 0; v <= CHECK_NOMEM; v++)
        prom_u64(p, name, m->check_verdicts[v], "verdict", verdicts[v], (char *)NULL);
    name = "lazybackend_check_findings_total";
    prom_family(p, name, "counter", "Conformance findings, by rule (docs/check.md).");
    for (int r = 0; r < CR_COUNT; r++)
        prom_u64(p, name, m->check_findings[r], "rule", check_rules[r].id, (char *)NULL);
    name = "lazybackend_check_rejected_requests_total";
    prom_family(p, name, "counter",
                "Profiles requests --check strict rejected for their findings (answered with a partial "
                "success rejecting every profile).");
    prom_u64(p, name, m->check_rejected, (char *)NULL);
}

int metrics_page(void *ud, struct buf *out)
{
    struct app *app = ud;
    struct prom p;
    prom_init(&p, out);
    write_requests(&p, &app->metrics);
    write_items(&p, &app->metrics);
    write_check(&p, &app->metrics);
    metrics_write_ports(&p, app);
    metrics_write_sinks(&p, app);
    metrics_write_process(&p, app);
    return p.failed ? -1 : 0;
}
