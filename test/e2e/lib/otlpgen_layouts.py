"""Re-encodes an otlpgen (v1.10/v1.11) request in the older proto layouts v1.9, v1.8 and v1.7.

The layout tests need the same content in every layout. Each layout's messages come from
pb/profiles_v1_*.proto compiled by protoc and encoded by the reference protobuf runtime
(python3-protobuf), field by field by name, so the bytes are independent of the C decoder and
detector under test. v1.7 has no stack table: each sample's stack is appended to its
profile's location_indices and the sample points at that slice.

Also: `raw_field` to hand-craft fields the schemas cannot express (unknown field numbers,
wrong wire types).
"""
import otlpgen

otlpgen.compile_protos("profiles_v1_9.proto", "profiles_v1_8.proto", "profiles_v1_7.proto")

import profiles_v1_7_pb2 as p7  # noqa: E402
import profiles_v1_8_pb2 as p8  # noqa: E402
import profiles_v1_9_pb2 as p9  # noqa: E402

LAYOUTS = ("v1.11", "v1.9", "v1.8", "v1.7")

_COMMON_PROFILE_FIELDS = ("time_unix_nano", "duration_nano", "period", "profile_id",
                          "dropped_attributes_count", "original_payload_format",
                          "original_payload")


def _varint(x):
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def raw_field(number, wire_type, payload):
    """One encoded field: payload is an int for VARINT, bytes for LEN/I64/I32."""
    tag = _varint(number << 3 | wire_type)
    if wire_type == 0:
        return tag + _varint(payload)
    if wire_type == 2:
        return tag + _varint(len(payload)) + payload
    return tag + payload


def _copy_sample(s, out):
    out.stack_index = s.stack_index
    out.values.extend(s.values)
    out.attribute_indices.extend(s.attribute_indices)
    out.link_index = s.link_index
    out.timestamps_unix_nano.extend(s.timestamps_unix_nano)


def _copy_profile_rest(p, out):
    """What v1.9 and v1.8 profiles hold as v1.11 does: common fields, attributes, samples."""
    for name in _COMMON_PROFILE_FIELDS:
        setattr(out, name, getattr(p, name))
    out.attribute_indices.extend(p.attribute_indices)
    for s in p.samples:
        _copy_sample(s, out.samples.add())


def _profile_v19(p, out, _dictionary):
    out.sample_type.CopyFrom(p.sample_type)
    out.period_type.CopyFrom(p.period_type)
    _copy_profile_rest(p, out)


def _profile_v18(p, out, _dictionary):
    for src, dst in ((p.sample_type, out.sample_type), (p.period_type, out.period_type)):
        dst.type_strindex, dst.unit_strindex = src.type_strindex, src.unit_strindex
    _copy_profile_rest(p, out)


def _profile_v17(p, out, dictionary):
    st = out.sample_type.add()
    st.type_strindex, st.unit_strindex = p.sample_type.type_strindex, p.sample_type.unit_strindex
    out.period_type.type_strindex = p.period_type.type_strindex
    out.period_type.unit_strindex = p.period_type.unit_strindex
    out.time_nanos, out.duration_nanos, out.period = p.time_unix_nano, p.duration_nano, p.period
    for name in ("profile_id", "dropped_attributes_count", "original_payload_format", "original_payload"):
        setattr(out, name, getattr(p, name))
    out.attribute_indices.extend(p.attribute_indices)
    for s in p.samples:
        stack = dictionary.stack_table[s.stack_index].location_indices if dictionary.stack_table else []
        o = out.sample.add()
        o.locations_start_index = len(out.location_indices)
        o.locations_length = len(stack)
        out.location_indices.extend(stack)
        o.value.extend(s.values)
        o.attribute_indices.extend(s.attribute_indices)
        if s.link_index:            # `optional` in v1.7: unset means no link
            o.link_index = s.link_index
        o.timestamps_unix_nano.extend(s.timestamps_unix_nano)


def _dictionary_v17(d, out):
    strings = list(d.string_table)
    for m in d.mapping_table:
        o = out.mapping_table.add()
        o.memory_start, o.memory_limit, o.file_offset = m.memory_start, m.memory_limit, m.file_offset
        o.filename_strindex = m.filename_strindex
        o.attribute_indices.extend(m.attribute_indices)
    for loc in d.location_table:
        o = out.location_table.add()
        if loc.mapping_index:       # `optional` in v1.7: unset means no mapping
            o.mapping_index = loc.mapping_index
        o.address = loc.address
        for ln in loc.lines:
            o.line.add().CopyFrom(ln)
        o.attribute_indices.extend(loc.attribute_indices)
    out.function_table.extend(d.function_table)
    out.link_table.extend(d.link_table)
    out.string_table.extend(strings)
    for a in d.attribute_table:     # KeyValueAndUnit -> KeyValue with the key inline
        o = out.attribute_table.add()
        if a.key_strindex:
            o.key = strings[a.key_strindex]
        if a.HasField("value"):
            o.value.CopyFrom(a.value)


_MODULES = {"v1.9": (p9, _profile_v19), "v1.8": (p8, _profile_v18), "v1.7": (p7, _profile_v17)}


def encode(req, layout):
    """Serializes an otlpgen request (service.ExportProfilesServiceRequest) in `layout`."""
    if layout in ("v1.11", "v1.10"):
        return req.SerializeToString()
    mod, profile = _MODULES[layout]
    out = mod.ExportProfilesServiceRequest()
    if req.HasField("dictionary"):
        if layout == "v1.7":
            _dictionary_v17(req.dictionary, out.dictionary)
        else:
            out.dictionary.CopyFrom(req.dictionary)
    for rp in req.resource_profiles:
        orp = out.resource_profiles.add()
        if rp.HasField("resource"):
            orp.resource.CopyFrom(rp.resource)
        orp.schema_url = rp.schema_url
        for sp in rp.scope_profiles:
            osp = orp.scope_profiles.add()
            if sp.HasField("scope"):
                osp.scope.CopyFrom(sp.scope)
            osp.schema_url = sp.schema_url
            for p in sp.profiles:
                profile(p, osp.profiles.add(), req.dictionary)
    return out.SerializeToString()
