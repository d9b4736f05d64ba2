/*
 * test_escape.c - the escapers are the only thing between a sender and the user's terminal,
 * so every rule of lib/escape.h is checked here with hand-written expectations, plus a
 * property check over random bytes (the output is valid UTF-8 and free of controls) against a
 * validator written differently from the escaper's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "lib/buf.h"
#include "lib/escape.h"

/* Escapes in[0..n) into dst as a C string. */
static const char *escaped(char *dst, size_t cap, bool json, const char *in, size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    bool ok = json ? esc_json(&b, in, n) : esc_text(&b, in, n);
    size_t len = b.len < cap - 1 ? b.len : cap - 1;
    if (len)
        memcpy(dst, b.data, len);
    dst[len] = '\0';
    buf_free(&b);
    return ok ? dst : "<escaper failed>";
}

/* `in` is a string literal: its length comes from sizeof, so embedded NULs count. */
#define TXT(in, want)                                                              \
    do {                                                                           \
        char d_[512];                                                              \
        CHECK_EQ_STR(escaped(d_, sizeof d_, false, in, sizeof(in) - 1), want);     \
    } while (0)
#define JSN(in, want)                                                              \
    do {                                                                           \
        char d_[512];                                                              \
        CHECK_EQ_STR(escaped(d_, sizeof d_, true, in, sizeof(in) - 1), want);      \
    } while (0)

TEST(text_plain_ascii_passes)
{
    TXT("", "");
    TXT("hello, world", "hello, world");
    TXT("void java.lang.Thread.run()", "void java.lang.Thread.run()");
    TXT("PerformanceTest$$Lambda$1+<hidden>.run() ~!@#%^&*{}|\"';:", "PerformanceTest$$Lambda$1+<hidden>.run() ~!@#%^&*{}|\"';:");
}

TEST(text_backslash_doubles)
{
    TXT("a\\b", "a\\\\b");
    TXT("\\", "\\\\");
    TXT("C:\\x1b", "C:\\\\x1b");   /* a literal backslash-x cannot pass for an escape */
}

TEST(text_ascii_controls)
{
    TXT("a\nb", "a\\nb");
    TXT("a\tb\rc", "a\\tb\\rc");
    TXT("\x00", "\\x00");
    TXT("a\x00" "b", "a\\x00b");
    TXT("\x01\x07\x08\x0b\x0c\x1f", "\\x01\\x07\\x08\\x0b\\x0c\\x1f");
    TXT("\x7f", "\\x7f");
    TXT(" ~", " ~");   /* 0x20 and 0x7e are the printable edges */
}

TEST(text_terminal_injection)
{
    TXT("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    TXT("\x1b]0;owned\x07", "\\x1b]0;owned\\x07");          /* OSC: set the window title */
    TXT("line\n2025-01-01 fake line", "line\\n2025-01-01 fake line");
}

TEST(text_c1_controls)
{
    TXT("\xc2\x9b" "31m", "\\u{009b}31m");   /* U+009B, a CSI for 8-bit terminals */
    TXT("\xc2\x80", "\\u{0080}");
    TXT("\xc2\x9f", "\\u{009f}");
    TXT("\xc2\x85", "\\u{0085}");            /* NEL */
    TXT("\xc2\xa0", "\xc2\xa0");             /* U+00A0, just past C1: passes */
}

TEST(text_separators_and_bidi)
{
    TXT("a\xe2\x80\xa8" "b", "a\\u{2028}b");
    TXT("\xe2\x80\xa9", "\\u{2029}");
    TXT("\xe2\x80\x8e\xe2\x80\x8f", "\\u{200e}\\u{200f}");
    TXT("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae",
        "\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}");
    TXT("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
        "\\u{2066}\\u{2067}\\u{2068}\\u{2069}");
    TXT("\xd8\x9c", "\\u{061c}");            /* ARABIC LETTER MARK, also a bidi control */
    TXT("admin\xe2\x80\xae" "nimda", "admin\\u{202e}nimda");
    /* neighbours that are harmless pass */
    TXT("\xe2\x80\x8d", "\xe2\x80\x8d");     /* U+200D ZWJ, inside emoji sequences */
    TXT("\xe2\x80\xa7", "\xe2\x80\xa7");     /* U+2027 */
    TXT("\xe2\x80\xaf", "\xe2\x80\xaf");     /* U+202F */
    TXT("\xe2\x81\xa5", "\xe2\x81\xa5");     /* U+2065 */
    TXT("\xe2\x81\xaa", "\xe2\x81\xaa");     /* U+206A */
}

TEST(text_valid_utf8_passes)
{
    TXT("caf\xc3\xa9", "caf\xc3\xa9");                        /* é */
    TXT("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
    TXT("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");              /* U+1F600, 4 bytes */
    TXT("\xed\x9f\xbf", "\xed\x9f\xbf");                      /* U+D7FF, below the surrogates */
    TXT("\xee\x80\x80", "\xee\x80\x80");                      /* U+E000, above them */
    TXT("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");              /* U+10FFFF, the last one */
    TXT("\xef\xbb\xbf", "\xef\xbb\xbf");                      /* U+FEFF passes */
}

TEST(text_invalid_utf8_bytes)
{
    TXT("\xc0\xaf", "\\xc0\\xaf");                 /* overlong '/' */
    TXT("\xc1\xbf", "\\xc1\\xbf");                 /* overlong */
    TXT("\xe0\x80\xaf", "\\xe0\\x80\\xaf");        /* overlong, 3 bytes */
    TXT("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"); /* overlong, 4 bytes */
    TXT("\xed\xa0\x80", "\\xed\\xa0\\x80");        /* U+D800 surrogate */
    TXT("\xed\xbf\xbf", "\\xed\\xbf\\xbf");        /* U+DFFF surrogate */
    TXT("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* U+110000 */
    TXT("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
    TXT("\xff\xfe", "\\xff\\xfe");
    TXT("\x80", "\\x80");                          /* lone continuation byte */
    TXT("a\xbf" "b", "a\\xbfb");
}

TEST(text_truncated_sequences)
{
    TXT("ab\xe6\x97", "ab\\xe6\\x97");             /* 日 cut at the end */
    TXT("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
    TXT("\xc3", "\\xc3");
    TXT("\xe6" "A\xe6\x97\xa5", "\\xe6A\xe6\x97\xa5"); /* cut by ASCII, then a valid one */
    TXT("\xc3\xc3\xa9", "\\xc3\xc3\xa9");          /* a lead byte, then é */
}

TEST(json_escapes)
{
    JSN("", "");
    JSN("plain text", "plain text");
    JSN("say \"hi\" \\o/", "say \\\"hi\\\" \\\\o/");
    JSN("\n\t\x01\x1b\x7f", "\\u000a\\u0009\\u0001\\u001b\\u007f");
    JSN("a\x00" "b", "a\\u0000b");
    JSN("\xc2\x9b", "\\u009b");
    JSN("\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029");
    JSN("\xe2\x80\xae\xe2\x81\xa6", "\\u202e\\u2066");
    JSN("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
}

TEST(json_invalid_utf8_is_replaced)
{
    JSN("\xff", "\\ufffd");
    JSN("\xc0\xaf", "\\ufffd\\ufffd");
    JSN("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");
    JSN("x\xe6\x97", "x\\ufffd\\ufffd");
    JSN("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");
}

TEST(json_quoted)
{
    struct buf b;
    buf_init(&b, 64);
    CHECK(esc_json_quoted(&b, "a\"b", 3));
    CHECK(b.len == 6 && memcmp(b.data, "\"a\\\"b\"", 6) == 0);
    buf_free(&b);
}

TEST(buffer_limit_is_reported)
{
    struct buf b;
    buf_init(&b, 5);
    CHECK(!esc_text(&b, "\x1b\x1b", 2));     /* needs 8 bytes */
    CHECK(b.len <= 5);
    buf_reset(&b);
    CHECK(esc_text(&b, "abcde", 5));
    CHECK(!esc_text(&b, "f", 1));
    buf_free(&b);
    buf_init(&b, 3);
    CHECK(!esc_json(&b, "\xff", 1));
    buf_free(&b);
}

/* ---- property check over random input ---- */

/* Decodes one UTF-8 sequence the long way (count the leading ones, gather the bits, then
 * reject by value); returns its length or 0. Written independently of the escaper. */
static size_t decode_one(const uint8_t *s, size_t n, uint32_t *cp)
{
    int ones = 0;
    while (ones < 8 && (s[0] & (0x80 >> ones)))
        ones++;
    if (ones == 0) {
        *cp = s[0];
        return 1;
    }
    if (ones == 1 || ones > 4 || (size_t)ones > n)
        return 0;
    uint32_t v = s[0] & (0xffu >> (ones + 1));
    for (int i = 1; i < ones; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min_for_len[ones] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return (size_t)ones;
}

/* Valid UTF-8, no C0/DEL, no C1, no separators or bidi controls. */
static bool terminal_safe(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = decode_one(s + i, n - i, &cp);
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
            cp == 0x2029 || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
            (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
            return false;
        i += len;
    }
    return true;
}

TEST(random_input_gives_safe_output)
{
    uint64_t x = 0x243f6a8885a308d3ull;   /* xorshift: the same bytes on every run */
    struct buf t, j;
    buf_init(&t, 1 << 20);
    buf_init(&j, 1 << 20);
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t in[24];
        size_t n = (size_t)(round % 24);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* bias towards the interesting bytes: controls, lead and continuation bytes */
            uint8_t r = (uint8_t)x;
            in[i] = (x >> 8) % 3 == 0 ? (uint8_t)(0x80 | (r & 0x3f)) : (x >> 8) % 3 == 1 ? (uint8_t)(0xc0 | (r & 0x3f)) : r;
        }
        buf_reset(&t);
        buf_reset(&j);
        if (!esc_text(&t, in, n) || !esc_json(&j, in, n) ||
            !terminal_safe(t.data, t.len) || !terminal_safe(j.data, j.len))
            bad++;
        /* text output has no raw backslash but in escapes, JSON none unescaped: every
         * backslash starts a known escape */
        for (size_t i = 0; i < t.len; i++)
            if (t.data[i] == '\\') {
                uint8_t c = i + 1 < t.len ? t.data[i + 1] : 0;
                if (c != '\\' && c != 'n' && c != 't' && c != 'r' && c != 'x' && c != 'u')
                    bad++;
                i++;
            }
    }
    CHECK_EQ_INT(bad, 0);
    buf_free(&t);
    buf_free(&j);
}

int main(void)
{
    RUN(text_plain_ascii_passes);
    RUN(text_backslash_doubles);
    RUN(text_ascii_controls);
    RUN(text_terminal_injection);
    RUN(text_c1_controls);
    RUN(text_separators_and_bidi);
    RUN(text_valid_utf8_passes);
    RUN(text_invalid_utf8_bytes);
    RUN(text_truncated_sequences);
    RUN(json_escapes);
    RUN(json_invalid_utf8_is_replaced);
    RUN(json_quoted);
    RUN(buffer_limit_is_reported);
    RUN(random_input_gives_safe_output);
    return check_done();
}
