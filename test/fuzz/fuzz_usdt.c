/*
 * fuzz_usdt.c - libFuzzer target: arbitrary bytes as bpftrace's output (or an --input replay)
 * through `lazybackend usdt`'s reading, pairing and encoding: lines (cmd/usdt_lines.c, fed
 * through a pipe in pieces), events (cmd/usdt_parse.c), pairing in a small table so that
 * eviction, the TTL and the grace period all happen (cmd/usdt_pair.c; the clock moves by the
 * input's own bytes), then every span encoded (cmd/usdt_encode.c) and read back by the
 * server's traces decoder, and its OTLP/JSON form by the server's JSON transcoder. The raw
 * bytes also go to the answer parser (usdt_partial_success), which reads what a receiver
 * sends.
 *
 * Checks: the sanitizers', and the contracts: an event's id within its bound, every encoded
 * request decoding whole with every span kept, the JSON form transcoding, no span ending
 * before it starts.
 */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cmd/usdt.h"
#include "cmd/usdt_internal.h"
#include "otlp/json.h"
#include "test/fuzz/harness.h"

#define BATCH 16

struct state {
    struct usdt_span_rec recs[BATCH];
    size_t n;
    unsigned long long made;
};

static const struct usdt_kv service = { "service.name", "fuzz" };
static const struct usdt_resource resource = { &service, 1, "lazybackend-usdt", "0", "http.request" };

static void check_batch(struct state *s)
{
    struct buf pb, js, back;
    buf_init(&pb, 1 << 20);
    buf_init(&js, 1 << 20);
    buf_init(&back, 1 << 20);
    fuzz_must(usdt_encode_proto(&pb, &resource, s->recs, s->n), "usdt: protobuf encoding failed");
    fuzz_must(usdt_encode_json(&js, &resource, s->recs, s->n), "usdt: JSON encoding failed");
    struct otlp_trace_decoder *d = otlp_trace_decoder_new();
    struct lb_request r = { .transport = "fuzz", .peer = "fuzz" };
    struct otlp_trace_result res;
    fuzz_must(otlp_export_traces(d, pb.data, pb.len, &r, sink_set_consumer(fuzz_stdout_sinks()), &res) == OTLP_OK,
              "usdt: the encoded request does not decode");
    fuzz_must(res.spans == s->n && res.rejected_spans == 0, "usdt: spans lost or rejected in decoding");
    otlp_trace_decoder_free(d);
    char err[256];
    fuzz_must(otlp_json_to_protobuf(OTLP_JSON_TRACES_REQUEST, js.data, js.len, &back, err, sizeof err) ==
                  OTLP_JSON_OK, "usdt: the JSON form does not transcode");
    buf_free(&pb);
    buf_free(&js);
    buf_free(&back);
    s->n = 0;
}

static void on_span(void *ud, const struct usdt_span *sp)
{
    struct state *s = ud;
    fuzz_must(sp->reqid_len > 0 && sp->reqid_len <= USDT_REQID_MAX, "usdt: span id length");
    fuzz_must(sp->end_ns >= sp->start_ns, "usdt: span ends before it starts");
    struct usdt_span_rec *r = &s->recs[s->n++];
    memset(r, 0, sizeof *r);
    s->made++;
    memcpy(r->trace_id, &s->made, sizeof s->made);
    r->trace_id[15] = r->span_id[7] = 1;
    r->start_ns = sp->start_ns;
    r->end_ns = sp->end_ns;
    r->duration_ns = sp->duration_ns;
    r->how = (uint8_t)sp->how;
    r->reqid_len = (uint8_t)sp->reqid_len;
    memcpy(r->reqid, sp->reqid, sp->reqid_len);
    if (s->n == BATCH)
        check_batch(s);
}

static void on_line(struct usdt_parser *p, struct usdt_pairing *pt, const char *line, size_t len, uint64_t *now)
{
    struct usdt_event ev;
    usdt_parse_line(p, line, len, &ev);
    fuzz_must(ev.reqid_len <= USDT_REQID_MAX, "usdt: id over its bound");
    *now += len ? (unsigned char)line[0] % 16 : 1;
    if (ev.kind == USDT_START)
        usdt_pair_start(pt, ev.reqid, ev.reqid_len, ev.timestamp, *now);
    else if (ev.kind == USDT_END)
        usdt_pair_end(pt, ev.reqid, ev.reqid_len, ev.duration, ev.has_start, ev.start, *now);
    usdt_pair_expire(pt, *now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct state s;
    struct usdt_parser p;
    struct usdt_lines lines;
    struct usdt_pair_options o = { .max_open = 8, .ttl_ms = 60, .grace_ms = 20 };
    int64_t rejected;
    char msg[64];
    (void)usdt_partial_success(data, size, false, &rejected, msg, sizeof msg);
    (void)usdt_partial_success(data, size, true, &rejected, msg, sizeof msg);
    s.n = 0;
    struct usdt_pairing *pt = usdt_pair_new(&o, on_span, &s);
    int fds[2];
    if (!pt || usdt_parser_init(&p, 512) != 0 || usdt_lines_init(&lines, 512) != 0 || pipe2(fds, O_NONBLOCK) != 0)
        fuzz_must(false, "usdt: setup");
    /* the bytes through a pipe in pieces of 700 (more than a line, less than two limits) */
    uint64_t now = 0;
    for (size_t off = 0;;) {
        size_t piece = size - off < 700 ? size - off : 700;
        fuzz_must(piece == 0 || write(fds[1], data + off, piece) == (ssize_t)piece, "usdt: pipe");
        off += piece;
        if (off == size && fds[1] >= 0) {
            close(fds[1]);
            fds[1] = -1;
        }
        for (;;) {   /* everything readable now, line by line */
            ssize_t got = usdt_lines_read(&lines, fds[0]);
            const char *line;
            size_t len;
            int r;
            while ((r = usdt_lines_next(&lines, &line, &len)) != 0)
                if (r == 1)
                    on_line(&p, pt, line, len, &now);
            if (got <= 0)
                break;
        }
        if (lines.eof)
            break;
    }
    usdt_pair_drain(pt);
    if (s.n)
        check_batch(&s);
    fuzz_must(usdt_pair_pending(pt) == 0, "usdt: entries left after the drain");
    close(fds[0]);
    usdt_lines_free(&lines);
    usdt_parser_free(&p);
    usdt_pair_free(pt);
    return 0;
}
