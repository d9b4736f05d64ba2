/*
 * main.c - lazybackend: command line, wiring, lifecycle.
 *
 *   lazybackend [serve] [options]        receive OTLP profiles over gRPC, write them to sinks
 *   lazybackend decode [options] FILE... the same decoder and sinks on captured payloads
 *
 * The process is one thread around one event loop (lib/loop.c). Data flows one way:
 * h2/ (transport) -> otlp/ (decode, validate, resolve) -> sinks/ (output). This file owns the
 * only long-lived state (struct app: configuration, the loop, the server, the decoder and
 * the sinks) and connects the layers; none of them knows about the others' internals.
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
#include "sinks/stdout.h"
#include "sinks/sqlite.h"
#include "sinks/clickhouse.h"

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
    struct otlp_http_service http_service;
    struct otlp_trace_decoder *trace_decoder;
    struct { uint64_t requests, ok, spans, rejected_spans; } trace_stats;
    struct layout_peer layout_peers[LAYOUT_PEERS];
    unsigned layout_peers_next;
};

/* ---------- options ---------- */

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
"                               /healthz (default 127.0.0.1:4318; none = no HTTP port; docs/http.md)\n"
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

/* Returns the option's value, from "--name=value" or the next argument. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) == 0 && arg[n] == '=')
        return arg + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "lazybackend: %s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

static bool is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == 0 || arg[n] == '=');
}

static void bad_value(const char *name, const char *value)
{
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (see --help)\n", name, value);
    exit(2);
}

/* One --clickhouse-* option. */
static void parse_clickhouse_option(int argc, char **argv, int *i, struct clickhouse_sink_options *o)
{
    const char *a = argv[*i], *v;
    unsigned u;
    size_t z;
    if (is_option(a, "--clickhouse-url")) {
        o->url = option_value(argc, argv, i, "--clickhouse-url");
    } else if (is_option(a, "--clickhouse-database")) {
        o->database = option_value(argc, argv, i, "--clickhouse-database");
    } else if (is_option(a, "--clickhouse-user")) {
        o->user = option_value(argc, argv, i, "--clickhouse-user");
    } else if (is_option(a, "--clickhouse-password")) {
        o->password = option_value(argc, argv, i, "--clickhouse-password");
    } else if (is_option(a, "--clickhouse-batch-rows")) {
        v = option_value(argc, argv, i, "--clickhouse-batch-rows");
        if (parse_uint(v, 10000000, &u) || !u)
            bad_value("--clickhouse-batch-rows", v);
        o->batch_rows = u;
    } else if (is_option(a, "--clickhouse-flush-interval")) {
        v = option_value(argc, argv, i, "--clickhouse-flush-interval");
        if (parse_uint(v, 3600000, &u) || !u)
            bad_value("--clickhouse-flush-interval", v);
        o->flush_interval_ms = u;
    } else if (is_option(a, "--clickhouse-max-queue-bytes")) {
        v = option_value(argc, argv, i, "--clickhouse-max-queue-bytes");
        if (parse_size(v, &o->max_queue_bytes) || o->max_queue_bytes < 4096)
            bad_value("--clickhouse-max-queue-bytes", v);
    } else if (is_option(a, "--clickhouse-spool-dir")) {
        o->spool_dir = option_value(argc, argv, i, "--clickhouse-spool-dir");
        if (!*o->spool_dir)
            bad_value("--clickhouse-spool-dir", o->spool_dir);
    } else if (is_option(a, "--clickhouse-spool-max-bytes")) {
        v = option_value(argc, argv, i, "--clickhouse-spool-max-bytes");
        if (parse_size(v, &z) || z < 4096)
            bad_value("--clickhouse-spool-max-bytes", v);
        o->spool_max_bytes = z;
    } else {
        fprintf(stderr, "lazybackend: unknown option '%s' (see --help)\n", a);
        exit(2);
    }
}

/* A repeatable option's value, kept in a bounded list. */
static void add_value(const char **list, size_t *n, const char *name, const char *v)
{
    if (*n == FILTER_MAX_ARGS) {
        fprintf(stderr, "lazybackend: %s given more than %d times\n", name, FILTER_MAX_ARGS);
        exit(2);
    }
    list[(*n)++] = v;
}

/* The stdout sink's output options and the filters (sinks/filter.h); true when argv[*i] was
 * one of them. */
static bool parse_output_option(int argc, char **argv, int *i, struct config *cfg)
{
    static const char *const detail[] = { "--no-resource-attributes", "--no-profile-attributes",
                                          "--no-sample-attributes", "--no-frames", "--no-file-line" };
    bool *detail_flag[] = { &cfg->stdout_opt.no_resource_attributes, &cfg->stdout_opt.no_profile_attributes,
                            &cfg->stdout_opt.no_sample_attributes, &cfg->stdout_opt.no_frames,
                            &cfg->stdout_opt.no_file_line };
    const char *a = argv[*i], *v;
    unsigned u;
    for (size_t k = 0; k < sizeof detail / sizeof detail[0]; k++)
        if (strcmp(a, detail[k]) == 0) {
            *detail_flag[k] = cfg->stdout_detail_set = true;
            return true;
        }
    if (is_option(a, "--output")) {
        cfg->stdout_opt.path = option_value(argc, argv, i, "--output");
        if (!*cfg->stdout_opt.path)
            bad_value("--output", cfg->stdout_opt.path);
    } else if (is_option(a, "--folded-root")) {
        v = option_value(argc, argv, i, "--folded-root");
        if (strcmp(v, "none") == 0) cfg->stdout_opt.folded_root = FOLDED_ROOT_NONE;
        else if (strcmp(v, "executable") == 0) cfg->stdout_opt.folded_root = FOLDED_ROOT_EXECUTABLE;
        else if (strcmp(v, "container") == 0) cfg->stdout_opt.folded_root = FOLDED_ROOT_CONTAINER;
        else if (strcmp(v, "thread") == 0) cfg->stdout_opt.folded_root = FOLDED_ROOT_THREAD;
        else bad_value("--folded-root", v);
    } else if (is_option(a, "--sample-types")) {
        v = option_value(argc, argv, i, "--sample-types");
        add_value(cfg->filter.sample_types, &cfg->filter.n_sample_types, "--sample-types", v);
    } else if (is_option(a, "--frame-types")) {
        v = option_value(argc, argv, i, "--frame-types");
        add_value(cfg->filter.frame_types, &cfg->filter.n_frame_types, "--frame-types", v);
    } else if (is_option(a, "--resource")) {
        v = option_value(argc, argv, i, "--resource");
        add_value(cfg->filter.resource, &cfg->filter.n_resource, "--resource", v);
    } else if (is_option(a, "--container-id")) {
        cfg->filter.container_id = option_value(argc, argv, i, "--container-id");
    } else if (strcmp(a, "--require-container-id") == 0) {
        cfg->filter.require_container_id = true;
    } else if (is_option(a, "--min-frames")) {
        v = option_value(argc, argv, i, "--min-frames");
        if (parse_uint(v, 1u << 24, &u))
            bad_value("--min-frames", v);
        cfg->filter.min_frames = u;
    } else {
        return false;
    }
    return true;
}

/* What parse_output_option cannot see alone: combinations, and lists with nothing in them. */
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

/* Parses options into cfg; non-option arguments are collected into files. */
static void parse_options(int argc, char **argv, int first, struct config *cfg, const char ***files, int *n_files)
{
    *files = calloc((size_t)argc, sizeof **files);
    *n_files = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        unsigned u;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("lazybackend %s\n", LAZYBACKEND_VERSION);
            exit(0);
        } else if (is_option(a, "--grpc-address")) {
            cfg->grpc_address = option_value(argc, argv, &i, "--grpc-address");
        } else if (is_option(a, "--http-address")) {
            cfg->http_address = option_value(argc, argv, &i, "--http-address");
            cfg->http_address_set = true;
            if (strcmp(cfg->http_address, "none") == 0)
                cfg->http_address = NULL;
        } else if (is_option(a, "--request-timeout")) {
            v = option_value(argc, argv, &i, "--request-timeout");
            if (parse_uint(v, 3600, &u) || !u)
                bad_value("--request-timeout", v);
            cfg->request_timeout_ms = u * 1000;
        } else if (is_option(a, "--sink")) {
            v = option_value(argc, argv, &i, "--sink");
            if (strcmp(v, "stdout") != 0 && strcmp(v, "sqlite") != 0 && strcmp(v, "clickhouse") != 0) {
                fprintf(stderr, "lazybackend: unknown sink '%s' (supported: stdout, sqlite, clickhouse)\n", v);
                exit(2);
            }
            if (cfg->n_sinks == MAX_SINKS)
                bad_value("--sink", v);
            /* two sqlite sinks would wait on each other's write lock within one request */
            for (size_t k = 0; k < cfg->n_sinks; k++)
                if (strcmp(v, "sqlite") == 0 && strcmp(cfg->sinks[k], "sqlite") == 0)
                    bad_value("--sink (sqlite given twice)", v);
            cfg->sinks[cfg->n_sinks++] = v;
        } else if (is_option(a, "--format")) {
            v = option_value(argc, argv, &i, "--format");
            if (strcmp(v, "text") == 0) cfg->format = STDOUT_FORMAT_TEXT;
            else if (strcmp(v, "folded") == 0) cfg->format = STDOUT_FORMAT_FOLDED;
            else if (strcmp(v, "json") == 0) cfg->format = STDOUT_FORMAT_JSON;
            else bad_value("--format", v);
        } else if (parse_output_option(argc, argv, &i, cfg)) {
            continue;
        } else if (is_option(a, "--sqlite-path")) {
            cfg->sqlite_path = option_value(argc, argv, &i, "--sqlite-path");
            if (!*cfg->sqlite_path)
                bad_value("--sqlite-path", cfg->sqlite_path);
        } else if (is_option(a, "--sqlite-sync")) {
            v = option_value(argc, argv, &i, "--sqlite-sync");
            if (strcmp(v, "full") == 0) cfg->sqlite_sync = SQLITE_SYNC_FULL;
            else if (strcmp(v, "normal") == 0) cfg->sqlite_sync = SQLITE_SYNC_NORMAL;
            else bad_value("--sqlite-sync", v);
        } else if (strncmp(a, "--clickhouse-", 13) == 0) {
            parse_clickhouse_option(argc, argv, &i, &cfg->clickhouse);
        } else if (is_option(a, "--max-message-size")) {
            v = option_value(argc, argv, &i, "--max-message-size");
            /* Dictionary offsets are 32-bit: 1 GiB keeps every offset well inside. */
            if (parse_size(v, &cfg->max_message_size) || cfg->max_message_size < 16 ||
                cfg->max_message_size > (1u << 30))
                bad_value("--max-message-size", v);
        } else if (is_option(a, "--max-inflight-bytes")) {
            v = option_value(argc, argv, &i, "--max-inflight-bytes");
            if (parse_size(v, &cfg->max_inflight_bytes) || cfg->max_inflight_bytes < 1024)
                bad_value("--max-inflight-bytes", v);
        } else if (is_option(a, "--max-connections")) {
            v = option_value(argc, argv, &i, "--max-connections");
            if (parse_uint(v, 1000000, &cfg->max_connections) || !cfg->max_connections)
                bad_value("--max-connections", v);
        } else if (is_option(a, "--max-concurrent-streams")) {
            v = option_value(argc, argv, &i, "--max-concurrent-streams");
            if (parse_uint(v, 100000, &cfg->max_concurrent_streams) || !cfg->max_concurrent_streams)
                bad_value("--max-concurrent-streams", v);
        } else if (is_option(a, "--idle-timeout")) {
            v = option_value(argc, argv, &i, "--idle-timeout");
            if (parse_uint(v, 86400, &u))
                bad_value("--idle-timeout", v);
            cfg->idle_timeout_ms = u * 1000;
        } else if (is_option(a, "--shutdown-timeout")) {
            v = option_value(argc, argv, &i, "--shutdown-timeout");
            if (parse_uint(v, 3600, &u))
                bad_value("--shutdown-timeout", v);
            cfg->shutdown_timeout_ms = u * 1000;
        } else if (is_option(a, "--max-stack-depth")) {
            v = option_value(argc, argv, &i, "--max-stack-depth");
            if (parse_uint(v, 1u << 24, &u) || !u)
                bad_value("--max-stack-depth", v);
            cfg->limits.max_stack_depth = u;
        } else if (is_option(a, "--proto-version")) {
            v = option_value(argc, argv, &i, "--proto-version");
            cfg->proto_version = otlp_layout_find(v);
            if (!cfg->proto_version && strcmp(v, "auto") != 0)
                bad_value("--proto-version", v);
        } else if (strcmp(a, "--detect") == 0) {
            cfg->detect_only = true;
        } else if (is_option(a, "--log-level")) {
            v = option_value(argc, argv, &i, "--log-level");
            int level = log_parse_level(v);
            if (level < 0)
                bad_value("--log-level", v);
            log_set_level((enum log_level)level);
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "lazybackend: unknown option '%s' (see --help)\n", a);
            exit(2);
        } else {
            (*files)[(*n_files)++] = a;
        }
    }
}

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

/* ---------- sinks ---------- */

/* A sink that cannot be opened (e.g. --output in a missing directory) ends the process:
 * what was set up is given back, so the sanitizers see a clean exit. Returns the exit status. */
static int startup_failed(struct app *app)
{
    sink_set_close(&app->sinks, 0);
    app->sinks.n = 0;
    otlp_decoder_free(app->decoder);
    loop_free(app->loop);
    app->decoder = NULL;
    app->loop = NULL;
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
        app->sinks.n = 0;   /* closed: startup_failed must not close them again */
        return -1;
    }
    app->sinks = (struct sink_set){ &app->filter_sink, 1 };
    return 0;
}

static int open_sinks(struct app *app)
{
    if (app->cfg.n_sinks == 0)
        app->cfg.sinks[app->cfg.n_sinks++] = "stdout";
    app->sinks.v = app->sink_storage;
    app->sinks.n = 0;
    for (size_t i = 0; i < app->cfg.n_sinks; i++) {
        struct sink *s = &app->sink_storage[app->sinks.n];
        if (strcmp(app->cfg.sinks[i], "stdout") == 0) {
            struct stdout_sink_options o = app->cfg.stdout_opt;
            o.format = app->cfg.format;
            o.fd = STDOUT_FILENO;
            if (stdout_sink_open(s, &o) != 0) {
                log_error("cannot open the stdout sink%s%s: %s", o.path ? " on " : "",
                          o.path ? o.path : "", strerror(errno));
                return -1;
            }
            app->stdout_sink = s;
        } else if (strcmp(app->cfg.sinks[i], "sqlite") == 0) {
            struct sqlite_sink_options o = { .path = app->cfg.sqlite_path, .sync = app->cfg.sqlite_sync };
            char err[512];
            if (sqlite_sink_open(s, &o, err, sizeof err) != 0) {
                log_error("cannot open the sqlite sink: %s", err);
                return -1;
            }
        } else if (strcmp(app->cfg.sinks[i], "clickhouse") == 0) {
            struct sink_env env = { .loop = app->loop };
            char err[512];
            if (clickhouse_sink_open(s, &app->cfg.clickhouse, &env, err, sizeof err) != 0) {
                log_error("cannot open the clickhouse sink: %s", err);
                return -1;
            }
        }
        app->sinks.n++;
    }
    return insert_filter(app);
}

/* ---------- the profiles service ---------- */

static uint64_t now_unix_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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

static void export_profiles(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    struct app *app = ud;
    struct lb_request req = {
        .transport = "grpc", .peer = call->peer, .received_unix_nano = now_unix_nano(),
        .wire_bytes = call->wire_bytes, .sequence = ++app->sequence,
    };
    struct otlp_result res;
    otlp_export_profiles(app->decoder, call->message, call->length, &req, &app->sinks, &res);
    count_result(app, &res);
    switch (res.status) {
    case OTLP_OK:
        note_layout(app, call->peer);
        reply->status = GRPC_OK;
        if (otlp_encode_profiles_response(&res, &reply->body) != 0) {
            reply->status = GRPC_INTERNAL;
            snprintf(reply->message, sizeof reply->message, "cannot encode the response");
        }
        log_info("export from %s: %llu resources, %llu profiles, %llu samples, %llu frames (%zu bytes%s, layout %s)%s%s",
                 call->peer, (unsigned long long)res.resources, (unsigned long long)res.profiles,
                 (unsigned long long)res.samples, (unsigned long long)res.frames, call->length,
                 call->compressed ? ", gzip" : "", req.layout,
                 res.rejected_profiles ? "; " : "", res.rejected_profiles ? res.message : "");
        return;
    case OTLP_INVALID: reply->status = GRPC_INVALID_ARGUMENT; break;
    case OTLP_UNAVAILABLE: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_SINK_FAILED: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_NOMEM: reply->status = GRPC_RESOURCE_EXHAUSTED; break;
    }
    /* The transport logs every error reply once, with peer, path and status. */
    snprintf(reply->message, sizeof reply->message, "%s", res.message);
}

/* ---------- OTLP/HTTP and traces ---------- */

/* Traces bypass the filter stage (its filters are about profiles and samples): spans go to
 * the configured sinks, of which those with a span callback take them (sinks/sink.h). */
static struct sink_set *trace_sinks(struct app *app)
{
    return app->filter_sink.type ? &app->inner_sinks : &app->sinks;
}

/* POST /v1development/profiles: the same decoder and sinks as the gRPC method. */
static void http_profiles(void *ud, const struct otlp_http_call *call, struct otlp_result *res)
{
    struct app *app = ud;
    struct lb_request req = {
        .transport = "http", .peer = call->peer, .received_unix_nano = now_unix_nano(),
        .wire_bytes = call->wire_bytes, .sequence = ++app->sequence,
    };
    otlp_export_profiles(app->decoder, call->message, call->length, &req, &app->sinks, res);
    count_result(app, res);
    if (res->status != OTLP_OK)
        return;   /* the HTTP binding logs errors with their status */
    note_layout(app, call->peer);
    log_info("export from %s (%s, %s): %llu resources, %llu profiles, %llu samples, %llu frames (%zu bytes%s, layout %s)%s%s",
             call->peer, call->protocol, call->format, (unsigned long long)res->resources,
             (unsigned long long)res->profiles, (unsigned long long)res->samples,
             (unsigned long long)res->frames, call->length, call->compressed ? ", gzip" : "",
             req.layout, res->rejected_profiles ? "; " : "", res->rejected_profiles ? res->message : "");
}

/* Any trace request, whatever carried it. */
static void run_traces(struct app *app, struct lb_request *req, const char *how,
                       const uint8_t *msg, size_t len, struct otlp_trace_result *res)
{
    req->received_unix_nano = now_unix_nano();
    req->sequence = ++app->sequence;
    otlp_export_traces(app->trace_decoder, msg, len, req, trace_sinks(app), res);
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

static void http_traces(void *ud, const struct otlp_http_call *call, struct otlp_trace_result *res)
{
    struct lb_request req = { .transport = "http", .peer = call->peer, .wire_bytes = call->wire_bytes };
    char how[64];
    snprintf(how, sizeof how, "%s, %s%s", call->protocol, call->format, call->compressed ? ", gzip" : "");
    run_traces(ud, &req, how, call->message, call->length, res);
}

/* gRPC /opentelemetry.proto.collector.trace.v1.TraceService/Export */
static void export_traces(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    struct lb_request req = { .transport = "grpc", .peer = call->peer, .wire_bytes = call->wire_bytes };
    struct otlp_trace_result res;
    run_traces(ud, &req, call->compressed ? "grpc, gzip" : "grpc", call->message, call->length, &res);
    switch (res.status) {
    case OTLP_OK:
        reply->status = GRPC_OK;
        if (otlp_encode_traces_response(&res, &reply->body) != 0) {
            reply->status = GRPC_INTERNAL;
            snprintf(reply->message, sizeof reply->message, "cannot encode the response");
        }
        return;
    case OTLP_INVALID: reply->status = GRPC_INVALID_ARGUMENT; break;
    case OTLP_UNAVAILABLE: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_SINK_FAILED: reply->status = GRPC_UNAVAILABLE; break;
    case OTLP_NOMEM: reply->status = GRPC_RESOURCE_EXHAUSTED; break;
    }
    snprintf(reply->message, sizeof reply->message, "%s", res.message);
}

/* The HTTP port: same limits as the gRPC port. NULL with a logged reason on failure. */
static struct h2_server *start_http(struct app *app)
{
    struct h2_server_config hc = {
        .address = app->cfg.http_address,
        .protocol = H2_SERVER_HTTP,
        .request_timeout_ms = app->cfg.request_timeout_ms,
        .max_message_size = app->cfg.max_message_size,
        .max_inflight_bytes = app->cfg.max_inflight_bytes,
        .max_connections = app->cfg.max_connections,
        .max_concurrent_streams = app->cfg.max_concurrent_streams,
        .idle_timeout_ms = app->cfg.idle_timeout_ms,
    };
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
        /* The default port taken (another backend, a Collector) must not stop the gRPC
         * receiver; an address the user asked for must. */
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

static void on_signal(struct loop *loop, int fd, int events, void *ud)
{
    (void)events;
    struct app *app = ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            reopen_output(app);
            continue;
        }
        if (si.ssi_signo != SIGINT && si.ssi_signo != SIGTERM)
            continue;
        if (app->shutting_down) {
            log_warn("second signal: stopping now");
            loop_stop(loop);
            return;
        }
        log_info("%s: stop accepting, finish in-flight requests, flush sinks",
                 si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        app->shutting_down = true;
        app->shutdown_deadline_ms = loop_now_ms(loop) + app->cfg.shutdown_timeout_ms;
        h2_server_shutdown(app->server);
        if (app->http_server)
            h2_server_shutdown(app->http_server);
        check_drained(loop, app);
    }
}

static int setup_signals(struct app *app)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);   /* a closed stdout pipe is an error to report, not a death */
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    return loop_add_fd(app->loop, fd, LOOP_READ, on_signal, app) == 0 ? fd : -1;
}

static int serve(struct app *app)
{
    app->loop = loop_new();
    app->decoder = otlp_decoder_new(&app->cfg.limits, app->cfg.proto_version);
    app->trace_decoder = otlp_trace_decoder_new();
    if (!app->loop || !app->decoder || !app->trace_decoder || open_sinks(app) != 0) {
        otlp_trace_decoder_free(app->trace_decoder);
        return startup_failed(app);
    }
    int sigfd = setup_signals(app);
    if (sigfd < 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return 1;
    }
    struct h2_server_config hc = {
        .address = app->cfg.grpc_address,
        .request_timeout_ms = app->cfg.request_timeout_ms,
        .max_message_size = app->cfg.max_message_size,
        .max_inflight_bytes = app->cfg.max_inflight_bytes,
        .max_connections = app->cfg.max_connections,
        .max_concurrent_streams = app->cfg.max_concurrent_streams,
        .idle_timeout_ms = app->cfg.idle_timeout_ms,
    };
    char err[256];
    app->server = h2_server_new(app->loop, &hc);
    if (!app->server || h2_server_add_method(app->server, PROFILES_EXPORT_PATH, export_profiles, app) != 0 ||
        h2_server_add_method(app->server, TRACES_EXPORT_PATH, export_traces, app) != 0) {
        log_error("cannot create the gRPC server");
        return 1;
    }
    if (h2_server_listen(app->server, err, sizeof err) != 0) {
        log_error("cannot listen on %s: %s", app->cfg.grpc_address, err);
        return 1;
    }
    log_info("lazybackend %s: OTLP/gRPC on %s, sinks:%s%s, max message %zu bytes", LAZYBACKEND_VERSION,
             h2_server_address(app->server), app->cfg.n_sinks ? " " : "", app->cfg.sinks[0],
             app->cfg.max_message_size);
    if (app->cfg.http_address && !(app->http_server = start_http(app)) && app->cfg.http_address_set)
        return 1;
    int rc = loop_run(app->loop) == 0 ? 0 : 1;

    sink_set_close(&app->sinks, (int)app->cfg.shutdown_timeout_ms);
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
    h2_server_free(app->http_server);
    h2_server_free(app->server);
    loop_del_fd(app->loop, sigfd);
    close(sigfd);
    otlp_decoder_free(app->decoder);
    otlp_trace_decoder_free(app->trace_decoder);
    loop_free(app->loop);
    return rc;
}

/* ---------- decode: captured payloads ---------- */

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

/* A stream of 4-byte big-endian length-prefixed requests (the Collector's file exporter)
 * tiles the file exactly; a raw protobuf request never starts with a zero byte (field 0
 * does not exist), and almost never tiles by chance. */
static bool is_length_prefixed(const uint8_t *p, size_t n)
{
    size_t pos = 0, count = 0;
    while (pos < n) {
        if (n - pos < 4)
            return false;
        uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 | p[pos + 3];
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

static int decode_one(struct app *app, const char *name, unsigned index, const uint8_t *msg, size_t len)
{
    if (app->cfg.detect_only)
        return detect_one(app, name, index, msg, len);
    struct lb_request req = {
        .transport = "file", .peer = name, .received_unix_nano = now_unix_nano(),
        .wire_bytes = len, .sequence = ++app->sequence,
    };
    struct otlp_result res;
    otlp_export_profiles(app->decoder, msg, len, &req, &app->sinks, &res);
    count_result(app, &res);
    if (res.status != OTLP_OK) {
        fprintf(stderr, "lazybackend: %s: request %u: %s\n", name, index, res.message);
        return 1;
    }
    if (res.rejected_profiles || res.rejected_samples) {
        fprintf(stderr, "lazybackend: %s: request %u: %s\n", name, index, res.message);
        return 1;
    }
    return 0;
}

static int decode_file(struct app *app, const char *path)
{
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    struct buf raw, inflated;
    char err[256];
    int rc = 0;
    buf_init(&raw, app->cfg.max_message_size * 16);   /* a file may hold many requests */
    buf_init(&inflated, app->cfg.max_message_size * 16);
    if (read_all(path, raw.limit, &raw, err, sizeof err) != 0) {
        fprintf(stderr, "lazybackend: %s: %s\n", name, err);
        rc = 1;
        goto out;
    }
    const uint8_t *p = raw.data;
    size_t n = raw.len;
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {   /* gzip magic */
        if (gzip_inflate(p, n, inflated.limit, &inflated, err, sizeof err) != GZIP_OK) {
            fprintf(stderr, "lazybackend: %s: gzip: %s\n", name, err);
            rc = 1;
            goto out;
        }
        p = inflated.data;
        n = inflated.len;
    }
    if (n == 0) {
        fprintf(stderr, "lazybackend: %s: empty input\n", name);
        rc = 1;
    } else if (is_length_prefixed(p, n)) {
        unsigned index = 0;
        for (size_t pos = 0; pos < n; index++) {
            uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 | p[pos + 3];
            if (len > app->cfg.max_message_size) {
                fprintf(stderr, "lazybackend: %s: request %u: %u bytes is over --max-message-size\n", name, index, len);
                rc = 1;
            } else {
                rc |= decode_one(app, name, index, p + pos + 4, len);
            }
            pos += 4 + (size_t)len;
        }
    } else if (n > app->cfg.max_message_size) {
        fprintf(stderr, "lazybackend: %s: %zu bytes is over --max-message-size\n", name, n);
        rc = 1;
    } else {
        rc = decode_one(app, name, 0, p, n);
    }
out:
    buf_free(&raw);
    buf_free(&inflated);
    return rc;
}

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
    sink_set_close(&app->sinks, (int)app->cfg.shutdown_timeout_ms);
    otlp_decoder_free(app->decoder);
    loop_free(app->loop);
    return rc;
}

int main(int argc, char **argv)
{
    struct app app;
    memset(&app, 0, sizeof app);
    config_defaults(&app.cfg);
    int first = 1;
    bool decode = false;
    if (argc > 1 && (strcmp(argv[1], "top") == 0 || strcmp(argv[1], "folded") == 0 ||
                     strcmp(argv[1], "flamegraph") == 0))
        return sqlite_query_main(argv[1], argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "decode") == 0) {
        decode = true;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "serve") == 0) {
        first = 2;
    }
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
