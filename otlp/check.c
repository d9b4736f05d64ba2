/*
 * check.c - the conformance checker's walk of one request (check.h says why it exists):
 * the layout, the envelope (resources, scopes, profiles), every profile's header and
 * samples; then the dictionary (check_dict.c). Also the rule table, the groups, and how a
 * finding is counted, placed and described.
 *
 * The order of the findings follows profcheck's: the profiles first, then the dictionary's
 * tables, then the unreferenced entries. Each rule's words follow profcheck's message where
 * it has one, so that a sender who knows one tool reads the other.
 */
#include "otlp/check.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pb_decode.h>

#include "otlp/check_internal.h"
#include "otlp/detect.h"

const struct check_rule check_rules[CR_COUNT] = {
    [CR_NO_RESOURCE_PROFILES] = { "no-resource-profiles", CHECK_GROUP_CORE, "Check" },
    [CR_NO_SCOPE_PROFILES] = { "no-scope-profiles", CHECK_GROUP_CORE, "checkResourceProfiles" },
    [CR_NO_PROFILES] = { "no-profiles", CHECK_GROUP_CORE, "checkScopeProfiles" },
    [CR_ZERO_ENTRY] = { "zero-entry", CHECK_GROUP_CORE, "checkZeroVal" },
    [CR_INDEX_RANGE] = { "index-range", CHECK_GROUP_CORE, "checkIndex" },
    [CR_DUPLICATE_ATTRIBUTE_KEY] = { "duplicate-attribute-key", CHECK_GROUP_CORE, "checkAttributeIndices" },
    [CR_TIMESTAMP_RANGE] = { "timestamp-range", CHECK_GROUP_CORE, "checkSample" },
    [CR_NON_NEGATIVE] = { "non-negative", CHECK_GROUP_CORE, "checkNonNegative" },
    [CR_MAPPING_RANGE] = { "mapping-range", CHECK_GROUP_CORE, "checkMappingTable" },
    [CR_LINK_ID_LENGTH] = { "link-id-length", CHECK_GROUP_CORE, "checkLinkTable" },
    [CR_MALFORMED_ENTRY] = { "malformed-entry", CHECK_GROUP_CORE, NULL },
    [CR_CHECK_LIMIT] = { "check-limit", CHECK_GROUP_CORE, NULL },
    [CR_SAMPLE_EMPTY] = { "sample-empty", CHECK_GROUP_SHAPE, "checkSample" },
    [CR_SAMPLE_LENGTHS] = { "sample-lengths", CHECK_GROUP_SHAPE, "checkSample" },
    [CR_SAMPLE_SINGLE_VALUE] = { "sample-single-value", CHECK_GROUP_SHAPE, "checkSample" },
    [CR_SAMPLE_SHAPE_MIXED] = { "sample-shape-mixed", CHECK_GROUP_SHAPE, "checkSample" },
    [CR_DUPLICATE_STRING] = { "duplicate-string", CHECK_GROUP_DUPLICATES, "checkStringTable" },
    [CR_DUPLICATE_MAPPING] = { "duplicate-mapping", CHECK_GROUP_DUPLICATES, "checkMappingTable" },
    [CR_UNREFERENCED] = { "unreferenced", CHECK_GROUP_ORPHANS, "checkDictionaryOrphans" },
    [CR_DUPLICATE_FUNCTION] = { "duplicate-function", CHECK_GROUP_STRICT, NULL },
    [CR_DUPLICATE_LOCATION] = { "duplicate-location", CHECK_GROUP_STRICT, NULL },
    [CR_DUPLICATE_LINK] = { "duplicate-link", CHECK_GROUP_STRICT, NULL },
    [CR_DUPLICATE_ATTRIBUTE] = { "duplicate-attribute", CHECK_GROUP_STRICT, NULL },
    [CR_DUPLICATE_STACK] = { "duplicate-stack", CHECK_GROUP_STRICT, NULL },
};

static const struct { unsigned bit; const char *name; } group_names[] = {
    { CHECK_GROUP_CORE, "core" }, { CHECK_GROUP_SHAPE, "sample-shape" },
    { CHECK_GROUP_DUPLICATES, "duplicates" }, { CHECK_GROUP_ORPHANS, "orphans" },
    { CHECK_GROUP_STRICT, "strict" },
};
#define N_GROUPS (sizeof group_names / sizeof group_names[0])

const char *check_group_name(unsigned group)
{
    for (size_t i = 0; i < N_GROUPS; i++)
        if (group_names[i].bit == group)
            return group_names[i].name;
    return "?";
}

static bool group_bits(const char *name, size_t len, unsigned *out)
{
    if (len == 7 && memcmp(name, "default", 7) == 0) {
        *out = CHECK_GROUPS_DEFAULT;
        return true;
    }
    if (len == 3 && memcmp(name, "all", 3) == 0) {
        *out = CHECK_GROUPS_ALL;
        return true;
    }
    for (size_t i = 0; i < N_GROUPS; i++)
        if (strlen(group_names[i].name) == len && memcmp(group_names[i].name, name, len) == 0) {
            *out = group_names[i].bit;
            return true;
        }
    return false;
}

bool check_groups_parse(const char *list, unsigned *out, char *err, size_t errlen)
{
    unsigned groups = list[0] == '-' ? CHECK_GROUPS_DEFAULT : 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        bool remove = len > 0 && p[0] == '-';
        unsigned bits;
        if (!group_bits(p + remove, len - remove, &bits)) {
            snprintf(err, errlen, "unknown check group '%.*s' (core, sample-shape, duplicates, orphans, "
                     "strict, default, all; -NAME removes one)", (int)len, p);
            return false;
        }
        groups = remove ? groups & ~bits : groups | bits;
        if (!p[len])
            break;
        p += len + 1;
    }
    if (!groups) {
        snprintf(err, errlen, "no check group left in '%s'", list);
        return false;
    }
    *out = groups;
    return true;
}

size_t check_groups_format(unsigned groups, char *out, size_t len)
{
    assert(len > 0);
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < N_GROUPS && n < len; i++)
        if (groups & group_names[i].bit) {
            int w = snprintf(out + n, len - n, "%s%s", n ? "," : "", group_names[i].name);
            if (w < 0)
                break;
            n += (size_t)w;
        }
    return n < len ? n : len - 1;
}

/* ---------- findings ---------- */

static const char *const level_names[CK_LEVELS] = { "resource_profiles", "scope_profiles", "profiles", "sample" };

bool ck_on(const struct otlp_checker *c, enum check_rule_id r)
{
    return (c->groups & check_rules[r].group) != 0;
}

static struct check_finding *add_v(struct otlp_checker *c, enum check_rule_id r, const char *sub, va_list ap)
{
    if (!ck_on(c, r))
        return NULL;
    c->rep.n_findings++;
    c->rep.per_rule[r]++;
    if (c->findings.n >= c->max_kept)
        return NULL;
    if (!VEC_RESERVE(c->findings, c->findings.n + 1)) {
        c->oom = true;
        return NULL;
    }
    struct check_finding *f = &c->findings.v[c->findings.n++];
    f->rule = r;
    f->message[0] = 0;
    size_t n = 0;
    if (c->in_dictionary) {
        n = (size_t)snprintf(f->path, sizeof f->path, "dictionary");
    } else {
        for (int i = 0; i < c->depth && n < sizeof f->path; i++)
            n += (size_t)snprintf(f->path + n, sizeof f->path - n, "%s%s[%u]", i ? "." : "",
                                  level_names[i], c->at[i]);
    }
    if (n < sizeof f->path) {
        char tail[sizeof f->path];
        vsnprintf(tail, sizeof tail, sub, ap);
        snprintf(f->path + n, sizeof f->path - n, "%s", n == 0 && tail[0] == '.' ? tail + 1 : tail);
    }
    return f;
}

struct check_finding *ck_add(struct otlp_checker *c, enum check_rule_id r, const char *sub, ...)
{
    va_list ap;
    va_start(ap, sub);
    struct check_finding *f = add_v(c, r, sub, ap);
    va_end(ap);
    return f;
}

void ck_report(struct otlp_checker *c, enum check_rule_id r, const char *sub, const char *fmt, ...)
{
    struct check_finding *f = ck_add(c, r, "%s", sub);
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

bool ck_index(struct otlp_checker *c, int64_t idx, size_t n, const char *sub, ...)
{
    if (idx >= 0 && (uint64_t)idx < n)
        return true;
    char path[160];
    va_list ap;
    va_start(ap, sub);
    vsnprintf(path, sizeof path, sub, ap);
    va_end(ap);
    ck_report(c, CR_INDEX_RANGE, path, "index %lld is out of range [0..%zu)", (long long)idx, n);
    return false;
}

bool ck_entry(struct otlp_checker *c, enum dict_table t, uint32_t idx, void *out)
{
    pb_ref_t ref;
    if (!dict_entry(&c->dict, t, idx, &ref))
        return false;
    struct pbref_stream s;
    pbref_open_ref(&s, ref);
    if (layout_entry(c->layout, t, &s.is, out))
        return true;
    struct check_finding *f = ck_add(c, CR_MALFORMED_ENTRY, ".%s[%u]", ck_table_names[t], idx);
    if (f)
        snprintf(f->message, sizeof f->message, "does not decode: %s", PB_GET_ERROR(&s.is));
    return false;
}

size_t check_finding_format(const struct check_finding *f, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s%s [%s]", f->path, f->path[0] ? ": " : "", f->message,
                     check_rules[f->rule].id);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

size_t check_report_summary(const struct check_report *r, char *out, size_t len)
{
    int n;
    if (r->verdict == CHECK_CLEAN) {
        n = snprintf(out, len, "conformance checks passed");
    } else if (r->verdict != CHECK_FINDINGS) {
        n = snprintf(out, len, "not checked: %s", r->error);
    } else {
        char first[600] = "";
        if (r->n_kept)
            check_finding_format(&r->findings[0], first, sizeof first);
        n = snprintf(out, len, "%llu conformance finding%s; first: %s", (unsigned long long)r->n_findings,
                     r->n_findings == 1 ? "" : "s", first);
    }
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* ---------- attribute lists ---------- */

/* The key of attribute entry `a` as text, for a message. */
static void attribute_key_text(struct otlp_checker *c, int32_t a, char *out, size_t len)
{
    struct raw_attribute ra;
    memset(&ra, 0, sizeof ra);
    lb_str key = { "", 0 };
    if (ck_entry_quiet(c, DICT_ATTRIBUTE, (uint32_t)a, &ra)) {
        if (ra.key.n)
            key = (lb_str){ (const char *)ra.key.p, ra.key.n };
        else
            dict_string(&c->dict, ra.key_strindex, &key);
    }
    size_t n = 0;
    for (size_t i = 0; i < key.n && n + 5 < len; i++) {
        unsigned char ch = (unsigned char)key.p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, len - n, "\\x%02x", ch);
    }
    out[n] = 0;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

void ck_attribute_list(struct otlp_checker *c, const ivec *idx, const char *field)
{
    size_t n_attr = dict_len(&c->dict, DICT_ATTRIBUTE);
    /* At most one slot per key the attribute table has (hashed part): a list of millions of
     * indices into a small table needs a small set. */
    size_t distinct = idx->n < c->attr_key.n ? idx->n : c->attr_key.n;
    size_t cap = idx->n > 1 ? pow2_at_least((distinct ? distinct : 1) * 2) : 0;
    if (cap && (!VEC_RESERVE(c->list_key, cap) || !VEC_RESERVE(c->list_pos, cap))) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i < cap; i++)
        c->list_key.v[i] = CK_KEY_BAD;
    for (size_t pos = 0; pos < idx->n; pos++) {
        int32_t a = idx->v[pos];
        if (!ck_index(c, a, n_attr, "%s[%zu]", field, pos))
            continue;
        ck_ref(c, DICT_ATTRIBUTE, a);
        if ((size_t)a >= c->attr_key.n)
            continue;   /* past the hashed part of the table: unchecked (check-limit says so) */
        int64_t key = c->attr_key.v[a];
        if (key == CK_KEY_MALFORMED)
            continue;
        if (key == CK_KEY_BAD) {
            struct check_finding *f = ck_add(c, CR_INDEX_RANGE, "%s[%zu].key_strindex", field, pos);
            if (f) {
                struct raw_attribute ra;
                memset(&ra, 0, sizeof ra);
                ck_entry_quiet(c, DICT_ATTRIBUTE, (uint32_t)a, &ra);
                snprintf(f->message, sizeof f->message, "index %d is out of range [0..%zu)",
                         ra.key_strindex, dict_len(&c->dict, DICT_STRING));
            }
            continue;
        }
        if (!cap)
            continue;
        size_t h = (size_t)check_hash(&key, sizeof key) & (cap - 1);
        while (c->list_key.v[h] != CK_KEY_BAD && c->list_key.v[h] != key)
            h = (h + 1) & (cap - 1);
        if (c->list_key.v[h] == CK_KEY_BAD) {
            c->list_key.v[h] = key;
            c->list_pos.v[h] = (uint32_t)pos;
            continue;
        }
        /* v1.7's attribute table holds KeyValues: the key is inline */
        const char *key_field = layout_has_stacks(c->layout) ? "key_strindex" : "key";
        struct check_finding *f = ck_add(c, CR_DUPLICATE_ATTRIBUTE_KEY, "%s[%zu].%s", field, pos, key_field);
        if (f) {
            char text[128];
            attribute_key_text(c, a, text, sizeof text);
            snprintf(f->message, sizeof f->message, "duplicate key \"%s\", previously seen at [%u].%s",
                     text, c->list_pos.v[h], key_field);
        }
    }
}

/* ---------- profiles and samples ---------- */

enum shape { SHAPE_UNSPECIFIED, SHAPE_VALUES, SHAPE_TIMESTAMPS, SHAPE_BOTH, SHAPE_INVALID };
static const char *const shape_names[] = { "unspecified", "values_only", "timestamps_only",
                                           "both_values_and_timestamps", "unspecified" };

struct walk {
    struct otlp_checker *c;
    uint64_t start, end;        /* the profile's time range [start, end), as profcheck adds */
    enum shape expected;
    unsigned n_scopes, n_profiles, n_samples, n_resources;
};

static void check_shape(struct walk *w, const struct raw_sample *rs)
{
    struct otlp_checker *c = w->c;
    size_t nv = rs->values->n, nt = rs->timestamps->n;
    enum shape shape;
    if (nv && nt) {
        if (nv != nt)
            ck_report(c, CR_SAMPLE_LENGTHS, "", "values (len=%zu) and timestamps_unix_nano (len=%zu) must "
                      "contain the same number of elements", nv, nt);
        shape = SHAPE_BOTH;
    } else if (nv) {
        if (nv != 1)
            ck_report(c, CR_SAMPLE_SINGLE_VALUE, "", "values (len=%zu) must contain a single element if "
                      "timestamps_unix_nano is not set", nv);
        shape = SHAPE_VALUES;
    } else if (nt) {
        shape = SHAPE_TIMESTAMPS;
    } else {
        ck_report(c, CR_SAMPLE_EMPTY, "", "sample must have at least one values or timestamps_unix_nano entry");
        shape = SHAPE_INVALID;
    }
    if (w->expected == SHAPE_UNSPECIFIED)
        w->expected = shape;
    else if (shape != w->expected)
        ck_report(c, CR_SAMPLE_SHAPE_MIXED, "", "sample shape %s does not match expected sample shape %s",
                  shape_names[shape], shape_names[w->expected]);
}

static bool on_sample(void *ctx, pb_ref_t el)
{
    struct walk *w = ctx;
    struct otlp_checker *c = w->c;
    c->at[CK_SAMPLE] = w->n_samples++;
    c->depth = CK_SAMPLE + 1;
    struct raw_sample rs;
    memset(&rs, 0, sizeof rs);
    VEC_RESET(c->attr_idx);
    VEC_RESET(c->values);
    VEC_RESET(c->timestamps);
    rs.attribute_indices = &c->attr_idx;
    rs.values = &c->values;
    rs.timestamps = &c->timestamps;
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!layout_sample(c->layout, &s.is, &rs)) {
        ck_report(c, CR_MALFORMED_ENTRY, "", "malformed sample: %s", PB_GET_ERROR(&s.is));
        return !c->oom;
    }
    if (layout_has_stacks(c->layout)) {
        ck_index(c, rs.stack_index, dict_len(&c->dict, DICT_STACK), ".stack_index");
        ck_ref(c, DICT_STACK, rs.stack_index);
    } else {   /* v1.7: the sample is a slice of the profile's location_indices */
        int64_t from = rs.locations_start, end = (int64_t)rs.locations_start + rs.locations_length;
        if (from < 0 || rs.locations_length < 0 || (uint64_t)end > c->prof_locs.n)
            ck_report(c, CR_INDEX_RANGE, ".locations_start_index", "locations [%d, +%d) are out of range "
                      "[0..%zu) of the profile's location_indices", rs.locations_start, rs.locations_length,
                      c->prof_locs.n);
    }
    ck_attribute_list(c, &c->attr_idx, ".attribute_indices");
    if (layout_has_stacks(c->layout) || rs.link_explicit || rs.link_index != 0) {
        ck_index(c, rs.link_index, dict_len(&c->dict, DICT_LINK), ".link_index");
        ck_ref(c, DICT_LINK, rs.link_index);
    }
    for (size_t i = 0; i < c->timestamps.n; i++) {
        uint64_t ts = c->timestamps.v[i];
        if (ts >= w->start && ts < w->end)
            continue;
        struct check_finding *f = ck_add(c, CR_TIMESTAMP_RANGE, ".timestamps_unix_nano[%zu]", i);
        if (f)
            snprintf(f->message, sizeof f->message, "timestamps_unix_nano[%zu]=%llu is outside profile time "
                     "range [%llu, %llu)", i, (unsigned long long)ts, (unsigned long long)w->start,
                     (unsigned long long)w->end);
    }
    /* v1.7's values follow the profile's sample types, not the timestamps: no shape to check. */
    if (c->layout->parallel_values && (c->groups & CHECK_GROUP_SHAPE))
        check_shape(w, &rs);
    return !c->oom;
}

static void value_type(struct otlp_checker *c, const struct raw_value_type *vt, const char *field)
{
    size_t n_str = dict_len(&c->dict, DICT_STRING);
    ck_index(c, vt->unit_strindex, n_str, ".%s.unit_strindex", field);
    ck_index(c, vt->type_strindex, n_str, ".%s.type_strindex", field);
    ck_ref(c, DICT_STRING, vt->unit_strindex);
    ck_ref(c, DICT_STRING, vt->type_strindex);
}

static bool on_profile(void *ctx, pb_ref_t el)
{
    struct walk *w = ctx;
    struct otlp_checker *c = w->c;
    c->at[CK_PROFILE] = w->n_profiles++;
    c->depth = CK_PROFILE + 1;
    c->rep.profiles++;
    struct raw_profile rp;
    memset(&rp, 0, sizeof rp);
    VEC_RESET(c->prof_attr_idx);
    VEC_RESET(c->prof_locs);
    VEC_RESET(c->prof_comments);
    rp.attribute_indices = &c->prof_attr_idx;
    rp.location_indices = &c->prof_locs;
    rp.comment_strindices = &c->prof_comments;
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!layout_profile(c->layout, &s.is, &rp, NULL, NULL)) {
        ck_report(c, CR_MALFORMED_ENTRY, "", "malformed profile: %s", PB_GET_ERROR(&s.is));
        return !c->oom;
    }
    ck_attribute_list(c, &c->prof_attr_idx, ".attribute_indices");
    value_type(c, &rp.sample_type, "sample_type");
    value_type(c, &rp.period_type, "period_type");
    size_t n_str = dict_len(&c->dict, DICT_STRING);
    for (size_t i = 0; i < c->prof_comments.n; i++) {   /* v1.7, v1.8 */
        ck_index(c, c->prof_comments.v[i], n_str, ".comment_strindices[%zu]", i);
        ck_ref(c, DICT_STRING, c->prof_comments.v[i]);
    }
    size_t n_loc = dict_len(&c->dict, DICT_LOCATION);
    for (size_t i = 0; i < c->prof_locs.n; i++) {   /* v1.7 only */
        ck_index(c, c->prof_locs.v[i], n_loc, ".location_indices[%zu]", i);
        ck_ref(c, DICT_LOCATION, c->prof_locs.v[i]);
    }
    w->start = rp.time_unix_nano;
    w->end = rp.time_unix_nano + rp.duration_nano;   /* wraps as profcheck's uint64 sum does */
    w->expected = SHAPE_UNSPECIFIED;
    w->n_samples = 0;
    struct raw_profile ignored;
    memset(&ignored, 0, sizeof ignored);
    pbref_open_ref(&s, el);
    if (!layout_profile(c->layout, &s.is, &ignored, on_sample, w) && !c->oom)
        ck_report(c, CR_MALFORMED_ENTRY, "", "malformed profile: %s", PB_GET_ERROR(&s.is));
    c->depth = CK_PROFILE + 1;
    return !c->oom;
}

static bool on_scope(void *ctx, pb_ref_t el)
{
    struct walk *w = ctx;
    struct otlp_checker *c = w->c;
    c->at[CK_SCOPE] = w->n_scopes++;
    c->depth = CK_SCOPE + 1;
    w->n_profiles = 0;
    struct raw_scope_profiles sp;
    memset(&sp, 0, sizeof sp);
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!raw_scope_profiles(&s.is, NULL, on_profile, w, &sp))
        return false;
    c->depth = CK_SCOPE + 1;
    if (w->n_profiles == 0)
        ck_report(c, CR_NO_PROFILES, "", "scope profiles has no profiles");
    return true;
}

static bool on_resource(void *ctx, pb_ref_t el)
{
    struct walk *w = ctx;
    struct otlp_checker *c = w->c;
    c->at[CK_RESOURCE] = w->n_resources++;
    c->depth = CK_RESOURCE + 1;
    w->n_scopes = 0;
    struct raw_resource_profiles rp;
    memset(&rp, 0, sizeof rp);   /* its entity_ref callback is an input: none */
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    if (!raw_resource_profiles(&s.is, NULL, on_scope, w, &rp))
        return false;
    c->depth = CK_RESOURCE + 1;
    if (w->n_scopes == 0)
        ck_report(c, CR_NO_SCOPE_PROFILES, "", "resource profiles has no scope profiles");
    return true;
}

static bool count_resource(void *ctx, pb_ref_t el)
{
    (void)el;
    (*(unsigned *)ctx)++;
    return true;
}

static bool on_dictionary(void *ctx, pb_ref_t el)
{
    struct otlp_checker *c = ctx;
    struct pbref_stream s;
    pbref_open_ref(&s, el);
    return layout_dictionary(c->layout, &s.is, &c->dict.tables);
}

/* ---------- the request ---------- */

struct otlp_checker *otlp_checker_new(void)
{
    struct otlp_checker *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    buf_init(&c->key_a, (size_t)1 << 30);
    buf_init(&c->key_b, (size_t)1 << 30);
    return c;
}

void otlp_checker_free(struct otlp_checker *c)
{
    if (!c)
        return;
    VEC_FREE(c->findings);
    for (int t = 0; t < DICT_TABLES; t++) {
        VEC_FREE(c->dict.tables.t[t]);
        VEC_FREE(c->refs[t]);
    }
    VEC_FREE(c->attr_idx);
    VEC_FREE(c->loc_idx);
    VEC_FREE(c->prof_attr_idx);
    VEC_FREE(c->prof_locs);
    VEC_FREE(c->prof_comments);
    VEC_FREE(c->values);
    VEC_FREE(c->timestamps);
    VEC_FREE(c->lines);
    VEC_FREE(c->str_canon);
    VEC_FREE(c->attr_key);
    VEC_FREE(c->list_key);
    VEC_FREE(c->list_pos);
    check_set_free(&c->set);
    buf_free(&c->key_a);
    buf_free(&c->key_b);
    free(c);
}

static const struct check_report *unreadable(struct otlp_checker *c, enum check_verdict v, const char *why)
{
    c->rep.verdict = v;
    snprintf(c->rep.error, sizeof c->rep.error, "%s", why);
    c->rep.findings = c->findings.v;
    c->rep.n_kept = c->findings.n;
    return &c->rep;
}

/* The layout to read the request in: the detector's choice (otlp/detect.h) among every layout
 * or the pinned one. Values and timestamps of different lengths contradict every layout that
 * makes them parallel arrays, so a request whose only fault is that would fit none; it is
 * then read in the layout it fits otherwise, and the sample-lengths rule reports the fault, as
 * profcheck does. NULL (the report says why) when it fits none either way. */
static const struct otlp_layout *detect_layout(struct otlp_checker *c, const uint8_t *msg, size_t len,
                                               const struct otlp_layout *pinned)
{
    const struct otlp_layout *const *candidates = pinned ? &pinned : otlp_layouts;
    size_t n = pinned ? 1 : OTLP_LAYOUT_COUNT;
    struct otlp_detection *det = malloc(sizeof *det);
    if (!det) {
        unreadable(c, CHECK_NOMEM, "out of memory");
        return NULL;
    }
    const struct otlp_layout *chosen = NULL;
    if (otlp_detect_among(msg, len, candidates, n, det) == 0) {
        chosen = det->layout;
    } else {
        char why[sizeof c->rep.error];
        otlp_detection_failure(det, why, sizeof why);
        struct otlp_layout lenient[OTLP_LAYOUT_COUNT];
        const struct otlp_layout *lenient_ptr[OTLP_LAYOUT_COUNT];
        for (size_t i = 0; i < n; i++) {
            lenient[i] = *candidates[i];
            lenient[i].parallel_values = false;
            lenient_ptr[i] = &lenient[i];
        }
        if (otlp_detect_among(msg, len, lenient_ptr, n, det) == 0)
            chosen = candidates[det->layout - lenient];
        else
            unreadable(c, CHECK_UNREADABLE, why);
    }
    free(det);
    return chosen;
}

const struct check_report *otlp_check(struct otlp_checker *c, const uint8_t *msg, size_t len,
                                      const struct check_options *opt)
{
    memset(&c->rep, 0, sizeof c->rep);
    c->rep.layout = "";
    VEC_RESET(c->findings);
    c->groups = opt->groups ? opt->groups : CHECK_GROUPS_DEFAULT;
    c->max_kept = opt->max_findings ? opt->max_findings : CHECK_DEFAULT_KEPT;
    c->oom = false;
    c->depth = 0;
    c->in_dictionary = false;
    if (len > UINT32_MAX)
        return unreadable(c, CHECK_UNREADABLE, "over the 4 GiB a request may have");

    const struct otlp_layout *layout = detect_layout(c, msg, len, opt->layout);
    if (!layout)
        return &c->rep;
    c->layout = layout;
    c->rep.layout = c->layout->name;
    c->dict.layout = c->layout;
    c->dict.tables.base = msg;
    for (int t = 0; t < DICT_TABLES; t++)
        VEC_RESET(c->dict.tables.t[t]);

    struct pbref_stream s;
    pbref_open(&s, msg, len);
    if (!raw_request(&s.is, on_dictionary, NULL, c))
        return unreadable(c, CHECK_UNREADABLE, PB_GET_ERROR(&s.is));
    unsigned n_resources = 0;
    pbref_open(&s, msg, len);
    if (!raw_request(&s.is, NULL, count_resource, &n_resources))
        return unreadable(c, CHECK_UNREADABLE, PB_GET_ERROR(&s.is));

    if (n_resources == 0) {
        /* profcheck says only this: there is nothing the dictionary could serve */
        ck_report(c, CR_NO_RESOURCE_PROFILES, "", "resource profiles are empty");
    } else {
        if (!ck_dict_prepare(c))
            return unreadable(c, CHECK_NOMEM, "out of memory");
        struct walk w = { .c = c };
        pbref_open(&s, msg, len);
        if (!raw_request(&s.is, NULL, on_resource, &w) && !c->oom) {
            char why[sizeof c->rep.error];
            snprintf(why, sizeof why, "malformed request: %s", PB_GET_ERROR(&s.is));
            return unreadable(c, CHECK_UNREADABLE, why);
        }
        c->depth = 0;
        c->in_dictionary = true;
        if (!c->oom)
            ck_dict_check(c);
        if (!c->oom && c->orphans)
            ck_orphans(c);
        c->in_dictionary = false;
    }
    if (c->oom)
        return unreadable(c, CHECK_NOMEM, "out of memory");
    c->rep.findings = c->findings.v;
    c->rep.n_kept = c->findings.n;
    c->rep.verdict = c->rep.n_findings ? CHECK_FINDINGS : CHECK_CLEAN;
    return &c->rep;
}
