/*
 * tls.c - the OpenSSL server context behind tls.h, and the ALPN choice of each port.
 *
 * Why a context is rebuilt rather than changed in place on reload: an SSL_CTX that is in use
 * must not be modified, and every connection holds a reference to the context it was made
 * from (SSL_new takes one), so swapping the pointer and dropping ours lets open connections
 * finish with the old certificate while new ones get the new.
 */
#include "h2/tls.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "h2/internal.h"

struct h2_tls {
    char *cert, *key, *client_ca;
    SSL_CTX *ctx;
    char description[512];
};

/* The first error OpenSSL queued, readable, then the queue emptied. */
static void ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, path, reason);
}

/* ALPN, in the server's order of preference: the gRPC port needs HTTP/2; the HTTP port takes
 * HTTP/2 or HTTP/1.1. A client offering none of those is refused on the gRPC port (it cannot
 * speak gRPC) and let through without ALPN on the HTTP port (the first bytes tell). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)arg;
    static const unsigned char grpc_protos[] = "\x02h2";
    static const unsigned char http_protos[] = "\x02h2\x08http/1.1";
    const struct h2_conn *c = SSL_get_app_data(ssl);
    bool grpc = !c || c->srv->cfg.protocol == H2_SERVER_GRPC;
    const unsigned char *mine = grpc ? grpc_protos : http_protos;
    unsigned minelen = grpc ? sizeof grpc_protos - 1 : sizeof http_protos - 1;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, mine, minelen, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }
    return grpc ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

/* "CN=..., serial 0x..., expires ..." of the certificate a context serves. */
static void describe(struct h2_tls *t)
{
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    char subject[200] = "?", serial[80] = "?", expires[64] = "?";
    if (x) {
        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        if (hex)
            snprintf(serial, sizeof serial, "0x%s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
        BIO *b = BIO_new(BIO_s_mem());
        if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
            int n = BIO_read(b, expires, (int)sizeof expires - 1);
            expires[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
    }
    int n = snprintf(t->description, sizeof t->description, "certificate %s, serial %s, expires %s",
                     subject, serial, expires);
    if (n > 0 && (size_t)n < sizeof t->description)
        snprintf(t->description + n, sizeof t->description - (size_t)n, "; %s%s%s",
                 t->client_ca ? "client certificates required (CA " : "no client certificates",
                 t->client_ca ? t->client_ca : "", t->client_ca ? ")" : "");
}

/* A complete context from the files, or NULL with `err` set. */
static SSL_CTX *build_ctx(const struct h2_tls *t, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_error(err, errlen, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A peer that just closes its socket (no close_notify) is an ordinary end of a
     * connection here: every request is framed, so nothing can be cut short unnoticed. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Output is written from a buffer that moves (memmove) and grows between attempts. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    static const unsigned char sid_ctx[] = "lazybackend";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        ssl_error(err, errlen, "cannot load the certificate", t->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_peek_error();
        bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        ssl_error(err, errlen, mismatch ? "the private key does not match the certificate:" : "cannot load the private key",
                  t->key);
        goto fail;
    }
    if (t->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            ssl_error(err, errlen, "cannot load the client CA file", t->client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);   /* takes ownership */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct h2_tls *h2_tls_new(const struct h2_tls_config *cfg, char *err, size_t errlen)
{
    struct h2_tls *t = calloc(1, sizeof *t);
    if (!t || !cfg->cert || !cfg->key || !(t->cert = strdup(cfg->cert)) ||
        !(t->key = strdup(cfg->key)) || (cfg->client_ca && !(t->client_ca = strdup(cfg->client_ca)))) {
        snprintf(err, errlen, "%s", t && (!cfg->cert || !cfg->key) ? "a certificate and its key are both needed"
                                                                   : "out of memory");
        h2_tls_free(t);
        return NULL;
    }
    if (!(t->ctx = build_ctx(t, err, errlen))) {
        h2_tls_free(t);
        return NULL;
    }
    describe(t);
    return t;
}

int h2_tls_reload(struct h2_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = build_ctx(t, err, errlen);
    if (!ctx)
        return -1;
    SSL_CTX_free(t->ctx);   /* connections made from it keep their own reference */
    t->ctx = ctx;
    describe(t);
    return 0;
}

const char *h2_tls_describe(const struct h2_tls *t) { return t->description; }

SSL_CTX *h2_tls_ctx(const struct h2_tls *t) { return t->ctx; }

void h2_tls_free(struct h2_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    free(t);
}
