/*
 * paths.c - `lazybackend folded` and `lazybackend flamegraph`: each summed item as a
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
#include "sinks/query/query.h"

/* ---------- paths: root first ---------- */

/* The item's frames root first (its group first when there is one) into *out. */
static int item_path(struct qresult *r, const struct agg_entry *it, struct fg_elem **out, size_t *cap, size_t *n)
{
    const struct qstack *s = &r->stacks[it->k[0]];
    size_t need = s->n + 1;
    if (need > *cap) {
        struct fg_elem *v = realloc(*out, need * sizeof *v);
        if (!v)
            return qresult_oom(r);
        *out = v;
        *cap = need;
    }
    size_t k = 0;
    if (it->k[1] != NONE)
        (*out)[k++] = (struct fg_elem){ (uint32_t)it->k[1], r->root_type };
    for (size_t i = s->n; i-- > 0;) {
        const struct qframe *f = &r->frames[r->stack_frames[s->off + i]];
        (*out)[k++] = (struct fg_elem){ f->name, f->type };
    }
    *n = k;
    return 0;
}

/* ---------- folded ---------- */

/* A distinct folded line: its text with the weight (the sort key), its summed weight, and one
 * item that has its path (for JSON). */
struct line {
    char *text;
    int64_t w;
    size_t item;
};

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

/* {"frames":[root, ..., leaf],"weight":W} for one line. */
static bool json_stack(struct buf *b, struct qresult *r, const struct line *l, struct fg_elem **path, size_t *pcap)
{
    size_t n;
    if (item_path(r, &r->items.v[l->item], path, pcap, &n) != 0 || !buf_printf(b, "{\"frames\":["))
        return false;
    for (size_t j = 0; j < n; j++)
        if ((j && !buf_putc(b, ',')) || !q_json_name(b, r->names.v[(*path)[j].name]))
            return false;
    return buf_printf(b, "],\"weight\":%lld}", (long long)l->w);
}

static int write_folded(const struct qopts *o, struct qresult *r, const struct line *v, size_t n,
                        struct fg_elem **path, size_t *pcap, FILE *out)
{
    if (o->format == QFORMAT_TEXT) {
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s\n", v[i].text);
        return 0;
    }
    struct buf b;
    buf_init(&b, SIZE_MAX);
    bool ok = q_json_head(&b, o, r) && buf_printf(&b, ",\"root\":\"%s\",\"stacks\":[", q_root_name(o));
    for (size_t i = 0; ok && i < n; i++)
        ok = (i == 0 || buf_putc(&b, ',')) && json_stack(&b, r, &v[i], path, pcap);
    ok = ok && buf_printf(&b, "]}\n");
    return q_json_finish(r, &b, ok, out);
}

int q_out_folded(const struct qopts *o, struct qresult *r, FILE *out)
{
    struct strtab texts = { 0 };
    struct line *lines = NULL;
    size_t lcap = 0, made = 0;
    struct fg_elem *path = NULL;
    size_t pcap = 0, n;
    struct buf line;
    int rc = -1;
    buf_init(&line, SIZE_MAX);
    for (size_t i = 0; i < r->items.n; i++) {
        if (item_path(r, &r->items.v[i], &path, &pcap, &n) != 0)
            goto done;
        buf_reset(&line);
        bool ok = true;
        for (size_t j = 0; j < n && ok; j++)
            ok = (j == 0 || buf_putc(&line, ';')) &&
                 buf_append(&line, r->names.v[path[j].name], strlen(r->names.v[path[j].name]));
        uint32_t id = ok ? strtab_intern(&texts, buf_text(&line), line.len) : NONE;
        if (id == NONE) {
            qresult_oom(r);
            goto done;
        }
        if (id == made) {
            struct line *v = q_grow(lines, made, &lcap, sizeof *v, 1024);
            if (!v) {
                qresult_oom(r);
                goto done;
            }
            lines = v;
            lines[made++] = (struct line){ NULL, 0, i };
        }
        lines[id].w = sat_add(lines[id].w, r->items.v[i].w);
    }
    /* Lines are sorted as whole lines, weight included, like the stdout sink sorts them. */
    for (size_t i = 0; i < made; i++) {
        buf_reset(&line);
        if (!buf_printf(&line, "%s %lld", texts.v[i], (long long)lines[i].w) || !buf_putc(&line, '\0') ||
            !(lines[i].text = strdup((const char *)line.data))) {
            qresult_oom(r);
            goto done;
        }
    }
    if (made > 1)   /* qsort may not be given NULL, which lines is when nothing matched */
        qsort(lines, made, sizeof *lines, cmp_lines);
    rc = write_folded(o, r, lines, made, &path, &pcap, out);
done:
    for (size_t i = 0; i < made; i++)
        free(lines[i].text);
    free(lines);
    buf_free(&line);
    free(path);
    strtab_free(&texts);
    return rc;
}

/* ---------- flamegraph ---------- */

/* What the x axis counts: the sample type for counts ("samples"), else its unit. */
static const char *count_name(const struct qresult *r)
{
    if (!r->unit_type)
        return "weight";
    return strcmp(r->unit_unit, "count") == 0 || !r->unit_unit[0] ? r->unit_type : r->unit_unit;
}

int q_out_flamegraph(const struct qopts *o, struct qresult *r, FILE *out)
{
    struct fg_path *paths = calloc(r->items.n ? r->items.n : 1, sizeof *paths);
    struct fg_elem *scratch = NULL;
    size_t scap = 0, n;
    int rc = -1;
    if (!paths)
        return qresult_oom(r);
    for (size_t i = 0; i < r->items.n; i++) {
        if (item_path(r, &r->items.v[i], &scratch, &scap, &n) != 0)
            goto done;
        struct fg_elem *e = malloc((n ? n : 1) * sizeof *e);
        if (!e) {
            qresult_oom(r);
            goto done;
        }
        memcpy(e, scratch, n * sizeof *e);
        paths[i] = (struct fg_path){ e, n, r->items.v[i].w };
    }
    if (o->format == QFORMAT_JSON) {
        rc = q_flamegraph_json(o, r, paths, r->items.n, out);
        goto done;
    }
    struct fg_options fo = {
        .title = o->title ? o->title : "Flame Graph",
        .subtitle = o->cmdline.data ? (const char *)o->cmdline.data : "",
        .count_name = count_name(r),
        .width = o->width,
    };
    if (flamegraph_write(out, (const char *const *)r->names.v, r->names.n, paths, r->items.n, &fo) != 0)
        snprintf(r->err, sizeof r->err, "writing the SVG failed");
    else
        rc = 0;
done:
    for (size_t i = 0; i < r->items.n; i++)
        free((void *)paths[i].e);
    free(paths);
    free(scratch);
    return rc;
}
