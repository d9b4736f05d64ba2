/*
 * entry_flat.c - the fast path's reader of the dictionary entries made of scalars only
 * (Function, Stack, Mapping, and Location with its Lines), checked as the detector checks them.
 *
 * Why a second reader beside decode_checked (layout.c): over a capture of small requests
 * (hundreds of entries a request, each read once), decode_checked's generality (every
 * destination, nested messages, sample tallies, the values/timestamps roles) cost about 500
 * instructions an entry, a quarter of `decode --format folded`. These entries use a handful of
 * the table's destinations; this reader takes only those, from the same wire tables (so it
 * knows no field number of its own), and makes the same checks in the same order:
 *  - every tag a varint of at most 32 bits, field number 1-16, wire type 0, 1, 2 or 5, each
 *    value within the message (a length bounded by the bytes left, a varint at most 10 bytes);
 *  - every field one the layout has, in a wire type its kind accepts;
 *  - packed runs whole (ending on a whole varint); int32 and uint32 values that fit;
 *  - a Location's Lines read the same way, one level down.
 * A message with any other kind of field (an AnyValue, a sub-message the full walk must check,
 * fixed64 runs, a role the sample check counts) is not "flat": layout_entry_flat says so once
 * a request and the decoder keeps to decode_checked for it. On failure the caller learns only
 * that the entry was refused (the fast path is then retracted, and the request detected and
 * decoded the full way, which words the reason).
 */
#include "otlp/layout.h"

#include "otlp/wire.h"

#define MEMBER(type, base, off) ((type *)(void *)((uint8_t *)(base) + (off)))

/* Can this field be read here? `nested`: inside a Line (no lines within lines). */
static bool flat_field(const struct wire_schema *w, const struct wfield *f, bool nested)
{
    if (f->role != R_NONE)
        return false;
    switch ((enum wkind)f->kind) {
    case W_NONE:
        return true;
    case W_VARINT:
        switch ((enum wdest)f->dest) {
        case D_NONE: case D_I32: case D_I32_OPT: case D_I32_WRAP: case D_U32: case D_U64: case D_BOOL:
        case D_I64:
            return true;
        default:
            return false;
        }
    case W_I64:
        return f->dest == D_NONE || f->dest == D_U64 || f->dest == D_I64;
    case W_I32:
        return f->dest == D_NONE;
    case W_BYTES:
        return f->dest == D_NONE || f->dest == D_REF;
    case W_PVARINT:
        return f->dest == D_NONE || f->dest == D_PUSH_I32;
    case W_MSG:
        if (nested || f->dest != D_LINES || f->msg != WM_LINE || !w->m[WM_LINE])
            return false;
        for (unsigned k = 0; k <= WMAX_FIELD; k++)
            if (!flat_field(w, &w->m[WM_LINE]->f[k], true))
                return false;
        return true;
    default:
        return false;
    }
}

bool layout_entry_flat(const struct otlp_layout *layout, int message)
{
    if (message < 0 || message >= WM_COUNT || !layout->wire->m[message])
        return false;
    const struct wmsg_desc *desc = layout->wire->m[message];
    for (unsigned k = 0; k <= WMAX_FIELD; k++)
        if (!flat_field(layout->wire, &desc->f[k], false))
            return false;
    return true;
}

/* A packed run of int32 (or one of them, unpacked) appended to the vector at `vec`, if any. */
static bool push_i32(ivec *vec, unsigned wt, uint64_t v, const uint8_t *val, size_t len)
{
    if (wt != WT_LEN) {   /* int32 on the wire is a sign-extended varint; truncation is the rule */
        return !vec || VEC_PUSH(*vec, (int32_t)(uint32_t)v);
    }
    uint64_t count;
    if (!wire_packed_varints(val, len, &count))
        return false;
    if (!vec || count == 0)
        return true;
    if (!VEC_RESERVE(*vec, vec->n + count))
        return false;
    int32_t *o = vec->v + vec->n;
    if (count == len) {   /* one byte a value, the common run */
        for (size_t i = 0; i < len; i++)
            o[i] = val[i];
    } else {
        struct cursor c = { val, val + len };
        for (uint64_t i = 0; i < count; i++) {
            uint64_t x;
            if (!wire_varint(&c, &x))
                return false;
            o[i] = (int32_t)(uint32_t)x;
        }
    }
    vec->n += count;
    return true;
}

static bool read_flat(const struct wire_schema *w, const struct wmsg_desc *desc, const uint8_t *p, size_t n,
                      void *out)
{
    struct cursor c = { p, p + n };
    while (c.p < c.end) {
        uint64_t tag, v = 0;
        const uint8_t *val = NULL;
        size_t len = 0;
        if (*c.p < 0x80)
            tag = *c.p++;
        else if (!wire_varint(&c, &tag) || tag > UINT32_MAX)
            return false;
        uint64_t fnum = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (fnum == 0)
            return false;
        switch (wt) {
        case WT_VARINT:
            if (c.p < c.end && *c.p < 0x80)
                v = *c.p++;
            else if (!wire_varint(&c, &v))
                return false;
            break;
        case WT_I64:
        case WT_I32:
            len = wt == WT_I64 ? 8 : 4;
            if ((size_t)(c.end - c.p) < len)
                return false;
            if (wt == WT_I64)
                v = wire_fixed64(c.p);
            c.p += len;
            break;
        case WT_LEN:
            if (c.p < c.end && *c.p < 0x80)
                v = *c.p++;
            else if (!wire_varint(&c, &v))
                return false;
            if (v > (uint64_t)(c.end - c.p))
                return false;
            val = c.p;
            len = (size_t)v;
            c.p += len;
            break;
        default:
            return false;
        }
        if (fnum > WMAX_FIELD)
            return false;
        const struct wfield *f = &desc->f[fnum];
        if (!wire_kind_accepts(f->kind, wt))   /* W_NONE fits nothing */
            return false;
        switch ((enum wdest)f->dest) {
        case D_NONE:
            if (f->kind == W_PVARINT && wt == WT_LEN && !wire_packed_varints(val, len, &v))
                return false;
            break;
        case D_I32:
        case D_I32_OPT:
            if ((int64_t)(int32_t)v != (int64_t)v)
                return false;
            *MEMBER(int32_t, out, f->off) = (int32_t)v;
            if (f->dest == D_I32_OPT)
                *MEMBER(bool, out, f->off2) = true;
            break;
        case D_I32_WRAP: *MEMBER(int32_t, out, f->off) = (int32_t)(uint32_t)v; break;
        case D_U32:
            if (v > UINT32_MAX)
                return false;
            *MEMBER(uint32_t, out, f->off) = (uint32_t)v;
            break;
        case D_U64: *MEMBER(uint64_t, out, f->off) = v; break;
        case D_BOOL: *MEMBER(bool, out, f->off) = v != 0; break;
        case D_I64: *MEMBER(int64_t, out, f->off) = (int64_t)v; break;
        case D_REF: *MEMBER(pb_ref_t, out, f->off) = (pb_ref_t){ val, len }; break;
        case D_PUSH_I32:
            if (!push_i32(*MEMBER(ivec *, out, f->off), wt, v, val, len))
                return false;
            break;
        case D_LINES: {
            struct raw_line l = { 0, 0, 0 };
            if (!read_flat(w, w->m[WM_LINE], val, len, &l) || !VEC_PUSH(**MEMBER(linevec *, out, f->off), l))
                return false;
            break;
        }
        default:   /* not flat: layout_entry_flat keeps such messages from here */
            return false;
        }
    }
    return true;
}

bool layout_entry_flat_checked(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out)
{
    return read_flat(layout->wire, layout->wire->m[message], msg.p, msg.n, out);
}
