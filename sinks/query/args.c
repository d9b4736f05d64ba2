/*
 * args.c - the options of `lazybackend top|folded|flamegraph`: the usage text, the
 * times --since and --until take (RFC3339, unix seconds, relative to now), and the checks
 * that refuse an option a command does not take.
 *
 * A bad option is an error with exit status 2 before the database is opened, never a
 * silently different answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "sinks/query/query.h"

const struct group_attr GROUP_EXECUTABLE = { "process.executable.name", { 0, 1, 2 } };
const struct group_attr GROUP_CONTAINER = { "container.id", { 2, 1, 0 } };
const struct group_attr GROUP_THREAD = { "thread.name", { 0, 1, 2 } };

/* ---------- usage ---------- */

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
"Usage: lazybackend top        [STORE] [FILTERS] [--by function|executable|frame-type|container|thread]\n"
"                              [--self|--total] [--limit N] [--format text|json]\n"
"       lazybackend folded     [STORE] [FILTERS] [--root none|executable|container|thread] [--format text|json]\n"
"       lazybackend flamegraph [STORE] [FILTERS] [--root ...] [--title TEXT] [--width PX] > out.svg\n"
"       lazybackend flamegraph [STORE] [FILTERS] [--root ...] --format json\n"
"\n"
"STORE: a database written by `--sink sqlite` (it may be written at the same time), or the\n"
"tables written by `--sink clickhouse`:\n"
"  --db FILE            the SQLite database (default lazybackend.db)\n"
"  --clickhouse-url URL read ClickHouse's HTTP interface instead (http://127.0.0.1:8123)\n"
"  --clickhouse-database NAME   its database (default otel)\n"
"  --clickhouse-user USER, --clickhouse-password PASS (or CLICKHOUSE_PASSWORD in the environment)\n"
"FILTERS (all must hold; repeat an option to accept any of its values):\n"
"  --since T, --until T sample timestamps in [since, until): RFC3339 UTC (2025-10-31T05:09:00Z),\n"
"                       unix seconds (1761887340), or relative to now (-15m, -2h, -30s, -1d)\n"
"  --where KEY=VALUE    an attribute of the sample, its profile or its resource\n"
"                       (container.id=..., process.executable.name=java, thread.name=...)\n"
"  --sample-type TYPE   profiles of this sample type (samples, off_cpu, ...)\n"
"  --frame-type TYPE    stacks with at least one frame of this type (native, kernel, jvm, go, ...)\n"
"top: the heaviest entries; SELF = weight where the entry is the leaf frame, TOTAL = weight of\n"
"     the stacks it appears in (once per stack); sorted by --self (default) or --total;\n"
"     --limit N rows (default 20, 0 = all).\n"
"folded: root;...;leaf weight lines, sorted (flamegraph.pl, speedscope, inferno read them);\n"
"     --root adds the process name, container id or thread name as the root frame.\n"
"flamegraph: a self-contained interactive SVG (hover, click to zoom, Ctrl+F to search).\n"
"--format json: the same answer as one JSON object (docs/queries.md); flamegraph gives the tree.\n"
"\n"
"Usage: lazybackend export [STORE] [FILTERS] [--format otlp|pprof] [--output FILE]\n"
"                         [--to ADDR [--grpc|--http] [--gzip]] [--batch N]\n"
"export: the stored requests, samples as they arrived (docs/export.md); with FILTERS only the\n"
"     matching samples, and with --since/--until only their timestamps (and values) inside.\n"
"     Over ClickHouse, what its tables keep, one request per stored batch.\n"
"  --format otlp        ExportProfilesServiceRequests (v1.11) as a length-prefixed stream\n"
"                       (what decode and send read), or sent with --to (default)\n"
"  --format pprof       gzipped profile.proto for go tool pprof, one file per sample type\n"
"                       (FILE.TYPE.pb.gz; with one --sample-type, FILE itself)\n"
"  --output FILE        where to write (default: stdout for otlp, profile.TYPE.pb.gz for pprof)\n"
"  --to ADDR            send to an OTLP receiver instead: HOST:PORT, :PORT, PORT or a URL;\n"
"                       --grpc (default) or --http, --gzip compresses each request\n"
"  --batch N            stored requests per exported request (default 1)\n");
    (void)cmd;
}

static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "lazybackend: %s needs a value\n", name);
        *bad = true;
        return "";
    }
    return argv[++*i];
}

static bool is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == 0 || a[n] == '=');
}

/* ---------- times: --since, --until ---------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

/* The digits at *p as a fraction of a second in nanoseconds (past the ninth they are read and
 * dropped); *p moves past them. How many digits there were. */
static int fraction_ns(const char **p, int64_t *ns)
{
    int nd = 0;
    int64_t frac = 0;
    for (; isdigit((unsigned char)**p); (*p)++, nd++)
        if (nd < 9)
            frac = frac * 10 + (**p - '0');
    for (int i = nd; i < 9; i++)
        frac *= 10;
    *ns = frac;
    return nd;
}

/* RFC3339: 2025-10-31T05:09:00Z, with optional fraction and a Z or +hh:mm offset. */
static bool parse_rfc3339(const char *s, int64_t *ns)
{
    int Y, M, D, h, m, sec, oh = 0, om = 0;
    const char *p = s;
    if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' || !digits(&p, 2, &D) ||
        (*p != 'T' && *p != 't' && *p != ' ') || !(++p) || !digits(&p, 2, &h) || *p++ != ':' ||
        !digits(&p, 2, &m) || *p++ != ':' || !digits(&p, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return false;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        if (fraction_ns(&p, &frac) == 0)
            return false;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec -
                   sign * (oh * 3600 + om * 60);
    *ns = secs * 1000000000 + frac;
    return true;
}

/* -15m, -2h, -30s, -1d: relative to now. */
static bool parse_relative(const char *s, int64_t *ns)
{
    if (*s != '-' || !isdigit((unsigned char)s[1]))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s + 1, &end, 10);
    int64_t unit;
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return false;
    }
    if (errno || end[1] || v > 100LL * 365 * 86400 / unit)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *ns = ((int64_t)ts.tv_sec - v * unit) * 1000000000 + ts.tv_nsec;
    return true;
}

/* Unix seconds, possibly with a fraction: 1761887340 or 1761887340.5. */
static bool parse_unix(const char *s, int64_t *ns)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v > INT64_MAX / 1000000000 - 1)
        return false;
    const char *rest = end;
    int64_t frac = 0;
    if (*rest == '.') {
        rest++;
        fraction_ns(&rest, &frac);
    }
    if (*rest)
        return false;
    *ns = v * 1000000000 + frac;
    return true;
}

static bool parse_time(const char *s, int64_t *ns)
{
    return parse_rfc3339(s, ns) || parse_relative(s, ns) || parse_unix(s, ns);
}

/* ---------- the options ---------- */

static bool parse_by(const char *v, enum by *by)
{
    static const struct { const char *name; enum by by; } T[] = {
        { "function", BY_FUNCTION }, { "frame-type", BY_FRAME_TYPE }, { "executable", BY_EXECUTABLE },
        { "container", BY_CONTAINER }, { "thread", BY_THREAD },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(v, T[i].name) == 0) {
            *by = T[i].by;
            return true;
        }
    return false;
}

static bool parse_root(const char *v, const struct group_attr **root)
{
    if (strcmp(v, "none") == 0)
        *root = NULL;
    else if (strcmp(v, "executable") == 0)
        *root = &GROUP_EXECUTABLE;
    else if (strcmp(v, "container") == 0)
        *root = &GROUP_CONTAINER;
    else if (strcmp(v, "thread") == 0)
        *root = &GROUP_THREAD;
    else
        return false;
    return true;
}

static bool is_identifier(const char *v)
{
    if (!(isalpha((unsigned char)*v) || *v == '_'))
        return false;
    for (; *v; v++)
        if (!(isalnum((unsigned char)*v) || *v == '_'))
            return false;
    return true;
}

static int bad(const char *name, const char *v)
{
    fprintf(stderr, "lazybackend: invalid value for %s: '%s' (see --help)\n", name, v);
    return 2;
}

static int add_filter(const char **list, size_t *n, const char *name, const char *v)
{
    if (*n == MAX_FILTERS) {
        fprintf(stderr, "lazybackend: at most %d %s options\n", MAX_FILTERS, name);
        return 2;
    }
    list[(*n)++] = v;
    return 0;
}

/* An option only some commands take. */
static int not_for(const struct qopts *o, const char *opt, bool ok)
{
    if (ok)
        return 0;
    fprintf(stderr, "lazybackend %s: %s does not apply here (see --help)\n", o->name, opt);
    return 2;
}

/* export's own options: 0 taken, 2 refused, -1 not one of them. */
static int export_arg(struct qopts *o, int argc, char **argv, int *i, bool *b)
{
    const char *a = argv[*i], *v;
    if (is_opt(a, "--format")) {
        v = opt_value(argc, argv, i, "--format", b);
        if (strcmp(v, "otlp") == 0)
            o->exp.format = EXPORT_OTLP;
        else if (strcmp(v, "pprof") == 0)
            o->exp.format = EXPORT_PPROF;
        else if (!*b)
            return bad("--format (otlp or pprof)", v);
    } else if (is_opt(a, "--output")) {
        o->exp.output = opt_value(argc, argv, i, "--output", b);
    } else if (is_opt(a, "--to")) {
        o->exp.to = opt_value(argc, argv, i, "--to", b);
    } else if (strcmp(a, "--grpc") == 0 || strcmp(a, "--http") == 0) {
        o->exp.http = strcmp(a, "--http") == 0;
    } else if (strcmp(a, "--gzip") == 0) {
        o->exp.gzip = true;
    } else if (is_opt(a, "--batch")) {
        v = opt_value(argc, argv, i, "--batch", b);
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (!*b && (errno || end == v || *end || *v == '-' || u < 1 || u > 1000000))
            return bad("--batch (1 to 1000000)", v);
        o->exp.batch = (size_t)u;
    } else {
        return -1;
    }
    return 0;
}

int q_parse_args(struct qopts *o, int argc, char **argv)
{
    bool b = false, svg_only = false;   /* svg_only: --title or --width, which only the SVG has */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        unsigned long long u;
        char *end;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, o->name);
            exit(0);
        } else if (is_opt(a, "--db")) {
            o->db = opt_value(argc, argv, &i, "--db", &b);
        } else if (is_opt(a, "--format") && o->cmd != CMD_EXPORT) {
            v = opt_value(argc, argv, &i, "--format", &b);
            if (!b && strcmp(v, "text") == 0)
                o->format = QFORMAT_TEXT;
            else if (!b && strcmp(v, "json") == 0)
                o->format = QFORMAT_JSON;
            else if (!b)
                rc = bad("--format", v);
        } else if (is_opt(a, "--clickhouse-url")) {
            v = opt_value(argc, argv, &i, "--clickhouse-url", &b);
            if (!b && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                rc = bad("--clickhouse-url (http:// or https://)", v);
            o->ch_url = v;
        } else if (is_opt(a, "--clickhouse-database")) {
            v = opt_value(argc, argv, &i, "--clickhouse-database", &b);
            if (!b && !is_identifier(v))
                rc = bad("--clickhouse-database ([A-Za-z_][A-Za-z0-9_]*)", v);
            o->ch_database = v;
        } else if (is_opt(a, "--clickhouse-user")) {
            o->ch_user = opt_value(argc, argv, &i, "--clickhouse-user", &b);
        } else if (is_opt(a, "--clickhouse-password")) {
            o->ch_password = opt_value(argc, argv, &i, "--clickhouse-password", &b);
        } else if (is_opt(a, "--by")) {
            v = opt_value(argc, argv, &i, "--by", &b);
            rc = not_for(o, "--by", o->cmd == CMD_TOP);
            if (!rc && !b && !parse_by(v, &o->by))
                rc = bad("--by", v);
        } else if (strcmp(a, "--self") == 0 || strcmp(a, "--total") == 0) {
            rc = not_for(o, a, o->cmd == CMD_TOP);
            o->total = strcmp(a, "--total") == 0;
        } else if (is_opt(a, "--since") || is_opt(a, "--until")) {
            bool since = is_opt(a, "--since");
            v = opt_value(argc, argv, &i, since ? "--since" : "--until", &b);
            if (!b && !parse_time(v, since ? &o->since : &o->until))
                rc = bad(since ? "--since" : "--until", v);
            *(since ? &o->has_since : &o->has_until) = true;
        } else if (is_opt(a, "--where")) {
            v = opt_value(argc, argv, &i, "--where", &b);
            const char *eq = strchr(v, '=');
            if (!b && (!eq || eq == v))
                rc = bad("--where (KEY=VALUE)", v);
            else if (!b && o->n_where == MAX_FILTERS)
                rc = bad("--where (too many)", v);
            else if (!b && !(o->where[o->n_where].key = strndup(v, (size_t)(eq - v))))
                rc = bad("--where (out of memory)", v);
            else if (!b)
                o->where[o->n_where++].value = eq + 1;
        } else if (is_opt(a, "--sample-type")) {
            v = opt_value(argc, argv, &i, "--sample-type", &b);
            rc = add_filter(o->sample_type, &o->n_sample_type, "--sample-type", v);
        } else if (is_opt(a, "--frame-type")) {
            v = opt_value(argc, argv, &i, "--frame-type", &b);
            rc = add_filter(o->frame_type, &o->n_frame_type, "--frame-type", v);
        } else if (is_opt(a, "--limit")) {
            v = opt_value(argc, argv, &i, "--limit", &b);
            rc = not_for(o, "--limit", o->cmd == CMD_TOP);
            errno = 0;
            u = strtoull(v, &end, 10);
            if (!rc && !b && (errno || end == v || *end || *v == '-'))
                rc = bad("--limit", v);
            o->limit = (size_t)u;
        } else if (is_opt(a, "--root")) {
            v = opt_value(argc, argv, &i, "--root", &b);
            rc = not_for(o, "--root", o->cmd == CMD_FOLDED || o->cmd == CMD_FLAMEGRAPH);
            if (!rc && !b && !parse_root(v, &o->root))
                rc = bad("--root", v);
        } else if (is_opt(a, "--title")) {
            o->title = opt_value(argc, argv, &i, "--title", &b);
            svg_only = true;
            rc = not_for(o, "--title", o->cmd == CMD_FLAMEGRAPH);
        } else if (is_opt(a, "--width")) {
            v = opt_value(argc, argv, &i, "--width", &b);
            rc = not_for(o, "--width", o->cmd == CMD_FLAMEGRAPH);
            svg_only = true;
            errno = 0;
            u = strtoull(v, &end, 10);
            if (!rc && !b && (errno || end == v || *end || u < 200 || u > 100000))
                rc = bad("--width", v);
            o->width = (unsigned)u;
        } else if (o->cmd == CMD_EXPORT && (rc = export_arg(o, argc, argv, &i, &b)) >= 0) {
            /* taken (rc 0) or refused (rc 2) */
        } else {
            rc = 0;
            fprintf(stderr, "lazybackend %s: unexpected argument '%s' (see --help)\n", o->name, a);
            rc = 2;
        }
        if (b || rc)
            return 2;
    }
    if (svg_only && o->format == QFORMAT_JSON) {
        fprintf(stderr, "lazybackend %s: --title and --width are the SVG's; --format json has neither\n", o->name);
        return 2;
    }
    if (o->db && o->ch_url) {
        fprintf(stderr, "lazybackend %s: --db and --clickhouse-url name two stores: give one\n", o->name);
        return 2;
    }
    if (!o->ch_url && (o->ch_database || o->ch_user || o->ch_password)) {
        fprintf(stderr, "lazybackend %s: the --clickhouse-* options need --clickhouse-url\n", o->name);
        return 2;
    }
    if (o->ch_url && !o->ch_password)
        o->ch_password = getenv("CLICKHOUSE_PASSWORD");
    if (o->cmd == CMD_EXPORT) {
        o->exp.sample_type = o->n_sample_type ? o->sample_type[0] : NULL;
        if (o->exp.to && (o->exp.output || o->exp.format != EXPORT_OTLP)) {
            fprintf(stderr, "lazybackend export: --to sends OTLP; it goes without --output and --format pprof\n");
            return 2;
        }
        if (o->exp.batch > 1 && o->exp.format != EXPORT_OTLP) {
            fprintf(stderr, "lazybackend export: --batch goes with --format otlp\n");
            return 2;
        }
        if ((o->exp.http || o->exp.gzip) && !o->exp.to) {
            fprintf(stderr, "lazybackend export: --grpc, --http and --gzip go with --to\n");
            return 2;
        }
    }
    if (o->has_since && o->has_until && o->since >= o->until) {
        fprintf(stderr, "lazybackend %s: --since must be before --until\n", o->name);
        return 2;
    }
    return 0;
}

void q_record_cmdline(struct qopts *o, const char *command, int argc, char **argv)
{
    buf_init(&o->cmdline, 4096);
    bool ok = buf_printf(&o->cmdline, "lazybackend %s", command);
    for (int i = 0; ok && i < argc; i++)
        ok = buf_putc(&o->cmdline, ' ') && esc_text(&o->cmdline, argv[i], strlen(argv[i]));
    if (!ok || !buf_putc(&o->cmdline, '\0'))
        buf_free(&o->cmdline);
}

void q_free_args(struct qopts *o)
{
    for (size_t i = 0; i < o->n_where; i++)
        free((void *)o->where[i].key);
    o->n_where = 0;
    buf_free(&o->cmdline);
}

const struct group_attr *q_group_attr(const struct qopts *o)
{
    if (o->cmd != CMD_TOP)
        return o->root;
    switch (o->by) {
    case BY_EXECUTABLE: return &GROUP_EXECUTABLE;
    case BY_CONTAINER: return &GROUP_CONTAINER;
    case BY_THREAD: return &GROUP_THREAD;
    case BY_FUNCTION:
    case BY_FRAME_TYPE: break;
    }
    return NULL;
}
