/*
 * events.h - what the decoders emit: the one interface between otlp/ and whoever consumes
 * resolved requests.
 *
 * The profiles decoder (decode.h) and the traces decoder (traces.h) walk a request and call
 * these functions in a fixed, properly nested order. They know nothing of sinks, files or
 * sockets: the server hands them a consumer (the sink fan-out, sinks/sink.h), a test hands
 * them its own. Every pointer argument is a view (view.h) valid only during the call, or for
 * the request/resource/profile structs until the matching *_end.
 *
 * One profiles request:
 *   admit, request_begin (resource_begin (profile_begin sample* profile_end)* resource_end)*
 *   then exactly one of request_end (commit) or request_abort (roll back).
 * One traces request:
 *   admit, request_begin (span_resource_begin span* span_resource_end)*
 *   then exactly one of request_end or request_abort.
 * `admit` refusing means nothing else is called for that request.
 *
 * Retraction: request_abort with `reason` NULL (profiles only). The decoder chose the layout
 * from a prefix of the request and found, while decoding, that the full detection would have
 * decided otherwise (detect.h, the fast path); it decodes the same request again at once:
 * request_begin ... then request_end or request_abort, with no second `admit`. A consumer
 * forgets what the retracted request gave it, with no output, log line or counter: it is not
 * a failure. (The stdout sink, which writes a request's output in pieces once it outgrows its
 * buffer, can only mark a block it has begun as cut.) A request runs from begin to
 * end without yielding to the event loop, so two requests never interleave.
 *
 * Every member must be set: a consumer with nothing to do for an event supplies a no-op.
 */
#ifndef LB_OTLP_EVENTS_H
#define LB_OTLP_EVENTS_H

#include <stddef.h>

#include "otlp/view.h"

enum otlp_signal { OTLP_SIGNAL_PROFILES, OTLP_SIGNAL_TRACES };

struct otlp_events {
    /* Can one more request of this signal be taken now? 0 = yes; otherwise the reason is
     * written to `why` and the transport answers UNAVAILABLE / 503. */
    int  (*admit)(void *ctx, enum otlp_signal sig, char *why, size_t whylen);
    void (*request_begin)(void *ctx, enum otlp_signal sig, const struct lb_request *r);

    void (*resource_begin)(void *ctx, const struct lb_resource *r);
    void (*profile_begin)(void *ctx, const struct lb_profile *p);
    void (*sample)(void *ctx, const struct lb_sample *smp);
    void (*profile_end)(void *ctx, const struct lb_profile *p);
    void (*resource_end)(void *ctx, const struct lb_resource *r);

    void (*span_resource_begin)(void *ctx, const struct lb_resource *r);
    void (*span)(void *ctx, const struct lb_span *sp);
    void (*span_resource_end)(void *ctx, const struct lb_resource *r);

    /* Commit. 0 = durable or queued, so the request may be acknowledged; otherwise `why`
     * says what failed and the transport reports an error. */
    int  (*request_end)(void *ctx, enum otlp_signal sig, const struct lb_request *r, char *why, size_t whylen);
    /* Roll back; `reason` NULL: a silent retraction (above). */
    void (*request_abort)(void *ctx, enum otlp_signal sig, const struct lb_request *r, const char *reason);
};

/* A consumer: the functions and the state they are called with (redis's clientData). */
struct otlp_consumer {
    const struct otlp_events *ev;
    void *ctx;
};

#define OTLP_EMIT(c, fn, ...) ((c).ev->fn((c).ctx, __VA_ARGS__))

#endif
