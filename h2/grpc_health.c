/*
 * grpc_health.c - grpc.health.v1.Health/Check (see grpc_health.h): the request read by hand,
 * the answer from the application's health, the response written by hand.
 */
#include "h2/grpc_health.h"

#include <stdio.h>
#include <string.h>

/* A base-128 varint at p[*off..n); false when it runs past the end or past 64 bits. */
static bool read_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *off < n; shift += 7) {
        uint8_t b = p[(*off)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

bool grpc_health_read_request(const uint8_t *msg, size_t len, const char **service, size_t *service_len)
{
    size_t off = 0;
    *service = "";
    *service_len = 0;
    while (off < len) {
        uint64_t key, v;
        if (!read_varint(msg, len, &off, &key) || key >> 3 == 0)
            return false;
        switch (key & 7) {
        case 0:   /* varint */
            if (!read_varint(msg, len, &off, &v))
                return false;
            break;
        case 1:   /* 64-bit */
        case 5:   /* 32-bit */
            v = (key & 7) == 1 ? 8 : 4;
            if (v > len - off)
                return false;
            off += v;
            break;
        case 2:   /* length-delimited */
            if (!read_varint(msg, len, &off, &v) || v > len - off)
                return false;
            if (key >> 3 == 1) {
                *service = (const char *)msg + off;
                *service_len = (size_t)v;
            }
            off += (size_t)v;
            break;
        default:  /* groups (3, 4) are not in proto3; 6 and 7 do not exist */
            return false;
        }
    }
    return true;
}

static bool known(const struct grpc_health_service *svc, const char *name, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < svc->n_services; i++)
        if (strlen(svc->services[i]) == n && memcmp(svc->services[i], name, n) == 0)
            return true;
    return false;
}

static void check(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    const struct grpc_health_service *svc = ud;
    const char *name;
    size_t n;
    if (!grpc_health_read_request(call->message, call->length, &name, &n)) {
        reply->status = GRPC_INVALID_ARGUMENT;
        snprintf(reply->message, sizeof reply->message, "malformed HealthCheckRequest");
        return;
    }
    if (!known(svc, name, n)) {
        reply->status = GRPC_NOT_FOUND;
        snprintf(reply->message, sizeof reply->message, "unknown service %.*s",
                 n > 200 ? 200 : (int)n, name);
        return;
    }
    const char *why = svc->unhealthy ? svc->unhealthy(svc->ud) : NULL;
    uint8_t body[2] = { 0x08, why ? GRPC_HEALTH_NOT_SERVING : GRPC_HEALTH_SERVING };   /* field 1, varint */
    if (!buf_append(&reply->body, body, sizeof body)) {
        reply->status = GRPC_INTERNAL;
        snprintf(reply->message, sizeof reply->message, "cannot encode the response");
        return;
    }
    if (why)   /* for a person running grpcurl: the status says NOT_SERVING, this says why */
        snprintf(reply->message, sizeof reply->message, "%s", why);
}

int grpc_health_register(struct h2_server *s, const struct grpc_health_service *svc)
{
    return h2_server_add_method(s, GRPC_HEALTH_CHECK_PATH, check, (void *)svc);   /* only read */
}
