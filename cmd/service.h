/*
 * service.h - `lazybackend serve` under a service manager: what it is told (ready, status,
 * stopping) and the watchdog pings, over the notification protocol of lib/notify.h.
 *
 * Why apart from serve.c: serve.c runs the ports; this file only reports on them, at three
 * moments serve.c marks (ready, stopping, stopped), and from two timers on the loop. Without
 * $NOTIFY_SOCKET every call does nothing.
 */
#ifndef LB_CMD_SERVICE_H
#define LB_CMD_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/notify.h"

struct app;

struct service {
    bool on;                    /* a service manager listens */
    bool send_failed;           /* said once in the log */
    struct notifier notifier;
    uint64_t watchdog_ms;       /* 0: no watchdog asked for */
    uint64_t watchdog_timer, status_timer;
    const char *phase;          /* "serving", "stopping", "stopped" */
    char status[256];           /* the last STATUS= sent */
};

/* The listeners are bound and the sinks open: READY=1 with a first STATUS=, and the
 * watchdog and status timers start on the loop. */
void service_ready(struct app *app);

/* Shutdown began: STOPPING=1 and a STATUS= saying so. */
void service_stopping(struct app *app);

/* The loop ended and the sinks are closed: the final STATUS=; the timers and the socket are
 * given back. */
void service_stopped(struct app *app);

#endif
