/*
 * loop.c - the epoll reactor behind loop.h.
 *
 * Exists so that every waiting thing in the process (sockets, signalfd, sink timeouts) is
 * driven from one thread without locks. Design, after redis' ae.c:
 *   - registrations live in a table indexed by fd, grown on demand;
 *   - each registration carries a generation number that is also stored in the epoll event,
 *     so an event fetched in a batch is dropped when its fd was deleted (or deleted and
 *     re-added for a different owner) by an earlier callback of the same batch;
 *   - timers are one-shot entries of a binary min-heap ordered by (deadline, id); ids grow
 *     monotonically, so equal deadlines fire in creation order and a timer created by a timer
 *     callback never fires in the same pass (no starvation of I/O);
 *   - "now" is read from CLOCK_MONOTONIC once per iteration, right after epoll_wait.
 */
#include "lib/loop.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum { LOOP_BATCH = 256, LOOP_TURN_HOOKS = 8 };
/* A busy loop takes input that is ready at once before the end-of-turn hooks run, up to these
 * bounds: under load one group commit then covers more requests (fewer syncs), at the cost of
 * at most this much latency. */
enum { COALESCE_TURNS = 8, COALESCE_MS = 5 };

struct fd_reg {
    loop_fd_fn fn;
    void *ud;
    int events;        /* LOOP_READ | LOOP_WRITE */
    bool active;
    uint32_t gen;      /* matches the high half of epoll_event.data.u64 */
};

struct timer {
    uint64_t when;
    uint64_t id;
    loop_timer_fn fn;
    void *ud;
};

struct loop {
    int epfd;
    bool stop;
    uint64_t now;
    struct fd_reg *fds;
    size_t nfds;       /* table size: valid fds are < nfds */
    uint32_t next_gen;
    struct timer *heap;
    size_t nheap, capheap;
    uint64_t next_timer_id;
    struct { loop_turn_fn fn; void *ud; } turn_end[LOOP_TURN_HOOKS];
    size_t n_turn_end;
    bool turn_work;    /* loop_turn_work() since the hooks last ran */
    struct epoll_event events[LOOP_BATCH];
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->now = monotonic_ms();
    l->next_gen = 1;
    l->next_timer_id = 1;
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->fds);
    free(l->heap);
    free(l);
}

uint64_t loop_now_ms(struct loop *l) { return l->now; }

void loop_stop(struct loop *l) { l->stop = true; }

/* ---- file descriptors ---- */

static uint32_t to_epoll(int events)
{
    uint32_t e = 0;
    if (events & LOOP_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & LOOP_WRITE)
        e |= EPOLLOUT;
    return e;
}

/* Grows the table so that `fd` is a valid index; false on allocation failure. */
static bool grow_fds(struct loop *l, int fd)
{
    size_t need = (size_t)fd + 1;
    if (need <= l->nfds)
        return true;
    size_t n = l->nfds ? l->nfds : 64;
    while (n < need)
        n *= 2;
    struct fd_reg *p = realloc(l->fds, n * sizeof *p);
    if (!p)
        return false;
    memset(p + l->nfds, 0, (n - l->nfds) * sizeof *p);
    l->fds = p;
    l->nfds = n;
    return true;
}

static int epoll_update(struct loop *l, int op, int fd, const struct fd_reg *r)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = to_epoll(r->events);
    ev.data.u64 = ((uint64_t)r->gen << 32) | (uint32_t)fd;
    return epoll_ctl(l->epfd, op, fd, &ev);
}

int loop_add_fd(struct loop *l, int fd, int events, loop_fd_fn fn, void *ud)
{
    if (fd < 0 || !fn) {
        errno = EINVAL;
        return -1;
    }
    if (!grow_fds(l, fd)) {
        errno = ENOMEM;
        return -1;
    }
    struct fd_reg *r = &l->fds[fd];
    if (r->active) {
        errno = EEXIST;
        return -1;
    }
    struct fd_reg nr = { .fn = fn, .ud = ud, .events = events, .active = true,
                         .gen = l->next_gen++ };
    if (l->next_gen == 0)   /* 0 never names a live registration */
        l->next_gen = 1;
    if (epoll_update(l, EPOLL_CTL_ADD, fd, &nr) < 0)
        return -1;
    *r = nr;
    return 0;
}

int loop_mod_fd(struct loop *l, int fd, int events)
{
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active) {
        errno = ENOENT;
        return -1;
    }
    struct fd_reg *r = &l->fds[fd];
    if (r->events == events)
        return 0;
    int old = r->events;
    r->events = events;
    if (epoll_update(l, EPOLL_CTL_MOD, fd, r) < 0) {
        r->events = old;
        return -1;
    }
    return 0;
}

void loop_del_fd(struct loop *l, int fd)
{
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].active)
        return;
    /* The fd may already be closed by the caller; then the kernel removed it itself and
     * this fails with EBADF, which is fine. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&l->fds[fd], 0, sizeof l->fds[fd]);
}

/* Calls the owner of one fetched event, unless that registration is gone. */
static void dispatch_fd(struct loop *l, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if ((size_t)fd >= l->nfds)
        return;
    struct fd_reg *r = &l->fds[fd];
    if (!r->active || r->gen != gen)
        return;   /* deleted (or replaced) by an earlier callback of this batch */
    int events = 0;
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        events |= LOOP_READ;
    if ((ev->events & EPOLLOUT) && (r->events & LOOP_WRITE))
        events |= LOOP_WRITE;
    if (events)
        r->fn(l, fd, events, r->ud);   /* r may dangle after this: fds can be realloc'ed */
}

/* ---- timers: binary min-heap on (when, id) ---- */

static bool timer_less(const struct timer *a, const struct timer *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void heap_swap(struct loop *l, size_t i, size_t j)
{
    struct timer t = l->heap[i];
    l->heap[i] = l->heap[j];
    l->heap[j] = t;
}

static void sift_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(&l->heap[i], &l->heap[parent]))
            break;
        heap_swap(l, i, parent);
        i = parent;
    }
}

static void sift_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t left = 2 * i + 1, right = left + 1, m = i;
        if (left < l->nheap && timer_less(&l->heap[left], &l->heap[m]))
            m = left;
        if (right < l->nheap && timer_less(&l->heap[right], &l->heap[m]))
            m = right;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove_at(struct loop *l, size_t i)
{
    assert(i < l->nheap);
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    sift_down(l, i);
    sift_up(l, i);
}

uint64_t loop_add_timer(struct loop *l, uint64_t ms, loop_timer_fn fn, void *ud)
{
    if (!fn)
        return 0;
    if (l->nheap == l->capheap) {
        size_t n = l->capheap ? l->capheap * 2 : 16;
        struct timer *p = realloc(l->heap, n * sizeof *p);
        if (!p)
            return 0;
        l->heap = p;
        l->capheap = n;
    }
    uint64_t when = ms > UINT64_MAX - l->now ? UINT64_MAX : l->now + ms;
    struct timer t = { .when = when, .id = l->next_timer_id++, .fn = fn, .ud = ud };
    l->heap[l->nheap++] = t;
    sift_up(l, l->nheap - 1);
    return t.id;
}

void loop_del_timer(struct loop *l, uint64_t id)
{
    /* Linear: the process holds a handful of timers, not thousands. */
    for (size_t i = 0; i < l->nheap; i++) {
        if (l->heap[i].id == id) {
            heap_remove_at(l, i);
            return;
        }
    }
}

/* Fires every timer due now that existed when this pass began. */
static void run_timers(struct loop *l)
{
    uint64_t last_id = l->next_timer_id - 1;
    while (l->nheap > 0 && l->heap[0].when <= l->now && l->heap[0].id <= last_id) {
        struct timer t = l->heap[0];
        heap_remove_at(l, 0);
        t.fn(l, t.ud);
        if (l->stop)
            return;
    }
}

/* epoll_wait timeout: until the earliest timer, or forever without timers. */
static int next_timeout(const struct loop *l)
{
    if (l->nheap == 0)
        return -1;
    uint64_t when = l->heap[0].when;
    if (when <= l->now)
        return 0;
    uint64_t d = when - l->now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

int loop_on_turn_end(struct loop *l, loop_turn_fn fn, void *ud)
{
    if (!fn || l->n_turn_end == LOOP_TURN_HOOKS)
        return -1;
    l->turn_end[l->n_turn_end].fn = fn;
    l->turn_end[l->n_turn_end].ud = ud;
    l->n_turn_end++;
    return 0;
}

void loop_del_turn_end(struct loop *l, loop_turn_fn fn, void *ud)
{
    for (size_t i = 0; i < l->n_turn_end; i++) {
        if (l->turn_end[i].fn == fn && l->turn_end[i].ud == ud) {
            memmove(&l->turn_end[i], &l->turn_end[i + 1], (l->n_turn_end - i - 1) * sizeof l->turn_end[0]);
            l->n_turn_end--;
            return;
        }
    }
}

void loop_turn_work(struct loop *l) { l->turn_work = true; }

/* Even when a callback stopped the loop: what the turn wrote is committed (or failed) now. */
static void run_turn_end(struct loop *l)
{
    l->turn_work = false;   /* before the hooks: work they leave waits for the next turn's end */
    for (size_t i = 0; i < l->n_turn_end; i++)
        l->turn_end[i].fn(l, l->turn_end[i].ud);
}

int loop_run(struct loop *l)
{
    l->stop = false;
    unsigned deferred = 0;       /* turns whose end hooks wait for the input that was ready */
    uint64_t deferred_since = 0;
    while (!l->stop) {
        int n = epoll_wait(l->epfd, l->events, LOOP_BATCH, deferred ? 0 : next_timeout(l));
        l->now = monotonic_ms();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int i = 0; i < n && !l->stop; i++)
            dispatch_fd(l, &l->events[i]);
        if (!l->stop)
            run_timers(l);
        if (n > 0 && !l->stop && l->turn_work && deferred < COALESCE_TURNS &&
            (deferred == 0 || l->now - deferred_since < COALESCE_MS)) {
            if (deferred++ == 0)
                deferred_since = l->now;
            continue;   /* more input may be ready: one commit for it too */
        }
        deferred = 0;
        run_turn_end(l);
    }
    return 0;
}
