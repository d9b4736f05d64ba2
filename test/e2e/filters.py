#!/usr/bin/python3
"""filters.py - the filter options (--sample-types, --frame-types, --container-id,
--require-container-id, --resource, --min-frames) and --folded-root, end to end through
`lazybackend decode`.

Expectations are computed outside the code under test: the fixture is parsed here with the
reference protobuf library (python3-protobuf, via otlpgen), and a small reference model turns
it into folded stacks. The model is first checked against the fixture's own
ebpf-jvm-go.folded (byte for byte) and expect.json (frame and sample counts), so it is known
to read the fixture right; the filters are then applied in the model, as sinks/filter.h
specifies them, and the binary's output must match. Requests the fixture cannot provide
(off_cpu and events profiles, several containers, a missing or empty container.id, frames
without a type) are built with otlpgen and checked against hand-written expectations.
"""
import collections
import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
from server import run_cli  # noqa: E402

FIXTURE = fx.path()
EXPECT = fx.expect()
FOLDED = fx.folded()
TMP = fx.tempdir("lb-filters-")

BANNER_RESOURCE = fx.RESOURCE_BANNER
BANNER_END_RESOURCE = "-------------- End Resource Profile ---------------"
BANNER_PROFILE = fx.PROFILE_BANNER
BANNER_END_PROFILE = "------------------- End Profile -------------------"
BANNER_SAMPLE = fx.SAMPLE_BANNER
FRAME_RE = fx.FRAME_RE


def decode(*args, data=None):
    path = FIXTURE if data is None else fx.write(TMP, "req.pb", data)
    return run_cli("decode", *args, path)


# ---- the reference model: the request as (resource, profile, sample, frames) records ----

def any_value(v):
    kind = v.WhichOneof("value")
    return None if kind is None else getattr(v, kind)


def model(data):
    """One record per sample: resource attrs, sample type, sample attrs, frames (leaf first,
    as (type, folded name)) and the weight, read with the reference protobuf library."""
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.ParseFromString(data)
    d = req.dictionary
    strings = d.string_table

    def dict_attrs(indices):
        out = {}
        for i in indices:
            a = d.attribute_table[i]
            out.setdefault(strings[a.key_strindex], any_value(a.value))
        return out

    def frames(stack_index):
        out = []
        for li in d.stack_table[stack_index].location_indices:
            loc = d.location_table[li]
            ftype = dict_attrs(loc.attribute_indices).get("profile.frame.type") or "unknown"
            if loc.lines:
                for line in loc.lines:   # innermost first, as the view lists them
                    out.append((ftype, strings[d.function_table[line.function_index].name_strindex]))
            else:
                mapping = strings[d.mapping_table[loc.mapping_index].filename_strindex] if loc.mapping_index else ""
                out.append((ftype, "%s+0x%x" % (mapping, loc.address)))
        return out

    records = []
    for ri, rp in enumerate(req.resource_profiles):
        rattrs = {}
        for kv in rp.resource.attributes:
            rattrs.setdefault(kv.key, any_value(kv.value))
        for sp in rp.scope_profiles:
            for p in sp.profiles:
                stype = strings[p.sample_type.type_strindex]
                for s in p.samples:
                    records.append({
                        "resource": ri, "rattrs": rattrs, "sample_type": stype,
                        "sattrs": dict_attrs(s.attribute_indices), "frames": frames(s.stack_index),
                        "weight": sum(s.values) if len(s.values) else len(s.timestamps_unix_nano),
                    })
    return records


def folded(records, root=None):
    """The fixture README's folded rules; `root` names each stack's first frame."""
    weights = collections.Counter()
    for r in records:
        names = [name for _, name in reversed(r["frames"])]
        if root:
            names.insert(0, root(r))
        weights[";".join(names)] += r["weight"]
    lines = sorted(("%s %d\n" % (k, w)).encode() for k, w in weights.items())
    return b"".join(lines)


# ---- the filters, as sinks/filter.h specifies them ----

def lookup(r, key):
    """On the resource when it has the key, else on the sample."""
    return r["rattrs"][key] if key in r["rattrs"] else r["sattrs"].get(key)


def as_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, (int, str)) else None


def apply(records, sample_types=None, frame_types=None, container_id=None, require=False,
          resource=(), min_frames=0):
    out = []
    for r in records:
        cid = lookup(r, "container.id")
        if require and not cid:
            continue
        if container_id is not None and cid != container_id:
            continue
        if any(as_text(lookup(r, k)) != v for k, v in resource):
            continue
        if sample_types is not None and r["sample_type"] not in sample_types:
            continue
        fr = r["frames"]
        if frame_types is not None:
            fr = [f for f in fr if f[0] in frame_types]
            if not fr:
                continue
        if len(fr) < min_frames:
            continue
        out.append(dict(r, frames=fr))
    return out


RECORDS = model(open(FIXTURE, "rb").read())


def containers():
    """The fixture's container ids with their sample counts, from the model."""
    return collections.Counter(r["rattrs"].get("container.id") for r in RECORDS)


# ---- reading the text output ----

def text_structure(out):
    """Counts blocks and frames, and checks the nesting: every resource block holds at least
    one profile, every profile at least one sample (nothing empty is passed on)."""
    c = collections.Counter()
    types = collections.Counter()
    problems = []
    profiles_in_resource = samples_in_profile = None
    for n, line in enumerate(out.decode().splitlines(), 1):
        if line == BANNER_RESOURCE:
            c["resources"] += 1
            profiles_in_resource = 0
        elif line == BANNER_PROFILE:
            c["profiles"] += 1
            profiles_in_resource += 1
            samples_in_profile = 0
        elif line == BANNER_SAMPLE:
            c["samples"] += 1
            samples_in_profile += 1
        elif line == BANNER_END_PROFILE and samples_in_profile == 0:
            problems.append(f"line {n}: a profile without samples")
        elif line == BANNER_END_RESOURCE and profiles_in_resource == 0:
            problems.append(f"line {n}: a resource without profiles")
        else:
            m = FRAME_RE.match(line)
            if m:
                c["frames"] += 1
                types[m.group(1)] += 1
    return c, types, problems


# ---- the model is right about the fixture ----

def test_model_matches_fixture():
    got = folded(RECORDS)
    check("model: folded rendering equals ebpf-jvm-go.folded",
          got == FOLDED and hashlib.sha256(got).hexdigest() == EXPECT["folded_sha256"])
    types = collections.Counter(t for r in RECORDS for t, _ in r["frames"])
    check("model: frames per type equal expect.json", dict(types) == EXPECT["frame_types"], types)
    check("model: sample count equals expect.json", len(RECORDS) == EXPECT["samples"])


# ---- filters on the fixture ----

def expect_filter(name, args, records_expected, text_check=True):
    rc, out, err = decode("--format", "folded", *args)
    want = folded(records_expected)
    check(f"{name}: folded output equals the model's", rc == 0 and out == want,
          err or f"got {out[:300]!r}\nwant {want[:300]!r}")
    if not text_check:
        return
    rc, out, err = decode(*args)
    c, types, problems = text_structure(out)
    check(f"{name}: {len(records_expected)} samples in the text output",
          rc == 0 and c["samples"] == len(records_expected), f"got {c['samples']}; {err}")
    check(f"{name}: no empty resource or profile block", not problems, "\n".join(problems[:5]))
    want_frames = sum(len(r["frames"]) for r in records_expected)
    check(f"{name}: {want_frames} frames in the text output", c["frames"] == want_frames, c["frames"])
    return types


def test_frame_types():
    go = EXPECT["frame_types"]["go"]
    types = expect_filter("--frame-types go", ["--frame-types", "go"], apply(RECORDS, frame_types={"go"}))
    check(f"--frame-types go: exactly expect.json's {go} go frames, nothing else",
          dict(types) == {"go": go}, types)
    want = {k: EXPECT["frame_types"][k] for k in ("kernel", "native")}
    types = expect_filter("--frame-types ' kernel , native,'", ["--frame-types", " kernel , native,"],
                          apply(RECORDS, frame_types={"kernel", "native"}))
    check("--frame-types kernel,native: expect.json's kernel and native counts", dict(types) == want, types)
    # Filtering each line of the folded file by frame: the frames of a type, read from the
    # model, are removed from ebpf-jvm-go.folded's lines and the lines merged again.
    types_of = {name: t for r in RECORDS for t, name in r["frames"]}
    merged = collections.Counter()
    for line in FOLDED.decode().splitlines():
        stack, weight = line.rsplit(" ", 1)
        kept = [f for f in stack.split(";") if types_of[f] == "jvm"]
        if kept:
            merged[";".join(kept)] += int(weight)
    want = b"".join(sorted(("%s %d\n" % kv).encode() for kv in merged.items()))
    rc, out, err = decode("--format", "folded", "--frame-types", "jvm")
    check("--frame-types jvm: equals ebpf-jvm-go.folded with non-jvm frames removed line by line",
          rc == 0 and out == want, err or out[:300])


def test_container_filters():
    ids = containers()
    real = sorted(k for k in ids if k)
    check("fixture has several containers and a resource without one", len(real) >= 2 and "" in ids, ids)
    for cid in real[:2]:
        recs = apply(RECORDS, container_id=cid)
        check(f"--container-id {cid[:12]}: {ids[cid]} samples per the model", len(recs) == ids[cid])
        expect_filter(f"--container-id {cid[:12]}", ["--container-id", cid], recs)
    recs = apply(RECORDS, require=True)
    check("--require-container-id keeps all but the empty-container samples",
          len(recs) == EXPECT["samples"] - ids[""], len(recs))
    expect_filter("--require-container-id", ["--require-container-id"], recs)
    rc, out, err = decode("--container-id", "no-such-container")
    check("--container-id with no match prints nothing at all", rc == 0 and out == b"", out[:200])


def test_resource_filters():
    cid = sorted(k for k in containers() if k)[0]
    expect_filter("--resource service.name=<id>", ["--resource", f"service.name={cid}"],
                  apply(RECORDS, resource=[("service.name", cid)]))
    other = sorted(k for k in containers() if k)[1]
    rc, out, err = decode("--resource", f"service.name={cid}", "--resource", f"container.id={other}")
    check("--resource twice: both must match (none does)", rc == 0 and out == b"", out[:200])
    java = apply(RECORDS, resource=[("process.executable.name", "java")])
    check("fixture: java samples carry process.executable.name on the sample", len(java) > 0 and all(
        "process.executable.name" not in r["rattrs"] for r in java))
    expect_filter("--resource process.executable.name=java (sample attribute)",
                  ["--resource", "process.executable.name=java"], java)
    pid = next(r["sattrs"]["process.pid"] for r in RECORDS if "process.pid" in r["sattrs"])
    expect_filter(f"--resource process.pid={pid} (int attribute, decimal)",
                  ["--resource", f"process.pid={pid}"], apply(RECORDS, resource=[("process.pid", str(pid))]))


def test_sample_types_and_min_frames():
    expect_filter("--sample-types samples", ["--sample-types", "samples"], RECORDS)
    rc, out, err = decode("--sample-types", "off_cpu,events")
    check("--sample-types off_cpu,events on a samples-only request prints nothing (no empty "
          "resource blocks)", rc == 0 and out == b"", out[:300])
    for n in (1, 20, 40):
        expect_filter(f"--min-frames {n}", ["--min-frames", str(n)], apply(RECORDS, min_frames=n))
    expect_filter("--frame-types go --min-frames 12", ["--frame-types", "go", "--min-frames", "12"],
                  apply(RECORDS, frame_types={"go"}, min_frames=12))


def test_debug_counts():
    cid = sorted(k for k in containers() if k)[0]
    kept = containers()[cid]
    rc, out, err = decode("--log-level", "debug", "--container-id", cid, "--format", "folded")
    want = f"{kept} of {EXPECT['samples']} samples passed; dropped by: --container-id {EXPECT['samples'] - kept}"
    check("debug log line counts what --container-id dropped", rc == 0 and want in err, err)
    go = EXPECT["frame_types"]["go"]
    kept = len(apply(RECORDS, frame_types={"go"}))
    rc, out, err = decode("--log-level", "debug", "--frame-types", "go", "--format", "folded")
    want = (f"--frame-types {EXPECT['samples'] - kept} ({EXPECT['frames'] - go} frames removed)")
    check("debug log line counts what --frame-types dropped and removed", want in err, err)
    rc, out, err = decode("--format", "folded")
    check("no filter: no filter stage, no filter log line", rc == 0 and "filter:" not in err and out == FOLDED)


def test_bad_options():
    for args, needle in ((["--resource", "novalue"], "not key=value"),
                         (["--sample-types", " , "], "names no sample type"),
                         (["--frame-types", ""], "names no frame type"),
                         (["--container-id", ""], "non-empty id"),
                         (["--min-frames", "-1"], "--min-frames"),
                         (["--folded-root", "pid", "--format", "folded"], "--folded-root")):
        rc, out, err = decode(*args)
        check(f"bad option {args}: exit 2 with a message", rc == 2 and needle in err, f"rc={rc} {err}")


# ---- --folded-root ----

def placeholder(v):
    return v if v else "[unknown]"


def test_folded_root():
    roots = {
        "thread": lambda r: placeholder(r["sattrs"].get("thread.name")),
        "executable": lambda r: placeholder(lookup(r, "process.executable.name")),
        "container": lambda r: placeholder(lookup(r, "container.id")),
    }
    for name, fn in roots.items():
        rc, out, err = decode("--format", "folded", "--folded-root", name)
        want = folded(RECORDS, root=fn)
        check(f"--folded-root {name}: equals the model's", rc == 0 and out == want,
              err or f"got {out[:300]!r}\nwant {want[:300]!r}")
        check(f"--folded-root {name}: weights still add up to the fixture's",
              sum(int(line.rsplit(b" ", 1)[1]) for line in out.splitlines()) ==
              sum(int(line.rsplit(b" ", 1)[1]) for line in FOLDED.splitlines()))
    rc, out, err = decode("--format", "folded", "--folded-root", "container")
    check("--folded-root container: the empty container.id is [unknown]",
          any(line.startswith(b"[unknown];") for line in out.splitlines()))
    rc, out, err = decode("--format", "folded", "--folded-root", "none")
    check("--folded-root none: the plain folded file", out == FOLDED)
    # identical stacks of different threads are different lines
    b = otlpgen.Builder()
    st = b.stack([b.location("go", [(b.function("main.work"), 1)])])
    p = b.profile(b.resource(container_id="c1"))
    for t in ("a", "b", "a"):
        b.sample(p, st, timestamps=[1], attributes=[b.attr("thread.name", t)])
    b.sample(p, st, timestamps=[1, 2])
    rc, out, err = decode("--format", "folded", "--folded-root", "thread", data=b.bytes())
    check("--folded-root thread: one line per thread, missing thread.name is [unknown]",
          out == b"[unknown];main.work 2\na;main.work 2\nb;main.work 1\n", out)


# ---- built requests: what the fixture lacks ----

def built_request():
    """A: container c1 (samples 2, off_cpu 1, events 1), B: c2 (samples 1), C: no container.id
    (samples 1), D: empty container.id (events 1)."""
    b = otlpgen.Builder()
    libc = b.mapping("libc.so.6")
    k = b.location("kernel", [(b.function("do_syscall_64"), 0)])
    n = b.location("native", mapping=libc, address=0x1234)
    g = b.location("go", [(b.function("main.inner"), 3), (b.function("main.outer"), 9)])
    untyped = b.req.dictionary.location_table.add()       # a location without frame type
    untyped.lines.add().function_index = b.function("mystery")
    u = len(b.req.dictionary.location_table) - 1
    st = b.stack([k, n, g, u])
    short = b.stack([g])
    a = b.resource(container_id="c1", service_name="api", process_pid=42)
    pa = b.profile(a, "samples", "count")
    b.sample(pa, st, timestamps=[1, 2])
    b.sample(pa, short, timestamps=[3])
    po = b.profile(a, "off_cpu", "nanoseconds")
    b.sample(po, st, timestamps=[4], values=[1000])
    pe = b.profile(a, "events", "count")
    b.sample(pe, short, timestamps=[5])
    pb = b.profile(b.resource(container_id="c2", service_name="db"), "samples", "count")
    b.sample(pb, st, timestamps=[6])
    pc = b.profile(b.resource(service_name="host"), "samples", "count")
    b.sample(pc, short, timestamps=[7])
    pd = b.profile(b.resource(container_id="", service_name="empty"), "events", "count")
    b.sample(pd, st, timestamps=[8])
    return b.bytes()


def services(out):
    """The service.name of each resource block, in order."""
    return re.findall(r"^  service\.name: (.*)$", out.decode(), re.M)


def test_built_requests():
    data = built_request()
    cases = [
        (["--sample-types", "off_cpu"], ["api"], 1, 1),
        (["--sample-types", "off_cpu, events"], ["api", "empty"], 3, 3),
        (["--require-container-id"], ["api", "db"], 4, 5),
        (["--container-id", "c2"], ["db"], 1, 1),
        (["--resource", "process.pid=42"], ["api"], 3, 4),
        (["--resource", "process.pid=42", "--resource", "service.name=db"], [], 0, 0),
        (["--resource", "process.pid=042"], [], 0, 0),
        (["--min-frames", "5"], ["api", "db", "empty"], 4, 4),
        (["--sample-types", "samples", "--min-frames", "5"], ["api", "db"], 2, 2),
    ]
    for args, want_services, want_profiles, want_samples in cases:
        rc, out, err = decode(*args, data=data)
        c, types, problems = text_structure(out)
        check(f"built request {args}: resources {want_services}, {want_profiles} profiles, "
              f"{want_samples} samples, nothing empty",
              rc == 0 and services(out) == want_services and c["profiles"] == want_profiles and
              c["samples"] == want_samples and not problems,
              f"rc={rc} services={services(out)} {dict(c)} {problems} {err}")
    rc, out, err = decode("--frame-types", "go,unknown", data=data)
    frames = [m.group(0) for m in re.finditer(r"^Instrumentation: .*$", out.decode(), re.M)]
    want_first = ["Instrumentation: go, Function: main.inner, File: , Line: 3, Column: 0",
                  "Instrumentation: go, Function: main.outer, File: , Line: 9, Column: 0",
                  "Instrumentation: unknown, Function: mystery, File: , Line: 0, Column: 0"]
    check("--frame-types go,unknown: inlined go frames and the untyped frame, in stack order",
          frames[:3] == want_first, "\n".join(frames[:4]))
    c, types, problems = text_structure(out)
    check("--frame-types go,unknown: all 7 samples, 2 go frames each, 4 untyped frames",
          c["samples"] == 7 and types == {"go": 14, "unknown": 4} and not problems,
          f"{dict(c)} {dict(types)}")
    rc, out, err = decode("--frame-types", "jvm", data=data)
    check("--frame-types jvm on a request without jvm frames: nothing printed", rc == 0 and out == b"", out[:200])


run("model matches the fixture", test_model_matches_fixture)
run("frame types", test_frame_types)
run("container filters", test_container_filters)
run("resource filters", test_resource_filters)
run("sample types and min frames", test_sample_types_and_min_frames)
run("debug counts", test_debug_counts)
run("bad options", test_bad_options)
run("folded root", test_folded_root)
run("built requests", test_built_requests)
done()
