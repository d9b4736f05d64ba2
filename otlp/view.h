/*
 * view.h - the resolved view of OTLP profiles: what every sink sees.
 *
 * The decoder (otlp/decode.c) walks a request and, for each sample, follows every index into
 * the request's dictionary and fills these structs. Sinks read them and know nothing of
 * protobuf, field numbers or proto layouts: adding a layout, or a transport, changes nothing
 * here.
 *
 * Lifetime: every pointer in a view (strings included: they are references into the request
 * buffer, not copies) is valid only during the sink call that receives it, or, for the
 * request, resource and profile structs, until the matching *_end call. A sink that keeps
 * data longer copies it.
 */
#ifndef LB_OTLP_VIEW_H
#define LB_OTLP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A string as sent: not NUL-terminated, may hold any bytes (sinks escape when printing). */
typedef struct {
    const char *p;
    size_t n;
} lb_str;

#define LB_STR_NULL ((lb_str){ "", 0 })
#define LB_STR_LIT(s) ((lb_str){ (s), sizeof(s) - 1 })

static inline bool lb_str_eq(lb_str a, const char *lit, size_t litlen)
{
    return a.n == litlen && (litlen == 0 || __builtin_memcmp(a.p, lit, litlen) == 0);
}
#define LB_STR_EQ(a, lit) lb_str_eq((a), (lit), sizeof(lit) - 1)

enum lb_value_kind {
    LB_VALUE_EMPTY,   /* an AnyValue with no member set */
    LB_VALUE_STRING,  /* string_value, or string_value_strindex resolved */
    LB_VALUE_BOOL,
    LB_VALUE_INT,
    LB_VALUE_DOUBLE,
    LB_VALUE_BYTES,
    LB_VALUE_ARRAY,   /* walk with lb_array_next */
    LB_VALUE_KVLIST,  /* walk with lb_kvlist_next */
};

struct lb_dict;   /* the request's dictionary, opaque to sinks */

struct lb_value {
    enum lb_value_kind kind;
    union {
        lb_str str;     /* STRING, BYTES; ARRAY and KVLIST keep their encoded form here */
        bool boolean;
        int64_t integer;
        double dbl;
    } u;
    const struct lb_dict *dict;  /* resolves string indices inside arrays and kvlists */
    unsigned depth;              /* nesting level: 0 for an attribute's own value */
};

/* Arrays and kvlists nested deeper than this are not walked (lb_*_next sets `err`), so a
 * recursive printer's depth is bounded whatever the sender nests. */
#define LB_VALUE_MAX_DEPTH 16

struct lb_attr {
    lb_str key;
    struct lb_value value;
    lb_str unit;      /* KeyValueAndUnit.unit; empty when none */
};

struct lb_attrs {
    const struct lb_attr *v;
    size_t n;
};

/* Iterating an ARRAY or KVLIST value. Nested values are bounded in depth; a malformed
 * nested encoding ends the walk and sets `err`. */
struct lb_value_iter {
    const uint8_t *pos, *end;
    const struct lb_dict *dict;
    unsigned depth;
    const char *err;
};
void lb_value_iter_init(struct lb_value_iter *it, const struct lb_value *container);
bool lb_array_next(struct lb_value_iter *it, struct lb_value *out);
bool lb_kvlist_next(struct lb_value_iter *it, lb_str *key, struct lb_value *out);

/* An ARRAY or KVLIST value's content as a self-contained ArrayValue / KeyValueList encoding
 * (string indices resolved, strings inline), into out (reset first; its limit bounds it), for
 * a sink that keeps the value to give it back later: a value of the same kind whose u.str holds
 * these bytes (dict NULL) walks the same. False for other kinds, a malformed or too deep value,
 * or past the limit. (otlp/encode.c) */
struct buf;
bool lb_value_encode(const struct lb_value *v, struct buf *out);

/* Looks up a key; NULL when absent. */
const struct lb_attr *lb_attrs_find(struct lb_attrs attrs, const char *key);

/* A field of the request that its proto layout does not have (otlp/detect.h). Protobuf keeps
 * going past unknown fields, and so does lazybackend: the request is read as usual, and these
 * are shown and stored so that nothing the sender sent is lost. */
struct lb_unknown_field {
    lb_str path;        /* where: "resource_profiles[0].scope_profiles[0].profiles[1].samples[3]";
                         * empty for the request itself */
    lb_str message;     /* the message it is in: "Sample" */
    uint32_t number;
    uint8_t wire_type;  /* 0 VARINT, 1 I64, 2 LEN, 5 I32 */
    lb_str raw;         /* its bytes as sent (LEN: the payload; otherwise the value's encoding) */
    lb_str decoded;     /* what the wire tells of it: "42", "\"text\"", "message {1: VARINT}",
                         * "bytes 0a1b" */
};

/* "VARINT", "I64", "LEN", "I32". */
const char *lb_wire_type_name(uint8_t wire_type);

/* What a request carries: which OTLP service it was sent to. */
enum lb_signal { LB_SIGNAL_PROFILES, LB_SIGNAL_TRACES };

/* Which transport and proto layout a request came with. */
struct lb_request {
    const char *transport;      /* "grpc", "http", "file" */
    const char *peer;           /* "127.0.0.1:53412", a file name, or "-" */
    const char *layout;         /* "v1.11" etc.: the proto layout the bytes were read as */
    uint64_t received_unix_nano;
    size_t wire_bytes;          /* as received (compressed) */
    size_t message_bytes;       /* decoded protobuf size */
    uint64_t sequence;          /* per process, increasing */
    /* Set by the decoder: the fields its layout does not have. The first n_unknown_fields
     * (at most 32) are described; unknown_fields_total counts them all. */
    const struct lb_unknown_field *unknown_fields;
    size_t n_unknown_fields;
    uint64_t unknown_fields_total;
    /* Set by the decoders: the request's message as received once decompressed (for OTLP/JSON,
     * the protobuf it was transcoded to), message_bytes long, and its signal. Opaque bytes for
     * a sink that passes requests on unchanged (the forward sink): sinks never parse them.
     * Valid until request_end or request_abort. */
    const uint8_t *message;
    enum lb_signal signal;
};

/* Resource.entity_refs (common.proto, since v1.6). */
struct lb_entity_ref {
    lb_str schema_url, type;
    const lb_str *id_keys;
    size_t n_id_keys;
    const lb_str *description_keys;
    size_t n_description_keys;
};

struct lb_resource {
    const struct lb_request *request;
    unsigned index;             /* position in the request */
    struct lb_attrs attrs;
    uint32_t dropped_attributes_count;
    lb_str schema_url;
    const struct lb_entity_ref *entity_refs;
    size_t n_entity_refs;
};

struct lb_scope {
    lb_str name, version, schema_url;
    struct lb_attrs attrs;
    uint32_t dropped_attributes_count;
};

/* A ValueType. aggregation_temporality exists in v1.7 and v1.8 only (0 otherwise). */
struct lb_value_type {
    lb_str type, unit;
    int32_t aggregation_temporality;
};

struct lb_profile {
    const struct lb_resource *resource;
    const struct lb_scope *scope;
    unsigned scope_index, index;   /* position in the resource, in the scope */
    lb_str sample_type, sample_unit;
    lb_str period_type, period_unit;
    int64_t period;
    uint64_t time_unix_nano;
    uint64_t duration_nano;
    lb_str profile_id;             /* raw bytes, 16 or empty */
    uint32_t dropped_attributes_count;
    lb_str original_payload_format;
    size_t original_payload_len;
    lb_str original_payload;       /* the raw bytes (original_payload_len of them) */
    struct lb_attrs attrs;
    /* aggregation_temporality of sample_type and period_type (v1.7, v1.8; else 0) */
    int32_t sample_aggregation_temporality, period_aggregation_temporality;
    /* Every sample type as sent: v1.7 sends a list and names the default one (sample_type
     * above is sample_types[default_sample_type_index]); later layouts send one, which is
     * then the only entry, default index 0. */
    const struct lb_value_type *sample_types;
    size_t n_sample_types;
    int32_t default_sample_type_index;
    const lb_str *comments;        /* comment_strindices resolved (v1.7, v1.8) */
    size_t n_comments;
};

/* A location's mapping, shared by the frames of every location that names it (the decoder's
 * memo of the mapping, for the request's lifetime). */
struct lb_mapping {
    lb_str file;
    uint64_t start, limit, offset;
    lb_str build_id;               /* preferred build id of the mapping: gnu, go, htlhash */
    lb_str build_id_kind;          /* "gnu", "go", "htlhash" or empty */
    struct lb_attrs attrs;         /* every attribute of the mapping (every build id) */
    uint8_t flags;                 /* Mapping.has_* (v1.7): LB_MAPPING_HAS_* bits */
};

/* Every field empty: the mapping of a frame that has none. */
extern const struct lb_mapping lb_no_mapping;

/* One frame per Line of a location (inlined functions included); one frame for a location
 * without lines (an unsymbolized frame). Kept small: a stack's frames are copied into each
 * new stack that has them, and the sinks read them all; the mapping's fields, the same for
 * every frame of a mapping, are behind a pointer (232 bytes a frame before, 136 now). */
struct lb_frame {
    lb_str type;                   /* profile.frame.type; empty when the location has none */
    lb_str function, system_name, file;
    int64_t line, column, start_line;
    uint64_t address;
    const struct lb_mapping *mapping;  /* NULL when the frame has none: read it with lb_mapping_of */
    struct lb_attrs location_attrs;   /* every attribute of the location (frame type included) */
    uint32_t location_index;       /* request-local; equal indices = same location */
    uint16_t line_index;           /* position of this line inside its location */
    uint16_t line_count;           /* lines in the location (0 for unsymbolized) */
    bool symbolized;               /* the location has lines */
    bool has_mapping;              /* the location names a mapping (mapping may still be empty) */
    bool is_folded;                /* Location.is_folded (v1.7) */
};

/* The frame's mapping: all empty when it has none. */
static inline const struct lb_mapping *lb_mapping_of(const struct lb_frame *f)
{
    return f->mapping ? f->mapping : &lb_no_mapping;
}

enum {
    LB_MAPPING_HAS_FUNCTIONS = 1, LB_MAPPING_HAS_FILENAMES = 2, LB_MAPPING_HAS_LINE_NUMBERS = 4,
    LB_MAPPING_HAS_INLINE_FRAMES = 8,
};

/* The build-id kind of a mapping attribute key ("gnu" for process.executable.build_id.gnu...),
 * or an empty string when the key is not a build id. */
lb_str lb_build_id_kind(lb_str key);

struct lb_sample {
    const struct lb_profile *profile;
    unsigned index;                /* position in the profile */
    uint32_t stack_index;          /* request-local */
    uint32_t stack_id;             /* request-local: samples with the same non-zero id have the
                                    * same frames (one resolved stack); 0: not known to be shared */
    const uint64_t *timestamps;    /* Sample.timestamps_unix_nano, as sent (not sorted) */
    size_t n_timestamps;
    const int64_t *values;
    size_t n_values;
    struct lb_attrs attrs;
    bool has_link;
    lb_str trace_id, span_id;      /* raw bytes */
    const struct lb_frame *frames; /* leaf first */
    size_t n_frames;
};

/* How many frames from f[0] (of `left`) form one location: the lines of a symbolized location
 * come together, line_index 0 first; any other frame is a location of its own. */
size_t lb_location_span(const struct lb_frame *f, size_t left);

/* The weight a sample stands for: the sum of its values, or its timestamp count. */
int64_t lb_sample_weight(const struct lb_sample *s);

/* ---- Traces (OTLP trace v1): the resolved view of one span ----
 *
 * A trace request reuses lb_request, lb_resource and lb_scope; each span is handed to the
 * sinks whole, with its events and links. Ids are raw bytes (sinks print them as hex); every
 * span a sink sees has a 16-byte trace id and an 8-byte span id, neither all zero, and a
 * parent span id of 0 or 8 bytes (otlp/traces.c rejects the others). Lifetimes as above:
 * valid during the `span` call only. */

/* Span.SpanKind and Status.StatusCode values; other numbers are passed on as sent. */
enum lb_span_kind {
    LB_SPAN_KIND_UNSPECIFIED = 0, LB_SPAN_KIND_INTERNAL = 1, LB_SPAN_KIND_SERVER = 2,
    LB_SPAN_KIND_CLIENT = 3, LB_SPAN_KIND_PRODUCER = 4, LB_SPAN_KIND_CONSUMER = 5,
};
enum lb_status_code { LB_STATUS_UNSET = 0, LB_STATUS_OK = 1, LB_STATUS_ERROR = 2 };

struct lb_span_event {
    uint64_t time_unix_nano;
    lb_str name;
    struct lb_attrs attrs;
    uint32_t dropped_attributes_count;
};

struct lb_span_link {
    lb_str trace_id, span_id;      /* raw bytes (not checked: a link may point anywhere) */
    lb_str trace_state;
    uint32_t flags;
    struct lb_attrs attrs;
    uint32_t dropped_attributes_count;
};

struct lb_span {
    const struct lb_resource *resource;
    const struct lb_scope *scope;
    unsigned scope_index, index;   /* position in the resource, in the scope */
    lb_str trace_id, span_id, parent_span_id;   /* raw bytes: 16, 8, and 0 or 8 */
    lb_str trace_state, name;
    int32_t kind;                  /* enum lb_span_kind, or whatever number was sent */
    uint32_t flags;                /* W3C trace flags in bits 0-7, 0x100/0x200 is-remote */
    uint64_t start_time_unix_nano, end_time_unix_nano;
    struct lb_attrs attrs;
    uint32_t dropped_attributes_count, dropped_events_count, dropped_links_count;
    const struct lb_span_event *events;
    size_t n_events;
    const struct lb_span_link *links;
    size_t n_links;
    int32_t status_code;           /* enum lb_status_code, or whatever number was sent */
    lb_str status_message;
};

#endif
