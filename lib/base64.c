/*
 * base64.c - see base64.h. Four characters make three bytes; a final group of two or three
 * characters makes one or two bytes, and its unused low bits must be zero (a canonical
 * encoding), so every accepted string stands for exactly one byte string.
 */
#include "lib/base64.h"

#include <stdint.h>

/* 0-63 for an alphabet character (both alphabets), -1 otherwise. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

enum base64_result base64_decode(const char *in, size_t n, struct buf *out)
{
    /* Strip the padding: at most two '=', and only when the length is then whole groups. */
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4 != 0)
        return BASE64_INVALID;
    if (n % 4 == 1)
        return BASE64_INVALID;
    if (!buf_reserve(out, n / 4 * 3 + 2))
        return BASE64_FULL;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = sextet((unsigned char)in[i]);
        if (v < 0)
            return BASE64_INVALID;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->len++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc == 0 ? BASE64_OK : BASE64_INVALID;   /* leftover bits must be zero */
}
