/*
 * options.h - struct config: everything the command line of `lazybackend [serve]` and
 * `lazybackend decode` says, and the three steps that fill it (options.c).
 *
 * Why a header of its own: the configuration is complete and checked before anything is
 * set up, and only then does main.c hand it (inside struct app, cmd.h) to a command; the
 * parser needs nothing of what the commands build.
 */
#ifndef LB_CMD_OPTIONS_H
#define LB_CMD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cmd/capture.h"
#include "otlp/decode.h"
#include "otlp/layout.h"
#include "sinks/filter.h"
#include "sinks/stdout/stdout.h"
#include "sinks/sqlite/sqlite.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/forward/forward.h"

#include "cmd/version.h"

#define MAX_SINKS 8

/* --check: off; log each request's verdict (and count it); strict: also refuse a request
 * with findings, as a partial success that rejects all its profiles. */
enum serve_check { SERVE_CHECK_OFF, SERVE_CHECK_LOG, SERVE_CHECK_STRICT };

struct config {
    const char *grpc_address;
    const char *http_address;                  /* NULL: no HTTP port (--http-address none) */
    bool http_address_set;                     /* given: failing to listen there is fatal */
    char grpc_address_buf[96], http_address_buf[96];   /* given addresses, normalised */
    unsigned request_timeout_ms;
    size_t max_message_size;
    size_t max_inflight_bytes;
    unsigned max_connections, max_connections_per_ip, max_concurrent_streams;
    unsigned idle_timeout_ms, shutdown_timeout_ms;
    const char *sinks[MAX_SINKS];
    size_t n_sinks;
    enum stdout_format format;
    struct stdout_sink_options stdout_opt;     /* --output, detail switches, --folded-root */
    bool stdout_detail_set;                    /* a detail switch was given */
    struct filter_config filter;
    const char *sqlite_path;                   /* NULL: the sink's default */
    char state_sqlite_path[4096], state_spool_dir[4096];   /* defaults in $STATE_DIRECTORY */
    enum sqlite_sync sqlite_sync;
    enum { UI_AUTO, UI_ON, UI_OFF } ui;        /* --ui: the web UI on the HTTP port (auto:
                                                * when that port is loopback) */
    unsigned ui_timeout_s;                     /* --ui-timeout: an API call over ClickHouse */
    struct clickhouse_sink_options clickhouse;
    struct forward_sink_options forward;
    char state_forward_dir[4096];              /* the forward sink's log in $STATE_DIRECTORY */
    struct otlp_limits limits;
    const struct otlp_layout *proto_version;   /* NULL: detect per request */
    bool detect_only;                          /* decode --detect */
    enum capture_format input_format;          /* decode --input-format (auto: by content) */
    const char *tls_cert, *tls_key;            /* --tls-cert, --tls-key: TLS on both ports */
    const char *tls_client_ca;                 /* --tls-client-ca: client certificates required */
    const char *auth_token_file;               /* --auth-token-file: bearer tokens required */
    bool insecure;                             /* --insecure: beyond loopback without either */
    enum serve_check check;                    /* --check: conformance checks of each request */
    unsigned check_groups;                     /* --check-groups (otlp/check.h) */
};

/* The defaults the usage text promises (and CLICKHOUSE_PASSWORD, STATE_DIRECTORY from the
 * environment). */
void config_defaults(struct config *cfg);

/* Parses argv[first..] into cfg, in order, then the LAZYBACKEND_* variables naming options
 * the command line did not give; --help and --version answer and exit 0, a bad option or
 * variable ends the process with status 2 before anything is set up. The other arguments are
 * collected into `*files` (a calloc'ed array the caller frees). */
void parse_options(int argc, char **argv, int first, struct config *cfg, const char ***files, int *n_files);

/* Combinations of options (and empty lists) the parser cannot see one option at a time:
 * refused with status 2, like a bad option. */
void check_output_options(const struct config *cfg);

#endif
