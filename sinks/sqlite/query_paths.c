/*
 * query_paths.c - `lazybackend folded` and `lazybackend flamegraph`: each summed item as a
 * path of frames, root first (its group first with --root), then either as folded lines or
 * as the flame graph's input (flamegraph.c draws it).
 *
 * Folded lines are made and sorted as the stdout sink's folded format makes them, so folded
 * over one stored request prints what that sink printed for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "sinks/sqlite/internal.h"

/* ---------- paths: root first ---------- */

/* The item's frames root first (its group first when there is one) into *out. */
static int item_path(struct q *q, const struct agg_entry *it, struct fg_elem **out, size_t *cap, size_t *n)
{
    const struct qstack *s = &q->stacks[it->k[0]];
    size_t need = s->n + 1;
    if (need > *cap) {
        struct fg_elem *v = realloc(*out, need * sizeof *v);
        if (!v)
            return qoom(q);
        *out = v;
        *cap = need;
    }
    size_t k = 0;
    if (it->k[1] != NONE)
        (*out)[k++] = (struct fg_elem){ (uint32_t)it->k[1], q->root_type };
    for (size_t i = s->n; i-- > 0;) {
        const struct qframe *f = &q->frames[q->stack_frames[s->off + i]];
        (*out)[k++] = (struct fg_elem){ f->name, f->type };
    }
    *n = k;
    return 0;
}

/* ---------- folded ---------- */

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int q_out_folded(struct q *q)
{
    struct strtab lines = { 0 };
    int64_t *weights = NULL;
    size_t wcap = 0;
    struct fg_elem *path = NULL;
    size_t pcap = 0, n;
    struct buf line;
    int rc = -1;
    buf_init(&line, SIZE_MAX);
    for (size_t i = 0; i < q->items.n; i++) {
        if (item_path(q, &q->items.v[i], &path, &pcap, &n) != 0)
            goto out;
        buf_reset(&line);
        bool ok = true;
        for (size_t j = 0; j < n && ok; j++)
            ok = (j == 0 || buf_putc(&line, ';')) &&
                 buf_append(&line, q->names.v[path[j].name], strlen(q->names.v[path[j].name]));
        uint32_t id = ok ? strtab_intern(&lines, buf_text(&line), line.len) : NONE;
        if (id == NONE) {
            qoom(q);
            goto out;
        }
        if (id >= wcap) {
            size_t cap = wcap ? wcap * 2 : 1024;
            int64_t *v = realloc(weights, cap * sizeof *v);
            if (!v) {
                qoom(q);
                goto out;
            }
            memset(v + wcap, 0, (cap - wcap) * sizeof *v);
            weights = v;
            wcap = cap;
        }
        weights[id] = sat_add(weights[id], q->items.v[i].w);
    }
    /* Lines are sorted as whole lines, weight included, like the stdout sink sorts them. */
    char **all = calloc(lines.n ? lines.n : 1, sizeof *all);
    if (!all) {
        qoom(q);
        goto out;
    }
    size_t made = 0;
    for (; made < lines.n; made++) {
        buf_reset(&line);
        if (!buf_printf(&line, "%s %lld", lines.v[made], (long long)weights[made]) || !buf_putc(&line, '\0') ||
            !(all[made] = strdup((const char *)line.data)))
            break;
    }
    if (made == lines.n) {
        qsort(all, lines.n, sizeof *all, cmp_lines);
        for (size_t i = 0; i < lines.n; i++)
            fprintf(stdout, "%s\n", all[i]);
        rc = 0;
    } else {
        qoom(q);
    }
    for (size_t i = 0; i < made; i++)
        free(all[i]);
    free(all);
out:
    buf_free(&line);
    free(path);
    free(weights);
    strtab_free(&lines);
    return rc;
}

/* ---------- flamegraph ---------- */

/* What the x axis counts: the sample type for counts ("samples"), else its unit. */
static const char *count_name(const struct q *q)
{
    if (!q->unit_type)
        return "weight";
    return strcmp(q->unit_unit, "count") == 0 || !q->unit_unit[0] ? q->unit_type : q->unit_unit;
}

int q_out_flamegraph(struct q *q)
{
    struct fg_path *paths = calloc(q->items.n ? q->items.n : 1, sizeof *paths);
    struct fg_elem *scratch = NULL;
    size_t scap = 0, n;
    int rc = -1;
    if (!paths)
        return qoom(q);
    for (size_t i = 0; i < q->items.n; i++) {
        if (item_path(q, &q->items.v[i], &scratch, &scap, &n) != 0)
            goto out;
        struct fg_elem *e = malloc((n ? n : 1) * sizeof *e);
        if (!e) {
            qoom(q);
            goto out;
        }
        memcpy(e, scratch, n * sizeof *e);
        paths[i] = (struct fg_path){ e, n, q->items.v[i].w };
    }
    struct fg_options fo = {
        .title = q->o->title ? q->o->title : "Flame Graph",
        .subtitle = q->o->cmdline.data ? (const char *)q->o->cmdline.data : "",
        .count_name = count_name(q),
        .width = q->o->width,
    };
    if (flamegraph_write(stdout, (const char *const *)q->names.v, q->names.n, paths, q->items.n, &fo) != 0)
        snprintf(q->err, sizeof q->err, "writing the SVG failed");
    else
        rc = 0;
out:
    for (size_t i = 0; i < q->items.n; i++)
        free((void *)paths[i].e);
    free(paths);
    free(scratch);
    return rc;
}
