/*
 * pbref.h - zero-copy references into the request buffer, for nanopb.
 *
 * Every singular string/bytes field of our .proto files is generated as a pb_ref_t (nanopb
 * `callback_datatype`) instead of a copied char array: the request buffer outlives the whole
 * decode of that request, so a pointer and a length are all a field needs. The named
 * callbacks that fill them live in otlp/pbref.c; they refuse any stream that is not a view of
 * the request buffer, so a reference can never point into a temporary.
 */
#ifndef LB_PBREF_H
#define LB_PBREF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <pb.h>
#include <pb_decode.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} pb_ref_t;

/* A pb_istream_t over [p, p+n) whose every substream stays a view of that memory. nanopb
 * copies streams by value, so the read position lives beside the stream, here:
 *     struct pbref_stream s; pbref_open(&s, p, n); pb_decode(&s.is, fields, &msg);  */
struct pbref_stream {
    pb_istream_t is;
    const uint8_t *pos;
};
void pbref_open(struct pbref_stream *s, const uint8_t *p, size_t n);
static inline void pbref_open_ref(struct pbref_stream *s, pb_ref_t r) { pbref_open(s, r.p, r.n); }

/* The read position of a stream made by pbref_istream (or one of its substreams). */
const uint8_t *pbref_pos(const pb_istream_t *is);

/* True when `is` reads the request buffer itself (not a nanopb stack copy). */
bool pbref_is_view(const pb_istream_t *is);

/* Skips n bytes of a view (pbref_is_view): pb_read(is, NULL, n) would copy them 16 bytes per
 * callback into a scratch buffer, which was a quarter of the decoder's time. */
bool pbref_skip(pb_istream_t *is, size_t n);

/* Shared body of every generated `<Message>_callback`: singular fields are captured as
 * pb_ref_t (setting the oneof discriminator for oneof members), repeated fields are handed
 * to their pb_callback_t. */
bool pbref_field_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_t *field);

/* Defines the named callback nanopb calls for `msg`: one per message with pb_ref_t fields,
 * each beside the code that decodes that message (pbref.c, traces.c, the layouts). */
#define PBREF_MESSAGE(msg) \
    bool msg##_callback(pb_istream_t *is, pb_ostream_t *os, const pb_field_t *field) \
    { return pbref_field_callback(is, os, field); }

#endif
