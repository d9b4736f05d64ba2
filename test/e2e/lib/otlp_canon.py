"""The canonical form of an ExportProfilesServiceRequest, in any layout, read with the reference
protobuf library (python3-protobuf): what "the same request" means for the export round trip.

Every index is followed into the dictionary, so two requests with the same content and
different dictionaries (order, duplicates, what is shared) have equal canonical forms. What a
v1.11 request cannot carry (v1.7/v1.8 comments, aggregation temporality, v1.7's other sample
types, is_folded and the mappings' has_* flags) is left out, as are ScopeProfiles without any
profile (the store keeps scopes through their profiles). docs/export.md says the same in prose.

    canon(data, layout) -> [resource, ...]
    resource = (attributes, dropped, schema_url, [scope, ...], [entity_ref, ...])
    entity_ref = (schema_url, type, [id key, ...], [description key, ...]) in wire order
    scope    = (name, version, attributes, dropped, schema_url, [profile, ...])
    profile  = (sample_type, period_type, period, time, duration, profile_id, dropped,
                original_payload_format, original_payload, attributes, [sample, ...])
    sample   = ([location, ...] leaf first, attributes, link or None, values, timestamps)
    location = (mapping or None, address, [line, ...] innermost first, attributes)
    mapping  = (memory_start, memory_limit, file_offset, file name, attributes)
    line     = ((function name, system name, file name, start line), line, column)
    attribute = (key, value, unit) for indexed attributes, (key, value) for KeyValues;
    value = (kind, payload), arrays and kvlists nested the same way.
"""
import otlpgen  # noqa: F401  (compiles the v1.11 schemas)
import otlpgen_layouts  # noqa: F401  (compiles the older layouts' schemas)
import profiles_service_pb2 as service
import profiles_v1_7_pb2 as p7
import profiles_v1_8_pb2 as p8
import profiles_v1_9_pb2 as p9

MODULES = {"v1.11": service, "v1.10": service, "v1.9": p9, "v1.8": p8, "v1.7": p7}


def parse(data, layout):
    req = MODULES[layout].ExportProfilesServiceRequest()
    req.ParseFromString(data)
    return req


def canon(data, layout):
    req = parse(data, layout)
    return _Canon(req, layout).resources()


def split_stream(data):
    """The requests of a 4-byte big-endian length-prefixed stream."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    if pos != len(data):
        raise ValueError("truncated length-prefixed stream")
    return out


class _Canon:
    def __init__(self, req, layout):
        self.req = req
        self.d = req.dictionary
        self.v17 = layout == "v1.7"
        self.units = {}
        if self.v17:
            for u in self.d.attribute_units:
                self.units[self.s(u.attribute_key_strindex)] = self.s(u.unit_strindex)

    def s(self, i):
        return self.d.string_table[i] if i or len(self.d.string_table) else ""

    def value(self, v):
        kind = v.WhichOneof("value")
        if kind is None:
            return ("empty", None)
        if kind == "string_value_strindex":
            return ("string", self.s(v.string_value_strindex))
        if kind == "array_value":
            return ("array", tuple(self.value(x) for x in v.array_value.values))
        if kind == "kvlist_value":
            return ("kvlist", tuple((kv.key or self.s(kv.key_strindex), self.value(kv.value))
                                    for kv in v.kvlist_value.values))
        return (kind.replace("_value", ""), getattr(v, kind))

    def keyvalues(self, kvs):
        return tuple((kv.key or self.s(kv.key_strindex), self.value(kv.value)) for kv in kvs)

    def attr(self, i):
        a = self.d.attribute_table[i]
        if self.v17:   # KeyValue, units in attribute_units
            key = a.key or self.s(a.key_strindex)
            return (key, self.value(a.value), self.units.get(key, ""))
        return (self.s(a.key_strindex), self.value(a.value), self.s(a.unit_strindex))

    def attrs(self, indices):
        return tuple(self.attr(i) for i in indices)

    def function(self, i):
        f = self.d.function_table[i] if len(self.d.function_table) else None
        if f is None:
            return ("", "", "", 0)
        return (self.s(f.name_strindex), self.s(f.system_name_strindex), self.s(f.filename_strindex),
                f.start_line)

    def location(self, i):
        loc = self.d.location_table[i]
        if self.v17:   # optional: an explicit 0 is entry 0
            has_map = loc.HasField("mapping_index") and len(self.d.mapping_table) > 0
        else:
            has_map = loc.mapping_index != 0
        mapping = None
        if has_map:
            m = self.d.mapping_table[loc.mapping_index]
            mapping = (m.memory_start, m.memory_limit, m.file_offset, self.s(m.filename_strindex),
                       self.attrs(m.attribute_indices))
        lines = loc.line if self.v17 else loc.lines
        return (mapping, loc.address,
                tuple((self.function(ln.function_index), ln.line, ln.column) for ln in lines),
                self.attrs(loc.attribute_indices))

    def sample(self, p, smp):
        if self.v17:
            start, n = smp.locations_start_index, smp.locations_length
            locs = p.location_indices[start:start + n]
            has_link = smp.HasField("link_index")
            values = smp.value
        else:
            locs = self.d.stack_table[smp.stack_index].location_indices if len(self.d.stack_table) else []
            has_link = smp.link_index != 0
            values = smp.values
        link = None
        if has_link:
            ln = self.d.link_table[smp.link_index]
            link = (ln.trace_id, ln.span_id)
        return (tuple(self.location(i) for i in locs), self.attrs(smp.attribute_indices), link,
                tuple(values), tuple(smp.timestamps_unix_nano))

    def value_type(self, vt):
        return (self.s(vt.type_strindex), self.s(vt.unit_strindex))

    def profile(self, p):
        if self.v17:
            types = list(p.sample_type)
            i = p.default_sample_type_index
            st = self.value_type(types[i]) if 0 <= i < len(types) else ("", "")
            time, duration, samples = p.time_nanos, p.duration_nanos, p.sample
        else:
            st = self.value_type(p.sample_type)
            time, duration, samples = p.time_unix_nano, p.duration_nano, p.samples
        return (st, self.value_type(p.period_type), p.period, time, duration, p.profile_id,
                p.dropped_attributes_count, p.original_payload_format, p.original_payload,
                self.attrs(p.attribute_indices), tuple(self.sample(p, s) for s in samples))

    def resources(self):
        out = []
        for rp in self.req.resource_profiles:
            scopes = []
            for sp in rp.scope_profiles:
                if not sp.profiles:
                    continue
                sc = sp.scope
                scopes.append((sc.name, sc.version, self.keyvalues(sc.attributes), sc.dropped_attributes_count,
                               sp.schema_url, tuple(self.profile(p) for p in sp.profiles)))
            r = rp.resource
            refs = tuple((e.schema_url, e.type, tuple(e.id_keys), tuple(e.description_keys)) for e in r.entity_refs)
            out.append((self.keyvalues(r.attributes), r.dropped_attributes_count, rp.schema_url, tuple(scopes), refs))
        return out


def first_difference(a, b, path="request"):
    """Where two canonical forms first differ, for a readable failure."""
    if type(a) is not type(b) or not isinstance(a, (list, tuple)):
        return None if a == b else "%s: %r != %r" % (path, a, b)
    if len(a) != len(b):
        return "%s: %d items != %d items" % (path, len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b)):
        d = first_difference(x, y, "%s[%d]" % (path, i))
        if d:
            return d
    return None
