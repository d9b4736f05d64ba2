#!/usr/bin/python3
"""text_switches.py - the text format's detail switches (--no-resource-attributes,
--no-profile-attributes, --no-sample-attributes, --no-frames, --no-file-line), with the
Collector exporter's semantics.

Two kinds of expectation, neither produced by the code under test:
  - golden files written by hand (test/golden/details*.txt) for a small request built with
    otlpgen that has every line kind (profile attributes, values, a link, inlined, kernel and
    unsymbolized frames with and without a mapping);
  - on the fixture, the reviewed golden file test/golden/ebpf-jvm-go.v1.11.txt with the
    switch's lines removed or shortened here, line by line, by the grammar's rules.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
from server import run_cli  # noqa: E402

TMP = fx.tempdir("lb-switches-")
SWITCHES = ["--no-resource-attributes", "--no-profile-attributes", "--no-sample-attributes",
            "--no-frames", "--no-file-line"]

RESOURCE = fx.RESOURCE_BANNER
PROFILE = fx.PROFILE_BANNER
SAMPLE = fx.SAMPLE_BANNER
DASHES = "-" * 51
TILDES = "~" * 48


def decode(path, *args):
    return run_cli("decode", *args, path)


def details_request():
    b = otlpgen.Builder()
    libc = b.mapping("libc.so.6", build_id="abcdef0123")
    k = b.location("kernel", [(b.function("do_syscall_64"), 0)])
    n1 = b.location("native", mapping=libc, address=0x29d64)
    n2 = b.location("native", address=0x1234)
    g = b.location("go", [(b.function("main.inner", "main.go"), 3), (b.function("main.outer", "main.go"), 9)])
    p = b.profile(b.resource(container_id="c1", service_name="api"), "samples", "count")
    p.attribute_indices.append(b.attr("profile.kind", "cpu"))
    b.sample(p, b.stack([k, n1, n2, g]), timestamps=[1758603335517877230, 1758603336000000000],
             attributes=[b.attr("thread.name", "main"), b.attr("process.pid", 42)])
    b.sample(p, b.stack([g]), timestamps=[1758603337000000001], values=[3],
             link=b.link(bytes(range(16)), bytes(range(8))))
    return fx.write(TMP, "details.pb", b.bytes())


def test_goldens():
    path = details_request()
    cases = [("details.txt", [])] + [(f"details.{s[2:]}.txt", [s]) for s in SWITCHES] + \
            [("details.all-switches.txt", SWITCHES)]
    for golden, args in cases:
        want = fx.golden(golden)
        rc, out, err = decode(path, *args)
        check(f"{' '.join(args) or 'no switch'}: output equals test/golden/{golden}",
              rc == 0 and out == want, err or fx.first_difference(out, want))


# ---- the fixture: the reviewed golden with each switch's lines taken out by hand rules ----

UNSYM = re.compile(r"^(Instrumentation: [^,]*), Function: , File: , Line: 0, Column: 0, (Address: 0x.*)$")
SYM = re.compile(r"^(Instrumentation: [^,]*, Function: .*), File: .*, Line: -?\d+, Column: -?\d+$")


def transform(text, switch):
    out, section = [], None
    for line in text.split("\n"):
        if line in (RESOURCE, PROFILE, SAMPLE):
            section = line
        header = line in (RESOURCE, PROFILE, SAMPLE)
        # "    " lines are not attributes of the block: a scope's details (profile), a frame's
        # details (sample)
        attr = line.startswith("  ") and not line.startswith("    ") and not header
        if switch == "--no-resource-attributes" and section == RESOURCE and attr and re.match(
                r"  (Layout|SchemaURL|Dropped attributes count|EntityRef\[\d+\]): ", line) is None:
            continue
        if switch == "--no-profile-attributes" and section == PROFILE and (line == TILDES or attr and re.match(
                r"  (Scope|ProfileID|Time|Duration|PeriodType|Period|Dropped attributes count|SampleType"
                r"|SampleType\[\d+\]|DefaultSampleTypeIndex|Comment\[\d+\]|OriginalPayload): ", line) is None):
            continue
        if switch == "--no-sample-attributes" and section == SAMPLE and (line == DASHES or attr and re.match(
                r"  (Timestamp\[\d+\]|Value\[\d+\]|Link): ", line) is None):
            continue
        if switch == "--no-frames" and (line.startswith("Instrumentation: ") or
                                        section == SAMPLE and line.startswith("    ")):
            continue
        if switch == "--no-file-line":
            line = UNSYM.sub(r"\1, Function: , \2", line)
            line = SYM.sub(r"\1", line)
        out.append(line)
    return "\n".join(out)


def test_fixture():
    base = fx.golden("ebpf-jvm-go.v1.11.txt").decode()
    path = fx.path()
    for switch in SWITCHES:
        want = transform(base, switch)
        if switch != "--no-profile-attributes":   # the fixture's profiles have no attributes
            check(f"fixture {switch}: the hand rules change the golden", want != base)
        rc, out, err = decode(path, switch)
        check(f"fixture {switch}: the golden file with the switch's lines removed by hand rules",
              rc == 0 and out.decode() == want, err or fx.first_difference(out, want))
    lines = transform(base, "--no-file-line").splitlines()
    check("fixture --no-file-line: both short frame forms occur",
          "Instrumentation: kernel, Function: do_syscall_64" in lines and
          any(re.match(r"^Instrumentation: native, Function: , Address: 0x[0-9a-f]+, Mapping: ", x) for x in lines))


def test_switch_format_combinations():
    path = fx.path()
    rc, out, err = decode(path, "--format", "folded", "--no-frames")
    check("--no-frames with --format folded is refused", rc == 2 and "folded" in err, err)
    rc, out, err = decode(path, "--folded-root", "thread")
    check("--folded-root without --format folded is refused", rc == 2 and "--folded-root" in err, err)


run("goldens", test_goldens)
run("fixture", test_fixture)
run("switch and format combinations", test_switch_format_combinations)
done()
