/*
 * stdout.h - the stdout sink: every resolved sample, human-readable, on a file descriptor.
 *
 * It is the sink people start with ("what is my profiler sending?"), so it keeps the Go
 * lazybackend's line grammar that users already read, fixes what that grammar got wrong, and
 * adds a folded-stacks format for flame graph tools and one JSON object per sample for scripts.
 * The text grammar is described in docs/output.md, the JSON schema and the
 * detail switches in docs/output.md.
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
    STDOUT_FORMAT_JSON,     /* one JSON object per sample per line (docs/output.md) */
};

/* FOLDED: the frame put before every stack's root, so one flame graph splits by it. */
enum folded_root {
    FOLDED_ROOT_NONE,
    FOLDED_ROOT_EXECUTABLE,   /* process.executable.name (resource, else sample) */
    FOLDED_ROOT_CONTAINER,    /* container.id (resource, else sample) */
    FOLDED_ROOT_THREAD,       /* thread.name (sample) */
};
/* The root frame when the attribute is missing or empty. */
#define FOLDED_ROOT_UNKNOWN "[unknown]"

struct stdout_sink_options {
    enum stdout_format format;
    int fd;                 /* 1 normally; may be non-blocking. Unused when path is set */
    size_t max_buffer;      /* bytes held per request before streaming out; 0 = 16 MiB */
    const char *path;       /* write to this file instead (O_APPEND|O_CREAT, 0644) */
    /* Detail switches (TEXT and JSON; the Collector exporter's export_* options): leave out
     * resource / profile / sample attributes, frames, or frames' file, line and column. */
    bool no_resource_attributes, no_profile_attributes, no_sample_attributes;
    bool no_frames, no_file_line;
    enum folded_root folded_root;
    /* When the reader of the output goes away (EPIPE: `lazybackend | head`), stop writing
     * and let requests succeed without this sink (the server has other sinks). Otherwise
     * the request whose write broke fails, and the server stops. */
    bool survive_reader_gone;
};

/* Fills out->type and out->ctx. 0, or -1 (bad options, out of memory, path cannot be opened:
 * errno says why). The sink's close frees what it allocated and closes a file it opened; a
 * given fd stays open. */
int stdout_sink_open(struct sink *out, const struct stdout_sink_options *o);

/* Reopens options.path (after logrotate moved it; cmd/serve.c calls it on SIGHUP), between
 * requests. 0 (also when the sink writes to a given fd), or -1 with errno set: the old file
 * stays in use. */
int stdout_sink_reopen(struct sink *s);

/* True once a write found no reader (EPIPE); the sink writes nothing more. */
bool stdout_sink_reader_gone(const struct sink *s);

#endif
