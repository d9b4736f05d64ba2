/*
 * spans.h - the stdout sink's span output (OTLP traces), kept apart from the profile formats.
 *
 * These three functions have the shape of sink_type callbacks and are what the stdout sink's
 * vtable (sinks/stdout/stdout.c) points at for traces: TEXT prints one block per span under a
 * block per resource, JSON one object per span per line (docs/receiving.md has both grammars).
 * FOLDED shows stacks, and spans have none: it prints nothing for them.
 */
#ifndef LB_SINKS_SPANS_H
#define LB_SINKS_SPANS_H

#include "sinks/sink.h"

void stdout_span_resource_begin(struct sink *s, const struct lb_resource *r);
void stdout_span(struct sink *s, const struct lb_span *sp);
void stdout_span_resource_end(struct sink *s, const struct lb_resource *r);

#endif
