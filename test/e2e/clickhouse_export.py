#!/usr/bin/python3
"""clickhouse_export.py - `lazybackend export --clickhouse-url` against a real clickhouse-server
(Debian 18.16): what the ClickHouse sink stored comes back out as OTLP and as pprof.

Every fixture (each layout the fixtures hold) and the request built to hold every field
(lib/rich_request.py, in every layout) is written by `decode --sink clickhouse` into a database
of its own and exported. The exported requests are read with the reference protobuf library
(lib/otlp_canon.py, never lazybackend's decoder), as are the inputs: the canonical forms are
equal, as for SQLite (docs/export.md, "What lossless means"), resource entity refs included. Also: tables an older version
created get the new columns in place and then give requests back whole; rows an older version
wrote (no requests table, the new columns at their defaults) come back with what they hold,
compared sample by sample (resource and sample attributes as text, scope name, types, period,
profile id, link, values, timestamps, every line of the stack). pprof over ClickHouse: `go tool
pprof -top` totals per function equal the figures computed from the fixture
(lib/fixture_model.py), and `-raw` shows the period, time, duration and every location and
mapping the fixture's samples use (lib/pprof_tool.py). The filters keep what `folded
--clickhouse-url` counts. ClickHouse's answers cut short or with a byte changed (through a
proxy): exit 0 or 1, never a crash.
Errors: no server, two stores named, a missing database.
Environment: LAZYBACKEND, FIXTURES; needs clickhouse-server and go (golang-go). Loopback only,
every wait bounded.
"""
import collections
import glob
import http.server
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
import fixture_model  # noqa: E402
import otlp_canon as C  # noqa: E402
import otlpgen  # noqa: E402
import otlpgen_layouts as L  # noqa: E402
from pprof_tool import top_rows, expected_top, raw_profile, expected_raw  # noqa: E402
from rich_request import rich_request  # noqa: E402
from server import run_cli as lb  # noqa: E402
from tap import check  # noqa: E402

TMP = cc.TMP
GO = shutil.which("go")
ch = cc.ClickHouse()


def layout_of(name):
    m = re.search(r"\.(v1\.\d+)", name)
    return m.group(1) if m else "v1.11"


INPUTS = []   # (database, name, layout, bytes)
for path in sorted(glob.glob(os.path.join(cc.fx.FIX, "*.pb"))):
    INPUTS.append(("fx%d" % len(INPUTS), os.path.basename(path), layout_of(path), open(path, "rb").read()))
RICH = rich_request()
for layout in L.LAYOUTS:
    INPUTS.append(("rich%d" % len(INPUTS), "built." + layout, layout, L.encode(RICH, layout)))


def ch_args(database):
    return ["--clickhouse-url", ch.url, "--clickhouse-database", database]


def store(database, name, data):
    path = os.path.join(TMP, database + ".pb")
    with open(path, "wb") as f:
        f.write(data)
    rc, _, err = lb("decode", "--sink", "clickhouse", *ch_args(database), path)
    check("%s: stored by decode --sink clickhouse" % name, rc == 0, err)


def export(database, *args):
    out = os.path.join(TMP, "out-%d.pb" % len(os.listdir(TMP)))
    rc, _, err = lb("export", *ch_args(database), "--output", out, *args)
    data = open(out, "rb").read() if rc == 0 and os.path.exists(out) else b""
    return rc, err, C.split_stream(data) if rc == 0 else []


def text(value):
    """An attribute value as the sink renders it into attr_values (docs/clickhouse.md)."""
    kind, v = value
    if kind == "string":
        return v
    if kind == "bool":
        return "true" if v else "false"
    if kind == "int":
        return str(v)
    if kind == "bytes":
        return v.hex()
    if kind == "empty":
        return ""
    return None   # doubles, arrays and kvlists: compared by key only


def attrs_text(attrs):
    return tuple((a[0], text(a[1])) for a in attrs)


def frame_type(loc_attrs):
    for a in loc_attrs:
        if a[0] == "profile.frame.type":
            return text(a[1])
    return ""


def kept(resources):
    """Per sample, in order, what rows an older version wrote keep of it (see the docstring)."""
    out = []
    for rattrs, _dropped, _url, scopes, _entity_refs in resources:   # older rows keep no entity refs
        for scope in scopes:
            for prof in scope[5]:
                st, pt, period, _t, _d, pid = prof[:6]
                for locs, sattrs, link, values, ts in prof[10]:
                    frames = []
                    for mapping, address, lines, lattrs in locs:
                        mfile = mapping[3] if mapping else ""
                        for (fn, line, col) in lines or [(("", "", "", 0), 0, 0)]:
                            frames.append((fn[0], fn[1], fn[2], line, col, address, mfile, frame_type(lattrs)))
                    out.append((attrs_text(rattrs), scope[0], st, pt, period, pid, tuple(frames),
                                attrs_text(sattrs), link, values, ts))
    return out


def same_text(have, want):
    """Equal, where an expected text of None (not rendered comparably) matches any text."""
    if isinstance(want, (tuple, list)) and isinstance(have, (tuple, list)):
        return len(want) == len(have) and all(same_text(h, w) for h, w in zip(have, want))
    return want is None or have == want


def test_round_trip():
    for database, name, layout, data in INPUTS:
        store(database, name, data)
    for database, name, layout, data in INPUTS:
        rc, err, reqs = export(database)
        check("%s: export --clickhouse-url exits 0 with one request" % name, rc == 0 and len(reqs) == 1, err)
        if len(reqs) != 1:
            continue
        have, want = C.canon(reqs[0], "v1.11"), C.canon(data, layout)
        if name.startswith("built."):   # the comparison covers entity refs: the input has some
            check("%s: the input's resources carry entity refs (3 and 1)" % name,
                  [len(res[4]) for res in want] == [3, 1], repr([res[4] for res in want]))
        check("%s (%s) comes back through ClickHouse with the same content" % (name, layout), have == want,
              C.first_difference(have, want))


# The tables as schema version 1 created them (before requests, typed attributes, line grouping).
V1_DDL = [
    "CREATE TABLE {db}.frames (frame_hash UInt64, frame_type String, name String, function String, "
    "system_name String, file String, line_number Int64, column_number Int64, address UInt64, symbolized UInt8, "
    "mapping_file String, build_id String, build_id_kind String) ENGINE = ReplacingMergeTree ORDER BY frame_hash",
    "CREATE TABLE {db}.stacks (stack_hash UInt64, frame_hashes Array(UInt64)) "
    "ENGINE = ReplacingMergeTree ORDER BY stack_hash",
    "CREATE TABLE {db}.resources (resource_hash UInt64, schema_url String, attr_keys Array(String), "
    "attr_values Array(String)) ENGINE = ReplacingMergeTree ORDER BY resource_hash",
    "CREATE TABLE {db}.samples (ts DateTime, time_unix_nano UInt64, service_name String, container_id String, "
    "host_name String, pid Int64, executable String, thread_name String, thread_id Int64, sample_type String, "
    "sample_unit String, period_type String, period_unit String, period Int64, weight Int64, stack_hash UInt64, "
    "resource_hash UInt64, timestamps Array(UInt64), sample_values Array(Int64), attr_keys Array(String), "
    "attr_values Array(String), trace_id String, span_id String, profile_id String, scope_name String, "
    "layout String, batch_id UInt64, row_index UInt32) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) "
    "ORDER BY (service_name, container_id, sample_type, ts, batch_id, row_index)",
]
V1_COLUMNS = {
    "frames": "frame_hash, frame_type, name, function, system_name, file, line_number, column_number, address, "
              "symbolized, mapping_file, build_id, build_id_kind",
    "stacks": "stack_hash, frame_hashes",
    "resources": "resource_hash, schema_url, attr_keys, attr_values",
    "samples": "ts, time_unix_nano, service_name, container_id, host_name, pid, executable, thread_name, "
               "thread_id, sample_type, sample_unit, period_type, period_unit, period, weight, stack_hash, "
               "resource_hash, timestamps, sample_values, attr_keys, attr_values, trace_id, span_id, profile_id, "
               "scope_name, layout, batch_id, row_index",
}


def create_v1(db):
    ch.query("CREATE DATABASE %s" % db)
    for ddl in V1_DDL:
        ch.query(ddl.format(db=db))


def test_upgrade():
    """Tables an older version created: the sink adds the new columns, export gives back whole."""
    db, (_d, name, layout, data) = "upgraded", INPUTS[-4]
    create_v1(db)
    store(db, name + " into version 1 tables", data)
    cols = ch.query("SELECT table, count() FROM system.columns WHERE database = '%s' GROUP BY table "
                    "ORDER BY table FORMAT TSV" % db)
    check("the sink added the new columns and the requests table",
          cc.tsv(cols) == [["frames", "22"], ["requests", "8"], ["resources", "4"], ["samples", "32"], ["stacks", "2"]],
          cols)
    store(db, name + " again (the columns are there: ALTER's error 44 is taken as done)", data)
    rc, err, reqs = export(db)
    check("upgraded tables: two requests", rc == 0 and len(reqs) == 2, err)
    want = C.canon(data, layout)
    check("upgraded tables: each comes back whole", all(C.canon(r, "v1.11") == want for r in reqs),
          C.first_difference(C.canon(reqs[0], "v1.11"), want) if reqs else err)


def test_old_rows():
    """Rows an older version wrote: no requests table, the new columns at their defaults."""
    for src, name, layout, data in (INPUTS[0], INPUTS[-4]):
        db = "old_" + src
        create_v1(db)
        for table, cols in V1_COLUMNS.items():
            ch.query("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s" % (db, table, cols, cols, src, table))
        rc, err, reqs = export(db)
        check("%s, older rows: exit 0, one request" % name, rc == 0 and len(reqs) == 1, err)
        have = [s for r in reqs for s in kept(C.canon(r, "v1.11"))]
        want = kept(C.canon(data, layout))
        check("%s, older rows: every sample comes back with what they hold (%d samples)" % (name, len(want)),
              len(have) == len(want) and want and same_text(have, want),
              C.first_difference(have, want) if len(have) == len(want) else "%d vs %d" % (len(have), len(want)))


def test_can_fail():
    """The comparison sees a lost frame, a changed value and a lost sample attribute."""
    want = kept(C.canon(INPUTS[0][3], INPUTS[0][2]))
    broken = [list(s) for s in want]
    broken[0][6] = broken[0][6][1:]
    check("a lost frame is a difference", not same_text([tuple(s) for s in broken], want))
    broken = [list(s) for s in want]
    broken[-1][9] = (7,) + tuple(broken[-1][9][1:])
    check("a changed value is a difference", not same_text([tuple(s) for s in broken], want))
    broken = [list(s) for s in want]
    broken[0][7] = broken[0][7][1:]
    check("a lost attribute is a difference", not same_text([tuple(s) for s in broken], want))


def pprof(*args):
    env = dict(os.environ, HOME=TMP, GOCACHE=os.path.join(TMP, "gocache"), PPROF_TMPDIR=TMP,
               PPROF_BINARY_PATH=TMP, TZ="UTC")
    p = subprocess.run([GO, "tool", "pprof", "-symbolize=none", *args], capture_output=True,
                       timeout=300 * cc.SLOW, env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_pprof():
    if not check("go tool pprof is installed (golang-go)", GO is not None, "go not found in PATH"):
        return
    model = fixture_model.load(fixture_model.fixture_path(cc.fx.FIX))
    exp = expected_top(model)
    total = sum(s.weight for s in model)
    v111 = otlpgen.service.ExportProfilesServiceRequest()
    v111.ParseFromString(cc.fx.read("ebpf-jvm-go.v1.11.pb"))
    raw_want = expected_raw(v111, "samples")
    for database, name, _layout, _data in INPUTS:
        if not database.startswith("fx"):
            continue
        out = os.path.join(TMP, database + ".prof")
        rc, _, err = lb("export", *ch_args(database), "--format", "pprof", "--output", out)
        files = sorted(glob.glob(out + ".*.pb.gz"))
        if not check("%s: pprof over ClickHouse: one file per sample type" % name,
                     rc == 0 and files == [out + ".samples.pb.gz"], err):
            continue
        rc, text_, perr = pprof("-top", "-nodefraction=0", "-nodecount=100000", files[0])
        rows = top_rows(text_)
        check("%s: -top flat and cum per function equal the fixture's (%d functions, total %d)" %
              (name, len(exp), total), rc == 0 and rows == exp and "of %d total" % total in text_,
              "%s\n%s" % (perr, sorted(set(rows.items()) ^ set(exp.items()))[:6]))
        rc, text_, perr = pprof("-raw", files[0])
        got = raw_profile(text_)
        check("%s: -raw: period, time, duration, every location and mapping the fixture's samples use "
              "(%d locations, %d mappings)" % (name, len(raw_want["locations"]), len(raw_want["mappings"])),
              rc == 0 and got == raw_want,
              "%s\n%s" % (perr, {k: (got.get(k), raw_want[k]) for k in raw_want if got.get(k) != raw_want[k]}))


def folded(out):
    lines = collections.Counter()
    for line in out.decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        lines[stack] += int(w)
    return lines


def test_filters():
    database = INPUTS[0][0]
    for args in (["--where", "process.executable.name=java"], ["--sample-type", "samples"],
                 ["--frame-type", "kernel"], ["--since", "2025-10-31T05:09:04Z", "--until", "2025-10-31T05:09:06Z"]):
        rc, err, reqs = export(database, *args)
        rc2, want, err2 = lb("folded", *ch_args(database), *args)
        path = os.path.join(TMP, "filtered.pb")
        with open(path, "wb") as f:
            for r in reqs:
                f.write(len(r).to_bytes(4, "big") + r)
        rc3, got, err3 = lb("decode", "--format", "folded", path)
        check("export --clickhouse-url %s keeps what folded counts" % " ".join(args),
              rc == 0 and rc2 == 0 and folded(got) == folded(want) and folded(want),
              "%s %s %s" % (err, err2, err3))


class Mangler(http.server.BaseHTTPRequestHandler):
    """Passes each query on to ClickHouse and hands back its answer, the one answer of the
    kind `target` names cut short or with a byte changed (`mangle`)."""
    target, mangle = None, None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with urllib.request.urlopen(urllib.request.Request(ch.url + "/", data=body), timeout=30) as r:
            answer = r.read()
        if Mangler.target and Mangler.target in body.decode(errors="replace"):
            answer = Mangler.mangle(answer)
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_hostile_answers():
    """Answers cut short at any point or with any byte changed: export exits 0 or 1 with a
    reason, never crashes (the sanitizer build runs this too) and never hangs."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mangler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    rnd = random.Random(7)
    db = INPUTS[-4][0]
    bad = []
    runs = refused = 0
    try:
        for kind in ("FROM (SELECT batch_id", "received_unix_nano, transport", "SELECT resource_hash, any(",
                     "SELECT stack_hash, any(", "SELECT frame_hash, any("):
            for i in range(12):
                def mangle(a, i=i):
                    if not a:
                        return a
                    at = rnd.randrange(len(a))
                    if i % 2:
                        return a[:at]
                    return a[:at] + bytes([(a[at] + rnd.randrange(1, 256)) % 256]) + a[at + 1:]
                Mangler.target, Mangler.mangle = kind, mangle
                rc, _, err = lb("export", "--clickhouse-url", url, "--clickhouse-database", db, "--output",
                                os.path.join(TMP, "mangled.pb"))
                runs += 1
                refused += rc == 1
                err = err if isinstance(err, str) else err.decode(errors="replace")
                if rc not in (0, 1) or (rc == 1 and "lazybackend export:" not in err) or "Sanitizer" in err:
                    bad.append((kind, i, rc, err[-300:]))
    finally:
        Mangler.target = None
        srv.shutdown()
    check("%d exports of mangled answers (%d refused): each exits 0 or 1 with a reason, none crashes"
          % (runs, refused), not bad and refused > runs // 2, bad[:3])


def test_errors():
    rc, _, err = lb("export", "--clickhouse-url", "http://127.0.0.1:%d" % cc.free_port())
    check("no server: exit 1 with the reason", rc == 1 and "ClickHouse at" in err, err)
    rc, _, err = lb("export", "--db", os.path.join(TMP, "x.db"), "--clickhouse-url", ch.url)
    check("--db and --clickhouse-url: usage error", rc == 2 and "two stores" in err, err)
    rc, _, err = lb("export", *ch_args("nosuchdb"))
    check("a missing database: exit 1 with ClickHouse's message", rc == 1 and "nosuchdb" in err, err)


cc.run_with_server(ch, [("round trip through ClickHouse", test_round_trip),
                        ("tables an older version created", test_upgrade),
                        ("rows an older version wrote", test_old_rows),
                        ("the comparison can fail", test_can_fail),
                        ("pprof over ClickHouse", test_pprof),
                        ("filters", test_filters),
                        ("hostile answers", test_hostile_answers),
                        ("errors", test_errors)])
