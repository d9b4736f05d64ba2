/*
 * stdout.h - the stdout sink: every resolved sample, human-readable, on a file descriptor.
 *
 * It is the sink people start with ("what is my profiler sending?"), so it keeps the Go
 * lazybackend's line grammar that users already read, fixes what that grammar got wrong, and
 * adds a folded-stacks format for flame graph tools. The grammar is described in
 * sinks/README-grammar.md.
 *
 * Each request's output is held in memory and written with write(2) when the request commits,
 * so requests never interleave and a `tail -f` sees a request as soon as it is done; a request
 * whose output grows past max_buffer is streamed out in pieces instead, so memory stays bounded.
 */
#ifndef LB_SINKS_STDOUT_H
#define LB_SINKS_STDOUT_H

#include <stddef.h>

#include "sinks/sink.h"

enum stdout_format {
    STDOUT_FORMAT_TEXT,     /* the Go lazybackend's block grammar, fixed and extended */
    STDOUT_FORMAT_FOLDED,   /* "root;...;leaf weight" lines, one block per request */
};

struct stdout_sink_options {
    enum stdout_format format;
    int fd;                 /* 1 normally; may be non-blocking */
    size_t max_buffer;      /* bytes held per request before streaming out; 0 = 16 MiB */
};

/* Fills out->type and out->ctx. 0, or -1 (bad options, out of memory). The sink's close
 * frees what it allocated; the fd stays open. */
int stdout_sink_open(struct sink *out, const struct stdout_sink_options *o);

#endif
