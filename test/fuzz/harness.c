/*
 * harness.c - the shared pieces of the fuzz targets (see harness.h for why they are shared).
 *
 * The only mutable state is one process-wide struct made on first use: libFuzzer calls the
 * target without a context argument, and remaking decoders and sinks for every input would
 * both slow the run and hide bugs that only show when they are reused (as in the server).
 */
#include "test/fuzz/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2/internal.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "otlp/json.h"
#include "sinks/stdout/stdout.h"

enum {
    N_FORMATS = 3,
    RESPONSE_LIMIT = 1 << 20,
    /* Loop turns a connection may take after the client hung up before it counts as a hang:
     * each turn the server reads up to 64 KiB and the client drains every answer, so an
     * honest connection closes within a handful. */
    HANGUP_TURNS = 200,
};

struct shared {
    struct sink sinks[N_FORMATS];
    struct sink_set set;
    struct otlp_decoder *profiles;
    struct otlp_trace_decoder *traces;
    uint64_t sequence;
};

void fuzz_must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: invariant broken: %s\n", what);
        abort();
    }
}

void fuzz_init_logs(void)
{
    log_set_level(LOG_DEBUG);
}

static struct shared *shared(void)
{
    static struct shared *sh;
    if (sh)
        return sh;
    sh = calloc(1, sizeof *sh);
    fuzz_must(sh != NULL, "out of memory");
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fuzz_must(devnull >= 0, "open /dev/null");
    static const enum stdout_format formats[N_FORMATS] = {
        STDOUT_FORMAT_TEXT, STDOUT_FORMAT_FOLDED, STDOUT_FORMAT_JSON,
    };
    for (size_t i = 0; i < N_FORMATS; i++) {
        struct stdout_sink_options o;
        memset(&o, 0, sizeof o);
        o.format = formats[i];
        o.fd = devnull;
        fuzz_must(stdout_sink_open(&sh->sinks[i], &o) == 0, "stdout sink");
    }
    sh->set = (struct sink_set){ sh->sinks, N_FORMATS };
    struct otlp_limits limits = { OTLP_DEFAULT_MAX_STACK_DEPTH, OTLP_DEFAULT_MAX_FRAMES };
    sh->profiles = otlp_decoder_new(&limits, NULL);
    sh->traces = otlp_trace_decoder_new();
    fuzz_must(sh->profiles && sh->traces, "decoders");
    return sh;
}

struct sink_set *fuzz_stdout_sinks(void)
{
    return &shared()->set;
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

bool fuzz_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

void fuzz_check_json_out(const struct buf *json, const char *what)
{
    for (size_t i = 0; i < json->len; i++)
        fuzz_must(json->data[i] >= 0x20, what);
    /* Unknown keys are skipped whatever their value, so any well-formed JSON object is a
     * valid (empty) request to the reader: it must take every object we write. */
    struct buf pb;
    char err[256];
    buf_init(&pb, RESPONSE_LIMIT);
    enum otlp_json_result r = otlp_json_to_protobuf(OTLP_JSON_TRACES_REQUEST, json->data, json->len,
                                                    &pb, err, sizeof err);
    buf_free(&pb);
    fuzz_must(r == OTLP_JSON_OK, what);
}

/* The contract both decoders keep (decode.h, traces.h): the status returned is the one in
 * the result, the message is terminated, and whatever was rejected is described - in one
 * line of printable ASCII, since the message goes into log lines and error bodies. */
static void check_result(enum otlp_status st, enum otlp_status in_result, const char *message,
                         size_t cap, bool rejected)
{
    fuzz_must(st == in_result, "status and result disagree");
    fuzz_must(terminated(message, cap), "message not terminated");
    fuzz_must(fuzz_printable(message), "message not one line of printable ASCII");
    fuzz_must(st != OTLP_OK || !rejected || message[0], "rejections without a message");
}

/* A response made by the code under test: it succeeded; JSON must be JSON. */
static void check_response(int rc, struct buf *out, bool json, const char *what)
{
    fuzz_must(rc == 0, what);
    if (json)
        fuzz_check_json_out(out, what);
    buf_reset(out);
}

static struct lb_request request_of(const char *transport, size_t len)
{
    return (struct lb_request){ .transport = transport, .peer = "fuzz", .wire_bytes = len,
                                .sequence = ++shared()->sequence };
}

enum otlp_status fuzz_export_profiles(const char *transport, const uint8_t *msg, size_t len,
                                      struct otlp_result *res)
{
    struct shared *sh = shared();
    struct lb_request req = request_of(transport, len);
    enum otlp_status st = otlp_export_profiles(sh->profiles, msg, len, &req, sink_set_consumer(&sh->set), res);
    check_result(st, res->status, res->message, sizeof res->message,
                 res->rejected_profiles || res->rejected_samples);
    fuzz_must(req.layout != NULL, "profiles: no layout name");
    struct buf out;
    buf_init(&out, RESPONSE_LIMIT);
    check_response(otlp_encode_profiles_response(res, &out), &out, false, "profiles response: protobuf");
    check_response(otlp_json_profiles_response(res, &out), &out, true, "profiles response: json");
    check_response(otlp_json_status(3, res->message, &out), &out, true, "status: json");
    buf_free(&out);
    return st;
}

enum otlp_status fuzz_export_traces(const char *transport, const uint8_t *msg, size_t len,
                                    struct otlp_trace_result *res)
{
    struct shared *sh = shared();
    struct lb_request req = request_of(transport, len);
    enum otlp_status st = otlp_export_traces(sh->traces, msg, len, &req, sink_set_consumer(&sh->set), res);
    check_result(st, res->status, res->message, sizeof res->message, res->rejected_spans > 0);
    struct buf out;
    buf_init(&out, RESPONSE_LIMIT);
    check_response(otlp_encode_traces_response(res, &out), &out, false, "traces response: protobuf");
    check_response(otlp_json_traces_response(res, &out), &out, true, "traces response: json");
    buf_free(&out);
    return st;
}

/* ------------------------------------------------------------------ the server on a socketpair */

struct fuzz_net {
    struct loop *loop;
    struct h2_server *srv;
    bool show;   /* FUZZ_SHOW_RESPONSES set: the server's answers go to stderr (reproducing) */
};

struct fuzz_net *fuzz_net_new(const struct h2_server_config *cfg)
{
    struct fuzz_net *n = calloc(1, sizeof *n);
    fuzz_must(n != NULL, "out of memory");
    n->loop = loop_new();
    fuzz_must(n->loop != NULL, "loop");
    n->srv = h2_server_new(n->loop, cfg);
    fuzz_must(n->srv != NULL, "server");
    n->show = getenv("FUZZ_SHOW_RESPONSES") != NULL;
    return n;
}

struct h2_server *fuzz_net_server(struct fuzz_net *n)
{
    return n->srv;
}

struct loop *fuzz_net_loop(struct fuzz_net *n)
{
    return n->loop;
}

static void stop_cb(struct loop *l, void *ud)
{
    (void)ud;
    loop_stop(l);
}

/* One pass of the loop: whatever is ready now is served, nothing waits. */
static void turn(struct fuzz_net *n)
{
    loop_add_timer(n->loop, 0, stop_cb, NULL);
    fuzz_must(loop_run(n->loop) == 0, "loop_run");
}

/* Reads and drops (or shows) what the server wrote; returns the byte count. */
static size_t drain(int fd, bool show)
{
    static uint8_t sink[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(fd, sink, sizeof sink, 0);
        if (r <= 0)
            return total;
        if (show)
            fwrite(sink, 1, (size_t)r, stderr);
        total += (size_t)r;
    }
}

static size_t open_connections(const struct fuzz_net *n)
{
    return (size_t)h2_server_stats(n->srv)->connections_open;
}

size_t fuzz_net_exchange(struct fuzz_net *n, const uint8_t *data, size_t size, size_t piece)
{
    int sv[2];
    fuzz_must(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(9);
    size_t before = open_connections(n);
    conn_new(n->srv, sv[0], &ss);
    fuzz_must(open_connections(n) == before + 1, "connection not taken");
    if (piece == 0 || piece > size)
        piece = size ? size : 1;
    size_t sent = 0, answered = 0, after_hangup = 0;
    bool hung_up = false;
    /* Bounded both ways: before the hang-up every turn sends a piece unless the server
     * stopped reading (its output is paused, which the drain below releases); after it, an
     * honest server reads the end of the stream and closes within a few turns. */
    size_t max_sending = 4 * (size / piece + 1) + HANGUP_TURNS;
    for (size_t t = 0; open_connections(n) > before; t++) {
        fuzz_must(t < max_sending || hung_up, "the server stopped reading a connection");
        fuzz_must(after_hangup < HANGUP_TURNS, "the server kept a connection whose peer hung up");
        if (sent < size) {
            size_t want = size - sent < piece ? size - sent : piece;
            ssize_t w = send(sv[1], data + sent, want, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                sent = size;   /* the server closed: nothing more goes in */
        }
        if (sent == size && !hung_up) {
            shutdown(sv[1], SHUT_WR);
            hung_up = true;
        }
        after_hangup += hung_up;
        turn(n);
        answered += drain(sv[1], n->show);
    }
    fuzz_must(open_connections(n) == before, "the server kept a connection whose peer hung up");
    close(sv[1]);
    return answered;
}
