/*
 * usdt_export.c - spans to the OTLP receiver: a bounded queue, batches, retries.
 *
 * Why these rules: they are the OpenTelemetry batch span processor's (OTEL_BSP_*), which is
 * what users of the Go bridge had, minus its losses. A span joins the queue (new random ids);
 * a batch leaves when max_batch spans wait, or schedule_delay after the first one arrived;
 * one batch is in flight at a time. A full queue drops new spans and counts them (bpftrace
 * cannot be slowed down; a replay instead makes its reader wait, `block`). At shutdown the
 * spans still open are taken whatever the queue's size (`force`): the pairing table already
 * bounds how many there are.
 *
 * A batch is retried on what may pass (no answer, 429, 502, 503, 504), after an exponential
 * backoff with jitter or the Retry-After the receiver asked for, whichever is longer, until
 * export_timeout has passed since its first attempt. A 400, any other status, and a partial
 * success are never retried: the same bytes would get the same answer, or be stored twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cmd/usdt_internal.h"
#include "cmd/version.h"
#include "lib/escape.h"
#include "lib/gzip.h"
#include "lib/http_post.h"
#include "lib/log.h"

#define MAX_BODY ((size_t)64 << 20)     /* the OTLP specification's request cap */
#define MAX_ANSWER ((size_t)4 << 20)    /* the OTLP specification's cap on what a client parses */
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_MAX_S 300
#define RANDOM_POOL 4096

struct usdt_exporter {
    struct loop *loop;
    struct usdt_export_options o;
    struct http_post *http;              /* NULL in a dry run */
    /* the queue: a ring of cap records, `len` of them from `head` */
    struct usdt_span_rec *q;
    size_t cap, head, len;
    /* the batch in flight (sent, or waiting to be retried) */
    struct usdt_span_rec *batch;
    size_t batch_n;
    bool in_flight;
    struct buf body, packed;
    uint64_t batch_started_ms, backoff_ms;
    uint64_t retry_timer, delay_timer, room_timer;
    bool delay_due;                      /* schedule_delay has passed: send what there is */
    bool was_full;
    bool pumping;                        /* inside pump(): a nested call leaves it to the loop there */
    bool flushing;
    void (*flushed)(void *ud);
    void *flushed_ud;
    void (*room)(void *ud);
    void *room_ud;
    uint8_t pool[RANDOM_POOL];
    size_t pool_left;
    struct usdt_export_stats st;
};

static void pump(struct usdt_exporter *ex);

/* ---------------------------------------------------------------- ids */

static void random_bytes(struct usdt_exporter *ex, uint8_t *out, size_t n)
{
    if (ex->pool_left < n) {
        size_t got = 0;
        while (got < sizeof ex->pool) {
            ssize_t k = getrandom(ex->pool + got, sizeof ex->pool - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        if (got < sizeof ex->pool) {   /* no entropy source at all: still distinct ids */
            static uint64_t counter;
            for (size_t i = got; i < sizeof ex->pool; i++)
                ex->pool[i] = (uint8_t)((++counter * 0x9e3779b97f4a7c15ULL) >> 56);
        }
        ex->pool_left = sizeof ex->pool;
    }
    memcpy(out, ex->pool + sizeof ex->pool - ex->pool_left, n);
    ex->pool_left -= n;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---------------------------------------------------------------- the queue */

static bool grow_queue(struct usdt_exporter *ex)
{
    size_t cap = ex->cap ? ex->cap * 2 : 256;
    struct usdt_span_rec *q = malloc(cap * sizeof *q);
    if (!q)
        return false;
    for (size_t i = 0; i < ex->len; i++)   /* unwrapped: head becomes 0 */
        q[i] = ex->q[(ex->head + i) % ex->cap];
    free(ex->q);
    ex->q = q;
    ex->cap = cap;
    ex->head = 0;
    return true;
}

bool usdt_exporter_add(struct usdt_exporter *ex, const struct usdt_span *sp, bool force)
{
    if (ex->len >= ex->o.max_queue && !force && !ex->o.block) {
        if (ex->st.dropped++ == 0)
            log_warn("usdt: export queue full (%zu spans): dropping new spans (OTEL_BSP_MAX_QUEUE_SIZE)",
                     ex->o.max_queue);
        return false;
    }
    if (ex->len == ex->cap && !grow_queue(ex)) {
        ex->st.dropped++;
        return false;
    }
    struct usdt_span_rec *r = &ex->q[(ex->head + ex->len) % ex->cap];
    do
        random_bytes(ex, r->trace_id, sizeof r->trace_id);
    while (all_zero(r->trace_id, sizeof r->trace_id));
    do
        random_bytes(ex, r->span_id, sizeof r->span_id);
    while (all_zero(r->span_id, sizeof r->span_id));
    r->start_ns = sp->start_ns;
    r->end_ns = sp->end_ns;
    r->duration_ns = sp->duration_ns;
    r->how = (uint8_t)sp->how;
    r->reqid_len = (uint8_t)(sp->reqid_len < USDT_REQID_MAX ? sp->reqid_len : USDT_REQID_MAX);
    memcpy(r->reqid, sp->reqid, r->reqid_len);
    ex->len++;
    ex->st.queued++;
    if (ex->len > ex->st.max_queued)
        ex->st.max_queued = ex->len;
    if (ex->len >= ex->o.max_queue)
        ex->was_full = true;
    pump(ex);
    return true;
}

bool usdt_exporter_full(const struct usdt_exporter *ex)
{
    return ex->len >= ex->o.max_queue;
}

/* ---------------------------------------------------------------- a batch's life */

static void finish_batch(struct usdt_exporter *ex)
{
    ex->in_flight = false;
    ex->batch_n = 0;
    pump(ex);
}

static void give_up(struct usdt_exporter *ex, const char *why)
{
    ex->st.failed += ex->batch_n;
    log_warn("usdt: export: %zu spans not delivered: %s", ex->batch_n, why);
    finish_batch(ex);
}

static void attempt(struct usdt_exporter *ex);

static void on_retry(struct loop *l, void *ud)
{
    (void)l;
    struct usdt_exporter *ex = ud;
    ex->retry_timer = 0;
    attempt(ex);
}

/* A short readable excerpt of the receiver's answer. */
static void answer_text(const struct http_post_result *r, char *out, size_t len)
{
    struct buf b;
    buf_init(&b, len > 1 ? len - 1 : 0);
    esc_text(&b, r->body, r->body_len < 200 ? r->body_len : 200);
    snprintf(out, len, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
    buf_free(&b);
}

static void on_answer(void *ud, const struct http_post_result *r)
{
    struct usdt_exporter *ex = ud;
    uint64_t now = loop_now_ms(ex->loop);
    char text[256], why[512];
    ex->st.requests++;
    if (r->curl_code == 0 && r->status >= 200 && r->status < 300) {
        int64_t rejected = 0;
        char msg[256];
        if (!usdt_partial_success(r->body, r->body_len, ex->o.json, &rejected, msg, sizeof msg))
            log_warn("usdt: export: HTTP %ld with an answer that does not decode (%zu bytes)", r->status, r->body_len);
        if (rejected < 0 || (uint64_t)rejected > ex->batch_n)
            rejected = (int64_t)ex->batch_n;
        ex->st.rejected += (uint64_t)rejected;
        ex->st.exported += ex->batch_n - (uint64_t)rejected;
        if (rejected || msg[0]) {   /* a partial success is final: never sent again */
            struct buf b;
            buf_init(&b, 300);
            esc_text(&b, msg, strlen(msg));
            log_warn("usdt: export: partial success: %lld of %zu spans rejected: %.*s", (long long)rejected,
                     ex->batch_n, (int)b.len, b.data ? (const char *)b.data : "");
            buf_free(&b);
        }
        finish_batch(ex);
        return;
    }
    answer_text(r, text, sizeof text);
    if (r->curl_code)
        snprintf(why, sizeof why, "%s", r->error);
    else
        snprintf(why, sizeof why, "HTTP %ld%s%s", r->status, text[0] ? ": " : "", text);
    if (r->too_large)
        snprintf(why, sizeof why, "the answer is larger than 4 MiB");
    if (!http_post_retryable(r)) {
        give_up(ex, why);
        return;
    }
    /* backoff with +-20% jitter, or what the receiver asked for if longer */
    uint8_t j;
    random_bytes(ex, &j, 1);
    uint64_t wait = ex->backoff_ms * (80 + (uint64_t)j * 40 / 255) / 100;
    if (r->retry_after_s > 0) {
        uint64_t asked = (uint64_t)(r->retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : r->retry_after_s) * 1000;
        wait = asked > wait ? asked : wait;
    }
    ex->backoff_ms = ex->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ex->backoff_ms * 2;
    if (ex->o.export_timeout_ms && now + wait - ex->batch_started_ms >= ex->o.export_timeout_ms) {
        char more[640];
        snprintf(more, sizeof more, "%s (no retry within OTEL_BSP_EXPORT_TIMEOUT %llu ms)", why,
                 (unsigned long long)ex->o.export_timeout_ms);
        give_up(ex, more);
        return;
    }
    log_info("usdt: export: %s; retrying %zu spans in %llu ms", why, ex->batch_n, (unsigned long long)wait);
    ex->st.retries++;
    if (!(ex->retry_timer = loop_add_timer(ex->loop, wait, on_retry, ex)))
        give_up(ex, "out of memory");
}

/* One try of the batch in flight, within what is left of export_timeout. */
static void attempt(struct usdt_exporter *ex)
{
    uint64_t timeout = ex->o.timeout_ms;
    if (ex->o.export_timeout_ms) {
        uint64_t spent = loop_now_ms(ex->loop) - ex->batch_started_ms;
        uint64_t left = spent < ex->o.export_timeout_ms ? ex->o.export_timeout_ms - spent : 1;
        timeout = timeout && timeout < left ? timeout : left;
    }
    struct buf *b = ex->o.gzip ? &ex->packed : &ex->body;
    ex->st.bytes += b->len;
    if (!ex->http) {   /* dry run: encoded, counted, not sent */
        struct http_post_result ok = { .status = 200, .error = "" };
        on_answer(ex, &ok);
        return;
    }
    if (http_post_start(ex->http, ex->o.url, b->data, b->len, timeout) != 0)
        give_up(ex, "the request could not be started");
}

/* The oldest spans (up to max_batch) out of the queue into a request. */
static void send_batch(struct usdt_exporter *ex)
{
    size_t n = ex->len < ex->o.max_batch ? ex->len : ex->o.max_batch;
    for (size_t i = 0; i < n; i++)
        ex->batch[i] = ex->q[(ex->head + i) % ex->cap];
    ex->head = (ex->head + n) % ex->cap;
    ex->len -= n;
    ex->batch_n = n;
    ex->in_flight = true;
    ex->batch_started_ms = loop_now_ms(ex->loop);
    ex->backoff_ms = BACKOFF_FIRST_MS;
    buf_reset(&ex->body);
    buf_reset(&ex->packed);
    bool ok = ex->o.json ? usdt_encode_json(&ex->body, ex->o.resource, ex->batch, n)
                         : usdt_encode_proto(&ex->body, ex->o.resource, ex->batch, n);
    if (!ok) {
        give_up(ex, "the request would pass 64 MiB, or no memory");
        return;
    }
    if (ex->o.gzip && gzip_deflate(ex->body.data, ex->body.len, &ex->packed, 6) != 0) {
        give_up(ex, "gzip failed");
        return;
    }
    attempt(ex);
}

/* ---------------------------------------------------------------- when to send */

static void on_delay(struct loop *l, void *ud)
{
    (void)l;
    struct usdt_exporter *ex = ud;
    ex->delay_timer = 0;
    ex->delay_due = true;
    pump(ex);
}

static void on_room(struct loop *l, void *ud)
{
    (void)l;
    struct usdt_exporter *ex = ud;
    ex->room_timer = 0;
    if (ex->room)
        ex->room(ex->room_ud);
}

/* Sends while a batch is due; then arms the delay, tells a waiting reader there is room, or
 * tells the flusher it is done. A dry run's answer comes inside send_batch: the nested call
 * returns at once and this loop sends the next batch, so the stack does not grow. */
static void pump(struct usdt_exporter *ex)
{
    if (ex->pumping)
        return;
    ex->pumping = true;
    while (!ex->in_flight && ex->len && (ex->len >= ex->o.max_batch || ex->flushing || ex->delay_due)) {
        ex->delay_due = false;
        send_batch(ex);
    }
    if (!ex->in_flight && ex->len && !ex->delay_timer && !ex->flushing)
        ex->delay_timer = loop_add_timer(ex->loop, ex->o.schedule_delay_ms, on_delay, ex);
    if (!ex->len && ex->delay_timer) {
        loop_del_timer(ex->loop, ex->delay_timer);
        ex->delay_timer = 0;
    }
    ex->pumping = false;
    if (ex->was_full && ex->len < ex->o.max_queue && ex->room && !ex->room_timer) {
        ex->was_full = false;
        ex->room_timer = loop_add_timer(ex->loop, 0, on_room, ex);
    }
    if (ex->flushing && !ex->in_flight && !ex->len && ex->flushed) {
        void (*done)(void *) = ex->flushed;
        ex->flushed = NULL;
        done(ex->flushed_ud);
    }
}

/* ---------------------------------------------------------------- life cycle */

struct usdt_exporter *usdt_exporter_new(struct loop *loop, const struct usdt_export_options *o, char *err, size_t errlen)
{
    struct usdt_exporter *ex = calloc(1, sizeof *ex);
    if (!ex || !(ex->batch = calloc(o->max_batch ? o->max_batch : 1, sizeof *ex->batch))) {
        free(ex);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ex->loop = loop;
    ex->o = *o;
    buf_init(&ex->body, MAX_BODY);
    buf_init(&ex->packed, MAX_BODY + (1u << 20));
    if (o->dry_run)
        return ex;
    const char *lines[USDT_MAX_HEADERS + 3];
    char *owned[USDT_MAX_HEADERS];
    size_t n = 0, n_owned = 0;
    lines[n++] = o->json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf";
    lines[n++] = "Expect:";   /* no waiting for "100 Continue" on large bodies */
    if (o->gzip)
        lines[n++] = "Content-Encoding: gzip";
    for (size_t i = 0; i < o->n_headers && i < USDT_MAX_HEADERS; i++) {
        size_t len = strlen(o->headers[i].key) + strlen(o->headers[i].value) + 3;
        if (!(owned[n_owned] = malloc(len)))
            break;
        snprintf(owned[n_owned], len, "%s: %s", o->headers[i].key, o->headers[i].value);
        lines[n++] = owned[n_owned++];
    }
    struct http_post_options ho = {
        .user_agent = "lazybackend-usdt/" LAZYBACKEND_VERSION, .headers = lines, .n_headers = n,
        .max_answer = MAX_ANSWER,
    };
    ex->http = http_post_new(loop, &ho, on_answer, ex, err, errlen);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    if (!ex->http) {
        usdt_exporter_free(ex);
        return NULL;
    }
    return ex;
}

void usdt_exporter_free(struct usdt_exporter *ex)
{
    if (!ex)
        return;
    http_post_free(ex->http);
    if (ex->retry_timer)
        loop_del_timer(ex->loop, ex->retry_timer);
    if (ex->delay_timer)
        loop_del_timer(ex->loop, ex->delay_timer);
    if (ex->room_timer)
        loop_del_timer(ex->loop, ex->room_timer);
    buf_free(&ex->body);
    buf_free(&ex->packed);
    free(ex->q);
    free(ex->batch);
    free(ex);
}

void usdt_exporter_on_room(struct usdt_exporter *ex, void (*fn)(void *ud), void *ud)
{
    ex->room = fn;
    ex->room_ud = ud;
}

void usdt_exporter_flush(struct usdt_exporter *ex, void (*done)(void *ud), void *ud)
{
    ex->flushing = true;
    ex->flushed = done;
    ex->flushed_ud = ud;
    pump(ex);
}

uint64_t usdt_exporter_abandon(struct usdt_exporter *ex)
{
    uint64_t lost = ex->len + (ex->in_flight ? ex->batch_n : 0);
    if (ex->http)
        http_post_cancel(ex->http);
    if (ex->retry_timer)
        loop_del_timer(ex->loop, ex->retry_timer);
    ex->retry_timer = 0;
    ex->in_flight = false;
    ex->batch_n = 0;
    ex->len = 0;
    ex->flushed = NULL;
    ex->st.failed += lost;
    return lost;
}

const struct usdt_export_stats *usdt_exporter_stats(const struct usdt_exporter *ex)
{
    return &ex->st;
}
