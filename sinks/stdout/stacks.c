/*
 * stacks.c - the text of each resolved stack of a request, made once and copied into every
 * sample of that stack (text and JSON formats).
 *
 * The decoder resolves a stack once per request and tells which samples share it
 * (lb_sample.stack_id); escaping and formatting its frames again for each of them was most of
 * the cost of text and JSON output. The copy is byte for byte what writing the frames would
 * have produced, so the output does not change; the kept text is capped per request, and past
 * the cap frames are written as they come.
 */
#include <stdlib.h>
#include <string.h>

#include "sinks/stdout/internal.h"

/* The text of a request's stacks together stays below this; past it, frames are written
 * one by one as before (the output is the same, only slower). */
#define STACK_TEXT_MAX ((size_t)32 << 20)

bool stack_text_copy(struct stdout_state *st, const struct lb_sample *s, stack_renderer *render)
{
    if (s->stack_id == 0)
        return false;
    if (s->stack_id > st->n_stack_text_at) {
        size_t n = st->n_stack_text_at ? st->n_stack_text_at : 64;
        while (n < s->stack_id)
            n *= 2;
        struct stack_text *v = realloc(st->stack_text_at, n * sizeof *v);
        if (!v)
            return false;
        memset(v + st->n_stack_text_at, 0, (n - st->n_stack_text_at) * sizeof *v);
        st->stack_text_at = v;
        st->n_stack_text_at = n;
    }
    struct stack_text *k = &st->stack_text_at[s->stack_id - 1];
    if (!k->known) {
        struct out *c = &st->stack_text;
        if (c->b.len > STACK_TEXT_MAX)
            return false;
        size_t start = c->b.len;
        render(c, s, !st->opt.no_file_line);
        if (c->oom) {
            c->b.len = start;
            c->oom = false;
            return false;
        }
        *k = (struct stack_text){ start, c->b.len - start, true };
    }
    if (k->len)   /* an empty stack may have nothing to point into */
        out_raw(&st->out, st->stack_text.b.data + k->off, k->len);
    stdout_maybe_flush(st);
    return true;
}

void stack_text_clear(struct stdout_state *st, bool release)
{
    if (release) {
        buf_free(&st->stack_text.b);
        free(st->stack_text_at);
        st->stack_text_at = NULL;
        st->n_stack_text_at = 0;
    } else {
        buf_reset(&st->stack_text.b);
        if (st->n_stack_text_at)
            memset(st->stack_text_at, 0, st->n_stack_text_at * sizeof *st->stack_text_at);
    }
    st->stack_text.oom = false;
}
