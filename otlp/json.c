/*
 * json.c - OTLP/JSON -> protobuf wire bytes (see json.h for why).
 *
 * One pass, no tree: the reader (json_reader.c) walks the document, the table of the OTLP
 * messages (json_schema.c: JSON key -> field number, wire type, submessage) says what each
 * value becomes, and the protobuf is written here as the values are read. A submessage's
 * length is known only after its content, so one byte is reserved for it and the content is
 * shifted in the rare case the length needs more (messages under 128 bytes, most of them,
 * never move).
 */
#include "otlp/json.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "otlp/json_internal.h"
#include "otlp/varint.h"

/* ------------------------------------------------------------------ the writer */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static bool put_varint(struct jr *r, uint64_t v)
{
    uint8_t t[VARINT_MAX];
    return buf_append(r->out, t, varint_encode(v, t)) || jr_too_large(r);
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
    return buf_append(r->out, t, n) || jr_too_large(r);
}

/* Length-delimited content: begin reserves one byte for the length, end writes it (moving
 * the content when the length needs more than one byte). */
static bool len_begin(struct jr *r, size_t *mark)
{
    *mark = r->out->len;
    return buf_putc(r->out, 0) || jr_too_large(r);
}

static bool len_end(struct jr *r, size_t mark)
{
    struct buf *b = r->out;
    size_t content = b->len - mark - 1;
    uint8_t t[VARINT_MAX];
    size_t n = varint_encode(content, t);
    if (n > 1) {
        if (!buf_reserve(b, n - 1))
            return jr_too_large(r);
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

static bool text_is(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* The text of a number, from a JSON number or a JSON string (64-bit ints are strings). */
static bool number_text(struct jr *r, const char **s, size_t *n)
{
    if (jr_peek(r, '"')) {
        if (!jr_read_string(r))
            return false;
        *s = (const char *)r->str.data;
        *n = r->str.len;
        if (*n == 0)
            return jr_fail(r, "empty string where a number was expected");
        return true;
    }
    return jr_number_token(r, s, n);
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
        return jr_fail(r, "\"%.*s\" is not an integer", (int)(n > 40 ? 40 : n), s);
    bool is_signed = type == F_INT32 || type == F_INT64 || type == F_ENUM;
    uint64_t max_pos = type == F_INT32 || type == F_ENUM ? INT32_MAX
                     : type == F_INT64 ? INT64_MAX
                     : type == F_UINT32 || type == F_FIXED32 ? UINT32_MAX : UINT64_MAX;
    uint64_t max_neg = type == F_INT32 || type == F_ENUM ? (uint64_t)INT32_MAX + 1
                     : type == F_INT64 ? (uint64_t)INT64_MAX + 1 : 0;
    if ((!neg && mag > max_pos) || (neg && (!is_signed || mag > max_neg)))
        return jr_fail(r, "%s%llu is out of range", neg ? "-" : "", (unsigned long long)mag);
    /* Negative int32/enum values are sign-extended to 64 bits on the wire, as protobuf does. */
    *out = neg ? 0 - mag : mag;
    return true;
}

static bool read_double(struct jr *r, double *out)
{
    const char *s;
    size_t n;
    bool quoted = jr_peek(r, '"');
    if (!number_text(r, &s, &n))
        return false;
    if (quoted && text_is(s, n, "NaN")) { *out = NAN; return true; }
    if (quoted && text_is(s, n, "Infinity")) { *out = INFINITY; return true; }
    if (quoted && text_is(s, n, "-Infinity")) { *out = -INFINITY; return true; }
    char t[64];
    if (n >= sizeof t)
        return jr_fail(r, "number too long");
    memcpy(t, s, n);
    t[n] = 0;
    char *endp;
    *out = strtod(t, &endp);
    if (endp != t + n || n == 0 || t[0] == '+' || t[0] == '.' || t[0] == ' ' || t[0] == 'i' ||
        t[0] == 'I' || t[0] == 'n' || t[0] == 'N' || (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')))
        return jr_fail(r, "\"%s\" is not a number", t);
    return true;
}

static bool read_enum(struct jr *r, const struct jenum *e, uint64_t *out)
{
    if (jr_peek(r, '"')) {
        const uint8_t *save = r->p;
        if (!jr_read_string(r))
            return false;
        for (int i = 0; i < e->n; i++)
            if (text_is((const char *)r->str.data, r->str.len, e->names[i])) {
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
    if (!jr_read_string(r))
        return false;
    const struct buf *s = &r->str;
    if (f->type == F_STRING)
        return put_tag(r, f->number, WT_LEN) && put_varint(r, s->len) &&
               (buf_append(r->out, s->data, s->len) || jr_too_large(r));
    size_t mark;
    if (!put_tag(r, f->number, WT_LEN) || !len_begin(r, &mark))
        return false;
    if (f->type == F_HEXID) {
        if (s->len % 2)
            return jr_fail(r, "hex id of odd length %zu", s->len);
        if (!buf_reserve(r->out, s->len / 2))
            return jr_too_large(r);
        for (size_t i = 0; i < s->len; i += 2) {
            int hi = jr_hexval(s->data[i]), lo = jr_hexval(s->data[i + 1]);
            if (hi < 0 || lo < 0)
                return jr_fail(r, "ids are hex strings in OTLP/JSON; this one has a non-hex character");
            r->out->data[r->out->len++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        switch (base64_decode((const char *)s->data, s->len, r->out)) {
        case BASE64_OK: break;
        case BASE64_INVALID: return jr_fail(r, "bytes fields are base64 in JSON; this one is not valid base64");
        case BASE64_FULL: return jr_too_large(r);
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
        jr_ws(r);
        if (jr_literal(r, "true"))
            return put_varint(r, 1);
        if (jr_literal(r, "false"))
            return put_varint(r, 0);
        return jr_fail(r, "expected true or false");
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
    if (!jr_open(r, '['))
        return false;
    bool packed = scalar_wire_type(f->type) != WT_LEN;
    size_t start = r->out->len, mark = 0;
    if (packed && (!put_tag(r, f->number, WT_LEN) || !len_begin(r, &mark)))
        return false;
    bool any = false;
    if (!jr_peek(r, ']')) {
        do {
            jr_ws(r);
            if (jr_literal(r, "null"))
                return jr_fail(r, "null inside an array");
            if (!(packed ? write_scalar(r, f) : write_one(r, f)))
                return false;
            any = true;
        } while (jr_comma(r));
    }
    if (!jr_close(r, ']'))
        return false;
    if (packed && !any) {
        r->out->len = start;   /* an empty packed field says nothing: leave it out */
        return true;
    }
    return !packed || len_end(r, mark);
}

static bool write_field(struct jr *r, const struct jfield *f)
{
    jr_ws(r);
    if (jr_literal(r, "null"))
        return true;   /* proto3 JSON: null is the default value */
    return f->repeated ? write_repeated(r, f) : write_one(r, f);
}

static bool write_message(struct jr *r, const struct jmsg *m)
{
    if (!jr_open(r, '{'))
        return false;
    const char *outer = r->field;
    if (!jr_peek(r, '}')) {
        do {
            if (!jr_key(r))
                return false;
            const struct jfield *f = jmsg_find_field(m, (const char *)r->str.data, r->str.len);
            if (!f) {
                if (!jr_skip_value(r))   /* receivers ignore unknown fields */
                    return false;
                continue;
            }
            r->field = f->name;
            if (!write_field(r, f))
                return false;
            r->field = outer;
        } while (jr_comma(r));
    }
    return jr_close(r, '}');
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
    const struct jmsg *m = jmsg_root(doc);
    if (len >= 3 && json[0] == 0xef && json[1] == 0xbb && json[2] == 0xbf)
        r.p += 3;   /* a UTF-8 byte order mark */
    if (write_message(&r, m)) {
        jr_ws(&r);
        if (r.p != r.end)
            jr_fail(&r, "unexpected data after the document");
    }
    buf_free(&r.str);
    return r.fail;
}
