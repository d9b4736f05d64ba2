/*
 * async.c - the UI's API over ClickHouse inside `serve`, where the loop also serves ingest: no
 * API call may block it, so ClickHouse is asked on the loop and the response completes later.
 *
 * An API call runs the same view as the offline command (ui.c's ui_api_run over clickhouse.c
 * and sinks/clickhouse/query*.c), with the store's ClickHouse questions going to `replay`
 * instead of a blocking POST: an answer received earlier is handed back (the view must ask
 * the same SQL in the same order, which it does: the SQL depends on the parameters only), and
 * the first question without one stops the run and is POSTed on the loop (lib/http_post.c).
 * When its answer comes, the view runs again from the start; a run that asks nothing new is
 * the answer. Building SQL again is cheap next to ClickHouse's work, and answers are parsed
 * once, in the last run. So there is one copy of the SQL and of the parsing.
 *
 * Bounds: UI_ASYNC_MAX calls in flight (503 beyond), each within the ClickHouse timeout as a
 * whole (504), at most MAX_ASKS SELECTs per call. ClickHouse unreachable or failing: 502 with
 * its reason. A client gone (h2 stream reset, connection closed): the POST is cancelled and
 * the call freed.
 */
#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2/server.h"
#include "lib/clock.h"
#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/query.h"
#include "ui/store.h"
#include "ui/ui.h"

enum { MAX_ASKS = 8 };

struct call;

struct ui_async {
    struct loop *loop;
    struct ui_store *store;
    struct call *calls;   /* in flight, a list */
    size_t n_calls;
};

struct call {
    struct ui_async *a;
    struct call *prev, *next;
    enum ui_api api;
    struct ui_params *p;
    char path[64];
    struct h2_push *defer;        /* the response, sent when the call ends */
    struct http_post *post;
    uint64_t deadline_timer, step_timer;
    uint64_t t0;
    char *sql[MAX_ASKS];          /* the questions answered, in the order asked */
    struct buf answer[MAX_ASKS];
    size_t n_answers, replayed;
    char *asking;                 /* the question the last run stopped at (being POSTed) */
    bool failed;                  /* the answer that came is an error, in fail_* */
    int fail_status;
    char fail[512];
};

static int replay(void *ud, const char *sql, struct buf *out, struct qresult *r)
{
    struct call *c = ud;
    if (c->replayed < c->n_answers) {
        size_t i = c->replayed++;
        if (strcmp(sql, c->sql[i]) != 0)
            return qresult_fail(r, "the UI asked ClickHouse other questions on a second run");
        return buf_append(out, c->answer[i].data, c->answer[i].len) ? 0 : qresult_oom(r);
    }
    if (c->n_answers >= MAX_ASKS)
        return qresult_fail(r, "more than %d ClickHouse queries for one API call", MAX_ASKS);
    free(c->asking);
    if (!(c->asking = strdup(sql)))
        return qresult_oom(r);
    return qresult_fail(r, "waiting for ClickHouse");
}

/* Runs the view over the answers so far: 1 when it needs another (c->asking), 0 when out has
 * the answer, -1 with the store's err. */
static int run(struct call *c, struct buf *out)
{
    struct ui_store *s = c->a->store;
    free(c->asking);
    c->asking = NULL;
    c->replayed = 0;
    s->ch_ask = replay;
    s->ch_ask_ud = c;
    buf_reset(out);
    int rc = ui_api_run(s, c->api, c->p, out);
    s->ch_ask = NULL;
    s->ch_ask_ud = NULL;
    return rc != 0 && c->asking ? 1 : rc;
}

static void call_free(struct call *c)
{
    struct ui_async *a = c->a;
    if (c->deadline_timer)
        loop_del_timer(a->loop, c->deadline_timer);
    if (c->step_timer)
        loop_del_timer(a->loop, c->step_timer);
    http_post_free(c->post);   /* cancels a POST in flight */
    for (size_t i = 0; i < c->n_answers; i++) {
        free(c->sql[i]);
        buf_free(&c->answer[i]);
    }
    free(c->asking);
    free(c->p);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    assert(a->n_calls > 0);
    a->n_calls--;
    free(c);
}

/* Sends the response (status 200 with body, or the error) and ends the call. */
static void finish(struct call *c, int status, const struct buf *body, const char *err)
{
    struct http_response *resp = h2_defer_response(c->defer);   /* its headers were set by ui.c */
    if (status == 200) {
        snprintf(resp->content_type, sizeof resp->content_type, "application/json");
        buf_reset(&resp->body);
        if (!buf_append(&resp->body, body->data, body->len)) {
            status = 503;
            err = "out of memory";
        }
    }
    if (status != 200) {
        log_warn("ui: %s: %s", c->path, err);
        ui_text_error(resp, status, err);
    } else {
        resp->status = 200;
        log_debug("ui: %s: %zu bytes from ClickHouse in %.1f ms (%zu queries)", c->path, body->len,
                  (double)(clock_mono_ns() - c->t0) / 1e6, c->n_answers);
    }
    h2_defer_send(c->defer);
    c->defer = NULL;
    call_free(c);
}

static void on_deadline(struct loop *l, void *ud)
{
    (void)l;
    struct call *c = ud;
    c->deadline_timer = 0;
    char why[160];
    snprintf(why, sizeof why, "ClickHouse did not answer within %ld s (the ClickHouse timeout)",
             c->a->store->ch->timeout_s);
    finish(c, 504, NULL, why);
}

static void start_post(struct call *c);

/* After an answer (from a timer: never inside http_post's own callback, which may not free
 * it): the error, or the view again. */
static void step(struct loop *l, void *ud)
{
    (void)l;
    struct call *c = ud;
    c->step_timer = 0;
    if (c->failed) {
        finish(c, c->fail_status, NULL, c->fail);
        return;
    }
    struct ui_store *s = c->a->store;
    struct buf out;
    buf_init(&out, MAX_RESPONSE);
    int rc = run(c, &out);
    if (rc == 1)
        start_post(c);
    else if (rc == 0)
        finish(c, 200, &out, NULL);
    else
        finish(c, s->err_status ? s->err_status : 502, NULL, s->err[0] ? s->err : "reading ClickHouse failed");
    buf_free(&out);
}

static void on_answer(void *ud, const struct http_post_result *r)
{
    struct call *c = ud;
    struct qresult q;
    memset(&q, 0, sizeof q);
    if (r->curl_code != 0) {
        c->failed = true;
        c->fail_status = r->curl_code == CURLE_OPERATION_TIMEDOUT ? 504 : 502;
        snprintf(c->fail, sizeof c->fail, "ClickHouse at %s: %s", c->a->store->ch->url, r->error);
    } else if (r->too_large) {
        c->failed = true;
        c->fail_status = 502;
        snprintf(c->fail, sizeof c->fail, "ClickHouse's answer is larger than %zu MiB (narrow the query)",
                 MAX_RESPONSE >> 20);
    } else if (ch_check_status(&q, r->status, r->body, r->body_len) != 0) {
        c->failed = true;
        c->fail_status = 502;
        snprintf(c->fail, sizeof c->fail, "%s", q.err);
    } else {
        size_t i = c->n_answers;
        buf_init(&c->answer[i], MAX_RESPONSE);
        c->sql[i] = c->asking;
        c->asking = NULL;
        c->n_answers++;
        if (!buf_append(&c->answer[i], r->body, r->body_len)) {
            c->failed = true;
            c->fail_status = 503;
            snprintf(c->fail, sizeof c->fail, "out of memory");
        }
    }
    c->step_timer = loop_add_timer(c->a->loop, 0, step, c);
    if (!c->step_timer)
        log_error("ui: %s: cannot arm a timer: the call ends at its deadline", c->path);
}

static void start_post(struct call *c)
{
    const struct ui_clickhouse *ch = c->a->store->ch;
    char url[2048], err[256];
    if (!ch_query_url(ch->url, url, sizeof url)) {
        finish(c, 502, NULL, "the ClickHouse URL is too long");
        return;
    }
    if (!c->post) {
        char user[300] = "", key[300] = "";
        const char *headers[2];
        size_t n = 0;
        if (ch->user && snprintf(user, sizeof user, "X-ClickHouse-User: %s", ch->user) < (int)sizeof user)
            headers[n++] = user;
        if (ch->password && snprintf(key, sizeof key, "X-ClickHouse-Key: %s", ch->password) < (int)sizeof key)
            headers[n++] = key;
        struct http_post_options o = {
            .user_agent = "lazybackend-ui", .headers = headers, .n_headers = n,
            .max_answer = MAX_RESPONSE, .connect_timeout_ms = 10000,
        };
        if (!(c->post = http_post_new(c->a->loop, &o, on_answer, c, err, sizeof err))) {
            finish(c, 503, NULL, err);
            return;
        }
    }
    uint64_t spent_ms = (clock_mono_ns() - c->t0) / 1000000;
    uint64_t bound_ms = (uint64_t)ch->timeout_s * 1000;
    if (http_post_start(c->post, url, c->asking, strlen(c->asking), bound_ms > spent_ms ? bound_ms - spent_ms : 1) != 0)
        finish(c, 502, NULL, "cannot start a request to ClickHouse");
}

/* The first question, once the handler has returned (the response is then bound). */
static void kick(struct loop *l, void *ud)
{
    (void)l;
    struct call *c = ud;
    c->step_timer = 0;
    start_post(c);
}

static void on_gone(void *ud, struct h2_push *p)
{
    struct call *c = ud;
    (void)p;
    log_info("ui: %s: the client left before ClickHouse answered: cancelled", c->path);
    c->defer = NULL;
    call_free(c);
}

void ui_async_serve(struct ui_async *a, enum ui_api api, struct ui_params *p, const char *path,
                    struct http_response *resp)
{
    if (a->n_calls >= UI_ASYNC_MAX) {
        free(p);
        ui_text_error(resp, 503, "too many UI queries waiting for ClickHouse: try again");
        resp->retry_after = 1;
        return;
    }
    struct call *c = calloc(1, sizeof *c);
    if (!c) {
        free(p);
        ui_text_error(resp, 503, "out of memory");
        return;
    }
    c->a = a;
    c->api = api;
    c->p = p;
    c->t0 = clock_mono_ns();
    snprintf(c->path, sizeof c->path, "%s", path);
    if ((c->next = a->calls))
        a->calls->prev = c;
    a->calls = c;
    a->n_calls++;
    struct ui_store *s = a->store;
    int rc = run(c, &resp->body);   /* a view that needs no ClickHouse answers at once */
    if (rc != 1) {
        if (rc != 0) {
            log_warn("ui: %s: %s", path, s->err);
            ui_text_error(resp, s->err_status ? s->err_status : 503, s->err[0] ? s->err : "failed");
        } else {
            snprintf(resp->content_type, sizeof resp->content_type, "application/json");
        }
        call_free(c);
        return;
    }
    buf_reset(&resp->body);
    if (!(c->deadline_timer = loop_add_timer(a->loop, (uint64_t)s->ch->timeout_s * 1000, on_deadline, c)) ||
        !(c->step_timer = loop_add_timer(a->loop, 0, kick, c)) || !(c->defer = h2_defer_open(resp, on_gone, c))) {
        call_free(c);
        ui_text_error(resp, 503, "out of memory");
    }
}

struct ui_async *ui_async_new(struct loop *loop, struct ui_store *s)
{
    assert(s->ch && s->ch->timeout_s > 0);
    struct ui_async *a = calloc(1, sizeof *a);
    if (a) {
        a->loop = loop;
        a->store = s;
    }
    return a;
}

void ui_async_free(struct ui_async *a)
{
    if (!a)
        return;
    while (a->calls) {
        struct call *c = a->calls;
        finish(c, 503, NULL, "server shutting down");   /* every call in the list is deferred */
    }
    free(a);
}
