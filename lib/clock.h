/*
 * clock.h - the monotonic clock in nanoseconds, for measuring durations: how long a request
 * took, how long a commit took.
 *
 * Why not loop_now_ms (lib/loop.h): the loop reads its clock once per iteration, in
 * milliseconds, and a request is handled inside one iteration in well under a millisecond.
 * Reading CLOCK_MONOTONIC costs a few tens of nanoseconds (the vDSO, no system call).
 */
#ifndef LB_LIB_CLOCK_H
#define LB_LIB_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
