/*
 * clickhouse.c - the ClickHouse sink: the vtable (admit, the request's events, close), its
 * opening, and its statistics. Rows are built by rows.c; sealed batches wait in queue.c's
 * memory queue or in the spool (spool.c); sender.c sends them through lib/http_post.c.
 *
 * Life of a request's rows:
 *   sample events -> open batch (ch_rows) -> request_end: kept (acknowledged) or rolled back
 *   -> sealed at --clickhouse-batch-rows or --clickhouse-flush-interval (per table, gzip'd unless --clickhouse-compression none)
 *   -> memory queue, or the spool when memory is full or the spool already holds older batches
 *   -> sent one part at a time (frames, stacks, resources, samples), oldest batch first
 *   -> deleted when every part got HTTP 200 (a failed part is retried: sender.c says how, and
 *      why a batch may then arrive twice).
 *
 * Durability (the default, --clickhouse-durability wal): request_end also appends the request's
 * rows to the write-ahead log (walrec.c, sinks/wal.h; one segment per batch) and marks the
 * group commit (lib/commit.h) dirty; the end of the loop turn fdatasyncs once for all of the
 * turn's requests before the transport lets their replies out. A batch's segment is deleted
 * once ClickHouse accepted the batch; the next start sends what is left, in order, asking
 * ClickHouse first whether a batch's samples are there already (exactly once). Memory mode
 * keeps rows in memory (and the spool, when given) only: a crash loses what was queued.
 *
 * Invariant: nothing acknowledged is freed before ClickHouse accepted it or it is on disk. The
 * only refusals are up front (admit, or request_end when there is no room for the rows): the
 * client is told UNAVAILABLE and retries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/commit.h"
#include "lib/http_post.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"
#include "sinks/clickhouse/clickhouse.h"
#include "sinks/wal.h"

#define STATS_EVERY_MS 10000u
#define MAX_ANSWER ((size_t)1 << 20)   /* counts and error texts; an INSERT answers nothing */
#define SEAL_BYTES_MAX ((size_t)16 << 20)
#define OPEN_BATCH_MIN_LIMIT ((size_t)64 << 20)
#define OPEN_BATCH_MAX_LIMIT ((size_t)1 << 30)   /* keeps row_index (UInt32) far from wrapping */

/* ---- statistics ---- */

static void log_stats(struct ch_sink *s, bool final)
{
    const struct clickhouse_counts *t = &s->st;
    char spool[200] = "no spool";
    if (s->wal) {
        struct wal_stats w;
        wal_get_stats(s->wal, &w);
        snprintf(spool, sizeof spool, "%llu batches (%llu bytes) in the write-ahead log, %llu syncs (%llu failed), "
                 "%llu duplicates skipped", (unsigned long long)w.segments, (unsigned long long)w.bytes,
                 (unsigned long long)w.syncs, (unsigned long long)w.sync_failures,
                 (unsigned long long)s->st.duplicates_skipped);
    } else if (s->spool)
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
            ch_mem_bytes(s), spool);
}

static void on_stats_timer(struct loop *l, void *ud)
{
    struct ch_sink *s = ud;
    log_stats(s, false);
    s->stats_timer = loop_add_timer(l, STATS_EVERY_MS, on_stats_timer, s);
}

/* ---- the sink events ---- */

static struct ch_sink *state(struct sink *sk) { return sk->ctx; }

/* With the log: its byte cap is the only limit (sealed batches beyond the memory queue are
 * dropped from memory and read back from the log). */
static uint64_t wal_bytes(const struct ch_sink *s)
{
    struct wal_stats w;
    wal_get_stats(s->wal, &w);
    return w.bytes;
}

static bool has_room(const struct ch_sink *s)
{
    if (s->wal)
        return wal_bytes(s) < wal_max_bytes(s->wal);
    return ch_mem_bytes(s) + ch_rows_bytes(s->rows) < s->o.max_queue_bytes || ch_can_spool(s);
}

/* Why the sink cannot take a request (has_room said no), for the refusal and for ready. */
static void describe_full(const struct ch_sink *s, char *why, size_t whylen)
{
    if (s->wal) {
        snprintf(why, whylen, "ClickHouse sink full: the write-ahead log in %s holds %llu bytes (max %llu)%s%s",
                 wal_dir(s->wal), (unsigned long long)wal_bytes(s), (unsigned long long)wal_max_bytes(s->wal),
                 s->last_error[0] ? "; last ClickHouse error: " : "", s->last_error);
        return;
    }
    snprintf(why, whylen,
             "ClickHouse sink full: %zu bytes queued in memory (max %zu), %llu bytes spooled (max %llu)%s%s",
             ch_mem_bytes(s) + ch_rows_bytes(s->rows), s->o.max_queue_bytes,
             (unsigned long long)(s->spool ? ch_spool_bytes(s->spool) : 0),
             (unsigned long long)(s->spool ? ch_spool_max_bytes(s->spool) : 0),
             s->last_error[0] ? "; last ClickHouse error: " : "", s->last_error);
}

static void refusal(struct ch_sink *s, char *why, size_t whylen)
{
    s->st.requests_refused++;
    describe_full(s, why, whylen);
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

/* For /healthz (sink.h): would a request as large as the last one fit now? Stricter than
 * admit, which cannot know a request's size: once the spool is full, admit still lets in
 * requests that request_end then refuses for want of memory, while this says no until memory
 * or the spool has room again (it recovers by itself as ClickHouse takes batches). Counts and
 * logs nothing. */
static int on_ready(const struct sink *sk, char *why, size_t whylen)
{
    const struct ch_sink *s = sk->ctx;
    if (s->wal ? wal_bytes(s) + s->last_request_bytes < wal_max_bytes(s->wal) : ch_can_spool(s) || ch_mem_bytes(s) + ch_rows_bytes(s->rows) + s->last_request_bytes < s->o.max_queue_bytes)
        return 0;
    describe_full(s, why, whylen);
    return -1;
}

static void on_request_begin(struct sink *sk, const struct lb_request *r)
{
    struct ch_sink *s = state(sk);
    uint64_t id = ch_random(s);
    ch_rows_request_begin(s->rows, r, id ? id : 1);
    s->request_begin_bytes = ch_rows_bytes(s->rows);
}

static void on_resource_begin(struct sink *sk, const struct lb_resource *r) { ch_rows_resource(state(sk)->rows, r); }
static void on_profile_begin(struct sink *sk, const struct lb_profile *p) { ch_rows_profile(state(sk)->rows, p); }
static void on_sample(struct sink *sk, const struct lb_sample *smp) { ch_rows_sample(state(sk)->rows, smp); }

/* After a failed write or sync the log ended the open batch's segment: the batch is sealed (its
 * rows are still sent) and the next request starts the next segment. */
static void move_past_ended_segment(struct ch_sink *s)
{
    if (wal_last_seq(s->wal) < s->next_seq)
        return;   /* the open batch's segment was never created, or is still open */
    if (ch_rows_bytes(s->rows) > 0)
        ch_seal(s);
    else
        s->next_seq = wal_last_seq(s->wal) + 1;
}

/* The request's rows go to the log before it may be acknowledged (synced at the end of the
 * turn, lib/commit.h). Full: refused. A write error: refused, and the open batch is sealed
 * since its segment takes no more records. */
static int log_request(struct ch_sink *s, char *why, size_t whylen)
{
    char err[300];
    int rc = ch_wal_append(s->wal, s->next_seq, s->rows, err, sizeof err);
    if (rc == 0) {
        if (s->commit)
            commit_dirty(s->commit);
        if (s->wal_failing)
            log_info("clickhouse: the write-ahead log takes records again");
        s->wal_failing = false;
        return 0;
    }
    ch_rows_rollback(s->rows);
    if (rc > 0) {
        s->st.requests_refused_full++;
        refusal(s, why, whylen);
        return -1;
    }
    s->st.requests_refused++;
    snprintf(why, whylen, "ClickHouse sink: cannot write the write-ahead log: %s", err);
    if (!s->wal_failing)   /* once until it works again: a full disk fails every request */
        log_error("clickhouse: %s (requests are refused until it works again)", why);
    s->wal_failing = true;
    move_past_ended_segment(s);
    return -1;
}

static int on_request_end(struct sink *sk, const struct lb_request *r, char *why, size_t whylen)
{
    (void)r;
    struct ch_sink *s = state(sk);
    ch_rows_request_end(s->rows);
    const char *failed = ch_rows_failed(s->rows);
    size_t now = ch_rows_bytes(s->rows);
    s->last_request_bytes = now > s->request_begin_bytes ? now - s->request_begin_bytes : 0;
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
    if (s->wal && log_request(s, why, whylen) != 0)
        return -1;
    ch_rows_commit(s->rows);
    s->st.requests_queued++;
    if (ch_rows_samples(s->rows) >= s->o.batch_rows || ch_rows_bytes(s->rows) >= s->seal_bytes ||
        ch_mem_bytes(s) + ch_rows_bytes(s->rows) >= s->o.max_queue_bytes)
        ch_seal(s);
    else if (ch_rows_bytes(s->rows) > 0)
        ch_seal_later(s);
    ch_kick(s);
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

static void free_sink(struct ch_sink *s)
{
    cancel_timers(s);
    if (s->commit)
        commit_del_writer(s->commit, s);   /* first: it ends a sync in flight */
    wal_close(s->wal);
    http_post_free(s->http);
    ch_rows_free(s->rows);
    ch_spool_free(s->spool);
    ch_batch_free(s->cur);
    struct ch_batch *b;
    while ((b = ch_dequeue(s)) != NULL)
        ch_batch_free(b);
    free(s->ddl_url);
    for (int t = 0; t < CH_TABLES; t++) {
        free(s->insert_url[t]);
        free(s->insert_url_v1[t]);
    }
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
    ch_seal(s);
    ch_drain(s, ch_now_ms() + (uint64_t)(deadline_ms > 0 ? deadline_ms : 0));
    if (http_post_busy(s->http)) {
        /* Cut mid-request: ClickHouse may or may not have the rows; the batch is spooled and
         * re-sent, and batch_id/row_index let queries ignore the second copy. */
        http_post_cancel(s->http);
        log_warn("clickhouse: shutdown timeout with a request in flight");
    }
    if (s->wal) {
        /* Everything acknowledged was synced at the end of its turn; this covers what decode
         * (no replies, no commit) wrote. What ClickHouse did not take waits in the log. */
        char err[300];
        if (wal_sync(s->wal, err, sizeof err) != 0)
            log_error("clickhouse: cannot sync the write-ahead log at shutdown: %s", err);
        if (wal_segment_count(s->wal))
            log_info("clickhouse: %zu batches left in the write-ahead log %s for the next start",
                     wal_segment_count(s->wal), wal_dir(s->wal));
    } else {
        ch_spill(s);
    }
    log_stats(s, true);
    sk->counts.lost = s->st.lost_rows;
    free_sink(s);
    sk->ctx = NULL;
}

static const struct sink_type clickhouse_type = {
    .name = "clickhouse",
    .admit = on_admit,
    .ready = on_ready,
    .request_begin = on_request_begin,
    .resource_begin = on_resource_begin,
    .profile_begin = on_profile_begin,
    .sample = on_sample,
    .request_end = on_request_end,
    .request_abort = on_request_abort,
    .close = on_close,
};

uint64_t ch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- statistics for /metrics ---- */

int clickhouse_sink_stats(const struct sink *sk, struct clickhouse_sink_stats *out)
{
    memset(out, 0, sizeof *out);
    if (sk->type != &clickhouse_type || !sk->ctx)
        return -1;
    const struct ch_sink *s = sk->ctx;
    out->counts = s->st;
    out->queue_rows = ch_rows_samples(s->rows);
    for (const struct ch_batch *b = s->qhead; b; b = b->next)
        out->queue_rows += b->part[CH_SAMPLES].rows;
    if (s->cur && !s->cur_spooled)
        out->queue_rows += s->cur->part[CH_SAMPLES].rows;
    out->queue_bytes = ch_mem_bytes(s) + ch_rows_bytes(s->rows);
    out->queue_max_bytes = s->o.max_queue_bytes;
    if (s->spool) {
        out->spool_batches = ch_spool_count(s->spool);
        out->spool_bytes = ch_spool_bytes(s->spool);
        out->spool_max_bytes = ch_spool_max_bytes(s->spool);
    }
    if (s->wal) {
        struct wal_stats w;
        wal_get_stats(s->wal, &w);
        out->wal_bytes = w.bytes;
        out->wal_records = w.records;
        out->wal_segments = w.segments;
        out->wal_max_bytes = wal_max_bytes(s->wal);
        out->wal_syncs = w.syncs;
        out->wal_sync_failures = w.sync_failures;
    }
    return 0;
}

/* ---- construction ---- */

/* The group commit's sync (lib/commit.h), in its three steps: what the records written since
 * the last one need (loop thread), the fdatasyncs (the commit thread), the outcome (loop
 * thread). On failure the replies that waited for it are withheld by the transport; the open
 * batch is sealed since its segment was ended (its records are still delivered: they were
 * simply not acknowledged). */
static void *sync_begin(void *ud) { return wal_commit_begin(((struct ch_sink *)ud)->wal); }

static int sync_end(void *ud, void *job)
{
    struct ch_sink *s = ud;
    (void)job;
    char err[300];
    if (wal_commit_end(s->wal, err, sizeof err) == 0)
        return 0;
    log_error("clickhouse: cannot sync the write-ahead log, the requests waiting for it are not acknowledged: %s",
              err);
    move_past_ended_segment(s);
    return -1;
}

static const struct commit_writer wal_writer = { sync_begin, wal_commit_run, sync_end };

/* The log, and what an earlier run left in it: queued first, in order, each to be checked
 * against ClickHouse before it is sent (it may have arrived before the crash). */
static int open_wal(struct ch_sink *s, const struct sink_env *env, char *err, size_t errlen)
{
    const char *dir = s->o.spool_dir ? s->o.spool_dir : CLICKHOUSE_DEFAULT_SPOOL_DIR;
    char why[400];
    s->wal = wal_open(dir, s->o.spool_max_bytes, why, sizeof why);
    if (!s->wal) {
        snprintf(err, errlen, "write-ahead log: %s (or --clickhouse-durability memory, which loses what is "
                 "queued in a crash)", why);
        return -1;
    }
    if (ch_spool_has_files(dir)) {   /* an earlier version's spooled batches: sent first */
        s->spool = ch_spool_open_unlocked(dir, s->o.spool_max_bytes, why, sizeof why);
        if (!s->spool) {
            snprintf(err, errlen, "spool: %s", why);
            return -1;
        }
    }
    uint64_t last = wal_last_seq(s->wal);
    if (s->spool && ch_spool_last_seq(s->spool) > last)
        last = ch_spool_last_seq(s->spool);
    s->next_seq = last + 1;
    size_t n = wal_segment_count(s->wal);
    for (size_t i = 0; i < n; i++) {
        struct ch_batch *b = calloc(1, sizeof *b);
        if (!b) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        b->seq = wal_segment_seq(s->wal, i);
        b->in_log_only = true;
        b->maybe_stored = true;
        ch_enqueue(s, b);
    }
    s->st.batches_replayed += n;
    if (n || s->spool)
        log_info("clickhouse: %zu batches left in %s by an earlier run%s; sending them first", n, dir,
                 s->spool ? " (and an earlier version's spool files)" : "");
    s->commit = env->commit;
    if (s->commit && commit_add_writer(s->commit, &wal_writer, s) != 0) {
        s->commit = NULL;
        snprintf(err, errlen, "too many writers on the group commit");
        return -1;
    }
    return 0;
}

static int open_spool(struct ch_sink *s, char *err, size_t errlen)
{
    if (!s->o.spool_dir) {
        log_warn("clickhouse: --clickhouse-durability memory without --clickhouse-spool-dir: batches still unsent "
                 "at shutdown, and everything queued at a crash, will be lost");
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
    if (ch_check_options(o, err, errlen) != 0)
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
    struct http_post_options ho = {
        .user_agent = "lazybackend-clickhouse",
        .headers = (const char *const[]){ "Content-Type: application/octet-stream" },
        .n_headers = 1,
        .max_answer = MAX_ANSWER,
        .connect_timeout_ms = 3000,
    };
    if (ch_copy_strings(s, err, errlen) != 0 || ch_build_statements(s, err, errlen) != 0 ||
        (o->durability == CLICKHOUSE_DURABILITY_WAL ? open_wal(s, env, err, errlen) : open_spool(s, err, errlen)) != 0)
        goto fail;
    ho.user = s->o.user;
    ho.password = s->o.password;
    s->rows = ch_rows_new(limit);
    if (!s->rows) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->gzip = s->o.compression == CLICKHOUSE_COMPRESSION_GZIP;
    ch_rows_set_gzip(s->rows, s->gzip);
    s->http = http_post_new(s->loop, &ho, ch_on_http_done, s, err, errlen);
    if (!s->http)
        goto fail;
    if (log_get_level() <= LOG_DEBUG)
        s->stats_timer = loop_add_timer(s->loop, STATS_EVERY_MS, on_stats_timer, s);
    out->type = &clickhouse_type;
    out->ctx = s;
    ch_kick(s);   /* the CREATE statements go out as soon as the loop runs */
    return 0;
fail:
    free_sink(s);
    return -1;
}
