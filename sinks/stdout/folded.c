/*
 * folded.c - the stdout sink's FOLDED format: "root;...;leaf weight", the input of
 * flamegraph.pl, inferno and speedscope, following the rules of
 * /work/shared/fixtures/otlp/README.md (the fixture's .folded file is the reference).
 *
 * Identical stacks of one request are merged whichever resource or profile they come from and
 * the lines are sorted, so the whole request must be seen first: stacks go into a hash table
 * keyed by their folded text, and the lines are written at request_end. The table lives for
 * one request and its text is capped (max_bytes), so a hostile request makes its own request
 * fail rather than the process grow.
 *
 * With a root (--folded-root), every stack starts with the sample's executable, container or
 * thread, so one flame graph splits by it; stacks that differ in their root are different
 * lines.
 *
 * A sample is first looked up by what the decoder says of it: its stack (lb_sample.stack_id,
 * stable within a request) and its root's attribute value (the bytes the view points at, or
 * the integer). A pair seen before costs that lookup and an add. A new pair has its key
 * written (the frames' names from the text stacks.c keeps for each frame of the request) and
 * merged by its text with the others: two stacks with the same names, or two roots with the
 * same text at other places, are one line. The lines are sorted and written at the end.
 * Nothing is freed between requests (but a big request's room): tables carry the request's
 * generation.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "lib/hash.h"
#include "sinks/stdout/internal.h"

/* One line: its key (in keys) and its weight. */
struct entry {
    uint64_t hash;
    size_t off, len;
    int64_t weight;     /* saturating sum, like lb_sample_weight */
};

/* What a sample's root frame is named after, as the view gives it. */
enum root_kind { ROOT_NONE, ROOT_STRING, ROOT_INT, ROOT_UNKNOWN };
struct root_id {
    enum root_kind kind;
    const char *p;      /* STRING: the value as the view points at it */
    size_t n;
    int64_t integer;    /* INT */
};

/* A (stack, root) pair seen in this request and the entry its samples add to. */
struct seen {
    uint64_t hash;
    uint32_t gen;       /* the request it belongs to; another: the slot is empty */
    uint32_t stack_id;
    uint32_t entry;
    struct root_id root;
};

struct folded {
    enum folded_root root;
    struct entry *entries;   /* n in use, of entries_cap */
    size_t n, entries_cap;
    uint32_t *index;         /* open addressing over entries by key text: entry + 1, 0 empty */
    size_t index_cap;        /* a power of two, or 0 */
    struct buf keys;         /* every distinct key, back to back */
    struct seen *seen;       /* open addressing by (stack, root), seen_n of seen_cap in use */
    size_t seen_cap, seen_n;
    uint32_t gen;
};

/* Past these a request's tables are given back at its end rather than kept for the next. */
#define KEEP_ENTRIES 65536
#define KEEP_KEY_BYTES ((size_t)4 << 20)

struct folded *folded_new(size_t max_bytes, enum folded_root root)
{
    struct folded *f = calloc(1, sizeof *f);
    if (f) {
        f->root = root;
        f->gen = 1;   /* slots are made zeroed: generation 0 is never current */
        buf_init(&f->keys, max_bytes);
    }
    return f;
}

static void release(struct folded *f)
{
    free(f->entries);
    free(f->index);
    free(f->seen);
    buf_free(&f->keys);
    f->entries = NULL;
    f->index = NULL;
    f->seen = NULL;
    f->entries_cap = f->index_cap = f->seen_cap = 0;
}

void folded_clear(struct folded *f)
{
    if (f->entries_cap > KEEP_ENTRIES || f->keys.cap > KEEP_KEY_BYTES) {
        release(f);
    } else {
        buf_reset(&f->keys);
        if (f->n && f->index_cap)
            memset(f->index, 0, f->index_cap * sizeof *f->index);
    }
    f->n = f->seen_n = 0;
    if (++f->gen == 0) {   /* on the rare wrap, the slots are cleared */
        if (f->seen_cap)
            memset(f->seen, 0, f->seen_cap * sizeof *f->seen);
        f->gen = 1;
    }
}

void folded_free(struct folded *f)
{
    if (f) {
        release(f);
        free(f);
    }
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

/* One frame's name: the function of a symbolized frame, "<mapping file>+0x<address>"
 * otherwise. Escaped like everything else, which also keeps a line a line. */
static inline bool append_frame(struct buf *k, const struct lb_frame *fr)
{
    if (fr->symbolized)
        return esc_text(k, fr->function.p, fr->function.n);
    if (fr->has_mapping && !esc_text(k, lb_mapping_of(fr)->file.p, lb_mapping_of(fr)->file.n))
        return false;
    /* "+0x" and the address in lowercase hex written in place, with one test for room (exactly
     * the room: a buffer at its cap takes what fits as before) */
    uint64_t a = fr->address;
    size_t digits = (size_t)(64 - __builtin_clzll(a | 1) + 3) / 4;
    if (!buf_reserve(k, 3 + digits))
        return false;
    uint8_t *d = k->data + k->len;
    memcpy(d, "+0x", 3);
    for (size_t i = 3 + digits; i-- > 3; a >>= 4)
        d[i] = (uint8_t)"0123456789abcdef"[a & 15];
    k->len += 3 + digits;
    return true;
}

/* The same as stacks.c's frame renderer, so a frame's name is made once per request. */
static void frame_name(struct out *o, const struct lb_frame *fr, bool file_line)
{
    (void)file_line;
    if (!append_frame(&o->b, fr))
        o->oom = true;
}

/* The attribute a root frame is named after: on the resource, else on the sample (profilers
 * before March 2026 put process.* on samples); thread.name is a sample attribute. */
static const struct lb_attr *root_attr(enum folded_root root, const struct lb_sample *s)
{
    const char *key = root == FOLDED_ROOT_EXECUTABLE ? "process.executable.name"
                    : root == FOLDED_ROOT_CONTAINER  ? "container.id"
                    : "thread.name";
    const struct lb_attr *a = NULL;
    if (root != FOLDED_ROOT_THREAD && s->profile && s->profile->resource)
        a = lb_attrs_find(s->profile->resource->attrs, key);
    return a ? a : lb_attrs_find(s->attrs, key);
}

/* What the root frame is named after: the attribute's string or integer, else
 * FOLDED_ROOT_UNKNOWN (missing, empty, or of a kind that names nothing). */
static struct root_id root_of(enum folded_root root, const struct lb_sample *s)
{
    if (root == FOLDED_ROOT_NONE)
        return (struct root_id){ ROOT_NONE, NULL, 0, 0 };
    const struct lb_attr *a = root_attr(root, s);
    if (a && a->value.kind == LB_VALUE_STRING && a->value.u.str.n > 0)
        return (struct root_id){ ROOT_STRING, a->value.u.str.p, a->value.u.str.n, 0 };
    if (a && a->value.kind == LB_VALUE_INT)
        return (struct root_id){ ROOT_INT, NULL, 0, a->value.u.integer };
    return (struct root_id){ ROOT_UNKNOWN, NULL, 0, 0 };
}

static bool append_root(struct buf *k, const struct root_id *r)
{
    if (r->kind == ROOT_STRING)
        return esc_text(k, r->p, r->n);
    if (r->kind == ROOT_INT)
        return put_i64(k, r->integer);
    return buf_append(k, FOLDED_ROOT_UNKNOWN, sizeof FOLDED_ROOT_UNKNOWN - 1);
}

/* The view lists frames leaf first (and a location's lines innermost first); folded stacks are
 * root first, so the whole array is walked backwards. */
static bool append_stack(struct stdout_state *st, struct buf *k, const struct root_id *r,
                         const struct lb_sample *s)
{
    if (r->kind != ROOT_NONE && (!append_root(k, r) || (s->n_frames > 0 && !buf_putc(k, ';'))))
        return false;
    /* Each name is followed by its separator, the last one taken back at the end: no test for
     * the first frame in the loop. */
    for (size_t i = s->n_frames; i-- > 0;) {
        lb_str name;
        if (frame_text_kept(st, &s->frames[i], frame_name, &name)) {
            /* the kept name and its separator with one test for room and no call */
            if (!buf_reserve(k, name.n + 1)) {
                /* short of room: the last name, which needs no separator, may still fit */
                if (i || !buf_reserve(k, name.n))
                    return false;
                buf_put(k, name.p, name.n);
                return true;
            }
            buf_put(k, name.p, name.n);
            k->data[k->len++] = ';';
        } else {
            if (!append_frame(k, &s->frames[i]))
                return false;
            if (i == 0)
                return true;
            if (!buf_putc(k, ';'))
                return false;
        }
    }
    if (s->n_frames)
        k->len--;
    return true;
}

static void add_weight(struct entry *e, int64_t w)
{
    if (__builtin_add_overflow(e->weight, w, &e->weight))
        e->weight = w < 0 ? INT64_MIN : INT64_MAX;
}

static uint64_t seen_hash(uint32_t stack_id, const struct root_id *r)
{
    uint64_t h = mix(0x9e3779b97f4a7c15ull ^ r->kind, stack_id);
    if (r->kind == ROOT_STRING)
        h = mix(mix(h, (uint64_t)(uintptr_t)r->p), r->n);
    else if (r->kind == ROOT_INT)
        h = mix(h, (uint64_t)r->integer);
    return h;
}

static bool same_seen(const struct seen *e, uint64_t h, uint32_t stack_id, const struct root_id *r)
{
    return e->hash == h && e->stack_id == stack_id && e->root.kind == r->kind &&
           e->root.p == r->p && e->root.n == r->n && e->root.integer == r->integer;
}

/* The entry of a (stack, root) pair seen before in this request, else NULL. */
static struct entry *seen_entry(struct folded *f, uint64_t h, uint32_t stack_id, const struct root_id *r)
{
    if (!f->seen_cap)
        return NULL;
    for (size_t j = h & (f->seen_cap - 1); f->seen[j].gen == f->gen; j = (j + 1) & (f->seen_cap - 1))
        if (same_seen(&f->seen[j], h, stack_id, r))
            return &f->entries[f->seen[j].entry];
    return NULL;
}

static void seen_put(struct seen *v, size_t cap, const struct seen *e)
{
    size_t j = e->hash & (cap - 1);
    while (v[j].gen == e->gen)
        j = (j + 1) & (cap - 1);
    v[j] = *e;
}

/* Remembers the pair's entry (best effort: without memory the next sample writes its key). */
static void remember(struct folded *f, uint64_t h, uint32_t stack_id, const struct root_id *r, size_t entry)
{
    if ((f->seen_n + 1) * 2 > f->seen_cap) {
        size_t cap = f->seen_cap ? f->seen_cap * 2 : 64;
        struct seen *v = calloc(cap, sizeof *v);
        if (!v)
            return;
        for (size_t i = 0; i < f->seen_cap; i++)
            if (f->seen[i].gen == f->gen)
                seen_put(v, cap, &f->seen[i]);
        free(f->seen);
        f->seen = v;
        f->seen_cap = cap;
    }
    seen_put(f->seen, f->seen_cap, &(struct seen){ h, f->gen, stack_id, (uint32_t)entry, *r });
    f->seen_n++;
}

static bool index_grow(struct folded *f)
{
    size_t cap = f->index_cap ? f->index_cap * 2 : 64;
    uint32_t *v = calloc(cap, sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < f->n; i++) {
        size_t j = f->entries[i].hash & (cap - 1);
        while (v[j])
            j = (j + 1) & (cap - 1);
        v[j] = (uint32_t)(i + 1);
    }
    free(f->index);
    f->index = v;
    f->index_cap = cap;
    return true;
}

/* Where a and b first differ within n bytes (n when they do not): 32 bytes a step over the
 * common prefix (one test for four words), then the word that differs. Sorting compares lines
 * that share long prefixes (every stack of a program starts the same way), and so does the
 * test of a new key against the one in its hash slot; the C library of the static build
 * (musl) compares one byte at a time. */
static size_t mismatch(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* 32 bytes a step as two byte-wise compares whose mask names the first differing byte */
    for (; n - i >= 32; i += 32) {
        __m128i e0 = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(a + i)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(b + i)));
        __m128i e1 = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(a + i + 16)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(b + i + 16)));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(e0, e1));
        if (m != 0xffff) {
            unsigned d = ~((unsigned)_mm_movemask_epi8(e0) | (unsigned)_mm_movemask_epi8(e1) << 16);
            return i + (size_t)__builtin_ctz(d);
        }
    }
#else
    for (; n - i >= 32; i += 32) {
        uint64_t x[4], y[4];
        memcpy(x, a + i, 32);
        memcpy(y, b + i, 32);
        if ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]))
            break;
    }
#endif
    for (; n - i >= 8; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(x ^ y) / 8;   /* the first byte is the lowest */
#else
            return i + (size_t)__builtin_clzll(x ^ y) / 8;
#endif
        }
    }
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The entry of the key just written at keys[start..]: an existing one (the key is then
 * dropped) or a new one. NULL: no memory. */
static struct entry *entry_for_key(struct folded *f, size_t start)
{
    const uint8_t *key = f->keys.data + start;
    size_t len = f->keys.len - start;
    uint64_t h = hash64_lanes(key, len);   /* only the table uses it: output is sorted by text */
    size_t j = h & (f->index_cap - 1);
    for (; f->index[j]; j = (j + 1) & (f->index_cap - 1)) {
        struct entry *e = &f->entries[f->index[j] - 1];
        if (e->hash == h && e->len == len && mismatch(f->keys.data + e->off, key, len) == len) {
            f->keys.len = start;
            return e;
        }
    }
    if (f->n == f->entries_cap) {
        size_t cap = f->entries_cap ? f->entries_cap * 2 : 64;
        struct entry *v = cap < UINT32_MAX ? realloc(f->entries, cap * sizeof *v) : NULL;
        if (!v)
            return NULL;
        f->entries = v;
        f->entries_cap = cap;
    }
    f->entries[f->n] = (struct entry){ h, start, len, 0 };
    f->index[j] = (uint32_t)(f->n + 1);
    return &f->entries[f->n++];
}

int folded_add(struct folded *f, struct stdout_state *st, const struct lb_sample *s)
{
    struct root_id r = root_of(f->root, s);
    int64_t w = lb_sample_weight(s);
    uint64_t h = s->stack_id ? seen_hash(s->stack_id, &r) : 0;
    struct entry *e = s->stack_id ? seen_entry(f, h, s->stack_id, &r) : NULL;
    if (e) {
        add_weight(e, w);
        return 0;
    }
    if ((f->n + 1) * 2 > f->index_cap && !index_grow(f))
        return -1;
    size_t start = f->keys.len;
    /* keys.data is never NULL past this point, even when every stack so far was empty */
    if (!buf_reserve(&f->keys, 1))
        return -1;
    if (!append_stack(st, &f->keys, &r, s) || !(e = entry_for_key(f, start))) {
        f->keys.len = start;
        return -1;
    }
    add_weight(e, w);
    if (s->stack_id)
        remember(f, h, s->stack_id, &r, (size_t)(e - f->entries));
    return 0;
}

/* A line is its key, a space and its weight in decimal. */
struct line {
    const uint8_t *p;
    size_t n;
    char w[24];         /* " <weight>" */
    size_t wn;
};

static uint8_t line_at(const struct line *l, size_t i)
{
    return i < l->n ? l->p[i] : (uint8_t)l->w[i - l->n];
}

/* Where lines x and y first differ at or after h (they are known to agree before), and their
 * order (*order, memcmp's sign; 0 only for equal lines). Whole lines compare bytewise, as the
 * fixture's rules say: when one key is a prefix of the other, the space and weight take part
 * (a key "a" with weight 5 sorts after "a !"). Lines of distinct keys always differ within the
 * shorter line, so the tail loop is short. */
static size_t line_diff(const struct line *x, const struct line *y, size_t h, int *order)
{
    size_t common = x->n < y->n ? x->n : y->n;
    if (h < common) {
        h += mismatch(x->p + h, y->p + h, common - h);
        if (h < common) {
            *order = x->p[h] < y->p[h] ? -1 : 1;
            return h;
        }
    }
    size_t xl = x->n + x->wn, yl = y->n + y->wn;
    for (; h < xl && h < yl; h++) {
        uint8_t u = line_at(x, h), v = line_at(y, h);
        if (u != v) {
            *order = u < v ? -1 : 1;
            return h;
        }
    }
    *order = (xl > yl) - (xl < yl);
    return h;
}

/* A line in a sorted run, with the length of the prefix it shares with the line before it. */
struct ranked {
    const struct line *l;
    size_t h;
};

/* n ranked lines copied (short runs: buf_copy's copy, not the C library's) */
static void ranked_copy(struct ranked *d, const struct ranked *s, size_t n)
{
    buf_copy((uint8_t *)d, (const uint8_t *)s, n * sizeof *d);
}

/* Sorts v[0..n) (tmp: room for n) by merging, each merge knowing how far each head agrees
 * with the line last written (Ng and Kakehi's LCP merge sort): a head that agrees further is
 * the smaller without a look at the bytes, and a comparison starts where the two heads may
 * first differ. qsort compared the long shared prefixes of stacks again at every comparison:
 * the sort was a twentieth of `decode --format folded` over small requests. */
static void lcp_sort(struct ranked *v, struct ranked *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t na = n / 2, nb = n - na, i = 0, j = 0, k = 0;
    struct ranked *a = v, *b = v + na;
    lcp_sort(a, tmp, na);
    lcp_sort(b, tmp, nb);
    size_t ha = 0, hb = 0;   /* how far each head agrees with the line last written */
    while (i < na && j < nb) {
        int c = ha > hb ? -1 : ha < hb ? 1 : 0;
        size_t h = ha;
        if (c == 0)
            h = line_diff(a[i].l, b[j].l, ha, &c);
        if (c <= 0) {
            tmp[k++] = (struct ranked){ a[i].l, ha };
            if (ha == hb)
                hb = h;   /* else hb stays: b agrees with the new last line as with the old */
            ha = ++i < na ? a[i].h : 0;
        } else {
            tmp[k++] = (struct ranked){ b[j].l, hb };
            if (ha == hb)
                ha = h;
            hb = ++j < nb ? b[j].h : 0;
        }
    }
    /* the rest of a run as it is */
    if (i < na) {
        tmp[k++] = (struct ranked){ a[i].l, ha };
        ranked_copy(tmp + k, a + i + 1, na - i - 1);
        k += na - i - 1;
    }
    if (j < nb) {
        tmp[k++] = (struct ranked){ b[j].l, hb };
        ranked_copy(tmp + k, b + j + 1, nb - j - 1);
        k += nb - j - 1;
    }
    assert(k == n);
    ranked_copy(v, tmp, n);
}

static void make_line(struct line *l, const struct folded *f, const struct entry *e)
{
    char d[20];
    size_t k = sizeof d, n = 0;
    uint64_t u = e->weight < 0 ? 0 - (uint64_t)e->weight : (uint64_t)e->weight;
    do
        d[--k] = (char)('0' + u % 10);
    while (u /= 10);
    l->w[n++] = ' ';
    if (e->weight < 0)
        l->w[n++] = '-';
    memcpy(l->w + n, d + k, sizeof d - k);
    l->wn = n + sizeof d - k;
    l->p = f->keys.data + e->off;
    l->n = e->len;
}

void folded_render(struct folded *f, struct stdout_state *st)
{
    if (f->n == 0)
        return;
    size_t k = f->n;
    struct line *lines = malloc(k * (sizeof *lines + 2 * sizeof(struct ranked)));
    if (!lines) {
        st->out.oom = true;
        return;
    }
    struct ranked *order = (struct ranked *)(lines + k);
    for (size_t i = 0; i < k; i++) {
        make_line(&lines[i], f, &f->entries[i]);
        order[i] = (struct ranked){ &lines[i], 0 };
    }
    lcp_sort(order, order + k, k);
    for (size_t i = 0; i < k; i++) {
        out_raw(&st->out, order[i].l->p, order[i].l->n);
        out_raw(&st->out, order[i].l->w, order[i].l->wn);
        out_c(&st->out, '\n');
        stdout_maybe_flush(st);
    }
    free(lines);
}
