/*
 * report.c - the account both decoders keep of a request, and the messages it becomes (see
 * report.h for why they are shared).
 *
 * Every function writes into a fixed-size message and never past it: a message made of
 * sender-chosen parts (names, counts, nanopb errors) is cut, never overflowed.
 */
#include "otlp/report.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pb_decode.h>
#include <pb_encode.h>

/* Room for the deepest path: four names and four 10-digit indices. */
#define PATH_LEN 160

void otlp_report_begin(struct otlp_report *r, char *message, size_t size)
{
    assert(size > 0);
    memset(r->at, 0, sizeof r->at);
    r->depth = 0;
    r->message = message;
    r->size = size;
    r->malformed = r->nomem = false;
    r->why[0] = 0;
}

size_t otlp_report_path(const struct otlp_report *r, char *out, size_t len)
{
    assert(len > 0 && r->depth >= 0 && r->depth <= OTLP_PATH_MAX);
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < r->depth && n < len; i++) {
        int w = snprintf(out + n, len - n, "%s%s[%u]", i ? "." : "", r->levels[i], r->at[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return n < len ? n : len - 1;
}

static void put_at_path(struct otlp_report *r, const char *what)
{
    char path[PATH_LEN];
    otlp_report_path(r, path, sizeof path);
    snprintf(r->message, r->size, "%s%s%s", path, path[0] ? ": " : "", what);
}

void otlp_note_first(struct otlp_report *r, const char *what)
{
    if (!r->message[0])
        put_at_path(r, what);
}

bool otlp_reject(struct otlp_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return false;
}

bool otlp_malformed(struct otlp_report *r, const char *what, const pb_istream_t *is)
{
    return otlp_malformed_why(r, what, PB_GET_ERROR(is));
}

bool otlp_malformed_why(struct otlp_report *r, const char *what, const char *why)
{
    if (r->malformed || r->nomem)
        return false;
    char buf[200];
    snprintf(buf, sizeof buf, "malformed %s: %s", what, why ? why : "(none)");
    put_at_path(r, buf);
    r->malformed = true;
    return false;
}

bool otlp_out_of_memory(struct otlp_report *r)
{
    r->nomem = true;
    return false;
}

bool otlp_check_size(const struct otlp_report *r, size_t len)
{
    if (len <= UINT32_MAX)
        return true;
    snprintf(r->message, r->size, "message of %zu bytes is over the 4 GiB decoder limit", len);
    return false;
}

void otlp_note_nomem(const struct otlp_report *r, size_t len)
{
    snprintf(r->message, r->size, "out of memory decoding a %zu-byte request", len);
}

void otlp_prefix_message(const struct otlp_report *r, const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t n = w < 0 ? 0 : (size_t)w;
    if (n >= sizeof prefix)
        n = sizeof prefix - 1;
    if (n >= r->size)
        n = r->size - 1;
    /* Truncation is fine: the sender gets the start of the first problem. */
    size_t kept = strnlen(r->message, r->size - 1 - n);
    memmove(r->message + n, r->message, kept);
    memcpy(r->message, prefix, n);
    r->message[n + kept] = 0;
}

int otlp_encode_response(const pb_msgdesc_t *fields, const void *msg, struct buf *out)
{
    size_t size;
    if (!pb_get_encoded_size(&size, fields, msg) || !buf_reserve(out, size))
        return -1;
    pb_ostream_t os = pb_ostream_from_buffer(out->data + out->len, size);
    if (!pb_encode(&os, fields, msg))
        return -1;
    out->len += os.bytes_written;
    return 0;
}
