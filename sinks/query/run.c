/*
 * run.c - one query command from argv to stdout: parse the options, load the result with the
 * reader chosen for them (a store's), render it, report the first error.
 *
 * Exit statuses: 0 answered, 1 failed (the reason on stderr as `lazybackend CMD: ...`), 2 bad
 * options (args.c's message).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sinks/query/query.h"

static int render(const struct qopts *o, struct qresult *r, FILE *out)
{
    switch (o->cmd) {
    case CMD_TOP: return q_out_top(o, r, out);
    case CMD_FOLDED: return q_out_folded(o, r, out);
    case CMD_FLAMEGRAPH: return q_out_flamegraph(o, r, out);
    case CMD_EXPORT: break;   /* not a query: cmd/export.c */
    }
    return -1;
}

int query_command_main(const char *command, int argc, char **argv,
                       query_load_fn (*choose)(const struct qopts *o))
{
    struct qopts o = { .name = command, .limit = 20, .width = 1200 };
    if (strcmp(command, "top") == 0)
        o.cmd = CMD_TOP;
    else if (strcmp(command, "folded") == 0)
        o.cmd = CMD_FOLDED;
    else if (strcmp(command, "flamegraph") == 0)
        o.cmd = CMD_FLAMEGRAPH;
    else
        return 2;
    int rc = q_parse_args(&o, argc, argv);
    if (rc == 0) {
        q_record_cmdline(&o, command, argc, argv);
        struct qresult r = { 0 };
        query_load_fn load = choose(&o);
        rc = 1;
        if (qresult_init(&r, &o) == 0 && load && load(&o, &r) == 0 && render(&o, &r, stdout) == 0)
            rc = 0;
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
            qresult_fail(&r, "writing the output: %s", strerror(errno));
            rc = 1;
        }
        if (rc != 0)
            fprintf(stderr, "lazybackend %s: %s\n", command, r.err[0] ? r.err : "failed");
        qresult_free(&r);
    }
    q_free_args(&o);
    return rc;
}
