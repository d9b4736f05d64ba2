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
  speculate  the decode seeds
  check    the decode seeds, and requests that each break one conformance rule
  json     OTLP/JSON profiles and traces requests (lowerCamelCase and proto field names)
  traces   ExportTraceServiceRequest protobuf
  http     requests to the HTTP port: HTTP/1.1 (Content-Length, chunked, gzip, pipelined,
           Expect: 100-continue, Upgrade: h2c), h2c prior knowledge
  grpc     framer streams (mode byte even) and gRPC port conversations (mode byte odd),
           as test/fuzz/fuzz_grpc.c reads them
  usdt     bpftrace -f json output as 0.17 and 0.24+ print it (printf envelopes, messages,
           maps), bare event lines, and ExportTraceServiceResponse answers
  wal      write-ahead log segments written here from wal.h's format (CRCs by zlib): whole,
           torn, with a bad CRC; records of the ClickHouse sink (walrec.c's format) and of
           the forward sink, appended or as a segment file
  query_rows  ClickHouse RowBinary answers written here from the column types of
           sinks/clickhouse/query.h, under every command, format and grouping
  auth     token files (comments, blank lines, spaces, refused lines) and Authorization values
  store_blobs  attribute lists (every kind; arrays and kvlists by Google's protobuf, one nested
           past the depth bound) and ClickHouse requests' content strings, written here from
           sinks/attrblob.h and sinks/clickhouse/content.h
"""
import gzip
import json
import os
import struct
import sys
import zlib

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
    # Regression: a v1.7 Profile whose packed location_indices (field 3) is present but empty,
    # before any vector was grown (NULL + 0).
    write(out, "regress-empty-packed.v1.7.pb", raw(1, 2, raw(2, 2, raw(2, 2, raw(3, 2, b"")))))


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


def wal_segment(seq, records, tail=b""):
    """A write-ahead log segment as sinks/wal.h describes it, CRCs by zlib."""
    out = b"LBWAL001" + struct.pack("<Q", seq)
    for r in records:
        head = struct.pack("<I", len(r))
        out += head + struct.pack("<I", zlib.crc32(r, zlib.crc32(head))) + r
    return out + tail


def clickhouse_record(batch_id, tables):
    """One request's record of the ClickHouse sink (sinks/clickhouse/walrec.c): "CHR", the
    schema version, the batch id, rows and bytes per table (frames, stacks, resources,
    samples), then the tables' bytes."""
    head = b"CHR\x01" + struct.pack("<Q", batch_id)
    for rows, data in tables:
        head += struct.pack("<II", rows, len(data))
    return head + b"".join(data for _, data in tables)


def seeds_wal(out):
    ch = clickhouse_record(0x1122334455667788, [(1, b"\x01" * 12), (1, b"st"), (0, b""), (2, b"samples!")])
    ch2 = clickhouse_record(0x1122334455667788, [(0, b""), (0, b""), (1, b"res"), (1, b"s")])
    fw = b"\x01" + profiles_request().SerializeToString()
    # mode 0: a segment parsed in memory (for segment 7)
    write(out, "parse", b"\x00" + wal_segment(7, [b"first", b"", b"x" * 300]))
    write(out, "parse-torn", b"\x00" + wal_segment(7, [b"first"], struct.pack("<II", 40, 0) + b"cut"))
    write(out, "parse-bad-crc", b"\x00" + wal_segment(7, [b"ok"])[:-1] + b"K")
    write(out, "parse-stop", b"\x30" + wal_segment(7, [b"a", b"b", b"c", b"d"]))
    write(out, "parse-torn-header", b"\x00" + b"LBWAL0")
    # mode 1: records appended, then read back (u16 length, bytes)
    recs = [ch, ch2, fw]
    write(out, "append-clickhouse", b"\x01" + b"".join(struct.pack("<H", len(r)) + r for r in recs[:2]))
    write(out, "append-forward", b"\x01" + struct.pack("<H", len(fw)) + fw)
    # mode 2: a segment file on disk (segment 3)
    write(out, "file-clickhouse", b"\x02" + wal_segment(3, [ch, ch2]))
    write(out, "file-two-batches", b"\x02" + wal_segment(3, [ch, clickhouse_record(9, [(0, b"")] * 4)]))
    write(out, "file-torn", b"\x02" + wal_segment(3, [ch], b"\xff\xff"))


def rb_str(s):
    """A RowBinary String: a varint length, then the bytes."""
    s = s.encode() if isinstance(s, str) else s
    n, head = len(s), b""
    while n >= 0x80:
        head += bytes([n & 0x7f | 0x80])
        n >>= 7
    return head + bytes([n]) + s


def seeds_query_rows(out):
    def sums_row(stack, found, group, weight, samples, stype="samples", unit="count"):
        return (struct.pack("<QB", stack, found) + rb_str(group) + rb_str(stype) + rb_str(unit)
                + struct.pack("<qQ", weight, samples))
    leaf, root, stack = 0xAAAA, 0xBBBB, 0x5555
    sums = sums_row(stack, 1, "java", 10, 2) + sums_row(0x9999, 0, "", 5, 1)
    stacks = struct.pack("<Q", stack) + bytes([2]) + struct.pack("<QQ", leaf, root)
    frames = (struct.pack("<Q", root) + rb_str("main") + rb_str("go")
              + struct.pack("<Q", leaf) + rb_str("leaf\x1b<&>") + rb_str("native"))
    def answer(opt, a, b, c):
        return bytes([opt]) + struct.pack("<HH", len(a), len(b)) + a + b + c
    # the options byte: bits 0-1 command, bit 2 JSON, bits 3-4 grouping, bit 5 --frame-type
    for opt in (0x00, 0x04, 0x09, 0x0e, 0x12, 0x25, 0x1a, 0x40):
        write(out, "answer-%02x" % opt, answer(opt, sums, stacks, frames))
    mixed = sums + sums_row(stack, 1, "go", -3, 1, "cpu", "nanoseconds")
    write(out, "mixed-types", answer(0x04, mixed, stacks, frames))
    write(out, "empty", answer(0x02, b"", b"", b""))


def attr_blob(attrs):
    """An attribute list as sinks/attrblob.h describes it: per attribute key, unit, kind byte,
    value; arrays and kvlists as Google's protobuf encodes ArrayValue and KeyValueList."""
    out = b""
    for key, unit, kind, value in attrs:
        out += rb_str(key) + rb_str(unit) + bytes([kind])
        if kind == 2:                       # bool
            out += bytes([value])
        elif kind in (3, 4):                # int, double bits
            out += struct.pack("<q" if kind == 3 else "<d", value)
        elif kind in (1, 5, 6, 7):          # string, bytes, array, kvlist
            out += rb_str(value)
    return out


def seeds_store_blobs(out):
    common = otlpgen.common
    arr = common.ArrayValue()
    arr.values.add().string_value = "a"
    arr.values.add().int_value = -7
    inner = arr.values.add().kvlist_value.values.add()
    inner.key, inner.value.bool_value = "deep", True
    kvl = common.KeyValueList()
    kv_ = kvl.values.add()
    kv_.key = "k"
    kv_.value.array_value.values.add().double_value = 2.5
    blob = attr_blob([("service.name", "", 1, b"svc"), ("flag", "", 2, 1), ("n", "By", 3, -42),
                      ("ratio", "1", 4, 0.25), ("raw", "", 5, b"\x00\xff"), ("list", "", 6, arr.SerializeToString()),
                      ("map", "", 7, kvl.SerializeToString()), ("none", "", 0, None)])
    write(out, "attrs", b"\x00" + blob)
    write(out, "attrs-empty", b"\x00")
    nested = common.ArrayValue()
    cur = nested
    for _ in range(20):                     # past the depth bound
        cur = cur.values.add().array_value
    write(out, "attrs-deep", b"\x00" + attr_blob([("deep", "", 6, nested.SerializeToString())]))

    def u64(v):
        return struct.pack("<Q", v)
    def lp(b):
        return rb_str(b)
    resource = b"R" + lp(blob) + bytes([3]) + rb_str("https://schema")
    profile = (b"P" + bytes([0]) + rb_str("scope") + rb_str("1.0") + rb_str("") + lp(attr_blob([("s", "", 1, b"x")]))
               + bytes([0]) + rb_str("samples") + rb_str("count") + rb_str("cpu") + rb_str("nanoseconds")
               + u64(10000000) + u64(1761887343253558841) + u64(5000000000) + rb_str(bytes(range(16)))
               + bytes([1]) + rb_str("pprof") + rb_str(b"\x1f\x8b") + lp(blob))
    write(out, "content", b"\x01" + resource + profile + b"R" + lp(b"") + bytes([0]) + rb_str("") + profile)
    write(out, "content-cut", b"\x01" + resource + profile[:-5])


def seeds_auth(out):
    def case(name, text, header):
        write(out, name, struct.pack("<H", len(text)) + text + header)
    case("one", b"s3cr3t-token_1.~+/==\n", b"Bearer s3cr3t-token_1.~+/==")
    case("comments", b"# tokens\n\n  abc \r\n\tdef\t\n#x\n", b"bearer   def ")
    case("prefix", b"abcd\nabc\n", b"Bearer abcde")
    case("refused", b"good\nnot a token\n", b"Bearer good")
    case("no-newline", b"tok=", b"BEARER tok=")
    case("empty", b"\n# nothing\n", b"Bearer ")
    case("basic", b"dXNlcjpwYXNz\n", b"Basic dXNlcjpwYXNz")


TARGETS = {"decode": seeds_decode, "speculate": seeds_decode, "check": seeds_check, "json": seeds_json, "traces": seeds_traces,
           "http": seeds_http, "grpc": seeds_grpc, "usdt": seeds_usdt, "wal": seeds_wal,
           "query_rows": seeds_query_rows, "auth": seeds_auth, "store_blobs": seeds_store_blobs}

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in TARGETS):
        sys.exit("usage: seeds.py OUTDIR [" + "|".join(TARGETS) + "]")
    TARGETS[sys.argv[2] if len(sys.argv) == 3 else "decode"](sys.argv[1])
