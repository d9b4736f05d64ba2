/*
 * conn_io.c - the byte transport under a connection: the plain socket, or TLS over it.
 *
 * Exists so that server.c and the protocol code (nghttp2, HTTP/1.1) see a connection as
 * "bytes in, bytes out" and never call read/send/shutdown/close themselves: whether the bytes
 * are protected is decided here alone. Every function is non-blocking: "nothing now" is a
 * normal answer, and conn_io_events() says what the loop must wait for besides what the
 * protocol wants (a TLS handshake, or a TLS read that needs to write first).
 *
 * TLS reads keep the loop's level-triggered readiness truthful: OpenSSL reads no further
 * ahead than the record it decrypts (read_ahead stays off), and a record is read only while a
 * whole one (16 KiB of plaintext at most) fits in what is left of the buffer, so no decrypted
 * byte is ever left waiting inside OpenSSL where epoll cannot see it.
 */
#include "h2/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/log.h"
#include "lib/loop.h"

enum { TLS_MAX_PLAINTEXT = 16384 };   /* one record's payload at most (RFC 8446 5.1) */

/* OpenSSL's reason for the last failure, into the connection (it outlives the call). */
static const char *tls_reason(struct h2_conn *c, const char *what, int ssl_error)
{
    unsigned long e = ERR_get_error();
    if (e) {
        char reason[128];
        ERR_error_string_n(e, reason, sizeof reason);
        int r = ERR_GET_REASON(e);
        bool cleartext = ERR_GET_LIB(e) == ERR_LIB_SSL && (r == SSL_R_HTTP_REQUEST || r == SSL_R_WRONG_VERSION_NUMBER);
        snprintf(c->io_why, sizeof c->io_why, "%s: %s%s", what, reason,
                 cleartext ? " (a cleartext client? this port speaks TLS)" : "");
    } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
        snprintf(c->io_why, sizeof c->io_why, "%s: peer closed", what);
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
        snprintf(c->io_why, sizeof c->io_why, "%s: %s", what,
                 errno ? strerror(errno) : "peer closed without close_notify");
    } else {
        snprintf(c->io_why, sizeof c->io_why, "%s: TLS error %d", what, ssl_error);
    }
    ERR_clear_error();
    return c->io_why;
}

bool conn_io_start(struct h2_conn *c, const char **why)
{
    const struct h2_tls *tls = c->srv->cfg.tls;
    if (!tls) {
        c->io_ready = true;
        return true;
    }
    c->io_ready = false;
    c->io_want = LOOP_READ;   /* the ClientHello */
    ERR_clear_error();
    c->ssl = SSL_new(h2_tls_ctx(tls));
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        *why = tls_reason(c, "cannot set up TLS", 0);
        return false;
    }
    SSL_set_app_data(c->ssl, c);   /* the ALPN choice depends on the port (tls.c) */
    SSL_set_accept_state(c->ssl);
    return true;
}

bool conn_io_handshake(struct h2_conn *c, const char **why)
{
    if (!c->ssl) {
        c->io_ready = true;
        return true;
    }
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        const unsigned char *alpn = NULL;
        unsigned alpnlen = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpnlen);
        log_debug("TLS handshake done: peer=%s %s %s alpn=%.*s", c->peer, SSL_get_version(c->ssl),
                  SSL_get_cipher_name(c->ssl), alpnlen ? (int)alpnlen : 1, alpnlen ? (const char *)alpn : "-");
        c->io_ready = true;
        c->io_want = 0;
        return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->io_want = e == SSL_ERROR_WANT_READ ? LOOP_READ : LOOP_WRITE;
        return true;
    }
    if ((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) && ERR_peek_error() == 0 &&
        SSL_get_state(c->ssl) == TLS_ST_BEFORE) {
        /* Connected and closed without a byte: a port probe (a load balancer's TCP check),
         * not worth a log line each. */
        *why = "closed before the TLS handshake";
        return false;
    }
    c->srv->stats.tls_handshake_failures++;
    *why = tls_reason(c, "TLS handshake failed", e);
    long verify = SSL_get_verify_result(c->ssl);
    log_info("TLS handshake with %s failed: %s%s%s", c->peer, *why + sizeof "TLS handshake failed: " - 1,
             verify != X509_V_OK ? ": client certificate: " : "",
             verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
    return false;
}

static ssize_t plain_read(struct h2_conn *c, uint8_t *p, size_t n, const char **why)
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

/* Whole records while a whole one fits (see the top of the file). What ends the connection
 * after some bytes were read is kept in io_error and reported once those bytes are used. */
static ssize_t tls_read(struct h2_conn *c, uint8_t *p, size_t n, const char **why)
{
    size_t got = 0;
    c->io_want &= ~LOOP_WRITE;
    while (n - got >= TLS_MAX_PLAINTEXT) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, p + got, (int)(n - got > INT_MAX ? INT_MAX : n - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {   /* e.g. a key update to answer: when writable */
            c->io_want |= LOOP_WRITE;
            break;
        }
        c->io_error = e == SSL_ERROR_ZERO_RETURN ? "peer closed" : tls_reason(c, "TLS read", e);
        break;
    }
    if (got == 0 && c->io_error) {
        *why = c->io_error;
        return -1;
    }
    return (ssize_t)got;
}

ssize_t conn_io_read(struct h2_conn *c, uint8_t *p, size_t n, const char **why)
{
    if (c->io_error) {
        *why = c->io_error;
        return -1;
    }
    return c->ssl ? tls_read(c, p, n, why) : plain_read(c, p, n, why);
}

ssize_t conn_io_write(struct h2_conn *c, const uint8_t *p, size_t n)
{
    if (!c->io_ready)
        return 0;   /* held until the handshake is done */
    if (!c->ssl) {
        for (;;) {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w >= 0)
                return w;
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
    }
    c->io_want &= ~LOOP_READ;
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, (int)(n > INT_MAX ? INT_MAX : n));
    if (w > 0)
        return w;
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_WANT_READ) {
        c->io_want |= LOOP_READ;
        return 0;
    }
    log_debug("TLS write to %s: %s", c->peer, tls_reason(c, "TLS write", e));
    return -1;
}

bool conn_io_should_read(const struct h2_conn *c, int events)
{
    return (events & LOOP_READ) || ((events & LOOP_WRITE) && (c->io_want & LOOP_WRITE));
}

int conn_io_events(const struct h2_conn *c, int wanted)
{
    if (!c->io_ready)
        return c->io_want;   /* the handshake first: the protocol waits */
    return wanted | c->io_want;
}

void conn_io_shutdown_write(struct h2_conn *c)
{
    if (c->ssl && c->io_ready) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);   /* close_notify, best effort: the socket is non-blocking */
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
}

void conn_io_close(struct h2_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        loop_del_fd(c->srv->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
}
