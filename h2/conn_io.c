/*
 * conn_io.c - the byte transport under a connection: the socket today, the layer where a
 * secure channel's handshake and record protection sit between the socket and the protocols.
 *
 * Exists so that server.c and the protocol code (nghttp2, HTTP/1.1) see a connection as
 * "bytes in, bytes out" and never call read/send/shutdown/close themselves: whatever carries
 * the bytes can change here without touching them. Every function is non-blocking: "nothing
 * now" is a normal answer, and conn_io_events() says what the loop must wait for besides what
 * the protocol wants.
 */
#include "h2/internal.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/loop.h"

/* A plain socket is ready as soon as it is accepted; this is where a handshake is driven. */
bool conn_io_start(struct h2_conn *c, const char **why)
{
    (void)why;
    c->io_ready = true;
    return true;
}

bool conn_io_handshake(struct h2_conn *c, const char **why)
{
    (void)why;
    c->io_ready = true;
    return true;
}

ssize_t conn_io_read(struct h2_conn *c, uint8_t *p, size_t n, const char **why)
{
    ssize_t r = read(c->fd, p, n);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        *why = "read error";
        return -1;
    }
    if (r == 0) {
        *why = "peer closed";
        return -1;
    }
    return r;
}

ssize_t conn_io_write(struct h2_conn *c, const uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

int conn_io_events(const struct h2_conn *c, int wanted)
{
    (void)c;
    return wanted;
}

void conn_io_shutdown_write(struct h2_conn *c)
{
    shutdown(c->fd, SHUT_WR);
}

void conn_io_close(struct h2_conn *c)
{
    loop_del_fd(c->srv->loop, c->fd);
    close(c->fd);
    c->fd = -1;
}
