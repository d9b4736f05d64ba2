/*
 * harness.h - what the libFuzzer targets in test/fuzz/ share: the sinks they deliver to, the
 * decoders behind them with the invariants every decode must keep, and a way to play bytes
 * to the real server (h2/) through a socketpair and the event loop.
 *
 * Why shared: each network parser has its own target (so each gets its own corpus and its
 * own coverage feedback), but what happens after a parser succeeded - decoding, the sinks,
 * the responses - must be driven the same way everywhere, exactly as cmd/serve.c wires it.
 *
 * libFuzzer gives a target no context argument, so everything here is made on first use and
 * kept for the life of the process (as the server keeps its decoders and sinks).
 */
#ifndef LB_TEST_FUZZ_HARNESS_H
#define LB_TEST_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2/server.h"
#include "otlp/decode.h"
#include "otlp/traces.h"
#include "sinks/sink.h"

#define FUZZ_PROFILES_METHOD "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

/* A broken invariant: says which and aborts (libFuzzer keeps the input). */
void fuzz_must(bool ok, const char *what);

/* True when `s` is one line of printable ASCII (what may go into a log line). */
bool fuzz_printable(const char *s);

/* Logs at debug level (so every log line's formatting runs on hostile strings); the scripts
 * pass -close_fd_mask=2 so that they go nowhere while the sanitizer reports still show. */
void fuzz_init_logs(void);

/* The stdout sink in its three formats (text, folded, json), each on /dev/null. */
struct sink_set *fuzz_stdout_sinks(void);

/* One profiles request through the auto-detecting decoder into fuzz_stdout_sinks(), and its
 * protobuf and JSON responses; aborts when the result breaks an invariant of decode.h. */
enum otlp_status fuzz_export_profiles(const char *transport, const uint8_t *msg, size_t len,
                                      struct otlp_result *res);
/* The same for a traces request (traces.h). */
enum otlp_status fuzz_export_traces(const char *transport, const uint8_t *msg, size_t len,
                                    struct otlp_trace_result *res);

/* Checks JSON that we produce: no raw control characters, and our own reader takes it. */
void fuzz_check_json_out(const struct buf *json, const char *what);

/* A server (not listening) whose connections are socketpairs made by fuzz_net_exchange(). */
struct fuzz_net;
struct fuzz_net *fuzz_net_new(const struct h2_server_config *cfg);
struct h2_server *fuzz_net_server(struct fuzz_net *n);
struct loop *fuzz_net_loop(struct fuzz_net *n);

/* Plays `data` to a new connection in pieces of `piece` bytes (0 = all at once), one loop
 * turn per piece, reads and drops whatever the server answers, then hangs up. Returns the
 * number of response bytes. Bounded: aborts when the server has not closed the connection
 * within a bounded number of turns after the client hung up (a hang). */
size_t fuzz_net_exchange(struct fuzz_net *n, const uint8_t *data, size_t size, size_t piece);

#endif
