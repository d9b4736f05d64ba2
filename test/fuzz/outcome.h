/*
 * outcome.h - what one decode of a profiles request came to, and a consumer that records it,
 * for comparing the decoder's fast layout detection with the full walk it replaces (the
 * reference; otlp/detect.h). Shared by fuzz_speculate.c and test/unit/test_detect_fast.c.
 *
 * An outcome is everything a caller of otlp_export_profiles can observe: the result (status,
 * problem, message, counts), the layout named in the request, the detection (every verdict,
 * evidence line and unknown-field record), and a digest of the events the consumer was left
 * with (a retracted request, request_abort with no reason, leaves nothing).
 */
#ifndef LB_TEST_FUZZ_OUTCOME_H
#define LB_TEST_FUZZ_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/events.h"

struct outcome {
    struct otlp_result res;
    const char *layout;
    struct otlp_detection det;
    uint64_t digest, events;      /* of the request the consumer kept */
    uint64_t cur, cur_events;     /* of the request under way */
    int ends, aborts, retractions, begins;
    char abort_reason[1024];
};

static inline void oc_mix(struct outcome *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        o->cur = (o->cur ^ b[i]) * 0x100000001b3ull;
    o->cur_events++;
}
static inline void oc_str(struct outcome *o, lb_str s)
{
    oc_mix(o, &s.n, sizeof s.n);
    if (s.n)
        oc_mix(o, s.p, s.n);
}
static inline void oc_attrs(struct outcome *o, struct lb_attrs a)
{
    oc_mix(o, &a.n, sizeof a.n);
    for (size_t i = 0; i < a.n; i++)
        oc_str(o, a.v[i].key);
}

static int oc_admit(void *ctx, enum otlp_signal sig, char *why, size_t whylen)
{
    (void)ctx, (void)sig, (void)why, (void)whylen;
    return 0;
}
static void oc_request_begin(void *ctx, enum otlp_signal sig, const struct lb_request *r)
{
    struct outcome *o = ctx;
    (void)sig;
    o->begins++;
    o->cur = 0xcbf29ce484222325ull;
    o->cur_events = 0;
    oc_mix(o, &r->n_unknown_fields, sizeof r->n_unknown_fields);
    oc_mix(o, &r->unknown_fields_total, sizeof r->unknown_fields_total);
}
static void oc_resource(void *ctx, const struct lb_resource *r)
{
    struct outcome *o = ctx;
    oc_mix(o, &r->index, sizeof r->index);
    oc_attrs(o, r->attrs);
}
static void oc_profile(void *ctx, const struct lb_profile *p)
{
    struct outcome *o = ctx;
    oc_mix(o, &p->index, sizeof p->index);
    oc_str(o, p->sample_type);
    oc_str(o, p->sample_unit);
    oc_attrs(o, p->attrs);
}
static void oc_sample(void *ctx, const struct lb_sample *s)
{
    struct outcome *o = ctx;
    oc_mix(o, &s->index, sizeof s->index);
    oc_mix(o, &s->stack_index, sizeof s->stack_index);
    oc_mix(o, &s->n_frames, sizeof s->n_frames);
    if (s->n_values)
        oc_mix(o, s->values, s->n_values * sizeof *s->values);
    if (s->n_timestamps)
        oc_mix(o, s->timestamps, s->n_timestamps * sizeof *s->timestamps);
    oc_attrs(o, s->attrs);
    for (size_t i = 0; i < s->n_frames; i++) {
        oc_str(o, s->frames[i].function);
        oc_mix(o, &s->frames[i].address, sizeof s->frames[i].address);
        oc_mix(o, &s->frames[i].line, sizeof s->frames[i].line);
    }
}
static void oc_span_resource(void *ctx, const struct lb_resource *r) { (void)ctx, (void)r; }
static void oc_span(void *ctx, const struct lb_span *sp) { (void)ctx, (void)sp; }
static int oc_request_end(void *ctx, enum otlp_signal sig, const struct lb_request *r, char *why, size_t whylen)
{
    struct outcome *o = ctx;
    (void)sig, (void)r, (void)why, (void)whylen;
    o->ends++;
    o->digest = o->cur;
    o->events = o->cur_events;
    return 0;
}
static void oc_request_abort(void *ctx, enum otlp_signal sig, const struct lb_request *r, const char *reason)
{
    struct outcome *o = ctx;
    (void)sig, (void)r;
    if (!reason) {   /* a retraction: forgotten */
        o->retractions++;
        o->begins--;
        return;
    }
    o->aborts++;
    o->digest = o->cur;
    o->events = o->cur_events;
    snprintf(o->abort_reason, sizeof o->abort_reason, "%s", reason);
}

static const struct otlp_events OUTCOME_EVENTS = {
    .admit = oc_admit, .request_begin = oc_request_begin, .resource_begin = oc_resource,
    .profile_begin = oc_profile, .sample = oc_sample, .profile_end = oc_profile,
    .resource_end = oc_resource, .span_resource_begin = oc_span_resource, .span = oc_span,
    .span_resource_end = oc_span_resource, .request_end = oc_request_end,
    .request_abort = oc_request_abort,
};

/* Decodes `msg` with `d` into `o`. */
static inline void outcome_decode(struct otlp_decoder *d, const uint8_t *msg, size_t len, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    struct lb_request req = { .transport = "test", .peer = "test", .wire_bytes = len, .sequence = 1 };
    struct otlp_consumer c = { &OUTCOME_EVENTS, o };
    otlp_export_profiles(d, msg, len, &req, c, &o->res);
    o->layout = req.layout;
    o->det = *otlp_decoder_detection(d);
}

/* NULL when `a` and `b` are the same outcome, else what differs. */
static inline const char *outcome_differs(const struct outcome *a, const struct outcome *b)
{
    const struct otlp_result *x = &a->res, *y = &b->res;
    if (x->status != y->status || x->problem != y->problem)
        return "status or problem";
    if (strcmp(x->message, y->message) != 0)
        return "message";
    if (x->resources != y->resources || x->profiles != y->profiles || x->samples != y->samples ||
        x->frames != y->frames || x->timestamps != y->timestamps ||
        x->rejected_profiles != y->rejected_profiles || x->rejected_samples != y->rejected_samples ||
        x->unknown_fields != y->unknown_fields || x->rejected_whole != y->rejected_whole)
        return "counts";
    if (strcmp(a->layout, b->layout) != 0)
        return "request layout";
    if (a->digest != b->digest || a->events != b->events || a->ends != b->ends || a->aborts != b->aborts ||
        a->begins != b->begins || strcmp(a->abort_reason, b->abort_reason) != 0)
        return "events delivered";
    const struct otlp_detection *p = &a->det, *q = &b->det;
    if (p->layout != q->layout || p->ambiguous != q->ambiguous || p->equivalent != q->equivalent ||
        p->malformed != q->malformed)
        return "detection verdict";
    if (p->n_tried != q->n_tried)
        return "layouts tried";
    for (size_t i = 0; i < p->n_tried; i++)
        if (p->tried[i].layout != q->tried[i].layout || p->tried[i].fits != q->tried[i].fits ||
            strcmp(p->tried[i].why, q->tried[i].why) != 0)
            return "a layout's verdict";
    if (p->n_evidence != q->n_evidence)
        return "evidence count";
    for (size_t i = 0; i < p->n_evidence; i++)
        if (strcmp(p->evidence[i], q->evidence[i]) != 0)
            return "evidence line";
    if (p->n_unknown != q->n_unknown || p->n_recorded != q->n_recorded)
        return "unknown fields";
    for (size_t i = 0; i < p->n_recorded; i++) {
        const struct otlp_unknown_field *u = &p->unknown[i], *v = &q->unknown[i];
        if (strcmp(u->path, v->path) != 0 || u->message != v->message || u->number != v->number ||
            u->wire_type != v->wire_type || u->value != v->value || u->size != v->size ||
            strcmp(u->decoded, v->decoded) != 0)
            return "unknown field record";
    }
    return NULL;
}

#endif
