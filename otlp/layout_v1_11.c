/*
 * layout_v1_11.c - the v1.10/v1.11 proto layout (what the eBPF profiler sends since agent tag
 * v0.0.202613; v1.11.0 is wire-identical to v1.10.0). Field numbers live in pb/profiles.proto;
 * this file only maps the generated nanopb structs onto the layout-neutral raw structs. Its
 * message decoders are exported (otlp_v11_*) because older layouts share most messages with
 * it on the wire and reuse them.
 */
#include "otlp/layout.h"

#include <string.h>
#include <pb_decode.h>

#include "profiles.pb.h"

#define M(name) opentelemetry_proto_profiles_v1development_##name

static bool decode(pb_istream_t *is, const pb_msgdesc_t *fields, void *msg)
{
    return pb_decode_ex(is, fields, msg, PB_DECODE_NOINIT);
}

bool otlp_v11_dictionary(pb_istream_t *is, struct dict_tables *tables)
{
    M(ProfilesDictionary) d;
    memset(&d, 0, sizeof d);
    pb_callback_t *cbs[DICT_TABLES] = {
        [DICT_MAPPING] = &d.mapping_table, [DICT_LOCATION] = &d.location_table,
        [DICT_FUNCTION] = &d.function_table, [DICT_LINK] = &d.link_table,
        [DICT_STRING] = &d.string_table, [DICT_ATTRIBUTE] = &d.attribute_table,
        [DICT_STACK] = &d.stack_table,
    };
    struct dict_table_sink sinks[DICT_TABLES];
    for (int t = 0; t < DICT_TABLES; t++) {
        sinks[t] = (struct dict_table_sink){ tables, (enum dict_table)t };
        cbs[t]->funcs.decode = dict_push_entry;
        cbs[t]->arg = &sinks[t];
    }
    return decode(is, M(ProfilesDictionary_fields), &d);
}

bool otlp_v11_profile_header(pb_istream_t *is, struct raw_profile *out)
{
    M(Profile) p;
    memset(&p, 0, sizeof p);
    p.attribute_indices.funcs.decode = raw_push_int32;
    p.attribute_indices.arg = out->attribute_indices;
    if (!decode(is, M(Profile_fields), &p))
        return false;
    out->sample_type = (struct raw_value_type){ p.sample_type.type_strindex, p.sample_type.unit_strindex };
    out->period_type = (struct raw_value_type){ p.period_type.type_strindex, p.period_type.unit_strindex };
    out->time_unix_nano = p.time_unix_nano;
    out->duration_nano = p.duration_nano;
    out->period = p.period;
    out->profile_id = p.profile_id;
    out->dropped_attributes_count = p.dropped_attributes_count;
    out->original_payload_format = p.original_payload_format;
    out->original_payload = p.original_payload;
    return true;
}

bool otlp_v11_profile_samples(pb_istream_t *is, raw_each_fn sample, void *ctx)
{
    M(Profile) p;
    struct raw_each each = { sample, ctx };
    memset(&p, 0, sizeof p);
    p.samples.funcs.decode = raw_each_element;
    p.samples.arg = &each;
    return decode(is, M(Profile_fields), &p);
}

static bool v11_sample(pb_istream_t *is, struct raw_sample *out)
{
    M(Sample) s;
    memset(&s, 0, sizeof s);
    s.attribute_indices.funcs.decode = raw_push_int32;
    s.attribute_indices.arg = out->attribute_indices;
    s.values.funcs.decode = raw_push_int64;
    s.values.arg = out->values;
    s.timestamps_unix_nano.funcs.decode = raw_push_fixed64;
    s.timestamps_unix_nano.arg = out->timestamps;
    if (!decode(is, M(Sample_fields), &s))
        return false;
    out->stack_index = s.stack_index;
    out->link_index = s.link_index;
    return true;
}

bool otlp_v11_stack(pb_istream_t *is, ivec *location_indices)
{
    M(Stack) s;
    memset(&s, 0, sizeof s);
    s.location_indices.funcs.decode = raw_push_int32;
    s.location_indices.arg = location_indices;
    return decode(is, M(Stack_fields), &s);
}

bool otlp_v11_push_line(pb_istream_t *is, const pb_field_t *f, void **arg)
{
    (void)f;
    linevec *lines = *arg;
    M(Line) l;
    memset(&l, 0, sizeof l);
    if (!decode(is, M(Line_fields), &l))
        return false;
    struct raw_line rl = { l.function_index, l.line, l.column };
    if (!VEC_PUSH(*lines, rl))
        PB_RETURN_ERROR(is, "out of memory");
    return true;
}

bool otlp_v11_location(pb_istream_t *is, struct raw_location *out)
{
    M(Location) l;
    memset(&l, 0, sizeof l);
    l.lines.funcs.decode = otlp_v11_push_line;
    l.lines.arg = out->lines;
    l.attribute_indices.funcs.decode = raw_push_int32;
    l.attribute_indices.arg = out->attribute_indices;
    if (!decode(is, M(Location_fields), &l))
        return false;
    out->mapping_index = l.mapping_index;
    out->address = l.address;
    return true;
}

bool otlp_v11_function(pb_istream_t *is, struct raw_function *out)
{
    M(Function) fn;
    memset(&fn, 0, sizeof fn);
    if (!decode(is, M(Function_fields), &fn))
        return false;
    *out = (struct raw_function){ fn.name_strindex, fn.system_name_strindex, fn.filename_strindex, fn.start_line };
    return true;
}

bool otlp_v11_mapping(pb_istream_t *is, struct raw_mapping *out)
{
    M(Mapping) m;
    memset(&m, 0, sizeof m);
    m.attribute_indices.funcs.decode = raw_push_int32;
    m.attribute_indices.arg = out->attribute_indices;
    if (!decode(is, M(Mapping_fields), &m))
        return false;
    out->memory_start = m.memory_start;
    out->memory_limit = m.memory_limit;
    out->file_offset = m.file_offset;
    out->filename_strindex = m.filename_strindex;
    return true;
}

bool otlp_v11_link(pb_istream_t *is, struct raw_link *out)
{
    M(Link) l;
    memset(&l, 0, sizeof l);
    if (!decode(is, M(Link_fields), &l))
        return false;
    out->trace_id = l.trace_id;
    out->span_id = l.span_id;
    return true;
}

bool otlp_v11_attribute(pb_istream_t *is, struct raw_attribute *out)
{
    M(KeyValueAndUnit) kv;
    memset(&kv, 0, sizeof kv);
    if (!decode(is, M(KeyValueAndUnit_fields), &kv))
        return false;
    memset(out, 0, sizeof *out);
    out->key_strindex = kv.key_strindex;
    out->unit_strindex = kv.unit_strindex;
    raw_value_from_any(&kv.value, &out->value);
    return true;
}

const struct otlp_layout otlp_layout_v1_11 = {
    .name = "v1.11",
    .parallel_values = true,
    .request = raw_request,
    .dictionary = otlp_v11_dictionary,
    .profile_header = otlp_v11_profile_header,
    .profile_samples = otlp_v11_profile_samples,
    .sample = v11_sample,
    .stack = otlp_v11_stack,
    .location = otlp_v11_location,
    .function = otlp_v11_function,
    .mapping = otlp_v11_mapping,
    .link = otlp_v11_link,
    .attribute = otlp_v11_attribute,
};
