/*
 * decode.c - the walk: one request (see decode.h for the why of its order), every sample
 * turned into a struct lb_sample whose frames are fully resolved, and emitted.
 *
 * The indices a sample carries are resolved by resolve.c (decoder.h), which memoises every
 * dictionary entry and every stack for the rest of the request.
 */
#include "otlp/decode.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pb_decode.h>

#include "lib/log.h"
#include "otlp/decoder.h"
#include "profiles_service.pb.h"

/* The levels of rep.at; rep.depth is 1 in a resource ... 4 in a sample. */
enum { AT_RESOURCE, AT_SCOPE, AT_PROFILE, AT_SAMPLE };
static const char *const path_levels[] = { "resource_profiles", "scope_profiles", "profiles", "samples" };

/* ---------- samples ---------- */

static bool resolve_sample(struct otlp_decoder *d, const struct raw_sample *rs, struct lb_sample *out)
{
    if (d->layout->parallel_values && d->values.n && d->timestamps.n && d->values.n != d->timestamps.n)
        return otlp_reject(&d->rep, "%zu values and %zu timestamps: they must be parallel arrays",
                           d->values.n, d->timestamps.n);
    struct lb_attrs attrs;
    if (!dec_sample_attributes(d, rs->attribute_indices, &attrs))
        return false;

    bool has_link = false;
    lb_str trace_id = { NULL, 0 }, span_id = { NULL, 0 };
    if (rs->link_index != 0 || (rs->link_explicit && dict_len(&d->dict, DICT_LINK) > 0)) {
        pb_ref_t ref;
        struct raw_link rl;
        const char *why;
        if (!dec_entry_at(d, DICT_LINK, rs->link_index, "link_index", &ref))
            return false;
        memset(&rl, 0, sizeof rl);
        if (!dec_entry_decode(d, DICT_LINK, rs->link_index, ref, &rl, &why))
            return otlp_reject(&d->rep, "link_table[%d] is malformed: %s", rs->link_index, why);
        has_link = true;
        trace_id = (lb_str){ (const char *)rl.trace_id.p, rl.trace_id.n };
        span_id = (lb_str){ (const char *)rl.span_id.p, rl.span_id.n };
    }

    const struct lb_frame *frames = NULL;
    size_t n_frames = 0;
    uint32_t stack_id = 0;
    if (!dec_sample_frames(d, rs, &frames, &n_frames, &stack_id))
        return false;

    *out = (struct lb_sample){
        .profile = &d->profile,
        .index = d->rep.at[AT_SAMPLE],
        /* v1.7 has no stack table: the start of the slice stands in for it. */
        .stack_index = (uint32_t)(d->has_stacks ? rs->stack_index : rs->locations_start),
        .stack_id = stack_id,
        .timestamps = d->timestamps.v,
        .n_timestamps = d->timestamps.n,
        .values = d->values.v,
        .n_values = d->values.n,
        .attrs = attrs,
        .has_link = has_link,
        .trace_id = trace_id,
        .span_id = span_id,
        .frames = frames,
        .n_frames = n_frames,
    };
    return true;
}

static bool on_sample(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_sample rs = {
        .attribute_indices = &d->attr_idx, .values = &d->values, .timestamps = &d->timestamps,
    };
    const char *why;
    VEC_RESET(d->attr_idx);
    VEC_RESET(d->values);
    VEC_RESET(d->timestamps);
    if (!(d->speculating ? layout_sample_checked(d->layout, el, &rs, &d->spec.tally, &why)
                         : layout_sample_at(d->layout, el, &rs, &why)))
        return otlp_malformed_why(&d->rep, "sample", why);
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

/* What v1.7 and v1.8 profiles carry beside the common fields: every sample type with the
 * default's index (v1.7), and comments. Later layouts have one sample type, listed alone. */
static bool profile_lists(struct otlp_decoder *d, const struct raw_profile *rp, struct lb_profile *p)
{
    VEC_RESET(d->sample_types);
    VEC_RESET(d->comments);
    const struct raw_value_type *vt = d->raw_sample_types.n ? d->raw_sample_types.v : &rp->sample_type;
    size_t n_vt = d->raw_sample_types.n ? d->raw_sample_types.n : 1;
    if (!VEC_RESERVE(d->sample_types, n_vt) || !VEC_RESERVE(d->comments, d->comment_idx.n))
        return otlp_out_of_memory(&d->rep);
    for (size_t i = 0; i < n_vt; i++) {
        struct lb_value_type *t = &d->sample_types.v[i];
        t->aggregation_temporality = vt[i].aggregation_temporality;
        if (!dec_string_at(d, vt[i].type_strindex, "sample_type type_strindex", &t->type) ||
            !dec_string_at(d, vt[i].unit_strindex, "sample_type unit_strindex", &t->unit))
            return false;
    }
    d->sample_types.n = n_vt;
    for (size_t i = 0; i < d->comment_idx.n; i++)
        if (!dec_string_at(d, d->comment_idx.v[i], "comment_strindices", &d->comments.v[i]))
            return false;
    d->comments.n = d->comment_idx.n;
    p->sample_types = d->sample_types.v;
    p->n_sample_types = d->sample_types.n;
    p->default_sample_type_index = rp->default_sample_type_index;
    p->comments = d->comments.v;
    p->n_comments = d->comments.n;
    return true;
}

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
    p->original_payload = (lb_str){ (const char *)rp->original_payload.p, rp->original_payload.n };
    p->sample_aggregation_temporality = rp->sample_type.aggregation_temporality;
    p->period_aggregation_temporality = rp->period_type.aggregation_temporality;
    VEC_RESET(d->profile_attrs);
    if (!dec_string_at(d, rp->sample_type.type_strindex, "sample_type type_strindex", &p->sample_type) ||
        !dec_string_at(d, rp->sample_type.unit_strindex, "sample_type unit_strindex", &p->sample_unit) ||
        !dec_string_at(d, rp->period_type.type_strindex, "period_type type_strindex", &p->period_type) ||
        !dec_string_at(d, rp->period_type.unit_strindex, "period_type unit_strindex", &p->period_unit) ||
        !dec_attributes_at(d, rp->attribute_indices, &d->profile_attrs) ||
        !profile_lists(d, rp, p))
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
    VEC_RESET(d->raw_sample_types);
    VEC_RESET(d->comment_idx);
    rp.attribute_indices = &d->attr_idx;
    rp.location_indices = d->has_stacks ? NULL : &d->profile_locs;
    rp.sample_types = &d->raw_sample_types;
    rp.comment_strindices = &d->comment_idx;
    d->rep.depth = 3;
    d->rep.at[AT_SAMPLE] = 0;
    pbref_open_ref(&s, el);
    if (!layout_profile(d->layout, &s.is, &rp, NULL, NULL))
        return otlp_malformed(&d->rep, "profile", &s.is);
    bool ok = !d->skip_resource && profile_header(d, &rp);
    if (!ok) {
        if (d->rep.nomem)
            return false;
        /* its samples are not read: the fast path walks them as the full detection would */
        if (d->speculating && !otlp_speculate_samples_of(d->layout, el.p, el.n, &d->spec.tally))
            d->spec_failed = true;
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
    struct raw_attribute kv;
    const char *why;
    memset(&kv, 0, sizeof kv);
    if (!env_key_value(el, &kv, &why))
        return otlp_malformed_why(&d->rep, what, why);
    struct lb_attr a;
    memset(&a, 0, sizeof a);
    a.key = (lb_str){ (const char *)kv.key.p, kv.key.n };
    if ((a.key.n == 0 && !dec_string_at(d, kv.key_strindex, "key_strindex", &a.key)) ||
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

static bool keep_profile_ref(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return VEC_PUSH(d->profile_refs, el) || otlp_out_of_memory(&d->rep);
}

/* A callback that fails has already said why in d->rep (malformed or out of memory), so the
 * walks below stop with its verdict, as nanopb's pass over the same bytes did. */
static bool on_scope_profiles(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct env_scope_profiles sp;
    const struct raw_each each[EACH_SLOTS] = {
        [EACH_CHILD] = { keep_profile_ref, d }, [EACH_ATTRIBUTE] = { on_scope_attribute, d },
    };
    const char *why;
    bool skip_before = d->skip_resource;
    memset(&sp, 0, sizeof sp);
    VEC_RESET(d->scope_attrs);
    VEC_RESET(d->profile_refs);
    d->rep.depth = 2;
    d->rep.at[AT_PROFILE] = 0;
    d->rep.why[0] = 0;
    if (!env_scope_profiles(el, &sp, each, &why))
        return otlp_malformed_why(&d->rep, "scope_profiles", why);
    if (d->skip_resource && !skip_before)
        otlp_note_first(&d->rep, d->rep.why);
    struct lb_scope *sc = &d->scope;
    sc->name = (lb_str){ (const char *)sp.scope.name.p, sp.scope.name.n };
    sc->version = (lb_str){ (const char *)sp.scope.version.p, sp.scope.version.n };
    sc->schema_url = (lb_str){ (const char *)sp.schema_url.p, sp.schema_url.n };
    sc->dropped_attributes_count = sp.scope.dropped_attributes_count;
    sc->attrs = (struct lb_attrs){ d->scope_attrs.v, d->scope_attrs.n };
    for (size_t i = 0; i < d->profile_refs.n; i++)
        if (!on_profile(d, d->profile_refs.v[i]))
            return false;
    d->skip_resource = skip_before;   /* a bad scope spoils its own profiles only */
    d->rep.at[AT_SCOPE]++;
    return true;
}

static bool on_resource_attribute(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return push_key_value(d, el, &d->resource_attrs, "resource attribute");
}

static bool push_entity_key(strvec *v, pb_ref_t el)
{
    return VEC_PUSH(*v, ((lb_str){ (const char *)el.p, el.n }));
}

static bool on_entity_id_key(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return push_entity_key(&d->entity_id_keys, el) || otlp_out_of_memory(&d->rep);
}

static bool on_entity_description_key(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return push_entity_key(&d->entity_description_keys, el) || otlp_out_of_memory(&d->rep);
}

/* An EntityRef of the resource. Its keys' positions in the key vectors are kept in place of the
 * pointers (the vectors may still move) until entity_refs_done. */
static bool on_entity_ref(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct raw_entity_ref re;
    const struct raw_each each[EACH_SLOTS] = {
        [EACH_ID_KEY] = { on_entity_id_key, d }, [EACH_DESCRIPTION_KEY] = { on_entity_description_key, d },
    };
    const char *why;
    size_t id0 = d->entity_id_keys.n, desc0 = d->entity_description_keys.n;
    memset(&re, 0, sizeof re);
    if (!env_entity_ref(el, &re, each, &why))
        return otlp_malformed_why(&d->rep, "entity_ref", why);
    struct lb_entity_ref er = {
        { (const char *)re.schema_url.p, re.schema_url.n }, { (const char *)re.type.p, re.type.n },
        NULL, d->entity_id_keys.n - id0, NULL, d->entity_description_keys.n - desc0,
    };
    er.id_keys = (const lb_str *)(uintptr_t)id0;
    er.description_keys = (const lb_str *)(uintptr_t)desc0;
    return VEC_PUSH(d->entity_refs, er) || otlp_out_of_memory(&d->rep);
}

static void entity_refs_done(struct otlp_decoder *d)
{
    for (size_t i = 0; i < d->entity_refs.n; i++) {
        struct lb_entity_ref *er = &d->entity_refs.v[i];
        er->id_keys = er->n_id_keys ? d->entity_id_keys.v + (uintptr_t)er->id_keys : NULL;
        er->description_keys = er->n_description_keys
            ? d->entity_description_keys.v + (uintptr_t)er->description_keys : NULL;
    }
}

static bool keep_scope_ref(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    return VEC_PUSH(d->scope_refs, el) || otlp_out_of_memory(&d->rep);
}

static bool on_resource_profiles(void *ctx, pb_ref_t el)
{
    struct otlp_decoder *d = ctx;
    struct env_resource_profiles rp;
    const struct raw_each each[EACH_SLOTS] = {
        [EACH_CHILD] = { keep_scope_ref, d }, [EACH_ATTRIBUTE] = { on_resource_attribute, d },
        [EACH_ENTITY_REF] = { on_entity_ref, d },
    };
    const char *why;
    memset(&rp, 0, sizeof rp);
    VEC_RESET(d->resource_attrs);
    VEC_RESET(d->entity_refs);
    VEC_RESET(d->entity_id_keys);
    VEC_RESET(d->entity_description_keys);
    VEC_RESET(d->scope_refs);
    d->rep.depth = 1;
    d->rep.at[AT_SCOPE] = 0;
    d->skip_resource = false;
    d->rep.why[0] = 0;
    if (!env_resource_profiles(el, &rp, each, &why))
        return otlp_malformed_why(&d->rep, "resource_profiles", why);
    entity_refs_done(d);
    if (d->skip_resource)
        otlp_note_first(&d->rep, d->rep.why);
    struct lb_resource *r = &d->resource;
    r->request = d->req;
    r->index = d->rep.at[AT_RESOURCE];
    r->attrs = (struct lb_attrs){ d->resource_attrs.v, d->resource_attrs.n };
    r->dropped_attributes_count = rp.resource.dropped_attributes_count;
    r->schema_url = (lb_str){ (const char *)rp.schema_url.p, rp.schema_url.n };
    r->entity_refs = d->entity_refs.v;
    r->n_entity_refs = d->entity_refs.n;
    bool emit = !d->skip_resource;
    if (emit)
        OTLP_EMIT(d->out, resource_begin, r);
    for (size_t i = 0; i < d->scope_refs.n; i++)
        if (!on_scope_profiles(d, d->scope_refs.v[i]))
            return false;
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
    if (d->dict_indexed)   /* every dictionary of the request, by the fast path's walk */
        return true;
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!layout_dictionary(d->layout, &s.is, &d->dict.tables))
        return otlp_malformed(&d->rep, "dictionary", &s.is);
    return true;
}

/* ---------- the request ---------- */

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
    dec_set_layout(d, d->detection.layout);
    return true;
}

/* The unknown fields the detector recorded, as the request's view shows them. */
static void view_unknown_fields(struct otlp_decoder *d, struct lb_request *req)
{
    req->n_unknown_fields = otlp_unknown_view(&d->detection, d->unknown);
    req->unknown_fields = req->n_unknown_fields ? d->unknown : NULL;
    req->unknown_fields_total = d->res->unknown_fields = d->detection.n_unknown;
}

bool dec_entry_decode(struct otlp_decoder *d, enum dict_table t, int64_t idx, pb_ref_t ref, void *out,
                      const char **why)
{
    if (!d->speculating || d->entry_msg[t] < 0)
        return layout_entry_at(d->layout, d->entry_msg[t], ref, out, why);
    /* Scalars-only entries (entry_flat.c) read as decode_checked would, a quarter of the small
     * request's instructions before; refused, the request is retracted, the reason worded by
     * the full way. */
    if (d->entry_flat[t] ? !layout_entry_flat_checked(d->layout, d->entry_msg[t], ref, out)
                         : !layout_entry_checked(d->layout, d->entry_msg[t], ref, out, why)) {
        if (d->entry_flat[t])
            *why = "refused by the layout's checks";
        d->spec_failed = true;
        return false;
    }
    /* The caller's index names the entry (the null entry of an empty table is none): found
     * by a binary search over the table's offsets before, that search was a sixteenth of the
     * small request's decoding. */
    if (idx >= 0 && (uint64_t)idx < d->spec_checked[t].n)
        d->spec_checked[t].v[idx] = 1;
    return true;
}

/* The fast path: every entry unread so far, until the decoder reads it checked. */
static bool spec_entries_begin(struct otlp_decoder *d)
{
    for (int t = 0; t < DICT_TABLES; t++) {
        size_t n = d->dict.tables.t[t].n;
        VEC_RESET(d->spec_checked[t]);
        if (d->entry_msg[t] < 0 || n == 0)
            continue;
        if (!VEC_RESERVE(d->spec_checked[t], n))
            return false;
        memset(d->spec_checked[t].v, 0, n);
        d->spec_checked[t].n = n;
    }
    return true;
}

/* ... and at the end, the entries no sample needed, walked as the full walk would. */
static bool spec_entries_end(struct otlp_decoder *d)
{
    const uint8_t *checked[DICT_TABLES];
    for (int t = 0; t < DICT_TABLES; t++)
        checked[t] = d->spec_checked[t].n ? d->spec_checked[t].v : NULL;
    return otlp_speculate_entries(d->layout, &d->dict.tables, checked);
}

/* Decodes the request in d->layout, from the dictionary to request_end. Speculating (the fast
 * path, detect.h), any failure, and anything the decoder's checks find that the full detection
 * would have decided differently, retracts the request instead: the consumer is told to forget
 * it (request_abort with no reason, events.h) and *retracted is set; the caller then detects
 * and decodes it the full way. */
static enum otlp_status decode_request(struct otlp_decoder *d, const uint8_t *msg, size_t len, bool *retracted)
{
    struct otlp_result *res = d->res;
    struct lb_request *req = d->req;
    struct otlp_consumer out = d->out;
    req->layout = d->layout->name;
    view_unknown_fields(d, req);

    d->dict.layout = d->layout;
    if (!d->dict_indexed) {
        d->dict.tables.base = msg;
        for (int t = 0; t < DICT_TABLES; t++)
            VEC_RESET(d->dict.tables.t[t]);
    }

    /* Two passes: the dictionary wherever it lies, then the resources. */
    const struct raw_each dictionary_pass[EACH_SLOTS] = { [EACH_DICTIONARY] = { on_dictionary, d } };
    const struct raw_each resource_pass[EACH_SLOTS] = { [EACH_CHILD] = { on_resource_profiles, d } };
    const char *why;
    if (!env_request((pb_ref_t){ msg, len }, dictionary_pass, &why)) {
        otlp_malformed_why(&d->rep, "request", why);
        goto refused;
    }
    if (!dec_prepare_memos(d) || (d->speculating && !spec_entries_begin(d))) {
        otlp_out_of_memory(&d->rep);
        goto refused;
    }

    OTLP_EMIT(out, request_begin, OTLP_SIGNAL_PROFILES, req);
    if (!env_request((pb_ref_t){ msg, len }, resource_pass, &why)) {
        otlp_malformed_why(&d->rep, "request", why);
        OTLP_EMIT(out, request_abort, OTLP_SIGNAL_PROFILES, req, d->speculating ? NULL : res->message);
        goto refused;
    }
    if (d->speculating) {
        if (d->spec_failed || !spec_entries_end(d)) {
            OTLP_EMIT(out, request_abort, OTLP_SIGNAL_PROFILES, req, NULL);
            *retracted = true;
            return res->status;
        }
        otlp_speculate_confirm(&d->detection, &d->spec);
    }
    if (OTLP_EMIT(out, request_end, OTLP_SIGNAL_PROFILES, req, res->message, sizeof res->message) != 0)
        return res->status = OTLP_SINK_FAILED;
    finish_message(d);
    return res->status = OTLP_OK;

refused:
    if (d->speculating) {
        *retracted = true;
        return res->status;
    }
    if (d->rep.nomem) {
        otlp_note_nomem(&d->rep, len);
        res->problem = OTLP_PROBLEM_OUT_OF_MEMORY;
        return res->status = OTLP_NOMEM;
    }
    res->problem = OTLP_PROBLEM_MALFORMED;
    res->resources = res->profiles = res->samples = res->frames = res->timestamps = 0;
    return res->status = OTLP_INVALID;
}

/* Where a request starts, and starts again after a retraction. */
static void request_reset(struct otlp_decoder *d, const uint8_t *msg, size_t len)
{
    struct otlp_result *res = d->res;
    struct lb_request *req = d->req;
    memset(res, 0, sizeof *res);
    otlp_report_begin(&d->rep, res->message, sizeof res->message);
    req->layout = "none";
    req->message_bytes = len;
    req->message = msg;
    req->signal = LB_SIGNAL_PROFILES;
    req->unknown_fields = NULL;
    req->n_unknown_fields = 0;
    req->unknown_fields_total = 0;
    d->detection.layout = NULL;   /* nothing chosen until this request is detected */
    d->detection.n_tried = d->detection.n_evidence = d->detection.n_recorded = 0;
    d->detection.n_unknown = 0;
    d->speculating = d->spec_failed = d->dict_indexed = false;
}

enum otlp_status otlp_export_profiles(struct otlp_decoder *d, const uint8_t *msg, size_t len,
                                      struct lb_request *req, struct otlp_consumer out,
                                      struct otlp_result *res)
{
    d->res = res;
    d->req = req;
    d->out = out;
    request_reset(d, msg, len);

    if (!otlp_check_size(&d->rep, len)) {
        res->problem = OTLP_PROBLEM_TOO_LARGE;
        return res->status = OTLP_INVALID;
    }
    if (OTLP_EMIT(out, admit, OTLP_SIGNAL_PROFILES, res->message, sizeof res->message) != 0)
        return res->status = OTLP_UNAVAILABLE;
    /* The fast path (detect.h): a layout chosen from a prefix, checked as it is decoded. */
    if (!d->pinned && !d->reference_only && otlp_speculate_layout(msg, len, &d->detection, &d->spec, &d->dict.tables)) {
        bool retracted = false;
        d->speculating = d->dict_indexed = true;
        dec_set_layout(d, d->detection.layout);
        enum otlp_status st = decode_request(d, msg, len, &retracted);
        d->speculating = d->dict_indexed = false;
        if (!retracted)
            return st;
        d->retractions++;
        request_reset(d, msg, len);
    }
    if (!choose_layout(d, msg, len)) {
        res->problem = d->detection.malformed ? OTLP_PROBLEM_MALFORMED : OTLP_PROBLEM_NO_LAYOUT;
        return res->status = OTLP_INVALID;
    }
    bool unused = false;
    return decode_request(d, msg, len, &unused);
}

void otlp_decoder_set_reference(struct otlp_decoder *d, bool reference_only)
{
    d->reference_only = reference_only;
}

uint64_t otlp_decoder_retractions(const struct otlp_decoder *d)
{
    return d->retractions;
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
    d->blank_frame.function = d->blank_frame.system_name = d->blank_frame.file = LB_STR_NULL;
    dec_set_layout(d, layout ? layout : otlp_layouts[0]);
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
    VEC_FREE(d->stack_memo);
    VEC_FREE(d->frame_pool);
    VEC_FREE(d->stack_pool);
    VEC_FREE(d->attr_idx);
    VEC_FREE(d->loc_idx);
    VEC_FREE(d->stack_locs);
    VEC_FREE(d->built_locs);
    VEC_FREE(d->profile_locs);
    VEC_FREE(d->values);
    VEC_FREE(d->timestamps);
    VEC_FREE(d->lines);
    VEC_FREE(d->resource_attrs);
    VEC_FREE(d->scope_attrs);
    VEC_FREE(d->profile_attrs);
    VEC_FREE(d->sample_attrs);
    VEC_FREE(d->frames);
    VEC_FREE(d->raw_sample_types);
    VEC_FREE(d->sample_types);
    VEC_FREE(d->comment_idx);
    VEC_FREE(d->comments);
    VEC_FREE(d->entity_refs);
    VEC_FREE(d->entity_id_keys);
    VEC_FREE(d->entity_description_keys);
    VEC_FREE(d->scope_refs);
    VEC_FREE(d->profile_refs);
    for (int t = 0; t < DICT_TABLES; t++)
        VEC_FREE(d->spec_checked[t]);
    dec_free_memos(d);
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
    if (res->rejected_profiles || res->rejected_samples || res->rejected_whole) {
        resp.has_partial_success = true;
        /* A profile that lost samples counts as rejected: partial_success has no finer unit. */
        resp.partial_success.rejected_profiles = (int64_t)res->rejected_profiles;
        snprintf(resp.partial_success.error_message, sizeof resp.partial_success.error_message,
                 "%s", res->message);
    }
    return otlp_encode_response(opentelemetry_proto_collector_profiles_v1development_ExportProfilesServiceResponse_fields,
                                &resp, out);
}
