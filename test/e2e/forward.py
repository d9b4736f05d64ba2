#!/usr/bin/python3
"""forward.py - the forward sink: a tap between a profiler and a real backend.

Why it exists: users put lazybackend between the eBPF profiler and their Collector to see
what flows, and must not lose or alter anything on the way. The profiler's side is a grpcio
client; the upstream is (a) a recorder of raw bytes (a grpcio generic handler, a Python HTTP
server), against which every request must arrive byte-identical (the decoded protobuf; for
OTLP/JSON, a message equal to the one sent, parsed by Google's protobuf), exactly once and in
order, and (b) a second real lazybackend whose printed counts must equal the fixtures'
expect.json. Also: an upstream outage (nothing lost, nothing duplicated), a SIGKILL during
the outage (everything delivered after the restart), a full log (refusals, not losses,
/healthz 503), a permanent rejection (counted, logged, not retried), traces, gzip, OTLP/HTTP
with Retry-After, and memory mode's non-zero exit when acknowledged requests are lost.
"""
import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from concurrent import futures

os.environ.setdefault("GRPC_VERBOSITY", "NONE")   # the refused handshakes below are expected
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import scrape  # noqa: E402
import server  # noqa: E402

PROFILES = server.PROFILES_EXPORT
TRACES = server.TRACES_EXPORT
LAYOUTS = [fx.read(n) for n in fx.FIXTURE_FILES]


def trace_request():
    req = hg.trace_service.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    a = rs.resource.attributes.add()
    a.key, a.value.string_value = "service.name", "checkout"
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = bytes(range(1, 17)), bytes(range(1, 9)), "GET /cart"
    sp.start_time_unix_nano, sp.end_time_unix_nano = 1769443200000000000, 1769443200001500000
    return req.SerializeToString()


class GrpcUpstream:
    """A gRPC upstream that records every Export's raw bytes, with its method and metadata;
    `fail` (a grpc.StatusCode and a message) makes it refuse instead. Stopped and started
    again on the same port for outages."""

    def __init__(self, tls=None):
        self.port = server.free_port()
        self.got, self.fail, self.srv, self.tls = [], None, None, tls
        self.start()

    def start(self):
        import grpc
        rec = self

        def handler(method):
            def fn(body, ctx):
                if rec.fail:
                    ctx.abort(rec.fail[0], rec.fail[1])
                rec.got.append((method, body, dict(ctx.invocation_metadata())))
                return b""
            return grpc.unary_unary_rpc_method_handler(fn)

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                return handler(details.method) if details.method in (PROFILES, TRACES) else None

        self.srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.srv.add_generic_rpc_handlers((Handler(),))
        if self.tls:
            self.srv.add_secure_port("127.0.0.1:%d" % self.port, grpc.ssl_server_credentials([self.tls]))
        else:
            self.srv.add_insecure_port("127.0.0.1:%d" % self.port)
        self.srv.start()

    def stop(self):
        self.srv.stop(0).wait(5)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def bodies(self):
        return [b for _, b, _ in self.got]


class HttpUpstream(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP upstream recording (path, headers, body as sent); the first `busy`
    requests are answered 503 with Retry-After: 1."""

    def __init__(self, busy=0, delay=0.0):
        self.got, self.busy, self.busy_times, self.delay = [], busy, [], delay
        up = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if up.busy > 0:
                    up.busy -= 1
                    up.busy_times.append(time.monotonic())
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                time.sleep(up.delay)
                up.got.append((self.path, dict(self.headers), body, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


def backend(upstream_url, spool, *extra):
    return server.Server("--sink", "forward", "--forward-url", upstream_url, "--forward-spool-dir", spool,
                         *extra, http=True)


def metric(be, name):
    try:
        return scrape.scrape(be.url).total("lazybackend_forward_" + name)
    except Exception:  # noqa: BLE001 - a server going away: no value
        return None


def wal_files(spool):
    return sorted(f for f in os.listdir(spool) if f.endswith(".wal"))


def test_grpc_tap():
    up = GrpcUpstream()
    spool = fx.tempdir("lb-fwd-")
    be = backend(up.url, os.path.join(spool, "s"), "--forward-header", "authorization: Bearer up-token")
    sent, statuses = [], []
    for body in LAYOUTS:
        for gz in (False, True):
            statuses.append(be.export(body, gzip=gz).status)
            sent.append((PROFILES, body))
    trace = trace_request()
    statuses.append(be.export(trace, method=TRACES).status)
    sent.append((TRACES, trace))
    raw, req = hg.fixture_request()
    st = hg.curl(be.url + "/v1development/profiles", hg.to_otlp_json(req), "application/json").status
    check("every request acknowledged", statuses == ["OK"] * len(sent) and st == 200, (statuses, st))
    server.wait_until(lambda: len(up.got) >= len(sent) + 1, 10 * fx.SLOW)
    got = [(m, b) for m, b, _ in up.got]
    check("the upstream got every request byte-identical, once, in order (%d requests, every layout, "
          "plain and gzip from the client)" % len(sent), got[:len(sent)] == sent,
          "%d received, first difference at %s" % (len(got), next((i for i, (g, s) in enumerate(zip(got, sent))
                                                                  if g != s), None)))
    check("traces forwarded to TraceService/Export", (TRACES, trace) in got)
    json_ok = len(up.got) == len(sent) + 1
    if json_ok:
        fwd = hg.profiles_service.ExportProfilesServiceRequest()
        fwd.ParseFromString(up.got[-1][1])
        json_ok = fwd == req
    check("an OTLP/JSON request is forwarded as the protobuf message it stands for", json_ok, len(up.got))
    check("--forward-header sent with every request",
          all(md.get("authorization") == "Bearer up-token" for _, _, md in up.got), up.got[0][2] if up.got else "")
    check("/metrics: queued and delivered counted", metric(be, "requests_delivered_total") == len(sent) + 1,
          metric(be, "requests_delivered_total"))
    rc = be.stop()
    check("SIGTERM: exit 0, the write-ahead log left empty", rc == 0 and wal_files(os.path.join(spool, "s")) == [],
          (rc, be.stderr()[-1500:]))
    up.stop()
    be.cleanup()


def test_outage_and_kill():
    up = GrpcUpstream()
    spool = os.path.join(fx.tempdir("lb-fwd-"), "s")
    # a memory window smaller than one request: all but the first are read back from the log
    be = backend(up.url, spool, "--forward-max-queue-bytes", "4K")
    up.stop()
    sent = [LAYOUTS[i % 4] for i in range(6)]
    statuses = [be.export(b).status for b in sent]
    check("upstream down: requests still acknowledged (kept in the log)", statuses == ["OK"] * 6, statuses)
    time.sleep(1.0)
    check("nothing delivered while the upstream is down; retries counted",
          up.got == [] and (metric(be, "attempts_retried_total") or 0) >= 1 and
          metric(be, "pending_requests") == 6 and metric(be, "wal_bytes") > 6 * 25000 and
          metric(be, "queue_bytes") < 30000,
          (len(up.got), metric(be, "attempts_retried_total"), metric(be, "wal_bytes"), metric(be, "queue_bytes")))
    up.start()
    server.wait_until(lambda: len(up.got) >= 6, 20 * fx.SLOW)
    time.sleep(0.3)
    check("upstream back: everything delivered, once, in order (read back from the log beyond the memory window)",
          up.bodies() == sent, len(up.got))
    up.stop()
    up.got = []
    more = [LAYOUTS[3 - i % 4] for i in range(4)]
    statuses = [be.export(b).status for b in more]
    time.sleep(0.3)
    be.kill()
    check("during a second outage: acknowledged, then SIGKILL", statuses == ["OK"] * 4 and len(wal_files(spool)) == 4,
          (statuses, wal_files(spool)))
    # a segment that is not one: a torn copy of the last one (its header and half a record)
    with open(os.path.join(spool, wal_files(spool)[-1]), "rb") as f:
        last = f.read()
    with open(os.path.join(spool, "%020d.wal" % 99), "wb") as f:
        f.write(last[:len(last) // 2])
    up.start()
    be2 = backend(up.url, spool)
    server.wait_until(lambda: len(up.got) >= 4, 20 * fx.SLOW)
    time.sleep(0.3)
    check("after the restart: what the log kept is delivered, once, in order", up.bodies() == more, len(up.got))
    check("restart: the replayed requests counted, the log emptied, the torn segment set aside and counted",
          metric(be2, "requests_replayed_total") == 5 and wal_files(spool) == [] and
          metric(be2, "records_unreadable_total") == 1 and os.path.exists(os.path.join(spool, "%020d.bad" % 99)),
          (metric(be2, "requests_replayed_total"), metric(be2, "records_unreadable_total"), os.listdir(spool)))
    be2.stop()
    be.cleanup()
    be2.cleanup()
    up.stop()


def test_full_and_rejection():
    import grpc
    up = GrpcUpstream()
    spool = os.path.join(fx.tempdir("lb-fwd-"), "s")
    be = backend(up.url, spool, "--forward-spool-max-bytes", "128K")
    up.stop()
    statuses = []
    for i in range(12):
        statuses.append(be.export(LAYOUTS[0]).status)
        if statuses[-1] != "OK":
            break
    acked = statuses.count("OK")
    health, _, text = scrape.get(be.url + "/healthz")
    check("log full: UNAVAILABLE after %d acknowledged, /healthz 503" % acked,
          statuses[-1] == "UNAVAILABLE" and 3 <= acked <= 6 and health == 503, (statuses, health, text))
    check("refusals counted", (metric(be, "requests_refused_full_total") or 0) >= 1)
    up.start()
    server.wait_until(lambda: len(up.got) >= acked, 20 * fx.SLOW)
    time.sleep(0.3)
    check("every acknowledged request delivered, the refused one not", len(up.got) == acked, len(up.got))
    health, _, _ = scrape.get(be.url + "/healthz")
    check("room again: /healthz 200", health == 200, health)
    up.fail = (grpc.StatusCode.INVALID_ARGUMENT, "profile 3 has no sample type")
    r = be.export(LAYOUTS[1])
    server.wait_until(lambda: metric(be, "requests_rejected_total") == 1, 10 * fx.SLOW)
    check("a permanent rejection: counted, logged with the upstream's message",
          r.status == "OK" and metric(be, "requests_rejected_total") == 1 and
          "profile 3 has no sample type" in be.stderr(), be.stderr()[-1500:])
    up.fail = None
    be.export(LAYOUTS[2])
    server.wait_until(lambda: len(up.got) > acked, 10 * fx.SLOW)
    check("not retried: the next request goes through", up.bodies()[acked:] == [LAYOUTS[2]], len(up.got))
    be.stop()
    be.cleanup()
    up.stop()


def test_http_gzip_retry_after():
    up = HttpUpstream(busy=1)
    spool = os.path.join(fx.tempdir("lb-fwd-"), "s")
    be = backend(up.url, spool, "--forward-protocol", "http", "--forward-compression", "gzip",
                 "--sink", "stdout", "--frame-types", "jvm")
    t0 = time.monotonic()
    trace = trace_request()
    statuses = [be.export(LAYOUTS[2]).status, be.export(trace, method=TRACES).status]
    server.wait_until(lambda: len(up.got) >= 2, 15 * fx.SLOW)
    paths = [g[0] for g in up.got]
    bodies = [gzip.decompress(g[2]) if g[1].get("Content-Encoding") == "gzip" else None for g in up.got]
    check("OTLP/HTTP: /v1development/profiles and /v1/traces, gzip, the bytes as received",
          statuses == ["OK", "OK"] and paths == ["/v1development/profiles", "/v1/traces"] and
          bodies == [LAYOUTS[2], trace] and all(g[1].get("Content-Type") == "application/x-protobuf" for g in up.got),
          (statuses, paths))
    shown = fx.text_counts(be.wait_stdout(lambda o: fx.text_counts(o, "replace").counts["samples"] > 0), "replace")
    check("a filter shapes what stdout shows (jvm frames only), not what is forwarded (whole, above)",
          set(shown.frame_types) == {"jvm"}, shown.frame_types)
    check("503 with Retry-After: 1 retried after at least a second",
          up.busy_times and up.got and up.got[0][3] - up.busy_times[0] >= 0.9 and
          metric(be, "attempts_retried_total") == 1, (up.busy_times, [g[3] for g in up.got], t0))
    be.stop()
    be.cleanup()
    up.shutdown()


def test_shutdown_drain():
    up = HttpUpstream(delay=0.2)
    spool = os.path.join(fx.tempdir("lb-fwd-"), "s")
    be = backend(up.url, spool, "--forward-protocol", "http", "--forward-compression", "none")
    statuses = [be.export(b).status for b in LAYOUTS]
    pending = metric(be, "pending_requests") or 0
    rc = be.stop()
    check("SIGTERM with %s requests still queued (a slow upstream): delivered while stopping, in order, exit 0"
          % int(pending or 0), statuses == ["OK"] * 4 and pending >= 2 and rc == 0 and [g[2] for g in up.got] == LAYOUTS and wal_files(spool) == [],
          (statuses, rc, len(up.got), wal_files(spool)))
    be.cleanup()
    up.shutdown()


def test_chain_to_lazybackend():
    upstream = server.Server("--sink", "stdout")
    spool = os.path.join(fx.tempdir("lb-fwd-"), "s")
    be = backend("http://127.0.0.1:%d" % upstream.port, spool, "--forward-compression", "none")
    statuses = [be.export(b).status for b in LAYOUTS]
    want = {k: v * len(LAYOUTS) for k, v in fx.expect().items()
            if k in ("resource_profiles", "profiles", "samples", "timestamps", "frames", "values_sum")}
    out = upstream.wait_stdout(lambda o: fx.text_counts(o, "replace").counts["samples"] >= want["samples"], 15)
    got = fx.text_counts(out, "replace")
    check("a second lazybackend upstream prints what the fixtures hold, %d times" % len(LAYOUTS),
          statuses == ["OK"] * 4 and {k: got.counts.get(k, 0) for k in want} == want and
          got.frame_types == {k: v * 4 for k, v in fx.expect()["frame_types"].items()},
          (statuses, dict(got.counts), want))
    be.stop()
    upstream.stop()
    be.cleanup()
    upstream.cleanup()


def test_memory_mode_loss():
    up = GrpcUpstream()
    up.stop()
    be = server.Server("--sink", "forward", "--forward-url", up.url, "--forward-durability", "memory",
                       "--shutdown-timeout", "1")
    statuses = [be.export(LAYOUTS[0]).status for _ in range(2)]
    rc = be.stop()
    err = be.stderr()
    check("memory mode: acknowledged, then lost at shutdown with the upstream down: said so, exit non-zero",
          statuses == ["OK", "OK"] and rc not in (0, None) and "are lost" in err, (statuses, rc, err[-1500:]))
    be.cleanup()


def test_tls():
    import grpc
    d = fx.tempdir("lb-fwd-tls-")
    crt, key = os.path.join(d, "up.crt"), os.path.join(d, "up.key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode(errors="replace"))
    up = GrpcUpstream(tls=(open(key, "rb").read(), open(crt, "rb").read()))
    be = backend("https://127.0.0.1:%d" % up.port, os.path.join(d, "s"), "--forward-ca-file", crt)
    statuses = [be.export(LAYOUTS[0]).status, be.export(LAYOUTS[3]).status]
    server.wait_until(lambda: len(up.got) >= 2, 10 * fx.SLOW)
    check("https://: gRPC over TLS (ALPN h2) to an upstream whose CA is --forward-ca-file, bytes identical",
          statuses == ["OK", "OK"] and up.bodies() == [LAYOUTS[0], LAYOUTS[3]], (statuses, len(up.got)))
    be.stop()
    be.cleanup()
    untrusted = backend("https://127.0.0.1:%d" % up.port, os.path.join(d, "s2"))
    r = untrusted.export(LAYOUTS[1])
    server.wait_until(lambda: "forward: https://" in untrusted.stderr(), 5 * fx.SLOW)
    time.sleep(0.5)
    check("without the CA: the certificate is refused, nothing sent, the request kept for a retry",
          r.status == "OK" and len(up.got) == 2 and metric(untrusted, "pending_requests") == 1 and
          "certificate" in untrusted.stderr(), untrusted.stderr()[-800:])
    untrusted.kill()
    untrusted.cleanup()
    up.stop()


def test_usage():
    rc, _, err = server.run_cli("--sink", "forward")
    check("--sink forward without --forward-url: exit 2, said why", rc == 2 and "--forward-url" in err, err)
    rc, _, err = server.run_cli("--sink", "forward", "--forward-url", "ftp://x")
    check("--forward-url must be http:// or https://", rc == 2 and "http://" in err, err)
    rc, _, err = server.run_cli("--sink", "forward", "--forward-url", "http://x", "--forward-header", "nocolon")
    check("--forward-header must be 'Name: value'", rc == 2 and "Name: value" in err, err)
    rc, _, err = server.run_cli("--sink", "forward", "--forward-url", "https://x", "--forward-ca-file", "/nonexistent")
    check("--forward-ca-file must be readable", rc == 2 and "/nonexistent" in err, err)


for t in (test_usage, test_grpc_tap, test_outage_and_kill, test_full_and_rejection, test_http_gzip_retry_after,
          test_shutdown_drain, test_chain_to_lazybackend, test_tls, test_memory_mode_loss):
    run(t.__name__, t)
done()
