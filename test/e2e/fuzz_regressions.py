#!/usr/bin/python3
"""fuzz_regressions.py - end-to-end checks for the bugs the fuzzers (test/fuzz/) found, each
on a request built by the reference protobuf library in the shape that triggered it.

Why here: these were undefined behaviour (a pointer computed as NULL + 0) that only clang's
UBSan reports, and CI's sanitized run uses gcc. So each check asserts the behaviour a user
sees, written by hand from the request, and fails on any sanitizer report when the binary
under test is a clang-sanitized build. The same shapes are also fuzz seeds (test/fuzz/seeds.py
"regress-*"), replayed first by every fuzz run.
Environment: LAZYBACKEND (the binary).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from server import run_cli as lb  # noqa: E402

TMP = fx.tempdir("lb-fuzz-regressions-")


def clean(err):
    return "runtime error" not in err and "Sanitizer" not in err


def test_v17_sample_with_an_empty_stack():
    """v1.7 keeps stacks as slices of the profile's location_indices: a sample whose slice is
    empty, in a profile with no location_indices at all, is a sample without frames."""
    b = otlpgen.Builder()
    p = b.profile(b.resource(service_name="svc"))
    b.sample(p, 0, timestamps=[1])   # stack 0: the null (empty) stack
    path = fx.write(TMP, "empty-stack.v1.7.pb", L.encode(b.req, "v1.7"))
    rc, out, err = lb("decode", "--format", "json", "--proto-version", "v1.7", path)
    lines = out.decode().splitlines()
    sample = json.loads(lines[0]).get("sample", {}) if len(lines) == 1 else {}
    check("v1.7 empty stack: decoded (exit 0), no sanitizer report", rc == 0 and clean(err), err)
    check("v1.7 empty stack: one sample, no frames, its timestamp",
          sample.get("frames") == [] and sample.get("timestamps_unix_nano") == [1], out)


def test_v111_sample_with_an_empty_stack():
    """v1.11: the only stack of the request (the null stack_table entry) is empty, in a fresh
    decoder (a new process): the memoised stack had no storage to point into."""
    b = otlpgen.Builder()
    p = b.profile(b.resource(service_name="svc"))
    b.sample(p, 0, timestamps=[1])   # stack 0: the null (empty) stack
    b.sample(p, 0, timestamps=[2])   # the same stack again: from the memo
    path = fx.write(TMP, "empty-stack.v1.11.pb", L.encode(b.req, "v1.11"))
    rc, out, err = lb("decode", "--format", "json", "--proto-version", "v1.11", path)
    lines = out.decode().splitlines()
    samples = [json.loads(line).get("sample", {}) for line in lines]
    check("v1.11 empty stack: decoded (exit 0), no sanitizer report", rc == 0 and clean(err), err)
    check("v1.11 empty stack: two samples, no frames, their timestamps",
          [(s.get("frames"), s.get("timestamps_unix_nano")) for s in samples] == [([], [1]), ([], [2])], out)


def test_v17_empty_packed_field():
    """A packed repeated field may be present with no values: a v1.7 Profile whose
    location_indices (field 3) is an empty LEN, written byte by byte here, is a profile without
    location indices, and its vector, never grown, must not be pointed past."""
    # resource_profiles { scope_profiles { profiles { location_indices: (0 bytes) } } }
    path = fx.write(TMP, "empty-packed.v1.7.pb", bytes([0x0a, 6, 0x12, 4, 0x12, 2, 0x1a, 0]))
    rc, out, err = lb("decode", "--detect", path)
    check("v1.7 empty packed field: detected as v1.7", rc == 0 and b"request 0: v1.7" in out, out.decode() + err)
    rc, out, err = lb("decode", "--format", "text", path)
    check("v1.7 empty packed field: decoded (exit 0), no sanitizer report", rc == 0 and clean(err), err)


run("v1.7 empty stack", test_v17_sample_with_an_empty_stack)
run("v1.7 empty packed field", test_v17_empty_packed_field)
run("v1.11 empty stack", test_v111_sample_with_an_empty_stack)
done()
