/*
 * sink.c - the fan-out over every configured sink (see sink.h for the event contract). The
 * admit and commit rules are the same for both signals; only who is asked differs, so one
 * loop serves profiles and traces.
 */
#include "sinks/sink.h"

#include <stdio.h>

#define FOR_EACH_SINK(set, fn, ...)                         \
    for (size_t i_ = 0; i_ < (set)->n; i_++) {              \
        struct sink *s_ = &(set)->v[i_];                    \
        if (s_->type->fn)                                   \
            s_->type->fn(s_, __VA_ARGS__);                  \
    }

/* Who is asked: every sink for a profiles request; for a trace request only the sinks that
 * take spans, the others never hear of it (sink.h). */
static bool asked(const struct sink *s, bool spans_only)
{
    return !spans_only || s->type->span;
}

static int admit(struct sink_set *set, bool spans_only, char *why, size_t whylen)
{
    for (size_t i = 0; i < set->n; i++) {
        struct sink *s = &set->v[i];
        if (asked(s, spans_only) && s->type->admit && s->type->admit(s, why, whylen) != 0) {
            s->counts.refused++;
            return -1;
        }
    }
    return 0;
}

int sink_set_admit(struct sink_set *set, char *why, size_t whylen) { return admit(set, false, why, whylen); }
int sink_set_admit_spans(struct sink_set *set, char *why, size_t whylen) { return admit(set, true, why, whylen); }

void sink_set_request_begin(struct sink_set *set, const struct lb_request *r) { FOR_EACH_SINK(set, request_begin, r); }
void sink_set_resource_begin(struct sink_set *set, const struct lb_resource *r) { FOR_EACH_SINK(set, resource_begin, r); }
void sink_set_profile_begin(struct sink_set *set, const struct lb_profile *p) { FOR_EACH_SINK(set, profile_begin, p); }
void sink_set_sample(struct sink_set *set, const struct lb_sample *smp) { FOR_EACH_SINK(set, sample, smp); }
void sink_set_profile_end(struct sink_set *set, const struct lb_profile *p) { FOR_EACH_SINK(set, profile_end, p); }
void sink_set_resource_end(struct sink_set *set, const struct lb_resource *r) { FOR_EACH_SINK(set, resource_end, r); }
void sink_set_request_abort(struct sink_set *set, const struct lb_request *r, const char *reason) { FOR_EACH_SINK(set, request_abort, r, reason); }

/* Every sink gets its commit even when an earlier one failed: a failure of one store must not
 * leave another's transaction open. The first failure is the one reported. */
static int request_end(struct sink_set *set, bool spans_only, const struct lb_request *r, char *why,
                       size_t whylen)
{
    int rc = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct sink *s = &set->v[i];
        if (!asked(s, spans_only) || !s->type->request_end)
            continue;
        char local[256];
        if (s->type->request_end(s, r, local, sizeof local) == 0) {
            s->counts.committed++;
            continue;
        }
        s->counts.failed++;
        if (rc == 0) {
            snprintf(why, whylen, "%s sink: %s", s->type->name, local);
            rc = -1;
        }
    }
    return rc;
}

int sink_set_request_end(struct sink_set *set, const struct lb_request *r, char *why, size_t whylen)
{
    return request_end(set, false, r, why, whylen);
}

int sink_set_request_end_spans(struct sink_set *set, const struct lb_request *r, char *why, size_t whylen)
{
    return request_end(set, true, r, why, whylen);
}

void sink_set_close(struct sink_set *set, int deadline_ms)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].type->close)
            set->v[i].type->close(&set->v[i], deadline_ms);
}

int sink_set_ready(const struct sink_set *set, char *why, size_t whylen)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct sink *s = &set->v[i];
        if (s->type->ready && s->type->ready(s, why, whylen) != 0)
            return -1;
    }
    return 0;
}

bool sink_set_takes_spans(const struct sink_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].type->span)
            return true;
    return false;
}

/* ---- the fan-out as the decoders' consumer (otlp/events.h) ---- */

#define FOR_SPAN_SINKS(set, fn, ...)                        \
    for (size_t i_ = 0; i_ < (set)->n; i_++) {              \
        struct sink *s_ = &(set)->v[i_];                    \
        if (s_->type->span && s_->type->fn)                 \
            s_->type->fn(s_, __VA_ARGS__);                  \
    }

static int ev_admit(void *ctx, enum otlp_signal sig, char *why, size_t whylen)
{
    return admit(ctx, sig == OTLP_SIGNAL_TRACES, why, whylen);
}

static void ev_request_begin(void *ctx, enum otlp_signal sig, const struct lb_request *r)
{
    if (sig == OTLP_SIGNAL_TRACES)
        FOR_SPAN_SINKS((struct sink_set *)ctx, request_begin, r)
    else
        sink_set_request_begin(ctx, r);
}

static int ev_request_end(void *ctx, enum otlp_signal sig, const struct lb_request *r, char *why, size_t whylen)
{
    return request_end(ctx, sig == OTLP_SIGNAL_TRACES, r, why, whylen);
}

static void ev_request_abort(void *ctx, enum otlp_signal sig, const struct lb_request *r, const char *reason)
{
    if (sig == OTLP_SIGNAL_TRACES)
        FOR_SPAN_SINKS((struct sink_set *)ctx, request_abort, r, reason)
    else
        sink_set_request_abort(ctx, r, reason);
}

static void ev_resource_begin(void *ctx, const struct lb_resource *r) { sink_set_resource_begin(ctx, r); }
static void ev_profile_begin(void *ctx, const struct lb_profile *p) { sink_set_profile_begin(ctx, p); }
static void ev_sample(void *ctx, const struct lb_sample *smp) { sink_set_sample(ctx, smp); }
static void ev_profile_end(void *ctx, const struct lb_profile *p) { sink_set_profile_end(ctx, p); }
static void ev_resource_end(void *ctx, const struct lb_resource *r) { sink_set_resource_end(ctx, r); }
static void ev_span_resource_begin(void *ctx, const struct lb_resource *r) { FOR_SPAN_SINKS((struct sink_set *)ctx, span_resource_begin, r); }
static void ev_span(void *ctx, const struct lb_span *sp) { FOR_SPAN_SINKS((struct sink_set *)ctx, span, sp); }
static void ev_span_resource_end(void *ctx, const struct lb_resource *r) { FOR_SPAN_SINKS((struct sink_set *)ctx, span_resource_end, r); }

static const struct otlp_events fanout_events = {
    .admit = ev_admit,
    .request_begin = ev_request_begin,
    .resource_begin = ev_resource_begin,
    .profile_begin = ev_profile_begin,
    .sample = ev_sample,
    .profile_end = ev_profile_end,
    .resource_end = ev_resource_end,
    .span_resource_begin = ev_span_resource_begin,
    .span = ev_span,
    .span_resource_end = ev_span_resource_end,
    .request_end = ev_request_end,
    .request_abort = ev_request_abort,
};

struct otlp_consumer sink_set_consumer(struct sink_set *set)
{
    return (struct otlp_consumer){ &fanout_events, set };
}
