/*
 * decode.h - OTLP profiles request -> resolved samples -> events (events.h).
 *
 * One call per request. The request bytes (already decompressed) are walked with nanopb in
 * two steps: first the dictionary, wherever it sits on the wire (the eBPF profiler sends it
 * first, stock encoders last), then every ResourceProfiles. Inside each message the small
 * header fields are read before its big repeated field is streamed, so a resource's
 * attributes are known before its first profile, a profile's sample type before its first
 * sample. Each sample is resolved the moment it is decoded and emitted to the consumer; nothing
 * like a tree of the request is ever built.
 *
 * Layout: the bytes are first matched against every known proto layout (otlp/detect.h), or
 * against the pinned one; `req->layout` names the layout the request was read as. Unpinned,
 * the layout is chosen from a prefix and the rest checked while decoding (detect.h, the fast
 * path); on any doubt the consumer gets a silent retraction (request_abort with a NULL reason,
 * events.h) and the request is decoded again after the full detection.
 *
 * Validation: every index is checked against its table. A bad sample or profile is dropped,
 * counted and described (the OTLP partial_success), and the rest of the request is still
 * delivered. Malformed protobuf anywhere makes the whole request INVALID: the consumer gets
 * request_abort and the caller answers INVALID_ARGUMENT with `message`.
 */
#ifndef LB_OTLP_DECODE_H
#define LB_OTLP_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/view.h"
#include "otlp/events.h"

struct otlp_layout;
struct otlp_decoder;

struct otlp_limits {
    size_t max_stack_depth;          /* locations in one stack; deeper samples are rejected */
    uint64_t max_frames_per_request; /* resolved frames in one request (work bound) */
};
#define OTLP_DEFAULT_MAX_STACK_DEPTH 16384
#define OTLP_DEFAULT_MAX_FRAMES 50000000ull

enum otlp_status {
    OTLP_OK = 0,          /* delivered (possibly with rejected profiles: see the counts) */
    OTLP_INVALID,         /* malformed request: nothing delivered */
    OTLP_UNAVAILABLE,     /* the consumer refused to admit the request: nothing delivered */
    OTLP_SINK_FAILED,     /* the consumer failed to commit */
    OTLP_NOMEM,           /* out of memory while decoding */
};

/* Why a request was refused whole (INVALID or NOMEM), in kinds an operator can count: the
 * message says the details. */
enum otlp_problem {
    OTLP_PROBLEM_NONE,
    OTLP_PROBLEM_TOO_LARGE,       /* over the decoder's 4 GiB limit */
    OTLP_PROBLEM_MALFORMED,       /* not protobuf that any known layout can read */
    OTLP_PROBLEM_NO_LAYOUT,       /* profiles: well-formed, but every layout (or the pinned one)
                                   * contradicts it somewhere */
    OTLP_PROBLEM_OUT_OF_MEMORY,
};

struct otlp_result {
    enum otlp_status status;
    enum otlp_problem problem;    /* when status is INVALID or NOMEM */
    uint64_t resources, profiles, samples, frames, timestamps;   /* delivered */
    uint64_t rejected_profiles, rejected_samples;
    uint64_t unknown_fields;      /* fields the request's layout does not have (kept, not refused) */
    /* Refused whole by a policy ahead of the decoder (serve --check strict): the response
     * carries `message` as a partial success even when there was no profile to reject. */
    bool rejected_whole;
    char message[1024];   /* why INVALID/UNAVAILABLE/FAILED, or the partial-success message */
};

/* `layout` NULL: detect each request's proto layout (otlp/detect.h) and decode it in that
 * one; a request that fits no layout is INVALID. Otherwise the layout is pinned: a request
 * that contradicts it on the wire is INVALID. */
struct otlp_decoder *otlp_decoder_new(const struct otlp_limits *limits, const struct otlp_layout *layout);
void otlp_decoder_free(struct otlp_decoder *d);

/* Decodes one ExportProfilesServiceRequest and emits it to `out` (events.h). `req` describes where
 * the request came from; its `layout` and `message_bytes` are filled in here. Returns
 * res->status. */
enum otlp_status otlp_export_profiles(struct otlp_decoder *d, const uint8_t *msg, size_t len,
                                      struct lb_request *req, struct otlp_consumer out,
                                      struct otlp_result *res);

/* The layout is detected the fast way (otlp/detect.h: a prefix walk, the rest checked while
 * decoding, retracted and decoded again the full way on any doubt); `reference_only` makes
 * every request go the full way (detection, then decoding): the reference the tests compare
 * the fast path with. */
void otlp_decoder_set_reference(struct otlp_decoder *d, bool reference_only);
/* Requests the fast path retracted and decoded again, since the decoder was made. */
uint64_t otlp_decoder_retractions(const struct otlp_decoder *d);

/* How the layout of the last request was chosen (valid until the next call). */
struct otlp_detection;
const struct otlp_detection *otlp_decoder_detection(const struct otlp_decoder *d);

/* Serializes the ExportProfilesServiceResponse for `res` (empty on full success; a
 * partial_success with rejected_profiles and error_message otherwise). 0 or -1. */
int otlp_encode_profiles_response(const struct otlp_result *res, struct buf *out);

#endif
