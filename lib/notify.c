/*
 * notify.c - see notify.h. The protocol as systemd documents it (sd_notify(3),
 * sd_watchdog_enabled(3)): one datagram per message, newline-separated assignments, the
 * socket's name in $NOTIFY_SOCKET ("/path" or "@abstract"), the watchdog period in
 * $WATCHDOG_USEC for the process $WATCHDOG_PID (any, when unset).
 */
#include "lib/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int notify_open(struct notifier *n, char *err, size_t errlen)
{
    memset(n, 0, sizeof *n);
    n->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof n->addr.sun_path) {
        snprintf(err, errlen, "NOTIFY_SOCKET='%s': not a socket path or @abstract name", path);
        return -1;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    /* An abstract name is its bytes after a leading NUL, with no terminator counted. */
    if (path[0] == '@')
        n->addr.sun_path[0] = 0;
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n->fd < 0) {
        snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int notify_send(struct notifier *n, const char *msg)
{
    if (n->fd < 0)
        return 0;
    ssize_t w;
    do
        w = sendto(n->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&n->addr, n->addr_len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -1 : 0;
}

uint64_t notify_watchdog_interval_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    if (!usec || !*usec)
        return 0;
    if (pid && *pid) {
        errno = 0;
        uintmax_t p = strtoumax(pid, &end, 10);
        if (errno || *end || p != (uintmax_t)getpid())
            return 0;
    }
    errno = 0;
    uintmax_t us = strtoumax(usec, &end, 10);
    if (errno || *end || us == 0 || usec[0] == '-')
        return 0;
    uint64_t ms = (uint64_t)(us / 2000);
    return ms ? ms : 1;
}

void notify_close(struct notifier *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
