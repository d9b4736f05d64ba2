/*
 * queue.c - where the ClickHouse sink's sealed batches wait for the sender: the open batch is
 * sealed (at --clickhouse-batch-rows, or --clickhouse-flush-interval after its first row) and
 * goes to the memory queue, or to the spool when memory is full or the spool already holds
 * older batches; at shutdown whatever is still in memory spills to the spool.
 *
 * Delivery stays in order (seq): once a batch went to disk the ones after it follow it there,
 * so memory holds the older batches and the sender takes memory first. A batch the spool
 * cannot take stays in memory, over the queue's size if need be: it is acknowledged, and
 * nothing acknowledged is dropped.
 *
 * With the write-ahead log there is no spool: every sealed batch is in the log already, so a
 * batch that does not fit in memory keeps only its place in the queue (in_log_only) and is
 * read back from its segment when its turn comes; nothing spills at shutdown.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "sinks/clickhouse/internal.h"

#define SPOOL_RETRY_MS 5000u

size_t ch_mem_bytes(const struct ch_sink *s)
{
    return s->qbytes + (s->cur ? s->cur->bytes : 0);
}

static bool spool_usable(const struct ch_sink *s)
{
    return s->spool && ch_now_ms() >= s->spool_retry_at;
}

bool ch_can_spool(const struct ch_sink *s)
{
    return !s->wal && spool_usable(s) && ch_spool_bytes(s->spool) < ch_spool_max_bytes(s->spool);
}

bool ch_has_work(const struct ch_sink *s)
{
    return s->cur || s->qhead || (s->spool && ch_spool_count(s->spool) > 0);
}

void ch_enqueue(struct ch_sink *s, struct ch_batch *b)
{
    b->next = NULL;
    if (s->qtail)
        s->qtail->next = b;
    else
        s->qhead = b;
    s->qtail = b;
    s->qbytes += b->bytes;
}

struct ch_batch *ch_dequeue(struct ch_sink *s)
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
    if (s->wal) {
        if (ch_mem_bytes(s) + b->bytes > s->o.max_queue_bytes) {
            for (int t = 0; t < CH_TABLES; t++) {
                free(b->part[t].data);
                b->part[t].data = NULL;
                b->part[t].len = 0;
            }
            b->bytes = 0;
            b->in_log_only = true;
            s->st.batches_spooled++;
        }
        ch_enqueue(s, b);
        return;
    }
    bool to_disk = s->spool && (ch_spool_count(s->spool) > 0 || ch_mem_bytes(s) + b->bytes > s->o.max_queue_bytes);
    if (to_disk && ch_can_spool(s)) {
        char err[300];
        if (ch_spool_write(s->spool, b, false, err, sizeof err) == 0) {
            s->st.batches_spooled++;
            ch_batch_free(b);
            return;
        }
        log_error("clickhouse: cannot spool batch %llu, keeping it in memory: %s", (unsigned long long)b->seq, err);
        s->spool_retry_at = ch_now_ms() + SPOOL_RETRY_MS;
    }
    ch_enqueue(s, b);
}

void ch_seal(struct ch_sink *s)
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
    ch_seal(s);
    ch_kick(s);
}

void ch_seal_later(struct ch_sink *s)
{
    if (!s->flush_timer)
        s->flush_timer = loop_add_timer(s->loop, s->o.flush_interval_ms, on_flush_timer, s);
}

/* What is still in memory goes to the spool, over its cap if need be; without a spool it is
 * lost, and said so. */
void ch_spill(struct ch_sink *s)
{
    uint64_t lost_rows = 0, lost_batches = 0;
    struct ch_batch *b;
    if (s->cur && !s->cur_spooled)
        ch_enqueue(s, s->cur);   /* back in front of its successors: ordering by seq below */
    else if (s->cur)
        ch_batch_free(s->cur);   /* its file is still there */
    s->cur = NULL;
    while ((b = ch_dequeue(s)) != NULL) {
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
    s->st.lost_batches += lost_batches;
    s->st.lost_rows += lost_rows;
    if (lost_batches)
        log_error("clickhouse: %llu acknowledged batches (%llu sample rows) could not be delivered nor spooled "
                  "and are lost%s",
                  (unsigned long long)lost_batches, (unsigned long long)lost_rows,
                  s->spool ? "" : " (set --clickhouse-spool-dir to keep them for the next start)");
}
