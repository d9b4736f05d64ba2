/*
 * usdt.c - `lazybackend usdt`: an application's USDT request probes, through bpftrace, as
 * OTLP spans.
 *
 * Why in this binary, on this loop: the Go bridge this replaces read bpftrace with a
 * goroutine, lost every queued span on SIGINT (it SIGKILLed bpftrace and exited through
 * log.Fatalf) and on any bpftrace failure. Here one thread reads bpftrace's stdout and stderr
 * from pipes (usdt_source.c), pairs events and exports spans (libcurl multi) on one epoll
 * loop; this file sets that up, and every way of ending goes through the same steps:
 *   1. SIGINT/SIGTERM/SIGHUP: one SIGINT to bpftrace (its own process group, so a terminal's
 *      Ctrl-C reaches only us), which makes it stop and print what is left;
 *   2. its stdout is read to the end and it is reaped (or the --input file ends);
 *   3. what pairing still holds is resolved (pending ends, open starts: usdt_pair_drain) and
 *      the export queue is sent, all within --shutdown-timeout; then the process exits.
 * When bpftrace ends by itself (the traced process exited) it is steps 2 and 3. A second
 * signal, or the deadline, kills bpftrace and gives up on what is unsent (counted, logged).
 * bpftrace failing before it attached its probes is reported with what it said and what that
 * usually means (not root, no such process, no such probes).
 *
 * --input replays lines from a file (or a pipe) instead: the same parser, pairing and export,
 * except that a full queue pauses the reading instead of dropping spans.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/usdt_internal.h"
#include "cmd/version.h"
#include "lib/log.h"

#define DEFAULT_SERVICE "usdt-bpftrace-exporter"

/* ---------------------------------------------------------------- ending */

static void on_flushed(void *ud)
{
    struct bridge *b = ud;
    loop_stop(b->loop);
}

/* The deadline, or a second signal: bpftrace is killed, what is unsent is given up. */
static void give_up(struct bridge *b, const char *why)
{
    if (b->deadline_timer)
        loop_del_timer(b->loop, b->deadline_timer);
    b->deadline_timer = 0;
    if (b->child && !b->reaped) {
        log_warn("usdt: %s: killing bpftrace", why);
        kill(b->child, SIGKILL);
        waitpid(b->child, &b->child_status, 0);
        b->reaped = b->killed = true;
    }
    if (!b->finishing) {
        b->finishing = true;
        usdt_pair_drain(b->pairing);
    }
    uint64_t lost = usdt_exporter_abandon(b->ex);
    if (lost)
        log_warn("usdt: %s: %llu spans not delivered", why, (unsigned long long)lost);
    loop_stop(b->loop);
}

static void on_deadline(struct loop *l, void *ud)
{
    (void)l;
    struct bridge *b = ud;
    b->deadline_timer = 0;
    give_up(b, "--shutdown-timeout passed");
}

static void arm_deadline(struct bridge *b)
{
    if (!b->deadline_timer)
        b->deadline_timer = loop_add_timer(b->loop, b->cfg.shutdown_timeout_ms, on_deadline, b);
}

/* The source is over (bpftrace reaped and both pipes at their end, or the input read): the
 * pairing is drained into the queue and the queue sent. */
void usdt_maybe_finish(struct bridge *b)
{
    if (b->finishing || b->out_fd >= 0 || (b->child && (!b->reaped || b->err_fd >= 0)))
        return;
    b->finishing = true;
    if (!b->stopping)
        arm_deadline(b);
    if (b->child && !b->attached && b->child_status != 0) {
        int code = WIFEXITED(b->child_status) ? WEXITSTATUS(b->child_status) : 128 + WTERMSIG(b->child_status);
        const char *hint = usdt_startup_hint(b->first_error);
        log_error("usdt: bpftrace exited with status %d before attaching its probes%s%s", code,
                  b->first_error[0] ? ": " : "", b->first_error);
        if (hint || geteuid() != 0)
            log_error("usdt: %s", hint ? hint : "bpftrace needs root");
    } else if (b->child && !b->stopping) {
        log_info("usdt: bpftrace ended (the traced process is gone?); sending what is left");
    }
    if (b->tick_timer)
        loop_del_timer(b->loop, b->tick_timer);
    b->tick_timer = 0;
    usdt_pair_drain(b->pairing);
    usdt_exporter_flush(b->ex, on_flushed, b);
}

static void begin_stop(struct bridge *b, const char *why)
{
    if (b->stopping) {
        give_up(b, why);
        return;
    }
    b->stopping = true;
    log_info("usdt: %s: stopping; sending what is left within %llu ms (again to stop now)", why,
             (unsigned long long)b->cfg.shutdown_timeout_ms);
    arm_deadline(b);
    if (b->child && !b->reaped)
        kill(b->child, SIGINT);
    if (b->cfg.input)
        usdt_close_source(b);
    usdt_maybe_finish(b);
}

static void on_signal(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)events;
    struct bridge *b = ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            if (b->child && !b->reaped && waitpid(b->child, &b->child_status, WNOHANG) == b->child) {
                b->reaped = true;
                usdt_maybe_finish(b);
            }
        } else {
            begin_stop(b, si.ssi_signo == SIGINT ? "SIGINT" : si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGHUP");
        }
    }
}

static void on_tick(struct loop *l, void *ud)
{
    struct bridge *b = ud;
    b->tick_timer = 0;
    usdt_pair_expire(b->pairing, loop_now_ms(l));
    uint64_t every = b->cfg.pair.grace_ms / 2;
    every = every < 10 ? 10 : every > 1000 ? 1000 : every;
    if (!b->finishing)
        b->tick_timer = loop_add_timer(l, every, on_tick, b);
}

/* ---------------------------------------------------------------- starting */

static int setup_signals(struct bridge *b)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    b->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return b->sigfd < 0 ? -1 : loop_add_fd(b->loop, b->sigfd, LOOP_READ, on_signal, b);
}

/* service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES gave one: the
 * traced program's file name. */
static int complete_resource(struct bridge *b)
{
    struct usdt_config *c = &b->cfg;
    for (size_t i = 0; i < c->n_resource; i++)
        if (strcmp(c->resource[i].key, "service.name") == 0)
            goto done;
    const char *slash = strrchr(b->target, '/');
    char *k = strdup("service.name"), *v = strdup(b->target[0] ? (slash ? slash + 1 : b->target) : DEFAULT_SERVICE);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    c->resource[c->n_resource++] = (struct usdt_kv){ k, v };
done:
    b->resource = (struct usdt_resource){ c->resource, c->n_resource, "lazybackend-usdt", LAZYBACKEND_VERSION,
                                          c->span_name };
    return 0;
}

/* The target, the script, and --print-script. 0 to go on, 1 when done (printed), -1. */
static int prepare_script(struct bridge *b, struct buf *script)
{
    struct usdt_config *c = &b->cfg;
    char err[600];
    if (c->input || c->script) {
        if ((c->binary || c->pid) && usdt_target_path(c, b->target, sizeof b->target, err, sizeof err) != 0)
            b->target[0] = 0;   /* only the default service name comes from it */
        if (c->pid && kill((pid_t)c->pid, 0) != 0 && errno == ESRCH) {
            log_error("usdt: --pid %ld: no such process", c->pid);
            return -1;
        }
        return 0;
    }
    if (usdt_target_path(c, b->target, sizeof b->target, err, sizeof err) != 0 ||
        usdt_build_script(c, b->target, script, err, sizeof err) != 0) {
        log_error("usdt: %s", err);
        return -1;
    }
    if (c->print_script) {
        fwrite(script->data, 1, script->len, stdout);
        return 1;
    }
    return 0;
}

static void log_summary(const struct bridge *b)
{
    const struct usdt_pair_stats *p = usdt_pair_stats(b->pairing);
    const struct usdt_export_stats *e = usdt_exporter_stats(b->ex);
    log_info("usdt: summary lines=%llu starts=%llu ends=%llu bad=%llu lost_events=%llu complete=%llu reordered=%llu "
             "no_start=%llu ttl=%llu duplicate_starts=%llu evicted=%llu shutdown=%llu unfinished_dropped=%llu "
             "duplicate_ends=%llu orphan_ends=%llu start_mismatch=%llu exported=%llu rejected=%llu failed=%llu "
             "dropped=%llu requests=%llu retries=%llu max_queued=%zu waits=%llu notes=%llu",
             (unsigned long long)b->n.lines, (unsigned long long)b->n.starts, (unsigned long long)b->n.ends,
             (unsigned long long)b->n.bad, (unsigned long long)b->n.lost_events, (unsigned long long)p->complete,
             (unsigned long long)p->reordered, (unsigned long long)p->no_start, (unsigned long long)p->ttl,
             (unsigned long long)p->duplicate_starts, (unsigned long long)p->evicted,
             (unsigned long long)p->shutdown, (unsigned long long)b->n.unfinished_dropped,
             (unsigned long long)p->duplicate_ends, (unsigned long long)p->orphan_ends,
             (unsigned long long)p->start_mismatch, (unsigned long long)e->exported,
             (unsigned long long)e->rejected, (unsigned long long)e->failed, (unsigned long long)e->dropped,
             (unsigned long long)e->requests, (unsigned long long)e->retries, e->max_queued,
             (unsigned long long)b->n.waits, (unsigned long long)b->n.notes);
}

/* 0 when every span was delivered; bpftrace's status when it failed on its own; 1 when it
 * could not start or spans were lost. */
static int exit_status(const struct bridge *b)
{
    const struct usdt_export_stats *e = usdt_exporter_stats(b->ex);
    if (b->child && !b->killed && b->child_status != 0) {
        if (!b->attached)
            return 1;
        return WIFEXITED(b->child_status) ? WEXITSTATUS(b->child_status) : 128 + WTERMSIG(b->child_status);
    }
    return e->failed || e->dropped || e->rejected ? 1 : 0;
}

static void teardown(struct bridge *b)
{
    usdt_exporter_free(b->ex);   /* before the loop: libcurl gives its sockets back to it */
    usdt_pair_free(b->pairing);
    if (b->loop)
        usdt_close_source(b);
    if (b->err_fd >= 0)
        close(b->err_fd);
    if (b->sigfd >= 0)
        close(b->sigfd);
    if (b->child && !b->reaped) {
        kill(b->child, SIGKILL);
        waitpid(b->child, NULL, 0);
    }
    loop_free(b->loop);
    usdt_lines_free(&b->out);
    usdt_lines_free(&b->err);
    usdt_parser_free(&b->parser);
    usdt_config_free(&b->cfg);
}

int usdt_command(int argc, char **argv)
{
    struct bridge b;
    memset(&b, 0, sizeof b);
    b.sigfd = b.out_fd = b.err_fd = b.stdin_flags = -1;
    int rc = usdt_config_parse(argc, argv, &b.cfg);
    if (rc >= 0) {
        usdt_config_free(&b.cfg);
        return rc;
    }
    struct buf script;
    buf_init(&script, 1 << 16);
    rc = prepare_script(&b, &script);
    if (rc != 0) {
        buf_free(&script);
        usdt_config_free(&b.cfg);
        return rc < 0 ? 1 : 0;
    }
    char err[512] = "out of memory";
    struct usdt_export_options eo = {
        b.cfg.url, b.cfg.headers, b.cfg.n_headers, &b.resource, b.cfg.json, b.cfg.gzip, b.cfg.dry_run,
        b.cfg.input != NULL, b.cfg.timeout_ms, b.cfg.schedule_delay_ms, b.cfg.export_timeout_ms,
        b.cfg.max_queue, b.cfg.max_batch,
    };
    rc = 1;
    if (!(b.loop = loop_new()) || usdt_parser_init(&b.parser, b.cfg.max_line) != 0 ||
        usdt_lines_init(&b.out, b.cfg.max_line) != 0 || usdt_lines_init(&b.err, 4096) != 0 ||
        complete_resource(&b) != 0 || !(b.pairing = usdt_pair_new(&b.cfg.pair, usdt_on_span, &b)) ||
        !(b.ex = usdt_exporter_new(b.loop, &eo, err, sizeof err))) {
        log_error("usdt: cannot start: %s", err);
    } else if (setup_signals(&b) != 0) {
        log_error("usdt: cannot set up signal handling: %s", strerror(errno));
    } else if (usdt_open_source(&b, (const char *)script.data) == 0) {
        usdt_exporter_on_room(b.ex, usdt_on_room, &b);
        on_tick(b.loop, &b);
        if (loop_run(b.loop) != 0)
            log_error("usdt: the event loop failed: %s", strerror(errno));
        log_summary(&b);
        rc = exit_status(&b);
    }
    buf_free(&script);
    teardown(&b);
    return rc;
}
