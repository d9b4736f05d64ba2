#!/usr/bin/python3
"""json_output.py - `--format json`: one JSON object per sample per line.

Every line of the fixture's JSON output must parse with Python's json module (NaN and
Infinity refused: they are not JSON) from strictly valid UTF-8, carry exactly the keys that
docs/output.md (`--format json`) documents, and add up to the counts in ebpf-jvm-go.expect.json (samples,
timestamps, frames, frame types, sample types, values). The frames of the lines, folded, must
give back ebpf-jvm-go.folded byte for byte. Times are checked against an independent
conversion (Python's datetime). Requests built with otlpgen cover what the fixture lacks:
hostile strings (quotes, control bytes, bidi controls, invalid UTF-8), every value type, links,
values, and the --no-* switches leaving keys out.
"""
import collections
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
from server import run_cli  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
TMP = fx.tempdir("lb-json-")

# The documented schema (docs/output.md, `--format json`), written out by hand.
TOP_KEYS = {"request", "resource", "scope", "profile", "sample"}
REQUEST_KEYS = {"sequence", "transport", "peer", "layout", "received_unix_nano", "received",
                "unknown_fields_total", "unknown_fields"}
RESOURCE_KEYS = {"index", "schema_url", "entity_refs", "dropped_attributes_count", "attributes"}
SCOPE_KEYS = {"name", "version", "schema_url", "dropped_attributes_count", "attributes"}
PROFILE_KEYS = {"scope_index", "index", "profile_id", "time_unix_nano", "time", "duration_nano",
                "period_type", "period", "sample_type", "sample_types", "default_sample_type_index",
                "comments", "original_payload_format", "original_payload_size",
                "dropped_attributes_count", "attributes"}
SAMPLE_KEYS = {"index", "timestamps_unix_nano", "timestamps", "values", "weight", "link",
               "attributes", "frames"}
FRAME_KEYS = {"type", "symbolized", "function", "file", "line", "column", "address", "mapping",
              "build_id", "build_id_kind", "system_name", "start_line", "is_folded",
              "location_attributes", "mapping_info"}
MAPPING_INFO_KEYS = {"start", "limit", "offset", "build_ids", "attributes", "flags"}
ATTR_KEYS = {"key", "type", "value"}   # plus "unit" / "error" when present


def refuse_constant(name):
    raise ValueError(f"non-JSON constant {name}")


def parse_lines(out):
    """Every line strictly: UTF-8, one JSON object, no NaN/Infinity literals."""
    text = out.decode("utf-8")          # raises on invalid UTF-8
    lines = text.split("\n")
    assert lines[-1] == "", "output does not end with a newline"
    return [json.loads(line, parse_constant=refuse_constant) for line in lines[:-1]]


def decode(*args, data=None, path=None):
    if data is not None:
        path = fx.write(TMP, "req.pb", data)
    return run_cli("decode", "--format", "json", *args, path or fx.path())


def rfc3339(ns):
    """Independent of the C code: datetime for the seconds, the nanoseconds appended."""
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ns // 10**9)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % (ns % 10**9)


def folded_name(f):
    if f["symbolized"]:
        return f["function"]
    return (f["mapping"] or "") + "+" + f["address"]


def test_fixture(name):
    rc, out, err = decode(path=fx.path(name))
    check(f"{name}: exits 0", rc == 0, err)
    try:
        objs = parse_lines(out)
    except ValueError as e:
        check(f"{name}: every line parses as strict JSON from valid UTF-8", False, e)
        return
    check(f"{name}: every line parses as strict JSON from valid UTF-8", True)
    check(f"{name}: one line per sample ({EXPECT['samples']})", len(objs) == EXPECT["samples"], len(objs))
    resources = {(o["request"]["sequence"], o["resource"]["index"]) for o in objs}
    profiles = {(o["request"]["sequence"], o["resource"]["index"], o["profile"]["scope_index"],
                 o["profile"]["index"]) for o in objs}
    check(f"{name}: resources and profiles", len(resources) == EXPECT["resource_profiles"] and
          len(profiles) == EXPECT["profiles"], (len(resources), len(profiles)))
    timestamps = sum(len(o["sample"]["timestamps_unix_nano"]) for o in objs)
    check(f"{name}: {EXPECT['timestamps']} timestamps", timestamps == EXPECT["timestamps"], timestamps)
    frames = [f for o in objs for f in o["sample"]["frames"]]
    check(f"{name}: {EXPECT['frames']} frames", len(frames) == EXPECT["frames"], len(frames))
    types = collections.Counter(f["type"] for f in frames)
    check(f"{name}: frames per type", dict(types) == EXPECT["frame_types"], types)
    stypes = collections.Counter(o["profile"]["sample_type"]["type"] for o in objs)
    check(f"{name}: samples per sample type", dict(stypes) == EXPECT["sample_types"], stypes)
    vsum = sum(v for o in objs for v in o["sample"]["values"])
    check(f"{name}: values sum", vsum == EXPECT["values_sum"], vsum)
    weights = collections.Counter()
    for o in objs:
        weights[";".join(folded_name(f) for f in reversed(o["sample"]["frames"]))] += o["sample"]["weight"]
    folded = b"".join(sorted(("%s %d\n" % kv).encode() for kv in weights.items()))
    check(f"{name}: frames and weights fold back into ebpf-jvm-go.folded", folded == FOLDED)
    return objs


def test_schema_and_times():
    objs = test_fixture("ebpf-jvm-go.v1.11.pb")
    if not objs:
        return
    bad = []
    for i, o in enumerate(objs):
        s = o["sample"]
        keysets = [("top", set(o), TOP_KEYS), ("request", set(o["request"]), REQUEST_KEYS),
                   ("resource", set(o["resource"]), RESOURCE_KEYS), ("scope", set(o["scope"]), SCOPE_KEYS),
                   ("profile", set(o["profile"]), PROFILE_KEYS), ("sample", set(s), SAMPLE_KEYS)]
        keysets += [("frame", set(f), FRAME_KEYS) for f in s["frames"]]
        keysets += [("mapping_info", set(f["mapping_info"]), MAPPING_INFO_KEYS) for f in s["frames"]
                    if f.get("mapping_info") is not None]
        keysets += [("attribute", set(a), ATTR_KEYS) for a in
                    o["resource"]["attributes"] + s["attributes"] + o["profile"]["attributes"]]
        bad += [f"line {i + 1} {what}: {got ^ want}" for what, got, want in keysets if got != want]
    check("every object has exactly the documented keys", not bad, "\n".join(bad[:10]))
    o = objs[0]
    s = o["sample"]
    check("timestamps are unix ns numbers with matching RFC 3339 UTC strings",
          all(rfc3339(ns) == t for x in objs for ns, t in
              zip(x["sample"]["timestamps_unix_nano"], x["sample"]["timestamps"])) and
          all(len(x["sample"]["timestamps"]) == len(x["sample"]["timestamps_unix_nano"]) for x in objs))
    check("profile time: number and RFC 3339 string agree",
          all(rfc3339(x["profile"]["time_unix_nano"]) == x["profile"]["time"] for x in objs))
    check("first sample's first timestamp as in the golden text (1761887343453558373)",
          s["timestamps_unix_nano"][0] == 1761887343453558373 and
          s["timestamps"][0] == "2025-10-31T05:09:03.453558373Z", s["timestamps"][:1])
    check("weight is the timestamp count when there are no values",
          all(x["sample"]["weight"] == len(x["sample"]["timestamps_unix_nano"]) for x in objs))
    check("attribute types: pid is an int, thread.name a string",
          {"key": "process.pid", "type": "int", "value": 236982} in s["attributes"] and
          {"key": "thread.name", "type": "string", "value": "Thread-1"} in s["attributes"], s["attributes"])
    check("request and profile header", o["request"]["transport"] == "file" and
          o["request"]["layout"] == "v1.11" and o["profile"]["sample_type"] == {"type": "samples", "unit": "count", "aggregation_temporality": 0} and
          o["profile"]["sample_types"] == [o["profile"]["sample_type"]] and
          o["profile"]["period_type"] == {"type": "cpu", "unit": "nanoseconds", "aggregation_temporality": 0} and
          o["profile"]["period"] == 50000000 and o["profile"]["duration_nano"] == 5849910424 and
          o["profile"]["profile_id"] == "" and s["link"] is None, o["profile"])
    unsym = next(f for x in objs for f in x["sample"]["frames"] if not f["symbolized"])
    check("an unsymbolized frame: hex address, mapping file, build id",
          unsym["address"].startswith("0x") and int(unsym["address"], 16) > 0 and unsym["mapping"], unsym)
    # every mapping of the fixture, as Google's protobuf reads it
    req = otlpgen.service.ExportProfilesServiceRequest()
    with open(fx.path(), "rb") as f:
        req.ParseFromString(f.read())
    d = req.dictionary
    want = {}
    for m in d.mapping_table[1:]:
        attrs = [d.attribute_table[i] for i in m.attribute_indices]
        want[d.string_table[m.filename_strindex]] = (
            hex(m.memory_start), hex(m.memory_limit), hex(m.file_offset),
            [{"kind": d.string_table[a.key_strindex].rsplit(".", 1)[1], "id": a.value.string_value}
             for a in attrs if d.string_table[a.key_strindex].startswith("process.executable.build_id.")])
    got = {f["mapping"]: tuple(f["mapping_info"][k] for k in ("start", "limit", "offset", "build_ids"))
           for x in objs for f in x["sample"]["frames"] if f["mapping"] is not None}
    check("every frame's mapping: range, offset and every build id as the fixture has them",
          got and all(want.get(k) == v for k, v in got.items()) and
          any(len(v[3]) == 2 for v in got.values()), [(k, v, want.get(k)) for k, v in got.items()][:5])


def build_hostile():
    b = otlpgen.Builder()
    libc = b.mapping("libc.so.6", build_id="abcdef0123")
    evil = 'q"uo\\te\x1b[31m\n\u202eZZINVALIDZZ'
    fn = b.function(evil, "file\t.c")
    st = b.stack([b.location("native", [(fn, 7)]), b.location("kernel", mapping=libc, address=0xffffffff81000000),
                  b.location("go", address=0x10)])
    link = b.link(bytes(range(16)), bytes(range(8)))
    a = b.resource(container_id="c1", process_pid=42)
    p = b.profile(a, "off_cpu", "nanoseconds")
    p.attribute_indices.append(b.attr("profile.kind", "offcpu"))
    d = b.req.dictionary

    def nest(v, depth=20):   # deeper than the view walks (LB_VALUE_MAX_DEPTH)
        for _ in range(depth):
            v = v.array_value.values.add()
        v.int_value = 1

    def raw_attr(key, setter):
        at = d.attribute_table.add()
        at.key_strindex = b.s(key)
        setter(at.value)
        return len(d.attribute_table) - 1
    attrs = [
        b.attr("thread.name", evil), b.attr("flag", True), b.attr("big", -(2**63)),
        raw_attr("ratio", lambda v: setattr(v, "double_value", 0.1)),
        raw_attr("nan", lambda v: setattr(v, "double_value", float("nan"))),
        raw_attr("inf", lambda v: setattr(v, "double_value", float("-inf"))),
        raw_attr("blob", lambda v: setattr(v, "bytes_value", b"\xde\xad\x00")),
        raw_attr("arr", lambda v: v.array_value.values.add().__setattr__("string_value", "x\"y")),
        raw_attr("deep", nest),
        raw_attr("empty", lambda v: None),
    ]
    kv = d.attribute_table.add()
    kv.key_strindex = b.s("kv")
    e = kv.value.kvlist_value.values.add()
    e.key = "k"
    e.value.int_value = 5
    attrs.append(len(d.attribute_table) - 1)
    b.sample(p, st, timestamps=[1758603335517877230, 1758603335517877231], values=[2**62, 5],
             attributes=attrs, link=link)
    data = b.bytes()
    # Same-length byte surgery the protobuf library would refuse: invalid UTF-8 inside strings.
    return data.replace(b"INVALID", b"\xff\xc3(\xed\xa0\x80\xc0", 2)


def test_hostile_strings_and_types():
    rc, out, err = decode(data=build_hostile())
    check("hostile request: exits 0", rc == 0, err)
    try:
        objs = parse_lines(out)
    except ValueError as e:
        check("hostile request: strict JSON from valid UTF-8", False, e)
        return
    check("hostile request: one line, strict JSON from valid UTF-8", len(objs) == 1 and out.count(b"\n") == 1)
    check("no raw control byte or bidi override in the output",
          not any(c < 0x20 for c in out[:-1]) and "\u202e".encode() not in out and b"\x7f" not in out)
    s = objs[0]["sample"]
    attrs = {a["key"]: a for a in s["attributes"]}
    evil_json = 'q"uo\\te\x1b[31m\n\u202eZZ\ufffd\ufffd(\ufffd\ufffd\ufffd\ufffdZZ'
    check("escaped strings read back (invalid bytes as U+FFFD)", attrs["thread.name"]["value"] == evil_json,
          repr(attrs["thread.name"]["value"]))
    check("function name escaped the same way", s["frames"][0]["function"] == evil_json and
          s["frames"][0]["file"] == "file\t.c", s["frames"][0])
    want = {
        "flag": ("bool", True), "big": ("int", -(2**63)), "ratio": ("double", 0.1),
        "nan": ("double", "NaN"), "inf": ("double", "-Infinity"), "blob": ("bytes", "dead00"),
        "arr": ("array", ["x\"y"]), "kv": ("kvlist", {"k": 5}), "empty": ("empty", None),
    }
    for k, (t, v) in want.items():
        check(f"attribute {k}: type {t}, value {v!r}", attrs[k]["type"] == t and attrs[k]["value"] == v, attrs[k])
    deep, depth = attrs["deep"]["value"], 0
    while isinstance(deep, list) and deep:
        deep, depth = deep[0], depth + 1
    check("an array nested too deep: valid JSON, the levels walked, and an error key",
          attrs["deep"]["type"] == "array" and 10 <= depth < 20 and deep == [] and
          "nested too deep" in attrs["deep"].get("error", ""), attrs["deep"])
    check("values as exact integers; weight is their sum", s["values"] == [2**62, 5] and s["weight"] == 2**62 + 5,
          s["values"])
    check("link as lowercase hex", s["link"] == {"trace_id": bytes(range(16)).hex(), "span_id": bytes(range(8)).hex()})
    check("profile id as lowercase hex", objs[0]["profile"]["profile_id"] == bytes(range(16)).hex())
    check("profile attributes", objs[0]["profile"]["attributes"] ==
          [{"key": "profile.kind", "type": "string", "value": "offcpu"}])
    f = s["frames"]
    check("kernel address above 2^53 kept exactly, as a hex string",
          f[1]["address"] == "0xffffffff81000000" and f[1]["mapping"] == "libc.so.6" and
          f[1]["build_id"] == "abcdef0123" and f[1]["build_id_kind"] == "gnu", f[1])
    check("a frame without mapping: mapping null, empty build id",
          f[2]["mapping"] is None and f[2]["build_id"] == "" and f[2]["address"] == "0x10", f[2])


def test_switches():
    data = build_hostile()
    cases = {
        "--no-resource-attributes": lambda o: "attributes" not in o["resource"],
        "--no-profile-attributes": lambda o: "attributes" not in o["profile"],
        "--no-sample-attributes": lambda o: "attributes" not in o["sample"],
        "--no-frames": lambda o: "frames" not in o["sample"],
        "--no-file-line": lambda o: bool(o["sample"].get("frames")) and all(
            set(f) == FRAME_KEYS - {"file", "line", "column"} for f in o["sample"]["frames"]),
    }
    for switch, ok in cases.items():
        rc, out, err = decode(switch, data=data)
        objs = parse_lines(out) if rc == 0 else []
        others = [k for k, fn in cases.items() if k != switch and fn(objs[0])] if objs else ["?"]
        check(f"json {switch}: leaves its keys out and nothing else", len(objs) == 1 and ok(objs[0]) and not others,
              f"{err} {others}")


run("schema and times", test_schema_and_times)
run("ascending layout", lambda: test_fixture("ebpf-jvm-go.v1.11-ascending.pb"))
run("hostile strings and types", test_hostile_strings_and_types)
run("switches", test_switches)
done()
