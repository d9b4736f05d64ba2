/*
 * top.c - `lazybackend top`: the heaviest functions (or frame types, executables,
 * containers, threads) as a table, with their self and total weight.
 *
 * Self counts where the entry is the leaf frame, total every stack it appears in, once per
 * stack however often it recurs, so a recursive function never passes 100%. Sorted by weight
 * then name, so the same database always prints the same table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/query/query.h"

struct top_row {
    uint32_t key;
    int64_t self, total;
    int64_t first, second;   /* the sort keys: (self, total) or (total, self) */
    const char *name;        /* the last one */
};

/* Heaviest first, names in byte order among equals, so the table is deterministic. */
static int cmp_top(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    if (x->first != y->first)
        return x->first > y->first ? -1 : 1;
    if (x->second != y->second)
        return x->second > y->second ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Adds one item's weight: self to its leaf's key, total once to each distinct key of the stack. */
static int top_add_frames(const struct qopts *o, struct qresult *r, const struct agg_entry *it, int64_t *self, int64_t *total,
                          bool *seen, uint32_t **keys, size_t *kcap)
{
    const struct qstack *s = &r->stacks[it->k[0]];
    bool by_type = o->by == BY_FRAME_TYPE;
    if (s->n == 0)
        return 0;
    if (s->n > *kcap) {
        uint32_t *v = realloc(*keys, s->n * sizeof *v);
        if (!v)
            return qresult_oom(r);
        *keys = v;
        *kcap = s->n;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        const struct qframe *f = &r->frames[r->stack_frames[s->off + i]];
        (*keys)[i] = by_type ? f->type : f->name;
    }
    self[(*keys)[0]] = sat_add(self[(*keys)[0]], it->w);
    seen[(*keys)[0]] = true;
    qsort(*keys, s->n, sizeof **keys, cmp_u32);
    for (uint32_t i = 0; i < s->n; i++) {
        if (i > 0 && (*keys)[i] == (*keys)[i - 1])
            continue;
        total[(*keys)[i]] = sat_add(total[(*keys)[i]], it->w);
        seen[(*keys)[i]] = true;
    }
    return 0;
}

static const char *by_heading(enum by by)
{
    switch (by) {
    case BY_FUNCTION: return "FUNCTION";
    case BY_FRAME_TYPE: return "FRAME TYPE";
    case BY_EXECUTABLE: return "EXECUTABLE";
    case BY_CONTAINER: return "CONTAINER";
    case BY_THREAD: return "THREAD";
    }
    return "";
}

static double pct(int64_t part, int64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static const char *by_name(enum by by)
{
    switch (by) {
    case BY_FUNCTION: return "function";
    case BY_FRAME_TYPE: return "frame-type";
    case BY_EXECUTABLE: return "executable";
    case BY_CONTAINER: return "container";
    case BY_THREAD: return "thread";
    }
    return "";
}

/* The same rows as the table, as one JSON object (docs/queries.md). */
static int top_json(const struct qopts *o, struct qresult *r, const struct top_row *rows, size_t nr, FILE *out)
{
    struct buf b;
    buf_init(&b, SIZE_MAX);
    bool ok = q_json_head(&b, o, r) && buf_printf(&b, ",\"by\":\"%s\",\"order\":\"%s\",\"limit\":%zu,\"rows\":[",
                                                  by_name(o->by), o->total ? "total" : "self", o->limit);
    for (size_t i = 0; ok && i < nr && (o->limit == 0 || i < o->limit); i++)
        ok = buf_printf(&b, "%s{\"name\":", i ? "," : "") && q_json_name(&b, rows[i].name) &&
             buf_printf(&b, ",\"self\":%lld,\"self_percent\":", (long long)rows[i].self) &&
             q_json_double(&b, pct(rows[i].self, r->total_w)) &&
             buf_printf(&b, ",\"total\":%lld,\"total_percent\":", (long long)rows[i].total) &&
             q_json_double(&b, pct(rows[i].total, r->total_w)) && buf_putc(&b, '}');
    ok = ok && buf_printf(&b, "]}\n");
    return q_json_finish(r, &b, ok, out);
}

int q_out_top(const struct qopts *o, struct qresult *r, FILE *out)
{
    size_t n = r->names.n;
    int64_t *self = calloc(n ? n : 1, sizeof *self), *total = calloc(n ? n : 1, sizeof *total);
    bool *seen = calloc(n ? n : 1, sizeof *seen);
    uint32_t *keys = NULL;
    size_t kcap = 0;
    struct top_row *rows = NULL;
    const struct group_attr *group = q_group_attr(o);
    int rc = -1;
    if (!self || !total || !seen) {
        qresult_oom(r);
        goto done;
    }
    for (size_t i = 0; i < r->items.n; i++) {
        const struct agg_entry *it = &r->items.v[i];
        if (group) {
            uint32_t g = (uint32_t)it->k[1];
            self[g] = sat_add(self[g], it->w);
            total[g] = sat_add(total[g], it->w);
            seen[g] = true;
        } else if (top_add_frames(o, r, it, self, total, seen, &keys, &kcap) != 0) {
            goto done;
        }
    }
    size_t nr = 0;
    rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows) {
        qresult_oom(r);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (seen[i])
            rows[nr++] = (struct top_row){ (uint32_t)i, self[i], total[i], o->total ? total[i] : self[i],
                                           o->total ? self[i] : total[i], r->names.v[i] };
    qsort(rows, nr, sizeof *rows, cmp_top);
    if (o->format == QFORMAT_JSON) {
        rc = top_json(o, r, rows, nr, out);
        goto done;
    }
    fprintf(out, "# %" PRIu64 " samples, weight %lld", r->n_samples, (long long)r->total_w);
    if (r->unit_type)
        fprintf(out, " (%s/%s)", r->unit_type, r->unit_unit);
    else if (r->any_unit)
        fprintf(out, " (mixed sample types: choose one with --sample-type)");
    fprintf(out, ", heaviest %s first\n", o->total ? "total" : "self");
    fprintf(out, "%12s %7s %12s %7s  %s\n", "SELF", "SELF%", "TOTAL", "TOTAL%", by_heading(o->by));
    for (size_t i = 0; i < nr && (o->limit == 0 || i < o->limit); i++)
        fprintf(out, "%12lld %6.2f%% %12lld %6.2f%%  %s\n", (long long)rows[i].self, pct(rows[i].self, r->total_w),
               (long long)rows[i].total, pct(rows[i].total, r->total_w), r->names.v[rows[i].key]);
    rc = 0;
done:
    free(self);
    free(total);
    free(seen);
    free(keys);
    free(rows);
    return rc;
}
