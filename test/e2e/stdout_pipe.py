#!/usr/bin/python3
"""The stdout sink's reader goes away: `lazybackend | head -n 5`, as people tail it over ssh.

With stdout the only sink the server stops like any Unix filter (exit status 0, one log line,
no stream of refusals); with other sinks it goes on without stdout, /healthz answers 503 and
says why, and every request is still stored. `decode | head` stops quietly too. The summary
counts only what a sink committed. Expectations: the fixture's counts (ebpf-jvm-go.expect.json,
computed with the reference protobuf library) and the shell's own pipeline.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import free_port, channel, export, wait_until  # noqa: E402

EXPECT = fx.expect()
TMP = fx.tempdir("lb-pipe-")
BODY = fx.read()
STARTED = []   # the pipelines a test started, reaped after it


def pipeline(*args):
    """`lazybackend ARGS 2>err | head -n 5 >out` in bash; returns (process, paths)."""
    err, out, rc = (os.path.join(TMP, n) for n in ("err", "out", "rc"))
    for p in (err, out, rc):
        if os.path.exists(p):
            os.unlink(p)
    cmd = '"$0" "$@" 2>%s | head -n 5 >%s; echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" >%s' % (err, out, rc)
    proc = subprocess.Popen(["bash", "-c", cmd, LB, *args], start_new_session=True)
    STARTED.append(proc)
    return proc, err, out, rc


def reap(proc):
    """Whatever is left of a pipeline (a check failed half way): its whole process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def health(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_only_sink_stops():
    gport, hport = free_port(), free_port()
    # folded: request 1's output (about 22 KB) fits the pipe's buffer whole, so it is written
    # before head leaves; request 2 then finds no reader.
    proc, err, out, rcfile = pipeline("--grpc-address", "127.0.0.1:%d" % gport,
                                      "--http-address", "127.0.0.1:%d" % hport, "--format", "folded")
    wait_until(lambda: os.path.exists(err) and "OTLP/HTTP" in open(err).read(), 10 * SLOW)
    check("before: /healthz 200", health(hport)[0] == 200)
    ch = channel(gport)
    first = export(ch, BODY)
    check("request 1: OK (its output fits the pipe)", first.status == "OK", first)
    wait_until(lambda: os.path.exists(rcfile) or len(open(out, "rb").read().splitlines()) >= 5, 10 * SLOW)
    replies = []
    for _ in range(20):   # bounded: the server must be gone long before this ends
        r = export(ch, BODY, timeout=5)
        replies.append(r)
        if r.status == "UNAVAILABLE" and "Broken pipe" not in r.details:
            break
        time.sleep(0.05)
    ch.close()
    proc.wait(30 * SLOW)
    statuses = open(rcfile).read().split()
    log = open(err).read()
    check("the server exits 0, head exits 0", statuses == ["0", "0"], statuses)
    check("head got its 5 lines", len(open(out, "rb").read().splitlines()) == 5)
    check("one log line says the reader went away", log.count("its reader went away") == 1, log)
    check("one refusal names the broken pipe, then the server is gone (no stream of refusals)",
          sum("Broken pipe" in r.details for r in replies) == 1 and not any(r.status == "OK" for r in replies)
          and len(replies) <= 3, replies)
    check("the summary counts only request 1 as delivered: %d samples" % EXPECT["samples"],
          "1 ok" in log and "%d samples delivered" % EXPECT["samples"] in log, log[-600:])


def test_other_sinks_go_on():
    gport, hport = free_port(), free_port()
    db = os.path.join(TMP, "p.db")
    proc, err, out, rcfile = pipeline("--grpc-address", "127.0.0.1:%d" % gport, "--http-address",
                                      "127.0.0.1:%d" % hport, "--sink", "stdout", "--sink", "sqlite",
                                      "--sqlite-path", db, "--sqlite-sync", "normal")
    wait_until(lambda: os.path.exists(err) and "OTLP/HTTP" in open(err).read(), 10 * SLOW)
    ch = channel(gport)
    replies = [export(ch, BODY).status for _ in range(6)]
    code, text = health(hport)
    ch.close()
    log = open(err).read()
    check("all 6 requests OK after the reader went away", replies == ["OK"] * 6, replies)
    check("the stdout sink is said to be off, once", log.count("the stdout sink is off") == 1, log)
    check("/healthz: 503, stdout sink off", code == 503 and "stdout sink off" in text, (code, text))
    still_running = proc.poll() is None
    check("the server keeps running", still_running)
    # stop it: SIGTERM to the pipeline's lazybackend (a child of its bash), then its summary
    subprocess.run(["pkill", "-TERM", "-P", str(proc.pid), "-f", db])
    proc.wait(30 * SLOW)
    wait_until(lambda: "stopped:" in open(err).read(), 10 * SLOW)
    log = open(err).read()
    n = sqlite3.connect(db).execute("SELECT count(*) FROM samples").fetchone()[0]
    check("sqlite stored all 6 requests: %d samples" % (6 * EXPECT["samples"]), n == 6 * EXPECT["samples"], n)
    check("the summary: 6 ok, %d samples delivered" % (6 * EXPECT["samples"]),
          "6 ok" in log and "%d samples delivered" % (6 * EXPECT["samples"]) in log, log[-600:])


def test_decode_head():
    many = fx.write(TMP, "many.pb", b"".join(len(BODY).to_bytes(4, "big") + BODY for _ in range(50)))
    p = subprocess.run(["bash", "-c", '"$0" decode "$1" 2>&1 >/dev/null | head -c0; "$0" decode "$1" | head -n 3 >/dev/null;'
                        ' echo "${PIPESTATUS[0]}"', LB, many], capture_output=True, timeout=60 * SLOW)
    check("decode | head -n 3: exit 0, no error lines", p.stdout.strip().endswith(b"0") and b"Broken pipe" not in p.stderr,
          p.stdout + p.stderr)


def reaped(test):
    """Runs a pipeline test; its processes never outlive it, whatever failed."""
    def run_it():
        try:
            test()
        finally:
            while STARTED:
                reap(STARTED.pop())
    return run_it


run("only sink: stop", reaped(test_only_sink_stops))
run("other sinks go on", reaped(test_other_sinks_go_on))
run("decode | head", test_decode_head)
done()
