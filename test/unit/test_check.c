/*
 * test_check.c - the conformance checker (otlp/check.h) on requests written byte by byte
 * here: the groups' names, the zero entry read from the wire (explicit zeros, empty packed
 * runs, unpacked zeros, unknown fields), the bound on described findings, reuse of one
 * checker from a large request to a small one, and the hash set's cap.
 *
 * The bytes are hand-encoded protobuf (tag, varint, length), so each test says exactly which
 * field of which message is on the wire.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "otlp/check.h"
#include "otlp/check_internal.h"
#include "test/unit/check.h"

/* ---------- a tiny protobuf writer ---------- */

static void varint(struct buf *b, uint64_t v)
{
    while (v >= 0x80) {
        buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    buf_putc(b, (char)v);
}

static void field_varint(struct buf *b, unsigned f, uint64_t v)
{
    varint(b, (uint64_t)f << 3);
    varint(b, v);
}

static void field_bytes(struct buf *b, unsigned f, const void *p, size_t n)
{
    varint(b, ((uint64_t)f << 3) | 2);
    varint(b, n);
    buf_append(b, p, n);
}

static void field_msg(struct buf *b, unsigned f, const struct buf *m)
{
    field_bytes(b, f, m->data, m->len);
}

/* A v1.11 dictionary whose every table holds its zero entry; `mapping0` is entry 0 of the
 * mapping table as encoded bytes. */
static void dictionary(struct buf *d, const void *mapping0, size_t mapping0_len, size_t strings)
{
    field_bytes(d, 1, mapping0, mapping0_len);   /* mapping_table */
    field_bytes(d, 2, "", 0);                     /* location_table */
    field_bytes(d, 3, "", 0);                     /* function_table */
    field_bytes(d, 4, "", 0);                     /* link_table */
    field_bytes(d, 5, "", 0);                     /* string_table: "" */
    for (size_t i = 1; i < strings; i++) {
        char s[32];
        int n = snprintf(s, sizeof s, "s%zu", i);
        field_bytes(d, 5, s, (size_t)n);
    }
    field_bytes(d, 6, "", 0);                     /* attribute_table */
    field_bytes(d, 7, "", 0);                     /* stack_table */
}

/* A request: the dictionary, one resource, one scope, one profile with `samples` samples
 * whose stack_index is `stack_index`. */
static void request(struct buf *out, const struct buf *dict, size_t samples, uint64_t stack_index)
{
    struct buf sample, profile, scope, resource;
    buf_init(&sample, 1 << 20);
    buf_init(&profile, 1 << 26);
    buf_init(&scope, 1 << 26);
    buf_init(&resource, 1 << 26);
    field_varint(&sample, 1, stack_index);
    field_bytes(&sample, 4, "\x01", 1);           /* values [1], packed */
    for (size_t i = 0; i < samples; i++)
        field_msg(&profile, 2, &sample);
    field_msg(&scope, 2, &profile);
    field_msg(&resource, 2, &scope);
    buf_reset(out);
    field_msg(out, 1, &resource);
    field_msg(out, 2, dict);
    buf_free(&sample);
    buf_free(&profile);
    buf_free(&scope);
    buf_free(&resource);
}

static const struct check_report *check_bytes(struct otlp_checker *c, const struct buf *b, unsigned groups,
                                              size_t kept)
{
    struct check_options opt = { groups, kept, NULL };
    return otlp_check(c, b->data, b->len, &opt);
}

static uint64_t zero_entry_findings(const void *mapping0, size_t len)
{
    struct buf d, r;
    buf_init(&d, 1 << 20);
    buf_init(&r, 1 << 20);
    dictionary(&d, mapping0, len, 1);
    request(&r, &d, 1, 0);
    struct otlp_checker *c = otlp_checker_new();
    const struct check_report *rep = check_bytes(c, &r, CHECK_GROUPS_DEFAULT, 0);
    uint64_t n = rep->verdict == CHECK_UNREADABLE ? 999 : rep->per_rule[CR_ZERO_ENTRY];
    otlp_checker_free(c);
    buf_free(&d);
    buf_free(&r);
    return n;
}

/* ---------- tests ---------- */

TEST(groups_parse_and_format)
{
    unsigned g = 0;
    char err[256], text[128];
    CHECK(check_groups_parse("default", &g, err, sizeof err) && g == CHECK_GROUPS_DEFAULT);
    CHECK(check_groups_parse("all", &g, err, sizeof err) && g == CHECK_GROUPS_ALL);
    CHECK(check_groups_parse("-sample-shape", &g, err, sizeof err) && g == CHECK_GROUP_CORE);
    CHECK(check_groups_parse("core,orphans", &g, err, sizeof err) && g == (CHECK_GROUP_CORE | CHECK_GROUP_ORPHANS));
    CHECK(check_groups_parse("all,-strict", &g, err, sizeof err) && g == (CHECK_GROUPS_ALL & ~CHECK_GROUP_STRICT));
    CHECK(!check_groups_parse("core,bogus", &g, err, sizeof err) && strstr(err, "bogus"));
    CHECK(!check_groups_parse("-core,-sample-shape", &g, err, sizeof err));
    CHECK(!check_groups_parse("", &g, err, sizeof err));
    check_groups_format(CHECK_GROUP_CORE | CHECK_GROUP_DUPLICATES, text, sizeof text);
    CHECK_EQ_STR(text, "core,duplicates");
    for (int r = 0; r < CR_COUNT; r++)   /* every rule has an id and exactly one group */
        CHECK(check_rules[r].id && check_rules[r].group && !(check_rules[r].group & (check_rules[r].group - 1)));
}

TEST(zero_entry_from_the_wire)
{
    CHECK_EQ_INT(zero_entry_findings("", 0), 0);
    CHECK_EQ_INT(zero_entry_findings("\x08\x00", 2), 0);          /* memory_start = 0, sent */
    CHECK_EQ_INT(zero_entry_findings("\x2a\x00", 2), 0);          /* attribute_indices: empty packed run */
    CHECK_EQ_INT(zero_entry_findings("\x08\x01", 2), 1);          /* memory_start = 1 */
    CHECK_EQ_INT(zero_entry_findings("\x28\x00", 2), 1);          /* attribute_indices [0], unpacked */
    CHECK_EQ_INT(zero_entry_findings("\x20\x01", 2), 1);          /* filename_strindex = 1 */
    CHECK_EQ_INT(zero_entry_findings("\x18\x00\x20\x00", 4), 0);  /* file_offset, filename: 0, sent */
    /* a field no layout has is kept (detect.h), and makes entry 0 no zero value, as an
     * unknown field makes proto.Equal differ */
    CHECK_EQ_INT(zero_entry_findings("\x78\x00", 2), 1);
}

TEST(empty_request_and_garbage)
{
    struct otlp_checker *c = otlp_checker_new();
    struct buf empty = { 0 };
    const struct check_report *r = check_bytes(c, &empty, CHECK_GROUPS_DEFAULT, 0);
    CHECK(r->verdict == CHECK_FINDINGS && r->n_findings == 1 && r->per_rule[CR_NO_RESOURCE_PROFILES] == 1);
    CHECK_EQ_STR(r->findings[0].message, "resource profiles are empty");
    struct buf junk;
    buf_init(&junk, 64);
    buf_append(&junk, "\xff\xff\xff\xff", 4);
    r = check_bytes(c, &junk, CHECK_GROUPS_DEFAULT, 0);
    CHECK(r->verdict == CHECK_UNREADABLE && r->error[0] && r->n_findings == 0);
    buf_free(&junk);
    otlp_checker_free(c);
}

TEST(findings_are_counted_past_the_described_ones)
{
    struct buf d, r;
    buf_init(&d, 1 << 20);
    buf_init(&r, 1 << 26);
    dictionary(&d, "", 0, 1);
    request(&r, &d, 5000, 9);   /* every sample's stack_index is out of range */
    struct otlp_checker *c = otlp_checker_new();
    const struct check_report *rep = check_bytes(c, &r, CHECK_GROUPS_DEFAULT, 10);
    CHECK(rep->verdict == CHECK_FINDINGS);
    CHECK_EQ_INT(rep->n_findings, 5000);
    CHECK_EQ_INT(rep->per_rule[CR_INDEX_RANGE], 5000);
    CHECK_EQ_INT(rep->n_kept, 10);
    CHECK_EQ_STR(rep->findings[3].path, "resource_profiles[0].scope_profiles[0].profiles[0].sample[3].stack_index");
    CHECK_EQ_STR(rep->findings[3].message, "index 9 is out of range [0..1)");
    char line[700];
    check_finding_format(&rep->findings[0], line, sizeof line);
    CHECK(strstr(line, "[index-range]") != NULL);

    /* the same checker on a small clean request: nothing of the large one is left over */
    request(&r, &d, 1, 0);
    rep = check_bytes(c, &r, CHECK_GROUPS_ALL, 10);
    CHECK(rep->verdict == CHECK_CLEAN && rep->n_findings == 0 && rep->n_kept == 0);
    CHECK_EQ_STR(rep->layout, "v1.11");
    CHECK_EQ_INT(rep->profiles, 1);
    otlp_checker_free(c);
    buf_free(&d);
    buf_free(&r);
}

TEST(duplicate_strings_only_in_their_group)
{
    struct buf d, r;
    buf_init(&d, 1 << 20);
    buf_init(&r, 1 << 20);
    dictionary(&d, "", 0, 3);
    field_bytes(&d, 5, "s1", 2);   /* string 3 repeats string 1 */
    request(&r, &d, 1, 0);
    struct otlp_checker *c = otlp_checker_new();
    const struct check_report *rep = check_bytes(c, &r, CHECK_GROUPS_DEFAULT, 0);
    CHECK(rep->verdict == CHECK_CLEAN);
    rep = check_bytes(c, &r, CHECK_GROUPS_DEFAULT | CHECK_GROUP_DUPLICATES, 0);
    CHECK(rep->verdict == CHECK_FINDINGS && rep->per_rule[CR_DUPLICATE_STRING] == 1);
    CHECK(rep->n_kept == 1 && strcmp(rep->findings[0].path, "dictionary.string_table[3]") == 0);
    CHECK_EQ_STR(rep->findings[0].message, "duplicate string at index 3, orig index 1: s1");
    otlp_checker_free(c);
    buf_free(&d);
    buf_free(&r);
}

static bool equal_mod(void *ctx, uint32_t a, uint32_t b)
{
    return a % *(uint32_t *)ctx == b % *(uint32_t *)ctx;
}

TEST(hash_set_finds_equals_and_stops_at_its_cap)
{
    struct check_set s = { 0 };
    uint32_t mod = 7;
    CHECK(check_set_reset(&s, 100));
    for (uint32_t i = 0; i < 7; i++) {
        uint64_t h = check_hash(&(uint32_t){ i % mod }, 4);
        CHECK_EQ_INT(check_set_find_or_add(&s, h, i, equal_mod, &mod), -1);
    }
    for (uint32_t i = 7; i < 50; i++) {
        uint64_t h = check_hash(&(uint32_t){ i % mod }, 4);
        CHECK_EQ_INT(check_set_find_or_add(&s, h, i, equal_mod, &mod), i % mod);
    }
    CHECK(!s.full && s.n == 7);
    CHECK(check_set_reset(&s, 4));   /* a small table after a larger one: emptied, smaller */
    CHECK(s.n == 0 && s.used <= s.cap && s.used >= 8);
    for (uint32_t i = 0; i < 1000 && !s.full; i++)
        check_set_find_or_add(&s, check_hash(&i, sizeof i), i, equal_mod, &(uint32_t){ 1u << 30 });
    CHECK(s.full && s.n * 2 <= s.used);
    check_set_free(&s);
}

int main(void)
{
    RUN(groups_parse_and_format);
    RUN(zero_entry_from_the_wire);
    RUN(empty_request_and_garbage);
    RUN(findings_are_counted_past_the_described_ones);
    RUN(duplicate_strings_only_in_their_group);
    RUN(hash_set_finds_equals_and_stops_at_its_cap);
    return check_done();
}
