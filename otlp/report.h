/*
 * report.h - what a decoder tells the sender about a request: its first problem, with where
 * in the request it was found, and the response that carries it.
 *
 * Why its own file: the profiles decoder (decode.c) and the traces decoder (traces.c) walk
 * different messages but keep the same account of a request (where the walk stands, whether
 * the request is already lost, the reason being built for a rejection) and answer in the same
 * terms: "resource_spans[2].scope_spans[0]: ...", "malformed span: <nanopb error>",
 * "rejected 3 span(s); first problem: ...". One implementation keeps the two signals'
 * messages identical in form, so a sender (or a test) reads both the same way.
 */
#ifndef LB_OTLP_REPORT_H
#define LB_OTLP_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <pb.h>

#include "lib/buf.h"

/* Nesting levels a path can name: resource, scope, profile or span, sample. */
#define OTLP_PATH_MAX 4

/* A decoder's account of the request it is walking. */
struct otlp_report {
    const char *const *levels;   /* the nested repeated fields, outermost first ("resource_spans", ...) */
    unsigned at[OTLP_PATH_MAX];  /* the walk's index in each */
    int depth;                   /* how many it is in; 0 is the request itself */
    char *message;               /* the result's message, `size` bytes */
    size_t size;
    bool malformed;              /* a protobuf error was described: the request is refused */
    bool nomem;                  /* out of memory: the request is refused */
    char why[256];               /* the reason being built for a rejection */
};

/* Starts the account of a new request whose message is message[0..size). */
void otlp_report_begin(struct otlp_report *r, char *message, size_t size);

/* "resource_spans[2].scope_spans[0].spans[7]"; "" at depth 0. Returns the length. */
size_t otlp_report_path(const struct otlp_report *r, char *out, size_t len);

/* Keeps "<path>: <what>" as the request's message unless one is kept already: the first
 * problem of a request is the one worth telling the sender. */
void otlp_note_first(struct otlp_report *r, const char *what);

/* Sets r->why; returns false, for `return reject(...)` in code that checks a message. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
bool otlp_reject(struct otlp_report *r, const char *fmt, ...);

/* Describes "<path>: malformed <what>: <nanopb error>" in place of any rejection noted before
 * (a malformed request is refused whole, and this is why). Only the first failure is
 * described: after it, or after running out of memory, every enclosing callback fails too.
 * Returns false, for `return otlp_malformed(...)` in a nanopb callback. */
bool otlp_malformed(struct otlp_report *r, const char *what, const pb_istream_t *is);
/* The same with the reason in words (the table-driven reader's, otlp/layout.c). */
bool otlp_malformed_why(struct otlp_report *r, const char *what, const char *why);

/* Marks the request as lost for want of memory; returns false, as otlp_malformed. */
bool otlp_out_of_memory(struct otlp_report *r);

/* The decoders count a message's bytes in 32 bits: a larger one is refused before it is read.
 * False (and the message says why) when `len` is over that limit. */
bool otlp_check_size(const struct otlp_report *r, size_t len);

/* The message of a request of `len` bytes given up for want of memory. */
void otlp_note_nomem(const struct otlp_report *r, size_t len);

/* Puts the formatted prefix ("rejected 2 span(s); first problem: ") before the kept first
 * problem; the end of the problem is cut when both do not fit. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void otlp_prefix_message(const struct otlp_report *r, const char *fmt, ...);

/* Appends the protobuf encoding of `msg` (a response) to `out`. 0, or -1 when it does not
 * encode or `out` refuses to grow. */
int otlp_encode_response(const pb_msgdesc_t *fields, const void *msg, struct buf *out);

#endif
