/*
 * views.c - the JSON answers of the UI's API (docs/ui.md): the flame graph as a tree of
 * nodes, top tables (functions, frame types, mappings with build ids, executables,
 * containers, threads), the timeline, the store's metadata and the requests it holds.
 *
 * Each view folds the filtered rollup rows of store.c: per stack (flame graph, functions),
 * per group (executables, containers, threads) or per minute (timeline). Every string goes
 * out JSON-escaped (lib/escape.c); the page shows it as text, never as HTML.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/escape.h"
#include "ui/store.h"

static int oom(struct ui_store *s)
{
    snprintf(s->err, sizeof s->err, "out of memory");
    return -1;
}

static bool jstr(struct buf *b, const char *s)
{
    return esc_json_quoted(b, s, strlen(s));
}

/* ---------- weights per stack ---------- */

struct stacks_w {
    int64_t *w;
    uint8_t *seen;
    size_t cap;
    uint32_t *list;      /* the stacks seen, in order */
    size_t n, list_cap;
    int64_t total;
};

static int add_stack_row(void *ctx, const struct ui_store *s, uint32_t stack, int64_t bucket,
                         const int64_t sets[3], int64_t w)
{
    struct stacks_w *a = ctx;
    (void)bucket;
    (void)sets;
    if (stack >= a->cap) {
        size_t cap = s->n_stacks > stack ? s->n_stacks * 2 : (size_t)stack * 2 + 16;
        int64_t *nw = realloc(a->w, cap * sizeof *nw);
        if (nw)
            a->w = nw;
        uint8_t *ns = realloc(a->seen, cap);
        if (ns)
            a->seen = ns;
        if (!nw || !ns)
            return -1;
        memset(a->w + a->cap, 0, (cap - a->cap) * sizeof *a->w);
        memset(a->seen + a->cap, 0, cap - a->cap);
        a->cap = cap;
    }
    if (!a->seen[stack]) {
        uint32_t *l = q_grow(a->list, a->n, &a->list_cap, sizeof *l, 1024);
        if (!l)
            return -1;
        a->list = l;
        a->list[a->n++] = stack;
        a->seen[stack] = 1;
    }
    a->w[stack] = sat_add(a->w[stack], w);
    a->total = sat_add(a->total, w);
    return 0;
}

static void stacks_w_free(struct stacks_w *a)
{
    free(a->w);
    free(a->seen);
    free(a->list);
}

static int scan_stacks(struct ui_store *s, const struct ui_params *p, struct stacks_w *a)
{
    memset(a, 0, sizeof *a);
    if (ui_store_scan(s, p, UI_SCAN_WINDOW, add_stack_row, a) != 0) {
        if (!s->err[0])
            oom(s);
        return -1;
    }
    return 0;
}

/* ---------- flame graph ---------- */

struct node {
    uint32_t parent, frame;   /* frame: index in s->frames; UINT32_MAX for the root */
    int64_t self, total;
};

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool frame_json(struct buf *b, const struct ui_store *s, const struct ui_frame *f)
{
    bool ok = buf_printf(b, "{\"name\":") && jstr(b, ui_name(s, f->name)) &&
              buf_printf(b, ",\"type\":") && jstr(b, ui_name(s, f->type));
    if (f->file)
        ok = ok && buf_printf(b, ",\"file\":") && jstr(b, ui_name(s, f->file));
    if (f->line)
        ok = ok && buf_printf(b, ",\"line\":%" PRId64, f->line);
    if (f->native && f->mapping)
        ok = ok && buf_printf(b, ",\"mapping\":") && jstr(b, ui_name(s, f->mapping));
    if (f->build_id)
        ok = ok && buf_printf(b, ",\"build_id\":") && jstr(b, ui_name(s, f->build_id));
    return ok && buf_putc(b, '}');
}

static int flame_json(struct ui_store *s, const struct ui_params *p, const struct node *nodes, size_t n,
                      int64_t total, struct buf *out)
{
    /* Past max_nodes, the lightest nodes go: a node weighs at most its parent, so keeping
     * every node at or above a threshold keeps whole paths from the root. */
    int64_t threshold = INT64_MIN;
    if (n > p->max_nodes) {
        int64_t *t = malloc(n * sizeof *t);
        if (!t)
            return oom(s);
        for (size_t i = 0; i < n; i++)
            t[i] = nodes[i].total;
        qsort(t, n, sizeof *t, cmp_desc);
        threshold = t[p->max_nodes - 1];
        free(t);
    }
    uint32_t *newix = malloc(n * sizeof *newix), *fout = calloc(s->n_frames + 1, sizeof *fout);
    int rc = 0;
    if (!newix || !fout) {
        rc = oom(s);
        goto done;
    }
    size_t kept = 0, nf = 0, dropped = 0;
    bool ok = buf_printf(out, "{\"total\":%" PRId64 ",\"frames\":[", total);
    for (size_t i = 0; i < n && ok; i++) {
        bool keep = i == 0 || (nodes[i].total >= threshold && kept < p->max_nodes &&
                               newix[nodes[i].parent] != UINT32_MAX);
        newix[i] = keep ? (uint32_t)kept++ : UINT32_MAX;
        dropped += !keep;
        uint32_t f = nodes[i].frame;
        if (keep && f != UINT32_MAX && !fout[f]) {
            fout[f] = (uint32_t)++nf;
            ok = (nf == 1 || buf_putc(out, ',')) && frame_json(out, s, &s->frames[f]);
        }
    }
    ok = ok && buf_printf(out, "],\"truncated\":%zu,\"nodes\":[", dropped);
    for (size_t i = 0, k = 0; i < n && ok; i++) {
        if (newix[i] == UINT32_MAX)
            continue;
        const struct node *d = &nodes[i];
        ok = buf_printf(out, "%s%d,%d,%" PRId64 ",%" PRId64, k++ ? "," : "",
                        i == 0 ? -1 : (int)newix[d->parent],
                        d->frame == UINT32_MAX ? -1 : (int)fout[d->frame] - 1, d->self, d->total);
    }
    ok = ok && buf_printf(out, "]}");
    if (!ok)
        rc = oom(s);
done:
    free(newix);
    free(fout);
    return rc;
}

int ui_view_flame(struct ui_store *s, const struct ui_params *p, struct buf *out)
{
    struct stacks_w a;
    if (scan_stacks(s, p, &a) != 0) {
        stacks_w_free(&a);
        return -1;
    }
    struct node *nodes = NULL;
    size_t n = 0, cap = 0;
    struct memo child;   /* parent << 32 | frame -> node */
    memo_init(&child, SIZE_MAX);
    int rc = 0;
    if (!(nodes = q_grow(nodes, 0, &cap, sizeof *nodes, 1024))) {
        rc = oom(s);
        goto done;
    }
    nodes[n++] = (struct node){ UINT32_MAX, UINT32_MAX, 0, 0 };
    for (size_t i = 0; i < a.n && rc == 0; i++) {
        uint32_t st = a.list[i];
        int64_t w = a.w[st];
        uint32_t cur = 0;
        nodes[0].total = sat_add(nodes[0].total, w);
        for (uint32_t j = 0; j < s->stacks[st].n; j++) {
            uint32_t f = s->sf[s->stacks[st].off + j];
            uint64_t key = (uint64_t)cur << 32 | f;
            int64_t ix;
            if (!memo_get(&child, key, &ix)) {
                struct node *v = q_grow(nodes, n, &cap, sizeof *v, 1024);
                if (!v || n >= UINT32_MAX - 1 || !memo_put(&child, key, (int64_t)n)) {
                    if (v)
                        nodes = v;
                    rc = oom(s);
                    break;
                }
                nodes = v;
                nodes[n] = (struct node){ cur, f, 0, 0 };
                ix = (int64_t)n++;
            }
            cur = (uint32_t)ix;
            nodes[cur].total = sat_add(nodes[cur].total, w);
        }
        nodes[cur].self = sat_add(nodes[cur].self, w);
    }
    if (rc == 0)
        rc = flame_json(s, p, nodes, n, a.total, out);
done:
    memo_free(&child);
    free(nodes);
    stacks_w_free(&a);
    return rc;
}

/* ---------- top ---------- */

struct item {
    uint32_t name, type, extra;   /* extra: a mapping's build id */
    int64_t self, total;
};

struct top {
    struct item *v;
    size_t n, cap;
    struct memo ix;     /* key -> index */
    uint32_t *stamp;    /* per item: the last stack that counted it in total */
    size_t stamp_cap;
    int64_t total;
    enum ui_by by;
};

static struct item *item_of(struct top *t, uint64_t key, uint32_t name)
{
    int64_t ix;
    if (memo_get(&t->ix, key, &ix))
        return &t->v[ix];
    struct item *v = q_grow(t->v, t->n, &t->cap, sizeof *v, 256);
    if (!v)
        return NULL;
    t->v = v;
    if (!memo_put(&t->ix, key, (int64_t)t->n))
        return NULL;
    uint32_t *st = q_grow(t->stamp, t->n, &t->stamp_cap, sizeof *st, 256);
    if (!st)
        return NULL;
    t->stamp = st;
    t->stamp[t->n] = UINT32_MAX;
    t->v[t->n] = (struct item){ .name = name };
    return &t->v[t->n++];
}

static int group_row(void *ctx, const struct ui_store *s, uint32_t stack, int64_t bucket,
                     const int64_t sets[3], int64_t w)
{
    struct top *t = ctx;
    (void)stack;
    (void)bucket;
    uint32_t g;
    if (ui_store_group((struct ui_store *)s, t->by, sets, &g) != 0)
        return -1;
    struct item *it = item_of(t, g, g);
    if (!it)
        return -1;
    it->self = sat_add(it->self, w);
    it->total = sat_add(it->total, w);
    t->total = sat_add(t->total, w);
    return 0;
}

/* The item a frame counts for: its function (name), frame type, or mapping. */
static struct item *frame_item(struct top *t, const struct ui_store *s, const struct ui_frame *f)
{
    if (t->by == UI_BY_FRAME_TYPE)
        return item_of(t, f->type, f->type);
    if (t->by == UI_BY_MAPPING) {
        if (!f->mapping && !f->native)
            return NULL;
        struct item *it = item_of(t, (uint64_t)f->mapping << 32 | f->build_id, f->mapping);
        if (it)
            it->extra = f->build_id;
        return it;
    }
    struct item *it = item_of(t, f->name, f->name);
    if (it)
        it->type = f->type;
    (void)s;
    return it;
}

static int top_from_stacks(struct top *t, const struct ui_store *s, const struct stacks_w *a)
{
    t->total = a->total;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t st = a->list[i];
        int64_t w = a->w[st];
        uint32_t n = s->stacks[st].n;
        for (uint32_t j = 0; j < n; j++) {
            const struct ui_frame *f = &s->frames[s->sf[s->stacks[st].off + j]];
            bool leaf = j == n - 1;
            if (t->by == UI_BY_MAPPING && !f->mapping && !f->native)
                continue;
            struct item *it = frame_item(t, s, f);
            if (!it)
                return -1;
            size_t k = (size_t)(it - t->v);
            if (t->stamp[k] != st) {   /* once per stack */
                t->stamp[k] = st;
                it->total = sat_add(it->total, w);
            }
            if (leaf)
                it->self = sat_add(it->self, w);
        }
    }
    return 0;
}

/* An executable's build id: that of a mapping with the executable's name as its file (the
 * profiler names the main binary's mapping so), when the store has one. Appends
 * ,"build_id":"..." or nothing; -1 on a database error. */
static int executable_build_id(struct ui_store *s, const char *name, struct buf *out)
{
    if (s->ch)   /* ClickHouse keeps no mappings */
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT bi.value FROM strings mf JOIN mappings m ON m.file_id = mf.id "
                                  "JOIN strings bi ON bi.id = m.build_id_id WHERE mf.hash = ?1 AND mf.value = ?2 "
                                  "ORDER BY m.id LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
        snprintf(s->err, sizeof s->err, "reading mappings: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, (int64_t)sqlstore_hash(name, strlen(name)));
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    bool ok = !v || (buf_printf(out, ",\"build_id\":") && jstr(out, v));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(s->err, sizeof s->err, "reading mappings: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return ok ? 0 : -1;
}

static bool sort_total;
static const struct ui_store *sort_store;   /* ties go by name: the same order over any store */
static int cmp_item(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    int64_t ka = sort_total ? a->total : a->self, kb = sort_total ? b->total : b->self;
    if (ka != kb)
        return ka < kb ? 1 : -1;
    int64_t ta = sort_total ? a->self : a->total, tb = sort_total ? b->self : b->total;
    if (ta != tb)
        return ta < tb ? 1 : -1;
    if (a->name != b->name)
        return strcmp(ui_name(sort_store, a->name), ui_name(sort_store, b->name));
    return a->type < b->type ? -1 : a->type > b->type;
}

static const char *by_name(enum ui_by by)
{
    static const char *const n[] = { "function", "executable", "container", "thread", "frame_type", "mapping" };
    return n[by];
}

int ui_view_top(struct ui_store *s, const struct ui_params *p, struct buf *out)
{
    struct top t = { .by = p->by };
    memo_init(&t.ix, SIZE_MAX);
    int rc = 0;
    if (p->by == UI_BY_EXECUTABLE || p->by == UI_BY_CONTAINER || p->by == UI_BY_THREAD) {
        if (ui_store_scan(s, p, UI_SCAN_WINDOW, group_row, &t) != 0)
            rc = s->err[0] ? -1 : oom(s);
    } else {
        struct stacks_w a;
        rc = scan_stacks(s, p, &a);
        if (rc == 0 && top_from_stacks(&t, s, &a) != 0)
            rc = oom(s);
        stacks_w_free(&a);
    }
    if (rc == 0) {
        sort_total = p->sort_total;   /* one thread: the comparator's parameters */
        sort_store = s;
        if (t.n)
            qsort(t.v, t.n, sizeof *t.v, cmp_item);
        size_t shown = 0, matched = 0;
        bool ok = buf_printf(out, "{\"by\":\"%s\",\"total\":%" PRId64 ",\"rows\":[", by_name(p->by), t.total);
        for (size_t i = 0; i < t.n && ok; i++) {
            const struct item *it = &t.v[i];
            const char *name = ui_name(s, it->name);
            if (p->name_filter && !strcasestr(name, p->name_filter))
                continue;
            if (matched++ >= p->limit)
                continue;
            ok = buf_printf(out, "%s{\"name\":", shown++ ? "," : "") && jstr(out, name) &&
                 buf_printf(out, ",\"self\":%" PRId64 ",\"total\":%" PRId64, it->self, it->total);
            if (ok && p->by == UI_BY_FUNCTION)
                ok = buf_printf(out, ",\"type\":") && jstr(out, ui_name(s, it->type));
            if (ok && p->by == UI_BY_MAPPING && it->extra)
                ok = buf_printf(out, ",\"build_id\":") && jstr(out, ui_name(s, it->extra));
            if (ok && p->by == UI_BY_EXECUTABLE && name[0])
                ok = executable_build_id(s, name, out) == 0;
            ok = ok && buf_putc(out, '}');
        }
        ok = ok && buf_printf(out, "],\"matched\":%zu}", matched);
        if (!ok)
            rc = oom(s);
    }
    memo_free(&t.ix);
    free(t.v);
    free(t.stamp);
    return rc;
}
