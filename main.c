/*
 * main.c - lazybackend: picks the command and runs it.
 *
 *   lazybackend [serve] [options]        receive OTLP profiles and traces over gRPC and
 *                                        OTLP/HTTP, write them to sinks (cmd/serve.c)
 *   lazybackend decode [options] FILE... the same decoder and sinks on captured payloads
 *                                        (cmd/decode.c)
 *   lazybackend send [options] FILE...   captured payloads to a running server (cmd/send.c)
 *   lazybackend usdt [options]           USDT probes through bpftrace as OTLP spans (cmd/usdt.c)
 *   lazybackend check [options] FILE...  the conformance verdict on captured payloads
 *                                        (cmd/check.c)
 *   lazybackend top|folded|flamegraph    queries of a SQLite or ClickHouse store (cmd/query.c)
 *   lazybackend ui [options]             the web UI over a SQLite store (cmd/ui.c, ui/)
 *   lazybackend export [options]         a SQLite store as OTLP or pprof (cmd/export.c)
 *
 * Only wiring: the commands live in cmd/ (cmd/cmd.h says which file holds what). Every
 * option is parsed (and refused, with exit status 2) before anything is set up
 * (cmd/options.c); after that, every startup failure goes through app_teardown(), which
 * gives back whatever exists.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/options.h"

/* The query commands read a store and have options of their own. */
static bool is_query_command(int argc, char **argv)
{
    return argc > 1 && (strcmp(argv[1], "top") == 0 || strcmp(argv[1], "folded") == 0 ||
                        strcmp(argv[1], "flamegraph") == 0);
}

/* serve (the default), decode, or a query command; options first, then the work. */
int main(int argc, char **argv)
{
    if (is_query_command(argc, argv))
        return query_command(argv[1], argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "send") == 0)
        return send_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "export") == 0)
        return export_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "usdt") == 0)
        return usdt_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "ui") == 0)
        return ui_command(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        return check_command(argc - 2, argv + 2);
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
        rc = serve_command(&app);
    }
    free(files);
    return rc;
}
