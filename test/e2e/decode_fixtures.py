#!/usr/bin/python3
"""`lazybackend decode` on the shared fixtures and on requests built by the reference encoder.

Expectations come from outside the code under test: counts from ebpf-jvm-go.expect.json
(computed with the reference protobuf library), the folded file from the fixtures, and
hand-written expectations for the built requests.
"""
import gzip
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
from server import run_cli  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
TMP = fx.tempdir("lb-decode-")


def decode(*args, stdin=None):
    return run_cli("decode", *args, stdin=stdin)


def tmpfile(name, data):
    return fx.write(TMP, name, data)


def test_fixture_counts(name):
    rc, out, err = decode(fx.path(name))
    check(f"decode {name} exits 0", rc == 0, err)
    c, frame_types, sample_types, _ = fx.text_counts(out)
    for key in ("resource_profiles", "profiles", "samples", "timestamps", "frames"):
        check(f"{name}: {key} = {EXPECT[key]}", c[key] == EXPECT[key], f"got {c[key]}")
    check(f"{name}: frames per frame type", frame_types == EXPECT["frame_types"],
          f"got {frame_types}\nwant {EXPECT['frame_types']}")
    check(f"{name}: samples per sample type", sample_types == EXPECT["sample_types"], f"got {sample_types}")
    check(f"{name}: values sum", c["values_sum"] == EXPECT["values_sum"], f"got {c['values_sum']}")


def test_fixture_folded(name):
    rc, out, err = decode("--format", "folded", fx.path(name))
    check(f"{name}: folded is byte-identical to ebpf-jvm-go.folded", rc == 0 and out == FOLDED,
          err or out[:400])
    check(f"{name}: {EXPECT['distinct_folded_stacks']} folded lines",
          out.count(b"\n") == EXPECT["distinct_folded_stacks"])


def test_golden_text():
    rc, out, err = decode(fx.path())
    golden = fx.golden("ebpf-jvm-go.v1.11.txt")
    check("text format matches the golden file", rc == 0 and out == golden,
          err or fx.first_difference(out, golden))


def test_stream_and_gzip():
    raw = fx.read()
    framed = b"".join(struct.pack(">I", len(raw)) + raw for _ in range(3))
    rc, out, err = decode("--format", "folded", tmpfile("stream.bin", framed))
    check("length-prefixed stream: one folded block per request", rc == 0 and out == FOLDED * 3, err)
    rc, out, err = decode("--format", "folded", tmpfile("fixture.pb.gz", gzip.compress(raw)))
    check("gzip-compressed capture decodes", rc == 0 and out == FOLDED, err)
    rc, out, err = decode("--format", "folded", "-", stdin=raw)
    check("stdin (-) decodes", rc == 0 and out == FOLDED, err)


def test_bad_inputs():
    raw = fx.read()
    cases = {
        "garbage": (b"\xff\xff\xff\xff garbage that is not protobuf", "malformed"),
        "truncated": (raw[: len(raw) // 2], "malformed"),
        "empty": (b"", "empty input"),
        "wire type mismatch": (b"\x0d\x00\x00\x00\x00", "malformed"),
    }
    for name, (data, needle) in cases.items():
        rc, out, err = decode(tmpfile(name.replace(" ", "_"), data))
        check(f"bad input '{name}': non-zero exit and a clear message", rc != 0 and needle in err,
              f"rc={rc} err={err!r}")
    rc, out, err = decode(os.path.join(TMP, "does-not-exist"))
    check("missing file: non-zero exit", rc != 0 and "No such file" in err, err)


def test_out_of_range_indices():
    b, p, good = otlpgen.one_stack_request()
    b.sample(p, good, timestamps=[1])
    b.sample(p, 99, timestamps=[2])                    # stack_index out of range
    b.sample(p, good, timestamps=[3], attributes=[500])  # attribute index out of range
    b.sample(p, good, timestamps=[4], link=7)           # link out of range
    b.sample(p, good, timestamps=[5])
    p2 = b.profile(b.req.resource_profiles[0].scope_profiles[0])
    p2.sample_type.type_strindex = 10000               # the whole profile is bad
    b.sample(p2, good, timestamps=[6])
    rc, out, err = decode(tmpfile("bad-indices.pb", b.bytes()))
    c = fx.text_counts(out).counts
    check("bad indices: the 2 good samples are still printed", c["samples"] == 2, out.decode()[:300])
    check("bad indices: exit status 1", rc == 1, err)
    check("bad indices: message names the first problem",
          "stack_index 99 out of range (stack_table has 2 entries)" in err and
          "rejected 2 profile(s) (3 sample(s) dropped)" in err, err)


def test_rejected_stack_then_its_location():
    """A location first met in a stack that is then rejected (its other location names a
    function that does not exist) must resolve the same when a later stack uses it: the
    decoder puts a stack's frames together in place, so this checks nothing of the rejected
    stack is kept for the location."""
    b = otlpgen.Builder()
    good_fn = b.function("work", "work.c")
    shared = b.location("native", [(good_fn, 11)])
    broken = b.location("native", [(4242, 1)])          # function_index out of range
    bad = b.stack([shared, broken])
    after = b.stack([b.location("native", [(b.function("leaf", "leaf.c"), 3)]), shared])
    p = b.profile(b.resource(service_name="svc"))
    b.sample(p, bad, timestamps=[1])
    b.sample(p, after, timestamps=[2])
    b.sample(p, after, timestamps=[3])
    rc, out, err = decode("--format", "folded", tmpfile("rejected-stack.pb", b.bytes()))
    check("rejected stack: the first problem is its bad function",
          "function_index 4242 out of range" in err, err)
    check("rejected stack: the later stack shows its shared location whole, once a sample",
          out.decode().splitlines() == ["work;leaf 2"], out.decode())


def test_view_details():
    b = otlpgen.Builder()
    inner, outer = b.function("inlined_fn", "a.c"), b.function("caller_fn", "a.c")
    libc = b.mapping("libc.so.6", build_id="abcdef0123")
    loc_inline = b.location("native", [(inner, 10), (outer, 20)])
    loc_unsym = b.location("native", mapping=libc, address=0x29d64)
    loc_nomap = b.location("native", address=0x1234)
    stack = b.stack([loc_unsym, loc_nomap, loc_inline])
    link = b.link(bytes(range(16)), bytes(range(8)))
    scope = b.resource(container_id="c1", process_pid=42)
    p = b.profile(scope, "off_cpu", "nanoseconds")
    b.sample(p, stack, timestamps=[1758603335517877230, 1758603335517877231], values=[100, 250],
             attributes=[b.attr("thread.name", "t\x1b[31mred")], link=link)
    rc, out, err = decode(tmpfile("details.pb", b.bytes()))
    text = out.decode()
    want = [
        "  container.id: c1",
        "  process.pid: 42",
        "  Scope: otlpgen 1",
        "  ProfileID: 000102030405060708090a0b0c0d0e0f",
        "  Duration: 5s",
        "  SampleType: [off_cpu, nanoseconds]",
        "  Timestamp[1]: 1758603335517877231 (2025-09-23 04:55:35.517877231 +0000 UTC)",
        "  Value[0]: 100",
        "  Value[1]: 250",
        "  Link: trace_id=000102030405060708090a0b0c0d0e0f, span_id=0001020304050607",
        "  thread.name: t\\x1b[31mred",
        "Instrumentation: native, Function: , File: , Line: 0, Column: 0, Address: 0x29d64, Mapping: libc.so.6, BuildID: gnu:abcdef0123",
        "Instrumentation: native, Function: , File: , Line: 0, Column: 0, Address: 0x1234, Mapping: <unknown>, BuildID: ",
        "Instrumentation: native, Function: inlined_fn, File: a.c, Line: 10, Column: 0\n"
        "Instrumentation: native, Function: caller_fn, File: a.c, Line: 20, Column: 0",
    ]
    check("view details decode exits 0", rc == 0, err)
    for w in want:
        check(f"text shows {w.splitlines()[0][:70]!r}", w in text, text)
    check("no raw escape byte reaches the terminal", "\x1b" not in text)
    rc, out, err = decode("--format", "folded", tmpfile("details.pb", b.bytes()))
    check("folded: inline order, mapping+address names, value weight",
          out == b"caller_fn;inlined_fn;+0x1234;libc.so.6+0x29d64 350\n", out)


for layout in ("ebpf-jvm-go.v1.11.pb", "ebpf-jvm-go.v1.11-ascending.pb"):
    run(f"counts {layout}", lambda layout=layout: test_fixture_counts(layout))
    run(f"folded {layout}", lambda layout=layout: test_fixture_folded(layout))
run("golden text", test_golden_text)
run("stream and gzip", test_stream_and_gzip)
run("bad inputs", test_bad_inputs)
run("out-of-range indices", test_out_of_range_indices)
run("rejected stack, then its location", test_rejected_stack_then_its_location)
run("view details", test_view_details)
done()
