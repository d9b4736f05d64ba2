/*
 * service.c - see service.h. systemd's side: Type=notify waits for READY=1, `systemctl
 * status` shows the last STATUS=, WatchdogSec= restarts the service when WATCHDOG=1 stops
 * coming.
 *
 * Why the watchdog is a timer on the event loop and not a thread: the ping must mean "the
 * loop turns". A loop stuck in a sink or a busy handler misses its pings and systemd
 * restarts the process, which is the point. The status is refreshed every few seconds and
 * sent only when it changed: one snprintf and a compare when idle.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/service.h"
#include "h2/server.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/notify.h"

#define STATUS_INTERVAL_MS 2000

/* A failed send is said once: the service manager going away is not worth a log line per
 * ping. */
static void tell(struct app *app, const char *msg)
{
    struct service *s = &app->service;
    if (notify_send(&s->notifier, msg) != 0 && !s->send_failed) {
        s->send_failed = true;
        log_warn("cannot notify the service manager (NOTIFY_SOCKET): %s", strerror(errno));
    }
}

/* "serving: 12 requests ok, 1 failed; 34567 samples, 0 spans delivered; 1 connection open,
 * 3 accepted": every reply to a profiles or traces request, over both ports (those the
 * transport refused itself included, as in the shutdown summary). */
static void format_status(const struct app *app, char *out, size_t outlen)
{
    unsigned long long open = 0, accepted = 0;
    const struct h2_server *servers[] = { app->server, app->http_server };
    for (size_t i = 0; i < 2; i++)
        if (servers[i]) {
            const struct h2_stats *hs = h2_server_stats(servers[i]);
            open += hs->connections_open;
            accepted += hs->connections_accepted;
        }
    uint64_t by[H2_OUTCOMES] = { 0 }, ports[2];
    unsigned long long all = signal_replies(app, OTLP_SIGNAL_PROFILES, by, ports);
    all += signal_replies(app, OTLP_SIGNAL_TRACES, by, ports);
    unsigned long long ok = by[H2_OUT_OK];
    snprintf(out, outlen, "%s: %llu requests ok, %llu failed; %llu samples, %llu spans delivered; "
             "%llu connection%s open, %llu accepted", app->service.phase, ok, all - ok,
             (unsigned long long)app->stats.samples, (unsigned long long)app->trace_stats.spans,
             open, open == 1 ? "" : "s", accepted);
}

/* `prefix` (e.g. "READY=1\n") and STATUS=, in one datagram; the status only when it changed
 * or a prefix goes with it. */
static void send_status(struct app *app, const char *prefix)
{
    struct service *s = &app->service;
    char status[sizeof s->status], msg[sizeof s->status + 64];
    format_status(app, status, sizeof status);
    if (!*prefix && strcmp(status, s->status) == 0)
        return;
    memcpy(s->status, status, sizeof status);
    snprintf(msg, sizeof msg, "%sSTATUS=%s", prefix, status);
    tell(app, msg);
}

static void status_tick(struct loop *loop, void *ud)
{
    struct app *app = ud;
    send_status(app, "");
    app->service.status_timer = loop_add_timer(loop, STATUS_INTERVAL_MS, status_tick, app);
}

static void watchdog_tick(struct loop *loop, void *ud)
{
    struct app *app = ud;
    tell(app, "WATCHDOG=1");
    app->service.watchdog_timer = loop_add_timer(loop, app->service.watchdog_ms, watchdog_tick, app);
}

void service_ready(struct app *app)
{
    struct service *s = &app->service;
    char err[256];
    if (notify_open(&s->notifier, err, sizeof err) != 0) {
        log_warn("%s: not notifying the service manager", err);
        return;
    }
    if (!notify_enabled(&s->notifier))
        return;
    s->on = true;
    s->phase = "serving";
    s->watchdog_ms = notify_watchdog_interval_ms();
    send_status(app, "READY=1\n");
    s->status_timer = loop_add_timer(app->loop, STATUS_INTERVAL_MS, status_tick, app);
    if (s->watchdog_ms)
        s->watchdog_timer = loop_add_timer(app->loop, s->watchdog_ms, watchdog_tick, app);
    if (s->watchdog_ms)
        log_debug("service manager notified: ready; watchdog ping every %llu ms",
                  (unsigned long long)s->watchdog_ms);
    else
        log_debug("service manager notified: ready");
}

void service_stopping(struct app *app)
{
    if (!app->service.on)
        return;
    app->service.phase = "stopping";
    send_status(app, "STOPPING=1\n");
}

void service_stopped(struct app *app)
{
    struct service *s = &app->service;
    if (!s->on)
        return;
    s->phase = "stopped";
    send_status(app, "");
    loop_del_timer(app->loop, s->status_timer);
    loop_del_timer(app->loop, s->watchdog_timer);
    notify_close(&s->notifier);
    s->on = false;
}
