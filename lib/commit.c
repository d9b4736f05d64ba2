/*
 * commit.c - the group commit gate of commit.h: a dirty flag set during a loop turn, one call
 * of every writer's sync at the turn's end, and the outcome told to every listener.
 */
#include "lib/commit.h"

#include <stdlib.h>
#include <string.h>

#include "lib/loop.h"

enum { MAX_WRITERS = 4, MAX_LISTENERS = 4 };

struct commit {
    struct loop *loop;
    bool dirty;
    struct { commit_sync_fn fn; void *ud; } writer[MAX_WRITERS];
    size_t n_writers;
    struct { commit_done_fn fn; void *ud; } listener[MAX_LISTENERS];
    size_t n_listeners;
    struct commit_stats st;
};

int commit_flush(struct commit *c)
{
    if (!c->dirty)
        return 0;
    c->dirty = false;
    int rc = 0;
    for (size_t i = 0; i < c->n_writers; i++)
        if (c->writer[i].fn(c->writer[i].ud) != 0)
            rc = -1;
    c->st.syncs++;
    if (rc != 0)
        c->st.failures++;
    /* A listener may add or remove listeners while told: walk a copy. */
    size_t n = c->n_listeners;
    struct { commit_done_fn fn; void *ud; } copy[MAX_LISTENERS];
    memcpy(copy, c->listener, n * sizeof copy[0]);
    for (size_t i = 0; i < n; i++)
        copy[i].fn(copy[i].ud, rc == 0);
    return rc;
}

static void on_turn_end(struct loop *l, void *ud)
{
    (void)l;
    commit_flush(ud);
}

struct commit *commit_new(struct loop *loop)
{
    struct commit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    if (loop_on_turn_end(loop, on_turn_end, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void commit_free(struct commit *c)
{
    if (!c)
        return;
    loop_del_turn_end(c->loop, on_turn_end, c);
    free(c);
}

int commit_add_writer(struct commit *c, commit_sync_fn sync, void *ud)
{
    if (!sync || c->n_writers == MAX_WRITERS)
        return -1;
    c->writer[c->n_writers].fn = sync;
    c->writer[c->n_writers].ud = ud;
    c->n_writers++;
    return 0;
}

void commit_del_writer(struct commit *c, commit_sync_fn sync, void *ud)
{
    for (size_t i = 0; i < c->n_writers; i++) {
        if (c->writer[i].fn == sync && c->writer[i].ud == ud) {
            memmove(&c->writer[i], &c->writer[i + 1], (c->n_writers - i - 1) * sizeof c->writer[0]);
            c->n_writers--;
            return;
        }
    }
}

int commit_add_listener(struct commit *c, commit_done_fn done, void *ud)
{
    if (!done || c->n_listeners == MAX_LISTENERS)
        return -1;
    c->listener[c->n_listeners].fn = done;
    c->listener[c->n_listeners].ud = ud;
    c->n_listeners++;
    return 0;
}

void commit_del_listener(struct commit *c, commit_done_fn done, void *ud)
{
    for (size_t i = 0; i < c->n_listeners; i++) {
        if (c->listener[i].fn == done && c->listener[i].ud == ud) {
            memmove(&c->listener[i], &c->listener[i + 1], (c->n_listeners - i - 1) * sizeof c->listener[0]);
            c->n_listeners--;
            return;
        }
    }
}

void commit_dirty(struct commit *c) { c->dirty = true; }
bool commit_pending(const struct commit *c) { return c->dirty; }

void commit_get_stats(const struct commit *c, struct commit_stats *out) { *out = c->st; }
