/*
 * capture.h - captured requests, read from files in the forms people have at hand.
 *
 * Why one reader for `decode` and `send`: a capture is whatever a sender or a Collector left
 * on disk, and both commands must take the same files the same way. A FILE (or - for stdin)
 * may be gzipped, and holds
 *   - one raw protobuf request, or a stream of 4-byte big-endian length-prefixed ones (the
 *     Collector's file exporter with `format: proto`);
 *   - one OTLP/JSON document, or JSON lines, one request a line (the file exporter's default);
 *     JSON is transcoded to the v1.11 protobuf form (otlp/json.h), the same way the HTTP port
 *     does, so every later step sees protobuf.
 * The format is told from the content (gzip magic; JSON starts with '{') unless forced.
 */
#ifndef LB_CMD_CAPTURE_H
#define LB_CMD_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp/json.h"

enum capture_format { CAPTURE_AUTO, CAPTURE_PROTO, CAPTURE_JSON };

/* One request of a file: its protobuf bytes, and when it came as JSON, the document too. */
struct capture_request {
    const char *name;            /* the file name, or "<stdin>" */
    unsigned index;              /* position in the file */
    const uint8_t *msg;
    size_t len;
    const uint8_t *json;         /* NULL when the file was protobuf */
    size_t json_len;
};

/* Returns 0 when the request was handled, 1 when it failed (reported by the callee). */
typedef int (*capture_request_fn)(void *ud, const struct capture_request *req);

/* Reads FILE and calls `fn` for each request in it, in order. Requests over `max_message_size`
 * (and files that cannot be read or are not what they claim) are reported on stderr, with
 * `prog` as the prefix, and make the result 1. `doc` says which message JSON documents hold.
 * Returns 0, or 1 when anything failed. */
int capture_read(const char *prog, const char *path, enum capture_format format, enum otlp_json_doc doc,
                 size_t max_message_size, capture_request_fn fn, void *ud);

/* "json", "proto" (alias "protobuf") or "auto"; false when it is none of them. */
bool capture_format_parse(const char *s, enum capture_format *out);

#endif
