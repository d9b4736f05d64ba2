/*
 * bench_usdt.c - how many bpftrace lines a second can `lazybackend usdt` take?
 *
 * Runs over the same in-memory lines (bpftrace 0.17's printf envelope, the ids and epoch
 * timestamps of a real run, ends slightly out of order) and reports events/s for:
 *   - a memory scan for the newlines (the baseline: no reader beats finding its lines),
 *   - parsing each line into an event (cmd/usdt_parse.c),
 *   - parsing and pairing (cmd/usdt_pair.c),
 *   - parsing, pairing and encoding every 512 spans as an OTLP request (cmd/usdt_encode.c).
 * Figures are ratios to the baseline measured in the same run. The command's own figures
 * (reading, the loop, the export to a server) come from scripts/bench, which also uses
 *   bench_usdt --write FILE EVENTS
 * to write such lines to a file.
 * Usage: bench_usdt [SECONDS_PER_CASE] | bench_usdt --write FILE EVENTS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/usdt.h"
#include "lib/buf.h"

#define BATCH 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `events` lines: requests two at a time, both starts then both ends (a little reordering
 * of the kind per-CPU buffers make), with the spacing bpftrace 0.17 writes. */
static void make_lines(struct buf *out, unsigned long events)
{
    unsigned long long t = 1796400430172630642ULL;
    for (unsigned long i = 0; i + 4 <= events; i += 4, t += 1000) {
        for (int k = 0; k < 2; k++)
            buf_printf(out, "{\"type\": \"printf\", \"data\": \"{\\\"event\\\":\\\"request_start\\\",\\\"reqid\\\":"
                            "\\\"req-%llu\\\",\\\"timestamp\\\":%llu}\\n\"}\n", t + (unsigned)k, t + (unsigned)k);
        for (int k = 0; k < 2; k++)
            buf_printf(out, "{\"type\": \"printf\", \"data\": \"{\\\"event\\\":\\\"request_end\\\",\\\"reqid\\\":"
                            "\\\"req-%llu\\\",\\\"start\\\":%llu,\\\"duration\\\":%lu}\\n\"}\n",
                       t + (unsigned)k, t + (unsigned)k, 1000 + i);
    }
}

struct run {
    struct usdt_span_rec batch[BATCH];
    size_t n;
    struct buf body;
    bool encode;
    unsigned long long spans, bytes;
};

static volatile size_t scanned;   /* keeps the scan from being optimised away */

static const struct usdt_kv service = { "service.name", "bench" };
static const struct usdt_resource resource = { &service, 1, "lazybackend-usdt", "0", "http.request" };

static void flush(struct run *r)
{
    buf_reset(&r->body);
    if (!usdt_encode_proto(&r->body, &resource, r->batch, r->n)) {
        fprintf(stderr, "encode failed\n");
        exit(1);
    }
    r->bytes += r->body.len;
    r->n = 0;
}

static void on_span(void *ud, const struct usdt_span *sp)
{
    struct run *r = ud;
    r->spans++;
    if (!r->encode)
        return;
    struct usdt_span_rec *s = &r->batch[r->n++];
    memset(s->trace_id, 0x11, 16);
    memcpy(s->trace_id, &r->spans, sizeof r->spans);   /* distinct, never all zero */
    memset(s->span_id, 0x22, 8);
    s->start_ns = sp->start_ns;
    s->end_ns = sp->end_ns;
    s->duration_ns = sp->duration_ns;
    s->how = (uint8_t)sp->how;
    s->reqid_len = (uint8_t)sp->reqid_len;
    memcpy(s->reqid, sp->reqid, sp->reqid_len);
    if (r->n == BATCH)
        flush(r);
}

enum stage { SCAN, PARSE, PAIR, ENCODE };

/* Events handled per second by one stage, repeated over the lines for `budget` seconds. */
static double measure(const struct buf *lines, unsigned long events, enum stage stage, double budget)
{
    struct usdt_parser p;
    struct usdt_event ev;
    static struct run r;
    struct usdt_pair_options o = { 65536, 60000, 1000 };
    usdt_parser_init(&p, 1 << 20);
    memset(&r, 0, sizeof r);
    buf_init(&r.body, 64u << 20);
    r.encode = stage == ENCODE;
    unsigned long long done = 0;
    double t0 = now_s(), t;
    do {
        struct usdt_pairing *pt = usdt_pair_new(&o, on_span, &r);
        const char *s = (const char *)lines->data, *end = s + lines->len;
        while (s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            size_t len = (size_t)(nl - s);
            if (stage == SCAN) {
                scanned += len;
            } else {
                usdt_parse_line(&p, s, len, &ev);
                if (stage >= PAIR && ev.kind == USDT_START)
                    usdt_pair_start(pt, ev.reqid, ev.reqid_len, ev.timestamp, 0);
                else if (stage >= PAIR && ev.kind == USDT_END)
                    usdt_pair_end(pt, ev.reqid, ev.reqid_len, ev.duration, ev.has_start, ev.start, 0);
            }
            s = nl + 1;
        }
        if (r.n)
            flush(&r);
        usdt_pair_free(pt);
        done += events;
    } while ((t = now_s() - t0) < budget);
    if (stage >= PAIR && r.spans != done / 2) {
        fprintf(stderr, "pairing lost spans: %llu of %llu\n", r.spans, done / 2);
        exit(1);
    }
    if (stage == ENCODE)
        printf("  (%.0f bytes of protobuf per span)\n", (double)r.bytes / (double)r.spans);
    buf_free(&r.body);
    usdt_parser_free(&p);
    return (double)done / t;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--write") == 0) {
        struct buf lines;
        buf_init(&lines, (size_t)1 << 34);
        make_lines(&lines, strtoul(argv[3], NULL, 10));
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(lines.data, 1, lines.len, f) != lines.len || fclose(f) != 0) {
            perror(argv[2]);
            return 1;
        }
        buf_free(&lines);
        return 0;
    }
    double budget = argc > 1 ? atof(argv[1]) : 2;
    unsigned long events = 200000;
    struct buf lines;
    buf_init(&lines, (size_t)1 << 30);
    make_lines(&lines, events);
    printf("usdt, in process: %lu bpftrace 0.17 lines (%.0f bytes each) in memory\n", events,
           (double)lines.len / (double)events);
    double base = measure(&lines, events, SCAN, budget);
    printf("  %-40s %12.0f events/s  (baseline)\n", "scan for newlines", base);
    static const char *const names[] = { "", "parse", "parse + pair", "parse + pair + encode (protobuf)" };
    for (int st = PARSE; st <= ENCODE; st++) {
        double v = measure(&lines, events, (enum stage)st, budget);
        printf("  %-40s %12.0f events/s  %6.3fx\n", names[st], v, v / base);
    }
    buf_free(&lines);
    return 0;
}
