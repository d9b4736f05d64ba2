/*
 * fuzz_grpc.c - libFuzzer target for the gRPC side of the transport. The first input byte
 * chooses what the rest is:
 *
 *   even: a stream of length-prefixed gRPC messages for the framer (h2/grpc.c), fed in
 *         pieces of (byte >> 1) + 1 bytes, then byte by byte, then whole. Every feeding must
 *         find the same messages (flag, length, payload) as a plain reading of the whole
 *         stream written here, and the same cut-off unit at the end. The same bytes also go
 *         through grpc-message percent-encoding (whose output must decode back to a prefix
 *         of its input), the content-type rule and the HealthCheckRequest reader (the service
 *         it finds lies inside the input).
 *   odd:  bytes from a client on the gRPC port (HTTP/2 with prior knowledge), played to the
 *         real server through a socketpair in pieces of (byte >> 1) * 16 bytes (0 = all at
 *         once); the profiles and traces Export methods decode into the stdout sinks, as in
 *         cmd/serve.c, and grpc.health.v1.Health/Check. That is the framer where it is used:
 *         cut at DATA-frame boundaries, with gzip, limits and trailers.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2/grpc.h"
#include "h2/grpc_health.h"
#include "otlp/traces.h"
#include "test/fuzz/harness.h"

enum { MAX_UNITS = 1 << 16, MAX_MESSAGE = 1 << 20 };

struct unit {
    uint8_t flag;
    uint32_t length;
    uint32_t got;       /* payload bytes seen */
    uint64_t sum;       /* position-weighted sum of the payload, to compare payloads cheaply */
    bool complete;
};

struct reading {
    struct unit units[MAX_UNITS];
    size_t n;
    bool partial, in_prefix;
    size_t got, want;
};

static void add_payload(struct unit *u, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        u->sum += (uint64_t)p[i] * (u->got + i + 1);
    u->got += (uint32_t)n;
}

/* The plain reading: what the stream holds, by the wire format alone. */
static void expected(const uint8_t *p, size_t n, struct reading *r)
{
    size_t pos = 0;
    r->n = 0;
    r->partial = false;
    while (pos < n && r->n < MAX_UNITS) {
        if (n - pos < GRPC_PREFIX_LEN) {
            r->partial = r->in_prefix = true;
            r->got = n - pos;
            r->want = GRPC_PREFIX_LEN;
            return;
        }
        struct unit *u = &r->units[r->n++];
        *u = (struct unit){ .flag = p[pos] };
        u->length = (uint32_t)p[pos + 1] << 24 | (uint32_t)p[pos + 2] << 16 |
                    (uint32_t)p[pos + 3] << 8 | p[pos + 4];
        pos += GRPC_PREFIX_LEN;
        size_t body = n - pos < u->length ? n - pos : u->length;
        add_payload(u, p + pos, body);
        pos += body;
        u->complete = body == u->length;
        if (!u->complete) {
            r->partial = true;
            r->in_prefix = false;
            r->got = body;
            r->want = u->length;
        }
    }
}

/* One piece through the framer, recording what it reports. */
static void feed(struct grpc_framer *f, const uint8_t *p, size_t n, struct reading *r)
{
    const size_t max_steps = 3 * n + 4;   /* a unit takes at least one byte and three steps */
    for (size_t steps = 0;; steps++) {
        fuzz_must(steps <= max_steps, "framer: no progress");
        size_t used = 0;
        enum grpc_step s = grpc_framer_step(f, p, n, &used);
        fuzz_must(used <= n, "framer: used more than given");
        p += used;
        n -= used;
        if (s == GRPC_STEP_NEED_MORE) {
            fuzz_must(n == 0, "framer: wants more with input left");
            return;
        }
        if (s == GRPC_STEP_PREFIX) {
            if (r->n == MAX_UNITS)
                return;
            r->units[r->n++] = (struct unit){ .flag = f->flag, .length = f->length };
        } else if (s == GRPC_STEP_BODY) {
            fuzz_must(r->n > 0 && used > 0, "framer: payload outside a unit");
            add_payload(&r->units[r->n - 1], p - used, used);
        } else {
            fuzz_must(s == GRPC_STEP_END && r->n > 0 && used == 0, "framer: bad end");
            r->units[r->n - 1].complete = true;
        }
    }
}

static void incremental(const uint8_t *p, size_t n, size_t piece, struct reading *r)
{
    struct grpc_framer f;
    grpc_framer_init(&f);
    r->n = 0;
    for (size_t pos = 0; pos < n && r->n < MAX_UNITS; pos += piece)
        feed(&f, p + pos, n - pos < piece ? n - pos : piece, r);
    feed(&f, p + n, 0, r);   /* end of input: a finished unit's END step */
    r->partial = grpc_framer_partial(&f, &r->in_prefix, &r->got, &r->want);
    if (r->n > 0 && !r->units[r->n - 1].complete)
        fuzz_must(r->partial, "framer: a unit is open but not partial");
}

static void same(const struct reading *a, const struct reading *b)
{
    fuzz_must(a->n == b->n, "framer: unit count differs from the plain reading");
    for (size_t i = 0; i < a->n; i++) {
        const struct unit *x = &a->units[i], *y = &b->units[i];
        fuzz_must(x->flag == y->flag && x->length == y->length && x->got == y->got &&
                  x->sum == y->sum && x->complete == y->complete,
                  "framer: a unit differs from the plain reading");
    }
    if (a->n == MAX_UNITS)
        return;   /* the readings stopped early, at the same unit */
    fuzz_must(a->partial == b->partial, "framer: end state differs from the plain reading");
    if (a->partial)
        fuzz_must(a->in_prefix == b->in_prefix && a->got == b->got && a->want == b->want,
                  "framer: cut-off unit differs from the plain reading");
}

static struct reading readings[2];

static void framer(const uint8_t *p, size_t n, size_t piece)
{
    expected(p, n, &readings[0]);
    const size_t pieces[] = { piece, 1, n ? n : 1 };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        incremental(p, n, pieces[i], &readings[1]);
        same(&readings[0], &readings[1]);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* grpc-message: printable ASCII only, '%' only as %XX, decoding back to a prefix of `in`. */
static void percent(const uint8_t *p, size_t n)
{
    char *in = malloc(n + 1), *out = malloc(3 * n + 1);
    fuzz_must(in && out, "out of memory");
    memcpy(in, p, n);
    in[n] = '\0';
    size_t inlen = strlen(in);
    const size_t outlens[] = { 0, 1, 2, 3, 4, inlen + 1, 3 * inlen + 1 };
    for (size_t k = 0; k < sizeof outlens / sizeof outlens[0]; k++) {
        size_t w = grpc_percent_encode(in, out, outlens[k]);
        if (outlens[k] == 0) {
            fuzz_must(w == 0, "percent: wrote into nothing");
            continue;
        }
        fuzz_must(w < outlens[k] && strlen(out) == w, "percent: length");
        size_t d = 0;
        for (size_t i = 0; i < w; d++) {
            unsigned char c = (unsigned char)out[i];
            fuzz_must(d < inlen, "percent: decodes to more than its input");
            fuzz_must(c >= 0x20 && c <= 0x7e, "percent: not printable");
            if (c != '%') {
                fuzz_must(in[d] == (char)c, "percent: decodes to something else");
                i++;
                continue;
            }
            fuzz_must(i + 2 < w && hexval(out[i + 1]) >= 0 && hexval(out[i + 2]) >= 0,
                      "percent: bad escape");
            fuzz_must((unsigned char)in[d] == (hexval(out[i + 1]) << 4 | hexval(out[i + 2])),
                      "percent: escape decodes to something else");
            i += 3;
        }
        if (outlens[k] == 3 * inlen + 1)
            fuzz_must(d == inlen, "percent: cut although there was room");
    }
    (void)grpc_content_type_ok(in);
    int code = n >= 4 ? (int)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) : 0;
    fuzz_must(grpc_status_name(code) != NULL, "status name");
    free(in);
    free(out);
}

/* HealthCheckRequest: whatever the reader accepts, the service is a piece of the input. */
static void health_request(const uint8_t *p, size_t n)
{
    const char *svc;
    size_t len;
    if (grpc_health_read_request(p, n, &svc, &len))
        fuzz_must(len == 0 || ((const uint8_t *)svc >= p && len <= n && (const uint8_t *)svc - p <= (ptrdiff_t)(n - len)),
                  "health: service outside the message");
}

/* ------------------------------------------------------------------ the gRPC port */

/* Answers as cmd/serve.c does: the response message, or a status with the decoder's reason. */
static void answer(struct grpc_reply *reply, enum otlp_status st, const char *message, int encoded)
{
    fuzz_must(encoded == 0, "grpc: response not encoded");
    reply->status = st == OTLP_OK        ? GRPC_OK
                  : st == OTLP_INVALID   ? GRPC_INVALID_ARGUMENT
                  : st == OTLP_NOMEM     ? GRPC_RESOURCE_EXHAUSTED : GRPC_UNAVAILABLE;
    if (st != OTLP_OK)
        snprintf(reply->message, sizeof reply->message, "%s", message);
}

static void export_profiles(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    (void)ud;
    struct otlp_result res;
    enum otlp_status st = fuzz_export_profiles("grpc", call->message, call->length, &res);
    answer(reply, st, res.message, st == OTLP_OK ? otlp_encode_profiles_response(&res, &reply->body) : 0);
}

static void export_traces(void *ud, const struct grpc_call *call, struct grpc_reply *reply)
{
    (void)ud;
    struct otlp_trace_result res;
    enum otlp_status st = fuzz_export_traces("grpc", call->message, call->length, &res);
    answer(reply, st, res.message, st == OTLP_OK ? otlp_encode_traces_response(&res, &reply->body) : 0);
}

static struct fuzz_net *grpc_port(void)
{
    static struct fuzz_net *net;
    if (net)
        return net;
    struct h2_server_config cfg = {
        .address = "127.0.0.1:0", .protocol = H2_SERVER_GRPC, .max_message_size = MAX_MESSAGE,
        .max_concurrent_streams = 8,
    };
    net = fuzz_net_new(&cfg);
    struct h2_server *s = fuzz_net_server(net);
    static const char *const services[] = { "p" };
    static const struct grpc_health_service health = { .services = services, .n_services = 1 };
    fuzz_must(h2_server_add_method(s, FUZZ_PROFILES_METHOD, export_profiles, NULL) == 0 &&
              h2_server_add_method(s, TRACES_EXPORT_PATH, export_traces, NULL) == 0 &&
              grpc_health_register(s, &health) == 0, "methods");
    return net;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 1) {
        fuzz_net_exchange(grpc_port(), data, size, (size_t)(mode >> 1) * 16);
    } else {
        framer(data, size, (size_t)(mode >> 1) + 1);
        percent(data, size);
        health_request(data, size);
    }
    return 0;
}
