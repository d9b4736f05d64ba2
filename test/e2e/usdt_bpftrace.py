#!/usr/bin/python3
"""usdt_bpftrace.py - `lazybackend usdt` with real bpftrace on the example program's USDT
probes (examples/usdt-app), exporting to a real lazybackend server.

Why: the bridge exists because the Go one never read real bpftrace output correctly; only a
real run shows the envelope, the probe arguments, attaching, and how bpftrace ends. The
example program prints what it measured for every request (its own clock, its own ids), and
that is the expectation: exactly one span per request, the same id, the same start to the
nanosecond, the same duration (within 1 us), unique trace and span ids. Then the program is
killed mid-way (the bridge must end by itself and export every request that completed), the
bridge is stopped with SIGINT while the program runs, integer ids and another provider are
traced, probes are attached by --binary for every process, and a missing provider fails with
a reason. Needs root and bpftrace (as CI has); skipped otherwise. tracefs is mounted for
the run when it is not (bpftrace 0.17 detaches uprobes through it) and unmounted after.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
from server import run_cli  # noqa: E402
from usdtlib import run_bridge, summary, server_spans, attrs  # noqa: E402

APP = os.path.join(fx.ROOT, "build", "examples", "usdt-app")
TRACEFS = "/sys/kernel/tracing"
LINE = re.compile(r"^request (\S+) start_ns=(\d+) duration_ns=(\d+)$")


def skip_reason():
    if os.geteuid() != 0:
        return "not root (bpftrace needs root)"
    if not shutil.which("bpftrace"):
        return "bpftrace is not installed"
    return None


def mount_tracefs():
    with open("/proc/mounts") as f:
        if any(l.split()[1] == TRACEFS for l in f if len(l.split()) > 2):
            return
    if subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS], capture_output=True).returncode == 0:
        atexit.register(lambda: subprocess.run(["umount", TRACEFS], capture_output=True))


class Lines:
    """A pipe read line by line in a thread: .lines grows as they come."""

    def __init__(self, pipe):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe):
        for line in iter(pipe.readline, ""):
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout * fx.SLOW
        while time.monotonic() < deadline:
            if pred(self.lines):
                return True
            time.sleep(0.05)
        return pred(self.lines)

    def text(self):
        return "\n".join(self.lines)


def start_app(*args):
    """The example program, waiting until a tracer is attached to its probes (-w: their
    semaphores); (process, its stdout lines)."""
    p = subprocess.Popen([APP, "-w", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    out = Lines(p.stdout)
    out.wait_for(lambda l: l and l[0].startswith("ready "), 5)
    return p, out


def start_bridge(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    p = subprocess.Popen([fx.LB, "usdt", *args], stderr=subprocess.PIPE, text=True, env=env)
    err = Lines(p.stderr)
    attached = err.wait_for(lambda l: any("bpftrace attached" in x for x in l) or p.poll() is not None, 20)
    return p, err, attached


def measured(app_lines):
    """{reqid: (start_ns, duration_ns)} from the program's own lines."""
    out = {}
    for line in app_lines:
        m = LINE.match(line)
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def complete(spans):
    return [s for s in spans if "usdt.unfinished" not in attrs(s)]


def compare(name, spans, want):
    """Every request the program printed has exactly one span saying the same."""
    by_id = {}
    for s in complete(spans):
        by_id.setdefault(str(attrs(s)["request.id"]), []).append(s)
    bad = []
    for rid, (start, duration) in want.items():
        got = by_id.get(rid, [])
        if len(got) != 1:
            bad.append("%s: %d spans" % (rid, len(got)))
            continue
        sp = got[0]["span"]
        if sp["start_time_unix_nano"] != start or abs(sp["duration_nano"] - duration) > 1000:
            bad.append("%s: start %d duration %d, measured %d %d" % (rid, sp["start_time_unix_nano"],
                                                                    sp["duration_nano"], start, duration))
    check(name + ": every measured request is one span, same start, same duration (+-1 us)", not bad, bad[:10])


class Traced:
    """A server, the example program (waiting for its tracer) and the bridge attached to it
    by --pid, exporting to the server; all stopped and cleaned up on leaving the block."""

    def __init__(self, app_args, *bridge_args):
        self.app_args, self.bridge_args = app_args, bridge_args
        self.app = self.bridge = None

    def __enter__(self):
        self.srv = hg.Server("--format", "json")
        self.app, self.out = start_app(*self.app_args)
        self.bridge, self.err, self.attached = start_bridge("--pid", self.out.lines[0].split()[1],
                                                            "--endpoint", self.srv.url, *self.bridge_args)
        return self

    def __exit__(self, *exc):
        for p in (self.app, self.bridge):
            if p and p.poll() is None:
                p.kill()
        self.srv.stop()
        self.srv.cleanup()
        return False


def test_n_requests():
    with Traced(("-n", "25", "-i", "10")) as t:
        check("n requests: bpftrace attached (the log says so)", t.attached, t.err.text())
        t.app.wait(timeout=60 * fx.SLOW)
        rc = t.bridge.wait(timeout=30 * fx.SLOW)   # bpftrace ends with its target; the bridge with it
        spans = server_spans(t.srv, 25)
        want = measured(t.out.lines)
        check("n requests: the program measured 25 requests", len(want) == 25, t.out.text())
        check("n requests: the bridge ends by itself, exit 0", rc == 0, t.err.text()[-2000:])
        check("n requests: exactly 25 spans", len(spans) == 25, len(spans))
        compare("n requests", spans, want)
        check("n requests: http.request, SERVER, status UNSET",
              all(s["span"]["name"] == "http.request" and s["span"]["kind_name"] == "SERVER" and
                  s["span"]["status"]["code_name"] == "UNSET" for s in spans))
        check("n requests: trace ids and span ids unique",
              len({s["span"]["trace_id"] for s in spans}) == len(spans) == len({s["span"]["span_id"] for s in spans}))
        check("n requests: attributes request.id, duration_ns, duration_ms",
              all({"request.id", "duration_ns", "duration_ms"} <= set(attrs(s)) and
                  attrs(s)["duration_ns"] == s["span"]["duration_nano"] for s in spans))
        check("n requests: service.name is the program's name",
              all(a["value"] == "usdt-app" for s in spans for a in s["resource"]["attributes"]
                  if a["key"] == "service.name"), spans[:1])
        s = summary(t.err.text())
        check("n requests: nothing bad, lost or left over", s.get("bad") == 0 and s.get("lost_events") == 0 and
              s.get("complete") == 25 and s.get("exported") == 25, t.err.text()[-1500:])


def test_integer_ids_other_provider():
    with Traced(("-n", "8", "-i", "5", "-I", "-p", "demo"), "--provider", "demo", "--reqid", "int") as t:
        t.app.wait(timeout=60 * fx.SLOW)
        rc = t.bridge.wait(timeout=30 * fx.SLOW)
        spans = server_spans(t.srv, 8)
        want = measured(t.out.lines)
        check("integer ids, provider demo: exit 0, 8 spans", t.attached and rc == 0 and len(spans) == 8,
              t.err.text()[-1500:])
        check("integer ids: above 2^63, exact", all(int(r) > 2 ** 63 for r in want) and
              {str(attrs(s)["request.id"]) for s in spans} == set(want), [attrs(s)["request.id"] for s in spans])
        compare("integer ids", spans, want)


def test_program_killed_midway():
    with Traced(("-n", "0", "-i", "15")) as t:
        t.out.wait_for(lambda l: len(l) > 15, 20)
        t.app.send_signal(signal.SIGKILL)
        t.app.wait(timeout=10)
        t.out.thread.join(timeout=5)
        rc = t.bridge.wait(timeout=30 * fx.SLOW)
        want = measured(t.out.lines)
        spans = server_spans(t.srv, len(want))
        check("killed mid-way: the bridge ends by itself, exit 0", t.attached and rc == 0, t.err.text()[-2000:])
        compare("killed mid-way", spans, want)
        extra = [s for s in complete(spans) if str(attrs(s)["request.id"]) not in want]
        unfinished = [s for s in spans if "usdt.unfinished" in attrs(s)]
        check("killed mid-way: at most the request in flight beyond them (ended, not printed, or unfinished)",
              len(extra) + len(unfinished) <= 1 and all(attrs(s)["usdt.unfinished"] == "shutdown" for s in unfinished),
              (extra, unfinished))


def test_sigint_while_tracing():
    with Traced(("-n", "0", "-i", "15")) as t:
        child = re.search(r"started bpftrace \(pid (\d+)\)", t.err.text())
        t.out.wait_for(lambda l: len(l) > 12, 20)
        time.sleep(0.3)
        before = measured(t.out.lines)
        t.bridge.send_signal(signal.SIGINT)
        rc = t.bridge.wait(timeout=30 * fx.SLOW)
        t.app.kill()
        t.app.wait(timeout=10)
        spans = server_spans(t.srv, len(before))
        everything = measured(t.out.lines)
        check("SIGINT: the bridge stops, exit 0", t.attached and rc == 0, t.err.text()[-2000:])
        check("SIGINT: bpftrace is gone too", child is not None and not os.path.exists("/proc/" + child.group(1)),
              t.err.text()[-500:])
        compare("SIGINT (requests done before it)", [s for s in spans if str(attrs(s)["request.id"]) in before],
                before)
        check("SIGINT: every span is a request the program made",
              all(str(attrs(s)["request.id"]) in everything for s in complete(spans)))


def test_binary_for_every_process():
    srv = hg.Server("--format", "json")
    bridge, err, attached = start_bridge("--binary", APP, "--endpoint", srv.url)
    try:
        check("--binary: attached without a process", attached and bridge.poll() is None, err.text())
        # bpftrace prints attached_probes before its uprobes are live; -w waits for the kernel
        # to set the probes' semaphores, which it does once they are (uprobe reference counts)
        runs = [subprocess.run([APP, "-w", "-n", "3", "-i", "1"], capture_output=True, text=True, timeout=90)
                for _ in range(2)]
        want = measured("\n".join(r.stdout for r in runs).splitlines())
        spans = server_spans(srv, 6, timeout=15)   # they leave after OTEL_BSP_SCHEDULE_DELAY (5 s)
        bridge.send_signal(signal.SIGINT)
        rc = bridge.wait(timeout=30 * fx.SLOW)
        spans = server_spans(srv, 6)
        check("--binary: two processes, six spans; SIGINT, exit 0", rc == 0 and len(want) == 6, err.text()[-1500:])
        compare("--binary", spans, want)
    finally:
        if bridge.poll() is None:
            bridge.kill()
        srv.stop()
        srv.cleanup()


def test_failures_say_why():
    app, out = start_app("-n", "1")
    try:
        pid = out.lines[0].split()[1]
        rc, err = run_bridge("--pid", pid, "--provider", "nosuch", "--endpoint", "http://127.0.0.1:1")
        check("no such provider: exit 1, bpftrace's error and what it means",
              rc == 1 and "before attaching its probes" in err and "the probes were not found" in err, err)
        rc, script, err = run_cli("usdt", "--pid", pid, "--print-script")
        check("--print-script: the built-in script names the program's file and provider",
              rc == 0 and "usdt:%s:lazyapp:request_start" % os.path.realpath(APP) in script.decode(), script)
    finally:
        app.kill()
        app.wait()
    rc, err = run_bridge("--pid", "999999999", "--endpoint", "http://127.0.0.1:1")
    check("--pid of no process: exit 1, says so", rc == 1 and "no such process" in err, err)


reason = skip_reason()
if reason:
    print("ok - usdt with real bpftrace # SKIP " + reason)
    sys.exit(0)
if not os.path.exists(APP):
    check("the example program is built (make examples)", False, APP)
    done()
mount_tracefs()
for name, fn in [("n requests", test_n_requests), ("integer ids", test_integer_ids_other_provider),
                 ("killed mid-way", test_program_killed_midway), ("sigint", test_sigint_while_tracing),
                 ("--binary", test_binary_for_every_process), ("failures", test_failures_say_why)]:
    run(name, fn)
done()
