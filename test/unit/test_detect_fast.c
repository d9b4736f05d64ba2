/*
 * test_detect_fast.c - the decoder's fast layout detection (otlp/detect.h: a prefix walk, the
 * rest checked while decoding, retracted on any doubt) against the full walk it replaces, the
 * reference: for every fixture and for requests made to hit each way out of the fast path,
 * both must come to the same outcome (test/fuzz/outcome.h), and the fast path must have taken
 * the way out each case was made for.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/layout.h"
#include "otlp/pbwrite.h"
#include "test/fuzz/outcome.h"
#include "test/unit/check.h"

static struct otlp_decoder *fast, *reference;
static struct outcome a, b;

/* Decodes `msg` both ways; true when the outcomes agree (else says how they differ). */
static bool same_both_ways(const uint8_t *msg, size_t len, const char *what)
{
    outcome_decode(fast, msg, len, &a);
    outcome_decode(reference, msg, len, &b);
    const char *diff = outcome_differs(&a, &b);
    if (diff)
        printf("#   %s: the fast path and the reference differ in %s (%s / %s)\n", what, diff,
               a.res.message, b.res.message);
    return diff == NULL;
}

/* ---- requests made to order (v1.11) ---- */

enum twist { PLAIN, LATE_UNKNOWN_IN_SAMPLE, LATE_NOT_PARALLEL, LATE_UNKNOWN_IN_RESOURCE,
             REJECTED_PROFILE_UNKNOWN_IN_SAMPLE, UNKNOWN_IN_UNUSED_ENTRY, UNKNOWN_IN_USED_ENTRY };

static void put_msg(struct buf *parent, uint32_t field, struct buf *m)
{
    pbw_msg(parent, field, m);
    buf_reset(m);
}

/* A request of `n_resources` resources, each with one profile of 40 samples. */
static void make_request(struct buf *out, unsigned n_resources, enum twist twist)
{
    struct buf kv, any, res, rp, sp, prof, smp, vt, dict, e;
    struct buf *all[] = { &kv, &any, &res, &rp, &sp, &prof, &smp, &vt, &dict, &e };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_init(all[i], 1 << 20);
    buf_reset(out);
    for (unsigned r = 0; r < n_resources; r++) {
        bool last = r + 1 == n_resources;
        pbw_bytes(&any, 1, "svc", 3);
        pbw_bytes(&kv, 1, "service.name", 12);
        put_msg(&kv, 2, &any);
        put_msg(&res, 1, &kv);
        if (last && twist == LATE_UNKNOWN_IN_RESOURCE)
            pbw_uint(&res, 9, 7);
        put_msg(&rp, 1, &res);
        pbw_uint(&vt, 1, 1);
        pbw_uint(&vt, 2, last && twist == REJECTED_PROFILE_UNKNOWN_IN_SAMPLE ? 99 : 2);
        put_msg(&prof, 1, &vt);
        for (unsigned s = 0; s < 40; s++) {
            bool last_sample = last && s == 39;
            pbw_uint(&smp, 1, last_sample && twist == UNKNOWN_IN_USED_ENTRY ? 1 : 0);
            uint8_t values[2] = { 5, 6 };
            pbw_bytes(&smp, 4, values, last_sample && twist == LATE_NOT_PARALLEL ? 2 : 1);
            uint8_t ts[8] = { 1, 2, 3, 4, 5, 6, 7, 0 };
            pbw_bytes(&smp, 5, ts, 8);
            if (last_sample && (twist == LATE_UNKNOWN_IN_SAMPLE || twist == REJECTED_PROFILE_UNKNOWN_IN_SAMPLE))
                pbw_uint(&smp, 9, 1);
            put_msg(&prof, 2, &smp);
        }
        pbw_fixed64(&prof, 3, 1700000000000000000ull);
        put_msg(&sp, 2, &prof);
        put_msg(&rp, 2, &sp);
        put_msg(out, 1, &rp);
    }
    /* the dictionary: every table's zero entry, and the two strings of the sample type */
    for (uint32_t t = 1; t <= 7; t++) {
        if (t == 5) {
            pbw_bytes_always(&dict, 5, "", 0);
            pbw_bytes(&dict, 5, "samples", 7);
            pbw_bytes(&dict, 5, "count", 5);
        } else {
            pbw_bytes_always(&dict, t, "", 0);
        }
        /* a second mapping no sample uses, a second stack the last sample uses: each with a
         * field no layout has */
        if ((t == 1 && twist == UNKNOWN_IN_UNUSED_ENTRY) || (t == 7 && twist == UNKNOWN_IN_USED_ENTRY)) {
            pbw_uint(&e, 9, 1);
            put_msg(&dict, t, &e);
        }
    }
    put_msg(out, 2, &dict);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_free(all[i]);
}

static uint64_t retractions_of(enum twist twist, unsigned n_resources)
{
    struct buf req;
    buf_init(&req, 1 << 24);
    make_request(&req, n_resources, twist);
    uint64_t before = otlp_decoder_retractions(fast);
    CHECK(same_both_ways(req.data, req.len, "made request"));
    buf_free(&req);
    return otlp_decoder_retractions(fast) - before;
}

TEST(plain_request_fast_and_kept)
{
    CHECK_EQ_INT(retractions_of(PLAIN, 30), 0);
    CHECK_EQ_INT(a.res.status, OTLP_OK);
    CHECK_EQ_INT(a.res.samples, 30 * 40);
    CHECK_EQ_STR(a.layout, "v1.11");
    CHECK_EQ_INT(a.retractions, 0);
    CHECK_EQ_INT(a.ends, 1);
}

TEST(unknown_field_in_a_late_sample_retracts)
{
    CHECK_EQ_INT(retractions_of(LATE_UNKNOWN_IN_SAMPLE, 30), 1);
    CHECK_EQ_INT(a.retractions, 1);          /* the consumer was told to forget the first try */
    CHECK_EQ_INT(a.res.status, OTLP_OK);     /* then got the request whole */
    CHECK_EQ_INT(a.res.unknown_fields, 1);
    CHECK_EQ_INT(a.det.n_recorded, 1);
    CHECK_EQ_INT(a.det.unknown[0].number, 9);
    CHECK_EQ_INT(a.res.samples, 30 * 40);
    CHECK_EQ_INT(a.ends, 1);
}

TEST(late_values_not_parallel_retracts)
{
    CHECK_EQ_INT(retractions_of(LATE_NOT_PARALLEL, 30), 1);
    CHECK_EQ_INT(a.res.status, OTLP_INVALID);   /* no layout fits it */
    CHECK(strstr(a.res.message, "parallel") != NULL);
    CHECK_EQ_INT(a.ends, 0);
}

TEST(unknown_field_in_a_late_resource_goes_the_full_way)
{
    CHECK_EQ_INT(retractions_of(LATE_UNKNOWN_IN_RESOURCE, 30), 0);   /* found before decoding */
    CHECK_EQ_INT(a.retractions, 0);
    CHECK_EQ_INT(a.res.unknown_fields, 1);
    CHECK_EQ_STR(a.det.unknown[0].message, "Resource");
}

TEST(a_rejected_profiles_samples_are_still_checked)
{
    CHECK_EQ_INT(retractions_of(REJECTED_PROFILE_UNKNOWN_IN_SAMPLE, 30), 1);
    CHECK_EQ_INT(a.res.rejected_profiles, 1);
    CHECK_EQ_INT(a.res.unknown_fields, 1);
}

TEST(unknown_field_in_an_unused_entry_retracts)
{
    CHECK_EQ_INT(retractions_of(UNKNOWN_IN_UNUSED_ENTRY, 30), 1);   /* found by the last sweep */
    CHECK_EQ_INT(a.res.unknown_fields, 1);
    CHECK_EQ_STR(a.det.unknown[0].message, "Mapping");
    CHECK_EQ_INT(a.res.samples, 30 * 40);
}

TEST(unknown_field_in_a_used_entry_retracts)
{
    CHECK_EQ_INT(retractions_of(UNKNOWN_IN_USED_ENTRY, 30), 1);   /* found as it is read */
    CHECK_EQ_INT(a.res.unknown_fields, 1);
    CHECK_EQ_STR(a.det.unknown[0].message, "Stack");
    CHECK_EQ_INT(a.res.samples, 30 * 40);
}

TEST(small_requests_agree)
{
    for (unsigned n = 1; n <= 3; n++)
        for (int t = PLAIN; t <= UNKNOWN_IN_USED_ENTRY; t++)
            retractions_of((enum twist)t, n);
}

/* ---- the fixtures ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    *len = p && n > 0 && fread(p, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return p;
}

TEST(every_fixture_agrees)
{
    const char *dir = getenv("FIXTURES") ? getenv("FIXTURES") : "../shared/fixtures/otlp";
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 4 || strcmp(de->d_name + nl - 3, ".pb") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len = 0;
        uint8_t *msg = slurp(path, &len);
        CHECK(msg != NULL);
        if (!msg)
            continue;
        uint64_t before = otlp_decoder_retractions(fast);
        CHECK(same_both_ways(msg, len, de->d_name));
        CHECK_EQ_INT(otlp_decoder_retractions(fast) - before, 0);   /* real requests: never */
        /* the file names say their layout: "….v1.9.pb" */
        const char *v = strstr(de->d_name, ".v1.");
        if (v) {
            char want[16];
            snprintf(want, sizeof want, "v1.%.*s", (int)strspn(v + 4, "0123456789"), v + 4);
            CHECK_EQ_STR(a.layout, want);
        }
        free(msg);
        n++;
    }
    closedir(d);
    CHECK(n >= 4);
}

int main(void)
{
    struct otlp_limits limits = { 0, 0 };
    fast = otlp_decoder_new(&limits, NULL);
    reference = otlp_decoder_new(&limits, NULL);
    otlp_decoder_set_reference(reference, true);
    RUN(plain_request_fast_and_kept);
    RUN(unknown_field_in_a_late_sample_retracts);
    RUN(late_values_not_parallel_retracts);
    RUN(unknown_field_in_a_late_resource_goes_the_full_way);
    RUN(a_rejected_profiles_samples_are_still_checked);
    RUN(unknown_field_in_an_unused_entry_retracts);
    RUN(unknown_field_in_a_used_entry_retracts);
    RUN(small_requests_agree);
    RUN(every_fixture_agrees);
    otlp_decoder_free(fast);
    otlp_decoder_free(reference);
    return check_done();
}
