/*
 * main.c - lazybackend: command line, wiring, lifecycle.
 *
 *   lazybackend [serve] [options]        receive OTLP profiles and traces over gRPC and
 *                                        OTLP/HTTP, write them to sinks
 *   lazybackend decode [options] FILE... the same decoder and sinks on captured payloads
 *   lazybackend top|folded|flamegraph    queries of a SQLite store (sinks/sqlite/query.c)
 *
 * The process is one thread around one event loop (lib/loop.c). Data flows one way:
 * h2/ (transport) -> otlp/ (decode, validate, resolve) -> sinks/ (output). This file owns the
 * only long-lived state (struct app: configuration, the loop, the servers, the decoders and
 * the sinks) and connects the layers; none of them knows about the others' internals.
 *
 * Every option is parsed (and refused, with exit status 2) before anything is set up; after
 * that, every startup failure goes through app_teardown(), which gives back whatever exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h2/otlp_http.h"
#include "h2/server.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/layout.h"
#include "otlp/traces.h"
#include "sinks/filter.h"
#include "sinks/sink.h"
#include "sinks/stdout/stdout.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/clickhouse/clickhouse.h"

#ifndef LAZYBACKEND_VERSION
#define LAZYBACKEND_VERSION "0.1.0"
#endif

#define PROFILES_EXPORT_PATH "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
#define MAX_SINKS 8

struct config {
    const char *grpc_address;
    const char *http_address;                  /* NULL: no HTTP port (--http-address none) */
    bool http_address_set;                     /* given: failing to listen there is fatal */
    unsigned request_timeout_ms;
    size_t max_message_size;
    size_t max_inflight_bytes;
    unsigned max_connections, max_concurrent_streams;
    unsigned idle_timeout_ms, shutdown_timeout_ms;
    const char *sinks[MAX_SINKS];
    size_t n_sinks;
    enum stdout_format format;
    struct stdout_sink_options stdout_opt;     /* --output, detail switches, --folded-root */
    bool stdout_detail_set;                    /* a detail switch was given */
    struct filter_config filter;
    const char *sqlite_path;
    enum sqlite_sync sqlite_sync;
    struct clickhouse_sink_options clickhouse;
    struct otlp_limits limits;
    const struct otlp_layout *proto_version;   /* NULL: detect per request */
    bool detect_only;                          /* decode --detect */
};

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
    struct h2_server *server;
    struct otlp_decoder *decoder;
    struct sink sink_storage[MAX_SINKS];
    struct sink_set sinks;          /* what the decoder drives: the sinks, or {filter} */
    struct sink filter_sink;        /* when filtering: forwards to inner_sinks */
    struct sink_set inner_sinks;
    struct sink *stdout_sink;       /* reopened on SIGHUP */
    uint64_t sequence;
    uint64_t shutdown_deadline_ms;
    bool shutting_down;
    struct { uint64_t requests, ok, invalid, refused, failed, samples, rejected_samples; } stats;
    struct h2_server *http_server;  /* OTLP/HTTP (HTTP/1.1 and h2c), or NULL */
    int sigfd;                      /* signalfd on the loop, or -1 */
    struct otlp_http_service http_service;
    struct otlp_trace_decoder *trace_decoder;
    struct { uint64_t requests, ok, spans, rejected_spans; } trace_stats;
    struct layout_peer layout_peers[LAYOUT_PEERS];
    unsigned layout_peers_next;
};

/* ---------- options ---------- */

/* --help. Every option parsed below is listed here (test/e2e/cli_options.py checks that each
 * one listed is taken). */
static void usage(FILE *out)
{
    fprintf(out,
"Usage: lazybackend [serve] [OPTIONS]\n"
"       lazybackend decode [--format text|json|folded] [OPTIONS] FILE...   (- for stdin)\n"
"       lazybackend top|folded|flamegraph [--db FILE] [QUERY OPTIONS]  (read a SQLite store;\n"
"                                            see `lazybackend top --help`)\n"
"\n"
"Receives OTLP profiles (the OpenTelemetry eBPF profiler's, or any Collector's) and shows\n"
"every sample as a resolved stack, exactly as it was sent.\n"
"\n"
"Options (--name value or --name=value):\n"
"  --grpc-address ADDR          gRPC listen address (default 127.0.0.1:4317; [::1]:4317 for IPv6)\n"
"  --http-address ADDR          OTLP/HTTP listen address: HTTP/1.1 and h2c, profiles, traces and\n"
"                               /healthz (default 127.0.0.1:4318; none = no HTTP port)\n"
"  --sink NAME                  where samples go: stdout (default), sqlite, clickhouse. Repeatable.\n"
"  --format text|json|folded    stdout sink format (default text; json: one object per sample\n"
"                               per line, see the README)\n"
"  --output FILE                stdout sink: append to FILE instead of stdout (reopened on\n"
"                               SIGHUP, for logrotate)\n"
"  --no-resource-attributes, --no-profile-attributes, --no-sample-attributes, --no-frames,\n"
"  --no-file-line               text/json: leave those out (--no-file-line: frames as\n"
"                               \"Instrumentation: <type>, Function: <name>\")\n"
"  --folded-root none|executable|container|thread\n"
"                               folded: first frame of every stack (default none; missing\n"
"                               value: [unknown])\n"
"  --sqlite-path FILE           sqlite sink database (default lazybackend.db; created, upgraded)\n"
"  --sqlite-sync full|normal    sqlite sink: fsync every commit (full, default: survives power\n"
"                               loss) or not (normal: survives kill -9, faster)\n"
"  --clickhouse-url URL         clickhouse sink: HTTP interface (default http://127.0.0.1:8123)\n"
"  --clickhouse-database NAME   database, created with its tables if absent (default otel)\n"
"  --clickhouse-user USER       ClickHouse user (HTTP basic auth; default: the server's default)\n"
"  --clickhouse-password PASS   its password (or the environment variable CLICKHOUSE_PASSWORD)\n"
"  --clickhouse-batch-rows N    send a batch at this many samples (default 20000)\n"
"  --clickhouse-flush-interval MS  ... or this long after its first sample (default 1000)\n"
"  --clickhouse-max-queue-bytes SIZE  memory for unsent batches (default 64MiB); beyond it\n"
"                               batches go to the spool\n"
"  --clickhouse-spool-dir DIR   on-disk spool for batches ClickHouse cannot take yet, and for\n"
"                               what is unsent at shutdown (default: none)\n"
"  --clickhouse-spool-max-bytes SIZE  spool cap (default 1GiB); when full, requests are refused\n"
"                               with UNAVAILABLE\n"
"  --max-message-size SIZE      largest request, compressed and after decompression (default 64MiB)\n"
"  --max-inflight-bytes SIZE    all partially received requests together (default 256MiB)\n"
"  --max-connections N          concurrent connections (default 1024)\n"
"  --max-concurrent-streams N   per connection (default 100)\n"
"  --idle-timeout SECONDS       close idle connections after this (default 300, 0 = never)\n"
"  --request-timeout SECONDS    a request must arrive whole within this, or it is cut off\n"
"                               (slow clients; default 60)\n"
"  --shutdown-timeout SECONDS   on SIGINT/SIGTERM, time allowed for in-flight requests and\n"
"                               sink flushing (default 10)\n"
"  --max-stack-depth N          samples with deeper stacks are rejected (default 16384)\n"
"  --proto-version VERSION      proto layout of the requests: auto (default: detected per\n"
"                               request from how fields are encoded), v1.11 (= v1.10), v1.9,\n"
"                               v1.8, v1.7. A pinned layout is still checked against the wire.\n"
"  --detect                     decode: print each request's detected layout and the evidence\n"
"                               instead of its samples; exit 1 if a request fits no layout\n"
"  --log-level LEVEL            debug, info, warn, error, off (default info; logs go to stderr)\n"
"  --help, --version\n"
"\n"
"Filters, applied before any sink (all must pass; LIST is comma-separated; a key missing on\n"
"the resource is looked up on the sample):\n"
"  --sample-types LIST          profiles whose sample type is listed (samples,off_cpu,events)\n"
"  --frame-types LIST           keep only these frames (kernel,native,go,jvm,...; unknown =\n"
"                               no type); a sample left without frames is dropped\n"
"  --container-id ID            resources whose container.id is ID\n"
"  --require-container-id       resources with a non-empty container.id\n"
"  --resource KEY=VALUE         resource attribute equals VALUE (e.g. service.name=api,\n"
"                               process.executable.name=java). Repeatable: all must match\n"
"  --min-frames N               samples with at least N frames\n"
"\n"
"SIZE takes a suffix: K, M, G (or KiB, MiB, GiB), powers of 1024.\n");
}

/* SIZE: a count of bytes with an optional K/M/G (KiB, MiB, GiB) suffix, powers of 1024. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned long long mult = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mult = 1ull << 10; break;
        case 'm': case 'M': mult = 1ull << 20; break;
        case 'g': case 'G': mult = 1ull << 30; break;
        default: return -1;
        }
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
            end += strlen(end);
        if (*end)
            return -1;
    }
    if (v > ULLONG_MAX / mult)
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

/* A plain decimal number up to `max` (strtoul alone would take "-1", "12x" and overflow). */
static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The argument vector being parsed and the option just recognised, so that an option is
 * named once: where it is matched (opt) and no more where its value is read and checked. */
struct args {
    int argc;
    char **argv;
    int i;              /* the current argument */
    const char *name;   /* the option opt() matched last */
};

/* True when the current argument is option `name`, alone or as "--name=value". */
static bool opt(struct args *a, const char *name)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || (arg[n] != 0 && arg[n] != '='))
        return false;
    a->name = name;
    return true;
}

/* True when the current argument is the switch `name` (switches take no "=value"). */
static bool flag(const struct args *a, const char *name)
{
    return strcmp(a->argv[a->i], name) == 0;
}

/* The matched option's value: after its '=', or the next argument. A missing value ends the
 * process (exit 2), as every bad option does: nothing has been set up yet. */
static const char *opt_value(struct args *a)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(a->name);
    if (arg[n] == '=')
        return arg + n + 1;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "lazybackend: %s needs a value\n", a->name);
        exit(2);
    }
    return a->argv[++a->i];
}

/* A value the option cannot take: said with the option's name, and the process ends. */
static void bad_value(const char *name, const char *value)
{
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (see --help)\n", name, value);
    exit(2);
}

/* A value that must not be empty (a path, a directory). */
static const char *opt_nonempty(struct args *a)
{
    const char *v = opt_value(a);
    if (!*v)
        bad_value(a->name, v);
    return v;
}

/* A number in [min, max]. */
static unsigned opt_uint(struct args *a, unsigned min, unsigned max)
{
    const char *v = opt_value(a);
    unsigned u;
    if (parse_uint(v, max, &u) || u < min)
        bad_value(a->name, v);
    return u;
}

/* A SIZE in [min, max]. */
static size_t opt_size(struct args *a, size_t min, size_t max)
{
    const char *v = opt_value(a);
    size_t z;
    if (parse_size(v, &z) || z < min || z > max)
        bad_value(a->name, v);
    return z;
}

/* One of `n` words: its index. */
static size_t opt_choice(struct args *a, const char *const *words, size_t n)
{
    const char *v = opt_value(a);
    for (size_t k = 0; k < n; k++)
        if (strcmp(v, words[k]) == 0)
            return k;
    bad_value(a->name, v);
    return 0;
}

/* A repeatable option's value, kept in a bounded list. */
static void opt_append(struct args *a, const char **list, size_t *n)
{
    const char *v = opt_value(a);
    if (*n == FILTER_MAX_ARGS) {
        fprintf(stderr, "lazybackend: %s given more than %d times\n", a->name, FILTER_MAX_ARGS);
        exit(2);
    }
    list[(*n)++] = v;
}

/* --clickhouse-*: true when the current argument was one of them. */
static bool parse_clickhouse_option(struct args *a, struct clickhouse_sink_options *o)
{
    if (opt(a, "--clickhouse-url"))
        o->url = opt_value(a);
    else if (opt(a, "--clickhouse-database"))
        o->database = opt_value(a);
    else if (opt(a, "--clickhouse-user"))
        o->user = opt_value(a);
    else if (opt(a, "--clickhouse-password"))
        o->password = opt_value(a);
    else if (opt(a, "--clickhouse-batch-rows"))
        o->batch_rows = opt_uint(a, 1, 10000000);
    else if (opt(a, "--clickhouse-flush-interval"))
        o->flush_interval_ms = opt_uint(a, 1, 3600000);
    else if (opt(a, "--clickhouse-max-queue-bytes"))
        o->max_queue_bytes = opt_size(a, 4096, SIZE_MAX);
    else if (opt(a, "--clickhouse-spool-dir"))
        o->spool_dir = opt_nonempty(a);
    else if (opt(a, "--clickhouse-spool-max-bytes"))
        o->spool_max_bytes = opt_size(a, 4096, SIZE_MAX);
    else
        return false;
    return true;
}

/* The stdout sink's detail switches (text and json output leave those parts out). */
static bool parse_detail_switch(const struct args *a, struct config *cfg)
{
    static const char *const names[] = { "--no-resource-attributes", "--no-profile-attributes",
                                         "--no-sample-attributes", "--no-frames", "--no-file-line" };
    bool *switches[] = { &cfg->stdout_opt.no_resource_attributes, &cfg->stdout_opt.no_profile_attributes,
                         &cfg->stdout_opt.no_sample_attributes, &cfg->stdout_opt.no_frames,
                         &cfg->stdout_opt.no_file_line };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (flag(a, names[k])) {
            *switches[k] = cfg->stdout_detail_set = true;
            return true;
        }
    return false;
}

/* The stdout sink's output options and the filters (sinks/filter.h). */
static bool parse_output_option(struct args *a, struct config *cfg)
{
    static const char *const roots[] = { "none", "executable", "container", "thread" };
    static const enum folded_root root_values[] = {
        FOLDED_ROOT_NONE, FOLDED_ROOT_EXECUTABLE, FOLDED_ROOT_CONTAINER, FOLDED_ROOT_THREAD,
    };
    struct filter_config *f = &cfg->filter;
    if (parse_detail_switch(a, cfg))
        return true;
    if (opt(a, "--output"))
        cfg->stdout_opt.path = opt_nonempty(a);
    else if (opt(a, "--folded-root"))
        cfg->stdout_opt.folded_root = root_values[opt_choice(a, roots, 4)];
    else if (opt(a, "--sample-types"))
        opt_append(a, f->sample_types, &f->n_sample_types);
    else if (opt(a, "--frame-types"))
        opt_append(a, f->frame_types, &f->n_frame_types);
    else if (opt(a, "--resource"))
        opt_append(a, f->resource, &f->n_resource);
    else if (opt(a, "--container-id"))
        f->container_id = opt_value(a);
    else if (flag(a, "--require-container-id"))
        f->require_container_id = true;
    else if (opt(a, "--min-frames"))
        f->min_frames = opt_uint(a, 0, 1u << 24);
    else
        return false;
    return true;
}

/* --sink NAME: a known sink, at most MAX_SINKS of them, sqlite once (two would wait on each
 * other's write lock within one request). */
static void add_sink(struct args *a, struct config *cfg)
{
    const char *v = opt_value(a);
    if (strcmp(v, "stdout") != 0 && strcmp(v, "sqlite") != 0 && strcmp(v, "clickhouse") != 0) {
        fprintf(stderr, "lazybackend: unknown sink '%s' (supported: stdout, sqlite, clickhouse)\n", v);
        exit(2);
    }
    if (cfg->n_sinks == MAX_SINKS)
        bad_value("--sink", v);
    for (size_t k = 0; k < cfg->n_sinks; k++)
        if (strcmp(v, "sqlite") == 0 && strcmp(cfg->sinks[k], "sqlite") == 0)
            bad_value("--sink (sqlite given twice)", v);
    cfg->sinks[cfg->n_sinks++] = v;
}

/* Which sinks, and the stdout and sqlite sinks' own options. */
static bool parse_sink_option(struct args *a, struct config *cfg)
{
    static const char *const formats[] = { "text", "folded", "json" };
    static const enum stdout_format format_values[] = {
        STDOUT_FORMAT_TEXT, STDOUT_FORMAT_FOLDED, STDOUT_FORMAT_JSON,
    };
    static const char *const syncs[] = { "full", "normal" };
    static const enum sqlite_sync sync_values[] = { SQLITE_SYNC_FULL, SQLITE_SYNC_NORMAL };
    if (opt(a, "--sink"))
        add_sink(a, cfg);
    else if (opt(a, "--format"))
        cfg->format = format_values[opt_choice(a, formats, 3)];
    else if (opt(a, "--sqlite-path"))
        cfg->sqlite_path = opt_nonempty(a);
    else if (opt(a, "--sqlite-sync"))
        cfg->sqlite_sync = sync_values[opt_choice(a, syncs, 2)];
    else
        return parse_output_option(a, cfg) || parse_clickhouse_option(a, &cfg->clickhouse);
    return true;
}

/* The ports and the limits that protect them. */
static bool parse_server_option(struct args *a, struct config *cfg)
{
    if (opt(a, "--grpc-address")) {
        cfg->grpc_address = opt_value(a);
    } else if (opt(a, "--http-address")) {
        cfg->http_address = opt_value(a);
        cfg->http_address_set = true;
        if (strcmp(cfg->http_address, "none") == 0)
            cfg->http_address = NULL;
    } else if (opt(a, "--request-timeout")) {
        cfg->request_timeout_ms = opt_uint(a, 1, 3600) * 1000;
    } else if (opt(a, "--max-message-size")) {
        /* Dictionary offsets are 32-bit: 1 GiB keeps every offset well inside. */
        cfg->max_message_size = opt_size(a, 16, 1u << 30);
    } else if (opt(a, "--max-inflight-bytes")) {
        cfg->max_inflight_bytes = opt_size(a, 1024, SIZE_MAX);
    } else if (opt(a, "--max-connections")) {
        cfg->max_connections = opt_uint(a, 1, 1000000);
    } else if (opt(a, "--max-concurrent-streams")) {
        cfg->max_concurrent_streams = opt_uint(a, 1, 100000);
    } else if (opt(a, "--idle-timeout")) {
        cfg->idle_timeout_ms = opt_uint(a, 0, 86400) * 1000;
    } else if (opt(a, "--shutdown-timeout")) {
        cfg->shutdown_timeout_ms = opt_uint(a, 0, 3600) * 1000;
    } else {
        return false;
    }
    return true;
}

/* The decoder's options, and the process's own (logging). */
static bool parse_decoder_option(struct args *a, struct config *cfg)
{
    if (opt(a, "--max-stack-depth")) {
        cfg->limits.max_stack_depth = opt_uint(a, 1, 1u << 24);
    } else if (opt(a, "--proto-version")) {
        const char *v = opt_value(a);
        cfg->proto_version = otlp_layout_find(v);
        if (!cfg->proto_version && strcmp(v, "auto") != 0)
            bad_value("--proto-version", v);
    } else if (flag(a, "--detect")) {
        cfg->detect_only = true;
    } else if (opt(a, "--log-level")) {
        const char *v = opt_value(a);
        int level = log_parse_level(v);
        if (level < 0)
            bad_value("--log-level", v);
        log_set_level((enum log_level)level);
    } else {
        return false;
    }
    return true;
}

/* --help and --version answer and end the process. */
static void answer_info_option(const struct args *a)
{
    if (flag(a, "--help") || flag(a, "-h")) {
        usage(stdout);
        exit(0);
    }
    if (flag(a, "--version")) {
        printf("lazybackend %s\n", LAZYBACKEND_VERSION);
        exit(0);
    }
}

/* Parses options into cfg, in order (a bad one ends the process with status 2 before
 * anything is set up); the other arguments are collected into `files`. */
static void parse_options(int argc, char **argv, int first, struct config *cfg, const char ***files, int *n_files)
{
    *files = calloc((size_t)argc, sizeof **files);
    if (!*files) {
        fprintf(stderr, "lazybackend: out of memory\n");
        exit(1);
    }
    *n_files = 0;
    struct args a = { .argc = argc, .argv = argv };
    for (a.i = first; a.i < argc; a.i++) {
        const char *arg = argv[a.i];
        answer_info_option(&a);
        if (parse_server_option(&a, cfg) || parse_sink_option(&a, cfg) || parse_decoder_option(&a, cfg))
            continue;
        if (arg[0] == '-' && arg[1] != 0) {
            fprintf(stderr, "lazybackend: unknown option '%s' (see --help)\n", arg);
            exit(2);
        }
        (*files)[(*n_files)++] = arg;
    }
}

/* What the parsers cannot see one option at a time: combinations, and lists with nothing in
 * them. */
static void check_output_options(const struct config *cfg)
{
    char err[256];
    if (filter_config_check(&cfg->filter, err, sizeof err) != 0) {
        fprintf(stderr, "lazybackend: %s\n", err);
        exit(2);
    }
    if (cfg->stdout_detail_set && cfg->format == STDOUT_FORMAT_FOLDED) {
        fprintf(stderr, "lazybackend: --no-* detail switches apply to --format text and json, not folded\n");
        exit(2);
    }
    if (cfg->stdout_opt.folded_root != FOLDED_ROOT_NONE && cfg->format != STDOUT_FORMAT_FOLDED) {
        fprintf(stderr, "lazybackend: --folded-root needs --format folded\n");
        exit(2);
    }
    bool stdout_sink = cfg->n_sinks == 0;   /* the default */
    for (size_t i = 0; i < cfg->n_sinks; i++)
        stdout_sink |= strcmp(cfg->sinks[i], "stdout") == 0;
    if (cfg->stdout_opt.path && !stdout_sink) {
        fprintf(stderr, "lazybackend: --output is where the stdout sink writes: add --sink stdout\n");
        exit(2);
    }
}

/* The defaults the usage text promises. */
static void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->grpc_address = "127.0.0.1:4317";
    cfg->http_address = "127.0.0.1:4318";
    cfg->request_timeout_ms = 60 * 1000;
    cfg->max_message_size = 64u << 20;
    cfg->max_inflight_bytes = 256u << 20;
    cfg->max_connections = 1024;
    cfg->max_concurrent_streams = 100;
    cfg->idle_timeout_ms = 300 * 1000;
    cfg->shutdown_timeout_ms = 10 * 1000;
    cfg->format = STDOUT_FORMAT_TEXT;
    cfg->limits.max_stack_depth = OTLP_DEFAULT_MAX_STACK_DEPTH;
    cfg->limits.max_frames_per_request = OTLP_DEFAULT_MAX_FRAMES;
    clickhouse_sink_defaults(&cfg->clickhouse);
    cfg->clickhouse.password = getenv("CLICKHOUSE_PASSWORD");
}

/* ---------- sinks, and giving everything back ---------- */

/* Everything serve() and decode set up, given back in reverse order, once; safe on a partly
 * built app, so that every startup failure ends here and the sanitizers see a clean exit.
 * The sinks get `deadline_ms` to flush. */
static void app_teardown(struct app *app, int deadline_ms)
{
    sink_set_close(&app->sinks, deadline_ms);
    app->sinks.n = 0;
    h2_server_free(app->http_server);
    h2_server_free(app->server);
    if (app->sigfd >= 0) {
        loop_del_fd(app->loop, app->sigfd);
        close(app->sigfd);
    }
    otlp_decoder_free(app->decoder);
    otlp_trace_decoder_free(app->trace_decoder);
    loop_free(app->loop);
}

/* A startup step failed (and said why): the exit status, after giving everything back. */
static int startup_failed(struct app *app)
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
        if (stdout_sink_open(s, &o) != 0) {
            log_error("cannot open the stdout sink%s%s: %s", o.path ? " on " : "",
                      o.path ? o.path : "", strerror(errno));
            return -1;
        }
        app->stdout_sink = s;
    } else if (strcmp(name, "sqlite") == 0) {
        struct sqlite_sink_options o = { .path = app->cfg.sqlite_path, .sync = app->cfg.sqlite_sync };
        if (sqlite_sink_open(s, &o, err, sizeof err) != 0) {
            log_error("cannot open the sqlite sink: %s", err);
            return -1;
        }
    } else if (strcmp(name, "clickhouse") == 0) {
        struct sink_env env = { .loop = app->loop };
        if (clickhouse_sink_open(s, &app->cfg.clickhouse, &env, err, sizeof err) != 0) {
            log_error("cannot open the clickhouse sink: %s", err);
            return -1;
        }
    }
    return 0;
}

/* The configured sinks (stdout when none), then the filter stage in front of them. */
static int open_sinks(struct app *app)
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

/* When a request was received, for the sinks (the wall clock: sinks show and store it). */
static uint64_t now_unix_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The counts logged when the process stops. */
static void count_result(struct app *app, const struct otlp_result *res)
{
    app->stats.requests++;
    app->stats.samples += res->samples;
    app->stats.rejected_samples += res->rejected_samples;
    switch (res->status) {
    case OTLP_OK: app->stats.ok++; break;
    case OTLP_INVALID: app->stats.invalid++; break;
    case OTLP_UNAVAILABLE: app->stats.refused++; break;
    default: app->stats.failed++; break;
    }
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

/* Any profiles request from the network: decoded into the sinks, counted, and logged with
 * `how` it came ("HTTP/1.1, json"; NULL for gRPC, whose log line names no transport). */
static void run_profiles(struct app *app, struct lb_request *req, const char *how, bool compressed,
                         const uint8_t *msg, size_t len, struct otlp_result *res)
{
    req->received_unix_nano = now_unix_nano();
    req->sequence = ++app->sequence;
    otlp_export_profiles(app->decoder, msg, len, req, sink_set_consumer(&app->sinks), res);
    count_result(app, res);
    if (res->status != OTLP_OK)
        return;   /* the transport logs errors with their status */
    note_layout(app, req->peer);
    log_info("export from %s%s%s%s: %llu resources, %llu profiles, %llu samples, %llu frames (%zu bytes%s, layout %s)%s%s",
             req->peer, how ? " (" : "", how ? how : "", how ? ")" : "",
             (unsigned long long)res->resources, (unsigned long long)res->profiles,
             (unsigned long long)res->samples, (unsigned long long)res->frames, len,
             compressed ? ", gzip" : "", req->layout,
             res->rejected_profiles ? "; " : "", res->rejected_profiles ? res->message : "");
}

/* Traces bypass the filter stage (its filters are about profiles and samples): spans go to
 * the configured sinks, of which those with a span callback take them (sinks/sink.h). */
static struct sink_set *trace_sinks(struct app *app)
{
    return app->filter_sink.type ? &app->inner_sinks : &app->sinks;
}

/* Any traces request, whatever carried it: decoded into the span sinks, counted, logged. */
static void run_traces(struct app *app, struct lb_request *req, const char *how,
                       const uint8_t *msg, size_t len, struct otlp_trace_result *res)
{
    req->received_unix_nano = now_unix_nano();
    req->sequence = ++app->sequence;
    otlp_export_traces(app->trace_decoder, msg, len, req, sink_set_consumer(trace_sinks(app)), res);
    app->trace_stats.requests++;
    app->trace_stats.spans += res->spans;
    app->trace_stats.rejected_spans += res->rejected_spans;
    if (res->status != OTLP_OK)
        return;
    app->trace_stats.ok++;
    log_info("trace export from %s (%s): %llu resources, %llu spans, %llu events, %llu links (%zu bytes)%s%s",
             req->peer, how, (unsigned long long)res->resources, (unsigned long long)res->spans,
             (unsigned long long)res->events, (unsigned long long)res->links, len,
             res->rejected_spans ? "; " : "", res->rejected_spans ? res->message : "");
}

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
    run_profiles(ud, &req, NULL, call->compressed, call->message, call->length, &res);
    grpc_answer(reply, res.status, res.message,
                res.status == OTLP_OK ? otlp_encode_profiles_response(&res, &reply->body) : 0);
}

/* gRPC TraceService/Export */
static void grpc_traces(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    struct lb_request req = { .transport = "grpc", .peer = call->peer, .wire_bytes = call->wire_bytes };
    struct otlp_trace_result res;
    run_traces(ud, &req, call->compressed ? "grpc, gzip" : "grpc", call->message, call->length, &res);
    grpc_answer(reply, res.status, res.message,
                res.status == OTLP_OK ? otlp_encode_traces_response(&res, &reply->body) : 0);
}

/* POST /v1development/profiles (h2/otlp_http.c answers it from `res`). */
static void http_profiles(void *ud, const struct otlp_http_call *call, struct otlp_result *res)
{
    struct lb_request req = { .transport = "http", .peer = call->peer, .wire_bytes = call->wire_bytes };
    char how[64];
    snprintf(how, sizeof how, "%s, %s", call->protocol, call->format);
    run_profiles(ud, &req, how, call->compressed, call->message, call->length, res);
}

/* POST /v1/traces */
static void http_traces(void *ud, const struct otlp_http_call *call, struct otlp_trace_result *res)
{
    struct lb_request req = { .transport = "http", .peer = call->peer, .wire_bytes = call->wire_bytes };
    char how[64];
    snprintf(how, sizeof how, "%s, %s%s", call->protocol, call->format, call->compressed ? ", gzip" : "");
    run_traces(ud, &req, how, call->message, call->length, res);
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
        .max_concurrent_streams = app->cfg.max_concurrent_streams,
        .idle_timeout_ms = app->cfg.idle_timeout_ms,
    };
}

/* The gRPC port: the profiles and traces Export methods. NULL with a logged reason. */
static struct h2_server *start_grpc(struct app *app)
{
    struct h2_server_config hc = port_config(app, app->cfg.grpc_address, H2_SERVER_GRPC);
    char err[256];
    struct h2_server *s = h2_server_new(app->loop, &hc);
    if (!s || h2_server_add_method(s, PROFILES_EXPORT_PATH, grpc_profiles, app) != 0 ||
        h2_server_add_method(s, TRACES_EXPORT_PATH, grpc_traces, app) != 0) {
        log_error("cannot create the gRPC server");
        h2_server_free(s);
        return NULL;
    }
    if (h2_server_listen(s, err, sizeof err) != 0) {
        log_error("cannot listen on %s: %s", app->cfg.grpc_address, err);
        h2_server_free(s);
        return NULL;
    }
    log_info("lazybackend %s: OTLP/gRPC on %s, sinks:%s%s, max message %zu bytes", LAZYBACKEND_VERSION,
             h2_server_address(s), app->cfg.n_sinks ? " " : "", app->cfg.sinks[0],
             app->cfg.max_message_size);
    return s;
}

/* The HTTP port. NULL with a logged reason on failure: a taken default port only warns (the
 * gRPC receiver must not stop because a Collector holds 4318); an address the user asked for
 * must work (serve() then stops). */
static struct h2_server *start_http(struct app *app)
{
    struct h2_server_config hc = port_config(app, app->cfg.http_address, H2_SERVER_HTTP);
    app->http_service = (struct otlp_http_service){
        .profiles = http_profiles, .traces = http_traces, .ud = app,
        .max_message_size = app->cfg.max_message_size,
    };
    char err[256];
    struct h2_server *s = h2_server_new(app->loop, &hc);
    if (!s || otlp_http_register(s, &app->http_service) != 0) {
        log_error("cannot create the HTTP server");
        h2_server_free(s);
        return NULL;
    }
    if (h2_server_listen(s, err, sizeof err) != 0) {
        if (app->cfg.http_address_set)
            log_error("cannot listen on %s: %s", app->cfg.http_address, err);
        else
            log_warn("OTLP/HTTP disabled: cannot listen on the default %s: %s (set --http-address)",
                     app->cfg.http_address, err);
        h2_server_free(s);
        return NULL;
    }
    log_info("OTLP/HTTP (HTTP/1.1 and h2c) on %s: POST %s, POST %s, GET %s", h2_server_address(s),
             PROFILES_HTTP_PATH, TRACES_HTTP_PATH, HEALTH_HTTP_PATH);
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
static bool begin_shutdown(struct app *app, struct loop *loop, uint32_t signo)
{
    if (app->shutting_down) {
        log_warn("second signal: stopping now");
        loop_stop(loop);
        return true;
    }
    log_info("%s: stop accepting, finish in-flight requests, flush sinks", signo == SIGINT ? "SIGINT" : "SIGTERM");
    app->shutting_down = true;
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
        if (si.ssi_signo == SIGHUP)
            reopen_output(app);
        else if ((si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) && begin_shutdown(app, loop, si.ssi_signo))
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
    if (!app->loop || !app->decoder || !app->trace_decoder || open_sinks(app) != 0)
        return -1;
    if (setup_signals(app) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The last log lines: what the process did, for whoever reads the log of a run. */
static void log_stopped(const struct app *app)
{
    const struct h2_stats *hs = h2_server_stats(app->server);
    log_info("stopped: %llu requests (%llu ok, %llu invalid, %llu refused, %llu failed), %llu samples delivered, "
             "%llu rejected; %llu connections",
             (unsigned long long)app->stats.requests, (unsigned long long)app->stats.ok,
             (unsigned long long)app->stats.invalid, (unsigned long long)app->stats.refused,
             (unsigned long long)app->stats.failed, (unsigned long long)app->stats.samples,
             (unsigned long long)app->stats.rejected_samples, (unsigned long long)hs->connections_accepted);
    if (app->trace_stats.requests)
        log_info("traces: %llu requests (%llu ok), %llu spans delivered, %llu rejected",
                 (unsigned long long)app->trace_stats.requests, (unsigned long long)app->trace_stats.ok,
                 (unsigned long long)app->trace_stats.spans, (unsigned long long)app->trace_stats.rejected_spans);
}

/* `lazybackend serve`: both ports until SIGINT/SIGTERM, then a drained shutdown in which the
 * sinks flush within --shutdown-timeout. */
static int serve(struct app *app)
{
    if (open_pipeline(app) != 0 || !(app->server = start_grpc(app)))
        return startup_failed(app);
    if (app->cfg.http_address && !(app->http_server = start_http(app)) && app->cfg.http_address_set)
        return startup_failed(app);
    int rc = loop_run(app->loop) == 0 ? 0 : 1;
    sink_set_close(&app->sinks, (int)app->cfg.shutdown_timeout_ms);
    app->sinks.n = 0;
    log_stopped(app);
    app_teardown(app, 0);
    return rc;
}

/* ---------- decode: captured payloads ---------- */

/* A whole file (or stdin) into `out`, up to its limit. */
static int read_all(const char *path, size_t limit, struct buf *out, char *err, size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    int rc = 0;
    for (;;) {
        if (!buf_reserve(out, 65536) && !buf_reserve(out, 1)) {
            snprintf(err, errlen, "larger than %zu bytes", limit);
            rc = -1;
            break;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* The Collector's file exporter writes lengths big-endian. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A stream of 4-byte big-endian length-prefixed requests (the Collector's file exporter)
 * tiles the file exactly; a raw protobuf request never starts with a zero byte (field 0
 * does not exist), and almost never tiles by chance. */
static bool is_length_prefixed(const uint8_t *p, size_t n)
{
    size_t pos = 0, count = 0;
    while (pos < n) {
        if (n - pos < 4)
            return false;
        uint32_t len = be32(p + pos);
        if (len > n - pos - 4)
            return false;
        pos += 4 + len;
        count++;
    }
    return count > 0 && (p[0] == 0 || count > 1);
}

/* decode --detect: one block per request, the chosen layout and the evidence. */
static int detect_one(struct app *app, const char *name, unsigned index, const uint8_t *msg, size_t len)
{
    struct otlp_detection det;
    const struct otlp_layout *pinned = app->cfg.proto_version;
    int rc = pinned ? otlp_detect_among(msg, len, &pinned, 1, &det) : otlp_detect(msg, len, &det);
    char summary[512];
    otlp_detection_summary(&det, summary, sizeof summary);
    printf("%s: request %u: %s\n", name, index, rc == 0 ? summary : "fits no proto layout");
    for (size_t i = 0; i < det.n_evidence; i++)
        printf("  %s\n", det.evidence[i]);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}

/* One request of a file into the sinks; 1 when it was refused or anything in it rejected. */
static int decode_one(struct app *app, const char *name, unsigned index, const uint8_t *msg, size_t len)
{
    if (app->cfg.detect_only)
        return detect_one(app, name, index, msg, len);
    struct lb_request req = {
        .transport = "file", .peer = name, .received_unix_nano = now_unix_nano(),
        .wire_bytes = len, .sequence = ++app->sequence,
    };
    struct otlp_result res;
    otlp_export_profiles(app->decoder, msg, len, &req, sink_set_consumer(&app->sinks), &res);
    count_result(app, &res);
    if (res.status != OTLP_OK || res.rejected_profiles || res.rejected_samples) {
        fprintf(stderr, "lazybackend: %s: request %u: %s\n", name, index, res.message);
        return 1;
    }
    return 0;
}

/* A file's requests, decompressed: a length-prefixed stream of them, or one raw request. */
static int decode_requests(struct app *app, const char *name, const uint8_t *p, size_t n)
{
    size_t max = app->cfg.max_message_size;
    if (n == 0) {
        fprintf(stderr, "lazybackend: %s: empty input\n", name);
        return 1;
    }
    if (!is_length_prefixed(p, n)) {
        if (n <= max)
            return decode_one(app, name, 0, p, n);
        fprintf(stderr, "lazybackend: %s: %zu bytes is over --max-message-size\n", name, n);
        return 1;
    }
    int rc = 0;
    unsigned index = 0;
    for (size_t pos = 0; pos < n; index++) {
        uint32_t len = be32(p + pos);
        if (len > max) {
            fprintf(stderr, "lazybackend: %s: request %u: %u bytes is over --max-message-size\n", name, index, len);
            rc = 1;
        } else {
            rc |= decode_one(app, name, index, p + pos + 4, len);
        }
        pos += 4 + (size_t)len;
    }
    return rc;
}

/* One FILE argument: read, gunzipped when it is gzip, its requests decoded. */
static int decode_file(struct app *app, const char *path)
{
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    struct buf raw, inflated;
    char err[256];
    int rc = 1;
    buf_init(&raw, app->cfg.max_message_size * 16);   /* a file may hold many requests */
    buf_init(&inflated, app->cfg.max_message_size * 16);
    if (read_all(path, raw.limit, &raw, err, sizeof err) != 0)
        fprintf(stderr, "lazybackend: %s: %s\n", name, err);
    else if (raw.len < 2 || raw.data[0] != 0x1f || raw.data[1] != 0x8b)   /* no gzip magic */
        rc = decode_requests(app, name, raw.data, raw.len);
    else if (gzip_inflate(raw.data, raw.len, inflated.limit, &inflated, err, sizeof err) != GZIP_OK)
        fprintf(stderr, "lazybackend: %s: gzip: %s\n", name, err);
    else
        rc = decode_requests(app, name, inflated.data, inflated.len);
    buf_free(&raw);
    buf_free(&inflated);
    return rc;
}

/* `lazybackend decode FILE...`: the decoder and sinks of the server on captured payloads. */
static int decode_command(struct app *app, const char **files, int n_files)
{
    if (n_files == 0) {
        fprintf(stderr, "lazybackend decode: no input (give FILE... or - for stdin)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Never run: asynchronous sinks (clickhouse) register on it and deliver in close. */
    app->loop = loop_new();
    app->decoder = otlp_decoder_new(&app->cfg.limits, app->cfg.proto_version);
    if (!app->loop || !app->decoder || (!app->cfg.detect_only && open_sinks(app) != 0))
        return startup_failed(app);
    int rc = 0;
    for (int i = 0; i < n_files; i++)
        rc |= decode_file(app, files[i]);
    app_teardown(app, (int)app->cfg.shutdown_timeout_ms);
    return rc;
}

/* The query commands read a SQLite store and have options of their own. */
static bool is_query_command(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "top") == 0 || strcmp(argv[1], "folded") == 0 ||
                        strcmp(argv[1], "flamegraph") == 0);
}

/* serve (the default), decode, or a query command; options first, then the work. */
int main(int argc, char **argv)
{
    if (is_query_command(argc, argv))
        return sqlite_query_main(argv[1], argc - 2, argv + 2);
    struct app app;
    memset(&app, 0, sizeof app);
    app.sigfd = -1;
    config_defaults(&app.cfg);
    bool decode = argc > 1 && strcmp(argv[1], "decode") == 0;
    int first = decode || (argc > 1 && strcmp(argv[1], "serve") == 0) ? 2 : 1;
    const char **files;
    int n_files;
    parse_options(argc, argv, first, &app.cfg, &files, &n_files);
    check_output_options(&app.cfg);
    int rc;
    if (decode) {
        rc = decode_command(&app, files, n_files);
    } else if (n_files) {
        fprintf(stderr, "lazybackend: unexpected argument '%s' (see --help)\n", files[0]);
        rc = 2;
    } else {
        rc = serve(&app);
    }
    free(files);
    return rc;
}
