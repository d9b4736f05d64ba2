"""rich_request.py - a v1.11 request (built with lib/otlpgen.py, the reference encoder) that
holds every field the export round trip must keep: several resources and scopes, inlined
lines, mappings with several build ids and offsets, location attributes beside the frame type,
units, links, values with and without timestamps, nested arrays and kvlists with every scalar
type, an original payload, an empty profile, resource entity refs (several, with several id and
description keys, an empty key among them). Shared by export_roundtrip.py and
clickhouse_export.py.
"""
import otlpgen


def rich_request():
    """Everything a v1.11 request can carry, in one request."""
    b = otlpgen.Builder()
    d = b.req.dictionary
    inner = b.function("inlined_helper", "helper.h")
    outer = b.function("caller", "main.c")
    fn = d.function_table[outer]
    fn.system_name_strindex, fn.start_line = b.s("_Z6callerv"), 40
    mapping = b.mapping("libapp.so", build_id="0123456789abcdef")
    m = d.mapping_table[mapping]
    m.file_offset = 0x2000
    m.attribute_indices.append(b.attr("process.executable.build_id.htlhash", "fedcba9876543210"))
    inlined = b.location("native", [(inner, 12), (outer, 44)], mapping=mapping, address=0x1234)
    d.location_table[inlined].lines[0].column = 5
    unsym = b.location("native", mapping=mapping, address=0x5678)
    d.location_table[unsym].attribute_indices.append(b.attr("custom.location.note", "hot"))
    kernel = b.location("kernel", [(b.function("do_syscall_64"), 0)])
    nomap = b.location("native", address=0x9abc)
    s1 = b.stack([inlined, unsym, kernel])
    s2 = b.stack([nomap, inlined])
    s3 = b.stack([kernel])
    link = b.link(bytes(range(1, 17)), bytes(range(1, 9)))
    thread = b.attr("thread.name", "worker-1")
    pid = b.attr("process.pid", 4242)
    mem = b.attr("process.memory", 1.5)
    flag = b.attr("sampled", True)
    raw = d.attribute_table.add()
    raw.key_strindex = b.s("raw.bytes")
    raw.value.bytes_value = b"\x00\xffbytes"
    rawi = len(d.attribute_table) - 1
    unit = d.attribute_table.add()
    unit.key_strindex, unit.unit_strindex = b.s("alloc.size"), b.s("By")
    unit.value.int_value = 4096
    uniti = len(d.attribute_table) - 1
    # arrays and kvlists, nested, with every scalar type (1 and 1.0 must stay apart)
    arr = d.attribute_table.add()
    arr.key_strindex = b.s("list")
    for v in ("s", 1, 1.0, True):
        otlpgen.set_value(arr.value.array_value.values.add(), v)
    arr.value.array_value.values.add().bytes_value = b"\x01\x02"
    arr.value.array_value.values.add()   # an empty value
    inner = arr.value.array_value.values.add().kvlist_value.values.add()
    inner.key = "nested"
    inner.value.array_value.values.add().int_value = -5
    arri = len(d.attribute_table) - 1
    arr2 = d.attribute_table.add()   # the same but 1 as a double: another attribute
    arr2.CopyFrom(arr)
    arr2.value.array_value.values[1].double_value = 1.0
    arr2i = len(d.attribute_table) - 1
    kvl = d.attribute_table.add()
    kvl.key_strindex = b.s("map")
    e = kvl.value.kvlist_value.values.add()
    e.key, e.value.string_value = "k", "v"
    e = kvl.value.kvlist_value.values.add()
    e.key_strindex = b.s("by.index")   # a reference-based key, resolved by the decoder
    e.value.string_value_strindex = b.s("by.index.value")
    kvli = len(d.attribute_table) - 1

    sp = b.resource(service_name="app", host_id=7, ratio=0.25, debug=False)
    tags = b.req.resource_profiles[-1].resource.attributes.add(key="tags")
    for v in ("a", 2):
        otlpgen.set_value(tags.value.array_value.values.add(), v)
    sp.scope.attributes.add(key="scope.attr").value.string_value = "x"
    sp.scope.dropped_attributes_count = 2
    sp.schema_url = "https://opentelemetry.io/schemas/1.30.0"
    p = b.profile(sp)
    p.attribute_indices.extend([b.attr("profile.note", "first"), uniti])
    p.dropped_attributes_count = 3
    p.original_payload_format = "pprof"
    p.original_payload = b"\x1f\x8b raw original bytes \x00"
    b.sample(p, s1, timestamps=[1758603335517877230, 1758603335617877230], values=[10, 20],
             attributes=[thread, pid, arri, kvli], link=link)
    b.sample(p, s2, timestamps=[1758603336517877230], attributes=[mem, flag, rawi])
    b.sample(p, s3, values=[7], attributes=[uniti, arr2i])
    b.sample(p, s1, timestamps=[1758603337517877230, 1758603337617877230, 1758603337717877230])
    off = b.profile(sp, sample_type="off_cpu", unit="nanoseconds")
    b.sample(off, s3, values=[123456], timestamps=[1758603338517877230])
    b.profile(sp, sample_type="empty", unit="count")   # no samples at all

    rp = b.req.resource_profiles
    rp[0].schema_url = "https://opentelemetry.io/schemas/1.29.0"
    rp[0].resource.dropped_attributes_count = 1
    # entity refs, in order: a service with two id keys and two description keys, a host with
    # an id key only and no schema_url, a third with an empty key and only description keys
    ref = rp[0].resource.entity_refs.add()
    ref.schema_url, ref.type = "https://opentelemetry.io/schemas/1.30.0", "service"
    ref.id_keys.extend(["service.name", "service.namespace"])
    ref.description_keys.extend(["service.version", "deployment.environment"])
    ref = rp[0].resource.entity_refs.add()
    ref.type = "host"
    ref.id_keys.append("host.id")
    ref = rp[0].resource.entity_refs.add()
    ref.type = "process"
    ref.description_keys.extend(["", "process.command_line", "service.name"])
    sp2 = rp[0].scope_profiles.add()   # a second scope in the same resource
    sp2.scope.name, sp2.scope.version = "second-scope", "2.0"
    p2 = b.profile(sp2)
    b.sample(p2, s2, values=[5, 6], timestamps=[1758603339517877230, 1758603339617877230])

    sp3 = b.resource(container_id="c0ffee")
    ref = rp[-1].resource.entity_refs.add()   # the same keys on another resource
    ref.type = "container"
    ref.id_keys.extend(["container.id", "service.name"])
    p3 = b.profile(sp3)
    b.sample(p3, s1, values=[1])
    return b.req
