/*
 * json_internal.h - what the OTLP/JSON transcoder's files share (not for the rest of otlp/).
 *
 * The transcoder is three pieces that meet in one pass over the document: the table of the
 * OTLP messages (json_schema.c: JSON key -> field number, type, submessage), the JSON reader
 * (json_reader.c: tokens, strings with their escapes, skipping unknown values, and the
 * one-line reasons a refusal gives) and the writer that turns each value into protobuf as it
 * is read (json.c). The JSON responses (json_response.c) need none of this.
 *
 * The reader's smallest steps (blanks, one-byte lookahead) are inline here: the transcoder
 * calls them for every token, and the split into files must not cost a call each.
 */
#ifndef LB_OTLP_JSON_INTERNAL_H
#define LB_OTLP_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "otlp/json.h"

/* ---- json_schema.c: the messages ---- */

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

/* The request message a document stands for. */
const struct jmsg *jmsg_root(enum otlp_json_doc doc);
/* The field of `m` a JSON key names (the proto name or its lowerCamelCase form), else NULL. */
const struct jfield *jmsg_find_field(const struct jmsg *m, const char *key, size_t klen);

/* ---- json_reader.c: the reader, and the reasons of a refusal ---- */

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

/* Records the first failure (later ones are consequences) and returns false, so a step can
 * end with `return jr_fail(...)`. The reason says at which byte and in which field. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
bool jr_fail(struct jr *r, const char *fmt, ...);
/* The output passed its limit. */
bool jr_too_large(struct jr *r);

static inline void jr_ws(struct jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* Is `c` the next byte after blanks (not consumed)? */
static inline bool jr_peek(struct jr *r, uint8_t c)
{
    jr_ws(r);
    return r->p < r->end && *r->p == c;
}

/* Consumes `word` when the document continues with it. */
static inline bool jr_literal(struct jr *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, word, n) == 0) {
        r->p += n;
        return true;
    }
    return false;
}

/* After an item of an array or object: consumes the comma when another item follows. */
static inline bool jr_comma(struct jr *r)
{
    return jr_peek(r, ',') && r->p++;
}

static inline int jr_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool jr_expect(struct jr *r, uint8_t c);
/* Enters an object or array: the reader and writer recurse per level, so the depth a
 * sender can make them reach is bounded. */
bool jr_nest(struct jr *r);
/* `open` then one level deeper; jr_close leaves the level and reads `close`. */
bool jr_open(struct jr *r, uint8_t open);
bool jr_close(struct jr *r, uint8_t close);
/* Reads a string (the opening quote is next) into r->str, escapes decoded. */
bool jr_read_string(struct jr *r);
/* An object member's key into r->str, and the colon after it. */
bool jr_key(struct jr *r);
/* A JSON number token; [*s, *s+*n) is its text. */
bool jr_number_token(struct jr *r, const char **s, size_t *n);
/* Skips any value, bounded in depth (unknown fields). */
bool jr_skip_value(struct jr *r);

#endif
