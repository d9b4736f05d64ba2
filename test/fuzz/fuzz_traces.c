/*
 * fuzz_traces.c - libFuzzer target: arbitrary bytes as an ExportTraceServiceRequest, through
 * the traces decoder (otlp/traces.c) into the stdout sink's span output in all its formats,
 * and the protobuf and JSON responses made from the result - the path of a gRPC
 * TraceService/Export call or a POST /v1/traces after the transport (which only frames and
 * inflates). Checks: the sanitizers', and the result contract of traces.h (harness.c).
 */
#include <stdint.h>

#include "test/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    struct otlp_trace_result res;
    enum otlp_status st = fuzz_export_traces("grpc", data, size, &res);
    /* The stdout sink never refuses, and nothing allocates without bound: a trace request is
     * either delivered or malformed. */
    fuzz_must(st == OTLP_OK || st == OTLP_INVALID, "traces: neither delivered nor invalid");
    return 0;
}
