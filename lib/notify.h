/*
 * notify.h - the service manager's notification protocol (sd_notify(3)): datagrams such as
 * "READY=1" to the AF_UNIX socket named by $NOTIFY_SOCKET, and the watchdog interval that
 * $WATCHDOG_USEC asks for.
 *
 * Why our own and not libsystemd: the protocol is one sendto() of a text datagram, and the
 * binary must stay static-friendly (no libsystemd, no dlopen). Nothing here knows the
 * application: cmd/service.c decides what to say and when.
 */
#ifndef LB_NOTIFY_H
#define LB_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct notifier {
    int fd;                      /* -1: no service manager listens (nothing is ever sent) */
    socklen_t addr_len;
    struct sockaddr_un addr;
};

/* Reads $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace. Without it the
 * notifier stays off (fd -1) and that is not an error. -1 with a reason in `err` when the
 * variable is set but unusable (not a path, too long, no socket). */
int notify_open(struct notifier *n, char *err, size_t errlen);

static inline bool notify_enabled(const struct notifier *n) { return n->fd >= 0; }

/* Sends `msg` ("READY=1", "STATUS=...", several separated by '\n') as one datagram, never
 * blocking (a full queue drops it). 0, or -1 with errno; nothing and 0 when off. */
int notify_send(struct notifier *n, const char *msg);

/* How often to send "WATCHDOG=1": half of $WATCHDOG_USEC, in milliseconds (at least 1);
 * 0 when no watchdog is asked for, or $WATCHDOG_PID names another process. */
uint64_t notify_watchdog_interval_ms(void);

void notify_close(struct notifier *n);

#endif
