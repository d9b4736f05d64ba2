/*
 * usdt-app.c - a small program with USDT request probes, for `lazybackend usdt`.
 *
 * Why it exists: to see the bridge work without instrumenting a real service, and so that
 * the tests have a traced program whose every request is known. It loops through N
 * "requests" (a little computation and a sleep of varying length); each one fires
 *   PROVIDER:request_start(reqid, start_ns)
 *   PROVIDER:request_end(reqid, start_ns, duration_ns)
 * with start_ns the wall clock (Unix epoch nanoseconds) at its start and duration_ns
 * measured on the monotonic clock, and then prints what it measured, one line per request:
 *   request <reqid> start_ns=<start_ns> duration_ns=<duration_ns>
 * which is what a span must say. The probes are <sys/sdt.h>'s (Debian: systemtap-sdt-dev):
 * a NOP and a note in the ELF file, nothing at run time until a tracer attaches. Each probe
 * has a semaphore, a counter the kernel raises when a tracer attaches to it (uprobe
 * reference counting, Linux 4.20+): that is how -w knows the tracer is really there, which
 * bpftrace's own "attached_probes" line does not say before 0.24 (it comes just before
 * attaching).
 *
 *   usdt-app [-n N] [-p lazyapp|demo] [-i MS] [-I] [-w]
 *     -n N        requests (default 10; 0 = until killed)
 *     -p NAME     the provider whose probes fire: lazyapp (default) or demo (a provider
 *                 name is fixed when the probe is compiled, so both are built in)
 *     -i MS       pause between requests (default 100)
 *     -I          ids are 64-bit integers (near 2^64) instead of strings "req-<pid>-<i>"
 *     -w          print "ready <pid>", then wait (up to a minute) until a tracer is attached
 *                 to the provider's two probes before the first request
 */
#define _POSIX_C_SOURCE 200809L
#define _SDT_HAS_SEMAPHORES 1
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <time.h>
#include <unistd.h>

/* One semaphore per probe, named as <sys/sdt.h> expects, in the section tracers look in. */
#define SEMAPHORE(name) __extension__ volatile unsigned short name __attribute__((unused, section(".probes")))
SEMAPHORE(lazyapp_request_start_semaphore);
SEMAPHORE(lazyapp_request_end_semaphore);
SEMAPHORE(demo_request_start_semaphore);
SEMAPHORE(demo_request_end_semaphore);

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Some work whose length varies from request to request: a sum, then a sleep. */
static uint64_t work(unsigned i)
{
    volatile uint64_t acc = 0;
    for (unsigned k = 0; k < 20000u * (i % 7 + 1); k++)
        acc += k * 2654435761u;
    struct timespec pause = { 0, (long)(i % 5 + 1) * 1000000L };
    nanosleep(&pause, NULL);
    return acc;
}

static void usage(void)
{
    fprintf(stderr, "usage: usdt-app [-n N] [-p lazyapp|demo] [-i MS] [-I] [-w]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long n = 10, interval_ms = 100;
    int demo = 0, int_ids = 0, wait_go = 0, opt;
    while ((opt = getopt(argc, argv, "n:p:i:Iw")) != -1) {
        switch (opt) {
        case 'n': n = strtol(optarg, NULL, 10); break;
        case 'i': interval_ms = strtol(optarg, NULL, 10); break;
        case 'I': int_ids = 1; break;
        case 'w': wait_go = 1; break;
        case 'p':
            if (strcmp(optarg, "demo") == 0)
                demo = 1;
            else if (strcmp(optarg, "lazyapp") != 0)
                usage();
            break;
        default: usage();
        }
    }
    if (n < 0 || interval_ms < 0 || optind != argc)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (wait_go) {
        const volatile unsigned short *start = demo ? &demo_request_start_semaphore : &lazyapp_request_start_semaphore;
        const volatile unsigned short *end = demo ? &demo_request_end_semaphore : &lazyapp_request_end_semaphore;
        struct timespec tick = { 0, 10 * 1000000L };
        printf("ready %d\n", (int)getpid());
        for (int i = 0; !(*start && *end); i++) {
            if (i == 6000) {
                fprintf(stderr, "usdt-app: no tracer attached within a minute\n");
                return 1;
            }
            nanosleep(&tick, NULL);
        }
    }
    for (unsigned long i = 0; n == 0 || i < (unsigned long)n; i++) {
        char id[64];
        uint64_t num = UINT64_MAX - 1000000 + i;   /* beyond 2^63: exact only as an integer */
        snprintf(id, sizeof id, "req-%d-%lu", (int)getpid(), i);
        uint64_t start_ns = clock_ns(CLOCK_REALTIME), t0 = clock_ns(CLOCK_MONOTONIC);
        if (int_ids && demo)
            DTRACE_PROBE2(demo, request_start, num, start_ns);
        else if (int_ids)
            DTRACE_PROBE2(lazyapp, request_start, num, start_ns);
        else if (demo)
            DTRACE_PROBE2(demo, request_start, id, start_ns);
        else
            DTRACE_PROBE2(lazyapp, request_start, id, start_ns);
        work((unsigned)i);
        uint64_t duration_ns = clock_ns(CLOCK_MONOTONIC) - t0;
        if (int_ids && demo)
            DTRACE_PROBE3(demo, request_end, num, start_ns, duration_ns);
        else if (int_ids)
            DTRACE_PROBE3(lazyapp, request_end, num, start_ns, duration_ns);
        else if (demo)
            DTRACE_PROBE3(demo, request_end, id, start_ns, duration_ns);
        else
            DTRACE_PROBE3(lazyapp, request_end, id, start_ns, duration_ns);
        if (int_ids)
            printf("request %" PRIu64 " start_ns=%" PRIu64 " duration_ns=%" PRIu64 "\n", num, start_ns, duration_ns);
        else
            printf("request %s start_ns=%" PRIu64 " duration_ns=%" PRIu64 "\n", id, start_ns, duration_ns);
        if (interval_ms) {
            struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
            nanosleep(&pause, NULL);
        }
    }
    return 0;
}
