/*
 * store.h - what the UI's files share: the query parameters of the API (params.c), the
 * read side of the SQLite store as the UI needs it (store.c: rollup rows filtered, stacks and
 * frames by id), and the JSON answers (views.c).
 */
#ifndef LB_UI_STORE_H
#define LB_UI_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "sinks/sqlite/internal.h"

/* ---- parameters (params.c) ---- */

enum { UI_MAX_LIST = 16, UI_MAX_ATTRS = 4, UI_VALUE_MAX = 256 };

enum ui_by { UI_BY_FUNCTION, UI_BY_EXECUTABLE, UI_BY_CONTAINER, UI_BY_THREAD, UI_BY_FRAME_TYPE,
             UI_BY_MAPPING };

struct ui_params {
    bool has_from, has_to;
    int64_t from, to;                 /* unix seconds, from < to */
    const char *sample_type;          /* NULL = every type */
    const char *frame_types[UI_MAX_LIST];
    size_t n_frame_types;
    const char *container, *executable, *thread;   /* NULL = any */
    const char *attr_key[UI_MAX_ATTRS], *attr_value[UI_MAX_ATTRS];
    size_t n_attrs;
    enum ui_by by;
    bool sort_total;
    size_t limit;                     /* top: rows */
    const char *name_filter;          /* top: substring of the name, case-insensitive */
    size_t max_nodes;                 /* flame: nodes */
    char store[2048];                 /* the decoded values point here */
    size_t used;
};

/* Parses a query string; only the names in `allowed` (comma-separated) are accepted. 0, or
 * -1 with a message for a 400 in err. */
int ui_parse_params(const char *query, const char *allowed, struct ui_params *p, char *err, size_t errlen);

/* ---- the store (store.c) ---- */

struct ui_frame {
    uint32_t name, type, file, build_id;   /* ids in names; file/build_id 0 = none */
    int64_t line;
    bool native;                           /* unsymbolized: name is mapping+0xaddress */
    uint32_t mapping;                      /* the mapping file's name id, 0 = none */
};

struct ui_clickhouse;
struct qresult;
struct http_response;
struct h2_push;
struct loop;

struct ui_store {
    char *path;
    const struct ui_clickhouse *ch;        /* set: rows come from ClickHouse (clickhouse.c) */
    /* set: ClickHouse's SQL goes here, not to a blocking POST (async.c replays the answers) */
    int (*ch_ask)(void *ud, const char *sql, struct buf *out, struct qresult *r);
    void *ch_ask_ud;
    int err_status;                        /* the HTTP status of err; 0 = 503 */
    sqlite3 *db;
    sqlite3_stmt *st_frame, *st_stack, *st_filter, *st_group;
    /* Content rows never change once written, so what was read stays valid for the
     * database's life: frames and stacks by id, kept across requests (bounded: dropped whole
     * past UI_CACHE_MAX frames). */
    struct strtab names;                   /* id 0 is "" */
    struct memo frame_ix, stack_ix;
    struct memo frame_same;                /* hash of a frame's content -> its index */
    struct ui_frame *frames;
    size_t n_frames, cap_frames;
    struct { uint32_t off, n; } *stacks;   /* frames root first in sf[off..off+n) */
    size_t n_stacks, cap_stacks;
    uint32_t *sf;
    size_t n_sf, cap_sf;
    struct memo group_of;                  /* set id * 8 + by -> value name id + 1, 0 = none */
    int64_t group_key_id[8];               /* strings.id of each group's key; -1 = not read */
    struct buf tmp;
    char err[512];                         /* room for a ClickHouse error (sinks/query) */
};

/* A rollup row that passed the filters: its stack (index into s->stacks), bucket (minutes
 * or hours since the epoch, as scanned) and weight; sets are the resource, profile and sample
 * attribute sets. */
typedef int (*ui_row_fn)(void *ctx, const struct ui_store *s, uint32_t stack, int64_t bucket,
                         const int64_t sets[3], int64_t w);

void ui_store_init(struct ui_store *s, const char *path);
void ui_store_close(struct ui_store *s);
/* Opens the database if needed and starts a read transaction (one snapshot per API call);
 * ui_store_end ends it. -1 with s->err. */
int ui_store_begin(struct ui_store *s);
void ui_store_end(struct ui_store *s);
/* How rows are read: whole hours of the window from the hour table and its edges from the
 * minute table (the fewest rows), every minute (a timeline), every hour (a long one), or every
 * minute without stacks (rollup_minute_sets: a timeline under attribute filters only; rows
 * come with stack UI_NO_STACK; with frame type filters it reads as UI_SCAN_MINUTES does). */
/* UI_SCAN_MINUTE_TYPES: every minute by the frame types of the stacks
 * (rollup_minute_frame_types): frame type filters without attribute filters (with them it
 * reads as UI_SCAN_MINUTES does); rows come with stack UI_NO_STACK and no sets. */
enum ui_scan { UI_SCAN_WINDOW, UI_SCAN_MINUTES, UI_SCAN_HOURS, UI_SCAN_MINUTE_SETS, UI_SCAN_MINUTE_TYPES };
#define UI_NO_STACK UINT32_MAX
/* Every rollup row matching p (time window, sample type, attributes, frame types); buckets
 * are minutes, or hours with UI_SCAN_HOURS. 0 or -1 with s->err (or the callback's -1). */
int ui_store_scan(struct ui_store *s, const struct ui_params *p, enum ui_scan how, ui_row_fn fn, void *ctx);
/* The group value id (in s->names) of a row's sets for executable/container/thread; 0 for
 * none. */
int ui_store_group(struct ui_store *s, enum ui_by by, const int64_t sets[3], uint32_t *out);
const char *ui_name(const struct ui_store *s, uint32_t id);
/* Forgets the frames, stacks and names read (the ClickHouse reader's are per request). */
void ui_store_reset(struct ui_store *s);

/* ---- ClickHouse instead of SQLite (clickhouse.c): the same rows, so the same answers ----
 * A window scan asks ClickHouse for the weights per stack (and group) and fills s->frames,
 * s->stacks and s->names with what they name; rows carry the group's name id in sets[0].
 * Only UI_SCAN_WINDOW is answered. 0, or -1 with s->err and s->err_status (502: ClickHouse
 * unreachable or failed, 504: too slow, 501: not kept there). */
int ui_ch_scan(struct ui_store *s, const struct ui_params *p, enum ui_scan how, ui_row_fn fn, void *ctx);
int ui_ch_meta(struct ui_store *s, struct buf *out);
int ui_ch_timeline(struct ui_store *s, const struct ui_params *p, struct buf *out);
/* s->err and s->err_status for a view ClickHouse cannot answer; -1. */
int ui_ch_unsupported(struct ui_store *s, const char *what);

/* ---- the answers (views.c): JSON into out; 0, or -1 with s->err ---- */
int ui_view_flame(struct ui_store *s, const struct ui_params *p, struct buf *out);
int ui_view_top(struct ui_store *s, const struct ui_params *p, struct buf *out);
int ui_view_timeline(struct ui_store *s, const struct ui_params *p, struct buf *out);
int ui_view_meta(struct ui_store *s, struct buf *out);
int ui_view_requests(struct ui_store *s, size_t limit, struct buf *out);
/* What ui_view_requests says of a stored request's resource ("" when it is not stored). */
int ui_store_request_resource(struct ui_store *s, uint64_t sequence, struct buf *out);

/* ---- the API's routes (ui.c), shared with async.c ---- */
enum ui_api { UI_API_FLAME, UI_API_TOP, UI_API_TIMELINE, UI_API_META, UI_API_REQUESTS };
/* One API call's JSON into out, from the store: 0, or -1 with s->err (and s->err_status). */
int ui_api_run(struct ui_store *s, enum ui_api api, const struct ui_params *p, struct buf *out);
/* The headers every UI response carries; an error as {"error": msg}. */
void ui_secure(struct http_response *r, const char *cache);
void ui_text_error(struct http_response *r, int status, const char *msg);

/* ---- the API over ClickHouse on a loop that serves ingest (async.c) ----
 * Each call's SELECTs are POSTed on the loop (lib/http_post.c), one after another, and the
 * response is deferred (h2_defer_open) until the last answer: the views run again over the
 * answers received so far (ClickHouse's reader asks through s->ch_ask), so the SQL and the
 * parsing are clickhouse.c's and sinks/clickhouse/query*.c's. At most UI_ASYNC_MAX calls are
 * in flight (503 beyond), each within the ClickHouse timeout (504), a failure is a 502, and a
 * client gone cancels its call. */
enum { UI_ASYNC_MAX = 4 };
struct ui_async;
struct ui_async *ui_async_new(struct loop *loop, struct ui_store *s);
/* Cancels the calls in flight (their responses are answered 503 or already gone). */
void ui_async_free(struct ui_async *a);
/* Answers one API call (p is taken, freed by it): at once when no ClickHouse answer is
 * needed, else later. */
void ui_async_serve(struct ui_async *a, enum ui_api api, struct ui_params *p, const char *path,
                    struct http_response *resp);

#endif
