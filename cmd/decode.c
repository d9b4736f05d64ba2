/*
 * decode.c - `lazybackend decode [options] FILE...`: captured payloads through the decoder
 * and sinks of the server, or with --detect, the proto layout each request fits and why.
 *
 * Why: a payload a sender sent (a Collector file exporter's output, a body saved from a
 * request) can be replayed without a network or a server, with the same options and the
 * same output. The files are read by capture.c: protobuf (one request or a length-prefixed
 * stream) or OTLP/JSON (one document or JSON lines), either possibly gzipped; - is stdin.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cmd/capture.h"
#include "cmd/cmd.h"
#include "lib/buf.h"
#include "lib/escape.h"
#include "lib/loop.h"
#include "otlp/decode.h"
#include "otlp/detect.h"
#include "sinks/sink.h"

/* decode --detect: the unknown fields the chosen layout leaves, one line each (what the wire
 * holds is escaped like every string from the wire). */
static void print_unknown(const struct otlp_detection *det)
{
    static const char *const wt[8] = { "VARINT", "I64", "LEN", "SGROUP", "EGROUP", "I32", "6", "7" };
    struct buf b;
    buf_init(&b, 4096);
    for (size_t i = 0; i < det->n_recorded; i++) {
        const struct otlp_unknown_field *u = &det->unknown[i];
        buf_reset(&b);
        if (!esc_text(&b, u->decoded, strlen(u->decoded)) || !buf_putc(&b, 0))
            break;
        printf("  unknown: %s: %s field %u (%s, %zu bytes): %s\n", u->path[0] ? u->path : "(request)",
               u->message, u->number, wt[u->wire_type & 7], u->size, (const char *)b.data);
    }
    buf_free(&b);
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
    if (rc == 0)
        print_unknown(&det);
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}

/* One request of a file into the sinks; 1 when it was refused or anything in it rejected. */
static int decode_one(void *ud, const struct capture_request *cr)
{
    struct app *app = ud;
    const char *name = cr->name;
    unsigned index = cr->index;
    const uint8_t *msg = cr->msg;
    size_t len = cr->len;
    if (cr->json && app->cfg.proto_version && app->cfg.proto_version != &otlp_layout_v1_11) {
        fprintf(stderr, "lazybackend: %s: request %u: OTLP/JSON is read as v1.11 (the field names of "
                "today's proto), not as the pinned %s\n", name, index, app->cfg.proto_version->name);
        return 1;
    }
    if (app->cfg.detect_only)
        return detect_one(app, name, index, msg, len);
    struct lb_request req = {
        .transport = "file", .peer = name, .received_unix_nano = now_unix_nano(),
        .wire_bytes = len, .sequence = ++app->sequence,
    };
    struct otlp_result res;
    if (app->stdout_gone && app->cfg.n_sinks <= 1)
        return 0;   /* nobody reads the output any more: the rest is skipped, quietly */
    otlp_export_profiles(app->decoder, msg, len, &req, sink_set_consumer(&app->sinks), &res);
    count_result(app, &res);
    note_stdout_reader(app);
    if (app->stdout_gone && app->cfg.n_sinks <= 1)
        return 0;
    if (res.status != OTLP_OK || res.rejected_profiles || res.rejected_samples) {
        fprintf(stderr, "lazybackend: %s: request %u: %s\n", name, index, res.message);
        return 1;
    }
    return 0;
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
        rc |= capture_read("lazybackend", files[i], app->cfg.input_format, OTLP_JSON_PROFILES_REQUEST,
                           app->cfg.max_message_size, decode_one, app);
    app_teardown(app, (int)app->cfg.shutdown_timeout_ms);
    if (app_lost_rows(app)) {
        fprintf(stderr, "lazybackend decode: %llu sample rows could neither be delivered nor kept\n",
                (unsigned long long)app_lost_rows(app));
        rc = 1;
    }
    return rc;
}
