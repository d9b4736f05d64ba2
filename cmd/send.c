/*
 * send.c - `lazybackend send [options] FILE...`: captured requests sent to a running server
 * (this one, or any OTLP receiver), over gRPC or OTLP/HTTP, and what the server answered.
 *
 * Why: to see a profile without a root eBPF profiler (the example payload in examples/), and
 * to replay captures into another backend. The files are read as `decode` reads them
 * (capture.c). A command, not a server, so libcurl's easy interface is enough: requests go one
 * after the other. The same client sends what `export` builds (cmd.h's otlp_client).
 *
 * gRPC is HTTP/2 with prior knowledge (cleartext) or negotiated by ALPN (--tls), the 5-byte
 * length prefix, te: trailers,
 * and grpc-status / grpc-message read from the trailers (or from the headers of a
 * trailers-only answer). OTLP/HTTP posts protobuf, or a JSON capture as the JSON it was.
 * Exit status: 0 when every request was accepted whole; 1 when any was refused, partly
 * rejected or could not be sent; 2 for bad options.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/capture.h"
#include "cmd/cmd.h"
#include "h2/auth.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "otlp/wire.h"

#define PROFILES_GRPC_PATH "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
#define TRACES_GRPC_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

struct send_options {
    bool http, gzip, traces;
    const char *to;                  /* as given, or NULL for the default */
    enum capture_format input_format;
    size_t max_message_size;
    long timeout_s;
    bool tls;                        /* --tls, or an https:// URL */
    const char *cacert, *cert, *key; /* --cacert, --cert, --key (client certificate) */
    const char *token_file;          /* --token-file: Authorization: Bearer (first token) */
};

struct sender {
    const struct send_options *opt;
    CURL *curl;                      /* the options every request's handle is copied from */
    char url[512];
    struct buf body, response;       /* what is sent, what came back */
    int grpc_status;                 /* -1 until a grpc-status header or trailer arrives */
    char grpc_message[512];
    char authorization[AUTH_MAX_TOKEN_LEN + 32];   /* "Authorization: Bearer ...", or empty */
    unsigned sent, accepted;
};

static void send_usage(FILE *out)
{
    fprintf(out,
"Usage: lazybackend send [--grpc|--http] [--to ADDR] [--gzip] [--traces] [--tls] [OPTIONS] FILE...\n"
"\n"
"Sends each request of each FILE (- for stdin) to an OTLP receiver, one after the other, and\n"
"prints what it answered. FILE is read as `lazybackend decode` reads it: one protobuf request\n"
"or a length-prefixed stream of them, or OTLP/JSON (one document or JSON lines), gzipped or not.\n"
"\n"
"  --grpc                   gRPC, HTTP/2 cleartext (default; default ADDR 127.0.0.1:4317)\n"
"  --http                   OTLP/HTTP (default ADDR 127.0.0.1:4318); JSON captures are posted\n"
"                           as JSON, protobuf ones as protobuf\n"
"  --to ADDR                HOST:PORT, :PORT, PORT, or a URL (http://HOST:PORT[/PATH])\n"
"  --gzip                   compress each request (grpc-encoding / Content-Encoding gzip)\n"
"  --traces                 the files hold ExportTraceServiceRequests, not profiles\n"
"  --input-format auto|proto|json   what FILE holds (default auto: JSON when it starts with '{')\n"
"  --max-message-size SIZE  largest request read from a file, in bytes (default 64MiB)\n"
"  --timeout SECONDS        per request (default 30)\n"
"  --tls                    TLS (https; gRPC negotiates HTTP/2 by ALPN); implied by an https://\n"
"                           URL. The server's certificate is verified against the system's CAs\n"
"                           or --cacert, and its name against the host in ADDR\n"
"  --cacert FILE            CA certificate(s), PEM, to verify the server with\n"
"  --cert FILE, --key FILE  client certificate and its key, PEM (servers that ask for one)\n"
"  --token-file FILE        send the first token in FILE (a server's --auth-token-file format)\n"
"                           as Authorization: Bearer TOKEN\n"
"\n"
"Exit status: 0 when every request was accepted whole, 1 when any was refused, partly rejected\n"
"or could not be sent, 2 for bad options.\n");
}

/* ---------- the address ---------- */

/* HOST:PORT, :PORT, PORT or a URL into a URL with the signal's path (kept when a URL gives
 * one). 0, or -1 when it is none of those. */
static int build_url(const struct send_options *o, char *url, size_t len)
{
    const char *path = o->http ? (o->traces ? TRACES_HTTP_PATH : PROFILES_HTTP_PATH)
                               : (o->traces ? TRACES_GRPC_PATH : PROFILES_GRPC_PATH);
    const char *to = o->to ? o->to : o->http ? "127.0.0.1:4318" : "127.0.0.1:4317";
    const char *scheme = o->tls ? "https" : "http";
    int n;
    if (strncmp(to, "http://", 7) == 0 || strncmp(to, "https://", 8) == 0) {
        const char *rest = strchr(to + (to[4] == 's' ? 8 : 7), '/');
        n = rest && rest[1] ? snprintf(url, len, "%s", to)
                            : snprintf(url, len, "%.*s%s", (int)(rest ? rest - to : (long)strlen(to)), to, path);
    } else {
        bool digits = to[strspn(to, "0123456789")] == 0 && to[0];
        if (digits)
            n = snprintf(url, len, "%s://127.0.0.1:%s%s", scheme, to, path);
        else if (to[0] == ':' && to[1])
            n = snprintf(url, len, "%s://127.0.0.1%s%s", scheme, to, path);
        else if (strchr(to, ':') && to[strlen(to) - 1] != ':')
            n = snprintf(url, len, "%s://%s%s", scheme, to, path);
        else
            return -1;
    }
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ---------- what came back ---------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sender *s = ud;
    return buf_append(&s->response, p, size * n) ? size * n : 0;
}

/* grpc-status and grpc-message arrive as headers or trailers; curl hands both here. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct sender *s = ud;
    size_t len = size * n;
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len > 12 && strncasecmp(p, "grpc-status:", 12) == 0)
        s->grpc_status = atoi(p + 12);
    else if (len > 13 && strncasecmp(p, "grpc-message:", 13) == 0) {
        size_t skip = 13 + strspn(p + 13, " ");
        snprintf(s->grpc_message, sizeof s->grpc_message, "%.*s", (int)(len - skip), p + skip);
    }
    return size * n;
}

/* Undoes grpc-message's percent-encoding in place. */
static void percent_decode(char *m)
{
    char *w = m;
    for (char *r = m; *r; r++) {
        unsigned v;
        if (r[0] == '%' && r[1] && r[2] && sscanf(r + 1, "%2x", &v) == 1) {
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* Export*ServiceResponse.partial_success {rejected 1, error_message 2} and google.rpc.Status
 * {code 1, message 2} share a shape: field 1 a number, field 2 a string. `outer` first walks
 * into field 1 (the partial_success). False when the bytes are not that. */
static bool number_and_text(const uint8_t *p, size_t n, bool outer, int64_t *num, char *text, size_t textlen)
{
    if (n == 0)
        return true;   /* nothing to walk (and no pointer to add 0 to) */
    struct cursor c = { p, p + n };
    while (c.p < c.end) {
        uint64_t tag, v;
        if (!wire_varint(&c, &tag) || ((tag & 7) != WT_VARINT && (tag & 7) != WT_LEN) || !wire_varint(&c, &v))
            return false;
        if ((tag & 7) == WT_VARINT) {
            if (!outer && tag >> 3 == 1)
                *num = (int64_t)v;
            continue;
        }
        if (v > (uint64_t)(c.end - c.p))
            return false;
        if (outer && tag >> 3 == 1 && !number_and_text(c.p, (size_t)v, false, num, text, textlen))
            return false;
        if (!outer && tag >> 3 == 2)
            snprintf(text, textlen, "%.*s", (int)v, (const char *)c.p);
        c.p += v;
    }
    return true;
}

/* The line for one answer; true when the request was accepted whole. */
static bool report(struct sender *s, const struct capture_request *req, long http_status)
{
    const char *what = s->opt->traces ? "span(s)" : "profile(s)";
    int64_t num = 0;
    char text[1024] = "";
    const uint8_t *body = s->response.data;
    size_t len = s->response.len;
    printf("%s: request %u: ", req->name, req->index);
    if (!s->opt->http) {
        if (s->grpc_status != 0) {
            percent_decode(s->grpc_message);
            printf("refused: gRPC status %d: %s\n", s->grpc_status < 0 ? 2 : s->grpc_status,
                   s->grpc_status < 0 ? "no grpc-status in the answer" : s->grpc_message);
            return false;
        }
        if (len >= 5) {   /* the response message after its length prefix */
            body += 5;
            len -= 5;
        }
    } else if (http_status != 200) {
        if (len && body[0] == '{')
            printf("refused: HTTP %ld: %.*s\n", http_status, (int)len, (const char *)body);
        else if (number_and_text(body, len, false, &num, text, sizeof text))
            printf("refused: HTTP %ld: %s\n", http_status, text);
        else
            printf("refused: HTTP %ld\n", http_status);
        return false;
    } else if (len && body[0] == '{') {   /* a JSON request gets a JSON response */
        bool whole = len == 2 && body[1] == '}';
        printf(whole ? "OK\n" : "partial success: %.*s\n", (int)len, (const char *)body);
        return whole;
    }
    if (!number_and_text(body, len, true, &num, text, sizeof text)) {
        printf("accepted, but the response does not decode (%zu bytes)\n", len);
        return false;
    }
    if (num == 0 && !text[0]) {
        printf("OK\n");
        return true;
    }
    printf("partial success: %lld %s rejected: %s\n", (long long)num, what, text);
    return false;
}

/* ---------- one request ---------- */

static int send_one(void *ud, const struct capture_request *req)
{
    struct sender *s = ud;
    const struct send_options *o = s->opt;
    bool as_json = o->http && req->json;
    const uint8_t *msg = as_json ? req->json : req->msg;
    size_t len = as_json ? req->json_len : req->len;
    struct buf packed;
    buf_init(&packed, len + (len >> 1) + (1u << 20));   /* room for deflate's 64 KiB steps */
    if (o->gzip && gzip_deflate(msg, len, &packed, 6) != 0) {
        fprintf(stderr, "lazybackend send: %s: request %u: gzip failed\n", req->name, req->index);
        buf_free(&packed);
        return 1;
    }
    if (o->gzip) {
        msg = packed.data;
        len = packed.len;
    }
    s->body.len = s->response.len = 0;
    if (!o->http) {
        uint8_t prefix[5] = { o->gzip ? 1 : 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                              (uint8_t)(len >> 8), (uint8_t)len };
        buf_append(&s->body, prefix, 5);
    }
    bool ok = buf_append(&s->body, msg, len);
    buf_free(&packed);
    if (!ok) {
        fprintf(stderr, "lazybackend send: %s: request %u: out of memory\n", req->name, req->index);
        return 1;
    }

    struct curl_slist *h = NULL;
    if (o->http) {
        h = curl_slist_append(h, as_json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
        if (o->gzip)
            h = curl_slist_append(h, "Content-Encoding: gzip");
    } else {
        h = curl_slist_append(h, "Content-Type: application/grpc");
        h = curl_slist_append(h, "TE: trailers");
        if (o->gzip)
            h = curl_slist_append(h, "grpc-encoding: gzip");
    }
    h = curl_slist_append(h, "Expect:");
    if (s->authorization[0])
        h = curl_slist_append(h, s->authorization);
    s->grpc_status = -1;
    s->grpc_message[0] = 0;
    /* A fresh handle (and connection) per request: libcurl 7.88 fails the second HTTP/2
     * request of a reused easy handle after a response with trailers ("Error in the HTTP2
     * framing layer"), and every gRPC answer has trailers. */
    CURL *one = curl_easy_duphandle(s->curl);
    if (!one) {
        curl_slist_free_all(h);
        fprintf(stderr, "lazybackend send: %s: request %u: out of memory\n", req->name, req->index);
        return 1;
    }
    curl_easy_setopt(one, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(one, CURLOPT_POSTFIELDS, (const char *)s->body.data);
    curl_easy_setopt(one, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    CURLcode rc = curl_easy_perform(one);
    long status = 0;
    curl_easy_getinfo(one, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(one);
    curl_slist_free_all(h);
    s->sent++;
    /* A gRPC server that refuses a call before its body (a missing token, an unknown method)
     * answers, then resets the stream with NO_ERROR so that the body stops coming: curl calls
     * that a stream error, but the answer is there. */
    bool answered_early = !o->http && rc == CURLE_HTTP2_STREAM && s->grpc_status > 0;
    if (rc != CURLE_OK && !answered_early) {
        printf("%s: request %u: not sent: %s (%s)\n", req->name, req->index, curl_easy_strerror(rc), s->url);
        return 1;
    }
    bool accepted = report(s, req, status);
    s->accepted += accepted;
    fflush(stdout);
    return accepted ? 0 : 1;
}

/* ---------- the command ---------- */

static int parse_send_options(int argc, char **argv, struct send_options *o, const char ***files, int *n_files)
{
    *files = calloc((size_t)argc + 1, sizeof **files);
    *n_files = 0;
    if (!*files)
        return 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            send_usage(stdout);
            return 0;
        } else if (strcmp(a, "--grpc") == 0) {
            o->http = false;
        } else if (strcmp(a, "--http") == 0) {
            o->http = true;
        } else if (strcmp(a, "--gzip") == 0) {
            o->gzip = true;
        } else if (strcmp(a, "--traces") == 0) {
            o->traces = true;
        } else if (strcmp(a, "--to") == 0 && v) {
            o->to = argv[++i];
        } else if (strcmp(a, "--input-format") == 0 && v && capture_format_parse(v, &o->input_format)) {
            i++;
        } else if (strcmp(a, "--max-message-size") == 0 && v && strtoull(v, NULL, 10) >= 16) {
            o->max_message_size = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--timeout") == 0 && v && atol(v) > 0) {
            o->timeout_s = atol(argv[++i]);
        } else if (strcmp(a, "--tls") == 0) {
            o->tls = true;
        } else if (strcmp(a, "--cacert") == 0 && v && *v) {
            o->cacert = argv[++i];
        } else if (strcmp(a, "--cert") == 0 && v && *v) {
            o->cert = argv[++i];
        } else if (strcmp(a, "--key") == 0 && v && *v) {
            o->key = argv[++i];
        } else if (strcmp(a, "--token-file") == 0 && v && *v) {
            o->token_file = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lazybackend send: bad option or value: %s%s%s (see --help)\n", a, v ? " " : "",
                    v && v[0] != '-' ? v : "");
            return 2;
        } else {
            (*files)[(*n_files)++] = a;
        }
    }
    if (o->to && strncmp(o->to, "https://", 8) == 0)
        o->tls = true;
    if ((o->cacert || o->cert || o->key) && !o->tls) {
        fprintf(stderr, "lazybackend send: --cacert, --cert and --key need --tls (or an https:// URL)\n");
        return 2;
    }
    if (!o->cert != !o->key) {
        fprintf(stderr, "lazybackend send: --cert and --key go together\n");
        return 2;
    }
    return -1;
}

/* --token-file: its first token, the way the server reads the file (h2/auth.h), as the
 * header line. 0, or -1 with the reason said. */
static int read_token(const char *path, char *header, size_t len)
{
    struct h2_auth *check = h2_auth_new();
    char err[300];
    int rc = check ? h2_auth_load(check, path, err, sizeof err) : -1;
    h2_auth_free(check);
    FILE *f = rc == 0 ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "lazybackend send: --token-file %s\n", rc == 0 ? strerror(errno) : check ? err : "out of memory");
        return -1;
    }
    char line[AUTH_MAX_TOKEN_LEN + 8];
    rc = -1;
    while (rc != 0 && fgets(line, sizeof line, f)) {   /* the file was checked: the first token fits */
        char *t = line + strspn(line, " \t\r");
        t[strcspn(t, " \t\r\n")] = 0;
        if (*t && *t != '#') {
            snprintf(header, len, "Authorization: Bearer %s", t);
            rc = 0;
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return rc;
}

/* Sets up libcurl for s (its options already set): 0; -1 with the reason in err for options
 * that do not work (a bad address, an unreadable token file); -2 when libcurl did not start. */
static int sender_start(struct sender *s, char *err, size_t errlen)
{
    const struct send_options *o = s->opt;
    if (build_url(o, s->url, sizeof s->url) != 0) {
        snprintf(err, errlen, "--to %s: expected HOST:PORT, :PORT, PORT or a URL", o->to);
        return -1;
    }
    if (o->token_file && read_token(o->token_file, s->authorization, sizeof s->authorization) != 0) {
        snprintf(err, errlen, "--token-file %s: not used", o->token_file);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(s->curl = curl_easy_init())) {
        snprintf(err, errlen, "libcurl did not start");
        return -2;
    }
    buf_init(&s->body, o->max_message_size + 1024);
    buf_init(&s->response, 16u << 20);
    curl_easy_setopt(s->curl, CURLOPT_URL, s->url);
    /* gRPC over TLS: HTTP/2 chosen by ALPN (only "h2" is offered then, so a server that
     * cannot speak it fails the handshake rather than getting HTTP/1.1). */
    curl_easy_setopt(s->curl, CURLOPT_HTTP_VERSION, o->http ? CURL_HTTP_VERSION_1_1
                                                   : o->tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (o->cacert)
        curl_easy_setopt(s->curl, CURLOPT_CAINFO, o->cacert);
    if (o->cert) {
        curl_easy_setopt(s->curl, CURLOPT_SSLCERT, o->cert);
        curl_easy_setopt(s->curl, CURLOPT_SSLKEY, o->key);
    }
    curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, o->timeout_s);
    curl_easy_setopt(s->curl, CURLOPT_NOPROXY, "*");   /* a local receiver, whatever the proxy env */
    curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
    return 0;
}

static void sender_stop(struct sender *s)
{
    explicit_bzero(s->authorization, sizeof s->authorization);
    if (s->curl) {
        curl_easy_cleanup(s->curl);
        curl_global_cleanup();
        s->curl = NULL;
    }
    buf_free(&s->body);
    buf_free(&s->response);
}

int send_command(int argc, char **argv)
{
    struct send_options o = { false, false, false, NULL, CAPTURE_AUTO, 64u << 20, 30 };
    const char **files;
    int n_files;
    int rc = parse_send_options(argc, argv, &o, &files, &n_files);
    if (rc >= 0) {
        free(files);
        return rc;
    }
    struct sender s;
    memset(&s, 0, sizeof s);
    s.opt = &o;
    char err[512];
    if (n_files == 0) {
        fprintf(stderr, "lazybackend send: no input (give FILE... or - for stdin)\n");
        free(files);
        return 2;
    }
    if ((rc = sender_start(&s, err, sizeof err)) != 0) {
        if (strncmp(err, "--token-file", 12) != 0)   /* read_token said why */
            fprintf(stderr, "lazybackend send: %s\n", err);
        sender_stop(&s);
        free(files);
        return rc == -2 ? 1 : 2;
    }
    rc = 0;
    for (int i = 0; i < n_files; i++)
        rc |= capture_read("lazybackend send", files[i], o.input_format,
                           o.traces ? OTLP_JSON_TRACES_REQUEST : OTLP_JSON_PROFILES_REQUEST,
                           o.max_message_size, send_one, &s);
    fprintf(stderr, "lazybackend send: %u of %u request(s) accepted whole by %s\n", s.accepted, s.sent, s.url);
    sender_stop(&s);
    free(files);
    return rc;
}

/* ---------- the client other commands use (cmd.h) ---------- */

struct otlp_client {
    struct send_options opt;
    struct sender s;
    const char *prog;
};

struct otlp_client *otlp_client_open(const char *to, bool http, bool gzip, long timeout_s, const char *prog,
                                     char *err, size_t errlen)
{
    struct otlp_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->opt = (struct send_options){ http, gzip, false, to, CAPTURE_PROTO, 64u << 20, timeout_s };
    c->opt.tls = to && strncmp(to, "https://", 8) == 0;
    c->s.opt = &c->opt;
    c->prog = prog;
    if (sender_start(&c->s, err, errlen) != 0) {
        otlp_client_close(c);
        return NULL;
    }
    return c;
}

int otlp_client_send(struct otlp_client *c, const uint8_t *msg, size_t len, unsigned index)
{
    struct capture_request req = { c->prog, index, msg, len, NULL, 0 };
    return send_one(&c->s, &req);
}

void otlp_client_close(struct otlp_client *c)
{
    if (!c)
        return;
    sender_stop(&c->s);
    free(c);
}
