/*
 * test_entry_flat.c - the fast path's reader of scalars-only dictionary entries
 * (otlp/entry_flat.c) against decode_checked (layout_entry_checked), which it stands in for:
 * for every layout and every entry message it takes, both must accept the same bytes and store
 * the same values. The entries are built from each layout's own wire table (valid ones), then
 * broken by hand at each check (a field the layout lacks, a wrong wire type, an int32 that does
 * not fit, a packed run cut short, a Line with an unknown field, tags and lengths past the end)
 * and by 20,000 seeded random mutations a message.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "otlp/layout.h"
#include "otlp/pbwrite.h"
#include "otlp/wire.h"
#include "test/unit/check.h"

/* What either reader stored, whatever the message: the raw structs with their vectors. */
struct stored {
    union {
        struct raw_location loc;
        struct raw_function fn;
        struct raw_stack st;
        struct raw_mapping map;
        struct raw_link link;
        struct raw_attribute_unit unit;
    } u;
    ivec idx;
    linevec lines;
};

static void stored_reset(struct stored *s, enum wmsg m)
{
    memset(&s->u, 0, sizeof s->u);
    VEC_RESET(s->idx);
    VEC_RESET(s->lines);
    if (m == WM_LOCATION) {
        s->u.loc.lines = &s->lines;
        s->u.loc.attribute_indices = &s->idx;
    } else if (m == WM_MAPPING) {
        s->u.map.attribute_indices = &s->idx;
    } else if (m == WM_STACK) {
        s->u.st.location_indices = &s->idx;
    }
}

/* The same values stored: the structs byte for byte once their vector pointers are made the
 * same (both were zeroed whole, padding included), and the vectors' contents. */
static bool stored_same(const struct stored *a, const struct stored *b, enum wmsg m)
{
    if (a->idx.n != b->idx.n || a->lines.n != b->lines.n)
        return false;
    if (a->idx.n && memcmp(a->idx.v, b->idx.v, a->idx.n * sizeof *a->idx.v) != 0)
        return false;
    for (size_t i = 0; i < a->lines.n; i++)
        if (a->lines.v[i].function_index != b->lines.v[i].function_index ||
            a->lines.v[i].line != b->lines.v[i].line || a->lines.v[i].column != b->lines.v[i].column)
            return false;
    struct stored x = *a;
    if (m == WM_LOCATION) {
        x.u.loc.lines = b->u.loc.lines;
        x.u.loc.attribute_indices = b->u.loc.attribute_indices;
    } else if (m == WM_MAPPING) {
        x.u.map.attribute_indices = b->u.map.attribute_indices;
    } else if (m == WM_STACK) {
        x.u.st.location_indices = b->u.st.location_indices;
    }
    return memcmp(&x.u, &b->u, sizeof x.u) == 0;
}

static struct stored fast_out, ref_out;
static unsigned compared, accepted;

/* Both readers over `p`; true when they agree. */
static bool agree(const struct otlp_layout *layout, enum wmsg m, const uint8_t *p, size_t n)
{
    const char *why = NULL;
    stored_reset(&fast_out, m);
    stored_reset(&ref_out, m);
    bool f = layout_entry_flat_checked(layout, (int)m, (pb_ref_t){ p, n }, &fast_out.u);
    bool r = layout_entry_checked(layout, (int)m, (pb_ref_t){ p, n }, &ref_out.u, &why);
    compared++;
    accepted += r;
    if (f != r) {
        printf("#   %s %s (%zu bytes): flat reader %s, decode_checked %s (%s)\n", layout->name,
               layout->wire->m[m]->name, n, f ? "accepts" : "refuses", r ? "accepts" : "refuses",
               why ? why : "");
        return false;
    }
    if (r && !stored_same(&fast_out, &ref_out, m)) {
        printf("#   %s %s (%zu bytes): different values stored\n", layout->name, layout->wire->m[m]->name, n);
        return false;
    }
    return true;
}

/* A valid message `m` from the layout's table: every field it has, one value of its kind. */
static void build(const struct wire_schema *w, enum wmsg m, struct buf *out, uint64_t salt)
{
    const struct wmsg_desc *d = w->m[m];
    for (unsigned k = 1; k <= WMAX_FIELD; k++) {
        const struct wfield *f = &d->f[k];
        uint8_t run[4] = { 1, (uint8_t)(2 + salt % 5), 0x85, 0x01 };
        switch ((enum wkind)f->kind) {
        case W_VARINT: pbw_uint(out, k, 1 + (salt + k) % 300); break;
        case W_I64: pbw_fixed64(out, k, 0x1234 + salt); break;
        case W_I32: pbw_tag(out, k, WT_I32); buf_append(out, "\1\2\3\4", 4); break;
        case W_BYTES: pbw_bytes(out, k, "abc", 3); break;
        case W_PVARINT: pbw_bytes(out, k, run, salt % 2 ? 4 : 2); break;
        case W_PI64: pbw_fixed64(out, k, 7); break;
        case W_MSG:
            if (f->msg == WM_LINE) {
                for (unsigned l = 0; l < 2; l++) {
                    struct buf line;
                    buf_init(&line, 1 << 16);
                    build(w, WM_LINE, &line, salt + l);
                    pbw_msg(out, k, &line);
                    buf_free(&line);
                }
            }
            break;
        default: break;
        }
    }
}

static const enum wmsg entries[] = { WM_LOCATION, WM_FUNCTION, WM_STACK, WM_MAPPING, WM_LINK, WM_ATTRIBUTE_UNIT };

TEST(the_scalar_entries_are_flat)
{
    for (unsigned i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        const struct otlp_layout *l = otlp_layouts[i];
        CHECK(layout_entry_flat(l, WM_LOCATION));
        CHECK(layout_entry_flat(l, WM_FUNCTION));
        CHECK(layout_entry_flat(l, WM_MAPPING));
        CHECK(layout_entry_flat(l, WM_STACK) == layout_has_stacks(l));
        CHECK(!layout_entry_flat(l, WM_KEY_VALUE_AND_UNIT));   /* an AnyValue */
        CHECK(!layout_entry_flat(l, WM_SAMPLE));               /* values and timestamps */
        CHECK(!layout_entry_flat(l, -1) && !layout_entry_flat(l, WM_COUNT));
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

TEST(both_readers_agree)
{
    struct buf b, x;
    buf_init(&b, 1 << 16);
    buf_init(&x, 1 << 16);
    unsigned bad = 0;
    for (unsigned i = 0; i < OTLP_LAYOUT_COUNT; i++) {
        const struct otlp_layout *l = otlp_layouts[i];
        for (size_t e = 0; e < sizeof entries / sizeof entries[0]; e++) {
            enum wmsg m = entries[e];
            if (!layout_entry_flat(l, (int)m))
                continue;
            buf_reset(&b);
            build(l->wire, m, &b, 0);
            unsigned before = accepted;
            bad += !agree(l, m, b.data, b.len);
            CHECK_EQ_INT(accepted - before, 1);   /* the table's own message is valid */
            /* by hand: each appended to the valid message */
            static const uint8_t breaks[][12] = {
                { 3, 0xf8, 0x01, 0x00 },                      /* field 31: no message has it */
                { 2, 0x00, 0x00 },                            /* field 0 */
                { 2, 0x0b, 0x00 },                            /* wire type 3 */
                { 10, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },   /* big varint */
                { 10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 },   /* tag never ends */
                { 3, 0x0a, 0x05, 0x01 },                      /* length past the end */
                { 4, 0x22, 0x02, 0x81, 0x81 },                /* field 4 packed, cut short */
                { 4, 0x2a, 0x02, 0x81, 0x81 },                /* field 5 packed, cut short */
                { 4, 0x1a, 0x02, 0x48, 0x01 },                /* field 3 LEN holding field 9 */
                { 8, 0x1a, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10 },   /* field 3 holding an int32 past 32 bits */
                { 2, 0x09, 0x01 },                            /* I64 cut short */
                { 2, 0x15, 0x01 },                            /* I32 cut short */
                { 6, 0x08, 0x80, 0x80, 0x80, 0x80, 0x10 },    /* int32 past 32 bits */
                { 2, 0x10, 0x05 },                            /* field 2 as a varint */
                { 2, 0x18, 0x05 },                            /* field 3 as a varint */
                { 3, 0x22, 0x01, 0x05 },                      /* field 4 packed, one value */
            };
            for (size_t k = 0; k < sizeof breaks / sizeof breaks[0]; k++) {
                buf_reset(&x);
                buf_append(&x, b.data, b.len);
                buf_append(&x, breaks[k] + 1, breaks[k][0]);
                bad += !agree(l, m, x.data, x.len);
                bad += !agree(l, m, breaks[k] + 1, breaks[k][0]);
            }
            for (unsigned r = 0; r < 20000; r++) {
                buf_reset(&x);
                build(l->wire, m, &x, next() % 7);
                unsigned edits = 1 + next() % 3;
                for (unsigned k = 0; k < edits && x.len; k++) {
                    size_t at = next() % x.len;
                    switch (next() % 4) {
                    case 0: x.data[at] = (uint8_t)next(); break;
                    case 1: x.data[at] ^= (uint8_t)(1u << (next() % 8)); break;
                    case 2: x.len = at; break;
                    default: x.data[at] = (uint8_t)(next() % 2 ? 0xff : 0x7f); break;
                    }
                }
                bad += !agree(l, m, x.data, x.len);
                if (bad > 5)
                    break;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(compared > 200000);
    CHECK(accepted > compared / 20);   /* the mutations are not all refused */
    printf("#   %u entries compared, %u accepted\n", compared, accepted);
    buf_free(&b);
    buf_free(&x);
}

int main(void)
{
    RUN(the_scalar_entries_are_flat);
    RUN(both_readers_agree);
    VEC_FREE(fast_out.idx);
    VEC_FREE(fast_out.lines);
    VEC_FREE(ref_out.idx);
    VEC_FREE(ref_out.lines);
    return check_done();
}
