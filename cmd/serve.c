/*
 * serve.c - `lazybackend serve`: the gRPC and OTLP/HTTP ports, the handlers that hand their
 * requests to the pipeline (pipeline.c), signals, and the drained shutdown.
 *
 * Why here and not in h2/: the transport knows requests and replies, not what is done with
 * them; this file turns a call from either port into a decoder run and the result back into
 * that transport's answer, so both ports end in the same code.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/security.h"
#include "h2/grpc_health.h"
#include "h2/otlp_http.h"
#include "ui/ui.h"
#include "h2/server.h"
#include "lib/clock.h"
#include "lib/commit.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "otlp/decode.h"
#include "otlp/traces.h"
#include "sinks/sink.h"
#include "sinks/stdout/stdout.h"

#define PROFILES_SERVICE "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
#define TRACES_SERVICE "opentelemetry.proto.collector.trace.v1.TraceService"
#define PROFILES_EXPORT_PATH "/" PROFILES_SERVICE "/Export"

/* ---------- the handlers: a call from either port, through the pipeline ---------- */

/* A decode's outcome as a gRPC reply: OK with the response the caller encoded (`encoded` is
 * how that went), or the status that fits and the decoder's message (the transport logs
 * every error reply once, with peer, path and status). */
static void grpc_answer(struct grpc_reply *reply, enum otlp_status st, const char *message, int encoded)
{
    switch (st) {
    case OTLP_OK: reply->status = GRPC_OK; break;
    case OTLP_INVALID: reply->status = GRPC_INVALID_ARGUMENT; break;
    case OTLP_UNAVAILABLE: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_SINK_FAILED: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_NOMEM: reply->status = GRPC_RESOURCE_EXHAUSTED; break;
    }
    if (st != OTLP_OK) {
        snprintf(reply->message, sizeof reply->message, "%s", message);
    } else if (encoded != 0) {
        reply->status = GRPC_INTERNAL;
        snprintf(reply->message, sizeof reply->message, "cannot encode the response");
    }
}

/* gRPC ProfilesService/Export */
static void grpc_profiles(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    struct lb_request req = { .transport = "grpc", .peer = call->peer, .wire_bytes = call->wire_bytes };
    struct otlp_result res;
    run_profiles(ud, &req, NULL, call->compressed, call->message, call->length, clock_mono_ns(), &res);
    grpc_answer(reply, res.status, res.message,
                res.status == OTLP_OK ? otlp_encode_profiles_response(&res, &reply->body) : 0);
}

/* gRPC TraceService/Export */
static void grpc_traces(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    struct lb_request req = { .transport = "grpc", .peer = call->peer, .wire_bytes = call->wire_bytes };
    struct otlp_trace_result res;
    run_traces(ud, &req, call->compressed ? "grpc, gzip" : "grpc", call->message, call->length, clock_mono_ns(),
               &res);
    grpc_answer(reply, res.status, res.message,
                res.status == OTLP_OK ? otlp_encode_traces_response(&res, &reply->body) : 0);
}

/* POST /v1development/profiles (h2/otlp_http.c answers it from `res`). */
static void http_profiles(void *ud, const struct otlp_http_call *call, struct otlp_result *res)
{
    struct lb_request req = { .transport = "http", .peer = call->peer, .wire_bytes = call->wire_bytes };
    char how[64];
    snprintf(how, sizeof how, "%s, %s", call->protocol, call->format);
    run_profiles(ud, &req, how, call->compressed, call->message, call->length, call->started_ns, res);
}

/* POST /v1/traces */
static void http_traces(void *ud, const struct otlp_http_call *call, struct otlp_trace_result *res)
{
    struct lb_request req = { .transport = "http", .peer = call->peer, .wire_bytes = call->wire_bytes };
    char how[64];
    snprintf(how, sizeof how, "%s, %s%s", call->protocol, call->format, call->compressed ? ", gzip" : "");
    run_traces(ud, &req, how, call->message, call->length, call->started_ns, res);
}

/* An export the HTTP route refused before decoding (415, or JSON that does not transcode). */
static void http_refused(void *ud, const struct otlp_http_refusal *r)
{
    struct app *app = ud;
    metrics_count_refused(&app->metrics, METRICS_HTTP, r->signal, r->kind, r->wire_bytes, r->length, r->started_ns);
}

/* ---------- the ports ---------- */

/* Both ports take the same limits. */
static struct h2_server_config port_config(const struct app *app, const char *address,
                                           enum h2_server_protocol protocol)
{
    return (struct h2_server_config){
        .address = address,
        .protocol = protocol,
        .request_timeout_ms = app->cfg.request_timeout_ms,
        .max_message_size = app->cfg.max_message_size,
        .max_inflight_bytes = app->cfg.max_inflight_bytes,
        .max_connections = app->cfg.max_connections,
        .max_connections_per_ip = app->cfg.max_connections_per_ip,
        .max_concurrent_streams = app->cfg.max_concurrent_streams,
        .idle_timeout_ms = app->cfg.idle_timeout_ms,
        .commit = app->commit,
        .tls = app->tls,
        .auth = app->auth,
    };
}

/* Says what a listen failure means; for an address the server could not read, the forms it
 * takes. */
static void log_listen_failure(const char *address, const char *err)
{
    if (strstr(err, "expected"))
        log_error("cannot listen on %s: %s (the forms: 4317, :4317, 127.0.0.1, localhost:4317, "
                  "127.0.0.1:4317, [::1]:4317, [::]:4317)", address, err);
    else
        log_error("cannot listen on %s: %s", address, err);
}

/* The gRPC port: the profiles and traces Export methods. NULL with a logged reason. */
static struct h2_server *start_grpc(struct app *app)
{
    struct h2_server_config hc = port_config(app, app->cfg.grpc_address, H2_SERVER_GRPC);
    char err[256];
    static const char *const services[] = { PROFILES_SERVICE, TRACES_SERVICE };
    app->grpc_health = (struct grpc_health_service){
        .unhealthy = app_unhealthy, .ud = app, .services = services, .n_services = 2,
    };
    struct h2_server *s = h2_server_new(app->loop, &hc);
    if (!s || h2_server_add_method(s, PROFILES_EXPORT_PATH, grpc_profiles, app) != 0 ||
        h2_server_add_method(s, TRACES_EXPORT_PATH, grpc_traces, app) != 0 ||
        grpc_health_register(s, &app->grpc_health) != 0 ||
        h2_server_make_public(s, GRPC_HEALTH_CHECK_PATH) != 0) {
        log_error("cannot create the gRPC server");
        h2_server_free(s);
        return NULL;
    }
    if (!security_may_listen(app, "OTLP/gRPC", app->cfg.grpc_address)) {
        h2_server_free(s);
        return NULL;
    }
    if (h2_server_listen(s, err, sizeof err) != 0) {
        log_listen_failure(app->cfg.grpc_address, err);
        h2_server_free(s);
        return NULL;
    }
    log_info("lazybackend %s: OTLP/gRPC on %s, sinks:%s%s, max message %zu bytes; %s", LAZYBACKEND_VERSION,
             h2_server_address(s), app->cfg.n_sinks ? " " : "", app->cfg.sinks[0],
             app->cfg.max_message_size, security_summary(app));
    return s;
}

/* The HTTP port. NULL with a logged reason on failure: a taken default port only warns (the
 * gRPC receiver must not stop because a Collector holds 4318); an address the user asked for
 * must work (serve_command() then stops). */
/* The web UI on the HTTP port, over the sqlite sink's database, else over the clickhouse
 * sink's tables (none without either: the API then says how to get one). */
static int start_ui(struct app *app, struct h2_server *s)
{
    if (app->cfg.ui == UI_OFF)
        return 0;
    if (app->cfg.ui == UI_AUTO && h2_address_loopback(app->cfg.http_address) != 1) {
        log_info("web UI off: the HTTP port %s is not loopback (--ui on serves it there too)",
                 app->cfg.http_address);
        return 0;
    }
    const char *db = NULL;
    bool clickhouse = false;
    for (size_t i = 0; i < app->cfg.n_sinks; i++) {
        if (strcmp(app->cfg.sinks[i], "sqlite") == 0)
            db = app->cfg.sqlite_path ? app->cfg.sqlite_path : SQLITE_SINK_DEFAULT_PATH;
        clickhouse = clickhouse || strcmp(app->cfg.sinks[i], "clickhouse") == 0;
    }
    if (!db && clickhouse) {   /* asked on the loop, never blocking it (ui/async.c) */
        const struct clickhouse_sink_options *o = &app->cfg.clickhouse;
        app->ui_ch = (struct ui_clickhouse){ .url = o->url, .database = o->database, .user = o->user,
                                             .password = o->password, .timeout_s = app->cfg.ui_timeout_s,
                                             .on_loop = true };
        app->ui = ui_new_clickhouse(app->loop, &app->ui_ch);
    } else {
        app->ui = ui_new(app->loop, db);
    }
    if (!app->ui || live_open(app) != 0)
        return -1;
    return ui_register(app->ui, s);
}

static struct h2_server *start_http(struct app *app)
{
    struct h2_server_config hc = port_config(app, app->cfg.http_address, H2_SERVER_HTTP);
    app->http_service = (struct otlp_http_service){
        .profiles = http_profiles, .traces = http_traces, .unhealthy = app_unhealthy,
        .refused = http_refused, .metrics = metrics_page, .ud = app,
        .max_message_size = app->cfg.max_message_size,
    };
    char err[256];
    struct h2_server *s = h2_server_new(app->loop, &hc);
    if (!s || otlp_http_register(s, &app->http_service) != 0 ||
        h2_server_make_public(s, HEALTH_HTTP_PATH) != 0 || start_ui(app, s) != 0) {
        log_error("cannot create the HTTP server");
        h2_server_free(s);
        return NULL;
    }
    if (!security_may_listen(app, "OTLP/HTTP", app->cfg.http_address)) {
        h2_server_free(s);
        return NULL;
    }
    if (h2_server_listen(s, err, sizeof err) != 0) {
        if (app->cfg.http_address_set)
            log_listen_failure(app->cfg.http_address, err);
        else
            log_warn("OTLP/HTTP disabled: cannot listen on the default %s: %s (set --http-address)",
                     app->cfg.http_address, err);
        h2_server_free(s);
        return NULL;
    }
    log_info("OTLP/HTTP (%s) on %s: POST %s, POST %s, GET %s, GET %s; %s",
             app->tls ? "HTTP/1.1 and HTTP/2 over TLS" : "HTTP/1.1 and h2c", h2_server_address(s),
             PROFILES_HTTP_PATH, TRACES_HTTP_PATH, HEALTH_HTTP_PATH, METRICS_HTTP_PATH, security_summary(app));
    return s;
}

/* ---------- signals and shutdown ---------- */

/* Shutdown: the loop ends once no request is in flight, or at the deadline. */
static void check_drained(struct loop *loop, void *ud)
{
    struct app *app = ud;
    if (h2_server_drained(app->server) && (!app->http_server || h2_server_drained(app->http_server))) {
        loop_stop(loop);
        return;
    }
    if (loop_now_ms(loop) >= app->shutdown_deadline_ms) {
        log_warn("shutdown timeout: closing with requests still in flight");
        loop_stop(loop);
        return;
    }
    loop_add_timer(loop, 20, check_drained, app);
}

/* SIGHUP: logrotate moved the --output file; write to a new one from the next request on. */
static void reopen_output(struct app *app)
{
    if (!app->stdout_sink || !app->cfg.stdout_opt.path) {
        log_info("SIGHUP: no output file to reopen");
        return;
    }
    if (stdout_sink_reopen(app->stdout_sink) != 0)
        log_error("SIGHUP: cannot reopen %s: %s (still writing to the old file)",
                  app->cfg.stdout_opt.path, strerror(errno));
    else
        log_info("SIGHUP: reopened %s", app->cfg.stdout_opt.path);
}

/* SIGINT/SIGTERM: stop accepting and let the requests in flight finish. A second one stops
 * the loop now: true then. */
static bool begin_shutdown(struct app *app, struct loop *loop, const char *why)
{
    if (app->shutting_down) {
        log_warn("second signal: stopping now");
        loop_stop(loop);
        return true;
    }
    log_info("%s: stop accepting, finish in-flight requests, flush sinks", why);
    app->shutting_down = true;
    service_stopping(app);
    app->shutdown_deadline_ms = loop_now_ms(loop) + app->cfg.shutdown_timeout_ms;
    h2_server_shutdown(app->server);
    if (app->http_server)
        h2_server_shutdown(app->http_server);
    check_drained(loop, app);
    return false;
}

/* Signals arrive through a signalfd on the loop, so handling them is ordinary code. */
static void on_signal(struct loop *loop, int fd, int events, void *ud)
{
    (void)events;
    struct app *app = ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            reopen_output(app);
            security_reload(app);
        }
        else if ((si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) && begin_shutdown(app, loop, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"))
            return;
    }
}

/* SIGINT, SIGTERM and SIGHUP through app->sigfd; SIGPIPE ignored (a closed stdout pipe is an
 * error to report, not a death). 0 or -1 with errno. */
static int setup_signals(struct app *app)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (loop_add_fd(app->loop, fd, LOOP_READ, on_signal, app) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    app->sigfd = fd;
    return 0;
}

/* ---------- serve ---------- */

/* What both ports deliver to: the loop, the decoders, the sinks, the signals. */
static int open_pipeline(struct app *app)
{
    app->loop = loop_new();
    app->decoder = otlp_decoder_new(&app->cfg.limits, app->cfg.proto_version);
    app->trace_decoder = otlp_trace_decoder_new();
    app->commit = app->loop ? commit_new(app->loop) : NULL;
    if (!app->loop || !app->decoder || !app->trace_decoder || !app->commit || open_sinks(app) != 0)
        return -1;
    if (setup_signals(app) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

uint64_t signal_replies(const struct app *app, enum otlp_signal sig, uint64_t by[H2_OUTCOMES], uint64_t ports[2])
{
    const struct h2_server *servers[2] = { app->server, app->http_server };
    const char *paths[2] = { sig == OTLP_SIGNAL_TRACES ? TRACES_EXPORT_PATH : PROFILES_EXPORT_PATH,
                             sig == OTLP_SIGNAL_TRACES ? TRACES_HTTP_PATH : PROFILES_HTTP_PATH };
    uint64_t all = 0;
    for (int i = 0; i < 2; i++) {
        uint64_t r[H2_OUTCOMES] = { 0 };
        if (servers[i])
            h2_server_path_replies(servers[i], paths[i], r);
        ports[i] = 0;
        for (int o = 0; o < H2_OUTCOMES; o++) {
            by[o] += r[o];
            ports[i] += r[o];
        }
        all += ports[i];
    }
    return all;
}

/* "40 replies (30 gRPC, 10 HTTP): 28 ok (2 partial), ..." for one signal. */
static void format_replies(char *out, size_t outlen, const struct app *app, enum otlp_signal sig)
{
    uint64_t by[H2_OUTCOMES] = { 0 }, ports[2];
    uint64_t all = signal_replies(app, sig, by, ports);
    const struct metrics *m = &app->metrics;
    uint64_t partial = m->requests[METRICS_GRPC][sig][METRICS_PARTIAL] + m->requests[METRICS_HTTP][sig][METRICS_PARTIAL];
    snprintf(out, outlen, "%llu replies (%llu gRPC, %llu HTTP): %llu ok (%llu partial), %llu invalid, "
             "%llu too large or busy, %llu timed out, %llu unavailable, %llu failed",
             (unsigned long long)all, (unsigned long long)ports[0], (unsigned long long)ports[1],
             (unsigned long long)by[H2_OUT_OK], (unsigned long long)partial, (unsigned long long)by[H2_OUT_INVALID],
             (unsigned long long)by[H2_OUT_EXHAUSTED], (unsigned long long)by[H2_OUT_TIMED_OUT],
             (unsigned long long)by[H2_OUT_UNAVAILABLE], (unsigned long long)by[H2_OUT_FAILED]);
}

/* The last log lines: what the process did, for whoever reads the log of a run. Every reply
 * either port sent is counted once: under its signal, or among the others. */
static void log_stopped(const struct app *app)
{
    char profiles[512], traces[512];
    format_replies(profiles, sizeof profiles, app, OTLP_SIGNAL_PROFILES);
    format_replies(traces, sizeof traces, app, OTLP_SIGNAL_TRACES);
    uint64_t by[H2_OUTCOMES] = { 0 }, ports[2], all = 0, abandoned = 0, connections = 0;
    all += signal_replies(app, OTLP_SIGNAL_PROFILES, by, ports);
    all += signal_replies(app, OTLP_SIGNAL_TRACES, by, ports);
    uint64_t replies = 0;
    const struct h2_server *servers[2] = { app->server, app->http_server };
    for (int i = 0; i < 2; i++) {
        if (!servers[i])
            continue;
        const struct h2_stats *hs = h2_server_stats(servers[i]);
        for (int o = 0; o < H2_OUTCOMES; o++)
            replies += hs->replies[o];
        abandoned += hs->calls_abandoned;
        connections += hs->connections_accepted;
    }
    assert(replies >= all);
    log_info("stopped: profiles: %s; %llu samples delivered, %llu rejected", profiles,
             (unsigned long long)app->stats.samples, (unsigned long long)app->stats.rejected_samples);
    log_info("stopped: traces: %s; %llu spans delivered, %llu not kept (no sink takes spans), %llu rejected", traces,
             (unsigned long long)app->trace_stats.spans, (unsigned long long)app->trace_stats.ignored_spans,
             (unsigned long long)app->trace_stats.rejected_spans);
    log_info("stopped: %llu other replies (health, metrics, unknown paths and methods, unusable requests), "
             "%llu requests abandoned by their clients; %llu connections",
             (unsigned long long)(replies - all), (unsigned long long)abandoned, (unsigned long long)connections);
}

/* app->stop: the same drained shutdown as SIGTERM, for a reason found while serving. */
static void stop_serving(struct app *app, const char *why)
{
    if (!app->shutting_down)
        begin_shutdown(app, app->loop, why);
}

/* `lazybackend serve`: both ports until SIGINT/SIGTERM, then a drained shutdown in which the
 * sinks flush within --shutdown-timeout. A service manager hears READY=1 once both ports
 * listen and the sinks are open (service.c). */
int serve_command(struct app *app)
{
    app->stop = stop_serving;
    metrics_init(&app->metrics);
    if (security_open(app) != 0 || open_pipeline(app) != 0 || !(app->server = start_grpc(app)))
        return startup_failed(app);
    if (app->cfg.http_address && !(app->http_server = start_http(app)) && app->cfg.http_address_set)
        return startup_failed(app);
    service_ready(app);
    int rc = loop_run(app->loop) == 0 ? 0 : 1;
    sink_set_close(&app->sinks, (int)app->cfg.shutdown_timeout_ms);
    app->sinks.n = 0;
    if (app_lost_rows(app)) {
        log_error("exiting with status 1: %llu acknowledged sample rows could neither be delivered nor kept",
                  (unsigned long long)app_lost_rows(app));
        rc = 1;
    }
    log_stopped(app);
    service_stopped(app);
    app_teardown(app, 0);
    return rc;
}
