/*
 * usdt_config.c - the command line and the environment of `lazybackend usdt`.
 *
 * Why both here: the export is configured the way every OpenTelemetry exporter is (the
 * OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
 * variables, so a deployment of the Go bridge keeps working), and the flags override them
 * where both exist. --help and the parser sit side by side so every flag taken is listed.
 * A bad flag is refused with exit status 2 before anything starts; a bad environment value
 * is a warning and its default is used, as the specification asks.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/usdt_internal.h"
#include "lib/log.h"

static void usage(FILE *out)
{
    fprintf(out,
"Usage: lazybackend usdt (--pid PID | --binary PATH | --script FILE | --input FILE) [OPTIONS]\n"
"\n"
"Runs bpftrace on a program's USDT probes request_start(reqid, start_ns) and\n"
"request_end(reqid, start_ns, duration_ns), pairs them by request id into spans and exports\n"
"them over OTLP/HTTP (by default to a local lazybackend). See docs/usdt.md.\n"
"\n"
"Where the events come from (--name value or --name=value):\n"
"  --pid PID                the process to trace (the probes of its executable, or of --binary)\n"
"  --binary PATH            the file holding the probes (an executable or a shared library);\n"
"                           without --pid, every process running it\n"
"  --provider NAME          the probes' provider (default lazyapp)\n"
"  --start-probe NAME       the probe firing (reqid, start_ns) (default request_start)\n"
"  --end-probe NAME         the probe firing (reqid, start_ns, duration_ns) (default request_end)\n"
"  --reqid str|int          arg0 is a C string (default) or a 64-bit integer\n"
"  --script FILE            your own bpftrace script printing the same events (with -p PID\n"
"                           when --pid is given)\n"
"  --input FILE|-           bpftrace's JSON lines (or bare event lines) from a file, no bpftrace\n"
"  --bpftrace PATH          the bpftrace program (default: bpftrace on PATH)\n"
"  --print-script           print the built-in script for --pid/--binary and exit\n"
"  --max-line-size BYTES    longest line read; longer ones are counted and skipped (default 1048576)\n"
"\n"
"Pairing:\n"
"  --ttl SECONDS            a start whose end has not come in this time is given up (default 300)\n"
"  --grace-ms MS            an end waits this long for its start (default 1000)\n"
"  --max-open N             requests tracked at once (default 65536); the oldest make room\n"
"  --unfinished export|drop given-up starts: exported with status ERROR (default) or counted\n"
"\n"
"Export:\n"
"  --endpoint URL           the receiver's base URL; /v1/traces is appended (default: the\n"
"                           OTEL_EXPORTER_OTLP_* variables, else http://127.0.0.1:4318)\n"
"  --protocol http/protobuf|http/json   (default http/protobuf)\n"
"  --gzip                   compress each request\n"
"  --span-name NAME         the spans' name (default http.request)\n"
"  --dry-run                parse, pair and encode, send nothing\n"
"  --shutdown-timeout SECONDS  on SIGINT/SIGTERM or when bpftrace ends: time to send what is\n"
"                           left (default 10)\n"
"  --log-level debug|info|warn|error|off   (default info)\n"
"  --help                   this text\n"
"\n"
"Environment: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,\n"
"OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (ms),\n"
"OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION,\n"
"OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_SCHEDULE_DELAY (ms),\n"
"OTEL_BSP_EXPORT_TIMEOUT (ms), OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE.\n"
"\n"
"Exit status: 0 when every span was delivered; bpftrace's own status when it failed; 1 when\n"
"bpftrace could not start or spans were lost; 2 for bad options.\n");
}

/* ---------------------------------------------------------------- values */

/* A decimal integer in [min, max]. */
static bool number(const char *s, long long min, long long max, long long *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!s[0] || *end || errno || x < min || x > max)
        return false;
    *v = x;
    return true;
}

/* A C identifier, as bpftrace takes provider and probe names. */
static bool identifier(const char *s)
{
    if (!s[0] || strlen(s) > 128 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')))
            return false;
    return true;
}

/* The signal-specific variable, else the generic one, else NULL. */
static const char *otlp_env(const char *what)
{
    char name[96];
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_TRACES_%s", what);
    const char *v = getenv(name);
    if (v && v[0])
        return v;
    snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s", what);
    v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* A millisecond or count variable in [min, max]; a bad value is a warning and `def`. */
static uint64_t env_number(const char *name, uint64_t def, long long min, long long max)
{
    const char *v = getenv(name);
    long long x;
    if (!v || !v[0])
        return def;
    if (!number(v, min, max, &x)) {
        log_warn("usdt: %s=%s: not a number in [%lld, %lld]; using %llu", name, v, min, max, (unsigned long long)def);
        return def;
    }
    return (uint64_t)x;
}

/* ---------------------------------------------------------------- the environment */

static int read_environment(struct usdt_config *c)
{
    const char *v = otlp_env("TIMEOUT");
    long long x;
    c->timeout_ms = 10000;
    if (v && number(v, 0, 86400000, &x))
        c->timeout_ms = (uint64_t)x;
    else if (v)
        log_warn("usdt: OTEL_EXPORTER_OTLP_TIMEOUT=%s: not milliseconds; using 10000", v);
    if ((v = otlp_env("PROTOCOL")) && strcmp(v, "http/json") == 0)
        c->json = true;
    else if (v && strcmp(v, "http/protobuf") != 0)
        log_warn("usdt: OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf and http/json are spoken; using "
                 "http/protobuf", v);
    if ((v = otlp_env("COMPRESSION")) && strcmp(v, "gzip") == 0)
        c->gzip = true;
    else if (v && strcmp(v, "none") != 0)
        log_warn("usdt: OTEL_EXPORTER_OTLP_COMPRESSION=%s: gzip or none; using none", v);
    c->schedule_delay_ms = env_number("OTEL_BSP_SCHEDULE_DELAY", 5000, 1, 3600000);
    c->export_timeout_ms = env_number("OTEL_BSP_EXPORT_TIMEOUT", 30000, 0, 3600000);
    c->max_queue = (size_t)env_number("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20);
    c->max_batch = (size_t)env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1 << 20);
    if (c->max_batch > c->max_queue) {
        log_warn("usdt: OTEL_BSP_MAX_EXPORT_BATCH_SIZE %zu is more than OTEL_BSP_MAX_QUEUE_SIZE %zu; using %zu",
                 c->max_batch, c->max_queue, c->max_queue);
        c->max_batch = c->max_queue;
    }

    unsigned bad = 0;
    int n = usdt_kv_parse(otlp_env("HEADERS"), c->headers, USDT_MAX_HEADERS, &bad);
    if (n < 0)
        return -1;
    c->n_headers = (size_t)n;
    if (bad)
        log_warn("usdt: OTEL_EXPORTER_OTLP_HEADERS: %u entries left out (not key=value, a key that is not a "
                 "header name, control bytes, or more than %d)", bad, USDT_MAX_HEADERS);
    /* the last slot is kept for service.name */
    n = usdt_kv_parse(getenv("OTEL_RESOURCE_ATTRIBUTES"), c->resource, USDT_MAX_RESOURCE - 1, &bad);
    if (n < 0)
        return -1;
    c->n_resource = (size_t)n;
    if (bad)
        log_warn("usdt: OTEL_RESOURCE_ATTRIBUTES: %u entries left out", bad);
    const char *service = getenv("OTEL_SERVICE_NAME");
    if (service && service[0]) {
        size_t i = 0;
        while (i < c->n_resource && strcmp(c->resource[i].key, "service.name") != 0)
            i++;
        char *k = strdup("service.name"), *val = strdup(service);
        if (!k || !val) {
            free(k);
            free(val);
            return -1;
        }
        if (i < c->n_resource)
            usdt_kv_free(&c->resource[i], 1);
        else
            c->n_resource++;
        c->resource[i] = (struct usdt_kv){ k, val };
    }
    return 0;
}

/* ---------------------------------------------------------------- flags */

static int bad_value(const char *name, const char *v)
{
    fprintf(stderr, "lazybackend usdt: invalid value for %s: '%s' (see --help)\n", name, v);
    return 2;
}

/* The flags into c; --endpoint and --protocol are kept aside until the environment is read
 * (the flags win). -1 to go on, else the exit status. */
static int read_flags(int argc, char **argv, struct usdt_config *c, const char **endpoint, const char **protocol)
{
    for (int i = 0; i < argc; i++) {
        char *a = argv[i], *eq = strchr(a, '='), name[64];
        const char *v = NULL;
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || nlen >= sizeof name) {
            fprintf(stderr, "lazybackend usdt: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        memcpy(name, a, nlen);
        name[nlen] = 0;
        static const char *const switches[] = { "--help", "--gzip", "--dry-run", "--print-script" };
        bool is_switch = false;
        for (size_t k = 0; k < sizeof switches / sizeof switches[0]; k++)
            is_switch |= strcmp(name, switches[k]) == 0;
        if (is_switch && eq) {
            fprintf(stderr, "lazybackend usdt: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!is_switch) {
            v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) {
                fprintf(stderr, "lazybackend usdt: %s needs a value (see --help)\n", name);
                return 2;
            }
        }
        long long x;
        if (strcmp(name, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(name, "--gzip") == 0) {
            c->gzip = true;
        } else if (strcmp(name, "--dry-run") == 0) {
            c->dry_run = true;
        } else if (strcmp(name, "--print-script") == 0) {
            c->print_script = true;
        } else if (strcmp(name, "--pid") == 0) {
            if (!number(v, 1, INT_MAX, &x))
                return bad_value(name, v);
            c->pid = (long)x;
        } else if (strcmp(name, "--binary") == 0 || strcmp(name, "--script") == 0 || strcmp(name, "--input") == 0 ||
                   strcmp(name, "--bpftrace") == 0) {
            if (!v[0])
                return bad_value(name, v);
            if (strcmp(name, "--binary") == 0)
                c->binary = v;
            else if (strcmp(name, "--script") == 0)
                c->script = v;
            else if (strcmp(name, "--input") == 0)
                c->input = v;
            else
                c->bpftrace = v;
        } else if (strcmp(name, "--provider") == 0 || strcmp(name, "--start-probe") == 0 ||
                   strcmp(name, "--end-probe") == 0) {
            if (!identifier(v))
                return bad_value(name, v);
            if (strcmp(name, "--provider") == 0)
                c->provider = v;
            else if (strcmp(name, "--start-probe") == 0)
                c->start_probe = v;
            else
                c->end_probe = v;
        } else if (strcmp(name, "--reqid") == 0) {
            if (strcmp(v, "str") != 0 && strcmp(v, "int") != 0)
                return bad_value(name, v);
            c->reqid_int = v[0] == 'i';
        } else if (strcmp(name, "--max-line-size") == 0) {
            if (!number(v, 256, 64 << 20, &x))
                return bad_value(name, v);
            c->max_line = (size_t)x;
        } else if (strcmp(name, "--ttl") == 0) {
            if (!number(v, 1, 86400 * 7, &x))
                return bad_value(name, v);
            c->pair.ttl_ms = (uint64_t)x * 1000;
        } else if (strcmp(name, "--grace-ms") == 0) {
            if (!number(v, 0, 600000, &x))
                return bad_value(name, v);
            c->pair.grace_ms = (uint64_t)x;
        } else if (strcmp(name, "--max-open") == 0) {
            if (!number(v, 1, 1 << 24, &x))
                return bad_value(name, v);
            c->pair.max_open = (size_t)x;
        } else if (strcmp(name, "--unfinished") == 0) {
            if (strcmp(v, "export") != 0 && strcmp(v, "drop") != 0)
                return bad_value(name, v);
            c->drop_unfinished = v[0] == 'd';
        } else if (strcmp(name, "--endpoint") == 0) {
            *endpoint = v;
        } else if (strcmp(name, "--protocol") == 0) {
            if (strcmp(v, "http/protobuf") != 0 && strcmp(v, "http/json") != 0)
                return bad_value(name, v);
            *protocol = v;
        } else if (strcmp(name, "--span-name") == 0) {
            if (!v[0] || strlen(v) > 256)
                return bad_value(name, v);
            c->span_name = v;
        } else if (strcmp(name, "--shutdown-timeout") == 0) {
            if (!number(v, 0, 3600, &x))
                return bad_value(name, v);
            c->shutdown_timeout_ms = (uint64_t)x * 1000;
        } else if (strcmp(name, "--log-level") == 0) {
            int level = log_parse_level(v);
            if (level < 0)
                return bad_value(name, v);
            log_set_level((enum log_level)level);
        } else {
            fprintf(stderr, "lazybackend usdt: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    return -1;
}

/* Options that only make sense together. */
static int check(struct usdt_config *c)
{
    bool traced = c->pid || c->binary || c->script;
    if (c->input && traced) {
        fprintf(stderr, "lazybackend usdt: --input replays a file; it takes no --pid, --binary or --script\n");
        return 2;
    }
    if (!c->input && !traced) {
        fprintf(stderr, "lazybackend usdt: what to trace? Give --pid PID, --binary PATH, --script FILE, or --input "
                        "FILE (see --help)\n");
        return 2;
    }
    if (c->print_script && (c->script || c->input || !(c->pid || c->binary))) {
        fprintf(stderr, "lazybackend usdt: --print-script prints the built-in script: give --pid or --binary\n");
        return 2;
    }
    return -1;
}

int usdt_config_parse(int argc, char **argv, struct usdt_config *c)
{
    memset(c, 0, sizeof *c);
    c->bpftrace = "bpftrace";
    c->provider = "lazyapp";
    c->start_probe = "request_start";
    c->end_probe = "request_end";
    c->span_name = "http.request";
    c->max_line = 1 << 20;
    c->pair = (struct usdt_pair_options){ .max_open = 65536, .ttl_ms = 300000, .grace_ms = 1000 };
    c->shutdown_timeout_ms = 10000;
    const char *endpoint = NULL, *protocol = NULL;
    int rc = read_flags(argc, argv, c, &endpoint, &protocol);
    if (rc >= 0 || (rc = check(c)) >= 0)
        return rc;
    if (read_environment(c) != 0) {
        fprintf(stderr, "lazybackend usdt: out of memory\n");
        return 1;
    }
    if (protocol)
        c->json = strcmp(protocol, "http/json") == 0;
    const char *traces = endpoint ? NULL : getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = endpoint ? endpoint : getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (usdt_traces_url(base, traces, c->url, sizeof c->url) != 0) {
        fprintf(stderr, "lazybackend usdt: %s %s: expected http://HOST:PORT[/PATH] or HOST:PORT\n",
                endpoint ? "--endpoint" : traces && traces[0] ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                                                             : "OTEL_EXPORTER_OTLP_ENDPOINT",
                endpoint ? endpoint : traces && traces[0] ? traces : base);
        return 2;
    }
    return -1;
}

void usdt_config_free(struct usdt_config *c)
{
    usdt_kv_free(c->headers, c->n_headers);
    usdt_kv_free(c->resource, c->n_resource);
    c->n_headers = c->n_resource = 0;
}
