/*
 * query.h - what `lazybackend top|folded|flamegraph` share whatever store answers them: the
 * options (args.c), the result a store's reader fills (tables.c), and the renderers that turn
 * a result into a table (top.c), folded lines or a flame graph (paths.c, flamegraph.c).
 *
 * A store's reader (sinks/sqlite/query*.c, ...) applies the filters and the time window and
 * hands over weights per (stack, group), stacks as frame lists and frames as interned names;
 * the renderers never know which store it was, so the same data prints the same answer.
 */
#ifndef LB_SINKS_QUERY_H
#define LB_SINKS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/buf.h"
#include "lib/memo.h"

#define MAX_FILTERS 32
#define NONE UINT32_MAX

/* ---- the options (args.c) ---- */

enum cmd { CMD_TOP, CMD_FOLDED, CMD_FLAMEGRAPH, CMD_EXPORT };

/* `lazybackend export`: what the matching samples are written as, and where (cmd/export.c
 * writes; a store replays, sinks/sqlite/replay.h). */
enum export_format { EXPORT_OTLP, EXPORT_PPROF };

struct export_opts {
    enum export_format format;
    const char *output;        /* a file; NULL: stdout (otlp) or "profile" (pprof) */
    const char *to;            /* an OTLP receiver's address, NULL when writing a file */
    bool http, gzip;           /* with --to: OTLP/HTTP instead of gRPC; compress each request */
    size_t batch;              /* stored requests per exported request (>= 1) */
    const char *sample_type;   /* the first --sample-type, or NULL */
};
enum by { BY_FUNCTION, BY_FRAME_TYPE, BY_EXECUTABLE, BY_CONTAINER, BY_THREAD };
enum qformat { QFORMAT_TEXT, QFORMAT_JSON };

/* An attribute used as a grouping key, looked up at the sample, profile and resource levels
 * in the given order (the first level that has it wins). */
struct group_attr {
    const char *key;
    int order[3];   /* 0 sample, 1 profile, 2 resource */
};
extern const struct group_attr GROUP_EXECUTABLE, GROUP_CONTAINER, GROUP_THREAD;

struct where {
    const char *key, *value;
};

struct buf;
struct qresult;

struct qopts {
    enum cmd cmd;
    const char *name;
    const char *db;
    enum by by;
    bool total;
    bool has_since, has_until;
    int64_t since, until;          /* unix ns; since <= t < until */
    struct where where[MAX_FILTERS];
    size_t n_where;
    const char *sample_type[MAX_FILTERS];
    size_t n_sample_type;
    const char *frame_type[MAX_FILTERS];
    size_t n_frame_type;
    size_t limit;
    const struct group_attr *root;  /* folded/flamegraph: a root frame per group; NULL = none */
    const char *title;
    unsigned width;
    struct buf cmdline;             /* the command as typed, for the SVG's subtitle */
    enum qformat format;            /* --format: text (table, lines, SVG) or json */
    /* --clickhouse-url and its companions: read ClickHouse instead of the SQLite file */
    const char *ch_url, *ch_database, *ch_user, *ch_password;
    long ch_timeout_s;              /* a whole answer's bound in seconds; 0 = 600 */
    /* Set: ClickHouse's SQL goes to this instead of a blocking POST (the same answer into out,
     * 0, or -1 with r->err): how a reader on an event loop asks asynchronously and replays the
     * answers (ui/clickhouse.c). */
    int (*ch_ask)(void *ud, const char *sql, struct buf *out, struct qresult *r);
    void *ch_ask_ud;
    struct export_opts exp;         /* export: where and how to write */
};

/* Options: 0, or the exit status (2) after a message on stderr. --help exits. */
int q_parse_args(struct qopts *o, int argc, char **argv);
/* The command as typed, escaped, into o->cmdline (left empty when out of memory). */
void q_record_cmdline(struct qopts *o, const char *command, int argc, char **argv);
/* Frees what q_parse_args allocated. */
void q_free_args(struct qopts *o);
/* What items are grouped by: top's --by (NULL for functions and frame types), folded's and
 * flamegraph's --root (NULL for none). */
const struct group_attr *q_group_attr(const struct qopts *o);

/* ---- small tables (tables.c) ---- */

/* Interned strings: id -> NUL-terminated text; the query's one name space (frame names, frame
 * types, group values). */
struct strtab {
    char **v;
    size_t n, cap;
    uint32_t *slots;   /* id + 1; 0 = empty */
    size_t scap;
};

/* The id of p[0..n) (which holds no NUL), NONE when out of memory. */
uint32_t strtab_intern(struct strtab *t, const char *p, size_t n);
uint32_t strtab_cstr(struct strtab *t, const char *s);
void strtab_free(struct strtab *t);

/* Sums keyed by four integers: (stack, sample set, profile set, resource set) while scanning,
 * then (stack, group) for the answer. */
struct agg_entry {
    int64_t k[4];
    int64_t w;
};

struct aggtab {
    struct agg_entry *v;
    size_t n, cap;
    uint32_t *slots;   /* index + 1 */
    size_t scap;
};

bool agg_add(struct aggtab *a, const int64_t k[4], int64_t w);
void agg_free(struct aggtab *a);

/* Room for one more element in the array v (n used of *cap, each `size` bytes), doubling from
 * `first`: the array, moved or not, or NULL when out of memory (v then still valid). */
void *q_grow(void *v, size_t n, size_t *cap, size_t size, size_t first);

static inline int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* A buffer's bytes, never NULL (an empty buffer may hold no allocation). */
static inline const char *buf_text(const struct buf *b)
{
    return b->data ? (const char *)b->data : "";
}

/* ---- the result a store's reader fills (tables.c) ---- */

struct qframe {
    uint32_t name, type;   /* names ids: the frame as folded stacks name it, its frame type */
};

struct qstack {
    size_t off;        /* into stack_frames, leaf first */
    uint32_t n;
    bool type_ok;      /* passes --frame-type */
};

/* Names are escaped for display (esc_text, as the stdout sink shows them). */
struct qresult {
    struct strtab names;
    uint32_t unknown_type, root_type, unknown_group;   /* "unknown", the root frame's type, "[unknown]" */
    struct qframe *frames;
    size_t n_frames, cap_frames;
    struct qstack *stacks;
    size_t n_stacks, cap_stacks;
    uint32_t *stack_frames;
    size_t n_sf, cap_sf;
    uint32_t frame_types[MAX_FILTERS];   /* names ids of --frame-type */
    /* The answer: weight per (stack index, group name id or NONE, 0, 0). */
    struct aggtab items;
    int64_t total_w;                     /* of the matching samples */
    uint64_t n_samples;
    bool any_unit;                       /* any sample matched */
    char *unit_type, *unit_unit;         /* the one sample type's names, escaped; NULL when mixed */
    char err[512];                       /* the first error */
    /* why a remote store failed, when it did: unreachable or an HTTP error, or too slow */
    enum { Q_UPSTREAM_OK, Q_UPSTREAM_FAILED, Q_UPSTREAM_TIMEOUT } upstream;
};

/* Interns the fixed names and the --frame-type values: 0, or -1 (out of memory, in r->err). */
int qresult_init(struct qresult *r, const struct qopts *o);
void qresult_free(struct qresult *r);
/* Both set r->err (the first error wins) and return -1. */
int qresult_fail(struct qresult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qresult_oom(struct qresult *r);
/* Appends a frame (the index, or -1 out of memory). */
int64_t qresult_add_frame(struct qresult *r, uint32_t name, uint32_t type);
/* Starts a stack (its index, or -1), then adds its frames leaf first; the stack's type_ok
 * follows --frame-type. */
int64_t qresult_begin_stack(struct qresult *r, const struct qopts *o);
int qresult_stack_push(struct qresult *r, const struct qopts *o, int64_t stack, uint32_t frame);

/* ---- the renderers: 0, or -1 with r->err set ---- */
int q_out_top(const struct qopts *o, struct qresult *r, FILE *out);       /* top.c */
int q_out_folded(const struct qopts *o, struct qresult *r, FILE *out);    /* paths.c */
int q_out_flamegraph(const struct qopts *o, struct qresult *r, FILE *out);

/* ---- the command (run.c) ----
 * A store's reader: fills r for the options, 0, or -1 with r->err set. */
typedef int (*query_load_fn)(const struct qopts *o, struct qresult *r);

/* Parses the options, lets choose() pick the reader for them, loads and renders to stdout;
 * the process exit status (2 for bad options, 1 for a failure reported on stderr). */
int query_command_main(const char *command, int argc, char **argv,
                       query_load_fn (*choose)(const struct qopts *o));

/* ---- flame graph (flamegraph.c) ----
 * Weighted stacks in, a self-contained interactive SVG out. Names are indices into `strs`
 * (already escaped for display by esc_text; the writer escapes them for XML). */
struct fg_elem {
    uint32_t name, type;   /* type: the frame type's name, colours the frame */
};
struct fg_path {
    const struct fg_elem *e;   /* root first */
    size_t n;
    int64_t weight;
};
struct fg_options {
    const char *title, *subtitle;
    const char *count_name;    /* "samples", "nanoseconds", ... */
    unsigned width;            /* pixels */
};
/* 0, or -1 (out of memory, or a write error on out). */
int flamegraph_write(FILE *out, const char *const *strs, size_t n_strs, const struct fg_path *paths,
                     size_t n_paths, const struct fg_options *o);

/* ---- --format json (json.c; docs/queries.md) ---- */
/* {"command":...,"samples":N,"weight":W,"sample_type":...,"sample_unit":...,
 * "mixed_sample_types":B  -- the object is left open for the command's own fields */
bool q_json_head(struct buf *b, const struct qopts *o, const struct qresult *r);
bool q_json_name(struct buf *b, const char *s);
bool q_json_double(struct buf *b, double d);
/* Ends a JSON answer built in b (ok: every piece fitted): b written to out, then freed. 0, or
 * -1 with r->err set (out of memory when !ok, or the write failed). */
int q_json_finish(struct qresult *r, struct buf *b, bool ok, FILE *out);
/* --root as a word: none, executable, container, thread */
const char *q_root_name(const struct qopts *o);
/* The flame graph as a tree of {"name","type","value","children"}, merged like the SVG's. */
int q_flamegraph_json(const struct qopts *o, struct qresult *r, const struct fg_path *paths, size_t n_paths,
                      FILE *out);

#endif
