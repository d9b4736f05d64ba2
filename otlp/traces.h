/*
 * traces.h - OTLP traces request -> resolved spans -> events (events.h).
 *
 * Why: a user watching what an agent sends wants both signals in one place, so the backend
 * also takes ExportTraceServiceRequest (gRPC TraceService/Export and POST /v1/traces). The
 * request is walked the way decode.h walks profiles: nanopb callbacks stream it element by
 * element (resource, scope, then each span whole with its attributes, events and links),
 * nothing like a tree of the request is built, and every string is a reference into the
 * request buffer.
 *
 * The spans go to a consumer (events.h) as OTLP_SIGNAL_TRACES events; which sinks take them
 * is the consumer's business.
 *
 * Validation: a span whose trace_id is not 16 bytes, span_id not 8 bytes, parent_span_id
 * neither empty nor 8 bytes, an id all zero, or an attribute that uses the profiles-only
 * string-table fields (key_strindex, string_value_strindex: traces have no string table) is
 * rejected, counted and described (the OTLP partial_success); the rest of the request is
 * still delivered. Malformed protobuf anywhere makes the whole request INVALID: the consumer gets
 * request_abort.
 */
#ifndef LB_OTLP_TRACES_H
#define LB_OTLP_TRACES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/decode.h"
#include "otlp/view.h"
#include "otlp/events.h"

#define TRACES_EXPORT_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define TRACES_HTTP_PATH "/v1/traces"

struct otlp_trace_decoder;

struct otlp_trace_result {
    enum otlp_status status;          /* same meanings as for profiles (decode.h) */
    enum otlp_problem problem;        /* when INVALID or NOMEM: TOO_LARGE, MALFORMED or OUT_OF_MEMORY */
    uint64_t resources, spans, events, links;     /* delivered */
    uint64_t rejected_spans;
    uint64_t unknown_fields;          /* fields OTLP traces v1 does not have (kept, not refused) */
    char message[1024];   /* why INVALID/UNAVAILABLE/FAILED, or the partial-success message */
};

struct otlp_trace_decoder *otlp_trace_decoder_new(void);
void otlp_trace_decoder_free(struct otlp_trace_decoder *d);

/* Decodes one ExportTraceServiceRequest (already decompressed) and emits its spans to
 * `out` (events.h). `req` describes where it came from; its `layout` ("traces v1")
 * and `message_bytes` are filled in here. Returns res->status. */
enum otlp_status otlp_export_traces(struct otlp_trace_decoder *d, const uint8_t *msg, size_t len,
                                    struct lb_request *req, struct otlp_consumer out,
                                    struct otlp_trace_result *res);

/* Serializes the ExportTraceServiceResponse for `res` (empty on full success; partial_success
 * with rejected_spans and error_message otherwise). 0 or -1. */
int otlp_encode_traces_response(const struct otlp_trace_result *res, struct buf *out);

#endif
