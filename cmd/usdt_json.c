/*
 * usdt_json.c - the bridge's JSON scanner: one object's top-level members, as spans of the
 * text, plus exact integers and decoded strings on demand.
 *
 * Why not the OTLP/JSON reader (otlp/json_reader.c): that one is built into the transcoder
 * (it writes protobuf as it reads, through a message table). A bpftrace line is a flat object
 * whose few interesting members are read once each, so scanning it into (key, value text)
 * pairs and decoding only what is used is both simpler and fast enough for hundreds of
 * thousands of lines a second. Integers are read from their digits, never through a double:
 * bpftrace prints epoch nanoseconds (about 1.8e18, beyond 2^53).
 *
 * Every input is hostile: lengths come from the text and are checked against its end,
 * nesting is bounded (UJ_MAX_DEPTH), and strings are checked (no raw control bytes, valid
 * escapes) as RFC 8259 says.
 */
#include <string.h>

#include "cmd/usdt.h"

struct scan {
    const char *p, *end;
};

static void blanks(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* After the opening quote: to just past the closing one. */
static bool skip_string(struct scan *s)
{
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (s->p >= s->end)
            return false;
        c = (unsigned char)*s->p++;
        if (c == 'u') {
            if (s->end - s->p < 4 || !is_hex(s->p[0]) || !is_hex(s->p[1]) || !is_hex(s->p[2]) || !is_hex(s->p[3]))
                return false;
            s->p += 4;
        } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
            return false;
        }
    }
    return false;
}

static bool digits(struct scan *s)
{
    const char *from = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool skip_number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool word(struct scan *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool value(struct scan *s, unsigned depth, enum uj_type *type);

/* After '{' or '[': the members or elements and the closing bracket. The members are kept
 * in m (up to max) only for the outermost object; nested ones pass m == NULL. */
static bool container(struct scan *s, unsigned depth, bool object, struct uj_member *m, int max, int *kept)
{
    char close = object ? '}' : ']';
    blanks(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        struct uj_member one = { 0 };
        blanks(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"')
                return false;
            one.key = ++s->p;
            if (!skip_string(s))
                return false;
            one.key_len = (size_t)(s->p - 1 - one.key);
            blanks(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            s->p++;
            blanks(s);
        }
        const char *from = s->p;
        if (!value(s, depth, &one.type))
            return false;
        if (m && object) {
            bool quoted = one.type == UJ_STRING;
            one.raw = from + quoted;
            one.raw_len = (size_t)(s->p - from) - 2 * quoted;
            if (*kept < max)
                m[(*kept)++] = one;
        }
        blanks(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == close) {
            s->p++;
            return true;
        }
        if (*s->p++ != ',')
            return false;
    }
}

static bool value(struct scan *s, unsigned depth, enum uj_type *type)
{
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '"':
        *type = UJ_STRING;
        s->p++;
        return skip_string(s);
    case '{':
    case '[':
        *type = *s->p == '{' ? UJ_OBJECT : UJ_ARRAY;
        if (depth + 1 > UJ_MAX_DEPTH)
            return false;
        s->p++;
        return container(s, depth + 1, *type == UJ_OBJECT, NULL, 0, NULL);
    case 't':
        *type = UJ_TRUE;
        return word(s, "true");
    case 'f':
        *type = UJ_FALSE;
        return word(s, "false");
    case 'n':
        *type = UJ_NULL;
        return word(s, "null");
    default:
        *type = UJ_NUMBER;
        return skip_number(s);
    }
}

int uj_object(const char *p, size_t n, struct uj_member *m, int max)
{
    struct scan s = { p, p + n };
    int kept = 0;
    blanks(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    if (!container(&s, 1, true, m, max, &kept))
        return -1;
    blanks(&s);
    return s.p == s.end ? kept : -1;
}

const struct uj_member *uj_find(const struct uj_member *m, int n, const char *key)
{
    size_t len = strlen(key);
    for (int i = 0; i < n; i++)
        if (m[i].key_len == len && memcmp(m[i].key, key, len) == 0)
            return &m[i];
    return NULL;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Code point cp as UTF-8 at out + *len, if it fits in cap. */
static bool put_utf8(char *out, size_t cap, size_t *len, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (cap - *len < n)
        return false;
    memcpy(out + *len, b, n);
    *len += n;
    return true;
}

/* The string was checked by the scan: every escape is complete. */
bool uj_string(const struct uj_member *m, char *out, size_t cap, size_t *len)
{
    const char *p = m->raw, *end = m->raw + m->raw_len;
    *len = 0;
    if (m->type != UJ_STRING)
        return false;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t plain = (size_t)((bs ? bs : end) - p);
        if (cap - *len < plain)
            return false;
        memcpy(out + *len, p, plain);
        *len += plain;
        if (!bs)
            return true;
        p = bs + 1;
        char c = *p++, one = 0;
        unsigned cp;
        switch (c) {
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u':
            cp = hex4(p);
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                hex4(p + 2) >= 0xdc00 && hex4(p + 2) < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 2) - 0xdc00);
                p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            if (!put_utf8(out, cap, len, cp))
                return false;
            continue;
        default: one = c; break;   /* " \ / */
        }
        if (*len == cap)
            return false;
        out[(*len)++] = one;
    }
    return true;
}

bool uj_int64(const struct uj_member *m, int64_t *v)
{
    if (m->type != UJ_NUMBER && m->type != UJ_STRING)
        return false;
    const char *p = m->raw, *end = m->raw + m->raw_len;
    bool neg = p < end && *p == '-';
    p += neg;
    if (p == end || (*p == '0' && end - p > 1))
        return false;
    uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *v = neg ? (acc ? -(int64_t)(acc - 1) - 1 : 0) : (int64_t)acc;
    return true;
}
