/*
 * internal.h - what the files of the transport share; not for the rest of the program.
 *
 * One server (struct h2_server) owns a listener and its connections. A connection speaks one
 * protocol at a time:
 *   CONN_H2     an nghttp2 server session (session.c); each stream is a gRPC call
 *               (grpc_call.c) on the gRPC port, an HTTP exchange (http.c) on the HTTP port;
 *   CONN_HTTP1  HTTP/1.1 through http_parser (http1.c), one exchange at a time;
 *   CONN_SNIFF  HTTP port only: the first bytes decide between h2c prior knowledge (the
 *               client preface) and HTTP/1.1; an HTTP/1.1 request with "Upgrade: h2c" turns
 *               the connection into CONN_H2 afterwards;
 *   CONN_LINGER the last response is out and our side is shut down; the peer's remaining
 *               upload is read and dropped for a moment so that it sees our response rather
 *               than a reset.
 * So the gRPC port and the h2c side of the HTTP port run the very same session code, and an
 * HTTP request has the same semantics (routes, limits, gzip, errors) whether it came over
 * HTTP/1.1 or HTTP/2 (http.c).
 */
#ifndef LB_H2_INTERNAL_H
#define LB_H2_INTERNAL_H

#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "h2/grpc.h"
#include "h2/peers.h"
#include "h2/server.h"
#include "lib/buf.h"

enum {
    READ_CHUNK = 64 * 1024,               /* a read on an HTTP/1.1 (or not yet known)
                                           * connection: what http1.c may have to hold back */
    H2_READ = 256 * 1024,                 /* a read on an HTTP/2 connection: with several
                                           * streams open, several requests wait, and one
                                           * read, one turn and one write of answers serve
                                           * them all (docs/bench-transport.md) */
    OUT_HIGH_WATER = 256 * 1024,          /* unsent bytes above which we stop producing/reading */
    OUT_LIMIT = 8 * 1024 * 1024,          /* hard cap on a connection's output buffer */
    STREAM_WINDOW = 1024 * 1024,          /* announced SETTINGS_INITIAL_WINDOW_SIZE */
    CONN_WINDOW = 8 * 1024 * 1024,        /* connection-level receive window */
    MAX_HEADER_BYTES = 16 * 1024,         /* per request header block (RFC 7541 sizes) */
    MAX_HEADERS = 100,                    /* header fields per request */
    PATH_LEN = 256,
    QUERY_LEN = 1536,
    ADDR_LEN = INET6_ADDRSTRLEN + 16,
    H2_PREFACE_LEN = 24,                  /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
    LINGER_MS = 2000,                     /* CONN_LINGER: how long the peer's upload is drained */
    LINGER_MAX_BYTES = 4 * 1024 * 1024,   /* ... and how much of it */
    DISCARD_MAX_BYTES = 256 * 1024,       /* body of a refused HTTP/1.1 request read to keep the
                                           * connection; beyond it, answer now and close */
    /* Connections must make progress (progress.c, docs/receiving.md): */
    DEFAULT_MAX_CONNECTIONS_PER_IP = 128,
    PING_MIN_INTERVAL_MS = 500,           /* a PING sooner than this after the last one is a strike */
    PING_MAX_STRIKES = 2,                 /* one strike more: GOAWAY ENHANCE_YOUR_CALM */
    NO_PROGRESS_MAX_FRAMES = 100,         /* frames in a row without progress, then the same */
};

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

struct h2_method {
    char *path;
    grpc_method_fn fn;
    void *ud;
    uint64_t replies[H2_OUTCOMES];
    bool open;             /* no bearer token needed (h2_server_make_public) */
};

struct http_route {
    char *path;
    char method[8];
    http_handler_fn fn;
    void *ud;
    uint64_t replies[H2_OUTCOMES];
    bool open;             /* no bearer token needed (h2_server_make_public) */
};

/* One HTTP request and its response, whatever the protocol version (http.c). */
enum ex_state {
    EX_HEADERS,    /* request headers not complete yet */
    EX_BODY,       /* accepted: the body is collected */
    EX_REJECTED,   /* answered before its body: the body is read and dropped */
    EX_READY,      /* the response is in `resp`, to be sent */
};

struct http_exchange {
    struct h2_server *srv;
    const char *peer;
    const char *protocol;      /* "HTTP/1.1", "HTTP/1.0", "h2c" */
    enum ex_state state;
    char method[16];
    char path[PATH_LEN];       /* without the query */
    char query[QUERY_LEN];     /* after '?', "" when none */
    bool query_long;           /* longer than QUERY_LEN: refused with 414 */
    char ctype[128];
    char encoding[64];
    bool has_length;
    uint64_t content_length;
    bool expect_continue;
    unsigned auth_headers;     /* Authorization headers seen */
    bool authorized;           /* ... and the last one carries an accepted token */
    bool head;                 /* HEAD: the response has no body */
    bool counted;              /* counted in stats.calls */
    bool answered;             /* counted in calls_ok or calls_failed */
    struct http_route *route;
    struct buf body;           /* as received (maybe gzip) */
    size_t held;               /* bytes of `body` counted in server->inflight */
    uint64_t discarded;
    struct http_response resp;
    char allow[32];            /* 405: the methods the path takes */
};

enum stream_state {
    ST_HEADERS,   /* request headers not complete yet */
    ST_BODY,      /* accepting the request message */
    ST_DONE,      /* answered (or failed): further request bytes are discarded */
    ST_UNAUTHENTICATED,   /* no accepted token: the body is dropped, UNAUTHENTICATED answered
                           * at its end (grpc_call.c says why not at once) */
};

/* A server's connections and a connection's streams are intrusive doubly-linked lists
 * (prev/next in the element, the head in the owner): new elements go first, any one can be
 * unlinked in O(1). The same two macros serve both lists. */
#define DLIST_PUSH(head, el)                 \
    do {                                     \
        (el)->next = (head);                 \
        if (head)                            \
            (head)->prev = (el);             \
        (head) = (el);                       \
    } while (0)
#define DLIST_UNLINK(head, el)               \
    do {                                     \
        if ((el)->prev)                      \
            (el)->prev->next = (el)->next;   \
        else                                 \
            (head) = (el)->next;             \
        if ((el)->next)                      \
            (el)->next->prev = (el)->prev;   \
    } while (0)

struct h2_conn;

struct h2_stream {
    struct h2_conn *conn;
    struct h2_stream *prev, *next;
    int32_t id;
    uint64_t started_ms;   /* request headers began: the request timeout runs from here */
    bool remote_ended;     /* the client sent END_STREAM */
    bool is_http;          /* an HTTP exchange (HTTP port) rather than a gRPC call */
    bool expired;          /* the request timeout hit it */
    size_t header_bytes;
    unsigned header_count;
    /* gRPC calls (grpc_call.c) */
    enum stream_state state;
    bool is_call;          /* request headers completed: counted in stats.calls */
    bool responded;        /* a response was submitted: counted in calls_ok/failed */
    bool have_msg;         /* one complete message is in `msg` */
    unsigned auth_headers; /* authorization headers seen */
    bool authorized;       /* ... and the last one carries an accepted token */
    size_t dropped;        /* ST_UNAUTHENTICATED: body bytes read and dropped */
    char method[8];
    char path[PATH_LEN];
    char ctype[64];
    char encoding[32];
    const struct h2_method *handler;
    struct grpc_framer framer;
    struct buf msg;        /* the request message as received (maybe compressed) */
    size_t held;           /* bytes of `msg` counted in server->inflight */
    struct buf resp;       /* prefix + reply body, fed to nghttp2 by resp_read() */
    size_t resp_off;
    char *trailer_msg;     /* percent-encoded grpc-message for the trailers, or NULL */
    /* HTTP exchanges (http.c, session.c) */
    struct http_exchange ex;
    bool http_submitted;
    struct h2_push *push;  /* a long-lived response (push.c): its body grows in ex.resp.body */
    bool push_ended;       /* ... ended by the application: EOF once the body is sent */
};

enum conn_proto { CONN_SNIFF, CONN_H2, CONN_HTTP1, CONN_LINGER };

struct http1;

struct h2_conn {
    struct h2_server *srv;
    struct h2_conn *prev, *next;
    int fd;
    int events;            /* what the loop watches for now */
    bool io_ready;         /* the transport (conn_io.c) carries protocol bytes now */
    int io_want;           /* what the transport itself waits for (LOOP_READ/LOOP_WRITE) */
    struct ssl_st *ssl;    /* TLS (conn_io.c), or NULL: the plain socket */
    const char *io_error;  /* the transport failed after delivering some bytes */
    char io_why[256];      /* the transport's last error, said */
    char peer[ADDR_LEN];
    enum conn_proto proto;
    nghttp2_session *ng;   /* CONN_H2 */
    struct http1 *h1;      /* CONN_HTTP1 */
    uint8_t sniff[H2_PREFACE_LEN];
    size_t sniffed;
    struct buf out;        /* bytes to write (nghttp2's output, or HTTP/1.1 responses) */
    size_t out_off;
    struct peer_key peer_key;   /* its address, as the per-IP limit counts it */
    uint64_t accepted_ms;
    uint64_t last_active;       /* the last progress (progress.c): the idle timer runs from it */
    uint64_t setup_started;     /* nonzero while the HTTP/2 preface and SETTINGS are awaited
                                 * (CONN_SNIFF, CONN_H2): since the connection was accepted */
    bool progressed;            /* made progress once; evicted last */
    bool calm;                  /* GOAWAY ENHANCE_YOUR_CALM submitted: input is dropped, and the
                                 * connection closed once the GOAWAY is out */
    unsigned no_progress_frames;   /* HTTP/2 frames received since the last progress */
    unsigned ping_strikes;
    uint64_t last_ping;
    uint64_t request_started;   /* HTTP/1.1 (and sniffing): a request is arriving since */
    uint64_t linger_until;
    size_t lingered;
    bool terminating;      /* GOAWAY submitted because of idleness */
    bool held;             /* output waits for a commit (lib/commit.h) */
    uint64_t dep_gen;      /* the newest commit generation its unsent output depends on */
    uint64_t dep_oldest;   /* the oldest one no sync has settled yet (0: none): when a sync
                            * covering it fails, the connection is closed unanswered */
    uint64_t out_sent_total, out_seen;   /* bytes written to the socket; appended when last looked */
    bool close_after_flush;     /* HTTP/1.1: close (lingering) once `out` is written */
    struct h2_stream *streams;
    unsigned nstreams;
    struct h2_push *push;  /* HTTP/1.1: the long-lived response this connection carries */
};

struct h2_server {
    struct loop *loop;
    struct h2_server_config cfg;
    char *address;
    char bound[ADDR_LEN];
    int lfd;
    bool shutting_down;
    uint64_t idle_timer, accept_timer;
    struct h2_method *methods;
    size_t nmethods;
    struct http_route *routes;
    size_t nroutes;
    http_error_fn error_fn;
    void *error_ud;
    struct h2_conn *conns;
    size_t inflight;       /* sum of stream->held and exchange->held */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    struct h2_stats stats;
    struct peer_table peers;   /* open connections per client address */
    uint8_t rbuf[H2_READ];   /* one for all connections: the loop reads one at a time */
};

/* Counts a reply in the server's stats and, when it answered a registered method or route,
 * in that one's (`replies` NULL otherwise). */
static inline void count_reply(struct h2_server *s, uint64_t *replies, enum h2_outcome o)
{
    s->stats.replies[o]++;
    if (o == H2_OUT_OK)
        s->stats.calls_ok++;
    else
        s->stats.calls_failed++;
    if (replies)
        replies[o]++;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static inline size_t out_pending(const struct h2_conn *c) { return c->out.len - c->out_off; }

/* server.c */
/* Serves an accepted (non-blocking) socket; on failure it is closed and nothing is kept.
 * Also the fuzz targets' way in (test/fuzz/harness.c: one end of a socketpair). */
void conn_new(struct h2_server *s, int fd, const struct sockaddr_storage *ss);
bool conn_update(struct h2_conn *c);

/* held.c: replies that acknowledge what a writer has not synced yet wait for the group
 * commit (lib/commit.h). */
/* A request was handled: its reply may depend on the generation being written now. */
void conn_depend(struct h2_conn *c);
enum hold { HOLD_SEND, HOLD_WAIT, HOLD_LOST };
/* Before writing `out`: send it, wait for a sync, or close (a sync it depends on failed). */
enum hold conn_hold_check(struct h2_conn *c);
/* The commit's listener (ud: the server): releases or closes the connections a sync decided. */
void held_on_commit(void *ud, bool ok, uint64_t gen);
void conn_close(struct h2_conn *c, const char *why);
/* HTTP/1.1 -> h2c after "Upgrade: h2c": `ex` (complete) becomes stream 1; `rest` are the
 * bytes after the request, already HTTP/2. False when the connection must be closed. */
bool conn_upgrade_h2c(struct h2_conn *c, const uint8_t *settings, size_t settings_len,
                      struct http_exchange *ex, const uint8_t *rest, size_t rest_len);

/* progress.c: every connection must make progress (docs/receiving.md) */
/* At accept: the per-IP limit and the connection cap. Evicts the oldest connection that made
 * no progress when one is in the way; false when the newcomer must be refused. */
bool progress_admit(struct h2_server *s, const struct peer_key *k, const char *peer);
/* Progress: a whole request arrived, request body bytes, a response went out. */
void progress_made(struct h2_conn *c);
/* Every HTTP/2 frame received (session.c's on_frame_recv): setup done, progress, PING strikes,
 * frames without progress. May submit GOAWAY ENHANCE_YOUR_CALM (c->calm). */
void progress_frame_received(struct h2_conn *c, const nghttp2_frame *frame, bool on_stream);
/* A response frame went out: progress, and PING strikes are forgiven (as grpc-go does). */
void progress_frame_sent(struct h2_conn *c, const nghttp2_frame *frame);
/* Starts the server's connection timer (once, when it listens). */
void conn_timer_start(struct h2_server *s);
/* conn_io.c: the byte transport under a connection (the socket; the handshake's place).
 * conn_io_start prepares an accepted connection; conn_io_handshake advances the handshake
 * while !c->io_ready (false: give up, `why` says why). Reads return the bytes read, 0 when
 * nothing is there now, -1 when the connection is over (`why`). Writes return the bytes
 * taken, 0 when none can be now, -1 when the connection broke. conn_io_events adds what the
 * transport itself waits for to what the protocol wants. conn_io_close releases the socket
 * (and removes it from the loop). */
bool conn_io_start(struct h2_conn *c, const char **why);
bool conn_io_handshake(struct h2_conn *c, const char **why);
ssize_t conn_io_read(struct h2_conn *c, uint8_t *p, size_t n, const char **why);
ssize_t conn_io_write(struct h2_conn *c, const uint8_t *p, size_t n);
int conn_io_events(const struct h2_conn *c, int wanted);
/* Whether a readiness event calls for a read: readable, or writable while a TLS read waits
 * to write first. */
bool conn_io_should_read(const struct h2_conn *c, int events);
void conn_io_shutdown_write(struct h2_conn *c);
void conn_io_close(struct h2_conn *c);

/* tls.c: the context new connections are made from (tls.h). */
struct ssl_ctx_st *h2_tls_ctx(const struct h2_tls *t);

/* session.c: the nghttp2 side, shared by the gRPC port and h2c */
int session_make_callbacks(struct h2_server *s);
int session_start(struct h2_conn *c);
struct h2_stream *stream_new(struct h2_conn *c, int32_t id);
void stream_free(struct h2_stream *st, const char *why);
void stream_release_msg(struct h2_stream *st);
/* Request timeout: answers (or resets) streams whose request did not arrive in time. */
void session_expire_streams(struct h2_conn *c, uint64_t now);
/* Submits an HTTP exchange's response (it must be EX_READY). */
void session_submit_http(struct h2_stream *st);

/* grpc_call.c: one gRPC unary call on a stream */
void grpc_stream_on_request(struct h2_stream *st);
void grpc_stream_on_data(struct h2_stream *st, const uint8_t *p, size_t n);
void grpc_stream_on_end(struct h2_stream *st);
void grpc_stream_on_header(struct h2_stream *st, const uint8_t *name, size_t namelen,
                           const uint8_t *value, size_t valuelen);
void grpc_stream_timeout(struct h2_stream *st, unsigned timeout_ms);
struct h2_method *find_method(struct h2_server *s, const char *path);

/* http.c: the semantics of one HTTP request, whatever carried it */
enum http_verdict { HTTP_GO_ON, HTTP_ANSWER_NOW };
void http_exchange_init(struct http_exchange *ex, struct h2_server *s, const char *peer,
                        const char *protocol);
void http_exchange_free(struct http_exchange *ex);
/* Moves an exchange (its buffers and in-flight bytes) from `from` to `to`; `from` is left
 * empty. */
void http_exchange_move(struct http_exchange *to, struct http_exchange *from);
/* A request header; names are matched case-insensitively (h2 pseudo-headers included). */
void http_exchange_header(struct http_exchange *ex, const char *name, size_t namelen,
                          const char *value, size_t valuelen);
/* Sets the request target ("/path?query" or "http://host/path"); false when unusable. */
bool http_exchange_target(struct http_exchange *ex, const char *target, size_t len);
/* Headers complete: route, method and encoding checked. ANSWER_NOW when refused (the
 * response is ready, state EX_REJECTED). */
enum http_verdict http_exchange_headers_done(struct http_exchange *ex);
/* Body bytes (dechunked). ANSWER_NOW when the body just became unacceptable (too large,
 * server busy): the response is ready, state EX_REJECTED. */
enum http_verdict http_exchange_body(struct http_exchange *ex, const uint8_t *p, size_t n);
/* The request is complete: runs the handler (unless refused already); state EX_READY. */
void http_exchange_finish(struct http_exchange *ex);
/* An error response decided by the transport (statuses 4xx/5xx); state EX_REJECTED. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void http_exchange_error(struct http_exchange *ex, int status, const char *fmt, ...);
/* Counts the response in the stats (once) and logs errors; call when it is sent. */
void http_exchange_account(struct http_exchange *ex);
const char *http_reason(int status);

/* push.c: long-lived responses (server.h) bound to what carries them */
struct h2_push {
    struct h2_conn *conn;     /* NULL until the response headers are sent */
    struct h2_stream *st;     /* h2: its stream; NULL on HTTP/1.1 */
    h2_push_gone_fn gone;
    void *ud;
    bool deferred;            /* h2_defer_open: nothing is sent before h2_defer_send */
};
/* The response carrying `p` was sent on an HTTP/1.1 connection / an h2 stream. */
void push_bind_h1(struct h2_conn *c, struct h2_push *p);
void push_bind_h2(struct h2_stream *st, struct h2_push *p);
/* The response will not stay open, or what carried it is going away: `gone`, then free. */
void push_abandon(struct h2_push *p);
/* The loop should tell when the connection can be written (output was queued outside an
 * I/O event). */
void conn_want_write(struct h2_conn *c);

/* http1.c */
struct http1 *http1_new(struct h2_conn *c);
void http1_free(struct http1 *h);
/* Bytes from the socket. False when the connection must close now. */
bool http1_feed(struct h2_conn *c, const uint8_t *p, size_t n);
/* Parses input held back while output was pending; false when the connection must close. */
bool http1_resume(struct h2_conn *c);
/* True when held-back input waits for the output to drain (reading pauses meanwhile). */
bool http1_paused(const struct h2_conn *c);
/* Writes the deferred response of the connection's current request and closes after it. */
void http1_defer_send(struct h2_conn *c);
struct http_response *http1_defer_response(struct h2_conn *c);
/* The request timeout: answers 408 and closes. */
void http1_timeout(struct h2_conn *c);

#endif
