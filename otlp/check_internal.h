/*
 * check_internal.h - the conformance checker's state, shared by its files (private to otlp/).
 *
 *   check.c        the request: layout, envelope, profiles, samples; findings and the report
 *   check_dict.c   the dictionary: zero entries, each table's entries, duplicates, orphans
 *   check_set.c    the bounded hash set behind every duplicate test, and canonical keys
 *
 * Everything is reused across requests (reset, not freed), like the decoder's scratch space.
 */
#ifndef LB_OTLP_CHECK_INTERNAL_H
#define LB_OTLP_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/check.h"
#include "otlp/dict.h"
#include "otlp/layout.h"
#include "otlp/vec.h"

/* An open-addressing set of table indices, compared through a callback (check_set.c). Holds
 * at most CHECK_MAX_HASHED entries; `full` says one was refused. */
struct check_set {
    uint32_t *slot;      /* entry index + 1; 0 = empty */
    uint32_t *tag;       /* the low 32 bits of the entry's hash, to skip most comparisons */
    size_t cap, used, n;  /* allocated slots, slots in use (a power of two), entries */
    bool full;
};
typedef bool (*check_eq_fn)(void *ctx, uint32_t a, uint32_t b);

/* Sizes the set for `expect` entries (capped) and empties it; false when out of memory. */
bool check_set_reset(struct check_set *s, size_t expect);
void check_set_free(struct check_set *s);
/* The index of an equal entry already present, else inserts `idx` and returns -1 (also when
 * the set is full: the entry then goes unchecked). */
int64_t check_set_find_or_add(struct check_set *s, uint64_t hash, uint32_t idx, check_eq_fn eq, void *ctx);

uint64_t check_hash(const void *p, size_t n);

/* Levels of the envelope a path can name. */
enum { CK_RESOURCE, CK_SCOPE, CK_PROFILE, CK_SAMPLE, CK_LEVELS };

typedef VEC(uint8_t) u8vec;

struct otlp_checker {
    struct check_report rep;
    VEC(struct check_finding) findings;
    unsigned groups;
    size_t max_kept;
    const struct otlp_layout *layout;
    struct lb_dict dict;
    bool oom;

    /* where the walk stands: depth levels of the envelope, or the dictionary */
    unsigned at[CK_LEVELS];
    int depth;
    bool in_dictionary;

    /* scratch for decoded messages */
    ivec attr_idx, loc_idx, prof_attr_idx, prof_locs, prof_comments;
    i64vec values;
    u64vec timestamps;
    linevec lines;

    /* string_table[i]'s content as the first index holding the same bytes (the first
     * CHECK_MAX_HASHED strings; the others stand for themselves) */
    VEC(int32_t) str_canon;
    /* attribute_table[i]'s key as a number equal for equal keys: CK_KEY_BAD when its
     * key_strindex is out of range (the first CHECK_MAX_HASHED entries) */
    VEC(int64_t) attr_key;
    /* one attribute list's keys, for its duplicate-key test: open addressing on key numbers */
    VEC(int64_t) list_key;
    VEC(uint32_t) list_pos;

    /* orphans: a byte per entry, 1 when something references it */
    u8vec refs[DICT_TABLES];
    bool orphans;             /* the orphans group applies to this request's layout */

    struct check_set set;
    struct buf key_a, key_b;  /* canonical forms of two entries being compared */
};

#define CK_KEY_BAD INT64_MIN               /* key_strindex outside the string table */
#define CK_KEY_MALFORMED (INT64_MIN + 1)  /* the entry does not decode (the table walk says so) */

bool ck_on(const struct otlp_checker *c, enum check_rule_id r);
/* Counts a finding of rule `r` at the walk's position plus `sub` (printf-style path suffix,
 * e.g. ".stack_index"), and describes it while fewer than max_kept are: NULL when the rule is
 * off or the finding is only counted; fill ->message then. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
struct check_finding *ck_add(struct otlp_checker *c, enum check_rule_id r, const char *sub, ...);
/* The same with the message at once. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void ck_report(struct otlp_checker *c, enum check_rule_id r, const char *sub, const char *fmt, ...);

/* idx out of [0, n): reports "index N is out of range [0..n)" at the path suffix `sub`
 * (printf-style, written only then: most indices are fine); returns false. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
bool ck_index(struct otlp_checker *c, int64_t idx, size_t n, const char *sub, ...);

/* Decodes entry `idx` of table `t` into its raw struct; false (reported as malformed-entry)
 * when the bytes are not that message. */
bool ck_entry(struct otlp_checker *c, enum dict_table t, uint32_t idx, void *out);

/* The same without reporting: for entries the table walk reports. */
bool ck_entry_quiet(struct otlp_checker *c, enum dict_table t, uint32_t idx, void *out);

/* Marks entry `idx` of table `t` referenced (orphans), when it lies inside the table. */
static inline void ck_ref(struct otlp_checker *c, enum dict_table t, int64_t idx)
{
    if (c->orphans && idx >= 0 && (uint64_t)idx < c->refs[t].n)
        c->refs[t].v[idx] = 1;
}

/* A list of attribute indices (profile, sample, location, mapping): every index in range,
 * every key's string in range, no key twice; each index marked referenced. */
void ck_attribute_list(struct otlp_checker *c, const ivec *idx, const char *field);

/* check_dict.c */
extern const char *const ck_table_names[DICT_TABLES];   /* "mapping_table", ... */
/* Prepares the string and attribute key numbers and the orphan marks; false when out of
 * memory. Run before the walk of the profiles. */
bool ck_dict_prepare(struct otlp_checker *c);
/* Every table of the dictionary, in profcheck's order; then the orphans. */
void ck_dict_check(struct otlp_checker *c);
void ck_orphans(struct otlp_checker *c);

#endif
