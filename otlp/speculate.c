/*
 * speculate.c - the detector's fast path (detect.h): a layout chosen from a prefix of the
 * request, the rest checked by a lean walk here and, for the samples, by the decoder itself.
 *
 * The lean walk applies exactly the rules of detect.c's walk (framing, field numbers, wire type
 * against kind, packed runs, values parallel to timestamps, the depth bound) but says nothing:
 * it answers only "the full walk would find nothing here". Anything else (a contradiction, an
 * unknown field) sends the request the full way, which then finds it and words it.
 */
#include "otlp/detect.h"

#include <string.h>

#include "otlp/wire.h"

struct lean {
    const struct wire_schema *wire;
    bool parallel_values;       /* the layout's: values parallel to timestamps */
    bool walk_samples;          /* false: the samples are left to the decoder */
    bool walk_entries;          /* false: the dictionary's entries are left to the decoder */
    bool has_dictionary;        /* the request's field 2 was seen */
    struct wire_tally *t;
    struct dict_tables *tables; /* non-NULL: the dictionary's entries indexed on the way */
    bool oom;                   /* ... and there was no memory for that */
};

/* One field's tag and value; false when the framing is broken (as next_field in detect.c). One-
 * byte tags, lengths and values, most of a request, are read inline. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline bool lean_field(const uint8_t **q, const uint8_t *end, uint64_t *fnum, unsigned *wt,
                              const uint8_t **val, size_t *len)
{
    struct cursor c = { *q, end };
    uint64_t tag, x;
    if (*c.p < 0x80)
        tag = *c.p++;
    else if (!wire_varint(&c, &tag) || tag > UINT32_MAX)
        return false;
    *fnum = tag >> 3;
    *wt = (unsigned)(tag & 7);
    *val = c.p;
    *len = 0;
    switch (*wt) {
    case WT_VARINT:
        if (c.p < end && *c.p < 0x80)
            c.p++;
        else if (!wire_varint(&c, &x))
            return false;
        break;
    case WT_I64: case WT_I32:
        *len = *wt == WT_I64 ? 8 : 4;
        if ((size_t)(end - c.p) < *len)
            return false;
        c.p += *len;
        break;
    case WT_LEN:
        if (c.p < end && *c.p < 0x80)
            x = *c.p++;
        else if (!wire_varint(&c, &x))
            return false;
        if (x > (uint64_t)(end - c.p))
            return false;
        *val = c.p;
        *len = (size_t)x;
        c.p += x;
        break;
    default:
        return false;
    }
    *q = c.p;
    return *fnum != 0;
}

/* The dictionary while the fast path indexes it without walking its entries: a thousand fields
 * a small request, each a length-delimited table entry (a string, or a message left to the
 * decoder), so each is read here with only what the general walk would look at for it: the
 * tag, the length, the field's kind, the entry's place noted. 1: the walk found nothing; 0: it
 * found something (as the general walk would); -1: a field of another shape (none in the
 * layouts of today), what was noted is forgotten and the general walk takes the message. */
static int lean_dictionary(struct lean *L, const struct wmsg_desc *desc, const uint8_t *p, size_t n)
{
    struct dict_tables *tables = L->tables;
    size_t mark[DICT_TABLES];
    for (int t = 0; t < DICT_TABLES; t++)
        mark[t] = tables->t[t].n;
    const uint8_t *q = p, *end = p + n;
    while (q < end) {
        uint64_t fnum;
        unsigned wt;
        const uint8_t *val;
        size_t len;
        if (!lean_field(&q, end, &fnum, &wt, &val, &len) || fnum > WMAX_FIELD)
            return 0;
        const struct wfield *f = &desc->f[fnum];
        if (wt != WT_LEN || (f->kind != W_BYTES && f->kind != W_MSG) || f->dest != D_DICT || f->role) {
            for (int t = 0; t < DICT_TABLES; t++)
                tables->t[t].n = mark[t];
            return -1;
        }
        struct dict_ref el = { (uint32_t)(val - tables->base), (uint32_t)len };
        if (!VEC_PUSH(tables->t[f->off], el)) {
            L->oom = true;
            return 0;
        }
    }
    return 1;
}

static bool lean_walk(struct lean *L, enum wmsg m, const uint8_t *p, size_t n, unsigned depth)
{
    const struct wmsg_desc *desc = L->wire->m[m];
    if (!desc)
        return false;
    if (m == WM_DICTIONARY && L->tables && !L->walk_entries) {
        int fast = lean_dictionary(L, desc, p, n);
        if (fast >= 0)
            return fast;
    }
    /* where the wire types of a profile's or a sample's fields are noted (the evidence) */
    uint8_t *wts = NULL;
    if (m == WM_PROFILE) {
        L->t->profiles++;
        wts = L->t->profile_wts;
    } else if (m == WM_SAMPLE) {
        L->t->samples++;
        wts = L->t->sample_wts;
    }
    bool nest = depth < WIRE_MAX_DEPTH;
    uint64_t values = 0, timestamps = 0;
    const uint8_t *q = p, *end = p + n;
    while (q < end) {
        uint64_t fnum;
        unsigned wt;
        const uint8_t *val;
        size_t len;
        if (!lean_field(&q, end, &fnum, &wt, &val, &len) || fnum > WMAX_FIELD)
            return false;   /* broken framing, or a field number no message has: unknown */
        const struct wfield *f = &desc->f[fnum];
        if (!wire_kind_accepts(f->kind, wt))
            return false;   /* unknown (W_NONE), or a wire type its kind does not allow */
        uint64_t elems = 1;
        if (wt == WT_LEN) {
            if (f->kind == W_PVARINT && !wire_packed_varints(val, len, &elems))
                return false;
            if (f->kind == W_PI64) {
                if (len % 8 != 0)
                    return false;
                elems = len / 8;
            }
        }
        if (wts)
            wts[fnum] |= (uint8_t)(1u << wt);
        /* Each entry's place, as layout_dictionary would append it (the same fields in the same
         * order: it reads every field of the dictionary the layout has, and this walk stops at
         * any other): the decoder then need not walk the dictionary a second time. */
        if (m == WM_DICTIONARY && L->tables && f->dest == D_DICT) {
            struct dict_ref el = { (uint32_t)(val - L->tables->base), (uint32_t)len };
            if (!VEC_PUSH(L->tables->t[f->off], el)) {
                L->oom = true;
                return false;
            }
        }
        if (f->kind == W_MSG) {
            if (m == WM_REQUEST && fnum == 2)
                L->has_dictionary = true;
            if (nest && (f->msg != WM_SAMPLE || L->walk_samples) && (m != WM_DICTIONARY || L->walk_entries) &&
                !lean_walk(L, (enum wmsg)f->msg, val, len, depth + 1))
                return false;
        }
        if (f->role) {
            if (f->role == R_VALUES)
                values += elems;
            else if (f->role == R_TIMESTAMPS)
                timestamps += elems;
        }
    }
    return !(L->parallel_values && values && timestamps && values != timestamps);
}

bool otlp_speculate_layout(const uint8_t *msg, size_t len, struct otlp_detection *det,
                           struct otlp_speculation *sp, struct dict_tables *tables)
{
    /* The candidate: the newest layout the lean walk finds nothing against (a layout that does
     * not fit usually fails it within the first samples). */
    size_t chosen = OTLP_LAYOUT_COUNT;
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT && chosen == OTLP_LAYOUT_COUNT; i++) {
        const struct otlp_layout *layout = otlp_layouts[i];
        memset(sp, 0, sizeof *sp);
        if (tables) {   /* what a layout that failed the walk indexed is forgotten */
            tables->base = msg;
            for (int t = 0; t < DICT_TABLES; t++)
                VEC_RESET(tables->t[t]);
        }
        struct lean L = { layout->wire, layout->parallel_values, false, false, false, &sp->tally, tables, false };
        if (lean_walk(&L, WM_REQUEST, msg, len, 0)) {
            chosen = i;
            sp->has_dictionary = L.has_dictionary;
        }
        if (L.oom)
            return false;
    }
    if (chosen == OTLP_LAYOUT_COUNT)
        return false;
    /* Every other layout must contradict within its prefix, which then says what the full walk
     * would: the walk is the same up to there. */
    struct otlp_prefix pre[OTLP_LAYOUT_COUNT];
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        if (i == chosen) {
            pre[i].why[0] = 0;
            continue;
        }
        otlp_detect_prefix(msg, len, otlp_layouts[i], OTLP_PREFIX_FIELDS, &pre[i]);
        if (!pre[i].failed)
            return false;
    }
    det->layout = otlp_layouts[chosen];
    det->ambiguous = det->equivalent = det->malformed = false;
    det->n_evidence = det->n_recorded = 0;
    det->n_unknown = 0;
    det->n_tried = OTLP_LAYOUT_COUNT;
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        struct otlp_layout_verdict *v = &det->tried[i];
        v->layout = otlp_layouts[i];
        v->fits = i == chosen;
        memcpy(v->why, pre[i].why, sizeof v->why);
    }
    return true;
}

bool otlp_speculate_samples_of(const struct otlp_layout *layout, const uint8_t *profile, size_t n,
                               struct wire_tally *t)
{
    const struct wmsg_desc *desc = layout->wire->m[WM_PROFILE];
    struct lean L = { layout->wire, layout->parallel_values, true, true, false, t, NULL, false };
    const uint8_t *q = profile, *end = profile + n;
    while (q < end) {
        uint64_t fnum;
        unsigned wt;
        const uint8_t *val;
        size_t len;
        if (!lean_field(&q, end, &fnum, &wt, &val, &len) || fnum > WMAX_FIELD)
            return false;
        const struct wfield *f = &desc->f[fnum];
        /* a Profile is at depth 3 (request, resource_profiles, scope_profiles): its samples
         * are well within the depth bound */
        if (f->kind == W_MSG && f->msg == WM_SAMPLE && wt == WT_LEN && !lean_walk(&L, WM_SAMPLE, val, len, 4))
            return false;
    }
    return true;
}

bool otlp_speculate_check(const struct otlp_layout *layout, enum wmsg m, const uint8_t *p, size_t n,
                          unsigned depth)
{
    struct wire_tally unused = { 0 };
    struct lean L = { layout->wire, layout->parallel_values, true, true, false, &unused, NULL, false };
    return lean_walk(&L, m, p, n, depth);
}

bool otlp_speculate_entries(const struct otlp_layout *layout, const struct dict_tables *tables,
                            const uint8_t *const checked[DICT_TABLES])
{
    const struct wmsg_desc *dict = layout->wire->m[WM_DICTIONARY];
    for (unsigned f = 1; f <= WMAX_FIELD; f++) {
        const struct wfield *fd = &dict->f[f];
        if (fd->dest != D_DICT || fd->kind != W_MSG)
            continue;   /* strings (no inside), or no such table */
        const dictrefvec *t = &tables->t[fd->off];
        for (size_t i = 0; i < t->n; i++)
            if (!(checked[fd->off] && checked[fd->off][i]) &&
                !otlp_speculate_check(layout, (enum wmsg)fd->msg, tables->base + t->v[i].off, t->v[i].len, 2))
                return false;
    }
    return true;
}

void otlp_speculate_confirm(struct otlp_detection *det, const struct otlp_speculation *sp)
{
    otlp_detect_explain_fast(det, &sp->tally, sp->has_dictionary);
}
