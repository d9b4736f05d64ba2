#!/usr/bin/python3
"""The server's memory around a large request: its peak stays within 1.5 times the request
plus 16 MiB, and its resident size comes back to at most twice the idle size within a few
seconds (the decoder's scratch and the request buffers are not kept for the next request).

The large request is the shared fixture's resource_profiles repeated under its one
dictionary (a valid request by protobuf's rule that repeated fields concatenate); what the
server printed is checked against the fixture's own folded file (computed with the
reference library), each count times the number of copies. Sizes come from
/proc/PID/status (VmHWM: the peak, VmRSS: now). Under sanitizers (SANITIZE=1) the bounds
do not apply (shadow memory) and only the output is checked.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import Server, wait_until  # noqa: E402

COPIES = 4000   # about 14.6 MB: large beside the 16 MiB allowance, far below --max-message-size
MIB = 1024 * 1024


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def big_request(copies):
    """The fixture with its resource_profiles (field 1) repeated `copies` times."""
    raw = fx.read(fx.FIXTURE)
    resources, others, i = [], [], 0
    while i < len(raw):
        start = i
        key, i = varint(raw, i)
        assert key & 7 == 2, "every top-level field of the request is length-delimited"
        n, i = varint(raw, i)
        i += n
        (resources if key >> 3 == 1 else others).append(raw[start:i])
    return b"".join(others) + b"".join(resources) * copies


def folded_totals(data):
    """{stack: count} of folded output (the count is the last field of a line)."""
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            out[stack] = out.get(stack, 0) + int(count)
    return out


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def test_large_request():
    body = big_request(COPIES)
    srv = Server("--format", "folded")
    try:
        srv.send(fx.read(fx.FIXTURE))   # everything a request touches, touched once
        idle_kb = srv.rss_kb()
        srv.send(body, timeout=120)
        peak_kb = status_kb(srv.proc.pid, "VmHWM")
        want = {k: v * (COPIES + 1) for k, v in folded_totals(fx.folded()).items()}
        out = srv.wait_stdout(lambda o: folded_totals(o) == want, timeout=10)
        check("the large request's folded output is the fixture's, times the copies (+1)",
              folded_totals(out) == want, "got %d stacks, want %d" % (len(folded_totals(out)), len(want)))
        if fx.SANITIZED:
            check("memory bounds not checked under sanitizers (shadow memory)", True)
            return
        bound_kb = (len(body) * 3 // 2 + 16 * MIB) // 1024
        check("peak RSS %d KiB <= 1.5 x the request (%d bytes) + 16 MiB = %d KiB" % (peak_kb, len(body), bound_kb),
              0 < peak_kb <= bound_kb)
        back = wait_until(lambda: 0 < srv.rss_kb() <= 2 * idle_kb, timeout=5 * fx.SLOW, step=0.2)
        check("RSS back to <= 2 x idle (%d KiB) within 5 s: now %d KiB" % (idle_kb, srv.rss_kb()), back)
        check("the server still answers after it", srv.export(fx.read(fx.FIXTURE)).status == "OK")
    finally:
        rc = srv.stop()
        check("the server exits 0 on SIGTERM", rc == 0, srv.stderr()[-2000:])
        srv.cleanup()


run("large request", test_large_request)
done()
