/*
 * wire.h - a proto layout as a table: for every message, its field numbers, how each is
 * encoded, what it means, and where the decoder puts it.
 *
 * Why one table serves both the detector and the decoder: the profiles proto kept the name
 * v1development while its field numbers moved (v1.7, v1.8, v1.9, v1.10/v1.11 are
 * wire-incompatible), and what tells the layouts apart (detect.c) is exactly what reading them
 * needs (layout.c). A field's entry says its wire kind and name (detection compares layouts by
 * name), and its destination: which member of which layout-neutral raw struct (layout.h) the
 * value lands in, and how. Adding a layout is a new set of tables in layouts.c; the detector
 * and the decoder have no per-layout code.
 *
 * The envelope (request, ResourceProfiles, ScopeProfiles, Resource, KeyValue, AnyValue) is the
 * same in every layout: its tables are shared by every layout's schema for the detector, and
 * gathered in otlp_envelope_wire (layouts.c) for the decoder, which reads them with the same
 * code as the rest (layout.c). nanopb's descriptors of the same messages (envelope.c) serve the
 * cold paths: the conformance checker, the traces decoder, the views' nested values.
 */
#ifndef LB_OTLP_WIRE_H
#define LB_OTLP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

enum wkind {
    W_NONE,      /* no such field in this layout */
    W_VARINT,    /* int32/int64/uint*, bool, enum */
    W_I64,       /* fixed64, double */
    W_BYTES,     /* string, bytes: opaque */
    W_MSG,       /* a nested message, walked */
    W_PVARINT,   /* repeated varint: packed (LEN) or one per occurrence (VARINT) */
    W_PI64,      /* repeated fixed64: packed (LEN, a multiple of 8 bytes) or I64 */
    W_I32,       /* fixed32 (traces' flags) */
};

/* What detection checks across fields: values must parallel timestamps (v1.8+). */
enum wrole { R_NONE, R_VALUES, R_TIMESTAMPS, R_COUNT };

enum wmsg {
    WM_REQUEST, WM_DICTIONARY, WM_RESOURCE_PROFILES, WM_SCOPE_PROFILES, WM_PROFILE, WM_SAMPLE,
    WM_VALUE_TYPE, WM_STACK, WM_LOCATION, WM_LINE, WM_FUNCTION, WM_MAPPING, WM_LINK,
    WM_KEY_VALUE_AND_UNIT, WM_ATTRIBUTE_UNIT, WM_RESOURCE, WM_SCOPE, WM_ENTITY_REF,
    WM_KEY_VALUE, WM_ANY_VALUE, WM_ARRAY_VALUE, WM_KVLIST_VALUE,
    /* traces (their request sits at WM_REQUEST of the traces schema) */
    WM_RESOURCE_SPANS, WM_SCOPE_SPANS, WM_SPAN, WM_SPAN_EVENT, WM_SPAN_LINK, WM_SPAN_STATUS,
    WM_COUNT
};

/* Where a decoded field goes, in the raw struct of its message (layout.h). `off` is the
 * member's offset; for D_DICT it is the dictionary table instead. */
enum wdest {
    D_NONE,       /* not read: checked by detection, skipped by the decoder */
    D_I32,        /* varint -> int32_t; must fit (protobuf's int32: sign-extended) */
    D_I32_WRAP,   /* varint -> int32_t, its low 32 bits (how nanopb read the envelope's int32) */
    D_U32,        /* varint -> uint32_t; must fit */
    D_I32_OPT,    /* D_I32 of a proto3 `optional` field: also sets the bool at `off2` */
    D_U64,        /* varint or fixed64 -> uint64_t (an int64 keeps its bits) */
    D_BOOL,       /* varint -> bool (any non-zero is true) */
    D_I64,        /* varint -> int64_t */
    D_REF,        /* bytes -> pb_ref_t into the request */
    D_PUSH_I32,   /* repeated varint -> the ivec the member points to */
    D_PUSH_I64,   /* repeated varint -> i64vec */
    D_PUSH_U64,   /* repeated varint or fixed64 -> u64vec */
    D_MSG,        /* a message -> the raw struct at `off` (a repeated occurrence merges) */
    D_VALUE_TYPES,/* repeated ValueType (v1.7 sample_type) -> the vtvec raw_profile.sample_types points to */
    D_LINES,      /* repeated Line -> the linevec the member points to */
    D_ANY_VALUE,  /* AnyValue -> struct raw_value (always read with otlp_envelope_wire's
                   * AnyValue, whatever the layout: common.proto's, as nanopb read it) */
    D_EACH,       /* repeated field -> each element handed to the callback of slot `off`
                   * (enum each_slot, layout.h) */
    D_ONEOF,      /* a member of AnyValue's oneof -> struct raw_value: kind = `off2`, the
                   * value at `off` (a pb_ref_t, an int64_t or a double); the last one wins */
    D_DICT,       /* a dictionary table: each entry's place appended to dict_tables */
};

/* Nested messages deeper than this are not walked by the detector (only AnyValue nests without
 * limit); its fast path (speculate.c) keeps the same bound. */
#define WIRE_MAX_DEPTH 24

#define WMAX_FIELD 16   /* the highest field number of any message: Span.flags (traces) */

struct wfield {
    uint8_t kind, msg, role;
    bool repeated;
    const char *name;
    uint8_t dest;
    uint16_t off, off2;
};
struct wmsg_desc {
    const char *name;
    struct wfield f[WMAX_FIELD + 1];
};
struct wire_schema {
    const struct wmsg_desc *m[WM_COUNT];
};

/* The envelope's messages as the decoder reads them in every layout (layouts.c). */
extern const struct wire_schema otlp_envelope_wire;

/* ---- reading the wire ---- */

struct cursor {
    const uint8_t *p, *end;
};

/* A base-128 varint of at most 10 bytes; false when truncated or longer. */
static inline bool wire_varint(struct cursor *c, uint64_t *out)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (c->p == c->end)
            return false;
        uint8_t b = *c->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = x;
            return true;
        }
    }
    return false;
}

static inline uint64_t wire_fixed64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x;   /* the wire's order: one unaligned load */
    memcpy(&x, p, sizeof x);
    return x;
#else
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
#endif
}

/* Does a field of this kind accept wire type `wt`? One bit per wire type, one load per field;
 * W_NONE (a field the layout does not have) accepts none. The decoder and the detector's lean
 * walk share it, so they agree on every field. */
static inline bool wire_kind_accepts(unsigned kind, unsigned wt)
{
    static const uint8_t types[] = {
        [W_NONE] = 0,
        [W_VARINT] = 1u << WT_VARINT,
        [W_I64] = 1u << WT_I64,
        [W_I32] = 1u << WT_I32,
        [W_BYTES] = 1u << WT_LEN,
        [W_MSG] = 1u << WT_LEN,
        [W_PVARINT] = 1u << WT_VARINT | 1u << WT_LEN,   /* one value, or a packed run */
        [W_PI64] = 1u << WT_I64 | 1u << WT_LEN,
    };
    return kind < sizeof types && (types[kind] >> wt & 1u);
}

/* Counts the varints of a packed run; false when the run does not end on a whole varint. The
 * detector and the decoder's checked mode (layout.c) share it, so they agree on every run. */
static inline bool wire_packed_varints(const uint8_t *p, size_t n, uint64_t *count)
{
    uint8_t high = 0;
    for (size_t i = 0; i < n; i++)   /* the common run: one-byte varints only, in one sweep */
        high |= p[i];
    if (!(high & 0x80)) {
        *count = n;
        return true;
    }
    struct cursor c = { p, p + n };
    uint64_t x;
    *count = 0;
    while (c.p < c.end) {
        if (!wire_varint(&c, &x))
            return false;
        ++*count;
    }
    return true;
}

/* What a walk saw of the profiles and samples, for the detection's evidence ("Sample fields (49
 * samples): 1 VARINT, ..."): when the decoder checks the samples itself (the fast path,
 * detect.h), it counts them here and the walk of the rest counts the profiles. */
struct wire_tally {
    uint64_t profiles, samples;
    uint8_t profile_wts[WMAX_FIELD + 1], sample_wts[WMAX_FIELD + 1];   /* bit w: wire type w seen */
};

#endif
