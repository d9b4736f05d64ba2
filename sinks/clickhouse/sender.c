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
 *
 * Exactly once: a batch whose samples ClickHouse may already hold (replayed from the log of an
 * earlier run, or after a failed samples INSERT) is first counted there by its batch_id; when
 * the rows are all there it is not sent again. The samples INSERT and that count carry the
 * same query_id ("lazybackend-<batch id>"), so while an INSERT of an earlier attempt is still
 * running on the server the count fails (query already running) and is retried, instead of
 * counting too early.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/wal.h"

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

static void describe(const struct http_post_result *res, char *out, size_t n)
{
    if (res->curl_code != 0) {
        snprintf(out, n, "%s", res->error);
        return;
    }
    const char *body = (const char *)res->body;   /* NUL-terminated (lib/http_post.h) */
    size_t len = strcspn(body, "\r\n");          /* the first line: the rest is a stack trace */
    if (len > 300)
        len = 300;
    snprintf(out, n, "HTTP %ld: %.*s", res->status, (int)len, body);
    /* The message may quote our data (a value that failed to parse): keep the log line a
     * printable line whatever the data holds. */
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
}

static void note_failure(struct ch_sink *s, int table, const struct http_post_result *res)
{
    int code = clickhouse_code((const char *)res->body);
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
    log_warn("clickhouse: %s `%s`.%s failed (will retry): %s",
             table == CH_INFLIGHT_DDL ? "CREATE" : table == CH_INFLIGHT_COUNT ? "SELECT count() FROM" : "INSERT INTO",
             s->o.database, table == CH_INFLIGHT_DDL ? "(schema)" : table == CH_INFLIGHT_COUNT ? "samples" :
             ch_table_name[table], s->last_error);
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

/* A batch whose parts are only in the log: read back. Unusable segments are set aside (.bad),
 * empty ones (a crash before their first complete record) deleted. */
static bool load_from_log(struct ch_sink *s, struct ch_batch *stub)
{
    char err[400];
    bool empty;
    struct ch_batch *b = ch_wal_load(s->wal, stub->seq, s->gzip, &empty, err, sizeof err);
    if (!b) {
        if (empty) {
            log_info("clickhouse: %s: deleted", err);
            wal_release(s->wal, stub->seq);
        } else {
            log_error("clickhouse: write-ahead log segment unusable, moved aside as .bad: %s", err);
            wal_quarantine(s->wal, stub->seq);
            s->st.batches_quarantined++;
        }
        ch_batch_free(stub);
        return false;
    }
    if (err[0])
        log_warn("clickhouse: %s (a request cut short by the crash, never acknowledged)", err);
    b->maybe_stored = stub->maybe_stored;
    ch_batch_free(stub);
    s->cur = b;
    return true;
}

/* The next batch to send: the memory queue first (older), then the spool. With the log the
 * spool holds an earlier version's batches, older than anything in the log: first then. */
static bool take_next(struct ch_sink *s)
{
    s->part = 0;
    s->cur_retried = false;
    s->cur_checked = false;
    while (!(s->wal && s->spool && ch_spool_count(s->spool) > 0) && (s->cur = ch_dequeue(s)) != NULL) {
        s->cur_spooled = false;
        if (!s->cur->in_log_only)
            return true;
        struct ch_batch *stub = s->cur;
        s->cur = NULL;
        if (load_from_log(s, stub))
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

/* The batch is in ClickHouse (sent now, or found there): its spool file or log segment goes. */
static void forget_batch(struct ch_sink *s)
{
    if (s->cur_spooled)
        ch_spool_remove_head(s->spool);
    else if (s->wal)
        wal_release(s->wal, s->cur->seq);
}

static void batch_done(struct ch_sink *s)
{
    uint64_t rows = s->cur->part[CH_SAMPLES].rows;
    s->st.batches_sent++;
    s->st.rows_sent += rows;
    forget_batch(s);
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
    if (s->cur && s->inflight == CH_SAMPLES) {   /* ambiguous: the rows may be stored */
        s->cur->maybe_stored = true;
        s->cur_checked = false;
    }
    s->retry_at = ch_now_ms() + backoff_ms(s);
}

/* One request; the body must outlive it. */
static int post(struct ch_sink *s, const char *url, const void *body, size_t len, bool gzip)
{
    uint64_t timeout = s->o.request_timeout_ms ? s->o.request_timeout_ms : 30000;
    return gzip ? http_post_start_gzip(s->http, url, body, len, timeout) : http_post_start(s->http, url, body, len, timeout);
}

static int post_next(struct ch_sink *s)
{
    char url[4096 + 64];
    if (!s->schema_ready) {
        assert(s->ddl_next < sizeof s->ddl / sizeof s->ddl[0]);
        s->inflight = CH_INFLIGHT_DDL;
        const char *q = s->ddl[s->ddl_next];
        return post(s, s->ddl_url, q, strlen(q), false);
    }
    assert(s->cur && s->part < CH_TABLES && s->cur->part[s->part].rows > 0);
    if (s->part == CH_SAMPLES && s->cur->maybe_stored && !s->cur_checked) {
        char *q = s->count_query;   /* the body must outlive the request */
        snprintf(q, sizeof s->count_query, "SELECT count() FROM `%s`.samples WHERE batch_id = %llu FORMAT TabSeparated",
                 s->o.database, (unsigned long long)s->cur->id);
        snprintf(url, sizeof url, "%s?query_id=lazybackend-%016llx", s->ddl_url, (unsigned long long)s->cur->id);
        s->inflight = CH_INFLIGHT_COUNT;
        return post(s, url, q, strlen(q), false);
    }
    const struct ch_part *p = &s->cur->part[s->part];
    s->inflight = s->part;
    /* a batch an older version wrote: its rows are for that version's columns */
    char *const *insert = s->cur->schema == 1 ? s->insert_url_v1 : s->insert_url;
    assert(insert[s->part] != NULL);
    if (s->part == CH_SAMPLES) {
        snprintf(url, sizeof url, "%s&query_id=lazybackend-%016llx", insert[CH_SAMPLES],
                 (unsigned long long)s->cur->id);
        return post(s, url, p->data, p->len, s->cur->gzip);
    }
    return post(s, insert[s->part], p->data, p->len, s->cur->gzip);
}

/* Starts the next request if none is in flight and no backoff is pending. */
void ch_kick(struct ch_sink *s)
{
    while (!http_post_busy(s->http)) {
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

/* The count of a batch's samples already in ClickHouse: all there, the batch is done without
 * sending them again; none, they are sent; some (an INSERT split across partitions cut short
 * by a ClickHouse crash), they are sent and ReplacingMergeTree folds the copies. */
static void counted(struct ch_sink *s, const char *body)
{
    char *end;
    unsigned long long n = strtoull(body, &end, 10);
    uint64_t rows = s->cur->part[CH_SAMPLES].rows;
    s->cur_checked = true;
    if (end == body) {
        log_warn("clickhouse: unexpected answer to the count of batch %016llx; sending it",
                 (unsigned long long)s->cur->id);
        return;
    }
    if (n >= rows) {
        s->st.duplicates_skipped++;
        log_info("clickhouse: batch %016llx (seq %llu, %llu rows) is in ClickHouse already: not sent again",
                 (unsigned long long)s->cur->id, (unsigned long long)s->cur->seq, (unsigned long long)rows);
        forget_batch(s);
        ch_batch_free(s->cur);
        s->cur = NULL;
    } else if (n > 0) {
        log_warn("clickhouse: batch %016llx: %llu of its %llu sample rows are in ClickHouse (a partial INSERT); "
                 "sending it whole, FINAL folds the copies",
                 (unsigned long long)s->cur->id, n, (unsigned long long)rows);
    }
}

void ch_on_http_done(void *ud, const struct http_post_result *res)
{
    struct ch_sink *s = ud;
    assert(s->inflight == CH_INFLIGHT_DDL || s->cur);   /* an INSERT or a count: the current batch */
    /* an ALTER … ADD COLUMN of a column the table has already (an upgraded table): done */
    bool ok = res->curl_code == 0 && res->status == 200;
    bool column_exists = !ok && res->curl_code == 0 && s->inflight == CH_INFLIGHT_DDL &&
                         s->ddl_next >= 1 + CH_TABLES && clickhouse_code((const char *)res->body) == 44;
    if (ok || column_exists) {
        if (s->attempts)
            log_info("clickhouse: ClickHouse accepts requests again (after %u failed attempts)", s->attempts);
        s->attempts = 0;
        s->retry_at = 0;
        s->n_errs = 0;
        if (s->inflight == CH_INFLIGHT_COUNT) {
            counted(s, (const char *)res->body);
        } else if (s->inflight == CH_INFLIGHT_DDL) {
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
        int code = clickhouse_code((const char *)res->body);
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
        if (!http_post_busy(s->http)) {
            if (!ch_has_work(s))
                break;
            if ((s->spool || s->wal) && s->st.attempts_failed - failures_before >= 2)
                break;
            if (s->retry_at >= end)
                break;
            ch_kick(s);
        }
        uint64_t until = end;
        if (!http_post_busy(s->http) && s->retry_at > now && s->retry_at < until)
            until = s->retry_at;
        uint64_t wait = until - now;
        http_post_poll(s->http, (int)(wait > 100 ? 100 : wait));
    }
}
