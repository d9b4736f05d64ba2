/*
 * decode.c - the resolver: walks one request (see decode.h for the why of its order) and
 * turns every sample into a struct lb_sample whose frames are fully resolved.
 *
 * Dictionary entries stay encoded in the request buffer; the first time a mapping, location
 * or attribute is needed it is decoded, checked and memoised for the rest of the request, so
 * a location shared by a thousand stacks is decoded once. The memo tables are sized from
 * the dictionary and reused across requests: steady-state decoding allocates nothing.
 */
#include "otlp/decode.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pb_decode.h>

#include "lib/log.h"
#include "otlp/detect.h"
#include "otlp/dict.h"
#include "otlp/layout.h"
#include "otlp/report.h"
#include "profiles_service.pb.h"

enum { UNRESOLVED = 0, RESOLVED = 1, INVALID = 2 };

struct attr_memo { uint8_t state; struct lb_attr attr; };
struct mapping_memo {
    uint8_t state;
    lb_str file, build_id, build_id_kind;
    uint64_t start, limit, offset;
};
struct location_memo { uint8_t state; uint32_t first, count; };

typedef VEC(struct lb_attr) attrvec;
typedef VEC(struct lb_frame) framevec;

struct otlp_decoder {
    struct otlp_limits limits;
    const struct otlp_layout *pinned;   /* NULL: detect the layout of every request */
    const struct otlp_layout *layout;   /* the layout of the request being decoded */
    struct otlp_detection detection;    /* how it was chosen */
    struct lb_dict dict;

    /* memo tables, one slot per dictionary entry */
    VEC(struct attr_memo) attr_memo;
    VEC(struct mapping_memo) mapping_memo;
    VEC(struct location_memo) location_memo;
    framevec frame_pool;          /* frames of resolved locations */
    struct location_memo null_location;

    /* scratch, reset per use */
    ivec attr_idx, loc_idx, stack_locs;
    ivec profile_locs;            /* v1.7: the current profile's location_indices */
    i64vec values;
    u64vec timestamps;
    linevec lines;
    attrvec resource_attrs, scope_attrs, profile_attrs, sample_attrs;
    framevec frames;

    /* the request being decoded */
    struct otlp_consumer out;
    struct otlp_result *res;
    struct lb_request *req;
    struct lb_resource resource;
    struct lb_scope scope;
    struct lb_profile profile;
    struct otlp_report rep;       /* where the walk stands, the first problem (report.h) */
    bool skip_resource;           /* its attributes are invalid: its profiles are rejected */
    bool sample_rejected_in_profile;
};

/* The levels of rep.at; rep.depth is 1 in a resource ... 4 in a sample. */
enum { AT_RESOURCE, AT_SCOPE, AT_PROFILE, AT_SAMPLE };
static const char *const path_levels[] = { "resource_profiles", "scope_profiles", "profiles", "samples" };

/* ---------- dictionary lookups ---------- */

static bool string_at(struct otlp_decoder *d, int64_t idx, const char *what, lb_str *out)
{
    if (dict_string(&d->dict, idx, out))
        return true;
    return otlp_reject(&d->rep, "%s %lld out of range (string_table has %zu entries)", what,
                       (long long)idx, dict_len(&d->dict, DICT_STRING));
}

static bool entry_at(struct otlp_decoder *d, enum dict_table t, int64_t idx, const char *what, pb_ref_t *out)
{
    static const char *const names[DICT_TABLES] = {
        "mapping_table", "location_table", "function_table", "link_table", "string_table",
        "attribute_table", "stack_table",
    };
    if (dict_entry(&d->dict, t, idx, out))
        return true;
    return otlp_reject(&d->rep, "%s %lld out of range (%s has %zu entries)", what, (long long)idx,
                       names[t], dict_len(&d->dict, t));
}

static bool attribute_at(struct otlp_decoder *d, int32_t idx, const struct lb_attr **out)
{
    pb_ref_t ref;
    if (!entry_at(d, DICT_ATTRIBUTE, idx, "attribute index", &ref))
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
    struct pbref_stream s;
    pbref_open_ref(&s, ref);
    memset(&ra, 0, sizeof ra);
    if (!layout_entry(d->layout, DICT_ATTRIBUTE, &s.is, &ra))
        return otlp_reject(&d->rep, "attribute_table[%d] is malformed: %s", idx, PB_GET_ERROR(&s.is));
    struct lb_attr *a = &m->attr;
    memset(a, 0, sizeof *a);
    a->key = (lb_str){ (const char *)ra.key.p, ra.key.n };
    if (a->key.n == 0 && !string_at(d, ra.key_strindex, "attribute key_strindex", &a->key))
        return false;
    if (!string_at(d, ra.unit_strindex, "attribute unit_strindex", &a->unit))
        return false;
    if (!dict_value(&d->dict, &ra.value, 0, &a->value))
        return otlp_reject(&d->rep, "attribute_table[%d] string_value_strindex %lld out of range", idx,
                           (long long)ra.value.i);
    m->state = RESOLVED;
    *out = a;
    return true;
}

/* Resolves a list of attribute indices into `out` (appended). */
static bool attributes_at(struct otlp_decoder *d, const ivec *idx, attrvec *out)
{
    for (size_t i = 0; i < idx->n; i++) {
        const struct lb_attr *a;
        if (!attribute_at(d, idx->v[i], &a))
            return false;
        if (!VEC_PUSH(*out, *a))
            return otlp_out_of_memory(&d->rep);
    }
    return true;
}

static bool mapping_at(struct otlp_decoder *d, int32_t idx, const struct mapping_memo **out)
{
    pb_ref_t ref;
    if (!entry_at(d, DICT_MAPPING, idx, "mapping_index", &ref))
        return false;
    if (dict_len(&d->dict, DICT_MAPPING) == 0) {   /* idx 0 of an empty table */
        static const struct mapping_memo none = { RESOLVED, { "", 0 }, { "", 0 }, { "", 0 }, 0, 0, 0 };
        *out = &none;
        return true;
    }
    struct mapping_memo *m = &d->mapping_memo.v[idx];
    if (m->state == RESOLVED) {
        *out = m;
        return true;
    }
    if (m->state == INVALID)
        return otlp_reject(&d->rep, "mapping_table[%d] is invalid", idx);
    m->state = INVALID;
    struct raw_mapping rm;
    struct pbref_stream s;
    VEC_RESET(d->attr_idx);
    memset(&rm, 0, sizeof rm);
    rm.attribute_indices = &d->attr_idx;
    pbref_open_ref(&s, ref);
    if (!layout_entry(d->layout, DICT_MAPPING, &s.is, &rm))
        return otlp_reject(&d->rep, "mapping_table[%d] is malformed: %s", idx, PB_GET_ERROR(&s.is));
    if (!string_at(d, rm.filename_strindex, "mapping filename_strindex", &m->file))
        return false;
    m->start = rm.memory_start;
    m->limit = rm.memory_limit;
    m->offset = rm.file_offset;
    m->build_id = m->build_id_kind = LB_STR_NULL;
    /* Build ids are mapping attributes; prefer the one a symbol server indexes by. */
    static const struct { const char *key; size_t keylen; const char *kind; } kinds[] = {
        { "process.executable.build_id.gnu", 31, "gnu" },
        { "process.executable.build_id.go", 30, "go" },
        { "process.executable.build_id.htlhash", 35, "htlhash" },
    };
    int best = (int)(sizeof kinds / sizeof kinds[0]);
    for (size_t i = 0; i < d->attr_idx.n; i++) {
        const struct lb_attr *a;
        if (!attribute_at(d, d->attr_idx.v[i], &a))
            return false;
        for (int k = 0; k < best; k++) {
            if (lb_str_eq(a->key, kinds[k].key, kinds[k].keylen) &&
                (a->value.kind == LB_VALUE_STRING || a->value.kind == LB_VALUE_BYTES)) {
                best = k;
                m->build_id = a->value.u.str;
                m->build_id_kind = (lb_str){ kinds[k].kind, strlen(kinds[k].kind) };
            }
        }
    }
    m->state = RESOLVED;
    *out = m;
    return true;
}

static bool function_frame(struct otlp_decoder *d, int32_t idx, struct lb_frame *f)
{
    pb_ref_t ref;
    if (!entry_at(d, DICT_FUNCTION, idx, "function_index", &ref))
        return false;
    struct raw_function rf;
    struct pbref_stream s;
    memset(&rf, 0, sizeof rf);
    pbref_open_ref(&s, ref);
    if (!layout_entry(d->layout, DICT_FUNCTION, &s.is, &rf))
        return otlp_reject(&d->rep, "function_table[%d] is malformed: %s", idx, PB_GET_ERROR(&s.is));
    f->start_line = rf.start_line;
    return string_at(d, rf.name_strindex, "function name_strindex", &f->function) &&
           string_at(d, rf.system_name_strindex, "function system_name_strindex", &f->system_name) &&
           string_at(d, rf.filename_strindex, "function filename_strindex", &f->file);
}

/* Decodes location `idx` into frames appended to frame_pool. */
static bool resolve_location(struct otlp_decoder *d, int32_t idx, pb_ref_t ref, struct location_memo *m)
{
    struct raw_location rl;
    struct pbref_stream s;
    VEC_RESET(d->lines);
    VEC_RESET(d->loc_idx);
    memset(&rl, 0, sizeof rl);
    rl.lines = &d->lines;
    rl.attribute_indices = &d->loc_idx;
    pbref_open_ref(&s, ref);
    if (!layout_entry(d->layout, DICT_LOCATION, &s.is, &rl))
        return otlp_reject(&d->rep, "location_table[%d] is malformed: %s", idx, PB_GET_ERROR(&s.is));
    if (d->lines.n > UINT16_MAX)
        return otlp_reject(&d->rep, "location_table[%d] has %zu lines (limit %u)", idx, d->lines.n,
                           UINT16_MAX);

    struct lb_frame base;
    memset(&base, 0, sizeof base);
    base.location_index = (uint32_t)idx;
    base.address = rl.address;
    base.line_count = (uint16_t)d->lines.n;
    base.symbolized = d->lines.n > 0;
    for (size_t i = 0; i < d->loc_idx.n; i++) {
        const struct lb_attr *a;
        if (!attribute_at(d, d->loc_idx.v[i], &a))
            return false;
        if (LB_STR_EQ(a->key, "profile.frame.type") && a->value.kind == LB_VALUE_STRING)
            base.type = a->value.u.str;
    }
    if (rl.mapping_index != 0 || dict_len(&d->dict, DICT_MAPPING) > 0) {
        const struct mapping_memo *mm = NULL;
        if (!mapping_at(d, rl.mapping_index, &mm))
            return false;
        /* Index 0 is "no mapping" (the null entry), whatever entry 0 holds; except in v1.7,
         * where an explicit 0 is entry 0. */
        base.has_mapping = rl.mapping_index != 0 ||
                           (rl.mapping_explicit && dict_len(&d->dict, DICT_MAPPING) > 0);
        if (base.has_mapping) {
            base.mapping_file = mm->file;
            base.mapping_start = mm->start;
            base.mapping_limit = mm->limit;
            base.mapping_offset = mm->offset;
            base.build_id = mm->build_id;
            base.build_id_kind = mm->build_id_kind;
        }
    }
    m->first = (uint32_t)d->frame_pool.n;
    size_t n = d->lines.n ? d->lines.n : 1;
    if (!VEC_RESERVE(d->frame_pool, d->frame_pool.n + n))
        return otlp_out_of_memory(&d->rep);
    for (size_t i = 0; i < n; i++) {
        struct lb_frame f = base;
        f.function = f.system_name = f.file = LB_STR_NULL;
        if (d->lines.n) {
            const struct raw_line *l = &d->lines.v[i];
            f.line_index = (uint16_t)i;
            f.line = l->line;
            f.column = l->column;
            if (!function_frame(d, l->function_index, &f))
                return false;
        }
        d->frame_pool.v[d->frame_pool.n++] = f;
    }
    m->count = (uint32_t)n;
    return true;
}

static bool location_frames(struct otlp_decoder *d, int32_t idx, const struct lb_frame **frames, size_t *count)
{
    pb_ref_t ref;
    if (!entry_at(d, DICT_LOCATION, idx, "location index", &ref))
        return false;
    /* idx 0 of an empty table is the null location: it resolves like an empty Location{}. */
    struct location_memo *m = dict_len(&d->dict, DICT_LOCATION) ? &d->location_memo.v[idx] : &d->null_location;
    if (m->state == UNRESOLVED) {
        size_t mark = d->frame_pool.n;
        m->state = INVALID;
        if (!resolve_location(d, idx, ref, m)) {
            d->frame_pool.n = mark;
            return false;
        }
        m->state = RESOLVED;
    } else if (m->state == INVALID) {
        return otlp_reject(&d->rep, "location_table[%d] is invalid", idx);
    }
    *frames = d->frame_pool.v + m->first;
    *count = m->count;
    return true;
}

/* ---------- samples ---------- */

/* The location indices of a sample's stack: its stack_table entry, or (v1.7, no stack table)
 * its slice of the profile's location_indices. */
static bool sample_stack(struct otlp_decoder *d, const struct raw_sample *rs, const int32_t **locs, size_t *n)
{
    if (!layout_has_stacks(d->layout)) {
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
        if (!entry_at(d, DICT_STACK, rs->stack_index, "stack_index", &stack))
            return false;
        struct pbref_stream s;
        struct raw_stack rs_stack = { &d->stack_locs };
        VEC_RESET(d->stack_locs);
        pbref_open_ref(&s, stack);
        if (!layout_entry(d->layout, DICT_STACK, &s.is, &rs_stack))
            return otlp_reject(&d->rep, "stack_table[%d] is malformed: %s", rs->stack_index,
                               PB_GET_ERROR(&s.is));
        *locs = d->stack_locs.v;
        *n = d->stack_locs.n;
    }
    if (*n > d->limits.max_stack_depth)
        return layout_has_stacks(d->layout)
            ? otlp_reject(&d->rep, "stack_table[%d] has %zu locations (limit %zu)", rs->stack_index, *n,
                          d->limits.max_stack_depth)
            : otlp_reject(&d->rep, "stack of %zu locations (limit %zu)", *n, d->limits.max_stack_depth);
    return true;
}

static bool resolve_sample(struct otlp_decoder *d, const struct raw_sample *rs, struct lb_sample *out)
{
    if (d->layout->parallel_values && d->values.n && d->timestamps.n && d->values.n != d->timestamps.n)
        return otlp_reject(&d->rep, "%zu values and %zu timestamps: they must be parallel arrays",
                           d->values.n, d->timestamps.n);
    VEC_RESET(d->sample_attrs);
    if (!attributes_at(d, rs->attribute_indices, &d->sample_attrs))
        return false;

    memset(out, 0, sizeof *out);
    if (rs->link_index != 0 || (rs->link_explicit && dict_len(&d->dict, DICT_LINK) > 0)) {
        pb_ref_t ref;
        struct raw_link rl;
        struct pbref_stream s;
        if (!entry_at(d, DICT_LINK, rs->link_index, "link_index", &ref))
            return false;
        memset(&rl, 0, sizeof rl);
        pbref_open_ref(&s, ref);
        if (!layout_entry(d->layout, DICT_LINK, &s.is, &rl))
            return otlp_reject(&d->rep, "link_table[%d] is malformed: %s", rs->link_index,
                               PB_GET_ERROR(&s.is));
        out->has_link = true;
        out->trace_id = (lb_str){ (const char *)rl.trace_id.p, rl.trace_id.n };
        out->span_id = (lb_str){ (const char *)rl.span_id.p, rl.span_id.n };
    }

    const int32_t *locs = NULL;
    size_t n_locs = 0;
    if (!sample_stack(d, rs, &locs, &n_locs))
        return false;
    VEC_RESET(d->frames);
    for (size_t i = 0; i < n_locs; i++) {
        const struct lb_frame *f = NULL;
        size_t n = 0;
        if (!location_frames(d, locs[i], &f, &n))
            return false;
        if (d->res->frames + d->frames.n + n > d->limits.max_frames_per_request)
            return otlp_reject(&d->rep, "request resolves to more than %llu frames",
                               (unsigned long long)d->limits.max_frames_per_request);
        if (!VEC_RESERVE(d->frames, d->frames.n + n))
            return otlp_out_of_memory(&d->rep);
        memcpy(d->frames.v + d->frames.n, f, n * sizeof *f);
        d->frames.n += n;
    }

    out->profile = &d->profile;
    out->index = d->rep.at[AT_SAMPLE];
    /* v1.7 has no stack table: the start of the slice stands in for it. */
    out->stack_index = (uint32_t)(layout_has_stacks(d->layout) ? rs->stack_index : rs->locations_start);
    out->timestamps = d->timestamps.v;
    out->n_timestamps = d->timestamps.n;
    out->values = d->values.v;
    out->n_values = d->values.n;
    out->attrs = (struct lb_attrs){ d->sample_attrs.v, d->sample_attrs.n };
    out->frames = d->frames.v;
    out->n_frames = d->frames.n;
    return true;
}

static bool on_sample(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_sample rs;
    memset(&rs, 0, sizeof rs);
    rs.attribute_indices = &d->attr_idx;
    rs.values = &d->values;
    rs.timestamps = &d->timestamps;
    struct pbref_stream s;
    VEC_RESET(d->attr_idx);
    VEC_RESET(d->values);
    VEC_RESET(d->timestamps);
    pbref_open_ref(&s, el);
    if (!layout_sample(d->layout, &s.is, &rs))
        return otlp_malformed(&d->rep, "sample", &s.is);
    struct lb_sample smp;
    if (resolve_sample(d, &rs, &smp)) {
        OTLP_EMIT(d->out, sample, &smp);
        d->res->samples++;
        d->res->frames += smp.n_frames;
        d->res->timestamps += smp.n_timestamps;
    } else if (d->rep.nomem) {
        return false;
    } else {
        otlp_note_first(&d->rep, d->rep.why);
        d->res->rejected_samples++;
        d->sample_rejected_in_profile = true;
    }
    d->rep.at[AT_SAMPLE]++;
    return true;
}

/* ---------- profiles, scopes, resources ---------- */

static bool profile_header(struct otlp_decoder *d, const struct raw_profile *rp)
{
    struct lb_profile *p = &d->profile;
    memset(p, 0, sizeof *p);
    p->resource = &d->resource;
    p->scope = &d->scope;
    p->scope_index = d->rep.at[AT_SCOPE];
    p->index = d->rep.at[AT_PROFILE];
    p->period = rp->period;
    p->time_unix_nano = rp->time_unix_nano;
    p->duration_nano = rp->duration_nano;
    p->profile_id = (lb_str){ (const char *)rp->profile_id.p, rp->profile_id.n };
    p->dropped_attributes_count = rp->dropped_attributes_count;
    p->original_payload_format = (lb_str){ (const char *)rp->original_payload_format.p, rp->original_payload_format.n };
    p->original_payload_len = rp->original_payload.n;
    VEC_RESET(d->profile_attrs);
    if (!string_at(d, rp->sample_type.type_strindex, "sample_type type_strindex", &p->sample_type) ||
        !string_at(d, rp->sample_type.unit_strindex, "sample_type unit_strindex", &p->sample_unit) ||
        !string_at(d, rp->period_type.type_strindex, "period_type type_strindex", &p->period_type) ||
        !string_at(d, rp->period_type.unit_strindex, "period_type unit_strindex", &p->period_unit) ||
        !attributes_at(d, rp->attribute_indices, &d->profile_attrs))
        return false;
    p->attrs = (struct lb_attrs){ d->profile_attrs.v, d->profile_attrs.n };
    return true;
}

static bool on_profile(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_profile rp;
    struct pbref_stream s;
    memset(&rp, 0, sizeof rp);
    VEC_RESET(d->attr_idx);
    VEC_RESET(d->profile_locs);
    rp.attribute_indices = &d->attr_idx;
    rp.location_indices = layout_has_stacks(d->layout) ? NULL : &d->profile_locs;
    d->rep.depth = 3;
    d->rep.at[AT_SAMPLE] = 0;
    pbref_open_ref(&s, el);
    if (!layout_profile(d->layout, &s.is, &rp, NULL, NULL))
        return otlp_malformed(&d->rep, "profile", &s.is);
    bool ok = !d->skip_resource && profile_header(d, &rp);
    if (!ok) {
        if (d->rep.nomem)
            return false;
        if (!d->skip_resource)
            otlp_note_first(&d->rep, d->rep.why);
        d->res->rejected_profiles++;
    } else {
        OTLP_EMIT(d->out, profile_begin, &d->profile);
        d->sample_rejected_in_profile = false;
        d->rep.depth = 4;
        pbref_open_ref(&s, el);
        if (!layout_profile(d->layout, &s.is, &rp, on_sample, d))
            return otlp_malformed(&d->rep, "profile", &s.is);
        d->rep.depth = 3;
        OTLP_EMIT(d->out, profile_end, &d->profile);
        d->res->profiles++;
        if (d->sample_rejected_in_profile)
            d->res->rejected_profiles++;
    }
    d->rep.at[AT_PROFILE]++;
    return true;
}

/* A KeyValue of a resource or scope: `key`, or `key_strindex` (v1.10+), never both. */
static bool push_key_value(struct otlp_decoder *d, pb_ref_t el, attrvec *out, const char *what)
{
    struct raw_key_value kv;
    struct pbref_stream s;
    memset(&kv, 0, sizeof kv);
    pbref_open_ref(&s, el);
    if (!raw_key_value(&s.is, &kv))
        return otlp_malformed(&d->rep, what, &s.is);
    struct lb_attr a;
    memset(&a, 0, sizeof a);
    a.key = (lb_str){ (const char *)kv.key.p, kv.key.n };
    if ((a.key.n == 0 && !string_at(d, kv.key_strindex, "key_strindex", &a.key)) ||
        !dict_value(&d->dict, &kv.value, 0, &a.value)) {
        if (!d->rep.why[0] || a.key.n)
            otlp_reject(&d->rep, "%s string_value_strindex %lld out of range", what,
                        (long long)kv.value.i);
        d->skip_resource = true;
        return true;
    }
    if (!VEC_PUSH(*out, a))
        return otlp_out_of_memory(&d->rep);
    return true;
}

static bool on_scope_attribute(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return push_key_value(d, el, &d->scope_attrs, "scope attribute");
}

static bool on_scope_profiles(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_scope_profiles sp;
    struct pbref_stream s;
    bool skip_before = d->skip_resource;
    memset(&sp, 0, sizeof sp);
    VEC_RESET(d->scope_attrs);
    d->rep.depth = 2;
    d->rep.at[AT_PROFILE] = 0;
    d->rep.why[0] = 0;
    pbref_open_ref(&s, el);
    if (!raw_scope_profiles(&s.is, on_scope_attribute, NULL, d, &sp))
        return otlp_malformed(&d->rep, "scope_profiles", &s.is);
    if (d->skip_resource && !skip_before)
        otlp_note_first(&d->rep, d->rep.why);
    struct lb_scope *sc = &d->scope;
    sc->name = (lb_str){ (const char *)sp.name.p, sp.name.n };
    sc->version = (lb_str){ (const char *)sp.version.p, sp.version.n };
    sc->schema_url = (lb_str){ (const char *)sp.schema_url.p, sp.schema_url.n };
    sc->dropped_attributes_count = sp.dropped_attributes_count;
    sc->attrs = (struct lb_attrs){ d->scope_attrs.v, d->scope_attrs.n };
    pbref_open_ref(&s, el);
    if (!raw_scope_profiles(&s.is, NULL, on_profile, d, &sp))
        return otlp_malformed(&d->rep, "scope_profiles", &s.is);
    d->skip_resource = skip_before;   /* a bad scope spoils its own profiles only */
    d->rep.at[AT_SCOPE]++;
    return true;
}

static bool on_resource_attribute(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return push_key_value(d, el, &d->resource_attrs, "resource attribute");
}

static bool on_resource_profiles(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_resource_profiles rp;
    struct pbref_stream s;
    memset(&rp, 0, sizeof rp);
    VEC_RESET(d->resource_attrs);
    d->rep.depth = 1;
    d->rep.at[AT_SCOPE] = 0;
    d->skip_resource = false;
    d->rep.why[0] = 0;
    pbref_open_ref(&s, el);
    if (!raw_resource_profiles(&s.is, on_resource_attribute, NULL, d, &rp))
        return otlp_malformed(&d->rep, "resource_profiles", &s.is);
    if (d->skip_resource)
        otlp_note_first(&d->rep, d->rep.why);
    struct lb_resource *r = &d->resource;
    r->request = d->req;
    r->index = d->rep.at[AT_RESOURCE];
    r->attrs = (struct lb_attrs){ d->resource_attrs.v, d->resource_attrs.n };
    r->dropped_attributes_count = rp.dropped_attributes_count;
    r->schema_url = (lb_str){ (const char *)rp.schema_url.p, rp.schema_url.n };
    bool emit = !d->skip_resource;
    if (emit)
        OTLP_EMIT(d->out, resource_begin, r);
    pbref_open_ref(&s, el);
    if (!raw_resource_profiles(&s.is, NULL, on_scope_profiles, d, &rp))
        return otlp_malformed(&d->rep, "resource_profiles", &s.is);
    d->rep.depth = 1;
    if (emit) {
        OTLP_EMIT(d->out, resource_end, r);
        d->res->resources++;
    }
    d->rep.at[AT_RESOURCE]++;
    return true;
}

static bool on_dictionary(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!layout_dictionary(d->layout, &s.is, &d->dict.tables))
        return otlp_malformed(&d->rep, "dictionary", &s.is);
    return true;
}

/* ---------- the request ---------- */

static bool prepare_memos(struct otlp_decoder *d)
{
    size_t na = dict_len(&d->dict, DICT_ATTRIBUTE), nm = dict_len(&d->dict, DICT_MAPPING),
           nl = dict_len(&d->dict, DICT_LOCATION);
    if (!VEC_RESERVE(d->attr_memo, na) || !VEC_RESERVE(d->mapping_memo, nm) ||
        !VEC_RESERVE(d->location_memo, nl))
        return false;
    /* memset on a never-allocated (NULL) vector is undefined even for 0 bytes. */
    if (na)
        memset(d->attr_memo.v, 0, na * sizeof *d->attr_memo.v);
    if (nm)
        memset(d->mapping_memo.v, 0, nm * sizeof *d->mapping_memo.v);
    if (nl)
        memset(d->location_memo.v, 0, nl * sizeof *d->location_memo.v);
    VEC_RESET(d->frame_pool);
    d->null_location.state = UNRESOLVED;
    return true;
}

static void finish_message(struct otlp_decoder *d)
{
    struct otlp_result *res = d->res;
    if (res->rejected_profiles == 0 && res->rejected_samples == 0)
        return;
    otlp_prefix_message(&d->rep, "rejected %llu profile(s) (%llu sample(s) dropped); first problem: ",
                        (unsigned long long)res->rejected_profiles,
                        (unsigned long long)res->rejected_samples);
}

/* Detects the request's layout (or checks the pinned one against it). */
static bool choose_layout(struct otlp_decoder *d, const uint8_t *msg, size_t len)
{
    int rc = d->pinned ? otlp_detect_among(msg, len, &d->pinned, 1, &d->detection)
                       : otlp_detect(msg, len, &d->detection);
    if (rc != 0) {
        otlp_detection_failure(&d->detection, d->res->message, sizeof d->res->message);
        return false;
    }
    d->layout = d->detection.layout;
    return true;
}

enum otlp_status otlp_export_profiles(struct otlp_decoder *d, const uint8_t *msg, size_t len,
                                      struct lb_request *req, struct otlp_consumer out,
                                      struct otlp_result *res)
{
    memset(res, 0, sizeof *res);
    d->res = res;
    d->req = req;
    d->out = out;
    otlp_report_begin(&d->rep, res->message, sizeof res->message);
    req->layout = "none";
    req->message_bytes = len;
    d->detection.layout = NULL;   /* nothing chosen until this request is detected */
    d->detection.n_tried = d->detection.n_evidence = 0;

    if (!otlp_check_size(&d->rep, len)) {
        res->problem = OTLP_PROBLEM_TOO_LARGE;
        return res->status = OTLP_INVALID;
    }
    if (OTLP_EMIT(out, admit, OTLP_SIGNAL_PROFILES, res->message, sizeof res->message) != 0)
        return res->status = OTLP_UNAVAILABLE;
    if (!choose_layout(d, msg, len)) {
        res->problem = d->detection.malformed ? OTLP_PROBLEM_MALFORMED : OTLP_PROBLEM_NO_LAYOUT;
        return res->status = OTLP_INVALID;
    }
    req->layout = d->layout->name;

    d->dict.layout = d->layout;
    d->dict.tables.base = msg;
    for (int t = 0; t < DICT_TABLES; t++)
        VEC_RESET(d->dict.tables.t[t]);

    struct pbref_stream s;
    pbref_open(&s, msg, len);
    if (!raw_request(&s.is, on_dictionary, NULL, d)) {
        otlp_malformed(&d->rep, "request", &s.is);
        goto refused;
    }
    if (!prepare_memos(d)) {
        otlp_out_of_memory(&d->rep);
        goto refused;
    }

    OTLP_EMIT(out, request_begin, OTLP_SIGNAL_PROFILES, req);
    pbref_open(&s, msg, len);
    if (!raw_request(&s.is, NULL, on_resource_profiles, d)) {
        otlp_malformed(&d->rep, "request", &s.is);
        OTLP_EMIT(out, request_abort, OTLP_SIGNAL_PROFILES, req, res->message);
        goto refused;
    }
    if (OTLP_EMIT(out, request_end, OTLP_SIGNAL_PROFILES, req, res->message, sizeof res->message) != 0)
        return res->status = OTLP_SINK_FAILED;
    finish_message(d);
    return res->status = OTLP_OK;

refused:
    if (d->rep.nomem) {
        otlp_note_nomem(&d->rep, len);
        res->problem = OTLP_PROBLEM_OUT_OF_MEMORY;
        return res->status = OTLP_NOMEM;
    }
    res->problem = OTLP_PROBLEM_MALFORMED;
    res->resources = res->profiles = res->samples = res->frames = res->timestamps = 0;
    return res->status = OTLP_INVALID;
}

struct otlp_decoder *otlp_decoder_new(const struct otlp_limits *limits, const struct otlp_layout *layout)
{
    struct otlp_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->limits = *limits;
    if (!d->limits.max_stack_depth)
        d->limits.max_stack_depth = OTLP_DEFAULT_MAX_STACK_DEPTH;
    if (!d->limits.max_frames_per_request)
        d->limits.max_frames_per_request = OTLP_DEFAULT_MAX_FRAMES;
    d->pinned = layout;
    d->rep.levels = path_levels;
    d->layout = layout ? layout : otlp_layouts[0];
    return d;
}

void otlp_decoder_free(struct otlp_decoder *d)
{
    if (!d)
        return;
    for (int t = 0; t < DICT_TABLES; t++)
        VEC_FREE(d->dict.tables.t[t]);
    VEC_FREE(d->attr_memo);
    VEC_FREE(d->mapping_memo);
    VEC_FREE(d->location_memo);
    VEC_FREE(d->frame_pool);
    VEC_FREE(d->attr_idx);
    VEC_FREE(d->loc_idx);
    VEC_FREE(d->stack_locs);
    VEC_FREE(d->profile_locs);
    VEC_FREE(d->values);
    VEC_FREE(d->timestamps);
    VEC_FREE(d->lines);
    VEC_FREE(d->resource_attrs);
    VEC_FREE(d->scope_attrs);
    VEC_FREE(d->profile_attrs);
    VEC_FREE(d->sample_attrs);
    VEC_FREE(d->frames);
    free(d);
}

const struct otlp_detection *otlp_decoder_detection(const struct otlp_decoder *d)
{
    return &d->detection;
}

/* ---------- the response ---------- */

int otlp_encode_profiles_response(const struct otlp_result *res, struct buf *out)
{
    opentelemetry_proto_collector_profiles_v1development_ExportProfilesServiceResponse resp;
    memset(&resp, 0, sizeof resp);
    if (res->rejected_profiles || res->rejected_samples) {
        resp.has_partial_success = true;
        /* A profile that lost samples counts as rejected: partial_success has no finer unit. */
        resp.partial_success.rejected_profiles = (int64_t)res->rejected_profiles;
        snprintf(resp.partial_success.error_message, sizeof resp.partial_success.error_message,
                 "%s", res->message);
    }
    return otlp_encode_response(opentelemetry_proto_collector_profiles_v1development_ExportProfilesServiceResponse_fields,
                                &resp, out);
}
