#!/usr/bin/python3
"""sqlite_store.py - the SQLite sink and the commands that read it, end to end.

Stores the fixture several times (through `lazybackend decode` and through gRPC with grpcio),
then asks `top`, `folded` and direct SQL and checks every figure against expectations from
outside the code under test: ebpf-jvm-go.folded and expect.json from the fixtures, and
per-executable / per-container / per-window figures computed from the protobuf message by
the reference library (lib/fixture_model.py). Also: schema versioning, readers beside a
writer, deduplication, bad arguments.

Environment: LAZYBACKEND (the binary), FIXTURES (the OTLP fixtures). Only 127.0.0.1.
"""
import collections
import os
import sqlite3
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import fixture_model  # noqa: E402
import values_request  # noqa: E402
from server import Server, run_cli as lb  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
RAW = fx.read()
MODEL = fixture_model.load(fx.path())
TMP = fx.tempdir("lb-sqlite-")
FILE_COPIES, GRPC_COPIES = 3, 2
COPIES = FILE_COPIES + GRPC_COPIES
DB = os.path.join(TMP, "store.db")


def sql(db, query, *params):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def stream(n):
    """n copies of the fixture as a length-prefixed stream (the Collector file exporter's)."""
    return fx.write(TMP, "stream%d.bin" % n, b"".join(struct.pack(">I", len(RAW)) + RAW for _ in range(n)))


def parse_top(out):
    """{name: (self, total)} and the header's total weight."""
    lines = out.decode().splitlines()
    header = lines[0]
    weight = int(header.split("weight ")[1].split()[0].rstrip(","))
    rows = {}
    for line in lines[2:]:
        self_w, _, total_w, _, name = line.split(None, 4)
        rows[name] = (int(self_w), int(total_w))
    return weight, rows


def unpack_series(blob):
    """A packed series as docs/sqlite.md describes it: zigzag varints of the differences."""
    out, prev, i = [], 0, 0
    while blob and i < len(blob):
        z = shift = 0
        while True:
            c = blob[i]
            i += 1
            z |= (c & 0x7f) << shift
            shift += 7
            if c < 0x80:
                break
        prev = (prev + ((z >> 1) ^ -(z & 1))) % 2**64
        out.append(prev)
    return out


def to_signed(x):
    return x - 2**64 if x >= 2**63 else x


def unpack_to_tables(db):
    """Moves every sample's packed series into sample_timestamps / sample_values, the way rows
    written before schema step 8 hold them."""
    con = sqlite3.connect(db)
    for sid, ts, vals in con.execute("SELECT id, timestamps_packed, values_packed FROM samples").fetchall():
        con.executemany("INSERT INTO sample_timestamps VALUES (?, ?, ?)",
                        [(sid, i, to_signed(t)) for i, t in enumerate(unpack_series(ts))])
        con.executemany("INSERT INTO sample_values VALUES (?, ?, ?)",
                        [(sid, i, to_signed(v)) for i, v in enumerate(unpack_series(vals))])
    con.execute("UPDATE samples SET timestamps_packed = NULL, values_packed = NULL")
    con.commit()
    con.close()


def folded_lines(out):
    return {line.rsplit(b" ", 1)[0]: int(line.rsplit(b" ", 1)[1]) for line in out.splitlines()}


# --------------------------------------------------------------------------- storing

def store_everything():
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", DB, stream(FILE_COPIES))
    check("decode --sink sqlite stores %d copies" % FILE_COPIES, rc == 0, err)
    srv = Server("--sink", "sqlite", "--sqlite-path", DB, dir=TMP)
    try:
        ok = 0
        for _ in range(GRPC_COPIES):
            srv.send(RAW)
            ok += 1
        check("gRPC Export into the sqlite sink: %d OK" % GRPC_COPIES, ok == GRPC_COPIES)
        # a reader beside the running writer
        rc, out, err = lb("top", "--db", DB, "--by", "frame-type")
        check("top works while the server has the database open", rc == 0 and out.startswith(b"#"), err)
    finally:
        rc = srv.stop(timeout=30)
    check("server exits 0 after SIGTERM", rc == 0, srv.stderr()[-2000:])


# --------------------------------------------------------------------------- checks

def test_counts_by_sql():
    n = sql(DB, "SELECT count(*), sum(n_timestamps), sum(weight) FROM samples")[0]
    check("samples = %d x %d" % (EXPECT["samples"], COPIES), n[0] == EXPECT["samples"] * COPIES, n)
    check("timestamps = %d x %d" % (EXPECT["timestamps"], COPIES), n[1] == EXPECT["timestamps"] * COPIES, n)
    got = collections.Counter()
    for ts, n_ts in sql(DB, "SELECT timestamps_packed, n_timestamps FROM samples"):
        series = unpack_series(ts)
        got.update(series)
        if len(series) != n_ts:
            break
    want = collections.Counter()
    for smp in MODEL:
        want.update(smp.timestamps)
    check("packed timestamps = the fixture's x %d" % COPIES, got == {t: n * COPIES for t, n in want.items()},
          first_diff(got, want))
    n = sql(DB, "SELECT count(*), sum(resources), sum(profiles), sum(samples) FROM requests")[0]
    check("requests: one row per request, with its counts",
          n == (COPIES, EXPECT["resource_profiles"] * COPIES, EXPECT["profiles"] * COPIES,
                EXPECT["samples"] * COPIES), n)
    types = dict(sql(DB, "SELECT f.type, count(*) FROM samples s JOIN stack_frames_v f ON f.stack_id = s.stack_id "
                         "GROUP BY f.type"))
    want = {k: v * COPIES for k, v in EXPECT["frame_types"].items()}
    check("frames per frame type = expect.json x %d" % COPIES, types == want, "got %s\nwant %s" % (types, want))
    st = dict(sql(DB, "SELECT p.sample_type, sum(p.samples) FROM profiles_v p GROUP BY 1"))
    check("samples per sample type = expect.json x %d" % COPIES,
          st == {k: v * COPIES for k, v in EXPECT["sample_types"].items()}, st)
    layouts = sql(DB, "SELECT transport, layout, count(*) FROM requests_v GROUP BY 1, 2 ORDER BY 1")
    check("requests record transport and layout", layouts == [("file", "v1.11", FILE_COPIES),
                                                               ("grpc", "v1.11", GRPC_COPIES)], layouts)
    peers = sql(DB, "SELECT count(*) FROM requests_v WHERE transport = 'grpc' AND peer LIKE '127.0.0.1:%'")
    check("gRPC requests record the peer", peers[0][0] == GRPC_COPIES, peers)
    ok = sql(DB, "PRAGMA integrity_check")
    check("integrity_check ok", ok == [("ok",)], ok)
    check("schema version 11", sql(DB, "PRAGMA user_version")[0][0] == 11)
    check("WAL journal", sql(DB, "PRAGMA journal_mode")[0][0] == "wal")


def test_dedup():
    one = os.path.join(TMP, "one.db")
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", one, fx.path())
    check("decode one copy", rc == 0, err)
    q = "SELECT (SELECT count(*) FROM frames), (SELECT count(*) FROM stacks), (SELECT count(*) FROM stack_frames)," \
        " (SELECT count(*) FROM attributes), (SELECT count(*) FROM attribute_sets), (SELECT count(*) FROM mappings)"
    a, b = sql(one, q)[0], sql(DB, q)[0]
    check("frames, stacks, attributes stored once: same counts for 1 and %d copies" % COPIES, a == b, (a, b))
    stacks = sql(one, "SELECT count(DISTINCT stack_id) FROM samples")[0][0]
    check("distinct stacks stored = stacks used", sql(one, "SELECT count(*) FROM stacks")[0][0] == stacks)


def test_folded_one_copy():
    for name in fx.FIXTURE_FILES:
        db = os.path.join(TMP, "folded-%s.db" % name)
        rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", db, fx.path(name))
        if not check("decode %s into sqlite" % name, rc == 0, err):
            continue
        rc, out, err = lb("folded", "--db", db)
        check("folded over one stored %s equals ebpf-jvm-go.folded byte for byte" % name,
              rc == 0 and out == FOLDED, err or out[:300])


def test_folded_copies():
    rc, out, err = lb("folded", "--db", DB)
    want = {k: v * COPIES for k, v in folded_lines(FOLDED).items()}
    check("folded over %d copies: the fixture's lines, weights x %d" % (COPIES, COPIES),
          rc == 0 and folded_lines(out) == want, err)
    check("folded lines sorted bytewise", out.splitlines() == sorted(out.splitlines()))


def folded_function_figures():
    """self/total per frame name from the fixture's folded file (no ';' in names there)."""
    self_w, total_w = collections.Counter(), collections.Counter()
    for key, w in folded_lines(FOLDED).items():
        names = key.decode().split(";")
        self_w[names[-1]] += w
        for n in set(names):
            total_w[n] += w
    return self_w, total_w


def test_top_function():
    self_w, total_w = folded_function_figures()
    for mode in ("--self", "--total"):
        rc, out, err = lb("top", "--db", DB, "--by", "function", mode, "--limit", "0")
        if not check("top --by function %s runs" % mode, rc == 0, err):
            continue
        weight, rows = parse_top(out)
        check("top %s: total weight = timestamps x %d" % (mode, COPIES), weight == EXPECT["timestamps"] * COPIES, weight)
        want = {n: (self_w[n] * COPIES, total_w[n] * COPIES) for n in total_w}
        check("top --by function %s: self and total per function = folded file x %d" % (mode, COPIES),
              rows == want, first_diff(rows, want))
        order = [r[1] if mode == "--total" else r[0] for r in
                 (tuple(map(int, line.split()[0:3:2])) for line in out.decode().splitlines()[2:])]
        check("top %s sorted heaviest first" % mode, order == sorted(order, reverse=True))
    rc, out, _ = lb("top", "--db", DB, "--limit", "3")
    check("top --limit 3 prints 3 rows", rc == 0 and len(out.splitlines()) == 5, out)


def first_diff(got, want):
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            return "%r: got %r, want %r" % (k, got.get(k), want.get(k))
    return ""


def model_top(key_of, samples=MODEL, copies=COPIES):
    out = collections.Counter()
    for s in samples:
        out[key_of(s)] += s.weight * copies
    return out


def test_top_groups():
    for by, key_of in (("executable", fixture_model.executable), ("container", fixture_model.container),
                       ("thread", fixture_model.thread)):
        rc, out, err = lb("top", "--db", DB, "--by", by, "--limit", "0")
        if not check("top --by %s runs" % by, rc == 0, err):
            continue
        _, rows = parse_top(out)
        want = {k: (v, v) for k, v in model_top(key_of).items()}
        check("top --by %s = weights per %s from the protobuf message" % (by, by), rows == want,
              first_diff(rows, want))


def test_top_frame_type():
    self_w, total_w = collections.Counter(), collections.Counter()
    for s in MODEL:
        if s.frames:
            self_w[s.frames[0][1]] += s.weight * COPIES
        for t in set(t for _, t in s.frames):
            total_w[t] += s.weight * COPIES
    rc, out, err = lb("top", "--db", DB, "--by", "frame-type", "--total")
    _, rows = parse_top(out)
    want = {t: (self_w[t], total_w[t]) for t in total_w}
    check("top --by frame-type --total = per-type weights from the protobuf message", rc == 0 and rows == want,
          err or first_diff(rows, want))
    check("every frame type of expect.json arrived", set(rows) == set(EXPECT["frame_types"]), rows)


def test_where():
    cid = [s.resource_attrs["container.id"] for s in MODEL if s.resource_attrs.get("container.id")][0]
    want = sum(s.weight for s in MODEL if s.resource_attrs.get("container.id") == cid) * COPIES
    rc, out, err = lb("folded", "--db", DB, "--where", "container.id=" + cid)
    check("folded --where container.id=...: weight = model", rc == 0 and sum(folded_lines(out).values()) == want,
          err or (sum(folded_lines(out).values()), want))
    want = sum(s.weight for s in MODEL if fixture_model.executable(s) == "java"
               and fixture_model.thread(s) == "Thread-1") * COPIES
    rc, out, err = lb("top", "--db", DB, "--where", "process.executable.name=java", "--where", "thread.name=Thread-1")
    check("two --where filters must both hold", rc == 0 and parse_top(out)[0] == want, err or out[:200])
    pid = [s.sample_attrs["process.pid"] for s in MODEL if "process.pid" in s.sample_attrs][0]
    want = sum(s.weight for s in MODEL if s.sample_attrs.get("process.pid") == pid) * COPIES
    rc, out, err = lb("top", "--db", DB, "--where", "process.pid=" + pid)
    check("--where matches an int attribute by its decimal text", rc == 0 and parse_top(out)[0] == want,
          err or out[:200])
    rc, out, err = lb("folded", "--db", DB, "--where", "container.id=nope")
    check("--where with no match: empty output", rc == 0 and out == b"", err)
    rc, out, err = lb("top", "--db", DB, "--where", "no.such.key=1")
    check("--where on an unknown key: zero weight", rc == 0 and parse_top(out)[0] == 0, err)


def window_weight(since, until):
    w = 0
    for s in MODEL:
        w += sum(1 for t in s.timestamps if since <= t < until)   # the fixture has no values
    return w * COPIES


def test_time_filters():
    check("fixture samples carry timestamps and no values", all(s.timestamps and not s.values for s in MODEL))
    since, until = 1761887345000000000, 1761887347000000000   # 05:09:05Z .. 05:09:07Z
    want = window_weight(since, until)
    check("time window holds part of the fixture", 0 < want < EXPECT["timestamps"] * COPIES, want)
    for args in (("--since", "2025-10-31T05:09:05Z", "--until", "2025-10-31T05:09:07Z"),
                 ("--since", "1761887345", "--until", "1761887347"),
                 ("--since=2025-10-31T06:09:05+01:00", "--until=2025-10-31T05:09:07.000Z")):
        rc, out, err = lb("top", "--db", DB, *args)
        check("top %s: weight = timestamps inside x %d" % (" ".join(args), COPIES),
              rc == 0 and parse_top(out)[0] == want, err or out[:200])
    rc, out, err = lb("folded", "--db", DB, "--since", "2025-10-31T05:09:05Z", "--until", "2025-10-31T05:09:07Z")
    check("folded in the window: same total weight", rc == 0 and sum(folded_lines(out).values()) == want, err)
    rc, out, err = lb("top", "--db", DB, "--since", "-3650d")
    check("relative --since -3650d covers everything", rc == 0 and parse_top(out)[0] == EXPECT["timestamps"] * COPIES,
          err or out[:200])
    rc, out, err = lb("top", "--db", DB, "--since", "-15m")
    check("relative --since -15m: nothing from 2025", rc == 0 and parse_top(out)[0] == 0, err or out[:200])
    rc, _, err = lb("top", "--db", DB, "--since", "yesterday")
    check("a bad time is a usage error", rc == 2 and "--since" in err, err)
    rc, _, err = lb("top", "--db", DB, "--since", "2025-10-31T05:09:07Z", "--until", "2025-10-31T05:09:05Z")
    check("--since after --until is a usage error", rc == 2, err)


def test_rollups():
    """The rollup tables (schema step 3) against the fixture's timestamps, per minute."""
    want = collections.Counter()
    for smp in MODEL:
        for t in smp.timestamps:
            want[t // (60 * 10**9)] += COPIES
    got = dict(sql(DB, "SELECT bucket, sum(weight) FROM rollup_minute GROUP BY 1"))
    check("rollup_minute: one per timestamp, at its minute", got == dict(want), (got, dict(want)))
    got = dict(sql(DB, "SELECT bucket, sum(weight) FROM rollup_minute_totals GROUP BY 1"))
    check("rollup_minute_totals: the same per minute", got == dict(want), got)
    got = dict(sql(DB, "SELECT bucket, sum(weight) FROM rollup_minute_sets GROUP BY 1"))
    check("rollup_minute_sets: the same per minute", got == dict(want), got)
    want_threads = collections.Counter()
    for smp in MODEL:
        want_threads[fixture_model.thread(smp)] += len(smp.timestamps) * COPIES
    got = dict(sql(DB, "SELECT COALESCE(v.value, '[unknown]'), sum(r.weight) FROM rollup_minute_sets r "
                       "LEFT JOIN attribute_set_items i ON i.set_id = r.sample_attributes_id "
                       "AND i.attribute_id IN (SELECT a.id FROM attributes a JOIN strings k ON k.id = a.key_id "
                       "WHERE k.value = 'thread.name') "
                       "LEFT JOIN attributes a ON a.id = i.attribute_id LEFT JOIN strings v ON v.id = a.value "
                       "GROUP BY 1"))
    check("rollup_minute_sets: the weight per thread (sample attribute set)", got == dict(want_threads),
          (got, dict(want_threads)))
    got = dict(sql(DB, "SELECT bucket, sum(weight) FROM rollup_minute_frame_types GROUP BY 1"))
    check("rollup_minute_frame_types: the same per minute", got == dict(want), got)
    for ftype in EXPECT["frame_types"]:
        want_t = sum(len(smp.timestamps) for smp in MODEL if any(t == ftype for _, t in smp.frames)) * COPIES
        got = sql(DB, "SELECT sum(r.weight) FROM rollup_minute_frame_types r, strings s WHERE s.value = ? "
                      "AND instr(r.frame_types, ',' || s.id || ',') > 0", ftype)[0][0]
        check("rollup_minute_frame_types: the weight of stacks holding a %s frame" % ftype,
              got == want_t and want_t > 0, (got, want_t))
    got = sql(DB, "SELECT sum(weight) FROM rollup_hour")[0][0]
    check("rollup_hour: the same weight", got == EXPECT["timestamps"] * COPIES, got)
    keys = "sample_type_id, sample_unit_id, stack_id, resource_attributes_id, profile_attributes_id, " \
           "sample_attributes_id"
    hours = sql(DB, "SELECT bucket, %s, weight FROM rollup_hour ORDER BY 1, 2, 3, 4, 5, 6, 7" % keys)
    minutes = sql(DB, "SELECT bucket / 60, %s, sum(weight) FROM rollup_minute GROUP BY 1, 2, 3, 4, 5, 6, 7 "
                      "ORDER BY 1, 2, 3, 4, 5, 6, 7" % keys)
    check("rollup_hour: each row the sum of its minutes", hours == minutes and len(hours) > 32, len(hours))
    got = sql(DB, "SELECT count(*) FROM (SELECT DISTINCT stack_id FROM rollup_hour)")[0][0]
    check("rollups name every stored stack", got == sql(DB, "SELECT count(*) FROM stacks")[0][0], got)


def test_type_filters():
    want = sum(s.weight for s in MODEL if any(t == "v8js" for _, t in s.frames)) * COPIES
    rc, out, err = lb("top", "--db", DB, "--frame-type", "v8js")
    check("--frame-type v8js: stacks holding a v8js frame", rc == 0 and parse_top(out)[0] == want, err or out[:200])
    want = sum(s.weight for s in MODEL if any(t in ("v8js", "go") for _, t in s.frames)) * COPIES
    rc, out, err = lb("top", "--db", DB, "--frame-type", "v8js", "--frame-type", "go")
    check("repeated --frame-type: any of them", rc == 0 and parse_top(out)[0] == want, err or out[:200])
    rc, out, err = lb("top", "--db", DB, "--sample-type", "samples")
    check("--sample-type samples: everything", rc == 0 and parse_top(out)[0] == EXPECT["timestamps"] * COPIES, err)
    rc, out, err = lb("top", "--db", DB, "--sample-type", "off_cpu")
    check("--sample-type off_cpu: nothing", rc == 0 and parse_top(out)[0] == 0, err)


def test_values_and_windows():
    """Off-CPU style samples with values: the documented time-window rules, hand-computed."""
    t0 = values_request.T0
    path = fx.write(TMP, "values.pb", values_request.values_request())
    db = os.path.join(TMP, "values.db")
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", db, path)
    if not check("decode a request with values into sqlite", rc == 0, err):
        return
    stored = [(unpack_series(ts), unpack_series(v)) for ts, v in
              sql(db, "SELECT timestamps_packed, values_packed FROM samples ORDER BY id")]
    check("timestamps and values stored as sent", stored == [
        ([t0 + 1000000000, t0 + 2000000000], [100, 200]),
        ([t0 + 1500000000, t0 + 3000000000, t0 + 4000000000], []), ([], [50])], stored)
    check("weights: sums of values, else timestamp counts",
          sql(db, "SELECT group_concat(weight) FROM samples")[0][0] == "300,3,50")

    def weight(*args):
        rc, out, err = lb("top", "--db", db, *args)
        return parse_top(out)[0] if rc == 0 else err

    sec = lambda x: str(t0 // 10**9 + x)   # noqa: E731 - unix seconds relative to t0
    check("no window: 353", weight() == 353)
    check("window [t0+1.2s, t0+2.5s): the value of the timestamp inside, 1 per timestamp without values",
          weight("--since", sec(1.2), "--until", sec(2.5)) == 201, weight("--since", sec(1.2), "--until", sec(2.5)))
    check("window [t0, t0+1.2s): value 100, and the untimed sample at its profile's time",
          weight("--since", sec(0), "--until", sec(1.2)) == 150)
    check("window [t0+2.5s, t0+5s): two timestamps without values",
          weight("--since", sec(2.5), "--until", sec(5)) == 2)
    # the rollups (schema step 3) place the same weights by minute, hand-computed
    minute = lambda t: t // (60 * 10**9)   # noqa: E731
    want = collections.Counter({minute(t0 + 1000000000): 100})
    want[minute(t0 + 2000000000)] += 200
    for dt in (1500000000, 3000000000, 4000000000):
        want[minute(t0 + dt)] += 1
    want[minute(t0 + 517877230)] += 50
    got = dict(sql(db, "SELECT bucket, sum(weight) FROM rollup_minute GROUP BY 1"))
    check("rollup_minute: values at their timestamps' minutes, untimed at the profile's", got == dict(want),
          (got, dict(want)))
    got_h = dict(sql(db, "SELECT bucket, sum(weight) FROM rollup_hour GROUP BY 1"))
    want_h = collections.Counter()
    for m, w in want.items():
        want_h[m // 60] += w
    check("rollup_hour: the same per hour", got_h == dict(want_h), got_h)
    # an older database gets its rollups from what it holds, then keeps adding to them
    old = os.path.join(TMP, "values-v2.db")
    con = sqlite3.connect(db)
    con.execute("VACUUM INTO ?", (old,))
    con.close()
    unpack_to_tables(old)
    con = sqlite3.connect(old)
    con.executescript("DROP TABLE rollup_minute; DROP TABLE rollup_hour; DROP TABLE rollup_minute_totals; DROP TABLE rollup_minute_sets; DROP TABLE rollup_minute_frame_types; "
                      "DROP TABLE entity_refs; DROP TABLE entity_ref_keys; "
                      "DROP TABLE unknown_fields; ALTER TABLE requests DROP COLUMN unknown_fields; "
                      "ALTER TABLE mappings DROP COLUMN attributes_id; ALTER TABLE frames DROP COLUMN attributes_id; "
                      "ALTER TABLE frames DROP COLUMN line_index; ALTER TABLE frames DROP COLUMN line_count; "
                      "ALTER TABLE profiles DROP COLUMN original_payload; ALTER TABLE attributes DROP COLUMN encoded; "
                      "ALTER TABLE samples DROP COLUMN timestamps_packed; ALTER TABLE samples DROP COLUMN values_packed; "
                      "DELETE FROM schema_migrations WHERE version >= 3; PRAGMA user_version = 2;")
    con.close()
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", old, path)
    got = dict(sql(old, "SELECT bucket, sum(weight) FROM rollup_minute GROUP BY 1"))
    check("upgrading a version 2 database fills the rollups, then the writer adds to them",
          rc == 0 and got == {m: 2 * w for m, w in want.items()}, err or got)
    check("... and records the steps", sql(old, "SELECT name FROM schema_migrations WHERE version >= 3 ORDER BY version")
          == [("rollups",), ("unknown fields",), ("lossless",), ("typed containers",), ("rollup totals",),
              ("packed series",), ("rollup sets",), ("rollup frame types",), ("entity refs",)])
    got = dict(sql(old, "SELECT bucket, weight FROM rollup_minute_totals"))
    check("... and the per-minute totals", got == {m: 2 * w for m, w in want.items()}, got)
    got = dict(sql(old, "SELECT bucket, sum(weight) FROM rollup_minute_sets GROUP BY 1"))
    check("... and the per-minute sums per attribute sets", got == {m: 2 * w for m, w in want.items()}, got)
    got = dict(sql(old, "SELECT bucket, sum(weight) FROM rollup_minute_frame_types GROUP BY 1"))
    check("... and per frame types", got == {m: 2 * w for m, w in want.items()}, got)
    mixes = "SELECT DISTINCT frame_types FROM rollup_minute_frame_types"
    check("... the migration and the writer name a stack's frame types alike",
          sorted(sql(old, mixes)) == sorted(sql(db, mixes)), (sql(old, mixes), sql(db, mixes)))
    # its old rows keep their series in their own tables, the new ones packed: the readers
    # weigh both alike (the same windows as above, twice over)
    check("old and packed rows side by side", sql(old, "SELECT count(*) FROM samples WHERE timestamps_packed IS NULL "
                                                       "AND n_timestamps > 0")[0][0] == 2, err)
    for args, w in (((), 353), (("--since", sec(1.2), "--until", sec(2.5)), 201),
                    (("--since", sec(0), "--until", sec(1.2)), 150), (("--since", sec(2.5), "--until", sec(5)), 2)):
        rc, out, err = lb("top", "--db", old, *args)
        check("top %s over old and packed rows: 2 x %d" % (" ".join(args) or "(no window)", w),
              rc == 0 and parse_top(out)[0] == 2 * w, err or out[:300])
    rc, out, err = lb("flamegraph", "--db", db)
    check("flame graph counts nanoseconds for off_cpu", rc == 0 and b"(353 nanoseconds, 100.00%)" in out, err)
    rc, out, err = lb("top", "--db", db)
    check("top names the sample type", rc == 0 and b"(off_cpu/nanoseconds)" in out.splitlines()[0], out)


def test_root():
    rc, out, err = lb("folded", "--db", DB, "--root", "executable")
    per_root = collections.Counter()
    for key, w in folded_lines(out).items():
        per_root[key.split(b";")[0].decode()] += w
    want = model_top(fixture_model.executable)
    check("folded --root executable: the process name is the root frame, weights per process = model",
          rc == 0 and dict(per_root) == dict(want), err or (per_root, want))
    stripped = collections.Counter()
    for key, w in folded_lines(out).items():
        stripped[key.split(b";", 1)[1]] += w
    want = {k: v * COPIES for k, v in folded_lines(FOLDED).items()}
    check("folded --root executable minus the root = the fixture's stacks", dict(stripped) == want)
    rc, out, err = lb("folded", "--db", DB, "--root", "container")
    roots = set(k.split(b";")[0].decode() for k in folded_lines(out))
    check("folded --root container", rc == 0 and roots == set(model_top(fixture_model.container)), err or roots)


def test_schema_versions():
    newer = os.path.join(TMP, "newer.db")
    con = sqlite3.connect(newer)
    con.execute("CREATE TABLE t(x)")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    rc, _, err = lb("top", "--db", newer)
    check("top refuses a database from a newer lazybackend", rc == 1 and "newer" in err, err)
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", newer, fx.path())
    check("the sink refuses it too, with a clear message", rc != 0 and "newer" in err and "schema version 99" in err, err)
    check("the newer database is left untouched", sql(newer, "PRAGMA user_version")[0][0] == 99)
    rc, _, err = lb("top", "--db", os.path.join(TMP, "missing.db"))
    check("top on a missing database fails clearly", rc == 1 and "missing.db" in err, err)


def test_reader_beside_writer():
    con = sqlite3.connect(DB, timeout=10)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO strings(hash, value) VALUES (0, 'uncommitted')")
    try:
        rc, out, err = lb("top", "--db", DB, timeout=30)
        check("top reads while another connection holds the write lock", rc == 0 and
              parse_top(out)[0] == EXPECT["timestamps"] * COPIES, err)
    finally:
        con.rollback()
        con.close()


def test_bad_arguments():
    for args, what in ((("top", "--by", "colour"), "--by"), (("folded", "--by", "function"), "--by"),
                       (("top", "--root", "executable"), "--root"), (("top", "--where", "novalue"), "--where"),
                       (("top", "--limit", "-1"), "--limit"), (("top", "stray"), "stray")):
        rc, _, err = lb(*args, "--db", DB)
        check("usage error: %s" % " ".join(args), rc == 2 and what in err, err)
    rc, out, _ = lb("top", "--help")
    check("top --help", rc == 0 and b"--where" in out)
    rc, out, _ = lb("--help")
    check("main usage lists the query commands and sqlite flags",
          rc == 0 and b"top|folded|flamegraph" in out and b"--sqlite-path" in out)


store_everything()
for t in (test_counts_by_sql, test_dedup, test_folded_one_copy, test_folded_copies, test_top_function,
          test_top_groups, test_top_frame_type, test_where, test_time_filters, test_rollups, test_type_filters, test_values_and_windows, test_root,
          test_schema_versions, test_reader_beside_writer, test_bad_arguments):
    run(t.__name__, t)
done()
