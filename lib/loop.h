/*
 * loop.h - the process's one event loop: epoll for file descriptors, plus one-shot timers.
 *
 * After redis' ae.c: callbacks receive the loop, the fd and a clientData pointer, nothing
 * else. Everything that waits (HTTP/2 connections, signals via signalfd, libcurl's sockets
 * and timeout in the ClickHouse sink) waits here, so the process never needs a thread and
 * never blocks on one peer while others wait.
 */
#ifndef LB_LOOP_H
#define LB_LOOP_H

#include <stdint.h>

struct loop;

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

/* `events` is what happened: LOOP_READ and/or LOOP_WRITE (errors and hang-ups are reported
 * as LOOP_READ so that the following read() sees them). */
typedef void (*loop_fd_fn)(struct loop *l, int fd, int events, void *ud);
typedef void (*loop_timer_fn)(struct loop *l, void *ud);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watch `fd` for `events` (LOOP_READ | LOOP_WRITE); 0 or -1 with errno. */
int loop_add_fd(struct loop *l, int fd, int events, loop_fd_fn fn, void *ud);
/* Change the watched events; same callback. */
int loop_mod_fd(struct loop *l, int fd, int events);
/* Stop watching; safe to call from that fd's own callback. */
void loop_del_fd(struct loop *l, int fd);

/* One-shot timer after `ms`; returns an id > 0 (0 on allocation failure). */
uint64_t loop_add_timer(struct loop *l, uint64_t ms, loop_timer_fn fn, void *ud);
/* Cancel a timer that has not fired; unknown ids are ignored. */
void loop_del_timer(struct loop *l, uint64_t id);

/* Called at the end of every turn (after the turn's fd callbacks and timers, before the loop
 * waits again), in registration order; also on the turn that stops the loop. A turn that had
 * events and left the hooks work (loop_turn_work) is followed by a non-blocking look for more,
 * and the hooks run once nothing more is ready (or after 8 turns, or 5 ms), so a busy period
 * ends in one call. Group commit hangs here: one sync for everything those turns' requests
 * wrote. 0, or -1 when the (small, fixed) table of hooks is full. */
typedef void (*loop_turn_fn)(struct loop *l, void *ud);
int loop_on_turn_end(struct loop *l, loop_turn_fn fn, void *ud);
void loop_del_turn_end(struct loop *l, loop_turn_fn fn, void *ud);
/* This turn left the end-of-turn hooks something worth gathering more input for (a write to
 * sync). Without it the hooks run at once: a turn that wrote nothing durable costs no extra
 * non-blocking epoll_wait (one a request for a client that sends one request at a time). */
void loop_turn_work(struct loop *l);

/* Monotonic milliseconds, refreshed once per iteration. */
uint64_t loop_now_ms(struct loop *l);

/* Run until loop_stop(); returns 0, or -1 if epoll itself failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
