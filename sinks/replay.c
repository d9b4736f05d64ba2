/*
 * replay.c - the store-independent half of `lazybackend export` (replay.h): the events around
 * a store's kept samples and the filters' rules, shared by the SQLite and ClickHouse readers.
 */
#include <stdio.h>
#include <string.h>

#include "sinks/replay.h"

void replay_open_upto(struct replay_emit *s, int level)
{
    if (!s->req_open) {
        OTLP_EMIT(s->c, request_begin, OTLP_SIGNAL_PROFILES, &s->req);
        s->req_open = true;
    }
    if (level >= REPLAY_RESOURCE && !s->res_open) {
        OTLP_EMIT(s->c, resource_begin, &s->res);
        s->res_open = true;
    }
    if (level >= REPLAY_PROFILE && !s->prof_open) {
        OTLP_EMIT(s->c, profile_begin, &s->prof);
        s->prof_open = true;
    }
}

void replay_sample(struct replay_emit *s, const struct lb_sample *smp)
{
    replay_open_upto(s, REPLAY_PROFILE);
    OTLP_EMIT(s->c, sample, smp);
}

void replay_profile_end(struct replay_emit *s)
{
    if (s->prof_open)
        OTLP_EMIT(s->c, profile_end, &s->prof);
    s->prof_open = false;
}

void replay_resource_end(struct replay_emit *s)
{
    replay_profile_end(s);
    if (s->res_open)
        OTLP_EMIT(s->c, resource_end, &s->res);
    s->res_open = false;
}

int replay_request_end(struct replay_emit *s, char *err, size_t errlen)
{
    replay_resource_end(s);
    if (!s->req_open)
        return 0;
    s->req_open = false;
    char why[256] = "";
    if (OTLP_EMIT(s->c, request_end, OTLP_SIGNAL_PROFILES, &s->req, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why[0] ? why : "the request was refused");
        return -1;
    }
    return 1;
}

bool replay_filtered(const struct qopts *o)
{
    return o->has_since || o->has_until || o->n_where || o->n_sample_type || o->n_frame_type;
}

bool replay_sample_type_wanted(const struct qopts *o, lb_str type)
{
    if (o->n_sample_type == 0)
        return true;
    for (size_t i = 0; i < o->n_sample_type; i++)
        if (lb_str_eq(type, o->sample_type[i], strlen(o->sample_type[i])))
            return true;
    return false;
}

bool replay_frame_type_wanted(const struct qopts *o, lb_str type)
{
    for (size_t i = 0; i < o->n_frame_type; i++) {
        const char *want = o->frame_type[i];
        if (strcmp(want, "unknown") == 0 ? type.n == 0 : lb_str_eq(type, want, strlen(want)))
            return true;
    }
    return false;
}

static bool in_window(const struct qopts *o, int64_t t)
{
    return (!o->has_since || t >= o->since) && (!o->has_until || t < o->until);
}

bool replay_cut_series(const struct qopts *o, uint64_t profile_time, uint64_t *ts, size_t *nts, int64_t *vals,
                       size_t *nvals)
{
    if (!o->has_since && !o->has_until)
        return true;
    if (*nts == 0)
        return in_window(o, (int64_t)profile_time);
    if (*nvals != 0 && *nvals != *nts)
        return in_window(o, (int64_t)ts[0]);
    size_t k = 0;
    for (size_t i = 0; i < *nts; i++) {
        if (!in_window(o, (int64_t)ts[i]))
            continue;
        ts[k] = ts[i];
        if (*nvals)
            vals[k] = vals[i];
        k++;
    }
    *nts = k;
    if (*nvals)
        *nvals = k;
    return k > 0;
}
