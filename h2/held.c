/*
 * held.c - replies held for the group commit (lib/commit.h).
 *
 * A sink that writes ahead (the SQLite batch, the ClickHouse and forward write-ahead logs)
 * marks the generation it wrote; a reply written afterwards acknowledges that write, so its
 * bytes wait in the connection's output until the generation's sync is over: sent when it
 * succeeded, never when it failed (the connection is closed unanswered and the client
 * retries: an unacknowledged request may be stored twice, an acknowledged one never lost).
 *
 * One connection carries the replies of several generations (a client's concurrent streams,
 * pipelined requests), so it keeps the oldest generation no sync has settled yet beside the
 * newest: a failed sync of the older one must withhold everything even though a newer one is
 * pending. (With the newest alone, the replies of a rolled-back batch once went out with the
 * next batch's, which committed.)
 */
#include "h2/internal.h"

#include "lib/commit.h"

void conn_depend(struct h2_conn *c)
{
    const struct commit *cm = c->srv->cfg.commit;
    if (!cm)
        return;
    uint64_t g = commit_reply_gen(cm);
    if (g > c->dep_gen)
        c->dep_gen = g;
    if (g && !commit_settled(cm, g) && (c->dep_oldest == 0 || g < c->dep_oldest))
        c->dep_oldest = g;
}

enum hold conn_hold_check(struct h2_conn *c)
{
    const struct commit *cm = c->srv->cfg.commit;
    if (!cm)
        return HOLD_SEND;
    uint64_t appended = c->out_sent_total + out_pending(c);
    if (appended > c->out_seen) {   /* new output: it depends on the generation written now */
        c->out_seen = appended;
        conn_depend(c);
    }
    /* held_on_commit closes such a connection; this holds even if another listener of the
     * same sync made output here before this server was told */
    if (c->dep_oldest && c->dep_oldest <= commit_failed_gen(cm))
        return HOLD_LOST;
    if (!commit_settled(cm, c->dep_gen)) {
        c->held = true;
        return HOLD_WAIT;
    }
    c->held = false;
    c->dep_oldest = 0;   /* every generation it depends on synced */
    return HOLD_SEND;
}

void held_on_commit(void *ud, bool ok, uint64_t gen)
{
    struct h2_server *s = ud;
    struct h2_conn *c = s->conns;
    while (c) {
        struct h2_conn *next = c->next;
        bool covered = c->dep_oldest && c->dep_oldest <= gen;   /* this sync decides some of it */
        if (covered && !ok) {
            /* whether held or still inside nghttp2, nothing of it may go out now */
            conn_close(c, "the write-ahead log could not be synced: replies withheld");
        } else {
            if (covered)
                c->dep_oldest = c->dep_gen > gen ? gen + 1 : 0;
            if (ok && c->held && c->dep_gen <= gen) {
                c->held = false;
                conn_update(c);
            }
        }
        c = next;
    }
}
