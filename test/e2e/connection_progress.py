#!/usr/bin/python3
"""connection_progress.py - every connection must make progress, on both ports, with real
sockets against the real binary; and every reply is counted once in the shutdown summary.

Why it exists: a client that trickles the HTTP/2 preface, keeps a connection open with PINGs,
floods PINGs, or opens connection after connection from one address must not hold the server
(docs/receiving.md, "Connections that make no progress"). And the summary the server logs
when it stops must add up to what was sent, per signal, port and outcome.

Expectations come from what this script sent, never from the server's own counters.
Environment: LAZYBACKEND, FIXTURES (test/e2e/lib/fixtures.py). Only 127.0.0.x; every wait is
bounded.
"""
import os
import re
import select
import socket
import struct
import sys
import threading
import time

import h2.exceptions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import h2raw  # noqa: E402
import httpgen as hg  # noqa: E402
import scrape  # noqa: E402
import server  # noqa: E402

SLOW = fx.SLOW
FIXTURE = fx.read()
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
INVALID_ARGUMENT = 3
ENHANCE_YOUR_CALM = 0xb


def frame(payload, flag=0):
    """One gRPC length-prefixed message."""
    return struct.pack(">BI", flag, len(payload)) + payload


def traces_request():
    """A valid ExportTraceServiceRequest with one span, built with Google's protobuf."""
    req = hg.trace_service.ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    span.name, span.start_time_unix_nano, span.end_time_unix_nano = "op", 1769443200000000000, 1769443200001000000
    return req.SerializeToString()


class Raw(h2raw.RawH2):
    """A hand-driven HTTP/2 client connection from a chosen 127.0.0.x; received DATA is not
    acknowledged, so the client sends only the frames a case sends."""

    def __init__(self, port, source="127.0.0.1", timeout=5 * SLOW):
        super().__init__(port, source, timeout, ack_data=False)

    def request(self, path, body, extra=(), method="POST", ctype="application/grpc"):
        """A request (no body: GET-like, END_STREAM on the headers); its stream id."""
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                ("te", "trailers"), ("content-type", ctype)] + list(extra)
        self.h2.send_headers(sid, hdrs, end_stream=body is None)
        for pos in range(0, len(body or b""), 16384):   # the default frame size; the window is 64 KiB
            self.h2.send_data(sid, body[pos:pos + 16384], end_stream=pos + 16384 >= len(body))
        self.open_stream(sid)
        self.flush()
        return sid

    def wait(self, sid, timeout=10 * SLOW):
        return super().wait(sid, timeout)

    def until_closed(self, limit, every=None, action=None):
        """Reads until the server closes (bounded by `limit` s), calling action() every `every`
        s meanwhile; the seconds it took, or None when it stayed open."""
        t0 = time.monotonic()
        next_action = t0
        while time.monotonic() - t0 < limit and not self.eof:
            if action and self.goaway is None and time.monotonic() >= next_action:
                try:
                    action()
                    self.flush()
                except (OSError, h2.exceptions.ProtocolError):
                    self.eof = True
                    break
                next_action += every
            self.pump(0.1)
        return time.monotonic() - t0 if self.eof else None


def served(port, http, source="127.0.0.1"):
    """One request that makes progress on a new connection: the gRPC Export of the fixture, or
    GET /healthz over h2c. (the connection, whether it was answered with success)."""
    r = Raw(port, source)
    if http:
        st = r.wait(r.request("/healthz", None, method="GET", ctype="text/plain"))
        return r, st["headers"].get(":status") == "200"
    st = r.wait(r.request(server.PROFILES_EXPORT, frame(FIXTURE)))
    return r, grpc_status(st) == 0


def closed_within(sock, limit):
    """Seconds until the server closed `sock` (EOF or reset; bytes it sends are read and
    dropped), None when it stayed open for `limit` s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([sock], [], [], 0.1)
        if r:
            try:
                if not sock.recv(65536):
                    return time.monotonic() - t0
            except OSError:
                return time.monotonic() - t0
    return None


def grpc_status(st):
    v = st["trailers"].get("grpc-status", st["headers"].get("grpc-status"))
    return int(v) if v is not None else None


def stopped_lines(err):
    return [l for l in err.splitlines() if "stopped: " in l]


# --------------------------------------------------------------------------- small items

def t_summary_counts():
    """Replies of every kind on both ports; the summary must count each one, per signal, port
    and outcome, as this script tallies them."""
    srv = server.Server("--sink", "stdout", http=True)
    sent = {"profiles": {"grpc": {}, "http": {}}, "traces": {"grpc": {}, "http": {}}}
    other = 0

    def tally(sig, port, outcome):
        d = sent[sig][port]
        d[outcome] = d.get(outcome, 0) + 1

    try:
        for _ in range(3):
            r = srv.export(FIXTURE)
            tally("profiles", "grpc", "ok" if r.status == "OK" else r.status)
        for _ in range(2):
            r = srv.export(b"\xff\xff\xff\xff\xff\xff")
            tally("profiles", "grpc", "invalid" if r.status == "INVALID_ARGUMENT" else r.status)
        raw = Raw(srv.grpc_port)
        try:
            import gzip
            st = raw.wait(raw.request(server.PROFILES_EXPORT, frame(gzip.compress(FIXTURE), flag=1)))
        finally:
            raw.close()
        check("compressed flag without grpc-encoding: INVALID_ARGUMENT", grpc_status(st) == INVALID_ARGUMENT, st)
        tally("profiles", "grpc", "invalid")
        r = srv.export(traces_request(), method=server.TRACES_EXPORT)
        tally("traces", "grpc", "ok" if r.status == "OK" else r.status)
        r = srv.export(FIXTURE, method="/no.such.Service/Export")
        check("unknown method: UNIMPLEMENTED", r.status == "UNIMPLEMENTED", r)
        other += 1
        for mode in ("http1.1", "h2", "http1.1", "h2", "http1.1", "h2"):
            resp = hg.curl(srv.url + hg.PROFILES, b"{", ctype="application/json", mode=mode)
            tally("profiles", "http", "invalid" if resp.status == 400 else resp.status)
        for mode in ("http1.1", "h2"):
            resp = hg.curl(srv.url + hg.PROFILES, FIXTURE, ctype="application/x-protobuf", mode=mode)
            tally("profiles", "http", "ok" if resp.status == 200 else resp.status)
        resp = hg.curl(srv.url + hg.TRACES, b"\xff\xff\xff", ctype="application/x-protobuf")
        tally("traces", "http", "invalid" if resp.status == 400 else resp.status)
        for path in ("/healthz", "/nope"):
            hg.curl(srv.url + path)
            other += 1
    finally:
        rc = srv.stop()
        err = srv.stderr()
    check("six JSON 400s were answered 400", sent["profiles"]["http"].get("invalid") == 6, sent)
    lines = stopped_lines(err)

    def expect_line(sig):
        g, h = sent[sig]["grpc"], sent[sig]["http"]
        by = {k: g.get(k, 0) + h.get(k, 0) for k in set(g) | set(h)}
        return ("stopped: %s: %d replies (%d gRPC, %d HTTP): %d ok (0 partial), %d invalid, 0 too large or busy, "
                "0 timed out, 0 unavailable, 0 failed;" % (sig, sum(by.values()), sum(g.values()), sum(h.values()),
                                                           by.get("ok", 0), by.get("invalid", 0)))

    check("exit 0", rc == 0, err[-1500:])
    for sig in ("profiles", "traces"):
        want = expect_line(sig)
        check("summary counts every %s reply: %s" % (sig, want[9:60]), any(want in l for l in lines),
              "want %r\n%s" % (want, "\n".join(lines)))
    m = [re.search(r"stopped: (\d+) other replies", l) for l in lines]
    got = [int(x.group(1)) for x in m if x]
    check("summary counts the %d other replies (unknown method, health, 404)" % other, got == [other], lines)
    srv.cleanup()

# --------------------------------------------------------------------------- progress

PORTS = (("gRPC", False), ("HTTP", True))


def port_of(srv, http):
    return srv.http_port if http else srv.grpc_port


def metrics(srv):
    """The /metrics page, parsed by Prometheus' own parser (lib/scrape.py)."""
    return scrape.scrape(srv.url)


def t_trickled_preface():
    """--request-timeout 2: the preface trickled a byte every 0.5 s is cut off at about 2 s
    on both ports (it would take 12 s to send); a connection that says nothing, too."""
    srv = server.Server("--request-timeout", "2", http=True)
    try:
        for name, http in PORTS:
            sock = socket.create_connection(("127.0.0.1", port_of(srv, http)), timeout=5)
            t0 = time.monotonic()
            secs = None
            for i in range(len(PREFACE)):
                try:
                    sock.sendall(PREFACE[i:i + 1])
                except OSError:
                    secs = time.monotonic() - t0
                    break
                left = closed_within(sock, 0.5)
                if left is not None:
                    secs = time.monotonic() - t0
                    break
            sock.close()
            check("%s port: preface trickled 1 byte / 0.5 s closed at the 2 s request timeout (%s s)"
                  % (name, "%.1f" % secs if secs else "open"), secs is not None and 1.5 <= secs <= 2 + 2.5 * SLOW,
                  secs)
            sock = socket.create_connection(("127.0.0.1", port_of(srv, http)), timeout=5)
            secs = closed_within(sock, 8)
            sock.close()
            check("%s port: a connection that sends nothing closed at the request timeout (%s s)"
                  % (name, "%.1f" % secs if secs else "open"), secs is not None and 1.5 <= secs <= 2 + 2.5 * SLOW,
                  secs)
        r, ok = served(srv.grpc_port, False)
        r.close()
        check("the gRPC port still serves", ok)
        page = metrics(srv)
        cut = {p: page.value("lazybackend_connections_cut_total", port=p, reason="setup_timeout")
               for p in ("grpc", "http")}
        check("metrics: two setup timeouts per port", cut == {"grpc": 2, "http": 2}, cut)
        check("exit 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def t_ping_keepalive():
    """--idle-timeout 3: PINGs every second (each acked) do not keep a connection: GOAWAY
    NO_ERROR and close at about 3 s, on both ports (h2c prior knowledge on the HTTP port)."""
    srv = server.Server("--idle-timeout", "3", http=True)
    try:
        for name, http in PORTS:
            r = Raw(port_of(srv, http))
            n = [0]

            def ping():
                n[0] += 1
                r.h2.ping(b"keep%04d" % n[0])

            secs = r.until_closed(10 * SLOW, every=1.0, action=ping)
            r.close()
            check("%s port: a PING every second, closed at the 3 s idle timeout with GOAWAY NO_ERROR (%s s, %d pings)"
                  % (name, "%.1f" % secs if secs else "open", n[0]),
                  secs is not None and 2.5 <= secs <= 3 + 2.5 * SLOW and r.goaway == 0, (secs, r.goaway))
        page = metrics(srv)
        idle = {p: page.value("lazybackend_connections_cut_total", port=p, reason="idle") for p in ("grpc", "http")}
        check("metrics: one idle cut per port", idle == {"grpc": 1, "http": 1}, idle)
        check("exit 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def t_floods():
    """A burst of PINGs, and a run of frames without progress (WINDOW_UPDATEs): GOAWAY
    ENHANCE_YOUR_CALM on both ports, "too_many_pings" for the first; others are served meanwhile."""
    srv = server.Server(http=True)
    try:
        for name, http in PORTS:
            r = Raw(port_of(srv, http))
            for i in range(10):
                r.h2.ping(b"flood%03d" % i)
            r.flush()
            secs = r.until_closed(5 * SLOW)
            r.close()
            check("%s port: 10 PINGs at once: GOAWAY ENHANCE_YOUR_CALM too_many_pings, closed" % name,
                  secs is not None and r.goaway == ENHANCE_YOUR_CALM and r.goaway_data == b"too_many_pings",
                  (secs, r.goaway, r.goaway_data))
            r = Raw(port_of(srv, http))
            for i in range(150):
                r.h2.increment_flow_control_window(1)
            r.flush()
            secs = r.until_closed(5 * SLOW)
            r.close()
            check("%s port: 150 WINDOW_UPDATEs without a request: GOAWAY ENHANCE_YOUR_CALM, closed" % name,
                  secs is not None and r.goaway == ENHANCE_YOUR_CALM, (secs, r.goaway, r.goaway_data))
            # A client that makes progress between its frames is never told to calm down.
            r = Raw(port_of(srv, http))
            oks = 0
            for i in range(3):
                for j in range(80):
                    r.h2.increment_flow_control_window(1)
                r.h2.ping(b"good%04d" % i)
                r.flush()
                if http:
                    st = r.wait(r.request("/healthz", None, method="GET", ctype="text/plain"))
                    oks += st["headers"].get(":status") == "200"
                else:
                    st = r.wait(r.request(server.PROFILES_EXPORT, frame(FIXTURE)))
                    oks += grpc_status(st) == 0
            r.close()
            check("%s port: 3 x (80 WINDOW_UPDATEs, a PING, a request) all served, no GOAWAY" % name,
                  oks == 3 and r.goaway is None and not r.eof, (oks, r.goaway))
        page = metrics(srv)
        got = {(p, why): page.value("lazybackend_connections_cut_total", port=p, reason=why)
               for p in ("grpc", "http") for why in ("too_many_pings", "no_progress")}
        check("metrics: one too_many_pings and one no_progress per port", set(got.values()) == {1}, got)
        check("exit 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def refused(port, source):
    """True when a new connection from `source` is closed without a byte from the server (an
    accepted gRPC connection gets SETTINGS at once; on the HTTP port, the h2c preface is
    answered with SETTINGS)."""
    r = Raw(port, source)
    try:
        r.pump(2 * SLOW)
        if not r.eof:
            r.pump(0.5)
        return r.eof and r.received == 0
    finally:
        r.close()


def t_per_ip():
    """--max-connections-per-ip 3: a 4th connection from 127.0.0.2 is refused while its three
    others made progress, one from 127.0.0.3 is served; three silent ones from 127.0.0.4 make
    room, oldest first, for a fourth from the same address. Both ports."""
    srv = server.Server("--max-connections-per-ip", "3", http=True)
    try:
        for name, http in PORTS:
            port = port_of(srv, http)
            busy = []
            oks = 0
            for _ in range(3):
                r, ok = served(port, http, "127.0.0.2")
                busy.append(r)
                oks += ok
            check("%s port: three connections from 127.0.0.2 served" % name, oks == 3, oks)
            check("%s port: a 4th from 127.0.0.2 is refused" % name, refused(port, "127.0.0.2"))
            r, ok = served(port, http, "127.0.0.3")
            r.close()
            check("%s port: one from 127.0.0.3 is served meanwhile" % name, ok)
            silent = []
            for _ in range(3):
                silent.append(socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.4", 0)))
                time.sleep(0.05)
            r, ok = served(port, http, "127.0.0.4")
            r.close()
            first_gone = closed_within(silent[0], 2 * SLOW) is not None
            others_open = closed_within(silent[1], 0.3) is None and closed_within(silent[2], 0.3) is None
            check("%s port: a 4th from 127.0.0.4 is served; the oldest silent one was evicted, not the others" % name,
                  ok and first_gone and others_open, (ok, first_gone, others_open))
            for c in busy:
                c.close()
            for c in silent:
                c.close()
        page = metrics(srv)
        got = {p: (page.value("lazybackend_connections_refused_per_ip_total", port=p),
                   page.value("lazybackend_connections_evicted_total", port=p)) for p in ("grpc", "http")}
        check("metrics: one per-IP refusal and one eviction per port", got == {"grpc": (1, 1), "http": (1, 1)}, got)
        check("exit 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def t_lockout(port_name):
    """1,024 clients trickling the first bytes of a request (128 from each of 127.0.0.2-9, the
    per-IP default) fill the port's default --max-connections; a well-behaved client (grpcio on
    the gRPC port, curl on the HTTP port) must still be served, quickly."""
    srv = server.Server(http=True)
    socks = []
    grpc = port_name == "grpc"
    port = srv.grpc_port if grpc else srv.http_port
    first = PREFACE if grpc else b"POST /v1development/profiles HTTP/1.1\r\n"
    try:
        for i in range(1024):
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=("127.0.0.%d" % (2 + i // 128), 0))
            s.sendall(first[:1])
            socks.append(s)
        server.wait_until(lambda: metrics(srv).value("lazybackend_connections_open", port=port_name) == 1024, 10 * SLOW)
        for s in socks:   # one more byte each: they are trickling, not gone
            s.sendall(first[1:2])
        page = metrics(srv)
        check("%s: 1,024 tricklers hold every connection slot" % port_name,
              page.value("lazybackend_connections_open", port=port_name) == 1024, page.text[:0])
        t0 = time.monotonic()
        if grpc:
            ch = server.channel(port)
            try:
                r = server.export(ch, FIXTURE, timeout=10 * SLOW)
            finally:
                ch.close()
            ok, seconds = r.status == "OK", r.seconds
        else:
            r = hg.curl(srv.url + "/v1development/profiles", FIXTURE, ctype="application/x-protobuf", timeout=10)
            ok, seconds = r.status == 200, time.monotonic() - t0
        check("%s: a well-behaved client is served meanwhile (%.2f s)" % (port_name, seconds), ok and seconds < 5 * SLOW, r)
        page = metrics(srv)
        evicted = page.value("lazybackend_connections_evicted_total", port=port_name)
        check("%s: metrics: a trickler was evicted for it, none refused (%d evicted)" % (port_name, evicted),
              evicted >= 1 and page.value("lazybackend_connections_refused_total", port=port_name) == 0)
        for s in socks:
            s.close()
        check("%s: exit 0" % port_name, srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        for s in socks:
            s.close()
        srv.cleanup()



def main():
    run("trickled preface", t_trickled_preface)
    run("PING keep-alive", t_ping_keepalive)
    run("floods", t_floods)
    run("per-IP limit", t_per_ip)
    run("1,024 tricklers, gRPC port", lambda: t_lockout("grpc"))
    run("1,024 tricklers, HTTP port", lambda: t_lockout("http"))
    run("summary counts", t_summary_counts)
    done()


if __name__ == "__main__":
    main()
