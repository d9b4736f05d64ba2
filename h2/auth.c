/*
 * auth.c - the bearer-token set behind auth.h: parsing the token file, and the constant-time
 * check of an Authorization header.
 *
 * Why digests: comparing fixed-size SHA-256 digests makes every comparison the same length
 * whatever the presented token's length, and the tokens themselves are not kept in memory
 * once read.
 */
#include "h2/auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define AUTH_MAX_FILE ((size_t)1 << 20)

struct h2_auth {
    unsigned char (*digests)[SHA256_DIGEST_LENGTH];
    size_t n;
};

struct h2_auth *h2_auth_new(void) { return calloc(1, sizeof(struct h2_auth)); }

void h2_auth_free(struct h2_auth *a)
{
    if (!a)
        return;
    free(a->digests);
    free(a);
}

size_t h2_auth_count(const struct h2_auth *a) { return a->n; }

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (('a' <= p[i] && p[i] <= 'z') || ('A' <= p[i] && p[i] <= 'Z') ||
                     ('0' <= p[i] && p[i] <= '9') || strchr("-._~+/", p[i]) != NULL) && p[i] != '\0')
        i++;
    if (i == 0)
        return false;
    while (i < n && p[i] == '=')
        i++;
    return i == n;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

int h2_auth_parse(struct h2_auth *a, const char *text, size_t len, char *err, size_t errlen)
{
    unsigned char (*digests)[SHA256_DIGEST_LENGTH] = NULL;
    size_t n = 0, line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol)
            eol = end;
        line++;
        while (p < eol && is_space(*p))
            p++;
        const char *q = eol;
        while (q > p && is_space(q[-1]))
            q--;
        size_t tlen = (size_t)(q - p);
        if (tlen == 0 || *p == '#') {
            p = next;
            continue;
        }
        const char *why = tlen > AUTH_MAX_TOKEN_LEN ? "longer than 4096 bytes"
                          : !is_b64token(p, tlen)   ? "not a bearer token (letters, digits, -._~+/ then any =)"
                          : n == AUTH_MAX_TOKENS    ? "more than 1024 tokens"
                                                    : NULL;
        if (why) {
            snprintf(err, errlen, "line %zu: %s", line, why);
            free(digests);
            return -1;
        }
        if (n % 16 == 0) {
            void *grown = realloc(digests, (n + 16) * sizeof *digests);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                free(digests);
                return -1;
            }
            digests = grown;
        }
        SHA256((const unsigned char *)p, tlen, digests[n++]);
        p = next;
    }
    if (n == 0) {
        snprintf(err, errlen, "no token in it (one token per line)");
        free(digests);
        return -1;
    }
    free(a->digests);
    a->digests = digests;
    a->n = n;
    return 0;
}

int h2_auth_load(struct h2_auth *a, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(AUTH_MAX_FILE + 1);
    size_t len = text ? fread(text, 1, AUTH_MAX_FILE + 1, f) : 0;
    int rc = -1;
    if (!text)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (ferror(f))
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (len > AUTH_MAX_FILE)
        snprintf(err, errlen, "%s: larger than 1 MiB", path);
    else {
        char why[160];
        rc = h2_auth_parse(a, text, len, why, sizeof why);
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path, why);
    }
    if (text) {
        OPENSSL_cleanse(text, len);   /* the tokens themselves are not kept */
        free(text);
    }
    fclose(f);
    return rc;
}

bool h2_auth_check(const struct h2_auth *a, const char *value, size_t len)
{
    static const char scheme[] = "Bearer";
    const char *end = value + len;
    while (value < end && is_space(*value))
        value++;
    while (end > value && is_space(end[-1]))
        end--;
    size_t n = (size_t)(end - value);
    if (n <= sizeof scheme || strncasecmp(value, scheme, sizeof scheme - 1) != 0 ||
        value[sizeof scheme - 1] != ' ')
        return false;
    const char *token = value + sizeof scheme;
    while (token < end && *token == ' ')
        token++;
    if (token == end || (size_t)(end - token) > AUTH_MAX_TOKEN_LEN)
        return false;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, (size_t)(end - token), digest);
    int match = 0;
    for (size_t i = 0; i < a->n; i++)   /* every digest, whatever matched before */
        match |= CRYPTO_memcmp(digest, a->digests[i], sizeof digest) == 0;
    return match != 0;
}
