/*
 * replay.h - the store-independent half of `lazybackend export`: a store's rows played back
 * as profiles events (otlp/events.h). Each store's reader (sinks/sqlite/replay*.c,
 * sinks/clickhouse/export.c) reads its rows and hands them here; what opens and closes a
 * request, resource and profile around the samples kept, how the time window cuts a sample,
 * and which stacks and profiles the filters keep are decided here once, so both stores give
 * the same events for the same content.
 */
#ifndef LB_SINKS_REPLAY_H
#define LB_SINKS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp/events.h"
#include "sinks/query/query.h"

/* A store's replay, as cmd/export.c drives it: next emits the next request into c (1 emitted,
 * 0 no more, -1 error with the reason from error()). */
struct replay_source {
    void *ctx;
    int (*next)(void *ctx, struct otlp_consumer c);
    const char *(*error)(const void *ctx);
    void (*close)(void *ctx);
};

/* The request, resource and profile being replayed, and which of them were opened (emitted
 * *_begin). Filtered replays open each only when a sample inside is kept. */
struct replay_emit {
    struct otlp_consumer c;
    struct lb_request req;
    struct lb_resource res;
    struct lb_scope scope;
    struct lb_profile prof;
    bool req_open, res_open, prof_open;
};

enum { REPLAY_REQUEST, REPLAY_RESOURCE, REPLAY_PROFILE };

/* Emits the *_begin of what encloses `level` and is not open yet. */
void replay_open_upto(struct replay_emit *s, int level);
/* A kept sample: opens what encloses it, then emits it. */
void replay_sample(struct replay_emit *s, const struct lb_sample *smp);
/* Emit *_end of the profile / resource when it was opened. */
void replay_profile_end(struct replay_emit *s);
void replay_resource_end(struct replay_emit *s);
/* Ends the request: 1 when it was emitted, 0 when nothing of it was kept, -1 when the
 * consumer refused it (the reason in err). */
int replay_request_end(struct replay_emit *s, char *err, size_t errlen);

/* Any filter: only what keeps a sample is replayed. */
bool replay_filtered(const struct qopts *o);
/* --sample-type keeps this profile type. */
bool replay_sample_type_wanted(const struct qopts *o, lb_str type);
/* --frame-type names this frame type ("unknown": a frame without one). */
bool replay_frame_type_wanted(const struct qopts *o, lb_str type);
/* Cuts a sample's series to the time window the way `top` weighs it: a timestamp inside is
 * kept (with its value when values and timestamps pair), a sample whose values do not pair
 * with its timestamps is kept whole when its first timestamp is inside, one without
 * timestamps when its profile's time is inside. ts and vals are compacted in place; false:
 * nothing of it lies inside. */
bool replay_cut_series(const struct qopts *o, uint64_t profile_time, uint64_t *ts, size_t *nts, int64_t *vals,
                       size_t *nvals);

#endif
