/*
 * check.c - `lazybackend check [options] FILE...`: the conformance verdict (otlp/check.h) on
 * captured requests, without a server.
 *
 * Why: a sender's author wants to know whether what their code emits is well-formed OTLP
 * before anything receives it, in the terms of the profiling SIG's checker (profcheck), but
 * on the captures they have (a Collector's file exporter output, a saved request body), in
 * any layout. The files are read by capture.c exactly as `decode` reads them.
 *
 * Exit status: 0 when every request is clean, 1 when any has a finding, 2 when a file or a
 * request could not be read (or bad options).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/capture.h"
#include "cmd/cmd.h"
#include "lib/buf.h"
#include "lib/escape.h"
#include "otlp/check.h"

struct check_cli {
    struct check_options opt;
    bool json;
    enum capture_format input_format;
    size_t max_message_size;
    struct otlp_checker *checker;
    bool findings, unreadable;
    struct buf line;
};

static void check_usage(FILE *out)
{
    fprintf(out,
"Usage: lazybackend check [OPTIONS] FILE...\n"
"\n"
"Checks that each request of each FILE (- for stdin) is conformant OTLP profiles, with the\n"
"rules of the profiling SIG's conformance checker (profcheck), and prints every finding with\n"
"where it is in the request and its rule. FILE is read as `lazybackend decode` reads it: one\n"
"protobuf request or a length-prefixed stream of them, or OTLP/JSON, gzipped or not.\n"
"\n"
"  --format text|json       one line per finding, or one JSON object per request (default text)\n"
"  --groups LIST            rule groups: core, sample-shape, duplicates, orphans, strict, default,\n"
"                           all; -NAME removes one (default: default = core,sample-shape)\n"
"  --max-findings N         findings described per request; all are counted (default 1000)\n"
"  --proto-version auto|v1.11|v1.10|v1.9|v1.8|v1.7   the layout to read (default auto)\n"
"  --input-format auto|proto|json   what FILE holds (default auto: JSON when it starts with '{')\n"
"  --max-message-size SIZE  largest request read from a file, in bytes (default 64MiB)\n"
"\n"
"Exit status: 0 when every request is clean, 1 when any has a finding, 2 when a file or a\n"
"request cannot be read, or for bad options. The rules: docs/check.md.\n");
}

static const char *verdict_word(enum check_verdict v)
{
    switch (v) {
    case CHECK_CLEAN: return "clean";
    case CHECK_FINDINGS: return "findings";
    case CHECK_UNREADABLE: return "unreadable";
    default: return "out-of-memory";
    }
}

static void print_json(struct check_cli *cli, const struct capture_request *cr, const struct check_report *r)
{
    struct buf *b = &cli->line;
    buf_reset(b);
    char groups[128];
    check_groups_format(cli->opt.groups, groups, sizeof groups);
    buf_printf(b, "{\"file\":");
    esc_json_quoted(b, cr->name, strlen(cr->name));
    buf_printf(b, ",\"request\":%u,\"layout\":\"%s\",\"groups\":\"%s\",\"verdict\":\"%s\",\"findings_total\":%llu",
               cr->index, r->layout, groups, verdict_word(r->verdict), (unsigned long long)r->n_findings);
    if (r->verdict == CHECK_UNREADABLE || r->verdict == CHECK_NOMEM) {
        buf_printf(b, ",\"error\":");
        esc_json_quoted(b, r->error, strlen(r->error));
    }
    buf_printf(b, ",\"findings\":[");
    for (size_t i = 0; i < r->n_kept; i++) {
        const struct check_finding *f = &r->findings[i];
        const struct check_rule *rule = &check_rules[f->rule];
        buf_printf(b, "%s{\"rule\":\"%s\",\"group\":\"%s\",\"profcheck\":", i ? "," : "", rule->id,
                   check_group_name(rule->group));
        if (rule->profcheck)
            buf_printf(b, "\"%s\"", rule->profcheck);
        else
            buf_printf(b, "null");
        buf_printf(b, ",\"path\":");
        esc_json_quoted(b, f->path, strlen(f->path));
        buf_printf(b, ",\"message\":");
        esc_json_quoted(b, f->message, strlen(f->message));
        buf_printf(b, "}");
    }
    buf_printf(b, "]}\n");
    fwrite(b->data, 1, b->len, stdout);
}

static void print_text(struct check_cli *cli, const struct capture_request *cr, const struct check_report *r)
{
    if (r->verdict == CHECK_UNREADABLE || r->verdict == CHECK_NOMEM) {
        fprintf(stderr, "lazybackend check: %s: request %u: not checked: %s\n", cr->name, cr->index, r->error);
        return;
    }
    for (size_t i = 0; i < r->n_kept; i++) {
        char line[700];
        check_finding_format(&r->findings[i], line, sizeof line);
        printf("%s: request %u: %s\n", cr->name, cr->index, line);
    }
    if (r->n_findings > r->n_kept)
        printf("%s: request %u: ... and %llu more finding(s), counted but not described\n", cr->name,
               cr->index, (unsigned long long)(r->n_findings - r->n_kept));
    char groups[128];
    check_groups_format(cli->opt.groups, groups, sizeof groups);
    if (r->verdict == CHECK_CLEAN)
        printf("%s: request %u: conformance checks passed (layout %s; groups %s)\n", cr->name, cr->index,
               r->layout, groups);
    else
        printf("%s: request %u: %llu conformance finding(s) (layout %s; groups %s)\n", cr->name, cr->index,
               (unsigned long long)r->n_findings, r->layout, groups);
}

static int check_one(void *ud, const struct capture_request *cr)
{
    struct check_cli *cli = ud;
    if (cr->json && cli->opt.layout && cli->opt.layout != &otlp_layout_v1_11) {
        fprintf(stderr, "lazybackend check: %s: request %u: OTLP/JSON is read as v1.11, not as the pinned %s\n",
                cr->name, cr->index, cli->opt.layout->name);
        cli->unreadable = true;
        return 0;
    }
    const struct check_report *r = otlp_check(cli->checker, cr->msg, cr->len, &cli->opt);
    cli->findings |= r->verdict == CHECK_FINDINGS;
    cli->unreadable |= r->verdict == CHECK_UNREADABLE || r->verdict == CHECK_NOMEM;
    if (cli->json)
        print_json(cli, cr, r);
    else
        print_text(cli, cr, r);
    fflush(stdout);
    return 0;
}

/* -1 to go on, else the exit status. */
static int parse_check_options(int argc, char **argv, struct check_cli *cli, const char ***files, int *n_files)
{
    *files = calloc((size_t)argc + 1, sizeof **files);
    *n_files = 0;
    if (!*files)
        return 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char err[256];
        if (strcmp(a, "--help") == 0) {
            check_usage(stdout);
            return 0;
        } else if (strcmp(a, "--format") == 0 && v && (strcmp(v, "text") == 0 || strcmp(v, "json") == 0)) {
            cli->json = strcmp(argv[++i], "json") == 0;
        } else if (strcmp(a, "--groups") == 0 && v) {
            if (!check_groups_parse(argv[++i], &cli->opt.groups, err, sizeof err)) {
                fprintf(stderr, "lazybackend check: --groups: %s\n", err);
                return 2;
            }
        } else if (strcmp(a, "--max-findings") == 0 && v && atol(v) > 0 && atol(v) <= 1000000) {
            cli->opt.max_findings = (size_t)atol(argv[++i]);
        } else if (strcmp(a, "--proto-version") == 0 && v &&
                   (strcmp(v, "auto") == 0 || otlp_layout_find(v))) {
            cli->opt.layout = otlp_layout_find(argv[++i]);
        } else if (strcmp(a, "--input-format") == 0 && v && capture_format_parse(v, &cli->input_format)) {
            i++;
        } else if (strcmp(a, "--max-message-size") == 0 && v && strtoull(v, NULL, 10) >= 16 &&
                   strtoull(v, NULL, 10) <= (1u << 30)) {
            cli->max_message_size = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lazybackend check: bad option or value: %s%s%s (see --help)\n", a, v ? " " : "",
                    v && v[0] != '-' ? v : "");
            return 2;
        } else {
            (*files)[(*n_files)++] = a;
        }
    }
    return -1;
}

int check_command(int argc, char **argv)
{
    struct check_cli cli;
    memset(&cli, 0, sizeof cli);
    cli.opt.groups = CHECK_GROUPS_DEFAULT;
    cli.input_format = CAPTURE_AUTO;
    cli.max_message_size = 64u << 20;
    const char **files;
    int n_files;
    int rc = parse_check_options(argc, argv, &cli, &files, &n_files);
    if (rc >= 0) {
        free(files);
        return rc;
    }
    if (n_files == 0) {
        fprintf(stderr, "lazybackend check: no input (give FILE... or - for stdin)\n");
        free(files);
        return 2;
    }
    cli.checker = otlp_checker_new();
    if (!cli.checker) {
        fprintf(stderr, "lazybackend check: out of memory\n");
        free(files);
        return 2;
    }
    buf_init(&cli.line, (size_t)64 << 20);
    for (int i = 0; i < n_files; i++)
        if (capture_read("lazybackend check", files[i], cli.input_format, OTLP_JSON_PROFILES_REQUEST,
                         cli.max_message_size, check_one, &cli) != 0)
            cli.unreadable = true;
    otlp_checker_free(cli.checker);
    buf_free(&cli.line);
    free(files);
    return cli.unreadable ? 2 : cli.findings ? 1 : 0;
}
