#!/usr/bin/python3
"""export_pprof.py - `lazybackend export --format pprof` writes what `go tool pprof` reads, with
the weights the fixtures stand for.

Each fixture is stored (`decode --sink sqlite`) and exported as pprof; `go tool pprof` (the
Debian golang-go package) reads the file: `-traces` gives every sample's stack, which summed
per stack must equal the fixture's independent `.folded` file (unsymbolized frames, which pprof
names by their mapping, compared as such); `-top` gives each function's flat and cumulative
weight, which must equal the figures computed from the fixture with the reference protobuf
library (lib/fixture_model.py) and `lazybackend top`'s SELF and TOTAL; `-raw` gives the period,
the time and duration, and every location (address, mapping, each line's function, system name,
file, line and start line) and mapping (range, offset, file, preferred build id), which must be
those the fixture's samples use, read from the v1.11 fixture with the reference protobuf
library. Also: the header (sample type, build id, time, total), numeric labels with units, one
file per sample type and `--sample-type`, and that a store without samples writes no file.
Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures). Needs `go` (golang-go).
"""
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import fixture_model  # noqa: E402
import otlpgen  # noqa: E402
from server import run_cli as lb  # noqa: E402
from pprof_tool import pprof_name, traces, top_rows, expected_top, raw_profile, expected_raw  # noqa: E402

TMP = fx.tempdir("lb-pprof-")
GO = shutil.which("go")
ENV = dict(os.environ, HOME=TMP, GOCACHE=os.path.join(TMP, "gocache"), PPROF_TMPDIR=TMP,
           PPROF_BINARY_PATH=TMP, TZ="UTC")


def pprof(*args):
    p = subprocess.run([GO, "tool", "pprof", "-symbolize=none", *args], capture_output=True,
                       timeout=300 * fx.SLOW, env=ENV)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def store(name, data):
    db = os.path.join(TMP, name + ".db")
    path = fx.write(TMP, name + ".pb", data)
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", db, path)
    if rc != 0:
        raise RuntimeError(err)
    return db


def fixture_v111():
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.ParseFromString(fx.read("ebpf-jvm-go.v1.11.pb"))
    return req


# Every fixture holds the same profiles in another layout: one expectation for all of them.
RAW_WANT = expected_raw(fixture_v111(), "samples")


def test_fixture(path):
    name = os.path.basename(path)
    db = store(name, open(path, "rb").read())
    out = os.path.join(TMP, name + ".prof")
    rc, _, err = lb("export", "--db", db, "--format", "pprof", "--output", out)
    files = sorted(glob.glob(out + ".*.pb.gz"))
    check("%s: one pprof file per sample type" % name, rc == 0 and files == [out + ".samples.pb.gz"], err)
    if not files:
        return
    rc, text, perr = pprof("-traces", files[0])
    check("%s: go tool pprof -traces reads it" % name, rc == 0, perr)
    want = collections.Counter()
    for line in fx.folded().decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        want[tuple(pprof_name(f) for f in reversed(stack.split(";")))] += int(w)
    got = traces(text)
    check("%s: every stack and its weight as in the .folded file (%d stacks)" % (name, len(want)),
          got == want, "missing %s\nextra %s" % (list(set(want) - set(got))[:2], list(set(got) - set(want))[:2]))
    model = fixture_model.load(fixture_model.fixture_path(fx.FIX))
    total = sum(s.weight for s in model)
    check("%s: the header: type, build id, time, total %d" % (name, total),
          "Type: samples" in text and "Build ID: " in text and "Time: Oct 31, 2025" in text and
          "Total samples = %d" % total in text, text[:400])
    check("%s: numeric labels stay numbers" % name, re.search(r"process\.pid:\s+\d+", text), text[:800])
    rc, text, perr = pprof("-top", "-nodefraction=0", "-nodecount=100000", files[0])
    rows = top_rows(text)
    exp = expected_top(model)
    check("%s: -top flat and cum per function equal the fixture's (%d functions)" % (name, len(exp)),
          rc == 0 and rows == exp, "%s\n%s" % (perr, sorted(set(rows.items()) ^ set(exp.items()))[:6]))
    rc, text, perr = pprof("-raw", files[0])
    got, want = raw_profile(text), RAW_WANT
    for key in ("period_type", "period", "time", "duration"):
        check("%s: -raw %s %s" % (name, key, want[key]), rc == 0 and got.get(key) == want[key],
              "%r %s" % (got.get(key), perr))
    check("%s: -raw: every location with its mapping and lines (%d locations)"
          % (name, len(want["locations"])),
          rc == 0 and got["locations"] == want["locations"],
          "missing %s\nextra %s" % (sorted(want["locations"] - got["locations"], key=str)[:2],
                                     sorted(got["locations"] - want["locations"], key=str)[:2]))
    check("%s: -raw: every mapping with its range, offset, file and build id (%d mappings)"
          % (name, len(want["mappings"])),
          rc == 0 and got["mappings"] == want["mappings"],
          "missing %s\nextra %s" % (sorted(want["mappings"] - got["mappings"], key=str)[:2],
                                     sorted(got["mappings"] - want["mappings"], key=str)[:2]))
    rc, ours, err = lb("top", "--db", db, "--limit", "0")
    mine = {}
    for line in ours.decode().splitlines()[2:]:
        parts = line.split(None, 4)
        if len(parts) == 5 and "+0x" not in parts[4]:
            mine[parts[4]] = (int(parts[0]), int(parts[2]))
    symbolized = {k: v for k, v in rows.items() if not k.startswith("[") and k != "<unknown>"}
    check("%s: -top equals `lazybackend top` for every symbolized function" % name,
          mine == symbolized and mine, sorted(set(mine.items()) ^ set(symbolized.items()))[:6])


def test_types_and_labels():
    b = otlpgen.Builder()
    fn = b.function("work", "work.c")
    stack = b.stack([b.location("native", [(fn, 3)])])
    unit = b.req.dictionary.attribute_table.add()
    unit.key_strindex, unit.unit_strindex = b.s("alloc.size"), b.s("bytes")
    unit.value.int_value = 4096
    ui = len(b.req.dictionary.attribute_table) - 1
    sp = b.resource(service_name="svc")
    p = b.profile(sp)
    b.sample(p, stack, timestamps=[1758603335517877230] * 3, attributes=[ui, b.attr("thread.name", "t1")])
    off = b.profile(sp, sample_type="off_cpu", unit="nanoseconds")
    b.sample(off, stack, values=[700, 300])
    db = store("types", b.bytes())
    prefix = os.path.join(TMP, "types")
    rc, _, err = lb("export", "--db", db, "--format", "pprof", "--output", prefix)
    files = sorted(os.path.basename(f) for f in glob.glob(prefix + ".*.pb.gz"))
    check("two sample types, two files", rc == 0 and files == ["types.off_cpu.pb.gz", "types.samples.pb.gz"],
          "%s %s" % (files, err))
    rc, text, perr = pprof("-traces", prefix + ".off_cpu.pb.gz")
    check("off_cpu: the values' sum, in nanoseconds", rc == 0 and re.search(r"\b1us\b|\b1000ns\b", text) and
          "Type: off_cpu" in text, text + perr)
    rc, text, perr = pprof("-traces", prefix + ".samples.pb.gz")
    check("a numeric label keeps its unit", rc == 0 and re.search(r"alloc\.size:\s+4(kB|KiB|\.00kB|096B)", text),
          text + perr)
    check("string labels", "thread.name:  t1" in text, text)
    one = os.path.join(TMP, "only.pb.gz")
    rc, _, err = lb("export", "--db", db, "--format", "pprof", "--sample-type", "off_cpu", "--output", one)
    rc2, text, perr = pprof("-top", one)
    check("--sample-type with --output writes that one file", rc == 0 and rc2 == 0 and "Type: off_cpu" in text,
          err + perr)
    rc, _, err = lb("export", "--db", db, "--format", "pprof", "--where", "thread.name=nobody",
                    "--output", os.path.join(TMP, "none"))
    check("nothing matched: exit 1, no file", rc == 1 and "no samples matched" in err and
          not glob.glob(os.path.join(TMP, "none*")), err)


if not GO:
    check("go tool pprof is installed (golang-go)", False, "go not found in PATH")
else:
    for path in [fx.path(n) for n in fx.FIXTURE_FILES]:
        run("pprof of " + os.path.basename(path), lambda p=path: test_fixture(p))
    run("sample types and labels", test_types_and_labels)
done()
