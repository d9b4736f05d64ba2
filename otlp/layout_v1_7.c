/*
 * layout_v1_7.c - the v1.7 proto layout (ebpf-profiler tags v0.0.202527 to v0.0.202536).
 *
 * The oldest layout with a request-level dictionary, mapped onto the same raw structs as the
 * newer ones (pb/profiles_v1_7.proto):
 *  - there is no stack table: a sample is the slice [locations_start_index, +locations_length)
 *    of its Profile's location_indices, which profile_header hands to the resolver;
 *  - attribute_table holds plain KeyValues (inline key, no unit); the separate
 *    attribute_units table is not read;
 *  - sample_type is repeated: the view takes sample_type[default_sample_type_index] (the
 *    first one when that index is out of range or past the first 8 entries);
 *  - times are int64 varints; timestamps are uint64 varints;
 *  - mapping_index and link_index are proto3 `optional`: an explicit 0 is entry 0.
 */
#include "otlp/layout.h"

#include <string.h>
#include <pb_decode.h>

#include "common.pb.h"
#include "profiles.pb.h"
#include "profiles_v1_7.pb.h"

#define M(name) lazybackend_layout_v1_7_##name

static bool decode(pb_istream_t *is, const pb_msgdesc_t *fields, void *msg)
{
    return pb_decode_ex(is, fields, msg, PB_DECODE_NOINIT);
}

static bool v17_dictionary(pb_istream_t *is, struct dict_tables *tables)
{
    M(ProfilesDictionary) d;
    memset(&d, 0, sizeof d);
    pb_callback_t *cbs[DICT_TABLES] = {
        [DICT_MAPPING] = &d.mapping_table, [DICT_LOCATION] = &d.location_table,
        [DICT_FUNCTION] = &d.function_table, [DICT_LINK] = &d.link_table,
        [DICT_STRING] = &d.string_table, [DICT_ATTRIBUTE] = &d.attribute_table,
        [DICT_STACK] = NULL,   /* none in v1.7; attribute_units (7) is skipped */
    };
    struct dict_table_sink sinks[DICT_TABLES];
    for (int t = 0; t < DICT_TABLES; t++) {
        if (!cbs[t])
            continue;
        sinks[t] = (struct dict_table_sink){ tables, (enum dict_table)t };
        cbs[t]->funcs.decode = dict_push_entry;
        cbs[t]->arg = &sinks[t];
    }
    return decode(is, M(ProfilesDictionary_fields), &d);
}

#define MAX_SAMPLE_TYPES 8
struct sample_types {
    struct raw_value_type v[MAX_SAMPLE_TYPES];
    size_t n;
};

static bool push_sample_type(pb_istream_t *is, const pb_field_t *f, void **arg)
{
    (void)f;
    struct sample_types *st = *arg;
    M(ValueType) vt;
    memset(&vt, 0, sizeof vt);
    if (!decode(is, M(ValueType_fields), &vt))
        return false;
    if (st->n < MAX_SAMPLE_TYPES)
        st->v[st->n] = (struct raw_value_type){ vt.type_strindex, vt.unit_strindex };
    if (st->n < SIZE_MAX)
        st->n++;
    return true;
}

static bool v17_profile_header(pb_istream_t *is, struct raw_profile *out)
{
    M(Profile) p;
    struct sample_types st;
    memset(&p, 0, sizeof p);
    memset(&st, 0, sizeof st);
    p.sample_type.funcs.decode = push_sample_type;
    p.sample_type.arg = &st;
    p.attribute_indices.funcs.decode = raw_push_int32;
    p.attribute_indices.arg = out->attribute_indices;
    if (out->location_indices) {
        p.location_indices.funcs.decode = raw_push_int32;
        p.location_indices.arg = out->location_indices;
    }
    if (!decode(is, M(Profile_fields), &p))
        return false;
    size_t limit = st.n < MAX_SAMPLE_TYPES ? st.n : MAX_SAMPLE_TYPES;
    if (limit > 0) {
        size_t pick = p.default_sample_type_index >= 0 && (size_t)p.default_sample_type_index < limit
                          ? (size_t)p.default_sample_type_index : 0;
        out->sample_type = st.v[pick];
    }
    out->period_type = (struct raw_value_type){ p.period_type.type_strindex, p.period_type.unit_strindex };
    out->time_unix_nano = (uint64_t)p.time_nanos;
    out->duration_nano = (uint64_t)p.duration_nanos;
    out->period = p.period;
    out->profile_id = p.profile_id;
    out->dropped_attributes_count = p.dropped_attributes_count;
    out->original_payload_format = p.original_payload_format;
    out->original_payload = p.original_payload;
    return true;
}

static bool v17_profile_samples(pb_istream_t *is, raw_each_fn sample, void *ctx)
{
    M(Profile) p;
    struct raw_each each = { sample, ctx };
    memset(&p, 0, sizeof p);
    p.sample.funcs.decode = raw_each_element;
    p.sample.arg = &each;
    return decode(is, M(Profile_fields), &p);
}

static bool v17_sample(pb_istream_t *is, struct raw_sample *out)
{
    M(Sample) s;
    memset(&s, 0, sizeof s);
    s.attribute_indices.funcs.decode = raw_push_int32;
    s.attribute_indices.arg = out->attribute_indices;
    s.value.funcs.decode = raw_push_int64;
    s.value.arg = out->values;
    s.timestamps_unix_nano.funcs.decode = raw_push_uint64;
    s.timestamps_unix_nano.arg = out->timestamps;
    if (!decode(is, M(Sample_fields), &s))
        return false;
    out->locations_start = s.locations_start_index;
    out->locations_length = s.locations_length;
    out->link_index = s.link_index;
    out->link_explicit = s.has_link_index;
    return true;
}

static bool v17_location(pb_istream_t *is, struct raw_location *out)
{
    M(Location) l;
    memset(&l, 0, sizeof l);
    l.line.funcs.decode = otlp_v11_push_line;   /* Line is wire-identical to v1.11 */
    l.line.arg = out->lines;
    l.attribute_indices.funcs.decode = raw_push_int32;
    l.attribute_indices.arg = out->attribute_indices;
    if (!decode(is, M(Location_fields), &l))
        return false;
    out->mapping_index = l.mapping_index;
    out->mapping_explicit = l.has_mapping_index;
    out->address = l.address;
    return true;
}

static bool v17_mapping(pb_istream_t *is, struct raw_mapping *out)
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

/* attribute_table entries are common KeyValues: the key is inline, there is no unit. */
static bool v17_attribute(pb_istream_t *is, struct raw_attribute *out)
{
    struct raw_key_value kv;
    memset(&kv, 0, sizeof kv);
    if (!raw_key_value(is, &kv))
        return false;
    memset(out, 0, sizeof *out);
    out->key = kv.key;
    out->key_strindex = kv.key_strindex;
    out->value = kv.value;
    return true;
}

/* Named callback for Profile's pb_ref_t fields (see otlp/pbref.h). */
PBREF_MESSAGE(lazybackend_layout_v1_7_Profile)

const struct otlp_layout otlp_layout_v1_7 = {
    .name = "v1.7",
    .parallel_values = false,
    .request = raw_request,
    .dictionary = v17_dictionary,
    .profile_header = v17_profile_header,
    .profile_samples = v17_profile_samples,
    .sample = v17_sample,
    .stack = NULL,
    .location = v17_location,
    .function = otlp_v11_function,
    .mapping = v17_mapping,
    .link = otlp_v11_link,
    .attribute = v17_attribute,
};
