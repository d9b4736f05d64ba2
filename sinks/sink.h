/*
 * sink.h - where resolved samples go: a tiny vtable, after curl's connection filters.
 *
 * Three kinds of sink sit behind it:
 *  - a synchronous stream (stdout): formats as events arrive, writes at request_end;
 *  - a local database (SQLite): requests in batches, committed before their replies go out
 *    (in serve through the group commit, lib/commit.h);
 *  - an asynchronous network sink (ClickHouse): request_end queues rows and returns at
 *    once; the sink registers its own sockets and timers on the event loop (`loop` in
 *    sink_env) and flushes later. `admit` lets it refuse new requests (queue and spool
 *    full) before any work is done, so nothing is dropped silently.
 *
 * The events and their order are the decoders' (otlp/events.h): a sink is called for them
 * through the fan-out below, which is the consumer the decoders are handed
 * (sink_set_consumer). A request is processed from begin to end without yielding to the
 * loop, so the output of two requests never interleaves.
 *
 * Every callback but `type` may be NULL when a sink has nothing to do there.
 */
#ifndef LB_SINK_H
#define LB_SINK_H

#include <stdint.h>

#include "otlp/events.h"
#include "otlp/view.h"

struct loop;

struct commit;

struct sink_env {
    struct loop *loop;       /* for sinks that do asynchronous I/O */
    struct commit *commit;   /* lib/commit.h: group commit with the transport's replies; NULL
                              * when nothing is acknowledged to anyone (decode) */
};

struct sink;

struct sink_type {
    const char *name;
    /* Can the sink take one more request right now? 0 = yes; otherwise a reason is written
     * to `why` and the transport answers UNAVAILABLE / 503. */
    int (*admit)(struct sink *s, char *why, size_t whylen);
    /* Can the sink take requests now? The question /healthz and the gRPC health check ask,
     * as often as they are polled, so nothing is counted or logged (admit may do both). It
     * may answer more carefully than admit, which cannot know a request's size (the
     * ClickHouse sink: would one as large as the last fit). 0 = yes, else the reason in
     * `why`. NULL: always yes. */
    int (*ready)(const struct sink *s, char *why, size_t whylen);
    void (*request_begin)(struct sink *s, const struct lb_request *r);
    void (*resource_begin)(struct sink *s, const struct lb_resource *r);
    void (*profile_begin)(struct sink *s, const struct lb_profile *p);
    void (*sample)(struct sink *s, const struct lb_sample *smp);
    void (*profile_end)(struct sink *s, const struct lb_profile *p);
    void (*resource_end)(struct sink *s, const struct lb_resource *r);
    /* Commit. 0 = durable/queued, the request may be acknowledged; otherwise `why` says
     * what failed and the transport reports an error. */
    int (*request_end)(struct sink *s, const struct lb_request *r, char *why, size_t whylen);
    /* Roll back. `reason` NULL: a silent retraction (otlp/events.h): the same request follows
     * at once, decoded again; nothing is logged or counted for it. */
    void (*request_abort)(struct sink *s, const struct lb_request *r, const char *reason);
    /* Shut down: flush what is queued, within deadline_ms; then free everything. */
    void (*close)(struct sink *s, int deadline_ms);

    /* Traces (OTLP trace v1; otlp/traces.h). A sink that shows or stores spans sets `span`.
     * A sink that leaves it NULL ignores traces explicitly: it gets no event at all for a
     * trace request (neither admit nor request_begin/end), so a trace request can never
     * open an empty transaction in it. The SQLite and ClickHouse sinks are such sinks.
     * For the sinks that take spans, one trace request is:
     *   admit, request_begin (span_resource_begin span* span_resource_end)* and then
     *   request_end (commit) or request_abort;
     * span_resource_begin/end are optional (NULL) even when `span` is set. */
    void (*span_resource_begin)(struct sink *s, const struct lb_resource *r);
    void (*span)(struct sink *s, const struct lb_span *sp);
    void (*span_resource_end)(struct sink *s, const struct lb_resource *r);
};

/* What the fan-out counted for one sink (sink.c), for /metrics: requests it refused in admit,
 * and its commits (request_end) that succeeded and that failed. */
struct sink_counts {
    uint64_t refused, committed, failed;
    uint64_t lost;           /* set by close: acknowledged rows it could neither deliver nor keep */
};

struct sink {
    const struct sink_type *type;
    void *ctx;               /* the sink's own state */
    struct sink_counts counts;
};

/* The fan-out: all configured sinks, driven as one. */
struct sink_set {
    struct sink *v;
    size_t n;
};

int  sink_set_admit(struct sink_set *set, char *why, size_t whylen);
void sink_set_request_begin(struct sink_set *set, const struct lb_request *r);
void sink_set_resource_begin(struct sink_set *set, const struct lb_resource *r);
void sink_set_profile_begin(struct sink_set *set, const struct lb_profile *p);
void sink_set_sample(struct sink_set *set, const struct lb_sample *smp);
void sink_set_profile_end(struct sink_set *set, const struct lb_profile *p);
void sink_set_resource_end(struct sink_set *set, const struct lb_resource *r);
int  sink_set_request_end(struct sink_set *set, const struct lb_request *r, char *why, size_t whylen);
void sink_set_request_abort(struct sink_set *set, const struct lb_request *r, const char *reason);
void sink_set_close(struct sink_set *set, int deadline_ms);

/* admit and request_end for a trace request: only the sinks that take spans are asked. */
int  sink_set_admit_spans(struct sink_set *set, char *why, size_t whylen);
int  sink_set_request_end_spans(struct sink_set *set, const struct lb_request *r, char *why, size_t whylen);

/* Would every sink admit a request now (sink_type.ready)? 0, or -1 and the first reason. */
int  sink_set_ready(const struct sink_set *set, char *why, size_t whylen);

/* True when at least one sink of the set takes spans. */
bool sink_set_takes_spans(const struct sink_set *set);

/* The set as the decoders' consumer (otlp/events.h): profiles events go to every sink, trace
 * events only to the sinks that take spans. `set` must outlive the returned consumer. */
struct otlp_consumer sink_set_consumer(struct sink_set *set);

#endif
