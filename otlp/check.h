/*
 * check.h - a conformance verdict on one OTLP profiles request: is what the sender sent
 * well-formed OTLP, beyond "it decodes"?
 *
 * Why: the decoder (decode.h) is lenient on purpose; it resolves what it can, rejects only
 * what it cannot resolve, and never tells a sender that its dictionary breaks the proto's
 * conventions. The profiling SIG's conformance checker (profcheck, in
 * open-telemetry/sig-profiling) states those conventions as rules; this module applies the
 * same rules to the bytes as they arrived, in whichever proto layout (otlp/detect.h), so that
 * `lazybackend check` and `serve --check` give senders the verdict profcheck would.
 *
 * Rules come in groups. `core` and `sample-shape` are what profcheck checks by default;
 * `duplicates` and `orphans` are profcheck's optional checks (-check-dupes, -check-orphans);
 * `strict` holds lazybackend's own stricter rules (duplicate entries in the tables profcheck
 * does not deduplicate). docs/check.md lists every rule with its profcheck name.
 *
 * Hostile input: the work is linear in the request's size (every list is walked once, every
 * duplicate test is a hash lookup), the memory is bounded by per-table caps
 * (CHECK_MAX_HASHED entries per table are hashed; past it a `check-limit` finding says what
 * was not checked), and only the first `max_findings` findings are described (all are counted).
 */
#ifndef LB_OTLP_CHECK_H
#define LB_OTLP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp/layout.h"

enum check_group {
    CHECK_GROUP_CORE = 1u << 0,
    CHECK_GROUP_SHAPE = 1u << 1,
    CHECK_GROUP_DUPLICATES = 1u << 2,
    CHECK_GROUP_ORPHANS = 1u << 3,
    CHECK_GROUP_STRICT = 1u << 4,
};
#define CHECK_GROUPS_DEFAULT (CHECK_GROUP_CORE | CHECK_GROUP_SHAPE)
#define CHECK_GROUPS_ALL 0x1fu

enum check_rule_id {
    CR_NO_RESOURCE_PROFILES, CR_NO_SCOPE_PROFILES, CR_NO_PROFILES, CR_ZERO_ENTRY, CR_INDEX_RANGE,
    CR_DUPLICATE_ATTRIBUTE_KEY, CR_TIMESTAMP_RANGE, CR_NON_NEGATIVE, CR_MAPPING_RANGE,
    CR_LINK_ID_LENGTH, CR_MALFORMED_ENTRY, CR_CHECK_LIMIT,
    CR_SAMPLE_EMPTY, CR_SAMPLE_LENGTHS, CR_SAMPLE_SINGLE_VALUE, CR_SAMPLE_SHAPE_MIXED,
    CR_DUPLICATE_STRING, CR_DUPLICATE_MAPPING,
    CR_UNREFERENCED,
    CR_DUPLICATE_FUNCTION, CR_DUPLICATE_LOCATION, CR_DUPLICATE_LINK, CR_DUPLICATE_ATTRIBUTE,
    CR_DUPLICATE_STACK,
    CR_COUNT
};

struct check_rule {
    const char *id;          /* "index-range": what findings and metrics are labelled with */
    unsigned group;          /* one enum check_group bit */
    const char *profcheck;   /* the profcheck check it follows, or NULL for lazybackend's own */
};
extern const struct check_rule check_rules[CR_COUNT];

/* "core", "sample-shape", "duplicates", "orphans", "strict" for one group bit. */
const char *check_group_name(unsigned group);

/* A comma-separated list of group names, "default" and "all"; "-NAME" removes a group (a list
 * that starts with a removal starts from the default). False with `err` set when a name is
 * unknown or nothing is left. */
bool check_groups_parse(const char *list, unsigned *out, char *err, size_t errlen);

/* The groups as a list "core,sample-shape"; returns strlen. */
size_t check_groups_format(unsigned groups, char *out, size_t len);

#define CHECK_MAX_HASHED ((size_t)1 << 21)   /* entries per table a duplicate test covers */

struct check_finding {
    enum check_rule_id rule;
    char path[192];          /* "resource_profiles[0].scope_profiles[0].profiles[0].sample[3].stack_index" */
    char message[256];
};

enum check_verdict {
    CHECK_CLEAN,             /* no finding */
    CHECK_FINDINGS,          /* at least one finding */
    CHECK_UNREADABLE,        /* not a profiles request in any known layout: `error` says why */
    CHECK_NOMEM,
};

struct check_report {
    enum check_verdict verdict;
    const char *layout;      /* the layout the request was read as ("v1.11"), or "" */
    uint64_t n_findings;     /* all of them; the first n_kept are described */
    size_t n_kept;
    const struct check_finding *findings;
    uint64_t per_rule[CR_COUNT];
    uint64_t profiles;       /* profiles in the request (what a strict rejection rejects) */
    char error[512];         /* UNREADABLE / NOMEM: why */
};

struct check_options {
    unsigned groups;                    /* enum check_group bits */
    size_t max_findings;                /* described findings (0: CHECK_DEFAULT_KEPT) */
    const struct otlp_layout *layout;   /* pinned, or NULL to detect */
};
#define CHECK_DEFAULT_KEPT 1000

struct otlp_checker;

struct otlp_checker *otlp_checker_new(void);
void otlp_checker_free(struct otlp_checker *c);

/* Checks one ExportProfilesServiceRequest (decompressed protobuf). The report and its
 * findings stay valid until the next call with the same checker. */
const struct check_report *otlp_check(struct otlp_checker *c, const uint8_t *msg, size_t len,
                                      const struct check_options *opt);

/* "<path>: <message> [<rule>]" for a log line or an error_message; returns strlen. */
size_t check_finding_format(const struct check_finding *f, char *out, size_t len);

/* One line summing a report up for a sender: "3 conformance findings; first: <finding>". */
size_t check_report_summary(const struct check_report *r, char *out, size_t len);

#endif
