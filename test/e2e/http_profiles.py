#!/usr/bin/python3
"""http_profiles.py - OTLP profiles over OTLP/HTTP, end to end, with curl.

Why: the Go lazybackend answers 200 to HTTP profiles and throws them away. Here every way a
client can send the shared fixture - HTTP/1.1, h2c with prior knowledge, h2c by upgrade from
HTTP/1.1, gzip or not, protobuf or OTLP/JSON - must deliver exactly what the gRPC path
delivers: the folded stacks byte-identical to ebpf-jvm-go.folded, the counts of
ebpf-jvm-go.expect.json. The JSON bodies are made by Google's json_format from the fixture
(ids turned to hex as OTLP/JSON requires), an encoder independent of our transcoder.
Partial success (rejected profiles) must come back in the request's content type.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import otlpgen  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
RAW, REQ = hg.fixture_request()
JSON_CAMEL = hg.to_otlp_json(REQ)
JSON_SNAKE = hg.to_otlp_json(REQ, camel=False)
MODES = ("http1.1", "h2", "upgrade")
EXPECTED_PROTOCOL = {"http1.1": ["HTTP/1.1 200"], "h2": ["HTTP/2 200"],
                     "upgrade": ["HTTP/1.1 101", "HTTP/2 200"]}


def text_counts(out):
    """The text format's counts; stdout may be read in the middle of a character."""
    return fx.text_counts(out, errors="replace").counts


def test_folded_every_way():
    srv = hg.Server("--format", "folded")
    sent = 0
    try:
        for mode in MODES:
            for fmt, body in (("protobuf", RAW), ("json", JSON_CAMEL)):
                for gz in (False, True):
                    name = "%s %s%s" % (mode, fmt, " gzip" if gz else "")
                    r = hg.curl(srv.url + hg.PROFILES, body, hg.PB if fmt == "protobuf" else hg.JSON,
                                mode=mode, gzip_it=gz)
                    ok = check("profiles over %s: 200" % name,
                               r.status == 200 and r.protocols == EXPECTED_PROTOCOL[mode], r)
                    if fmt == "json":
                        check("profiles over %s: response is {} in application/json" % name,
                              r.header("content-type") == hg.JSON and json.loads(r.body) == {}, r)
                    else:
                        resp = hg.profiles_service.ExportProfilesServiceResponse()
                        resp.ParseFromString(r.body)
                        check("profiles over %s: empty ExportProfilesServiceResponse in protobuf" % name,
                              r.header("content-type") == hg.PB and not resp.HasField("partial_success"), r)
                    sent += ok
                    out = srv.wait_stdout(lambda o: len(o) >= len(FOLDED) * sent)
                    block = out[len(FOLDED) * (sent - 1):len(FOLDED) * sent]
                    check("profiles over %s: folded output is byte-identical to ebpf-jvm-go.folded" % name,
                          block == FOLDED, "got %d bytes: %r" % (len(block), block[:200]))
        out = srv.stdout()
        check("12 requests, nothing else on stdout", out == FOLDED * 12, "%d bytes" % len(out))
        check("server exits 0 on SIGTERM", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def test_counts_text():
    """The text format: the counts of expect.json for protobuf and for both JSON key styles."""
    srv = hg.Server()
    try:
        for label, body, ctype in (("protobuf", RAW, hg.PB), ("json camelCase", JSON_CAMEL, hg.JSON),
                                   ("json proto field names", JSON_SNAKE, hg.JSON)):
            before = len(srv.stdout())
            r = hg.curl(srv.url + hg.PROFILES, body, ctype)
            check("text, %s: 200" % label, r.status == 200, r)
            out = srv.wait_stdout(lambda o: text_counts(o[before:])["samples"] >= EXPECT["samples"])
            c = text_counts(out[before:])
            for key in ("resource_profiles", "profiles", "samples", "timestamps", "frames", "values_sum"):
                check("text, %s: %s = %s" % (label, key, EXPECT[key]), c[key] == EXPECT[key],
                      "got %s" % c[key])
        check("the HTTP transport is named in the log", "(HTTP/1.1, json)" in srv.stderr(), srv.stderr())
        check("server exits 0", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def bad_request():
    """A request with one good and one out-of-range sample (a rejected profile)."""
    b, p, good = otlpgen.one_stack_request()
    b.sample(p, good, timestamps=[1])
    b.sample(p, 99, timestamps=[2])    # stack_index out of range
    return b


def test_partial_success():
    srv = hg.Server()
    try:
        b = bad_request()
        r = hg.curl(srv.url + hg.PROFILES, b.bytes(), hg.PB)
        resp = hg.profiles_service.ExportProfilesServiceResponse()
        resp.ParseFromString(r.body)
        check("partial success over HTTP (protobuf): 200", r.status == 200, r)
        check("partial success (protobuf): rejected_profiles = 1 and the reason",
              resp.partial_success.rejected_profiles == 1 and
              "stack_index 99 out of range" in resp.partial_success.error_message, resp)
        # The same request as JSON, by the reference library.
        r = hg.curl(srv.url + hg.PROFILES, hg.to_otlp_json(b.req), hg.JSON, mode="h2")
        body = json.loads(r.body) if r.status == 200 else {}
        ps = body.get("partialSuccess", {})
        check("partial success (JSON): 200, rejectedProfiles \"1\" (an int64 as a string)",
              r.status == 200 and ps.get("rejectedProfiles") == "1", r)
        check("partial success (JSON): errorMessage names the problem",
              "stack_index 99 out of range" in ps.get("errorMessage", ""), r)
        out = srv.wait_stdout(lambda o: o.count(b"------------------- New Sample --------------------") >= 2)
        check("the good sample of each request was delivered",
              out.count(b"------------------- New Sample --------------------") == 2, out[-400:])
        check("server exits 0", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def test_keepalive_many():
    """Many requests on one HTTP/1.1 connection (curl reuses it for several URLs)."""
    srv = hg.Server("--format", "folded")
    try:
        path = fx.write(fx.tempdir("curl-many-"), "req", RAW)
        n = 5
        args = ["curl", "-sS"]
        for i in range(n):
            args += ["--http1.1", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                     "-H", "Content-Type: " + hg.PB, "--data-binary", "@" + path, srv.url + hg.PROFILES]
            if i + 1 < n:
                args.append("--next")
        p = subprocess.run(args, capture_output=True, timeout=60 * hg.SLOW)
        lines = p.stdout.decode().split()
        codes = lines[0::2]
        connects = sum(int(x) for x in lines[1::2])
        check("5 requests on one keep-alive connection: all 200, one connect",
              codes == ["200"] * n and connects == 1, p.stdout + p.stderr)
        out = srv.wait_stdout(lambda o: len(o) >= len(FOLDED) * n)
        check("... and 5 folded blocks", out == FOLDED * n, "%d bytes" % len(out))
        srv.stop()
    finally:
        srv.cleanup()


run("folded output over every client mode, gzip and format", test_folded_every_way)
run("counts in text format", test_counts_text)
run("partial success", test_partial_success)
run("keep-alive", test_keepalive_many)
done()
