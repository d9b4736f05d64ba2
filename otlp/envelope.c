/*
 * envelope.c - the messages every proto layout shares, decoded with nanopb's descriptors: the
 * request, ResourceProfiles, ScopeProfiles and common.proto's KeyValue/AnyValue (which the
 * traces decoder reads too).
 *
 * Who uses it: the cold paths (the conformance checker, the traces decoder, the views' walk
 * of nested array and kvlist values). The profiles decoder reads the same messages with the
 * table-driven reader (layout.c, otlp_envelope_wire): a request of many small resources spent
 * a sixth of its time here, in nanopb's byte-stream callbacks. Both readers keep the same
 * rules (layout.c says which of nanopb's it had to repeat).
 */
#include "otlp/layout.h"

#include <string.h>
#include <pb_decode.h>

#include "common.pb.h"
#include "profiles.pb.h"
#include "profiles_service.pb.h"

bool raw_each_element(pb_istream_t *is, const pb_field_t *f, void **arg)
{
    (void)f;
    const struct raw_each *each = *arg;
    if (!pbref_is_view(is))
        PB_RETURN_ERROR(is, "wrong wire type for a message field");
    pb_ref_t el = { pbref_pos(is), is->bytes_left };
    if (!pbref_skip(is, is->bytes_left))
        return false;
    if (!each->fn(each->ctx, el))
        PB_RETURN_ERROR(is, "element rejected");
    return true;
}

bool raw_request(pb_istream_t *is, raw_each_fn dictionary, raw_each_fn resource_profiles, void *ctx)
{
    opentelemetry_proto_collector_profiles_v1development_ExportProfilesServiceRequest req;
    struct raw_each dict_each, rp_each;
    memset(&req, 0, sizeof req);
    raw_set_each(&req.dictionary, &dict_each, dictionary, ctx);
    raw_set_each(&req.resource_profiles, &rp_each, resource_profiles, ctx);
    return pb_decode_ex(is, opentelemetry_proto_collector_profiles_v1development_ExportProfilesServiceRequest_fields,
                        &req, PB_DECODE_NOINIT);
}

/* A field the caller does not want in this pass. Without a callback nanopb would skip it by
 * reading it through the stream 16 bytes at a time (copies into a scratch buffer); a view of
 * the request skips in place. A scalar on a message field (a hostile wire type) reaches here
 * in nanopb's scratch stream, already read: skipped as nanopb would have. */
static bool raw_skip_element(pb_istream_t *is, const pb_field_t *f, void **arg)
{
    (void)f;
    (void)arg;
    if (!pbref_is_view(is))
        return pb_read(is, NULL, is->bytes_left);
    return pbref_skip(is, is->bytes_left);
}

void raw_set_each(pb_callback_t *cb, struct raw_each *each, raw_each_fn fn, void *ctx)
{
    each->fn = fn;
    each->ctx = ctx;
    cb->funcs.decode = fn ? raw_each_element : raw_skip_element;
    cb->arg = each;
}

static void raw_value_from_any(const opentelemetry_proto_common_v1_AnyValue *av, struct raw_value *out)
{
    memset(out, 0, sizeof *out);
    switch (av->which_value) {
    case opentelemetry_proto_common_v1_AnyValue_string_value_tag:
        out->kind = RAW_STRING; out->ref = av->value.string_value; break;
    case opentelemetry_proto_common_v1_AnyValue_bool_value_tag:
        out->kind = RAW_BOOL; out->i = av->value.bool_value; break;
    case opentelemetry_proto_common_v1_AnyValue_int_value_tag:
        out->kind = RAW_INT; out->i = av->value.int_value; break;
    case opentelemetry_proto_common_v1_AnyValue_double_value_tag:
        out->kind = RAW_DOUBLE; out->d = av->value.double_value; break;
    case opentelemetry_proto_common_v1_AnyValue_array_value_tag:
        out->kind = RAW_ARRAY; out->ref = av->value.array_value; break;
    case opentelemetry_proto_common_v1_AnyValue_kvlist_value_tag:
        out->kind = RAW_KVLIST; out->ref = av->value.kvlist_value; break;
    case opentelemetry_proto_common_v1_AnyValue_bytes_value_tag:
        out->kind = RAW_BYTES; out->ref = av->value.bytes_value; break;
    case opentelemetry_proto_common_v1_AnyValue_string_value_strindex_tag:
        out->kind = RAW_STRINDEX; out->i = av->value.string_value_strindex; break;
    default:
        out->kind = RAW_EMPTY; break;
    }
}

bool raw_any_value(pb_istream_t *is, struct raw_value *out)
{
    opentelemetry_proto_common_v1_AnyValue av;
    memset(&av, 0, sizeof av);
    if (!pb_decode_ex(is, opentelemetry_proto_common_v1_AnyValue_fields, &av, PB_DECODE_NOINIT))
        return false;
    raw_value_from_any(&av, out);
    return true;
}

bool raw_key_value(pb_istream_t *is, struct raw_key_value *out)
{
    opentelemetry_proto_common_v1_KeyValue kv;
    memset(&kv, 0, sizeof kv);
    if (!pb_decode_ex(is, opentelemetry_proto_common_v1_KeyValue_fields, &kv, PB_DECODE_NOINIT))
        return false;
    out->key = kv.key;
    out->key_strindex = kv.key_strindex;
    raw_value_from_any(&kv.value, &out->value);
    return true;
}

bool raw_resource_profiles(pb_istream_t *is, raw_each_fn attribute, raw_each_fn scope_profiles,
                           void *ctx, struct raw_resource_profiles *out)
{
    opentelemetry_proto_profiles_v1development_ResourceProfiles rp;
    struct raw_each attr_each, scope_each;
    memset(&rp, 0, sizeof rp);
    struct raw_each entity_each;
    raw_set_each(&rp.resource.attributes, &attr_each, attribute, ctx);
    raw_set_each(&rp.resource.entity_refs, &entity_each, out->entity_ref, ctx);
    raw_set_each(&rp.scope_profiles, &scope_each, scope_profiles, ctx);
    if (!pb_decode_ex(is, opentelemetry_proto_profiles_v1development_ResourceProfiles_fields, &rp, PB_DECODE_NOINIT))
        return false;
    out->schema_url = rp.schema_url;
    out->dropped_attributes_count = rp.resource.dropped_attributes_count;
    out->has_resource = rp.has_resource;
    return true;
}

bool raw_scope_profiles(pb_istream_t *is, raw_each_fn attribute, raw_each_fn profiles,
                        void *ctx, struct raw_scope_profiles *out)
{
    opentelemetry_proto_profiles_v1development_ScopeProfiles sp;
    struct raw_each attr_each, prof_each;
    memset(&sp, 0, sizeof sp);
    raw_set_each(&sp.scope.attributes, &attr_each, attribute, ctx);
    raw_set_each(&sp.profiles, &prof_each, profiles, ctx);
    if (!pb_decode_ex(is, opentelemetry_proto_profiles_v1development_ScopeProfiles_fields, &sp, PB_DECODE_NOINIT))
        return false;
    out->name = sp.scope.name;
    out->version = sp.scope.version;
    out->dropped_attributes_count = sp.scope.dropped_attributes_count;
    out->schema_url = sp.schema_url;
    return true;
}

/* A singular string held in a pb_callback_t (EntityRef's fields): its bytes, as a reference. */
static bool keep_ref(void *ctx, pb_ref_t el)
{
    *(pb_ref_t *)ctx = el;
    return true;
}

bool raw_entity_ref(pb_istream_t *is, raw_each_fn id_key, raw_each_fn description_key, void *ctx,
                    struct raw_entity_ref *out)
{
    opentelemetry_proto_common_v1_EntityRef er;
    struct raw_each schema_each, type_each, id_each, desc_each;
    memset(&er, 0, sizeof er);
    memset(out, 0, sizeof *out);
    raw_set_each(&er.schema_url, &schema_each, keep_ref, &out->schema_url);
    raw_set_each(&er.type, &type_each, keep_ref, &out->type);
    raw_set_each(&er.id_keys, &id_each, id_key, ctx);
    raw_set_each(&er.description_keys, &desc_each, description_key, ctx);
    return pb_decode_ex(is, opentelemetry_proto_common_v1_EntityRef_fields, &er, PB_DECODE_NOINIT);
}

bool raw_each_array_value(pb_istream_t *is, raw_each_fn fn, void *ctx)
{
    opentelemetry_proto_common_v1_ArrayValue av;
    struct raw_each each;
    memset(&av, 0, sizeof av);
    raw_set_each(&av.values, &each, fn, ctx);
    return pb_decode_ex(is, opentelemetry_proto_common_v1_ArrayValue_fields, &av, PB_DECODE_NOINIT);
}

bool raw_each_kvlist_value(pb_istream_t *is, raw_each_fn fn, void *ctx)
{
    opentelemetry_proto_common_v1_KeyValueList kl;
    struct raw_each each;
    memset(&kl, 0, sizeof kl);
    raw_set_each(&kl.values, &each, fn, ctx);
    return pb_decode_ex(is, opentelemetry_proto_common_v1_KeyValueList_fields, &kl, PB_DECODE_NOINIT);
}
