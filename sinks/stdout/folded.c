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
 * Without a root, a sample's key depends on its frames only, so samples of one resolved stack
 * (lb_sample.stack_id) share it: the key is escaped and hashed for the first of them and the
 * others only add their weight (by_stack), which is most of a big request's samples.
 */
#include <stdlib.h>
#include <string.h>

#include "sinks/stdout/internal.h"

struct slot {
    uint64_t hash;      /* 0 = empty (real hashes have the top bit set) */
    size_t off, len;    /* the key, in keys */
    int64_t weight;     /* saturating sum, like lb_sample_weight */
};

struct folded {
    enum folded_root root;
    struct slot *slots;
    size_t cap;         /* a power of two, or 0 before the first sample */
    size_t n;
    struct buf keys;    /* every distinct key, back to back */
    struct slot *by_stack;   /* [stack_id - 1]: that stack's key (hash 0: not seen yet) */
    size_t n_by_stack;
};

struct folded *folded_new(size_t max_bytes, enum folded_root root)
{
    struct folded *f = calloc(1, sizeof *f);
    if (f) {
        f->root = root;
        buf_init(&f->keys, max_bytes);
    }
    return f;
}

void folded_clear(struct folded *f)
{
    free(f->slots);
    f->slots = NULL;
    f->cap = f->n = 0;
    buf_free(&f->keys);
    free(f->by_stack);
    f->by_stack = NULL;
    f->n_by_stack = 0;
}

void folded_free(struct folded *f)
{
    if (f) {
        folded_clear(f);
        free(f);
    }
}

/* Eight bytes at a time, with a final avalanche so the low bits (the slot index) depend on
 * every byte. */
static uint64_t hash_key(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    if (n)
        memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | (1ull << 63);
}

static bool grow(struct folded *f)
{
    size_t cap = f->cap ? f->cap * 2 : 64;
    struct slot *s = calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < f->cap; i++) {
        if (!f->slots[i].hash)
            continue;
        size_t j = f->slots[i].hash & (cap - 1);
        while (s[j].hash)
            j = (j + 1) & (cap - 1);
        s[j] = f->slots[i];
    }
    free(f->slots);
    f->slots = s;
    f->cap = cap;
    return true;
}

/* One frame's name: the function of a symbolized frame, "<mapping file>+0x<address>"
 * otherwise. Escaped like everything else, which also keeps a line a line. */
static bool append_frame(struct buf *k, const struct lb_frame *fr)
{
    if (fr->symbolized)
        return esc_text(k, fr->function.p, fr->function.n);
    if (fr->has_mapping && !esc_text(k, fr->mapping_file.p, fr->mapping_file.n))
        return false;
    return buf_append(k, "+0x", 3) && put_hex64(k, fr->address);
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

/* The root frame: the attribute's string (escaped) or integer, else FOLDED_ROOT_UNKNOWN
 * (missing, empty, or of a kind that names nothing). */
static bool append_root(struct buf *k, enum folded_root root, const struct lb_sample *s)
{
    const struct lb_attr *a = root_attr(root, s);
    if (a && a->value.kind == LB_VALUE_STRING && a->value.u.str.n > 0)
        return esc_text(k, a->value.u.str.p, a->value.u.str.n);
    if (a && a->value.kind == LB_VALUE_INT)
        return put_i64(k, a->value.u.integer);
    return buf_append(k, FOLDED_ROOT_UNKNOWN, sizeof FOLDED_ROOT_UNKNOWN - 1);
}

/* The view lists frames leaf first (and a location's lines innermost first); folded stacks are
 * root first, so the whole array is walked backwards. */
static bool append_stack(struct buf *k, enum folded_root root, const struct lb_sample *s)
{
    if (root != FOLDED_ROOT_NONE &&
        (!append_root(k, root, s) || (s->n_frames > 0 && !buf_putc(k, ';'))))
        return false;
    for (size_t i = s->n_frames; i-- > 0;) {
        if (i != s->n_frames - 1 && !buf_putc(k, ';'))
            return false;
        if (!append_frame(k, &s->frames[i]))
            return false;
    }
    return true;
}

static void add_weight(struct slot *e, int64_t w)
{
    if (__builtin_add_overflow(e->weight, w, &e->weight))
        e->weight = w < 0 ? INT64_MIN : INT64_MAX;
}

/* The stack's key when it was seen before in this request and its slot, else NULL. The key
 * is taken only where writing it again would have fitted the cap with room to spare (escaping
 * reserves ahead), so a request fails on the same sample either way. */
static struct slot *known_stack(struct folded *f, const struct lb_sample *s)
{
    if (f->root != FOLDED_ROOT_NONE || s->stack_id == 0 || s->stack_id > f->n_by_stack)
        return NULL;
    const struct slot *k = &f->by_stack[s->stack_id - 1];
    if (!k->hash || f->keys.limit - f->keys.len < 16 * k->len + 1024)
        return NULL;
    for (size_t j = k->hash & (f->cap - 1); f->slots[j].hash; j = (j + 1) & (f->cap - 1))
        if (f->slots[j].hash == k->hash && f->slots[j].off == k->off)
            return &f->slots[j];
    return NULL;
}

/* Remembers where the key of a sample's stack is (best effort: no memory, no memo). */
static void remember_stack(struct folded *f, const struct lb_sample *s, const struct slot *e)
{
    if (f->root != FOLDED_ROOT_NONE || s->stack_id == 0)
        return;
    if (s->stack_id > f->n_by_stack) {
        size_t n = f->n_by_stack ? f->n_by_stack : 64;
        while (n < s->stack_id)
            n *= 2;
        struct slot *v = realloc(f->by_stack, n * sizeof *v);
        if (!v)
            return;
        memset(v + f->n_by_stack, 0, (n - f->n_by_stack) * sizeof *v);
        f->by_stack = v;
        f->n_by_stack = n;
    }
    f->by_stack[s->stack_id - 1] = (struct slot){ e->hash, e->off, e->len, 0 };
}

int folded_add(struct folded *f, const struct lb_sample *s)
{
    if (f->cap && !(f->n + 1 > f->cap / 2)) {
        struct slot *e = known_stack(f, s);
        if (e) {
            add_weight(e, lb_sample_weight(s));
            return 0;
        }
    }
    size_t start = f->keys.len;
    /* keys.data is never NULL past this point, even when every stack so far was empty */
    if (!buf_reserve(&f->keys, 1))
        return -1;
    if (!append_stack(&f->keys, f->root, s) || (f->n + 1 > f->cap / 2 && !grow(f))) {
        f->keys.len = start;
        return -1;
    }
    /* The key was written where a new one would be stored; it stays only if it is new. */
    const uint8_t *key = f->keys.data + start;
    size_t len = f->keys.len - start;
    uint64_t h = hash_key(key, len);
    int64_t w = lb_sample_weight(s);
    size_t j = h & (f->cap - 1);
    for (; f->slots[j].hash; j = (j + 1) & (f->cap - 1)) {
        struct slot *e = &f->slots[j];
        if (e->hash == h && e->len == len && memcmp(f->keys.data + e->off, key, len) == 0) {
            add_weight(e, w);
            f->keys.len = start;
            remember_stack(f, s, e);
            return 0;
        }
    }
    f->slots[j] = (struct slot){ h, start, len, w };
    f->n++;
    remember_stack(f, s, &f->slots[j]);
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

/* Whole lines in bytewise order, as the fixture's rules say: when one key is a prefix of the
 * other, the space and weight take part (a key "a" with weight 5 sorts after "a !"). Lines of
 * distinct keys always differ within the shorter line, so the tail loop is short. */
static int line_cmp(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    size_t common = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, common);
    if (c)
        return c;
    size_t xl = x->n + x->wn, yl = y->n + y->wn;
    for (size_t i = common; i < xl && i < yl; i++) {
        uint8_t u = line_at(x, i), v = line_at(y, i);
        if (u != v)
            return u < v ? -1 : 1;
    }
    return (xl > yl) - (xl < yl);
}

static void make_line(struct line *l, const struct folded *f, const struct slot *e)
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
    struct line *lines = malloc(f->n * sizeof *lines);
    if (!lines) {
        st->out.oom = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].hash)
            make_line(&lines[k++], f, &f->slots[i]);
    qsort(lines, k, sizeof *lines, line_cmp);
    for (size_t i = 0; i < k; i++) {
        out_raw(&st->out, lines[i].p, lines[i].n);
        out_raw(&st->out, lines[i].w, lines[i].wn);
        out_c(&st->out, '\n');
        stdout_maybe_flush(st);
    }
    free(lines);
}
