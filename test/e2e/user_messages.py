#!/usr/bin/python3
"""What a user reads when asking or getting something wrong: --version names the commit and
the linked libraries; a query without a database says how to make one; traces sent to a
server whose sinks do not take spans are said to be kept nowhere, never "delivered".

Expectations come from outside the binary: the commit from git, the library versions from
Debian's package database, the span counts from the request built here.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import Server, run_cli, TRACES_EXPORT  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TMP = fx.tempdir("lb-messages-")


def upstream_version(package):
    """The upstream part of an installed Debian package's version (1:1.2.13.dfsg-1 -> 1.2.13)."""
    v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True).stdout
    v = v.split(":")[-1]
    return re.match(r"[0-9.]+[0-9]", v).group(0)


def test_version():
    rc, out, err = run_cli("--version")
    out = out.decode()
    check("--version: exit 0", rc == 0, err)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    m = re.search(r"\(commit ([0-9a-f]+)(-dirty)?\)", out)
    check("--version names the commit (a prefix of git's HEAD when built from this checkout)",
          m is not None and (not commit or commit.startswith(m.group(1)[:12]) or m.group(1).startswith(commit)),
          f"{out!r} vs HEAD {commit}")
    for name, package in (("nghttp2", "libnghttp2-14"), ("libcurl", "libcurl4"), ("SQLite", "libsqlite3-0"),
                          ("zlib", "zlib1g"), ("http-parser", "libhttp-parser2.9")):
        want = upstream_version(package)
        check(f"--version: {name} {want}, as Debian's {package}", f"{name} {want}" in out, out)
    check("--version: the nanopb it was generated with", "nanopb-" in out, out)


def test_query_without_database():
    missing = os.path.join(TMP, "none.db")
    for cmd in ("top", "folded", "flamegraph"):
        rc, out, err = run_cli(cmd, "--db", missing)
        check(f"{cmd} --db MISSING: exit 1, says how a database is made",
              rc == 1 and "no such database" in err and "--sink sqlite" in err and not os.path.exists(missing), err)


def trace_request(n_spans):
    """An ExportTraceServiceRequest with n spans, by the reference encoder."""
    import otlpgen
    otlpgen.compile_protos("trace.proto", "trace_service.proto")
    import trace_service_pb2
    req = trace_service_pb2.ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add()
    for i in range(n_spans):
        s = spans.spans.add()
        s.trace_id = bytes([1] * 16)
        s.span_id = bytes([1] * 7 + [i + 1])
        s.name = "op%d" % i
        s.start_time_unix_nano = 1
        s.end_time_unix_nano = 2
    return req.SerializeToString()


def test_traces_not_kept():
    body = trace_request(3)
    srv = Server("--sink", "sqlite", "--sqlite-path", os.path.join(TMP, "t.db"))
    try:
        r = srv.export(body, method=TRACES_EXPORT)
        check("traces to a server with only the sqlite sink: accepted (OK)", r.status == "OK", r)
    finally:
        srv.stop()
    log = srv.stderr()
    check("the request's log line says the 3 spans were not kept, and why",
          "3 spans (not kept: no configured sink takes spans" in log, log[-1500:])
    check("the summary counts them as not kept, 0 delivered",
          "0 spans delivered, 3 not kept" in log, log[-1500:])

    srv = Server()   # stdout takes spans
    try:
        srv.export(body, method=TRACES_EXPORT)
    finally:
        srv.stop()
    log = srv.stderr()
    check("with the stdout sink: 3 spans delivered, 0 not kept", "3 spans delivered, 0 not kept" in log, log[-1500:])


run("version", test_version)
run("query without database", test_query_without_database)
run("traces not kept", test_traces_not_kept)
done()
