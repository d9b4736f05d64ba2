/*
 * layout_v1_9.c - the v1.9 proto layout (ebpf-profiler tags v0.0.202547 to v0.0.202610).
 *
 * v1.9 differs from v1.10/v1.11 only in Sample (values 2, attribute_indices 3, link_index 4),
 * so this layout is v1.11's with its own sample decoder (pb/profiles_v1_9.proto).
 */
#include "otlp/layout.h"

#include <string.h>
#include <pb_decode.h>

#include "profiles_v1_9.pb.h"

static bool v19_sample(pb_istream_t *is, struct raw_sample *out)
{
    lazybackend_layout_v1_9_Sample s;
    memset(&s, 0, sizeof s);
    s.attribute_indices.funcs.decode = raw_push_int32;
    s.attribute_indices.arg = out->attribute_indices;
    s.values.funcs.decode = raw_push_int64;
    s.values.arg = out->values;
    s.timestamps_unix_nano.funcs.decode = raw_push_fixed64;
    s.timestamps_unix_nano.arg = out->timestamps;
    if (!pb_decode_ex(is, lazybackend_layout_v1_9_Sample_fields, &s, PB_DECODE_NOINIT))
        return false;
    out->stack_index = s.stack_index;
    out->link_index = s.link_index;
    return true;
}

const struct otlp_layout otlp_layout_v1_9 = {
    .name = "v1.9",
    .parallel_values = true,
    .request = raw_request,
    .dictionary = otlp_v11_dictionary,
    .profile_header = otlp_v11_profile_header,
    .profile_samples = otlp_v11_profile_samples,
    .sample = v19_sample,
    .stack = otlp_v11_stack,
    .location = otlp_v11_location,
    .function = otlp_v11_function,
    .mapping = otlp_v11_mapping,
    .link = otlp_v11_link,
    .attribute = otlp_v11_attribute,
};
