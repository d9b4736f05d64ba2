/*
 * stdout.c - the stdout sink's plumbing: one output buffer per request, written whole at
 * request_end (streamed in max_buffer pieces when it grows past that), failures turned into a
 * failed request_end, aborts into a discarded block; the output file (--output) and its
 * reopening after logrotate. The formats themselves are in text.c, json.c and folded.c, the
 * span formats in spans.c.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sinks/stdout/internal.h"
#include "sinks/stdout/spans.h"   /* traces: the span formats live there */

#define DEFAULT_MAX_BUFFER ((size_t)16 << 20)
/* Folded stacks are held until request_end (they are merged and sorted), so they get their own
 * cap: 16 times max_buffer, and never less than 64 MiB. */
#define FOLDED_MIN_BYTES ((size_t)64 << 20)
/* An abort reason is one line for a human, not a dump. */
#define ABORT_REASON_MAX 1024

/* Writes everything, through partial writes, EINTR and a non-blocking fd. On EAGAIN it waits
 * without a timeout, like a blocking fd would: a paused reader (less, a terminal on hold)
 * pauses the output, it must not fail requests. */
static int write_all(int fd, const uint8_t *p, size_t n, char *why, size_t whylen)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
            snprintf(why, whylen, "poll on fd %d: %s", fd, strerror(errno));
            return -1;
        }
        snprintf(why, whylen, "write to fd %d: %s", fd, k == 0 ? "nothing written" : strerror(errno));
        return -1;
    }
    return 0;
}

static void fail(struct stdout_state *st, const char *why)
{
    if (st->failed)
        return;
    st->failed = true;
    snprintf(st->why, sizeof st->why, "%s", why);
}

/* An append that failed fails the request (checked after each event and before any write,
 * so a block with a hole is never written). */
static void check_oom(struct stdout_state *st)
{
    if (st->out.oom)
        fail(st, "out of memory formatting the output");
}

/* Writes and empties the buffer; true when something was written. After a failure nothing
 * more is written for the request. */
static bool flush(struct stdout_state *st)
{
    bool wrote = false;
    check_oom(st);
    if (st->out.b.len > 0 && !st->failed) {
        if (write_all(st->fd, st->out.b.data, st->out.b.len, st->why, sizeof st->why) != 0) {
            st->reader_gone = errno == EPIPE;
            st->failed = st->write_failed = true;
        }
        st->flushed += st->out.b.len;
        wrote = true;   /* possibly in part, which counts too */
    }
    buf_reset(&st->out.b);
    return wrote;
}

void stdout_flush_full(struct stdout_state *st)
{
    if (flush(st))
        st->streamed = true;
}

/* A request that had part of its output written but will not complete says so in the
 * stream, so a reader knows the block above is cut. Best effort: the request has failed
 * already, a failure to say so changes nothing. */
static void write_abort_line(struct stdout_state *st, const char *reason)
{
    struct buf line;
    char ignored[64];
    size_t n = strlen(reason);
    buf_init(&line, (size_t)16 << 10);
    if (buf_append(&line, "!!! request aborted: ", 21) &&
        esc_text(&line, reason, n < ABORT_REASON_MAX ? n : ABORT_REASON_MAX) &&
        buf_putc(&line, '\n'))
        (void)write_all(st->fd, line.data, line.len, ignored, sizeof ignored);
    buf_free(&line);
}

/* Back to the idle state between requests; memory above the usual size is given back. */
static void end_request(struct stdout_state *st)
{
    buf_reset(&st->out.b);
    if (st->out.b.cap / 2 > st->max_buffer)
        buf_free(&st->out.b);
    st->out.oom = false;
    st->streamed = st->failed = st->write_failed = st->unknown_shown = false;
    st->flushed = 0;
    st->why[0] = '\0';
    if (st->folded)
        folded_clear(st->folded);
    stack_text_clear(st, st->stack_text.b.cap / 2 > st->max_buffer ||
                         st->frame_text.b.cap / 2 > st->max_buffer);
}

static struct stdout_state *state(struct sink *s)
{
    return s->ctx;
}

static void on_request_begin(struct sink *s, const struct lb_request *r)
{
    (void)r;
    end_request(state(s));   /* a request that was neither ended nor aborted leaves nothing */
}

static void on_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct stdout_state *st = state(s);
    if (st->failed || st->format == STDOUT_FORMAT_FOLDED)
        return;
    if (st->format == STDOUT_FORMAT_JSON)
        json_resource_begin(st, r);
    else
        text_resource_begin(st, r);
    check_oom(st);
}

static void on_profile_begin(struct sink *s, const struct lb_profile *p)
{
    struct stdout_state *st = state(s);
    if (st->failed || st->format == STDOUT_FORMAT_FOLDED)
        return;
    if (st->format == STDOUT_FORMAT_JSON)
        json_profile_begin(st, p);
    else
        text_profile_begin(st, p);
    check_oom(st);
}

static void on_sample(struct sink *s, const struct lb_sample *smp)
{
    struct stdout_state *st = state(s);
    if (st->failed)
        return;
    if (st->format == STDOUT_FORMAT_FOLDED) {
        if (folded_add(st->folded, st, smp) != 0) {
            char why[128];
            snprintf(why, sizeof why, "folded stacks of the request exceed %zu bytes",
                     st->folded_max);
            fail(st, why);
        }
        return;
    }
    if (st->format == STDOUT_FORMAT_JSON) {
        if (!json_sample(st, smp))
            return;   /* the request failed: json_within_budget */
    } else {
        text_sample(st, smp);
    }
    stdout_maybe_flush(st);
    check_oom(st);
}

static void on_profile_end(struct sink *s, const struct lb_profile *p)
{
    struct stdout_state *st = state(s);
    (void)p;
    if (st->failed || st->format != STDOUT_FORMAT_TEXT)
        return;
    text_profile_end(st);
    check_oom(st);
}

static void on_resource_end(struct sink *s, const struct lb_resource *r)
{
    struct stdout_state *st = state(s);
    (void)r;
    if (st->failed || st->format != STDOUT_FORMAT_TEXT)
        return;
    text_resource_end(st);
    stdout_maybe_flush(st);
    check_oom(st);
}

/* What is left of the sink once its reader is gone and the server goes on without it: no
 * callback but close, so the fan-out skips it and it no longer counts as taking spans. */
static void on_close(struct sink *s, int deadline_ms);
static const struct sink_type stdout_without_reader = { .name = "stdout", .close = on_close };

static int on_request_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    struct stdout_state *st = state(s);
    (void)r;
    if (!st->failed && st->format == STDOUT_FORMAT_FOLDED)
        folded_render(st->folded, st);
    check_oom(st);
    (void)flush(st);
    int rc = 0;
    if (st->reader_gone && st->opt.survive_reader_gone) {
        s->type = &stdout_without_reader;   /* nobody reads this output any more */
    } else if (st->failed) {
        snprintf(why, whylen, "%s", st->why);
        if (st->streamed && !st->write_failed)
            write_abort_line(st, st->why);
        rc = -1;
    }
    end_request(st);
    return rc;
}

static void on_request_abort(struct sink *s, const struct lb_request *r, const char *reason)
{
    struct stdout_state *st = state(s);
    (void)r;
    /* A retraction (no reason, otlp/events.h) of a request whose output has begun: the cut
     * block is marked, and the request follows whole, decoded again. */
    if (st->streamed && !st->write_failed)
        write_abort_line(st, reason ? reason : "retracted, decoded again below");
    if (st->reader_gone && st->opt.survive_reader_gone)
        s->type = &stdout_without_reader;
    end_request(st);
}

static void free_state(struct stdout_state *st)
{
    buf_free(&st->out.b);
    buf_free(&st->json_resource.b);
    buf_free(&st->json_profile.b);
    folded_free(st->folded);
    stack_text_clear(st, true);
    if (st->path && st->fd >= 0)
        close(st->fd);
    free(st->path);
    free(st);
}

static void on_close(struct sink *s, int deadline_ms)
{
    struct stdout_state *st = state(s);
    (void)deadline_ms;   /* nothing is queued past request_end */
    if (!st)
        return;
    free_state(st);
    s->ctx = NULL;
}

static const struct sink_type stdout_sink_type = {
    .name = "stdout",
    .request_begin = on_request_begin,
    .resource_begin = on_resource_begin,
    .profile_begin = on_profile_begin,
    .sample = on_sample,
    .profile_end = on_profile_end,
    .resource_end = on_resource_end,
    .request_end = on_request_end,
    .request_abort = on_request_abort,
    .close = on_close,
    .span_resource_begin = stdout_span_resource_begin,
    .span = stdout_span,
    .span_resource_end = stdout_span_resource_end,
};

/* The output file: appended to (several writers and logrotate's copytruncate stay sane),
 * created 0644 when missing, not inherited by children. */
static int open_output(const char *path)
{
    int fd;
    do
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    return fd;
}

bool stdout_sink_reader_gone(const struct sink *s)
{
    const struct stdout_state *st = s->ctx;
    return st && st->reader_gone;
}

int stdout_sink_reopen(struct sink *s)
{
    struct stdout_state *st = state(s);
    if (!st->path)
        return 0;
    /* Requests run start to end without yielding to the loop, and signals are read from the
     * loop: there is never a request half written here. */
    assert(st->out.b.len == 0 && !st->streamed);
    int fd = open_output(st->path);
    if (fd < 0)
        return -1;
    close(st->fd);
    st->fd = fd;
    return 0;
}

static bool valid_options(const struct stdout_sink_options *o)
{
    if (!o || (!o->path && o->fd < 0) || (o->path && !*o->path))
        return false;
    if (o->format != STDOUT_FORMAT_TEXT && o->format != STDOUT_FORMAT_FOLDED &&
        o->format != STDOUT_FORMAT_JSON)
        return false;
    return o->folded_root == FOLDED_ROOT_NONE || o->folded_root == FOLDED_ROOT_EXECUTABLE ||
           o->folded_root == FOLDED_ROOT_CONTAINER || o->folded_root == FOLDED_ROOT_THREAD;
}

static size_t folded_cap(size_t max_buffer)
{
    if (max_buffer > SIZE_MAX / 16)
        return SIZE_MAX;
    return 16 * max_buffer > FOLDED_MIN_BYTES ? 16 * max_buffer : FOLDED_MIN_BYTES;
}

int stdout_sink_open(struct sink *out, const struct stdout_sink_options *o)
{
    if (!valid_options(o)) {
        errno = EINVAL;
        return -1;
    }
    struct stdout_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->format = o->format;
    st->opt = *o;
    st->opt.path = NULL;   /* the caller's string need not outlive this call */
    st->fd = o->fd;
    st->max_buffer = o->max_buffer ? o->max_buffer : DEFAULT_MAX_BUFFER;
    /* No cap of its own: flushes keep it near max_buffer, plus at most one line, and a line
     * is bounded by the request it comes from. The JSON prefixes are bounded the same way. */
    buf_init(&st->out.b, SIZE_MAX);
    buf_init(&st->json_resource.b, SIZE_MAX);
    buf_init(&st->json_profile.b, SIZE_MAX);
    buf_init(&st->stack_text.b, SIZE_MAX);
    buf_init(&st->frame_text.b, SIZE_MAX);
    st->gen = 1;   /* slots are made zeroed: generation 0 is never current */
    if (st->format == STDOUT_FORMAT_FOLDED) {
        st->folded_max = folded_cap(st->max_buffer);
        if (!(st->folded = folded_new(st->folded_max, o->folded_root)))
            goto fail;
    }
    if (o->path) {
        st->fd = -1;
        if (!(st->path = strdup(o->path)) || (st->fd = open_output(o->path)) < 0)
            goto fail;
    }
    out->type = &stdout_sink_type;
    out->ctx = st;
    return 0;
fail:;
    int saved = errno;
    free_state(st);
    errno = saved;
    return -1;
}
