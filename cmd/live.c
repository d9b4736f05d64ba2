/*
 * live.c - the web UI's live tail fed after the group commit: a request's event waits until
 * the sync of the generation its reply depends on is over (lib/commit.h), then goes to
 * ui_publish.
 *
 * Why wait: the SQLite sink commits a batch of requests at the end of the loop turn, not in
 * request_end, and the UI reads the request's resource back from the store for the event; an
 * event published at once would find nothing, and could announce a request whose batch is
 * then rolled back. Waiting for the sync gives the same guarantee as the reply: announced as
 * stored only once stored (a failed sync turns its events into "failed" ones).
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "lib/commit.h"
#include "lib/log.h"
#include "ui/ui.h"

/* Events held at once at most; past it the oldest is published without waiting (its
 * resource may read empty). A live tail shows a few requests a second. */
enum { LIVE_HELD_MAX = 256 };

struct held_event {
    struct ui_event e;
    uint64_t gen;
    char *strings;   /* one allocation: transport, peer, layout, resource, outcome, message */
};

struct live_queue {
    struct app *app;
    struct held_event ev[LIVE_HELD_MAX];
    size_t head, n;
};

static char *put(char **at, const char *s)
{
    char *start = *at;
    size_t n = strlen(s ? s : "");
    memcpy(start, s ? s : "", n + 1);
    *at += n + 1;
    return start;
}

static bool copy_event(struct held_event *h, const struct ui_event *e)
{
    const char *s[6] = { e->transport, e->peer, e->layout, e->resource, e->outcome, e->message };
    size_t total = 0;
    for (int i = 0; i < 6; i++)
        total += strlen(s[i] ? s[i] : "") + 1;
    char *at = h->strings = malloc(total);
    if (!at)
        return false;
    h->e = *e;
    h->e.transport = put(&at, s[0]);
    h->e.peer = put(&at, s[1]);
    h->e.layout = put(&at, s[2]);
    h->e.resource = put(&at, s[3]);
    h->e.outcome = put(&at, s[4]);
    h->e.message = put(&at, s[5]);
    return true;
}

/* The oldest held event out (ok: as it was; not ok: failed, its batch rolled back). */
static void release_oldest(struct live_queue *q, bool ok)
{
    struct held_event *h = &q->ev[q->head];
    if (!ok && (strcmp(h->e.outcome, "ok") == 0 || strcmp(h->e.outcome, "partial") == 0)) {
        h->e.outcome = "failed";
        h->e.message = "the store could not commit it: the reply was withheld";
    }
    ui_publish(q->app->ui, &h->e);
    free(h->strings);
    q->head = (q->head + 1) % LIVE_HELD_MAX;
    q->n--;
}

static void on_commit(void *ud, bool ok, uint64_t gen)
{
    struct live_queue *q = ud;
    while (q->n && q->ev[q->head].gen <= gen)
        release_oldest(q, ok);
}

void live_publish(struct app *app, const struct ui_event *e)
{
    struct live_queue *q = app->live;
    if (!app->ui)
        return;
    uint64_t gen = app->commit ? commit_reply_gen(app->commit) : 0;
    if (!q || gen == 0 || commit_settled(app->commit, gen)) {
        if (!q || q->n == 0) {   /* nothing older waits: no reordering */
            ui_publish(app->ui, e);
            return;
        }
    }
    if (q->n == LIVE_HELD_MAX)
        release_oldest(q, true);
    struct held_event *h = &q->ev[(q->head + q->n) % LIVE_HELD_MAX];
    if (!copy_event(h, e)) {
        ui_publish(app->ui, e);
        return;
    }
    h->gen = gen;
    q->n++;
}

int live_open(struct app *app)
{
    if (!app->ui || !app->commit)
        return 0;
    struct live_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->app = app;
    if (commit_add_listener(app->commit, on_commit, q) != 0) {
        free(q);
        return -1;
    }
    app->live = q;
    return 0;
}

void live_close(struct app *app)
{
    struct live_queue *q = app->live;
    if (!q)
        return;
    commit_del_listener(app->commit, on_commit, q);
    while (q->n) {
        free(q->ev[q->head].strings);
        q->head = (q->head + 1) % LIVE_HELD_MAX;
        q->n--;
    }
    free(q);
    app->live = NULL;
}
