/*
 * filter.c - the filter stage (see filter.h): decides per resource, profile and sample what
 * reaches the inner sinks, opens the inner resource/profile blocks lazily so nothing empty is
 * passed on, and rewrites a sample's frame list into its own scratch array when frames are
 * filtered (the decoder's arrays are never touched).
 */
#include "sinks/filter.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

/* A scratch array this large (in frames) is given back after the request. */
#define SCRATCH_KEEP 65536

static const char *const reason_flag[FILTER_REASONS] = {
    "--sample-types", "--require-container-id", "--container-id", "--resource",
    "--frame-types", "--min-frames",
};

const char *filter_reason_name(enum filter_reason r)
{
    static const char *const names[FILTER_REASONS] = {
        "sample_types", "require_container_id", "container_id", "resource", "frame_types", "min_frames",
    };
    return r < FILTER_REASONS ? names[r] : "?";
}

/* An owned list of names, split from comma-separated option values. */
struct strlist {
    lb_str *v;
    size_t n;
    char *storage;
};

/* One test on an attribute looked up on the resource (or, when the resource does not have
 * the key, on the sample). */
struct attr_check {
    const char *key;          /* NUL-terminated */
    bool nonempty;            /* true: the value must be non-empty; false: equal `value` */
    lb_str value;
    enum filter_reason reason;
};

struct filter {
    struct sink_set *inner;
    struct strlist sample_types, frame_types;
    struct attr_check *checks;
    size_t n_checks;
    char *check_storage;
    unsigned min_frames;

    /* The current resource and profile: forwarded once a sample of theirs passes. */
    const struct lb_resource *res;
    bool res_open, res_skip;
    enum filter_reason res_reason;
    bool *deferred;           /* per check: the resource lacks the key, test each sample */
    const struct lb_profile *prof;
    bool prof_open, prof_skip;

    uint64_t in, passed, dropped[FILTER_REASONS], frames_removed;   /* this request's */
    struct filter_stats total;   /* every ended request's */
    bool failed;              /* out of memory: the request is aborted for the inner sinks */
    struct lb_frame *scratch;
    size_t scratch_cap;
};

/* ---- configuration ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Calls fn on every trimmed, non-empty part of a comma-separated list; returns the count. */
static size_t split_list(const char *csv, void (*fn)(void *, const char *, size_t), void *ud)
{
    size_t count = 0;
    while (csv) {
        const char *comma = strchr(csv, ',');
        const char *b = csv, *e = comma ? comma : csv + strlen(csv);
        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        if (e > b) {
            if (fn)
                fn(ud, b, (size_t)(e - b));
            count++;
        }
        csv = comma ? comma + 1 : NULL;
    }
    return count;
}

struct list_builder {
    struct strlist *l;
    char *next;
};

static void add_part(void *ud, const char *p, size_t n)
{
    struct list_builder *lb = ud;
    memcpy(lb->next, p, n);
    lb->l->v[lb->l->n++] = (lb_str){ lb->next, n };
    lb->next += n;
}

/* Splits every list of `csv` into one owned list. */
static int strlist_build(struct strlist *l, const char *const *csv, size_t n_csv)
{
    size_t parts = 0, bytes = 0;
    for (size_t i = 0; i < n_csv; i++) {
        parts += split_list(csv[i], NULL, NULL);
        bytes += strlen(csv[i]);
    }
    memset(l, 0, sizeof *l);
    if (parts == 0)
        return 0;
    l->v = calloc(parts, sizeof *l->v);
    l->storage = malloc(bytes + 1);
    if (!l->v || !l->storage)
        return -1;
    struct list_builder lb = { l, l->storage };
    for (size_t i = 0; i < n_csv; i++)
        split_list(csv[i], add_part, &lb);
    assert(l->n == parts);
    return 0;
}

static void strlist_free(struct strlist *l)
{
    free(l->v);
    free(l->storage);
}

static bool strlist_has(const struct strlist *l, lb_str s)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].n == s.n && (s.n == 0 || memcmp(l->v[i].p, s.p, s.n) == 0))
            return true;
    return false;
}

bool filter_config_active(const struct filter_config *cfg)
{
    return cfg->n_sample_types || cfg->n_frame_types || cfg->container_id ||
           cfg->require_container_id || cfg->n_resource || cfg->min_frames;
}

int filter_config_check(const struct filter_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_sample_types; i++)
        if (split_list(cfg->sample_types[i], NULL, NULL) == 0) {
            snprintf(err, errlen, "--sample-types '%s' names no sample type", cfg->sample_types[i]);
            return -1;
        }
    for (size_t i = 0; i < cfg->n_frame_types; i++)
        if (split_list(cfg->frame_types[i], NULL, NULL) == 0) {
            snprintf(err, errlen, "--frame-types '%s' names no frame type", cfg->frame_types[i]);
            return -1;
        }
    for (size_t i = 0; i < cfg->n_resource; i++) {
        const char *eq = strchr(cfg->resource[i], '=');
        if (!eq || eq == cfg->resource[i]) {
            snprintf(err, errlen, "--resource '%s' is not key=value", cfg->resource[i]);
            return -1;
        }
    }
    if (cfg->container_id && !*cfg->container_id) {
        snprintf(err, errlen, "--container-id needs a non-empty id (or use --require-container-id)");
        return -1;
    }
    return 0;
}

/* The checks on looked-up attributes, in the order the log line reports them. Keys and
 * values are copied into one block. */
static int build_checks(struct filter *f, const struct filter_config *cfg)
{
    size_t n = cfg->n_resource + (cfg->container_id != NULL) + cfg->require_container_id;
    size_t bytes = 0;
    for (size_t i = 0; i < cfg->n_resource; i++)
        bytes += strlen(cfg->resource[i]) + 1;
    if (n == 0)
        return 0;
    f->checks = calloc(n, sizeof *f->checks);
    f->deferred = calloc(n, sizeof *f->deferred);
    f->check_storage = malloc(bytes + 1);
    if (!f->checks || !f->deferred || !f->check_storage)
        return -1;
    char *next = f->check_storage;
    if (cfg->require_container_id)
        f->checks[f->n_checks++] = (struct attr_check){ "container.id", true, LB_STR_NULL,
                                                        FILTER_BY_REQUIRE_CONTAINER_ID };
    if (cfg->container_id)
        f->checks[f->n_checks++] = (struct attr_check){
            "container.id", false, { cfg->container_id, strlen(cfg->container_id) }, FILTER_BY_CONTAINER_ID };
    for (size_t i = 0; i < cfg->n_resource; i++) {
        size_t len = strlen(cfg->resource[i]);
        memcpy(next, cfg->resource[i], len + 1);
        char *eq = strchr(next, '=');
        assert(eq);   /* filter_config_check */
        *eq = '\0';
        f->checks[f->n_checks++] = (struct attr_check){
            next, false, { eq + 1, len - (size_t)(eq + 1 - next) }, FILTER_BY_RESOURCE };
        next += len + 1;
    }
    assert(f->n_checks == n);
    return 0;
}

/* ---- matching ---- */

static bool value_nonempty(const struct lb_value *v)
{
    if (v->kind == LB_VALUE_EMPTY)
        return false;
    if (v->kind == LB_VALUE_STRING || v->kind == LB_VALUE_BYTES)
        return v->u.str.n > 0;
    return true;
}

/* Strings compare as bytes, ints by their decimal form, booleans as true/false; other
 * kinds never match (a user cannot type them). */
static bool value_equals(const struct lb_value *v, lb_str want)
{
    char t[24];
    int n;
    switch (v->kind) {
    case LB_VALUE_STRING:
        return v->u.str.n == want.n && (want.n == 0 || memcmp(v->u.str.p, want.p, want.n) == 0);
    case LB_VALUE_INT:
        n = snprintf(t, sizeof t, "%" PRId64, v->u.integer);
        return (size_t)n == want.n && memcmp(t, want.p, want.n) == 0;
    case LB_VALUE_BOOL:
        return v->u.boolean ? lb_str_eq(want, "true", 4) : lb_str_eq(want, "false", 5);
    default:
        return false;
    }
}

static bool check_passes(const struct attr_check *c, const struct lb_attr *a)
{
    if (!a)
        return false;
    return c->nonempty ? value_nonempty(&a->value) : value_equals(&a->value, c->value);
}

static bool frame_kept(const struct filter *f, const struct lb_frame *fr)
{
    return strlist_has(&f->frame_types, fr->type.n ? fr->type : LB_STR_LIT("unknown"));
}

/* The sample as the inner sinks see it: the original when every frame is kept, else a copy
 * whose frames live in the scratch array. NULL when the stage drops it (reason set). */
static const struct lb_sample *frame_filter(struct filter *f, const struct lb_sample *s,
                                            struct lb_sample *copy, enum filter_reason *why)
{
    const struct lb_sample *out = s;
    if (f->frame_types.n) {
        size_t kept = 0;
        for (size_t i = 0; i < s->n_frames; i++)
            kept += frame_kept(f, &s->frames[i]);
        if (kept == 0) {
            f->frames_removed += s->n_frames;
            *why = FILTER_BY_FRAME_TYPES;
            return NULL;
        }
        if (kept < s->n_frames) {
            if (kept > f->scratch_cap) {
                struct lb_frame *p = realloc(f->scratch, kept * sizeof *p);
                if (!p)
                    return NULL;   /* why stays FILTER_REASONS: the caller fails the request */
                f->scratch = p;
                f->scratch_cap = kept;
            }
            size_t k = 0;
            for (size_t i = 0; i < s->n_frames; i++)
                if (frame_kept(f, &s->frames[i]))
                    f->scratch[k++] = s->frames[i];
            f->frames_removed += s->n_frames - kept;
            *copy = *s;
            copy->frames = f->scratch;
            copy->n_frames = kept;
            out = copy;
        }
    }
    if (out->n_frames < f->min_frames) {
        *why = FILTER_BY_MIN_FRAMES;
        return NULL;
    }
    return out;
}

/* NULL and the reason when the sample is dropped. */
static const struct lb_sample *decide(struct filter *f, const struct lb_sample *s,
                                      struct lb_sample *copy, enum filter_reason *why)
{
    if (f->res_skip) {
        *why = f->res_reason;
        return NULL;
    }
    if (f->prof_skip) {
        *why = FILTER_BY_SAMPLE_TYPE;
        return NULL;
    }
    for (size_t i = 0; i < f->n_checks; i++) {
        if (f->deferred[i] && !check_passes(&f->checks[i], lb_attrs_find(s->attrs, f->checks[i].key))) {
            *why = f->checks[i].reason;
            return NULL;
        }
    }
    return frame_filter(f, s, copy, why);
}

/* ---- events ---- */

static struct filter *state(struct sink *s)
{
    return s->ctx;
}

static void reset_request(struct filter *f)
{
    f->res = NULL;
    f->prof = NULL;
    f->res_open = f->res_skip = f->prof_open = f->prof_skip = f->failed = false;
    f->in = f->passed = f->frames_removed = 0;
    memset(f->dropped, 0, sizeof f->dropped);
    if (f->scratch_cap > SCRATCH_KEEP) {
        free(f->scratch);
        f->scratch = NULL;
        f->scratch_cap = 0;
    }
}

static int on_admit(struct sink *s, char *why, size_t whylen)
{
    return sink_set_admit(state(s)->inner, why, whylen);
}

static void on_request_begin(struct sink *s, const struct lb_request *r)
{
    reset_request(state(s));
    sink_set_request_begin(state(s)->inner, r);
}

static void on_resource_begin(struct sink *s, const struct lb_resource *r)
{
    struct filter *f = state(s);
    assert(!f->res && !f->prof);
    f->res = r;
    f->res_open = f->res_skip = false;
    for (size_t i = 0; i < f->n_checks && !f->res_skip; i++) {
        const struct lb_attr *a = lb_attrs_find(r->attrs, f->checks[i].key);
        f->deferred[i] = a == NULL;
        if (a && !check_passes(&f->checks[i], a)) {
            f->res_skip = true;
            f->res_reason = f->checks[i].reason;
        }
    }
}

static void on_profile_begin(struct sink *s, const struct lb_profile *p)
{
    struct filter *f = state(s);
    assert(f->res && !f->prof);
    f->prof = p;
    f->prof_open = false;
    f->prof_skip = f->sample_types.n && !strlist_has(&f->sample_types, p->sample_type);
}

static void on_sample(struct sink *s, const struct lb_sample *smp)
{
    struct filter *f = state(s);
    struct lb_sample copy;
    enum filter_reason why = FILTER_REASONS;
    assert(f->res && f->prof);
    f->in++;
    if (f->failed)
        return;
    const struct lb_sample *out = decide(f, smp, &copy, &why);
    if (!out && why == FILTER_REASONS) {
        /* No memory for the frame copy: dropping the sample silently would lie, so the
         * request fails (request_end aborts it for the inner sinks). */
        f->failed = true;
        return;
    }
    if (!out) {
        f->dropped[why]++;
        return;
    }
    if (!f->res_open) {
        sink_set_resource_begin(f->inner, f->res);
        f->res_open = true;
    }
    if (!f->prof_open) {
        sink_set_profile_begin(f->inner, f->prof);
        f->prof_open = true;
    }
    f->passed++;
    sink_set_sample(f->inner, out);
}

static void on_profile_end(struct sink *s, const struct lb_profile *p)
{
    struct filter *f = state(s);
    assert(f->prof == p);
    if (f->prof_open)
        sink_set_profile_end(f->inner, p);
    f->prof = NULL;
    f->prof_open = f->prof_skip = false;
}

static void on_resource_end(struct sink *s, const struct lb_resource *r)
{
    struct filter *f = state(s);
    assert(f->res == r && !f->prof);
    if (f->res_open)
        sink_set_resource_end(f->inner, r);
    f->res = NULL;
    f->res_open = f->res_skip = false;
}

/* One debug line per request: what came in, what passed, what each filter dropped. */
static void log_counts(const struct filter *f, const struct lb_request *r)
{
    char line[512];
    size_t n = 0;
    if (log_get_level() > LOG_DEBUG)
        return;
    for (int i = 0; i < FILTER_REASONS && n < sizeof line; i++) {
        if (!f->dropped[i] && !(i == FILTER_BY_FRAME_TYPES && f->frame_types.n))
            continue;
        int k = snprintf(line + n, sizeof line - n, "%s %s %" PRIu64, n ? "," : "",
                         reason_flag[i], f->dropped[i]);
        if (k > 0)
            n += (size_t)k;
        if (i == FILTER_BY_FRAME_TYPES && n < sizeof line) {
            k = snprintf(line + n, sizeof line - n, " (%" PRIu64 " frames removed)",
                         f->frames_removed);
            if (k > 0)
                n += (size_t)k;
        }
    }
    if (n >= sizeof line)
        n = sizeof line - 1;
    line[n] = '\0';
    log_debug("filter: request %" PRIu64 " from %s: %" PRIu64 " of %" PRIu64 " samples passed; dropped by:%s",
              r->sequence, r->peer ? r->peer : "-", f->passed, f->in, n ? line : " none");
}

/* The request's counts into the totals filter_stats reports. */
static void add_to_totals(struct filter *f)
{
    f->total.samples_in += f->in;
    f->total.samples_passed += f->passed;
    f->total.frames_removed += f->frames_removed;
    for (int i = 0; i < FILTER_REASONS; i++)
        f->total.dropped[i] += f->dropped[i];
}

static int on_request_end(struct sink *s, const struct lb_request *r, char *why, size_t whylen)
{
    struct filter *f = state(s);
    int rc = 0;
    log_counts(f, r);
    add_to_totals(f);
    if (f->failed) {
        snprintf(why, whylen, "filter: out of memory copying a sample's frames");
        sink_set_request_abort(f->inner, r, why);
        rc = -1;
    } else {
        rc = sink_set_request_end(f->inner, r, why, whylen);
    }
    reset_request(f);
    return rc;
}

static void on_request_abort(struct sink *s, const struct lb_request *r, const char *reason)
{
    struct filter *f = state(s);
    sink_set_request_abort(f->inner, r, reason);
    reset_request(f);
}

static void filter_free(struct filter *f)
{
    strlist_free(&f->sample_types);
    strlist_free(&f->frame_types);
    free(f->checks);
    free(f->deferred);
    free(f->check_storage);
    free(f->scratch);
    free(f);
}

static void on_close(struct sink *s, int deadline_ms)
{
    struct filter *f = state(s);
    if (!f)
        return;
    sink_set_close(f->inner, deadline_ms);
    filter_free(f);
    s->ctx = NULL;
}

static int on_ready(const struct sink *s, char *why, size_t whylen)
{
    return sink_set_ready(((const struct filter *)s->ctx)->inner, why, whylen);
}

static const struct sink_type filter_sink_type = {
    .name = "filter",
    .admit = on_admit,
    .ready = on_ready,
    .request_begin = on_request_begin,
    .resource_begin = on_resource_begin,
    .profile_begin = on_profile_begin,
    .sample = on_sample,
    .profile_end = on_profile_end,
    .resource_end = on_resource_end,
    .request_end = on_request_end,
    .request_abort = on_request_abort,
    .close = on_close,
};

int filter_open(struct sink *out, const struct filter_config *cfg, struct sink_set *inner)
{
    char err[256];
    if (!cfg || !inner || filter_config_check(cfg, err, sizeof err) != 0)
        return -1;
    struct filter *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->inner = inner;
    f->min_frames = cfg->min_frames;
    if (strlist_build(&f->sample_types, cfg->sample_types, cfg->n_sample_types) != 0 ||
        strlist_build(&f->frame_types, cfg->frame_types, cfg->n_frame_types) != 0 ||
        build_checks(f, cfg) != 0) {
        filter_free(f);
        return -1;
    }
    out->type = &filter_sink_type;
    out->ctx = f;
    return 0;
}

void filter_stats(const struct sink *stage, struct filter_stats *out)
{
    memset(out, 0, sizeof *out);
    if (stage->type == &filter_sink_type && stage->ctx)
        *out = ((const struct filter *)stage->ctx)->total;
}
