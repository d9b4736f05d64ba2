#!/usr/bin/python3
"""health.py - the server's health, as load balancers and probes ask for it: GET /healthz on
the HTTP port and grpc.health.v1.Health/Check on the gRPC port.

Why: an orchestrator stops sending to a backend that says it is unhealthy, so both answers
must flip exactly when the server cannot take requests - during the drained shutdown, and
while a sink would refuse them (a ClickHouse sink whose memory queue and spool are full) -
and asking must change nothing (polling /healthz must not count refusals). The gRPC messages
are encoded and decoded by Google's protobuf runtime from the health checking protocol's
schema (written below), the calls made by grpcio; the shutdown window is held open with
requests sent by hand (a socket, and HTTP/2 frames with python3-hpack's header encoder).
"""
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import otlpgen  # noqa: E402
import scrape  # noqa: E402
from server import free_port, wait_until  # noqa: E402

# grpc/doc/health-checking.md's messages, for the reference protobuf library.
with open(os.path.join(otlpgen.OUT, "health.proto"), "w") as _f:
    _f.write('syntax = "proto3";\npackage grpc.health.v1;\n'
             "message HealthCheckRequest { string service = 1; }\n"
             "message HealthCheckResponse {\n"
             "  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }\n"
             "  ServingStatus status = 1;\n}\n")
otlpgen.compile_protos("health.proto", include=otlpgen.OUT)
import health_pb2  # noqa: E402

CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
PROFILES_SERVICE = "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
TRACES_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TMP = fx.tempdir("lb-health-")


def request(service=""):
    return health_pb2.HealthCheckRequest(service=service).SerializeToString()


def status_name(body):
    r = health_pb2.HealthCheckResponse()
    r.ParseFromString(body)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)


def grpc_check(srv, service=""):
    """(gRPC status, serving status or None) of one Check with grpcio."""
    r = srv.export(request(service), method=CHECK)
    return r.status, status_name(r.body) if r.status == "OK" else None


def test_serving():
    srv = hg.Server()
    try:
        st, ctype, body = scrape.get(srv.url + "/healthz")
        check("/healthz while serving: 200 ok", st == 200 and body == "ok\n", (st, body))
        for name in ("", PROFILES_SERVICE, TRACES_SERVICE):
            got = grpc_check(srv, name)
            check("Check(%r): SERVING" % name, got == ("OK", "SERVING"), got)
        got = grpc_check(srv, "no.such.Service")
        check("Check of an unknown service: NOT_FOUND (the protocol's answer for Check)",
              got == ("NOT_FOUND", None), got)
        r = srv.export(b"\x0a\x05ab", method=CHECK)
        check("Check with a malformed request: INVALID_ARGUMENT", r.status == "INVALID_ARGUMENT", r)
        import grpc
        try:
            list(srv.channel.unary_stream(WATCH)(request(), timeout=10 * fx.SLOW))
            watch = "OK"
        except grpc.RpcError as e:
            watch = e.code().name
        check("Watch: UNIMPLEMENTED (unary port; clients poll Check)", watch == "UNIMPLEMENTED", watch)
        page = scrape.scrape(srv.url)
        check("/metrics: healthy 1", page.value("lazybackend_healthy") == 1)
        check("server exits 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


# ---- HTTP/2 by hand: a gRPC call whose message is sent when the test says so ----

def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def h2_open_call(port, path):
    """A connection with stream 1's request headers sent, its body not yet (no END_STREAM)."""
    import hpack
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * fx.SLOW)
    headers = hpack.Encoder().encode([(":method", "POST"), (":scheme", "http"), (":path", path),
                                      (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
                                      ("te", "trailers")])
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) + h2_frame(1, 0x4, 1, headers))
    return s


def h2_finish_call(s, message):
    """Sends the message (END_STREAM) and reads until stream 1's trailers: (headers, data,
    goaway seen)."""
    import hpack
    s.sendall(h2_frame(4, 1, 0) + h2_frame(0, 1, 1, b"\x00" + struct.pack(">I", len(message)) + message))
    dec, buf, headers, data, goaway = hpack.Decoder(), b"", {}, b"", False
    deadline = time.monotonic() + 10 * fx.SLOW
    while time.monotonic() < deadline:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n, ftype, flags, stream = int.from_bytes(buf[:3], "big"), buf[3], buf[4], \
                int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload, buf = buf[9:9 + n], buf[9 + n:]
            if ftype == 7:
                goaway = True
            elif ftype == 1:   # HEADERS: padding and priority stripped, then HPACK
                if flags & 0x8:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & 0x20:
                    payload = payload[5:]
                headers.update((k if isinstance(k, str) else k.decode(), v if isinstance(v, str) else v.decode())
                               for k, v in dec.decode(payload))
                if stream == 1 and flags & 0x1:
                    return headers, data, goaway
            elif ftype == 0 and stream == 1:
                data += payload
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return headers, data, goaway


def test_shutdown_window():
    """Requests begun before SIGTERM are answered during the drained shutdown: /healthz with
    503 "shutting down", the health check with NOT_SERVING."""
    srv = hg.Server("--shutdown-timeout", "30")
    try:
        h1 = socket.create_connection(("127.0.0.1", srv.http_port), timeout=10 * fx.SLOW)
        h1.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")        # the blank line comes later
        h2 = h2_open_call(srv.grpc_port, CHECK)
        time.sleep(0.3 * fx.SLOW)   # both requests are being received
        srv.proc.send_signal(signal.SIGTERM)
        began = wait_until(lambda: "SIGTERM: stop accepting" in srv.stderr(), 10 * fx.SLOW)
        check("SIGTERM: the shutdown began, the server still runs (requests in flight)",
              began and srv.alive(), srv.stderr()[-1000:])
        h1.sendall(b"\r\n")
        raw = b""
        while True:
            chunk = h1.recv(65536)
            if not chunk:
                break
            raw += chunk
        resp = hg.parse_raw_responses(raw)
        check("/healthz during shutdown: 503, \"shutting down\", the connection closed after it",
              len(resp) == 1 and resp[0][0] == 503 and resp[0][2] == b"shutting down\n" and
              resp[0][1].get("connection") == "close", raw)
        headers, data, goaway = h2_finish_call(h2, request(PROFILES_SERVICE))
        got = status_name(data[5:]) if headers.get("grpc-status") == "0" and len(data) >= 5 else headers
        check("Check during shutdown (after GOAWAY): NOT_SERVING", goaway and got == "NOT_SERVING",
              (goaway, headers, data))
        check("grpc-message says why", headers.get("grpc-message") == "shutting down", headers)
        h2.close()
        h1.close()
        rc = srv.proc.wait(timeout=20 * fx.SLOW)
        check("then the server drains and exits 0", rc == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def test_sink_full():
    """A ClickHouse sink whose ClickHouse is down and whose memory queue and spool are full: the
    server says so on both ports until it can take requests again (a real clickhouse-server
    started on the sink's port); asking counts nothing."""
    import clickhouse_common as cc
    spool = os.path.join(TMP, "spool")
    ch = cc.ClickHouse()
    ch.port = free_port()                 # nothing listens there until ch.start()
    srv = hg.Server("--sink", "clickhouse", "--clickhouse-url", ch.url,
                    "--clickhouse-database", "lb_health", "--clickhouse-flush-interval", "50",
                    "--clickhouse-max-queue-bytes", "16K", "--clickhouse-spool-dir", spool,
                    "--clickhouse-spool-max-bytes", "400K", "--shutdown-timeout", "2")
    # (the write-ahead log holds a request's rows uncompressed, about 78 KB here: a few fit)
    try:
        st, _, body = scrape.get(srv.url + "/healthz")
        check("before: /healthz 200", st == 200, body)
        check("before: Check SERVING", grpc_check(srv) == ("OK", "SERVING"))
        replies = []
        for _ in range(600):                      # bounded: stops at the first refusal
            replies.append(srv.export(fx.read(), timeout=5 * fx.SLOW))
            if replies[-1].status != "OK":
                break
            time.sleep(0.01)
        refused = [r for r in replies if r.status != "OK"]
        check("the sink fills up: a request refused with UNAVAILABLE after %d accepted" % (len(replies) - 1),
              len(refused) == 1 and refused[0].status == "UNAVAILABLE" and len(replies) > 1,
              [r.status for r in replies[-3:]])
        before = scrape.scrape(srv.url)
        answers = [scrape.get(srv.url + "/healthz") for _ in range(5)]
        check("full: /healthz 503 naming the sink's reason, every time asked",
              all(a[0] == 503 and a[2].startswith("a sink cannot take requests: ClickHouse sink full") for a in answers),
              answers[0])
        got = [grpc_check(srv) for _ in range(3)]
        check("full: Check NOT_SERVING", got == [("OK", "NOT_SERVING")] * 3, got)
        after = scrape.scrape(srv.url)
        check("full: /metrics healthy 0", after.value("lazybackend_healthy") == 0)
        refusals = lambda p: (p.value("lazybackend_clickhouse_requests_refused_total", index="0"),  # noqa: E731
                              p.value("lazybackend_sink_refusals_total", sink="clickhouse", index="0"),
                              p.value("lazybackend_sink_commit_failures_total", sink="clickhouse", index="0"))
        check("asking counted nothing: the sink's refusals as before the questions (one)",
              refusals(after) == refusals(before) and refusals(after)[0] == 1 and
              refusals(after)[1] + refusals(after)[2] == 1, (refusals(before), refusals(after)))
        outcomes = after.value("lazybackend_requests_total", transport="grpc", signal="profiles", outcome="unavailable") + \
            after.value("lazybackend_requests_total", transport="grpc", signal="profiles", outcome="failed")
        check("the refused request is counted as unavailable or failed", outcomes == 1, outcomes)
        check("the write-ahead log is at its limit: the refusal was for want of room",
              after.value("lazybackend_clickhouse_wal_bytes", index="0") > 0 and
              after.value("lazybackend_clickhouse_wal_max_bytes", index="0") == 400 * 1024 and
              after.value("lazybackend_clickhouse_requests_refused_full_total", index="0") == 1)
        ch.start()
        back = wait_until(lambda: scrape.get(srv.url + "/healthz")[0] == 200, 60 * fx.SLOW, 0.2)
        check("ClickHouse back: /healthz 200 again by itself (no request needed), Check SERVING",
              back and grpc_check(srv) == ("OK", "SERVING"), scrape.get(srv.url + "/healthz"))
        check("server exits 0", srv.stop(timeout=60) == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()
        ch.stop_and_clean()


run("serving", test_serving)
run("the shutdown window", test_shutdown_window)
run("a sink that cannot take requests", test_sink_full)
done()
