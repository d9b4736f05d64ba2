/*
 * fuzz_auth.c - libFuzzer target: arbitrary bytes as a bearer-token file (--token-file, read
 * at start and at every SIGHUP) and as the Authorization header a client sends (h2/auth.c).
 * The header is hostile by nature; the file may be written by a tool or by hand.
 *
 * Input: a u16 little-endian length, then that many bytes of file (cut to what is there),
 * then the header's value.
 *
 * Checks beyond the sanitizers, against a reading of auth.h's grammar written here apart from
 * the parser: the file is taken exactly when every non-blank, non-comment line is one
 * RFC 6750 b64token of at most 4096 bytes and there are 1 to 1024 of them, with that many
 * tokens; a refusal names a line in one printable line and keeps the tokens held before;
 * every token of the file is accepted behind "Bearer " in any case and with spaces around, a
 * token one byte longer or shorter only when the file has it too; the fuzzed header is
 * accepted exactly when it is "Bearer", a space and one of the tokens.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2/auth.h"
#include "test/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CHECKED 8   /* tokens whose neighbours are tried, per input */

struct token {
    const char *p;
    size_t n;
};

static bool is_b64char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
}

static bool model_token_ok(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_b64char(p[i]))
        i++;
    if (i == 0)
        return false;
    while (i < n && p[i] == '=')
        i++;
    return i == n && n <= AUTH_MAX_TOKEN_LEN;
}

static bool model_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The file as auth.h describes it: the tokens (into toks, at most AUTH_MAX_TOKENS + 1), or
 * false when a line is not one token or there are none or too many. */
static bool model_parse(const char *text, size_t len, struct token *toks, size_t *count)
{
    size_t n = 0, start = 0;
    while (start < len) {
        size_t eol = start;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t a = start, b = eol;
        while (a < b && model_space(text[a]))
            a++;
        while (b > a && model_space(text[b - 1]))
            b--;
        start = eol + 1;
        if (a == b || text[a] == '#')
            continue;
        if (!model_token_ok(text + a, b - a) || n == AUTH_MAX_TOKENS)
            return false;
        toks[n++] = (struct token){ text + a, b - a };
    }
    *count = n;
    return n > 0;
}

static bool model_has(const struct token *toks, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (toks[i].n == len && memcmp(toks[i].p, p, len) == 0)
            return true;
    return false;
}

/* The header as auth.h describes it: "Bearer" in any case, a space, spaces, one token of the
 * set; spaces, tabs and CRs around the whole. */
static bool model_check(const struct token *toks, size_t n, const char *v, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && model_space(v[a]))
        a++;
    while (b > a && model_space(v[b - 1]))
        b--;
    if (b - a < 8 || strncasecmp(v + a, "Bearer", 6) != 0 || v[a + 6] != ' ')
        return false;
    a += 7;
    while (a < b && v[a] == ' ')
        a++;
    return a < b && model_has(toks, n, v + a, b - a);
}

static bool check_header(const struct h2_auth *au, const char *prefix, const char *p, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix);
    char *h = malloc(lp + n + ls + 1);
    fuzz_must(h != NULL, "auth: malloc");
    memcpy(h, prefix, lp);
    memcpy(h + lp, p, n);
    memcpy(h + lp + n, suffix, ls);
    bool ok = h2_auth_check(au, h, lp + n + ls);
    free(h);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    if (size < 2)
        return 0;
    size_t flen = (size_t)data[0] | (size_t)data[1] << 8;
    if (flen > size - 2)
        flen = size - 2;
    const char *file = (const char *)data + 2, *hdr = file + flen;
    size_t hlen = size - 2 - flen;

    static struct token toks[AUTH_MAX_TOKENS + 1];
    size_t n = 0;
    bool expect_ok = model_parse(file, flen, toks, &n);

    struct h2_auth *au = h2_auth_new();
    fuzz_must(au != NULL, "h2_auth_new");
    char err[200] = "";
    fuzz_must(h2_auth_parse(au, "kept\n", 5, err, sizeof err) == 0, "auth: a one-token file refused");
    int rc = h2_auth_parse(au, file, flen, err, sizeof err);
    if (!expect_ok) {
        fuzz_must(rc == -1, "auth: a file the grammar refuses was taken");
        fuzz_must(err[0] && fuzz_printable(err), "auth: a refusal that is not one printable line");
        fuzz_must(h2_auth_count(au) == 1 && h2_auth_check(au, "Bearer kept", 11),
                  "auth: a refused file changed the tokens held before");
        n = 1;
        toks[0] = (struct token){ "kept", 4 };
    } else {
        fuzz_must(rc == 0, "auth: a file the grammar takes was refused");
        fuzz_must(h2_auth_count(au) == n, "auth: another number of tokens than the file holds");
        for (size_t i = 0; i < n && i < MAX_CHECKED; i++) {
            const struct token *t = &toks[i];
            fuzz_must(check_header(au, "Bearer ", t->p, t->n, ""), "auth: a token of the file refused");
            fuzz_must(check_header(au, " \tbEARER   ", t->p, t->n, " \r"), "auth: a token with spaces refused");
            fuzz_must(!check_header(au, "Basic ", t->p, t->n, ""), "auth: a token taken behind another scheme");
            fuzz_must(!check_header(au, "Bearer", t->p, t->n, ""), "auth: a token taken without the space");
            bool longer_in = false;
            for (size_t j = 0; j < n; j++)
                longer_in |= toks[j].n == t->n + 1 && memcmp(toks[j].p, t->p, t->n) == 0 && toks[j].p[t->n] == 'A';
            fuzz_must(check_header(au, "Bearer ", t->p, t->n, "A") == longer_in,
                      "auth: a token with a byte more taken though the file lacks it");
            if (t->n > 1)
                fuzz_must(check_header(au, "Bearer ", t->p, t->n - 1, "") == model_has(toks, n, t->p, t->n - 1),
                          "auth: a token's prefix taken though the file lacks it");
        }
    }
    fuzz_must(h2_auth_check(au, hdr, hlen) == model_check(toks, n, hdr, hlen),
              "auth: the header's verdict differs from the grammar's");
    h2_auth_free(au);
    return 0;
}
