/*
 * test_loop.c - the reactor's contract: timers fire in deadline order (ties in creation
 * order) and can be cancelled, fd callbacks see readiness through a real pipe, a callback may
 * delete its own fd, and an fd deleted earlier in the same epoll batch gets no callback.
 */
#include "lib/loop.h"
#include "test/unit/check.h"

#include <fcntl.h>
#include <unistd.h>

struct order {
    int seen[16];
    int n;
};

struct tick {
    struct order *o;
    int tag;
};

static void record(struct loop *l, void *ud)
{
    (void)l;
    struct tick *t = ud;
    if (t->o->n < 16)
        t->o->seen[t->o->n++] = t->tag;
}

static void stop_cb(struct loop *l, void *ud)
{
    (void)ud;
    loop_stop(l);
}

TEST(timers_fire_in_order)
{
    struct loop *l = loop_new();
    struct order o = { { 0 }, 0 };
    struct tick t1 = { &o, 1 }, t2 = { &o, 2 }, t3 = { &o, 3 }, t4 = { &o, 4 };
    uint64_t start = loop_now_ms(l);
    CHECK(loop_add_timer(l, 30, record, &t3) > 0);
    CHECK(loop_add_timer(l, 10, record, &t1) > 0);
    CHECK(loop_add_timer(l, 20, record, &t2) > 0);
    CHECK(loop_add_timer(l, 20, record, &t4) > 0);   /* same deadline: after t2 */
    loop_add_timer(l, 40, stop_cb, NULL);
    CHECK_EQ_INT(loop_run(l), 0);
    CHECK_EQ_INT(o.n, 4);
    CHECK_EQ_INT(o.seen[0], 1);
    CHECK_EQ_INT(o.seen[1], 2);
    CHECK_EQ_INT(o.seen[2], 4);
    CHECK_EQ_INT(o.seen[3], 3);
    CHECK(loop_now_ms(l) - start >= 40);   /* it really waited */
    loop_free(l);
}

TEST(cancel_timer)
{
    struct loop *l = loop_new();
    struct order o = { { 0 }, 0 };
    struct tick t1 = { &o, 1 }, t2 = { &o, 2 }, t3 = { &o, 3 };
    uint64_t a = loop_add_timer(l, 5, record, &t1);
    uint64_t b = loop_add_timer(l, 6, record, &t2);
    uint64_t c = loop_add_timer(l, 7, record, &t3);
    CHECK(a && b && c && a != b && b != c);
    loop_del_timer(l, b);
    loop_del_timer(l, 999999);   /* unknown: ignored */
    loop_add_timer(l, 20, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(o.n, 2);
    CHECK_EQ_INT(o.seen[0], 1);
    CHECK_EQ_INT(o.seen[1], 3);
    loop_del_timer(l, a);   /* already fired: ignored */
    loop_free(l);
}

struct rearm {
    int count;
};

/* A timer that re-arms itself with 0 ms must not starve the loop in one pass. */
static void rearm_cb(struct loop *l, void *ud)
{
    struct rearm *r = ud;
    if (++r->count < 5)
        loop_add_timer(l, 0, rearm_cb, r);
}

TEST(timer_added_from_timer)
{
    struct loop *l = loop_new();
    struct rearm r = { 0 };
    loop_add_timer(l, 0, rearm_cb, &r);
    loop_add_timer(l, 30, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(r.count, 5);
    loop_free(l);
}

struct pipe_reader {
    int reads;
    int events;
    char got[8];
};

static void read_and_del(struct loop *l, int fd, int events, void *ud)
{
    struct pipe_reader *pr = ud;
    pr->events |= events;
    if (read(fd, pr->got, sizeof pr->got) > 0)
        pr->reads++;
    loop_del_fd(l, fd);   /* inside its own callback */
    loop_stop(l);
}

TEST(fd_callback_via_pipe)
{
    struct loop *l = loop_new();
    int p[2];
    CHECK_EQ_INT(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct pipe_reader pr = { 0, 0, "" };
    CHECK_EQ_INT(loop_add_fd(l, p[0], LOOP_READ, read_and_del, &pr), 0);
    CHECK(loop_add_fd(l, p[0], LOOP_READ, read_and_del, &pr) < 0);   /* twice: refused */
    CHECK_EQ_INT(write(p[1], "x", 1), 1);
    loop_add_timer(l, 2000, stop_cb, NULL);   /* safety net */
    loop_run(l);
    CHECK_EQ_INT(pr.reads, 1);
    CHECK_EQ_INT(pr.events, LOOP_READ);
    CHECK_EQ_INT(pr.got[0], 'x');
    /* Deleted: more data must not call it again. */
    CHECK_EQ_INT(write(p[1], "y", 1), 1);
    loop_add_timer(l, 20, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(pr.reads, 1);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

struct writer {
    int calls;
};

static void on_writable(struct loop *l, int fd, int events, void *ud)
{
    struct writer *w = ud;
    if (events & LOOP_WRITE)
        w->calls++;
    loop_mod_fd(l, fd, 0);   /* stop asking: must not be called again */
}

TEST(write_readiness_and_mod)
{
    struct loop *l = loop_new();
    int p[2];
    CHECK_EQ_INT(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct writer w = { 0 };
    CHECK_EQ_INT(loop_add_fd(l, p[1], LOOP_WRITE, on_writable, &w), 0);
    loop_add_timer(l, 30, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(w.calls, 1);
    CHECK(loop_mod_fd(l, 12345, LOOP_READ) < 0);   /* not registered */
    loop_del_fd(l, p[1]);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* Two readable pipes in one batch: whichever callback runs first deletes the other one. */
struct pair {
    int fds[2];
    int calls;
};

static void del_other(struct loop *l, int fd, int events, void *ud)
{
    (void)events;
    struct pair *pp = ud;
    pp->calls++;
    char c;
    if (read(fd, &c, 1) < 0) { /* nothing */ }
    int other = fd == pp->fds[0] ? pp->fds[1] : pp->fds[0];
    loop_del_fd(l, other);
    loop_del_fd(l, fd);
}

TEST(del_other_fd_in_same_batch)
{
    struct loop *l = loop_new();
    int a[2], b[2];
    CHECK_EQ_INT(pipe2(a, O_NONBLOCK), 0);
    CHECK_EQ_INT(pipe2(b, O_NONBLOCK), 0);
    struct pair pp = { { a[0], b[0] }, 0 };
    loop_add_fd(l, a[0], LOOP_READ, del_other, &pp);
    loop_add_fd(l, b[0], LOOP_READ, del_other, &pp);
    CHECK_EQ_INT(write(a[1], "1", 1), 1);
    CHECK_EQ_INT(write(b[1], "2", 1), 1);
    loop_add_timer(l, 30, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(pp.calls, 1);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    loop_free(l);
}

static void count_hup(struct loop *l, int fd, int events, void *ud)
{
    int *n = ud;
    char c[4];
    if ((events & LOOP_READ) && read(fd, c, sizeof c) == 0)
        (*n)++;   /* EOF seen through a READ event */
    loop_del_fd(l, fd);
}

TEST(hangup_reported_as_read)
{
    struct loop *l = loop_new();
    int p[2];
    CHECK_EQ_INT(pipe2(p, O_NONBLOCK), 0);
    int eofs = 0;
    loop_add_fd(l, p[0], LOOP_READ, count_hup, &eofs);
    close(p[1]);
    loop_add_timer(l, 30, stop_cb, NULL);
    loop_run(l);
    CHECK_EQ_INT(eofs, 1);
    close(p[0]);
    loop_free(l);
}

int main(void)
{
    RUN(timers_fire_in_order);
    RUN(cancel_timer);
    RUN(timer_added_from_timer);
    RUN(fd_callback_via_pipe);
    RUN(write_readiness_and_mod);
    RUN(del_other_fd_in_same_batch);
    RUN(hangup_reported_as_read);
    return check_done();
}
