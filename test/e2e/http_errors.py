#!/usr/bin/python3
"""http_errors.py - every error status of the OTLP/HTTP port, from real clients, and the
HTTP/1.1 mechanics a hand-written server gets wrong: keep-alive and pipelining, chunked
bodies, Expect: 100-continue, bounds on headers and bodies, and slow clients.

Why: the port faces whatever is on the network. Each case names the status the OTLP/HTTP
spec (or HTTP) calls for; error bodies are google.rpc.Status messages decoded by Google's
protobuf runtime. A client trickling bytes must be cut off after --request-timeout while
other clients are served without delay. Only 127.0.0.1; every wait is bounded.
"""
import gzip
import json
import os
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import httpgen as hg  # noqa: E402

RAW, _ = hg.fixture_request()
SLOW = hg.SLOW


def status_of(r):
    return hg.decode_status(r.body)


def test_bad_payloads(srv):
    r = hg.curl(srv.url + hg.PROFILES, b"\xff\xff\xff\xff not protobuf", hg.PB)
    st = status_of(r) if r.status == 400 else None
    check("garbage protobuf profiles: 400 with a google.rpc.Status (code 3, protobuf)",
          st is not None and r.header("content-type") == hg.PB and st.code == 3 and st.message, r)
    r = hg.curl(srv.url + hg.TRACES, b"\x0a\x05\x12\x03\x12", hg.PB, mode="h2")
    st = status_of(r) if r.status == 400 else None
    check("truncated protobuf traces over h2c: 400, Status says malformed",
          st is not None and st.code == 3 and "malformed" in st.message, r)
    r = hg.curl(srv.url + hg.TRACES, b'{"resourceSpans": [', hg.JSON)
    body = json.loads(r.body) if r.status == 400 else {}
    check("broken JSON: 400 with a JSON Status saying where",
          r.header("content-type") == hg.JSON and body.get("code") == 3 and "JSON at byte" in body.get("message", ""), r)
    bad_id = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz0102","spanId":"0101010101010101"}]}]}]}'
    r = hg.curl(srv.url + hg.TRACES, bad_id, hg.JSON)
    body = json.loads(r.body) if r.status == 400 else {}
    check("JSON id that is not hex: 400 naming the field", "traceId" in body.get("message", "") or
          "trace_id" in body.get("message", ""), r)
    r = hg.curl(srv.url + hg.PROFILES, b'{"resourceProfiles":[{"scopeProfiles":[{"profiles":[{"timeUnixNano":"x"}]}]}]}',
                hg.JSON)
    body = json.loads(r.body) if r.status == 400 else {}
    check("JSON integer that is not a number: 400", body.get("code") == 3 and "time_unix_nano" in body.get("message", ""), r)
    r = hg.curl(srv.url + hg.PROFILES, b"\x1f\x8b\x08\x00not really gzip", hg.PB,
                headers=("Content-Encoding: gzip",))
    st = status_of(r) if r.status == 400 else None
    check("corrupt gzip body: 400 (gzip: ...)", st is not None and "gzip" in st.message, r)


def test_routing(srv):
    r = hg.curl(srv.url + "/v1/logs", b"x", hg.PB)
    st = status_of(r) if r.status == 404 else None
    check("unknown path: 404 with a Status (NOT_FOUND) in the request's type",
          st is not None and st.code == 5 and "/v1/logs" in st.message, r)
    r = hg.curl(srv.url + "/nope")
    check("unknown path without a body type: 404 in text", r.status == 404 and
          r.header("content-type", "").startswith("text/plain"), r)
    r = hg.curl(srv.url + hg.TRACES)
    check("GET /v1/traces: 405 with Allow: POST", r.status == 405 and r.header("allow") == "POST", r)
    r = hg.curl(srv.url + hg.PROFILES, method="PUT", body=b"x", ctype=hg.PB, mode="h2")
    check("PUT on profiles over h2c: 405 with allow: POST", r.status == 405 and r.header("allow") == "POST", r)
    r = hg.curl(srv.url + "/healthz", method="POST", body=b"x")
    check("POST /healthz: 405 with Allow: GET, HEAD", r.status == 405 and r.header("allow") == "GET, HEAD", r)
    r = hg.curl(srv.url + "/healthz?probe=1")
    check("GET /healthz (query ignored): 200 ok", r.status == 200 and r.body == b"ok\n", r)
    r = hg.curl(srv.url + "/healthz", mode="h2")
    check("GET /healthz over h2c: 200 ok", r.status == 200 and r.body == b"ok\n", r)
    raw = hg.raw_exchange(srv.http_port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check("HEAD /healthz: 200 with Content-Length 3 and no body",
          raw.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 3\r\n" in raw and raw.endswith(b"\r\n\r\n"), raw)


def test_media(srv):
    r = hg.curl(srv.url + hg.PROFILES, RAW, "text/plain")
    check("Content-Type text/plain: 415 naming the supported types",
          r.status == 415 and b"application/x-protobuf" in r.body and b"application/json" in r.body, r)
    r = hg.curl(srv.url + hg.TRACES, RAW, None, headers=("Content-Type:",))
    check("no Content-Type: 415", r.status == 415, r)
    r = hg.curl(srv.url + hg.PROFILES, RAW, hg.PB, headers=("Content-Encoding: br",))
    st = status_of(r) if r.status == 415 else None
    check("Content-Encoding br: 415 with a Status saying which encodings work",
          st is not None and "br" in st.message and "gzip" in st.message, r)
    r = hg.curl(srv.url + hg.PROFILES, RAW, "Application/X-Protobuf; charset=binary", mode="h2")
    check("media type matched case-insensitively, parameters ignored: 200", r.status == 200, r)


def test_sizes():
    srv = hg.Server("--max-message-size", "64K", "--format", "folded")
    try:
        r = hg.curl(srv.url + hg.PROFILES, b"\x00" * 100000, hg.PB)
        st = status_of(r) if r.status == 413 else None
        check("Content-Length over --max-message-size: 413 with a Status (RESOURCE_EXHAUSTED)",
              st is not None and st.code == 8, r)
        r = hg.curl(srv.url + hg.TRACES, b"\x00" * 100000, hg.PB, mode="h2")
        check("h2c body over the limit: 413", r.status == 413, r)
        r = hg.curl(srv.url + hg.PROFILES, b"\x00" * (1 << 20), hg.PB, gzip_it=True)
        st = status_of(r) if r.status == 413 else None
        check("gzip inflating past the limit: 413 'after gzip decompression'",
              st is not None and "decompression" in st.message, r)
        head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        chunks = b"".join(b"%x\r\n" % 8192 + b"\x00" * 8192 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
        out = hg.raw_exchange(srv.http_port, head + chunks)
        resp = hg.parse_raw_responses(out)
        check("chunked body over the limit: 413 and the connection closed",
              len(resp) == 1 and resp[0][0] == 413 and resp[0][1].get("connection") == "close", out[:300])
        r = hg.curl(srv.url + hg.PROFILES, RAW, hg.PB)
        check("still serving after the refusals", r.status == 200, r)
        big = b"x" * 20000
        out = hg.raw_exchange(srv.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\n\r\n")
        check("request headers over 16 KiB: 431 and close", out.startswith(b"HTTP/1.1 431 ") and
              b"Connection: close" in out, out[:200])
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        out = hg.raw_exchange(srv.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        check("more than 100 header fields: 431", out.startswith(b"HTTP/1.1 431 "), out[:200])
        check("server alive, exits 0", srv.alive() and srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def test_http1_mechanics(srv):
    traces_pb = b""   # an empty ExportTraceServiceRequest is a valid request
    req = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
           b"Content-Length: 0\r\n\r\n")
    out = hg.raw_exchange(srv.http_port, req * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = hg.parse_raw_responses(out)
    check("pipelined requests: four responses, in order, on one connection",
          [x[0] for x in resp] == [200, 200, 200, 200] and resp[3][2] == b"ok\n", out[:400])
    body = RAW
    chunked = b"".join(b"%x\r\n" % len(body[i:i + 1000]) + body[i:i + 1000] + b"\r\n"
                       for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    before = srv.stdout().count(b"\n")
    out = hg.raw_exchange(srv.http_port, b"POST /v1development/profiles HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n" + chunked)
    check("chunked profiles body: 200", out.startswith(b"HTTP/1.1 200 "), out[:200])
    after = srv.wait_stdout(lambda o: o.count(b"\n") > before)
    check("... and delivered", after.count(b"\n") > before)
    # Expect: 100-continue, accepted: 100 first, then the body, then 200.
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=5 * SLOW)
    try:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        first = s.recv(1000)
        s.sendall(b"\x0a\x03\x12\x01\x00"[:5])
        rest = b""
        while b"\r\n\r\n" not in rest:
            chunk = s.recv(1000)
            if not chunk:
                break
            rest += chunk
    finally:
        s.close()
    check("Expect: 100-continue: '100 Continue' before the body is sent",
          first == b"HTTP/1.1 100 Continue\r\n\r\n", first)
    check("... then the final response", rest.startswith(b"HTTP/1.1 "), rest[:100])
    out = hg.raw_exchange(srv.http_port, b"POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                          b"Expect: 100-continue\r\n\r\n")
    check("Expect: 100-continue on a refused request: the 404 at once, no 100, connection closed",
          out.startswith(b"HTTP/1.1 404 ") and b"100 Continue" not in out and b"Connection: close" in out, out[:200])
    out = hg.raw_exchange(srv.http_port, b"GET /healthz HTTP/1.0\r\n\r\n")
    check("HTTP/1.0 without keep-alive: answered, then closed", out.startswith(b"HTTP/1.1 200 ") and
          b"Connection: close" in out and out.endswith(b"ok\n"), out)
    out = hg.raw_exchange(srv.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          b"Upgrade: websocket\r\n\r\n")
    check("Upgrade: websocket is ignored: plain 200, then close", out.startswith(b"HTTP/1.1 200 ") and
          b"Connection: close" in out, out)
    out = hg.raw_exchange(srv.http_port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    check("not HTTP at all (a TLS hello): 400 and close", out.startswith(b"HTTP/1.1 400 "), out[:200])
    out = hg.raw_exchange(srv.http_port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    check("Content-Length together with Transfer-Encoding (smuggling shape): 400",
          out.startswith(b"HTTP/1.1 400 "), out[:200])
    out = hg.raw_exchange(srv.http_port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    check("negative Content-Length: 400", out.startswith(b"HTTP/1.1 400 "), out[:200])
    r = hg.curl(srv.url + hg.TRACES, traces_pb, hg.PB)
    check("still serving", r.status == 200, r)


def test_unavailable():
    """A sink that refuses (ClickHouse unreachable, its queue full): 503 + Retry-After. (Memory
    mode: its queue fills at once, and nothing is left on disk.)"""
    dead = hg.free_port()   # nothing listens there
    srv = hg.Server("--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % dead,
                    "--clickhouse-durability", "memory",
                    "--clickhouse-max-queue-bytes", "4096", "--clickhouse-flush-interval", "1",
                    "--shutdown-timeout", "1")
    try:
        got = None
        for _ in range(20):
            r = hg.curl(srv.url + hg.PROFILES, RAW, hg.PB)
            if r.status == 503:
                got = r
                break
        st = status_of(got) if got else None
        check("sink refusing: 503 with Retry-After and a Status (UNAVAILABLE) saying why",
              got is not None and got.header("retry-after", "").isdigit() and st.code == 14 and
              "ClickHouse sink full" in st.message, got)
        r = hg.curl(srv.url + hg.PROFILES, hg.to_otlp_json(hg.fixture_request()[1]), hg.JSON, mode="h2")
        body = json.loads(r.body) if r.status == 503 else {}
        check("... over h2c with JSON: 503, retry-after, JSON Status code 14",
              r.header("retry-after", "").isdigit() and body.get("code") == 14, r)
        r = hg.curl(srv.url + hg.TRACES, b"", hg.PB)
        check("traces are not refused by a sink that ignores them: 200", r.status == 200, r)
        srv.stop()
    finally:
        srv.cleanup()


class Trickler(threading.Thread):
    """Sends a request one byte at a time, forever (bounded), and records when the server
    cut it off and what it said."""

    def __init__(self, port, data, interval=0.1, limit=30, prefix=b""):
        super().__init__(daemon=True)
        self.port, self.data, self.interval, self.limit = port, data, interval, limit
        self.prefix = prefix
        self.reply, self.cut_after, self.sent = b"", None, 0

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        t0 = time.monotonic()
        try:
            s.sendall(self.prefix)
            while time.monotonic() - t0 < self.limit * SLOW:
                try:
                    if self.sent < len(self.data):   # then it only waits
                        s.sendall(self.data[self.sent:self.sent + 1])
                        self.sent += 1
                except OSError:
                    break
                try:
                    s.settimeout(self.interval)
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    self.reply += chunk
                except socket.timeout:
                    continue
                except OSError:
                    break
        finally:
            self.cut_after = time.monotonic() - t0
            s.close()


def test_slow_clients():
    timeout = 2 * SLOW
    srv = hg.Server("--request-timeout", str(timeout), "--format", "folded")
    try:
        body = b"x" * 10000
        head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        slow_body = Trickler(srv.http_port, body, prefix=head)
        slow_head = Trickler(srv.http_port, b"POST /v1/traces HTTP/1.1\r\nX-Slow: " + b"a" * 1000)
        slow_sniff = Trickler(srv.http_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[:10], interval=0.2)
        for t in (slow_body, slow_head, slow_sniff):
            t.start()
        # Meanwhile other clients are served as usual.
        worst = 0.0
        served = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout * 0.8:
            t = time.monotonic()
            r = hg.curl(srv.url + hg.PROFILES, RAW, hg.PB)
            worst = max(worst, time.monotonic() - t)
            served += r.status == 200
        check("while three clients trickle bytes, others are served (%d requests, worst %.2f s)" % (served, worst),
              served >= 3 and worst < 1.0 * SLOW, "served %d, worst %.2f s" % (served, worst))
        for t in (slow_body, slow_head, slow_sniff):
            t.join(timeout=(timeout + 10) * SLOW)
        for name, t in (("trickled body", slow_body), ("trickled headers", slow_head)):
            check("%s: 408 and closed after the request timeout (%.1f s, %d bytes sent)" % (name, t.cut_after or -1, t.sent),
                  t.reply.startswith(b"HTTP/1.1 408 ") and t.cut_after is not None and
                  timeout * 0.9 <= t.cut_after <= timeout + 3 * SLOW, t.reply[:200])
        check("trickled h2 preface: closed after the request timeout (%.1f s)" % (slow_sniff.cut_after or -1),
              slow_sniff.cut_after is not None and slow_sniff.cut_after <= timeout + 3 * SLOW)
        check("timeouts are logged", srv.stderr().count("request timeout") >= 3, srv.stderr()[-2000:])
        out = srv.stdout()
        check("the served requests were all delivered", out.count(b"\n") >= served)
        check("server exits 0", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def test_slow_h2_stream():
    """An h2c stream whose body never ends gets a 408 after the request timeout; the
    connection's other streams are answered meanwhile."""
    timeout = 2 * SLOW
    srv = hg.Server("--request-timeout", str(timeout))
    try:
        s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=1)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", hg.TRACES),
                ("content-type", hg.PB)]
        slow = conn.get_next_available_stream_id()
        conn.send_headers(slow, hdrs)
        conn.send_data(slow, b"\x0a")
        fast = conn.get_next_available_stream_id()
        conn.send_headers(fast, hdrs, end_stream=True)
        s.sendall(conn.data_to_send())
        status, t0 = {}, time.monotonic()
        while time.monotonic() - t0 < (timeout + 5) * SLOW and slow not in status:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status[ev.stream_id] = (dict(ev.headers)[":status"], time.monotonic() - t0)
            s.sendall(conn.data_to_send())
        s.close()
        check("h2c: the complete stream is answered at once",
              fast in status and status[fast][0] == "200" and status[fast][1] < 1.0 * SLOW, status)
        check("h2c: the unfinished stream gets 408 after the request timeout",
              slow in status and status[slow][0] == "408" and status[slow][1] >= timeout * 0.9, status)
        srv.stop()
    finally:
        srv.cleanup()


def main():
    srv = hg.Server()
    try:
        run("bad payloads", lambda: test_bad_payloads(srv))
        run("routing", lambda: test_routing(srv))
        run("media types", lambda: test_media(srv))
        run("HTTP/1.1 mechanics", lambda: test_http1_mechanics(srv))
        check("server alive after all the error cases", srv.alive(), srv.stderr())
        check("server exits 0 on SIGTERM", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()
    run("sizes", test_sizes)
    run("unavailable", test_unavailable)
    run("slow clients", test_slow_clients)
    run("slow h2 stream", test_slow_h2_stream)
    done()


main()
