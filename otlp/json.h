/*
 * json.h - OTLP/JSON in and out, for the OTLP/HTTP receiver.
 *
 * Why a transcoder: there is one decoder, the protobuf one (otlp/decode.c for profiles,
 * otlp/traces.c for traces), with all the validation. A JSON request is therefore first
 * rewritten into the protobuf wire form it stands for, driven by a table of the v1.11
 * messages (JSON name -> field number and type), and the bytes produced go through exactly
 * the same decoder, validation and sinks as a gRPC request.
 *
 * What is accepted (the OTLP/JSON encoding, a profile of the proto3 JSON mapping):
 *   - keys in lowerCamelCase ("timeUnixNano") or as the proto field name ("time_unix_nano");
 *     unknown keys are skipped, whatever their value; null means "not set";
 *   - 64-bit integers as JSON numbers or decimal strings; 32-bit ones the same way;
 *   - trace_id, span_id, parent_span_id and profile_id (and the ids of profile and span
 *     links) as hex strings, any case, as OTLP/JSON requires (not base64); every other bytes
 *     field as base64 (standard or URL-safe alphabet, padding optional), the proto3 rule;
 *   - enums as numbers (OTLP/JSON), and also by their proto names;
 *   - doubles as numbers or the strings "NaN", "Infinity", "-Infinity" or a number in a string;
 *   - repeated scalars are written packed.
 * The profiles messages are those of the v1.10/v1.11 layout (the field names of today's
 * proto); the bytes produced are v1.11 protobuf.
 *
 * Bounds: the output is limited by out->limit (the caller's max message size), JSON nesting
 * by OTLP_JSON_MAX_DEPTH; a document that breaks either, or is not JSON, is refused with a
 * message that says where.
 */
#ifndef LB_OTLP_JSON_H
#define LB_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/decode.h"
#include "otlp/traces.h"

#define OTLP_JSON_MAX_DEPTH 128

enum otlp_json_doc {
    OTLP_JSON_PROFILES_REQUEST,   /* ExportProfilesServiceRequest (v1development, v1.11) */
    OTLP_JSON_TRACES_REQUEST,     /* ExportTraceServiceRequest (trace v1) */
};

enum otlp_json_result {
    OTLP_JSON_OK = 0,
    OTLP_JSON_INVALID,      /* not JSON, or not the message: `err` says where and why */
    OTLP_JSON_TOO_LARGE,    /* the protobuf form would pass out->limit */
};

/* Appends the protobuf encoding of the JSON document to `out`. On failure `out` holds junk
 * and `err` a one-line reason ("at byte 123 (field \"spanId\"): ..."). */
enum otlp_json_result otlp_json_to_protobuf(enum otlp_json_doc doc, const uint8_t *json, size_t len,
                                            struct buf *out, char *err, size_t errlen);

/* Responses in OTLP/JSON: {} on full success, or {"partialSuccess":{...}} with the rejected
 * count as a string (int64) and the error message. 0, or -1 when `out` is full. */
int otlp_json_profiles_response(const struct otlp_result *res, struct buf *out);
int otlp_json_traces_response(const struct otlp_trace_result *res, struct buf *out);
/* google.rpc.Status as JSON: {"code":3,"message":"..."}. */
int otlp_json_status(int code, const char *message, struct buf *out);

#endif
