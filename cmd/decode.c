/*
 * decode.c - `lazybackend decode [options] FILE...`: captured payloads through the decoder
 * and sinks of the server, or with --detect, the proto layout each request fits and why.
 *
 * Why: a payload a sender sent (a Collector file exporter's output, a body saved from a
 * request) can be replayed without a network or a server, with the same options and the
 * same output. A FILE holds one raw request or a stream of length-prefixed ones, either
 * possibly gzipped; - is stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/loop.h"
#include "otlp/decode.h"
#include "otlp/detect.h"
#include "sinks/sink.h"

/* A whole file (or stdin) into `out`, up to its limit. */
static int read_all(const char *path, size_t limit, struct buf *out, char *err, size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    int rc = 0;
    for (;;) {
        if (!buf_reserve(out, 65536) && !buf_reserve(out, 1)) {
            snprintf(err, errlen, "larger than %zu bytes", limit);
            rc = -1;
            break;
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* The Collector's file exporter writes lengths big-endian. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A stream of 4-byte big-endian length-prefixed requests (the Collector's file exporter)
 * tiles the file exactly; a raw protobuf request never starts with a zero byte (field 0
 * does not exist), and almost never tiles by chance. */
static bool is_length_prefixed(const uint8_t *p, size_t n)
{
    size_t pos = 0, count = 0;
    while (pos < n) {
        if (n - pos < 4)
            return false;
        uint32_t len = be32(p + pos);
        if (len > n - pos - 4)
            return false;
        pos += 4 + len;
        count++;
    }
    return count > 0 && (p[0] == 0 || count > 1);
}

/* decode --detect: one block per request, the chosen layout and the evidence. */
static int detect_one(struct app *app, const char *name, unsigned index, const uint8_t *msg, size_t len)
{
    struct otlp_detection det;
    const struct otlp_layout *pinned = app->cfg.proto_version;
    int rc = pinned ? otlp_detect_among(msg, len, &pinned, 1, &det) : otlp_detect(msg, len, &det);
    char summary[512];
    otlp_detection_summary(&det, summary, sizeof summary);
    printf("%s: request %u: %s\n", name, index, rc == 0 ? summary : "fits no proto layout");
    for (size_t i = 0; i < det.n_evidence; i++)
        printf("  %s\n", det.evidence[i]);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}

/* One request of a file into the sinks; 1 when it was refused or anything in it rejected. */
static int decode_one(struct app *app, const char *name, unsigned index, const uint8_t *msg, size_t len)
{
    if (app->cfg.detect_only)
        return detect_one(app, name, index, msg, len);
    struct lb_request req = {
        .transport = "file", .peer = name, .received_unix_nano = now_unix_nano(),
        .wire_bytes = len, .sequence = ++app->sequence,
    };
    struct otlp_result res;
    otlp_export_profiles(app->decoder, msg, len, &req, sink_set_consumer(&app->sinks), &res);
    count_result(app, &res);
    if (res.status != OTLP_OK || res.rejected_profiles || res.rejected_samples) {
        fprintf(stderr, "lazybackend: %s: request %u: %s\n", name, index, res.message);
        return 1;
    }
    return 0;
}

/* A file's requests, decompressed: a length-prefixed stream of them, or one raw request. */
static int decode_requests(struct app *app, const char *name, const uint8_t *p, size_t n)
{
    size_t max = app->cfg.max_message_size;
    if (n == 0) {
        fprintf(stderr, "lazybackend: %s: empty input\n", name);
        return 1;
    }
    if (!is_length_prefixed(p, n)) {
        if (n <= max)
            return decode_one(app, name, 0, p, n);
        fprintf(stderr, "lazybackend: %s: %zu bytes is over --max-message-size\n", name, n);
        return 1;
    }
    int rc = 0;
    unsigned index = 0;
    for (size_t pos = 0; pos < n; index++) {
        uint32_t len = be32(p + pos);
        if (len > max) {
            fprintf(stderr, "lazybackend: %s: request %u: %u bytes is over --max-message-size\n", name, index, len);
            rc = 1;
        } else {
            rc |= decode_one(app, name, index, p + pos + 4, len);
        }
        pos += 4 + (size_t)len;
    }
    return rc;
}

/* One FILE argument: read, gunzipped when it is gzip, its requests decoded. */
static int decode_file(struct app *app, const char *path)
{
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    struct buf raw, inflated;
    char err[256];
    int rc = 1;
    buf_init(&raw, app->cfg.max_message_size * 16);   /* a file may hold many requests */
    buf_init(&inflated, app->cfg.max_message_size * 16);
    if (read_all(path, raw.limit, &raw, err, sizeof err) != 0)
        fprintf(stderr, "lazybackend: %s: %s\n", name, err);
    else if (raw.len < 2 || raw.data[0] != 0x1f || raw.data[1] != 0x8b)   /* no gzip magic */
        rc = decode_requests(app, name, raw.data, raw.len);
    else if (gzip_inflate(raw.data, raw.len, inflated.limit, &inflated, err, sizeof err) != GZIP_OK)
        fprintf(stderr, "lazybackend: %s: gzip: %s\n", name, err);
    else
        rc = decode_requests(app, name, inflated.data, inflated.len);
    buf_free(&raw);
    buf_free(&inflated);
    return rc;
}

/* `lazybackend decode FILE...`: the decoder and sinks of the server on captured payloads. */
int decode_command(struct app *app, const char **files, int n_files)
{
    if (n_files == 0) {
        fprintf(stderr, "lazybackend decode: no input (give FILE... or - for stdin)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Never run: asynchronous sinks (clickhouse) register on it and deliver in close. */
    app->loop = loop_new();
    app->decoder = otlp_decoder_new(&app->cfg.limits, app->cfg.proto_version);
    if (!app->loop || !app->decoder || (!app->cfg.detect_only && open_sinks(app) != 0))
        return startup_failed(app);
    int rc = 0;
    for (int i = 0; i < n_files; i++)
        rc |= decode_file(app, files[i]);
    app_teardown(app, (int)app->cfg.shutdown_timeout_ms);
    return rc;
}
