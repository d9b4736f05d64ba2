#!/usr/bin/python3
"""http_traces.py - OTLP traces, end to end: POST /v1/traces (protobuf, JSON, gzip; HTTP/1.1,
h2c prior knowledge, h2c upgrade) and the gRPC TraceService/Export, into the stdout sink.

Why: a user must be able to watch spans (e.g. from the bpftrace USDT bridge) next to
profiles. The request is built with Google's protobuf runtime; its OTLP/JSON form with
json_format (ids made hex); the expected text below is written by hand from the request,
not produced by the code under test. Invalid spans (id lengths, zero ids) must be rejected
one by one (partial success), the rest delivered; the filter stage must not eat spans; a
sink without span support (sqlite) must ignore traces.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import otlpgen  # noqa: E402
import server  # noqa: E402

T0 = 1769443200000000000          # 2026-01-26 16:00:00 UTC
T1 = 1706285000000000000          # 2024-01-26 16:03:20 UTC (the bridge README's example)
TRACE_A = bytes(range(1, 17))
TRACE_C = bytes([0x11] * 16)


def kv(attrs, key, value):
    a = attrs.add()
    a.key = key
    otlpgen.set_value(a.value, value)


def build_request():
    req = hg.trace_service.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv(rs.resource.attributes, "service.name", "checkout")
    kv(rs.resource.attributes, "process.pid", 4242)
    kv(rs.resource.attributes, "host.arch", "amd64")
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "io.test.http", "1.2.0"
    a = ss.spans.add()
    a.trace_id, a.span_id = TRACE_A, bytes.fromhex("a1a2a3a4a5a6a7a8")
    a.name, a.kind = "GET /api/cart", hg.trace.Span.SPAN_KIND_SERVER
    a.start_time_unix_nano, a.end_time_unix_nano = T0, T0 + 1500000
    a.flags = 0x301
    kv(a.attributes, "http.request.method", "GET")
    kv(a.attributes, "http.response.status_code", 200)
    kv(a.attributes, "cache.hit", False)
    kv(a.attributes, "load", 0.25)
    a.status.code = hg.trace.Status.STATUS_CODE_OK
    ev = a.events.add()
    ev.time_unix_nano, ev.name = T0 + 500000, "cache.miss"
    kv(ev.attributes, "cart.id", "42")
    ln = a.links.add()
    ln.trace_id, ln.span_id, ln.trace_state = bytes([0xff] * 16), bytes([0xee] * 8), "x=1"
    kv(ln.attributes, "link.kind", "follows")
    b = ss.spans.add()
    b.trace_id, b.span_id, b.parent_span_id = TRACE_A, bytes.fromhex("b1b2b3b4b5b6b7b8"), a.span_id
    b.name, b.kind = "SELECT cart", hg.trace.Span.SPAN_KIND_CLIENT
    b.start_time_unix_nano, b.end_time_unix_nano = T0 + 100000, T0 + 1100000
    b.trace_state = "vendor=x"
    b.dropped_attributes_count = 2
    kv(b.attributes, "db.system", "postgresql")
    b.status.code, b.status.message = hg.trace.Status.STATUS_CODE_ERROR, "timeout\x1b[31m\n"
    # What the bpftrace USDT bridge sends (bpftrace-bridge.md §0).
    rs2 = req.resource_spans.add()
    kv(rs2.resource.attributes, "service.name", "usdt-bpftrace-exporter")
    kv(rs2.resource.attributes, "service.version", "1.0.0")
    ss2 = rs2.scope_spans.add()
    ss2.scope.name = "bpftrace-exporter"
    c = ss2.spans.add()
    c.trace_id, c.span_id = TRACE_C, bytes.fromhex("c1c2c3c4c5c6c7c8")
    c.name, c.kind = "http.request", hg.trace.Span.SPAN_KIND_SERVER
    c.start_time_unix_nano, c.end_time_unix_nano = T1, T1 + 1500000
    kv(c.attributes, "request.id", "req-123")
    kv(c.attributes, "duration_ns", 1500000)
    kv(c.attributes, "duration_ms", 1.5)
    return req


# Written by hand from build_request() and the grammar in docs/output.md (Spans (traces)).
EXPECTED_TEXT = r"""--------------- New Resource Spans ----------------
  service.name: checkout
  process.pid: 4242
  host.arch: amd64
-------------------- New Span ---------------------
  Scope: io.test.http 1.2.0
  TraceID: 0102030405060708090a0b0c0d0e0f10
  SpanID: a1a2a3a4a5a6a7a8
  ParentSpanID: (root)
  Name: GET /api/cart
  Kind: SERVER
  Start: 2026-01-26 16:00:00 +0000 UTC
  End: 2026-01-26 16:00:00.0015 +0000 UTC
  Duration: 1.5ms
  Status: OK
  Flags: 0x301
  Attributes:
    http.request.method: GET
    http.response.status_code: 200
    cache.hit: false
    load: 0.25
  Event[0]: cache.miss at 2026-01-26 16:00:00.0005 +0000 UTC
    cart.id: 42
  Link[0]: trace_id=ffffffffffffffffffffffffffffffff, span_id=eeeeeeeeeeeeeeee, trace_state=x=1
    link.kind: follows
-------------------- End Span ---------------------
-------------------- New Span ---------------------
  Scope: io.test.http 1.2.0
  TraceID: 0102030405060708090a0b0c0d0e0f10
  SpanID: b1b2b3b4b5b6b7b8
  ParentSpanID: a1a2a3a4a5a6a7a8
  Name: SELECT cart
  Kind: CLIENT
  Start: 2026-01-26 16:00:00.0001 +0000 UTC
  End: 2026-01-26 16:00:00.0011 +0000 UTC
  Duration: 1ms
  Status: ERROR (timeout\x1b[31m\n)
  TraceState: vendor=x
  Dropped: attributes 2, events 0, links 0
  Attributes:
    db.system: postgresql
-------------------- End Span ---------------------
--------------- End Resource Spans ----------------

--------------- New Resource Spans ----------------
  service.name: usdt-bpftrace-exporter
  service.version: 1.0.0
-------------------- New Span ---------------------
  Scope: bpftrace-exporter
  TraceID: 11111111111111111111111111111111
  SpanID: c1c2c3c4c5c6c7c8
  ParentSpanID: (root)
  Name: http.request
  Kind: SERVER
  Start: 2024-01-26 16:03:20 +0000 UTC
  End: 2024-01-26 16:03:20.0015 +0000 UTC
  Duration: 1.5ms
  Status: UNSET
  Attributes:
    request.id: req-123
    duration_ns: 1500000
    duration_ms: 1.5
-------------------- End Span ---------------------
--------------- End Resource Spans ----------------

""".encode()

REQ = build_request()
PB_BODY = REQ.SerializeToString()
JSON_BODY = hg.to_otlp_json(REQ)


def grpc_export(srv, body, gzip_it=False):
    """(status code, details, response bytes) of the gRPC TraceService/Export, on a
    connection of its own."""
    ch = server.channel(srv.grpc_port)
    try:
        r = server.export(ch, body, method=hg.TRACE_METHOD, gzip=gzip_it)
        return r.code, r.details, r.body
    finally:
        ch.close()


def test_text_every_way():
    srv = hg.Server()
    n = 0
    try:
        cases = []
        for mode in ("http1.1", "h2", "upgrade"):
            for fmt in ("protobuf", "json"):
                for gz in (False, True):
                    cases.append((mode, fmt, gz))
        for mode, fmt, gz in cases:
            name = "%s %s%s" % (mode, fmt, " gzip" if gz else "")
            r = hg.curl(srv.url + hg.TRACES, PB_BODY if fmt == "protobuf" else JSON_BODY,
                        hg.PB if fmt == "protobuf" else hg.JSON, mode=mode, gzip_it=gz)
            if fmt == "json":
                good = r.status == 200 and r.header("content-type") == hg.JSON and json.loads(r.body) == {}
            else:
                resp = hg.trace_service.ExportTraceServiceResponse()
                resp.ParseFromString(r.body)
                good = r.status == 200 and r.header("content-type") == hg.PB and not resp.HasField("partial_success")
            check("traces over %s: 200 with an empty response in the request's type" % name, good, r)
            n += 1
            out = srv.wait_stdout(lambda o: len(o) >= len(EXPECTED_TEXT) * n)
            block = out[len(EXPECTED_TEXT) * (n - 1):len(EXPECTED_TEXT) * n]
            check("traces over %s: text output is the hand-written expectation" % name,
                  block == EXPECTED_TEXT, fx.first_difference(block, EXPECTED_TEXT))
        for gz in (False, True):
            code, details, resp = grpc_export(srv, PB_BODY, gz)
            check("traces over gRPC%s: OK with an empty response" % (" gzip" if gz else ""),
                  code == 0 and resp == b"", details)
            n += 1
            out = srv.wait_stdout(lambda o: len(o) >= len(EXPECTED_TEXT) * n)
            block = out[len(EXPECTED_TEXT) * (n - 1):len(EXPECTED_TEXT) * n]
            check("traces over gRPC%s: text output is the hand-written expectation" % (" gzip" if gz else ""),
                  block == EXPECTED_TEXT, fx.first_difference(block, EXPECTED_TEXT))
        check("nothing else on stdout", srv.stdout() == EXPECTED_TEXT * n)
        check("trace exports are logged", srv.stderr().count("trace export from") == n, srv.stderr())
        check("server exits 0", srv.stop() == 0, srv.stderr())
    finally:
        srv.cleanup()


def test_json_format():
    srv = hg.Server("--format", "json")
    try:
        r = hg.curl(srv.url + hg.TRACES, PB_BODY, hg.PB)
        check("json format: 200", r.status == 200, r)
        out = srv.wait_stdout(lambda o: o.count(b"\n") >= 3)
        lines = [json.loads(l) for l in out.decode().splitlines()]
        check("json format: one object per span (3)", len(lines) == 3, out[:300])
        a = lines[0]
        sp = a.get("span", {})
        check("json: request transport http, layout 'traces v1'",
              a["request"]["transport"] == "http" and a["request"]["layout"] == "traces v1", a["request"])
        check("json: resource attributes", [(x["key"], x["type"], x["value"]) for x in a["resource"]["attributes"]] ==
              [("service.name", "string", "checkout"), ("process.pid", "int", 4242), ("host.arch", "string", "amd64")],
              a["resource"])
        check("json: scope", a["scope"]["name"] == "io.test.http" and a["scope"]["version"] == "1.2.0", a["scope"])
        check("json: ids as hex", sp.get("trace_id") == TRACE_A.hex() and sp.get("span_id") == "a1a2a3a4a5a6a7a8"
              and sp.get("parent_span_id") == "", sp)
        check("json: kind 2 SERVER, flags 769", sp.get("kind") == 2 and sp.get("kind_name") == "SERVER"
              and sp.get("flags") == 0x301, sp)
        check("json: times and duration", sp.get("start_time_unix_nano") == T0 and
              sp.get("start") == "2026-01-26T16:00:00.000000000Z" and sp.get("end") == "2026-01-26T16:00:00.001500000Z"
              and sp.get("duration_nano") == 1500000, sp)
        check("json: status", sp.get("status") == {"code": 1, "code_name": "OK", "message": ""}, sp.get("status"))
        check("json: attributes typed", [(x["key"], x["type"], x["value"]) for x in sp["attributes"]] ==
              [("http.request.method", "string", "GET"), ("http.response.status_code", "int", 200),
               ("cache.hit", "bool", False), ("load", "double", 0.25)], sp["attributes"])
        check("json: event", sp["events"] == [{"time_unix_nano": T0 + 500000, "time": "2026-01-26T16:00:00.000500000Z",
                                               "name": "cache.miss", "dropped_attributes_count": 0,
                                               "attributes": [{"key": "cart.id", "type": "string", "value": "42"}]}],
              sp["events"])
        check("json: link", sp["links"][0]["trace_id"] == "ff" * 16 and sp["links"][0]["span_id"] == "ee" * 8
              and sp["links"][0]["trace_state"] == "x=1", sp["links"])
        b = lines[1]["span"]
        check("json: child span: parent id, ERROR with the raw message (JSON-escaped, intact)",
              b["parent_span_id"] == "a1a2a3a4a5a6a7a8" and b["status"]["code_name"] == "ERROR"
              and b["status"]["message"] == "timeout\x1b[31m\n" and b["dropped_attributes_count"] == 2, b)
        c = lines[2]
        check("json: second resource", c["resource"]["index"] == 1 and c["scope"]["name"] == "bpftrace-exporter"
              and c["span"]["name"] == "http.request", c)
        srv.stop()
    finally:
        srv.cleanup()


def test_partial_success():
    srv = hg.Server()
    try:
        req = hg.trace_service.ExportTraceServiceRequest()
        ss = req.resource_spans.add().scope_spans.add()
        ok = ss.spans.add()
        ok.trace_id, ok.span_id, ok.name = TRACE_A, b"\x01" * 8, "fine"
        bad = ss.spans.add()
        bad.trace_id, bad.span_id, bad.name = b"\x01\x02\x03", b"\x01" * 8, "short trace id"
        zero = ss.spans.add()
        zero.trace_id, zero.span_id, zero.name = TRACE_A, b"\x00" * 8, "zero span id"
        r = hg.curl(srv.url + hg.TRACES, req.SerializeToString(), hg.PB)
        resp = hg.trace_service.ExportTraceServiceResponse()
        resp.ParseFromString(r.body)
        check("invalid spans: 200 with rejected_spans = 2", r.status == 200 and
              resp.partial_success.rejected_spans == 2, r)
        check("invalid spans: the first problem is named with its place",
              "resource_spans[0].scope_spans[0].spans[1]: trace_id is 3 bytes (want 16)"
              in resp.partial_success.error_message, resp)
        r = hg.curl(srv.url + hg.TRACES, hg.to_otlp_json(req), hg.JSON)
        body = json.loads(r.body)
        check("invalid spans (JSON): partialSuccess.rejectedSpans \"2\"",
              r.status == 200 and body.get("partialSuccess", {}).get("rejectedSpans") == "2", r)
        code, details, raw = grpc_export(srv, req.SerializeToString())
        resp = hg.trace_service.ExportTraceServiceResponse()
        resp.ParseFromString(raw)
        check("invalid spans (gRPC): OK with rejected_spans = 2", code == 0 and resp.partial_success.rejected_spans == 2,
              details)
        out = srv.wait_stdout(lambda o: o.count(b"  Name: fine\n") >= 3)
        check("the valid span of each request was delivered, the invalid ones were not",
              out.count(b"  Name: fine\n") == 3 and b"short trace id" not in out and b"zero span id" not in out,
              out[-500:])
        code, details, _ = grpc_export(srv, b"\x0a\x05\x12\x03\x12")
        check("malformed traces over gRPC: INVALID_ARGUMENT", code == 3 and "malformed" in details, details)
        srv.stop()
    finally:
        srv.cleanup()


def test_other_sinks():
    """The filter stage does not drop spans; a sink without spans ignores traces; folded
    prints none."""
    srv = hg.Server("--container-id", "no-such-container")
    try:
        r = hg.curl(srv.url + hg.TRACES, PB_BODY, hg.PB)
        out = srv.wait_stdout(lambda o: len(o) >= len(EXPECTED_TEXT))
        check("with a filter set, spans still reach the stdout sink", r.status == 200 and out == EXPECTED_TEXT,
              fx.first_difference(out, EXPECTED_TEXT))
        srv.stop()
    finally:
        srv.cleanup()
    db = os.path.join(fx.tempdir("lb-traces-sqlite-"), "t.db")
    srv = hg.Server("--sink", "sqlite", "--sqlite-path", db)
    try:
        r = hg.curl(srv.url + hg.TRACES, PB_BODY, hg.PB)
        check("sqlite only: traces are accepted (200) and ignored", r.status == 200 and srv.stdout() == b"", r)
        srv.stop()
    finally:
        srv.cleanup()
    srv = hg.Server("--format", "folded")
    try:
        r = hg.curl(srv.url + hg.TRACES, PB_BODY, hg.PB)
        check("folded format: 200, no output for spans", r.status == 200 and srv.stdout() == b"", r)
        srv.stop()
    finally:
        srv.cleanup()


run("text output over every transport", test_text_every_way)
run("json output", test_json_format)
run("partial success", test_partial_success)
run("other sinks and the filter stage", test_other_sinks)
done()
