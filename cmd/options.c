/*
 * options.c - the command line of `lazybackend [serve]` and `lazybackend decode`: --help,
 * the option parser, the defaults, and the checks of options that only make sense together.
 *
 * Why together: --help and the parser are one promise (test/e2e/cli_options.py checks that
 * every option listed is taken and every option matched here is listed), so they sit side by
 * side. Every option is parsed (and refused, with exit status 2) before anything is set up,
 * which is why a bad value simply ends the process: there is nothing to give back yet. The
 * query commands (top|folded|flamegraph) have options of their own (sinks/query/args.c).
 *
 * Every option can also come from the environment (LAZYBACKEND_GRPC_ADDRESS for
 * --grpc-address), for a systemd EnvironmentFile=. The variables go through the very same
 * matching and checking as arguments (args.c hands each to parse_option() as if it were one
 * argument), so no option is listed twice and none can be forgotten; the command line wins
 * over the environment.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/args.h"
#include "cmd/options.h"
#include "lib/log.h"
#include "otlp/check.h"
#include "otlp/detect.h"
#include "sinks/filter.h"

/* --help. Every option parsed below is listed here (test/e2e/cli_options.py checks that each
 * one listed is taken). */
static void usage(FILE *out)
{
    fprintf(out,
"Usage: lazybackend [serve] [OPTIONS]\n"
"       lazybackend decode [--format text|json|folded] [OPTIONS] FILE...   (- for stdin)\n"
"       lazybackend send [SEND OPTIONS] FILE...  (send captured requests to a server, over gRPC\n"
"                                            or OTLP/HTTP; see `lazybackend send --help`)\n"
"       lazybackend top|folded|flamegraph [--db FILE|--clickhouse-url URL] [QUERY OPTIONS]\n"
"                                            (read a SQLite or ClickHouse store;\n"
"                                            see `lazybackend top --help`)\n"
"       lazybackend export [EXPORT OPTIONS]  (a SQLite or ClickHouse store written back as OTLP\n"
"                                            requests or pprof files; see `lazybackend export --help`)\n"
"       lazybackend usdt [USDT OPTIONS]      (a program's USDT request probes, through bpftrace,\n"
"                                            as OTLP spans; see `lazybackend usdt --help`)\n"
"       lazybackend check [CHECK OPTIONS] FILE...  (is each captured request conformant OTLP?\n"
"                                            see `lazybackend check --help`)\n"
"\n"
"Receives OTLP profiles (the OpenTelemetry eBPF profiler's, or any Collector's) and shows\n"
"every sample as a resolved stack, exactly as it was sent.\n"
"\n"
"Options (--name value or --name=value):\n"
"  --grpc-address ADDR          gRPC listen address (default 127.0.0.1:4317): OTLP and\n"
"                               grpc.health.v1. ADDR: HOST:PORT, PORT (loopback), :PORT (every\n"
"                               interface), HOST (default port), [V6]:PORT; HOST is an IPv4 or\n"
"                               IPv6 address or localhost\n"
"  --http-address ADDR          OTLP/HTTP listen address: HTTP/1.1 and h2c, profiles, traces,\n"
"                               /healthz and /metrics (default 127.0.0.1:4318; none = no HTTP\n"
"                               port; the forms of --grpc-address)\n"
"  --tls-cert FILE              TLS on both ports (TLS 1.2 and 1.3; ALPN h2, and http/1.1 on\n"
"                               the HTTP port): the server certificate, PEM, intermediates after\n"
"                               it. Needs --tls-key. Reloaded with the key on SIGHUP\n"
"  --tls-key FILE               its private key, PEM\n"
"  --tls-client-ca FILE         mutual TLS: clients must present a certificate that chains to a\n"
"                               CA in FILE (PEM); others are refused in the handshake\n"
"  --auth-token-file FILE       bearer tokens, one per line: every request must carry one\n"
"                               (gRPC metadata authorization: Bearer TOKEN, else UNAUTHENTICATED;\n"
"                               HTTP Authorization: Bearer TOKEN, else 401), /metrics too; health\n"
"                               checks stay open. Reloaded on SIGHUP\n"
"  --insecure                   listen beyond loopback with neither TLS nor a token (refused\n"
"                               otherwise: anyone who can reach the port could send data)\n"
"  --sink NAME                  where samples go: stdout (default), sqlite, clickhouse, forward\n"
"                               (every request passed on as it came: docs/forward.md). Repeatable.\n"
"  --format text|json|folded    stdout sink format (default text; json: one object per sample\n"
"                               per line, see docs/output.md)\n"
"  --output FILE                stdout sink: append to FILE instead of stdout (reopened on\n"
"                               SIGHUP, for logrotate)\n"
"  --no-resource-attributes, --no-profile-attributes, --no-sample-attributes, --no-frames,\n"
"  --no-file-line               text/json: leave those out (--no-file-line: frames as\n"
"                               \"Instrumentation: <type>, Function: <name>\")\n"
"  --folded-root none|executable|container|thread\n"
"                               folded: first frame of every stack (default none; missing\n"
"                               value: [unknown])\n"
"  --sqlite-path FILE           sqlite sink database (default lazybackend.db, under systemd\n"
"                               $STATE_DIRECTORY/lazybackend.db; created, upgraded)\n"
"  --sqlite-sync full|normal    sqlite sink: fsync every commit (full, default: survives power\n"
"                               loss) or not (normal: survives kill -9, faster)\n"
"  --ui auto|on|off             the web UI on the HTTP port (GET /), over the sqlite sink's\n"
"                               database, else the clickhouse sink's (default auto: on when\n"
"                               the HTTP port is loopback; see docs/ui.md)\n"
"  --ui-timeout SECONDS         web UI over ClickHouse: one API call's bound (default 30;\n"
"                               then HTTP 504)\n"
"  --clickhouse-url URL         clickhouse sink: HTTP interface (default http://127.0.0.1:8123)\n"
"  --clickhouse-database NAME   database, created with its tables if absent (default otel)\n"
"  --clickhouse-user USER       ClickHouse user (HTTP basic auth; default: the server's default)\n"
"  --clickhouse-password PASS   its password (or the environment variable CLICKHOUSE_PASSWORD)\n"
"  --clickhouse-batch-rows N    send a batch at this many samples (default 20000)\n"
"  --clickhouse-flush-interval MS  ... or this long after its first sample (default 1000)\n"
"  --clickhouse-max-queue-bytes SIZE  memory for unsent batches (default 64MiB); beyond it\n"
"                               batches are read back from disk when their turn comes\n"
"  --clickhouse-durability wal|memory\n"
"                               wal (default): a request is acknowledged once its rows are\n"
"                               fdatasync'ed to the write-ahead log in the spool directory;\n"
"                               memory: once queued in memory (lossy: a crash loses the queue)\n"
"  --clickhouse-spool-dir DIR   the write-ahead log (memory mode: the spool for batches\n"
"                               ClickHouse cannot take yet) (default ./lazybackend-spool, under\n"
"                               systemd $STATE_DIRECTORY/clickhouse-spool; memory mode: none);\n"
"                               must be this user's and not group/world-writable\n"
"  --clickhouse-spool-max-bytes SIZE  its cap (default 1GiB); when full, requests are refused\n"
"                               with UNAVAILABLE\n"
"  --clickhouse-compression gzip|none  the INSERT bodies (default gzip)\n"
"  --forward-url URL            forward sink: the upstream OTLP endpoint, http:// (h2c for gRPC)\n"
"                               or https://; OTLP/HTTP: the base URL (/v1development/profiles,\n"
"                               /v1/traces appended)\n"
"  --forward-protocol grpc|http gRPC (default) or OTLP/HTTP protobuf\n"
"  --forward-header 'NAME: VALUE'  sent with every request (e.g. upstream auth). Repeatable\n"
"  --forward-compression gzip|none  (default gzip)\n"
"  --forward-ca-file FILE       https://: trust the CAs in FILE (PEM) instead of the system's\n"
"  --forward-timeout MS         one attempt's limit (default 10000); failures are retried with\n"
"                               backoff, permanent rejections logged, counted and dropped\n"
"  --forward-max-queue-bytes SIZE  memory for requests not yet delivered (default 64MiB);\n"
"                               beyond it they are read back from the log when their turn comes\n"
"  --forward-durability wal|memory\n"
"                               wal (default): a request is acknowledged once fdatasync'ed to\n"
"                               the write-ahead log; memory: once queued (lossy: a crash loses\n"
"                               the queue, memory full refuses requests)\n"
"  --forward-spool-dir DIR      the write-ahead log (default ./lazybackend-forward-spool, under\n"
"                               systemd $STATE_DIRECTORY/forward-spool)\n"
"  --forward-spool-max-bytes SIZE  its cap (default 1GiB); when full, requests are refused\n"
"                               with UNAVAILABLE\n"
"  --max-message-size SIZE      largest request, compressed and after decompression (default 64MiB)\n"
"  --max-inflight-bytes SIZE    all partially received requests together (default 256MiB)\n"
"  --max-connections N          concurrent connections (default 1024)\n"
"  --max-connections-per-ip N   from one IPv4 address or IPv6 /64 (default 128)\n"
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
"  --check off|log|strict       conformance checks of every profiles request (docs/check.md):\n"
"                               off (default); log: log each request's verdict and count it in\n"
"                               /metrics; strict: also reject a request with findings (partial\n"
"                               success: all its profiles rejected, the findings as the message)\n"
"  --check-groups LIST          the rule groups --check applies: core, sample-shape, duplicates,\n"
"                               orphans, strict, default, all; -NAME removes one (default: default)\n"
"  --detect                     decode: print each request's detected layout and the evidence\n"
"                               instead of its samples; exit 1 if a request fits no layout\n"
"  --input-format auto|proto|json  decode: what FILE holds (default auto: JSON when it starts\n"
"                               with '{'; protobuf otherwise). JSON is one OTLP/JSON document or\n"
"                               JSON lines (a Collector file exporter's output), read as v1.11\n"
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
"SIZE takes a suffix: K, M, G (or KiB, MiB, GiB), powers of 1024.\n"
"\n"
"Every option can be set in the environment too, the command line winning: LAZYBACKEND_ and its\n"
"name in capitals, '_' for '-' (LAZYBACKEND_GRPC_ADDRESS=:4317, LAZYBACKEND_NO_FRAMES=1 (or 0),\n"
"LAZYBACKEND_SINK=stdout,sqlite: repeatable options take a comma-separated list).\n");
}

/* A repeatable option's values, kept in a bounded list. */
static void opt_append(struct args *a, const char **list, size_t *n)
{
    const char *v[FILTER_MAX_ARGS];
    size_t nv = opt_values(a, v, FILTER_MAX_ARGS);
    for (size_t k = 0; k < nv; k++) {
        if (*n == FILTER_MAX_ARGS) {
            fprintf(stderr, "lazybackend: %s given more than %d times\n", opt_source(a), FILTER_MAX_ARGS);
            exit(2);
        }
        list[(*n)++] = v[k];
    }
}

static const char *const durability_names[] = { "wal", "memory" };
static const char *const ch_compression_names[] = { "gzip", "none" };
static const enum clickhouse_compression ch_compressions[] = { CLICKHOUSE_COMPRESSION_GZIP, CLICKHOUSE_COMPRESSION_NONE };
static const enum clickhouse_durability durabilities[] = { CLICKHOUSE_DURABILITY_WAL, CLICKHOUSE_DURABILITY_MEMORY };

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
    else if (opt(a, "--clickhouse-durability"))
        o->durability = durabilities[opt_choice(a, durability_names, 2)];
    else if (opt(a, "--clickhouse-spool-max-bytes"))
        o->spool_max_bytes = opt_size(a, 4096, SIZE_MAX);
    else if (opt(a, "--clickhouse-compression"))
        o->compression = ch_compressions[opt_choice(a, ch_compression_names, 2)];
    else
        return false;
    return true;
}

static const enum forward_durability forward_durabilities[] = { FORWARD_DURABILITY_WAL, FORWARD_DURABILITY_MEMORY };

/* --forward-*: true when the current argument was one of them. */
static bool parse_forward_option(struct args *a, struct forward_sink_options *o)
{
    static const char *const protocols[] = { "grpc", "http" };
    static const char *const compressions[] = { "gzip", "none" };
    if (opt(a, "--forward-url")) {
        o->url = opt_nonempty(a);
    } else if (opt(a, "--forward-protocol")) {
        o->protocol = opt_choice(a, protocols, 2) == 0 ? FORWARD_GRPC : FORWARD_HTTP;
    } else if (opt(a, "--forward-header")) {
        if (o->n_headers == FORWARD_MAX_HEADERS) {
            fprintf(stderr, "lazybackend: %s given more than %d times\n", opt_source(a), FORWARD_MAX_HEADERS);
            exit(2);
        }
        o->headers[o->n_headers++] = opt_nonempty(a);
    } else if (opt(a, "--forward-compression")) {
        o->compression = opt_choice(a, compressions, 2) == 0 ? FORWARD_GZIP : FORWARD_NONE;
    } else if (opt(a, "--forward-ca-file")) {
        o->ca_file = opt_nonempty(a);
    } else if (opt(a, "--forward-timeout")) {
        o->timeout_ms = opt_uint(a, 1, 3600000);
    } else if (opt(a, "--forward-max-queue-bytes")) {
        o->max_queue_bytes = opt_size(a, 4096, SIZE_MAX);
    } else if (opt(a, "--forward-durability")) {
        o->durability = forward_durabilities[opt_choice(a, durability_names, 2)];
    } else if (opt(a, "--forward-spool-dir")) {
        o->spool_dir = opt_nonempty(a);
    } else if (opt(a, "--forward-spool-max-bytes")) {
        o->spool_max_bytes = opt_size(a, 4096, SIZE_MAX);
    } else {
        return false;
    }
    return true;
}

/* The stdout sink's detail switches (text and json output leave those parts out). */
static bool parse_detail_switch(struct args *a, struct config *cfg)
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
 * other's write lock within one request), forward once (one set of --forward-* options). */
static void add_sink(struct args *a, struct config *cfg)
{
    const char *names[MAX_SINKS];
    size_t n = opt_values(a, names, MAX_SINKS);
    for (size_t i = 0; i < n; i++) {
        const char *v = names[i];
        if (strcmp(v, "stdout") != 0 && strcmp(v, "sqlite") != 0 && strcmp(v, "clickhouse") != 0 &&
            strcmp(v, "forward") != 0) {
            fprintf(stderr, "lazybackend: unknown sink '%s'%s%s (supported: stdout, sqlite, clickhouse, forward)\n",
                    v, a->env_var ? " in " : "", a->env_var ? a->env_var : "");
            exit(2);
        }
        if (cfg->n_sinks == MAX_SINKS)
            bad_value(a, v);
        for (size_t k = 0; k < cfg->n_sinks; k++)
            if ((strcmp(v, "sqlite") == 0 || strcmp(v, "forward") == 0) && strcmp(cfg->sinks[k], v) == 0) {
                fprintf(stderr, "lazybackend: invalid value for %s (%s given twice): '%s' (see --help)\n",
                        opt_source(a), v, v);
                exit(2);
            }
        cfg->sinks[cfg->n_sinks++] = v;
    }
}

/* Which sinks, and the stdout and sqlite sinks' own options. */
static bool parse_sink_option(struct args *a, struct config *cfg)
{
    static const char *const formats[] = { "text", "folded", "json" };
    static const enum stdout_format format_values[] = {
        STDOUT_FORMAT_TEXT, STDOUT_FORMAT_FOLDED, STDOUT_FORMAT_JSON,
    };
    static const char *const syncs[] = { "full", "normal" };
    static const char *const ui_modes[] = { "auto", "on", "off" };
    static const enum sqlite_sync sync_values[] = { SQLITE_SINK_SYNC_FULL, SQLITE_SINK_SYNC_NORMAL };
    if (opt(a, "--sink"))
        add_sink(a, cfg);
    else if (opt(a, "--format"))
        cfg->format = format_values[opt_choice(a, formats, 3)];
    else if (opt(a, "--sqlite-path"))
        cfg->sqlite_path = opt_nonempty(a);
    else if (opt(a, "--sqlite-sync"))
        cfg->sqlite_sync = sync_values[opt_choice(a, syncs, 2)];
    else if (opt(a, "--ui"))
        cfg->ui = opt_choice(a, ui_modes, 3);
    else if (opt(a, "--ui-timeout"))
        cfg->ui_timeout_s = opt_uint(a, 1, 3600);
    else
        return parse_output_option(a, cfg) || parse_clickhouse_option(a, &cfg->clickhouse) ||
               parse_forward_option(a, &cfg->forward);
    return true;
}

/* A listen address in the forms people type, as the server takes it (HOST:PORT, [V6]:PORT):
 * "4317" is loopback, ":4317" every interface, a host alone gets the port's default, an
 * IPv6 address may come without brackets when it has no port. The server checks the host. */
static const char *listen_address(const char *in, unsigned default_port, char *out, size_t outlen)
{
    size_t n = strlen(in);
    const char *colon = strrchr(in, ':');
    int k;
    if (n && strspn(in, "0123456789") == n)
        k = snprintf(out, outlen, "127.0.0.1:%s", in);
    else if (in[0] != '[' && colon && strchr(in, ':') != colon)   /* bare IPv6, no port */
        k = snprintf(out, outlen, "[%s]:%u", in, default_port);
    else if (in[0] == ':')
        k = snprintf(out, outlen, "0.0.0.0%s", in);
    else if (in[0] == '[' && in[n - 1] == ']')
        k = snprintf(out, outlen, "%s:%u", in, default_port);
    else if (!colon)
        k = snprintf(out, outlen, "%s:%u", in, default_port);
    else
        k = snprintf(out, outlen, "%s", in);
    return k > 0 && (size_t)k < outlen ? out : in;
}

/* The ports and the limits that protect them. */
static bool parse_server_option(struct args *a, struct config *cfg)
{
    if (opt(a, "--grpc-address")) {
        cfg->grpc_address = listen_address(opt_nonempty(a), 4317, cfg->grpc_address_buf,
                                           sizeof cfg->grpc_address_buf);
    } else if (opt(a, "--http-address")) {
        const char *v = opt_nonempty(a);
        cfg->http_address_set = true;
        cfg->http_address = strcmp(v, "none") == 0 ? NULL
            : listen_address(v, 4318, cfg->http_address_buf, sizeof cfg->http_address_buf);
    } else if (opt(a, "--request-timeout")) {
        cfg->request_timeout_ms = opt_uint(a, 1, 3600) * 1000;
    } else if (opt(a, "--max-message-size")) {
        /* Dictionary offsets are 32-bit: 1 GiB keeps every offset well inside. */
        cfg->max_message_size = opt_size(a, 16, 1u << 30);
    } else if (opt(a, "--max-inflight-bytes")) {
        cfg->max_inflight_bytes = opt_size(a, 1024, SIZE_MAX);
    } else if (opt(a, "--max-connections")) {
        cfg->max_connections = opt_uint(a, 1, 1000000);
    } else if (opt(a, "--max-connections-per-ip")) {
        cfg->max_connections_per_ip = opt_uint(a, 1, 1000000);
    } else if (opt(a, "--max-concurrent-streams")) {
        cfg->max_concurrent_streams = opt_uint(a, 1, 100000);
    } else if (opt(a, "--idle-timeout")) {
        cfg->idle_timeout_ms = opt_uint(a, 0, 86400) * 1000;
    } else if (opt(a, "--shutdown-timeout")) {
        cfg->shutdown_timeout_ms = opt_uint(a, 0, 3600) * 1000;
    } else if (opt(a, "--tls-cert")) {
        cfg->tls_cert = opt_nonempty(a);
    } else if (opt(a, "--tls-key")) {
        cfg->tls_key = opt_nonempty(a);
    } else if (opt(a, "--tls-client-ca")) {
        cfg->tls_client_ca = opt_nonempty(a);
    } else if (opt(a, "--auth-token-file")) {
        cfg->auth_token_file = opt_nonempty(a);
    } else if (flag(a, "--insecure")) {
        cfg->insecure = true;
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
            bad_value(a, v);
    } else if (opt(a, "--check")) {
        static const char *const modes[] = { "off", "log", "strict" };
        static const enum serve_check mode_values[] = { SERVE_CHECK_OFF, SERVE_CHECK_LOG, SERVE_CHECK_STRICT };
        cfg->check = mode_values[opt_choice(a, modes, 3)];
    } else if (opt(a, "--check-groups")) {
        const char *v = opt_value(a);
        char err[256];
        if (!check_groups_parse(v, &cfg->check_groups, err, sizeof err))
            bad_value(a, v);
    } else if (flag(a, "--detect")) {
        cfg->detect_only = true;
    } else if (opt(a, "--input-format")) {
        const char *v = opt_value(a);
        if (!capture_format_parse(v, &cfg->input_format))
            bad_value(a, v);
    } else if (opt(a, "--log-level")) {
        const char *v = opt_value(a);
        int level = log_parse_level(v);
        if (level < 0)
            bad_value(a, v);
        log_set_level((enum log_level)level);
    } else {
        return false;
    }
    return true;
}

/* --help and --version answer and end the process. */
static void answer_info_option(struct args *a)
{
    if (flag(a, "--help") || flag(a, "-h")) {
        usage(stdout);
        exit(0);
    }
    if (flag(a, "--version")) {
        print_version();
        exit(0);
    }
}

/* One option of the command line or of the environment, whichever parser knows it. */
static bool parse_option(struct args *a, void *ud)
{
    struct config *cfg = ud;
    return parse_server_option(a, cfg) || parse_sink_option(a, cfg) || parse_decoder_option(a, cfg);
}

/* Parses options into cfg, in order (a bad one ends the process with status 2 before
 * anything is set up), then the LAZYBACKEND_* variables of the options the command line did
 * not give; the other arguments are collected into `files`. */
void parse_options(int argc, char **argv, int first, struct config *cfg, const char ***files, int *n_files)
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
        if (parse_option(&a, cfg))
            continue;
        if (arg[0] == '-' && arg[1] != 0) {
            fprintf(stderr, "lazybackend: unknown option '%s' (see --help)\n", arg);
            exit(2);
        }
        (*files)[(*n_files)++] = arg;
    }
    args_from_environment(&a, parse_option, cfg);
}

/* What the parsers cannot see one option at a time: combinations, and lists with nothing in
 * them. */
void check_output_options(const struct config *cfg)
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
    if (!cfg->tls_cert != !cfg->tls_key) {
        fprintf(stderr, "lazybackend: --tls-cert and --tls-key go together\n");
        exit(2);
    }
    if (cfg->tls_client_ca && !cfg->tls_cert) {
        fprintf(stderr, "lazybackend: --tls-client-ca needs TLS: add --tls-cert and --tls-key\n");
        exit(2);
    }
    bool stdout_sink = cfg->n_sinks == 0;   /* the default */
    for (size_t i = 0; i < cfg->n_sinks; i++)
        stdout_sink |= strcmp(cfg->sinks[i], "stdout") == 0;
    for (size_t i = 0; i < cfg->n_sinks; i++)
        if (strcmp(cfg->sinks[i], "forward") == 0 && forward_check_options(&cfg->forward, err, sizeof err) != 0) {
            fprintf(stderr, "lazybackend: %s\n", err);
            exit(2);
        }
    if (cfg->stdout_opt.path && !stdout_sink) {
        fprintf(stderr, "lazybackend: --output is where the stdout sink writes: add --sink stdout\n");
        exit(2);
    }
}

/* Under systemd's StateDirectory= (its first directory when it names several), the sqlite
 * store and the ClickHouse spool live there by default: a sandboxed service may write nowhere
 * else. NULL (the plain defaults) when unset or too long. */
static const char *state_path(char *buf, size_t size, const char *file)
{
    const char *dir = getenv("STATE_DIRECTORY");
    if (!dir || !*dir)
        return NULL;
    int k = snprintf(buf, size, "%.*s/%s", (int)strcspn(dir, ":"), dir, file);
    return k > 0 && (size_t)k < size ? buf : NULL;
}

/* The defaults the usage text promises. */
void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->grpc_address = "127.0.0.1:4317";
    cfg->http_address = "127.0.0.1:4318";
    cfg->ui = UI_AUTO;
    cfg->ui_timeout_s = 30;
    cfg->request_timeout_ms = 60 * 1000;
    cfg->max_message_size = 64u << 20;
    cfg->max_inflight_bytes = 256u << 20;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 128;
    cfg->max_concurrent_streams = 100;
    cfg->idle_timeout_ms = 300 * 1000;
    cfg->shutdown_timeout_ms = 10 * 1000;
    cfg->format = STDOUT_FORMAT_TEXT;
    cfg->limits.max_stack_depth = OTLP_DEFAULT_MAX_STACK_DEPTH;
    cfg->check_groups = CHECK_GROUPS_DEFAULT;
    cfg->limits.max_frames_per_request = OTLP_DEFAULT_MAX_FRAMES;
    clickhouse_sink_defaults(&cfg->clickhouse);
    cfg->clickhouse.password = getenv("CLICKHOUSE_PASSWORD");
    cfg->sqlite_path = state_path(cfg->state_sqlite_path, sizeof cfg->state_sqlite_path, "lazybackend.db");
    cfg->clickhouse.spool_dir = state_path(cfg->state_spool_dir, sizeof cfg->state_spool_dir, "clickhouse-spool");
    forward_sink_defaults(&cfg->forward);
    cfg->forward.spool_dir = state_path(cfg->state_forward_dir, sizeof cfg->state_forward_dir, "forward-spool");
}
