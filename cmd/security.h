/*
 * security.h - who may send to `lazybackend serve`: TLS on both ports (--tls-cert,
 * --tls-key, --tls-client-ca), bearer tokens (--auth-token-file), the refusal to listen
 * beyond loopback with neither (unless --insecure), and their reload on SIGHUP.
 */
#ifndef LB_CMD_SECURITY_H
#define LB_CMD_SECURITY_H

#include <stdbool.h>

struct app;

/* Loads the certificate, key, client CA and token file the options name into app->tls and
 * app->auth. -1 with the reason logged. */
int security_open(struct app *app);
/* Whether a port may listen on `address` as configured; false with one line logged saying
 * why and what to give. `port` names it in messages ("OTLP/gRPC"). */
bool security_may_listen(const struct app *app, const char *port, const char *address);
/* "TLS, client certificates, bearer token" or "cleartext, no authentication": how a port's
 * senders are checked, for its start-up line. */
const char *security_summary(const struct app *app);
/* SIGHUP: the certificate, key, CA and tokens read again; what fails to load keeps the old. */
void security_reload(struct app *app);
void security_close(struct app *app);

#endif
