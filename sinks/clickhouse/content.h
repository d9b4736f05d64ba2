/*
 * content.h - a request's resources, scopes and profiles as one string: the `content` column
 * of the ClickHouse sink's requests table, written by rows.c and read back by export.c, so
 * that `export --clickhouse-url` gives back what the samples table does not hold (empty
 * resources and profiles, every field of a resource, scope and profile).
 *
 * A sequence of items, each a tag byte then its fields (LEB128 lengths and counts,
 * little-endian fixed integers, attribute lists as sinks/attrblob.h strings):
 *   'R' resource: attributes, dropped count, schema_url
 *   'E' one of its entity refs, in order, right after its 'R': schema_url, type, the count of
 *       id keys and each key, the count of description keys and each key (items of this tag
 *       exist since entity refs are kept; content without them reads as before)
 *   'P' profile:  its scope's index, name, version, schema_url, attributes and dropped count;
 *                 sample type and unit, period type and unit, period, time, duration, profile
 *                 id, dropped count, original payload format and bytes, attributes
 * A profile belongs to the last resource before it.
 */
#ifndef LB_SINKS_CH_CONTENT_H
#define LB_SINKS_CH_CONTENT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "otlp/view.h"

/* Append one item to out (scratch: reused); false when out of memory or past out's limit.
 * A resource is its 'R' item and an 'E' item per entity ref. */
bool ch_content_resource(struct buf *out, struct buf *scratch, const struct lb_resource *r);
bool ch_content_profile(struct buf *out, struct buf *scratch, const struct lb_profile *p);

/* One item read back: the strings point into the content; attribute lists are attrblob
 * strings. */
struct ch_content_item {
    char tag;                           /* 'R', 'E' or 'P' */
    lb_str attrs, schema_url;           /* the resource's, or the profile's attributes; the
                                         * entity ref's schema_url */
    lb_str entity_type;                 /* 'E': its type, and its keys as ch_content_keys reads */
    lb_str id_keys, description_keys;
    uint32_t n_id_keys, n_description_keys;
    uint32_t dropped;
    uint32_t scope_index;
    struct lb_scope scope;              /* attrs left empty: scope_attrs holds them */
    lb_str scope_attrs;
    lb_str sample_type, sample_unit, period_type, period_unit, profile_id, payload_format, payload;
    int64_t period;
    uint64_t time_unix_nano, duration_nano;
};

/* Reads the next item from *pos (below end): 1 read, 0 at the end, -1 malformed. */
int ch_content_next(const uint8_t **pos, const uint8_t *end, struct ch_content_item *it);

/* The n keys of an 'E' item's id_keys or description_keys (as ch_content_next checked them)
 * into out, pointing into the content. */
void ch_content_keys(lb_str keys, lb_str *out, uint32_t n);

#endif
