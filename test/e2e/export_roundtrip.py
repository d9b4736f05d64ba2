#!/usr/bin/python3
"""export_roundtrip.py - nothing the sender sent is lost: every request stored by a server
with `--sink sqlite` comes back out of `lazybackend export --format otlp` with the same content.

For every fixture (each layout the fixtures hold) and for a request built to hold everything a
request can hold (several resources and scopes, inlined lines, mappings with several build ids
and offsets, location attributes beside the frame type, units, links, values with and without
timestamps, an original payload, an empty profile, resource entity refs), encoded by the
reference encoder in every layout (lib/otlpgen_layouts.py): sent to a server over gRPC,
exported, and the canonical forms (lib/otlp_canon.py, built with the reference protobuf
library from the INPUT bytes and from the EXPORTED bytes, never from lazybackend's decoder)
compared request by request. Then the same
through `--to` into a second server over gRPC and over OTLP/HTTP, `--batch`, the filters (the
exported samples are those `folded` counts), and bad options.
Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures). Only 127.0.0.1 is used;
every wait is bounded.
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
import otlp_canon as C  # noqa: E402
from rich_request import rich_request  # noqa: E402
from server import Server, run_cli as lb  # noqa: E402

TMP = fx.tempdir("lb-export-")


def layout_of(name):
    m = re.search(r"\.(v1\.\d+)", name)
    return m.group(1) if m else "v1.11"


INPUTS = []   # (name, layout, bytes)
for path in sorted(glob.glob(os.path.join(fx.FIX, "*.pb"))):
    INPUTS.append((os.path.basename(path), layout_of(os.path.basename(path)), open(path, "rb").read()))
RICH = rich_request()
for layout in L.LAYOUTS:
    INPUTS.append(("built." + layout, layout, L.encode(RICH, layout)))


def export_requests(db, *args):
    out = os.path.join(TMP, "out-%d.pb" % len(os.listdir(TMP)))
    rc, _, err = lb("export", "--db", db, "--output", out, *args)
    data = open(out, "rb").read() if rc == 0 else b""
    return rc, err, C.split_stream(data) if rc == 0 else []


def compare_all(what, exported, inputs):
    check("%s: one exported request per stored request" % what, len(exported) == len(inputs),
          "%d exported, %d sent" % (len(exported), len(inputs)))
    for (name, layout, data), got in zip(inputs, exported):
        want = C.canon(data, layout)
        have = C.canon(got, "v1.11")
        check("%s: %s (%s) comes back with the same content" % (what, name, layout), have == want,
              C.first_difference(have, want))


def store_all(db):
    srv = Server("--sink", "sqlite", "--sqlite-path", db)
    try:
        for name, _layout, data in INPUTS:
            srv.send(data)
    finally:
        check("the storing server stops cleanly", srv.stop() == 0, srv.stderr()[-2000:])


DB = os.path.join(TMP, "store.db")


def test_file_round_trip():
    check("the rich request differs in every layout but v1.11's twin",
          len({L.encode(RICH, lay) for lay in L.LAYOUTS}) == len(L.LAYOUTS))
    store_all(DB)
    rc, err, reqs = export_requests(DB)
    check("export exits 0", rc == 0, err)
    compare_all("file", reqs, INPUTS)
    check("export says how many requests it wrote", "%d request(s) written" % len(INPUTS) in err, err)
    # the exported stream is what decode and send read
    out = os.path.join(TMP, "again.pb")
    with open(out, "wb") as f:
        for r in reqs:
            f.write(len(r).to_bytes(4, "big") + r)
    rc, stdout, err2 = lb("decode", "--format", "folded", out)
    check("decode reads the exported stream", rc == 0 and stdout, err2)


def test_canon_can_fail():
    """The comparison sees a lost build id, a lost location attribute and a lost payload."""
    want = C.canon(INPUTS[-4][2], "v1.11")
    broken = otlpgen.service.ExportProfilesServiceRequest()
    broken.ParseFromString(INPUTS[-4][2])
    broken.dictionary.mapping_table[1].attribute_indices.pop()
    check("a lost build id is a difference", C.canon(broken.SerializeToString(), "v1.11") != want)
    broken.ParseFromString(INPUTS[-4][2])
    broken.resource_profiles[0].scope_profiles[0].profiles[0].original_payload = b""
    check("a lost original payload is a difference", C.canon(broken.SerializeToString(), "v1.11") != want)
    broken.ParseFromString(INPUTS[-4][2])
    broken.resource_profiles[0].resource.entity_refs[0].description_keys.pop()
    check("a lost entity ref key is a difference", C.canon(broken.SerializeToString(), "v1.11") != want)
    broken.ParseFromString(INPUTS[-4][2])
    refs = broken.resource_profiles[0].resource.entity_refs
    refs[0].id_keys[0], refs[0].id_keys[1] = refs[0].id_keys[1], refs[0].id_keys[0]
    check("entity ref keys in another order are a difference", C.canon(broken.SerializeToString(), "v1.11") != want)
    for layout in L.LAYOUTS:
        req = C.parse(L.encode(RICH, layout), layout)
        check("the rich request carries entity refs in %s" % layout,
              [len(rp.resource.entity_refs) for rp in req.resource_profiles] == [3, 1])


def test_send_to(http):
    what = "--to over " + ("OTLP/HTTP" if http else "gRPC")
    db2 = os.path.join(TMP, "to-%s.db" % ("http" if http else "grpc"))
    dst = Server("--sink", "sqlite", "--sqlite-path", db2, http=http)
    try:
        to = dst.url if http else "127.0.0.1:%d" % dst.grpc_port
        args = ["--to", to] + (["--http"] if http else [])
        rc, stdout, err = lb("export", "--db", DB, *args)
        check("%s: export exits 0" % what, rc == 0, err + stdout.decode(errors="replace"))
        check("%s: every request accepted whole" % what,
              "%d of %d request(s) accepted whole" % (len(INPUTS), len(INPUTS)) in err, err)
    finally:
        check("%s: the receiving server stops cleanly" % what, dst.stop() == 0, dst.stderr()[-2000:])
    rc, err, reqs = export_requests(db2)
    compare_all(what, reqs, INPUTS)


def test_batch():
    rc, err, reqs = export_requests(DB, "--batch", "3")
    check("--batch 3: ceil(n/3) requests", rc == 0 and len(reqs) == (len(INPUTS) + 2) // 3, err)
    got = [r for data in reqs for r in C.canon(data, "v1.11")]
    want = [r for _n, lay, data in INPUTS for r in C.canon(data, lay)]
    check("--batch 3: the same resources, in order", got == want, C.first_difference(got, want))


def folded_of(reqs):
    path = os.path.join(TMP, "filtered.pb")
    with open(path, "wb") as f:
        for r in reqs:
            f.write(len(r).to_bytes(4, "big") + r)
    rc, out, err = lb("decode", "--format", "folded", path)
    lines = {}
    for line in out.decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        lines[stack] = lines.get(stack, 0) + int(w)
    return lines


def test_filters():
    for args in (["--where", "process.executable.name=java"], ["--sample-type", "off_cpu"],
                 ["--frame-type", "kernel"], ["--since", "1758603336", "--until", "1758603338"],
                 ["--since", "2025-10-31T05:09:04Z", "--until", "2025-10-31T05:09:06Z"]):
        rc, err, reqs = export_requests(DB, *args)
        rc2, want, err2 = lb("folded", "--db", DB, *args)
        wanted = {}
        for line in want.decode().splitlines():
            stack, w = line.rsplit(" ", 1)
            wanted[stack] = int(w)
        got = folded_of(reqs) if reqs else {}
        check("export %s keeps what folded counts" % " ".join(args),
              rc == 0 and rc2 == 0 and got == wanted and wanted,
              "%s %s\n got %d stacks, want %d" % (err, err2, len(got), len(wanted)))


def test_usage():
    for args, what in ((["--format", "svg"], "--format"), (["--batch", "0"], "--batch"),
                       (["--to", "x:1", "--output", "f"], "--to"), (["--gzip"], "--gzip"),
                       (["--format", "pprof", "--batch", "2"], "--batch"),
                       (["--clickhouse-url", "http://127.0.0.1:1"], "--clickhouse"), (["--to", "x:1", "--format", "pprof"], "--to"),
                       (["--by", "function"], "--by")):
        rc, _, err = lb("export", "--db", DB, *args)
        check("usage error: export %s" % " ".join(args), rc == 2 and what in err, err)
    rc, _, err = lb("export", "--db", os.path.join(TMP, "missing.db"))
    check("a missing database is exit 1 with the reason", rc == 1 and "missing.db" in err, err)


run("file round trip", test_file_round_trip)
run("the comparison can fail", test_canon_can_fail)
run("--to gRPC", lambda: test_send_to(False))
run("--to HTTP", lambda: test_send_to(True))
run("--batch", test_batch)
run("filters", test_filters)
run("usage", test_usage)
done()
