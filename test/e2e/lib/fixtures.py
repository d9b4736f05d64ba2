"""What the end-to-end scripts share about their inputs: where the binary and the OTLP
fixtures are, the fixtures' independent expectations (expect.json, the .folded file), the
text format's counts, temporary directories, and readable differences.

Why: every script read the same environment, the same files and parsed the text output the
same way, each with its own copy. The expectations stay outside the code under test: they
come from the fixtures (computed with the reference protobuf library) or are counted here
from the text output line by line, never from lazybackend's own counters.
Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures), SANITIZE (1: slower).
"""
import atexit
import collections
import functools
import json
import os
import re
import shutil
import tempfile

import tap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LB = os.environ.get("LAZYBACKEND") or os.path.join(ROOT, "lazybackend")
FIX = os.environ.get("FIXTURES") or os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "otlp")
SANITIZED = os.environ.get("SANITIZE") == "1"
SLOW = 3 if SANITIZED else 1          # sanitizer builds are slower: stretch waits, not counts
GOLDEN = os.path.join(ROOT, "test", "golden")

FIXTURE = "ebpf-jvm-go.v1.11.pb"      # the default request: layout v1.11
# The same request in every proto layout the fixtures hold (same content, same expectations).
FIXTURE_FILES = ("ebpf-jvm-go.v1.11.pb", "ebpf-jvm-go.v1.11-ascending.pb", "ebpf-jvm-go.v1.9.pb",
                 "ebpf-jvm-go.v1.8.pb")

RESOURCE_BANNER = "--------------- New Resource Profile --------------"
PROFILE_BANNER = "------------------- New Profile -------------------"
SAMPLE_BANNER = "------------------- New Sample --------------------"
FRAME_RE = re.compile(r"^Instrumentation: ([^,]*), ")


def path(name=FIXTURE):
    return os.path.join(FIX, name)


def read(name=FIXTURE):
    """A fixture's bytes."""
    with open(path(name), "rb") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def expect():
    """ebpf-jvm-go.expect.json: the fixture's counts, computed with the reference library."""
    with open(path("ebpf-jvm-go.expect.json")) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def folded():
    """ebpf-jvm-go.folded (bytes): the fixture's folded stacks."""
    return read("ebpf-jvm-go.folded")


def golden(name):
    """A reviewed golden file of test/golden (bytes)."""
    with open(os.path.join(GOLDEN, name), "rb") as f:
        return f.read()


TextCounts = collections.namedtuple("TextCounts", "counts frame_types sample_types layouts")


def text_counts(out, errors="strict"):
    """What the text format shows, counted line by line, independently of the decoder's own
    counters: counts (resource_profiles, profiles, samples, timestamps, frames, values_sum),
    frames per frame type, samples per sample type, and the Layout lines. errors="replace"
    for output that may stop inside a character (a server's stdout read while it writes)."""
    c = collections.Counter()
    frame_types, sample_types, layouts = collections.Counter(), collections.Counter(), collections.Counter()
    current_type = None
    for line in out.decode("utf-8", errors).splitlines():
        if line == RESOURCE_BANNER:
            c["resource_profiles"] += 1
        elif line.startswith("  Layout: "):
            layouts[line[len("  Layout: "):]] += 1
        elif line == PROFILE_BANNER:
            c["profiles"] += 1
        elif line.startswith("  SampleType: ["):
            current_type = line[len("  SampleType: ["):].split(",")[0]
        elif line == SAMPLE_BANNER:
            c["samples"] += 1
            sample_types[current_type] += 1
        elif line.startswith("  Timestamp["):
            c["timestamps"] += 1
        elif line.startswith("  Value["):
            c["values_sum"] += int(line.split(": ", 1)[1])
        else:
            m = FRAME_RE.match(line)
            if m:
                c["frames"] += 1
                frame_types[m.group(1)] += 1
    return TextCounts(c, dict(frame_types), dict(sample_types), dict(layouts))


def first_difference(got, want):
    """The first differing line of two texts (bytes or str), for a failed check's detail."""
    def lines(x):
        return (x.decode(errors="replace") if isinstance(x, bytes) else x).splitlines()
    g, w = lines(got), lines(want)
    for i, (x, y) in enumerate(zip(g, w)):
        if x != y:
            return f"line {i + 1}:\n got: {x!r}\nwant: {y!r}"
    return f"lengths differ: {len(g)} vs {len(w)} lines"


def tempdir(prefix):
    """A fresh temporary directory, removed at exit unless a check failed (then kept, and
    named, for a look)."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(_remove_unless_failed, d)
    return d


def _remove_unless_failed(d):
    if tap.failed():
        print("# files kept in " + d, flush=True)
    else:
        shutil.rmtree(d, ignore_errors=True)


def write(directory, name, data):
    """Writes bytes to directory/name; returns the path."""
    p = os.path.join(directory, name)
    with open(p, "wb") as f:
        f.write(data)
    return p
