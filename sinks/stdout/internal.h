/*
 * internal.h - what the stdout sink's files share: its state and the output writer.
 *
 * stdout.c owns the I/O (buffering per request, writing, failures, the output file); text.c,
 * json.c, folded.c and spans.c only append to the request's output and ask for a flush when
 * it is full. spans.c writes spans with the pieces text.c and json.c declare here, so a span
 * block or line reads like a profile's. Not for other sinks.
 */
#ifndef LB_SINKS_STDOUT_IMPL_H
#define LB_SINKS_STDOUT_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "otlp/view.h"
#include "lib/escape.h"
#include "sinks/stdout/stdout.h"

/* The output of the current request. Appends are "sticky": a failed one (out of memory) sets
 * oom and the formatting code carries on; the request is failed when the event returns, so
 * the formatting code needs no error path per call. */
struct out {
    struct buf b;
    bool oom;
};

struct folded;

struct stdout_state {
    enum stdout_format format;
    struct stdout_sink_options opt;   /* detail switches, folded root (path: see below) */
    int fd;
    char *path;             /* the output file (owned copy), or NULL when writing to a given fd */
    size_t max_buffer;
    struct out out;
    bool streamed;          /* part of this request is already written */
    bool unknown_shown;     /* TEXT: the request's unknown fields are in its first resource block */
    bool failed;            /* this request can no longer succeed (why says why) */
    bool write_failed;      /* ... because the fd refused: don't write to it again */
    bool reader_gone;       /* a write found no reader (EPIPE): nothing is written any more */
    char why[192];
    struct folded *folded;  /* FOLDED: this request's distinct stacks */
    size_t folded_max;      /* ... and the cap on their text */
    uint64_t flushed;       /* bytes of this request already written */
    /* JSON: the parts of a line shared by every sample of a resource and of a profile, made
     * once and copied into each line. */
    struct out json_resource, json_profile;
    /* TEXT, JSON: the text of each frame and of each resolved stack of this request
     * (stacks.c); entries of another generation than gen are empty */
    uint32_t gen;
    struct out stack_text, frame_text;
    struct stack_text { size_t off, len; uint32_t gen; uint8_t state; } *stack_text_at;   /* [stack_id - 1] */
    size_t n_stack_text_at;
    struct frame_slot *frame_slots;   /* a hash table of frame_cap slots, frame_n in use */
    size_t frame_cap, frame_n;
};

/* stdout.c: write what is buffered once it reaches max_buffer (called after every line: the
 * test is inline, the write is not). */
void stdout_flush_full(struct stdout_state *st);
static inline void stdout_maybe_flush(struct stdout_state *st)
{
    if (st->out.b.len >= st->max_buffer)
        stdout_flush_full(st);
}

/* text.c: the TEXT format, one function per event. */
void text_resource_begin(struct stdout_state *st, const struct lb_resource *r);
void text_profile_begin(struct stdout_state *st, const struct lb_profile *p);
void text_sample(struct stdout_state *st, const struct lb_sample *s);
void text_profile_end(struct stdout_state *st);
void text_resource_end(struct stdout_state *st);
/* The lines that profile and span blocks (spans.c) share: `indent` then "<key>: <value>" per
 * attribute in wire order; the start "  <name>[<i>]: " of one line of a list (timestamps,
 * values, events, links); a time as Go prints it; "  Scope: <name> <version>" (nothing when
 * the scope has neither). */
void text_attrs(struct stdout_state *st, const char *indent, struct lb_attrs attrs);
void text_indexed(struct out *o, const char *name, size_t i);
void text_time(struct out *o, uint64_t unix_nano);
void text_scope(struct out *o, const struct lb_scope *sc);
/* An attribute value as the text format prints it; ARRAY and KVLIST as compact JSON. */
void text_value(struct out *o, const struct lb_value *v);
/* Any value as JSON. A list that cannot be walked whole (malformed, nested too deep) shows
 * what was read, then "…<reason>" inside the brackets: fine in text, not valid JSON. */
void json_value(struct out *o, const struct lb_value *v);
/* The same, always valid JSON: a list that cannot be walked whole is closed after what was
 * read, and the reason is returned (NULL when the value was complete). */
const char *json_value_strict(struct out *o, const struct lb_value *v);

/* json.c: the JSON format (docs/output.md). The resource
 * prefix ({"request":..,"resource":..,) starts span lines (spans.c) as well as sample lines. */
void json_resource_begin(struct stdout_state *st, const struct lb_resource *r);
void json_profile_begin(struct stdout_state *st, const struct lb_profile *p);
/* A request's JSON output may be JSON_BUDGET_FACTOR times its decoded size plus
 * JSON_BUDGET_BASE. Ordinary requests stay far below (each sample's stack is written out, so
 * 10-50x is usual); the cap stops a huge header repeated into every line from filling a disk. */
#define JSON_BUDGET_FACTOR 256
#define JSON_BUDGET_BASE ((uint64_t)64 << 20)
/* False, with the request failed (st->failed, st->why), once the JSON output of request `r`
 * passed its cap. */
bool json_within_budget(struct stdout_state *st, const struct lb_request *r);
/* One sample line; false when the request's output passed its cap (json_within_budget). */
bool json_sample(struct stdout_state *st, const struct lb_sample *s);
/* The parts of a line that sample and span lines share: an attribute list, a time as an
 * RFC 3339 string, bytes as a hex string, the "scope":{..}, object (span lines also carry
 * the scope's schema_url; sample lines never had it). */
void json_attrs(struct out *o, struct lb_attrs attrs);
void json_time(struct out *o, uint64_t unix_nano);
void json_hex(struct out *o, lb_str bytes);
void json_scope(struct out *o, const struct lb_scope *sc, bool schema_url);

/* stacks.c: writes the frames of sample `s` into the output, each as `render` writes it and
 * `sep` (0: nothing) between two, from the text kept for them in this request when there is
 * some (made by `render` the first time the request shows that frame or stack). */
typedef void frame_renderer(struct out *o, const struct lb_frame *f, bool file_line);
void stack_write(struct stdout_state *st, const struct lb_sample *s, frame_renderer *render, char sep);
/* Forgets the request's frames and stacks; `release` also gives their memory back. */
void stack_text_clear(struct stdout_state *st, bool release);

/* A kept frame text: the slot of the table (stdout_state.frame_slots) that says where it is. */
struct frame_slot {
    uint64_t key;              /* location_index << 16 | line_index */
    uint32_t gen;              /* the request it belongs to; another: the slot is empty */
    uint32_t len;
    size_t off;                /* in frame_text */
    /* What must also match: the decoder gives a location one index for the whole request,
     * these guard the cache against a source that would not (the text is then written). */
    const char *function, *file;
    uint64_t address;
    int64_t line;
};

static inline uint64_t frame_key(const struct lb_frame *f)
{
    return (uint64_t)f->location_index << 16 | f->line_index;
}

static inline size_t frame_home(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* The slot of frame `f` in this request; NULL with *absent when the request has not shown it
 * yet, NULL alone when its index names another frame (its text is then not kept). Inline:
 * the folded format looks up every frame of every new stack, and the call was a tenth of it. */
static inline const struct frame_slot *frame_slot_find(const struct stdout_state *st, const struct lb_frame *f,
                                                       bool *absent)
{
    uint64_t key = frame_key(f);
    *absent = true;
    if (!st->frame_cap)
        return NULL;
    for (size_t j = frame_home(key, st->frame_cap); st->frame_slots[j].gen == st->gen;
         j = (j + 1) & (st->frame_cap - 1)) {
        const struct frame_slot *e = &st->frame_slots[j];
        if (e->key != key)
            continue;
        *absent = false;
        if (e->function == f->function.p && e->file == f->file.p && e->address == f->address &&
            e->line == f->line)
            return e;
        return NULL;
    }
    return NULL;
}

/* The text of a frame the request has not shown yet, made by `render` and kept; NULL when it
 * cannot be kept (the cap, no memory). */
const struct frame_slot *frame_text_make(struct stdout_state *st, const struct lb_frame *f, frame_renderer *render);

/* The text `render` writes for frame `f`, kept for the request (made the first time); false
 * when it is not kept (the cap, no memory, an index naming another frame): the caller writes
 * it. A sink keeps one renderer's text: the one of its format. */
static inline bool frame_text_kept(struct stdout_state *st, const struct lb_frame *f, frame_renderer *render,
                                   lb_str *text)
{
    bool absent;
    const struct frame_slot *e = frame_slot_find(st, f, &absent);
    if (absent)
        e = frame_text_make(st, f, render);
    if (!e)
        return false;
    /* an empty name may have nothing to point into */
    *text = e->len ? (lb_str){ (const char *)st->frame_text.b.data + e->off, e->len } : LB_STR_NULL;
    return true;
}

/* folded.c: the FOLDED format. The table holds at most max_bytes of stack text; every stack
 * gets `root` as its first frame. */
struct folded *folded_new(size_t max_bytes, enum folded_root root);
void folded_free(struct folded *f);
/* Adds one sample (frame names kept in st's frame texts); -1 when the table is full (the
 * request must fail). */
int folded_add(struct folded *f, struct stdout_state *st, const struct lb_sample *s);
/* Appends the sorted lines to st's output (flushing as it goes). */
void folded_render(struct folded *f, struct stdout_state *st);
/* Empties the table for the next request (a big one's memory is given back). */
void folded_clear(struct folded *f);

/* ---- appending to the output without printf (this runs for every frame) ---- */

/* v in decimal at p (room for 20 digits); returns the length. */
static inline size_t fmt_u64(char *p, uint64_t v)
{
    char t[20];
    size_t k = sizeof t;
    do
        t[--k] = (char)('0' + v % 10);
    while (v /= 10);
    memcpy(p, t + k, sizeof t - k);
    return sizeof t - k;
}

static inline bool put_u64(struct buf *b, uint64_t v)
{
    char t[20];
    size_t k = sizeof t;
    do
        t[--k] = (char)('0' + v % 10);
    while (v /= 10);
    return buf_append(b, t + k, sizeof t - k);
}

static inline bool put_i64(struct buf *b, int64_t v)
{
    if (v < 0)
        return buf_putc(b, '-') && put_u64(b, 0 - (uint64_t)v);
    return put_u64(b, (uint64_t)v);
}

/* Lowercase hex, no padding, no prefix. */
static inline bool put_hex64(struct buf *b, uint64_t v)
{
    char t[16];
    size_t k = sizeof t;
    do
        t[--k] = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    return buf_append(b, t + k, sizeof t - k);
}

/* Bytes as lowercase hex, two digits each. */
static inline bool put_hexbytes(struct buf *b, const void *p, size_t n)
{
    const uint8_t *s = p;
    if (n > SIZE_MAX / 2 || !buf_reserve(b, 2 * n))
        return false;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = (uint8_t)"0123456789abcdef"[s[i] >> 4];
        b->data[b->len++] = (uint8_t)"0123456789abcdef"[s[i] & 15];
    }
    return true;
}

/* The fast path copies in place (literals have a constant size, so the copy is inlined);
 * buf_append only when the buffer must grow. */
static inline void out_raw(struct out *o, const void *p, size_t n)
{
    if (n <= o->b.cap - o->b.len) {
        if (n)   /* no data yet: NULL + 0 is not to be computed */
            buf_put(&o->b, p, n);
    } else if (!buf_append(&o->b, p, n)) {
        o->oom = true;
    }
}
/* `s` must be a string literal (the "" makes anything else a compile error: a conditional
 * expression would have a pointer's size). */
#define OUT_LIT(o, s) out_raw((o), "" s, sizeof("" s) - 1)

static inline void out_c(struct out *o, char c)
{
    if (o->b.len < o->b.cap)
        o->b.data[o->b.len++] = (uint8_t)c;
    else if (!buf_putc(&o->b, c))
        o->oom = true;
}

/* A string from the wire: always through the escaper. */
static inline void out_esc(struct out *o, lb_str s)
{
    if (!esc_text(&o->b, s.p, s.n))
        o->oom = true;
}

/* A string from the wire inside a JSON document, quotes included. */
static inline void out_json_str(struct out *o, lb_str s)
{
    if (!esc_json_quoted(&o->b, s.p, s.n))
        o->oom = true;
}

static inline void out_u64(struct out *o, uint64_t v) { if (!put_u64(&o->b, v)) o->oom = true; }
static inline void out_i64(struct out *o, int64_t v) { if (!put_i64(&o->b, v)) o->oom = true; }
static inline void out_hex64(struct out *o, uint64_t v) { if (!put_hex64(&o->b, v)) o->oom = true; }
static inline void out_hexbytes(struct out *o, lb_str s) { if (!put_hexbytes(&o->b, s.p, s.n)) o->oom = true; }

#endif
