/*
 * fuzz_json.c - libFuzzer target: arbitrary bytes as an OTLP/JSON request body, through the
 * JSON -> protobuf transcoder (otlp/json.c) as a profiles request and as a traces request,
 * exactly what POST /v1development/profiles and /v1/traces do with application/json.
 *
 * When a document transcodes, its protobuf goes on into the decoder and the stdout sinks
 * (the JSON path ends in the same code as the gRPC one, so that code meets the shapes only
 * the transcoder writes) and the JSON responses are made from the result. Each document is
 * also transcoded under an output limit smaller than what it needs, so the bound is hit at
 * every point of the writer. Checks: the sanitizers', and the transcoder's contract in
 * json.h (a result, a terminated one-line reason on failure, the output within the limit).
 */
#include <stdint.h>
#include <string.h>

#include "otlp/json.h"
#include "test/fuzz/harness.h"

enum { OUT_LIMIT = 4 << 20 };

/* A reason is one terminated line of printable ASCII (it goes into logs and into an HTTP
 * error body; json.c once quoted decoded newlines there). */
static void check_reason(const char *err, size_t cap)
{
    fuzz_must(memchr(err, 0, cap) != NULL, "json: reason not terminated");
    fuzz_must(err[0] != 0, "json: empty reason");
    fuzz_must(fuzz_printable(err), "json: reason not one line of printable ASCII");
}

static enum otlp_json_result transcode(enum otlp_json_doc doc, const uint8_t *data, size_t size,
                                       size_t limit, struct buf *pb)
{
    char err[512];
    memset(err, 0x55, sizeof err);   /* an unterminated reason must show */
    buf_init(pb, limit);
    enum otlp_json_result r = otlp_json_to_protobuf(doc, data, size, pb, err, sizeof err);
    fuzz_must(r == OTLP_JSON_OK || r == OTLP_JSON_INVALID || r == OTLP_JSON_TOO_LARGE, "json: result");
    fuzz_must(pb->len <= limit, "json: output over the limit");
    if (r != OTLP_JSON_OK) {
        check_reason(err, sizeof err);
        /* what an HTTP 400/413 answers with */
        struct buf status;
        buf_init(&status, 1 << 20);
        fuzz_must(otlp_json_status(3, err, &status) == 0, "json: status body");
        fuzz_check_json_out(&status, "json: status body is not json");
        buf_free(&status);
    }
    return r;
}

static void one(enum otlp_json_doc doc, const uint8_t *data, size_t size)
{
    struct buf pb;
    enum otlp_json_result r = transcode(doc, data, size, OUT_LIMIT, &pb);
    if (r == OTLP_JSON_OK) {
        if (doc == OTLP_JSON_PROFILES_REQUEST) {
            struct otlp_result res;
            fuzz_export_profiles("http", pb.data ? pb.data : (const uint8_t *)"", pb.len, &res);
        } else {
            struct otlp_trace_result res;
            fuzz_export_traces("http", pb.data ? pb.data : (const uint8_t *)"", pb.len, &res);
        }
        if (pb.len > 0) {
            /* The same document under a limit one byte short must be refused as too large. */
            struct buf small;
            enum otlp_json_result rs = transcode(doc, data, size, pb.len - 1, &small);
            fuzz_must(rs == OTLP_JSON_TOO_LARGE, "json: a limit one byte short was not hit");
            buf_free(&small);
        }
    }
    buf_free(&pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    one(OTLP_JSON_PROFILES_REQUEST, data, size);
    one(OTLP_JSON_TRACES_REQUEST, data, size);
    return 0;
}
