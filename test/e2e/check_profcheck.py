#!/usr/bin/python3
"""check_profcheck.py - `lazybackend check` gives the verdict of the profiling SIG's conformance
checker (profcheck, open-telemetry/sig-profiling) on every case of profcheck's own test table,
and the verdict its rules give on the shared fixtures.

Expectations come from outside the code under test:
  - each case of profcheck's check_test.go is rebuilt here with Google's protobuf runtime
    (the same dictionary, profiles and samples, the same switches: profcheck's duplicate,
    sample-shape and orphan checks map to the duplicates, sample-shape and orphans groups),
    and its wanted error text must appear in a finding (or the request must be clean);
  - the same cases re-encoded into the v1.9 and v1.8 layouts, read pinned, give the same
    verdict; so do those in v1.7 whose rules apply there (not the sample-shape and orphan
    cases: v1.7's values follow its sample types, and it has no stack table);
  - the fixtures: which of their timestamps lie outside [time, time + duration) is computed
    here from the protobuf, and the string, mapping and reference rules are recomputed here
    for --groups all; the findings must be exactly those;
  - a few rules profcheck's table does not exercise (index ranges, link ids, mapping ranges,
    negative lines, each rule of the strict group, the size limit of the duplicate tests), each
    with its rule id and path.
Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures).
"""
import json
import os
import sys

from google.protobuf import json_format

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from server import run_cli as lb  # noqa: E402

P = otlpgen.profiles
TMP = fx.tempdir("lb-check-")


def zero_dictionary(d, strings=("",)):
    d.mapping_table.add()
    d.location_table.add()
    d.function_table.add()
    d.link_table.add()
    d.string_table.extend(strings)
    d.attribute_table.add()
    d.stack_table.add()


def request(strings=("",), dictionary=None):
    """A request with one resource, one scope and one profile; returns (req, profile)."""
    req = otlpgen.service.ExportProfilesServiceRequest()
    if dictionary is None:
        zero_dictionary(req.dictionary, strings)
    else:
        dictionary(req.dictionary)
    prof = req.resource_profiles.add().scope_profiles.add().profiles.add()
    return req, prof


def timed(samples, strings=("",)):
    """A profile of TimeUnixNano 100, DurationNano 10 with these samples (values, timestamps)."""
    req, prof = request(strings)
    prof.time_unix_nano, prof.duration_nano = 100, 10
    for values, timestamps in samples:
        s = prof.samples.add()
        s.values.extend(values)
        s.timestamps_unix_nano.extend(timestamps)
    return req


def any_value(av, s):
    av.string_value = s


def dup_mapping_dict(d):
    m0, m1, m2 = d.mapping_table.add(), d.mapping_table.add(), d.mapping_table.add()
    del m0
    for m, attrs in ((m1, [1, 2]), (m2, [2, 1])):
        m.filename_strindex = 1
        m.attribute_indices.extend(attrs)
        m.memory_start, m.memory_limit = 0x4000, 0x4200
    d.location_table.add()
    d.function_table.add()
    d.link_table.add()
    d.string_table.extend(["", "filename", "attr1", "attr2"])
    d.attribute_table.add()
    for k, v in ((1, "v1"), (2, "v2")):
        a = d.attribute_table.add()
        a.key_strindex = k
        any_value(a.value, v)
    d.stack_table.add()


def dup_key_dict(d):
    d.mapping_table.add()
    d.location_table.add()
    d.location_table.add().attribute_indices.extend([1, 2])
    d.function_table.add()
    d.link_table.add()
    d.string_table.extend(["", "k1"])
    d.attribute_table.add()
    for v in ("v1", "v2"):
        a = d.attribute_table.add()
        a.key_strindex = 1
        any_value(a.value, v)
    d.stack_table.add()


def tables(d, mappings=1, stacks=1, links=None, strings=("",)):
    for _ in range(mappings):
        d.mapping_table.add()
    d.location_table.add()
    d.function_table.add()
    for trace, span in links or [(b"", b"")]:
        ln = d.link_table.add()
        ln.trace_id, ln.span_id = trace, span
    d.string_table.extend(strings)
    d.attribute_table.add()
    for _ in range(stacks):
        d.stack_table.add()


def fully_referenced():
    def dictionary(d):
        d.string_table.extend(["", "fn_name", "fn_sysname", "fn_file", "map_file", "type", "unit"])
        d.attribute_table.add()
        a = d.attribute_table.add()
        a.key_strindex = 1
        any_value(a.value, "v1")
        d.mapping_table.add()
        d.mapping_table.add().filename_strindex = 4
        d.function_table.add()
        f = d.function_table.add()
        f.name_strindex, f.system_name_strindex, f.filename_strindex = 1, 2, 3
        d.location_table.add()
        loc = d.location_table.add()
        loc.mapping_index = 1
        loc.lines.add().function_index = 1
        d.stack_table.add()
        d.stack_table.add().location_indices.append(1)
        d.link_table.add()
    req, prof = request(dictionary=dictionary)
    prof.sample_type.type_strindex, prof.sample_type.unit_strindex = 5, 6
    s = prof.samples.add()
    s.stack_index = 1
    s.attribute_indices.append(1)
    s.values.append(42)
    return req


def bare(build):
    req = otlpgen.service.ExportProfilesServiceRequest()
    zero_dictionary(req.dictionary)
    build(req)
    return req


def minimal(strings=("",)):
    return request(strings)[0]


# profcheck's TestCheckConformance, case by case: (desc, request, dupes, shapes, references,
# wantErr). dupes is on unless the case disables it; shapes and references are off unless set.
CASES = [
    ("no profiles", otlpgen.service.ExportProfilesServiceRequest(), True, False, False,
     "resource profiles are empty"),
    ("minimal valid profile", minimal(), True, False, False, ""),
    ("no scope profiles", bare(lambda r: r.resource_profiles.add()), True, False, False,
     "resource profiles has no scope profiles"),
    ("no profiles in scope", bare(lambda r: r.resource_profiles.add().scope_profiles.add()), True, False, False,
     "scope profiles has no profiles"),
    ("no empty string at pos 0", minimal(["a"]), True, False, False, "must have empty string at index 0"),
    ("duplicate string", minimal(["", "a", "b", "a"]), True, False, False, "duplicate string"),
    ("duplicate mapping", request(dictionary=dup_mapping_dict)[0], True, False, False, "duplicate mapping"),
    ("duplicate string (disabled check)", minimal(["", "a", "b", "a"]), False, False, False, ""),
    ("duplicate attribute key in location", request(dictionary=dup_key_dict)[0], True, False, False,
     'duplicate key "k1"'),
    ("timestamp before start", timed([([], [99])]), True, False, False,
     "timestamps_unix_nano[0]=99 is outside profile time range [100, 110)"),
    ("timestamp at start", timed([([], [100])]), True, False, False, ""),
    ("timestamp at end (exclusive)", timed([([], [110])]), True, False, False,
     "timestamps_unix_nano[0]=110 is outside profile time range [100, 110)"),
    ("timestamp after end", timed([([], [111])]), True, False, False,
     "timestamps_unix_nano[0]=111 is outside profile time range [100, 110)"),
    ("sample with no values and no timestamps", timed([([], [])]), True, True, False,
     "sample must have at least one values or timestamps_unix_nano entry"),
    ("sample with values and timestamps length mismatch", timed([([1], [100, 101])]), True, True, False,
     "values (len=1) and timestamps_unix_nano (len=2) must contain the same number of elements"),
    ("sample with values only", timed([([1], [])]), True, True, False, ""),
    ("sample with multiple values", timed([([1, 2, 3], [])]), True, True, False,
     "must contain a single element if timestamps_unix_nano is not set"),
    ("sample with timestamps only", timed([([], [100])]), True, True, False, ""),
    ("sample with values and timestamps matching", timed([([1], [100])]), True, True, False, ""),
    ("mixed sample types", timed([([1], []), ([], [100])]), True, True, False,
     "does not match expected sample shape"),
    ("mixed sample types without values", timed([([1], []), ([], []), ([], [100])]), True, True, False,
     "does not match expected sample shape"),
    ("mixed sample types (disabled check)", timed([([1], []), ([], [100])]), True, False, False, ""),
    ("references check: minimal valid (all zero sentinels)", minimal(), True, False, True, ""),
    ("references check: unreferenced string", minimal(["", "unreferenced"]), True, False, True,
     "string_table: unreferenced entry at index 1"),
    ("references check: unreferenced string (disabled check)", minimal(["", "unreferenced"]), True, False, False, ""),
    ("references check: unreferenced mapping", request(dictionary=lambda d: tables(d, mappings=2))[0],
     True, False, True, "mapping_table: unreferenced entry at index 1"),
    ("references check: unreferenced stack", request(dictionary=lambda d: tables(d, stacks=2))[0],
     True, False, True, "stack_table: unreferenced entry at index 1"),
    ("references check: unreferenced link",
     request(dictionary=lambda d: tables(d, links=[(b"", b""), (bytes(16), bytes(8))]))[0],
     True, False, True, "link_table: unreferenced entry at index 1"),
    ("references check: fully referenced non-zero entries", fully_referenced(), True, False, True, ""),
]


def groups(dupes, shapes, refs):
    g = ["core"] + (["sample-shape"] if shapes else []) + (["duplicates"] if dupes else []) + \
        (["orphans"] if refs else [])
    return ",".join(g)


def checked(data, name, *args):
    """(exit status, the JSON object of the one request, stderr)."""
    path = fx.write(TMP, name, data)
    rc, out, err = lb("check", "--format", "json", *args, path)
    lines = out.decode().splitlines()
    return rc, (json.loads(lines[0]) if len(lines) == 1 else None), err


def texts(report):
    return [f"{f['path']}: {f['message']}" for f in report["findings"]]


def same_verdict(report, rc, want):
    if report is None:
        return False
    if not want:
        return rc == 0 and report["verdict"] == "clean" and report["findings_total"] == 0
    return rc == 1 and report["verdict"] == "findings" and any(want in t for t in texts(report))


def profcheck_cases():
    for i, (desc, req, dupes, shapes, refs, want) in enumerate(CASES):
        g = groups(dupes, shapes, refs)
        data = req.SerializeToString()
        if not data:   # an empty file is no capture; the empty request as OTLP/JSON is "{}"
            data = json_format.MessageToJson(req).encode()
        rc, report, err = checked(data, f"case{i}.pb", "--groups", g)
        check(f"profcheck case '{desc}': {'clean' if not want else repr(want)}", same_verdict(report, rc, want),
              f"rc={rc} groups={g}\n{json.dumps(report, indent=1)}\n{err}")
        for layout in ("v1.9", "v1.8", "v1.7"):
            if data[:1] == b"{" or (layout == "v1.7" and (shapes or refs)):
                continue
            rc, report, err = checked(L.encode(req, layout), f"case{i}.{layout}.pb", "--groups", g,
                                      "--proto-version", layout)
            check(f"profcheck case '{desc}' in {layout}: same verdict", same_verdict(report, rc, want),
                  f"rc={rc}\n{json.dumps(report, indent=1)}\n{err}")


def fixture_expectation(req):
    """The findings profcheck's rules give the fixture with every group on, recomputed here:
    {path: rule}."""
    want = {}
    d = req.dictionary
    for r, rp in enumerate(req.resource_profiles):
        for s_i, sp in enumerate(rp.scope_profiles):
            for p_i, prof in enumerate(sp.profiles):
                start, end = prof.time_unix_nano, (prof.time_unix_nano + prof.duration_nano) % (1 << 64)
                for n, smp in enumerate(prof.samples):
                    for t, ts in enumerate(smp.timestamps_unix_nano):
                        if not (start <= ts < end):
                            want[f"resource_profiles[{r}].scope_profiles[{s_i}].profiles[{p_i}].sample[{n}]"
                                 f".timestamps_unix_nano[{t}]"] = "timestamp-range"
    seen = {}
    for i, s in enumerate(d.string_table):
        if s in seen:
            want[f"dictionary.string_table[{i}]"] = "duplicate-string"
        seen.setdefault(s, i)
    keys = {}
    for i, m in enumerate(d.mapping_table):
        k = (m.filename_strindex, tuple(sorted(m.attribute_indices)), m.memory_start, m.memory_limit, m.file_offset)
        if i and k in keys:
            want[f"dictionary.mapping_table[{i}]"] = "duplicate-mapping"
        keys.setdefault(k, i)
    refs = {t: {0} for t in ("string", "attribute", "mapping", "function", "location", "stack", "link")}
    for rp in req.resource_profiles:
        for sp in rp.scope_profiles:
            for prof in sp.profiles:
                refs["string"] |= {prof.sample_type.type_strindex, prof.sample_type.unit_strindex,
                                   prof.period_type.type_strindex, prof.period_type.unit_strindex}
                refs["attribute"] |= set(prof.attribute_indices)
                for smp in prof.samples:
                    refs["stack"].add(smp.stack_index)
                    refs["link"].add(smp.link_index)
                    refs["attribute"] |= set(smp.attribute_indices)
    for st in d.stack_table:
        refs["location"] |= set(st.location_indices)
    for loc in d.location_table:
        refs["mapping"].add(loc.mapping_index)
        refs["attribute"] |= set(loc.attribute_indices)
        refs["function"] |= {ln.function_index for ln in loc.lines}
    for m in d.mapping_table:
        refs["string"].add(m.filename_strindex)
        refs["attribute"] |= set(m.attribute_indices)
    for f in d.function_table:
        refs["string"] |= {f.name_strindex, f.system_name_strindex, f.filename_strindex}
    for a in d.attribute_table:
        refs["string"] |= {a.key_strindex, a.unit_strindex}
        if a.value.WhichOneof("value") == "string_value_strindex":
            refs["string"].add(a.value.string_value_strindex)
    sizes = {"string": len(d.string_table), "attribute": len(d.attribute_table), "mapping": len(d.mapping_table),
             "function": len(d.function_table), "location": len(d.location_table), "stack": len(d.stack_table),
             "link": len(d.link_table)}
    for t, n in sizes.items():
        for i in range(n):
            if i not in refs[t]:
                want[f"dictionary.{t}_table[{i}]"] = "unreferenced"
    return want


def fixtures():
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.ParseFromString(fx.read("ebpf-jvm-go.v1.11.pb"))
    want = fixture_expectation(req)
    default_want = {p: r for p, r in want.items() if r == "timestamp-range"}
    check("fixture: the reference library finds timestamps at the profile's end", len(default_want) > 0,
          str(want))
    for name in fx.FIXTURE_FILES:
        for g, expect in (("default", default_want), ("all", want)):
            rc, out, err = lb("check", "--format", "json", "--groups", g, fx.path(name))
            report = json.loads(out.decode().splitlines()[0]) if out else None
            got = {f["path"]: f["rule"] for f in report["findings"]} if report else None
            check(f"{name} --groups {g}: exactly the findings profcheck's rules give ({len(expect)})",
                  got == expect and rc == (1 if expect else 0) and report["findings_total"] == len(expect),
                  f"rc={rc}\ngot {got}\nwant {expect}\n{err}")


def strict_rules():
    """lazybackend's own strict group: entry 2 repeats entry 1 (for locations with its attribute
    indices in another order, which docs/check.md says are compared sorted); entry 3 differs from
    entry 1 in one field only and must not be reported. Then an entry too large to test."""
    def dictionary(d):
        zero_dictionary(d, ("", "k", "v", "u", "f", "j"))
        d.function_table.add().name_strindex = 4
        for key in (1, 5):
            a = d.attribute_table.add()
            a.key_strindex, a.value.string_value = key, "v"

    def dup_locations(d):
        for attrs, address in (([1, 2], 0x10), ([2, 1], 0x10), ([1, 2], 0x11)):
            loc = d.location_table.add()
            loc.address = address
            loc.attribute_indices.extend(attrs)
            loc.lines.add().function_index = 1

    def dup_links(d):
        for span in (bytes(range(8)), bytes(range(8)), bytes(range(1, 9))):
            ln = d.link_table.add()
            ln.trace_id, ln.span_id = bytes(range(16)), span

    def dup_attributes(d):
        for value in ("w", "w", "x"):
            a = d.attribute_table.add()
            a.key_strindex, a.unit_strindex, a.value.string_value = 1, 3, value

    def dup_stacks(d):
        for _ in range(2):
            d.location_table.add().address = 0x10 + len(d.location_table)
        for order in ([1, 2], [1, 2], [2, 1]):
            d.stack_table.add().location_indices.extend(order)

    def table_start(d, table):
        return len(getattr(d, table))

    for rule, table, noun, fill in (("duplicate-location", "location_table", "location", dup_locations),
                                    ("duplicate-link", "link_table", "link", dup_links),
                                    ("duplicate-attribute", "attribute_table", "attribute", dup_attributes),
                                    ("duplicate-stack", "stack_table", "stack", dup_stacks)):
        req, prof = request(dictionary=dictionary)
        first = table_start(req.dictionary, table)
        fill(req.dictionary)
        rc, report, err = checked(req.SerializeToString(), "strict.pb", "--groups", "default,strict")
        got = sorted((f["rule"], f["path"], f["message"]) for f in report["findings"]) if report else None
        want = [(rule, f"dictionary.{table}[{first + 1}]",
                 f"duplicate {noun} at index {first + 1}, orig index {first}")]
        check(f"two equal {noun}s (strict): {rule} at dictionary.{table}[{first + 1}], the third not",
              rc == 1 and got == want, f"rc={rc}\ngot {got}\nwant {want}\n{err}")
        rc, report, err = checked(req.SerializeToString(), "strict.pb")
        check(f"two equal {noun}s are not a finding by default", rc == 0 and report["verdict"] == "clean",
              json.dumps(report) + err)

    # Two equal attributes of over 64 KiB each: not compared, and check-limit says so.
    req, prof = request(dictionary=dictionary)
    for _ in range(2):
        a = req.dictionary.attribute_table.add()
        a.key_strindex, a.value.string_value = 1, "x" * (65 << 10)
    rc, report, err = checked(req.SerializeToString(), "limit.pb", "--groups", "default,strict")
    got = sorted((f["rule"], f["path"]) for f in report["findings"]) if report else None
    check("attributes over 64 KiB (strict): check-limit at dictionary.attribute_table, no duplicate claimed",
          rc == 1 and got == [("check-limit", "dictionary.attribute_table")] and
          "64 KiB" in report["findings"][0]["message"], f"rc={rc}\ngot {got}\n{err}")


def own_rules():
    def one(desc, req, rule, path, *args):
        rc, report, err = checked(req.SerializeToString(), "own.pb", *args)
        hits = [f for f in report["findings"] if f["rule"] == rule and f["path"] == path] if report else []
        check(f"{desc}: {rule} at {path}", rc == 1 and hits, f"rc={rc}\n{json.dumps(report, indent=1)}\n{err}")

    req, prof = request()
    prof.samples.add().stack_index = 3
    one("a stack index past the table", req, "index-range",
        "resource_profiles[0].scope_profiles[0].profiles[0].sample[0].stack_index")

    req, prof = request()
    ln = req.dictionary.link_table.add()
    ln.trace_id, ln.span_id = bytes(15), bytes(8)
    one("a 15-byte trace id", req, "link-id-length", "dictionary.link_table[1].trace_id")

    req, prof = request()
    m = req.dictionary.mapping_table.add()
    m.memory_start, m.memory_limit = 0x2000, 0x1000
    one("a mapping whose limit is below its start", req, "mapping-range", "dictionary")

    req, prof = request()
    req.dictionary.location_table.add().lines.add().line = -4
    one("a negative line", req, "non-negative", "dictionary.location_table[1].line[0].line")

    req, prof = request()
    req.dictionary.function_table[0].name_strindex = 0
    req.dictionary.mapping_table[0].memory_start = 1
    one("a mapping table whose entry 0 is not the zero value", req, "zero-entry", "dictionary.mapping_table[0]")

    req, prof = request(["", "f"])
    for _ in range(2):
        req.dictionary.function_table.add().name_strindex = 1
    one("two equal functions (strict)", req, "duplicate-function", "dictionary.function_table[2]",
        "--groups", "default,strict")
    rc, report, _ = checked(req.SerializeToString(), "own.pb")
    check("two equal functions are not a finding by default", rc == 0 and report["verdict"] == "clean",
          json.dumps(report))
    strict_rules()

    # Found by fuzzing (fuzz_check): a duplicate of the empty string was described with
    # uninitialised bytes as its text, and an empty attribute list was sorted from NULL.
    req, prof = request(["", "", "f"])
    for _ in range(2):
        req.dictionary.mapping_table.add().filename_strindex = 2
    rc, report, err = checked(req.SerializeToString(), "own.pb", "--groups", "all")
    msgs = {(f["path"], f["rule"]): f["message"] for f in report["findings"]} if report else {}
    check("a duplicate empty string is described as empty; mappings without attributes compared",
          msgs.get(("dictionary.string_table[1]", "duplicate-string")) ==
          "duplicate string at index 1, orig index 0: " and
          msgs.get(("dictionary.mapping_table[2]", "duplicate-mapping")) ==
          "duplicate mapping at index 2, orig index 1" and
          "runtime error" not in err, json.dumps(report) + err)

    # profcheck collects references from every mapping, entry 0 too, even one that is no zero value
    req, prof = request(["", "m"])
    req.dictionary.mapping_table[0].filename_strindex = 1
    rc, report, err = checked(req.SerializeToString(), "own.pb", "--groups", "default,orphans")
    rules = sorted((f["path"], f["rule"]) for f in report["findings"]) if report else None
    check("a non-zero mapping 0 is a zero-entry finding, and the string it names is referenced",
          rules == [("dictionary.mapping_table[0]", "zero-entry")], json.dumps(report) + err)

    req, prof = request()
    # a second dictionary occurrence (protobuf merges it) adds mapping 1, whose filename index
    # 2^40 is no int32
    data = req.SerializeToString() + L.raw_field(2, 2, L.raw_field(1, 2, L.raw_field(4, 0, 1 << 40)))
    rc, report, err = checked(data, "malformed.pb")
    hits = [f for f in report["findings"] if f["rule"] == "malformed-entry"] if report else []
    check("an entry whose index is no int32: malformed-entry at dictionary.mapping_table[1]",
          rc == 1 and len(hits) == 1 and hits[0]["path"] == "dictionary.mapping_table[1]", json.dumps(report) + err)

    # v1.7: a sample is a slice of its profile's location_indices, which must lie inside them
    req7 = L.p7.ExportProfilesServiceRequest()
    d = req7.dictionary
    d.mapping_table.add()
    d.location_table.add()
    d.location_table.add()
    d.function_table.add()
    d.link_table.add()
    d.string_table.append("")
    d.attribute_table.add()
    p7 = req7.resource_profiles.add().scope_profiles.add().profiles.add()
    p7.location_indices.extend([1, 2])
    s7 = p7.sample.add()
    s7.locations_start_index, s7.locations_length = 1, 2
    s7.value.append(1)
    rc, report, err = checked(req7.SerializeToString(), "slice.v1.7.pb", "--proto-version", "v1.7")
    got = sorted((f["path"], f["rule"]) for f in report["findings"]) if report else None
    check("v1.7: a slice past location_indices, and a location index past the table",
          rc == 1 and got == [("resource_profiles[0].scope_profiles[0].profiles[0].location_indices[1]", "index-range"),
                              ("resource_profiles[0].scope_profiles[0].profiles[0].sample[0].locations_start_index",
                               "index-range")], json.dumps(report) + err)

    req, prof = request()
    ref = req.resource_profiles[0].resource.entity_refs.add()
    ref.type = "service"
    ref.id_keys.append("service.name")
    rc, report, err = checked(req.SerializeToString(), "entity.pb", "--groups", "all")
    check("a resource with entity refs is checked (clean)", rc == 0 and report["verdict"] == "clean",
          json.dumps(report) + err)

    rc, out, err = lb("check", fx.path(fx.FIXTURE), os.path.join(TMP, "missing.pb"))
    check("a file that cannot be read: exit status 2", rc == 2 and "missing.pb" in err, err)
    rc, out, err = lb("check", fx.write(TMP, "junk.pb", b"\xff\xff\xff\xff"))
    check("bytes that are no request: exit status 2, 'not checked'", rc == 2 and "not checked" in err, err)
    rc, out, err = lb("check", "--groups", "nonsense", fx.path(fx.FIXTURE))
    check("an unknown group: exit status 2", rc == 2 and "nonsense" in err, err)
    rc, out, err = lb("check", "--max-findings", "1", "--groups", "all", fx.path(fx.FIXTURE))
    text = out.decode()
    check("--max-findings 1: one finding described, the rest counted",
          rc == 1 and text.count("[timestamp-range]") == 1 and "3 more finding(s)" in text, text + err)


run("profcheck cases", profcheck_cases)
run("fixtures", fixtures)
run("own rules", own_rules)
done()
