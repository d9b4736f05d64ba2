/*
 * security.c - TLS and bearer tokens for `lazybackend serve` (security.h): loading them from
 * the options, the listen-address rule, the SIGHUP reload.
 *
 * Why the rule: the ports take data from whoever reaches them. On loopback that is this
 * machine; beyond it, a receiver with neither TLS nor a token lets anyone on the network
 * write, so it is refused unless --insecure says that is meant.
 */
#include "cmd/security.h"

#include <sys/stat.h>

#include "cmd/cmd.h"
#include "h2/auth.h"
#include "h2/server.h"
#include "h2/tls.h"
#include "lib/log.h"

/* A secret others on the machine can read is no secret: said once at start-up (not refused:
 * a container or a credentials directory may have its own reasons for the mode). */
static void warn_if_readable(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        log_warn("%s %s is readable by %s (mode %03o): chmod 600 it", what, path,
                 (st.st_mode & S_IROTH) ? "every user" : "its group", (unsigned)(st.st_mode & 0777));
}

int security_open(struct app *app)
{
    const struct config *cfg = &app->cfg;
    char err[512];
    if (cfg->tls_cert) {
        struct h2_tls_config tc = { .cert = cfg->tls_cert, .key = cfg->tls_key, .client_ca = cfg->tls_client_ca };
        if (!(app->tls = h2_tls_new(&tc, err, sizeof err))) {
            log_error("TLS: %s", err);
            return -1;
        }
        log_info("TLS on both ports (TLS 1.2 and 1.3): %s", h2_tls_describe(app->tls));
        warn_if_readable("the TLS key", cfg->tls_key);
    }
    if (cfg->auth_token_file) {
        if (!(app->auth = h2_auth_new())) {
            log_error("out of memory");
            return -1;
        }
        if (h2_auth_load(app->auth, cfg->auth_token_file, err, sizeof err) != 0) {
            log_error("--auth-token-file %s", err);
            return -1;
        }
        log_info("bearer tokens required on both ports (except health checks): %zu read from %s",
                 h2_auth_count(app->auth), cfg->auth_token_file);
        warn_if_readable("the token file", cfg->auth_token_file);
    }
    return 0;
}

bool security_may_listen(const struct app *app, const char *port, const char *address)
{
    /* Only this machine can reach loopback; an address the server cannot read is refused by
     * the listen itself, with the forms it takes. */
    if (h2_address_loopback(address) != 0 || app->tls || app->auth)
        return true;
    if (app->cfg.insecure) {
        log_warn("%s listens on %s, which is not loopback, with neither TLS nor a token "
                 "(--insecure): anyone who can reach it can send data", port, address);
        return true;
    }
    log_error("refusing to listen on %s (%s): not loopback, and neither TLS (--tls-cert, "
              "--tls-key) nor a token (--auth-token-file) is configured, so anyone who can reach "
              "it could send data; give one of them, or --insecure to accept that", address, port);
    return false;
}

const char *security_summary(const struct app *app)
{
    if (app->tls && app->auth)
        return app->cfg.tls_client_ca ? "TLS, client certificates and bearer token required" : "TLS, bearer token required";
    if (app->tls)
        return app->cfg.tls_client_ca ? "TLS, client certificates required" : "TLS, no authentication";
    return app->auth ? "cleartext, bearer token required" : "cleartext, no authentication";
}

void security_reload(struct app *app)
{
    char err[512];
    if (app->tls) {
        if (h2_tls_reload(app->tls, err, sizeof err) != 0)
            log_error("SIGHUP: TLS not reloaded, still serving the previous certificate: %s", err);
        else
            log_info("SIGHUP: TLS reloaded: %s", h2_tls_describe(app->tls));
    }
    if (app->auth) {
        if (h2_auth_load(app->auth, app->cfg.auth_token_file, err, sizeof err) != 0)
            log_error("SIGHUP: tokens not reloaded, the previous %zu still accepted: %s",
                      h2_auth_count(app->auth), err);
        else
            log_info("SIGHUP: %zu bearer tokens reloaded from %s", h2_auth_count(app->auth),
                     app->cfg.auth_token_file);
    }
}

void security_close(struct app *app)
{
    h2_tls_free(app->tls);
    app->tls = NULL;
    h2_auth_free(app->auth);
    app->auth = NULL;
}
