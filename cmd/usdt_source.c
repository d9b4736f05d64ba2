/*
 * usdt_source.c - what `lazybackend usdt` reads: bpftrace's stdout and stderr (pipes on the
 * loop), or an --input file or pipe, cut into lines, each parsed and handed to the pairing,
 * whose spans go to the export queue.
 *
 * Why apart from usdt.c: reading is the hot path (hundreds of thousands of lines a second)
 * and has its own rules, while usdt.c starts and ends the whole. A bad line is counted and
 * the first of its kind logged, never more (a broken script would flood the log); bpftrace's
 * stderr goes to the log line by line, and its first real error is kept to explain a failed
 * start. A replay (--input) waits while the export queue is full, with its descriptor off the
 * loop, and goes on when the exporter says there is room; a regular file, which epoll cannot
 * watch, is read from zero-delay timers instead, one chunk per loop turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/usdt_internal.h"
#include "lib/escape.h"
#include "lib/log.h"

/* bpftrace may repeat a message for every event (a failing helper, lost events under load):
 * each kind is logged this many times, then only counted (the summary has the counts). */
#define LOGGED_MAX 20
#define LOGGED_LAST " (the last such line logged)"

static void read_source(struct bridge *b);

/* A piece of foreign text, escaped and cut, for one log line. */
static const char *printable(struct buf *tmp, const char *p, size_t n)
{
    buf_reset(tmp);
    esc_text(tmp, p, n < 300 ? n : 300);
    if (!buf_putc(tmp, 0))
        return "";
    return (const char *)tmp->data;
}

/* ---------------------------------------------------------------- spans and lines */

void usdt_on_span(void *ud, const struct usdt_span *sp)
{
    struct bridge *b = ud;
    if (USDT_UNFINISHED(sp->how) && b->cfg.drop_unfinished) {
        b->n.unfinished_dropped++;
        return;
    }
    usdt_exporter_add(b->ex, sp, b->finishing);
}

static void bad_line(struct bridge *b, enum usdt_bad why, const char *line, size_t len)
{
    b->n.bad++;
    if (b->n.bad_kind[why]++)
        return;
    struct buf tmp;
    buf_init(&tmp, 1024);
    log_warn("usdt: line %llu: %s%s%s (lines like it are only counted from now on)", (unsigned long long)b->n.lines,
             usdt_bad_names[why], line ? ": " : "", line ? printable(&tmp, line, len) : "");
    buf_free(&tmp);
}

static void on_line(struct bridge *b, const char *line, size_t len)
{
    struct usdt_event ev;
    uint64_t now = loop_now_ms(b->loop);
    struct buf tmp;
    b->n.lines++;
    usdt_parse_line(&b->parser, line, len, &ev);
    switch (ev.kind) {
    case USDT_START:
        b->n.starts++;
        usdt_pair_start(b->pairing, ev.reqid, ev.reqid_len, ev.timestamp, now);
        break;
    case USDT_END:
        b->n.ends++;
        usdt_pair_end(b->pairing, ev.reqid, ev.reqid_len, ev.duration, ev.has_start, ev.start, now);
        break;
    case USDT_ATTACHED:
        b->attached = true;
        log_info("usdt: bpftrace attached %llu probes; exporting spans to %s", (unsigned long long)ev.count,
                 b->cfg.dry_run ? "nowhere (--dry-run)" : b->cfg.url);
        break;
    case USDT_LOST:
        b->n.lost_events += ev.count;
        if (b->n.lost_lines++ < LOGGED_MAX)
            log_warn("usdt: bpftrace lost %llu events (its buffers were full): some requests will have no start or "
                     "no end%s", (unsigned long long)ev.count, b->n.lost_lines == LOGGED_MAX ? LOGGED_LAST : "");
        break;
    case USDT_NOTE:
    case USDT_TEXT:
        buf_init(&tmp, 1024);
        if (ev.kind == USDT_TEXT)
            log_debug("usdt: script output: %s", printable(&tmp, ev.text, ev.text_len));
        else if (b->n.notes++ < LOGGED_MAX)
            log_warn("usdt: bpftrace: %s%s", printable(&tmp, ev.text, ev.text_len),
                     b->n.notes == LOGGED_MAX ? LOGGED_LAST : "");
        buf_free(&tmp);
        break;
    case USDT_OTHER:
        b->n.others++;
        break;
    case USDT_BAD:
        bad_line(b, ev.bad, line, len);
        break;
    case USDT_BLANK:
        break;
    }
}

/* ---------------------------------------------------------------- reading */

/* Hands out the complete lines read so far; false when a replay must wait for room. */
static bool take_lines(struct bridge *b)
{
    const char *line;
    size_t len;
    int r;
    for (;;) {
        if (b->cfg.input && usdt_exporter_full(b->ex)) {
            if (!b->paused && b->out_on_loop)
                loop_del_fd(b->loop, b->out_fd);
            b->n.waits += !b->paused;
            b->paused = true;
            return false;
        }
        if ((r = usdt_lines_next(&b->out, &line, &len)) == 0)
            return true;
        if (r == 2) {
            b->n.lines++;
            bad_line(b, USDT_BAD_TOO_LONG, NULL, 0);
        } else {
            on_line(b, line, len);
        }
    }
}

void usdt_close_source(struct bridge *b)
{
    if (b->out_fd < 0)
        return;
    if (b->out_on_loop && !b->paused)
        loop_del_fd(b->loop, b->out_fd);
    if (b->out_fd != STDIN_FILENO)
        close(b->out_fd);
    else if (b->stdin_flags >= 0)   /* stdin's file description is shared with the shell */
        fcntl(STDIN_FILENO, F_SETFL, b->stdin_flags);
    b->out_fd = -1;
    if (b->read_timer)
        loop_del_timer(b->loop, b->read_timer);
    b->read_timer = 0;
}

static void on_read_timer(struct loop *l, void *ud)
{
    (void)l;
    struct bridge *b = ud;
    b->read_timer = 0;
    read_source(b);
}

static void read_source(struct bridge *b)
{
    if (!take_lines(b) || b->out_fd < 0)
        return;
    ssize_t got = usdt_lines_read(&b->out, b->out_fd);
    if (got < 0 && errno == EAGAIN)
        return;
    if (got < 0) {
        log_error("usdt: reading %s: %s", b->cfg.input ? b->cfg.input : "bpftrace's output", strerror(errno));
        b->out.eof = true;
    }
    if (!take_lines(b))
        return;
    if (b->out.eof) {
        usdt_close_source(b);
        usdt_maybe_finish(b);
    } else if (!b->out_on_loop && !b->read_timer) {
        b->read_timer = loop_add_timer(b->loop, 0, on_read_timer, b);
    }
}

static void on_source(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)fd;
    (void)events;
    read_source(ud);
}

/* The export queue has room again: a paused replay goes on. */
void usdt_on_room(void *ud)
{
    struct bridge *b = ud;
    if (!b->paused || b->out_fd < 0)
        return;
    b->paused = false;
    if (b->out_on_loop && loop_add_fd(b->loop, b->out_fd, LOOP_READ, on_source, b) != 0) {
        log_error("usdt: cannot watch the input: %s", strerror(errno));
        usdt_close_source(b);
        usdt_maybe_finish(b);
        return;
    }
    read_source(b);
}

/* bpftrace's stderr: to the log, line by line; the first real error is kept for later. */
static void on_stderr(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct bridge *b = ud;
    ssize_t got = usdt_lines_read(&b->err, fd);
    if (got < 0 && errno == EAGAIN)
        return;
    if (got < 0)
        b->err.eof = true;
    const char *line;
    size_t len;
    int r;
    struct buf tmp;
    buf_init(&tmp, 1024);
    while ((r = usdt_lines_next(&b->err, &line, &len)) != 0) {
        if (r == 2 || len == 0)
            continue;
        const char *text = printable(&tmp, line, len);
        if (usdt_harmless_stderr(line, len)) {
            log_debug("usdt: bpftrace: %s", text);
            continue;
        }
        if (b->n.stderr_lines++ < LOGGED_MAX)
            log_warn("usdt: bpftrace: %s%s", text, b->n.stderr_lines == LOGGED_MAX ? LOGGED_LAST : "");
        if (!b->first_error[0])
            snprintf(b->first_error, sizeof b->first_error, "%s", text);
    }
    buf_free(&tmp);
    if (b->err.eof) {
        loop_del_fd(l, fd);
        close(fd);
        b->err_fd = -1;
        usdt_maybe_finish(b);
    }
}

/* The input file, or bpftrace started on the script. 0, or -1 after saying why. */
int usdt_open_source(struct bridge *b, const char *script)
{
    struct usdt_config *c = &b->cfg;
    char err[512];
    if (c->input) {
        b->out_fd = strcmp(c->input, "-") == 0 ? STDIN_FILENO : open(c->input, O_RDONLY | O_CLOEXEC);
        if (b->out_fd < 0) {
            log_error("usdt: --input %s: %s", c->input, strerror(errno));
            return -1;
        }
        if (loop_add_fd(b->loop, b->out_fd, LOOP_READ, on_source, b) == 0) {
            int flags = fcntl(b->out_fd, F_GETFL);
            b->out_on_loop = true;
            if (b->out_fd == STDIN_FILENO)
                b->stdin_flags = flags;
            fcntl(b->out_fd, F_SETFL, flags | O_NONBLOCK);
        } else if (!(b->read_timer = loop_add_timer(b->loop, 0, on_read_timer, b))) {   /* a regular file */
            return -1;
        }
        return 0;
    }
    struct usdt_child ch;
    if (usdt_spawn(c, script, &ch, err, sizeof err) != 0) {
        log_error("usdt: %s", err);
        return -1;
    }
    b->child = ch.pid;
    b->out_fd = ch.out_fd;
    b->err_fd = ch.err_fd;
    if (loop_add_fd(b->loop, b->out_fd, LOOP_READ, on_source, b) != 0 ||
        loop_add_fd(b->loop, b->err_fd, LOOP_READ, on_stderr, b) != 0) {
        log_error("usdt: cannot watch bpftrace's output: %s", strerror(errno));
        return -1;
    }
    b->out_on_loop = true;
    log_info("usdt: started %s (pid %d)%s%s", c->bpftrace, (int)ch.pid, c->script ? " on " : "",
             c->script ? c->script : "");
    return 0;
}
