/*
 * commit.c - the group commit of commit.h: generations of writes closed at the end of busy
 * loop turns, synced by one thread, the outcome told to the listeners on the loop.
 *
 * Why a thread: fdatasync blocks for the disk's latency (milliseconds); on the loop thread it
 * would stall every connection for it. The thread only runs the writers' `run` steps on
 * what `begin` handed it (duplicated file descriptors); it tells the loop through an eventfd.
 */
#include "lib/commit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/loop.h"

enum { MAX_WRITERS = 4, MAX_LISTENERS = 4 };

struct commit {
    struct loop *loop;
    int efd;                     /* the thread -> the loop: a sync ended */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;                   /* under mu */
    bool job_ready, job_done;    /* under mu */
    bool dirty;                  /* written this turn */
    uint64_t cur_gen;            /* the generation being written */
    uint64_t closed_gen;         /* the newest closed generation */
    uint64_t settled_gen;        /* every generation <= this is synced (or failed) */
    uint64_t failed_gen;         /* the newest generation of a failed sync */
    bool inflight;
    uint64_t inflight_gen;
    struct { struct commit_writer ops; void *ud; void *job; } writer[MAX_WRITERS];
    size_t n_writers;
    struct { commit_done_fn fn; void *ud; } listener[MAX_LISTENERS];
    size_t n_listeners;
    struct commit_stats st;
};

static void *sync_thread(void *arg)
{
    struct commit *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->job_ready && !c->quit)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->job_ready)
            break;
        c->job_ready = false;
        size_t n = c->n_writers;   /* not changed while a job is in flight */
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < n; i++)
            if (c->writer[i].job)
                c->writer[i].ops.run(c->writer[i].job);
        pthread_mutex_lock(&c->mu);
        c->job_done = true;
        pthread_cond_broadcast(&c->cv);
        uint64_t one = 1;
        while (write(c->efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void start_sync(struct commit *c)
{
    c->inflight = true;
    c->inflight_gen = c->closed_gen;
    for (size_t i = 0; i < c->n_writers; i++)
        c->writer[i].job = c->writer[i].ops.begin(c->writer[i].ud);
    pthread_mutex_lock(&c->mu);
    c->job_ready = true;
    c->job_done = false;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The job is done (the thread said so): the writers' end steps, then the listeners; with
 * `restart`, the sync of the generations closed meanwhile starts. */
static void finish_sync(struct commit *c, bool restart)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_writers; i++) {
        if (c->writer[i].job && c->writer[i].ops.end(c->writer[i].ud, c->writer[i].job) != 0)
            rc = -1;
        c->writer[i].job = NULL;
    }
    c->inflight = false;
    c->settled_gen = c->inflight_gen;
    c->st.syncs++;
    if (rc != 0) {
        c->st.failures++;
        c->failed_gen = c->settled_gen;
    }
    /* A listener may add or remove listeners while told: walk a copy. */
    size_t n = c->n_listeners;
    struct { commit_done_fn fn; void *ud; } copy[MAX_LISTENERS];
    memcpy(copy, c->listener, n * sizeof copy[0]);
    for (size_t i = 0; i < n; i++)
        copy[i].fn(copy[i].ud, rc == 0, c->settled_gen);
    if (restart && !c->inflight && c->closed_gen > c->settled_gen)
        start_sync(c);   /* the generations closed meanwhile */
}

/* Blocks until the sync in flight ended, and finishes it (shutdown, a writer leaving). */
static void wait_inflight(struct commit *c)
{
    if (!c->inflight)
        return;
    pthread_mutex_lock(&c->mu);
    while (!c->job_done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    uint64_t v;
    while (read(c->efd, &v, sizeof v) < 0 && errno == EINTR) {
    }
    finish_sync(c, false);   /* the next turn's end starts what is left */
}

static void on_sync_done(struct loop *l, int fd, int events, void *ud)
{
    (void)l;
    (void)events;
    struct commit *c = ud;
    uint64_t v;
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v || !c->inflight)
        return;
    pthread_mutex_lock(&c->mu);
    bool done = c->job_done;
    pthread_mutex_unlock(&c->mu);
    if (done)
        finish_sync(c, true);
}

static void on_turn_end(struct loop *l, void *ud)
{
    (void)l;
    struct commit *c = ud;
    if (c->dirty) {
        c->dirty = false;
        c->closed_gen = c->cur_gen++;
    }
    if (!c->inflight && c->closed_gen > c->settled_gen)
        start_sync(c);
}

struct commit *commit_new(struct loop *loop)
{
    struct commit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->cur_gen = 1;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    /* The thread takes no signal: they are the loop's (signalfd), whatever is blocked yet. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = pthread_create(&c->thread, NULL, sync_thread, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started != 0) {
        close(c->efd);
        free(c);
        return NULL;
    }
    if (loop_add_fd(loop, c->efd, LOOP_READ, on_sync_done, c) != 0 || loop_on_turn_end(loop, on_turn_end, c) != 0) {
        loop_del_fd(loop, c->efd);
        c->inflight = false;
        commit_free(c);
        return NULL;
    }
    return c;
}

void commit_free(struct commit *c)
{
    if (!c)
        return;
    wait_inflight(c);
    pthread_mutex_lock(&c->mu);
    c->quit = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    loop_del_turn_end(c->loop, on_turn_end, c);
    loop_del_fd(c->loop, c->efd);
    close(c->efd);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int commit_add_writer(struct commit *c, const struct commit_writer *w, void *ud)
{
    if (!w || !w->begin || !w->run || !w->end || c->n_writers == MAX_WRITERS)
        return -1;
    wait_inflight(c);   /* the thread walks the table */
    c->writer[c->n_writers].ops = *w;
    c->writer[c->n_writers].ud = ud;
    c->writer[c->n_writers].job = NULL;
    c->n_writers++;
    return 0;
}

void commit_del_writer(struct commit *c, void *ud)
{
    wait_inflight(c);
    for (size_t i = 0; i < c->n_writers; i++) {
        if (c->writer[i].ud == ud) {
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

void commit_dirty(struct commit *c)
{
    c->dirty = true;
    loop_turn_work(c->loop);   /* worth gathering more of this busy period into one sync */
}

uint64_t commit_reply_gen(const struct commit *c) { return c->dirty ? c->cur_gen : c->closed_gen; }

bool commit_settled(const struct commit *c, uint64_t gen) { return gen <= c->settled_gen; }

uint64_t commit_syncing_gen(const struct commit *c) { return c->inflight_gen; }

uint64_t commit_failed_gen(const struct commit *c) { return c->failed_gen; }

void commit_get_stats(const struct commit *c, struct commit_stats *out) { *out = c->st; }
