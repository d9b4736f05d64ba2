/*
 * resolve.c - dictionary indices -> resolved views, for decode.c (decoder.h).
 *
 * Dictionary entries stay encoded in the request buffer; the first time a mapping, location,
 * attribute or stack is needed it is decoded, checked and memoised for the rest of the
 * request, so a location shared by a thousand stacks is decoded once, and a stack shared by a
 * thousand samples is resolved once (samples point at its frames, nothing is copied per sample).
 */
#include <stdlib.h>
#include <string.h>
#include <pb_decode.h>

#include "lib/buf.h"
#include "otlp/decoder.h"

/* ---------- the attribute arena ---------- */

#define ARENA_BLOCK 4096

/* Room for `n` attributes that stay where they are until the next request; NULL when out of
 * memory. */
static struct lb_attr *arena_alloc(struct attr_arena *a, size_t n)
{
    if (n == 0)
        return NULL;
    if (a->cur && a->cur->cap - a->cur->n >= n)
        goto take;
    if (a->cur && a->cur->next && a->cur->next->cap >= n) {   /* a block of an earlier request */
        a->cur = a->cur->next;
        a->cur->n = 0;
        goto take;
    }
    size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    if (cap > VEC_MAX_ITEMS)
        return NULL;
    struct attr_block *b = malloc(sizeof *b + cap * sizeof b->v[0]);
    if (!b)
        return NULL;
    b->n = 0;
    b->cap = cap;
    if (a->cur) {
        b->next = a->cur->next;
        a->cur->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    a->cur = b;
take:
    a->cur->n += n;
    return a->cur->v + a->cur->n - n;
}

static void arena_reset(struct attr_arena *a)
{
    a->cur = a->head;
    if (a->cur)
        a->cur->n = 0;
}

static void arena_free(struct attr_arena *a)
{
    for (struct attr_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = a->cur = NULL;
}

/* ---------- dictionary lookups ---------- */

bool dec_string_at(struct otlp_decoder *d, int64_t idx, const char *what, lb_str *out)
{
    if (dict_string(&d->dict, idx, out))
        return true;
    return otlp_reject(&d->rep, "%s %lld out of range (string_table has %zu entries)", what,
                       (long long)idx, dict_len(&d->dict, DICT_STRING));
}

bool dec_entry_at(struct otlp_decoder *d, enum dict_table t, int64_t idx, const char *what, pb_ref_t *out)
{
    static const char *const names[DICT_TABLES] = {
        "mapping_table", "location_table", "function_table", "link_table", "string_table",
        "attribute_table", "stack_table", "attribute_units",
    };
    if (dict_entry(&d->dict, t, idx, out))
        return true;
    return otlp_reject(&d->rep, "%s %lld out of range (%s has %zu entries)", what, (long long)idx,
                       names[t], dict_len(&d->dict, t));
}

static int unit_cmp(const void *a, const void *b)
{
    lb_str x = ((const struct unit_entry *)a)->key, y = ((const struct unit_entry *)b)->key;
    int c = memcmp(x.p, y.p, x.n < y.n ? x.n : y.n);
    return c ? c : (x.n > y.n) - (x.n < y.n);
}

/* v1.7: the attribute_units table, resolved and sorted by key, once per request. */
static bool prepare_units(struct otlp_decoder *d)
{
    size_t n = dict_len(&d->dict, DICT_ATTRIBUTE_UNIT);
    VEC_RESET(d->units);
    if (!VEC_RESERVE(d->units, n))
        return otlp_out_of_memory(&d->rep);
    for (size_t i = 0; i < n; i++) {
        pb_ref_t ref;
        struct raw_attribute_unit ru = { 0, 0 };
        struct unit_entry e;
        const char *why;
        if (!dict_entry(&d->dict, DICT_ATTRIBUTE_UNIT, (int64_t)i, &ref))
            return false;
        if (!dec_entry_decode(d, DICT_ATTRIBUTE_UNIT, (int64_t)i, ref, &ru, &why))
            return otlp_reject(&d->rep, "attribute_units[%zu] is malformed: %s", i, why);
        if (!dec_string_at(d, ru.attribute_key_strindex, "attribute_units attribute_key_strindex", &e.key) ||
            !dec_string_at(d, ru.unit_strindex, "attribute_units unit_strindex", &e.unit))
            return false;
        if (e.key.n && e.unit.n)
            d->units.v[d->units.n++] = e;
    }
    if (d->units.n > 1)
        qsort(d->units.v, d->units.n, sizeof *d->units.v, unit_cmp);
    d->units_ready = true;
    return true;
}

/* The unit attribute_units gives `key` (v1.7), or empty. */
static bool unit_of(struct otlp_decoder *d, lb_str key, lb_str *unit)
{
    if (!d->units_ready && !prepare_units(d))
        return false;
    struct unit_entry probe = { key, LB_STR_NULL };
    const struct unit_entry *e = d->units.n && key.n
        ? bsearch(&probe, d->units.v, d->units.n, sizeof *d->units.v, unit_cmp) : NULL;
    *unit = e ? e->unit : LB_STR_NULL;
    return true;
}

static bool attribute_at(struct otlp_decoder *d, int32_t idx, const struct lb_attr **out)
{
    /* Resolved before in this request (most lookups): every check below has passed. */
    if (idx >= 0 && (size_t)idx < dict_len(&d->dict, DICT_ATTRIBUTE) && d->attr_memo.v[idx].state == RESOLVED) {
        *out = &d->attr_memo.v[idx].attr;
        return true;
    }
    pb_ref_t ref;
    if (!dec_entry_at(d, DICT_ATTRIBUTE, idx, "attribute index", &ref))
        return false;
    if (ref.n == 0 && idx == 0 && dict_len(&d->dict, DICT_ATTRIBUTE) == 0)
        return otlp_reject(&d->rep, "attribute index 0 refers to the null attribute");
    struct attr_memo *m = &d->attr_memo.v[idx];
    if (m->state == RESOLVED) {
        *out = &m->attr;
        return true;
    }
    if (m->state == INVALID)
        return otlp_reject(&d->rep, "attribute_table[%d] is invalid", idx);
    m->state = INVALID;
    struct raw_attribute ra;
    const char *why;
    memset(&ra, 0, sizeof ra);
    if (!dec_entry_decode(d, DICT_ATTRIBUTE, idx, ref, &ra, &why))
        return otlp_reject(&d->rep, "attribute_table[%d] is malformed: %s", idx, why);
    struct lb_attr *a = &m->attr;
    memset(a, 0, sizeof *a);
    a->key = (lb_str){ (const char *)ra.key.p, ra.key.n };
    if (a->key.n == 0 && !dec_string_at(d, ra.key_strindex, "attribute key_strindex", &a->key))
        return false;
    if (!dec_string_at(d, ra.unit_strindex, "attribute unit_strindex", &a->unit))
        return false;
    if (a->unit.n == 0 && dict_len(&d->dict, DICT_ATTRIBUTE_UNIT) && !unit_of(d, a->key, &a->unit))
        return false;
    if (!dict_value(&d->dict, &ra.value, 0, &a->value))
        return otlp_reject(&d->rep, "attribute_table[%d] string_value_strindex %lld out of range", idx,
                           (long long)ra.value.i);
    m->state = RESOLVED;
    *out = a;
    return true;
}

bool dec_attributes_at(struct otlp_decoder *d, const ivec *idx, attrvec *out)
{
    if (!VEC_RESERVE(*out, out->n + idx->n))
        return otlp_out_of_memory(&d->rep);
    size_t n_attrs = dict_len(&d->dict, DICT_ATTRIBUTE);
    for (size_t i = 0; i < idx->n; i++) {
        int32_t at = idx->v[i];
        const struct lb_attr *a;
        /* Resolved before in this request: every check attribute_at makes has passed. */
        if (at >= 0 && (size_t)at < n_attrs && d->attr_memo.v[at].state == RESOLVED)
            a = &d->attr_memo.v[at].attr;
        else if (!attribute_at(d, at, &a))
            return false;
        out->v[out->n++] = *a;
    }
    return true;
}

/* Each index times an odd constant of its own position, summed: the multiplications do not
 * wait for one another (a list is hashed every sample). */
static uint32_t list_hash(const int32_t *v, size_t n)
{
    uint32_t h = (uint32_t)n * 0x85ebca6bu;
    for (size_t i = 0; i < n; i++)
        h += ((uint32_t)v[i] + 1u) * (0x9e3779b1u + 2u * (uint32_t)i);
    return h ^ (h >> 15);
}

static bool same_indices(const int32_t *a, const int32_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

bool dec_sample_attributes(struct otlp_decoder *d, const ivec *idx, struct lb_attrs *out)
{
    size_t n = idx->n;
    if (n == 0) {
        *out = (struct lb_attrs){ NULL, 0 };
        return true;
    }
    uint32_t h = list_hash(idx->v, n);
    struct attr_list_memo *m = &d->attr_lists[(h * 0x9e3779b1u) >> 24];
    if (m->n == n && m->hash == h && same_indices(d->list_idx.v + m->idx_first, idx->v, n)) {
        *out = (struct lb_attrs){ d->list_attrs.v + m->attrs_first, n };
        return true;
    }
    if (d->list_attrs.n + n > ATTR_LIST_POOL) {   /* no room left to keep it: resolved alone */
        VEC_RESET(d->sample_attrs);
        if (!dec_attributes_at(d, idx, &d->sample_attrs))
            return false;
        *out = (struct lb_attrs){ d->sample_attrs.v, d->sample_attrs.n };
        return true;
    }
    size_t first = d->list_attrs.n;
    if (!dec_attributes_at(d, idx, &d->list_attrs)) {
        d->list_attrs.n = first;
        return false;
    }
    size_t idx_first = d->list_idx.n;
    if (!VEC_RESERVE(d->list_idx, idx_first + n)) {
        d->list_attrs.n = first;
        return otlp_out_of_memory(&d->rep);
    }
    buf_copy((uint8_t *)(d->list_idx.v + idx_first), (const uint8_t *)idx->v, n * sizeof *idx->v);
    d->list_idx.n += n;
    *m = (struct attr_list_memo){ h, (uint32_t)n, (uint32_t)idx_first, (uint32_t)first };
    *out = (struct lb_attrs){ d->list_attrs.v + first, n };
    return true;
}

/* The attributes at `idx`, copied into the arena: a list frames can keep pointing to. With
 * `frame_type`, the value of the last string attribute "profile.frame.type" among them (left
 * as it is when there is none), read from the memo: reading it back from the copy just made
 * stalled on the stores (a tenth of the stacks' time on small requests). */
static bool attribute_list(struct otlp_decoder *d, const ivec *idx, struct lb_attrs *out, lb_str *frame_type)
{
    struct lb_attr *v = arena_alloc(&d->arena, idx->n);
    if (idx->n && !v)
        return otlp_out_of_memory(&d->rep);
    for (size_t i = 0; i < idx->n; i++) {
        const struct lb_attr *a;
        if (!attribute_at(d, idx->v[i], &a))
            return false;
        if (frame_type && a->value.kind == LB_VALUE_STRING && LB_STR_EQ(a->key, "profile.frame.type"))
            *frame_type = a->value.u.str;
        v[i] = *a;
    }
    *out = (struct lb_attrs){ v, idx->n };
    return true;
}

static bool mapping_at(struct otlp_decoder *d, int32_t idx, const struct lb_mapping **out)
{
    pb_ref_t ref;
    if (!dec_entry_at(d, DICT_MAPPING, idx, "mapping_index", &ref))
        return false;
    if (dict_len(&d->dict, DICT_MAPPING) == 0) {   /* idx 0 of an empty table */
        *out = &lb_no_mapping;
        return true;
    }
    struct mapping_memo *memo = &d->mapping_memo.v[idx];
    struct lb_mapping *m = &memo->m;
    if (memo->state == RESOLVED) {
        *out = m;
        return true;
    }
    if (memo->state == INVALID)
        return otlp_reject(&d->rep, "mapping_table[%d] is invalid", idx);
    memo->state = INVALID;
    struct raw_mapping rm;
    const char *why;
    VEC_RESET(d->attr_idx);
    memset(&rm, 0, sizeof rm);
    rm.attribute_indices = &d->attr_idx;
    if (!dec_entry_decode(d, DICT_MAPPING, idx, ref, &rm, &why))
        return otlp_reject(&d->rep, "mapping_table[%d] is malformed: %s", idx, why);
    if (!dec_string_at(d, rm.filename_strindex, "mapping filename_strindex", &m->file))
        return false;
    m->start = rm.memory_start;
    m->limit = rm.memory_limit;
    m->offset = rm.file_offset;
    m->flags = (uint8_t)((rm.has_functions ? LB_MAPPING_HAS_FUNCTIONS : 0) |
                         (rm.has_filenames ? LB_MAPPING_HAS_FILENAMES : 0) |
                         (rm.has_line_numbers ? LB_MAPPING_HAS_LINE_NUMBERS : 0) |
                         (rm.has_inline_frames ? LB_MAPPING_HAS_INLINE_FRAMES : 0));
    m->build_id = m->build_id_kind = LB_STR_NULL;
    if (!attribute_list(d, &d->attr_idx, &m->attrs, NULL))
        return false;
    /* Build ids are mapping attributes (all of them are in attrs); the frame line names the
     * one a symbol server indexes by first: gnu, then go, then htlhash. */
    static const struct { const char *key; size_t keylen; const char *kind; } kinds[] = {
        { "process.executable.build_id.gnu", 31, "gnu" },
        { "process.executable.build_id.go", 30, "go" },
        { "process.executable.build_id.htlhash", 35, "htlhash" },
    };
    int best = (int)(sizeof kinds / sizeof kinds[0]);
    for (size_t i = 0; i < m->attrs.n; i++) {
        const struct lb_attr *a = &m->attrs.v[i];
        for (int k = 0; k < best; k++) {
            if (lb_str_eq(a->key, kinds[k].key, kinds[k].keylen) &&
                (a->value.kind == LB_VALUE_STRING || a->value.kind == LB_VALUE_BYTES)) {
                best = k;
                m->build_id = a->value.u.str;
                m->build_id_kind = (lb_str){ kinds[k].kind, strlen(kinds[k].kind) };
            }
        }
    }
    memo->state = RESOLVED;
    *out = m;
    return true;
}

static bool function_frame(struct otlp_decoder *d, int32_t idx, struct lb_frame *f)
{
    pb_ref_t ref;
    if (!dec_entry_at(d, DICT_FUNCTION, idx, "function_index", &ref))
        return false;
    struct raw_function rf;
    const char *why;
    memset(&rf, 0, sizeof rf);
    if (!dec_entry_decode(d, DICT_FUNCTION, idx, ref, &rf, &why))
        return otlp_reject(&d->rep, "function_table[%d] is malformed: %s", idx, why);
    f->start_line = rf.start_line;
    return dec_string_at(d, rf.name_strindex, "function name_strindex", &f->function) &&
           dec_string_at(d, rf.system_name_strindex, "function system_name_strindex", &f->system_name) &&
           dec_string_at(d, rf.filename_strindex, "function filename_strindex", &f->file);
}

/* Decodes location `idx` into frames appended to `pool` (frame_pool, or stack_pool when the
 * location is first met in a stack being kept there). */
static bool resolve_location(struct otlp_decoder *d, int32_t idx, pb_ref_t ref, struct location_memo *m,
                             framevec *pool)
{
    struct raw_location rl;
    const char *why;
    VEC_RESET(d->lines);
    VEC_RESET(d->loc_idx);
    memset(&rl, 0, sizeof rl);
    rl.lines = &d->lines;
    rl.attribute_indices = &d->loc_idx;
    if (!dec_entry_decode(d, DICT_LOCATION, idx, ref, &rl, &why))
        return otlp_reject(&d->rep, "location_table[%d] is malformed: %s", idx, why);
    if (d->lines.n > UINT16_MAX)
        return otlp_reject(&d->rep, "location_table[%d] has %zu lines (limit %u)", idx, d->lines.n,
                           UINT16_MAX);

    /* The frames are put together in their place in the pool (kept only when the whole
     * location resolves: the caller takes the pool back on failure): the first from the
     * location, the others copied from it, then each line's own fields. */
    size_t n = d->lines.n ? d->lines.n : 1;
    if (!VEC_RESERVE(*pool, pool->n + n))
        return otlp_out_of_memory(&d->rep);
    m->first = (uint32_t)pool->n;
    struct lb_frame *fr = pool->v + pool->n;
    fr[0] = d->blank_frame;
    fr[0].symbolized = d->lines.n > 0;
    fr[0].address = rl.address;
    fr[0].is_folded = rl.is_folded;
    fr[0].location_index = (uint32_t)idx;
    fr[0].line_count = (uint16_t)d->lines.n;
    if (!attribute_list(d, &d->loc_idx, &fr[0].location_attrs, &fr[0].type))
        return false;
    if (rl.mapping_index != 0 || dict_len(&d->dict, DICT_MAPPING) > 0) {
        const struct lb_mapping *mm = NULL;
        if (!mapping_at(d, rl.mapping_index, &mm))
            return false;
        /* Index 0 is "no mapping" (the null entry), whatever entry 0 holds; except in v1.7,
         * where an explicit 0 is entry 0. */
        fr[0].has_mapping = rl.mapping_index != 0 ||
                            (rl.mapping_explicit && dict_len(&d->dict, DICT_MAPPING) > 0);
        if (fr[0].has_mapping)
            fr[0].mapping = mm;
    }
    for (size_t i = 1; i < n; i++)
        fr[i] = fr[0];
    for (size_t i = 0; i < d->lines.n; i++) {
        const struct raw_line *l = &d->lines.v[i];
        fr[i].line_index = (uint16_t)i;
        fr[i].line = l->line;
        fr[i].column = l->column;
        if (!function_frame(d, l->function_index, &fr[i]))
            return false;
    }
    pool->n += n;
    m->count = (uint32_t)n;
    return true;
}

/* The frames of location `idx`: `count` of them from `(*pool)->v + *first`. A location not
 * resolved before is resolved into `build` (*built set): into stack_pool, it is in its place
 * in the stack being put together and need not be copied. Positions, not pointers: the pool
 * may move when the caller makes room. */
static bool location_frames(struct otlp_decoder *d, int32_t idx, framevec *build, framevec **pool,
                            size_t *first, size_t *count, bool *built)
{
    *built = false;
    /* A location met before in this request (most of a stack's): its index was checked then. */
    size_t n_locations = dict_len(&d->dict, DICT_LOCATION);
    if (idx >= 0 && (size_t)idx < n_locations && d->location_memo.v[idx].state == RESOLVED) {
        const struct location_memo *m = &d->location_memo.v[idx];
        *pool = m->in_stacks ? &d->stack_pool : &d->frame_pool;
        *first = m->first;
        *count = m->count;
        return true;
    }
    pb_ref_t ref;
    if (!dec_entry_at(d, DICT_LOCATION, idx, "location index", &ref))
        return false;
    /* idx 0 of an empty table is the null location: it resolves like an empty Location{}. */
    struct location_memo *m = n_locations ? &d->location_memo.v[idx] : &d->null_location;
    if (m->state == UNRESOLVED) {
        size_t mark = build->n;
        m->state = INVALID;
        if (!resolve_location(d, idx, ref, m, build)) {
            build->n = mark;
            return false;
        }
        m->state = RESOLVED;
        m->in_stacks = build == &d->stack_pool;
        *built = true;
    } else if (m->state == INVALID) {
        return otlp_reject(&d->rep, "location_table[%d] is invalid", idx);
    }
    *pool = m->in_stacks ? &d->stack_pool : &d->frame_pool;
    *first = m->first;
    *count = m->count;
    return true;
}

/* A stack put together in stack_pool was rejected: the locations resolved in its place there
 * are forgotten with it (resolved again when next met, to the same frames). */
static void forget_location(struct otlp_decoder *d, int32_t idx)
{
    struct location_memo *m = dict_len(&d->dict, DICT_LOCATION) ? &d->location_memo.v[idx] : &d->null_location;
    m->state = UNRESOLVED;
}

static void forget_built(struct otlp_decoder *d)
{
    for (size_t i = 0; i < d->built_locs.n; i++)
        forget_location(d, d->built_locs.v[i]);
    VEC_RESET(d->built_locs);
}

/* ---------- stacks ---------- */

/* The location indices of a sample's stack: its stack_table entry, or (v1.7, no stack table)
 * its slice of the profile's location_indices. */
static bool sample_stack(struct otlp_decoder *d, const struct raw_sample *rs, const int32_t **locs, size_t *n)
{
    if (!d->has_stacks) {
        int64_t start = rs->locations_start, len = rs->locations_length;
        if (start < 0 || len < 0 || (uint64_t)(start + len) > d->profile_locs.n)
            return otlp_reject(&d->rep, "locations [%lld, +%lld) out of range "
                               "(the profile has %zu location_indices)",
                               (long long)start, (long long)len, d->profile_locs.n);
        /* An empty slice of an empty table has no storage to point into (NULL + 0 is
         * undefined behaviour; found by fuzz_decode). */
        *locs = len ? d->profile_locs.v + start : NULL;
        *n = (size_t)len;
    } else {
        pb_ref_t stack;
        if (!dec_entry_at(d, DICT_STACK, rs->stack_index, "stack_index", &stack))
            return false;
        struct raw_stack rs_stack = { &d->stack_locs };
        const char *why;
        VEC_RESET(d->stack_locs);
        if (!dec_entry_decode(d, DICT_STACK, rs->stack_index, stack, &rs_stack, &why))
            return otlp_reject(&d->rep, "stack_table[%d] is malformed: %s", rs->stack_index, why);
        *locs = d->stack_locs.v;
        *n = d->stack_locs.n;
    }
    if (*n > d->limits.max_stack_depth)
        return d->has_stacks
            ? otlp_reject(&d->rep, "stack_table[%d] has %zu locations (limit %zu)", rs->stack_index, *n,
                          d->limits.max_stack_depth)
            : otlp_reject(&d->rep, "stack of %zu locations (limit %zu)", *n, d->limits.max_stack_depth);
    return true;
}

/* The frames of a sample's stack, leaf first. A stack_table entry is resolved once per request
 * and every later sample pointing at it gets the same frames (v1.7 has no stack table: its
 * slices are resolved every time). A memoised stack goes through the slow path again only when
 * it would cross the request's frame limit, so the rejection reads the same either way. */
bool dec_sample_frames(struct otlp_decoder *d, const struct raw_sample *rs,
                       const struct lb_frame **frames, size_t *n_frames, uint32_t *stack_id)
{
    *stack_id = 0;
    bool memo = d->has_stacks && rs->stack_index >= 0 &&
                (size_t)rs->stack_index < dict_len(&d->dict, DICT_STACK);
    struct stack_memo *sm = memo ? &d->stack_memo.v[rs->stack_index] : NULL;
    if (sm && sm->state == RESOLVED && d->res->frames + sm->count <= d->limits.max_frames_per_request) {
        *frames = d->stack_pool.v + sm->first;
        *n_frames = sm->count;
        *stack_id = (uint32_t)rs->stack_index + 1;
        return true;
    }
    const int32_t *locs = NULL;
    size_t n_locs = 0;
    if (!sample_stack(d, rs, &locs, &n_locs))
        return false;
    /* A stack seen for the first time is put together in its memoised place directly; any
     * other (v1.7 slices, a memoised stack over the frame limit) in the scratch vector. */
    bool keep = sm && sm->state != RESOLVED;
    framevec *out = keep ? &d->stack_pool : &d->frames;
    size_t first = keep ? d->stack_pool.n : 0;
    VEC_RESET(d->frames);
    VEC_RESET(d->built_locs);
    for (size_t i = 0; i < n_locs; i++) {
        framevec *src = NULL;
        size_t at = 0, n = 0, have = out->n - first;
        bool built = false;
        /* A location met for the first time in a kept stack is resolved in its place there. */
        bool ok = location_frames(d, locs[i], keep ? out : &d->frame_pool, &src, &at, &n, &built);
        bool in_place = ok && built && keep;   /* out->n has grown by n already */
        if (in_place && !VEC_PUSH(d->built_locs, locs[i])) {
            forget_location(d, locs[i]);
            ok = otlp_out_of_memory(&d->rep);
        }
        if (ok && d->res->frames + have + n > d->limits.max_frames_per_request)
            ok = otlp_reject(&d->rep, "request resolves to more than %llu frames",
                             (unsigned long long)d->limits.max_frames_per_request);
        if (ok && !in_place && !VEC_RESERVE(*out, out->n + n))
            ok = otlp_out_of_memory(&d->rep);
        if (!ok) {
            out->n = first;   /* nothing of a rejected stack stays in the pool */
            if (keep)
                forget_built(d);
            return false;
        }
        if (n && !in_place) {   /* an empty location list may have no storage yet: no NULL + 0 */
            /* Frame by frame: gcc inlines a fixed-size struct copy, where one memcpy call per
             * location went to the C library; musl's (the static build's) starts slowly, and
             * these copies were a fifth of `decode --format folded` there. */
            struct lb_frame *to = out->v + out->n;
            const struct lb_frame *from = src->v + at;
            for (size_t k = 0; k < n; k++)
                to[k] = from[k];
            out->n += n;
        }
    }
    *n_frames = out->n - first;
    *frames = *n_frames ? out->v + first : out->v;
    if (keep) {
        sm->first = (uint32_t)first;
        sm->count = (uint32_t)(out->n - first);
        sm->state = RESOLVED;
    }
    if (sm) {   /* the memoised copy, so that every sample of this stack shares one array */
        *frames = d->stack_pool.v + sm->first;
        *stack_id = (uint32_t)rs->stack_index + 1;
    }
    return true;
}

bool dec_prepare_memos(struct otlp_decoder *d)
{
    size_t na = dict_len(&d->dict, DICT_ATTRIBUTE), nm = dict_len(&d->dict, DICT_MAPPING),
           nl = dict_len(&d->dict, DICT_LOCATION), ns = dict_len(&d->dict, DICT_STACK);
    if (!VEC_RESERVE(d->attr_memo, na) || !VEC_RESERVE(d->mapping_memo, nm) ||
        !VEC_RESERVE(d->location_memo, nl) || !VEC_RESERVE(d->stack_memo, ns))
        return false;
    /* memset on a never-allocated (NULL) vector is undefined even for 0 bytes. */
    if (na)
        memset(d->attr_memo.v, 0, na * sizeof *d->attr_memo.v);
    if (nm)
        memset(d->mapping_memo.v, 0, nm * sizeof *d->mapping_memo.v);
    if (nl)
        memset(d->location_memo.v, 0, nl * sizeof *d->location_memo.v);
    if (ns)
        memset(d->stack_memo.v, 0, ns * sizeof *d->stack_memo.v);
    /* Never NULL, even in a request whose every stack is empty: a memoised stack's frames
     * are pointed at as stack_pool.v + first, and NULL + 0 is undefined (found by fuzz_json). */
    if (!VEC_RESERVE(d->stack_pool, 1) || !VEC_RESERVE(d->frames, 1))
        return false;
    VEC_RESET(d->frame_pool);
    VEC_RESET(d->stack_pool);
    d->null_location.state = UNRESOLVED;
    arena_reset(&d->arena);
    d->units_ready = false;
    memset(d->attr_lists, 0, sizeof d->attr_lists);
    VEC_RESET(d->list_idx);
    VEC_RESET(d->list_attrs);
    return true;
}

void dec_set_layout(struct otlp_decoder *d, const struct otlp_layout *layout)
{
    d->layout = layout;
    d->has_stacks = layout_has_stacks(layout);
    for (int t = 0; t < DICT_TABLES; t++) {
        d->entry_msg[t] = layout_entry_message(layout, (enum dict_table)t);
        d->entry_flat[t] = layout_entry_flat(layout, d->entry_msg[t]);
    }
}

void dec_free_memos(struct otlp_decoder *d)
{
    arena_free(&d->arena);
    VEC_FREE(d->units);
    VEC_FREE(d->list_idx);
    VEC_FREE(d->list_attrs);
}
