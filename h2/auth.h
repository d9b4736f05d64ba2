/*
 * auth.h - bearer tokens (RFC 6750): the set a server accepts, read from a file, and the
 * check of a request's Authorization header against it.
 *
 * The file holds one token per line; blank lines and lines starting with '#' are skipped,
 * spaces, tabs and a CR around a token are trimmed. A token is RFC 6750's b64token (letters,
 * digits, "-._~+/", then any '='), 1 to 4096 bytes; at most 1024 tokens. Only the tokens'
 * SHA-256 digests are kept, and a presented token is compared with every one of them in
 * constant time (CRYPTO_memcmp, no early exit), so response times tell nothing of how much of
 * a token was right.
 */
#ifndef LB_H2_AUTH_H
#define LB_H2_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum { AUTH_MAX_TOKENS = 1024, AUTH_MAX_TOKEN_LEN = 4096 };

struct h2_auth;

struct h2_auth *h2_auth_new(void);
void h2_auth_free(struct h2_auth *a);

/* Replaces the tokens with those in `text` (a file's contents). On error, -1 with `err`
 * naming the line, and the tokens held before are kept. A text without any token is an
 * error. */
int h2_auth_parse(struct h2_auth *a, const char *text, size_t len, char *err, size_t errlen);
/* h2_auth_parse on a file's contents (at most 1 MiB). */
int h2_auth_load(struct h2_auth *a, const char *path, char *err, size_t errlen);
size_t h2_auth_count(const struct h2_auth *a);

/* Whether an Authorization header's value ("Bearer <token>", the scheme in any case) carries
 * one of the tokens. */
bool h2_auth_check(const struct h2_auth *a, const char *value, size_t len);

#endif
