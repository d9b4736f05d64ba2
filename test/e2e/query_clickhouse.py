#!/usr/bin/python3
"""query_clickhouse.py - `top`, `folded` and `flamegraph --clickhouse-url` against a real
clickhouse-server (Debian 18.16).

Why it exists: the commands must answer the same whichever store holds the data, and right.
One `decode` run writes the fixture (its four layouts: the same content 4 times) to a SQLite
store and to ClickHouse at once; then every question (each grouping, --where, the time window,
--frame-type, --sample-type, --root, text and JSON) is asked of both stores: the answers must
be byte for byte the same, and equal to figures computed from the fixture with the reference
protobuf library (lib/fixture_model.py), its folded file and expect.json. A request with values
checks the time-window weight rule by hand-computed figures. Also: authentication, and the
errors a user meets (no server, no database, a wrong password).
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
import fixture_model  # noqa: E402
import values_request  # noqa: E402
from server import run_cli as lb  # noqa: E402
from tap import check  # noqa: E402

EXPECT = cc.EXPECT
MODEL = fixture_model.load(cc.fx.path())
COPIES = len(cc.FIXTURE_FILES)
WEIGHT = EXPECT["timestamps"] * COPIES
DB = os.path.join(cc.TMP, "store.db")
CHDB = "lbquery"

ch = cc.ClickHouse()


def both(*args, db=DB, chdb=CHDB, env=None):
    """(rc, out, err) over SQLite and over ClickHouse for the same arguments."""
    sqlite = lb(*args, "--db", db)
    clickhouse = lb(*args, "--clickhouse-url", ch.url, "--clickhouse-database", chdb)
    return sqlite, clickhouse


def same(*args, db=DB, chdb=CHDB):
    """ClickHouse's answer after checking it equals SQLite's byte for byte; None on failure."""
    s, c = both(*args, db=db, chdb=chdb)
    name = " ".join(args)
    if not check("%s: exit 0 over both stores" % name, s[0] == 0 and c[0] == 0, s[2] + c[2]):
        return None
    check("%s: ClickHouse answers what SQLite answers, byte for byte" % name, s[1] == c[1],
          cc.fx.first_difference(c[1], s[1]))
    return c[1]


def parse_top(out):
    lines = out.decode().splitlines()
    weight = int(lines[0].split("weight ")[1].split()[0].rstrip(","))
    rows = {}
    for line in lines[2:]:
        self_w, _, total_w, _, name = line.split(None, 4)
        rows[name] = (int(self_w), int(total_w))
    return weight, rows


def folded_lines(out):
    return {line.rsplit(b" ", 1)[0]: int(line.rsplit(b" ", 1)[1]) for line in out.splitlines()}


def model_weight(pred=lambda s: True):
    return sum(s.weight for s in MODEL if pred(s)) * COPIES


def model_by(key_of):
    out = collections.Counter()
    for s in MODEL:
        out[key_of(s)] += s.weight * COPIES
    return out


# --------------------------------------------------------------------------- tests

def test_store_both():
    files = [cc.fx.path(n) for n in cc.FIXTURE_FILES]
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", DB, "--sink", "clickhouse",
                    "--clickhouse-url", ch.url, "--clickhouse-database", CHDB,
                    "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool-both"), *files)
    check("one decode run writes the fixture %d times to SQLite and to ClickHouse" % COPIES, rc == 0, err)
    n = ch.try_scalar("SELECT count() FROM %s.samples FINAL" % CHDB)
    check("ClickHouse holds %d samples" % (EXPECT["samples"] * COPIES), n == EXPECT["samples"] * COPIES, n)


def test_folded_and_top():
    out = same("folded")
    if out is not None:
        want = {k: v * COPIES for k, v in folded_lines(cc.fx.folded()).items()}
        check("folded = ebpf-jvm-go.folded x %d" % COPIES, folded_lines(out) == want)
    out = same("top", "--limit", "0")
    if out is not None:
        self_w, total_w = collections.Counter(), collections.Counter()
        for key, w in folded_lines(cc.fx.folded()).items():
            names = key.decode().split(";")
            self_w[names[-1]] += w * COPIES
            for n in set(names):
                total_w[n] += w * COPIES
        weight, rows = parse_top(out)
        check("top: weight = expect.json timestamps x %d, self/total per function = the folded file's" % COPIES,
              weight == WEIGHT and rows == {n: (self_w[n], total_w[n]) for n in total_w}, weight)
        check("top: %d samples in the header" % (EXPECT["samples"] * COPIES),
              out.startswith(b"# %d samples, weight %d (samples/count)" % (EXPECT["samples"] * COPIES, WEIGHT)),
              out[:80])
    out = same("top", "--by", "frame-type", "--total")
    if out is not None:
        total = collections.Counter()
        for s in MODEL:
            for t in set(t for _, t in s.frames):
                total[t] += s.weight * COPIES
        got = {k: v[1] for k, v in parse_top(out)[1].items()}
        check("top --by frame-type --total = per-type weights of the protobuf message", got == dict(total),
              (got, dict(total)))
    for by, key_of in (("executable", fixture_model.executable), ("container", fixture_model.container),
                       ("thread", fixture_model.thread)):
        out = same("top", "--by", by, "--limit", "0")
        if out is not None:
            got = {k: v[0] for k, v in parse_top(out)[1].items()}
            check("top --by %s = weight per %s of the protobuf message" % (by, by), got == dict(model_by(key_of)),
                  (got, dict(model_by(key_of))))
    out = same("folded", "--root", "executable")
    if out is not None:
        roots = collections.Counter()
        for key, w in folded_lines(out).items():
            roots[key.split(b";")[0].decode()] += w
        check("folded --root executable: weight per root = per process", dict(roots) ==
              dict(model_by(fixture_model.executable)))


def test_filters():
    cid = [s.resource_attrs["container.id"] for s in MODEL if s.resource_attrs.get("container.id")][0]
    pid = [s.sample_attrs["process.pid"] for s in MODEL if "process.pid" in s.sample_attrs][0]
    cases = [
        (("--where", "container.id=" + cid), model_weight(lambda s: s.resource_attrs.get("container.id") == cid)),
        (("--where", "process.executable.name=java", "--where", "thread.name=Thread-1"),
         model_weight(lambda s: fixture_model.executable(s) == "java" and fixture_model.thread(s) == "Thread-1")),
        (("--where", "process.pid=" + pid), model_weight(lambda s: s.sample_attrs.get("process.pid") == pid)),
        (("--where", "no.such.key=1"), 0),
        (("--frame-type", "v8js"), model_weight(lambda s: any(t == "v8js" for _, t in s.frames))),
        (("--frame-type", "v8js", "--frame-type", "go"),
         model_weight(lambda s: any(t in ("v8js", "go") for _, t in s.frames))),
        (("--sample-type", "samples"), WEIGHT),
        (("--sample-type", "off_cpu"), 0),
    ]
    since, until = 1761887345000000000, 1761887347000000000   # 05:09:05Z .. 05:09:07Z
    window = sum(1 for s in MODEL for t in s.timestamps if since <= t < until) * COPIES
    check("the window holds part of the fixture", 0 < window < WEIGHT, window)
    cases += [(("--since", "2025-10-31T05:09:05Z", "--until", "2025-10-31T05:09:07Z"), window),
              (("--since", "2025-10-31T05:09:05Z"), sum(1 for s in MODEL for t in s.timestamps if since <= t) * COPIES),
              (("--until", "2025-10-31T05:09:07Z"), sum(1 for s in MODEL for t in s.timestamps if t < until) * COPIES),
              (("--since", "-15m"), 0)]
    for args, want in cases:
        out = same("top", *args)
        if out is not None:
            check("top %s: weight = %d from the protobuf message" % (" ".join(args), want), parse_top(out)[0] == want,
                  out[:100])


def test_json():
    for args in (("top", "--by", "thread"), ("folded", "--root", "container"), ("flamegraph",),
                 ("flamegraph", "--root", "executable", "--since", "2025-10-31T05:09:05Z")):
        out = same(*args, "--format", "json")
        if out is None:
            continue
        try:
            d = json.loads(out)
        except ValueError as e:
            check("%s --format json over ClickHouse is valid JSON" % " ".join(args), False, e)
            continue
        check("%s --format json: samples and sample type from expect.json" % " ".join(args),
              d["sample_type"] == "samples" and d["sample_unit"] == "count" and
              (d["samples"], d["weight"]) == ((EXPECT["samples"] * COPIES, WEIGHT) if "--since" not in args else
                                              (d["samples"], d["weight"])), d)
    d = json.loads(same("flamegraph", "--format", "json") or b"{}")
    check("flamegraph --format json over ClickHouse: the root's value = expect.json timestamps x %d" % COPIES,
          d.get("tree", {}).get("value") == WEIGHT)


def test_values_and_windows():
    """Off-CPU style samples with values: the time-window rule, hand-computed, in both stores."""
    t0 = values_request.T0
    path = cc.fx.write(cc.TMP, "values.pb", values_request.values_request())
    db = os.path.join(cc.TMP, "values.db")
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", db, "--sink", "clickhouse",
                    "--clickhouse-url", ch.url, "--clickhouse-database", "lbvalues",
                    "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool-values"), path)
    if not check("decode a request with values into both stores", rc == 0, err):
        return

    def weight(*args):
        out = same("top", *args, db=db, chdb="lbvalues")
        return parse_top(out)[0] if out is not None else None

    sec = lambda x: str(t0 // 10**9 + x)   # noqa: E731 - unix seconds relative to t0
    check("no window: 300 + 3 + 50", weight() == 353)
    check("[t0+1.2s, t0+2.5s): the paired value inside, 1 per timestamp without values",
          weight("--since", sec(1.2), "--until", sec(2.5)) == 201)
    check("[t0, t0+1.2s): value 100, and the untimed sample at its profile's time",
          weight("--since", sec(0), "--until", sec(1.2)) == 150)
    check("[t0+2.5s, t0+5s): two timestamps without values", weight("--since", sec(2.5), "--until", sec(5)) == 2)
    out = same("top", "--format", "json", db=db, chdb="lbvalues")
    check("the sample type is off_cpu/nanoseconds", out is not None and
          (json.loads(out)["sample_type"], json.loads(out)["sample_unit"]) == ("off_cpu", "nanoseconds"))


def test_auth_and_errors():
    env_rc = cc.subprocess.run([cc.fx.LB, "top", "--clickhouse-url", ch.url, "--clickhouse-database", CHDB,
                                "--clickhouse-user", "lbtest"], capture_output=True,
                               env=dict(os.environ, CLICKHOUSE_PASSWORD="s3cret"), timeout=60)
    check("user lbtest with CLICKHOUSE_PASSWORD from the environment",
          env_rc.returncode == 0 and parse_top(env_rc.stdout)[0] == WEIGHT, env_rc.stderr[-300:])
    rc, _, err = lb("top", "--clickhouse-url", ch.url, "--clickhouse-database", CHDB, "--clickhouse-user", "lbtest",
                    "--clickhouse-password", "wrong")
    check("a wrong password: exit 1 with ClickHouse's reason", rc == 1 and "HTTP 401" in err and "Code: 193" in err,
          err)
    rc, _, err = lb("top", "--clickhouse-url", ch.url, "--clickhouse-database", "nosuchdb")
    check("a missing database: exit 1 with ClickHouse's reason", rc == 1 and "Code: 81" in err, err)
    rc, _, err = lb("folded", "--clickhouse-url", "http://127.0.0.1:%d" % cc.free_port())
    check("no server there: exit 1, a connection error", rc == 1 and "ClickHouse at" in err, err)
    for args, what in ((("--clickhouse-url", "ftp://x"), "--clickhouse-url"),
                       (("--clickhouse-url", ch.url, "--clickhouse-database", "a;b"), "--clickhouse-database"),
                       (("--clickhouse-url", ch.url, "--db", DB), "--db"),
                       (("--clickhouse-user", "x"), "--clickhouse-url")):
        rc, _, err = lb("top", *args)
        check("top %s: a usage error (exit 2) naming %s" % (" ".join(args), what), rc == 2 and what in err, err)


if __name__ == "__main__":
    cc.run_with_server(ch, [("store both", test_store_both), ("folded and top", test_folded_and_top),
                            ("filters", test_filters), ("json", test_json),
                            ("values and windows", test_values_and_windows), ("auth and errors", test_auth_and_errors)])
