/*
 * cmd.h - what the command files share: struct app, the process's only long-lived state,
 * the commands main.c calls, and the pipeline they run requests through.
 *
 * The process is one thread around one event loop (lib/loop.c). Data flows one way:
 * h2/ (transport) -> otlp/ (decode, validate, resolve) -> sinks/ (output). cmd/ is where the
 * layers are connected, and the only place that includes all of them; none of the layers
 * knows about the others' internals.
 *
 *   options.c   --help, the option parser, the defaults (struct config, options.h)
 *   args.c      how an option's value is read and checked, from an argument or from a
 *               LAZYBACKEND_* environment variable
 *   pipeline.c  the sinks and the filter stage, a request through a decoder, the counts,
 *               the server's health, and giving everything back
 *   metrics.c   GET /metrics: the request counters, and the page (metrics_parts.c the rest)
 *   serve.c     `lazybackend serve`: the ports and their handlers, signals, shutdown
 *   service.c   what serve tells a service manager (systemd): ready, status, stopping,
 *               and the watchdog pings
 *   decode.c    `lazybackend decode FILE...`: captured payloads through the same decoder
 *   send.c      `lazybackend send FILE...`: captured payloads to a running server
 *   check.c     `lazybackend check FILE...`: the conformance verdict on captured payloads
 *   capture.c   the one reader of captured payloads (protobuf, JSON, gzip) for both
 *   usdt*.c     `lazybackend usdt`: USDT probes through bpftrace as OTLP spans (usdt_internal.h)
 *
 * main.c parses the options first, then calls one command. From then on every startup
 * failure goes through app_teardown(), which gives back whatever exists.
 */
#ifndef LB_CMD_CMD_H
#define LB_CMD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/metrics.h"
#include "cmd/options.h"
#include "cmd/service.h"
#include "h2/grpc_health.h"
#include "h2/otlp_http.h"
#include "h2/server.h"
#include "lib/loop.h"
#include "ui/ui.h"
#include "otlp/decode.h"
#include "otlp/traces.h"
#include "sinks/sink.h"

/* Senders whose proto layout was logged: each connection's layout is logged once, and again
 * when it changes. Bounded; the oldest entry makes room. */
#define LAYOUT_PEERS 64
struct layout_peer {
    char peer[64];
    const struct otlp_layout *layout;
};

struct app {
    struct config cfg;
    struct loop *loop;
    struct commit *commit;          /* group commit between the sinks' logs and the replies */
    struct h2_server *server;
    struct otlp_decoder *decoder;
    struct otlp_checker *checker;   /* --check log|strict: made with the first request */
    struct sink sink_storage[MAX_SINKS];
    struct sink_set sinks;          /* what the decoder drives: the sinks, or {filter} */
    struct sink filter_sink;        /* when filtering: forwards to inner_sinks */
    struct sink_set inner_sinks;
    struct sink *stdout_sink;       /* reopened on SIGHUP */
    uint64_t sequence;
    uint64_t shutdown_deadline_ms;
    bool shutting_down;
    struct { uint64_t samples, rejected_samples; } stats;
    struct h2_server *http_server;  /* OTLP/HTTP (HTTP/1.1 and h2c), or NULL */
    int sigfd;                      /* signalfd on the loop, or -1 */
    struct otlp_http_service http_service;
    struct grpc_health_service grpc_health;
    struct metrics metrics;             /* GET /metrics (metrics.h) */
    char unhealthy_why[320];            /* app_unhealthy's answer when it is a sink's reason */
    struct otlp_trace_decoder *trace_decoder;
    struct { uint64_t spans, ignored_spans, rejected_spans; } trace_stats;
    struct layout_peer layout_peers[LAYOUT_PEERS];
    unsigned layout_peers_next;
    /* The stdout sink's reader went away (EPIPE): with no other sink the command stops, like
     * a filter whose output is closed; with others it goes on and /healthz says so. */
    bool stdout_gone;
    void (*stop)(struct app *app, const char *why);   /* set by serve: begin the shutdown */
    struct service service;         /* the service manager's view (service.c) */
    struct ui *ui;                  /* the web UI on the HTTP port (ui/ui.h), or NULL */
    struct live_queue *live;        /* its live tail's events waiting for the commit (live.c) */
    struct ui_clickhouse ui_ch;     /* where it reads without a sqlite sink, with a clickhouse one */
    struct h2_tls *tls;             /* both ports' TLS, or NULL (security.c) */
    struct h2_auth *auth;           /* the bearer tokens both ports ask for, or NULL */
};

/* ---------- the commands (a zeroed app, sigfd -1, options parsed and checked) ---------- */

/* `lazybackend serve`: both ports until SIGINT/SIGTERM (serve.c). The exit status. */
int serve_command(struct app *app);
/* Replies to one signal's Export requests (its gRPC method and its HTTP path) on both ports,
 * whoever answered them (the pipeline or the transport): by outcome added to `by`, per port
 * (gRPC, HTTP) into `ports`; the total. */
uint64_t signal_replies(const struct app *app, enum otlp_signal sig, uint64_t by[H2_OUTCOMES], uint64_t ports[2]);

/* `lazybackend decode FILE...` (decode.c). The exit status: 0; 1 when setting up failed, a
 * file could not be read, or a request was refused, had something rejected or (--detect)
 * fit no layout; 2 without input. */
int decode_command(struct app *app, const char **files, int n_files);

/* `lazybackend top|folded|flamegraph` over a SQLite file or ClickHouse (query.c); argv holds
 * the command's own arguments. The exit status. */
int query_command(const char *command, int argc, char **argv);

/* `lazybackend send FILE...` (send.c): argv after "send". The exit status: 0 when every
 * request was accepted whole, 1 otherwise, 2 for bad options. */
int send_command(int argc, char **argv);

/* The `send` command's client, for commands that send requests they built (export.c): one
 * connection, one request at a time, each answer printed on stdout as `send` prints it.
 * to: as send's --to (NULL: the default address); http: OTLP/HTTP instead of gRPC. */
struct otlp_client;
struct otlp_client *otlp_client_open(const char *to, bool http, bool gzip, long timeout_s, const char *prog,
                                     char *err, size_t errlen);
/* 0 when the receiver accepted the request whole; 1 otherwise (the reason printed). */
int otlp_client_send(struct otlp_client *c, const uint8_t *msg, size_t len, unsigned index);
void otlp_client_close(struct otlp_client *c);

/* `lazybackend export`: a SQLite store written back out as OTLP or pprof (export.c). */
int export_command(int argc, char **argv);

/* `lazybackend check FILE...` (check.c): argv after "check". The exit status: 0 when every
 * request is conformant, 1 when any has a finding, 2 when something could not be read or for
 * bad options. */
int check_command(int argc, char **argv);

/* `lazybackend usdt [options]` (usdt.c): argv after "usdt". The exit status: 0 when every
 * span was delivered, bpftrace's status when it failed, 1 when it could not start or spans
 * were lost, 2 for bad options. */
int usdt_command(int argc, char **argv);

/* `lazybackend ui [--db FILE] [--address ADDR]` (ui.c): the web UI alone over a database.
 * The exit status: 0 after SIGINT/SIGTERM, 1 when it could not start, 2 for bad options. */
int ui_command(int argc, char **argv);

/* ---------- the pipeline (pipeline.c) ---------- */

/* The configured sinks (stdout when none) and the filter stage in front of them into
 * app->sinks. 0, or -1 after logging why. */
int open_sinks(struct app *app);

/* Gives back everything built so far, once; safe on a partly built app. The sinks get
 * `deadline_ms` to flush. */
void app_teardown(struct app *app, int deadline_ms);
/* After the sinks closed: acknowledged rows they could neither deliver nor keep (the exit
 * status is then non-zero). */
uint64_t app_lost_rows(const struct app *app);

/* A startup step failed (and said why): app_teardown, then the exit status (1). */
int startup_failed(struct app *app);

/* The wall clock in nanoseconds: when a request was received, for the sinks. */
uint64_t now_unix_nano(void);

/* The web UI's live tail (live.c): live_open after the UI is made (a listener of the group
 * commit), live_publish for each request (the event waits for its generation's sync),
 * live_close before the UI is freed. */
struct ui_event;
int live_open(struct app *app);
void live_publish(struct app *app, const struct ui_event *e);
void live_close(struct app *app);

/* After each request: notices that the stdout sink lost its reader, logs it once, and stops
 * the command (app->stop) when stdout was its only sink. */
void note_stdout_reader(struct app *app);

/* Why the server is not healthy, or NULL: shutting down, the stdout sink's reader gone, or a
 * sink that would refuse a request now (sink_set_ready). /healthz answers 503 with it, the
 * gRPC health check NOT_SERVING. */
const char *app_unhealthy(void *app);

/* Counts the samples of a profiles request a sink committed into app->stats. */
void count_result(struct app *app, const struct otlp_result *res);

/* A profiles / traces request from the network (either port) through its decoder into the
 * sinks, counted (its duration from `started_ns`, lib/clock.h) and logged with `how` it came. */
void run_profiles(struct app *app, struct lb_request *req, const char *how, bool compressed,
                  const uint8_t *msg, size_t len, uint64_t started_ns, struct otlp_result *res);
void run_traces(struct app *app, struct lb_request *req, const char *how,
                const uint8_t *msg, size_t len, uint64_t started_ns, struct otlp_trace_result *res);

#endif
