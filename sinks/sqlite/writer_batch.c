/*
 * writer_batch.c - the SQLite sink's batches: one transaction holds many requests, each in a
 * savepoint of its own, and one COMMIT makes them all durable.
 *
 * Why: a COMMIT writes every page the transaction touched to the WAL (and with
 * synchronous=FULL fsyncs it). Small requests touch the same pages (the rollups, the indexes'
 * last pages), so one commit per request paid for those pages once per request; one commit
 * per batch pays once per batch.
 *
 * The rule that makes it safe: nothing is acknowledged before the COMMIT that holds it.
 *  - In `serve` the sink is a writer of the group commit (lib/commit.h): request_end marks
 *    the gate dirty, so the transport holds the reply; at the end of the loop turn the gate
 *    starts a sync, whose begin step (sq_gate's, on the loop thread) commits the batch; the
 *    held replies go out only when the sync reports success. A failed COMMIT makes the sync
 *    fail, and the transport closes the connections whose replies were held (the clients see
 *    no acknowledgement and retry).
 *  - In `decode` nothing is acknowledged to anyone: a batch is committed when it reaches a
 *    bound (requests, bytes, age) and at close; a batch lost there is counted in the sink's
 *    `lost` samples, and the command exits 1 saying so.
 * One request failing inside a batch rolls back to its own savepoint: its batch-mates stay.
 * If SQLite rolled back the whole transaction by itself (disk full, I/O error), every request
 * of the batch is lost: their replies fail (serve) or their samples are counted lost (decode).
 */
#include <inttypes.h>
#include <stdio.h>

#include "lib/clock.h"
#include "lib/commit.h"
#include "lib/log.h"
#include "sinks/sqlite/internal.h"

/* Runs one of the transaction statements; 0, or -1 with SQLite's message in why (when given). */
static int run(struct sq *q, int s, char *why, size_t whylen)
{
    sqlite3_stmt *st = q->st[s];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (why)
        snprintf(why, whylen, "%s", sqlite3_errmsg(q->db));
    return -1;
}

static void forget_batch(struct sq *q)
{
    for (int c = 0; c < C_COUNT; c++)
        idcache_drop_since(q->cache[c], q->batch.first_txn);
    memset(&q->batch, 0, sizeof q->batch);
    q->in_batch = q->in_req = false;
    sq_rollup_reset(q->batch_sums);
}

void sq_batch_lost(struct sq *q, const char *why)
{
    if (!q->in_batch)
        return;
    if (!sqlite3_get_autocommit(q->db))
        run(q, S_ROLLBACK, NULL, 0);
    snprintf(q->batch_why, sizeof q->batch_why, "%s", why);
    if (q->batch.requests) {
        if (q->gate) {
            if (q->batch.max_gen > q->lost_through)
                q->lost_through = q->batch.max_gen;
            log_error("sqlite sink: a batch of %" PRIu64 " requests was rolled back (%s): their "
                      "replies are withheld, the clients retry", q->batch.requests, why);
        } else {
            q->lost_samples += q->batch.samples;
            log_error("sqlite sink: a batch of %" PRIu64 " requests (%" PRIu64 " samples) was rolled "
                      "back: %s", q->batch.requests, q->batch.samples, why);
        }
    }
    q->rolled_back += q->batch.requests;
    forget_batch(q);
}

int sq_req_open(struct sq *q)
{
    if (!q->in_batch) {
        char why[256];
        if (run(q, S_BEGIN, why, sizeof why) != 0)
            return (int)sq_fail(q, "starting a transaction", why);
        q->in_batch = true;
        q->batch.first_txn = q->txn;
        /* the frame-type texts the batch's rollup keys point into start afresh */
        memo_clear(&q->sig_of);
        buf_reset(&q->type_sigs);
        q->batch.started_ns = clock_mono_ns();
    }
    if (sq_step_write(q, S_SAVEPOINT, "starting the request's savepoint") < 0)
        return -1;
    q->in_req = true;
    return 0;
}

int sq_req_keep(struct sq *q, uint64_t bytes)
{
    if (sq_step_write(q, S_RELEASE, "releasing the request's savepoint") < 0)
        return -1;
    q->in_req = false;
    if (sq_rollup_keep(q) < 0) {
        /* released, its rollups half written: the batch cannot be trusted any more */
        sq_batch_lost(q, q->why);
        return -1;
    }
    q->batch.requests++;
    q->batch.bytes += bytes;
    q->batch.samples += q->n_samples;
    if (q->gate) {
        /* the reply written for this request now waits for the sync that commits it */
        commit_dirty(q->gate);
        uint64_t gen = commit_reply_gen(q->gate);
        if (gen > q->batch.max_gen)
            q->batch.max_gen = gen;
    }
    return 0;
}

void sq_req_undo(struct sq *q)
{
    if (!q->in_req)
        return;
    q->in_req = false;
    for (int c = 0; c < C_COUNT; c++)
        idcache_drop_txn(q->cache[c], q->txn);
    sq_rollup_reset(q->rollup);
    char why[256] = "the transaction was rolled back";
    if (!sqlite3_get_autocommit(q->db) && run(q, S_ROLLBACK_TO, why, sizeof why) == 0 &&
        run(q, S_RELEASE, why, sizeof why) == 0) {
        if (q->batch.requests == 0) {
            /* nothing kept: end the transaction, so that no lock is held for nothing */
            run(q, S_ROLLBACK, NULL, 0);
            forget_batch(q);
        }
        return;
    }
    /* SQLite rolled back the whole transaction (disk full, I/O error): the batch is gone */
    sq_batch_lost(q, why);
}

bool sq_batch_due(const struct sq *q)
{
    return q->in_batch && (q->batch.requests >= q->max_requests || q->batch.bytes >= q->max_bytes ||
                           clock_mono_ns() - q->batch.started_ns >= q->max_ns);
}

int sq_batch_commit(struct sq *q)
{
    if (!q->in_batch)
        return 0;
    char why[256];
    if (q->in_req) {
        sq_batch_lost(q, "committing with a request half written");
        return -1;
    }
    /* between requests: the last request's failure says nothing about the batch */
    q->failed = false;
    q->why[0] = '\0';
    if (sq_rollup_flush_batch(q) < 0) {
        char what[300];
        snprintf(what, sizeof what, "writing the batch's rollups: %.250s", q->why);
        sq_batch_lost(q, what);
        return -1;
    }
    uint64_t t0 = clock_mono_ns();
    if (run(q, S_COMMIT, why, sizeof why) != 0) {
        char what[300];
        snprintf(what, sizeof what, "committing: %s", why);
        sq_batch_lost(q, what);
        return -1;
    }
    histogram_observe(&q->commit_ns, clock_mono_ns() - t0);
    q->committed += q->batch.requests;
    q->in_batch = false;
    memset(&q->batch, 0, sizeof q->batch);
    return 0;
}

/* ---------- the group commit's writer ---------- */

/* A sync that must fail: the gate then tells the transport to withhold its replies. */
static char sync_fails;

/* On the loop thread, between requests: the batch is committed here, so the sync's replies
 * are released only once their rows are in the database. */
static void *gate_begin(void *ud)
{
    struct sq *q = ud;
    uint64_t gen = commit_syncing_gen(q->gate);
    if (q->in_req) {
        /* never expected (a request runs from begin to end without yielding); its batch-mates
         * cannot be committed now, so their replies must not go out */
        if (q->batch.max_gen > q->lost_through)
            q->lost_through = q->batch.max_gen;
    } else {
        sq_batch_commit(q);
    }
    return gen <= q->lost_through ? &sync_fails : NULL;
}

static void gate_run(void *job)
{
    (void)job;   /* COMMIT wrote the WAL in gate_begin; with synchronous=FULL it also synced it */
}

static int gate_end(void *ud, void *job)
{
    struct sq *q = ud;
    if (job != &sync_fails)
        return 0;
    log_warn("sqlite sink: replies withheld: their requests were rolled back with their batch (%s)",
             q->batch_why);
    return -1;
}

static const struct commit_writer gate_writer = { gate_begin, gate_run, gate_end };

int sq_gate_add(struct sq *q, struct commit *gate)
{
    if (!gate)
        return 0;
    if (commit_add_writer(gate, &gate_writer, q) != 0)
        return -1;
    q->gate = gate;
    return 0;
}

void sq_gate_del(struct sq *q)
{
    if (!q->gate)
        return;
    commit_del_writer(q->gate, q);   /* first: it ends a sync in flight */
    q->gate = NULL;
}
