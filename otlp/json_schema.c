/*
 * json_schema.c - the OTLP messages as the JSON transcoder sees them: for each JSON key, the
 * field number, wire type and submessage it becomes (see json.h for why a table drives the
 * transcoding rather than hand-written code per message).
 *
 * Only what the transcoder needs is here: field names (the camelCase form is derived, not
 * stored), numbers, scalar types, repetition, and the names of the two enums. A key the
 * table does not know is skipped (OTLP receivers ignore unknown fields), so a field left out
 * here is dropped without a word: keep the table in step with pb/profiles.proto and
 * pb/trace.proto.
 */
#include <stdbool.h>
#include <string.h>

#include "otlp/json_internal.h"

#define FLD(nm, num, ty)   { nm, num, ty, false, NULL, NULL }
#define REP(nm, num, ty)   { nm, num, ty, true, NULL, NULL }
#define SUB(nm, num, m)    { nm, num, F_MSG, false, &m, NULL }
#define SUBS(nm, num, m)   { nm, num, F_MSG, true, &m, NULL }
#define ENUMF(nm, num, e)  { nm, num, F_ENUM, false, NULL, &e }
/* A message: its fields, and the jmsg named after it that points at them. */
#define MESSAGE(var, ...)                                       \
    static const struct jfield var##_f[] = { __VA_ARGS__ };     \
    static const struct jmsg var = { #var, var##_f, sizeof var##_f / sizeof var##_f[0] }

static const char *const span_kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const struct jenum span_kind = { span_kind_names, 6 };
static const char *const status_code_names[] = {
    "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR",
};
static const struct jenum status_code = { status_code_names, 3 };

/* common.v1 / resource.v1 (AnyValue nests through ArrayValue and KeyValueList). */
static const struct jmsg AnyValue, KeyValue;
MESSAGE(ArrayValue, SUBS("values", 1, AnyValue));
MESSAGE(KeyValueList, SUBS("values", 1, KeyValue));
MESSAGE(AnyValue,
    FLD("string_value", 1, F_STRING), FLD("bool_value", 2, F_BOOL), FLD("int_value", 3, F_INT64),
    FLD("double_value", 4, F_DOUBLE), SUB("array_value", 5, ArrayValue),
    SUB("kvlist_value", 6, KeyValueList), FLD("bytes_value", 7, F_BYTES),
    FLD("string_value_strindex", 8, F_INT32));
MESSAGE(KeyValue, FLD("key", 1, F_STRING), SUB("value", 2, AnyValue), FLD("key_strindex", 3, F_INT32));
MESSAGE(InstrumentationScope,
    FLD("name", 1, F_STRING), FLD("version", 2, F_STRING), SUBS("attributes", 3, KeyValue),
    FLD("dropped_attributes_count", 4, F_UINT32));
MESSAGE(EntityRef,
    FLD("schema_url", 1, F_STRING), FLD("type", 2, F_STRING), REP("id_keys", 3, F_STRING),
    REP("description_keys", 4, F_STRING));
MESSAGE(Resource,
    SUBS("attributes", 1, KeyValue), FLD("dropped_attributes_count", 2, F_UINT32),
    SUBS("entity_refs", 3, EntityRef));

/* profiles.v1development, the v1.10/v1.11 layout (pb/profiles.proto). */
MESSAGE(ValueType, FLD("type_strindex", 1, F_INT32), FLD("unit_strindex", 2, F_INT32));
MESSAGE(Sample,
    FLD("stack_index", 1, F_INT32), REP("attribute_indices", 2, F_INT32),
    FLD("link_index", 3, F_INT32), REP("values", 4, F_INT64),
    REP("timestamps_unix_nano", 5, F_FIXED64));
MESSAGE(Profile,
    SUB("sample_type", 1, ValueType), SUBS("samples", 2, Sample),
    FLD("time_unix_nano", 3, F_FIXED64), FLD("duration_nano", 4, F_UINT64),
    SUB("period_type", 5, ValueType), FLD("period", 6, F_INT64), FLD("profile_id", 7, F_HEXID),
    FLD("dropped_attributes_count", 8, F_UINT32), FLD("original_payload_format", 9, F_STRING),
    FLD("original_payload", 10, F_BYTES), REP("attribute_indices", 11, F_INT32));
MESSAGE(ScopeProfiles,
    SUB("scope", 1, InstrumentationScope), SUBS("profiles", 2, Profile),
    FLD("schema_url", 3, F_STRING));
MESSAGE(ResourceProfiles,
    SUB("resource", 1, Resource), SUBS("scope_profiles", 2, ScopeProfiles),
    FLD("schema_url", 3, F_STRING));
MESSAGE(Stack, REP("location_indices", 1, F_INT32));
MESSAGE(Line, FLD("function_index", 1, F_INT32), FLD("line", 2, F_INT64), FLD("column", 3, F_INT64));
MESSAGE(Location,
    FLD("mapping_index", 1, F_INT32), FLD("address", 2, F_UINT64), SUBS("lines", 3, Line),
    REP("attribute_indices", 4, F_INT32));
MESSAGE(Function,
    FLD("name_strindex", 1, F_INT32), FLD("system_name_strindex", 2, F_INT32),
    FLD("filename_strindex", 3, F_INT32), FLD("start_line", 4, F_INT64));
MESSAGE(Mapping,
    FLD("memory_start", 1, F_UINT64), FLD("memory_limit", 2, F_UINT64),
    FLD("file_offset", 3, F_UINT64), FLD("filename_strindex", 4, F_INT32),
    REP("attribute_indices", 5, F_INT32));
MESSAGE(ProfileLink, FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID));
MESSAGE(KeyValueAndUnit,
    FLD("key_strindex", 1, F_INT32), SUB("value", 2, AnyValue), FLD("unit_strindex", 3, F_INT32));
MESSAGE(ProfilesDictionary,
    SUBS("mapping_table", 1, Mapping), SUBS("location_table", 2, Location),
    SUBS("function_table", 3, Function), SUBS("link_table", 4, ProfileLink),
    REP("string_table", 5, F_STRING), SUBS("attribute_table", 6, KeyValueAndUnit),
    SUBS("stack_table", 7, Stack));
MESSAGE(ExportProfilesServiceRequest,
    SUBS("resource_profiles", 1, ResourceProfiles), SUB("dictionary", 2, ProfilesDictionary));

/* trace.v1 (pb/trace.proto). */
MESSAGE(Status, FLD("message", 2, F_STRING), ENUMF("code", 3, status_code));
MESSAGE(SpanEvent,
    FLD("time_unix_nano", 1, F_FIXED64), FLD("name", 2, F_STRING),
    SUBS("attributes", 3, KeyValue), FLD("dropped_attributes_count", 4, F_UINT32));
MESSAGE(SpanLink,
    FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID), FLD("trace_state", 3, F_STRING),
    SUBS("attributes", 4, KeyValue), FLD("dropped_attributes_count", 5, F_UINT32),
    FLD("flags", 6, F_FIXED32));
MESSAGE(Span,
    FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID), FLD("trace_state", 3, F_STRING),
    FLD("parent_span_id", 4, F_HEXID), FLD("flags", 16, F_FIXED32), FLD("name", 5, F_STRING),
    ENUMF("kind", 6, span_kind), FLD("start_time_unix_nano", 7, F_FIXED64),
    FLD("end_time_unix_nano", 8, F_FIXED64), SUBS("attributes", 9, KeyValue),
    FLD("dropped_attributes_count", 10, F_UINT32), SUBS("events", 11, SpanEvent),
    FLD("dropped_events_count", 12, F_UINT32), SUBS("links", 13, SpanLink),
    FLD("dropped_links_count", 14, F_UINT32), SUB("status", 15, Status));
MESSAGE(ScopeSpans,
    SUB("scope", 1, InstrumentationScope), SUBS("spans", 2, Span), FLD("schema_url", 3, F_STRING));
MESSAGE(ResourceSpans,
    SUB("resource", 1, Resource), SUBS("scope_spans", 2, ScopeSpans), FLD("schema_url", 3, F_STRING));
MESSAGE(ExportTraceServiceRequest, SUBS("resource_spans", 1, ResourceSpans));

/* JSON key == proto name, or == its lowerCamelCase form ("time_unix_nano" -> "timeUnixNano"). */
static bool key_matches(const char *key, size_t klen, const char *name)
{
    size_t nlen = strlen(name);
    if (klen == nlen && memcmp(key, name, klen) == 0)
        return true;
    size_t k = 0;
    for (size_t i = 0; i < nlen; i++, k++) {
        char want = name[i];
        if (want == '_' && i + 1 < nlen) {
            i++;
            want = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
        }
        if (k >= klen || key[k] != want)
            return false;
    }
    return k == klen;
}

const struct jfield *jmsg_find_field(const struct jmsg *m, const char *key, size_t klen)
{
    for (size_t i = 0; i < m->n; i++)
        if (key_matches(key, klen, m->f[i].name))
            return &m->f[i];
    return NULL;
}

const struct jmsg *jmsg_root(enum otlp_json_doc doc)
{
    return doc == OTLP_JSON_TRACES_REQUEST ? &ExportTraceServiceRequest : &ExportProfilesServiceRequest;
}
