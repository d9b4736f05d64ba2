#!/usr/bin/python3
"""seeds.py OUTDIR [TARGET] - seed inputs for one fuzz target (default: decode), written at
run time into the fuzzer's temporary seed directory, never into the repository.

Every seed is made by encoders that are not ours: Google's protobuf runtime (python3-protobuf)
and its json_format for the OTLP bodies, the python3-h2 client for HTTP/2 frames (h2c and
gRPC), and HTTP/1.1 requests written here by hand. Mutations then start from the shapes each
parser must understand instead of from nothing:

  decode   the OTLP fixtures (env FIXTURES) and one small profiles request in every proto
           layout (v1.11, v1.9, v1.8, v1.7; the fixtures hold no v1.7 request), and the same
           with fields no layout has at several depths (kept, recorded and described)
  check    the decode seeds, and requests that each break one conformance rule
  json     OTLP/JSON profiles and traces requests (lowerCamelCase and proto field names)
  traces   ExportTraceServiceRequest protobuf
  http     requests to the HTTP port: HTTP/1.1 (Content-Length, chunked, gzip, pipelined,
           Expect: 100-continue, Upgrade: h2c), h2c prior knowledge
  grpc     framer streams (mode byte even) and gRPC port conversations (mode byte odd),
           as test/fuzz/fuzz_grpc.c reads them
  usdt     bpftrace -f json output as 0.17 and 0.24+ print it (printf envelopes, messages,
           maps), bare event lines, and ExportTraceServiceResponse answers
"""
import gzip
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "lib"))
import otlpgen  # noqa: E402

PROFILES_PATH = "/v1development/profiles"
TRACES_PATH = "/v1/traces"
TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def profiles_request():
    b = otlpgen.Builder()
    work, main = b.function("work", "work.c"), b.function("main", "main.c")
    libc = b.mapping("libc.so.6", build_id="abcd")
    l_work, l_main = b.location("go", [(work, 7)]), b.location("go", [(main, 3)])
    l_libc = b.location("native", mapping=libc, address=0x1234)
    s1, s2 = b.stack([l_work, l_main]), b.stack([l_libc, l_main])
    link = b.link(bytes(range(16)), bytes(range(8)))
    scope = b.resource(service_name="svc", process_pid=42)
    p = b.profile(scope)
    b.sample(p, s1, timestamps=[1, 2, 3], attributes=[b.attr("thread.name", "a"), b.attr("thread.id", 7)])
    b.sample(p, s2, timestamps=[4], attributes=[b.attr("thread.name", "a")], link=link)
    p2 = b.profile(scope, "off_cpu", "nanoseconds")
    b.sample(p2, s1, timestamps=[5, 6], values=[100, 250], attributes=[b.attr("thread.id", 7)])
    return b.req


def kv(attrs, key, value):
    a = attrs.add()
    a.key = key
    if isinstance(value, bool):
        a.value.bool_value = value
    elif isinstance(value, int):
        a.value.int_value = value
    elif isinstance(value, float):
        a.value.double_value = value
    else:
        a.value.string_value = value


def traces_request(hg):
    req = hg.trace_service.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv(rs.resource.attributes, "service.name", "svc")
    kv(rs.resource.attributes, "process.pid", 42)
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "scope", "1.0"
    a = ss.spans.add()
    a.trace_id, a.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    a.name, a.kind = "GET /", hg.trace.Span.SPAN_KIND_SERVER
    a.start_time_unix_nano, a.end_time_unix_nano = 1700000000000000000, 1700000000001500000
    a.flags = 0x301
    kv(a.attributes, "http.method", "GET")
    kv(a.attributes, "ok", True)
    kv(a.attributes, "load", 0.25)
    a.status.code, a.status.message = hg.trace.Status.STATUS_CODE_ERROR, "boom"
    ev = a.events.add()
    ev.time_unix_nano, ev.name = 1700000000000500000, "event"
    kv(ev.attributes, "n", 1)
    ln = a.links.add()
    ln.trace_id, ln.span_id, ln.trace_state = bytes([0xff] * 16), bytes([0xee] * 8), "x=1"
    b = ss.spans.add()
    b.trace_id, b.span_id, b.parent_span_id = a.trace_id, bytes(range(9, 17)), a.span_id
    b.name = "child"
    b.trace_state = "vendor=x"
    return req


def bare_events_request(hg):
    """Regression (test/unit/test_traces.c): events and links without any attribute left the
    decoder's attribute pool without storage (NULL + 0)."""
    req = traces_request(hg)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    del span.events[0].attributes[:]
    del span.links[0].attributes[:]
    return req


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def seeds_decode(out):
    import otlpgen_layouts
    fixtures = os.environ.get("FIXTURES", "")
    for name in sorted(os.listdir(fixtures)) if os.path.isdir(fixtures) else ():
        if name.endswith(".pb"):
            with open(os.path.join(fixtures, name), "rb") as f:
                write(out, "fixture." + name, f.read())
    req = profiles_request()
    raw = otlpgen_layouts.raw_field
    for layout in otlpgen_layouts.LAYOUTS:
        data = otlpgen_layouts.encode(req, layout)
        write(out, f"built.{layout}.pb", data)
        # unknown fields: appended to the request, and inside its first resource (field 1)
        extra = raw(15, 2, b"text") + raw(20, 0, 300) + raw(21, 1, bytes(8)) + raw(22, 5, bytes(4)) + \
            raw(23, 2, raw(1, 0, 1) + raw(2, 2, b"\xff"))
        write(out, f"unknown.{layout}.pb", data + extra + raw(1, 2, raw(1, 2, raw(99, 2, b"deep"))))
    # Regression (test/e2e/fuzz_regressions.py): a v1.7 sample whose stack is an empty slice of
    # a profile without location_indices (NULL + 0).
    b = otlpgen.Builder()
    b.sample(b.profile(b.resource(service_name="svc")), 0, timestamps=[1])
    write(out, "regress-empty-stack.v1.7.pb", otlpgen_layouts.encode(b.req, "v1.7"))
    # Regression: the same in v1.11, the first stack of a fresh decoder empty: its memoised
    # frames pointed at as NULL + 0.
    write(out, "regress-empty-stack.v1.11.pb", otlpgen_layouts.encode(b.req, "v1.11"))


def seeds_check(out):
    """The decode seeds, and requests that break one conformance rule each (so mutations start
    next to every rule's edge): a timestamp at the profile's end, duplicate strings, mappings
    and functions, an unreferenced string, a non-zero entry 0, a short link id, a shape mix."""
    seeds_decode(out)
    import otlpgen_layouts

    def faulty(name, change):
        req = profiles_request()
        change(req)
        for layout in ("v1.11", "v1.9", "v1.8"):
            write(out, f"check-{name}.{layout}.pb", otlpgen_layouts.encode(req, layout))

    def late(r):
        p = r.resource_profiles[0].scope_profiles[0].profiles[0]
        p.samples[0].timestamps_unix_nano.append(p.time_unix_nano + p.duration_nano)

    def duplicates(r):
        d = r.dictionary
        d.string_table.append(d.string_table[1])
        d.mapping_table.add().CopyFrom(d.mapping_table[1])
        d.function_table.add().CopyFrom(d.function_table[1])
        d.stack_table.add().CopyFrom(d.stack_table[1])

    def zero(r):
        r.dictionary.location_table[0].address = 1
        r.dictionary.attribute_table[0].value.int_value = 1

    def short_link(r):
        r.dictionary.link_table[1].span_id = b"\x01"

    def mixed(r):
        p = r.resource_profiles[0].scope_profiles[0].profiles[0]
        p.samples[0].values.extend([1, 2])

    def regress(r):
        """Regressions (test/e2e/check_profcheck.py): a duplicate empty string, equal mappings
        without attributes."""
        d = r.dictionary
        d.string_table.append("")
        for _ in range(2):
            d.mapping_table.add().filename_strindex = 1

    for name, change in (("regress-dup-empty", regress), ("late", late), ("duplicates", duplicates), ("zero", zero),
                         ("short-link", short_link), ("mixed", mixed),
                         ("unreferenced", lambda r: r.dictionary.string_table.append("nobody"))):
        faulty(name, change)


def seeds_json(out):
    import httpgen as hg
    for camel in (True, False):
        style = "camel" if camel else "snake"
        write(out, f"profiles.{style}.json", hg.to_otlp_json(profiles_request(), camel))
        write(out, f"traces.{style}.json", hg.to_otlp_json(traces_request(hg), camel))
    write(out, "regress-bare-events.json", hg.to_otlp_json(bare_events_request(hg)))
    # Regression (test/unit/test_json.c): a refusal quoting a decoded newline.
    write(out, "regress-reason-newline.json",
          b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"\\n1"}]}]}]}')
    try:
        _, fixture = hg.fixture_request()
    except OSError:
        return   # no fixtures here: the built requests only
    write(out, "fixture.json", hg.to_otlp_json(fixture))


def seeds_traces(out):
    import httpgen as hg
    req = traces_request(hg)
    write(out, "traces.pb", req.SerializeToString())
    one = hg.trace_service.ExportTraceServiceRequest()
    one.resource_spans.add().CopyFrom(req.resource_spans[0])
    del one.resource_spans[0].scope_spans[0].spans[1:]
    write(out, "one-span.pb", one.SerializeToString())
    write(out, "regress-bare-events.pb", bare_events_request(hg).SerializeToString())
    import otlpgen_layouts
    write(out, "unknown-fields.pb", one.SerializeToString() + otlpgen_layouts.raw_field(7, 2, b"new"))


def http1(method, path, body=b"", headers=(), version="HTTP/1.1"):
    head = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    head += list(headers)
    if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(body, size=100):
    parts = [b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
             for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\nX-Trailer: t\r\n\r\n"


def h2_client(requests, upgrade=False):
    """Client bytes for HTTP/2 requests [(headers, body)] by the python3-h2 client."""
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    for headers, body in requests:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=not body)
        if body:
            conn.send_data(sid, body, end_stream=True)
    return conn.data_to_send()


def h2c_upgrade(path, body, ctype):
    """An HTTP/1.1 request asking for h2c, with the client's HTTP2-Settings (RFC 7540 3.2)."""
    import h2.config
    import h2.connection
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = conn.initiate_upgrade_connection()
    return http1("POST", path, body, ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
                                       "HTTP2-Settings: " + settings.decode(),
                                       "Content-Type: " + ctype])


def seeds_http(out):
    import httpgen as hg
    pb = profiles_request().SerializeToString()
    js = hg.to_otlp_json(profiles_request())
    tpb = traces_request(hg).SerializeToString()
    tjs = hg.to_otlp_json(traces_request(hg), camel=False)
    ct_pb, ct_js = "Content-Type: " + hg.PB, "Content-Type: " + hg.JSON
    write(out, "profiles-pb.http", http1("POST", PROFILES_PATH, pb, [ct_pb]))
    write(out, "profiles-json.http", http1("POST", PROFILES_PATH, js, [ct_js + "; charset=utf-8"]))
    write(out, "traces-pb.http", http1("POST", TRACES_PATH, tpb, [ct_pb]))
    write(out, "traces-json.http", http1("POST", TRACES_PATH, tjs, [ct_js]))
    write(out, "gzip.http", http1("POST", PROFILES_PATH, gzip.compress(pb), [ct_pb, "Content-Encoding: gzip"]))
    write(out, "chunked.http", http1("POST", TRACES_PATH, chunked(tjs),
                                     [ct_js, "Transfer-Encoding: chunked"]))
    write(out, "continue.http", http1("POST", PROFILES_PATH, pb, [ct_pb, "Expect: 100-continue"]))
    write(out, "pipelined.http", http1("GET", "/healthz", headers=["Connection: keep-alive"]) +
          http1("HEAD", "/healthz") + http1("POST", "http://127.0.0.1:4318/v1/traces?x=1", tpb, [ct_pb]) +
          http1("GET", "/nowhere") + http1("PUT", TRACES_PATH, b"x", ["Content-Type: text/plain"]))
    write(out, "http10.http", http1("POST", PROFILES_PATH, pb, [ct_pb, "Connection: keep-alive"],
                                    version="HTTP/1.0"))
    write(out, "upgrade.http", h2c_upgrade(TRACES_PATH, tpb, hg.PB))
    write(out, "ui.http", http1("GET", "/") + http1("GET", "/api/top?by=thread&from=1&to=100&q=%41b+c&attr=k%3Dv") +
          http1("GET", "/api/flame?frame_type=jvm&frame_type=go&max_nodes=10") + http1("GET", "/api/meta?x=1"))
    write(out, "ui-live.http", http1("GET", "/api/live"))
    write(out, "ui-live-h2c.http", h2_client([
        ([(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/api/live")], b""),
        ([(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/api/timeline?from=5")], b""),
    ]))
    base = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1")]
    write(out, "h2c.http", h2_client([
        (base + [(":path", PROFILES_PATH), ("content-type", hg.PB)], pb),
        (base + [(":path", TRACES_PATH), ("content-type", hg.JSON), ("content-encoding", "gzip")],
         gzip.compress(tjs)),
        ([(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/healthz")], b""),
    ]))


def grpc_message(msg, compressed=False):
    body = gzip.compress(msg) if compressed else msg
    return struct.pack(">BI", 1 if compressed else 0, len(body)) + body


def seeds_grpc(out):
    import httpgen as hg
    pb = profiles_request().SerializeToString()
    tpb = traces_request(hg).SerializeToString()
    # framer streams: mode byte even (its upper bits set the piece size)
    write(out, "framer-one", b"\x00" + grpc_message(pb))
    write(out, "framer-many", b"\x06" + grpc_message(b"") + grpc_message(tpb, True) + grpc_message(b"abc")[:6])
    # the gRPC port: mode byte odd (0x01: all at once, 0x05: 32-byte pieces)
    def call(path, *extra):
        return [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                ("content-type", "application/grpc"), ("te", "trailers"), *extra]
    write(out, "port-profiles", b"\x01" + h2_client([(call(otlpgen.PROFILES_METHOD), grpc_message(pb))]))
    write(out, "port-traces-gzip", b"\x05" + h2_client(
        [(call(TRACES_METHOD, ("grpc-encoding", "gzip")), grpc_message(tpb, True))]))
    write(out, "port-two-calls", b"\x01" + h2_client(
        [(call(TRACES_METHOD), grpc_message(tpb)), (call("/no.Such/Method"), grpc_message(b""))]))


def seeds_usdt(out):
    def env(inner):
        return json.dumps({"type": "printf", "data": inner + "\n"}, separators=(", ", ": "))
    start = '{"event":"request_start","reqid":"req-%d","timestamp":%d}'
    end = '{"event":"request_end","reqid":"req-%d","start":%d,"duration":%d}'
    t = 1796400430172630642
    bpftrace_017 = ['{"type": "attached_probes", "data": {"probes": 2}}',
                    env(start % (1, t)), env(end % (2, t + 5, 7)), env(start % (2, t + 5)), env(end % (1, t, 1500)),
                    '{"type": "lost_events", "data": {"events": 3}}', env("plain text"), "", "",
                    '{"type": "map", "data": {"@s": {"a": 2}}}',
                    '{"type": "hist", "data": {"@h": [{"min": 1, "max": 2, "count": 3}]}}']
    write(out, "bpftrace-0.17", ("\n".join(bpftrace_017) + "\n").encode())
    newer = ['{"type": "attached_probes", "count": 2, "data": {"probes": 2}}',
             env('{"event":"request_start","reqid":18446744073709551615,"timestamp":"%d"}' % t),
             env('{"event":"request_end","reqid":18446744073709551615,"duration":"9"}'),
             '{"type": "errorf", "msg": "x", "filename": "f", "line": 1, "col": 2}']
    write(out, "bpftrace-0.24", ("\n".join(newer) + "\n").encode())
    bare = [start % (i, t + i) if i % 2 else end % (i - 1, t + i - 1, i) for i in range(1, 30)]
    write(out, "bare", ("\n".join(bare)).encode())
    write(out, "answer", bytes([0x0a, 0x07, 0x08, 0x03, 0x12, 0x03]) + b"bad")
    write(out, "answer-json", b'{"partialSuccess":{"rejectedSpans":"2","errorMessage":"no"}}')


TARGETS = {"decode": seeds_decode, "check": seeds_check, "json": seeds_json, "traces": seeds_traces,
           "http": seeds_http, "grpc": seeds_grpc, "usdt": seeds_usdt}

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in TARGETS):
        sys.exit("usage: seeds.py OUTDIR [" + "|".join(TARGETS) + "]")
    TARGETS[sys.argv[2] if len(sys.argv) == 3 else "decode"](sys.argv[1])
