/*
 * ui.c - `lazybackend ui`: the web UI (ui/) alone, on a port of its own, over a SQLite store
 * written earlier or being written by a server: a look at profiles without receiving any.
 * One loop, one HTTP server (HTTP/1.1 and h2c) with only the UI's routes, until SIGINT or
 * SIGTERM. With --clickhouse-url the API reads ClickHouse instead (ui/clickhouse.c), over
 * blocking HTTP: fine here, where the loop serves no ingest.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "h2/server.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "ui/ui.h"

#define UI_DEFAULT_ADDRESS "127.0.0.1:4040"

static void usage(FILE *f)
{
    fprintf(f,
"Usage: lazybackend ui [--db FILE | --clickhouse-url URL [--clickhouse-database DB]\n"
"                      [--clickhouse-user USER] [--clickhouse-password PASS]\n"
"                      [--clickhouse-timeout SECONDS]] [--address HOST:PORT]\n"
"\n"
"Serves the web UI (flame graph, top functions, executables, timeline, requests) over a\n"
"database written by `--sink sqlite`, read-only, or over the tables of `--sink clickhouse`.\n"
"Open http://ADDRESS/ in a browser.\n"
"  --db FILE            the database (default " SQLITE_SINK_DEFAULT_PATH ")\n"
"  --clickhouse-url URL read ClickHouse's HTTP interface instead (e.g. http://127.0.0.1:8123)\n"
"  --clickhouse-database DB, --clickhouse-user USER, --clickhouse-password PASS\n"
"                       (or CLICKHOUSE_PASSWORD in the environment)\n"
"  --clickhouse-timeout SECONDS  one ClickHouse answer's bound (default 30; then HTTP 504)\n"
"  --address HOST:PORT  listen address (default " UI_DEFAULT_ADDRESS "; [V6]:PORT for IPv6)\n");
}

static void on_signal(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    (void)ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
            loop_stop(l);
}

int ui_command(int argc, char **argv)
{
    const char *db = NULL, *address = UI_DEFAULT_ADDRESS, *timeout = NULL;
    struct ui_clickhouse ch = { .timeout_s = 30 };
    const struct {
        const char *name;
        const char **dst;
    } opts[] = {
        { "--db", &db }, { "--address", &address }, { "--clickhouse-url", &ch.url },
        { "--clickhouse-database", &ch.database }, { "--clickhouse-user", &ch.user },
        { "--clickhouse-password", &ch.password }, { "--clickhouse-timeout", &timeout },
    };
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const char **dst = NULL, *value = NULL;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !dst; k++) {
            size_t n = strlen(opts[k].name);
            if (!strncmp(a, opts[k].name, n) && (a[n] == '\0' || a[n] == '=')) {
                dst = opts[k].dst;
                value = a[n] == '=' ? a + n + 1 : NULL;
            }
        }
        if (dst && !value && i + 1 < argc)
            value = argv[++i];
        if (!dst || !value || !value[0]) {
            fprintf(stderr, "lazybackend ui: %s '%s' (see --help)\n",
                    dst ? "a value is needed after" : "unknown option", a);
            return 2;
        }
        *dst = value;
    }
    if (timeout) {
        char *end;
        long t = strtol(timeout, &end, 10);
        if (*end || t < 1 || t > 3600) {
            fprintf(stderr, "lazybackend ui: --clickhouse-timeout takes seconds, 1 to 3600 (see --help)\n");
            return 2;
        }
        ch.timeout_s = t;
    }
    if (ch.url && db) {
        fprintf(stderr, "lazybackend ui: --db and --clickhouse-url exclude each other (see --help)\n");
        return 2;
    }
    if (!ch.url && (ch.database || ch.user || ch.password || timeout)) {
        fprintf(stderr, "lazybackend ui: the --clickhouse-* options need --clickhouse-url (see --help)\n");
        return 2;
    }
    if (ch.url && !ch.password)
        ch.password = getenv("CLICKHOUSE_PASSWORD");
    if (!db)
        db = SQLITE_SINK_DEFAULT_PATH;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct loop *loop = loop_new();
    int sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    struct h2_server_config cfg = {
        /* max_message_size bounds answers too: a flame graph of 200 000 nodes fits */
        .address = address, .protocol = H2_SERVER_HTTP, .max_message_size = 64u << 20,
        .max_inflight_bytes = 8u << 20, .max_connections = 256, .max_concurrent_streams = 100,
        .idle_timeout_ms = 300 * 1000,
    };
    struct h2_server *srv = loop ? h2_server_new(loop, &cfg) : NULL;
    struct ui *u = !loop ? NULL : ch.url ? ui_new_clickhouse(loop, &ch) : ui_new(loop, db);
    char err[256] = "out of memory";
    int rc = 1;
    if (sigfd >= 0 && srv && u && loop_add_fd(loop, sigfd, LOOP_READ, on_signal, NULL) == 0 &&
        ui_register(u, srv) == 0 && h2_server_listen(srv, err, sizeof err) == 0) {
        log_info("web UI on http://%s/ over %s", h2_server_address(srv), ch.url ? ch.url : db);
        rc = loop_run(loop) == 0 ? 0 : 1;
        log_info("web UI stopped");
    } else {
        log_error("ui: cannot start: %s", sigfd < 0 ? strerror(errno) : err);
    }
    h2_server_free(srv);
    ui_free(u);
    if (sigfd >= 0) {
        if (loop)
            loop_del_fd(loop, sigfd);
        close(sigfd);
    }
    loop_free(loop);
    return rc;
}
