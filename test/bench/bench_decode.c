/*
 * bench_decode.c - how fast does a request go from bytes to resolved samples?
 *
 * Decodes a captured request in a loop and reports samples/s and MB/s for:
 *   - a memory scan of the same bytes (the baseline: no decoder can beat reading its input),
 *   - the decoder with no sink (decode + validate + resolve every frame),
 *   - the decoder feeding the stdout sink in text, JSON and folded format into /dev/null, with
 *     the output's own rate (bytes written per second, measured on one request written to a
 *     temporary file) beside the memory scan: formatting should go at memory speed too.
 * Figures are ratios to the baseline measured in the same run, so they compare across
 * machines; given ANCHOR_MBS (Google protobuf C++ parsing the same bytes into an Arena,
 * measured by scripts/bench in the same run), every figure is also printed as a ratio to it.
 * Usage: bench_decode FILE [SECONDS_PER_CASE [ANCHOR_MBS]]
 * BENCH_DECODE_ONLY=nosink runs the no-sink case alone (what `perf record` of the decoder wants);
 * BENCH_DECODE_ONLY=text|json|folded runs that sink's case alone (for `perf record` of a format).
 * BENCH_DECODE_REFERENCE=1 decodes without the layout detector's fast path (otlp/detect.h: the
 * full walk, then the decode), for an A/B of the two in one build.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "otlp/decode.h"
#include "sinks/stdout/stdout.h"

/* The CPU time of this process, not the wall clock: on a shared machine the wall clock also
 * counts the time other processes had the core (the figures moved by half between runs). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result { double seconds; unsigned long iterations; unsigned long long samples; };

static volatile uint64_t scan_sink;

/* The clock is read once per batch of passes of at least 256 KiB: reading the process CPU
 * clock is a system call (~1 us), which on the 25 KB example would have been a tenth of a pass
 * and made the baseline read low. */
static struct result scan(const uint8_t *p, size_t n, double budget)
{
    struct result r = { 0, 0, 0 };
    unsigned long batch = n >= ((size_t)256 << 10) ? 1 : (unsigned long)(((size_t)256 << 10) / (n ? n : 1));
    double t0 = now_s();
    do {
        for (unsigned long k = 0; k < batch; k++) {
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += p[i];
            scan_sink += sum;
        }
        r.iterations += batch;
    } while ((r.seconds = now_s() - t0) < budget);
    return r;
}

static struct result decode_loop(const uint8_t *p, size_t n, struct sink_set *sinks, double budget)
{
    struct otlp_limits limits = { 0, 0 };
    struct otlp_decoder *d = otlp_decoder_new(&limits, NULL);
    const char *reference = getenv("BENCH_DECODE_REFERENCE");
    otlp_decoder_set_reference(d, reference && strcmp(reference, "1") == 0);
    struct result r = { 0, 0, 0 };
    double t0 = now_s();
    do {
        struct lb_request req = { .transport = "file", .peer = "bench" };
        struct otlp_result res;
        if (otlp_export_profiles(d, p, n, &req, sink_set_consumer(sinks), &res) != OTLP_OK) {
            fprintf(stderr, "decode failed: %s\n", res.message);
            exit(1);
        }
        r.samples += res.samples;
        r.iterations++;
    } while ((r.seconds = now_s() - t0) < budget);
    otlp_decoder_free(d);
    return r;
}

static double anchor_mbs;   /* 0: not measured, no column */

static void report(const char *name, struct result r, size_t n, double baseline_mbs)
{
    double mbs = (double)n * (double)r.iterations / r.seconds / 1e6;
    printf("  %-28s %12.0f samples/s %10.1f MB/s   %6.3f x baseline", name,
           (double)r.samples / r.seconds, mbs, mbs / baseline_mbs);
    if (anchor_mbs > 0)
        printf("  %6.3f x protobuf", mbs / anchor_mbs);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [SECONDS_PER_CASE [ANCHOR_MBS]]\n", argv[0]);
        return 2;
    }
    double budget = argc > 2 ? atof(argv[2]) : 2.0;
    anchor_mbs = argc > 3 ? atof(argv[3]) : 0;
    struct buf in;
    buf_init(&in, 1u << 30);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    ssize_t got;
    while (buf_reserve(&in, 65536) && (got = read(fd, in.data + in.len, in.cap - in.len)) > 0)
        in.len += (size_t)got;
    close(fd);

    int devnull = open("/dev/null", O_WRONLY);
    struct result base = scan(in.data, in.len, budget);
    double base_mbs = (double)in.len * (double)base.iterations / base.seconds / 1e6;
    printf("decode benchmark: %s (%zu bytes), %.1f s per case\n", argv[1], in.len, budget);
    printf("  %-28s %12s %10.1f MB/s   %6.3f x baseline", "baseline: memory scan", "", base_mbs, 1.0);
    if (anchor_mbs > 0)
        printf("  %6.3f x protobuf", base_mbs / anchor_mbs);
    printf("\n");
    if (anchor_mbs > 0)
        printf("  %-28s %12s %10.1f MB/s   %6.3f x baseline  %6.3f x protobuf\n",
               "anchor: protobuf C++ Arena", "", anchor_mbs, anchor_mbs / base_mbs, 1.0);

    struct sink_set none = { NULL, 0 };
    const char *only = getenv("BENCH_DECODE_ONLY");
    if (!only || strcmp(only, "nosink") == 0)
        report("decode+resolve, no sink", decode_loop(in.data, in.len, &none, budget), in.len, base_mbs);
    if (only && strcmp(only, "nosink") == 0)
        return 0;

    static const struct { const char *key, *name; enum stdout_format format; } cases[] = {
        { "text", "decode + text to /dev/null", STDOUT_FORMAT_TEXT },
        { "json", "decode + json to /dev/null", STDOUT_FORMAT_JSON },
        { "folded", "decode + folded to /dev/null", STDOUT_FORMAT_FOLDED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only && strcmp(only, cases[i].key) != 0)
            continue;
        double out_bytes = 0;
        for (int pass = 0; pass < 2; pass++) {   /* 0: one request into a file, for its size */
            FILE *tmp = pass == 0 ? tmpfile() : NULL;
            struct sink s;
            struct stdout_sink_options o = { .format = cases[i].format,
                                             .fd = tmp ? fileno(tmp) : devnull };
            if ((pass == 0 && !tmp) || stdout_sink_open(&s, &o) != 0)
                return 1;
            struct sink_set set = { &s, 1 };
            struct result r = decode_loop(in.data, in.len, &set, pass == 0 ? 0 : budget);
            s.type->close(&s, 0);
            if (tmp) {
                out_bytes = (double)lseek(fileno(tmp), 0, SEEK_END) / (double)r.iterations;
                fclose(tmp);
                continue;
            }
            report(cases[i].name, r, in.len, base_mbs);
            double out_mbs = out_bytes * (double)r.iterations / r.seconds / 1e6;
            printf("  %-28s %12s %10.1f MB/s   %6.3f x baseline   (%.0f output bytes a request)\n",
                   "  ... its output", "", out_mbs, out_mbs / base_mbs, out_bytes);
        }
    }
    close(devnull);
    buf_free(&in);
    return 0;
}
