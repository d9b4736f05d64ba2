/*
 * json.c - `--format json` of the query commands: the fields every answer starts with, names
 * and numbers as JSON, and the flame graph as a tree (top and folded write their own arrays,
 * top.c and paths.c). docs/queries.md gives the schema.
 *
 * Names are the text the other formats show (already escaped for display, so reversible and
 * valid UTF-8), JSON-escaped on top. The tree is built and written without recursion, so a
 * stack of any depth costs heap, not C stack.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "sinks/numfmt.h"
#include "sinks/query/query.h"

static const char *command_name(enum cmd c)
{
    switch (c) {
    case CMD_TOP: return "top";
    case CMD_FOLDED: return "folded";
    case CMD_FLAMEGRAPH: return "flamegraph";
    case CMD_EXPORT: break;   /* not a query: it prints no JSON */
    }
    return "";
}

const char *q_root_name(const struct qopts *o)
{
    if (o->root == &GROUP_EXECUTABLE)
        return "executable";
    if (o->root == &GROUP_CONTAINER)
        return "container";
    if (o->root == &GROUP_THREAD)
        return "thread";
    return "none";
}

bool q_json_name(struct buf *b, const char *s)
{
    return esc_json_quoted(b, s, strlen(s));
}

bool q_json_double(struct buf *b, double d)
{
    char t[NUMFMT_DOUBLE_MAX];
    size_t n = numfmt_double(t, d);
    bool finite = d == d && d - d == 0;   /* NaN and the infinities are quoted (numfmt.h) */
    return finite ? buf_append(b, t, n) : esc_json_quoted(b, t, n);
}

int q_json_finish(struct qresult *r, struct buf *b, bool ok, FILE *out)
{
    int rc = ok ? 0 : qresult_oom(r);
    if (ok && fwrite(b->data, 1, b->len, out) != b->len)
        rc = qresult_fail(r, "writing the output failed");
    buf_free(b);
    return rc;
}

bool q_json_head(struct buf *b, const struct qopts *o, const struct qresult *r)
{
    bool ok = buf_printf(b, "{\"command\":\"%s\",\"samples\":%" PRIu64 ",\"weight\":%lld,\"sample_type\":",
                         command_name(o->cmd), r->n_samples, (long long)r->total_w);
    if (r->unit_type)
        ok = ok && q_json_name(b, r->unit_type) && buf_printf(b, ",\"sample_unit\":") && q_json_name(b, r->unit_unit);
    else
        ok = ok && buf_printf(b, "null,\"sample_unit\":null");
    return ok && buf_printf(b, ",\"mixed_sample_types\":%s", r->any_unit && !r->unit_type ? "true" : "false");
}

/* ---------- the flame graph as a tree ---------- */

struct tnode {
    uint32_t name, type;
    int64_t w;
    uint32_t *kids;          /* children, sorted by name before writing */
    uint32_t n_kids, cap_kids;
};

struct ttree {
    struct tnode *v;
    size_t n, cap;
    struct memo child;       /* parent << 32 | name -> node */
};

static int64_t tree_child(struct ttree *t, uint32_t parent, uint32_t name, uint32_t type)
{
    int64_t id;
    uint64_t key = (uint64_t)parent << 32 | name;
    if (memo_get(&t->child, key, &id))
        return id;
    struct tnode *v = t->n < UINT32_MAX ? q_grow(t->v, t->n, &t->cap, sizeof *v, 1024) : NULL;
    if (!v)
        return -1;
    t->v = v;
    struct tnode *p = &t->v[parent];
    if (p->n_kids == p->cap_kids) {
        uint32_t cap = p->cap_kids ? p->cap_kids * 2 : 4;
        uint32_t *k = realloc(p->kids, cap * sizeof *k);
        if (!k)
            return -1;
        p->kids = k;
        p->cap_kids = cap;
    }
    id = (int64_t)t->n++;
    t->v[id] = (struct tnode){ name, type, 0, NULL, 0, 0 };
    p->kids[p->n_kids++] = (uint32_t)id;
    return memo_put(&t->child, key, id) ? id : -1;
}

/* cmp_kids' context (qsort has no context argument; the process has one thread) */
static const char *const *sort_names;
static const struct tnode *sort_nodes;

static int cmp_kids(const void *a, const void *b)
{
    return strcmp(sort_names[sort_nodes[*(const uint32_t *)a].name], sort_names[sort_nodes[*(const uint32_t *)b].name]);
}

/* {"name":...,"type":...,"value":W,"children":[ */
static bool open_node(struct buf *b, const struct qresult *r, const struct tnode *n, bool root)
{
    const char *type = root ? "root" : n->type == r->root_type ? "group" : r->names.v[n->type];
    return buf_printf(b, "{\"name\":") && q_json_name(b, root ? "all" : r->names.v[n->name]) &&
           buf_printf(b, ",\"type\":") && q_json_name(b, type) &&
           buf_printf(b, ",\"value\":%lld,\"children\":[", (long long)n->w);
}

static bool write_tree(struct buf *b, const struct qresult *r, struct ttree *t)
{
    sort_names = (const char *const *)r->names.v;
    sort_nodes = t->v;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].n_kids > 1)
            qsort(t->v[i].kids, t->v[i].n_kids, sizeof *t->v[i].kids, cmp_kids);
    /* depth-first with an explicit stack of (node, next child) */
    struct frame { uint32_t node, next; } *st = malloc(sizeof *st * 64);
    size_t depth = 0, cap = 64;
    if (!st || !open_node(b, r, &t->v[0], true)) {
        free(st);
        return false;
    }
    st[depth++] = (struct frame){ 0, 0 };
    bool ok = true;
    while (ok && depth > 0) {
        struct frame *f = &st[depth - 1];
        const struct tnode *n = &t->v[f->node];
        if (f->next == n->n_kids) {
            ok = buf_printf(b, "]}");
            depth--;
            continue;
        }
        uint32_t kid = n->kids[f->next++];
        ok = (f->next == 1 || buf_putc(b, ',')) && open_node(b, r, &t->v[kid], false);
        if (ok && depth == cap) {
            struct frame *v = realloc(st, sizeof *st * cap * 2);
            ok = v != NULL;
            if (ok) {
                st = v;
                cap *= 2;
            }
        }
        if (ok)
            st[depth++] = (struct frame){ kid, 0 };
    }
    free(st);
    return ok;
}

int q_flamegraph_json(const struct qopts *o, struct qresult *r, const struct fg_path *paths, size_t n_paths,
                      FILE *out)
{
    struct ttree t = { 0 };
    struct buf b;
    bool ok = true;
    memo_init(&t.child, SIZE_MAX);
    buf_init(&b, SIZE_MAX);
    t.v = malloc(sizeof *t.v);
    if (t.v) {
        t.cap = t.n = 1;
        t.v[0] = (struct tnode){ 0, 0, 0, NULL, 0, 0 };
    }
    ok = t.v != NULL;
    /* As in the SVG: frames merged by name under the same parent, negative weights count 0. */
    for (size_t i = 0; ok && i < n_paths; i++) {
        int64_t w = paths[i].weight > 0 ? paths[i].weight : 0;
        uint32_t cur = 0;
        t.v[0].w = sat_add(t.v[0].w, w);
        for (size_t j = 0; ok && j < paths[i].n; j++) {
            int64_t id = tree_child(&t, cur, paths[i].e[j].name, paths[i].e[j].type);
            ok = id >= 0;
            if (ok) {
                cur = (uint32_t)id;
                t.v[cur].w = sat_add(t.v[cur].w, w);
            }
        }
    }
    ok = ok && q_json_head(&b, o, r) && buf_printf(&b, ",\"root\":\"%s\",\"tree\":", q_root_name(o)) &&
         write_tree(&b, r, &t) && buf_printf(&b, "}\n");
    int rc = q_json_finish(r, &b, ok, out);
    for (size_t i = 0; i < t.n; i++)
        free(t.v[i].kids);
    free(t.v);
    memo_free(&t.child);
    return rc;
}
