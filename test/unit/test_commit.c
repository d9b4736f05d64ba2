/*
 * test_commit.c - the group commit (lib/commit.c) on a real loop with a scripted writer: a
 * dirty turn closes a generation whose sync runs on another thread while the loop goes on;
 * listeners hear ok or failure with the generation; replies written meanwhile depend on the
 * right generation; generations closed during a sync are covered by the next one; freeing
 * waits for the sync in flight.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/commit.h"
#include "lib/loop.h"
#include "test/unit/check.h"

struct writer {
    int begun, ran, ended;
    int fail_next;               /* end says -1 once */
    int run_ms;                  /* how long the "fdatasync" takes */
    pthread_t main;
    int ran_elsewhere;           /* run was called on another thread */
    int job;                     /* what begin hands out */
};

static void *w_begin(void *ud)
{
    struct writer *w = ud;
    w->begun++;
    return &w->job;
}

static void w_run(void *job)
{
    struct writer *w = (struct writer *)((char *)job - offsetof(struct writer, job));
    struct timespec ts = { 0, (long)w->run_ms * 1000000L };
    nanosleep(&ts, NULL);
    if (!pthread_equal(pthread_self(), w->main))
        w->ran_elsewhere++;
    w->ran++;
}

static int w_end(void *ud, void *job)
{
    struct writer *w = ud;
    (void)job;
    w->ended++;
    if (w->fail_next) {
        w->fail_next = 0;
        return -1;
    }
    return 0;
}

static const struct commit_writer ops = { w_begin, w_run, w_end };

struct heard {
    int n, ok, failed;
    uint64_t last_gen;
};

static void listener(void *ud, bool ok, uint64_t gen)
{
    struct heard *h = ud;
    h->n++;
    if (ok)
        h->ok++;
    else
        h->failed++;
    h->last_gen = gen;
}

struct script {
    struct loop *l;
    struct commit *c;
    int step;
    uint64_t gen_a, gen_b, gen_idle;
    bool settled_during_sync;
};

/* t=0: a write (generation 1); t=5: another write while the first sync runs (generation 2);
 * t=200: stop. */
static void step(struct loop *l, void *ud)
{
    struct script *s = ud;
    if (s->step == 0) {
        commit_dirty(s->c);
        s->gen_a = commit_reply_gen(s->c);
        loop_add_timer(l, 5, step, s);
    } else if (s->step == 1) {
        s->gen_idle = commit_reply_gen(s->c);   /* nothing written this turn: the closed one */
        s->settled_during_sync = commit_settled(s->c, s->gen_a);
        commit_dirty(s->c);
        s->gen_b = commit_reply_gen(s->c);
        loop_add_timer(l, 200, step, s);
    } else {
        loop_stop(l);
    }
    s->step++;
}

TEST(generations_sync_on_a_thread_and_are_told)
{
    struct loop *l = loop_new();
    struct commit *c = commit_new(l);
    CHECK(c != NULL);
    if (!c)
        return;
    struct writer w = { .run_ms = 40, .main = pthread_self() };
    struct heard h = { 0 };
    CHECK_EQ_INT(commit_add_writer(c, &ops, &w), 0);
    CHECK_EQ_INT(commit_add_listener(c, listener, &h), 0);
    CHECK_EQ_INT(commit_reply_gen(c), 0);
    CHECK(commit_settled(c, 0));
    struct script s = { .l = l, .c = c };
    loop_add_timer(l, 0, step, &s);
    CHECK_EQ_INT(loop_run(l), 0);
    CHECK_EQ_INT(s.gen_a, 1);
    CHECK_EQ_INT(s.gen_idle, 1);          /* a reply now waits for the sync in flight */
    CHECK(!s.settled_during_sync);        /* the loop went on while it ran */
    CHECK_EQ_INT(s.gen_b, 2);
    CHECK_EQ_INT(w.begun, 2);             /* generation 2 got a sync of its own, after the first */
    CHECK_EQ_INT(w.ran, 2);
    CHECK_EQ_INT(w.ran_elsewhere, 2);
    CHECK_EQ_INT(w.ended, 2);
    CHECK_EQ_INT(h.n, 2);
    CHECK_EQ_INT(h.ok, 2);
    CHECK_EQ_INT(h.last_gen, 2);
    CHECK(commit_settled(c, 2));
    struct commit_stats st;
    commit_get_stats(c, &st);
    CHECK_EQ_INT(st.syncs, 2);
    CHECK_EQ_INT(st.failures, 0);
    commit_free(c);
    loop_free(l);
}

static void write_then_stop(struct loop *l, void *ud)
{
    struct script *s = ud;
    if (s->step++ == 0) {
        commit_dirty(s->c);
        loop_add_timer(l, 100, write_then_stop, s);
    } else {
        loop_stop(l);
    }
}

TEST(a_failed_sync_is_told_as_such)
{
    struct loop *l = loop_new();
    struct commit *c = commit_new(l);
    struct writer w = { .run_ms = 1, .main = pthread_self(), .fail_next = 1 };
    struct heard h = { 0 };
    commit_add_writer(c, &ops, &w);
    commit_add_listener(c, listener, &h);
    struct script s = { .l = l, .c = c };
    loop_add_timer(l, 0, write_then_stop, &s);
    loop_run(l);
    CHECK_EQ_INT(h.n, 1);
    CHECK_EQ_INT(h.failed, 1);
    CHECK_EQ_INT(h.last_gen, 1);
    CHECK(commit_settled(c, 1));          /* settled: the replies are dropped, not waiting */
    struct commit_stats st;
    commit_get_stats(c, &st);
    CHECK_EQ_INT(st.failures, 1);
    commit_free(c);
    loop_free(l);
}

static void write_and_stop_at_once(struct loop *l, void *ud)
{
    struct script *s = ud;
    commit_dirty(s->c);
    loop_stop(l);   /* the turn's end still closes the generation and starts its sync */
}

TEST(removing_the_writer_waits_for_the_sync_in_flight)
{
    struct loop *l = loop_new();
    struct commit *c = commit_new(l);
    struct writer w = { .run_ms = 50, .main = pthread_self() };
    struct heard h = { 0 };
    commit_add_writer(c, &ops, &w);
    commit_add_listener(c, listener, &h);
    struct script s = { .l = l, .c = c };
    loop_add_timer(l, 0, write_and_stop_at_once, &s);
    loop_run(l);
    CHECK_EQ_INT(w.begun, 1);
    commit_del_writer(c, &w);             /* a sink closing: its job must end first */
    CHECK_EQ_INT(w.ran, 1);
    CHECK_EQ_INT(w.ended, 1);
    CHECK_EQ_INT(h.ok, 1);
    commit_free(c);
    loop_free(l);
}

int main(void)
{
    RUN(generations_sync_on_a_thread_and_are_told);
    RUN(a_failed_sync_is_told_as_such);
    RUN(removing_the_writer_waits_for_the_sync_in_flight);
    return check_done();
}
