/*
 * fuzz_decode.c - libFuzzer target: arbitrary bytes as an ExportProfilesServiceRequest, through
 * the layout detector, the resolver and the stdout sink in all its formats, exactly the path a
 * request from the network takes after the transport (which only frames and inflates it).
 *
 * Every input is decoded with auto-detection, then once more pinned to each other layout the
 * detector found to fit: an ambiguous request is where a layout's decoders meet bytes written
 * for another layout, so those readings are exercised too. The sinks write to /dev/null; the
 * checks are the sanitizers' and a few invariants between the detector and the decoder.
 *
 * The differential check: the decoder's fast layout detection (otlp/detect.h: a prefix walk,
 * the rest checked while decoding, retracted on doubt) must come to exactly the outcome of the
 * full walk it replaces (the reference), whatever the bytes: accepted or refused, status and
 * message, layout, every verdict and evidence line, the unknown fields, the events delivered
 * (test/fuzz/outcome.h).
 *
 * Built by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined); run by scripts/fuzz and,
 * briefly, by test/e2e/fuzz_smoke.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/layout.h"
#include "test/fuzz/harness.h"
#include "test/fuzz/outcome.h"

/* libFuzzer gives the target no context argument: the decoders live in one process-wide
 * struct, set up on the first input and reused (as the server does); the sinks are the
 * harness's. */
struct harness {
    struct otlp_decoder *automatic;
    struct otlp_decoder *pinned[OTLP_LAYOUT_COUNT];
    struct otlp_decoder *fast, *reference;   /* the differential check */
};

static struct harness *harness(void)
{
    static struct harness h;
    if (h.automatic)
        return &h;
    struct otlp_limits limits = { 0, 0 };
    h.automatic = otlp_decoder_new(&limits, NULL);
    fuzz_must(h.automatic != NULL, "decoder");
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        h.pinned[i] = otlp_decoder_new(&limits, otlp_layouts[i]);
        fuzz_must(h.pinned[i] != NULL, "decoder");
    }
    h.fast = otlp_decoder_new(&limits, NULL);
    h.reference = otlp_decoder_new(&limits, NULL);
    fuzz_must(h.fast && h.reference, "decoder");
    otlp_decoder_set_reference(h.reference, true);
    return &h;
}

static enum otlp_status export(struct otlp_decoder *d, struct sink_set *set, const uint8_t *data, size_t size)
{
    struct lb_request req = { .transport = "fuzz", .peer = "fuzz", .wire_bytes = size, .sequence = 1 };
    struct otlp_result res;
    enum otlp_status st = otlp_export_profiles(d, data, size, &req, sink_set_consumer(set), &res);
    fuzz_must(st == res.status, "status and result disagree");
    fuzz_must(memchr(res.message, 0, sizeof res.message) != NULL, "message not terminated");
    fuzz_must(req.layout != NULL, "no layout name");
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct harness *h = harness();
    struct sink_set *set = fuzz_stdout_sinks();
    struct otlp_detection det;
    char line[1024];
    int rc = otlp_detect(data, size, &det);
    fuzz_must((rc == 0) == (det.layout != NULL), "detect: return code and layout disagree");
    fuzz_must(det.n_tried == OTLP_LAYOUT_COUNT && det.n_evidence <= OTLP_DETECT_MAX_EVIDENCE, "detect: counts");
    otlp_detection_summary(&det, line, sizeof line);
    otlp_detection_failure(&det, line, sizeof line);

    static struct outcome fast, reference;
    outcome_decode(h->fast, data, size, &fast);
    outcome_decode(h->reference, data, size, &reference);
    const char *diff = outcome_differs(&fast, &reference);
    if (diff)
        fprintf(stderr, "fast path: %s\nreference: %s\n", fast.res.message, reference.res.message);
    fuzz_must(diff == NULL, diff ? diff : "");
    fuzz_must(reference.retractions == 0, "the reference retracted a request");
    fuzz_must(fast.ends + fast.aborts <= 1 && reference.ends + reference.aborts <= 1, "one end per request");

    enum otlp_status st = export(h->automatic, set, data, size);
    fuzz_must(rc == 0 || st == OTLP_INVALID, "a request that fits no layout was not refused");
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        if (det.tried[i].fits && det.tried[i].layout != det.layout)
            export(h->pinned[i], set, data, size);
    }
    return 0;
}
