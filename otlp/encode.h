/*
 * encode.h - the OTLP profiles encoder: resolved views (view.h) in, an
 * ExportProfilesServiceRequest in the v1.11 layout out.
 *
 * It is a consumer of the profiles events (events.h), so whatever emits them (the decoder, a
 * store replaying what it kept) can be written back as OTLP. The dictionary is rebuilt from
 * the resolved content: equal strings, attributes, functions, mappings, locations, stacks and
 * links get one entry each, so indices and table order differ from the original request but
 * every sample resolves to the same content (docs/export.md says what is kept).
 *
 * Requests given as events are gathered until otlp_encoder_finish: several of them become one
 * request (their resources one after the other), which is how `export --batch` works.
 */
#ifndef LB_OTLP_ENCODE_H
#define LB_OTLP_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "otlp/events.h"

struct otlp_encoder;

/* max_bytes bounds the request being built (and each of its parts). NULL: out of memory. */
struct otlp_encoder *otlp_encoder_new(size_t max_bytes);
void otlp_encoder_free(struct otlp_encoder *e);

/* The consumer that feeds it (admit always accepts; request_end never fails: errors are kept
 * for otlp_encoder_finish). */
struct otlp_consumer otlp_encoder_consumer(struct otlp_encoder *e);

/* Resources gathered since the last finish. */
size_t otlp_encoder_resources(const struct otlp_encoder *e);

/* Writes the gathered request into out (replacing its contents) and starts a new one.
 * 0, or -1 with the reason in err (the request grew past max_bytes, out of memory). */
int otlp_encoder_finish(struct otlp_encoder *e, struct buf *out, char *err, size_t errlen);

#endif
