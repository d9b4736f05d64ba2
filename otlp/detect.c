/*
 * detect.c - tells the profiles proto layouts apart on the wire (see detect.h for the why).
 *
 * Each layout is described by its wire schema (wire.h; the tables are in layouts.c): for every
 * message, which field numbers exist, how each is encoded, what it means and which message a
 * length-delimited field holds. A request is walked once per layout, to the end or to the
 * first contradiction; the walk is iterative over fields and recursive over nested messages,
 * with a fixed depth bound (only AnyValue nests without limit). A field number the layout does
 * not have is counted (and, in the chosen layout's last walk, recorded), not a contradiction.
 * Two layouts that both fit a request are compared by the names of the fields present.
 */
#include "otlp/detect.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "otlp/layout.h"
#include "otlp/view.h"
#include "otlp/wire.h"

static const char *const wt_names[8] = {
    "VARINT", "I64", "LEN", "SGROUP", "EGROUP", "I32", "wire type 6", "wire type 7",
};

/* ---------- the walk ---------- */

/* Nested messages deeper than this are not walked (only AnyValue nests without limit). */
#define MAX_DEPTH WIRE_MAX_DEPTH

struct frame {
    const struct frame *parent;
    const char *name;       /* the field holding this message; NULL for the request */
    uint32_t index;
    bool indexed;           /* a repeated field: show [index] */
};

struct walk {
    const struct otlp_layout *layout;
    const struct wire_schema *wire;
    bool failed;
    char why[OTLP_DETECT_LINE];
    uint32_t seen[WM_COUNT];                /* bit f: field f occurred in that message */
    uint32_t carried[WM_COUNT];             /* ... and carried something: an empty LEN reads
                                             * as the default value in any layout */
    uint8_t wts[2][WMAX_FIELD + 1];         /* Profile, Sample: bit w: wire type w seen */
    uint64_t count[WM_COUNT];               /* messages walked */
    uint64_t unknown;                       /* fields this layout does not have */
    char first_unknown[OTLP_DETECT_LINE];   /* where the first of them is */
    struct otlp_detection *rec;             /* set: record the unknown fields there */
    size_t budget;                          /* fields left to walk (a prefix walk's bound) */
    bool truncated;                         /* stopped by the budget, not by a contradiction */
};

/* Appends n bytes at buf + *pos as snprintf(buf + *pos, len - *pos, "%s", s) would, and
 * advances *pos by n even past the end (as its return value would): the evidence's paths and
 * field lists are made for every request the fast path decodes, and snprintf for each piece
 * was a fortieth of the small request's time. */
static void put_bytes(char *buf, size_t len, size_t *pos, const char *s, size_t n)
{
    if (*pos < len) {
        size_t k = len - 1 - *pos < n ? len - 1 - *pos : n;
        memcpy(buf + *pos, s, k);
        buf[*pos + k] = 0;
    }
    *pos += n;
}

static void put_cstr(char *buf, size_t len, size_t *pos, const char *s)
{
    put_bytes(buf, len, pos, s, strlen(s));
}

static void put_u64(char *buf, size_t len, size_t *pos, unsigned long long v)
{
    char d[24];
    size_t k = sizeof d;
    do
        d[--k] = (char)('0' + v % 10);
    while (v /= 10);
    put_bytes(buf, len, pos, d + k, sizeof d - k);
}

/* vsnprintf(buf + *pos, len - *pos, fmt, ap) for the formats the contradictions use (%s, %d,
 * %u, %llu, %zu and %%, no flags or widths), *pos advanced as its return value would: the
 * other layouts' prefix walks word a contradiction for every request the fast path decodes,
 * and the C library's formatting was two to three percent of the server's time. Anything
 * else is left to vsnprintf, from the start. */
static void put_fmt(char *buf, size_t len, size_t *pos, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t start = *pos;
    for (const char *p = fmt; *p; p++) {
        const char *q = strchr(p, '%');
        if (!q) {
            put_cstr(buf, len, pos, p);
            break;
        }
        put_bytes(buf, len, pos, p, (size_t)(q - p));
        p = q + 1;
        if (*p == 's') {
            put_cstr(buf, len, pos, va_arg(ap, const char *));
        } else if (*p == 'u') {
            put_u64(buf, len, pos, va_arg(ap, unsigned));
        } else if (*p == 'd') {
            int v = va_arg(ap, int);
            if (v < 0)
                put_bytes(buf, len, pos, "-", 1);
            put_u64(buf, len, pos, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v);
        } else if (p[0] == 'z' && p[1] == 'u') {
            put_u64(buf, len, pos, va_arg(ap, size_t));
            p++;
        } else if (p[0] == 'l' && p[1] == 'l' && p[2] == 'u') {
            put_u64(buf, len, pos, va_arg(ap, unsigned long long));
            p += 2;
        } else if (*p == '%') {
            put_bytes(buf, len, pos, "%", 1);
        } else {   /* not one of ours */
            *pos = start;
            int k = start < len ? vsnprintf(buf + start, len - start, fmt, again) : -1;
            *pos = start + (k > 0 ? (size_t)k : 0);
            break;
        }
    }
    va_end(again);
}

static size_t format_path(const struct frame *fr, char *buf, size_t len)
{
    const struct frame *chain[MAX_DEPTH + 2];
    size_t n = 0, pos = 0;
    for (; fr && fr->name && n < sizeof chain / sizeof chain[0]; fr = fr->parent)
        chain[n++] = fr;
    buf[0] = 0;
    while (n-- > 0 && pos < len) {
        const struct frame *f = chain[n];
        if (pos)
            put_bytes(buf, len, &pos, ".", 1);
        put_cstr(buf, len, &pos, f->name);
        if (f->indexed) {
            put_bytes(buf, len, &pos, "[", 1);
            put_u64(buf, len, &pos, f->index);
            put_bytes(buf, len, &pos, "]", 1);
        }
    }
    return pos < len ? pos : len - 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static bool contradict(struct walk *w, const struct frame *fr, const char *fmt, ...)
{
    char path[160];
    size_t n = format_path(fr, path, sizeof path), pos = 0;
    w->why[0] = 0;
    put_bytes(w->why, sizeof w->why, &pos, path, n);
    if (n)
        put_bytes(w->why, sizeof w->why, &pos, ": ", 2);
    va_list ap;
    va_start(ap, fmt);
    if (pos < sizeof w->why)
        put_fmt(w->why, sizeof w->why, &pos, fmt, ap);
    va_end(ap);
    w->failed = true;
    return false;
}

/* ---------- unknown fields ---------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void put(char *buf, size_t *pos, const char *fmt, ...)
{
    if (*pos + 1 >= OTLP_UNKNOWN_DECODED)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *pos, OTLP_UNKNOWN_DECODED - *pos, fmt, ap);
    va_end(ap);
    if (k > 0)
        *pos = *pos + (size_t)k < OTLP_UNKNOWN_DECODED ? *pos + (size_t)k : OTLP_UNKNOWN_DECODED - 1;
}

/* Length of the valid UTF-8 text at p (no control characters but tab and newline), or 0 when
 * the bytes are not such text. */
static size_t utf8_text(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || i + k > n || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f || (k == 2 && c < 0xc2))
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        i += k;
    }
    return n;
}

/* "message {1: VARINT, 2: LEN}" when the bytes read as protobuf fields to the end. */
static bool as_message(const uint8_t *p, size_t n, char *buf, size_t *pos)
{
    if (n == 0 || n > 65536)
        return false;
    struct cursor c = { p, p + n };
    unsigned shown = 0;
    size_t start = *pos;
    put(buf, pos, "message {");
    while (c.p < c.end) {
        uint64_t tag, len = 0;
        if (!wire_varint(&c, &tag) || tag > UINT32_MAX || (tag >> 3) == 0)
            goto no;
        unsigned wt = (unsigned)(tag & 7);
        if (wt == WT_VARINT) {
            if (!wire_varint(&c, &len))
                goto no;
            len = 0;
        } else if (wt == WT_I64 || wt == WT_I32) {
            len = wt == WT_I64 ? 8 : 4;
        } else if (wt != WT_LEN || !wire_varint(&c, &len)) {
            goto no;
        }
        if (len > (uint64_t)(c.end - c.p))
            goto no;
        c.p += len;
        if (shown++ < 6)
            put(buf, pos, "%s%llu: %s", shown > 1 ? ", " : "", (unsigned long long)(tag >> 3), wt_names[wt]);
    }
    put(buf, pos, "%s}", shown > 6 ? ", …" : "");
    return true;
no:
    *pos = start;
    buf[start] = 0;
    return false;
}

/* What the wire says an unknown field holds, as far as it tells. */
static void describe_unknown(struct otlp_unknown_field *u, uint64_t v)
{
    char *buf = u->decoded;
    size_t pos = 0;
    buf[0] = 0;
    switch (u->wire_type) {
    case WT_VARINT:
        put(buf, &pos, "%llu", (unsigned long long)v);
        if (v >> 63)
            put(buf, &pos, " (%lld as int64)", (long long)v);
        return;
    case WT_I64:
        put(buf, &pos, "0x%016llx", (unsigned long long)v);
        return;
    case WT_I32:
        put(buf, &pos, "0x%02x%02x%02x%02x", u->value[3], u->value[2], u->value[1], u->value[0]);
        return;
    default:
        break;
    }
    const size_t shown = 64;
    if (u->size == 0) {
        put(buf, &pos, "\"\"");
    } else if (utf8_text(u->value, u->size)) {
        size_t n = u->size <= shown ? u->size : shown;
        while (n < u->size && n > 0 && (u->value[n] & 0xc0) == 0x80)   /* whole characters */
            n--;
        put(buf, &pos, "\"%.*s\"%s", (int)n, (const char *)u->value, n < u->size ? "…" : "");
    } else if (!as_message(u->value, u->size, buf, &pos)) {
        put(buf, &pos, "bytes ");
        for (size_t i = 0; i < u->size && i < 32; i++)
            put(buf, &pos, "%02x", u->value[i]);
        if (u->size > 32)
            put(buf, &pos, "…");
    }
}

/* A field number message `desc` does not have in this layout: counted, and recorded when this
 * is the chosen layout's recording walk. */
static void note_unknown(struct walk *w, const struct frame *fr, const struct wmsg_desc *desc, uint32_t fnum,
                         unsigned wt, const uint8_t *val, size_t len)
{
    if (w->unknown++ == 0) {
        char path[160];
        size_t n = format_path(fr, path, sizeof path);
        snprintf(w->first_unknown, sizeof w->first_unknown, "%s%s%s field %u (%s) is not in %s", path,
                 n ? ": " : "", desc->name, fnum, wt_names[wt], w->layout->name);
    }
    struct otlp_detection *det = w->rec;
    if (!det || det->n_recorded == OTLP_MAX_UNKNOWN_FIELDS)
        return;
    struct otlp_unknown_field *u = &det->unknown[det->n_recorded++];
    format_path(fr, u->path, sizeof u->path);
    u->message = desc->name;
    u->number = fnum;
    u->wire_type = (uint8_t)wt;
    u->value = val;   /* VARINT: the varint's bytes, next_field checked them */
    u->size = len;
    uint64_t v = 0;
    struct cursor c = { val, val + len };
    if (wt == WT_VARINT && !wire_varint(&c, &v))
        v = 0;
    if (wt == WT_I64)
        v = wire_fixed64(val);
    describe_unknown(u, v);
}

/* Is wire type `wt` (with LEN contents val/len) an encoding of field `f`? Sets *elems to the
 * number of repeated elements it carries. */
static bool check_field(struct walk *w, const struct frame *fr, const struct wmsg_desc *desc,
                        uint32_t fnum, unsigned wt, const uint8_t *val, size_t len, uint64_t *elems)
{
    const struct wfield *f = &desc->f[fnum];
    const char *expected = "LEN";
    bool ok = false;
    *elems = 1;
    switch ((enum wkind)f->kind) {
    case W_VARINT: ok = wt == WT_VARINT; expected = "VARINT"; break;
    case W_I64: ok = wt == WT_I64; expected = "I64"; break;
    case W_I32: ok = wt == WT_I32; expected = "I32"; break;
    case W_BYTES: case W_MSG: ok = wt == WT_LEN; break;
    case W_PVARINT:
        expected = "VARINT or packed LEN";
        ok = wt == WT_VARINT;
        if (wt == WT_LEN && !wire_packed_varints(val, len, elems))
            return contradict(w, fr, "%s field %u (%s) is LEN but not a packed run of varints",
                              desc->name, fnum, f->name);
        ok = ok || wt == WT_LEN;
        break;
    case W_PI64:
        expected = "I64 or packed LEN";
        ok = wt == WT_I64;
        if (wt == WT_LEN && len % 8 != 0)
            return contradict(w, fr, "%s field %u (%s) is LEN of %zu bytes, not a packed run of fixed64",
                              desc->name, fnum, f->name, len);
        if (wt == WT_LEN)
            *elems = len / 8;
        ok = ok || wt == WT_LEN;
        break;
    case W_NONE:
        break;
    }
    if (!ok)
        return contradict(w, fr, "%s field %u (%s) is %s, expected %s", desc->name, fnum, f->name,
                          wt_names[wt], expected);
    return true;
}

/* Reads one field's tag and value; false (and a reason) when the framing is broken. */
static bool next_field(struct walk *w, const struct frame *fr, const struct wmsg_desc *desc,
                       struct cursor *c, uint32_t *fnum, unsigned *wt, const uint8_t **val, size_t *len)
{
    uint64_t tag, n;
    size_t left = (size_t)(c->end - c->p);
    if (!wire_varint(c, &tag) || tag > UINT32_MAX || (tag >> 3) == 0)
        return contradict(w, fr, "malformed %s: bad field tag (%zu bytes left)", desc->name, left);
    *fnum = (uint32_t)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    *val = c->p;
    *len = 0;
    switch (*wt) {
    case WT_VARINT:
        if (!wire_varint(c, &n))
            return contradict(w, fr, "malformed %s field %u: truncated varint", desc->name, *fnum);
        *len = (size_t)(c->p - *val);
        return true;
    case WT_I64: case WT_I32:
        n = *wt == WT_I64 ? 8 : 4;
        *len = (size_t)n;
        break;
    case WT_LEN:
        if (!wire_varint(c, &n))
            return contradict(w, fr, "malformed %s field %u: truncated length", desc->name, *fnum);
        *val = c->p;
        *len = (size_t)n;
        break;
    default:
        return contradict(w, fr, "malformed %s field %u: %s is not used by OTLP", desc->name, *fnum,
                          wt_names[*wt]);
    }
    if (n > (uint64_t)(c->end - c->p))
        return contradict(w, fr, "malformed %s field %u: %llu bytes run past the end (%zu left)",
                          desc->name, *fnum, (unsigned long long)n, (size_t)(c->end - c->p));
    c->p += n;
    return true;
}

static int role_field(const struct wmsg_desc *desc, enum wrole role)
{
    for (int f = 1; f <= WMAX_FIELD; f++)
        if (desc->f[f].kind != W_NONE && desc->f[f].role == role)
            return f;
    return 0;
}

/* Checks every field of one message and walks the nested ones, except: fields whose bit is
 * in `skip_nested` are checked but not walked into; when `only` is not 0, only the fields in
 * it are looked at (a second pass over the same message). */
static bool walk_fields(struct walk *w, enum wmsg m, const uint8_t *p, size_t n, const struct frame *fr,
                        unsigned depth, uint32_t skip_nested, uint32_t only)
{
    const struct wmsg_desc *desc = w->wire->m[m];
    assert(desc);
    if (!only)
        w->count[m]++;
    uint32_t occurrences[WMAX_FIELD + 1] = { 0 };
    uint64_t roles[R_COUNT] = { 0 };
    struct cursor c = { p, p + n };
    while (c.p < c.end) {
        uint32_t fnum = 0;
        unsigned wt = 0;
        const uint8_t *val = NULL;
        size_t len = 0;
        uint64_t elems = 0;
        if (w->budget-- == 0) {
            w->truncated = true;
            return false;
        }
        if (!next_field(w, fr, desc, &c, &fnum, &wt, &val, &len))
            return false;
        if (only && (fnum > WMAX_FIELD || !(only & (1u << fnum))))
            continue;
        if (fnum > WMAX_FIELD || desc->f[fnum].kind == W_NONE) {
            note_unknown(w, fr, desc, fnum, wt, val, len);
            continue;
        }
        const struct wfield *f = &desc->f[fnum];
        w->seen[m] |= 1u << fnum;
        if (wt != WT_LEN || len > 0)
            w->carried[m] |= 1u << fnum;
        if (m == WM_PROFILE || m == WM_SAMPLE)
            w->wts[m == WM_SAMPLE][fnum] |= (uint8_t)(1u << wt);
        if (!check_field(w, fr, desc, fnum, wt, val, len, &elems))
            return false;
        if (f->kind == W_MSG && depth < MAX_DEPTH && !(skip_nested & (1u << fnum))) {
            struct frame child = { fr, f->name, occurrences[fnum], f->repeated };
            if (!walk_fields(w, (enum wmsg)f->msg, val, len, &child, depth + 1, 0, 0))
                return false;
        }
        occurrences[fnum]++;
        roles[f->role] += elems;
    }
    if (w->layout->parallel_values && roles[R_VALUES] && roles[R_TIMESTAMPS] &&
        roles[R_VALUES] != roles[R_TIMESTAMPS]) {
        int fv = role_field(desc, R_VALUES), ft = role_field(desc, R_TIMESTAMPS);
        return contradict(w, fr, "%s has %llu entries in field %d (%s) but %llu in field %d (%s), "
                          "which %s requires to be parallel", desc->name,
                          (unsigned long long)roles[R_VALUES], fv, desc->f[fv].name,
                          (unsigned long long)roles[R_TIMESTAMPS], ft, desc->f[ft].name, w->layout->name);
    }
    return true;
}

static void walk_layout(struct walk *w, const struct otlp_layout *layout, const uint8_t *msg, size_t len,
                        struct otlp_detection *rec, size_t budget)
{
    memset(w, 0, sizeof *w);
    w->rec = rec;
    w->budget = budget;
    w->layout = layout;
    w->wire = layout->wire;
    assert(w->wire);
    struct frame root = { NULL, NULL, 0, false };
    /* Profiles and samples first, wherever the dictionary sits on the wire: that is where
     * the layouts differ most, so a layout that does not fit usually fails there, before its
     * walk of the (big, and mostly alike) dictionary. */
    const uint32_t dictionary = 1u << 2;
    if (walk_fields(w, WM_REQUEST, msg, len, &root, 0, dictionary, 0))
        walk_fields(w, WM_REQUEST, msg, len, &root, 0, 0, dictionary);
}

void otlp_detect_prefix(const uint8_t *msg, size_t len, const struct otlp_layout *layout, size_t budget,
                        struct otlp_prefix *out)
{
    struct walk w;
    walk_layout(&w, layout, msg, len, NULL, budget);
    out->failed = w.failed;
    out->truncated = w.truncated;
    out->unknown = w.unknown;
    size_t pos = 0;
    out->why[0] = 0;
    put_cstr(out->why, sizeof out->why, &pos, w.why);
}

/* ---------- evidence ---------- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void add_evidence(struct otlp_detection *det, const char *fmt, ...)
{
    if (det->n_evidence == OTLP_DETECT_MAX_EVIDENCE)
        return;
    char *line = det->evidence[det->n_evidence++];
    size_t pos = 0;
    line[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    put_fmt(line, OTLP_DETECT_LINE, &pos, fmt, ap);
    va_end(ap);
}

/* "Sample fields (49 samples): 1 VARINT, 3 LEN, 5 LEN" */
static void fields_seen(struct otlp_detection *det, enum wmsg m, uint64_t count, const uint8_t *wts_of,
                        const char *plural)
{
    const char *name = m == WM_SAMPLE ? "Sample" : "Profile";
    if (!count) {
        add_evidence(det, "no %s in the request", plural);
        return;
    }
    char buf[OTLP_DETECT_LINE];
    size_t pos = 0;
    buf[0] = 0;
    for (unsigned f = 1; f <= WMAX_FIELD; f++) {
        uint8_t wts = wts_of[f];
        for (unsigned wt = 0; wts && wt < 8 && pos < sizeof buf; wt++) {
            if (!(wts & (1u << wt)))
                continue;
            if (pos)
                put_bytes(buf, sizeof buf, &pos, ", ", 2);
            put_u64(buf, sizeof buf, &pos, f);
            put_bytes(buf, sizeof buf, &pos, " ", 1);
            put_cstr(buf, sizeof buf, &pos, wt_names[wt]);
        }
    }
    add_evidence(det, "%s fields (%llu %s): %s", name, (unsigned long long)count, plural,
                 buf[0] ? buf : "none");
}

static bool same_meaning(const struct wfield *a, const struct wfield *b)
{
    return a->kind == b->kind && a->msg == b->msg && (a->kind == W_NONE || strcmp(a->name, b->name) == 0);
}

/* Lists (up to 3) fields present in the request that `a` and `b` read differently; returns
 * how many there are. */
static size_t differences(const struct walk *a, const struct walk *b, char *buf, size_t len)
{
    static const struct wfield none = { W_NONE, 0, R_NONE, false, "-" };
    size_t n = 0, pos = 0;
    buf[0] = 0;
    for (int m = 0; m < WM_COUNT; m++) {
        uint32_t bits = a->carried[m] | b->carried[m];
        const struct wmsg_desc *da = a->wire->m[m], *db = b->wire->m[m];
        for (unsigned f = 1; bits && f <= WMAX_FIELD; f++) {
            if (!(bits & (1u << f)))
                continue;
            const struct wfield *fa = da ? &da->f[f] : &none, *fb = db ? &db->f[f] : &none;
            if (same_meaning(fa, fb))
                continue;
            if (n++ < 3 && pos < len) {
                int k = snprintf(buf + pos, len - pos, "%s%s field %u is %s in %s, %s in %s",
                                 pos ? "; " : "", da ? da->name : db->name, f,
                                 fa->kind ? fa->name : "absent", a->layout->name,
                                 fb->kind ? fb->name : "absent", b->layout->name);
                pos = k < 0 ? len : pos + (size_t)k;
            }
        }
    }
    return n;
}

static void explain(struct otlp_detection *det, const struct walk *walks, size_t n, size_t chosen)
{
    const struct walk *c = &walks[chosen];
    fields_seen(det, WM_PROFILE, c->count[WM_PROFILE], c->wts[0], "profiles");
    fields_seen(det, WM_SAMPLE, c->count[WM_SAMPLE], c->wts[1], "samples");
    if (!(c->seen[WM_REQUEST] & (1u << 2)))
        add_evidence(det, "no dictionary in the request");
    det->equivalent = det->ambiguous;
    for (size_t i = 0; i < n; i++) {
        if (i == chosen)
            continue;
        if (walks[i].failed) {
            add_evidence(det, "not %s: %s", walks[i].layout->name, walks[i].why);
            continue;
        }
        char diff[OTLP_DETECT_LINE - 64];
        if (differences(c, &walks[i], diff, sizeof diff) == 0) {
            add_evidence(det, "also fits %s, which reads every field present the same way",
                         walks[i].layout->name);
        } else {
            det->equivalent = false;
            add_evidence(det, "also fits %s, read differently: %s", walks[i].layout->name, diff);
        }
    }
}

void otlp_detect_explain_fast(struct otlp_detection *det, const struct wire_tally *t, bool has_dictionary)
{
    fields_seen(det, WM_PROFILE, t->profiles, t->profile_wts, "profiles");
    fields_seen(det, WM_SAMPLE, t->samples, t->sample_wts, "samples");
    if (!has_dictionary)
        add_evidence(det, "no dictionary in the request");
    for (size_t i = 0; i < det->n_tried; i++)
        if (det->tried[i].layout != det->layout)
            add_evidence(det, "not %s: %s", det->tried[i].layout->name, det->tried[i].why);
}

/* Forgets the last request's verdicts (the arrays are only read up to their counts). */
static void detection_reset(struct otlp_detection *out)
{
    out->layout = NULL;
    out->ambiguous = out->equivalent = out->malformed = false;
    out->n_tried = out->n_evidence = out->n_recorded = 0;
    out->n_unknown = 0;
}

int otlp_detect_among(const uint8_t *msg, size_t len, const struct otlp_layout *const *candidates,
                      size_t n_candidates, struct otlp_detection *out)
{
    struct walk walks[OTLP_LAYOUT_COUNT];
    assert(n_candidates <= OTLP_LAYOUT_COUNT);
    detection_reset(out);
    size_t chosen = n_candidates, fitting = 0;
    for (size_t i = 0; i < n_candidates; i++) {
        walk_layout(&walks[i], candidates[i], msg, len, NULL, SIZE_MAX);
        /* the one that explains the most of the request; the newest of equals */
        if (!walks[i].failed && (chosen == n_candidates || walks[i].unknown < walks[chosen].unknown))
            chosen = i;
    }
    for (size_t i = 0; i < n_candidates; i++) {
        struct otlp_layout_verdict *v = &out->tried[out->n_tried++];
        v->layout = candidates[i];
        v->fits = !walks[i].failed && walks[i].unknown == walks[chosen == n_candidates ? i : chosen].unknown;
        if (!walks[i].failed && !v->fits) {   /* read as a contradiction from here on */
            walks[i].failed = true;
            snprintf(walks[i].why, sizeof walks[i].why, "%s (%llu field(s) unknown, %s has %llu)",
                     walks[i].first_unknown, (unsigned long long)walks[i].unknown,
                     candidates[chosen]->name, (unsigned long long)walks[chosen].unknown);
        }
        snprintf(v->why, sizeof v->why, "%s", walks[i].why);
        fitting += v->fits;
    }
    if (chosen == n_candidates) {
        out->malformed = n_candidates > 1;
        for (size_t i = 1; i < n_candidates; i++)
            out->malformed = out->malformed && strcmp(walks[i].why, walks[0].why) == 0;
        for (size_t i = 0; i < n_candidates; i++)
            add_evidence(out, "not %s: %s", walks[i].layout->name, walks[i].why);
        return -1;
    }
    out->layout = candidates[chosen];
    out->ambiguous = fitting > 1;
    explain(out, walks, n_candidates, chosen);
    out->n_unknown = walks[chosen].unknown;
    if (out->n_unknown) {
        add_evidence(out, "%llu unknown field(s), kept and shown; the first: %s",
                     (unsigned long long)out->n_unknown, walks[chosen].first_unknown);
        struct walk rec;   /* once more, recording them (a rare case: no cost otherwise) */
        walk_layout(&rec, candidates[chosen], msg, len, out, SIZE_MAX);
    }
    return 0;
}

int otlp_detect(const uint8_t *msg, size_t len, struct otlp_detection *out)
{
    return otlp_detect_among(msg, len, otlp_layouts, OTLP_LAYOUT_COUNT, out);
}

size_t otlp_unknown_view(const struct otlp_detection *det, struct lb_unknown_field *out)
{
    for (size_t i = 0; i < det->n_recorded; i++) {
        const struct otlp_unknown_field *u = &det->unknown[i];
        out[i] = (struct lb_unknown_field){
            { u->path, strlen(u->path) }, { u->message, strlen(u->message) }, u->number, u->wire_type,
            { (const char *)u->value, u->size }, { u->decoded, strlen(u->decoded) },
        };
    }
    return det->n_recorded;
}

/* ---------- one-line reports ---------- */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void appendf(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    if (*pos + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (k > 0)
        *pos = *pos + (size_t)k < len ? *pos + (size_t)k : len - 1;
}

size_t otlp_detection_summary(const struct otlp_detection *det, char *buf, size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return 0;
    if (!det->layout)
        return otlp_detection_failure(det, buf, len);
    buf[0] = 0;
    appendf(buf, len, &pos, "%s", det->layout->name);
    if (!det->ambiguous)
        return pos;
    appendf(buf, len, &pos, " (also fits");
    for (size_t i = 0; i < det->n_tried; i++)
        if (det->tried[i].fits && det->tried[i].layout != det->layout)
            appendf(buf, len, &pos, " %s", det->tried[i].layout->name);
    appendf(buf, len, &pos, "%s)", det->equivalent
            ? ", which reads every field present the same way"
            : ", which reads some fields differently: pin --proto-version if this is wrong");
    return pos;
}

size_t otlp_detection_failure(const struct otlp_detection *det, char *buf, size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return 0;
    buf[0] = 0;
    if (det->malformed) {
        const char *why = det->tried[0].why;
        if (strncmp(why, "malformed ", 10) == 0)
            why += 10;
        appendf(buf, len, &pos, "malformed request (in every proto layout): %s", why);
        return pos;
    }
    if (det->n_tried == 1) {
        appendf(buf, len, &pos, "does not fit the proto layout %s: %s", det->tried[0].layout->name,
                det->tried[0].why);
        return pos;
    }
    appendf(buf, len, &pos, "matches no known proto layout (tried");
    for (size_t i = 0; i < det->n_tried; i++)
        appendf(buf, len, &pos, " %s", det->tried[i].layout->name);
    appendf(buf, len, &pos, ")");
    for (size_t i = 0; i < det->n_tried; i++)
        appendf(buf, len, &pos, "%s %s: %s", i ? ";" : ":", det->tried[i].layout->name, det->tried[i].why);
    return pos;
}
