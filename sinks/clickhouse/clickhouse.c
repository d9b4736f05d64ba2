/*
 * clickhouse.c - the ClickHouse sink: the vtable, the queue of sealed batches, the sender and
 * shutdown. Rows are built by rows.c, spooled by spool.c, sent by http.c.
 *
 * Life of a request's rows:
 *   sample events -> open batch (ch_rows) -> request_end: kept (acknowledged) or rolled back
 *   -> sealed at --clickhouse-batch-rows or --clickhouse-flush-interval (gzip'd per table)
 *   -> memory queue, or the spool when memory is full or the spool already holds older batches
 *   -> sent one part at a time (frames, stacks, resources, samples), oldest batch first
 *   -> deleted when every part got HTTP 200.
 * A failed part is retried after an exponential backoff with jitter; a failure says nothing
 * about whether ClickHouse stored the rows (a timeout after the insert, a connection cut), so a
 * batch may arrive twice: its rows then carry the same batch_id and row_index and
 * ReplacingMergeTree / FINAL folds them (the README (ClickHouse sink)).
 *
 * Invariant: nothing acknowledged is freed before ClickHouse accepted it or it is on disk. The
 * only refusals are up front (admit, or request_end when there is no room for the rows): the
 * client is told UNAVAILABLE and retries.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/clickhouse/clickhouse.h"

#define BACKOFF_BASE_MS 100u
#define BACKOFF_MAX_MS 5000u
#define STATS_EVERY_MS 10000u
#define SPOOL_RETRY_MS 5000u
#define MAX_DISTINCT_ERRORS 32
#define SEAL_BYTES_MAX ((size_t)16 << 20)
#define OPEN_BATCH_MIN_LIMIT ((size_t)64 << 20)
#define OPEN_BATCH_MAX_LIMIT ((size_t)1 << 30)   /* keeps row_index (UInt32) far from wrapping */

struct stats {
    uint64_t requests_queued, requests_refused, requests_failed;
    uint64_t batches_sealed, batches_sent, rows_sent, bytes_sent;
    uint64_t attempts_failed, batches_retried, batches_spooled, batches_replayed, batches_quarantined;
};

struct ch_sink {
    struct clickhouse_sink_options o;
    char *strings;               /* one allocation holding the copied option strings */
    struct loop *loop;
    struct ch_http *http;
    struct ch_rows *rows;
    size_t seal_bytes;
    /* URLs and statements */
    char *ddl_url;
    char *insert_url[CH_TABLES];
    char *ddl[1 + CH_TABLES];
    /* the spool */
    struct ch_spool *spool;
    uint64_t spool_retry_at;     /* after a write error, don't try again before this */
    /* the memory queue: sealed batches, oldest first */
    struct ch_batch *qhead, *qtail;
    size_t qbytes;
    uint64_t next_seq;
    /* the sender */
    struct ch_batch *cur;        /* being sent (popped from the queue or loaded from the spool) */
    bool cur_spooled, cur_retried;
    int part;                    /* next part of cur to send */
    int inflight;                /* table of the request in flight; -1: a DDL statement */
    bool schema_ready;
    size_t ddl_next;
    unsigned attempts;           /* consecutive failures */
    uint64_t retry_at;
    uint64_t retry_timer, flush_timer, stats_timer;
    uint64_t rng;
    bool closing, refusing;
    /* errors already logged since the last success */
    struct logged_error { int table, code; } errs[MAX_DISTINCT_ERRORS];
    size_t n_errs;
    char last_error[256];
    struct stats st;
};

static void kick(struct ch_sink *s);

/* ---- small helpers ---- */

static uint64_t next_random(struct ch_sink *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t mem_bytes(const struct ch_sink *s)
{
    return s->qbytes + (s->cur ? s->cur->bytes : 0);
}

static bool spool_usable(const struct ch_sink *s)
{
    return s->spool && ch_now_ms() >= s->spool_retry_at;
}

static bool spool_has_room(const struct ch_sink *s)
{
    return spool_usable(s) && ch_spool_bytes(s->spool) < ch_spool_max_bytes(s->spool);
}

static bool has_work(const struct ch_sink *s)
{
    return s->cur || s->qhead || (s->spool && ch_spool_count(s->spool) > 0);
}

static char *url_encode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(3 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = 0;
    return out;
}

static char *format(const char *fmt, const char *a, const char *b)
{
    int n = snprintf(NULL, 0, fmt, a, b);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p)
        snprintf(p, (size_t)n + 1, fmt, a, b);
    return p;
}

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
    if (s->n_errs < MAX_DISTINCT_ERRORS)
        s->errs[s->n_errs++] = (struct logged_error){ table, code };
    log_warn("clickhouse: %s `%s`.%s failed (will retry): %s", table < 0 ? "CREATE" : "INSERT INTO",
             s->o.database, table < 0 ? "(schema)" : ch_table_name[table], s->last_error);
}

static void log_stats(struct ch_sink *s, bool final)
{
    const struct stats *t = &s->st;
    char spool[160] = "no spool";
    if (s->spool)
        snprintf(spool, sizeof spool, "%zu batches (%llu bytes) in the spool", ch_spool_count(s->spool),
                 (unsigned long long)ch_spool_bytes(s->spool));
    log_msg(final ? LOG_INFO : LOG_DEBUG,
            "clickhouse: %s%llu requests queued, %llu refused, %llu failed; batches: %llu sealed, %llu sent "
            "(%llu rows, %llu bytes), %llu retried (%llu failed attempts), %llu spooled, %llu replayed from "
            "the spool, %llu quarantined; %zu bytes queued in memory; %s",
            final ? "stopped: " : "",
            (unsigned long long)t->requests_queued, (unsigned long long)t->requests_refused,
            (unsigned long long)t->requests_failed, (unsigned long long)t->batches_sealed,
            (unsigned long long)t->batches_sent, (unsigned long long)t->rows_sent,
            (unsigned long long)t->bytes_sent, (unsigned long long)t->batches_retried,
            (unsigned long long)t->attempts_failed, (unsigned long long)t->batches_spooled,
            (unsigned long long)t->batches_replayed, (unsigned long long)t->batches_quarantined,
            mem_bytes(s), spool);
}

/* ---- timers ---- */

static void on_retry_timer(struct loop *l, void *ud)
{
    (void)l;
    struct ch_sink *s = ud;
    s->retry_timer = 0;
    kick(s);
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
    return d / 2 + next_random(s) % (d + 1);
}

static void on_stats_timer(struct loop *l, void *ud)
{
    struct ch_sink *s = ud;
    log_stats(s, false);
    s->stats_timer = loop_add_timer(l, STATS_EVERY_MS, on_stats_timer, s);
}

/* ---- the queue ---- */

static void enqueue(struct ch_sink *s, struct ch_batch *b)
{
    b->next = NULL;
    if (s->qtail)
        s->qtail->next = b;
    else
        s->qhead = b;
    s->qtail = b;
    s->qbytes += b->bytes;
}

static struct ch_batch *dequeue(struct ch_sink *s)
{
    struct ch_batch *b = s->qhead;
    if (!b)
        return NULL;
    s->qhead = b->next;
    if (!s->qhead)
        s->qtail = NULL;
    assert(s->qbytes >= b->bytes);
    s->qbytes -= b->bytes;
    b->next = NULL;
    return b;
}

/* Memory while it has room and nothing older waits on disk (delivery stays in order);
 * the spool otherwise. A batch the spool cannot take stays in memory: it is acknowledged. */
static void place(struct ch_sink *s, struct ch_batch *b)
{
    bool to_disk = s->spool && (ch_spool_count(s->spool) > 0 || mem_bytes(s) + b->bytes > s->o.max_queue_bytes);
    if (to_disk && spool_has_room(s)) {
        char err[300];
        if (ch_spool_write(s->spool, b, false, err, sizeof err) == 0) {
            s->st.batches_spooled++;
            ch_batch_free(b);
            return;
        }
        log_error("clickhouse: cannot spool batch %llu, keeping it in memory: %s", (unsigned long long)b->seq, err);
        s->spool_retry_at = ch_now_ms() + SPOOL_RETRY_MS;
    }
    enqueue(s, b);
}

static void seal(struct ch_sink *s)
{
    if (s->flush_timer) {
        loop_del_timer(s->loop, s->flush_timer);
        s->flush_timer = 0;
    }
    if (ch_rows_bytes(s->rows) == 0)
        return;
    struct ch_batch *b = ch_rows_seal(s->rows, s->next_seq);
    if (!b) {
        log_error("clickhouse: out of memory compressing a batch; it stays open");
        return;
    }
    s->next_seq++;
    s->st.batches_sealed++;
    place(s, b);
}

static void on_flush_timer(struct loop *l, void *ud)
{
    (void)l;
    struct ch_sink *s = ud;
    s->flush_timer = 0;
    seal(s);
    kick(s);
}

/* ---- the sender ---- */

/* The next batch to send: the memory queue first (older), then the spool. */
static bool take_next(struct ch_sink *s)
{
    s->part = 0;
    s->cur_retried = false;
    if ((s->cur = dequeue(s)) != NULL) {
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
static void kick(struct ch_sink *s)
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
        } else if (s->closing && !has_work(s)) {
            return;
        }
        if (post_next(s) == 0)
            return;
        snprintf(s->last_error, sizeof s->last_error, "libcurl refused to start the request");
        log_error("clickhouse: %s", s->last_error);
        failed_attempt(s);
    }
}

static void on_http_done(void *ud, const struct ch_http_result *res)
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
    kick(s);
}

/* ---- the sink events ---- */

static struct ch_sink *state(struct sink *sk) { return sk->ctx; }

static bool has_room(struct ch_sink *s)
{
    return mem_bytes(s) + ch_rows_bytes(s->rows) < s->o.max_queue_bytes || spool_has_room(s);
}

static void refusal(struct ch_sink *s, char *why, size_t whylen)
{
    s->st.requests_refused++;
    snprintf(why, whylen,
             "ClickHouse sink full: %zu bytes queued in memory (max %zu), %llu bytes spooled (max %llu)%s%s",
             mem_bytes(s) + ch_rows_bytes(s->rows), s->o.max_queue_bytes,
             (unsigned long long)(s->spool ? ch_spool_bytes(s->spool) : 0),
             (unsigned long long)(s->spool ? ch_spool_max_bytes(s->spool) : 0),
             s->last_error[0] ? "; last ClickHouse error: " : "", s->last_error);
    if (!s->refusing)
        log_warn("clickhouse: refusing requests: %s", why);
    s->refusing = true;
}

static int on_admit(struct sink *sk, char *why, size_t whylen)
{
    struct ch_sink *s = state(sk);
    if (has_room(s)) {
        if (s->refusing)
            log_info("clickhouse: accepting requests again");
        s->refusing = false;
        return 0;
    }
    refusal(s, why, whylen);
    return -1;
}

static void on_request_begin(struct sink *sk, const struct lb_request *r)
{
    struct ch_sink *s = state(sk);
    uint64_t id = next_random(s);
    ch_rows_request_begin(s->rows, r, id ? id : 1);
}

static void on_resource_begin(struct sink *sk, const struct lb_resource *r) { ch_rows_resource(state(sk)->rows, r); }
static void on_profile_begin(struct sink *sk, const struct lb_profile *p) { ch_rows_profile(state(sk)->rows, p); }
static void on_sample(struct sink *sk, const struct lb_sample *smp) { ch_rows_sample(state(sk)->rows, smp); }

static int on_request_end(struct sink *sk, const struct lb_request *r, char *why, size_t whylen)
{
    (void)r;
    struct ch_sink *s = state(sk);
    const char *failed = ch_rows_failed(s->rows);
    if (failed) {
        snprintf(why, whylen, "%s", failed);
        ch_rows_rollback(s->rows);
        s->st.requests_failed++;
        return -1;
    }
    if (!has_room(s)) {
        ch_rows_rollback(s->rows);
        refusal(s, why, whylen);
        return -1;
    }
    ch_rows_commit(s->rows);
    s->st.requests_queued++;
    if (ch_rows_samples(s->rows) >= s->o.batch_rows || ch_rows_bytes(s->rows) >= s->seal_bytes ||
        mem_bytes(s) + ch_rows_bytes(s->rows) >= s->o.max_queue_bytes)
        seal(s);
    else if (!s->flush_timer && ch_rows_bytes(s->rows) > 0)
        s->flush_timer = loop_add_timer(s->loop, s->o.flush_interval_ms, on_flush_timer, s);
    kick(s);
    return 0;
}

static void on_request_abort(struct sink *sk, const struct lb_request *r, const char *reason)
{
    (void)r;
    (void)reason;
    ch_rows_rollback(state(sk)->rows);
}

/* ---- shutdown ---- */

static void cancel_timers(struct ch_sink *s)
{
    uint64_t *t[] = { &s->retry_timer, &s->flush_timer, &s->stats_timer };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (*t[i])
            loop_del_timer(s->loop, *t[i]);
        *t[i] = 0;
    }
}

/* Sends what it can before `end`. Stops early when ClickHouse keeps failing and a spool can
 * keep the rest: there is no point spending the whole shutdown timeout on a dead server. */
static void drain(struct ch_sink *s, uint64_t end)
{
    uint64_t failures_before = s->st.attempts_failed;
    for (;;) {
        uint64_t now = ch_now_ms();
        if (now >= end)
            break;
        if (!ch_http_busy(s->http)) {
            if (!has_work(s))
                break;
            if (s->spool && s->st.attempts_failed - failures_before >= 2)
                break;
            if (s->retry_at >= end)
                break;
            kick(s);
        }
        uint64_t until = end;
        if (!ch_http_busy(s->http) && s->retry_at > now && s->retry_at < until)
            until = s->retry_at;
        uint64_t wait = until - now;
        ch_http_poll(s->http, (int)(wait > 100 ? 100 : wait));
    }
}

/* What is still in memory goes to the spool, over its cap if need be; without a spool it is
 * lost, and said so. */
static void spill(struct ch_sink *s)
{
    uint64_t lost_rows = 0, lost_batches = 0;
    struct ch_batch *b;
    if (s->cur && !s->cur_spooled)
        enqueue(s, s->cur);      /* back in front of its successors: ordering by seq below */
    else if (s->cur)
        ch_batch_free(s->cur);   /* its file is still there */
    s->cur = NULL;
    while ((b = dequeue(s)) != NULL) {
        char err[300];
        if (s->spool && ch_spool_write(s->spool, b, true, err, sizeof err) == 0) {
            s->st.batches_spooled++;
        } else {
            if (s->spool)
                log_error("clickhouse: cannot spool batch %llu at shutdown: %s", (unsigned long long)b->seq, err);
            lost_batches++;
            lost_rows += b->part[CH_SAMPLES].rows;
        }
        ch_batch_free(b);
    }
    if (lost_batches)
        log_error("clickhouse: %llu acknowledged batches (%llu sample rows) could not be delivered nor spooled "
                  "and are lost%s",
                  (unsigned long long)lost_batches, (unsigned long long)lost_rows,
                  s->spool ? "" : " (set --clickhouse-spool-dir to keep them for the next start)");
}

static void free_sink(struct ch_sink *s)
{
    cancel_timers(s);
    ch_http_free(s->http);
    ch_rows_free(s->rows);
    ch_spool_free(s->spool);
    ch_batch_free(s->cur);
    struct ch_batch *b;
    while ((b = dequeue(s)) != NULL)
        ch_batch_free(b);
    free(s->ddl_url);
    for (int t = 0; t < CH_TABLES; t++)
        free(s->insert_url[t]);
    for (size_t i = 0; i < sizeof s->ddl / sizeof s->ddl[0]; i++)
        free(s->ddl[i]);
    free(s->strings);
    free(s);
}

static void on_close(struct sink *sk, int deadline_ms)
{
    struct ch_sink *s = state(sk);
    s->closing = true;
    cancel_timers(s);
    seal(s);
    drain(s, ch_now_ms() + (uint64_t)(deadline_ms > 0 ? deadline_ms : 0));
    if (ch_http_busy(s->http)) {
        /* Cut mid-request: ClickHouse may or may not have the rows; the batch is spooled and
         * re-sent, and batch_id/row_index let queries ignore the second copy. */
        ch_http_cancel(s->http);
        log_warn("clickhouse: shutdown timeout with a request in flight");
    }
    spill(s);
    log_stats(s, true);
    free_sink(s);
    sk->ctx = NULL;
}

static const struct sink_type clickhouse_type = {
    .name = "clickhouse",
    .admit = on_admit,
    .request_begin = on_request_begin,
    .resource_begin = on_resource_begin,
    .profile_begin = on_profile_begin,
    .sample = on_sample,
    .request_end = on_request_end,
    .request_abort = on_request_abort,
    .close = on_close,
};

/* ---- construction ---- */

void clickhouse_sink_defaults(struct clickhouse_sink_options *o)
{
    memset(o, 0, sizeof *o);
    o->url = CLICKHOUSE_DEFAULT_URL;
    o->database = CLICKHOUSE_DEFAULT_DATABASE;
    o->batch_rows = CLICKHOUSE_DEFAULT_BATCH_ROWS;
    o->flush_interval_ms = CLICKHOUSE_DEFAULT_FLUSH_INTERVAL_MS;
    o->max_queue_bytes = CLICKHOUSE_DEFAULT_MAX_QUEUE_BYTES;
    o->spool_max_bytes = CLICKHOUSE_DEFAULT_SPOOL_MAX_BYTES;
    o->request_timeout_ms = CLICKHOUSE_DEFAULT_REQUEST_TIMEOUT_MS;
}

static bool is_identifier(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static int check_options(const struct clickhouse_sink_options *o, char *err, size_t errlen)
{
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) ||
        strpbrk(o->url, "?# \t\r\n")) {
        snprintf(err, errlen, "--clickhouse-url must be http[s]://host:port[/path] without a query string");
        return -1;
    }
    if (!is_identifier(o->database)) {
        snprintf(err, errlen, "--clickhouse-database must be an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64)");
        return -1;
    }
    if (o->batch_rows == 0 || o->flush_interval_ms == 0 || o->max_queue_bytes < 4096) {
        snprintf(err, errlen, "batch rows and flush interval must be positive, the queue at least 4 KiB");
        return -1;
    }
    return 0;
}

/* Copies the option strings into one block so the caller's may go away. */
static int copy_strings(struct ch_sink *s, char *err, size_t errlen)
{
    const char **f[] = { &s->o.url, &s->o.database, &s->o.user, &s->o.password, &s->o.spool_dir };
    size_t total = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        total += *f[i] ? strlen(*f[i]) + 1 : 0;
    char *p = s->strings = malloc(total + 1);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!*f[i])
            continue;
        size_t n = strlen(*f[i]) + 1;
        memcpy(p, *f[i], n);
        *f[i] = p;
        p += n;
    }
    return 0;
}

static int build_statements(struct ch_sink *s, char *err, size_t errlen)
{
    size_t base_len = strlen(s->o.url);
    while (base_len > 0 && s->o.url[base_len - 1] == '/')
        base_len--;
    char base[2048];
    if (base_len >= sizeof base - 1) {
        snprintf(err, errlen, "--clickhouse-url is too long");
        return -1;
    }
    memcpy(base, s->o.url, base_len);
    base[base_len] = 0;
    s->ddl_url = format("%s/%s", base, "");
    s->ddl[0] = format(ch_create_database, s->o.database, NULL);
    for (int t = 0; t < CH_TABLES; t++) {
        s->ddl[1 + t] = format(ch_create_table[t], s->o.database, NULL);
        char *q = NULL, *enc = NULL;
        int n = snprintf(NULL, 0, "INSERT INTO `%s`.%s (%s) FORMAT RowBinary", s->o.database, ch_table_name[t],
                         ch_table_columns[t]);
        if (n > 0 && (q = malloc((size_t)n + 1)) != NULL) {
            snprintf(q, (size_t)n + 1, "INSERT INTO `%s`.%s (%s) FORMAT RowBinary", s->o.database,
                     ch_table_name[t], ch_table_columns[t]);
            enc = url_encode(q);
        }
        s->insert_url[t] = enc ? format("%s/?query=%s", base, enc) : NULL;
        free(q);
        free(enc);
        if (!s->insert_url[t] || !s->ddl[1 + t]) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (!s->ddl_url || !s->ddl[0]) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int open_spool(struct ch_sink *s, char *err, size_t errlen)
{
    if (!s->o.spool_dir) {
        log_warn("clickhouse: no --clickhouse-spool-dir: batches still unsent at shutdown will be lost");
        return 0;
    }
    char why[300];
    s->spool = ch_spool_open(s->o.spool_dir, s->o.spool_max_bytes, why, sizeof why);
    if (!s->spool) {
        snprintf(err, errlen, "spool: %s", why);
        return -1;
    }
    s->next_seq = ch_spool_last_seq(s->spool) + 1;
    if (ch_spool_count(s->spool))
        log_info("clickhouse: %zu batches (%llu bytes) left in %s by an earlier run; sending them first",
                 ch_spool_count(s->spool), (unsigned long long)ch_spool_bytes(s->spool), s->o.spool_dir);
    return 0;
}

static uint64_t seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
    }
    return v;
}

int clickhouse_sink_open(struct sink *out, const struct clickhouse_sink_options *o, const struct sink_env *env,
                         char *err, size_t errlen)
{
    if (check_options(o, err, errlen) != 0)
        return -1;
    if (!env || !env->loop) {
        snprintf(err, errlen, "the ClickHouse sink needs the event loop");
        return -1;
    }
    struct ch_sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->o = *o;
    s->loop = env->loop;
    s->rng = seed();
    s->next_seq = 1;
    s->seal_bytes = o->max_queue_bytes / 4 < SEAL_BYTES_MAX ? o->max_queue_bytes / 4 : SEAL_BYTES_MAX;
    size_t limit = o->max_queue_bytes > OPEN_BATCH_MIN_LIMIT ? o->max_queue_bytes : OPEN_BATCH_MIN_LIMIT;
    if (limit > OPEN_BATCH_MAX_LIMIT)
        limit = OPEN_BATCH_MAX_LIMIT;
    struct ch_http_options ho = {
        .connect_timeout_ms = 3000,
        .timeout_ms = o->request_timeout_ms ? (long)o->request_timeout_ms : 30000,
    };
    if (copy_strings(s, err, errlen) != 0 || build_statements(s, err, errlen) != 0 ||
        open_spool(s, err, errlen) != 0)
        goto fail;
    ho.user = s->o.user;
    ho.password = s->o.password;
    s->rows = ch_rows_new(limit);
    if (!s->rows) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->http = ch_http_new(s->loop, &ho, on_http_done, s, err, errlen);
    if (!s->http)
        goto fail;
    if (log_get_level() <= LOG_DEBUG)
        s->stats_timer = loop_add_timer(s->loop, STATS_EVERY_MS, on_stats_timer, s);
    out->type = &clickhouse_type;
    out->ctx = s;
    kick(s);   /* the CREATE statements go out as soon as the loop runs */
    return 0;
fail:
    free_sink(s);
    return -1;
}
