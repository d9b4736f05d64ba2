/*
 * flamegraph.c - weighted stacks -> a self-contained interactive SVG flame graph, written by
 * our own code (no flamegraph.pl, no network): `lazybackend flamegraph > out.svg` opens in
 * any browser, offline.
 *
 * Layout follows Brendan Gregg's flame graphs: the root at the bottom, one row per stack
 * depth, frames merged by name under the same parent, siblings in alphabetical order (the x
 * axis is not time), widths proportional to weight; frames narrower than 0.1 px are left
 * out with their descendants. Colour encodes the frame type (kernel orange, native red, JVM
 * green, Go aqua, interpreters yellow), shaded by a hash of the name.
 *
 * Each frame is a nested <svg> holding a <title> (the tooltip), a <rect> and a <text> with the
 * whole name; the nested viewport clips the name to the frame, so zooming only has to move
 * and resize frames, never re-truncate text. The embedded script adds: hover details, click
 * to zoom (ancestors stretch to full width), Reset Zoom, search by regular expression
 * (Ctrl+F, or the Search button) with the matched share, and the URL parameters ?s=REGEX and
 * ?f=FRAME_ID to open searched or zoomed.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/escape.h"
#include "lib/hash.h"
#include "sinks/query/query.h"

#define ROW 16          /* pixels per stack depth */
#define TOP 66          /* title, subtitle, buttons */
#define BOTTOM 28       /* the details line */
#define PAD 10          /* left and right margins */
#define MIN_WIDTH 0.1   /* frames narrower than this (pixels) are not drawn */
#define TEXT_WIDTH 20   /* ... and narrower than this show no name (a letter or two is noise) */

struct node {
    uint32_t name, type;
    uint32_t first_child, next;   /* 0 = none (node 0 is the root and never a child) */
    uint32_t depth;
    int64_t w;
    int64_t x;                    /* start, in weight units */
};

struct tree {
    struct node *v;
    size_t n, cap;
    struct memo children;         /* (parent << 32 | name) -> node */
    uint32_t max_depth;
};

static int64_t new_node(struct tree *t, uint32_t parent, uint32_t name, uint32_t type)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        struct node *v = cap < UINT32_MAX ? realloc(t->v, cap * sizeof *v) : NULL;
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    uint32_t id = (uint32_t)t->n++;
    t->v[id] = (struct node){ name, type, 0, 0, 0, 0, 0 };
    if (id > 0) {
        struct node *p = &t->v[parent];
        t->v[id].depth = p->depth + 1;
        t->v[id].next = p->first_child;
        p->first_child = id;
        if (t->v[id].depth > t->max_depth)
            t->max_depth = t->v[id].depth;
    }
    return id;
}

/* Negative weights (hostile or odd values) cannot be drawn: they count as 0. */
static int add_path(struct tree *t, const struct fg_path *p)
{
    int64_t w = p->weight > 0 ? p->weight : 0;
    uint32_t cur = 0;
    t->v[0].w = t->v[0].w > INT64_MAX - w ? INT64_MAX : t->v[0].w + w;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t key = (uint64_t)cur << 32 | p->e[i].name;
        int64_t child;
        if (!memo_get(&t->children, key, &child)) {
            if ((child = new_node(t, cur, p->e[i].name, p->e[i].type)) < 0 ||
                !memo_put(&t->children, key, child))
                return -1;
        }
        cur = (uint32_t)child;
        struct node *nd = &t->v[cur];
        nd->w = nd->w > INT64_MAX - w ? INT64_MAX : nd->w + w;
    }
    return 0;
}

/* ---------- layout: x offsets, children in name order ---------- */

struct named {
    const char *name;
    uint32_t node;
};

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* Sorts every child list by name (rewriting first_child/next) and assigns x, iteratively so a
 * 16k-deep stack needs no deep recursion. */
static int layout(struct tree *t, const char *const *strs)
{
    uint32_t *todo = malloc(t->n * sizeof *todo);
    struct named *kids = malloc(t->n * sizeof *kids);
    size_t n_todo = 0;
    if (!todo || !kids) {
        free(todo);
        free(kids);
        return -1;
    }
    todo[n_todo++] = 0;
    while (n_todo) {
        struct node *p = &t->v[todo[--n_todo]];
        size_t k = 0;
        for (uint32_t c = p->first_child; c; c = t->v[c].next)
            kids[k++] = (struct named){ strs[t->v[c].name], c };
        qsort(kids, k, sizeof *kids, cmp_named);
        int64_t x = p->x;
        p->first_child = k ? kids[0].node : 0;
        for (size_t i = 0; i < k; i++) {
            struct node *c = &t->v[kids[i].node];
            c->next = i + 1 < k ? kids[i + 1].node : 0;
            c->x = x;
            x = x > INT64_MAX - c->w ? INT64_MAX : x + c->w;
            todo[n_todo++] = kids[i].node;
        }
    }
    free(todo);
    free(kids);
    return 0;
}

/* ---------- output ---------- */

/* Text for XML: escaped for display first (valid UTF-8, no controls), then the XML specials;
 * U+FFFE and U+FFFF are valid UTF-8 but not XML characters. */
static void xml_text(FILE *out, const char *s, struct buf *tmp)
{
    buf_reset(tmp);
    if (!esc_text(tmp, s, strlen(s)))
        return;
    for (size_t i = 0; i < tmp->len; i++) {
        uint8_t c = tmp->data[i];
        if (c == 0xef && i + 2 < tmp->len && tmp->data[i + 1] == 0xbf && (tmp->data[i + 2] & 0xfe) == 0xbe) {
            fprintf(out, "\\u{%s}", tmp->data[i + 2] == 0xbe ? "fffe" : "ffff");
            i += 2;
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(c, out); break;
        }
    }
}

/* The colour of a frame: a hue per frame type, a shade per name. */
static void frame_color(const char *type, const char *name, int rgb[3])
{
    double v = (double)(hash64(name, strlen(name)) >> 11) / (double)(1ull << 53);
    if (type[0] == '\x01') {                              /* a root frame added by --root */
        rgb[0] = 150 + (int)(40 * v); rgb[1] = 140 + (int)(40 * v); rgb[2] = 210 + (int)(40 * v);
    } else if (!strcmp(type, "kernel")) {
        rgb[0] = 190 + (int)(65 * v); rgb[1] = 90 + (int)(65 * v); rgb[2] = 0;
    } else if (!strcmp(type, "native")) {
        rgb[0] = 200 + (int)(55 * v); rgb[1] = 50 + (int)(80 * v); rgb[2] = 50 + (int)(80 * v);
    } else if (!strcmp(type, "jvm") || !strcmp(type, "dotnet") || !strcmp(type, "beam")) {
        rgb[0] = 50 + (int)(60 * v); rgb[1] = 190 + (int)(60 * v); rgb[2] = 50 + (int)(60 * v);
    } else if (!strcmp(type, "go")) {
        rgb[0] = 50 + (int)(60 * v); rgb[1] = 165 + (int)(55 * v); rgb[2] = 165 + (int)(55 * v);
    } else if (!strcmp(type, "v8js") || !strcmp(type, "python") || !strcmp(type, "php") ||
               !strcmp(type, "ruby") || !strcmp(type, "perl") || !strcmp(type, "luajit")) {
        rgb[0] = 175 + (int)(55 * v); rgb[1] = 175 + (int)(55 * v); rgb[2] = 50 + (int)(20 * v);
    } else {                                              /* unknown or new types: "hot" */
        rgb[0] = 205 + (int)(50 * v); rgb[1] = (int)(230 * v); rgb[2] = (int)(55 * v);
    }
}

static const char SCRIPT[] =
"var svg, W, total, frames, details, unzoomBtn, searchBtn, matched, current = null;\n"
"function num(g, a) { return +g.getAttribute(a); }\n"
"function place(g, x, w) {\n"
"  if (w < 0.1) { g.classList.add('hide'); return; }\n"
"  g.classList.remove('hide');\n"
"  g.classList.toggle('n', w < TEXT_WIDTH);\n"
"  g.setAttribute('x', (PAD + x).toFixed(2));\n"
"  g.setAttribute('width', w.toFixed(2));\n"
"}\n"
"function info(g) { return g.querySelector('title').textContent; }\n"
"function unzoom() {\n"
"  current = null;\n"
"  unzoomBtn.classList.add('hide');\n"
"  frames.forEach(function (g) { place(g, num(g, 'data-s') / total * W, num(g, 'data-n') / total * W); });\n"
"}\n"
"function zoom(f) {\n"
"  if (!f || num(f, 'data-d') === 0) { unzoom(); return; }\n"
"  var s0 = num(f, 'data-s'), n0 = num(f, 'data-n'), d0 = num(f, 'data-d');\n"
"  current = f;\n"
"  unzoomBtn.classList.remove('hide');\n"
"  frames.forEach(function (g) {\n"
"    var s = num(g, 'data-s'), n = num(g, 'data-n'), d = num(g, 'data-d');\n"
"    if (d < d0 && s <= s0 && s + n >= s0 + n0) place(g, 0, W);\n"
"    else if (d >= d0 && s >= s0 && s + n <= s0 + n0) place(g, (s - s0) / n0 * W, n / n0 * W);\n"
"    else place(g, 0, 0);\n"
"  });\n"
"}\n"
"function clearSearch() {\n"
"  frames.forEach(function (g) { var r = g.querySelector('rect'); r.setAttribute('fill', r.getAttribute('data-fill')); });\n"
"  matched.textContent = ' ';\n"
"  searchBtn.textContent = 'Search';\n"
"}\n"
"function search(term) {\n"
"  clearSearch();\n"
"  if (!term) return;\n"
"  var re;\n"
"  try { re = new RegExp(term); } catch (e) { matched.textContent = 'bad regular expression'; return; }\n"
"  var ranges = [];\n"
"  frames.forEach(function (g) {\n"
"    if (num(g, 'data-d') === 0 || !re.test(g.querySelector('text').textContent)) return;\n"
"    g.querySelector('rect').setAttribute('fill', 'rgb(230,0,230)');\n"
"    ranges.push([num(g, 'data-s'), num(g, 'data-s') + num(g, 'data-n')]);\n"
"  });\n"
"  ranges.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
"  var covered = 0, end = -1;\n"
"  ranges.forEach(function (r) {\n"
"    if (r[0] >= end) { covered += r[1] - r[0]; end = r[1]; }\n"
"    else if (r[1] > end) { covered += r[1] - end; end = r[1]; }\n"
"  });\n"
"  matched.textContent = 'Matched: ' + (total ? 100 * covered / total : 0).toFixed(1) + '%';\n"
"  searchBtn.textContent = 'Reset Search';\n"
"}\n"
"function askSearch() {\n"
"  if (searchBtn.textContent !== 'Search') { clearSearch(); return; }\n"
"  var term = window.prompt('Search for (regular expression):', '');\n"
"  if (term) search(term);\n"
"}\n"
"function init() {\n"
"  svg = document.documentElement;\n"
"  W = num(svg, 'data-inner'); total = num(svg, 'data-total');\n"
"  frames = Array.prototype.slice.call(document.querySelectorAll('svg.f'));\n"
"  details = document.getElementById('details');\n"
"  unzoomBtn = document.getElementById('unzoom');\n"
"  searchBtn = document.getElementById('search');\n"
"  matched = document.getElementById('matched');\n"
"  var box = document.getElementById('frames');\n"
"  box.addEventListener('mouseover', function (e) {\n"
"    var g = e.target.closest('svg.f'); if (g) details.textContent = info(g);\n"
"  });\n"
"  box.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
"  box.addEventListener('click', function (e) { var g = e.target.closest('svg.f'); if (g) zoom(g); });\n"
"  unzoomBtn.addEventListener('click', unzoom);\n"
"  searchBtn.addEventListener('click', askSearch);\n"
"  window.addEventListener('keydown', function (e) {\n"
"    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); askSearch(); }\n"
"    else if (e.key === 'Escape') { clearSearch(); unzoom(); }\n"
"  });\n"
"  var params = new URLSearchParams(window.location.search);\n"
"  if (params.get('f')) zoom(document.getElementById(params.get('f')));\n"
"  if (params.get('s')) search(params.get('s'));\n"
"  svg.setAttribute('data-ready', '1');\n"
"}\n"
"window.addEventListener('load', init);\n";

static void write_head(FILE *out, const struct fg_options *o, unsigned width, unsigned height,
                       int64_t total, struct buf *tmp)
{
    fprintf(out,
            "<?xml version=\"1.0\" standalone=\"no\"?>\n"
            "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
            "viewBox=\"0 0 %u %u\" data-inner=\"%u\" data-total=\"%lld\">\n"
            "<style>\n"
            "text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n"
            "#title { font-size: 17px; } #subtitle { fill: #555; }\n"
            "#unzoom, #search { cursor: pointer; fill: #333; }\n"
            "svg.f { cursor: pointer; } svg.f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
            ".hide { display: none; } svg.n text { display: none; }\n"
            "</style>\n"
            "<script><![CDATA[\n\"use strict\";\nvar PAD = %d, TEXT_WIDTH = %d;\n%s]]></script>\n"
            "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"#f8f8f4\"/>\n",
            width, height, width, height, width - 2 * PAD, (long long)total, PAD, TEXT_WIDTH, SCRIPT);
    fprintf(out, "<text id=\"title\" x=\"%u\" y=\"24\" text-anchor=\"middle\">", width / 2);
    xml_text(out, o->title ? o->title : "Flame Graph", tmp);
    fprintf(out, "</text>\n<text id=\"subtitle\" x=\"%u\" y=\"44\" text-anchor=\"middle\">", width / 2);
    xml_text(out, o->subtitle ? o->subtitle : "", tmp);
    fprintf(out, "</text>\n"
                 "<text id=\"unzoom\" class=\"hide\" x=\"%d\" y=\"24\">Reset Zoom</text>\n"
                 "<text id=\"search\" x=\"%u\" y=\"24\" text-anchor=\"end\">Search</text>\n"
                 "<text id=\"matched\" x=\"%u\" y=\"%u\" text-anchor=\"end\"> </text>\n"
                 "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n",
            PAD, width - PAD, width - PAD, height - 9, PAD, height - 9);
}

static void write_frame(FILE *out, const struct tree *t, uint32_t id, const char *const *strs,
                        const struct fg_options *o, unsigned width, unsigned height, struct buf *tmp)
{
    const struct node *n = &t->v[id];
    int64_t total = t->v[0].w;
    double inner = width - 2 * PAD;
    double x = (double)n->x / (double)total * inner, w = (double)n->w / (double)total * inner;
    const char *name = id == 0 ? "all" : strs[n->name];
    int rgb[3];
    frame_color(id == 0 ? "\x01" : strs[n->type], name, rgb);
    fprintf(out, "<svg class=\"f%s\" id=\"f%u\" x=\"%.2f\" y=\"%u\" width=\"%.2f\" height=\"%d\" "
                 "data-s=\"%lld\" data-n=\"%lld\" data-d=\"%u\"><title>",
            w < TEXT_WIDTH ? " n" : "", id, PAD + x, height - BOTTOM - (n->depth + 1) * ROW, w, ROW - 1,
            (long long)n->x, (long long)n->w, n->depth);
    xml_text(out, name, tmp);
    fprintf(out, " (%lld %s, %.2f%%)</title><rect width=\"100%%\" height=\"100%%\" rx=\"2\" "
                 "fill=\"rgb(%d,%d,%d)\" data-fill=\"rgb(%d,%d,%d)\"/><text x=\"3\" y=\"11\">",
            (long long)n->w, o->count_name ? o->count_name : "samples",
            total ? 100.0 * (double)n->w / (double)total : 0.0, rgb[0], rgb[1], rgb[2], rgb[0], rgb[1], rgb[2]);
    xml_text(out, name, tmp);
    fputs("</text></svg>\n", out);
}

/* Depth first, skipping frames too narrow to see (their descendants are narrower still). */
static int write_frames(FILE *out, const struct tree *t, const char *const *strs,
                        const struct fg_options *o, unsigned width, unsigned height, struct buf *tmp)
{
    uint32_t *todo = malloc(t->n * sizeof *todo);
    size_t n_todo = 0;
    if (!todo)
        return -1;
    double scale = (double)(width - 2 * PAD) / (double)t->v[0].w;
    todo[n_todo++] = 0;
    fputs("<g id=\"frames\">\n", out);
    while (n_todo) {
        uint32_t id = todo[--n_todo];
        if ((double)t->v[id].w * scale < MIN_WIDTH)
            continue;
        write_frame(out, t, id, strs, o, width, height, tmp);
        for (uint32_t c = t->v[id].first_child; c; c = t->v[c].next)
            todo[n_todo++] = c;
    }
    fputs("</g>\n", out);
    free(todo);
    return 0;
}

int flamegraph_write(FILE *out, const char *const *strs, size_t n_strs, const struct fg_path *paths,
                     size_t n_paths, const struct fg_options *o)
{
    struct tree t = { 0 };
    struct buf tmp;
    int rc = -1;
    buf_init(&tmp, SIZE_MAX);
    memo_init(&t.children, SIZE_MAX);
    if (new_node(&t, 0, 0, 0) < 0)
        goto out;
    for (size_t i = 0; i < n_paths; i++) {
        for (size_t j = 0; j < paths[i].n; j++)
            if (paths[i].e[j].name >= n_strs || paths[i].e[j].type >= n_strs)
                goto out;   /* a caller bug: every name must be in strs */
        if (add_path(&t, &paths[i]) != 0)
            goto out;
    }
    if (layout(&t, strs) != 0)
        goto out;
    unsigned width = o->width >= 200 ? o->width : 1200;
    unsigned height = TOP + (t.max_depth + 1) * ROW + BOTTOM;
    write_head(out, o, width, height, t.v[0].w, &tmp);
    if (t.v[0].w <= 0) {
        fprintf(out, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">no samples match</text>\n"
                     "<g id=\"frames\"></g>\n", width / 2, height - BOTTOM - 4);
    } else if (write_frames(out, &t, strs, o, width, height, &tmp) != 0) {
        goto out;
    }
    fputs("</svg>\n", out);
    rc = ferror(out) ? -1 : 0;
out:
    free(t.v);
    memo_free(&t.children);
    buf_free(&tmp);
    return rc;
}
