/*
 * layout.c - one decoder for the messages of every proto layout, driven by the layout's wire
 * schema (wire.h, the tables in layouts.c).
 *
 * Why not a nanopb descriptor per layout: the layouts differ only in field numbers and a few
 * encodings, and a decoder per layout was the same code four times over. Here a message is
 * read field by field straight from the request buffer; each field's table entry says where
 * its value goes, so a layout is data, not code. Strings and bytes stay references into the
 * request (pb_ref_t), as everywhere else.
 *
 * The rules kept from protobuf (and from nanopb, which decoded these messages before):
 *  - repeated scalars are accepted packed (what every encoder sends) and unpacked;
 *  - a singular int32/uint32 whose varint does not fit is an error ("integer too large"),
 *    an element of a repeated int32 is truncated;
 *  - a singular message that occurs twice is merged; unknown fields are skipped (detection
 *    has recorded them, otlp/detect.h);
 *  - the envelope (otlp_envelope_wire), which nanopb read before, keeps the rules nanopb had
 *    beyond these: an int32 keeps its low 32 bits, a bool is a 32-bit varint, a ten-byte
 *    varint may not carry bits past 63, a repeated field without a callback is skipped
 *    whatever its wire type, and AnyValue's last oneof member wins.
 * The detector has walked the request before it is decoded, so the errors below are a second
 * line of defence: they make a hostile request malformed, never a crash.
 */
#include "otlp/layout.h"

#include <assert.h>
#include <string.h>
#include <pb_decode.h>

#include "lib/buf.h"
#include "otlp/detect.h"
#include "otlp/wire.h"

/* A field's member in the raw struct at `base`. */
#define MEMBER(type, base, off) ((type *)(void *)((uint8_t *)(base) + (off)))

struct decoding {
    const struct wire_schema *wire;
    const struct raw_each *each;   /* D_EACH's callbacks by slot (NULL: every D_EACH skipped) */
    bool each_only;                /* only the D_EACH fields are read (a profile's samples) */
    const char *error;
};

static bool fail(struct decoding *dc, const char *why)
{
    dc->error = why;
    return false;
}

static bool decode_message(struct decoding *dc, enum wmsg m, const uint8_t *p, size_t n, void *out);

static bool wire_type_fits(const struct wfield *f, unsigned wt)
{
    return wire_kind_accepts(f->kind, wt);
}

static bool push_one(struct decoding *dc, enum wdest d, void *vec, uint64_t x)
{
    bool ok;
    if (d == D_PUSH_I32)   /* int32 on the wire is a sign-extended varint; truncation is the rule */
        ok = VEC_PUSH(*(ivec *)vec, (int32_t)(uint32_t)x);
    else if (d == D_PUSH_I64)
        ok = VEC_PUSH(*(i64vec *)vec, (int64_t)x);
    else
        ok = VEC_PUSH(*(u64vec *)vec, x);
    return ok || fail(dc, "out of memory");
}

/* Appends a packed run of at most `count` values to `vec` (a VEC of T), read by `NEXT` (which
 * sets x or fails) and converted by CONV. Room is made once for the whole run: these runs
 * are most of a sample's bytes. */
#define PUSH_RUN(VecT, T, CONV, NEXT)                                                     \
    do {                                                                                  \
        VecT *v_ = vec;                                                                   \
        if (!VEC_RESERVE(*v_, v_->n + count))                                             \
            return fail(dc, "out of memory");                                             \
        T *o_ = v_->v + v_->n;                                                            \
        size_t k_ = 0;                                                                    \
        while (c.p < c.end) {                                                             \
            uint64_t x;                                                                   \
            NEXT;                                                                         \
            assert(k_ < count);                                                           \
            o_[k_++] = (T)CONV(x);                                                        \
        }                                                                                 \
        v_->n += k_;                                                                      \
    } while (0)

/* A packed fixed64 run of `count` values appended to `vec` (a VEC of 64-bit T) as it lies. */
#define COPY_RUN(VecT)                                                                    \
    do {                                                                                  \
        VecT *v_ = vec;                                                                   \
        if (!VEC_RESERVE(*v_, v_->n + count))                                             \
            return fail(dc, "out of memory");                                             \
        buf_copy((uint8_t *)(v_->v + v_->n), val, len);                                   \
        v_->n += count;                                                                   \
        return true;                                                                      \
    } while (0)

#define NEXT_FIXED64 (x = wire_fixed64(c.p), c.p += 8)
/* One-byte varints (small indices, small values) are the common case. */
#define NEXT_VARINT                                                                       \
    if (*c.p < 0x80)                                                                      \
        x = *c.p++;                                                                       \
    else if (!wire_varint(&c, &x))                                                        \
        return fail(dc, "malformed packed varint")

/* A repeated scalar: one value (VARINT, I64), or a packed run of them (LEN). */
static bool push_scalars(struct decoding *dc, const struct wfield *f, void *vec, unsigned wt, uint64_t v,
                         const uint8_t *val, size_t len)
{
    enum wdest d = (enum wdest)f->dest;
    if (wt != WT_LEN)
        return push_one(dc, d, vec, v);
    if (len == 0)
        return true;   /* an empty packed run: nothing to add, and a vector never grown has no
                          storage to point past (NULL + 0; found by fuzz_decode) */
    struct cursor c = { val, val + len };
    size_t count = 0;
    if (f->kind == W_PI64) {
        if (len % 8 != 0)
            return fail(dc, "fixed64 field has a length that is not a multiple of 8");
        count = len / 8;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The wire's order is the vector's: the run is copied whole (timestamps). */
        if (d == D_PUSH_U64)
            COPY_RUN(u64vec);
        if (d == D_PUSH_I64)
            COPY_RUN(i64vec);
#endif
        if (d == D_PUSH_I32)   /* int32 on the wire is a sign-extended varint; truncation is the rule */
            PUSH_RUN(ivec, int32_t, (uint32_t), NEXT_FIXED64);
        else if (d == D_PUSH_I64)
            PUSH_RUN(i64vec, int64_t, , NEXT_FIXED64);
        else
            PUSH_RUN(u64vec, uint64_t, , NEXT_FIXED64);
        return true;
    }
    for (size_t i = 0; i < len; i++)   /* every varint ends on the one byte below 0x80 */
        count += val[i] < 0x80;
    if (d == D_PUSH_I32)
        PUSH_RUN(ivec, int32_t, (uint32_t), NEXT_VARINT);
    else if (d == D_PUSH_I64)
        PUSH_RUN(i64vec, int64_t, , NEXT_VARINT);
    else
        PUSH_RUN(u64vec, uint64_t, , NEXT_VARINT);
    return true;
}

/* v1.7's repeated sample_type: every entry goes to the caller's vector (when it gave one);
 * the first is kept aside, the default when none is named. */
static bool push_value_type(struct decoding *dc, struct raw_profile *rp, const uint8_t *val, size_t len)
{
    struct raw_value_type vt = { 0, 0, 0 };
    if (!decode_message(dc, WM_VALUE_TYPE, val, len, &vt))
        return false;
    if (rp->n_sample_types == 0)
        rp->sample_type = vt;
    if (rp->sample_types && !VEC_PUSH(*rp->sample_types, vt))
        return fail(dc, "out of memory");
    if (rp->n_sample_types < SIZE_MAX)
        rp->n_sample_types++;
    return true;
}

static bool push_line(struct decoding *dc, linevec *lines, const uint8_t *val, size_t len)
{
    struct raw_line l = { 0, 0, 0 };
    if (!decode_message(dc, WM_LINE, val, len, &l))
        return false;
    return VEC_PUSH(*lines, l) || fail(dc, "out of memory");
}

/* An AnyValue, read with common.proto's table whatever the layout (v1.7's attribute entries
 * are KeyValues of a common.proto that had no string_value_strindex, but nanopb, which read
 * them before, knew it). */
static bool any_value(struct decoding *dc, struct raw_value *out, const uint8_t *val, size_t len)
{
    const struct wire_schema *wire = dc->wire;
    dc->wire = &otlp_envelope_wire;
    bool ok = decode_message(dc, WM_ANY_VALUE, val, len, out);
    dc->wire = wire;
    return ok;
}

/* nanopb reads a bool as a 32-bit varint and refuses one whose extra bytes (past 32 bits) are
 * neither padding (0x80, ending 0x00) nor the sign extension of a negative int32 (0xff, ending
 * 0x01), nor whose fifth byte sets bits 32-34 unless it sets 31-34. Called only for a value
 * over 32 bits (anything less passes), with the varint's `len` bytes at `p`. */
static bool varint32_fits(const uint8_t *p, size_t len)
{
    uint32_t low = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned bit = (unsigned)(7 * i);
        uint8_t b = p[i];
        if (bit < 28) {
            low |= (uint32_t)(b & 0x7f) << bit;
        } else if (bit == 28) {
            if ((b & 0x70) != 0 && (b & 0x78) != 0x78)
                return false;
            low |= (uint32_t)(b & 0x0f) << 28;
        } else {
            uint8_t sign = bit < 63 ? 0xff : 0x01;
            if (bit >= 64 || ((b & 0x7f) != 0 && ((low >> 31) == 0 || b != sign)))
                return false;
        }
    }
    return true;
}

/* A member of AnyValue's oneof: it replaces whatever member came before. */
static bool store_oneof(struct decoding *dc, const struct wfield *f, struct raw_value *rv, uint64_t v,
                        const uint8_t *val, size_t len)
{
    enum raw_value_kind kind = (enum raw_value_kind)f->off2;
    switch (kind) {
    case RAW_BOOL:
        if (v > UINT32_MAX && !varint32_fits(val, len))
            return fail(dc, "varint overflow");
        v = (uint32_t)v != 0;
        break;
    default:
        break;
    }
    memset(rv, 0, sizeof *rv);
    rv->kind = kind;
    switch (kind) {
    case RAW_STRING: case RAW_BYTES: case RAW_ARRAY: case RAW_KVLIST:
        rv->ref = (pb_ref_t){ val, len };
        break;
    case RAW_DOUBLE:
        memcpy(&rv->d, &v, sizeof rv->d);
        break;
    default:
        rv->i = kind == RAW_STRINDEX ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;   /* int32: wraps */
        break;
    }
    return true;
}

#if defined(__GNUC__)
#define HOT_INLINE inline __attribute__((always_inline))
#else
#define HOT_INLINE inline
#endif

/* Puts one field's value where its table entry says. Inlined into both readers
 * (decode_message, decode_checked): called once a field, it was an eighth of the big
 * request's time as a call. */
static HOT_INLINE bool store(struct decoding *dc, const struct wfield *f, void *out, unsigned wt, uint64_t v,
                  const uint8_t *val, size_t len)
{
    switch ((enum wdest)f->dest) {
    case D_I32:
    case D_I32_OPT:
        if ((int64_t)(int32_t)v != (int64_t)v)
            return fail(dc, "integer too large");
        *MEMBER(int32_t, out, f->off) = (int32_t)v;
        if (f->dest == D_I32_OPT)
            *MEMBER(bool, out, f->off2) = true;
        return true;
    case D_I32_WRAP: *MEMBER(int32_t, out, f->off) = (int32_t)(uint32_t)v; return true;
    case D_U32:
        if (v > UINT32_MAX)
            return fail(dc, "integer too large");
        *MEMBER(uint32_t, out, f->off) = (uint32_t)v;
        return true;
    case D_U64: *MEMBER(uint64_t, out, f->off) = v; return true;
    case D_BOOL: *MEMBER(bool, out, f->off) = v != 0; return true;
    case D_I64: *MEMBER(int64_t, out, f->off) = (int64_t)v; return true;
    case D_REF: *MEMBER(pb_ref_t, out, f->off) = (pb_ref_t){ val, len }; return true;
    case D_PUSH_I32:
    case D_PUSH_I64:
    case D_PUSH_U64: {
        void *vec = *MEMBER(void *, out, f->off);   /* NULL: the caller does not want them */
        return !vec || push_scalars(dc, f, vec, wt, v, val, len);
    }
    case D_MSG: return decode_message(dc, (enum wmsg)f->msg, val, len, MEMBER(void, out, f->off));
    case D_VALUE_TYPES: return push_value_type(dc, out, val, len);
    case D_LINES: return push_line(dc, *MEMBER(linevec *, out, f->off), val, len);
    case D_ANY_VALUE: return any_value(dc, MEMBER(struct raw_value, out, f->off), val, len);
    case D_EACH: {
        const struct raw_each *e = &dc->each[f->off];
        return e->fn(e->ctx, (pb_ref_t){ val, len }) || fail(dc, "element rejected");
    }
    case D_ONEOF: return store_oneof(dc, f, out, v, val, len);
    case D_DICT: {
        struct dict_tables *t = out;
        struct dict_ref el = { (uint32_t)(val - t->base), (uint32_t)len };
        return VEC_PUSH(t->t[f->off], el) || fail(dc, "out of memory");
    }
    case D_NONE: break;
    }
    return true;
}

/* One field's tag and value, read from the cursor (what decode_message and decode_checked
 * share): a VARINT's value and its encoding (val/len), an I64's value, a LEN's contents. */
struct wire_field {
    uint64_t tag, v;
    unsigned wt;
    const uint8_t *val;
    size_t len;
};

/* One-byte tags, lengths and values (fields 1 to 15, short runs, small indices) are most of a
 * request: each is read inline, the rest by wire_varint. `strict`: nanopb's rule for the
 * envelope, no ten-byte varint with more than bit 63 in a tag or a length (see decode_message). */
static HOT_INLINE bool read_field(struct decoding *dc, struct cursor *c, bool strict, struct wire_field *fd)
{
    const uint8_t *start = c->p;
    fd->v = 0;
    fd->val = NULL;
    fd->len = 0;
    if (*c->p < 0x80) {
        fd->tag = *c->p++;
    } else {
        if (!wire_varint(c, &fd->tag) || fd->tag > UINT32_MAX)
            return fail(dc, "invalid field tag");
        if (strict && c->p - start == 10 && c->p[-1] > 1)
            return fail(dc, "varint overflow");
    }
    if ((fd->tag >> 3) == 0)
        return fail(dc, "invalid field tag");
    fd->wt = (unsigned)(fd->tag & 7);
    switch (fd->wt) {
    case WT_VARINT:
        fd->val = c->p;   /* the encoding, for the rules that read it (strict, varint32_fits) */
        if (c->p < c->end && *c->p < 0x80)
            fd->v = *c->p++;
        else if (!wire_varint(c, &fd->v))
            return fail(dc, "truncated varint");
        fd->len = (size_t)(c->p - fd->val);
        return true;
    case WT_I64:
    case WT_I32:
        fd->len = fd->wt == WT_I64 ? 8 : 4;
        if ((size_t)(c->end - c->p) < fd->len)
            return fail(dc, "truncated fixed-size field");
        if (fd->wt == WT_I64)
            fd->v = wire_fixed64(c->p);
        c->p += fd->len;
        return true;
    case WT_LEN:
        start = c->p;
        if (c->p < c->end && *c->p < 0x80) {
            fd->v = *c->p++;
        } else {
            if (!wire_varint(c, &fd->v))
                return fail(dc, "length runs past the end of the message");
            if (strict && c->p - start == 10 && c->p[-1] > 1)
                return fail(dc, "varint overflow");
        }
        if (fd->v > (uint64_t)(c->end - c->p))
            return fail(dc, "length runs past the end of the message");
        fd->val = c->p;
        fd->len = (size_t)fd->v;
        c->p += fd->len;
        return true;
    default:
        return fail(dc, "invalid wire type");
    }
}

static bool decode_message(struct decoding *dc, enum wmsg m, const uint8_t *p, size_t n, void *out)
{
    const struct wmsg_desc *desc = dc->wire->m[m];
    /* nanopb, which read the envelope before, refused a ten-byte varint whose last byte holds
     * more than bit 63 (in a tag, a length or a value it read); the detector and the layouts'
     * tables never did. */
    bool strict = dc->wire == &otlp_envelope_wire;
    struct cursor c = { p, p + n };
    while (c.p < c.end) {
        struct wire_field fd;
        if (!read_field(dc, &c, strict, &fd))
            return false;
        uint64_t tag = fd.tag, v = fd.v;
        unsigned wt = fd.wt;
        const uint8_t *val = fd.val;
        size_t len = fd.len;
        uint64_t fnum = tag >> 3;
        if (!desc || fnum > WMAX_FIELD)
            continue;   /* unknown: skipped */
        const struct wfield *f = &desc->f[fnum];
        if (f->dest == D_NONE)
            continue;
        if (f->dest == D_EACH ? !dc->each || !dc->each[f->off].fn : dc->each_only)
            continue;   /* not read in this pass (a field without a callback is skipped) */
        if (!wire_type_fits(f, wt))
            return fail(dc, "wrong wire type");
        if (strict && wt == WT_VARINT && len == 10 && val[9] > 1)
            return fail(dc, "varint overflow");
        if (!store(dc, f, out, wt, v, val, len))
            return false;
    }
    return true;
}

/* A message read with the detector's rules on top, for the fast path (detect.h): every field
 * one the layout has, in a wire type it allows, packed runs whole, values parallel to
 * timestamps (v1.8+); a sample counted with its wire types into `t`, as the full walk counts
 * them. A nested message the decoder reads (a line, a sub-message) is read the same way; one it
 * does not (an AnyValue, read with common.proto's table) is walked by otlp_speculate_check.
 * `depth` is the message's in the full walk, which walks nothing deeper than WIRE_MAX_DEPTH.
 * Any failure retracts the request, which is then detected and decoded the full way, so this
 * need not say why in the detector's words. */
static bool decode_checked(struct decoding *dc, const struct otlp_layout *layout, enum wmsg m, const uint8_t *p,
                           size_t n, void *out, struct wire_tally *t, unsigned depth)
{
    const struct wmsg_desc *desc = dc->wire->m[m];
    uint64_t values = 0, timestamps = 0;
    struct cursor c = { p, p + n };
    uint8_t *wts = NULL;
    if (!desc)
        return fail(dc, "no such message in this layout");
    if (m == WM_SAMPLE && t) {
        t->samples++;
        wts = t->sample_wts;
    }
    while (c.p < c.end) {
        struct wire_field fd;
        if (!read_field(dc, &c, false, &fd))
            return false;
        unsigned wt = fd.wt;
        uint64_t v = fd.v, fnum = fd.tag >> 3;
        const uint8_t *val = fd.val;
        size_t len = fd.len;
        if (fnum > WMAX_FIELD)
            return fail(dc, "a field the layout does not have");
        const struct wfield *f = &desc->f[fnum];
        if (!wire_type_fits(f, wt))   /* W_NONE fits nothing: a field the layout does not have */
            return fail(dc, f->kind == W_NONE ? "a field the layout does not have" : "wrong wire type");
        if (wts)
            wts[fnum] |= (uint8_t)(1u << wt);
        if (f->kind == W_MSG && depth < WIRE_MAX_DEPTH) {
            if (f->dest == D_MSG) {
                if (!decode_checked(dc, layout, (enum wmsg)f->msg, val, len, MEMBER(void, out, f->off), t,
                                    depth + 1))
                    return false;
                continue;
            }
            if (f->dest == D_LINES) {
                struct raw_line l = { 0, 0, 0 };
                if (!decode_checked(dc, layout, WM_LINE, val, len, &l, t, depth + 1))
                    return false;
                if (!VEC_PUSH(**MEMBER(linevec *, out, f->off), l))
                    return fail(dc, "out of memory");
                continue;
            }
            if (!otlp_speculate_check(layout, (enum wmsg)f->msg, val, len, depth + 1))
                return fail(dc, "the full walk would not take this nested message");
        }
        uint64_t elems = 1;
        if (wt == WT_LEN) {
            if (f->kind == W_PVARINT && !wire_packed_varints(val, len, &elems))
                return fail(dc, "malformed packed varint");
            if (f->kind == W_PI64) {
                if (len % 8 != 0)
                    return fail(dc, "fixed64 field has a length that is not a multiple of 8");
                elems = len / 8;
            }
        }
        if (f->role == R_VALUES)
            values += elems;
        else if (f->role == R_TIMESTAMPS)
            timestamps += elems;
        if (f->dest != D_NONE && f->dest != D_EACH && !store(dc, f, out, wt, v, val, len))
            return false;
    }
    if (layout->parallel_values && values && timestamps && values != timestamps)
        return fail(dc, "values not parallel to timestamps");
    return true;
}

/* Decodes all of `is` (a view of the request) as message `m` of `layout`. */
static bool decode_stream(const struct otlp_layout *layout, enum wmsg m, pb_istream_t *is, void *out,
                          const struct raw_each *each)
{
    if (!pbref_is_view(is))
        PB_RETURN_ERROR(is, "not a view of the request");
    struct decoding dc = { layout->wire, each, each != NULL, NULL };
    size_t n = is->bytes_left;
    if (!decode_message(&dc, m, pbref_pos(is), n, out))
        PB_RETURN_ERROR(is, dc.error);
    return pbref_skip(is, n);
}

bool layout_has_stacks(const struct otlp_layout *layout)
{
    return layout->wire->m[WM_STACK] != NULL;
}

bool layout_dictionary(const struct otlp_layout *layout, pb_istream_t *is, struct dict_tables *tables)
{
    return decode_stream(layout, WM_DICTIONARY, is, tables, NULL);
}

bool layout_profile(const struct otlp_layout *layout, pb_istream_t *is, struct raw_profile *out,
                    raw_each_fn sample, void *ctx)
{
    if (sample) {
        struct raw_each each = { sample, ctx };
        return decode_stream(layout, WM_PROFILE, is, out, &each);
    }
    if (!decode_stream(layout, WM_PROFILE, is, out, NULL))
        return false;
    int32_t pick = out->default_sample_type_index;   /* v1.7: the default of the sample types */
    if (out->sample_types && out->n_sample_types > 0) {
        size_t n = out->sample_types->n;
        out->sample_type = out->sample_types->v[pick >= 0 && (size_t)pick < n ? (size_t)pick : 0];
    }
    return true;
}

bool layout_sample(const struct otlp_layout *layout, pb_istream_t *is, struct raw_sample *out)
{
    return decode_stream(layout, WM_SAMPLE, is, out, NULL);
}

int layout_entry_message(const struct otlp_layout *layout, enum dict_table t)
{
    const struct wmsg_desc *dict = layout->wire->m[WM_DICTIONARY];
    for (unsigned f = 1; f <= WMAX_FIELD; f++)
        if (dict->f[f].dest == D_DICT && dict->f[f].off == t && dict->f[f].kind == W_MSG)
            return dict->f[f].msg;
    return -1;
}

bool layout_entry(const struct otlp_layout *layout, enum dict_table t, pb_istream_t *is, void *out)
{
    int m = layout_entry_message(layout, t);
    if (m < 0)
        PB_RETURN_ERROR(is, "no such dictionary table in this layout");
    return decode_stream(layout, (enum wmsg)m, is, out, NULL);
}

/* ---------- straight from the buffer (the decoder's hot path) ---------- */

static bool decode_ref(const struct otlp_layout *layout, enum wmsg m, pb_ref_t msg, void *out,
                       const char **why)
{
    struct decoding dc = { layout->wire, NULL, false, NULL };
    if (decode_message(&dc, m, msg.p, msg.n, out))
        return true;
    *why = dc.error;
    return false;
}

bool layout_sample_at(const struct otlp_layout *layout, pb_ref_t msg, struct raw_sample *out, const char **why)
{
    return decode_ref(layout, WM_SAMPLE, msg, out, why);
}

bool layout_sample_checked(const struct otlp_layout *layout, pb_ref_t msg, struct raw_sample *out,
                           struct wire_tally *t, const char **why)
{
    struct decoding dc = { layout->wire, NULL, false, NULL };
    if (decode_checked(&dc, layout, WM_SAMPLE, msg.p, msg.n, out, t, 4))
        return true;
    *why = dc.error;
    return false;
}

bool layout_entry_checked(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out, const char **why)
{
    struct decoding dc = { layout->wire, NULL, false, NULL };
    if (message < 0 || message >= WM_COUNT) {
        *why = "no such dictionary table in this layout";
        return false;
    }
    /* an entry is at depth 2: request, dictionary, entry */
    if (decode_checked(&dc, layout, (enum wmsg)message, msg.p, msg.n, out, NULL, 2))
        return true;
    *why = dc.error;
    return false;
}

bool layout_entry_at(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out, const char **why)
{
    if (message < 0 || message >= WM_COUNT) {
        *why = "no such dictionary table in this layout";
        return false;
    }
    return decode_ref(layout, (enum wmsg)message, msg, out, why);
}

/* ---------- the envelope ---------- */

static bool decode_envelope(enum wmsg m, pb_ref_t msg, void *out, const struct raw_each *each,
                            const char **why)
{
    struct decoding dc = { &otlp_envelope_wire, each, false, NULL };
    if (decode_message(&dc, m, msg.p, msg.n, out))
        return true;
    *why = dc.error;
    return false;
}

bool env_request(pb_ref_t msg, const struct raw_each each[EACH_SLOTS], const char **why)
{
    return decode_envelope(WM_REQUEST, msg, NULL, each, why);
}

bool env_resource_profiles(pb_ref_t msg, struct env_resource_profiles *out,
                           const struct raw_each each[EACH_SLOTS], const char **why)
{
    return decode_envelope(WM_RESOURCE_PROFILES, msg, out, each, why);
}

bool env_scope_profiles(pb_ref_t msg, struct env_scope_profiles *out,
                        const struct raw_each each[EACH_SLOTS], const char **why)
{
    return decode_envelope(WM_SCOPE_PROFILES, msg, out, each, why);
}

bool env_entity_ref(pb_ref_t msg, struct raw_entity_ref *out, const struct raw_each each[EACH_SLOTS],
                    const char **why)
{
    return decode_envelope(WM_ENTITY_REF, msg, out, each, why);
}

bool env_key_value(pb_ref_t msg, struct raw_attribute *out, const char **why)
{
    return decode_envelope(WM_KEY_VALUE, msg, out, NULL, why);
}
