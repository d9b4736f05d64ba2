/*
 * json.c - OTLP/JSON -> protobuf wire bytes, and the JSON responses (see json.h for why).
 *
 * One pass, no tree: a small recursive-descent JSON reader walks the document, and a table
 * of the OTLP messages (JSON key -> field number, wire type, submessage) says what each value
 * becomes; the protobuf is written as the values are read. A submessage's length is known
 * only after its content, so one byte is reserved for it and the content is shifted in the
 * rare case the length needs more (messages under 128 bytes, most of them, never move).
 */
#include "otlp/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "otlp/varint.h"
#include "lib/escape.h"

/* ------------------------------------------------------------------ the schema */

enum ftype {
    F_MSG, F_STRING, F_BYTES, F_HEXID, F_INT32, F_INT64, F_UINT32, F_UINT64,
    F_FIXED32, F_FIXED64, F_DOUBLE, F_BOOL, F_ENUM,
};

struct jenum {
    const char *const *names;   /* names[i] is value i */
    int n;
};

struct jmsg;
struct jfield {
    const char *name;           /* the proto field name; the camelCase form is derived */
    uint32_t number;
    enum ftype type;
    bool repeated;
    const struct jmsg *msg;     /* F_MSG */
    const struct jenum *enm;    /* F_ENUM */
};

struct jmsg {
    const char *name;
    const struct jfield *f;
    size_t n;
};

#define FLD(nm, num, ty)   { nm, num, ty, false, NULL, NULL }
#define REP(nm, num, ty)   { nm, num, ty, true, NULL, NULL }
#define SUB(nm, num, m)    { nm, num, F_MSG, false, &m, NULL }
#define SUBS(nm, num, m)   { nm, num, F_MSG, true, &m, NULL }
#define ENUMF(nm, num, e)  { nm, num, F_ENUM, false, NULL, &e }
#define MSG(var, fields)   static const struct jmsg var = { #var, fields, sizeof fields / sizeof fields[0] }

static const char *const span_kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const struct jenum span_kind = { span_kind_names, 6 };
static const char *const status_code_names[] = {
    "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR",
};
static const struct jenum status_code = { status_code_names, 3 };

/* common.v1 / resource.v1 (AnyValue nests through ArrayValue and KeyValueList). */
static const struct jmsg AnyValue, KeyValue;
static const struct jfield ArrayValue_f[] = { SUBS("values", 1, AnyValue) };
MSG(ArrayValue, ArrayValue_f);
static const struct jfield KeyValueList_f[] = { SUBS("values", 1, KeyValue) };
MSG(KeyValueList, KeyValueList_f);
static const struct jfield AnyValue_f[] = {
    FLD("string_value", 1, F_STRING), FLD("bool_value", 2, F_BOOL), FLD("int_value", 3, F_INT64),
    FLD("double_value", 4, F_DOUBLE), SUB("array_value", 5, ArrayValue),
    SUB("kvlist_value", 6, KeyValueList), FLD("bytes_value", 7, F_BYTES),
    FLD("string_value_strindex", 8, F_INT32),
};
MSG(AnyValue, AnyValue_f);
static const struct jfield KeyValue_f[] = {
    FLD("key", 1, F_STRING), SUB("value", 2, AnyValue), FLD("key_strindex", 3, F_INT32),
};
MSG(KeyValue, KeyValue_f);
static const struct jfield InstrumentationScope_f[] = {
    FLD("name", 1, F_STRING), FLD("version", 2, F_STRING), SUBS("attributes", 3, KeyValue),
    FLD("dropped_attributes_count", 4, F_UINT32),
};
MSG(InstrumentationScope, InstrumentationScope_f);
static const struct jfield EntityRef_f[] = {
    FLD("schema_url", 1, F_STRING), FLD("type", 2, F_STRING), REP("id_keys", 3, F_STRING),
    REP("description_keys", 4, F_STRING),
};
MSG(EntityRef, EntityRef_f);
static const struct jfield Resource_f[] = {
    SUBS("attributes", 1, KeyValue), FLD("dropped_attributes_count", 2, F_UINT32),
    SUBS("entity_refs", 3, EntityRef),
};
MSG(Resource, Resource_f);

/* profiles.v1development, the v1.10/v1.11 layout (pb/profiles.proto). */
static const struct jfield ValueType_f[] = {
    FLD("type_strindex", 1, F_INT32), FLD("unit_strindex", 2, F_INT32),
};
MSG(ValueType, ValueType_f);
static const struct jfield Sample_f[] = {
    FLD("stack_index", 1, F_INT32), REP("attribute_indices", 2, F_INT32),
    FLD("link_index", 3, F_INT32), REP("values", 4, F_INT64),
    REP("timestamps_unix_nano", 5, F_FIXED64),
};
MSG(Sample, Sample_f);
static const struct jfield Profile_f[] = {
    SUB("sample_type", 1, ValueType), SUBS("samples", 2, Sample),
    FLD("time_unix_nano", 3, F_FIXED64), FLD("duration_nano", 4, F_UINT64),
    SUB("period_type", 5, ValueType), FLD("period", 6, F_INT64), FLD("profile_id", 7, F_HEXID),
    FLD("dropped_attributes_count", 8, F_UINT32), FLD("original_payload_format", 9, F_STRING),
    FLD("original_payload", 10, F_BYTES), REP("attribute_indices", 11, F_INT32),
};
MSG(Profile, Profile_f);
static const struct jfield ScopeProfiles_f[] = {
    SUB("scope", 1, InstrumentationScope), SUBS("profiles", 2, Profile),
    FLD("schema_url", 3, F_STRING),
};
MSG(ScopeProfiles, ScopeProfiles_f);
static const struct jfield ResourceProfiles_f[] = {
    SUB("resource", 1, Resource), SUBS("scope_profiles", 2, ScopeProfiles),
    FLD("schema_url", 3, F_STRING),
};
MSG(ResourceProfiles, ResourceProfiles_f);
static const struct jfield Stack_f[] = { REP("location_indices", 1, F_INT32) };
MSG(Stack, Stack_f);
static const struct jfield Line_f[] = {
    FLD("function_index", 1, F_INT32), FLD("line", 2, F_INT64), FLD("column", 3, F_INT64),
};
MSG(Line, Line_f);
static const struct jfield Location_f[] = {
    FLD("mapping_index", 1, F_INT32), FLD("address", 2, F_UINT64), SUBS("lines", 3, Line),
    REP("attribute_indices", 4, F_INT32),
};
MSG(Location, Location_f);
static const struct jfield Function_f[] = {
    FLD("name_strindex", 1, F_INT32), FLD("system_name_strindex", 2, F_INT32),
    FLD("filename_strindex", 3, F_INT32), FLD("start_line", 4, F_INT64),
};
MSG(Function, Function_f);
static const struct jfield Mapping_f[] = {
    FLD("memory_start", 1, F_UINT64), FLD("memory_limit", 2, F_UINT64),
    FLD("file_offset", 3, F_UINT64), FLD("filename_strindex", 4, F_INT32),
    REP("attribute_indices", 5, F_INT32),
};
MSG(Mapping, Mapping_f);
static const struct jfield ProfileLink_f[] = {
    FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID),
};
MSG(ProfileLink, ProfileLink_f);
static const struct jfield KeyValueAndUnit_f[] = {
    FLD("key_strindex", 1, F_INT32), SUB("value", 2, AnyValue), FLD("unit_strindex", 3, F_INT32),
};
MSG(KeyValueAndUnit, KeyValueAndUnit_f);
static const struct jfield ProfilesDictionary_f[] = {
    SUBS("mapping_table", 1, Mapping), SUBS("location_table", 2, Location),
    SUBS("function_table", 3, Function), SUBS("link_table", 4, ProfileLink),
    REP("string_table", 5, F_STRING), SUBS("attribute_table", 6, KeyValueAndUnit),
    SUBS("stack_table", 7, Stack),
};
MSG(ProfilesDictionary, ProfilesDictionary_f);
static const struct jfield ExportProfilesServiceRequest_f[] = {
    SUBS("resource_profiles", 1, ResourceProfiles), SUB("dictionary", 2, ProfilesDictionary),
};
MSG(ExportProfilesServiceRequest, ExportProfilesServiceRequest_f);

/* trace.v1 (pb/trace.proto). */
static const struct jfield Status_f[] = {
    FLD("message", 2, F_STRING), ENUMF("code", 3, status_code),
};
MSG(Status, Status_f);
static const struct jfield SpanEvent_f[] = {
    FLD("time_unix_nano", 1, F_FIXED64), FLD("name", 2, F_STRING),
    SUBS("attributes", 3, KeyValue), FLD("dropped_attributes_count", 4, F_UINT32),
};
MSG(SpanEvent, SpanEvent_f);
static const struct jfield SpanLink_f[] = {
    FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID), FLD("trace_state", 3, F_STRING),
    SUBS("attributes", 4, KeyValue), FLD("dropped_attributes_count", 5, F_UINT32),
    FLD("flags", 6, F_FIXED32),
};
MSG(SpanLink, SpanLink_f);
static const struct jfield Span_f[] = {
    FLD("trace_id", 1, F_HEXID), FLD("span_id", 2, F_HEXID), FLD("trace_state", 3, F_STRING),
    FLD("parent_span_id", 4, F_HEXID), FLD("flags", 16, F_FIXED32), FLD("name", 5, F_STRING),
    ENUMF("kind", 6, span_kind), FLD("start_time_unix_nano", 7, F_FIXED64),
    FLD("end_time_unix_nano", 8, F_FIXED64), SUBS("attributes", 9, KeyValue),
    FLD("dropped_attributes_count", 10, F_UINT32), SUBS("events", 11, SpanEvent),
    FLD("dropped_events_count", 12, F_UINT32), SUBS("links", 13, SpanLink),
    FLD("dropped_links_count", 14, F_UINT32), SUB("status", 15, Status),
};
MSG(Span, Span_f);
static const struct jfield ScopeSpans_f[] = {
    SUB("scope", 1, InstrumentationScope), SUBS("spans", 2, Span), FLD("schema_url", 3, F_STRING),
};
MSG(ScopeSpans, ScopeSpans_f);
static const struct jfield ResourceSpans_f[] = {
    SUB("resource", 1, Resource), SUBS("scope_spans", 2, ScopeSpans), FLD("schema_url", 3, F_STRING),
};
MSG(ResourceSpans, ResourceSpans_f);
static const struct jfield ExportTraceServiceRequest_f[] = {
    SUBS("resource_spans", 1, ResourceSpans),
};
MSG(ExportTraceServiceRequest, ExportTraceServiceRequest_f);

/* JSON key == proto name, or == its lowerCamelCase form ("time_unix_nano" -> "timeUnixNano"). */
static bool key_matches(const char *key, size_t klen, const char *name)
{
    size_t nlen = strlen(name);
    if (klen == nlen && memcmp(key, name, klen) == 0)
        return true;
    size_t k = 0;
    for (size_t i = 0; i < nlen; i++, k++) {
        char want = name[i];
        if (want == '_' && i + 1 < nlen) {
            i++;
            want = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
        }
        if (k >= klen || key[k] != want)
            return false;
    }
    return k == klen;
}

static const struct jfield *find_field(const struct jmsg *m, const char *key, size_t klen)
{
    for (size_t i = 0; i < m->n; i++)
        if (key_matches(key, klen, m->f[i].name))
            return &m->f[i];
    return NULL;
}

/* ------------------------------------------------------------------ the reader */

struct jr {
    const uint8_t *start, *p, *end;
    struct buf *out;
    struct buf str;             /* the string being read (keys, string values) */
    const char *field;          /* the field being read, for messages */
    unsigned depth;
    enum otlp_json_result fail; /* set with err on the first failure */
    char *err;
    size_t errlen;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static bool fail(struct jr *r, const char *fmt, ...)
{
    if (r->fail != OTLP_JSON_OK)
        return false;
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* `what` may quote the sender's text with its escapes decoded ("\n", "\u001b"): the
     * reason is one line of printable ASCII (it goes into logs and error bodies; found by
     * fuzz_json), as the transport does with wire strings. */
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    r->fail = OTLP_JSON_INVALID;
    if (r->field)
        snprintf(r->err, r->errlen, "JSON at byte %zu (field \"%s\"): %s",
                 (size_t)(r->p - r->start), r->field, what);
    else
        snprintf(r->err, r->errlen, "JSON at byte %zu: %s", (size_t)(r->p - r->start), what);
    return false;
}

static bool too_large(struct jr *r)
{
    if (r->fail == OTLP_JSON_OK) {
        r->fail = OTLP_JSON_TOO_LARGE;
        snprintf(r->err, r->errlen, "the request is larger than %zu bytes once encoded as protobuf",
                 r->out->limit);
    }
    return false;
}

/* Enters an object or array: the reader and writer recurse per level, so the depth a
 * sender can make them reach is bounded. */
static bool nest(struct jr *r)
{
    if (++r->depth > OTLP_JSON_MAX_DEPTH)
        return fail(r, "nested deeper than %d levels", OTLP_JSON_MAX_DEPTH);
    return true;
}

static void ws(struct jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool peek(struct jr *r, uint8_t c)
{
    ws(r);
    return r->p < r->end && *r->p == c;
}

static bool expect(struct jr *r, uint8_t c)
{
    if (peek(r, c)) {
        r->p++;
        return true;
    }
    if (r->p >= r->end)
        return fail(r, "unexpected end of the document, expected '%c'", c);
    return fail(r, "expected '%c'", c);
}

static bool literal(struct jr *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, word, n) == 0) {
        r->p += n;
        return true;
    }
    return false;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_u16_escape(struct jr *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return fail(r, "truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(r->p[i]);
        if (h < 0)
            return fail(r, "bad \\u escape");
        *v = *v << 4 | (uint32_t)h;
    }
    r->p += 4;
    return true;
}

static bool put_utf8(struct jr *r, struct buf *b, uint32_t cp)
{
    uint8_t t[4];
    size_t n;
    if (cp < 0x80) { t[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { t[0] = (uint8_t)(0xc0 | cp >> 6); t[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) {
        t[0] = (uint8_t)(0xe0 | cp >> 12); t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
    } else {
        t[0] = (uint8_t)(0xf0 | cp >> 18); t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)); t[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
    }
    return buf_append(b, t, n) || too_large(r);
}

/* A \u escape, with its low surrogate when it is a high one; lone surrogates are refused
 * (they have no UTF-8 form). */
static bool read_unicode_escape(struct jr *r, struct buf *b)
{
    uint32_t cp, lo;
    if (!read_u16_escape(r, &cp))
        return false;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(r, "lone low surrogate in a \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (!literal(r, "\\u") || !read_u16_escape(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return fail(r, "high surrogate without its low surrogate");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return put_utf8(r, b, cp);
}

/* Reads a string (the opening quote is next) into r->str, escapes decoded. */
static bool read_string(struct jr *r)
{
    struct buf *b = &r->str;
    buf_reset(b);
    if (!expect(r, '"'))
        return false;
    for (;;) {
        const uint8_t *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && *r->p >= 0x20)
            r->p++;
        if (!buf_append(b, run, (size_t)(r->p - run)))
            return too_large(r);
        if (r->p >= r->end)
            return fail(r, "unterminated string");
        uint8_t c = *r->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return fail(r, "control character in a string");
        if (r->p >= r->end)
            return fail(r, "unterminated string");
        c = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (!buf_putc(b, map[simple - "\"\\/bfnrt"]))
                return too_large(r);
        } else if (c == 'u') {
            if (!read_unicode_escape(r, b))
                return false;
        } else {
            return fail(r, "bad escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
}

/* Skips a run of decimal digits; returns how many there were. */
static size_t skip_digits(struct jr *r)
{
    const uint8_t *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return (size_t)(r->p - start);
}

/* A JSON number token; [*s, *s+*n) is its text. */
static bool read_number_token(struct jr *r, const char **s, size_t *n)
{
    ws(r);
    const uint8_t *b = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    const uint8_t *digits = r->p;
    size_t int_digits = skip_digits(r);
    if (int_digits == 0 || (*digits == '0' && int_digits > 1))
        return fail(r, "malformed number");
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (skip_digits(r) == 0)
            return fail(r, "malformed number");
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (skip_digits(r) == 0)
            return fail(r, "malformed number");
    }
    *s = (const char *)b;
    *n = (size_t)(r->p - b);
    return true;
}

/* Skips any value, bounded in depth (unknown fields). */
static bool skip_value(struct jr *r)
{
    ws(r);
    if (r->p >= r->end)
        return fail(r, "unexpected end of the document");
    uint8_t c = *r->p;
    if (c == '"')
        return read_string(r);
    if (c == '{' || c == '[') {
        uint8_t close = c == '{' ? '}' : ']';
        if (!nest(r))
            return false;
        r->p++;
        if (peek(r, close)) {
            r->p++;
            r->depth--;
            return true;
        }
        do {
            if (c == '{' && (!read_string(r) || !expect(r, ':')))
                return false;
            if (!skip_value(r))
                return false;
        } while (peek(r, ',') && r->p++);
        r->depth--;
        return expect(r, close);
    }
    if (literal(r, "true") || literal(r, "false") || literal(r, "null"))
        return true;
    const char *s;
    size_t n;
    return read_number_token(r, &s, &n);
}

/* ------------------------------------------------------------------ the writer */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static bool put_varint(struct jr *r, uint64_t v)
{
    uint8_t t[VARINT_MAX];
    return buf_append(r->out, t, varint_encode(v, t)) || too_large(r);
}

static bool put_tag(struct jr *r, uint32_t number, int wt)
{
    return put_varint(r, (uint64_t)number << 3 | (uint64_t)wt);
}

static bool put_le(struct jr *r, uint64_t v, size_t n)
{
    uint8_t t[8];
    for (size_t i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return buf_append(r->out, t, n) || too_large(r);
}

/* Length-delimited content: begin reserves one byte for the length, end writes it (moving
 * the content when the length needs more than one byte). */
static bool len_begin(struct jr *r, size_t *mark)
{
    *mark = r->out->len;
    return buf_putc(r->out, 0) || too_large(r);
}

static bool len_end(struct jr *r, size_t mark)
{
    struct buf *b = r->out;
    size_t content = b->len - mark - 1;
    uint8_t t[VARINT_MAX];
    size_t n = varint_encode(content, t);
    if (n > 1) {
        if (!buf_reserve(b, n - 1))
            return too_large(r);
        memmove(b->data + mark + n, b->data + mark + 1, content);
        b->len += n - 1;
    }
    memcpy(b->data + mark, t, n);
    return true;
}

/* ------------------------------------------------------------------ scalar values */

/* Decimal integer text (an optional '-', digits) -> magnitude and sign, exactly. */
static bool parse_integer(const char *s, size_t n, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = false;
    *mag = 0;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10)
            return false;
        *mag = *mag * 10 + d;
    }
    return true;
}

/* The text of a number, from a JSON number or a JSON string (64-bit ints are strings). */
static bool number_text(struct jr *r, const char **s, size_t *n)
{
    if (peek(r, '"')) {
        if (!read_string(r))
            return false;
        *s = (const char *)r->str.data;
        *n = r->str.len;
        if (*n == 0)
            return fail(r, "empty string where a number was expected");
        return true;
    }
    return read_number_token(r, s, n);
}

/* An integer of `type` -> the uint64 its varint or fixed encoding carries. */
static bool read_integer(struct jr *r, enum ftype type, uint64_t *out)
{
    const char *s;
    size_t n;
    bool neg;
    uint64_t mag;
    if (!number_text(r, &s, &n))
        return false;
    if (!parse_integer(s, n, &neg, &mag))
        return fail(r, "\"%.*s\" is not an integer", (int)(n > 40 ? 40 : n), s);
    bool is_signed = type == F_INT32 || type == F_INT64 || type == F_ENUM;
    uint64_t max_pos = type == F_INT32 || type == F_ENUM ? INT32_MAX
                     : type == F_INT64 ? INT64_MAX
                     : type == F_UINT32 || type == F_FIXED32 ? UINT32_MAX : UINT64_MAX;
    uint64_t max_neg = type == F_INT32 || type == F_ENUM ? (uint64_t)INT32_MAX + 1
                     : type == F_INT64 ? (uint64_t)INT64_MAX + 1 : 0;
    if ((!neg && mag > max_pos) || (neg && (!is_signed || mag > max_neg)))
        return fail(r, "%s%llu is out of range", neg ? "-" : "", (unsigned long long)mag);
    /* Negative int32/enum values are sign-extended to 64 bits on the wire, as protobuf does. */
    *out = neg ? 0 - mag : mag;
    return true;
}

static bool read_double(struct jr *r, double *out)
{
    const char *s;
    size_t n;
    bool quoted = peek(r, '"');
    if (!number_text(r, &s, &n))
        return false;
    if (quoted && n == 3 && memcmp(s, "NaN", 3) == 0) { *out = NAN; return true; }
    if (quoted && n == 8 && memcmp(s, "Infinity", 8) == 0) { *out = INFINITY; return true; }
    if (quoted && n == 9 && memcmp(s, "-Infinity", 9) == 0) { *out = -INFINITY; return true; }
    char t[64];
    if (n >= sizeof t)
        return fail(r, "number too long");
    memcpy(t, s, n);
    t[n] = 0;
    char *endp;
    *out = strtod(t, &endp);
    if (endp != t + n || n == 0 || t[0] == '+' || t[0] == '.' || t[0] == ' ' || t[0] == 'i' ||
        t[0] == 'I' || t[0] == 'n' || t[0] == 'N' || (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')))
        return fail(r, "\"%s\" is not a number", t);
    return true;
}

static bool read_enum(struct jr *r, const struct jenum *e, uint64_t *out)
{
    if (peek(r, '"')) {
        const uint8_t *save = r->p;
        if (!read_string(r))
            return false;
        for (int i = 0; i < e->n; i++)
            if (r->str.len == strlen(e->names[i]) && memcmp(r->str.data, e->names[i], r->str.len) == 0) {
                *out = (uint64_t)i;
                return true;
            }
        r->p = save;   /* maybe a number in a string */
    }
    return read_integer(r, F_ENUM, out);
}

/* A string value whose bytes are the field's content (string, base64 bytes, hex id). */
static bool write_string_field(struct jr *r, const struct jfield *f)
{
    if (!read_string(r))
        return false;
    const struct buf *s = &r->str;
    if (f->type == F_STRING)
        return put_tag(r, f->number, WT_LEN) && put_varint(r, s->len) &&
               (buf_append(r->out, s->data, s->len) || too_large(r));
    size_t mark;
    if (!put_tag(r, f->number, WT_LEN) || !len_begin(r, &mark))
        return false;
    if (f->type == F_HEXID) {
        if (s->len % 2)
            return fail(r, "hex id of odd length %zu", s->len);
        if (!buf_reserve(r->out, s->len / 2))
            return too_large(r);
        for (size_t i = 0; i < s->len; i += 2) {
            int hi = hexval(s->data[i]), lo = hexval(s->data[i + 1]);
            if (hi < 0 || lo < 0)
                return fail(r, "ids are hex strings in OTLP/JSON; this one has a non-hex character");
            r->out->data[r->out->len++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        switch (base64_decode((const char *)s->data, s->len, r->out)) {
        case BASE64_OK: break;
        case BASE64_INVALID: return fail(r, "bytes fields are base64 in JSON; this one is not valid base64");
        case BASE64_FULL: return too_large(r);
        }
    }
    return len_end(r, mark);
}

/* One scalar as its bare encoding (no tag): what packed arrays hold. */
static bool write_scalar(struct jr *r, const struct jfield *f)
{
    uint64_t v = 0;
    double d = 0;
    switch (f->type) {
    case F_BOOL:
        ws(r);
        if (literal(r, "true"))
            return put_varint(r, 1);
        if (literal(r, "false"))
            return put_varint(r, 0);
        return fail(r, "expected true or false");
    case F_DOUBLE:
        if (!read_double(r, &d))
            return false;
        memcpy(&v, &d, sizeof v);
        return put_le(r, v, 8);
    case F_FIXED64:
        return read_integer(r, f->type, &v) && put_le(r, v, 8);
    case F_FIXED32:
        return read_integer(r, f->type, &v) && put_le(r, v, 4);
    case F_ENUM:
        return read_enum(r, f->enm, &v) && put_varint(r, v);
    default:
        return read_integer(r, f->type, &v) && put_varint(r, v);
    }
}

static int scalar_wire_type(enum ftype t)
{
    switch (t) {
    case F_DOUBLE: case F_FIXED64: return WT_I64;
    case F_FIXED32: return WT_I32;
    case F_STRING: case F_BYTES: case F_HEXID: case F_MSG: return WT_LEN;
    default: return WT_VARINT;
    }
}

/* ------------------------------------------------------------------ messages */

static bool write_message(struct jr *r, const struct jmsg *m);

/* One value of field f (not an array): a submessage, a string-like or a scalar. */
static bool write_one(struct jr *r, const struct jfield *f)
{
    if (f->type == F_MSG) {
        size_t mark;
        return put_tag(r, f->number, WT_LEN) && len_begin(r, &mark) &&
               write_message(r, f->msg) && len_end(r, mark);
    }
    if (f->type == F_STRING || f->type == F_BYTES || f->type == F_HEXID)
        return write_string_field(r, f);
    return put_tag(r, f->number, scalar_wire_type(f->type)) && write_scalar(r, f);
}

/* [v, ...]: messages and strings one field each, scalars as one packed field. */
static bool write_repeated(struct jr *r, const struct jfield *f)
{
    if (!expect(r, '['))
        return false;
    if (!nest(r))
        return false;
    bool packed = scalar_wire_type(f->type) != WT_LEN;
    size_t start = r->out->len, mark = 0;
    if (packed && (!put_tag(r, f->number, WT_LEN) || !len_begin(r, &mark)))
        return false;
    bool any = false;
    if (!peek(r, ']')) {
        do {
            ws(r);
            if (literal(r, "null"))
                return fail(r, "null inside an array");
            if (!(packed ? write_scalar(r, f) : write_one(r, f)))
                return false;
            any = true;
        } while (peek(r, ',') && r->p++);
    }
    if (!expect(r, ']'))
        return false;
    r->depth--;
    if (packed && !any) {
        r->out->len = start;   /* an empty packed field says nothing: leave it out */
        return true;
    }
    return !packed || len_end(r, mark);
}

static bool write_field(struct jr *r, const struct jfield *f)
{
    ws(r);
    if (literal(r, "null"))
        return true;   /* proto3 JSON: null is the default value */
    return f->repeated ? write_repeated(r, f) : write_one(r, f);
}

static bool write_message(struct jr *r, const struct jmsg *m)
{
    if (!expect(r, '{'))
        return false;
    if (!nest(r))
        return false;
    const char *outer = r->field;
    if (!peek(r, '}')) {
        do {
            if (!read_string(r) || !expect(r, ':'))
                return false;
            const struct jfield *f = find_field(m, (const char *)r->str.data, r->str.len);
            if (!f) {
                if (!skip_value(r))   /* receivers ignore unknown fields */
                    return false;
                continue;
            }
            r->field = f->name;
            if (!write_field(r, f))
                return false;
            r->field = outer;
        } while (peek(r, ',') && r->p++);
    }
    r->depth--;
    return expect(r, '}');
}

enum otlp_json_result otlp_json_to_protobuf(enum otlp_json_doc doc, const uint8_t *json, size_t len,
                                            struct buf *out, char *err, size_t errlen)
{
    struct jr r = {
        .start = json, .p = json, .end = json + len, .out = out, .err = err, .errlen = errlen,
    };
    /* A string is never longer than the document it is in. */
    buf_init(&r.str, len + 4);
    err[0] = 0;
    const struct jmsg *m = doc == OTLP_JSON_TRACES_REQUEST ? &ExportTraceServiceRequest
                                                          : &ExportProfilesServiceRequest;
    if (len >= 3 && json[0] == 0xef && json[1] == 0xbb && json[2] == 0xbf)
        r.p += 3;   /* a UTF-8 byte order mark */
    if (write_message(&r, m)) {
        ws(&r);
        if (r.p != r.end)
            fail(&r, "unexpected data after the document");
    }
    buf_free(&r.str);
    return r.fail;
}

/* ------------------------------------------------------------------ responses */

static bool put_json_string(struct buf *out, const char *s)
{
    return esc_json_quoted(out, s, strlen(s));
}

static int partial_success(struct buf *out, const char *count_key, uint64_t rejected, const char *message)
{
    if (rejected == 0 && message[0] == 0)
        return buf_append(out, "{}", 2) ? 0 : -1;
    return buf_printf(out, "{\"partialSuccess\":{\"%s\":\"%llu\",\"errorMessage\":", count_key,
                      (unsigned long long)rejected) &&
           put_json_string(out, message) && buf_append(out, "}}", 2) ? 0 : -1;
}

int otlp_json_profiles_response(const struct otlp_result *res, struct buf *out)
{
    bool partial = res->rejected_profiles || res->rejected_samples;
    return partial_success(out, "rejectedProfiles", res->rejected_profiles, partial ? res->message : "");
}

int otlp_json_traces_response(const struct otlp_trace_result *res, struct buf *out)
{
    return partial_success(out, "rejectedSpans", res->rejected_spans,
                           res->rejected_spans ? res->message : "");
}

int otlp_json_status(int code, const char *message, struct buf *out)
{
    return buf_printf(out, "{\"code\":%d,\"message\":", code) && put_json_string(out, message) &&
           buf_putc(out, '}') ? 0 : -1;
}
