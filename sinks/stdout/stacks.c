/*
 * stacks.c - the text of each frame and of each resolved stack of a request, made once and
 * copied wherever it is written again (text and JSON formats).
 *
 * The decoder resolves a location once per request and a stack once per request, and says
 * which frames are the same location (lb_frame.location_index, line_index) and which samples
 * share a stack (lb_sample.stack_id). Escaping and formatting the same frames again for each
 * sample was most of the cost of text and JSON output. Two levels are kept:
 *   - a frame's text, the first time the request shows that frame (a hash table keyed by
 *     location and line): a stack seen for the first time is its frames' texts copied;
 *   - a stack's text, made from its frames' the second time the request shows that stack,
 *     and copied whole for every later sample of it (a request seen whole once, like a small
 *     one whose stacks mostly differ, never pays for it).
 * Every copy is byte for byte what writing the frames would have produced, so the output does
 * not change. The kept text is capped per request; past the cap frames are written as they
 * come. Nothing is cleared between requests: entries carry the request's generation, and an
 * entry of an older one counts as empty.
 */
#include <stdlib.h>
#include <string.h>

#include "sinks/stdout/internal.h"

/* The text of a request's stacks, and of its frames, each stays below this; past it, frames
 * are written one by one as before (the output is the same, only slower). */
#define STACK_TEXT_MAX ((size_t)32 << 20)
#define FRAME_TEXT_MAX ((size_t)32 << 20)

enum { STACK_SEEN = 1, STACK_KEPT = 2 };

static bool frames_grow(struct stdout_state *st)
{
    size_t cap = st->frame_cap ? st->frame_cap * 2 : 256;
    struct frame_slot *v = calloc(cap, sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < st->frame_cap; i++) {
        const struct frame_slot *e = &st->frame_slots[i];
        if (e->gen != st->gen)
            continue;
        size_t j = frame_home(e->key, cap);
        while (v[j].gen == st->gen)
            j = (j + 1) & (cap - 1);
        v[j] = *e;
    }
    free(st->frame_slots);
    st->frame_slots = v;
    st->frame_cap = cap;
    return true;
}

/* The kept text of frame `f`, made by `render` the first time; NULL when it cannot be kept
 * (the cap, no memory, an index that does not name the same frame). */
static const struct frame_slot *frame_text(struct stdout_state *st, const struct lb_frame *f,
                                           frame_renderer *render)
{
    bool absent;
    const struct frame_slot *e = frame_slot_find(st, f, &absent);
    return absent ? frame_text_make(st, f, render) : e;
}

const struct frame_slot *frame_text_make(struct stdout_state *st, const struct lb_frame *f, frame_renderer *render)
{
    uint64_t key = frame_key(f);
    struct out *c = &st->frame_text;
    if (c->b.len > FRAME_TEXT_MAX || ((st->frame_n + 1) * 2 > st->frame_cap && !frames_grow(st)))
        return NULL;
    size_t start = c->b.len;
    render(c, f, !st->opt.no_file_line);
    if (c->oom || c->b.len - start > UINT32_MAX) {
        c->b.len = start;
        c->oom = false;
        return NULL;
    }
    size_t j = frame_home(key, st->frame_cap);
    while (st->frame_slots[j].gen == st->gen)
        j = (j + 1) & (st->frame_cap - 1);
    st->frame_slots[j] = (struct frame_slot){ key, st->gen, (uint32_t)(c->b.len - start), start,
                                              f->function.p, f->file.p, f->address, f->line };
    st->frame_n++;
    return &st->frame_slots[j];
}

/* The frames of `s` appended to `o`, `sep` between them; the sink's output is flushed as it
 * fills (o is then st->out). */
static void write_frames(struct stdout_state *st, struct out *o, const struct lb_sample *s,
                         frame_renderer *render, char sep)
{
    for (size_t i = 0; i < s->n_frames; i++) {
        if (i && sep)
            out_c(o, sep);
        const struct frame_slot *e = frame_text(st, &s->frames[i], render);
        if (e)
            out_raw(o, st->frame_text.b.data + e->off, e->len);
        else
            render(o, &s->frames[i], !st->opt.no_file_line);
        if (o == &st->out)
            stdout_maybe_flush(st);
    }
}

/* The slot of the sample's stack, NULL when it has none (no id, no memory). */
static struct stack_text *stack_slot(struct stdout_state *st, const struct lb_sample *s)
{
    if (s->stack_id == 0)
        return NULL;
    if (s->stack_id > st->n_stack_text_at) {
        size_t n = st->n_stack_text_at ? st->n_stack_text_at : 64;
        while (n < s->stack_id)
            n *= 2;
        struct stack_text *v = realloc(st->stack_text_at, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + st->n_stack_text_at, 0, (n - st->n_stack_text_at) * sizeof *v);
        st->stack_text_at = v;
        st->n_stack_text_at = n;
    }
    struct stack_text *k = &st->stack_text_at[s->stack_id - 1];
    if (k->gen != st->gen)
        *k = (struct stack_text){ 0, 0, st->gen, 0 };
    return k;
}

void stack_write(struct stdout_state *st, const struct lb_sample *s, frame_renderer *render, char sep)
{
    struct stack_text *k = stack_slot(st, s);
    if (k && k->state == STACK_SEEN && st->stack_text.b.len <= STACK_TEXT_MAX) {
        struct out *c = &st->stack_text;
        size_t start = c->b.len;
        write_frames(st, c, s, render, sep);
        if (c->oom) {
            c->b.len = start;
            c->oom = false;
        } else {
            k->off = start;
            k->len = c->b.len - start;
            k->state = STACK_KEPT;
        }
    }
    if (k && k->state == STACK_KEPT) {
        if (k->len)   /* an empty stack may have nothing to point into */
            out_raw(&st->out, st->stack_text.b.data + k->off, k->len);
        stdout_maybe_flush(st);
        return;
    }
    if (k)
        k->state = STACK_SEEN;
    write_frames(st, &st->out, s, render, sep);
}

void stack_text_clear(struct stdout_state *st, bool release)
{
    if (release) {
        buf_free(&st->stack_text.b);
        buf_free(&st->frame_text.b);
        free(st->stack_text_at);
        st->stack_text_at = NULL;
        st->n_stack_text_at = 0;
        free(st->frame_slots);
        st->frame_slots = NULL;
        st->frame_cap = 0;
    } else {
        buf_reset(&st->stack_text.b);
        buf_reset(&st->frame_text.b);
    }
    st->stack_text.oom = st->frame_text.oom = false;
    st->frame_n = 0;
    /* A new generation empties every slot at once; on the rare wrap they are cleared. */
    if (++st->gen == 0) {
        if (st->n_stack_text_at)
            memset(st->stack_text_at, 0, st->n_stack_text_at * sizeof *st->stack_text_at);
        if (st->frame_cap)
            memset(st->frame_slots, 0, st->frame_cap * sizeof *st->frame_slots);
        st->gen = 1;
    }
}
