/*
 * layout.h - one proto layout of OTLP profiles, seen through layout-neutral "raw" structs.
 *
 * The profiles proto kept the name v1development while its field numbers changed (v1.7,
 * v1.8, v1.9, v1.10/v1.11 are wire-incompatible). Everything that depends on field numbers
 * lives behind this table of functions: each layout decodes its own messages (with its own
 * nanopb descriptors) into the raw structs below, and the resolver (decode.c) and the sinks
 * never see a field number. Adding a layout = one more pb/profiles_v1_*.proto, one more
 * otlp/layout_*.c, and one more entry (with its wire schema) in otlp/detect.c, which tells the
 * layouts apart on the wire and picks one per request.
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
    DICT_STACK, DICT_TABLES
};
struct dict_ref { uint32_t off, len; };
typedef VEC(struct dict_ref) dictrefvec;
struct dict_tables {
    const uint8_t *base;            /* the request buffer */
    dictrefvec t[DICT_TABLES];
};

struct raw_value_type { int32_t type_strindex, unit_strindex; };

struct raw_profile {
    struct raw_value_type sample_type, period_type;
    uint64_t time_unix_nano, duration_nano;
    int64_t period;
    pb_ref_t profile_id, original_payload_format, original_payload;
    uint32_t dropped_attributes_count;
    ivec *attribute_indices;        /* filled by the layout (caller provides, reset) */
    ivec *location_indices;         /* v1.7 only: Profile.location_indices, which its samples
                                     * slice (caller provides, reset); untouched by others */
};

struct raw_sample {
    int32_t stack_index, link_index;
    bool link_explicit;             /* v1.7: link_index was sent, so 0 is link_table[0] */
    int32_t locations_start, locations_length;   /* v1.7: the slice of location_indices */
    ivec *attribute_indices;        /* caller-provided vectors, reset before each sample */
    i64vec *values;
    u64vec *timestamps;
};

struct raw_line { int32_t function_index; int64_t line, column; };
typedef VEC(struct raw_line) linevec;

struct raw_location {
    int32_t mapping_index;
    bool mapping_explicit;          /* v1.7: mapping_index was sent, so 0 is mapping_table[0] */
    uint64_t address;
    linevec *lines;
    ivec *attribute_indices;
};

struct raw_function { int32_t name_strindex, system_name_strindex, filename_strindex; int64_t start_line; };

struct raw_mapping {
    uint64_t memory_start, memory_limit, file_offset;
    int32_t filename_strindex;
    ivec *attribute_indices;
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

/* An attribute-table entry (KeyValueAndUnit; a KeyValue in v1.7). */
struct raw_attribute {
    pb_ref_t key;          /* set when the key is inline */
    int32_t key_strindex;
    struct raw_value value;
    int32_t unit_strindex;
};

/* Called for each element of a repeated field, with the element's encoded bytes. */
typedef bool (*raw_each_fn)(void *ctx, pb_ref_t element);

struct otlp_layout {
    const char *name;                       /* "v1.11" */
    /* Sample.values[i] belongs to timestamps[i], so both counts must match when both are
     * sent (v1.8+). In v1.7 values follow Profile.sample_type instead. */
    bool parallel_values;
    /* Request: hand each dictionary occurrence and each ResourceProfiles to the callbacks. */
    bool (*request)(pb_istream_t *is, raw_each_fn dictionary, raw_each_fn resource_profiles, void *ctx);
    /* Dictionary: append each table's entries to tables->t[DICT_*] (repeated dictionary
     * occurrences merge, as protobuf merges a repeated singular message). */
    bool (*dictionary)(pb_istream_t *is, struct dict_tables *tables);
    bool (*profile_header)(pb_istream_t *is, struct raw_profile *out);
    bool (*profile_samples)(pb_istream_t *is, raw_each_fn sample, void *ctx);
    bool (*sample)(pb_istream_t *is, struct raw_sample *out);
    /* NULL when the layout has no stack table (v1.7): a sample's stack is then the slice
     * [locations_start, +locations_length) of raw_profile.location_indices. */
    bool (*stack)(pb_istream_t *is, ivec *location_indices);
    bool (*location)(pb_istream_t *is, struct raw_location *out);
    bool (*function)(pb_istream_t *is, struct raw_function *out);
    bool (*mapping)(pb_istream_t *is, struct raw_mapping *out);
    bool (*link)(pb_istream_t *is, struct raw_link *out);
    bool (*attribute)(pb_istream_t *is, struct raw_attribute *out);
};

extern const struct otlp_layout otlp_layout_v1_11, otlp_layout_v1_9, otlp_layout_v1_8, otlp_layout_v1_7;

/* The v1.11 decoders of messages that older layouts share with it on the wire. */
bool otlp_v11_dictionary(pb_istream_t *is, struct dict_tables *tables);
bool otlp_v11_profile_header(pb_istream_t *is, struct raw_profile *out);
bool otlp_v11_profile_samples(pb_istream_t *is, raw_each_fn sample, void *ctx);
bool otlp_v11_stack(pb_istream_t *is, ivec *location_indices);
bool otlp_v11_location(pb_istream_t *is, struct raw_location *out);
bool otlp_v11_function(pb_istream_t *is, struct raw_function *out);
bool otlp_v11_mapping(pb_istream_t *is, struct raw_mapping *out);
bool otlp_v11_link(pb_istream_t *is, struct raw_link *out);
bool otlp_v11_attribute(pb_istream_t *is, struct raw_attribute *out);
bool otlp_v11_push_line(pb_istream_t *is, const pb_field_t *f, void **arg);
/* ExportProfilesServiceRequest: resource_profiles 1, dictionary 2 in every layout since v1.7. */
bool raw_request(pb_istream_t *is, raw_each_fn dictionary, raw_each_fn resource_profiles, void *ctx);

/* Shared by every layout: decoding helpers for repeated scalars (packed or not). */
bool raw_push_int32(pb_istream_t *is, const pb_field_t *f, void **arg);
bool raw_push_int64(pb_istream_t *is, const pb_field_t *f, void **arg);
bool raw_push_fixed64(pb_istream_t *is, const pb_field_t *f, void **arg);
bool raw_push_uint64(pb_istream_t *is, const pb_field_t *f, void **arg);   /* varints into a u64vec */
/* Hands each element's bytes to a raw_each_fn (arg points to a struct raw_each). */
struct raw_each { raw_each_fn fn; void *ctx; };
bool raw_each_element(pb_istream_t *is, const pb_field_t *f, void **arg);
/* Appends one dictionary entry (arg points to a struct dict_table_sink). */
struct dict_table_sink { struct dict_tables *tables; enum dict_table table; };
bool dict_push_entry(pb_istream_t *is, const pb_field_t *f, void **arg);
/* Converts a decoded common AnyValue (any layout uses the same common.proto). */
struct _opentelemetry_proto_common_v1_AnyValue;
void raw_value_from_any(const struct _opentelemetry_proto_common_v1_AnyValue *av, struct raw_value *out);


/* ---- Envelope messages, identical in every layout (layout_common.c) ---- */

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

/* Walks ArrayValue.values (each an AnyValue) or KeyValueList.values (each a KeyValue). */
bool raw_each_array_value(pb_istream_t *is, raw_each_fn fn, void *ctx);
bool raw_each_kvlist_value(pb_istream_t *is, raw_each_fn fn, void *ctx);
bool raw_any_value(pb_istream_t *is, struct raw_value *out);

#endif
