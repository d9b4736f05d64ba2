/*
 * grpc.h - pure gRPC wire helpers used by h2/server.c, split out so that they can be unit
 * tested without sockets or HTTP/2: the incremental parser of length-prefixed messages
 * (which arrive cut at arbitrary DATA-frame boundaries), grpc-message percent-encoding, the
 * content-type rule and status-code names for log lines.
 */
#ifndef LB_H2_GRPC_H
#define LB_H2_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GRPC_PREFIX_LEN = 5 };

/* Incremental parser over a stream of "flag(1) length(4, big-endian) payload(length)" units.
 * It never buffers payload bytes: it only says which input bytes belong to the payload. */
struct grpc_framer {
    uint8_t prefix[GRPC_PREFIX_LEN];
    uint8_t prefix_got;   /* 0..5 */
    bool in_body;         /* prefix complete, payload not yet */
    uint8_t flag;         /* valid once the prefix is complete */
    uint32_t length;
    uint32_t body_got;
};

enum grpc_step {
    GRPC_STEP_NEED_MORE,  /* all input consumed; the current unit is incomplete */
    GRPC_STEP_PREFIX,     /* a prefix just completed: f->flag and f->length are valid */
    GRPC_STEP_BODY,       /* the first *used input bytes are payload of the current unit */
    GRPC_STEP_END,        /* the current unit is complete (consumes nothing) */
};

static inline void grpc_framer_init(struct grpc_framer *f)
{
    *f = (struct grpc_framer){ 0 };
}

/* One step over p[0..n); *used = bytes consumed. Loop until GRPC_STEP_NEED_MORE. After END
 * the framer expects the next unit's prefix. */
enum grpc_step grpc_framer_step(struct grpc_framer *f, const uint8_t *p, size_t n, size_t *used);

/* At end of stream: true when a unit was cut short; *got / *want say how far it got (prefix
 * bytes of 5 when the prefix itself is incomplete, otherwise payload bytes of length). */
bool grpc_framer_partial(const struct grpc_framer *f, bool *in_prefix, size_t *got, size_t *want);

/* grpc-message encoding (PROTOCOL-HTTP2.md): bytes outside 0x20..0x7E and '%' become %XX.
 * Writes a NUL-terminated string; truncates at a character boundary when `outlen` is short.
 * Returns the length written. */
size_t grpc_percent_encode(const char *in, char *out, size_t outlen);

/* "application/grpc", optionally followed by "+subtype" or ";params". */
bool grpc_content_type_ok(const char *ct);

/* "OK", "INVALID_ARGUMENT", ... ("?" for unknown codes). */
const char *grpc_status_name(int status);

#endif
