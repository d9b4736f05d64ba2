/*
 * fuzz_speculate.c - libFuzzer target: the differential check of the decoder's fast layout
 * detection. Arbitrary bytes as an ExportProfilesServiceRequest, decoded twice: the fast way
 * (otlp/detect.h: a prefix walk, the rest checked while decoding, retracted on doubt) and the
 * full walk it replaces (the reference). Whatever the bytes, both must come to the same
 * outcome (test/fuzz/outcome.h): accepted or refused, status and message, layout, every
 * verdict and evidence line, the unknown fields, and the events the consumer was left with.
 *
 * Why a target apart from fuzz_decode: the reference is an independent oracle only this target
 * needs, and decoding every input twice more there halved that target's executions a second.
 * Seeds are decode's (test/fuzz/seeds.py). Built by `make fuzz`; run by scripts/fuzz and,
 * briefly, by test/e2e/fuzz_smoke.sh.
 */
#include <stdint.h>
#include <stdio.h>

#include "otlp/decode.h"
#include "test/fuzz/harness.h"
#include "test/fuzz/outcome.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct otlp_decoder *fast, *reference;
    if (!fast) {
        struct otlp_limits limits = { 0, 0 };
        fast = otlp_decoder_new(&limits, NULL);
        reference = otlp_decoder_new(&limits, NULL);
        fuzz_must(fast && reference, "decoder");
        otlp_decoder_set_reference(reference, true);
    }
    static struct outcome got, want;
    outcome_decode(fast, data, size, &got);
    outcome_decode(reference, data, size, &want);
    const char *diff = outcome_differs(&got, &want);
    if (diff)
        fprintf(stderr, "fast path: %s\nreference: %s\n", got.res.message, want.res.message);
    fuzz_must(diff == NULL, diff ? diff : "");
    fuzz_must(want.retractions == 0, "the reference retracted a request");
    fuzz_must(got.ends + got.aborts <= 1 && want.ends + want.aborts <= 1, "one end per request");
    return 0;
}
