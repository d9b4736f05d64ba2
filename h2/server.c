/*
 * server.c - the listener and the connections behind server.h.
 *
 * Exists because the backend must take OTLP Export calls from agents that speak insecure
 * gRPC (HTTP/2 with prior knowledge) and OTLP/HTTP requests from everything else (HTTP/1.1 or
 * h2c), without threads and without letting any peer make the process allocate without
 * bound. Shape:
 *
 *   listener --accept--> conn (one output buffer; a protocol: see internal.h)
 *                        |-- CONN_H2:    nghttp2 session (session.c), streams = gRPC calls
 *                        |               (grpc_call.c) or HTTP exchanges (http.c)
 *                        `-- CONN_HTTP1: http_parser (http1.c), one exchange at a time
 *
 * This file owns the connection side: accepting, reading (one read per readiness event, so a busy
 * peer cannot starve others), telling h2c prior knowledge from HTTP/1.1 on the HTTP port,
 * writing (output is produced only while less than OUT_HIGH_WATER is unsent, and reading
 * pauses meanwhile), the switch to HTTP/2 after "Upgrade: h2c", closing (with a short
 * lingering drain after an HTTP/1.1 "Connection: close" response, so the client reads our
 * answer rather than a reset). The connection timer (idle connections, connections that make
 * no progress, requests that do not arrive within the request timeout) is progress.c's.
 *
 * Nothing here is global: everything hangs off struct h2_server.
 */
#include "h2/internal.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/commit.h"
#include "lib/log.h"
#include "lib/loop.h"

enum {
    ACCEPT_BATCH = 64,
    ACCEPT_PAUSE_MS = 100,                /* after EMFILE & co., before accepting again */
};

#define DEFAULT_MAX_MESSAGE ((size_t)64 * 1024 * 1024)   /* the OTLP spec's recommendation */
#define DEFAULT_REQUEST_TIMEOUT_MS 60000

/* ------------------------------------------------------------------ helpers */

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    } else {
        snprintf(out, outlen, "?");
    }
}

/* "a.b.c.d:port", "[v6]:port" or "localhost:port"; port 0 = any free port. */
static int parse_address(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[INET6_ADDRSTRLEN];
    const char *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - addr - 1);
        if (hlen >= sizeof host)
            return -1;
        memcpy(host, addr + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - addr);
        if (hlen >= sizeof host)
            return -1;
        memcpy(host, addr, hlen);
    }
    host[hlen] = '\0';
    const char *p = colon + 1;
    unsigned long port = 0;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return -1;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (addr[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *a4;
        return 0;
    }
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *a6;
        return 0;
    }
    return -1;
}

int h2_address_loopback(const char *address)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_address(address, &ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

/* ------------------------------------------------------------------ connections */

/* Moves nghttp2's output into the buffer (up to the high-water mark) and the buffer into
 * the socket, until one of them runs dry. False when the connection broke. */
static bool conn_flush(struct h2_conn *c)
{
    for (;;) {
        while (c->proto == CONN_H2 && out_pending(c) < OUT_HIGH_WATER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->ng, &data);
            if (n < 0)
                return false;
            if (n == 0)
                break;
            if (!buf_append(&c->out, data, (size_t)n))
                return false;
        }
        if (out_pending(c) == 0)
            return true;
        /* Replies may acknowledge what a writer has not synced yet (held.c) */
        switch (conn_hold_check(c)) {
        case HOLD_LOST:
            return false;
        case HOLD_WAIT:
            return true;
        case HOLD_SEND:
            break;
        }
        ssize_t w = conn_io_write(c, c->out.data + c->out_off, out_pending(c));
        if (w < 0)
            return false;
        if (w == 0)
            return true;   /* the transport takes no more now: wait for writability */
        c->out_off += (size_t)w;
        c->out_sent_total += (uint64_t)w;
        if (c->proto != CONN_H2)   /* HTTP/1.1 writes only responses; HTTP/2: progress.c */
            c->last_active = loop_now_ms(c->srv->loop);
        if (c->out_off == c->out.len) {
            c->out_off = 0;
            buf_reset(&c->out);
        } else if (c->out_off >= OUT_HIGH_WATER) {
            memmove(c->out.data, c->out.data + c->out_off, out_pending(c));
            c->out.len -= c->out_off;
            c->out_off = 0;
        }
    }
}

/* Our side is done: shut down writing and drain what the peer still sends for a moment
 * (closing with unread input would send a reset that can destroy our last response). */
static void conn_linger(struct h2_conn *c)
{
    http1_free(c->h1);
    c->h1 = NULL;
    c->proto = CONN_LINGER;
    c->linger_until = loop_now_ms(c->srv->loop) + LINGER_MS;
    conn_io_shutdown_write(c);
}

/* What the connection waits for, given its protocol and unsent output. HTTP/1.1 input held
 * back (pipelined requests) waits for writability too: the socket being writable is what
 * lets the next held request be answered, one per loop turn, even when all output went out. */
static int conn_events(const struct h2_conn *c)
{
    size_t pending = out_pending(c);
    bool read = pending < OUT_HIGH_WATER;
    bool write = pending > 0 && !c->held;   /* held output waits for the commit, not the socket */
    if (c->proto == CONN_HTTP1 && c->push) {
        /* a long-lived response: input is read and dropped, to see the client leave */
    } else if (c->proto == CONN_HTTP1) {
        read = read && !http1_paused(c);
        write = write || (http1_paused(c) && !c->close_after_flush && !c->held);
    }
    return conn_io_events(c, (read ? LOOP_READ : 0) | (write ? LOOP_WRITE : 0));
}

/* Flushes, then closes the connection when its protocol is done with it, or re-arms the
 * loop: reading pauses while too much output is unsent (a client that does not read its
 * replies does not get to send more requests). False when the connection was closed. */
bool conn_update(struct h2_conn *c)
{
    for (int round = 0; round < 2; round++) {
        if (!conn_flush(c)) {
            conn_close(c, "write failed");
            return false;
        }
        /* Held-back HTTP/1.1 input goes on once the output has drained (once per call: what
         * it produces is flushed by the next round, the rest waits for the next writable
         * event, see conn_events). */
        if (round == 0 && c->proto == CONN_HTTP1 && !c->close_after_flush &&
            out_pending(c) < OUT_HIGH_WATER && http1_paused(c)) {
            if (!http1_resume(c)) {
                conn_close(c, "cannot buffer input");
                return false;
            }
            if (c->proto != CONN_HTTP1)
                return conn_update(c);   /* upgraded to h2c meanwhile */
            continue;
        }
        break;
    }
    size_t pending = out_pending(c);
    if (c->proto == CONN_H2 && pending == 0 && !nghttp2_session_want_read(c->ng) &&
        !nghttp2_session_want_write(c->ng)) {
        conn_close(c, "session finished");
        return false;
    }
    if (c->proto == CONN_H2 && c->calm && pending == 0 && !nghttp2_session_want_write(c->ng))
        conn_linger(c);   /* the GOAWAY is out: drained briefly so that the peer reads it */
    if (c->proto == CONN_HTTP1 && c->close_after_flush && pending == 0)
        conn_linger(c);
    int events = conn_events(c);
    if (events != c->events && loop_mod_fd(c->srv->loop, c->fd, events) == 0)
        c->events = events;
    return true;
}

/* Bytes for the nghttp2 session. False when the connection must close; a session that stopped
 * reading because it was told to calm down (progress.c) stays until its GOAWAY is out. */
static bool session_feed(struct h2_conn *c, const uint8_t *p, size_t n, const char **why)
{
    if (c->calm || n == 0)
        return true;
    ssize_t rv = nghttp2_session_mem_recv(c->ng, p, n);
    if (rv < 0 && why)
        *why = nghttp2_strerror((int)rv);
    return rv >= 0 || c->calm;
}

/* The HTTP port's first bytes: the HTTP/2 client preface, or anything else (HTTP/1.1). */
static bool conn_sniff(struct h2_conn *c, const uint8_t *p, size_t n)
{
    size_t take = H2_PREFACE_LEN - c->sniffed;
    if (take > n)
        take = n;
    memcpy(c->sniff + c->sniffed, p, take);
    c->sniffed += take;
    if (!c->request_started)
        c->request_started = loop_now_ms(c->srv->loop);
    if (memcmp(c->sniff, H2_PREFACE, c->sniffed) != 0) {
        c->proto = CONN_HTTP1;
        c->h1 = http1_new(c);
        if (!c->h1)
            return false;
        c->request_started = 0;   /* the parser starts the request clock itself */
        return http1_feed(c, c->sniff, c->sniffed) &&
               (c->proto != CONN_HTTP1 || c->close_after_flush || http1_feed(c, p + take, n - take));
    }
    if (c->sniffed < H2_PREFACE_LEN)
        return true;
    c->request_started = 0;
    c->proto = CONN_H2;
    if (session_start(c) != 0)
        return false;
    return session_feed(c, c->sniff, c->sniffed, NULL) && session_feed(c, p + take, n - take, NULL);
}

bool conn_upgrade_h2c(struct h2_conn *c, const uint8_t *settings, size_t settings_len,
                      struct http_exchange *ex, const uint8_t *rest, size_t rest_len)
{
    static const char switching[] =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    if (!buf_append(&c->out, switching, sizeof switching - 1))
        return false;
    http1_free(c->h1);
    c->h1 = NULL;
    c->proto = CONN_H2;
    c->request_started = 0;
    c->setup_started = loop_now_ms(c->srv->loop);   /* the preface is due after the 101 */
    if (session_start(c) != 0)
        return false;
    struct h2_stream *st = stream_new(c, 1);
    if (!st)
        return false;
    http_exchange_move(&st->ex, ex);
    st->ex.protocol = "h2c";
    st->remote_ended = true;   /* the request came whole over HTTP/1.1 */
    int rv = nghttp2_session_upgrade2(c->ng, settings, settings_len, st->ex.head, st);
    if (rv != 0) {
        log_info("h2c upgrade from %s refused: %s", c->peer, nghttp2_strerror(rv));
        stream_free(st, "upgrade failed");
        return false;
    }
    log_debug("connection upgraded to h2c: peer=%s", c->peer);
    http_exchange_finish(&st->ex);
    conn_depend(c);
    session_submit_http(st);
    return session_feed(c, rest, rest_len, NULL);
}

/* CONN_LINGER: the peer's leftovers are read and dropped, up to a bound. */
static bool conn_drain(struct h2_conn *c, size_t n)
{
    c->lingered += n;
    return c->lingered < LINGER_MAX_BYTES;
}

/* Bytes from the socket, to whatever speaks on the connection now. */
static bool conn_input(struct h2_conn *c, const uint8_t *p, size_t n, const char **why)
{
    switch (c->proto) {
    case CONN_H2:
        return session_feed(c, p, n, why);
    case CONN_SNIFF:
        *why = "cannot start the connection's protocol";
        return conn_sniff(c, p, n);
    case CONN_HTTP1:
        *why = "cannot buffer input";
        return http1_feed(c, p, n);
    case CONN_LINGER:
        *why = "lingering close: enough read";
        return conn_drain(c, n);
    }
    return false;
}

/* One read per readiness event (level-triggered), so a busy peer cannot starve others. An
 * HTTP/2 session takes all it is given (nghttp2 frames it, the streams bound what they hold);
 * HTTP/1.1 may have to hold back the rest of a read while its output drains, so its reads stay
 * as small as that buffer. */
_Static_assert(H2_READ >= READ_CHUNK, "the one read buffer takes a read of either size");

static bool conn_read(struct h2_conn *c, const char **why)
{
    struct h2_server *s = c->srv;
    size_t want = c->proto == CONN_H2 ? sizeof s->rbuf : READ_CHUNK;
    ssize_t n = conn_io_read(c, s->rbuf, want, why);
    if (n <= 0)
        return n == 0;
    s->stats.bytes_received += (uint64_t)n;   /* bytes are not progress (progress.c) */
    if (!conn_input(c, s->rbuf, (size_t)n, why))
        return false;
    if (c->io_error) {   /* the transport ended right after these bytes */
        *why = c->io_error;
        return false;
    }
    return true;
}

static void conn_on_io(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)fd;
    struct h2_conn *c = ud;
    const char *why = "";
    if (!c->io_ready) {   /* the transport's handshake comes before any protocol */
        if (!conn_io_handshake(c, &why)) {
            conn_close(c, why);
            return;
        }
        if (!c->io_ready) {
            conn_update(c);
            return;
        }
    }
    if (conn_io_should_read(c, events) && !conn_read(c, &why)) {
        conn_close(c, why);
        return;
    }
    conn_update(c);
}

void conn_close(struct h2_conn *c, const char *why)
{
    struct h2_server *s = c->srv;
    log_debug("connection closed: peer=%s (%s)", c->peer, why);
    push_abandon(c->push);
    while (c->streams)
        stream_free(c->streams, why);
    if (c->ng)
        nghttp2_session_del(c->ng);
    http1_free(c->h1);
    conn_io_close(c);
    buf_free(&c->out);
    peer_table_remove(&s->peers, &c->peer_key);
    DLIST_UNLINK(s->conns, c);
    assert(s->stats.connections_open > 0);
    s->stats.connections_open--;
    free(c);
}

void conn_new(struct h2_server *s, int fd, const struct sockaddr_storage *ss)
{
    struct h2_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    c->events = LOOP_READ;
    c->accepted_ms = c->last_active = c->setup_started = loop_now_ms(s->loop);
    peer_key_from(ss, &c->peer_key);
    c->proto = s->cfg.protocol == H2_SERVER_HTTP ? CONN_SNIFF : CONN_H2;
    buf_init(&c->out, OUT_LIMIT);
    format_addr(ss, c->peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* small frames, now */
    if (!peer_table_add(&s->peers, &c->peer_key)) {
        log_warn("connection from %s dropped: too many client addresses", c->peer);
        close(fd);
        free(c);
        return;
    }
    const char *why = "cannot set up the session";
    if (!conn_io_start(c, &why) || (c->proto == CONN_H2 && session_start(c) != 0) ||
        loop_add_fd(s->loop, fd, LOOP_READ, conn_on_io, c) != 0) {
        log_warn("connection from %s dropped: %s", c->peer, why);
        if (c->ng)
            nghttp2_session_del(c->ng);
        peer_table_remove(&s->peers, &c->peer_key);
        conn_io_close(c);
        buf_free(&c->out);
        free(c);
        return;
    }
    DLIST_PUSH(s->conns, c);
    s->stats.connections_accepted++;
    s->stats.connections_open++;
    log_debug("connection opened: peer=%s", c->peer);
    conn_update(c);   /* our SETTINGS go out at once (gRPC port) */
}

void conn_want_write(struct h2_conn *c)
{
    int events = c->events | LOOP_WRITE;
    if (events != c->events && loop_mod_fd(c->srv->loop, c->fd, events) == 0)
        c->events = events;
}

/* ------------------------------------------------------------------ listener, timers */

static void listener_on_io(struct loop *l, int fd, int events, void *ud);

static void accept_resume(struct loop *l, void *ud)
{
    struct h2_server *s = ud;
    s->accept_timer = 0;
    if (s->lfd >= 0)
        loop_mod_fd(l, s->lfd, LOOP_READ);
}

/* Out of descriptors or memory: a level-triggered listener would spin, so pause it. */
static void accept_pause(struct h2_server *s, int err)
{
    log_warn("accept on %s: %s; pausing for %d ms", s->bound, strerror(err), ACCEPT_PAUSE_MS);
    loop_mod_fd(s->loop, s->lfd, 0);
    if (!s->accept_timer)
        s->accept_timer = loop_add_timer(s->loop, ACCEPT_PAUSE_MS, accept_resume, s);
}

static void listener_on_io(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)events;
    struct h2_server *s = ud;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(s, errno);
            return;   /* EAGAIN: drained */
        }
        char peer[ADDR_LEN];
        struct peer_key key;
        format_addr(&ss, peer, sizeof peer);
        peer_key_from(&ss, &key);
        if (!progress_admit(s, &key, peer)) {
            close(cfd);
            continue;
        }
        conn_new(s, cfd, &ss);
    }
}

/* ------------------------------------------------------------------ public API */

static void apply_defaults(struct h2_server_config *cfg)
{
    if (cfg->max_message_size == 0)
        cfg->max_message_size = DEFAULT_MAX_MESSAGE;
    if (cfg->max_message_size > UINT32_MAX)   /* the gRPC length prefix is 32-bit */
        cfg->max_message_size = UINT32_MAX;
    if (cfg->max_inflight_bytes == 0)
        cfg->max_inflight_bytes = cfg->max_message_size > SIZE_MAX / 4 ? SIZE_MAX
                                                                       : cfg->max_message_size * 4;
    if (cfg->max_connections == 0)
        cfg->max_connections = 1024;
    if (cfg->max_connections_per_ip == 0)
        cfg->max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP;
    if (cfg->max_concurrent_streams == 0)
        cfg->max_concurrent_streams = 100;
    if (cfg->request_timeout_ms == 0)
        cfg->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
}

/* A sync is over: replies that waited for it go out, or, when it failed, their connections are
 * closed without them (nothing that depended on it is acknowledged). */
struct h2_server *h2_server_new(struct loop *loop, const struct h2_server_config *cfg)
{
    struct h2_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    s->lfd = -1;
    apply_defaults(&s->cfg);
    s->address = strdup(cfg->address ? cfg->address
                                      : cfg->protocol == H2_SERVER_HTTP ? "127.0.0.1:4318" : "127.0.0.1:4317");
    s->cfg.address = s->address;
    uint64_t seed = loop_now_ms(loop) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)s ^ (uint64_t)getpid();
    if (!s->address || session_make_callbacks(s) != 0 ||
        peer_table_init(&s->peers, s->cfg.max_connections, seed) != 0 ||
        (s->cfg.commit && commit_add_listener(s->cfg.commit, held_on_commit, s) != 0)) {
        s->cfg.commit = NULL;
        h2_server_free(s);
        return NULL;
    }
    return s;
}

int h2_server_add_method(struct h2_server *s, const char *path, grpc_method_fn fn, void *ud)
{
    if (!path || !fn || strlen(path) >= PATH_LEN || find_method(s, path))
        return -1;
    struct h2_method *m = realloc(s->methods, (s->nmethods + 1) * sizeof *m);
    if (!m)
        return -1;
    s->methods = m;
    char *p = strdup(path);
    if (!p)
        return -1;
    s->methods[s->nmethods++] = (struct h2_method){ .path = p, .fn = fn, .ud = ud };
    return 0;
}

int h2_server_add_route(struct h2_server *s, const char *method, const char *path,
                        http_handler_fn fn, void *ud)
{
    if (!path || !method || !fn || path[0] != '/' || strlen(path) >= PATH_LEN ||
        strlen(method) >= sizeof s->routes[0].method)
        return -1;
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0 && strcmp(s->routes[i].method, method) == 0)
            return -1;
    struct http_route *r = realloc(s->routes, (s->nroutes + 1) * sizeof *r);
    if (!r)
        return -1;
    s->routes = r;
    char *p = strdup(path);
    if (!p)
        return -1;
    r = &s->routes[s->nroutes++];
    memset(r, 0, sizeof *r);
    r->path = p;
    snprintf(r->method, sizeof r->method, "%s", method);
    r->fn = fn;
    r->ud = ud;
    return 0;
}

int h2_server_make_public(struct h2_server *s, const char *path)
{
    int found = -1;
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            s->methods[i].open = true, found = 0;
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            s->routes[i].open = true, found = 0;
    return found;
}

void h2_server_set_error_body(struct h2_server *s, http_error_fn fn, void *ud)
{
    s->error_fn = fn;
    s->error_ud = ud;
}

static int listen_fail(struct h2_server *s, int fd, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s%s%s", s->address, what, errno ? ": " : "",
             errno ? strerror(errno) : "");
    if (fd >= 0)
        close(fd);
    return -1;
}

int h2_server_listen(struct h2_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    errno = 0;
    if (s->lfd >= 0)
        return listen_fail(s, -1, err, errlen, "already listening");
    if (parse_address(s->address, &ss, &len) != 0)
        return listen_fail(s, -1, err, errlen, "expected a.b.c.d:port or [v6]:port");
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return listen_fail(s, fd, err, errlen, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        return listen_fail(s, fd, err, errlen, "bind");
    if (listen(fd, 511) != 0)
        return listen_fail(s, fd, err, errlen, "listen");
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return listen_fail(s, fd, err, errlen, "getsockname");
    if (loop_add_fd(s->loop, fd, LOOP_READ, listener_on_io, s) != 0)
        return listen_fail(s, fd, err, errlen, "event loop");
    format_addr(&ss, s->bound, sizeof s->bound);
    s->lfd = fd;
    if (!s->idle_timer)   /* always: the request timeout needs it */
        conn_timer_start(s);
    return 0;
}

const char *h2_server_address(const struct h2_server *s)
{
    return s->bound[0] ? s->bound : s->address;
}

static void close_listener(struct h2_server *s)
{
    if (s->accept_timer) {
        loop_del_timer(s->loop, s->accept_timer);
        s->accept_timer = 0;
    }
    if (s->lfd >= 0) {
        loop_del_fd(s->loop, s->lfd);
        close(s->lfd);
        s->lfd = -1;
    }
}

void h2_server_shutdown(struct h2_server *s)
{
    s->shutting_down = true;
    close_listener(s);
    struct h2_conn *next;
    for (struct h2_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (!c->io_ready) {
            conn_close(c, "shutting down");   /* still in the TLS handshake: no request yet */
        } else if (c->proto == CONN_H2) {
            for (struct h2_stream *st = c->streams; st; st = st->next) {
                if (st->push && st->push->deferred) {   /* not answered yet: 503 for the application */
                    push_abandon(st->push);
                    http_exchange_error(&st->ex, 503, "server shutting down");
                    session_submit_http(st);
                } else if (st->push) {   /* long-lived responses end now: the drain waits for them */
                    push_abandon(st->push);
                    st->push_ended = true;
                    nghttp2_session_resume_data(c->ng, st->id);
                }
            }
            int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
            nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
            conn_update(c);
        } else if (c->proto == CONN_SNIFF ||
                   (c->proto == CONN_HTTP1 && !c->request_started && out_pending(c) == 0)) {
            conn_close(c, "shutting down");   /* between requests: nothing is lost */
        } else if (c->proto == CONN_HTTP1 && !c->request_started) {
            c->close_after_flush = true;      /* a response is still going out */
            conn_update(c);
        }   /* HTTP/1.1 mid-request: answered with Connection: close (http1.c) */
    }
}

bool h2_server_drained(const struct h2_server *s)
{
    for (const struct h2_conn *c = s->conns; c; c = c->next) {
        if (c->proto == CONN_LINGER)
            continue;
        if (out_pending(c) > 0 || c->request_started)
            return false;
        if (c->proto == CONN_H2 && (c->nstreams > 0 || nghttp2_session_want_write(c->ng)))
            return false;
    }
    return true;
}

const struct h2_stats *h2_server_stats(const struct h2_server *s) { return &s->stats; }

const char *h2_outcome_name(enum h2_outcome o)
{
    static const char *const names[H2_OUTCOMES] = { "ok", "invalid", "exhausted", "timed_out",
                                                    "unavailable", "failed" };
    return (unsigned)o < H2_OUTCOMES ? names[o] : "?";
}

void h2_server_path_replies(const struct h2_server *s, const char *path, uint64_t out[H2_OUTCOMES])
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            for (int o = 0; o < H2_OUTCOMES; o++)
                out[o] += s->methods[i].replies[o];
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            for (int o = 0; o < H2_OUTCOMES; o++)
                out[o] += s->routes[i].replies[o];
}
size_t h2_server_inflight_bytes(const struct h2_server *s) { return s->inflight; }

void h2_server_free(struct h2_server *s)
{
    if (!s)
        return;
    close_listener(s);
    if (s->cfg.commit)
        commit_del_listener(s->cfg.commit, held_on_commit, s);
    if (s->idle_timer)
        loop_del_timer(s->loop, s->idle_timer);
    while (s->conns)
        conn_close(s->conns, "server stopped");
    for (size_t i = 0; i < s->nmethods; i++)
        free(s->methods[i].path);
    free(s->methods);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].path);
    free(s->routes);
    if (s->cbs)
        nghttp2_session_callbacks_del(s->cbs);
    if (s->opt)
        nghttp2_option_del(s->opt);
    peer_table_free(&s->peers);
    free(s->address);
    free(s);
}
