/*
 * sender.c - the ClickHouse sink's sender: one HTTP request at a time, first the CREATE
 * statements, then each batch part by part (frames, stacks, resources, samples), oldest batch
 * first; a batch is done when every part got HTTP 200.
 *
 * A failed request is retried after an exponential backoff with jitter; a failure says
 * nothing about whether ClickHouse stored the rows (a timeout after the insert, a connection
 * cut), so a batch may arrive twice: its rows then carry the same batch_id and row_index and
 * ReplacingMergeTree / FINAL folds them (docs/clickhouse.md). Errors are logged once
 * per statement and code until ClickHouse accepts again, so a server that is down for an hour
 * costs a few log lines, not thousands.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"

#define BACKOFF_BASE_MS 100u
#define BACKOFF_MAX_MS 5000u

/* ---- errors: logged once per (statement, code) until ClickHouse accepts again ---- */

/* ClickHouse's exception code from "Code: 60, e.displayText() = ..." (18.16) or "Code: 60.
 * DB::Exception: ..." (current); -1 when the body has none. */
static int clickhouse_code(const char *body)
{
    const char *p = strstr(body, "Code: ");
    if (!p || !isdigit((unsigned char)p[6]))
        return -1;
    long v = strtol(p + 6, NULL, 10);
    return v > 0 && v < 100000 ? (int)v : -1;
}

static void describe(const struct ch_http_result *res, char *out, size_t n)
{
    if (res->curl_code != 0) {
        snprintf(out, n, "%s", res->error);
        return;
    }
    size_t len = strcspn(res->body, "\r\n");   /* the first line: the rest is a stack trace */
    if (len > 300)
        len = 300;
    snprintf(out, n, "HTTP %ld: %.*s", res->status, (int)len, res->body);
    /* The message may quote our data (a value that failed to parse): keep the log line a
     * printable line whatever the data holds. */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
}

static void note_failure(struct ch_sink *s, int table, const struct ch_http_result *res)
{
    int code = clickhouse_code(res->body);
    if (res->curl_code != 0)
        code = 100000 + res->curl_code;
    else if (code < 0)
        code = 200000 + (int)res->status;
    describe(res, s->last_error, sizeof s->last_error);
    for (size_t i = 0; i < s->n_errs; i++)
        if (s->errs[i].table == table && s->errs[i].code == code)
            return;
    if (s->n_errs < CH_MAX_DISTINCT_ERRORS)
        s->errs[s->n_errs++] = (struct ch_logged_error){ table, code };
    log_warn("clickhouse: %s `%s`.%s failed (will retry): %s", table < 0 ? "CREATE" : "INSERT INTO",
             s->o.database, table < 0 ? "(schema)" : ch_table_name[table], s->last_error);
}

/* ---- retries ---- */

static void on_retry_timer(struct loop *l, void *ud)
{
    (void)l;
    struct ch_sink *s = ud;
    s->retry_timer = 0;
    ch_kick(s);
}

static void arm_retry(struct ch_sink *s)
{
    if (s->retry_timer || s->closing)
        return;
    uint64_t now = ch_now_ms();
    s->retry_timer = loop_add_timer(s->loop, s->retry_at > now ? s->retry_at - now : 0, on_retry_timer, s);
}

/* Exponential, capped, with +-50% jitter so that many backends restarted together do not
 * knock on ClickHouse in step. */
static uint64_t backoff_ms(struct ch_sink *s)
{
    unsigned shift = s->attempts > 16 ? 16 : s->attempts - 1;
    uint64_t d = (uint64_t)BACKOFF_BASE_MS << shift;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d / 2 + ch_random(s) % (d + 1);
}

/* ---- the sender ---- */

/* The next batch to send: the memory queue first (older), then the spool. */
static bool take_next(struct ch_sink *s)
{
    s->part = 0;
    s->cur_retried = false;
    if ((s->cur = ch_dequeue(s)) != NULL) {
        s->cur_spooled = false;
        return true;
    }
    while (s->spool && ch_spool_count(s->spool) > 0) {
        char err[400];
        s->cur = ch_spool_load_head(s->spool, err, sizeof err);
        if (s->cur) {
            s->cur_spooled = true;
            s->st.batches_replayed++;
            return true;
        }
        log_error("clickhouse: spooled batch unusable, moved aside as .bad: %s", err);
        ch_spool_quarantine_head(s->spool);
        s->st.batches_quarantined++;
    }
    return false;
}

static void batch_done(struct ch_sink *s)
{
    uint64_t rows = s->cur->part[CH_SAMPLES].rows;
    s->st.batches_sent++;
    s->st.rows_sent += rows;
    if (s->cur_spooled)
        ch_spool_remove_head(s->spool);
    log_debug("clickhouse: batch %016llx (seq %llu, %llu rows) delivered", (unsigned long long)s->cur->id,
              (unsigned long long)s->cur->seq, (unsigned long long)rows);
    ch_batch_free(s->cur);
    s->cur = NULL;
}

static void failed_attempt(struct ch_sink *s)
{
    s->attempts++;
    s->st.attempts_failed++;
    if (s->cur && !s->cur_retried && s->inflight >= 0) {
        s->cur_retried = true;
        s->st.batches_retried++;
    }
    s->retry_at = ch_now_ms() + backoff_ms(s);
}

static int post_next(struct ch_sink *s)
{
    if (!s->schema_ready) {
        assert(s->ddl_next < sizeof s->ddl / sizeof s->ddl[0]);
        s->inflight = -1;
        const char *q = s->ddl[s->ddl_next];
        return ch_http_post(s->http, s->ddl_url, q, strlen(q), false);
    }
    assert(s->cur && s->part < CH_TABLES && s->cur->part[s->part].rows > 0);
    const struct ch_part *p = &s->cur->part[s->part];
    s->inflight = s->part;
    return ch_http_post(s->http, s->insert_url[s->part], p->data, p->len, true);
}

/* Starts the next request if none is in flight and no backoff is pending. */
void ch_kick(struct ch_sink *s)
{
    while (!ch_http_busy(s->http)) {
        if (ch_now_ms() < s->retry_at) {
            arm_retry(s);
            return;
        }
        if (s->schema_ready) {
            if (!s->cur && !take_next(s))
                return;
            while (s->part < CH_TABLES && s->cur->part[s->part].rows == 0)
                s->part++;
            if (s->part == CH_TABLES) {
                batch_done(s);
                continue;
            }
        } else if (s->closing && !ch_has_work(s)) {
            return;
        }
        if (post_next(s) == 0)
            return;
        snprintf(s->last_error, sizeof s->last_error, "libcurl refused to start the request");
        log_error("clickhouse: %s", s->last_error);
        failed_attempt(s);
    }
}

void ch_on_http_done(void *ud, const struct ch_http_result *res)
{
    struct ch_sink *s = ud;
    assert(s->inflight < 0 || s->cur);   /* an INSERT is always for the current batch */
    if (res->ok) {
        if (s->attempts)
            log_info("clickhouse: ClickHouse accepts requests again (after %u failed attempts)", s->attempts);
        s->attempts = 0;
        s->retry_at = 0;
        s->n_errs = 0;
        if (s->inflight < 0) {
            if (++s->ddl_next == sizeof s->ddl / sizeof s->ddl[0]) {
                s->schema_ready = true;
                log_info("clickhouse: tables ready in database `%s`", s->o.database);
            }
        } else {
            s->st.bytes_sent += s->cur->part[s->part].len;
            s->part++;
        }
    } else {
        note_failure(s, s->inflight, res);
        int code = clickhouse_code(res->body);
        if (res->curl_code == 0 && (code == 60 || code == 81)) {
            /* Table or database gone (dropped by hand?): create them again; the rows that
             * referenced now-missing stacks are lost, so write every stack anew. */
            s->schema_ready = false;
            s->ddl_next = 0;
            ch_rows_forget(s->rows);
        }
        failed_attempt(s);
    }
    ch_kick(s);
}

/* Sends what it can before `end`. Stops early when ClickHouse keeps failing and a spool can
 * keep the rest: there is no point spending the whole shutdown timeout on a dead server. */
void ch_drain(struct ch_sink *s, uint64_t end)
{
    uint64_t failures_before = s->st.attempts_failed;
    for (;;) {
        uint64_t now = ch_now_ms();
        if (now >= end)
            break;
        if (!ch_http_busy(s->http)) {
            if (!ch_has_work(s))
                break;
            if (s->spool && s->st.attempts_failed - failures_before >= 2)
                break;
            if (s->retry_at >= end)
                break;
            ch_kick(s);
        }
        uint64_t until = end;
        if (!ch_http_busy(s->http) && s->retry_at > now && s->retry_at < until)
            until = s->retry_at;
        uint64_t wait = until - now;
        ch_http_poll(s->http, (int)(wait > 100 ? 100 : wait));
    }
}
