/*
 * sender.c - the forward sink's sender: the queue's head goes upstream, one request at a
 * time, and the answer decides: delivered, retried later, or rejected for good.
 *
 * gRPC: the message in one length-prefixed frame (compressed flag set with gzip and
 * grpc-encoding), over HTTP/2; the verdict is grpc-status, from the trailers (or the headers
 * of a trailers-only answer). OTLP/HTTP: the message as the body, Content-Encoding gzip.
 *
 * Retried (the request stays at the head, order is kept): every transport failure (refused
 * connection, timeout, reset, TLS: the upstream never judged the request), HTTP 429, 502, 503,
 * 504, and gRPC CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
 * UNAVAILABLE, DATA_LOSS, or no grpc-status at all. The wait doubles from 100 ms up to 10 s,
 * with +-20% jitter, or is what Retry-After asks when longer (at most 5 minutes). Anything
 * else is the upstream's final word on that request (INVALID_ARGUMENT, UNIMPLEMENTED, HTTP
 * 400, 404, 413...): logged with its message, counted, and dropped so the rest can go on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "lib/gzip.h"
#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/forward/internal.h"
#include "sinks/wal.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define RETRY_AFTER_MAX_S 300

enum verdict { DELIVERED, RETRY, REJECTED };

int64_t fw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_random(struct fw_sink *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The head's body, as the protocol frames it. */
static bool build_body(struct fw_sink *s, const uint8_t *msg, size_t n)
{
    bool gzip = s->o.compression == FORWARD_GZIP, grpc = s->o.protocol == FORWARD_GRPC;
    buf_reset(&s->body);
    if (grpc && !buf_append(&s->body, "\0\0\0\0\0", 5))
        return false;
    if (gzip ? gzip_deflate(msg, n, &s->body, 6) != 0 : !buf_append(&s->body, msg, n))
        return false;
    if (grpc) {
        size_t len = s->body.len - 5;
        if (len > UINT32_MAX)
            return false;
        s->body.data[0] = gzip ? 1 : 0;
        for (int i = 0; i < 4; i++)
            s->body.data[1 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    return true;
}

static void on_retry_timer(struct loop *l, void *ud)
{
    (void)l;
    struct fw_sink *s = ud;
    s->retry_timer = 0;
    s->retry_at_ms = 0;
    fw_kick(s);
}

static void schedule_retry(struct fw_sink *s, uint64_t wait_ms)
{
    s->retry_at_ms = fw_now_ms() + (int64_t)wait_ms;
    if (!s->closing && !(s->retry_timer = loop_add_timer(s->loop, wait_ms, on_retry_timer, s)))
        log_error("forward: cannot arm the retry timer");
}

void fw_kick(struct fw_sink *s)
{
    while (s->head && !http_post_busy(s->http) && !s->retry_at_ms) {
        if (fw_load_head(s) != 0) {
            if (s->head && !s->head->rec) {   /* out of memory: later */
                schedule_retry(s, 1000);
                return;
            }
            continue;   /* the unreadable record was set aside */
        }
        struct fw_item *it = s->head;
        const char *url = s->url[it->rec[0] == FW_TAG_TRACES ? 1 : 0];
        if (!build_body(s, it->rec + 1, it->len - 1) ||
            http_post_start(s->http, url, s->body.data, s->body.len, s->o.timeout_ms) != 0) {
            log_error("forward: cannot start a request to %s (out of memory?); trying again in 1 s", url);
            schedule_retry(s, 1000);
        }
        return;
    }
}

static bool grpc_retryable(long code)
{
    switch (code) {
    case 1: case 4: case 8: case 10: case 11: case 14: case 15:
        return true;
    default:
        return false;
    }
}

/* The verdict on an answer, and words for the log. */
static enum verdict judge(struct fw_sink *s, const struct http_post_result *r, char *why, size_t whylen)
{
    if (r->too_large) {
        snprintf(why, whylen, "an answer larger than 4 MiB");
        return REJECTED;
    }
    if (r->curl_code != 0) {
        snprintf(why, whylen, "%s", r->error);
        return RETRY;
    }
    struct buf text;
    buf_init(&text, 300);
    if (s->o.protocol == FORWARD_GRPC && r->status == 200) {
        const char *gs = http_post_header(s->http, "grpc-status");
        const char *gm = http_post_header(s->http, "grpc-message");
        if (gm)
            esc_text(&text, gm, strlen(gm) < 250 ? strlen(gm) : 250);
        char *end = NULL;
        long code = gs ? strtol(gs, &end, 10) : -1;
        bool valid = gs && end != gs && *end == 0 && code >= 0 && code <= 16;
        if (valid)
            snprintf(why, whylen, "grpc-status %ld%s%.*s", code, text.len ? ": " : "", (int)text.len,
                     text.data ? (const char *)text.data : "");
        else
            snprintf(why, whylen, "an answer without a valid grpc-status");
        buf_free(&text);
        return !valid || grpc_retryable(code) ? RETRY : code == 0 ? DELIVERED : REJECTED;
    }
    if (s->o.protocol == FORWARD_HTTP && r->status >= 200 && r->status < 300) {
        buf_free(&text);
        return DELIVERED;
    }
    esc_text(&text, r->body, r->body_len < 250 ? r->body_len : 250);
    snprintf(why, whylen, "HTTP %ld%s%.*s", r->status, text.len ? ": " : "", (int)text.len,
             text.data ? (const char *)text.data : "");
    buf_free(&text);
    return http_post_retryable(r) ? RETRY : REJECTED;
}

void fw_on_answer(void *ud, const struct http_post_result *r)
{
    struct fw_sink *s = ud;
    char why[600];
    enum verdict v = judge(s, r, why, sizeof why);
    struct fw_item *it = s->head;
    const char *what = it && it->rec && it->rec[0] == FW_TAG_TRACES ? "traces" : "profiles";
    if (v == RETRY) {
        s->st.retried++;
        uint64_t wait = (uint64_t)BACKOFF_FIRST_MS << (s->attempts < 7 ? s->attempts : 7);
        wait = wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait;
        wait = wait * (80 + next_random(s) % 41) / 100;
        if (r->retry_after_s > 0) {
            uint64_t asked = (uint64_t)(r->retry_after_s < RETRY_AFTER_MAX_S ? r->retry_after_s : RETRY_AFTER_MAX_S) * 1000;
            wait = asked > wait ? asked : wait;
        }
        log_msg(s->attempts ? LOG_DEBUG : LOG_WARN, "forward: %s: %s; retrying in %llu ms (%llu requests waiting)",
                s->o.url, why, (unsigned long long)wait, (unsigned long long)s->n_items);
        s->attempts++;
        schedule_retry(s, wait);
        return;
    }
    if (s->attempts)
        log_info("forward: %s answers again after %u failed attempts", s->o.url, s->attempts);
    s->attempts = 0;
    if (v == DELIVERED) {
        s->st.delivered++;
    } else {
        s->st.rejected++;
        log_warn("forward: %s rejected a %s request (%zu bytes) for good: %s; dropped", s->o.url, what,
                 it ? it->len - 1 : 0, why);
    }
    fw_drop_head(s);
    if (!s->closing)
        fw_kick(s);
}

void fw_drain(struct fw_sink *s, int64_t end_ms)
{
    uint64_t retried_before = s->st.retried;
    for (;;) {
        int64_t now = fw_now_ms();
        if (now >= end_ms)
            break;
        if (!http_post_busy(s->http)) {
            if (!s->head || s->st.retried - retried_before >= 2)
                break;   /* done, or the upstream is not answering: the log keeps the rest */
            if (s->retry_at_ms && s->retry_at_ms >= end_ms)
                break;
            if (s->retry_at_ms && s->retry_at_ms <= now)
                s->retry_at_ms = 0;
            fw_kick(s);
        }
        int64_t until = end_ms;
        if (!http_post_busy(s->http) && s->retry_at_ms > now && s->retry_at_ms < until)
            until = s->retry_at_ms;
        int64_t wait = until - now;
        http_post_poll(s->http, (int)(wait > 100 ? 100 : wait));
    }
}
