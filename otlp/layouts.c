/*
 * layouts.c - every proto layout lazybackend reads, as tables (wire.h): for each message of
 * each layout, its fields by number with their wire kind, name, and where the decoder puts
 * them in the raw structs of layout.h.
 *
 * The tables are the field tables of otlp-profiles-wire.md §3 side by side. They are written
 * by hand, independently of the nanopb descriptors, because they also say what a field
 * *means* (its name), which is how detect.c compares two layouts that both fit a request. A
 * message that did not change between layouts is one table shared by them; a field with no
 * destination is checked by detection and skipped by the decoder. The envelope's tables are in
 * every layout's schema (for the detector) and in otlp_envelope_wire (for the decoder, which
 * reads the envelope as common.proto's whatever the layout, as nanopb did). Every field the
 * decoder reads has a place in the view (otlp/view.h).
 *
 * To add a layout: write the tables of the messages it changed, a struct wire_schema that
 * picks its message tables, a struct otlp_layout, and its place in otlp_layouts (newest first).
 */
#include "otlp/layout.h"

#include <stddef.h>
#include <string.h>

#include "otlp/detect.h"
#include "otlp/wire.h"

#define AT(st, member) ((uint16_t)offsetof(struct st, member))

/* Fields that are checked but not read. */
#define F_VARINT(n)  { W_VARINT, 0, R_NONE, false, n, D_NONE, 0, 0 }
#define F_I64(n)     { W_I64, 0, R_NONE, false, n, D_NONE, 0, 0 }
#define F_BYTES(n)   { W_BYTES, 0, R_NONE, false, n, D_NONE, 0, 0 }
#define F_RBYTES(n)  { W_BYTES, 0, R_NONE, true, n, D_NONE, 0, 0 }
#define F_MSG(m, n)  { W_MSG, m, R_NONE, false, n, D_NONE, 0, 0 }
#define F_RMSG(m, n) { W_MSG, m, R_NONE, true, n, D_NONE, 0, 0 }

/* Fields read into member `m` of raw struct `st`. */
#define F_INT(n, d, st, m)      { W_VARINT, 0, R_NONE, false, n, d, AT(st, m), 0 }
#define F_BOOL(n, st, m)        { W_VARINT, 0, R_NONE, false, n, D_BOOL, AT(st, m), 0 }
#define F_OPT(n, st, m, flag)   { W_VARINT, 0, R_NONE, false, n, D_I32_OPT, AT(st, m), AT(st, flag) }
#define F_FIXED(n, st, m)       { W_I64, 0, R_NONE, false, n, D_U64, AT(st, m), 0 }
#define F_REF(n, st, m)         { W_BYTES, 0, R_NONE, false, n, D_REF, AT(st, m), 0 }
#define F_SUB(msg, n, st, m)    { W_MSG, msg, R_NONE, false, n, D_MSG, AT(st, m), 0 }
#define F_ANY(n, st, m)         { W_MSG, WM_ANY_VALUE, R_NONE, false, n, D_ANY_VALUE, AT(st, m), 0 }
#define F_PUSH(n, d, st, m)     { W_PVARINT, 0, R_NONE, true, n, d, AT(st, m), 0 }
#define F_VALUES(n, st, m)      { W_PVARINT, 0, R_VALUES, true, n, D_PUSH_I64, AT(st, m), 0 }
#define F_TIMES(n, st, m)       { W_PI64, 0, R_TIMESTAMPS, true, n, D_PUSH_U64, AT(st, m), 0 }
#define F_LINES(n, st, m)       { W_MSG, WM_LINE, R_NONE, true, n, D_LINES, AT(st, m), 0 }
#define F_EACH(msg, n)          { W_MSG, msg, R_NONE, true, n, D_EACH, EACH_CHILD, 0 }
#define F_EACH_AT(msg, n, slot) { W_MSG, msg, R_NONE, true, n, D_EACH, slot, 0 }
#define F_EACH_BYTES(n, slot)   { W_BYTES, 0, R_NONE, true, n, D_EACH, slot, 0 }
/* A member of AnyValue's oneof: its value at `member` of struct raw_value, its kind `rk`. */
#define F_ONEOF(k, msg, n, member, rk) { k, msg, R_NONE, false, n, D_ONEOF, AT(raw_value, member), rk }
#define F_TABLE(msg, n, t)      { W_MSG, msg, R_NONE, true, n, D_DICT, t, 0 }
#define F_STRINGS(n)            { W_BYTES, 0, R_NONE, true, n, D_DICT, DICT_STRING, 0 }

/* ---- the envelope: the same in every layout ---- */

static const struct wmsg_desc request = { "ExportProfilesServiceRequest", {
    [1] = F_EACH(WM_RESOURCE_PROFILES, "resource_profiles"),
    [2] = { W_MSG, WM_DICTIONARY, R_NONE, false, "dictionary", D_EACH, EACH_DICTIONARY, 0 } } };
static const struct wmsg_desc resource_profiles = { "ResourceProfiles", {
    [1] = F_SUB(WM_RESOURCE, "resource", env_resource_profiles, resource),
    [2] = F_EACH(WM_SCOPE_PROFILES, "scope_profiles"),
    [3] = F_REF("schema_url", env_resource_profiles, schema_url) } };
static const struct wmsg_desc scope_profiles = { "ScopeProfiles", {
    [1] = F_SUB(WM_SCOPE, "scope", env_scope_profiles, scope), [2] = F_EACH(WM_PROFILE, "profiles"),
    [3] = F_REF("schema_url", env_scope_profiles, schema_url) } };
static const struct wmsg_desc resource = { "Resource", {
    [1] = F_EACH_AT(WM_KEY_VALUE, "attributes", EACH_ATTRIBUTE),
    [2] = F_INT("dropped_attributes_count", D_U32, env_resource, dropped_attributes_count),
    [3] = F_EACH_AT(WM_ENTITY_REF, "entity_refs", EACH_ENTITY_REF) } };
static const struct wmsg_desc scope = { "InstrumentationScope", {
    [1] = F_REF("name", env_scope, name), [2] = F_REF("version", env_scope, version),
    [3] = F_EACH_AT(WM_KEY_VALUE, "attributes", EACH_ATTRIBUTE),
    [4] = F_INT("dropped_attributes_count", D_U32, env_scope, dropped_attributes_count) } };
static const struct wmsg_desc entity_ref = { "EntityRef", {
    [1] = F_REF("schema_url", raw_entity_ref, schema_url), [2] = F_REF("type", raw_entity_ref, type),
    [3] = F_EACH_BYTES("id_keys", EACH_ID_KEY), [4] = F_EACH_BYTES("description_keys", EACH_DESCRIPTION_KEY) } };
static const struct wmsg_desc array_value = { "ArrayValue", { [1] = F_EACH(WM_ANY_VALUE, "values") } };
static const struct wmsg_desc kvlist_value = { "KeyValueList", { [1] = F_EACH(WM_KEY_VALUE, "values") } };

/* AnyValue.string_value_strindex (8) is v1.10+: the detector's v1.7 to v1.9 tables lack it,
 * the decoder reads it in every layout (otlp_envelope_wire). */
#define ANY_VALUE_FIELDS \
    [1] = F_ONEOF(W_BYTES, 0, "string_value", ref, RAW_STRING),                                  \
    [2] = F_ONEOF(W_VARINT, 0, "bool_value", i, RAW_BOOL),                                       \
    [3] = F_ONEOF(W_VARINT, 0, "int_value", i, RAW_INT),                                         \
    [4] = F_ONEOF(W_I64, 0, "double_value", d, RAW_DOUBLE),                                      \
    [5] = F_ONEOF(W_MSG, WM_ARRAY_VALUE, "array_value", ref, RAW_ARRAY),                         \
    [6] = F_ONEOF(W_MSG, WM_KVLIST_VALUE, "kvlist_value", ref, RAW_KVLIST),                      \
    [7] = F_ONEOF(W_BYTES, 0, "bytes_value", ref, RAW_BYTES)
static const struct wmsg_desc any_value_v1_10 = { "AnyValue", { ANY_VALUE_FIELDS,
    [8] = F_ONEOF(W_VARINT, 0, "string_value_strindex", i, RAW_STRINDEX) } };
static const struct wmsg_desc any_value_v1_7 = { "AnyValue", { ANY_VALUE_FIELDS } };

/* KeyValue is also v1.7's attribute-table entry, hence its destinations; key_strindex (3) is
 * v1.10+ (the envelope's KeyValue has it in every layout, as AnyValue's field 8, and both keep
 * the low 32 bits of a larger varint, as nanopb did). */
#define KEY_VALUE_FIELDS \
    [1] = F_REF("key", raw_attribute, key), [2] = F_ANY("value", raw_attribute, value)
static const struct wmsg_desc key_value_v1_10 = { "KeyValue", { KEY_VALUE_FIELDS,
    [3] = F_INT("key_strindex", D_I32_WRAP, raw_attribute, key_strindex) } };
static const struct wmsg_desc key_value_v1_7 = { "KeyValue", { KEY_VALUE_FIELDS } };

/* The envelope as the decoder reads it in every layout: common.proto's newest messages. */
const struct wire_schema otlp_envelope_wire = { {
    [WM_REQUEST] = &request, [WM_RESOURCE_PROFILES] = &resource_profiles,
    [WM_SCOPE_PROFILES] = &scope_profiles, [WM_RESOURCE] = &resource, [WM_SCOPE] = &scope,
    [WM_ENTITY_REF] = &entity_ref, [WM_ARRAY_VALUE] = &array_value,
    [WM_KVLIST_VALUE] = &kvlist_value, [WM_KEY_VALUE] = &key_value_v1_10,
    [WM_ANY_VALUE] = &any_value_v1_10 } };

/* ---- the dictionary and its entries ---- */

/* stack_table and KeyValueAndUnit from v1.8; attribute_units and KeyValue in v1.7. */
#define DICTIONARY_FIELDS                                                                      \
    [1] = F_TABLE(WM_MAPPING, "mapping_table", DICT_MAPPING),                                   \
    [2] = F_TABLE(WM_LOCATION, "location_table", DICT_LOCATION),                                \
    [3] = F_TABLE(WM_FUNCTION, "function_table", DICT_FUNCTION),                                \
    [4] = F_TABLE(WM_LINK, "link_table", DICT_LINK), [5] = F_STRINGS("string_table")
static const struct wmsg_desc dictionary_v1_8 = { "ProfilesDictionary", { DICTIONARY_FIELDS,
    [6] = F_TABLE(WM_KEY_VALUE_AND_UNIT, "attribute_table", DICT_ATTRIBUTE),
    [7] = F_TABLE(WM_STACK, "stack_table", DICT_STACK) } };
static const struct wmsg_desc dictionary_v1_7 = { "ProfilesDictionary", { DICTIONARY_FIELDS,
    [6] = F_TABLE(WM_KEY_VALUE, "attribute_table", DICT_ATTRIBUTE),
    [7] = F_TABLE(WM_ATTRIBUTE_UNIT, "attribute_units", DICT_ATTRIBUTE_UNIT) } };

static const struct wmsg_desc key_value_and_unit = { "KeyValueAndUnit", {
    [1] = F_INT("key_strindex", D_I32, raw_attribute, key_strindex),
    [2] = F_ANY("value", raw_attribute, value),
    [3] = F_INT("unit_strindex", D_I32, raw_attribute, unit_strindex) } };
static const struct wmsg_desc attribute_unit = { "AttributeUnit", {
    [1] = F_INT("attribute_key_strindex", D_I32, raw_attribute_unit, attribute_key_strindex),
    [2] = F_INT("unit_strindex", D_I32, raw_attribute_unit, unit_strindex) } };
static const struct wmsg_desc stack = { "Stack", {
    [1] = F_PUSH("location_indices", D_PUSH_I32, raw_stack, location_indices) } };

static const struct wmsg_desc line = { "Line", {
    [1] = F_INT("function_index", D_I32, raw_line, function_index),
    [2] = F_INT("line", D_I64, raw_line, line), [3] = F_INT("column", D_I64, raw_line, column) } };
static const struct wmsg_desc function = { "Function", {
    [1] = F_INT("name_strindex", D_I32, raw_function, name_strindex),
    [2] = F_INT("system_name_strindex", D_I32, raw_function, system_name_strindex),
    [3] = F_INT("filename_strindex", D_I32, raw_function, filename_strindex),
    [4] = F_INT("start_line", D_I64, raw_function, start_line) } };
static const struct wmsg_desc link = { "Link", {
    [1] = F_REF("trace_id", raw_link, trace_id), [2] = F_REF("span_id", raw_link, span_id) } };

/* v1.7's mapping_index is proto3 `optional`: an explicit 0 is entry 0. */
#define LOCATION_FIELDS                                                                        \
    [2] = F_INT("address", D_U64, raw_location, address), [3] = F_LINES("lines", raw_location, lines)
static const struct wmsg_desc location_v1_8 = { "Location", { LOCATION_FIELDS,
    [1] = F_INT("mapping_index", D_I32, raw_location, mapping_index),
    [4] = F_PUSH("attribute_indices", D_PUSH_I32, raw_location, attribute_indices) } };
static const struct wmsg_desc location_v1_7 = { "Location", { LOCATION_FIELDS,
    [1] = F_OPT("mapping_index", raw_location, mapping_index, mapping_explicit),
    [4] = F_BOOL("is_folded", raw_location, is_folded),
    [5] = F_PUSH("attribute_indices", D_PUSH_I32, raw_location, attribute_indices) } };

#define MAPPING_FIELDS                                                                         \
    [1] = F_INT("memory_start", D_U64, raw_mapping, memory_start),                              \
    [2] = F_INT("memory_limit", D_U64, raw_mapping, memory_limit),                              \
    [3] = F_INT("file_offset", D_U64, raw_mapping, file_offset),                                \
    [4] = F_INT("filename_strindex", D_I32, raw_mapping, filename_strindex),                    \
    [5] = F_PUSH("attribute_indices", D_PUSH_I32, raw_mapping, attribute_indices)
static const struct wmsg_desc mapping_v1_8 = { "Mapping", { MAPPING_FIELDS } };
static const struct wmsg_desc mapping_v1_7 = { "Mapping", { MAPPING_FIELDS,
    [6] = F_BOOL("has_functions", raw_mapping, has_functions),
    [7] = F_BOOL("has_filenames", raw_mapping, has_filenames),
    [8] = F_BOOL("has_line_numbers", raw_mapping, has_line_numbers),
    [9] = F_BOOL("has_inline_frames", raw_mapping, has_inline_frames) } };

/* ---- profiles and samples: where the layouts differ most ---- */

/* v1.7's and v1.8's ValueType still have aggregation_temporality (v1.9 dropped it). */
#define VALUE_TYPE_FIELDS                                                                      \
    [1] = F_INT("type_strindex", D_I32, raw_value_type, type_strindex),                         \
    [2] = F_INT("unit_strindex", D_I32, raw_value_type, unit_strindex)
static const struct wmsg_desc value_type_v1_9 = { "ValueType", { VALUE_TYPE_FIELDS } };
static const struct wmsg_desc value_type_v1_7 = { "ValueType", { VALUE_TYPE_FIELDS,
    [3] = F_INT("aggregation_temporality", D_I32, raw_value_type, aggregation_temporality) } };

/* What v1.8 to v1.11 share at the head of Profile; v1.8 then inserts comment_strindices at 7,
 * which moves every later field up by one. */
#define PROFILE_HEAD_FIELDS                                                                    \
    [1] = F_SUB(WM_VALUE_TYPE, "sample_type", raw_profile, sample_type),                        \
    [2] = F_EACH(WM_SAMPLE, "samples"),                                                         \
    [3] = F_FIXED("time_unix_nano", raw_profile, time_unix_nano),                               \
    [4] = F_INT("duration_nano", D_U64, raw_profile, duration_nano),                            \
    [5] = F_SUB(WM_VALUE_TYPE, "period_type", raw_profile, period_type),                        \
    [6] = F_INT("period", D_I64, raw_profile, period)
static const struct wmsg_desc profile_v1_9 = { "Profile", { PROFILE_HEAD_FIELDS,
    [7] = F_REF("profile_id", raw_profile, profile_id),
    [8] = F_INT("dropped_attributes_count", D_U32, raw_profile, dropped_attributes_count),
    [9] = F_REF("original_payload_format", raw_profile, original_payload_format),
    [10] = F_REF("original_payload", raw_profile, original_payload),
    [11] = F_PUSH("attribute_indices", D_PUSH_I32, raw_profile, attribute_indices) } };
static const struct wmsg_desc profile_v1_8 = { "Profile", { PROFILE_HEAD_FIELDS,
    [7] = F_PUSH("comment_strindices", D_PUSH_I32, raw_profile, comment_strindices),
    [8] = F_REF("profile_id", raw_profile, profile_id),
    [9] = F_INT("dropped_attributes_count", D_U32, raw_profile, dropped_attributes_count),
    [10] = F_REF("original_payload_format", raw_profile, original_payload_format),
    [11] = F_REF("original_payload", raw_profile, original_payload),
    [12] = F_PUSH("attribute_indices", D_PUSH_I32, raw_profile, attribute_indices) } };
/* v1.7: repeated sample_type, the samples' location_indices on the Profile, int64 times. */
static const struct wmsg_desc profile_v1_7 = { "Profile", {
    [1] = { W_MSG, WM_VALUE_TYPE, R_NONE, true, "sample_type", D_VALUE_TYPES, 0, 0 },
    [2] = F_EACH(WM_SAMPLE, "samples"),
    [3] = F_PUSH("location_indices", D_PUSH_I32, raw_profile, location_indices),
    [4] = F_INT("time_nanos", D_U64, raw_profile, time_unix_nano),
    [5] = F_INT("duration_nanos", D_U64, raw_profile, duration_nano),
    [6] = F_SUB(WM_VALUE_TYPE, "period_type", raw_profile, period_type),
    [7] = F_INT("period", D_I64, raw_profile, period),
    [8] = F_PUSH("comment_strindices", D_PUSH_I32, raw_profile, comment_strindices),
    [9] = F_INT("default_sample_type_index", D_I32, raw_profile, default_sample_type_index),
    [10] = F_REF("profile_id", raw_profile, profile_id),
    [11] = F_INT("dropped_attributes_count", D_U32, raw_profile, dropped_attributes_count),
    [12] = F_REF("original_payload_format", raw_profile, original_payload_format),
    [13] = F_REF("original_payload", raw_profile, original_payload),
    [14] = F_PUSH("attribute_indices", D_PUSH_I32, raw_profile, attribute_indices) } };

static const struct wmsg_desc sample_v1_10 = { "Sample", {
    [1] = F_INT("stack_index", D_I32, raw_sample, stack_index),
    [2] = F_PUSH("attribute_indices", D_PUSH_I32, raw_sample, attribute_indices),
    [3] = F_INT("link_index", D_I32, raw_sample, link_index),
    [4] = F_VALUES("values", raw_sample, values),
    [5] = F_TIMES("timestamps_unix_nano", raw_sample, timestamps) } };
static const struct wmsg_desc sample_v1_8 = { "Sample", {
    [1] = F_INT("stack_index", D_I32, raw_sample, stack_index),
    [2] = F_VALUES("values", raw_sample, values),
    [3] = F_PUSH("attribute_indices", D_PUSH_I32, raw_sample, attribute_indices),
    [4] = F_INT("link_index", D_I32, raw_sample, link_index),
    [5] = F_TIMES("timestamps_unix_nano", raw_sample, timestamps) } };
/* v1.7: a slice of the profile's location_indices; values follow sample_type, not the
 * timestamps (no R_VALUES role); timestamps are varints; link_index is `optional`. */
static const struct wmsg_desc sample_v1_7 = { "Sample", {
    [1] = F_INT("locations_start_index", D_I32, raw_sample, locations_start),
    [2] = F_INT("locations_length", D_I32, raw_sample, locations_length),
    [3] = F_PUSH("value", D_PUSH_I64, raw_sample, values),
    [4] = F_PUSH("attribute_indices", D_PUSH_I32, raw_sample, attribute_indices),
    [5] = F_OPT("link_index", raw_sample, link_index, link_explicit),
    [6] = F_PUSH("timestamps_unix_nano", D_PUSH_U64, raw_sample, timestamps) } };

/* ---- the layouts ---- */

#define SHARED_MESSAGES                                                                       \
    [WM_REQUEST] = &request, [WM_RESOURCE_PROFILES] = &resource_profiles,                      \
    [WM_SCOPE_PROFILES] = &scope_profiles, [WM_RESOURCE] = &resource, [WM_SCOPE] = &scope,     \
    [WM_ENTITY_REF] = &entity_ref, [WM_ARRAY_VALUE] = &array_value,                            \
    [WM_KVLIST_VALUE] = &kvlist_value, [WM_LINE] = &line, [WM_FUNCTION] = &function,           \
    [WM_LINK] = &link
/* v1.8 to v1.11: the stack table and KeyValueAndUnit. */
#define STACK_TABLE_MESSAGES                                                                  \
    [WM_DICTIONARY] = &dictionary_v1_8, [WM_STACK] = &stack, [WM_LOCATION] = &location_v1_8,   \
    [WM_MAPPING] = &mapping_v1_8, [WM_KEY_VALUE_AND_UNIT] = &key_value_and_unit

static const struct wire_schema wire_v1_11 = { {
    SHARED_MESSAGES, STACK_TABLE_MESSAGES, [WM_PROFILE] = &profile_v1_9,
    [WM_SAMPLE] = &sample_v1_10, [WM_VALUE_TYPE] = &value_type_v1_9,
    [WM_KEY_VALUE] = &key_value_v1_10, [WM_ANY_VALUE] = &any_value_v1_10 } };
static const struct wire_schema wire_v1_9 = { {
    SHARED_MESSAGES, STACK_TABLE_MESSAGES, [WM_PROFILE] = &profile_v1_9,
    [WM_SAMPLE] = &sample_v1_8, [WM_VALUE_TYPE] = &value_type_v1_9,
    [WM_KEY_VALUE] = &key_value_v1_7, [WM_ANY_VALUE] = &any_value_v1_7 } };
static const struct wire_schema wire_v1_8 = { {
    SHARED_MESSAGES, STACK_TABLE_MESSAGES, [WM_PROFILE] = &profile_v1_8,
    [WM_SAMPLE] = &sample_v1_8, [WM_VALUE_TYPE] = &value_type_v1_7,
    [WM_KEY_VALUE] = &key_value_v1_7, [WM_ANY_VALUE] = &any_value_v1_7 } };
static const struct wire_schema wire_v1_7 = { {
    SHARED_MESSAGES, [WM_DICTIONARY] = &dictionary_v1_7, [WM_PROFILE] = &profile_v1_7,
    [WM_SAMPLE] = &sample_v1_7, [WM_VALUE_TYPE] = &value_type_v1_7,
    [WM_LOCATION] = &location_v1_7, [WM_MAPPING] = &mapping_v1_7,
    [WM_ATTRIBUTE_UNIT] = &attribute_unit, [WM_KEY_VALUE] = &key_value_v1_7,
    [WM_ANY_VALUE] = &any_value_v1_7 } };

/* The eBPF profiler's agent tags per layout are in otlp-profiles-wire.md §2. */
const struct otlp_layout otlp_layout_v1_11 = { "v1.11", true, &wire_v1_11 };   /* = v1.10 on the wire */
const struct otlp_layout otlp_layout_v1_9 = { "v1.9", true, &wire_v1_9 };
const struct otlp_layout otlp_layout_v1_8 = { "v1.8", true, &wire_v1_8 };
const struct otlp_layout otlp_layout_v1_7 = { "v1.7", false, &wire_v1_7 };

const struct otlp_layout *const otlp_layouts[OTLP_LAYOUT_COUNT] = {
    &otlp_layout_v1_11, &otlp_layout_v1_9, &otlp_layout_v1_8, &otlp_layout_v1_7,
};

/* ---- traces: one schema, only for finding the fields a trace request carries that it does
 * not have (the traces decoder, traces.c, reads them with nanopb) ---- */

#define F_I32(n) { W_I32, 0, R_NONE, false, n, D_NONE, 0, 0 }
static const struct wmsg_desc trace_request = { "ExportTraceServiceRequest", {
    [1] = F_RMSG(WM_RESOURCE_SPANS, "resource_spans") } };
static const struct wmsg_desc resource_spans = { "ResourceSpans", {
    [1] = F_MSG(WM_RESOURCE, "resource"), [2] = F_RMSG(WM_SCOPE_SPANS, "scope_spans"),
    [3] = F_BYTES("schema_url") } };
static const struct wmsg_desc scope_spans = { "ScopeSpans", {
    [1] = F_MSG(WM_SCOPE, "scope"), [2] = F_RMSG(WM_SPAN, "spans"), [3] = F_BYTES("schema_url") } };
static const struct wmsg_desc span = { "Span", {
    [1] = F_BYTES("trace_id"), [2] = F_BYTES("span_id"), [3] = F_BYTES("trace_state"),
    [4] = F_BYTES("parent_span_id"), [5] = F_BYTES("name"), [6] = F_VARINT("kind"),
    [7] = F_I64("start_time_unix_nano"), [8] = F_I64("end_time_unix_nano"),
    [9] = F_RMSG(WM_KEY_VALUE, "attributes"), [10] = F_VARINT("dropped_attributes_count"),
    [11] = F_RMSG(WM_SPAN_EVENT, "events"), [12] = F_VARINT("dropped_events_count"),
    [13] = F_RMSG(WM_SPAN_LINK, "links"), [14] = F_VARINT("dropped_links_count"),
    [15] = F_MSG(WM_SPAN_STATUS, "status"), [16] = F_I32("flags") } };
static const struct wmsg_desc span_event = { "Event", {
    [1] = F_I64("time_unix_nano"), [2] = F_BYTES("name"), [3] = F_RMSG(WM_KEY_VALUE, "attributes"),
    [4] = F_VARINT("dropped_attributes_count") } };
static const struct wmsg_desc span_link = { "Link", {
    [1] = F_BYTES("trace_id"), [2] = F_BYTES("span_id"), [3] = F_BYTES("trace_state"),
    [4] = F_RMSG(WM_KEY_VALUE, "attributes"), [5] = F_VARINT("dropped_attributes_count"),
    [6] = F_I32("flags") } };
static const struct wmsg_desc span_status = { "Status", {
    [2] = F_BYTES("message"), [3] = F_VARINT("code") } };

static const struct wire_schema wire_traces = { {
    [WM_REQUEST] = &trace_request, [WM_RESOURCE_SPANS] = &resource_spans,
    [WM_SCOPE_SPANS] = &scope_spans, [WM_SPAN] = &span, [WM_SPAN_EVENT] = &span_event,
    [WM_SPAN_LINK] = &span_link, [WM_SPAN_STATUS] = &span_status, [WM_RESOURCE] = &resource,
    [WM_SCOPE] = &scope, [WM_ENTITY_REF] = &entity_ref, [WM_ARRAY_VALUE] = &array_value,
    [WM_KVLIST_VALUE] = &kvlist_value, [WM_KEY_VALUE] = &key_value_v1_10,
    [WM_ANY_VALUE] = &any_value_v1_10 } };
const struct otlp_layout otlp_traces_schema = { "traces v1", false, &wire_traces };

const struct otlp_layout *otlp_layout_find(const char *name)
{
    if (!name)
        return NULL;
    if (name[0] == 'v' || name[0] == 'V')
        name++;
    if (strcmp(name, "1.10") == 0)   /* v1.11.0 is wire-identical to v1.10.0 */
        name = "1.11";
    for (size_t i = 0; i < OTLP_LAYOUT_COUNT; i++)
        if (strcmp(otlp_layouts[i]->name + 1, name) == 0)
            return otlp_layouts[i];
    return NULL;
}
