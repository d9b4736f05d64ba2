"""The fixture request as plain Python facts, read with the reference protobuf library.

Why: the SQLite tests check figures (weights per executable, container, frame type, time
window) that expect.json does not list. They are computed here from the protobuf message
itself, following the rules of the fixtures' README, with no code of lazybackend involved.
"""
import collections
import os

import otlpgen  # compiles pb/*.proto with protoc (the reference encoder/decoder)


def _any(d, v):
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "string_value_strindex":
        return d.string_table[v.string_value_strindex]
    if kind == "int_value":
        return str(v.int_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    return None   # the fixture holds only strings and ints


def _kv_attrs(d, kvs):
    out = {}
    for kv in kvs:
        key = kv.key or d.string_table[kv.key_strindex]
        out[key] = _any(d, kv.value)
    return out


def _indexed_attrs(d, indices):
    out = {}
    for i in indices:
        a = d.attribute_table[i]
        out[d.string_table[a.key_strindex]] = _any(d, a.value)
    return out


def _frames(d, stack_index):
    """[(name, type)] leaf first, one per line of each location (innermost line first)."""
    out = []
    for li in d.stack_table[stack_index].location_indices:
        loc = d.location_table[li]
        ftype = _indexed_attrs(d, loc.attribute_indices).get("profile.frame.type", "unknown")
        if loc.lines:
            for line in loc.lines:
                out.append((d.string_table[d.function_table[line.function_index].name_strindex], ftype))
        else:
            mapping = ""
            if loc.mapping_index:
                mapping = d.string_table[d.mapping_table[loc.mapping_index].filename_strindex]
            out.append(("%s+0x%x" % (mapping, loc.address), ftype))
    return out


Sample = collections.namedtuple(
    "Sample", "resource_attrs sample_attrs timestamps values weight frames sample_type profile_time")


def load(path):
    req = otlpgen.service.ExportProfilesServiceRequest()
    with open(path, "rb") as f:
        req.ParseFromString(f.read())
    d = req.dictionary
    samples = []
    for rp in req.resource_profiles:
        rattrs = _kv_attrs(d, rp.resource.attributes)
        for sp in rp.scope_profiles:
            for p in sp.profiles:
                stype = d.string_table[p.sample_type.type_strindex]
                for s in p.samples:
                    ts = list(s.timestamps_unix_nano)
                    weight = sum(s.values) if len(s.values) else len(ts)
                    samples.append(Sample(rattrs, _indexed_attrs(d, s.attribute_indices), ts,
                                          list(s.values), weight, _frames(d, s.stack_index), stype,
                                          p.time_unix_nano))
    return samples


def attr(sample, key, order):
    """The attribute at the first level (sample / resource) of `order` that has it."""
    for level in order:
        attrs = sample.sample_attrs if level == "sample" else sample.resource_attrs
        if key in attrs:
            return attrs[key] if attrs[key] != "" else "[empty]"
    return "[unknown]"


def executable(s):
    return attr(s, "process.executable.name", ("sample", "resource"))


def container(s):
    return attr(s, "container.id", ("resource", "sample"))


def thread(s):
    return attr(s, "thread.name", ("sample", "resource"))


def fixture_path(fixtures, name="ebpf-jvm-go.v1.11.pb"):
    return os.path.join(fixtures, name)
