"""Builds OTLP profiles requests with the reference protobuf library (python3-protobuf).

The tests need requests the fixtures do not contain (bad indices, odd shapes). They are
encoded here by Google's protobuf runtime from our pb/*.proto compiled with protoc, i.e.
by an encoder independent of the nanopb decoder under test. compile_protos() compiles the
other pb/*.proto files a test needs into the same directory, so each module exists once.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PB_DIR = os.path.join(_ROOT, "pb")
# Every module protoc makes for the tests goes here (on sys.path), one copy each.
OUT = tempfile.mkdtemp(prefix="otlpgen-")
atexit.register(shutil.rmtree, OUT, True)
sys.path.insert(0, OUT)


def compile_protos(*files, include=PB_DIR):
    """Compiles .proto files (found in `include`) with protoc into OUT, for import."""
    subprocess.run(["protoc", "-I", include, "--python_out", OUT, *files], check=True)


compile_protos("common.proto", "profiles.proto", "profiles_service.proto")

import common_pb2 as common            # noqa: E402
import profiles_pb2 as profiles        # noqa: E402
import profiles_service_pb2 as service  # noqa: E402

PROFILES_METHOD = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"


def set_value(any_value, value):
    """Sets an AnyValue from a Python bool, int, float or str."""
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    else:
        any_value.string_value = value


class Builder:
    """A request with a dictionary whose tables start with their null entries."""

    def __init__(self):
        self.req = service.ExportProfilesServiceRequest()
        d = self.req.dictionary
        d.mapping_table.add()
        d.location_table.add()
        d.function_table.add()
        d.link_table.add()
        d.string_table.append("")
        d.attribute_table.add()
        d.stack_table.add()
        self._strings = {"": 0}

    def s(self, text):
        if text not in self._strings:
            self._strings[text] = len(self.req.dictionary.string_table)
            self.req.dictionary.string_table.append(text)
        return self._strings[text]

    def attr(self, key, value):
        a = self.req.dictionary.attribute_table.add()
        a.key_strindex = self.s(key)
        set_value(a.value, value)
        return len(self.req.dictionary.attribute_table) - 1

    def function(self, name, filename=""):
        f = self.req.dictionary.function_table.add()
        f.name_strindex = self.s(name)
        f.filename_strindex = self.s(filename)
        return len(self.req.dictionary.function_table) - 1

    def mapping(self, filename, build_id=None):
        m = self.req.dictionary.mapping_table.add()
        m.filename_strindex = self.s(filename)
        m.memory_start, m.memory_limit = 0x1000, 0x100000
        if build_id:
            m.attribute_indices.append(self.attr("process.executable.build_id.gnu", build_id))
        return len(self.req.dictionary.mapping_table) - 1

    def location(self, frame_type, functions=(), mapping=0, address=0):
        loc = self.req.dictionary.location_table.add()
        loc.mapping_index = mapping
        loc.address = address
        for fn, line in functions:
            ln = loc.lines.add()
            ln.function_index = fn
            ln.line = line
        loc.attribute_indices.append(self.attr("profile.frame.type", frame_type))
        return len(self.req.dictionary.location_table) - 1

    def stack(self, locations):
        st = self.req.dictionary.stack_table.add()
        st.location_indices.extend(locations)
        return len(self.req.dictionary.stack_table) - 1

    def link(self, trace_id, span_id):
        ln = self.req.dictionary.link_table.add()
        ln.trace_id, ln.span_id = trace_id, span_id
        return len(self.req.dictionary.link_table) - 1

    def resource(self, **attrs):
        rp = self.req.resource_profiles.add()
        for k, v in attrs.items():
            kv = rp.resource.attributes.add()
            kv.key = k.replace("_", ".")
            set_value(kv.value, v)
        sp = rp.scope_profiles.add()
        sp.scope.name = "otlpgen"
        sp.scope.version = "1"
        return sp

    def profile(self, scope, sample_type="samples", unit="count"):
        p = scope.profiles.add()
        p.sample_type.type_strindex = self.s(sample_type)
        p.sample_type.unit_strindex = self.s(unit)
        p.period_type.type_strindex = self.s("cpu")
        p.period_type.unit_strindex = self.s("nanoseconds")
        p.period = 50000000
        p.time_unix_nano = 1758603335517877230
        p.duration_nano = 5000000000
        p.profile_id = bytes(range(16))
        return p

    def sample(self, profile, stack, timestamps=(), values=(), attributes=(), link=0):
        smp = profile.samples.add()
        smp.stack_index = stack
        smp.timestamps_unix_nano.extend(timestamps)
        smp.values.extend(values)
        smp.attribute_indices.extend(attributes)
        smp.link_index = link
        return smp

    def bytes(self):
        return self.req.SerializeToString()


def one_stack_request():
    """(builder, profile, stack): a request with one resource (service.name svc), one CPU
    profile and one valid one-frame stack (main at main.c:7), for the tests to add samples
    to, good or bad."""
    b = Builder()
    fn = b.function("main", "main.c")
    good = b.stack([b.location("native", [(fn, 7)])])
    p = b.profile(b.resource(service_name="svc"))
    return b, p, good


def decode_response(data):
    resp = service.ExportProfilesServiceResponse()
    resp.ParseFromString(data)
    return resp
