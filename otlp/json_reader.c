/*
 * json_reader.c - the JSON reader under the OTLP/JSON transcoder: tokens, strings with their
 * escapes decoded, unknown values skipped, and the one-line reason a refusal gives.
 *
 * A small recursive-descent reader over the whole document in memory, no tree: the
 * transcoder (json.c) asks for the next token where the message table says a value is and
 * writes protobuf as it goes. It takes JSON as RFC 8259 writes it and no extension (no
 * comments, trailing commas or single quotes), and a refusal says at which byte and in which
 * field, so the sender can see what to fix.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "otlp/json_internal.h"

bool jr_fail(struct jr *r, const char *fmt, ...)
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

bool jr_too_large(struct jr *r)
{
    if (r->fail == OTLP_JSON_OK) {
        r->fail = OTLP_JSON_TOO_LARGE;
        snprintf(r->err, r->errlen, "the request is larger than %zu bytes once encoded as protobuf",
                 r->out->limit);
    }
    return false;
}

bool jr_nest(struct jr *r)
{
    if (++r->depth > OTLP_JSON_MAX_DEPTH)
        return jr_fail(r, "nested deeper than %d levels", OTLP_JSON_MAX_DEPTH);
    return true;
}

bool jr_expect(struct jr *r, uint8_t c)
{
    if (jr_peek(r, c)) {
        r->p++;
        return true;
    }
    if (r->p >= r->end)
        return jr_fail(r, "unexpected end of the document, expected '%c'", c);
    return jr_fail(r, "expected '%c'", c);
}

bool jr_open(struct jr *r, uint8_t open)
{
    return jr_expect(r, open) && jr_nest(r);
}

bool jr_close(struct jr *r, uint8_t close)
{
    r->depth--;
    return jr_expect(r, close);
}

static bool read_u16_escape(struct jr *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return jr_fail(r, "truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = jr_hexval(r->p[i]);
        if (h < 0)
            return jr_fail(r, "bad \\u escape");
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
    return buf_append(b, t, n) || jr_too_large(r);
}

/* A \u escape, with its low surrogate when it is a high one; lone surrogates are refused
 * (they have no UTF-8 form). */
static bool read_unicode_escape(struct jr *r, struct buf *b)
{
    uint32_t cp, lo;
    if (!read_u16_escape(r, &cp))
        return false;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jr_fail(r, "lone low surrogate in a \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (!jr_literal(r, "\\u") || !read_u16_escape(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return jr_fail(r, "high surrogate without its low surrogate");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return put_utf8(r, b, cp);
}

bool jr_read_string(struct jr *r)
{
    struct buf *b = &r->str;
    buf_reset(b);
    if (!jr_expect(r, '"'))
        return false;
    for (;;) {
        const uint8_t *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && *r->p >= 0x20)
            r->p++;
        if (!buf_append(b, run, (size_t)(r->p - run)))
            return jr_too_large(r);
        if (r->p >= r->end)
            return jr_fail(r, "unterminated string");
        uint8_t c = *r->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return jr_fail(r, "control character in a string");
        if (r->p >= r->end)
            return jr_fail(r, "unterminated string");
        c = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (!buf_putc(b, map[simple - "\"\\/bfnrt"]))
                return jr_too_large(r);
        } else if (c == 'u') {
            if (!read_unicode_escape(r, b))
                return false;
        } else {
            return jr_fail(r, "bad escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
}

bool jr_key(struct jr *r)
{
    return jr_read_string(r) && jr_expect(r, ':');
}

/* Skips a run of decimal digits; returns how many there were. */
static size_t skip_digits(struct jr *r)
{
    const uint8_t *start = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return (size_t)(r->p - start);
}

bool jr_number_token(struct jr *r, const char **s, size_t *n)
{
    jr_ws(r);
    const uint8_t *b = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    const uint8_t *digits = r->p;
    size_t int_digits = skip_digits(r);
    if (int_digits == 0 || (*digits == '0' && int_digits > 1))
        return jr_fail(r, "malformed number");
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (skip_digits(r) == 0)
            return jr_fail(r, "malformed number");
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (skip_digits(r) == 0)
            return jr_fail(r, "malformed number");
    }
    *s = (const char *)b;
    *n = (size_t)(r->p - b);
    return true;
}

bool jr_skip_value(struct jr *r)
{
    jr_ws(r);
    if (r->p >= r->end)
        return jr_fail(r, "unexpected end of the document");
    uint8_t c = *r->p;
    if (c == '"')
        return jr_read_string(r);
    if (c == '{' || c == '[') {
        /* one level deeper before the bracket is consumed: a refusal names the bracket */
        if (!jr_nest(r))
            return false;
        r->p++;
        uint8_t close = c == '{' ? '}' : ']';
        if (!jr_peek(r, close)) {
            do {
                if (c == '{' && !jr_key(r))
                    return false;
                if (!jr_skip_value(r))
                    return false;
            } while (jr_comma(r));
        }
        return jr_close(r, close);
    }
    if (jr_literal(r, "true") || jr_literal(r, "false") || jr_literal(r, "null"))
        return true;
    const char *s;
    size_t n;
    return jr_number_token(r, &s, &n);
}
