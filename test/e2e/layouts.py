#!/usr/bin/python3
"""layouts.py - every proto layout lazybackend reads is detected, told apart and decoded into
the same view, by `lazybackend decode` and over gRPC.

Expectations come from outside the code under test: the fixtures' expect.json and .folded
file (computed with the reference protobuf library), and hand-written expectations for
requests that the reference encoder builds in each layout (lib/otlpgen_layouts.py). Edge
cases: shapes where layouts look alike on the wire, empty profiles and dictionaries, requests
that fit no layout, and every wrong --proto-version pinned on every fixture.
Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures). Only 127.0.0.1 is used;
every wait is bounded.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from otlpgen_layouts import raw_field  # noqa: E402
from server import Server, export, run_cli as lb  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
TMP = fx.tempdir("lb-layouts-")
FIXTURES = {
    "ebpf-jvm-go.v1.8.pb": "v1.8",
    "ebpf-jvm-go.v1.9.pb": "v1.9",
    "ebpf-jvm-go.v1.11.pb": "v1.11",
    "ebpf-jvm-go.v1.11-ascending.pb": "v1.11",
}


def crashed(rc, err):
    return rc < 0 or rc > 2 or "Sanitizer" in err or "runtime error" in err


def tmpfile(name, data):
    return fx.write(TMP, name, data)


def detected(path, *args):
    """(rc, first line's verdict, whole output) of `decode --detect`."""
    rc, out, err = lb("decode", "--detect", *args, path)
    text = out.decode(errors="replace")
    first = text.splitlines()[0] if text else ""
    return rc, first.split(": request 0: ", 1)[-1], text + err


def is_layout(verdict, layout):
    return verdict == layout or verdict.startswith(layout + " (")


# --------------------------------------------------------------------------- fixtures

def test_fixture(name, layout):
    path = fx.path(name)
    rc, verdict, text = detected(path)
    check(f"{name}: detected as {layout}", rc == 0 and is_layout(verdict, layout), text)
    rc, verdict, text = detected(path, "--proto-version", layout)
    check(f"{name}: fits {layout} when pinned", rc == 0 and is_layout(verdict, layout), text)

    rc, out, err = lb("decode", path)
    check(f"{name}: decode exits 0", rc == 0, err)
    c, frame_types, sample_types, layouts = fx.text_counts(out)
    for key in ("resource_profiles", "profiles", "samples", "timestamps", "frames"):
        check(f"{name}: {key} = {EXPECT[key]}", c[key] == EXPECT[key], f"got {c[key]}")
    check(f"{name}: frames per frame type", frame_types == EXPECT["frame_types"], frame_types)
    check(f"{name}: samples per sample type", sample_types == EXPECT["sample_types"], sample_types)
    check(f"{name}: values_sum = {EXPECT['values_sum']}", c["values_sum"] == EXPECT["values_sum"],
          c["values_sum"])
    check(f"{name}: one 'Layout: {layout}' line per resource",
          layouts == {layout: EXPECT["resource_profiles"]}, layouts)

    rc, out, err = lb("decode", "--format", "folded", path)
    check(f"{name}: folded is byte-identical to ebpf-jvm-go.folded", rc == 0 and out == FOLDED,
          err or out[:300])


def test_wrong_pins(name, layout):
    """A wrong pinned layout errors out or shows different output, unless the detector says
    that layout reads every field of this request the same way: then the output is right."""
    path = fx.path(name)
    _, _, detection = detected(path)
    for other in L.LAYOUTS:
        if other == layout:
            continue
        rc, out, err = lb("decode", "--format", "folded", "--proto-version", other, path)
        same = f"also fits {other}, which reads every field present the same way" in detection
        if same:
            ok = rc == 0 and out == FOLDED
        else:
            ok = (rc != 0 and out == b"" and err.strip() != "") or (rc == 0 and out != FOLDED)
        check(f"{name} pinned as {other}: {'equivalent, same output' if same else 'error or different output'}",
              ok and not crashed(rc, err), f"rc={rc} err={err[:400]} out={out[:200]!r}")
        if not same and rc != 0:
            check(f"{name} pinned as {other}: the message names the pinned layout",
                  f"does not fit the proto layout {other}" in err, err[:400])


def test_alias_and_bad_version():
    rc, verdict, text = detected(fx.path(), "--proto-version", "v1.10")
    check("--proto-version v1.10 is v1.11", rc == 0 and verdict == "v1.11", text)
    rc, _, err = lb("decode", "--proto-version", "v2.0", fx.path())
    check("--proto-version v2.0 is refused (exit 2)", rc == 2 and "--proto-version" in err, err)
    rc, out, err = lb("--help")
    check("usage text lists --proto-version and --detect",
          rc == 0 and b"--proto-version" in out and b"--detect" in out, out[-600:])


# --------------------------------------------------------------------------- built requests

COMMON_FOLDED = b"main;libc.so.6+0x1234 1\nmain;work 353\n"


def common_request():
    """One resource, a CPU and an off-CPU profile, two stacks (Go frames and an unsymbolized
    libc frame), sample attributes, values parallel to timestamps."""
    b = otlpgen.Builder()
    work, main = b.function("work", "work.c"), b.function("main", "main.c")
    libc = b.mapping("libc.so.6", build_id="abcd")
    l_work, l_main = b.location("go", [(work, 7)]), b.location("go", [(main, 3)])
    l_libc = b.location("native", mapping=libc, address=0x1234)
    s1, s2 = b.stack([l_work, l_main]), b.stack([l_libc, l_main])
    scope = b.resource(service_name="svc")
    p = b.profile(scope)
    b.sample(p, s1, timestamps=[1, 2, 3], attributes=[b.attr("thread.name", "a"), b.attr("thread.id", 7)])
    b.sample(p, s2, timestamps=[4], attributes=[b.attr("thread.name", "a")])
    p2 = b.profile(scope, "off_cpu", "nanoseconds")
    b.sample(p2, s1, timestamps=[5, 6], values=[100, 250], attributes=[b.attr("thread.id", 7)])
    return b


def test_built_layouts():
    req = common_request().req
    texts = {}
    for layout in L.LAYOUTS:
        path = tmpfile(f"common.{layout}.pb", L.encode(req, layout))
        rc, verdict, text = detected(path)
        check(f"built {layout} request: detected as {layout}", rc == 0 and is_layout(verdict, layout), text)
        if layout == "v1.9":
            # The 16-byte profile_id at Profile field 7 is also a valid v1.8 comment_strindices.
            check("built v1.9 request: ambiguous with v1.8, read differently",
                  verdict.startswith("v1.9 (also fits v1.8") and
                  "Profile field 7 is profile_id in v1.9, comment_strindices in v1.8" in text, text)
        else:
            check(f"built {layout} request: unambiguous", verdict == layout, text)
        rc, out, err = lb("decode", "--format", "folded", path)
        check(f"built {layout} request: folded as expected", rc == 0 and out == COMMON_FOLDED, err or out)
        rc, out, err = lb("decode", path)
        c, frame_types, _, layouts = fx.text_counts(out)
        got = (c["resource_profiles"], c["profiles"], c["samples"], c["timestamps"], c["frames"],
               c["values_sum"])
        check(f"built {layout} request: 1 resource, 2 profiles, 3 samples, 6 timestamps, 6 frames, values 350",
              rc == 0 and got == (1, 2, 3, 6, 6, 350), f"{got} {err}")
        check(f"built {layout} request: frame types and Layout line",
              frame_types == {"go": 5, "native": 1} and layouts == {layout: 1}, (frame_types, layouts))
        texts[layout] = out.decode().replace(f"  Layout: {layout}\n", "")
    for layout in ("v1.9", "v1.8", "v1.7"):
        check(f"built {layout} request: the same text as v1.11 but for the Layout line",
              texts[layout] == texts["v1.11"], fx.first_difference(texts[layout], texts["v1.11"]))


def no_attribute_request(values):
    b = otlpgen.Builder()
    fn = b.function("work", "work.c")
    stack = b.stack([b.location("go", [(fn, 1)])])
    p = b.profile(b.resource(service_name="svc"), "off_cpu" if values else "samples",
                  "nanoseconds" if values else "count")
    p.profile_id = b""
    b.sample(p, stack, timestamps=[10, 11], values=[100, 250] if values else [])
    return b.req


def test_v19_without_sample_attributes():
    """Without sample attributes a v1.9 Sample {1, 2, 5} is also a valid v1.11 Sample whose
    field 2 means attribute_indices: detection says so and picks v1.11 (the newest); the
    values then fail as attribute indices, loudly; pinning v1.9 reads them right."""
    path = tmpfile("v19-noattr-values.pb", L.encode(no_attribute_request(True), "v1.9"))
    rc, verdict, text = detected(path)
    check("v1.9 without sample attributes: reported as ambiguous (v1.11, also fits v1.9)",
          rc == 0 and verdict.startswith("v1.11 (also fits v1.9") and "reads some fields differently" in verdict,
          text)
    check("v1.9 without sample attributes: the evidence names the field read differently",
          "Sample field 2 is attribute_indices in v1.11, values in v1.9" in text, text)
    rc, out, err = lb("decode", "--format", "folded", path)
    check("v1.9 without sample attributes, auto: values rejected as attribute indices, not silently",
          rc == 1 and "attribute index 100 out of range" in err and not crashed(rc, err), f"rc={rc} {err}")
    rc, out, err = lb("decode", "--format", "folded", "--proto-version", "v1.9", path)
    check("v1.9 without sample attributes, pinned v1.9: values read as values",
          rc == 0 and out == b"work 350\n", f"rc={rc} {err} {out!r}")

    path = tmpfile("v19-noattr-cpu.pb", L.encode(no_attribute_request(False), "v1.9"))
    rc, verdict, text = detected(path)
    check("v1.9 CPU samples without attributes or values: every layout but v1.7 reads them the same",
          rc == 0 and verdict.startswith("v1.11 (also fits v1.9 v1.8") and
          "which reads every field present the same way" in verdict, text)
    rc, out, err = lb("decode", "--format", "folded", path)
    check("v1.9 CPU samples without attributes: decoded exactly", rc == 0 and out == b"work 2\n", err or out)


def test_profile_without_samples():
    b = otlpgen.Builder()
    b.profile(b.resource(service_name="svc"))
    for layout in L.LAYOUTS:
        path = tmpfile(f"nosamples.{layout}.pb", L.encode(b.req, layout))
        rc, verdict, text = detected(path)
        check(f"profile without samples ({layout}): detected, evidence says no samples",
              rc == 0 and (is_layout(verdict, layout) or "also fits " + layout in text or
                           "also fits" in verdict) and "no samples in the request" in text, text)
        rc, out, err = lb("decode", path)
        c = fx.text_counts(out).counts
        check(f"profile without samples ({layout}): 1 profile, 0 samples, exit 0",
              rc == 0 and c["profiles"] == 1 and c["samples"] == 0, f"rc={rc} {err}")


def test_empty_dictionary():
    svc = otlpgen.service
    for name, with_dictionary in (("empty dictionary", True), ("no dictionary", False)):
        req = svc.ExportProfilesServiceRequest()
        if with_dictionary:
            req.dictionary.SetInParent()
        p = req.resource_profiles.add().scope_profiles.add().profiles.add()
        p.samples.add().timestamps_unix_nano.extend([1, 2])
        path = tmpfile(name.replace(" ", "_") + ".pb", req.SerializeToString())
        rc, verdict, text = detected(path)
        check(f"{name}: detected as v1.11 (every layout reads the nulls alike)",
              rc == 0 and verdict.startswith("v1.11") and
              (with_dictionary or "no dictionary in the request" in text), text)
        rc, out, err = lb("decode", path)
        c = fx.text_counts(out).counts
        check(f"{name}: one sample with an empty stack, exit 0",
              rc == 0 and c["samples"] == 1 and c["frames"] == 0 and c["timestamps"] == 2,
              f"rc={rc} {err} {out[:300]!r}")
        rc, out, err = lb("decode", "--format", "folded", path)
        check(f"{name}: folded does not crash", not crashed(rc, err), err)


def test_reference_attributes():
    """KeyValue.key_strindex exists from v1.10 on only."""
    b = common_request()
    kv = b.req.resource_profiles[0].resource.attributes.add()
    kv.key_strindex = b.s("host.name")
    kv.value.string_value = "h1"
    path = tmpfile("key-strindex.pb", b.bytes())
    rc, verdict, text = detected(path)
    check("KeyValue.key_strindex: v1.11, the layout that has it", rc == 0 and verdict == "v1.11", text)
    rc, out, err = lb("decode", path)
    check("KeyValue.key_strindex: the key is resolved", rc == 0 and b"  host.name: h1\n" in out, err)


def test_v17_optional_indices():
    """v1.7's mapping_index and link_index are `optional`: an explicit 0 is table entry 0 (the
    tables have no null entry), an absent one is "none"."""
    req = L.p7.ExportProfilesServiceRequest()
    d = req.dictionary
    d.string_table.extend(["", "libfoo.so"])
    d.mapping_table.add(filename_strindex=1, memory_start=0x1000, memory_limit=0x2000)
    d.location_table.add(mapping_index=0, address=0x10)      # explicit 0: mapping_table[0]
    d.location_table.add(address=0x20)                       # absent: no mapping
    d.link_table.add(trace_id=bytes(range(16)), span_id=bytes(range(8)))
    p = req.resource_profiles.add().scope_profiles.add().profiles.add()
    p.sample_type.add()
    p.location_indices.extend([0, 1])
    p.sample.add(locations_start_index=0, locations_length=1, timestamps_unix_nano=[1], link_index=0)
    p.sample.add(locations_start_index=1, locations_length=1, timestamps_unix_nano=[2, 3])
    path = tmpfile("v17-optional.pb", req.SerializeToString())
    rc, verdict, text = detected(path)
    check("v1.7 optional indices: detected as v1.7", rc == 0 and verdict == "v1.7", text)
    rc, out, err = lb("decode", "--format", "folded", path)
    check("v1.7 optional indices: explicit mapping 0 is libfoo.so, absent is none",
          rc == 0 and out == b"+0x20 2\nlibfoo.so+0x10 1\n", f"rc={rc} {err} {out!r}")
    rc, out, err = lb("decode", path)
    check("v1.7 optional indices: explicit link 0 is link_table[0], absent is no link",
          rc == 0 and out.decode().count("  Link: trace_id=000102030405060708090a0b0c0d0e0f") == 1,
          f"rc={rc} {err}")


def test_no_layout_fits():
    base = common_request().bytes()
    # A Sample whose field 1 is LEN: a varint in every layout (stack_index, v1.7's
    # locations_start_index). An unknown field would not do: it is kept, not refused.
    odd = raw_field(1, 2, raw_field(2, 2, raw_field(2, 2, raw_field(2, 2, raw_field(1, 2, b"\x01")))))
    path = tmpfile("no-layout.pb", base + odd)
    rc, out, err = lb("decode", path)
    check("no layout fits: exit 1, the message names every layout tried",
          rc == 1 and "matches no known proto layout (tried v1.11 v1.9 v1.8 v1.7)" in err and
          "Sample field 1 (stack_index) is LEN, expected VARINT" in err, f"rc={rc} {err}")
    rc, verdict, text = detected(path)
    check("no layout fits: --detect exits 1 and says so", rc == 1 and verdict == "fits no proto layout", text)
    rc, out, err = lb("decode", tmpfile("truncated.pb", base[: len(base) // 2]))
    check("truncated request: refused, v1.11 says malformed", rc == 1 and
          "v1.11: malformed ExportProfilesServiceRequest field 2: 323 bytes run past the end" in err, err)
    fixture = fx.read()
    rc, out, err = lb("decode", tmpfile("truncated-fixture.pb", fixture[: len(fixture) // 2]))
    check("truncated fixture (dictionary first): malformed in every layout",
          rc == 1 and "malformed request (in every proto layout): " in err, err)


# --------------------------------------------------------------------------- gRPC

def call(channel, data):
    """(status code name, details) of one Export."""
    r = export(channel, data)
    return r.status, r.details


def stopped(srv):
    """(exit code after SIGTERM, stdout, stderr) of a server, its files then removed."""
    rc = srv.stop(timeout=20)
    out, err = srv.stdout(), srv.stderr()
    srv.cleanup()
    return rc, out, err


def test_grpc():
    srv = Server("--format", "folded")
    try:
        ch = srv.new_channel()
        for name in ("ebpf-jvm-go.v1.8.pb", "ebpf-jvm-go.v1.9.pb", "ebpf-jvm-go.v1.11.pb",
                     "ebpf-jvm-go.v1.11-ascending.pb"):
            code, details = call(ch, fx.read(name))
            check(f"gRPC {name}: OK", code == "OK", details)
        base = common_request().bytes()
        odd = raw_field(1, 2, raw_field(2, 2, raw_field(2, 2, raw_field(2, 2, raw_field(1, 2, b"\x01")))))
        code, details = call(ch, base + odd)
        check("gRPC request fitting no layout: INVALID_ARGUMENT naming the layouts tried",
              code == "INVALID_ARGUMENT" and "tried v1.11 v1.9 v1.8 v1.7" in details, f"{code} {details}")
        ch.close()
        ch2 = srv.new_channel()     # a second connection: its layout is logged again
        code, details = call(ch2, fx.read())
        check("gRPC second connection: OK", code == "OK", details)
        ch2.close()
    finally:
        rc, out, err = stopped(srv)
    check("gRPC: server stopped cleanly", rc == 0 and not crashed(rc, err), err[-800:])
    check("gRPC: each fixture's folded output is ebpf-jvm-go.folded", out == FOLDED * 5,
          f"{len(out)} bytes, want {len(FOLDED) * 5}")
    logs = [ln for ln in err.splitlines() if ": proto layout " in ln]
    want = [": proto layout v1.8", ": proto layout changed from v1.8 to v1.9",
            ": proto layout changed from v1.9 to v1.11", ": proto layout v1.11"]
    check("gRPC: the layout is logged once per connection and on change (4 lines)",
          len(logs) == 4 and all(w in ln for w, ln in zip(want, logs)) and
          "info" in logs[0].lower(), "\n".join(logs) or err[-800:])

    srv = Server("--format", "folded", "--proto-version", "v1.9")
    try:
        ch = srv.new_channel()
        code, details = call(ch, fx.read())
        check("gRPC pinned v1.9, v1.11 request: INVALID_ARGUMENT, does not fit v1.9",
              code == "INVALID_ARGUMENT" and "does not fit the proto layout v1.9" in details, f"{code} {details}")
        code, details = call(ch, fx.read("ebpf-jvm-go.v1.9.pb"))
        check("gRPC pinned v1.9, v1.9 request: OK", code == "OK", details)
        ch.close()
    finally:
        rc, out, err = stopped(srv)
    check("gRPC pinned: only the v1.9 request reached the sink", rc == 0 and out == FOLDED, err[-800:])


for fixture, fixture_layout in FIXTURES.items():
    run(f"fixture {fixture}", lambda f=fixture, la=fixture_layout: test_fixture(f, la))
    run(f"wrong pins {fixture}", lambda f=fixture, la=fixture_layout: test_wrong_pins(f, la))
run("alias and bad version", test_alias_and_bad_version)
run("built layouts", test_built_layouts)
run("v1.9 without sample attributes", test_v19_without_sample_attributes)
run("profile without samples", test_profile_without_samples)
run("empty dictionary", test_empty_dictionary)
run("reference attributes", test_reference_attributes)
run("v1.7 optional indices", test_v17_optional_indices)
run("no layout fits", test_no_layout_fits)
run("gRPC", test_grpc)
done()
