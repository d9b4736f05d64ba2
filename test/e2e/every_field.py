#!/usr/bin/python3
"""every_field.py - every field of every message a sender can send has a place in the text and
JSON output, in every proto layout (docs/output.md says where).

The fields are not listed by hand: they come from the proto descriptors of each layout's
reference schema (pb/*.proto compiled by protoc, read by Google's protobuf: the request types of
profiles_service.proto for v1.11 and of pb/profiles_v1_{9,8,7}.proto for the older layouts),
walked from ExportProfilesServiceRequest down. Each field must have an entry in PLACES below,
which says how its value is seen in the output; a field without one (a new proto field, a new
layout) fails the test. One request per layout sets every one of those fields to a distinctive
value (checked: the walk of the built message finds them all set), is decoded by `lazybackend
decode` in text and in JSON, and each entry checks its value at its documented place: an exact
text line, a JSON key. Index fields (`*_index`, `*_strindex`, `*_indices`) are seen through
what they point to.
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from server import run_cli  # noqa: E402

TMP = fx.tempdir("lb-every-field-")
profiles = otlpgen.profiles
MODULES = {"v1.11": otlpgen.service, "v1.9": L.p9, "v1.8": L.p8, "v1.7": L.p7}
# common.proto is v1.11's; its reference-based fields do not exist before v1.10.
NOT_IN_LAYOUT = {"v1.9": {"KeyValue.key_strindex", "AnyValue.string_value_strindex"}}
NOT_IN_LAYOUT["v1.8"] = NOT_IN_LAYOUT["v1.7"] = NOT_IN_LAYOUT["v1.9"]

TIME = 1700000000123456789
TS = [1700000001000000001, 1700000002000000002]
TRACE, SPAN = bytes(range(0xa0, 0xb0)), bytes(range(0xb0, 0xb8))
PROFILE_ID = bytes(range(0x10, 0x20))


def go_time(ns):
    """Go's time.Time.String() in UTC, computed here with datetime (independent of the C code)."""
    d = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    frac = f"{ns % 10**9:09d}".rstrip("0")
    return d.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


# ----------------------------------------------------------------------------- the request

class Req:
    def __init__(self, layout):
        self.layout = layout
        self.m = MODULES[layout]
        self.req = self.m.ExportProfilesServiceRequest()
        self.d = self.req.dictionary
        self.strings = {}
        self.old = layout in ("v1.8", "v1.7")   # ValueType.aggregation_temporality, comments
        self.v17 = layout == "v1.7"
        self.d.mapping_table.add()
        self.d.location_table.add()
        self.d.function_table.add()
        self.d.link_table.add()
        self.d.attribute_table.add()
        if not self.v17:
            self.d.stack_table.add()
        self.s("")

    def s(self, text):
        if text not in self.strings:
            self.strings[text] = len(self.d.string_table)
            self.d.string_table.append(text)
        return self.strings[text]

    def attr(self, key, value, unit=None):
        a = self.d.attribute_table.add()
        if self.v17:                        # a KeyValue; units in attribute_units
            a.key = key
            if unit:
                u = self.d.attribute_units.add()
                u.attribute_key_strindex, u.unit_strindex = self.s(key), self.s(unit)
        else:
            a.key_strindex = self.s(key)
            if unit:
                a.unit_strindex = self.s(unit)
        otlpgen.set_value(a.value, value)
        return len(self.d.attribute_table) - 1


def build(layout):
    r = Req(layout)
    d = r.d
    # the dictionary
    fn1 = d.function_table.add()
    fn1.name_strindex, fn1.system_name_strindex = r.s("fn-name-zq25"), r.s("_Z3fnzq26")
    fn1.filename_strindex, fn1.start_line = r.s("file-zq27.c"), 4000
    fn2 = d.function_table.add()
    fn2.name_strindex, fn2.filename_strindex = r.s("fn2-zq34"), r.s("file2-zq35.go")
    m = d.mapping_table.add()
    m.memory_start, m.memory_limit, m.file_offset = 0x1111000, 0x2222000, 0x3333
    m.filename_strindex = r.s("libzq28.so")
    m.attribute_indices.extend([r.attr("process.executable.build_id.gnu", "gnuid-zq29"),
                                r.attr("process.executable.build_id.htlhash", "htl-zq30"),
                                r.attr("map-attr-zq31", "mval")])
    if r.v17:
        m.has_functions = m.has_filenames = m.has_line_numbers = m.has_inline_frames = True
    loc1 = d.location_table.add()
    loc1.mapping_index = 1
    loc1.address = 0x5a5a5a
    ln = (loc1.line if r.v17 else loc1.lines).add()
    ln.function_index, ln.line, ln.column = 1, 4242, 17
    loc1.attribute_indices.extend([r.attr("profile.frame.type", "native"), r.attr("loc-attr-zq24", "lval")])
    if r.v17:
        loc1.is_folded = True
    loc2 = d.location_table.add()
    ln = (loc2.line if r.v17 else loc2.lines).add()
    ln.function_index, ln.line, ln.column = 2, 99, 3
    loc2.attribute_indices.append(r.attr("profile.frame.type", "go"))
    link = d.link_table.add()
    link.trace_id, link.span_id = TRACE, SPAN
    if not r.v17:
        d.stack_table.add().location_indices.extend([1, 2])

    # resource and scope
    rp = r.req.resource_profiles.add()
    rp.schema_url = "https://res.schema/zq9"
    res = rp.resource
    for key, value in (("res-string", "res-string-zq1"), ("res-bool", True), ("res-int", 7340033),
                       ("res-double", 2.71828)):
        kv = res.attributes.add()
        kv.key = key
        otlpgen.set_value(kv.value, value)
    kv = res.attributes.add()
    kv.key = "res-array"
    arr = kv.value.array_value.values
    arr.add().string_value = "arr-elt-zq2"
    arr.add().int_value = 42
    kv = res.attributes.add()
    kv.key = "res-kvlist"
    e = kv.value.kvlist_value.values.add()
    e.key, e.value.string_value = "kv-key-zq3", "kv-val-zq4"
    kv = res.attributes.add()
    kv.key, kv.value.bytes_value = "res-bytes", b"\xfe\xed\xfa\xce"
    if layout == "v1.11":       # reference-based key and value (v1.10+)
        kv = res.attributes.add()
        kv.key, kv.value.string_value_strindex = "res-strindex", r.s("strindex-value-zq5")
        kv = res.attributes.add()
        kv.key_strindex, kv.value.string_value = r.s("strindex-key-zq6"), "kskv-zq7"
    res.dropped_attributes_count = 7001
    er = res.entity_refs.add()
    er.schema_url, er.type = "https://entity.example/zq8", "k8s.pod"
    er.id_keys.extend(["k8s.pod.uid", "k8s.pod.name"])
    er.description_keys.append("k8s.pod.label")
    sp = rp.scope_profiles.add()
    sp.schema_url = "https://scope.schema/zq12"
    sp.scope.name, sp.scope.version, sp.scope.dropped_attributes_count = "scope-zq10", "9.8.7", 7002
    kv = sp.scope.attributes.add()
    kv.key, kv.value.string_value = "scope-attr-zq11", "scope-val"

    # the profile and its sample
    p = sp.profiles.add()
    if r.v17:
        for t, u, agg in (("stype-zq13", "sunit-zq14", 2), ("stype2-zq15", "sunit2-zq15b", 0)):
            vt = p.sample_type.add()
            vt.type_strindex, vt.unit_strindex, vt.aggregation_temporality = r.s(t), r.s(u), agg
        p.default_sample_type_index = 1
        p.time_nanos, p.duration_nanos = TIME, 4321000000
    else:
        p.sample_type.type_strindex, p.sample_type.unit_strindex = r.s("stype-zq13"), r.s("sunit-zq14")
        p.time_unix_nano, p.duration_nano = TIME, 4321000000
    p.period_type.type_strindex, p.period_type.unit_strindex = r.s("ptype-zq16"), r.s("punit-zq17")
    if r.old:
        p.period_type.aggregation_temporality = 1
        if not r.v17:
            p.sample_type.aggregation_temporality = 2
        p.comment_strindices.extend([r.s("comment-zq21"), r.s("comment-zq22")])
    p.period = 1234567
    p.profile_id = PROFILE_ID
    p.dropped_attributes_count = 7003
    p.original_payload_format, p.original_payload = "pprof-zq18", b"x" * 77
    p.attribute_indices.append(r.attr("prof-attr-zq19", "pval", unit="punit-zq20"))
    smp = (p.sample if r.v17 else p.samples).add()
    if r.v17:
        p.location_indices.append(2)     # before the slice, so that its start is not 0
        smp.locations_start_index, smp.locations_length = len(p.location_indices), 2
        p.location_indices.extend([1, 2])
        smp.value.extend([111, 222])
    else:
        smp.stack_index = 1
        smp.values.extend([111, 222])
    smp.attribute_indices.append(r.attr("thread.name", "samp-zq23", unit="sunit-zq33"))
    smp.link_index = 1
    smp.timestamps_unix_nano.extend(TS)
    return r.req


# ----------------------------------------------------------------------------- descriptors

def schema_fields(layout):
    """Every (message, field) reachable from the layout's request, by the descriptors."""
    out, seen, todo = set(), set(), [MODULES[layout].ExportProfilesServiceRequest.DESCRIPTOR]
    while todo:
        desc = todo.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        for f in desc.fields:
            name = f"{desc.name}.{f.name}"
            if name in NOT_IN_LAYOUT.get(layout, ()):
                continue
            out.add(name)
            if f.message_type is not None:
                todo.append(f.message_type)
    return out


def set_fields(msg, out=None):
    """Every (message, field) set somewhere in a built message."""
    out = set() if out is None else out
    for f, value in msg.ListFields():
        out.add(f"{msg.DESCRIPTOR.name}.{f.name}")
        if f.message_type is not None:
            for v in (value if f.label == f.LABEL_REPEATED else [value]):
                set_fields(v, out)
    return out


# ----------------------------------------------------------------------------- the places

class Out:
    """The text and JSON output of one request, and checks on them."""

    def __init__(self, layout, text, objs):
        self.layout, self.lines, self.objs = layout, text.split("\n"), objs
        self.o = objs[0] if objs else {}
        self.frames = self.o.get("sample", {}).get("frames", [{}, {}]) + [{}, {}]

    def line(self, want):
        return want in self.lines

    def attr(self, attrs, key, value, **extra):
        return any(a.get("key") == key and a.get("value") == value and
                   all(a.get(k) == v for k, v in extra.items()) for a in attrs)


def agg(o, n):
    """The text suffix of a value type's aggregation temporality (v1.7, v1.8)."""
    return f" (aggregation_temporality: {n})" if o.layout in ("v1.8", "v1.7") and n else ""


def mapping_line(o):
    flags = ", Flags: has_functions has_filenames has_line_numbers has_inline_frames" if o.layout == "v1.7" else ""
    return ("    Mapping: libzq28.so, Start: 0x1111000, Limit: 0x2222000, Offset: 0x3333, "
            "BuildID: gnu:gnuid-zq29, BuildID: htlhash:htl-zq30, map-attr-zq31: mval" + flags)


def frames_shown(o):
    return (o.line("Instrumentation: native, Function: fn-name-zq25, File: file-zq27.c, Line: 4242, Column: 17") and
            o.line("Instrumentation: go, Function: fn2-zq34, File: file2-zq35.go, Line: 99, Column: 3") and
            [f.get("function") for f in o.frames[:2]] == ["fn-name-zq25", "fn2-zq34"])


def sample_type_shown(o):
    if o.layout == "v1.7":     # the list, and the default (index 1) as the sample type
        st = o.o["profile"]["sample_types"]
        return (o.line("  SampleType: [stype2-zq15, sunit2-zq15b]") and
                o.line("  SampleType[0]: [stype-zq13, sunit-zq14] (aggregation_temporality: 2)") and
                o.line("  SampleType[1]: [stype2-zq15, sunit2-zq15b]") and
                o.o["profile"]["sample_type"]["type"] == "stype2-zq15" and len(st) == 2 and
                st[0] == {"type": "stype-zq13", "unit": "sunit-zq14", "aggregation_temporality": 2})
    return (o.line(f"  SampleType: [stype-zq13, sunit-zq14]{agg(o, 2)}") and
            o.o["profile"]["sample_type"] == {"type": "stype-zq13", "unit": "sunit-zq14",
                                              "aggregation_temporality": 2 if o.layout == "v1.8" else 0})


def link_shown(o):
    return (o.line(f"  Link: trace_id={TRACE.hex()}, span_id={SPAN.hex()}") and
            o.o["sample"]["link"] == {"trace_id": TRACE.hex(), "span_id": SPAN.hex()})


def resource_attr(key, text, value, typ):
    return lambda o: o.line(f"  {key}: {text}") and o.attr(o.o["resource"]["attributes"], key, value, type=typ)


def prof_attr(o):
    return (o.line("  prof-attr-zq19: pval (unit: punit-zq20)") and
            o.attr(o.o["profile"]["attributes"], "prof-attr-zq19", "pval", unit="punit-zq20"))


def sample_attr(o):
    return (o.line("  thread.name: samp-zq23 (unit: sunit-zq33)") and
            o.attr(o.o["sample"]["attributes"], "thread.name", "samp-zq23", unit="sunit-zq33"))


def location_attrs(o):
    folded = ", IsFolded: true" if o.layout == "v1.7" else ""
    f = o.frames[0]
    return (o.line("    Location: loc-attr-zq24: lval" + folded) and
            f.get("is_folded") == (o.layout == "v1.7") and
            f.get("location_attributes") == [{"key": "loc-attr-zq24", "type": "string", "value": "lval"}] and
            f.get("type") == "native")


def mapping_shown(o):
    f = o.frames[0]
    m = f.get("mapping_info") or {}
    return (o.line(mapping_line(o)) and f.get("mapping") == "libzq28.so" and
            (m.get("start"), m.get("limit"), m.get("offset")) == ("0x1111000", "0x2222000", "0x3333") and
            m.get("build_ids") == [{"kind": "gnu", "id": "gnuid-zq29"}, {"kind": "htlhash", "id": "htl-zq30"}] and
            o.attr(m.get("attributes", []), "map-attr-zq31", "mval"))


def mapping_flags(o):
    return (o.line(mapping_line(o)) and (o.frames[0].get("mapping_info") or {}).get("flags") ==
            ["has_functions", "has_filenames", "has_line_numbers", "has_inline_frames"])


def function_shown(o):
    f = o.frames[0]
    return (o.line("    Function: SystemName: _Z3fnzq26, StartLine: 4000") and
            f.get("system_name") == "_Z3fnzq26" and f.get("start_line") == 4000)


def entity_ref(o):
    return (o.line("  EntityRef[0]: type=k8s.pod, schema_url=https://entity.example/zq8, "
                   "id_keys=[k8s.pod.uid, k8s.pod.name], description_keys=[k8s.pod.label]") and
            o.o["resource"]["entity_refs"] == [{"type": "k8s.pod", "schema_url": "https://entity.example/zq8",
                                                "id_keys": ["k8s.pod.uid", "k8s.pod.name"],
                                                "description_keys": ["k8s.pod.label"]}])


def scope_shown(o):
    sc = o.o["scope"]
    return (o.line("  Scope: scope-zq10 9.8.7") and o.line("    scope-attr-zq11: scope-val") and
            sc["name"] == "scope-zq10" and sc["version"] == "9.8.7" and
            o.attr(sc["attributes"], "scope-attr-zq11", "scope-val"))


def comments(o):
    return (o.line("  Comment[0]: comment-zq21") and o.line("  Comment[1]: comment-zq22") and
            o.o["profile"]["comments"] == ["comment-zq21", "comment-zq22"])


def timestamps(o):
    return (all(o.line(f"  Timestamp[{i}]: {t} ({go_time(t)})") for i, t in enumerate(TS)) and
            o.o["sample"]["timestamps_unix_nano"] == TS)


def values(o):
    return (o.line("  Value[0]: 111") and o.line("  Value[1]: 222") and o.o["sample"]["values"] == [111, 222])


def period_type(o):
    return (o.line(f"  PeriodType: [ptype-zq16, punit-zq17]{agg(o, 1)}") and
            o.o["profile"]["period_type"] == {"type": "ptype-zq16", "unit": "punit-zq17",
                                              "aggregation_temporality": 1 if o.layout in ("v1.8", "v1.7") else 0})


def any_value(o):
    """Each AnyValue member the layout has, on its resource attribute."""
    return all(f(o) for k, f in ANY_VALUES.items() if f"AnyValue.{k}" not in NOT_IN_LAYOUT.get(o.layout, ()))


ANY_VALUES = {
    "string_value": resource_attr("res-string", "res-string-zq1", "res-string-zq1", "string"),
    "bool_value": resource_attr("res-bool", "true", True, "bool"),
    "int_value": resource_attr("res-int", "7340033", 7340033, "int"),
    "double_value": resource_attr("res-double", "2.71828", 2.71828, "double"),
    "array_value": resource_attr("res-array", '["arr-elt-zq2",42]', ["arr-elt-zq2", 42], "array"),
    "kvlist_value": resource_attr("res-kvlist", '{"kv-key-zq3":"kv-val-zq4"}', {"kv-key-zq3": "kv-val-zq4"}, "kvlist"),
    "bytes_value": resource_attr("res-bytes", "feedface", "feedface", "bytes"),
    "string_value_strindex": resource_attr("res-strindex", "strindex-value-zq5", "strindex-value-zq5", "string"),
}

PLACES = {
    # the request, and the containers: seen through what they hold
    "ExportProfilesServiceRequest.resource_profiles": lambda o: o.line(fx.RESOURCE_BANNER) and "resource" in o.o,
    "ExportProfilesServiceRequest.dictionary": frames_shown,
    "ResourceProfiles.resource": resource_attr("res-string", "res-string-zq1", "res-string-zq1", "string"),
    "ResourceProfiles.scope_profiles": scope_shown,
    "ResourceProfiles.schema_url": lambda o: o.line("  SchemaURL: https://res.schema/zq9") and
    o.o["resource"]["schema_url"] == "https://res.schema/zq9",
    "Resource.attributes": any_value,
    "Resource.dropped_attributes_count": lambda o: o.line("  Dropped attributes count: 7001") and
    o.o["resource"]["dropped_attributes_count"] == 7001,
    "Resource.entity_refs": entity_ref,
    "EntityRef.schema_url": entity_ref, "EntityRef.type": entity_ref,
    "EntityRef.id_keys": entity_ref, "EntityRef.description_keys": entity_ref,
    "KeyValue.key": resource_attr("res-string", "res-string-zq1", "res-string-zq1", "string"),
    "KeyValue.value": any_value,
    "KeyValue.key_strindex": resource_attr("strindex-key-zq6", "kskv-zq7", "kskv-zq7", "string"),
    "ArrayValue.values": ANY_VALUES["array_value"],
    "KeyValueList.values": ANY_VALUES["kvlist_value"],
    "ScopeProfiles.scope": scope_shown,
    "ScopeProfiles.profiles": lambda o: o.line(fx.PROFILE_BANNER) and "profile" in o.o,
    "ScopeProfiles.schema_url": lambda o: o.line("    SchemaURL: https://scope.schema/zq12") and
    o.o["scope"]["schema_url"] == "https://scope.schema/zq12",
    "InstrumentationScope.name": scope_shown, "InstrumentationScope.version": scope_shown,
    "InstrumentationScope.attributes": scope_shown,
    "InstrumentationScope.dropped_attributes_count": lambda o: o.line("    Dropped attributes count: 7002") and
    o.o["scope"]["dropped_attributes_count"] == 7002,
    # the dictionary's tables: seen through the entries the sample uses
    "ProfilesDictionary.mapping_table": mapping_shown,
    "ProfilesDictionary.location_table": frames_shown,
    "ProfilesDictionary.function_table": frames_shown,
    "ProfilesDictionary.link_table": link_shown,
    "ProfilesDictionary.string_table": frames_shown,
    "ProfilesDictionary.attribute_table": sample_attr,
    "ProfilesDictionary.stack_table": frames_shown,
    "ProfilesDictionary.attribute_units": prof_attr,
    "AttributeUnit.attribute_key_strindex": prof_attr, "AttributeUnit.unit_strindex": prof_attr,
    "KeyValueAndUnit.key_strindex": sample_attr, "KeyValueAndUnit.value": sample_attr,
    "KeyValueAndUnit.unit_strindex": prof_attr,
    "Stack.location_indices": frames_shown,
    "Mapping.memory_start": mapping_shown, "Mapping.memory_limit": mapping_shown,
    "Mapping.file_offset": mapping_shown, "Mapping.filename_strindex": mapping_shown,
    "Mapping.attribute_indices": mapping_shown,
    "Mapping.has_functions": mapping_flags, "Mapping.has_filenames": mapping_flags,
    "Mapping.has_line_numbers": mapping_flags, "Mapping.has_inline_frames": mapping_flags,
    "Location.mapping_index": mapping_shown,
    "Location.address": lambda o: o.frames[0].get("address") == "0x5a5a5a" and
    any(x.startswith("Instrumentation: native, ") for x in o.lines),
    "Location.lines": frames_shown, "Location.line": frames_shown,
    "Location.attribute_indices": location_attrs, "Location.is_folded": location_attrs,
    "Line.function_index": frames_shown, "Line.line": frames_shown, "Line.column": frames_shown,
    "Function.name_strindex": frames_shown, "Function.filename_strindex": frames_shown,
    "Function.system_name_strindex": function_shown, "Function.start_line": function_shown,
    "Link.trace_id": link_shown, "Link.span_id": link_shown,
    # the profile
    "Profile.sample_type": sample_type_shown,
    "Profile.samples": lambda o: o.line(fx.SAMPLE_BANNER) and "sample" in o.o,
    "Profile.sample": lambda o: o.line(fx.SAMPLE_BANNER) and "sample" in o.o,
    "Profile.time_unix_nano": lambda o: o.line(f"  Time: {go_time(TIME)}") and o.o["profile"]["time_unix_nano"] == TIME,
    "Profile.time_nanos": lambda o: o.line(f"  Time: {go_time(TIME)}") and o.o["profile"]["time_unix_nano"] == TIME,
    "Profile.duration_nano": lambda o: o.line("  Duration: 4.321s") and o.o["profile"]["duration_nano"] == 4321000000,
    "Profile.duration_nanos": lambda o: o.line("  Duration: 4.321s") and o.o["profile"]["duration_nano"] == 4321000000,
    "Profile.period_type": period_type,
    "Profile.period": lambda o: o.line("  Period: 1234567") and o.o["profile"]["period"] == 1234567,
    "Profile.profile_id": lambda o: o.line(f"  ProfileID: {PROFILE_ID.hex()}") and
    o.o["profile"]["profile_id"] == PROFILE_ID.hex(),
    "Profile.dropped_attributes_count": lambda o: o.line("  Dropped attributes count: 7003") and
    o.o["profile"]["dropped_attributes_count"] == 7003,
    "Profile.original_payload_format": lambda o: o.line("  OriginalPayload: pprof-zq18, 77 bytes") and
    o.o["profile"]["original_payload_format"] == "pprof-zq18",
    "Profile.original_payload": lambda o: o.line("  OriginalPayload: pprof-zq18, 77 bytes") and
    o.o["profile"]["original_payload_size"] == 77,
    "Profile.attribute_indices": prof_attr,
    "Profile.comment_strindices": comments,
    "Profile.default_sample_type_index": lambda o: o.line("  DefaultSampleTypeIndex: 1") and
    o.o["profile"]["default_sample_type_index"] == 1 and sample_type_shown(o),
    "Profile.location_indices": frames_shown,
    "ValueType.type_strindex": sample_type_shown, "ValueType.unit_strindex": period_type,
    "ValueType.aggregation_temporality": lambda o: sample_type_shown(o) and period_type(o),
    # the sample
    "Sample.stack_index": frames_shown,
    "Sample.locations_start_index": frames_shown, "Sample.locations_length": frames_shown,
    "Sample.attribute_indices": sample_attr,
    "Sample.link_index": link_shown,
    "Sample.values": values, "Sample.value": values,
    "Sample.timestamps_unix_nano": timestamps,
}
PLACES.update({f"AnyValue.{k}": v for k, v in ANY_VALUES.items()})


def test_layout(layout):
    fields = schema_fields(layout)
    unplaced = sorted(fields - PLACES.keys())
    check(f"{layout}: every field of the reference schema has a place in the output "
          f"({len(fields)} fields)", not unplaced, f"no place for: {unplaced}")
    req = build(layout)
    unset = sorted(fields - set_fields(req))
    check(f"{layout}: the request sets every field", not unset, f"not set: {unset}")
    path = fx.write(TMP, f"every-field.{layout}.pb", L.encode(req, "v1.11") if layout == "v1.11" else
                    req.SerializeToString())
    rc, text, err = run_cli("decode", path)
    check(f"{layout}: text decode exits 0", rc == 0, err)
    rc, js, err = run_cli("decode", "--format", "json", path)
    check(f"{layout}: json decode exits 0", rc == 0, err)
    objs = [json.loads(x) for x in js.decode().splitlines()] if rc == 0 else []
    check(f"{layout}: read as {layout}, one sample", len(objs) == 1 and objs[0]["request"]["layout"] == layout,
          js[:300])
    if len(objs) != 1:
        return
    o = Out(layout, text.decode(), objs)
    for name in sorted(fields & PLACES.keys()):
        try:
            ok = PLACES[name](o)
        except (KeyError, IndexError, TypeError) as e:
            ok = f"{type(e).__name__}: {e}"
        check(f"{layout}: {name} is shown", ok is True, text.decode() if ok is False else ok)


for lay in L.LAYOUTS:
    run(f"layout {lay}", lambda lay=lay: test_layout(lay))
done()
