/*
 * fuzz_http.c - libFuzzer target: arbitrary bytes from a client of the OTLP/HTTP port, played
 * to the real server (h2/server.c, http1.c, http.c, session.c, otlp_http.c) through a
 * socketpair and the event loop, one connection per input.
 *
 * The port decides by the first bytes: HTTP/1.1 (http_parser, pipelining, chunked bodies,
 * Expect: 100-continue, "Upgrade: h2c") or h2c prior knowledge. Its routes are the real OTLP
 * ones, whose handlers decode into the stdout sinks as cmd/serve.c's do, so a request that gets
 * through the transport goes on through the JSON transcoder, the decoders and the responses.
 * The web UI's routes are there too (ui/, without a database: its query parameters are parsed
 * and checked, then the store says it has nothing), with the live tail's long-lived responses
 * (h2/push.c) opened and abandoned as connections come and go.
 *
 * The input is sent whole, unless its last byte has the high bit set: then in pieces of
 * (last byte & 0x7f) * 8 + 1 bytes, one loop turn each, so request heads, bodies and the h2c
 * preface arrive cut at every point. Limits are small (64 KiB messages) so that the 413 and
 * busy paths are reachable. Checks: the sanitizers', the decoders' contracts (harness.c), and
 * that a connection whose client hung up is closed within a bounded number of turns.
 */
#include <stdint.h>

#include "h2/otlp_http.h"
#include "test/fuzz/harness.h"
#include "ui/ui.h"

enum { MAX_MESSAGE = 64 * 1024 };

static void http_profiles(void *ud, const struct otlp_http_call *call, struct otlp_result *res)
{
    (void)ud;
    fuzz_export_profiles("http", call->message, call->length, res);
}

static void http_traces(void *ud, const struct otlp_http_call *call, struct otlp_trace_result *res)
{
    (void)ud;
    fuzz_export_traces("http", call->message, call->length, res);
}

static struct fuzz_net *http_port(void)
{
    static struct fuzz_net *net;
    static const struct otlp_http_service svc = {
        .profiles = http_profiles, .traces = http_traces, .max_message_size = MAX_MESSAGE,
    };
    if (net)
        return net;
    struct h2_server_config cfg = {
        .address = "127.0.0.1:0", .protocol = H2_SERVER_HTTP, .max_message_size = MAX_MESSAGE,
        .max_inflight_bytes = 4 * MAX_MESSAGE, .max_concurrent_streams = 8,
    };
    net = fuzz_net_new(&cfg);
    fuzz_must(otlp_http_register(fuzz_net_server(net), &svc) == 0, "routes");
    struct ui *u = ui_new(fuzz_net_loop(net), NULL);
    fuzz_must(u && ui_register(u, fuzz_net_server(net)) == 0, "ui routes");
    return net;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init_logs();
    size_t piece = 0;
    if (size > 0 && (data[size - 1] & 0x80))
        piece = (size_t)(data[size - 1] & 0x7f) * 8 + 1;
    fuzz_net_exchange(http_port(), data, size, piece);
    return 0;
}
