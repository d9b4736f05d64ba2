/*
 * rows.c - the ClickHouse sink's open batch: resolved samples turned into RowBinary rows
 * for the four tables, with frames, stacks and resources stored once by content hash.
 *
 * Why content hashes: a profiler sends the same few thousand stacks over and over. Each sample
 * row carries only a 64-bit stack hash; a stack row (its frame hashes) and a frame row (its
 * strings) are written the first time this process sees them, and ReplacingMergeTree keyed by
 * the hash folds the rare re-sends (after a restart, after a rollback) on the server. So disk
 * grows with distinct stacks, not with samples. The hash is FNV-1a 64 over every stored field
 * of the row, so equal hashes mean equal rows and any copy of a row is as good as another.
 *
 * Per request, (location, line) -> frame hash is memoised (the same frames recur in many
 * stacks of one request); across requests, the frame's hashed bytes -> its hash
 * (frame_cache.c), so a frame seen before is compared, not hashed byte by byte again.
 *
 * Everything written during a request can be rolled back (abort, refusal): parts are
 * truncated to the marks taken at request_begin, and the "already sent" set is emptied since
 * it may name rows that were just truncated.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/gzip.h"
#include "otlp/varint.h"
#include "sinks/attrblob.h"
#include "sinks/clickhouse/content.h"
#include "sinks/clickhouse/internal.h"

#define SEEN_SLOTS ((size_t)1 << 18)   /* 2 MiB of hashes; emptied when half full */

/* Hashes already written into a batch (open, queued, spooled or sent). A miss only costs a
 * duplicate row, so the set is simply emptied when it fills. */
struct seen {
    uint64_t *slot;     /* 0 = empty */
    size_t n;
};

/* Request-local index -> content hash, for the current request (location and line -> frame
 * hash); generations make the reset O(1). */
struct memo_slot {
    uint64_t key;
    uint64_t hash;
    uint32_t gen;
};

struct memo {
    struct memo_slot *slot;
    size_t cap, n;      /* cap: power of two */
    uint32_t gen;
};

/* A rendered attribute list: keys and values as text in `text`, offsets in `item`. */
struct rendered {
    struct buf text;
    struct { size_t koff, klen, voff, vlen; } *item;
    size_t n, cap;
};

struct ch_rows {
    struct buf part[CH_TABLES];
    uint32_t rows[CH_TABLES];
    size_t mark_len[CH_TABLES];
    uint32_t mark_rows[CH_TABLES];
    size_t limit;
    uint64_t batch_id;
    bool oom;
    char why[160];
    struct seen seen;
    struct memo frame_memo;  /* location_index << 16 | line_index -> frame hash */
    struct ch_frame_cache *frame_cache;   /* frame key -> frame hash, across requests */
    bool gzip;               /* sealed parts gzip'd, else copied as they are */
    struct buf frame_key;    /* the bytes a frame's hash covers (ch_frame_key) */
    struct rendered attrs;
    /* typed attribute lists (attrblob.h) and the request's content (content.h) */
    struct buf content, scratch, loc_blob, map_blob, sample_blob;
    uint32_t n_res, n_prof;     /* resources so far in the request, profiles in the resource */
    uint64_t *frame_hash;   /* one sample's frame hashes */
    size_t frame_hash_cap;
    /* context of the current request, resource and profile (valid until their *_end) */
    const struct lb_request *req;
    const struct lb_profile *prof;
    struct {
        lb_str service, container, host, executable;
        int64_t pid;
        uint64_t hash;
    } res;
};

/* ---- RowBinary ---- */

/* Every field of every row comes through here: with room left in the part (the usual case,
 * its buffer is reused from batch to batch) the bytes are copied in place; a buffer's cap never
 * passes its limit, so room within cap is room within the limit. */
static inline void put(struct ch_rows *r, int t, const void *p, size_t n)
{
    struct buf *b = &r->part[t];
    if (!r->oom && b->data && b->cap - b->len >= n) {
        if (n)
            memcpy(b->data + b->len, p, n);
        b->len += n;
    } else if (!r->oom && !buf_append(b, p, n)) {
        r->oom = true;
    }
}

static void put_u8(struct ch_rows *r, int t, uint8_t v) { put(r, t, &v, 1); }

static void put_u32(struct ch_rows *r, int t, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(r, t, b, 4);
}

static void put_u64(struct ch_rows *r, int t, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (uint8_t)v;
    put(r, t, b, 8);
}

static void put_i64(struct ch_rows *r, int t, int64_t v) { put_u64(r, t, (uint64_t)v); }

/* Lengths and array sizes: unsigned LEB128. */
static void put_varint(struct ch_rows *r, int t, uint64_t v)
{
    uint8_t b[VARINT_MAX];
    put(r, t, b, varint_encode(v, b));
}

static void put_str(struct ch_rows *r, int t, const void *p, size_t n)
{
    put_varint(r, t, n);
    put(r, t, p, n);
}

static void put_lbstr(struct ch_rows *r, int t, lb_str s) { put_str(r, t, s.p, s.n); }

static void put_hex(struct ch_rows *r, int t, lb_str s)
{
    static const char digits[] = "0123456789abcdef";
    put_varint(r, t, 2 * s.n);
    char chunk[128];
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        chunk[k++] = digits[(uint8_t)s.p[i] >> 4];
        chunk[k++] = digits[(uint8_t)s.p[i] & 15];
        if (k == sizeof chunk) {
            put(r, t, chunk, k);
            k = 0;
        }
    }
    put(r, t, chunk, k);
}

/* ---- the "already written" set ---- */

static const uint64_t seen_salt[CH_TABLES] = {
    0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0,
};

/* true when the row for `hash` in table t was written before; marks it written otherwise. */
static bool seen_check(struct seen *s, int t, uint64_t hash)
{
    if (!s->slot)
        return false;                    /* no set (allocation failed): always write */
    uint64_t key = hash ^ seen_salt[t];
    if (key == 0)
        key = 1;
    if (s->n >= SEEN_SLOTS / 2) {
        memset(s->slot, 0, SEEN_SLOTS * sizeof *s->slot);
        s->n = 0;
    }
    size_t j = (size_t)(key * 0x9e3779b97f4a7c15ull >> 40) & (SEEN_SLOTS - 1);
    for (; s->slot[j]; j = (j + 1) & (SEEN_SLOTS - 1))
        if (s->slot[j] == key)
            return true;
    s->slot[j] = key;
    s->n++;
    return false;
}

void ch_rows_forget(struct ch_rows *r)
{
    if (r->seen.slot)
        memset(r->seen.slot, 0, SEEN_SLOTS * sizeof *r->seen.slot);
    r->seen.n = 0;
}

/* ---- the per-request frame memo ---- */

static size_t memo_index(const struct memo *m, uint64_t key)
{
    return (size_t)((key + 1) * 0x9e3779b97f4a7c15ull >> 32) & (m->cap - 1);
}

static bool memo_get(const struct memo *m, uint64_t key, uint64_t *hash)
{
    if (!m->cap)
        return false;
    for (size_t j = memo_index(m, key); m->slot[j].gen == m->gen; j = (j + 1) & (m->cap - 1)) {
        if (m->slot[j].key == key) {
            *hash = m->slot[j].hash;
            return true;
        }
    }
    return false;
}

static void memo_put_slot(struct memo *m, uint64_t key, uint64_t hash)
{
    size_t j = memo_index(m, key);
    while (m->slot[j].gen == m->gen)
        j = (j + 1) & (m->cap - 1);
    m->slot[j] = (struct memo_slot){ key, hash, m->gen };
    m->n++;
}

/* A failed growth only loses the memo's speed-up, never a row. */
static void memo_put(struct memo *m, uint64_t key, uint64_t hash)
{
    if (m->n + 1 > m->cap / 2) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct memo_slot *s = calloc(cap, sizeof *s);
        if (!s)
            return;
        struct memo old = *m;
        m->slot = s;
        m->cap = cap;
        m->n = 0;
        m->gen = 1;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slot[i].gen == old.gen)
                memo_put_slot(m, old.slot[i].key, old.slot[i].hash);
        free(old.slot);
    }
    memo_put_slot(m, key, hash);
}

static void memo_reset(struct memo *m)
{
    m->n = 0;
    if (++m->gen == 0) {                 /* wrapped: stale slots could look current */
        if (m->slot)
            memset(m->slot, 0, m->cap * sizeof *m->slot);
        m->gen = 1;
    }
}

/* ---- attribute values as text ---- */

/* Renders attrs into r->attrs; false on out of memory. */
static bool render_attrs(struct ch_rows *r, struct lb_attrs attrs)
{
    struct rendered *ra = &r->attrs;
    buf_reset(&ra->text);
    ra->n = 0;
    if (attrs.n > ra->cap) {
        void *p = realloc(ra->item, attrs.n * sizeof *ra->item);
        if (!p)
            return false;
        ra->item = p;
        ra->cap = attrs.n;
    }
    for (size_t i = 0; i < attrs.n; i++) {
        const struct lb_attr *a = &attrs.v[i];
        ra->item[i].koff = ra->text.len;
        ra->item[i].klen = a->key.n;
        if (!buf_append(&ra->text, a->key.p, a->key.n))
            return false;
        ra->item[i].voff = ra->text.len;
        if (!ch_render_value(&ra->text, &a->value, false))
            return false;
        ra->item[i].vlen = ra->text.len - ra->item[i].voff;
    }
    ra->n = attrs.n;
    return true;
}

static lb_str rendered_key(const struct rendered *ra, size_t i)
{
    return (lb_str){ (const char *)ra->text.data + ra->item[i].koff, ra->item[i].klen };
}

static lb_str rendered_value(const struct rendered *ra, size_t i)
{
    return (lb_str){ (const char *)ra->text.data + ra->item[i].voff, ra->item[i].vlen };
}

static uint64_t hash_rendered(uint64_t h, const struct rendered *ra)
{
    h = ch_fnv_u64(h, ra->n);
    for (size_t i = 0; i < ra->n; i++)
        h = ch_fnv_str(ch_fnv_str(h, rendered_key(ra, i)), rendered_value(ra, i));
    return h;
}

static void put_rendered(struct ch_rows *r, int t, const struct rendered *ra)
{
    put_varint(r, t, ra->n);
    for (size_t i = 0; i < ra->n; i++)
        put_lbstr(r, t, rendered_key(ra, i));
    put_varint(r, t, ra->n);
    for (size_t i = 0; i < ra->n; i++)
        put_lbstr(r, t, rendered_value(ra, i));
}

static lb_str attr_string(struct lb_attrs attrs, const char *key, lb_str dflt)
{
    const struct lb_attr *a = lb_attrs_find(attrs, key);
    return a && a->value.kind == LB_VALUE_STRING ? a->value.u.str : dflt;
}

static int64_t attr_int(struct lb_attrs attrs, const char *key, int64_t dflt)
{
    const struct lb_attr *a = lb_attrs_find(attrs, key);
    return a && a->value.kind == LB_VALUE_INT ? a->value.u.integer : dflt;
}

/* ---- life cycle ---- */

struct ch_rows *ch_rows_new(size_t limit)
{
    struct ch_rows *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->limit = limit;
    for (int t = 0; t < CH_TABLES; t++)
        buf_init(&r->part[t], limit);
    buf_init(&r->attrs.text, limit);
    buf_init(&r->content, limit);
    buf_init(&r->scratch, limit);
    buf_init(&r->loc_blob, limit);
    buf_init(&r->map_blob, limit);
    buf_init(&r->sample_blob, limit);
    buf_init(&r->frame_key, limit);
    r->frame_cache = ch_frame_cache_new();   /* NULL: works, every frame hashed */
    r->seen.slot = calloc(SEEN_SLOTS, sizeof *r->seen.slot);   /* NULL: works, more rows */
    r->frame_memo.gen = 1;
    r->gzip = true;
    return r;
}

void ch_rows_free(struct ch_rows *r)
{
    if (!r)
        return;
    for (int t = 0; t < CH_TABLES; t++)
        buf_free(&r->part[t]);
    buf_free(&r->attrs.text);
    buf_free(&r->content);
    buf_free(&r->scratch);
    buf_free(&r->loc_blob);
    buf_free(&r->map_blob);
    buf_free(&r->sample_blob);
    buf_free(&r->frame_key);
    ch_frame_cache_free(r->frame_cache);
    free(r->attrs.item);
    free(r->seen.slot);
    free(r->frame_memo.slot);
    free(r->frame_hash);
    free(r);
}

uint64_t ch_rows_samples(const struct ch_rows *r) { return r->rows[CH_SAMPLES]; }

size_t ch_rows_bytes(const struct ch_rows *r)
{
    size_t n = 0;
    for (int t = 0; t < CH_TABLES; t++)
        n += r->part[t].len;
    return n;
}

void ch_rows_pending(const struct ch_rows *r, int t, const uint8_t **p, size_t *n, uint32_t *rows)
{
    assert(t >= 0 && t < CH_TABLES && r->part[t].len >= r->mark_len[t] && r->rows[t] >= r->mark_rows[t]);
    *p = r->part[t].data ? r->part[t].data + r->mark_len[t] : NULL;
    *n = r->part[t].len - r->mark_len[t];
    *rows = r->rows[t] - r->mark_rows[t];
}

uint64_t ch_rows_batch_id(const struct ch_rows *r) { return r->batch_id; }

const char *ch_rows_failed(const struct ch_rows *r) { return r->oom || r->why[0] ? r->why : NULL; }

static void fail(struct ch_rows *r, const char *why)
{
    if (!r->why[0])
        snprintf(r->why, sizeof r->why, "%s", why);
}

/* The byte limit and allocation failures both surface here, once per event. */
static void check_limit(struct ch_rows *r)
{
    if (r->oom || ch_rows_bytes(r) > r->limit) {
        r->oom = true;
        char why[160];
        snprintf(why, sizeof why, "the ClickHouse batch would pass %zu bytes (out of memory or a very large request)",
                 r->limit);
        fail(r, why);
    }
}

void ch_rows_request_begin(struct ch_rows *r, const struct lb_request *req, uint64_t batch_id_if_new)
{
    if (r->req)                 /* the previous request was neither ended nor aborted */
        ch_rows_rollback(r);
    if (r->rows[CH_SAMPLES] == 0 && ch_rows_bytes(r) == 0)
        r->batch_id = batch_id_if_new;
    for (int t = 0; t < CH_TABLES; t++) {
        r->mark_len[t] = r->part[t].len;
        r->mark_rows[t] = r->rows[t];
    }
    r->req = req;
    r->prof = NULL;
    r->oom = false;
    r->why[0] = 0;
    memo_reset(&r->frame_memo);
    buf_reset(&r->content);
    r->n_res = r->n_prof = 0;
}

void ch_rows_commit(struct ch_rows *r)
{
    for (int t = 0; t < CH_TABLES; t++) {
        r->mark_len[t] = r->part[t].len;
        r->mark_rows[t] = r->rows[t];
    }
    r->req = NULL;
    r->prof = NULL;
}

void ch_rows_rollback(struct ch_rows *r)
{
    for (int t = 0; t < CH_TABLES; t++) {
        r->part[t].len = r->mark_len[t];
        r->rows[t] = r->mark_rows[t];
    }
    ch_rows_forget(r);
    r->oom = false;
    r->why[0] = 0;
    r->req = NULL;
    r->prof = NULL;
}

/* ---- resources ---- */

void ch_rows_resource(struct ch_rows *r, const struct lb_resource *res)
{
    if (ch_rows_failed(r))
        return;
    r->res.service = attr_string(res->attrs, "service.name", LB_STR_NULL);
    r->res.container = attr_string(res->attrs, "container.id", LB_STR_NULL);
    r->res.host = attr_string(res->attrs, "host.name", LB_STR_NULL);
    r->res.executable = attr_string(res->attrs, "process.executable.name", LB_STR_NULL);
    r->res.pid = attr_int(res->attrs, "process.pid", 0);
    if (!render_attrs(r, res->attrs)) {
        r->oom = true;
        check_limit(r);
        return;
    }
    uint64_t h = ch_fnv_str(hash_rendered(CH_FNV_OFFSET, &r->attrs), res->schema_url);
    r->res.hash = h;
    r->n_res++;
    r->n_prof = 0;
    if (!ch_content_resource(&r->content, &r->scratch, res))
        r->oom = true;
    if (!seen_check(&r->seen, CH_RESOURCES, h)) {
        put_u64(r, CH_RESOURCES, h);
        put_lbstr(r, CH_RESOURCES, res->schema_url);
        put_rendered(r, CH_RESOURCES, &r->attrs);
        r->rows[CH_RESOURCES]++;
    }
    check_limit(r);
}

void ch_rows_profile(struct ch_rows *r, const struct lb_profile *p)
{
    r->prof = p;
    if (ch_rows_failed(r))
        return;
    r->n_prof++;
    if (!ch_content_profile(&r->content, &r->scratch, p))
        r->oom = true;
    check_limit(r);
}

/* The request's row (its resources, scopes and profiles: content.h), written last so that
 * samples can name it by position: the batch's requests so far. */
void ch_rows_request_end(struct ch_rows *r)
{
    if (ch_rows_failed(r) || !r->req)
        return;
    const struct lb_request *q = r->req;
    const int T = CH_REQUESTS;
    uint64_t secs = q->received_unix_nano / 1000000000u;
    put_u32(r, T, secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs);
    put_u64(r, T, r->batch_id);
    put_u32(r, T, r->rows[T]);
    put_u64(r, T, q->received_unix_nano);
    const char *text[3] = { q->transport, q->peer, q->layout };
    for (int i = 0; i < 3; i++)
        put_str(r, T, text[i] ? text[i] : "", text[i] ? strlen(text[i]) : 0);
    put_str(r, T, r->content.data, r->content.len);
    r->rows[T]++;
    check_limit(r);
}

/* ---- frames and stacks ---- */

/* The location's attributes are the frame type alone (or none, without one): what most
 * profilers send, and a function of f->type. */
static bool usual_location_attrs(const struct lb_frame *f)
{
    struct lb_attrs a = f->location_attrs;
    if (a.n == 0)
        return f->type.n == 0;
    return a.n == 1 && a.v[0].unit.n == 0 && a.v[0].value.kind == LB_VALUE_STRING &&
           LB_STR_EQ(a.v[0].key, "profile.frame.type") && a.v[0].value.u.str.n == f->type.n &&
           (f->type.n == 0 || memcmp(a.v[0].value.u.str.p, f->type.p, f->type.n) == 0);
}

/* The mapping's attributes are its preferred build id alone (or none, without one). */
static bool usual_mapping_attrs(const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    struct lb_attrs a = f->has_mapping ? map->attrs : (struct lb_attrs){ 0 };
    if (a.n == 0)
        return map->build_id.n == 0;
    return a.n == 1 && a.v[0].unit.n == 0 && a.v[0].value.kind == LB_VALUE_STRING &&
           a.v[0].value.u.str.n == map->build_id.n &&
           (map->build_id.n == 0 || memcmp(a.v[0].value.u.str.p, map->build_id.p, map->build_id.n) == 0) &&
           lb_str_eq(lb_build_id_kind(a.v[0].key), map->build_id_kind.p, map->build_id_kind.n) &&
           map->build_id_kind.n > 0;
}

/* The location's (or the mapping's) attributes into r->loc_blob (r->map_blob); false when out
 * of memory (r->oom set). */
static bool encode_blobs(struct ch_rows *r, const struct lb_frame *f, bool location)
{
    struct buf *b = location ? &r->loc_blob : &r->map_blob;
    struct lb_attrs a = location ? f->location_attrs : f->has_mapping ? lb_mapping_of(f)->attrs : (struct lb_attrs){ 0 };
    buf_reset(b);
    if (!attrblob_put(b, &r->scratch, a))
        r->oom = true;
    return !r->oom;
}

/* The name a flame graph shows, as in the folded format: the function of a symbolized frame,
 * "<mapping file>+0x<address>" otherwise. */
static void put_frame_name(struct ch_rows *r, const struct lb_frame *f)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    if (f->symbolized) {
        put_lbstr(r, CH_FRAMES, f->function);
        return;
    }
    char hex[24];
    int n = snprintf(hex, sizeof hex, "+0x%llx", (unsigned long long)f->address);
    size_t mlen = f->has_mapping ? map->file.n : 0;
    put_varint(r, CH_FRAMES, mlen + (size_t)n);
    if (mlen)
        put(r, CH_FRAMES, map->file.p, mlen);
    put(r, CH_FRAMES, hex, (size_t)n);
}

static void put_frame_row(struct ch_rows *r, const struct lb_frame *f, uint64_t h)
{
    const struct lb_mapping *map = lb_mapping_of(f);
    put_u64(r, CH_FRAMES, h);
    put_lbstr(r, CH_FRAMES, f->type);
    put_frame_name(r, f);
    put_lbstr(r, CH_FRAMES, f->function);
    put_lbstr(r, CH_FRAMES, f->system_name);
    put_lbstr(r, CH_FRAMES, f->file);
    put_i64(r, CH_FRAMES, f->line);
    put_i64(r, CH_FRAMES, f->column);
    put_u64(r, CH_FRAMES, f->address);
    put_u8(r, CH_FRAMES, f->symbolized);
    put_lbstr(r, CH_FRAMES, f->has_mapping ? map->file : LB_STR_NULL);
    put_lbstr(r, CH_FRAMES, map->build_id);
    put_lbstr(r, CH_FRAMES, map->build_id_kind);
    put_i64(r, CH_FRAMES, f->start_line);
    put_u32(r, CH_FRAMES, f->line_index);
    put_u32(r, CH_FRAMES, f->line_count);
    put_u8(r, CH_FRAMES, f->has_mapping);
    put_u64(r, CH_FRAMES, f->has_mapping ? map->start : 0);
    put_u64(r, CH_FRAMES, f->has_mapping ? map->limit : 0);
    put_u64(r, CH_FRAMES, f->has_mapping ? map->offset : 0);
    put_str(r, CH_FRAMES, r->loc_blob.data, r->loc_blob.len);
    put_str(r, CH_FRAMES, r->map_blob.data, r->map_blob.len);
    r->rows[CH_FRAMES]++;
}

/* Hashes the sample's stack, writing the frame and stack rows not written before. The stack
 * is hashed from its frames every time: stack_index is no identity (v1.7 has no stack table
 * and passes the start of a slice), while a location index is one for the whole request. */
static uint64_t stack_hash(struct ch_rows *r, const struct lb_sample *s)
{
    uint64_t h;
    if (s->n_frames > r->frame_hash_cap) {
        uint64_t *p = realloc(r->frame_hash, s->n_frames * sizeof *p);
        if (!p) {
            r->oom = true;
            return 0;
        }
        r->frame_hash = p;
        r->frame_hash_cap = s->n_frames;
    }
    h = ch_fnv_u64(CH_FNV_OFFSET, s->n_frames);
    for (size_t i = 0; i < s->n_frames; i++) {
        const struct lb_frame *f = &s->frames[i];
        uint64_t key = (uint64_t)f->location_index << 16 | f->line_index, fh;
        if (!memo_get(&r->frame_memo, key, &fh)) {
            /* the usual attribute lists follow from fields hashed anyway: encoded only for
             * the row; the others are hashed as encoded */
            bool loc_usual = usual_location_attrs(f), map_usual = usual_mapping_attrs(f);
            if ((!loc_usual && !encode_blobs(r, f, true)) || (!map_usual && !encode_blobs(r, f, false)))
                return 0;
            if (!ch_frame_key(&r->frame_key, f, loc_usual ? NULL : &r->loc_blob, map_usual ? NULL : &r->map_blob)) {
                r->oom = true;
                return 0;
            }
            fh = ch_frame_cache_hash(r->frame_cache, r->frame_key.data, r->frame_key.len);
            memo_put(&r->frame_memo, key, fh);
            if (!seen_check(&r->seen, CH_FRAMES, fh)) {
                if ((loc_usual && !encode_blobs(r, f, true)) || (map_usual && !encode_blobs(r, f, false)))
                    return 0;
                put_frame_row(r, f, fh);
            }
        }
        r->frame_hash[i] = fh;
        h = ch_fnv_u64(h, fh);
    }
    if (!seen_check(&r->seen, CH_STACKS, h)) {
        put_u64(r, CH_STACKS, h);
        put_varint(r, CH_STACKS, s->n_frames);
        for (size_t i = 0; i < s->n_frames; i++)
            put_u64(r, CH_STACKS, r->frame_hash[i]);
        r->rows[CH_STACKS]++;
    }
    return h;
}

/* ---- samples ---- */

/* The sample's time: its earliest timestamp, else the profile's, else the request's arrival. */
static uint64_t sample_time(const struct ch_rows *r, const struct lb_sample *s)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < s->n_timestamps; i++)
        if (s->timestamps[i] < t)
            t = s->timestamps[i];
    if (t == UINT64_MAX || t == 0)
        t = s->profile->time_unix_nano;
    if (t == 0 && r->req)
        t = r->req->received_unix_nano;
    return t;
}

void ch_rows_sample(struct ch_rows *r, const struct lb_sample *s)
{
    if (ch_rows_failed(r))
        return;
    const struct lb_profile *p = s->profile;
    const int T = CH_SAMPLES;
    uint64_t sh = stack_hash(r, s);
    if (!render_attrs(r, s->attrs))
        r->oom = true;
    if (r->oom) {
        check_limit(r);
        return;
    }
    uint64_t t = sample_time(r, s);
    uint64_t secs = t / 1000000000u;
    put_u32(r, T, secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs);
    put_u64(r, T, t);
    put_lbstr(r, T, r->res.service);
    put_lbstr(r, T, r->res.container);
    put_lbstr(r, T, r->res.host);
    put_i64(r, T, attr_int(s->attrs, "process.pid", r->res.pid));
    put_lbstr(r, T, attr_string(s->attrs, "process.executable.name", r->res.executable));
    put_lbstr(r, T, attr_string(s->attrs, "thread.name", LB_STR_NULL));
    put_i64(r, T, attr_int(s->attrs, "thread.id", 0));
    put_lbstr(r, T, p->sample_type);
    put_lbstr(r, T, p->sample_unit);
    put_lbstr(r, T, p->period_type);
    put_lbstr(r, T, p->period_unit);
    put_i64(r, T, p->period);
    put_i64(r, T, lb_sample_weight(s));
    put_u64(r, T, sh);
    put_u64(r, T, r->res.hash);
    put_varint(r, T, s->n_timestamps);
    for (size_t i = 0; i < s->n_timestamps; i++)
        put_u64(r, T, s->timestamps[i]);
    put_varint(r, T, s->n_values);
    for (size_t i = 0; i < s->n_values; i++)
        put_i64(r, T, s->values[i]);
    put_rendered(r, T, &r->attrs);
    put_hex(r, T, s->has_link ? s->trace_id : LB_STR_NULL);
    put_hex(r, T, s->has_link ? s->span_id : LB_STR_NULL);
    put_hex(r, T, p->profile_id);
    put_lbstr(r, T, p->scope ? p->scope->name : LB_STR_NULL);
    const char *layout = r->req && r->req->layout ? r->req->layout : "";
    put_str(r, T, layout, strlen(layout));
    put_u64(r, T, r->batch_id);
    put_u32(r, T, r->rows[T]);
    /* its place in its request (schema version 2) */
    put_u32(r, T, r->rows[CH_REQUESTS]);
    put_u32(r, T, r->n_res ? r->n_res - 1 : 0);
    put_u32(r, T, r->n_prof ? r->n_prof - 1 : 0);
    /* typed only when the text cannot tell: strings without units read back from it alone */
    bool text_enough = true;
    for (size_t i = 0; i < s->attrs.n && text_enough; i++)
        text_enough = s->attrs.v[i].value.kind == LB_VALUE_STRING && s->attrs.v[i].unit.n == 0;
    buf_reset(&r->sample_blob);
    if (!text_enough && !attrblob_put(&r->sample_blob, &r->scratch, s->attrs))
        r->oom = true;
    put_str(r, T, r->sample_blob.data, r->sample_blob.len);
    r->rows[T]++;
    check_limit(r);
}

/* ---- sealing ---- */

void ch_rows_set_gzip(struct ch_rows *r, bool gzip) { r->gzip = gzip; }

static int compress_part(struct ch_rows *r, int t, struct ch_part *out)
{
    out->rows = r->mark_rows[t];
    out->len = 0;
    out->data = NULL;
    if (out->rows == 0)
        return 0;
    if (!r->gzip) {
        /* A copy, not the buffer itself: the open batch keeps its grown buffer for the next
         * rows, and a copy costs a small fraction of what gzip did. */
        out->data = malloc(r->mark_len[t]);
        if (!out->data)
            return -1;
        memcpy(out->data, r->part[t].data, r->mark_len[t]);
        out->len = r->mark_len[t];
        return 0;
    }
    struct buf gz;
    buf_init(&gz, SIZE_MAX);
    /* Level 1: most of the size win of gzip for a fraction of its time; this runs on the
     * event loop. */
    if (gzip_deflate(r->part[t].data, r->mark_len[t], &gz, 1) != 0) {
        buf_free(&gz);
        return -1;
    }
    out->data = gz.data;
    out->len = gz.len;
    return 0;
}

struct ch_batch *ch_rows_seal(struct ch_rows *r, uint64_t seq)
{
    assert(r->req == NULL);   /* between requests: every row is committed */
    struct ch_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->id = r->batch_id;
    b->schema = CH_SCHEMA_VERSION;
    b->seq = seq;
    b->gzip = r->gzip;
    for (int t = 0; t < CH_TABLES; t++) {
        if (compress_part(r, t, &b->part[t]) != 0) {
            ch_batch_free(b);
            return NULL;
        }
        b->bytes += b->part[t].len;
    }
    for (int t = 0; t < CH_TABLES; t++) {
        /* Keep a moderate buffer for the next batch; give back what a burst made grow. */
        size_t keep = r->part[t].cap;
        r->part[t].len = r->mark_len[t] = 0;
        r->rows[t] = r->mark_rows[t] = 0;
        if (keep > ((size_t)8 << 20))
            buf_free(&r->part[t]);
    }
    r->batch_id = 0;
    return b;
}

void ch_batch_free(struct ch_batch *b)
{
    if (!b)
        return;
    for (int t = 0; t < CH_TABLES; t++)
        free(b->part[t].data);
    free(b);
}
