#!/usr/bin/python3
"""unknown_fields.py - a field no proto layout has is kept, shown and stored, never a reason to
refuse the request (protobuf's rule: a reader goes on past fields it does not know).

The requests are built by Google's protobuf in each layout (lib/otlpgen.py and
lib/otlpgen_layouts.py); unknown fields are added at eight depths (the request, a resource, a
scope, a profile, a sample, the dictionary, a location, a mapping) by merging hand-encoded
fields into the reference library's messages, which keeps them as unknown fields and writes
them back out. Each request goes over gRPC (grpcio) and OTLP/HTTP (curl) to a real server and
through `decode` into SQLite; every sample must arrive (counted from the generator, not from
lazybackend), and each unknown field must be shown in text and JSON with its path, message,
number, wire type and size, stored in the unknown_fields table with its bytes, counted in the
request's log line and in /metrics. Trace requests follow the same rule (accepted, counted,
listed). Refusals stay for what makes data unreadable: a wire type
a known field cannot have.
"""
import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from otlpgen_layouts import raw_field  # noqa: E402
from scrape import scrape  # noqa: E402
from server import TRACES_EXPORT, Server, run_cli, wait_until  # noqa: E402

TMP = fx.tempdir("lb-unknown-")
MODULES = {"v1.11": otlpgen.service, "v1.9": L.p9, "v1.8": L.p8, "v1.7": L.p7}
WIRE = {0: "VARINT", 1: "I64", 2: "LEN", 5: "I32"}
NESTED = raw_field(1, 0, 5) + raw_field(2, 2, b"x")


def content():
    """(request in v1.11, samples, timestamps): two resources, three samples."""
    b = otlpgen.Builder()
    libc = b.mapping("libc.so.6", build_id="abcdef")
    fn = b.function("main", "main.c")
    st = b.stack([b.location("native", mapping=libc, address=0x1234), b.location("go", [(fn, 7)])])
    p1 = b.profile(b.resource(service_name="a"))
    b.sample(p1, st, timestamps=[1, 2], attributes=[b.attr("thread.name", "t1")])
    b.sample(p1, st, timestamps=[3], attributes=[b.attr("thread.name", "t2")])
    p2 = b.profile(b.resource(service_name="b"))
    b.sample(p2, st, timestamps=[4, 5, 6], attributes=[b.attr("thread.name", "t3")])
    samples = sum(len(p.samples) for rp in b.req.resource_profiles for sp in rp.scope_profiles for p in sp.profiles)
    ts = sum(len(s.timestamps_unix_nano) for rp in b.req.resource_profiles for sp in rp.scope_profiles
             for p in sp.profiles for s in p.samples)
    return b.req, samples, ts


def with_unknown(layout):
    """(bytes, [(path, message, number, wire type, payload)]) of the request in `layout` with
    one unknown field at each depth."""
    req, _, _ = content()
    msg = MODULES[layout].ExportProfilesServiceRequest()
    msg.ParseFromString(L.encode(req, layout))
    rp = msg.resource_profiles[0]
    profile = rp.scope_profiles[0].profiles[0]
    samples = profile.sample if layout == "v1.7" else profile.samples
    at = "resource_profiles[0].scope_profiles[0].profiles[0]"
    fields = [
        ("", "ExportProfilesServiceRequest", msg, 15, 2, b"top-level-zq"),
        ("resource_profiles[0].resource", "Resource", rp.resource, 20, 0, 777),
        ("resource_profiles[0].scope_profiles[0].scope", "InstrumentationScope", rp.scope_profiles[0].scope,
         21, 1, bytes(range(1, 9))),
        (at, "Profile", profile, 22, 2, NESTED),
        (at + ".samples[1]", "Sample", samples[1], 23, 5, b"\x01\x02\x03\x04"),
        ("dictionary", "ProfilesDictionary", msg.dictionary, 24, 2, b"\xff\xfe\x00binary"),
        ("dictionary.location_table[1]", "Location", msg.dictionary.location_table[1], 25, 0, 1),
        ("dictionary.mapping_table[1]", "Mapping", msg.dictionary.mapping_table[1], 1000, 2, b"mapping-extra"),
    ]
    out = []
    for path, name, target, number, wt, payload in fields:
        target.MergeFromString(raw_field(number, wt, payload))
        raw = L._varint(payload) if wt == 0 else payload
        out.append((path, name, number, WIRE[wt], raw))
    return msg.SerializeToString(), out


def text_line(path, name, number, wt, raw):
    """The start of the text line of an unknown field (docs/output.md)."""
    return (f"  Unknown: {path or '(request)'}: unknown {name} field {number} ({wt}, {len(raw)} "
            f"byte{'' if len(raw) == 1 else 's'}): ")


def test_decode(layout):
    data, unknown = with_unknown(layout)
    _, n_samples, n_ts = content()
    path = fx.write(TMP, f"unknown.{layout}.pb", data)
    rc, out, err = run_cli("decode", path)
    check(f"{layout}: accepted (decode exits 0)", rc == 0, err)
    c, _, _, layouts = fx.text_counts(out)
    check(f"{layout}: read as {layout}, every sample and timestamp delivered ({n_samples}, {n_ts})",
          c["samples"] == n_samples and c["timestamps"] == n_ts and set(layouts) == {layout}, (c, layouts))
    lines = out.decode().split("\n")
    missing = [u for u in unknown if not any(x.startswith(text_line(*u)) for x in lines)]
    check(f"{layout}: text shows each unknown field with its path, message, number, wire type, size",
          not missing, "\n".join(x for x in lines if "Unknown" in x) + f"\nmissing: {missing}")
    want_values = {'"top-level-zq"', "777", "message {1: VARINT, 2: LEN}", "0x0807060504030201",
                   "0x04030201", "bytes fffe0062696e617279", '"mapping-extra"', "1"}
    shown = {m.group(1) for x in lines for m in [re.search(r"\((?:VARINT|I64|LEN|I32), \d+ bytes?\): (.*)$", x)]
             if m and x.startswith("  Unknown: ")}
    check(f"{layout}: ... and what the wire says they hold (strings, varints, a nested message, "
          f"fixed values in hex, other bytes in hex)", shown == want_values, shown)
    check(f"{layout}: in the request's first resource block only",
          sum(x.startswith("  Unknown: ") for x in lines) == len(unknown))

    rc, out, err = run_cli("decode", "--detect", path)
    listed = [x for x in out.decode().split("\n") if x.startswith("  unknown: ")]
    check(f"{layout}: decode --detect: {layout}, and one line per unknown field",
          rc == 0 and re.search(f": request 0: {re.escape(layout)}( |$)", out.decode().split("\n")[0]) and
          len(listed) == len(unknown) and
          all(any(x.startswith(f"  unknown: {p or '(request)'}: {n} field {num} ({wt}, {len(raw)} bytes): ")
                  for x in listed) for p, n, num, wt, raw in unknown),
          out.decode() + err)

    rc, out, err = run_cli("decode", "--format", "json", path)
    objs = [json.loads(x) for x in out.decode().splitlines()] if rc == 0 else []
    want = sorted((p, n, num, wt, len(raw)) for p, n, num, wt, raw in unknown)
    got = [sorted((u["path"], u["message"], u["field"], u["wire_type"], u["size"])
                  for u in o["request"]["unknown_fields"]) for o in objs]
    check(f"{layout}: JSON: every line's request lists them, and counts them",
          len(objs) == n_samples and all(g == want for g in got) and
          all(o["request"]["unknown_fields_total"] == len(unknown) for o in objs), got[:1])

    db = os.path.join(TMP, f"unknown.{layout}.db")
    rc, _, err = run_cli("decode", "--sink", "sqlite", "--sqlite-path", db, path)
    con = sqlite3.connect(db)
    rows = sorted(con.execute("SELECT path, message, field, wire_type, size, value FROM unknown_fields"))
    total = con.execute("SELECT unknown_fields FROM requests").fetchall()
    stored = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    con.close()
    want_rows = sorted((p, n, num, {v: k for k, v in WIRE.items()}[wt], len(raw), raw)
                       for p, n, num, wt, raw in unknown)
    check(f"{layout}: SQLite stores each one with its bytes, and the request's count",
          rc == 0 and rows == want_rows and total == [(len(unknown),)] and stored == n_samples,
          err or (rows, total, stored))


def test_servers():
    srv = Server("--format", "json", http=True)
    sent, n_samples_each = 0, content()[1]
    try:
        for layout in L.LAYOUTS:
            data, unknown = with_unknown(layout)
            r = srv.export(data)
            check(f"gRPC {layout}: OK", r.status == "OK", r.details)
            resp = hg.curl(srv.url + "/v1development/profiles", data, "application/x-protobuf")
            check(f"HTTP {layout}: 200", resp.status == 200, resp)
            sent += 2

        def lines():
            return [json.loads(x) for x in srv.stdout().decode().splitlines()]
        ok = wait_until(lambda: len(lines()) >= sent * n_samples_each, 10 * fx.SLOW)
        objs = lines()
        by_seq = {}
        for o in objs:
            by_seq.setdefault(o["request"]["sequence"], []).append(o)
        check("every sample of every request delivered, each line with its request's 8 unknown fields",
              len(by_seq) == sent and all(len(v) == n_samples_each for v in by_seq.values()) and
              all(o["request"]["unknown_fields_total"] == 8 and len(o["request"]["unknown_fields"]) == 8
                  for o in objs), (ok, len(objs), {k: len(v) for k, v in by_seq.items()}))
        page = scrape(srv.url)
        check("/metrics: lazybackend_unknown_fields_total counts them (8 per request)",
              page.value("lazybackend_unknown_fields_total", signal="profiles") == 8 * sent and
              page.value("lazybackend_unknown_fields_total", signal="traces") == 0,
              page.series("lazybackend_unknown_fields_total"))
    finally:
        srv.stop()
        err = srv.stderr()
        srv.cleanup()
    logged = re.findall(r"export from .*layout (v1\.\d+), 8 unknown field\(s\) kept\)", err)
    check("the log line of each request counts them", len(logged) == sent, err[-1500:])


def trace_request():
    """(bytes, spans): two spans, with unknown fields in the request, a span and an event."""
    req = hg.trace_service.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in (1, 2):
        sp = ss.spans.add()
        sp.trace_id, sp.span_id, sp.name = bytes([i] * 16), bytes([i] * 8), f"span-{i}"
        sp.start_time_unix_nano, sp.end_time_unix_nano = 10, 20
    ev = ss.spans[1].events.add()
    ev.name = "ev"
    req.MergeFromString(raw_field(7, 2, b"trace-top"))
    ss.spans[0].MergeFromString(raw_field(40, 0, 9))
    ev.MergeFromString(raw_field(9, 1, bytes(8)))
    return req.SerializeToString(), 2


def test_traces():
    """Traces: the same rule, the fields are accepted and counted."""
    data, n_spans = trace_request()
    srv = Server("--format", "json", http=True)
    try:
        r = srv.export(data, method=TRACES_EXPORT)
        check("traces with unknown fields over gRPC: OK", r.status == "OK", r.details)
        resp = hg.curl(srv.url + "/v1/traces", data, "application/x-protobuf")
        check("... over HTTP: 200", resp.status == 200, resp)
        wait_until(lambda: len(srv.stdout().decode().splitlines()) >= 2 * n_spans, 10 * fx.SLOW)
        objs = [json.loads(x) for x in srv.stdout().decode().splitlines()]
        paths = sorted((u["path"], u["message"], u["field"], u["wire_type"]) for u in objs[0]["request"]["unknown_fields"]) if objs else []
        check("every span delivered, each line with the request's 3 unknown fields",
              len(objs) == 2 * n_spans and all(o["request"]["unknown_fields_total"] == 3 for o in objs) and
              paths == [("", "ExportTraceServiceRequest", 7, "LEN"),
                        ("resource_spans[0].scope_spans[0].spans[0]", "Span", 40, "VARINT"),
                        ("resource_spans[0].scope_spans[0].spans[1].events[0]", "Event", 9, "I64")],
              (len(objs), paths))
        page = scrape(srv.url)
        check("/metrics: lazybackend_unknown_fields_total{signal=traces} counts them",
              page.value("lazybackend_unknown_fields_total", signal="traces") == 6,
              page.series("lazybackend_unknown_fields_total"))
    finally:
        srv.stop()
        err = srv.stderr()
        srv.cleanup()
    check("the traces log line counts them", len(re.findall(r"trace export from .*, 3 unknown field\(s\) kept\)", err)) == 2,
          err[-1500:])


def test_bounded():
    """Unknown fields past the 32 recorded are counted, not described; a request of only
    unknown fields is still accepted."""
    req, n_samples, _ = content()
    extra = b"".join(raw_field(100 + i, 0, i) for i in range(40))
    path = fx.write(TMP, "many.pb", req.SerializeToString() + extra)
    rc, out, err = run_cli("decode", path)
    lines = out.decode().split("\n")
    check("40 unknown fields: 32 described, the rest counted",
          rc == 0 and sum(x.startswith("  Unknown: (request): ") for x in lines) == 32 and
          "  Unknown: 8 more unknown field(s), counted but not described" in lines, err)
    c, _, _, _ = fx.text_counts(out)
    check("... and every sample delivered", c["samples"] == n_samples, c)
    rc, out, err = run_cli("decode", "--format", "folded", fx.write(TMP, "only-unknown.pb", extra))
    check("a request of unknown fields only: accepted, nothing to show", rc == 0 and out == b"", err)


def test_still_refused():
    """A field a layout knows, with a wire type it cannot have, makes the data unreadable."""
    req, _, _ = content()
    odd = raw_field(1, 2, raw_field(2, 2, raw_field(2, 2, raw_field(2, 2, raw_field(1, 2, b"\x01")))))
    rc, out, err = run_cli("decode", fx.write(TMP, "odd.pb", req.SerializeToString() + odd))
    check("a Sample whose stack_index is LEN: refused, naming the layouts tried",
          rc == 1 and "matches no known proto layout" in err, err)


for lay in L.LAYOUTS:
    run(f"decode {lay}", lambda lay=lay: test_decode(lay))
run("servers", test_servers)
run("traces", test_traces)
run("bounded", test_bounded)
run("still refused", test_still_refused)
done()
