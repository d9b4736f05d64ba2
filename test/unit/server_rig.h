/*
 * server_rig.h - what the in-process server tests share (test_http1.c, test_push.c,
 * test_held_replies.c): the loop run in short bursts, and raw loopback client sockets.
 */
#ifndef LB_TEST_SERVER_RIG_H
#define LB_TEST_SERVER_RIG_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2/server.h"
#include "lib/loop.h"

static inline void rig_stop(struct loop *l, void *ud)
{
    (void)ud;
    loop_stop(l);
}

/* Runs the loop for about `ms` milliseconds. */
static inline void rig_pump(struct loop *l, unsigned ms)
{
    loop_add_timer(l, ms, rig_stop, NULL);
    loop_run(l);
}

/* The port the server listens on (it was given 127.0.0.1:0). */
static inline int rig_port(const struct h2_server *srv)
{
    return atoi(strrchr(h2_server_address(srv), ':') + 1);
}

/* A non-blocking socket connected to 127.0.0.1:port (a small receive buffer when rcvbuf is
 * given, to make a slow reader), or -1. */
static inline int rig_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

#endif
