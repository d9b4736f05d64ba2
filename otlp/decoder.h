/*
 * decoder.h - the decoder's state, shared by the two halves of the resolver (private to otlp/).
 *
 * decode.c walks the request (the envelope: resources, scopes, profiles, samples) and emits;
 * resolve.c turns dictionary indices into resolved views, memoising each entry for the rest of
 * the request. The memo tables are sized from the dictionary and reused across requests:
 * steady-state decoding allocates nothing.
 */
#ifndef LB_OTLP_DECODER_H
#define LB_OTLP_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otlp/decode.h"
#include "otlp/detect.h"
#include "otlp/dict.h"
#include "otlp/layout.h"
#include "otlp/report.h"

enum { UNRESOLVED = 0, RESOLVED = 1, INVALID = 2 };

struct attr_memo { uint8_t state; struct lb_attr attr; };
struct mapping_memo {
    uint8_t state;
    struct lb_mapping m;          /* what frames point to; its attrs in the attribute arena */
};
/* A location's frames: in frame_pool, or (in_stacks) in stack_pool, where the first stack
 * that met it was put together. */
struct location_memo { uint8_t state; bool in_stacks; uint32_t first, count; };
/* A stack resolved once: its frames, copied in order into stack_pool. Only successes are
 * memoised, so a bad stack is reported by the same code, in the same words, every time. */
struct stack_memo { uint8_t state; uint32_t first, count; };

typedef VEC(struct lb_attr) attrvec;
typedef VEC(struct lb_frame) framevec;
typedef VEC(lb_str) strvec;

/* Attribute lists that frames point to (a location's, a mapping's) for the whole request: kept
 * in blocks that never move, so a pointer taken early stays valid while later lists are added.
 * The blocks are reused by the next request. */
struct attr_block {
    struct attr_block *next;
    size_t n, cap;
    struct lb_attr v[];
};
struct attr_arena { struct attr_block *head, *cur; };

/* A sample's attribute list as resolved before in this request: samples repeat a few lists
 * (their thread, their process), so a list seen again is found by its indices and shared, not
 * resolved and copied again. A cache: a slot is replaced when another list hashes to it. */
#define ATTR_LIST_SLOTS 256
#define ATTR_LIST_POOL (1u << 16)   /* attributes kept for lists in one request, at most */
struct attr_list_memo { uint32_t hash, n, idx_first, attrs_first; };

/* v1.7's attribute_units, sorted by key for lookups (built on first use in a request). */
struct unit_entry { lb_str key, unit; };

struct otlp_decoder {
    struct otlp_limits limits;
    const struct otlp_layout *pinned;   /* NULL: detect the layout of every request */
    const struct otlp_layout *layout;   /* the layout of the request being decoded */
    bool has_stacks;                    /* layout_has_stacks(layout), asked once a request */
    int entry_msg[DICT_TABLES];         /* layout_entry_message(layout, t), asked once a request */
    bool entry_flat[DICT_TABLES];       /* layout_entry_flat(layout, entry_msg[t]), the same */
    struct otlp_detection detection;    /* how it was chosen */
    bool reference_only;                /* no fast path: the full detection every time */
    bool speculating;                   /* the fast path (detect.h): layout chosen from a prefix */
    bool dict_indexed;                  /* ... whose lean walk indexed the dictionary (dict.tables) */
    bool spec_failed;                   /* ... and the decoder found it would be decided otherwise */
    struct otlp_speculation spec;       /* what the fast path counted */
    uint64_t retractions;               /* requests the fast path retracted and decoded again */
    VEC(uint8_t) spec_checked[DICT_TABLES];   /* the fast path: entry i of table t was read
                                               * checked (layout_entry_checked) */
    struct lb_unknown_field unknown[OTLP_MAX_UNKNOWN_FIELDS];   /* detection.unknown, as viewed */
    struct lb_dict dict;

    /* memo tables, one slot per dictionary entry */
    VEC(struct attr_memo) attr_memo;
    VEC(struct mapping_memo) mapping_memo;
    VEC(struct location_memo) location_memo;
    VEC(struct stack_memo) stack_memo;
    framevec frame_pool;          /* frames of resolved locations */
    framevec stack_pool;          /* frames of resolved stacks, leaf first */
    struct location_memo null_location;
    struct attr_arena arena;      /* location and mapping attribute lists */
    VEC(struct unit_entry) units;
    bool units_ready;             /* units holds this request's attribute_units */
    struct attr_list_memo attr_lists[ATTR_LIST_SLOTS];
    ivec list_idx;                /* the memoised lists' indices, back to back */
    attrvec list_attrs;           /* and their attributes */

    /* scratch, reset per use */
    ivec attr_idx, loc_idx, stack_locs;
    ivec built_locs;              /* locations resolved in place in the stack being put together */
    ivec profile_locs;            /* v1.7: the current profile's location_indices */
    i64vec values;
    u64vec timestamps;
    linevec lines;
    attrvec resource_attrs, scope_attrs, profile_attrs, sample_attrs;
    framevec frames;
    /* A frame with nothing resolved yet, copied to start each location's frames: zeroing one
     * in place compiles to a `rep stos` (slow to start, a tenth of the small request's
     * resolution); a copy of an object the compiler cannot see into is a few vector moves. */
    struct lb_frame blank_frame;
    vtvec raw_sample_types;       /* the current profile's sample types, as sent */
    VEC(struct lb_value_type) sample_types;
    ivec comment_idx;
    strvec comments;
    /* the current resource's entity refs: their keys are pushed to two vectors while the
     * resource is read, and the refs point into them once it is done */
    VEC(struct lb_entity_ref) entity_refs;
    strvec entity_id_keys, entity_description_keys;
    /* the current resource's scope_profiles and the current scope's profiles, as found by the
     * pass that reads the attributes: walked from here, not read a second time */
    VEC(pb_ref_t) scope_refs, profile_refs;

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

/* ---- decode.c ---- */

/* Dictionary entry `ref` (entry `idx`) of table `t` into its raw struct (layout_entry_at),
 * checked as the layout detector would while the fast path speculates (detect.h): a
 * contradiction then also retracts the request. */
bool dec_entry_decode(struct otlp_decoder *d, enum dict_table t, int64_t idx, pb_ref_t ref, void *out,
                      const char **why);

/* ---- resolve.c: every index is checked; false = rejected (d->rep says why) ---- */

bool dec_string_at(struct otlp_decoder *d, int64_t idx, const char *what, lb_str *out);
bool dec_entry_at(struct otlp_decoder *d, enum dict_table t, int64_t idx, const char *what, pb_ref_t *out);
/* Resolves a list of attribute indices into `out` (appended). */
bool dec_attributes_at(struct otlp_decoder *d, const ivec *idx, attrvec *out);
/* A sample's attributes: the memoised list when the same indices were resolved before in
 * this request, else resolved (and memoised while the pool has room). */
bool dec_sample_attributes(struct otlp_decoder *d, const ivec *idx, struct lb_attrs *out);
/* Makes `layout` the one of the request being decoded. */
void dec_set_layout(struct otlp_decoder *d, const struct otlp_layout *layout);
/* *stack_id: 1 + the stack_table index when the frames are the request's memoised copy of that
 * stack (lb_sample.stack_id), else 0. */
bool dec_sample_frames(struct otlp_decoder *d, const struct raw_sample *rs,
                       const struct lb_frame **frames, size_t *n_frames, uint32_t *stack_id);
/* Sizes and clears the memo tables for the dictionary just read; false: out of memory. */
bool dec_prepare_memos(struct otlp_decoder *d);
void dec_free_memos(struct otlp_decoder *d);

#endif
