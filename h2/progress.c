/*
 * progress.c - every connection must make progress, or give way (docs/receiving.md,
 * "Connections that make no progress").
 *
 * Why: a connection costs the server a slot under --max-connections, a descriptor and some
 * memory, whatever the client does with it. Measured before this file existed: a client
 * trickling the HTTP/2 preface one byte a second held a gRPC connection indefinitely, PINGs
 * every second kept any HTTP/2 connection open forever despite the idle timeout, and 1,024
 * such clients locked the port out. The rules, in the order a connection meets them:
 *
 *   admission  at most max_connections_per_ip from one IPv4 address or IPv6 /64 (peers.h), at
 *              most max_connections in all; at either limit the oldest connection that never
 *              made progress is evicted for the newcomer, and only when there is none is the
 *              newcomer refused;
 *   setup      the HTTP/2 preface and the client's SETTINGS (on the HTTP port: the first bytes
 *              deciding the protocol, then the same) within the request timeout;
 *   progress   a request that arrived whole, request body bytes, a response frame sent. Only
 *              progress restarts the idle timer: PINGs, SETTINGS, WINDOW_UPDATE, PRIORITY,
 *              RST_STREAM, empty DATA and header blocks of requests that never complete do not;
 *   pings      a PING sooner than PING_MIN_INTERVAL_MS after the previous one is a strike; past
 *              PING_MAX_STRIKES (strikes are forgiven when a response goes out, like grpc-go's
 *              keepalive enforcement) the connection gets GOAWAY ENHANCE_YOUR_CALM with the
 *              debug data "too_many_pings", which gRPC clients understand;
 *   frames     more than NO_PROGRESS_MAX_FRAMES frames in a row without progress: the same
 *              GOAWAY ("no progress");
 *   idle       no progress for the idle timeout while no request is arriving: GOAWAY NO_ERROR
 *              (HTTP/2) or close (HTTP/1.1). A request being received is governed by the request
 *              timeout instead.
 * A connection given a GOAWAY for either reason has LINGER_MS to take it, then it is closed
 * whatever is left unsent (a client that does not read cannot keep it).
 *
 * The one timer of a server's connections lives here too: it applies these rules, the request
 * timeout and the end of lingering closes, a few times per the shortest timeout.
 */
#include "h2/internal.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/loop.h"

/* ------------------------------------------------------------------ admission */

/* The oldest connection that never made progress (from that address when `k` is given); a
 * lingering one (its last response is out) counts as done with. NULL when there is none. */
static struct h2_conn *eviction_candidate(struct h2_server *s, const struct peer_key *k)
{
    struct h2_conn *best = NULL;
    for (struct h2_conn *c = s->conns; c; c = c->next) {
        if (c->progressed && c->proto != CONN_LINGER)
            continue;
        if (k && memcmp(&c->peer_key, k, sizeof *k) != 0)
            continue;
        if (!best || c->accepted_ms <= best->accepted_ms)
            best = c;
    }
    return best;
}

static void evict(struct h2_server *s, struct h2_conn *c, const char *limit)
{
    log_info("connection evicted: peer=%s made no progress in %llu ms; room for a newcomer at the %s limit",
             c->peer, (unsigned long long)(loop_now_ms(s->loop) - c->accepted_ms), limit);
    s->stats.connections_evicted++;
    conn_close(c, "evicted");
}

bool progress_admit(struct h2_server *s, const struct peer_key *k, const char *peer)
{
    if (peer_table_count(&s->peers, k) >= s->cfg.max_connections_per_ip) {
        struct h2_conn *victim = eviction_candidate(s, k);
        if (!victim) {
            char addr[64];
            peer_key_format(k, addr, sizeof addr);
            log_info("connection refused: peer=%s (%u connections open from %s, --max-connections-per-ip)",
                     peer, s->cfg.max_connections_per_ip, addr);
            s->stats.connections_refused_per_ip++;
            return false;
        }
        evict(s, victim, "per-IP");
    }
    if (s->stats.connections_open >= s->cfg.max_connections) {
        struct h2_conn *victim = eviction_candidate(s, NULL);
        if (!victim) {
            log_debug("connection refused: peer=%s (%u connections open)", peer, s->cfg.max_connections);
            s->stats.connections_refused++;
            return false;
        }
        evict(s, victim, "--max-connections");
    }
    return true;
}

/* ------------------------------------------------------------------ progress and frames */

void progress_made(struct h2_conn *c)
{
    c->last_active = loop_now_ms(c->srv->loop);
    c->progressed = true;
    c->no_progress_frames = 0;
}

/* GOAWAY ENHANCE_YOUR_CALM; further input is dropped (server.c) and the connection closes
 * once the GOAWAY is written (conn_update). */
static void calm_down(struct h2_conn *c, const char *debug, const char *why)
{
    if (c->calm)
        return;
    log_info("connection told to calm down: peer=%s: %s (GOAWAY ENHANCE_YOUR_CALM)", c->peer, why);
    c->calm = true;
    c->linger_until = loop_now_ms(c->srv->loop) + LINGER_MS;   /* for a GOAWAY, then closed */
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)debug,
                          strlen(debug));
}

void progress_frame_received(struct h2_conn *c, const nghttp2_frame *frame, bool on_stream)
{
    struct h2_server *s = c->srv;
    uint8_t type = frame->hd.type;
    if (type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
        c->setup_started = 0;   /* preface and SETTINGS are in (nghttp2 checked the preface) */
    bool request_end = on_stream && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
                       (type == NGHTTP2_HEADERS || type == NGHTTP2_DATA);
    bool body = on_stream && type == NGHTTP2_DATA && frame->hd.length > 0;
    if (request_end || body) {
        progress_made(c);
        return;
    }
    if (type == NGHTTP2_PING && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        uint64_t now = loop_now_ms(s->loop);
        if (c->last_ping && now - c->last_ping < PING_MIN_INTERVAL_MS && ++c->ping_strikes > PING_MAX_STRIKES) {
            s->stats.goaway_pings++;
            char why[96];
            snprintf(why, sizeof why, "more than %d PINGs less than %d ms apart", PING_MAX_STRIKES,
                     PING_MIN_INTERVAL_MS);
            calm_down(c, "too_many_pings", why);
        }
        c->last_ping = now;
    }
    if (++c->no_progress_frames > NO_PROGRESS_MAX_FRAMES && !c->calm) {
        s->stats.goaway_no_progress++;
        char why[96];
        snprintf(why, sizeof why, "%d frames in a row without progress", NO_PROGRESS_MAX_FRAMES + 1);
        calm_down(c, "no progress", why);
    }
}

void progress_frame_sent(struct h2_conn *c, const nghttp2_frame *frame)
{
    if (frame->hd.stream_id == 0 || (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return;
    c->ping_strikes = 0;
    progress_made(c);
}

/* ------------------------------------------------------------------ the timer's checks */

/* A request is arriving: the request timeout governs the connection, not the idle timer. */
static bool receiving(const struct h2_conn *c)
{
    if (c->proto == CONN_HTTP1)
        return c->request_started != 0;
    if (c->proto != CONN_H2)
        return false;
    for (const struct h2_stream *st = c->streams; st; st = st->next)
        if (!st->remote_ended && !st->expired)
            return true;
    return false;
}

/* The setup and idle rules. False when the connection was closed. */
static bool progress_tick(struct h2_conn *c, uint64_t now)
{
    struct h2_server *s = c->srv;
    unsigned setup_limit = s->cfg.request_timeout_ms;
    if (c->setup_started && (c->proto == CONN_SNIFF || c->proto == CONN_H2) && now - c->setup_started >= setup_limit) {
        log_info("request timeout: peer=%s sent no HTTP/2 preface and SETTINGS within %u ms (connection setup)",
                 c->peer, setup_limit);
        s->stats.setup_timeouts++;
        conn_close(c, "setup timeout");
        return false;
    }
    if ((c->terminating || c->calm) && now >= c->linger_until) {
        conn_close(c, "the GOAWAY was not taken in time");   /* a client that does not read */
        return false;
    }
    if (!s->cfg.idle_timeout_ms || c->terminating || c->calm || now - c->last_active < s->cfg.idle_timeout_ms ||
        receiving(c))
        return true;
    log_debug("connection idle: peer=%s, no progress for %u ms, closing", c->peer, s->cfg.idle_timeout_ms);
    s->stats.idle_closed++;
    if (c->proto != CONN_H2) {
        conn_close(c, "idle");
        return false;
    }
    c->terminating = true;
    c->linger_until = now + LINGER_MS;
    nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
    return conn_update(c);
}

/* ------------------------------------------------------------------ the connection timer */

static uint64_t tick_period(const struct h2_server *s)
{
    uint64_t t = s->cfg.request_timeout_ms;
    if (s->cfg.idle_timeout_ms && s->cfg.idle_timeout_ms < t)
        t = s->cfg.idle_timeout_ms;
    uint64_t p = t / 4;
    return p < 50 ? 50 : p > 1000 ? 1000 : p;
}

/* Requests that do not arrive whole within request_timeout_ms are cut off. */
static void conn_expire(struct h2_conn *c, uint64_t now)
{
    unsigned timeout = c->srv->cfg.request_timeout_ms;
    if (c->proto == CONN_H2) {
        session_expire_streams(c, now);
    } else if (c->request_started && now - c->request_started >= timeout) {
        log_info("request timeout: peer=%s sent no complete request within %u ms", c->peer, timeout);
        c->srv->stats.requests_timed_out++;
        c->request_started = 0;
        if (c->proto == CONN_SNIFF) {
            conn_close(c, "request timeout");
            return;
        }
        http1_timeout(c);
    }
    conn_update(c);
}

/* One timer for all connections: the setup and idle rules, request timeouts, the end of
 * lingering, the transport's handshake. */
static void idle_tick(struct loop *l, void *ud)
{
    struct h2_server *s = ud;
    uint64_t now = loop_now_ms(l);
    struct h2_conn *next;
    for (struct h2_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->proto == CONN_LINGER) {
            if (now >= c->linger_until)
                conn_close(c, "lingering close done");
            continue;
        }
        if (!c->io_ready) {   /* a TLS handshake takes no longer than a request may */
            if (now - c->accepted_ms >= s->cfg.request_timeout_ms) {
                log_info("TLS handshake timeout: peer=%s did not finish within %u ms", c->peer,
                         s->cfg.request_timeout_ms);
                s->stats.tls_handshake_failures++;
                conn_close(c, "TLS handshake timeout");
            }
            continue;
        }
        if (progress_tick(c, now))
            conn_expire(c, now);
    }
    s->idle_timer = loop_add_timer(l, tick_period(s), idle_tick, s);
}

void conn_timer_start(struct h2_server *s)
{
    s->idle_timer = loop_add_timer(s->loop, tick_period(s), idle_tick, s);
}
