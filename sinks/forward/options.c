/*
 * options.c - the forward sink's defaults and the checks of its options that need nothing
 * opened (forward.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sinks/forward/forward.h"

void forward_sink_defaults(struct forward_sink_options *o)
{
    memset(o, 0, sizeof *o);
    o->protocol = FORWARD_GRPC;
    o->compression = FORWARD_GZIP;
    o->timeout_ms = 10000;
    o->durability = FORWARD_DURABILITY_WAL;
    o->spool_max_bytes = (uint64_t)1 << 30;
    o->max_queue_bytes = (uint64_t)64 << 20;
}

/* "Name: value" with a token for a name, and no line breaks anywhere (a header smuggled into
 * another). */
static int check_header(const char *h, char *err, size_t errlen)
{
    const char *colon = strchr(h, ':');
    bool ok = colon && colon > h && strpbrk(h, "\r\n") == NULL;
    for (const char *p = h; ok && p < colon; p++)
        ok = *p > ' ' && *p < 127 && !strchr("()<>@,;:\\\"/[]?={}", *p);
    if (!ok) {
        snprintf(err, errlen, "--forward-header '%s': want \"Name: value\"", h);
        return -1;
    }
    return 0;
}

int forward_check_options(const struct forward_sink_options *o, char *err, size_t errlen)
{
    if (!o->url || !*o->url) {
        snprintf(err, errlen, "the forward sink needs --forward-url (http://HOST:PORT or https://HOST:PORT)");
        return -1;
    }
    if (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0) {
        snprintf(err, errlen, "--forward-url '%s': want http://HOST:PORT or https://HOST:PORT", o->url);
        return -1;
    }
    if (strpbrk(o->url, " \t\r\n?#")) {
        snprintf(err, errlen, "--forward-url '%s': no spaces, query or fragment", o->url);
        return -1;
    }
    if (o->ca_file && strncasecmp(o->url, "https://", 8) != 0) {
        snprintf(err, errlen, "--forward-ca-file is for an https:// --forward-url");
        return -1;
    }
    if (o->ca_file && access(o->ca_file, R_OK) != 0) {
        snprintf(err, errlen, "--forward-ca-file %s: %s", o->ca_file, strerror(errno));
        return -1;
    }
    if (o->n_headers > FORWARD_MAX_HEADERS) {
        snprintf(err, errlen, "at most %d --forward-header", FORWARD_MAX_HEADERS);
        return -1;
    }
    for (size_t i = 0; i < o->n_headers; i++)
        if (check_header(o->headers[i], err, errlen) != 0)
            return -1;
    return 0;
}
