#!/usr/bin/python3
"""usdt_export.py - how `lazybackend usdt` sends spans: retries and what is never retried,
the OTEL_* variables, the timeouts, against a fake OTLP receiver that records every request
and answers as each test scripts it (lib/usdtlib.py).

Why: "nothing lost, nothing sent twice" is a property of the requests on the wire. A 503
with Retry-After must be retried after at least that long with the same bytes, and every
span must then be accepted exactly once; a 400, any other error status and a partial success
must never be sent again (the OTLP specification); a receiver that does not answer must cost
at most OTEL_BSP_EXPORT_TIMEOUT per batch, and --shutdown-timeout at the end. The request
bodies are decoded with Google's protobuf runtime, not with the bridge's encoder.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import free_port  # noqa: E402
from usdtlib import T0, start_line, end_line, run_bridge, summary, Receiver, partial_success_body  # noqa: E402

OK = (200, {}, b"", 0)


def spans_text(n, prefix="r"):
    lines = []
    for i in range(n):
        lines += [start_line("%s%d" % (prefix, i), T0 + i), end_line("%s%d" % (prefix, i), 1000 + i, T0 + i)]
    return ("\n".join(lines) + "\n").encode()


def accepted_ids(rcv, ok_statuses=(200,)):
    """request.id of every span in a request the receiver accepted."""
    ids = []
    for i, r in enumerate(rcv.requests):
        status = rcv.answers[min(i, len(rcv.answers) - 1)][0]
        if status in ok_statuses and r["spans"]:
            for rs in r["spans"].resource_spans:
                for ss in rs.scope_spans:
                    ids += [a.value.string_value for sp in ss.spans for a in sp.attributes if a.key == "request.id"]
    return ids


def test_503_retry_after_then_200():
    rcv = Receiver([(503, {"Retry-After": "2"}, b"busy", 0), OK])   # longer than the first backoff (1.2 s)
    try:
        t0 = time.monotonic()
        rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, stdin=spans_text(1200),
                             env={"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500", "OTEL_BSP_MAX_QUEUE_SIZE": "1000"})
        s = summary(err)
        reqs = rcv.requests
        ids = accepted_ids(rcv)
        check("503 then 200: exit 0, 1200 spans exported", rc == 0 and s.get("exported") == 1200, err[-2000:])
        check("503 then 200: four requests (three batches, one retried)", len(reqs) == 4 and s.get("retries") == 1,
              [len(r["body"]) for r in reqs])
        check("503 then 200: the retry sends the same bytes", len(reqs) >= 2 and reqs[0]["body"] == reqs[1]["body"])
        check("503 then 200: Retry-After: 2 is honoured", len(reqs) >= 2 and reqs[1]["time"] - reqs[0]["time"] >= 1.95,
              [r["time"] - t0 for r in reqs])
        check("503 then 200: every span accepted exactly once", sorted(ids) == sorted("r%d" % i for i in range(1200)),
              len(ids))
        check("503 then 200: the retry is logged", "HTTP 503: busy; retrying 500 spans" in err, err[-1500:])
    finally:
        rcv.stop()


def test_429_and_connection_refused_are_retried():
    rcv = Receiver([(429, {}, b"", 0), OK])
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, stdin=spans_text(3))
        check("429: retried once (backoff), then accepted", rc == 0 and len(rcv.requests) == 2 and
              sorted(accepted_ids(rcv)) == ["r0", "r1", "r2"], err[-1500:])
    finally:
        rcv.stop()
    port = free_port()
    t0 = time.monotonic()
    rc, err = run_bridge("--input", "-", "--endpoint", "http://127.0.0.1:%d" % port, stdin=spans_text(4),
                         env={"OTEL_BSP_EXPORT_TIMEOUT": "2500"})
    took = time.monotonic() - t0
    s = summary(err)
    check("nothing listening: retried with backoff until OTEL_BSP_EXPORT_TIMEOUT, then given up (exit 1)",
          rc == 1 and s.get("retries", 0) >= 1 and s.get("failed") == 4 and took < 10 * fx.SLOW,
          "%.1fs %s" % (took, err[-1500:]))


def test_never_retried():
    for status, body, what in ((400, b"bad data", "400"), (500, b"", "500"), (413, b"", "413")):
        rcv = Receiver([(status, {}, body, 0), OK])
        try:
            rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, stdin=spans_text(5))
            s = summary(err)
            check("%s: sent once, never again; exit 1, 5 spans failed" % what,
                  rc == 1 and len(rcv.requests) == 1 and s.get("failed") == 5 and s.get("retries") == 0,
                  err[-1500:])
        finally:
            rcv.stop()
    rcv = Receiver([(200, {}, partial_success_body(2, "two too old"), 0), OK])
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, stdin=spans_text(5))
        s = summary(err)
        check("partial success: never sent again; 2 rejected, 3 exported, exit 1",
              rc == 1 and len(rcv.requests) == 1 and s.get("rejected") == 2 and s.get("exported") == 3,
              err[-1500:])
        check("partial success: its message is logged", "2 of 5 spans rejected: two too old" in err, err[-1500:])
    finally:
        rcv.stop()


def test_environment():
    rcv = Receiver([OK])
    try:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.url + "/custom/path",
               "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",   # the signal's own wins
               "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s%20ecret, x-tenant = t1 ,broken",
               "OTEL_SERVICE_NAME": "checkout",
               "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=test",
               "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
        rc, err = run_bridge("--input", "-", stdin=spans_text(2), env=env)
        r = rcv.requests[0] if rcv.requests else {"path": None, "headers": {}, "spans": None}
        h = r["headers"]
        check("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: used as it is", rc == 0 and r["path"] == "/custom/path",
              "%s %s" % (r["path"], err[-800:]))
        check("OTEL_EXPORTER_OTLP_HEADERS: sent, percent-decoded, trimmed",
              h.get("x-api-key") == "s ecret" and h.get("x-tenant") == "t1", h)
        check("a malformed header entry is left out, with a warning", "1 entries left out" in err, err)
        check("gzip, protobuf, a User-Agent", h.get("content-encoding") == "gzip" and
              h.get("content-type") == "application/x-protobuf" and "lazybackend-usdt/" in h.get("user-agent", ""), h)
        res = {a.key: a.value.string_value for a in r["spans"].resource_spans[0].resource.attributes} \
            if r["spans"] else {}
        check("OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES; the other attributes kept",
              res == {"service.name": "checkout", "deployment.environment": "test"}, res)
    finally:
        rcv.stop()
    rcv = Receiver([OK])
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url + "/base", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        rc, err = run_bridge("--input", "-", stdin=spans_text(2), env=env)
        r = rcv.requests[0] if rcv.requests else {"path": None, "headers": {}, "spans": None}
        check("OTEL_EXPORTER_OTLP_ENDPOINT: v1/traces appended", rc == 0 and r["path"] == "/base/v1/traces",
              "%s %s" % (r["path"], err[-800:]))
        check("OTEL_EXPORTER_OTLP_PROTOCOL=http/json: JSON the reference parser reads",
              r["headers"].get("content-type") == "application/json" and r["spans"] is not None and
              len(r["spans"].resource_spans[0].scope_spans[0].spans) == 2, r["body"][:300])
    finally:
        rcv.stop()
    rcv = Receiver([OK])
    try:
        rc, err = run_bridge("--input", "-", stdin=spans_text(1),
                             env={"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:%d" % rcv.port})
        check("OTEL_EXPORTER_OTLP_ENDPOINT as HOST:PORT (the old bridge's form) still works",
              rc == 0 and len(rcv.requests) == 1 and rcv.requests[0]["path"] == "/v1/traces", err[-800:])
    finally:
        rcv.stop()


def test_timeouts():
    rcv = Receiver([(200, {}, b"", 3), OK])
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, stdin=spans_text(2),
                             env={"OTEL_EXPORTER_OTLP_TIMEOUT": "300"})
        s = summary(err)
        check("OTEL_EXPORTER_OTLP_TIMEOUT=300: a request without answer is cut and retried",
              rc == 0 and len(rcv.requests) == 2 and s.get("retries") == 1, err[-1500:])
    finally:
        rcv.stop()
    rcv = Receiver([(200, {}, b"", 60)])
    try:
        t0 = time.monotonic()
        rc, err = run_bridge("--input", "-", "--endpoint", rcv.url, "--shutdown-timeout", "1", stdin=spans_text(3))
        took = time.monotonic() - t0
        s = summary(err)
        check("--shutdown-timeout 1: a receiver that never answers costs one second; exit 1, 3 spans failed",
              rc == 1 and took < 4 * fx.SLOW and s.get("failed") == 3, "%.1fs %s" % (took, err[-1500:]))
    finally:
        rcv.stop()


def test_sigterm_flushes():
    rcv = Receiver([OK])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "60000"   # nothing would leave before the end on its own
    p = subprocess.Popen([fx.LB, "usdt", "--input", "-", "--endpoint", rcv.url], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(spans_text(3) + (start_line("open", T0) + "\n").encode())
        p.stdin.flush()
        time.sleep(0.5 * fx.SLOW)
        check("before SIGTERM: nothing sent yet (the schedule delay is long)", not rcv.requests)
        p.terminate()
        rc = p.wait(timeout=20 * fx.SLOW)
        err = p.stderr.read().decode(errors="replace")
        ids = accepted_ids(rcv)
        check("SIGTERM: the input stops, every span is sent, the open one as unfinished; exit 0",
              rc == 0 and sorted(ids) == ["open", "r0", "r1", "r2"], "%s %s" % (ids, err[-1500:]))
    finally:
        if p.poll() is None:
            p.kill()
        p.stdin.close()
        p.stderr.close()
        rcv.stop()


for name, fn in [("503 retry", test_503_retry_after_then_200),
                 ("429 and refused", test_429_and_connection_refused_are_retried),
                 ("never retried", test_never_retried), ("environment", test_environment),
                 ("timeouts", test_timeouts), ("sigterm", test_sigterm_flushes)]:
    run(name, fn)
done()
