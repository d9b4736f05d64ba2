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
import socket
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
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


class Raw:
    """A hand-driven HTTP/2 client connection (python3-h2), from a chosen 127.0.0.x."""

    def __init__(self, port, source="127.0.0.1", timeout=5 * SLOW):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.streams = {}
        self.goaway = None
        self.eof = False
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, body, extra=()):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                ("te", "trailers"), ("content-type", "application/grpc")] + list(extra)
        self.h2.send_headers(sid, hdrs)
        self.h2.send_data(sid, body, end_stream=True)
        self.streams[sid] = {"headers": {}, "trailers": {}, "ended": False, "reset": None}
        self.flush()
        return sid

    def pump(self, timeout):
        """Reads once (up to `timeout` s) and digests the events; False on EOF/timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return False
        for ev in self.h2.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived) and st is not None:
                st["headers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived) and st is not None:
                st["trailers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.StreamEnded) and st is not None:
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset) and st is not None:
                st["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev.error_code
        try:
            self.flush()
        except OSError:
            self.eof = True
        return True

    def wait(self, sid, timeout=10 * SLOW):
        deadline = time.monotonic() + timeout
        st = self.streams[sid]
        while not (st["ended"] or st["reset"] is not None) and time.monotonic() < deadline and not self.eof:
            self.pump(max(0.01, deadline - time.monotonic()))
        return st

    def close(self):
        self.sock.close()


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


def main():
    run("summary counts", t_summary_counts)
    done()


if __name__ == "__main__":
    main()
