/*
 * commit.h - group commit on the event loop: what the requests of a loop turn wrote is made
 * durable by one sync, on a thread of its own while the loop goes on, and their replies wait
 * for it.
 *
 * Two sides that know nothing of each other meet here: a writer (a sink with a write-ahead
 * log) registers its sync in three steps and marks the gate dirty when it wrote something a
 * reply will acknowledge; a transport asks, for the replies it is about to write, which
 * generation they depend on (commit_reply_gen) and whether that generation is settled, and
 * holds them until its listener hears the outcome: written on success, and on failure not
 * sent at all (the connection is closed: the client sees no acknowledgement and retries).
 * cmd/ wires one gate between the two.
 *
 * Generations: the writes of the turns between two syncs form one generation; at the end of
 * such a turn the generation is closed and its sync starts (or waits for the one in flight,
 * then covers every closed generation at once). While the sync runs, the loop reads, decodes
 * and writes the next generation. One sync is in flight at a time.
 */
#ifndef LB_COMMIT_H
#define LB_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct commit;

/* A writer's sync: begin (loop thread) says what to sync, NULL for nothing; run (the commit
 * thread) does the slow part and must touch nothing the loop thread uses; end (loop thread)
 * frees the job and says 0 (durable) or -1 (the writer logged why). */
struct commit_writer {
    void *(*begin)(void *ud);
    void (*run)(void *job);
    int (*end)(void *ud, void *job);
};

/* After a sync: every reply depending on a generation <= gen may go out (ok), or must not
 * (its connection is closed). */
typedef void (*commit_done_fn)(void *ud, bool ok, uint64_t gen);

/* Starts the commit thread and registers an end-of-turn hook on `loop`. NULL on failure. */
struct commit *commit_new(struct loop *loop);
/* Waits for a sync in flight (its outcome is told), then stops the thread. */
void commit_free(struct commit *c);

/* At most a few of each; 0, or -1 when the table is full. Removing a writer first waits for
 * a sync in flight to end. */
int commit_add_writer(struct commit *c, const struct commit_writer *w, void *ud);
void commit_del_writer(struct commit *c, void *ud);
int commit_add_listener(struct commit *c, commit_done_fn done, void *ud);
void commit_del_listener(struct commit *c, commit_done_fn done, void *ud);

/* A writer wrote something the replies of this turn acknowledge. */
void commit_dirty(struct commit *c);
/* The generation a reply written now depends on (0: none). */
uint64_t commit_reply_gen(const struct commit *c);
/* Whether the sync of generation `gen` is over (successful or not). */
bool commit_settled(const struct commit *c, uint64_t gen);
/* The newest generation a failed sync covered (0: none failed). Output that depends on a
 * generation at or below it, and that no successful sync settled first, acknowledges writes
 * that may be lost. */
uint64_t commit_failed_gen(const struct commit *c);
/* In a writer's begin: the newest generation the sync being started covers (a writer that
 * lost writes of a generation fails every sync up to it). */
uint64_t commit_syncing_gen(const struct commit *c);

struct commit_stats {
    uint64_t syncs, failures;
};
void commit_get_stats(const struct commit *c, struct commit_stats *out);

#endif
