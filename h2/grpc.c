/*
 * grpc.c - the pure gRPC wire helpers declared in grpc.h (no I/O, no allocation), so the
 * framing rules can be tested byte by byte.
 */
#include "h2/grpc.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

static enum grpc_step take_prefix(struct grpc_framer *f, const uint8_t *p, size_t n, size_t *used)
{
    size_t take = GRPC_PREFIX_LEN - f->prefix_got;
    if (take > n)
        take = n;
    memcpy(f->prefix + f->prefix_got, p, take);
    f->prefix_got = (uint8_t)(f->prefix_got + take);
    *used = take;
    if (f->prefix_got < GRPC_PREFIX_LEN)
        return GRPC_STEP_NEED_MORE;
    f->flag = f->prefix[0];
    f->length = (uint32_t)f->prefix[1] << 24 | (uint32_t)f->prefix[2] << 16 |
                (uint32_t)f->prefix[3] << 8 | (uint32_t)f->prefix[4];
    f->body_got = 0;
    f->in_body = true;
    return GRPC_STEP_PREFIX;
}

enum grpc_step grpc_framer_step(struct grpc_framer *f, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (!f->in_body) {
        if (n == 0)
            return GRPC_STEP_NEED_MORE;
        return take_prefix(f, p, n, used);
    }
    assert(f->body_got <= f->length);
    if (f->body_got == f->length) {
        f->in_body = false;
        f->prefix_got = 0;
        return GRPC_STEP_END;
    }
    if (n == 0)
        return GRPC_STEP_NEED_MORE;
    size_t take = f->length - f->body_got;
    if (take > n)
        take = n;
    f->body_got += (uint32_t)take;
    *used = take;
    return GRPC_STEP_BODY;
}

bool grpc_framer_partial(const struct grpc_framer *f, bool *in_prefix, size_t *got, size_t *want)
{
    if (f->in_body) {
        /* A complete payload whose END step was not taken yet is not partial. */
        *in_prefix = false;
        *got = f->body_got;
        *want = f->length;
        return f->body_got < f->length;
    }
    *in_prefix = true;
    *got = f->prefix_got;
    *want = GRPC_PREFIX_LEN;
    return f->prefix_got > 0;
}

size_t grpc_percent_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (outlen == 0)
        return 0;
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        bool plain = *s >= 0x20 && *s <= 0x7e && *s != '%';
        size_t need = plain ? 1 : 3;
        if (o + need >= outlen)
            break;
        if (plain) {
            out[o++] = (char)*s;
        } else {
            out[o++] = '%';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 15];
        }
    }
    out[o] = '\0';
    return o;
}

bool grpc_content_type_ok(const char *ct)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof base - 1;
    if (strncasecmp(ct, base, n) != 0)   /* media types are case-insensitive */
        return false;
    /* "application/grpc-web" and the like are other protocols, not subtypes. */
    return ct[n] == '\0' || ct[n] == '+' || ct[n] == ';';
}

const char *grpc_status_name(int status)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (status < 0 || (size_t)status >= sizeof names / sizeof names[0])
        return "?";
    return names[status];
}
