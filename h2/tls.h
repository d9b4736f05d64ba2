/*
 * tls.h - TLS for both ports: the server's certificate and key, optionally the CA that
 * client certificates must chain to (mutual TLS), and their reload.
 *
 * One struct h2_tls serves both ports (h2_server_config.tls): the gRPC port negotiates ALPN
 * "h2" only, the HTTP port "h2" or "http/1.1". Only TLS 1.2 and 1.3 are spoken. A reload
 * (SIGHUP) reads every file again and builds a new context: new connections use it, open
 * connections keep the one they started with; when anything fails to load, the old context
 * stays and the error says why.
 */
#ifndef LB_H2_TLS_H
#define LB_H2_TLS_H

#include <stddef.h>

struct h2_tls_config {
    const char *cert;        /* PEM: the server certificate, then any intermediates */
    const char *key;         /* PEM: its private key */
    const char *client_ca;   /* PEM: CAs client certificates must chain to; NULL = no mTLS */
};

struct h2_tls;

/* NULL with `err` set when a file cannot be read or the key does not match the certificate. */
struct h2_tls *h2_tls_new(const struct h2_tls_config *cfg, char *err, size_t errlen);
/* Reads the files again; 0 on success, else -1 with `err` set and the old context kept. */
int h2_tls_reload(struct h2_tls *t, char *err, size_t errlen);
/* One line about what is served: "certificate CN=..., serial 0x..., expires ...; client
 * certificates required (CA ...)". */
const char *h2_tls_describe(const struct h2_tls *t);
void h2_tls_free(struct h2_tls *t);

#endif
