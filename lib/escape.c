/*
 * escape.c - see escape.h for the rules and why they exist.
 *
 * Both escapers work the same way: find the longest span that can be copied as it is (plain
 * ASCII and harmless valid UTF-8), append it in one go, then escape the single unit that
 * stopped the span. Names are mostly plain ASCII, so the common case is one scan and one
 * memcpy per string.
 */
#include "lib/escape.h"

#include <stdint.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

/* Length (2..4) of the valid UTF-8 sequence starting at s (s[0] >= 0x80) and its code point;
 * 0 when s[0] does not start one. Overlong forms, surrogates and code points above U+10FFFF
 * are refused by narrowing the range of the second byte, as in the Unicode table of
 * well-formed sequences. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;   /* allowed range of the second byte */
    uint32_t v;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;        /* overlong */
        if (c == 0xed) hi = 0x9f;        /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; v = c & 0x07;
        if (c == 0xf0) lo = 0x90;        /* overlong */
        if (c == 0xf4) hi = 0x8f;        /* above U+10FFFF */
    } else {
        return 0;                        /* continuation byte, c0/c1 (overlong), f5-ff */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    v = (v << 6) | (s[1] & 0x3f);
    for (size_t k = 2; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3f);
    }
    *cp = v;
    return len;
}

/* Code points that are valid but act on a terminal or on how text reads: C1 controls (U+009B
 * is a one-byte CSI for terminals that honour 8-bit controls), line/paragraph separators,
 * bidi marks, embeddings, overrides and isolates ("Trojan Source"). */
static bool dangerous(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Word-at-a-time tests on 8 bytes at once (the classic bit tricks; each is exact about
 * whether some byte matches, which is all the fast path needs). */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t any_zero(uint64_t x) { return (x - ONES) & ~x & HIGHS; }
static inline uint64_t any_below(uint64_t x, unsigned k) { return (x - ONES * k) & ~x & HIGHS; }
static inline uint64_t any_above(uint64_t x, unsigned k) { return ((x + ONES * (127 - k)) | x) & HIGHS; }

/* Skips whole words of plain ASCII (0x20..0x7e, neither quote): most names are only that. */
static size_t plain_words(const uint8_t *s, size_t i, size_t n, uint8_t quote_a, uint8_t quote_b)
{
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (any_below(w, 0x20) | any_above(w, 0x7e) | any_zero(w ^ (ONES * quote_a)) |
            any_zero(w ^ (ONES * quote_b)))
            break;
    }
    return i;
}

/* End of the span starting at i that both escapers copy unchanged: printable ASCII other than
 * `quote_a`/`quote_b`, and valid non-dangerous UTF-8. */
static size_t safe_span(const uint8_t *s, size_t i, size_t n, uint8_t quote_a, uint8_t quote_b)
{
    i = plain_words(s, i, n, quote_a, quote_b);
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (c == quote_a || c == quote_b)
                return i;
            i++;
            continue;
        }
        if (c < 0x80)
            return i;
        uint32_t cp;
        size_t len = utf8_seq(s + i, n - i, &cp);
        if (len == 0 || dangerous(cp))
            return i;
        i += len;
    }
    return i;
}

static bool put_xnn(struct buf *b, uint8_t c)
{
    char t[4] = { '\\', 'x', hexdig[c >> 4], hexdig[c & 15] };
    return buf_append(b, t, sizeof t);
}

/* `\u{xxxx}` (text form) or `\uxxxx` (JSON form) for a BMP code point. */
static bool put_u4(struct buf *b, uint32_t cp, bool braces)
{
    char t[8];
    size_t k = 0;
    t[k++] = '\\';
    t[k++] = 'u';
    if (braces)
        t[k++] = '{';
    for (int sh = 12; sh >= 0; sh -= 4)
        t[k++] = hexdig[(cp >> sh) & 15];
    if (braces)
        t[k++] = '}';
    return buf_append(b, t, k);
}

/* One ASCII control byte or backslash, text form. */
static bool text_ascii(struct buf *b, uint8_t c)
{
    switch (c) {
    case '\\': return buf_append(b, "\\\\", 2);
    case '\n': return buf_append(b, "\\n", 2);
    case '\t': return buf_append(b, "\\t", 2);
    case '\r': return buf_append(b, "\\r", 2);
    default:   return put_xnn(b, c);
    }
}

/* The unit at s[0] (which stopped the safe span), text form. Returns the bytes consumed, 0
 * when the buffer refused to grow. */
static size_t text_unit(struct buf *b, const uint8_t *s, size_t n)
{
    if (s[0] < 0x80)
        return text_ascii(b, s[0]) ? 1 : 0;
    uint32_t cp;
    size_t len = utf8_seq(s, n, &cp);
    if (len == 0)
        return put_xnn(b, s[0]) ? 1 : 0;
    return put_u4(b, cp, true) ? len : 0;    /* valid, so it stopped the span as dangerous */
}

/* The same, JSON form. */
static size_t json_unit(struct buf *b, const uint8_t *s, size_t n)
{
    if (s[0] == '\\' || s[0] == '"') {
        char t[2] = { '\\', (char)s[0] };
        return buf_append(b, t, 2) ? 1 : 0;
    }
    if (s[0] < 0x80)
        return put_u4(b, s[0], false) ? 1 : 0;
    uint32_t cp;
    size_t len = utf8_seq(s, n, &cp);
    if (len == 0)
        return buf_append(b, "\\ufffd", 6) ? 1 : 0;
    return put_u4(b, cp, false) ? len : 0;
}

/* The bytes of a string up to 16, loaded as two (possibly overlapping) halves that together
 * cover all of it and nothing past it: the test below only asks whether some byte is unsafe, so
 * a byte seen twice does not matter. */
static inline uint64_t load8(const uint8_t *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

static inline uint64_t load4(const uint8_t *s)
{
    uint32_t w;
    memcpy(&w, s, 4);
    return w;
}

/* n <= 8 bytes as one word of them: 4..8 as two overlapping halves, 1..3 as the first, middle
 * and last bytes, repeated. */
static inline uint64_t short_word(const uint8_t *s, size_t n)
{
    if (n >= 4)
        return load4(s) | load4(s + n - 4) << 32;
    uint64_t w = s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16 | (uint64_t)s[0] << 24;
    return w | w << 32;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Sixteen bytes that are all printable ASCII other than the quotes. A signed compare keeps
 * 0x20..0x7f (bytes from 0x80 are negative); 0x7f and the quotes are then taken out. */
static inline bool plain16(__m128i x, __m128i qa, __m128i qb)
{
    __m128i ok = _mm_cmpgt_epi8(x, _mm_set1_epi8(0x1f));
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)),
                               _mm_or_si128(_mm_cmpeq_epi8(x, qa), _mm_cmpeq_epi8(x, qb)));
    return _mm_movemask_epi8(_mm_andnot_si128(bad, ok)) == 0xffff;
}

/* The whole of s[0..n) is printable ASCII other than the quotes: sixteen bytes a step, the
 * last step overlapping the one before. */
static inline bool all_plain(const uint8_t *s, size_t n, uint8_t quote_a, uint8_t quote_b)
{
    __m128i qa = _mm_set1_epi8((char)quote_a), qb = _mm_set1_epi8((char)quote_b);
    if (n < 16) {
        if (n == 0)
            return true;
        uint64_t lo = n >= 8 ? load8(s) : short_word(s, n), hi = n >= 8 ? load8(s + n - 8) : lo;
        return plain16(_mm_set_epi64x((long long)hi, (long long)lo), qa, qb);
    }
    for (size_t i = 0; i + 16 < n; i += 16)
        if (!plain16(_mm_loadu_si128((const __m128i *)(const void *)(s + i)), qa, qb))
            return false;
    return plain16(_mm_loadu_si128((const __m128i *)(const void *)(s + n - 16)), qa, qb);
}
#else
static inline bool plain8(uint64_t w, uint8_t quote_a, uint8_t quote_b)
{
    return !(any_below(w, 0x20) | any_above(w, 0x7e) | any_zero(w ^ (ONES * quote_a)) |
             any_zero(w ^ (ONES * quote_b)));
}

/* The same a word at a time, the last word overlapping the one before. */
static inline bool all_plain(const uint8_t *s, size_t n, uint8_t quote_a, uint8_t quote_b)
{
    if (n <= 8)
        return n == 0 || plain8(short_word(s, n), quote_a, quote_b);
    for (size_t i = 0; i + 8 < n; i += 8)
        if (!plain8(load8(s + i), quote_a, quote_b))
            return false;
    return plain8(load8(s + n - 8), quote_a, quote_b);
}
#endif

/* Most names are plain ASCII through and through: one test of the whole string and one copy,
 * inline in the callers with their quotes as constants, without the span-by-span walk of
 * escape() (which was a tenth of writing folded stacks). False: the string needs escape(). */
static inline bool copy_plain(struct buf *b, const uint8_t *s, size_t n, uint8_t quote, bool *ok)
{
    if (!all_plain(s, n, '\\', quote))
        return false;
    *ok = n == 0 || buf_reserve(b, n);
    if (n && *ok)
        buf_put(b, s, n);
    return true;
}

static bool escape(struct buf *b, const uint8_t *s, size_t n, uint8_t quote,
                   size_t (*unit)(struct buf *, const uint8_t *, size_t))
{
    size_t i = 0;
    while (i < n) {
        size_t end = safe_span(s, i, n, '\\', quote);
        if (end > i && !buf_append(b, s + i, end - i))
            return false;
        if (end == n)
            break;
        size_t used = unit(b, s + end, n - end);
        if (used == 0)
            return false;
        i = end + used;
    }
    return true;
}

bool esc_text(struct buf *b, const void *p, size_t n)
{
    bool ok;
    return copy_plain(b, p, n, '\\', &ok) ? ok : escape(b, p, n, '\\', text_unit);
}

bool esc_json(struct buf *b, const void *p, size_t n)
{
    bool ok;
    return copy_plain(b, p, n, '"', &ok) ? ok : escape(b, p, n, '"', json_unit);
}

bool esc_json_quoted(struct buf *b, const void *p, size_t n)
{
    return buf_putc(b, '"') && esc_json(b, p, n) && buf_putc(b, '"');
}
