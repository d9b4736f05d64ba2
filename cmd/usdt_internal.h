/*
 * usdt_internal.h - what the files of `lazybackend usdt` share beyond usdt.h: the options,
 * the line reader, the export queue and its HTTP client, and bpftrace as a child process.
 *
 *   usdt.c         the command: setting up, signals, shutdown, the summary
 *   usdt_source.c  reading bpftrace's output (or --input) line by line into the pairing
 *   usdt_config.c  --help, the flags and the OTEL_* variables into struct usdt_config
 *   usdt_lines.c   bounded line splitting of a byte stream (bpftrace's stdout and stderr,
 *                  --input)
 *   usdt_child.c   the built-in script, the target's path, spawning bpftrace, reading its
 *                  errors
 *   usdt_export.c  the bounded queue, batches with the OTEL_BSP_* semantics, retries
 * and usdt.h's parts (parse, pair, encode, env), which need none of these.
 */
#ifndef LB_CMD_USDT_INTERNAL_H
#define LB_CMD_USDT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmd/usdt.h"
#include "lib/buf.h"
#include "lib/loop.h"

#define USDT_MAX_HEADERS 32
#define USDT_MAX_RESOURCE 32

/* ---------------------------------------------------------------- usdt_config.c */

struct usdt_config {
    /* where the events come from */
    const char *input;            /* --input FILE|-: a replay, no bpftrace */
    const char *script;           /* --script FILE instead of the built-in script */
    const char *bpftrace;         /* the program (default "bpftrace", found on PATH) */
    const char *binary;           /* --binary PATH: where the probes are */
    long pid;                     /* --pid: the process traced, 0 = none */
    const char *provider, *start_probe, *end_probe;
    bool reqid_int;               /* --reqid int: arg0 is an integer, not a string pointer */
    bool print_script, dry_run;
    size_t max_line;
    /* pairing */
    struct usdt_pair_options pair;
    bool drop_unfinished;
    /* export */
    char url[1024];
    bool json, gzip;
    struct usdt_kv headers[USDT_MAX_HEADERS];
    size_t n_headers;
    struct usdt_kv resource[USDT_MAX_RESOURCE];
    size_t n_resource;
    const char *span_name;
    uint64_t timeout_ms;          /* one HTTP request (OTEL_EXPORTER_OTLP_TIMEOUT), 0 = none */
    uint64_t schedule_delay_ms;   /* OTEL_BSP_SCHEDULE_DELAY */
    uint64_t export_timeout_ms;   /* OTEL_BSP_EXPORT_TIMEOUT: a batch, retries included */
    size_t max_queue, max_batch;  /* OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
    uint64_t shutdown_timeout_ms;
};

/* argv after "usdt", and the environment. -1 to go on, else the exit status (0 after
 * --help, 2 after a bad option, having said which). */
int usdt_config_parse(int argc, char **argv, struct usdt_config *c);
void usdt_config_free(struct usdt_config *c);

/* ---------------------------------------------------------------- usdt_lines.c */

/* Bytes in, lines out, each at most max_line bytes: a longer one is reported once (as
 * too_long) and skipped to its newline, so no line can make the buffer grow. */
struct usdt_lines {
    char *buf;
    size_t cap, len, pos;         /* pos: the start of the first line not handed out */
    size_t max_line;
    bool skipping;                /* inside a line that was too long */
    bool eof;
};

int usdt_lines_init(struct usdt_lines *l, size_t max_line);
void usdt_lines_free(struct usdt_lines *l);
/* One read(2) into the free room. >0 bytes, 0 at end of file (eof set), -1 with errno
 * (EAGAIN: nothing now). */
ssize_t usdt_lines_read(struct usdt_lines *l, int fd);
/* The next line (without '\n'; at eof the last line needs none). 1 and the line, 0 when
 * there is no complete line yet, 2 for a line that was too long (line is NULL). */
int usdt_lines_next(struct usdt_lines *l, const char **line, size_t *len);

/* ---------------------------------------------------------------- usdt_child.c */

struct usdt_child {
    pid_t pid;
    int out_fd, err_fd;           /* its stdout and stderr, non-blocking */
};

/* The probe's file: --binary, else the traced process's executable. 0, or -1 with err. */
int usdt_target_path(const struct usdt_config *c, char *path, size_t len, char *err, size_t errlen);
/* The built-in script for the provider's probes in `path`. 0, or -1 with err. */
int usdt_build_script(const struct usdt_config *c, const char *path, struct buf *out, char *err, size_t errlen);
/* bpftrace -f json -B line [-p PID] (-e SCRIPT | FILE), in its own process group, with
 * signals as they were before this process blocked them. 0, or -1 with err (exec failed:
 * not installed, not executable). */
int usdt_spawn(const struct usdt_config *c, const char *script, struct usdt_child *ch, char *err, size_t errlen);
/* bpftrace's stderr lines that say nothing wrong (RLIMIT_MEMLOCK on kernels that account
 * BPF memory by memcg, detach noise without tracefs). */
bool usdt_harmless_stderr(const char *line, size_t len);
/* What an error line from a bpftrace that failed to start means, in words, or NULL. */
const char *usdt_startup_hint(const char *line);

/* ---------------------------------------------------------------- usdt_export.c */

struct usdt_export_options {
    const char *url;
    const struct usdt_kv *headers;
    size_t n_headers;
    const struct usdt_resource *resource;
    bool json, gzip, dry_run;
    bool block;                   /* a replay: never drop, the reader waits instead */
    uint64_t timeout_ms, schedule_delay_ms, export_timeout_ms;
    size_t max_queue, max_batch;
};

struct usdt_export_stats {
    uint64_t queued;              /* spans taken into the queue */
    uint64_t exported;            /* accepted by the receiver */
    uint64_t rejected;            /* refused in a partial success (never retried) */
    uint64_t failed;              /* in batches given up on, or left at the deadline */
    uint64_t dropped;             /* not taken: the queue was full */
    uint64_t requests, retries, bytes;
    size_t max_queued;
};

struct usdt_exporter;

struct usdt_exporter *usdt_exporter_new(struct loop *loop, const struct usdt_export_options *o, char *err, size_t errlen);
void usdt_exporter_free(struct usdt_exporter *ex);
/* A span into the queue, with new ids. `force` takes it even past the queue's size (spans
 * still open at shutdown). False when it was dropped. */
bool usdt_exporter_add(struct usdt_exporter *ex, const struct usdt_span *sp, bool force);
/* The queue holds max_queue spans or more (a replay's reader waits). */
bool usdt_exporter_full(const struct usdt_exporter *ex);
/* `fn` is called (from the loop) when a full queue has room again. */
void usdt_exporter_on_room(struct usdt_exporter *ex, void (*fn)(void *ud), void *ud);
/* Sends everything now, batch after batch; `done` once nothing is queued or in flight. */
void usdt_exporter_flush(struct usdt_exporter *ex, void (*done)(void *ud), void *ud);
/* Gives up: cancels what is in flight; what was not delivered is counted as failed and
 * returned. */
uint64_t usdt_exporter_abandon(struct usdt_exporter *ex);
const struct usdt_export_stats *usdt_exporter_stats(const struct usdt_exporter *ex);

/* ---------------------------------------------------------------- usdt.c, usdt_source.c */

/* The command's state: one per process. */
struct bridge {
    struct usdt_config cfg;
    struct loop *loop;
    int sigfd;
    struct usdt_parser parser;
    struct usdt_pairing *pairing;
    struct usdt_exporter *ex;
    struct usdt_resource resource;
    char target[4096];              /* the probes' file, "" without one */
    /* the source: bpftrace's stdout, or --input */
    struct usdt_lines out, err;
    int out_fd, err_fd;             /* -1 once at their end */
    bool out_on_loop;               /* a pipe watched by the loop; else read from timers */
    int stdin_flags;                /* --input -: stdin's flags before O_NONBLOCK, -1 = untouched */
    bool paused;                    /* --input: the export queue is full */
    uint64_t read_timer;
    /* bpftrace */
    pid_t child;                    /* 0 without one */
    bool reaped, killed;
    int child_status;
    bool attached;
    char first_error[512];          /* the first stderr line that was not noise */
    /* ending */
    bool stopping, finishing;
    uint64_t tick_timer, deadline_timer;
    struct {
        uint64_t lines, starts, ends, lost_events, lost_lines, notes, stderr_lines, others, unfinished_dropped, bad;
        uint64_t waits;             /* --input: times the reader waited for the queue */
        uint64_t bad_kind[USDT_BAD_KINDS];
    } n;
};

/* usdt_source.c: the input opened and on the loop (0), or -1 after saying why. */
int usdt_open_source(struct bridge *b, const char *script);
/* Stops reading the input (bpftrace's stdout or --input); safe when already closed. */
void usdt_close_source(struct bridge *b);
/* The pairing's spans into the export queue (usdt_emit_fn). */
void usdt_on_span(void *ud, const struct usdt_span *sp);
/* The export queue has room again: a waiting replay goes on (usdt_exporter_on_room). */
void usdt_on_room(void *ud);
/* usdt.c: when the input is over (and bpftrace reaped), drains the pairing and sends what
 * is left; does nothing before that, or the second time. */
void usdt_maybe_finish(struct bridge *b);

#endif
