/*
 * layout.h - one proto layout of OTLP profiles, seen through layout-neutral "raw" structs.
 *
 * The profiles proto kept the name v1development while its field numbers changed (v1.7,
 * v1.8, v1.9, v1.10/v1.11 are wire-incompatible). Everything that depends on field numbers
 * lives in one table per layout (its wire schema, wire.h; the tables are in layouts.c): one
 * decoder (layout.c) reads any layout's messages into the raw structs below by following its
 * table, the detector (detect.c) tells the layouts apart with the same tables, and the
 * resolver (decode.c, resolve.c) and the sinks never see a field number. Adding a layout = one more set
 * of tables and one more struct otlp_layout in layouts.c.
 *
 * Raw structs hold indices exactly as sent (not yet checked) and references into the request
 * buffer; the resolver validates every index.
 */
#ifndef LB_OTLP_LAYOUT_H
#define LB_OTLP_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "otlp/pbref.h"
#include "otlp/vec.h"

typedef VEC(int32_t) ivec;
typedef VEC(int64_t) i64vec;
typedef VEC(uint64_t) u64vec;

/* The dictionary tables: for each entry, where its encoded bytes sit in the request buffer
 * (for strings: the string's bytes). 8 bytes an entry, whatever the entry's content; the
 * request size limit keeps offsets below 4 GiB. */
enum dict_table {
    DICT_MAPPING, DICT_LOCATION, DICT_FUNCTION, DICT_LINK, DICT_STRING, DICT_ATTRIBUTE,
    DICT_STACK, DICT_ATTRIBUTE_UNIT /* v1.7 */, DICT_TABLES
};
struct dict_ref { uint32_t off, len; };
typedef VEC(struct dict_ref) dictrefvec;
struct dict_tables {
    const uint8_t *base;            /* the request buffer */
    dictrefvec t[DICT_TABLES];
};

/* aggregation_temporality: v1.7 and v1.8 only (0 elsewhere). */
struct raw_value_type { int32_t type_strindex, unit_strindex, aggregation_temporality; };
typedef VEC(struct raw_value_type) vtvec;

struct raw_profile {
    struct raw_value_type sample_type, period_type;
    uint64_t time_unix_nano, duration_nano;
    int64_t period;
    pb_ref_t profile_id, original_payload_format, original_payload;
    uint32_t dropped_attributes_count;
    ivec *attribute_indices;        /* filled by the layout (caller provides, reset) */
    ivec *location_indices;         /* v1.7 only: Profile.location_indices, which its samples
                                     * slice (caller provides, reset); untouched by others */
    ivec *comment_strindices;       /* v1.7, v1.8 (caller provides, reset; NULL: not read) */
    /* v1.7: sample_type is repeated (every entry lands in sample_types, caller-provided, may be
     * NULL) and sample_type[default_sample_type_index] is the one shown in sample_type (the
     * first when that index is out of range). */
    vtvec *sample_types;
    size_t n_sample_types;
    int32_t default_sample_type_index;
};

struct raw_sample {
    int32_t stack_index, link_index;
    bool link_explicit;             /* v1.7: link_index was sent, so 0 is link_table[0] */
    int32_t locations_start, locations_length;   /* v1.7: the slice of location_indices */
    ivec *attribute_indices;        /* caller-provided vectors, reset before each sample */
    i64vec *values;
    u64vec *timestamps;
};

struct raw_stack { ivec *location_indices; };

struct raw_line { int32_t function_index; int64_t line, column; };
typedef VEC(struct raw_line) linevec;

struct raw_location {
    int32_t mapping_index;
    bool mapping_explicit;          /* v1.7: mapping_index was sent, so 0 is mapping_table[0] */
    uint64_t address;
    linevec *lines;
    ivec *attribute_indices;
    bool is_folded;                 /* v1.7 */
};

struct raw_function { int32_t name_strindex, system_name_strindex, filename_strindex; int64_t start_line; };

struct raw_mapping {
    uint64_t memory_start, memory_limit, file_offset;
    int32_t filename_strindex;
    ivec *attribute_indices;
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;   /* v1.7 */
};

struct raw_link { pb_ref_t trace_id, span_id; };

/* An AnyValue, before string indices are resolved. */
enum raw_value_kind {
    RAW_EMPTY, RAW_STRING, RAW_STRINDEX, RAW_BOOL, RAW_INT, RAW_DOUBLE, RAW_BYTES, RAW_ARRAY, RAW_KVLIST
};
struct raw_value {
    enum raw_value_kind kind;
    pb_ref_t ref;          /* STRING, BYTES, ARRAY, KVLIST */
    int64_t i;             /* INT, BOOL (0/1), STRINDEX */
    double d;
};

/* An attribute-table entry (KeyValueAndUnit; a KeyValue in v1.7: inline key, no unit). */
struct raw_attribute {
    pb_ref_t key;          /* set when the key is inline */
    int32_t key_strindex;
    struct raw_value value;
    int32_t unit_strindex;
};

/* v1.7's attribute_units entry: the unit of every attribute with that key. */
struct raw_attribute_unit { int32_t attribute_key_strindex, unit_strindex; };

/* Called for each element of a repeated field, with the element's encoded bytes. */
typedef bool (*raw_each_fn)(void *ctx, pb_ref_t element);

struct wire_schema;

struct otlp_layout {
    const char *name;                       /* "v1.11" */
    /* Sample.values[i] belongs to timestamps[i], so both counts must match when both are
     * sent (v1.8+). In v1.7 values follow Profile.sample_type instead. */
    bool parallel_values;
    const struct wire_schema *wire;         /* every message: fields and destinations (wire.h) */
};

extern const struct otlp_layout otlp_layout_v1_11, otlp_layout_v1_9, otlp_layout_v1_8, otlp_layout_v1_7;

/* Every layout lazybackend reads, newest first (layouts.c). */
#define OTLP_LAYOUT_COUNT 4
extern const struct otlp_layout *const otlp_layouts[OTLP_LAYOUT_COUNT];

/* "v1.11" (alias "v1.10"), "v1.9", "v1.8", "v1.7"; the leading "v" is optional. NULL when
 * unknown. */
const struct otlp_layout *otlp_layout_find(const char *name);

/* ---- Decoding one message of a layout (layout.c), driven by its wire schema ----
 * Each reads the whole stream `is` (a view of the request, otlp/pbref.h) into the raw struct
 * and returns false with PB_GET_ERROR(is) set when the bytes are not that message. */

/* False for v1.7: no stack table; a sample's stack is then the slice
 * [locations_start, +locations_length) of raw_profile.location_indices. */
bool layout_has_stacks(const struct otlp_layout *layout);

/* Appends the dictionary's entries to tables->t[DICT_*] (repeated dictionary occurrences
 * merge, as protobuf merges a repeated singular message). */
bool layout_dictionary(const struct otlp_layout *layout, pb_istream_t *is, struct dict_tables *tables);

/* A Profile: with `sample` NULL its header (every field but the samples), otherwise only its
 * samples, each handed to `sample`. */
bool layout_profile(const struct otlp_layout *layout, pb_istream_t *is, struct raw_profile *out,
                    raw_each_fn sample, void *ctx);
bool layout_sample(const struct otlp_layout *layout, pb_istream_t *is, struct raw_sample *out);
/* One entry of dictionary table `t` (not DICT_STRING) into its raw struct: raw_stack,
 * raw_location, raw_function, raw_mapping, raw_link, raw_attribute or raw_attribute_unit. */
bool layout_entry(const struct otlp_layout *layout, enum dict_table t, pb_istream_t *is, void *out);

/* The same two straight from the request's bytes, without a stream: false with *why set.
 * An entry is named by its message, layout_entry_message(layout, t) (-1: no such table),
 * which the decoder asks once per request. */
bool layout_sample_at(const struct otlp_layout *layout, pb_ref_t msg, struct raw_sample *out, const char **why);
/* A sample checked as the layout detector would (the fast path, detect.h), counted with its wire
 * types into `t`: false also where the full detection would contradict the layout or find an
 * unknown field. */
struct wire_tally;
bool layout_sample_checked(const struct otlp_layout *layout, pb_ref_t msg, struct raw_sample *out,
                           struct wire_tally *t, const char **why);
int layout_entry_message(const struct otlp_layout *layout, enum dict_table t);
bool layout_entry_at(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out, const char **why);
/* The same, checked as the layout detector would (the fast path, detect.h): false also where
 * the full detection would contradict the layout or find an unknown field. */
bool layout_entry_checked(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out, const char **why);
/* Is entry `message` made of scalars (and Lines) only? Then layout_entry_flat_checked reads it
 * as layout_entry_checked would, faster: true exactly where layout_entry_checked is, with the
 * same values stored (entry_flat.c); false says no more than that the entry is refused. */
bool layout_entry_flat(const struct otlp_layout *layout, int message);
bool layout_entry_flat_checked(const struct otlp_layout *layout, int message, pb_ref_t msg, void *out);

/* ---- Envelope messages, identical in every layout ----
 * The decoder's hot path reads them with the table-driven code above (otlp_envelope_wire in
 * layouts.c): straight from the buffer, every wire rule checked as nanopb checked it. Each
 * function reads all of `msg`; false with *why set when it is not that message. Each element
 * of a repeated field goes to the callback of its slot (NULL: skipped, whatever its wire
 * type, as nanopb skipped a field without a callback). */

/* The callbacks of a message and the messages nested in it, by slot (wire.h's D_EACH). */
enum each_slot {
    EACH_CHILD,            /* request.resource_profiles, .scope_profiles, .profiles,
                            * Profile.samples, ArrayValue.values, KeyValueList.values */
    EACH_ATTRIBUTE,        /* Resource.attributes, InstrumentationScope.attributes */
    EACH_ENTITY_REF,       /* Resource.entity_refs */
    EACH_DICTIONARY,       /* request.dictionary */
    EACH_ID_KEY,           /* EntityRef.id_keys */
    EACH_DESCRIPTION_KEY,  /* EntityRef.description_keys */
    EACH_SLOTS
};
struct raw_each { raw_each_fn fn; void *ctx; };

struct env_resource { uint32_t dropped_attributes_count; };
struct env_resource_profiles { struct env_resource resource; pb_ref_t schema_url; };
struct env_scope { pb_ref_t name, version; uint32_t dropped_attributes_count; };
struct env_scope_profiles { struct env_scope scope; pb_ref_t schema_url; };
/* An EntityRef (common.proto): its strings; its keys go to EACH_ID_KEY, EACH_DESCRIPTION_KEY. */
struct raw_entity_ref { pb_ref_t schema_url, type; };

bool env_request(pb_ref_t msg, const struct raw_each each[EACH_SLOTS], const char **why);
bool env_resource_profiles(pb_ref_t msg, struct env_resource_profiles *out,
                           const struct raw_each each[EACH_SLOTS], const char **why);
bool env_scope_profiles(pb_ref_t msg, struct env_scope_profiles *out,
                        const struct raw_each each[EACH_SLOTS], const char **why);
bool env_entity_ref(pb_ref_t msg, struct raw_entity_ref *out, const struct raw_each each[EACH_SLOTS],
                    const char **why);
/* A KeyValue: key (or key_strindex) and value; unit_strindex stays as it was. */
bool env_key_value(pb_ref_t msg, struct raw_attribute *out, const char **why);

/* ---- The same envelope messages on nanopb's descriptors (envelope.c), for the cold paths:
 * the conformance checker, the traces decoder, the views' nested values ---- */

/* ExportProfilesServiceRequest: resource_profiles 1, dictionary 2 in every layout since v1.7.
 * NULL callbacks skip their field. */
bool raw_request(pb_istream_t *is, raw_each_fn dictionary, raw_each_fn resource_profiles, void *ctx);

/* A nanopb callback for a repeated message field that hands each element's bytes to a
 * raw_each_fn: raw_set_each(&msg.field, &each, fn, ctx) before decoding `msg`. */
bool raw_each_element(pb_istream_t *is, const pb_field_t *f, void **arg);
void raw_set_each(pb_callback_t *cb, struct raw_each *each, raw_each_fn fn, void *ctx);

struct raw_key_value {
    pb_ref_t key;
    int32_t key_strindex;
    struct raw_value value;
};
bool raw_key_value(pb_istream_t *is, struct raw_key_value *out);

struct raw_resource_profiles {
    pb_ref_t schema_url;
    uint32_t dropped_attributes_count;   /* of the Resource */
    bool has_resource;
    raw_each_fn entity_ref;              /* in: each Resource.entity_refs element (NULL: skipped) */
};
/* NULL callbacks skip their field; each callback gets one element's encoded bytes. */
bool raw_resource_profiles(pb_istream_t *is, raw_each_fn attribute, raw_each_fn scope_profiles,
                           void *ctx, struct raw_resource_profiles *out);

struct raw_scope_profiles {
    pb_ref_t name, version, schema_url;
    uint32_t dropped_attributes_count;
};
bool raw_scope_profiles(pb_istream_t *is, raw_each_fn attribute, raw_each_fn profiles,
                        void *ctx, struct raw_scope_profiles *out);

/* An EntityRef: its strings, and each of its id_keys / description_keys handed to `id_key` /
 * `description_key` (NULL: skipped). */
bool raw_entity_ref(pb_istream_t *is, raw_each_fn id_key, raw_each_fn description_key, void *ctx,
                    struct raw_entity_ref *out);

/* Walks ArrayValue.values (each an AnyValue) or KeyValueList.values (each a KeyValue). */
bool raw_each_array_value(pb_istream_t *is, raw_each_fn fn, void *ctx);
bool raw_each_kvlist_value(pb_istream_t *is, raw_each_fn fn, void *ctx);
bool raw_any_value(pb_istream_t *is, struct raw_value *out);

#endif
