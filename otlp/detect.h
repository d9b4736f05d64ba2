/*
 * detect.h - which proto layout did this request arrive in?
 *
 * The profiles proto kept the name v1development while its field numbers changed, so
 * neither the gRPC method nor the HTTP path tells v1.7, v1.8, v1.9 and v1.10/v1.11 apart, and
 * a reader of the wrong layout silently takes attribute indices for values. The detector
 * walks the whole request once per known layout, checking every field against that layout's
 * wire schema: field numbers it does not have, wire types it does not expect, packed runs of
 * the wrong shape, and (v1.8+) values that do not parallel the timestamps are contradictions.
 * It never looks at what a value is, only at how it is encoded. A field number a message does
 * not have in a layout is not a contradiction (protobuf keeps going past unknown fields): it is
 * counted as unknown. Of the layouts without a contradiction, the one that explains the most of
 * the request (the fewest unknown fields) wins, the newest among equals; when several fit
 * equally, the result says so (and whether they would read every field present the same way,
 * in which case the choice does not matter). The unknown fields of the chosen layout are
 * recorded (up to OTLP_MAX_UNKNOWN_FIELDS, with where they are and what the wire says they
 * hold) so that they can be shown and stored; the request is decoded all the same.
 */
#ifndef LB_OTLP_DETECT_H
#define LB_OTLP_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp/layout.h"
#include "otlp/wire.h"

#define OTLP_DETECT_LINE 256
#define OTLP_DETECT_MAX_EVIDENCE 10

/* Unknown fields recorded per request; more are only counted. */
#define OTLP_MAX_UNKNOWN_FIELDS 32
#define OTLP_UNKNOWN_PATH 160
#define OTLP_UNKNOWN_DECODED 112

/* A field the chosen layout does not have, where it was found. */
struct otlp_unknown_field {
    char path[OTLP_UNKNOWN_PATH];       /* "resource_profiles[0].scope_profiles[0].profiles[1].samples[3]",
                                         * "" for the request itself */
    const char *message;                /* "Sample" */
    uint32_t number;
    uint8_t wire_type;                  /* 0 VARINT, 1 I64, 2 LEN, 5 I32 */
    const uint8_t *value;               /* into the request: LEN the payload, else the value's bytes */
    size_t size;                        /* bytes at `value` */
    char decoded[OTLP_UNKNOWN_DECODED]; /* as far as the wire tells: "42", "0x...", "\"text\"",
                                         * "message {1: VARINT, 2: LEN}", "bytes 0a1b…" */
};

struct otlp_layout_verdict {
    const struct otlp_layout *layout;
    bool fits;
    char why[OTLP_DETECT_LINE];     /* when it does not fit: where and what contradicts it */
};

struct otlp_detection {
    const struct otlp_layout *layout;   /* the chosen layout; NULL when none fits */
    bool ambiguous;                     /* more than one layout fits */
    bool equivalent;                    /* ambiguous, but every fitting layout reads each
                                         * field present the same way */
    bool malformed;                     /* no layout fits, all for the same reason: the
                                         * request is malformed protobuf whatever its layout */
    size_t n_tried;
    struct otlp_layout_verdict tried[OTLP_LAYOUT_COUNT];   /* in the order tried */
    size_t n_evidence;
    char evidence[OTLP_DETECT_MAX_EVIDENCE][OTLP_DETECT_LINE];  /* human-readable lines */
    uint64_t n_unknown;                 /* fields of the request the chosen layout does not have */
    size_t n_recorded;                  /* the first of them, described in unknown[] */
    struct otlp_unknown_field unknown[OTLP_MAX_UNKNOWN_FIELDS];
};

/* Tries every known layout. 0 when one was chosen (out->layout), -1 when none fits. */
int otlp_detect(const uint8_t *msg, size_t len, struct otlp_detection *out);

/* The same among `candidates` only (newest first): a pinned layout is checked this way. */
int otlp_detect_among(const uint8_t *msg, size_t len, const struct otlp_layout *const *candidates,
                      size_t n_candidates, struct otlp_detection *out);

/* The trace request's schema (layouts.c): otlp_detect_among(msg, len, &schema, 1, &det) on a
 * trace request finds the fields it has that OTLP traces v1 does not (det.n_unknown). */
extern const struct otlp_layout otlp_traces_schema;

/* The recorded unknown fields of `det` as the view shows them (out has room for
 * OTLP_MAX_UNKNOWN_FIELDS); points into `det` and the request. Returns how many. */
struct lb_unknown_field;
size_t otlp_unknown_view(const struct otlp_detection *det, struct lb_unknown_field *out);

/* ---- The fast path: a layout chosen from a prefix, its check left to the decoder ----
 *
 * The full walk above costs one pass over the whole request before a single event is emitted,
 * and the decoder then reads the same bytes again. On real requests every layout but one
 * contradicts within the first samples, so the decoder (decode.c) goes this way instead:
 *  1. each layout is walked as above, in the same order, but only over its first
 *     OTLP_PREFIX_FIELDS fields: a contradiction found there is exactly the one the full walk
 *     would report (the walk is the same up to there);
 *  2. when exactly one layout survives that prefix and the prefix showed no unknown field, it
 *     is taken at once: a lean walk checks the rest of the request against it (the same rules,
 *     no words: any doubt sends the request the full way) except the samples and the
 *     dictionary's entries, which the decoder checks as it reads them (layout_sample_checked,
 *     layout_entry_checked in layout.h), so their bytes are read once; the samples of a
 *     profile the decoder drops are walked by otlp_speculate_samples_of, the entries no
 *     sample used by otlp_speculate_entries;
 *  3. whatever the decoder then finds that the full walk would have decided differently (a
 *     contradiction, an unknown field, a malformed sample: anything) retracts the request: the
 *     consumer is told to forget it silently (events.h) and it is decoded again the full way.
 * The detection is then what otlp_detect would have said: the same layout, the same verdicts
 * and words for the others, the same counts in the evidence (otlp_speculate_confirm). The
 * full walk stays the reference: test/fuzz/fuzz_speculate.c and test/unit/test_detect_fast.c
 * compare the two on every input they have. */

#define OTLP_PREFIX_FIELDS 512

/* One layout walked over a prefix (detect.c). */
struct otlp_prefix {
    bool failed;                /* a contradiction within the prefix: why says what */
    bool truncated;             /* the budget ran out first */
    uint64_t unknown;           /* unknown fields within the prefix */
    char why[OTLP_DETECT_LINE];
};
void otlp_detect_prefix(const uint8_t *msg, size_t len, const struct otlp_layout *layout, size_t budget,
                        struct otlp_prefix *out);

/* What the lean walk found, to be completed by the decoder's count of the samples. */
struct otlp_speculation {
    struct wire_tally tally;
    bool has_dictionary;
};

/* Steps 1 and 2: true when a layout was chosen (det->layout, its verdicts in det->tried[], no
 * evidence yet) and everything but the samples checked; false: decide with otlp_detect.
 * `tables` (may be NULL): emptied, then on true holds the dictionary's entries as
 * layout_dictionary would have indexed them over every dictionary of the request (the lean
 * walk passes over them anyway); on false its contents mean nothing. */
bool otlp_speculate_layout(const uint8_t *msg, size_t len, struct otlp_detection *det,
                           struct otlp_speculation *sp, struct dict_tables *tables);

/* The samples of one Profile (its encoded bytes) walked as the full walk would, counted into
 * `t`; false when the full walk would contradict the layout there or find an unknown field. */
bool otlp_speculate_samples_of(const struct otlp_layout *layout, const uint8_t *profile, size_t n,
                               struct wire_tally *t);

/* Message `m` at `depth` in the request walked as the full walk would (nothing recorded);
 * false when it would contradict the layout there or find an unknown field. */
bool otlp_speculate_check(const struct otlp_layout *layout, enum wmsg m, const uint8_t *p, size_t n,
                          unsigned depth);

/* The dictionary's entries the decoder did not read with layout_entry_checked (checked[t][i]
 * is 0, or checked[t] NULL), each walked as otlp_speculate_check does. */
bool otlp_speculate_entries(const struct otlp_layout *layout, const struct dict_tables *tables,
                            const uint8_t *const checked[DICT_TABLES]);

/* The decode went through: the evidence, as otlp_detect words it. */
void otlp_speculate_confirm(struct otlp_detection *det, const struct otlp_speculation *sp);

/* detect.c's words for speculate.c: the evidence of a layout chosen with no other fitting. */
void otlp_detect_explain_fast(struct otlp_detection *det, const struct wire_tally *t, bool has_dictionary);

/* One line for a log: "v1.9", "v1.11 (also fits v1.9; ...)". Returns strlen. */
size_t otlp_detection_summary(const struct otlp_detection *det, char *buf, size_t len);

/* Why no layout fits, naming each layout tried: the INVALID message. Returns strlen. */
size_t otlp_detection_failure(const struct otlp_detection *det, char *buf, size_t len);

#endif
