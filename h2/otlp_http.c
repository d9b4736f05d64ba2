/*
 * otlp_http.c - the OTLP/HTTP routes and their status codes (see otlp_http.h for why this is
 * its own layer). Every response here is fully determined by the request and the decode
 * result; nothing is kept between requests.
 */
#include "h2/otlp_http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/prom.h"
#include "otlp/json.h"
#include "otlp/varint.h"

#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON "application/json"

enum body_format { FMT_NONE, FMT_PROTOBUF, FMT_JSON };

/* google.rpc.Code values used in error bodies. */
enum {
    RPC_INVALID_ARGUMENT = 3, RPC_DEADLINE_EXCEEDED = 4, RPC_NOT_FOUND = 5,
    RPC_RESOURCE_EXHAUSTED = 8, RPC_UNIMPLEMENTED = 12, RPC_INTERNAL = 13, RPC_UNAVAILABLE = 14,
    RPC_UNAUTHENTICATED = 16,
};

/* The media type without parameters, compared case-insensitively. */
static enum body_format format_of(const char *ctype)
{
    size_t n = strcspn(ctype, ";");
    while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    if (n == sizeof CT_PROTOBUF - 1 && strncasecmp(ctype, CT_PROTOBUF, n) == 0)
        return FMT_PROTOBUF;
    if (n == sizeof CT_JSON - 1 && strncasecmp(ctype, CT_JSON, n) == 0)
        return FMT_JSON;
    return FMT_NONE;
}

static bool put_varint(struct buf *b, uint64_t v)
{
    uint8_t t[VARINT_MAX];
    return buf_append(b, t, varint_encode(v, t));
}

int otlp_http_encode_status(int code, const char *message, struct buf *out)
{
    size_t len = strlen(message);
    bool ok = true;
    if (code != 0)   /* proto3: the default is not written */
        ok = buf_putc(out, 0x08) && put_varint(out, (uint64_t)(int64_t)code);
    if (len)
        ok = ok && buf_putc(out, 0x12) && put_varint(out, len) && buf_append(out, message, len);
    return ok ? 0 : -1;
}

static int rpc_code_of(int status)
{
    switch (status) {
    case 401: return RPC_UNAUTHENTICATED;
    case 404: return RPC_NOT_FOUND;
    case 405: return RPC_UNIMPLEMENTED;
    case 408: return RPC_DEADLINE_EXCEEDED;
    case 413: case 431: return RPC_RESOURCE_EXHAUSTED;
    case 503: return RPC_UNAVAILABLE;
    case 500: return RPC_INTERNAL;
    default:  return RPC_INVALID_ARGUMENT;
    }
}

/* An error response: a google.rpc.Status in the request's encoding, or text. */
static void error_body(struct http_response *resp, enum body_format fmt, int status,
                       const char *message)
{
    int code = rpc_code_of(status);
    resp->status = status;
    buf_reset(&resp->body);
    int rc;
    if (fmt == FMT_PROTOBUF) {
        snprintf(resp->content_type, sizeof resp->content_type, CT_PROTOBUF);
        rc = otlp_http_encode_status(code, message, &resp->body);
    } else if (fmt == FMT_JSON) {
        snprintf(resp->content_type, sizeof resp->content_type, CT_JSON);
        rc = otlp_json_status(code, message, &resp->body);
    } else {
        snprintf(resp->content_type, sizeof resp->content_type, "text/plain; charset=utf-8");
        rc = buf_printf(&resp->body, "%s\n", message) ? 0 : -1;
    }
    if (rc != 0)
        buf_reset(&resp->body);   /* the status line still says it */
}

static void transport_error(void *ud, const struct http_request *req, int status,
                            const char *message, struct http_response *resp)
{
    (void)ud;
    error_body(resp, format_of(req->content_type), status, message);
}

/* The OTLP status of a decode -> HTTP status; false when it is not a success. */
static bool map_status(const struct otlp_http_service *svc, enum otlp_status st,
                       const char *message, enum body_format fmt, struct http_response *resp)
{
    switch (st) {
    case OTLP_OK:
        return true;
    case OTLP_INVALID:
        error_body(resp, fmt, 400, message);
        break;
    case OTLP_UNAVAILABLE:
    case OTLP_SINK_FAILED:
    case OTLP_NOMEM:
        error_body(resp, fmt, 503, message);
        resp->retry_after = svc->retry_after_s ? svc->retry_after_s : 1;
        break;
    }
    return false;
}

/* Content type checked, JSON transcoded: the protobuf form of the body in `pb` (or the body
 * itself). NULL, or what kind of refusal the response (415, 400, 413) already made is. */
static const char *request_protobuf(const struct http_request *req,
                                    enum otlp_json_doc doc, enum body_format *fmt, struct buf *pb,
                                    struct otlp_http_call *call, struct http_response *resp)
{
    *fmt = format_of(req->content_type);
    if (*fmt == FMT_NONE) {
        char m[256];
        snprintf(m, sizeof m, "Content-Type \"%.100s\" is not supported: use " CT_PROTOBUF " or " CT_JSON,
                 req->content_type[0] ? req->content_type : "(none)");
        error_body(resp, FMT_NONE, 415, m);
        log_info("http error: peer=%s POST %s status=415: %s", req->peer, req->path, m);
        return "content_type";
    }
    call->peer = req->peer;
    call->protocol = req->protocol;
    call->compressed = req->compressed;
    call->wire_bytes = req->wire_bytes;
    call->format = *fmt == FMT_JSON ? "json" : "protobuf";
    call->message = req->body;
    call->length = req->length;
    if (*fmt == FMT_PROTOBUF)
        return NULL;
    char err[512];
    const char *kind = "json";
    switch (otlp_json_to_protobuf(doc, req->body, req->length, pb, err, sizeof err)) {
    case OTLP_JSON_OK:
        call->message = pb->data ? pb->data : (const uint8_t *)"";
        call->length = pb->len;
        return NULL;
    case OTLP_JSON_INVALID:
        error_body(resp, FMT_JSON, 400, err);
        break;
    case OTLP_JSON_TOO_LARGE:
        error_body(resp, FMT_JSON, 413, err);
        kind = "too_large";
        break;
    }
    log_info("http error: peer=%s POST %s status=%d: %s", req->peer, req->path, resp->status, err);
    return kind;
}

static void log_failure(const struct http_request *req, const struct http_response *resp,
                        const char *message)
{
    log_info("http error: peer=%s POST %s status=%d: %s", req->peer, req->path, resp->status, message);
}

/* What tells the two export routes apart: the JSON document their body may be, the decode, and
 * the response's two encodings. The rest of a POST (content type, transcoding, status codes)
 * is the same for both. */
union export_result {
    struct otlp_result profiles;
    struct otlp_trace_result traces;
};

struct export_route {
    enum otlp_signal signal;
    enum otlp_json_doc doc;
    /* Decodes and delivers the call; returns the result's status and message. */
    enum otlp_status (*run)(const struct otlp_http_service *svc, const struct otlp_http_call *call,
                            union export_result *res, const char **message);
    /* The Export*ServiceResponse for `res`, as JSON or protobuf; 0 or -1. */
    int (*encode)(const union export_result *res, bool json, struct buf *out);
};

/* The two per-signal halves of a route; they differ only in the result's type and in which
 * functions they call, so one macro writes both signals' (`sig` names the service's function
 * and the union's member alike). */
#define EXPORT_ADAPTERS(sig, json_response, protobuf_response)                                   \
    static enum otlp_status run_##sig(const struct otlp_http_service *svc,                       \
                                      const struct otlp_http_call *call,                         \
                                      union export_result *res, const char **message)            \
    {                                                                                            \
        svc->sig(svc->ud, call, &res->sig);                                                      \
        *message = res->sig.message;                                                             \
        return res->sig.status;                                                                  \
    }                                                                                            \
    static int encode_##sig(const union export_result *res, bool json, struct buf *out)          \
    {                                                                                            \
        return json ? json_response(&res->sig, out) : protobuf_response(&res->sig, out);         \
    }
EXPORT_ADAPTERS(profiles, otlp_json_profiles_response, otlp_encode_profiles_response)
EXPORT_ADAPTERS(traces, otlp_json_traces_response, otlp_encode_traces_response)

static const struct export_route profiles_route = {
    OTLP_SIGNAL_PROFILES, OTLP_JSON_PROFILES_REQUEST, run_profiles, encode_profiles,
};
static const struct export_route traces_route = {
    OTLP_SIGNAL_TRACES, OTLP_JSON_TRACES_REQUEST, run_traces, encode_traces,
};

static void post_export(const struct otlp_http_service *svc, const struct export_route *route,
                        const struct http_request *req, struct http_response *resp)
{
    enum body_format fmt;
    struct otlp_http_call call = { .started_ns = clock_mono_ns() };
    struct buf pb;
    buf_init(&pb, svc->max_message_size);
    const char *refused = request_protobuf(req, route->doc, &fmt, &pb, &call, resp);
    if (refused && svc->refused) {
        struct otlp_http_refusal r = {
            .peer = req->peer, .signal = route->signal, .status = resp->status, .kind = refused,
            .wire_bytes = req->wire_bytes, .length = req->length, .started_ns = call.started_ns,
        };
        svc->refused(svc->ud, &r);
    }
    if (!refused) {
        union export_result res;
        const char *message;
        enum otlp_status st = route->run(svc, &call, &res, &message);
        if (map_status(svc, st, message, fmt, resp)) {
            resp->status = 200;
            snprintf(resp->content_type, sizeof resp->content_type, "%s",
                     fmt == FMT_JSON ? CT_JSON : CT_PROTOBUF);
            if (route->encode(&res, fmt == FMT_JSON, &resp->body) != 0)
                error_body(resp, fmt, 500, "cannot encode the response");
        } else {
            log_failure(req, resp, message);
        }
    }
    buf_free(&pb);
}

static void post_profiles(void *ud, const struct http_request *req, struct http_response *resp)
{
    post_export(ud, &profiles_route, req, resp);
}

static void post_traces(void *ud, const struct http_request *req, struct http_response *resp)
{
    post_export(ud, &traces_route, req, resp);
}

static void get_health(void *ud, const struct http_request *req, struct http_response *resp)
{
    const struct otlp_http_service *svc = ud;
    const char *why = svc->unhealthy ? svc->unhealthy(svc->ud) : NULL;
    (void)req;
    resp->status = why ? 503 : 200;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; charset=utf-8");
    if (!buf_printf(&resp->body, "%s\n", why ? why : "ok"))
        buf_reset(&resp->body);
}

/* The /metrics page may outgrow a small --max-message-size: that limit bounds what a client
 * can make the server hold, and the page's size depends only on the server's own counters. */
#define METRICS_PAGE_MAX ((size_t)4 << 20)

static void get_metrics(void *ud, const struct http_request *req, struct http_response *resp)
{
    const struct otlp_http_service *svc = ud;
    (void)req;
    if (resp->body.limit < METRICS_PAGE_MAX)
        resp->body.limit = METRICS_PAGE_MAX;
    if (svc->metrics(svc->ud, &resp->body) != 0) {
        log_warn("GET %s: the page does not fit in %zu bytes", METRICS_HTTP_PATH, resp->body.limit);
        error_body(resp, FMT_NONE, 500, "cannot render the metrics");
        return;
    }
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, PROM_CONTENT_TYPE);
}

int otlp_http_register(struct h2_server *s, const struct otlp_http_service *svc)
{
    h2_server_set_error_body(s, transport_error, NULL);
    void *ud = (void *)svc;   /* the handlers only read it */
    if (h2_server_add_route(s, "POST", PROFILES_HTTP_PATH, post_profiles, ud) ||
        h2_server_add_route(s, "POST", TRACES_HTTP_PATH, post_traces, ud) ||
        h2_server_add_route(s, "GET", HEALTH_HTTP_PATH, get_health, ud))
        return -1;
    return svc->metrics ? h2_server_add_route(s, "GET", METRICS_HTTP_PATH, get_metrics, ud) : 0;
}
