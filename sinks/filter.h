/*
 * filter.h - the filter stage: only the samples the user asked for reach the sinks.
 *
 * A node sends thousands of samples every few seconds; the person at the terminal chases one
 * container, one language or one kind of event. The stage is itself a sink that wraps the
 * real sink set: the decoder drives {filter}, the filter forwards to the inner set what
 * passes. Every sink (stdout, SQLite, ClickHouse) therefore sees the same filtered stream, and
 * no sink needs a filter of its own. cmd/pipeline.c inserts the stage only when a filter is
 * set, so an unfiltered run pays nothing.
 *
 * Filters (all must pass):
 *   sample_types   the profile's sample type is one of these (exact, case-sensitive)
 *   container_id   the resource's container.id equals it
 *   require_container_id   the resource has a non-empty container.id
 *   resource       key=value pairs; each key's value equals (strings as strings, ints in
 *                  decimal, booleans as true/false)
 *   frame_types    only frames of these types are kept ("unknown" = a frame without type); a
 *                  sample left without frames is dropped
 *   min_frames     samples with fewer frames (after frame_types) are dropped
 * A key looked up "on the resource" (container.id, --resource keys) is taken from the
 * resource's attributes when the resource has it, else from the sample's: profilers before
 * March 2026 put process.* attributes on samples.
 *
 * Event nesting stays valid, and nothing empty is passed on: resource_begin and profile_begin
 * are forwarded when the first sample of the resource/profile passes, so a filtered-out
 * resource or profile produces no events at all (the Go lazybackend left empty resource blocks
 * behind). Per request, a debug log line counts what each filter dropped.
 */
#ifndef LB_SINKS_FILTER_H
#define LB_SINKS_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sinks/sink.h"

/* How many times each list option may be given on the command line. */
#define FILTER_MAX_ARGS 16

struct filter_config {
    /* Comma-separated lists (parts trimmed, empty parts ignored); several lists add up. */
    const char *sample_types[FILTER_MAX_ARGS];
    size_t n_sample_types;
    const char *frame_types[FILTER_MAX_ARGS];
    size_t n_frame_types;
    const char *container_id;            /* NULL = any */
    bool require_container_id;
    const char *resource[FILTER_MAX_ARGS];   /* "key=value" */
    size_t n_resource;
    unsigned min_frames;                 /* 0 = any */
};

/* Why the stage dropped a sample: one per filter, in the order the debug line lists them. */
enum filter_reason {
    FILTER_BY_SAMPLE_TYPE,
    FILTER_BY_REQUIRE_CONTAINER_ID,
    FILTER_BY_CONTAINER_ID,
    FILTER_BY_RESOURCE,
    FILTER_BY_FRAME_TYPES,
    FILTER_BY_MIN_FRAMES,
    FILTER_REASONS
};

/* The filter's name for /metrics: "sample_types", "require_container_id", "container_id",
 * "resource", "frame_types", "min_frames" (the option without its dashes). */
const char *filter_reason_name(enum filter_reason r);

/* What the stage did since it was opened, counted when each request ends (whether the inner
 * sinks then committed it or not): samples that came in, passed, and were dropped by each
 * filter; frames --frame-types removed from samples that passed or were dropped. */
struct filter_stats {
    uint64_t samples_in, samples_passed, dropped[FILTER_REASONS], frames_removed;
};

/* The totals of a stage made by filter_open. */
void filter_stats(const struct sink *stage, struct filter_stats *out);

/* True when the config filters anything (cmd/pipeline.c inserts the stage only then). */
bool filter_config_active(const struct filter_config *cfg);

/* 0 when every option is well-formed; otherwise -1 and a message for the user in err
 * (a list with no type in it, a --resource without '=' or with an empty key). */
int filter_config_check(const struct filter_config *cfg, char *err, size_t errlen);

/* Fills out->type and out->ctx. The stage copies what it needs from cfg and keeps `inner`
 * (which must outlive it); its close closes the inner set too. 0, or -1 (bad config, out of
 * memory). */
int filter_open(struct sink *out, const struct filter_config *cfg, struct sink_set *inner);

#endif
