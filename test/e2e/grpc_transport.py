#!/usr/bin/python3
"""grpc_transport.py - end-to-end tests of the gRPC transport against the real binary.

Why it exists: the unit tests prove the pieces; this proves that real clients (grpcio, the
same C core many agents use, and hand-made HTTP/2 frames via python3-h2) get the right gRPC
status for every kind of good and bad input, that the server keeps serving afterwards, and
that every accepted sample reaches the stdout sink exactly once.

Prints "ok - name" / "not ok - name" lines (test/run.sh counts them) and exits non-zero when
any check failed. Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures dir).
Only 127.0.0.1 is used; every wait and loop is bounded.
"""
import gzip
import os
import socket
import struct
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import check, done  # noqa: E402
import fixtures as fx  # noqa: E402
import h2raw  # noqa: E402
import server  # noqa: E402

EXPORT = server.PROFILES_EXPORT
MARKER = fx.SAMPLE_BANNER.encode()
SLOW = fx.SLOW                        # ASan builds are slower: stretch waits, not counts
RPC_TIMEOUT = 10 * SLOW

# grpc status codes (grpc/doc/statuscodes.md), written out so the test does not trust grpcio's
# mapping for the raw-frame cases.
OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL = 0, 3, 8, 12, 13

FIXTURE = fx.read()
SAMPLES_PER_REQUEST = fx.expect()["samples"]


def frame(payload, flag=0, length=None):
    """One gRPC length-prefixed message."""
    return struct.pack(">BI", flag, len(payload) if length is None else length) + payload


# --------------------------------------------------------------------------- the server

class Server(server.Server):
    """The real binary with the stdout sink (lib/server.py); counts the successful Export
    calls sent to it, each of which must show up as SAMPLES_PER_REQUEST samples."""

    def __init__(self, *args):
        super().__init__("--sink", "stdout", *args)
        self.good = 0      # successful Export calls sent to it (each adds SAMPLES_PER_REQUEST)
        self.lock = threading.Lock()
        self.death_reported = False

    def samples(self):
        return sum(1 for line in self.stdout().split(b"\n") if line == MARKER)

    def call(self, body, path=EXPORT, gzip_it=False, channel=None):
        """(status code int, details) of one unary call with raw bytes."""
        r = self.export(body, method=path, gzip=gzip_it, timeout=RPC_TIMEOUT, channel=channel)
        return r.code, r.details

    def good_call(self, gzip_it=False):
        """The fixture, expecting OK; counts it for the sample total."""
        code, details = self.call(FIXTURE, gzip_it=gzip_it)
        if code == OK:
            with self.lock:
                self.good += 1
        return code == OK

    def still_serves(self):
        return self.alive() and self.good_call()


# --------------------------------------------------------------------------- raw HTTP/2

class Raw(h2raw.RawH2):
    """A hand-driven HTTP/2 client connection for framing the server must judge."""

    def __init__(self, port, timeout=5 * SLOW):
        super().__init__(port, timeout=timeout)

    def start(self, path=EXPORT, method="POST", ctype="application/grpc", extra=(), end=False):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"),
                (":path", path), ("te", "trailers")]
        if ctype:
            hdrs.append(("content-type", ctype))
        hdrs.extend(extra)
        self.h2.send_headers(sid, hdrs, end_stream=end)
        self.open_stream(sid)
        self.flush()
        return sid

    def send(self, sid, data, end=False, chunk=16384):
        """DATA frames of at most `chunk` bytes; waits for window when flow control says so."""
        pos = 0
        deadline = time.monotonic() + 10 * SLOW
        while pos < len(data) or (end and pos == len(data)):
            window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            n = min(chunk, window, len(data) - pos)
            if n == 0 and pos < len(data):
                if time.monotonic() > deadline:
                    raise TimeoutError("no flow-control window")
                self.pump(0.2)
                continue
            last = pos + n == len(data)
            self.h2.send_data(sid, data[pos:pos + n], end_stream=end and last)
            self.flush()
            pos += n
            if last:
                break

    def request(self, body_frames, **kw):
        sid = self.start(**kw)
        self.send(sid, body_frames, end=True)
        return sid

    def wait(self, sid, timeout=10 * SLOW):
        """The stream's outcome once it ended (or was reset)."""
        return super().wait(sid, timeout)

    def ping(self, timeout=5 * SLOW):
        """Round trip: when the ack is back, the server has processed all we sent before."""
        self.ping_acked = False
        self.h2.ping(b"lazyping")
        self.flush()
        deadline = time.monotonic() + timeout
        while not self.ping_acked and time.monotonic() < deadline and not self.eof:
            self.pump(max(0.01, deadline - time.monotonic()))
        return self.ping_acked


def grpc_status(st):
    """grpc-status from trailers, or from the headers of a trailers-only response."""
    v = st["trailers"].get("grpc-status", st["headers"].get("grpc-status"))
    return int(v) if v is not None else None


def grpc_message(st):
    return st["trailers"].get("grpc-message", st["headers"].get("grpc-message", ""))


def raw_case(srv, body, **kw):
    r = Raw(srv.port)
    try:
        return r.wait(r.request(body, **kw))
    finally:
        r.close()


# --------------------------------------------------------------------------- tests

def t_plain_and_gzip(s):
    check("uncompressed Export returns OK", s.good_call())
    check("gzip Export returns OK", s.good_call(gzip_it=True))


def t_concurrent_clients(s):
    threads, results = [], []
    lock = threading.Lock()

    def client(i):
        ch = server.channel(s.port)
        try:
            for j in range(3):
                code, details = s.call(FIXTURE, gzip_it=(i + j) % 2 == 0, channel=ch)
                with lock:
                    results.append((code, details))
                if code == OK:
                    with s.lock:
                        s.good += 1
        finally:
            ch.close()

    for i in range(8):
        t = threading.Thread(target=client, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=60 * SLOW)
    bad = [r for r in results if r[0] != OK]
    check("8 concurrent grpcio clients x 3 calls (mixed gzip) all OK",
           len(results) == 24 and not bad, "results: %d, failures: %r" % (len(results), bad[:3]))


def t_garbage_protobuf(s):
    code, details = s.call(b"\xff\xff\xff\xff\xff\xff")
    check("garbage protobuf -> INVALID_ARGUMENT, then still serving",
           code == INVALID_ARGUMENT and s.still_serves(), "got %d %r" % (code, details))


def t_unknown_method(s):
    code, details = s.call(FIXTURE, path="/no.such.Service/Method")
    check("unknown method -> UNIMPLEMENTED naming the path, then still serving",
           code == UNIMPLEMENTED and "/no.such.Service/Method" in details and s.still_serves(),
           "got %d %r" % (code, details))
    err = s.stderr()
    check("error reply logged with peer, path and reason",
           any("127.0.0.1:" in l and "path=/no.such.Service/Method" in l and
               "unknown method" in l for l in err.splitlines()), err[-2000:])


def t_truncated_prefix(s):
    st = raw_case(s, b"\x00\x00\x00")
    check("3-byte body (truncated prefix) -> INVALID_ARGUMENT, then still serving",
           grpc_status(st) == INVALID_ARGUMENT
           and grpc_message(st) == "truncated gRPC message prefix: got 3 of 5 bytes"
           and s.still_serves(), st)


def t_truncated_message(s):
    st = raw_case(s, frame(FIXTURE[:100], length=1000))
    check("END_STREAM mid-message -> INVALID_ARGUMENT 'got 100 of 1000 bytes'",
           grpc_status(st) == INVALID_ARGUMENT
           and grpc_message(st) == "truncated gRPC message: got 100 of 1000 bytes"
           and s.still_serves(), st)


def t_no_message(s):
    r = Raw(s.port)
    try:
        st = r.wait(r.start(end=True))
    finally:
        r.close()
    check("request without a message -> INVALID_ARGUMENT",
           grpc_status(st) == INVALID_ARGUMENT and s.still_serves(), st)


def t_two_messages(s):
    st = raw_case(s, frame(FIXTURE) + frame(FIXTURE))
    check("two messages on a unary method -> INVALID_ARGUMENT",
           grpc_status(st) == INVALID_ARGUMENT and s.still_serves(), st)


def t_bad_flag(s):
    st = raw_case(s, frame(FIXTURE, flag=2))
    check("compressed-flag byte 2 -> INVALID_ARGUMENT",
           grpc_status(st) == INVALID_ARGUMENT and s.still_serves(), st)


def t_flag_without_encoding(s):
    st = raw_case(s, frame(gzip.compress(FIXTURE), flag=1))
    check("compressed flag without grpc-encoding -> INVALID_ARGUMENT",
           grpc_status(st) == INVALID_ARGUMENT and s.still_serves(), st)


def t_unknown_encoding(s):
    st = raw_case(s, frame(FIXTURE, flag=1), extra=[("grpc-encoding", "zstd")])
    accept = st["headers"].get("grpc-accept-encoding", "")
    check("grpc-encoding zstd -> UNIMPLEMENTED with grpc-accept-encoding gzip",
           grpc_status(st) == UNIMPLEMENTED and "gzip" in accept and s.still_serves(), st)


def t_corrupt_gzip(s):
    st = raw_case(s, frame(b"\x1f\x8b\x08\x00garbage-not-deflate", flag=1),
                  extra=[("grpc-encoding", "gzip")])
    check("corrupt gzip -> INVALID_ARGUMENT 'gzip: ...'",
           grpc_status(st) == INVALID_ARGUMENT and grpc_message(st).startswith("gzip:")
           and s.still_serves(), st)


def t_gzip_raw_split(s):
    """A gzip message cut into DATA frames of 1..7 bytes, the prefix itself split."""
    r = Raw(s.port)
    try:
        sid = r.start(extra=[("grpc-encoding", "gzip")])
        body = frame(gzip.compress(FIXTURE), flag=1)
        pos, sizes, i = 0, [1, 2, 1, 3, 7, 5], 0
        while pos < 64:   # the first 64 bytes in tiny frames, the rest normally
            n = sizes[i % len(sizes)]
            r.send(sid, body[pos:pos + n])
            pos, i = pos + n, i + 1
        r.send(sid, body[pos:], end=True)
        st = r.wait(sid)
    finally:
        r.close()
    ok = grpc_status(st) == OK and st["headers"].get(":status") == "200"
    if ok:
        s.good += 1
    check("gzip message split across tiny DATA frames -> OK with 5-byte reply prefix",
           ok and len(st["data"]) >= 5 and st["data"][0] == 0
           and struct.unpack(">I", st["data"][1:5])[0] == len(st["data"]) - 5, st)


def t_http_errors(s):
    r = Raw(s.port)
    try:
        a = r.wait(r.start(method="GET", end=True))
        b = r.wait(r.request(frame(FIXTURE), ctype="application/json"))
        c = r.wait(r.request(frame(FIXTURE), ctype="application/grpc-web"))
    finally:
        r.close()
    check("GET -> HTTP 405", a["headers"].get(":status") == "405", a)
    check("content-type application/json -> HTTP 415", b["headers"].get(":status") == "415", b)
    check("content-type application/grpc-web -> HTTP 415",
           c["headers"].get(":status") == "415" and s.still_serves(), c)


def t_percent_encoding(s):
    st = raw_case(s, frame(FIXTURE), path="/x.Y/100%done")
    check("grpc-message percent-encoded on the wire ('%' -> %25)",
           grpc_status(st) == UNIMPLEMENTED
           and grpc_message(st) == "unknown method /x.Y/100%25done", st)


def t_disconnect_mid_message(s):
    r = Raw(s.port)
    sid = r.start(extra=[("grpc-encoding", "identity")])
    r.send(sid, frame(FIXTURE)[:len(FIXTURE) // 2])
    r.ping()
    r.close()
    r2 = Raw(s.port)   # and one that resets its stream instead of leaving
    sid = r2.start()
    r2.send(sid, frame(FIXTURE)[:1000])
    r2.h2.reset_stream(sid)
    r2.flush()
    ok_reset = r2.ping()
    ok_after = r2.wait(r2.request(frame(FIXTURE)))
    r2.close()
    if grpc_status(ok_after) == OK:
        s.good += 1
    check("client disconnecting / resetting mid-message: server keeps serving",
           ok_reset and grpc_status(ok_after) == OK and s.still_serves(), ok_after)


def t_bad_preface(s):
    """An HTTP/1.1 client (no HTTP/2 preface) is dropped; nobody else notices."""
    closed = False
    with socket.create_connection(("127.0.0.1", s.port), timeout=5 * SLOW) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        deadline = time.monotonic() + 5 * SLOW
        try:
            while time.monotonic() < deadline:
                if not sock.recv(65536):   # it may see our SETTINGS first, then EOF
                    closed = True
                    break
        except ConnectionError:
            closed = True
    check("HTTP/1.1 request on the gRPC port: connection closed, server keeps serving",
           closed and s.still_serves())


def t_many_connections(s):
    conns = []
    try:
        for _ in range(40):
            conns.append(Raw(s.port))
        sids = [c.request(frame(FIXTURE)) for c in conns]
        outcomes = [c.wait(sid) for c, sid in zip(conns, sids)]
    finally:
        for c in conns:
            c.close()
    oks = sum(1 for st in outcomes if grpc_status(st) == OK)
    s.good += oks
    check("40 concurrent raw connections, one Export each: all OK", oks == 40,
           "%d of 40 OK" % oks)


def t_many_streams(s):
    r = Raw(s.port)
    try:
        r.pump(1)   # take the server's SETTINGS (window, stream limit) first
        sids = [r.start() for _ in range(20)]
        for sid in sids:   # interleave: every stream's first half, then every second half
            r.send(sid, frame(FIXTURE)[:10000])
        for sid in sids:
            r.send(sid, frame(FIXTURE)[10000:], end=True)
        outcomes = [r.wait(sid) for sid in sids]
    finally:
        r.close()
    oks = sum(1 for st in outcomes if grpc_status(st) == OK)
    s.good += oks
    check("20 interleaved streams on one connection: all OK", oks == 20, "%d of 20" % oks)


def t_shutdown(s):
    idle = Raw(s.port)
    idle.ping()
    t0 = time.monotonic()
    rc = s.stop(timeout=5)
    secs = time.monotonic() - t0
    got_goaway = False
    deadline = time.monotonic() + 2
    while idle.goaway is None and not idle.eof and time.monotonic() < deadline:
        idle.pump(0.2)
    got_goaway = idle.goaway is not None
    idle.close()
    check("SIGTERM: exit 0 within 5 s", rc == 0, "rc=%r after %.1fs\n%s" % (rc, secs,
                                                                          s.stderr()[-3000:]))
    check("SIGTERM: idle connection got GOAWAY", got_goaway)


def t_samples(s, name):
    want = s.good * SAMPLES_PER_REQUEST
    got = s.samples()
    check("%s: stdout holds every sample once (%d requests x %d)" % (
        name, s.good, SAMPLES_PER_REQUEST), got == want and s.good > 0,
        "got %d sample lines, want %d" % (got, want))


# --- the small-limit server: --max-message-size 1048576

def t_over_limit(s):
    big = FIXTURE * (2 * 1024 * 1024 // len(FIXTURE) + 1)
    code, details = s.call(big)
    check("message over --max-message-size -> RESOURCE_EXHAUSTED, then still serving",
           code == RESOURCE_EXHAUSTED and s.still_serves(), "got %d %r" % (code, details))
    st = raw_case(s, frame(b"", length=1048577))   # only the prefix claims too much
    check("prefix claiming limit+1 bytes -> RESOURCE_EXHAUSTED before any payload",
           grpc_status(st) == RESOURCE_EXHAUSTED and s.still_serves(), st)
    # The client is still sending (no END_STREAM): the trailers-only answer comes at once,
    # then RST_STREAM NO_ERROR tells it to stop sending, as grpc-go does.
    r = Raw(s.port)
    try:
        sid = r.start()
        r.send(sid, frame(b"\0" * 1000, length=2 * 1048576)[:1005])
        st = r.wait(sid)
        deadline = time.monotonic() + 3 * SLOW
        while st["reset"] is None and not r.eof and time.monotonic() < deadline:
            r.pump(0.2)
    finally:
        r.close()
    check("early error reply, then RST_STREAM NO_ERROR while the client still sends",
           grpc_status(st) == RESOURCE_EXHAUSTED and st["ended"] and st["reset"] == 0, st)


def t_at_limit(s):
    # Exactly the limit passes the transport and reaches the decoder, which then rejects the
    # bytes as protobuf (0xff never starts a valid field): INVALID_ARGUMENT, not
    # RESOURCE_EXHAUSTED. The same for a gzip message inflating to exactly the limit.
    body = b"\xff" * 1048576
    code, details = s.call(body)
    check("message of exactly --max-message-size passes the size check",
           code == INVALID_ARGUMENT, "got %d %r" % (code, details))
    code, details = s.call(body, gzip_it=True)
    check("gzip message inflating to exactly --max-message-size passes the size check",
           code == INVALID_ARGUMENT, "got %d %r" % (code, details))
    code, details = s.call(body + b"\xff", gzip_it=True)
    check("gzip message inflating to limit+1 -> RESOURCE_EXHAUSTED",
           code == RESOURCE_EXHAUSTED and s.still_serves(), "got %d %r" % (code, details))


def t_gzip_bomb(s):
    bomb = b"\0" * (64 * 1024 * 1024)
    code, details = s.call(bomb, gzip_it=True)
    check("gzip bomb (64 MiB of zeros, limit 1 MiB) -> RESOURCE_EXHAUSTED, still serving",
           code == RESOURCE_EXHAUSTED and "after decompression" in details
           and s.still_serves(), "got %d %r" % (code, details))


# --- the tight server: little in-flight memory, 3 connections, 7 streams; then idle timeout

def t_settings(s, streams):
    r = Raw(s.port)
    try:
        r.pump(2)
        rs = r.h2.remote_settings
        check("SETTINGS announce max_concurrent_streams and a 1 MiB window",
               rs.max_concurrent_streams == streams and rs.initial_window_size == 1 << 20,
               "max_concurrent_streams=%r initial_window_size=%r" % (
                   rs.max_concurrent_streams, rs.initial_window_size))
    finally:
        r.close()


def t_inflight_limit(s):
    hog = Raw(s.port)
    try:
        sid = hog.start()
        hog.send(sid, frame(b"\0" * 60000, length=100000)[:60005])
        hog.ping()    # the server now holds 60000 partial bytes of a 65536 budget
        other = Raw(s.port)
        try:
            st = other.wait(other.request(frame(FIXTURE)))
        finally:
            other.close()
    finally:
        hog.close()
    check("in-flight budget exceeded -> RESOURCE_EXHAUSTED 'server busy'",
           grpc_status(st) == RESOURCE_EXHAUSTED and grpc_message(st).startswith("server busy"),
           st)
    served = False
    for _ in range(20):   # the hog's bytes are freed once the server sees it leave
        if s.still_serves():
            served = True
            break
        time.sleep(0.1)
    check("in-flight budget released when the hogging client leaves", served)


def t_max_connections(s):
    s.channel.close()          # grpcio's connection would take one of the 3 slots
    time.sleep(0.3 * SLOW)     # let the server see it leave
    conns = [Raw(s.port) for _ in range(3)]
    try:
        # Each makes progress (a call answered), so none is evicted for the newcomer.
        acked = all(grpc_status(c.wait(c.request(frame(FIXTURE)))) == OK for c in conns)
        s.good += 3 if acked else 0
        extra = Raw(s.port)
        extra.pump(3)
        # Refused = closed without a single byte (an accepted one would send SETTINGS).
        refused = extra.eof and extra.received == 0
        extra.close()
        conns.pop().close()
        served = False
        for _ in range(20):
            try:
                r = Raw(s.port)
                st = r.wait(r.request(frame(FIXTURE)), timeout=3)
                r.close()
                if grpc_status(st) == OK:
                    s.good += 1
                    served = True
                    break
            except OSError:
                pass
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
    s.channel = s.new_channel()
    check("4th connection beyond --max-connections 3 (all three served a call) is closed", acked and refused,
           "acked=%r refused=%r" % (acked, refused))
    check("a slot freed by a leaving client is usable again", served)


def t_idle_timeout(s):
    r = Raw(s.port)
    t0 = time.monotonic()
    try:
        r.ping()
        while not r.eof and time.monotonic() - t0 < 5 * SLOW:
            r.pump(0.5)
    finally:
        r.close()
    secs = time.monotonic() - t0
    check("idle connection closed with GOAWAY after --idle-timeout 1",
           r.eof and r.goaway is not None and 0.8 <= secs <= 4 * SLOW,
           "eof=%r goaway=%r after %.2fs" % (r.eof, r.goaway, secs))


def run_case(name, fn, srv, *args):
    """One test function; a dead server fails it in one line instead of a traceback."""
    if not srv.alive():
        detail = ""
        if not srv.death_reported:
            srv.death_reported = True
            detail = "server exited %r; stderr tail:\n%s" % (srv.proc.returncode,
                                                              srv.stderr()[-1500:])
        check(name + " (server not running)", False, detail)
        return
    try:
        fn(srv, *args)
    except Exception:
        check(name + " (raised)", False, traceback.format_exc())


def main():
    if not os.access(fx.LB, os.X_OK):
        check("binary present at " + fx.LB, False)
        return

    s = Server()
    try:
        for fn in (t_plain_and_gzip, t_concurrent_clients, t_garbage_protobuf, t_unknown_method,
                   t_truncated_prefix, t_truncated_message, t_no_message, t_two_messages,
                   t_bad_flag, t_flag_without_encoding, t_unknown_encoding, t_corrupt_gzip,
                   t_gzip_raw_split, t_http_errors, t_percent_encoding, t_disconnect_mid_message, t_bad_preface,
                   t_many_connections, t_many_streams):
            run_case(fn.__name__, fn, s)
        run_case("shutdown", t_shutdown, s)
        t_samples(s, "default server")
    finally:
        s.cleanup()

    small = Server("--max-message-size", "1048576")
    try:
        for fn in (t_over_limit, t_at_limit, t_gzip_bomb):
            run_case(fn.__name__, fn, small)
        rc = small.stop(timeout=5)
        check("small-limit server exits 0 on SIGTERM", rc == 0, small.stderr()[-3000:])
        t_samples(small, "small-limit server")
    finally:
        small.cleanup()

    tight = Server("--max-inflight-bytes", "65536", "--max-connections", "3",
                   "--max-concurrent-streams", "7")
    try:
        run_case("settings", t_settings, tight, 7)
        for fn in (t_inflight_limit, t_max_connections):
            run_case(fn.__name__, fn, tight)
        rc = tight.stop(timeout=5)
        check("tight server exits 0 on SIGTERM", rc == 0, tight.stderr()[-3000:])
        t_samples(tight, "tight server")
    finally:
        tight.cleanup()

    idle = Server("--idle-timeout", "1")
    try:
        run_case("idle_timeout", t_idle_timeout, idle)
        rc = idle.stop(timeout=5)
        check("idle-timeout server exits 0 on SIGTERM", rc == 0, idle.stderr()[-3000:])
    finally:
        idle.cleanup()


if __name__ == "__main__":
    main()
    done()
