/*
 * commit.h - group commit on the event loop: what the requests of one loop turn wrote is made
 * durable by one sync at the end of the turn, and their replies wait for it.
 *
 * Two sides that know nothing of each other meet here: a writer (a sink with a write-ahead
 * log) registers its sync function and marks the gate dirty when it wrote something a reply
 * will acknowledge; a transport asks commit_pending() before it writes replies to a socket and,
 * when a commit is pending, holds them until its listener hears the outcome: written on
 * success, and on failure not sent at all (the connection is closed: the client sees no
 * acknowledgement and retries). cmd/ wires one gate between the two.
 */
#ifndef LB_COMMIT_H
#define LB_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct commit;

/* 0 when everything written since the last call is durable; -1 otherwise (the writer logs). */
typedef int (*commit_sync_fn)(void *ud);
/* After a turn's sync: ok says whether the replies held for it may go out. */
typedef void (*commit_done_fn)(void *ud, bool ok);

/* Registers an end-of-turn hook on `loop`. NULL on allocation failure. */
struct commit *commit_new(struct loop *loop);
void commit_free(struct commit *c);

/* At most a few of each; 0, or -1 when the table is full. */
int commit_add_writer(struct commit *c, commit_sync_fn sync, void *ud);
void commit_del_writer(struct commit *c, commit_sync_fn sync, void *ud);
int commit_add_listener(struct commit *c, commit_done_fn done, void *ud);
void commit_del_listener(struct commit *c, commit_done_fn done, void *ud);

/* A writer wrote something the replies of this turn acknowledge. */
void commit_dirty(struct commit *c);
/* Replies written now would acknowledge something not yet synced. */
bool commit_pending(const struct commit *c);
/* Runs the sync now (the end-of-turn hook does this; also for a final flush). 0 or -1. */
int commit_flush(struct commit *c);

struct commit_stats {
    uint64_t syncs, failures;
};
void commit_get_stats(const struct commit *c, struct commit_stats *out);

#endif
