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
 * The fast path's differential check against the full layout walk has a target of its own
 * (fuzz_speculate.c): run here it doubled the cost of every input of this target.
 *
 * Built by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined); run by scripts/fuzz and,
 * briefly, by test/e2e/fuzz_smoke.sh.
 */
#include <stdint.h>
#include <string.h>

#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/layout.h"
#include "test/fuzz/harness.h"

/* libFuzzer gives the target no context argument: the decoders live in one process-wide
 * struct, set up on the first input and reused (as the server does); the sinks are the
 * harness's. */
struct harness {
    struct otlp_decoder *automatic;
    struct otlp_decoder *pinned[OTLP_LAYOUT_COUNT];
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

    enum otlp_status st = export(h->automatic, set, data, size);
    fuzz_must(rc == 0 || st == OTLP_INVALID, "a request that fits no layout was not refused");
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        if (det.tried[i].fits && det.tried[i].layout != det.layout)
            export(h->pinned[i], set, data, size);
    }
    return 0;
}
