/*
 * ui.c - the UI's routes: the page and its assets, the JSON API, and the live tail.
 *
 * Safety, since the page shows whatever senders put in profiles: every response carries a
 * strict Content-Security-Policy (scripts and styles only from this origin, no inline
 * script, no frames, no forms), X-Content-Type-Options: nosniff and no-referrer; the API is
 * JSON only (strings escaped, shown by the page as text); every route is a GET that reads;
 * query parameters are checked and bounded (params.c: 400 with a message). The database is
 * the one given at start, opened read-only; no parameter names a file.
 *
 * The live tail (GET /api/live) is Server-Sent Events on an h2 long-lived response
 * (h2_push_*): each ui_publish becomes one `request` event on every open stream, with a
 * comment line every 15 s to keep proxies and idle timers from closing it. At most
 * LIVE_MAX streams are open; a client too slow to read is dropped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2/server.h"
#include "lib/clock.h"
#include "lib/escape.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "ui/assets.h"
#include "ui/store.h"
#include "ui/ui.h"

enum { LIVE_MAX = 32, LIVE_HEARTBEAT_MS = 15000, REQUESTS_MAX = 1000 };

static const char CSP[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct ui {
    struct loop *loop;
    struct ui_store store;
    struct ui_async *async;   /* set: the API asks ClickHouse on the loop (async.c) */
    struct h2_push *live[LIVE_MAX];
    size_t n_live;
    uint64_t heartbeat_timer;
    struct buf ev;
};

static void heartbeat(struct loop *l, void *ud);

struct ui *ui_new(struct loop *loop, const char *db_path)
{
    struct ui *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->loop = loop;
    ui_store_init(&u->store, db_path);
    buf_init(&u->ev, 64 * 1024);
    if (db_path && !u->store.path) {
        ui_free(u);
        return NULL;
    }
    return u;
}

struct ui *ui_new_clickhouse(struct loop *loop, const struct ui_clickhouse *ch)
{
    struct ui *u = ui_new(loop, NULL);
    if (!u)
        return NULL;
    u->store.ch = ch;
    if (ch->on_loop && !(u->async = ui_async_new(loop, &u->store))) {
        ui_free(u);
        return NULL;
    }
    return u;
}

void ui_free(struct ui *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n_live; i++)
        h2_push_close(u->live[i]);
    if (u->heartbeat_timer)
        loop_del_timer(u->loop, u->heartbeat_timer);
    ui_async_free(u->async);   /* before the store its calls read */
    ui_store_close(&u->store);
    buf_free(&u->ev);
    free(u);
}

void ui_secure(struct http_response *r, const char *cache)
{
    http_response_header(r, "Content-Security-Policy", CSP);
    http_response_header(r, "X-Content-Type-Options", "nosniff");
    http_response_header(r, "Referrer-Policy", "no-referrer");
    http_response_header(r, "X-Frame-Options", "DENY");
    http_response_header(r, "Cache-Control", cache);
}

void ui_text_error(struct http_response *r, int status, const char *msg)
{
    r->status = status;
    buf_reset(&r->body);
    snprintf(r->content_type, sizeof r->content_type, "application/json");
    if (!buf_printf(&r->body, "{\"error\":") || !esc_json_quoted(&r->body, msg, strlen(msg)) ||
        !buf_printf(&r->body, "}\n"))
        buf_reset(&r->body);
}

/* ---------- the page ---------- */

static void serve_asset(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    const char *path = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
    ui_secure(resp, "no-cache");
    for (size_t i = 0; i < ui_asset_count; i++) {
        const struct ui_asset *a = &ui_assets[i];
        if (strcmp(a->path, path) != 0)
            continue;
        snprintf(resp->content_type, sizeof resp->content_type, "%s", a->type);
        if (!buf_append(&resp->body, a->data, a->size))
            ui_text_error(resp, 500, "out of memory");
        return;
    }
    ui_text_error(resp, 404, "no such asset");
}

/* ---------- the API ---------- */

static const char FILTERS[] = "from,to,sample_type,frame_type,container,executable,thread,attr";

struct api_route {
    const char *path;
    enum ui_api api;
    const char *extra;   /* parameters beyond the filters */
};

static const struct api_route API[] = {
    { "/api/flame", UI_API_FLAME, "max_nodes" },
    { "/api/top", UI_API_TOP, "by,sort,limit,q" },
    { "/api/executables", UI_API_TOP, "sort,limit,q" },
    { "/api/timeline", UI_API_TIMELINE, "" },
    { "/api/meta", UI_API_META, NULL },
    { "/api/requests", UI_API_REQUESTS, NULL },
};

int ui_api_run(struct ui_store *s, enum ui_api api, const struct ui_params *p, struct buf *out)
{
    int rc = ui_store_begin(s);
    if (rc != 0)
        return rc;
    switch (api) {
    case UI_API_FLAME: rc = ui_view_flame(s, p, out); break;
    case UI_API_TOP: rc = ui_view_top(s, p, out); break;
    case UI_API_TIMELINE: rc = s->ch ? ui_ch_timeline(s, p, out) : ui_view_timeline(s, p, out); break;
    case UI_API_META: rc = s->ch ? ui_ch_meta(s, out) : ui_view_meta(s, out); break;
    case UI_API_REQUESTS:
        rc = s->ch ? ui_ch_unsupported(s, "the requests list")
                   : ui_view_requests(s, p->limit > REQUESTS_MAX ? REQUESTS_MAX : p->limit, out);
        break;
    }
    ui_store_end(s);
    return rc;
}

static void serve_api(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct ui *u = ud;
    const struct api_route *r = NULL;
    for (size_t i = 0; i < sizeof API / sizeof API[0] && !r; i++)
        if (strcmp(API[i].path, req->path) == 0)
            r = &API[i];
    ui_secure(resp, "no-store");
    if (!r) {
        ui_text_error(resp, 404, "no such API route");
        return;
    }
    char allowed[160], err[256];
    struct ui_params *p = malloc(sizeof *p);
    if (!p) {
        ui_text_error(resp, 503, "out of memory");
        return;
    }
    snprintf(allowed, sizeof allowed, "%s%s%s", r->extra ? FILTERS : "", r->extra && r->extra[0] ? "," : "",
             r->extra ? r->extra : (r->api == UI_API_REQUESTS ? "limit" : ""));
    if (ui_parse_params(req->query, allowed, p, err, sizeof err) != 0) {
        ui_text_error(resp, 400, err);
        free(p);
        return;
    }
    if (strcmp(req->path, "/api/executables") == 0)
        p->by = UI_BY_EXECUTABLE;
    if (u->async && u->store.ch) {
        ui_async_serve(u->async, r->api, p, req->path, resp);
        return;
    }
    uint64_t t0 = clock_mono_ns();
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    struct ui_store *s = &u->store;
    if (ui_api_run(s, r->api, p, &resp->body) != 0) {
        log_warn("ui: %s: %s", req->path, s->err);
        ui_text_error(resp, s->err_status ? s->err_status : 503, s->err[0] ? s->err : "failed");
    } else {
        log_debug("ui: %s?%s: %zu bytes in %.1f ms", req->path, req->query, resp->body.len,
                  (double)(clock_mono_ns() - t0) / 1e6);
    }
    free(p);
}

/* ---------- the live tail ---------- */

static void live_gone(void *ud, struct h2_push *p)
{
    struct ui *u = ud;
    for (size_t i = 0; i < u->n_live; i++) {
        if (u->live[i] == p) {
            u->live[i] = u->live[--u->n_live];
            return;
        }
    }
}

/* Sends ev to every stream; a stream that cannot take it is closed. */
static void live_broadcast(struct ui *u, const void *data, size_t n)
{
    for (size_t i = 0; i < u->n_live;) {
        if (h2_push_write(u->live[i], data, n)) {
            i++;
            continue;
        }
        log_info("ui: live stream dropped: the client does not keep up");
        h2_push_close(u->live[i]);
        u->live[i] = u->live[--u->n_live];
    }
}

static void heartbeat(struct loop *l, void *ud)
{
    struct ui *u = ud;
    u->heartbeat_timer = 0;
    if (u->n_live == 0)
        return;
    live_broadcast(u, ": keep-alive\n\n", 14);
    u->heartbeat_timer = loop_add_timer(l, LIVE_HEARTBEAT_MS, heartbeat, u);
}

static void serve_live(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct ui *u = ud;
    char err[128];
    struct ui_params p;
    ui_secure(resp, "no-store");
    if (ui_parse_params(req->query, "", &p, err, sizeof err) != 0) {
        ui_text_error(resp, 400, err);
        return;
    }
    if (u->n_live >= LIVE_MAX) {
        ui_text_error(resp, 503, "too many live streams open");
        return;
    }
    struct h2_push *push = h2_push_open(resp, live_gone, u);
    if (!push) {
        ui_text_error(resp, 503, "out of memory");
        return;
    }
    u->live[u->n_live++] = push;
    snprintf(resp->content_type, sizeof resp->content_type, "text/event-stream");
    if (!buf_printf(&resp->body, "retry: 2000\n: live\n\n"))
        buf_reset(&resp->body);
    if (!u->heartbeat_timer)
        u->heartbeat_timer = loop_add_timer(u->loop, LIVE_HEARTBEAT_MS, heartbeat, u);
}

static bool jfield(struct buf *b, const char *name, const char *v)
{
    return buf_printf(b, ",\"%s\":", name) && esc_json_quoted(b, v ? v : "", v ? strlen(v) : 0);
}

void ui_publish(struct ui *u, const struct ui_event *e)
{
    if (!u || u->n_live == 0)
        return;
    /* the resource as the store recorded it (the request is committed by now) */
    struct buf res;
    buf_init(&res, 4096);
    const char *resource = e->resource;
    if ((!resource || !resource[0]) && u->store.path && ui_store_begin(&u->store) == 0) {
        if (ui_store_request_resource(&u->store, e->sequence, &res) == 0 && buf_putc(&res, '\0'))
            resource = (const char *)res.data;
        ui_store_end(&u->store);
    }
    struct buf *b = &u->ev;
    buf_reset(b);
    /* one line of JSON: SSE ends a data field at a newline, and JSON escapes every one */
    bool ok = buf_printf(b, "event: request\ndata: {\"sequence\":%" PRIu64 ",\"received_unix_nano\":%" PRIu64,
                         e->sequence, e->received_unix_nano) &&
              jfield(b, "transport", e->transport) && jfield(b, "peer", e->peer) &&
              jfield(b, "layout", e->layout) && jfield(b, "resource", resource) &&
              buf_printf(b, ",\"resources\":%" PRIu64 ",\"profiles\":%" PRIu64 ",\"samples\":%" PRIu64
                            ",\"rejected_samples\":%" PRIu64 ",\"wire_bytes\":%zu",
                         e->resources, e->profiles, e->samples, e->rejected_samples, e->wire_bytes) &&
              jfield(b, "outcome", e->outcome) && jfield(b, "message", e->message) && buf_printf(b, "}\n\n");
    buf_free(&res);
    if (ok)
        live_broadcast(u, b->data, b->len);
}

int ui_register(struct ui *u, struct h2_server *s)
{
    for (size_t i = 0; i < ui_asset_count; i++)
        if (h2_server_add_route(s, "GET", ui_assets[i].path, serve_asset, u) != 0)
            return -1;
    if (h2_server_add_route(s, "GET", "/", serve_asset, u) != 0 ||
        h2_server_add_route(s, "GET", "/api/live", serve_live, u) != 0)
        return -1;
    for (size_t i = 0; i < sizeof API / sizeof API[0]; i++)
        if (h2_server_add_route(s, "GET", API[i].path, serve_api, u) != 0)
            return -1;
    return 0;
}
