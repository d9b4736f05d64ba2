/*
 * pbref.c - nanopb streams over the request buffer, and the named callbacks that turn every
 * singular string/bytes field into a pb_ref_t (a pointer into that buffer) instead of a copy.
 *
 * Why a custom stream and not pb_istream_from_buffer: a callback only sees a pb_istream_t.
 * For a length-delimited field the stream is a view of our buffer and the bytes can be
 * referenced in place; but nanopb hands a *scalar* that arrives on a field we declared as a
 * string (a hostile wire type) to the same callback through a temporary stack copy. A
 * reference to that copy would dangle. With our own read function, `is->callback` tells the
 * two apart and the copy case is refused as a malformed message.
 */
#include "otlp/pbref.h"

#include <string.h>
#include <pb_decode.h>

#include "common.pb.h"
#include "profiles.pb.h"

static bool pbref_read(pb_istream_t *is, pb_byte_t *buf, size_t count)
{
    /* nanopb checked count <= bytes_left, and bytes_left never exceeds the buffer. */
    const uint8_t **pos = is->state;
    if (buf)
        memcpy(buf, *pos, count);
    *pos += count;
    return true;
}

void pbref_open(struct pbref_stream *s, const uint8_t *p, size_t n)
{
    s->pos = p;
    s->is = (pb_istream_t){ .callback = pbref_read, .state = &s->pos, .bytes_left = n };
}

bool pbref_is_view(const pb_istream_t *is)
{
    return is->callback == pbref_read;
}

bool pbref_skip(pb_istream_t *is, size_t n)
{
    if (n > is->bytes_left)
        PB_RETURN_ERROR(is, "end-of-stream");
    *(const uint8_t **)is->state += n;
    is->bytes_left -= n;
    return true;
}

const uint8_t *pbref_pos(const pb_istream_t *is)
{
    return *(const uint8_t *const *)is->state;
}

bool pbref_field_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_t *field)
{
    if (!is)
        return true;   /* encoding: we never encode these messages */
    (void)os;
    if (PB_HTYPE(field->type) == PB_HTYPE_REPEATED)
        return pb_default_field_callback(is, os, field);
    if (!pbref_is_view(is))
        PB_RETURN_ERROR(is, "wrong wire type for a string/bytes field");
    pb_ref_t *ref = field->pData;
    ref->p = pbref_pos(is);
    ref->n = is->bytes_left;
    if (PB_HTYPE(field->type) == PB_HTYPE_ONEOF)
        *(pb_size_t *)field->pSize = field->tag;   /* nanopb leaves this to us */
    return pbref_skip(is, is->bytes_left);
}

/* One named callback per message that has pb_ref_t fields (nanopb calls them by name). */
PBREF_MESSAGE(opentelemetry_proto_common_v1_AnyValue)
PBREF_MESSAGE(opentelemetry_proto_common_v1_KeyValue)
PBREF_MESSAGE(opentelemetry_proto_common_v1_InstrumentationScope)
PBREF_MESSAGE(opentelemetry_proto_profiles_v1development_ResourceProfiles)
PBREF_MESSAGE(opentelemetry_proto_profiles_v1development_ScopeProfiles)
PBREF_MESSAGE(opentelemetry_proto_profiles_v1development_Profile)
PBREF_MESSAGE(opentelemetry_proto_profiles_v1development_Link)
