/*
 * test_auth.c - the bearer-token file and the Authorization check (h2/auth.h), with
 * hand-written files and headers: what a line may hold, what is refused and why (by line),
 * that a refused file keeps the tokens held before, and that only a whole token of the set,
 * behind the Bearer scheme, is accepted (a prefix, an extension, another scheme are not).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "h2/auth.h"

#define PARSE(a, text, err) h2_auth_parse(a, text, sizeof(text) - 1, err, sizeof err)
#define OK(a, header) h2_auth_check(a, header, sizeof(header) - 1)

TEST(file_forms)
{
    struct h2_auth *a = h2_auth_new();
    char err[160] = "";
    /* comments, blank lines, spaces and tabs around, CRLF, no final newline */
    CHECK_EQ_INT(PARSE(a, "# agents\n\n  alpha-1  \r\n\tb.e_t~a+/==\r\n#gamma\nlast", err), 0);
    CHECK_EQ_INT(h2_auth_count(a), 3);
    CHECK(OK(a, "Bearer alpha-1"));
    CHECK(OK(a, "Bearer b.e_t~a+/=="));
    CHECK(OK(a, "Bearer last"));
    CHECK(!OK(a, "Bearer gamma"));      /* a comment is no token */
    CHECK(!OK(a, "Bearer #gamma"));
    h2_auth_free(a);
}

TEST(file_refusals)
{
    struct h2_auth *a = h2_auth_new();
    char err[160] = "";
    CHECK_EQ_INT(PARSE(a, "good\n", err), 0);
    CHECK_EQ_INT(PARSE(a, "ok\nhas space\n", err), -1);
    CHECK_EQ_STR(err, "line 2: not a bearer token (letters, digits, -._~+/ then any =)");
    CHECK_EQ_INT(PARSE(a, "a=b\n", err), -1);       /* '=' only at the end */
    CHECK_EQ_STR(err, "line 1: not a bearer token (letters, digits, -._~+/ then any =)");
    CHECK_EQ_INT(PARSE(a, "==\n", err), -1);        /* '=' alone */
    CHECK_EQ_INT(PARSE(a, "x\n\"quoted\"\n", err), -1);
    CHECK_EQ_INT(PARSE(a, "nul\0byte\n", err), -1);
    CHECK_EQ_INT(PARSE(a, "\n# nothing\n  \n", err), -1);
    CHECK_EQ_STR(err, "no token in it (one token per line)");
    CHECK_EQ_INT(PARSE(a, "", err), -1);
    /* every refusal kept the tokens held before */
    CHECK_EQ_INT(h2_auth_count(a), 1);
    CHECK(OK(a, "Bearer good"));
    h2_auth_free(a);
}

TEST(file_limits)
{
    struct h2_auth *a = h2_auth_new();
    char err[160] = "";
    size_t n = AUTH_MAX_TOKEN_LEN + 2;
    char *text = malloc(n + 1);
    memset(text, 'k', n);
    text[n - 1] = '\n';
    /* text: 4097 'k' and a newline */
    CHECK_EQ_INT(h2_auth_parse(a, text + 1, n - 1, err, sizeof err), 0);   /* 4096: the most */
    CHECK_EQ_INT(h2_auth_parse(a, text, n, err, sizeof err), -1);           /* 4097 */
    CHECK_EQ_STR(err, "line 1: longer than 4096 bytes");
    free(text);
    /* 1024 tokens, then 1025 */
    size_t cap = (AUTH_MAX_TOKENS + 1) * 8 + 1, len = 0;
    char *many = malloc(cap);
    for (int i = 0; i < AUTH_MAX_TOKENS; i++)
        len += (size_t)snprintf(many + len, cap - len, "t%05d\n", i);
    CHECK_EQ_INT(h2_auth_parse(a, many, len, err, sizeof err), 0);
    CHECK_EQ_INT(h2_auth_count(a), 1024);
    CHECK(OK(a, "Bearer t00000"));
    CHECK(OK(a, "Bearer t01023"));
    len += (size_t)snprintf(many + len, cap - len, "t99999\n");
    CHECK_EQ_INT(h2_auth_parse(a, many, len, err, sizeof err), -1);
    CHECK_EQ_STR(err, "line 1025: more than 1024 tokens");
    free(many);
    h2_auth_free(a);
}

TEST(header_forms)
{
    struct h2_auth *a = h2_auth_new();
    char err[160] = "";
    CHECK_EQ_INT(PARSE(a, "s3cret-Token_1\nother\n", err), 0);
    CHECK(OK(a, "Bearer s3cret-Token_1"));
    CHECK(OK(a, "bearer s3cret-Token_1"));          /* the scheme is case-insensitive */
    CHECK(OK(a, "BEARER other"));
    CHECK(OK(a, "  Bearer   s3cret-Token_1  "));    /* optional whitespace around */
    CHECK(!OK(a, "Bearer s3cret-token_1"));         /* the token is not */
    CHECK(!OK(a, "Bearer s3cret-Token_"));          /* a prefix */
    CHECK(!OK(a, "Bearer s3cret-Token_12"));        /* an extension */
    CHECK(!OK(a, "Bearer s3cret-Token_1 other"));   /* two tokens */
    CHECK(!OK(a, "Bearers3cret-Token_1"));          /* no space after the scheme */
    CHECK(!OK(a, "Basic s3cret-Token_1"));
    CHECK(!OK(a, "s3cret-Token_1"));                /* no scheme */
    CHECK(!OK(a, "Bearer"));
    CHECK(!OK(a, "Bearer "));
    CHECK(!OK(a, ""));
    CHECK(!OK(a, "Bearer s3cret-Token_1\0"));       /* a NUL after it is part of it */
    h2_auth_free(a);
}

TEST(load_file)
{
    struct h2_auth *a = h2_auth_new();
    char err[256] = "";
    char path[] = "/tmp/lb-auth-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    static const char text[] = "from-file\n";
    CHECK_EQ_INT(write(fd, text, sizeof text - 1), (long long)(sizeof text - 1));
    close(fd);
    CHECK_EQ_INT(h2_auth_load(a, path, err, sizeof err), 0);
    CHECK(OK(a, "Bearer from-file"));
    unlink(path);
    CHECK_EQ_INT(h2_auth_load(a, path, err, sizeof err), -1);
    CHECK(strstr(err, "No such file or directory") != NULL);
    CHECK(OK(a, "Bearer from-file"));               /* kept */
    h2_auth_free(a);
}

int main(void)
{
    RUN(file_forms);
    RUN(file_refusals);
    RUN(file_limits);
    RUN(header_forms);
    RUN(load_file);
    return check_done();
}
