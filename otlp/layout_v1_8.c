/*
 * layout_v1_8.c - the v1.8 proto layout (ebpf-profiler tags v0.0.202539 to v0.0.202545).
 *
 * v1.8 has its own Profile (comment_strindices at 7 shifts profile_id .. attribute_indices to
 * 8-12), the v1.9 Sample, and a ValueType with aggregation_temporality (ignored: the view
 * has no place for it and v1.9 dropped it). The dictionary and everything in it decode with
 * the v1.11 decoders (pb/profiles_v1_8.proto).
 */
#include "otlp/layout.h"

#include <string.h>
#include <pb_decode.h>

#include "profiles_v1_8.pb.h"

#define M(name) lazybackend_layout_v1_8_##name

static bool decode(pb_istream_t *is, const pb_msgdesc_t *fields, void *msg)
{
    return pb_decode_ex(is, fields, msg, PB_DECODE_NOINIT);
}

static bool v18_profile_header(pb_istream_t *is, struct raw_profile *out)
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

static bool v18_profile_samples(pb_istream_t *is, raw_each_fn sample, void *ctx)
{
    M(Profile) p;
    struct raw_each each = { sample, ctx };
    memset(&p, 0, sizeof p);
    p.samples.funcs.decode = raw_each_element;
    p.samples.arg = &each;
    return decode(is, M(Profile_fields), &p);
}

static bool v18_sample(pb_istream_t *is, struct raw_sample *out)
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

/* Named callback for Profile's pb_ref_t fields (see otlp/pbref.h). */
PBREF_MESSAGE(lazybackend_layout_v1_8_Profile)

const struct otlp_layout otlp_layout_v1_8 = {
    .name = "v1.8",
    .parallel_values = true,
    .request = raw_request,
    .dictionary = otlp_v11_dictionary,
    .profile_header = v18_profile_header,
    .profile_samples = v18_profile_samples,
    .sample = v18_sample,
    .stack = otlp_v11_stack,
    .location = otlp_v11_location,
    .function = otlp_v11_function,
    .mapping = otlp_v11_mapping,
    .link = otlp_v11_link,
    .attribute = otlp_v11_attribute,
};
