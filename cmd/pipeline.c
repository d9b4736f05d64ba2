/*
 * pipeline.c - what a request goes through, whichever command took it: the sinks (and the
 * filter stage in front of them), the decoders' runs for network requests with their counts
 * and log lines, and giving everything back at the end.
 *
 * Why shared: `decode` drives the server's decoder into the server's sinks, so that a
 * captured payload shows exactly what serving it would have shown; both commands open the
 * sinks, count results and tear down here, in one way.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/security.h"
#include "h2/server.h"
#include "lib/commit.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "otlp/check.h"
#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/traces.h"
#include "sinks/filter.h"
#include "sinks/sink.h"
#include "sinks/stdout/stdout.h"
#include "sinks/sqlite/sqlite.h"
#include "ui/ui.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/forward/forward.h"

/* ---------- sinks, and giving everything back ---------- */

/* Everything serve_command() and decode_command() set up, given back in reverse order,
 * once; safe on a partly built app, so that every startup failure ends here and the
 * sanitizers see a clean exit. The sinks get `deadline_ms` to flush. */
void app_teardown(struct app *app, int deadline_ms)
{
    sink_set_close(&app->sinks, deadline_ms);
    app->sinks.n = 0;
    h2_server_free(app->http_server);
    h2_server_free(app->server);
    live_close(app);
    ui_free(app->ui);   /* after the server: its open streams tell the UI they are gone */
    app->ui = NULL;
    security_close(app);   /* after the servers: their connections use the TLS context */
    if (app->sigfd >= 0) {
        loop_del_fd(app->loop, app->sigfd);
        close(app->sigfd);
    }
    otlp_decoder_free(app->decoder);
    otlp_checker_free(app->checker);
    otlp_trace_decoder_free(app->trace_decoder);
    commit_free(app->commit);
    app->commit = NULL;
    loop_free(app->loop);
}

uint64_t app_lost_rows(const struct app *app)
{
    uint64_t lost = 0;
    for (size_t i = 0; i < app->cfg.n_sinks && i < MAX_SINKS; i++)
        lost += app->sink_storage[i].counts.lost;
    return lost;
}

/* A startup step failed (and said why): the exit status, after giving everything back. */
int startup_failed(struct app *app)
{
    app_teardown(app, 0);
    return 1;
}

/* With a filter configured, the decoder drives {filter} and the filter the real sinks;
 * without one there is no stage at all. */
static int insert_filter(struct app *app)
{
    if (!filter_config_active(&app->cfg.filter))
        return 0;
    app->inner_sinks = app->sinks;
    if (filter_open(&app->filter_sink, &app->cfg.filter, &app->inner_sinks) != 0) {
        log_error("cannot set up the filters");
        sink_set_close(&app->inner_sinks, 0);
        app->sinks.n = 0;   /* closed: the teardown must not close them again */
        return -1;
    }
    app->sinks = (struct sink_set){ &app->filter_sink, 1 };
    return 0;
}

/* One configured sink into `s`; a sink that cannot be opened (e.g. --output in a missing
 * directory) is logged, and ends the process. */
static int open_sink(struct app *app, const char *name, struct sink *s)
{
    char err[512];
    if (strcmp(name, "stdout") == 0) {
        struct stdout_sink_options o = app->cfg.stdout_opt;
        o.format = app->cfg.format;
        o.fd = STDOUT_FILENO;
        o.survive_reader_gone = app->cfg.n_sinks > 1;   /* the others go on without it */
        if (stdout_sink_open(s, &o) != 0) {
            log_error("cannot open the stdout sink%s%s: %s", o.path ? " on " : "",
                      o.path ? o.path : "", strerror(errno));
            return -1;
        }
        app->stdout_sink = s;
    } else if (strcmp(name, "sqlite") == 0) {
        struct sqlite_sink_options o = { .path = app->cfg.sqlite_path, .sync = app->cfg.sqlite_sync };
        struct sink_env env = { .loop = app->loop, .commit = app->commit };
        if (sqlite_sink_open(s, &o, &env, err, sizeof err) != 0) {
            log_error("cannot open the sqlite sink: %s", err);
            return -1;
        }
    } else if (strcmp(name, "clickhouse") == 0) {
        struct sink_env env = { .loop = app->loop, .commit = app->commit };
        if (clickhouse_sink_open(s, &app->cfg.clickhouse, &env, err, sizeof err) != 0) {
            log_error("cannot open the clickhouse sink: %s", err);
            return -1;
        }
    } else if (strcmp(name, "forward") == 0) {
        struct sink_env env = { .loop = app->loop, .commit = app->commit };
        if (forward_sink_open(s, &app->cfg.forward, &env, err, sizeof err) != 0) {
            log_error("cannot open the forward sink: %s", err);
            return -1;
        }
    }
    return 0;
}

/* The configured sinks (stdout when none), then the filter stage in front of them. */
int open_sinks(struct app *app)
{
    if (app->cfg.n_sinks == 0)
        app->cfg.sinks[app->cfg.n_sinks++] = "stdout";
    app->sinks.v = app->sink_storage;
    app->sinks.n = 0;
    for (size_t i = 0; i < app->cfg.n_sinks; i++) {
        if (open_sink(app, app->cfg.sinks[i], &app->sink_storage[app->sinks.n]) != 0)
            return -1;
        app->sinks.n++;
    }
    return insert_filter(app);
}

/* ---------- profiles and traces, whatever carried them ---------- */

void note_stdout_reader(struct app *app)
{
    if (app->stdout_gone || !app->stdout_sink || !stdout_sink_reader_gone(app->stdout_sink))
        return;
    app->stdout_gone = true;
    if (app->cfg.n_sinks > 1) {
        log_warn("stdout: its reader went away (broken pipe): the stdout sink is off, the other "
                 "sinks go on; /healthz answers 503");
        return;
    }
    log_info("stdout: its reader went away (broken pipe): stopping, as a filter does");
    if (app->stop)
        app->stop(app, "stdout closed");
}

const char *app_unhealthy(void *ud)
{
    struct app *app = ud;
    if (app->shutting_down)
        return "shutting down";
    if (app->stdout_gone)
        return "stdout sink off: its reader went away";
    char why[256];
    if (sink_set_ready(&app->sinks, why, sizeof why) != 0) {
        snprintf(app->unhealthy_why, sizeof app->unhealthy_why, "a sink cannot take requests: %s", why);
        return app->unhealthy_why;
    }
    return NULL;
}

/* When a request was received, for the sinks (the wall clock: sinks show and store it). */
uint64_t now_unix_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The samples logged when the process stops (the replies are counted by the ports, whoever
 * answered: h2_server_path_replies). */
void count_result(struct app *app, const struct otlp_result *res)
{
    if (res->status != OTLP_OK)
        return;   /* only what a sink committed was delivered */
    app->stats.samples += res->samples;
    app->stats.rejected_samples += res->rejected_samples;
}

/* Logs the proto layout a sender uses: once per connection, and when it changes. */
static void note_layout(struct app *app, const char *peer)
{
    const struct otlp_detection *det = otlp_decoder_detection(app->decoder);
    struct layout_peer *slot = NULL;
    for (size_t i = 0; i < LAYOUT_PEERS && !slot; i++)
        if (app->layout_peers[i].layout && strncmp(app->layout_peers[i].peer, peer, sizeof slot->peer - 1) == 0)
            slot = &app->layout_peers[i];
    if (!det->layout || (slot && slot->layout == det->layout))
        return;
    char summary[512];
    otlp_detection_summary(det, summary, sizeof summary);
    if (slot) {
        log_info("sender %s: proto layout changed from %s to %s", peer, slot->layout->name, summary);
    } else {
        log_info("sender %s: proto layout %s", peer, summary);
        slot = &app->layout_peers[app->layout_peers_next++ % LAYOUT_PEERS];
        snprintf(slot->peer, sizeof slot->peer, "%s", peer);
    }
    slot->layout = det->layout;
}

/* Samples the filter stage passed to the sinks so far (0 without one): a request's delivered
 * samples are the difference across it. */
static uint64_t filter_passed(const struct app *app)
{
    if (!app->filter_sink.type)
        return 0;
    struct filter_stats fs;
    filter_stats(&app->filter_sink, &fs);
    return fs.samples_passed;
}

/* --check log|strict: the request's conformance verdict (otlp/check.h), counted and logged.
 * True when strict mode refuses it: `res` is then its answer, a partial success rejecting
 * every profile with the findings as the message, and nothing reaches the sinks. A request
 * the checker cannot read goes on to the decoder, which refuses it in its own words. */
static bool check_request(struct app *app, struct lb_request *req, const uint8_t *msg, size_t len,
                          struct otlp_result *res)
{
    if (!app->checker && !(app->checker = otlp_checker_new())) {
        log_error("check: out of memory: request from %s not checked", req->peer);
        return false;
    }
    struct check_options opt = { app->cfg.check_groups, 16, app->cfg.proto_version };
    const struct check_report *r = otlp_check(app->checker, msg, len, &opt);
    bool reject = app->cfg.check == SERVE_CHECK_STRICT && r->verdict == CHECK_FINDINGS;
    metrics_count_check(&app->metrics, r, reject);
    char summary[900];
    check_report_summary(r, summary, sizeof summary);
    if (r->verdict == CHECK_CLEAN)
        log_info("check: export from %s: %s (layout %s)", req->peer, summary, r->layout);
    else
        log_warn("check: export from %s: %s%s", req->peer, reject ? "rejected: " : "", summary);
    if (!reject)
        return false;
    memset(res, 0, sizeof *res);
    res->status = OTLP_OK;
    res->rejected_whole = true;
    res->rejected_profiles = r->profiles;
    snprintf(res->message, sizeof res->message, "rejected by conformance checks: %s", summary);
    req->message_bytes = len;
    req->layout = r->layout;
    return true;
}

/* Any profiles request from the network: decoded into the sinks, counted, and logged with
 * `how` it came ("HTTP/1.1, json"; NULL for gRPC, whose log line names no transport). */
/* The request, for the web UI's live tail. */
static void publish(struct app *app, const struct lb_request *req, const struct otlp_result *res)
{
    static const char *const outcomes[] = {
        [OTLP_OK] = "ok", [OTLP_INVALID] = "invalid", [OTLP_UNAVAILABLE] = "unavailable",
        [OTLP_SINK_FAILED] = "failed", [OTLP_NOMEM] = "failed",
    };
    if (!app->ui)
        return;
    bool partial = res->status == OTLP_OK && (res->rejected_profiles || res->rejected_samples);
    struct ui_event e = {
        .sequence = req->sequence, .received_unix_nano = req->received_unix_nano,
        .transport = req->transport, .peer = req->peer, .layout = req->layout ? req->layout : "",
        .resources = res->resources, .profiles = res->profiles, .samples = res->samples,
        .rejected_samples = res->rejected_samples, .wire_bytes = req->wire_bytes,
        .outcome = partial ? "partial" : (unsigned)res->status < 5 ? outcomes[res->status] : "failed",
        .message = res->status != OTLP_OK || partial ? res->message : "",
    };
    live_publish(app, &e);
}

void run_profiles(struct app *app, struct lb_request *req, const char *how, bool compressed,
                  const uint8_t *msg, size_t len, uint64_t started_ns, struct otlp_result *res)
{
    req->received_unix_nano = now_unix_nano();
    req->sequence = ++app->sequence;
    if (app->cfg.check != SERVE_CHECK_OFF && check_request(app, req, msg, len, res)) {
        count_result(app, res);
        metrics_count_profiles(&app->metrics, req, res, otlp_layout_find(req->layout), 0, started_ns);
        return;
    }
    uint64_t passed_before = filter_passed(app);
    otlp_export_profiles(app->decoder, msg, len, req, sink_set_consumer(&app->sinks), res);
    count_result(app, res);
    metrics_count_profiles(&app->metrics, req, res, otlp_decoder_detection(app->decoder)->layout,
                           app->filter_sink.type ? filter_passed(app) - passed_before : res->samples,
                           started_ns);
    note_stdout_reader(app);
    publish(app, req, res);
    if (res->status != OTLP_OK)
        return;   /* the transport logs errors with their status */
    note_layout(app, req->peer);
    char unknown[64] = "";
    if (res->unknown_fields)
        snprintf(unknown, sizeof unknown, ", %llu unknown field(s) kept", (unsigned long long)res->unknown_fields);
    log_info("export from %s%s%s%s: %llu resources, %llu profiles, %llu samples, %llu frames (%zu bytes%s, layout %s%s)%s%s",
             req->peer, how ? " (" : "", how ? how : "", how ? ")" : "",
             (unsigned long long)res->resources, (unsigned long long)res->profiles,
             (unsigned long long)res->samples, (unsigned long long)res->frames, len,
             compressed ? ", gzip" : "", req->layout, unknown,
             res->rejected_profiles ? "; " : "", res->rejected_profiles ? res->message : "");
}

/* Traces bypass the filter stage (its filters are about profiles and samples): spans go to
 * the configured sinks, of which those with a span callback take them (sinks/sink.h). */
static struct sink_set *trace_sinks(struct app *app)
{
    return app->filter_sink.type ? &app->inner_sinks : &app->sinks;
}

/* Any traces request, whatever carried it: decoded into the span sinks, counted, logged. */
void run_traces(struct app *app, struct lb_request *req, const char *how,
                const uint8_t *msg, size_t len, uint64_t started_ns, struct otlp_trace_result *res)
{
    req->received_unix_nano = now_unix_nano();
    req->sequence = ++app->sequence;
    struct sink_set *sinks = trace_sinks(app);
    otlp_export_traces(app->trace_decoder, msg, len, req, sink_set_consumer(sinks), res);
    note_stdout_reader(app);
    /* With no sink that takes spans (only sqlite or clickhouse), a valid request is accepted
     * and its spans kept nowhere, by design: said so, never counted as delivered. */
    bool kept = sink_set_takes_spans(sinks);
    metrics_count_traces(&app->metrics, req, res, kept, started_ns);
    app->trace_stats.rejected_spans += res->rejected_spans;
    if (res->status != OTLP_OK)
        return;
    if (kept)
        app->trace_stats.spans += res->spans;
    else
        app->trace_stats.ignored_spans += res->spans;
    char unknown[64] = "";
    if (res->unknown_fields)
        snprintf(unknown, sizeof unknown, ", %llu unknown field(s) kept", (unsigned long long)res->unknown_fields);
    log_info("trace export from %s (%s): %llu resources, %llu spans%s, %llu events, %llu links (%zu bytes%s)%s%s",
             req->peer, how, (unsigned long long)res->resources, (unsigned long long)res->spans,
             kept ? "" : " (not kept: no configured sink takes spans; the stdout sink does)",
             (unsigned long long)res->events, (unsigned long long)res->links, len, unknown,
             res->rejected_spans ? "; " : "", res->rejected_spans ? res->message : "");
}
