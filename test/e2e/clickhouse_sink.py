#!/usr/bin/python3
"""clickhouse_sink.py - the ClickHouse sink against a real clickhouse-server (Debian 18.16).

Why it exists: the sink's promise is that what a client was told OK for is in ClickHouse,
exactly once as far as queries can tell, and that the SQL in docs/clickhouse.md answers the
questions users ask. This sends the fixtures N times over gRPC (all four proto layouts, plain
and gzip) and checks, with the docs' own queries, that ClickHouse holds exactly N times the
fixture: counts from expect.json, the folded file, per-container top functions computed with
the reference protobuf library, frames per frame type. Also: stacks stored once however often
they are sent, authentication, errors logged once per distinct error, the spool kept across a
restart, and the `decode` path.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
from tap import check  # noqa: E402

SAMPLES = cc.EXPECT["samples"]
TIMESTAMPS = cc.EXPECT["timestamps"]
CONTAINER = "1e82d7e19251ec59126d036da362a7bcf318420c2e5c9be3818ebc5f92873469"
ROUNDS = 3   # each of the 4 fixture files, plain and gzip: 24 requests
SENDS = ROUNDS * len(cc.FIXTURE_FILES) * 2

ch = cc.ClickHouse()


def sink_args(database, *extra):
    return ["--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", database,
            "--clickhouse-flush-interval", "200", *extra]


def samples_in(db):
    return ch.try_scalar("SELECT count() FROM %s.samples FINAL" % db)


def test_fixtures_n_times():
    db = "lb_fixtures"
    spool = os.path.join(ch.dir, "spool-fixtures")
    be = cc.Backend(*sink_args(db, "--clickhouse-spool-dir", spool))
    statuses = []
    for _ in range(ROUNDS):
        for name in cc.FIXTURE_FILES:
            for gz in (False, True):
                statuses.append(be.export(cc.fixture(name), gzip=gz).status)
    check("every Export call answered OK", statuses == ["OK"] * SENDS, statuses)
    delivered = cc.wait_until(lambda: samples_in(db) == SENDS * SAMPLES, 20 * cc.SLOW)
    check("delivered while running (flush interval), before any shutdown", delivered,
          "%d rows, want %d" % (samples_in(db), SENDS * SAMPLES))
    rc = be.stop(timeout=60)
    err = be.stderr()
    check("SIGTERM: exit 0 with the sink's counters logged", rc == 0 and "clickhouse: stopped:" in err, err[-2000:])
    check("spool left empty", os.listdir(spool) == [], os.listdir(spool))
    check_doc_queries(db, SENDS)
    check_stored_once(db)


def check_doc_queries(db, times):
    q = cc.doc_queries(db)
    check("docs/clickhouse.md has the queries the tests run",
          {"top-functions", "folded", "frame-types", "totals", "duplicates"} <= set(q), sorted(q))
    totals = cc.tsv(ch.query(q["totals"]))
    want = [["samples", "count", str(SAMPLES * times), str(TIMESTAMPS * times), str(TIMESTAMPS * times)]]
    check("totals: samples and timestamps = %d x expect.json" % times, [r[:5] for r in totals] == want,
          "%s\nwant %s" % (totals, want))
    folded = sorted(ch.query(q["folded"]).splitlines())
    want_folded = cc.folded_lines(times)
    check("folded stacks = ebpf-jvm-go.folded with weights x %d" % times, folded == want_folded,
          "\n".join(sorted(set(folded) ^ set(want_folded))[:10]))
    types = {r[0]: int(r[1]) for r in cc.tsv(ch.query(q["frame-types"]))}
    want_types = {k: v * times for k, v in cc.EXPECT["frame_types"].items()}
    check("frames per frame type = %d x expect.json" % times, types == want_types, "%s\nwant %s" % (types, want_types))
    top = [(r[0], int(r[1]), int(r[2])) for r in cc.tsv(ch.query(q["top-functions"]))]
    want_top = cc.top_functions(CONTAINER, times)
    check("top functions of a container over a time range (self, total)", top == want_top,
          "got  %s\nwant %s" % (top[:5], want_top[:5]))
    check("no duplicate batches", ch.query(q["duplicates"]).strip() == "")
    containers = cc.tsv(ch.query(q["containers"].replace("now() - 3600", "toDateTime('2025-10-31 00:00:00')")))
    check("per-container totals: the fixture's 4 resources", len(containers) == 4 and
          sum(int(r[2]) for r in containers) == SAMPLES * times, containers)


def check_stored_once(db):
    stacks = cc.tsv(ch.query("SELECT count(), uniqExact(stack_hash) FROM %s.stacks" % db))[0]
    frames = cc.tsv(ch.query("SELECT count(), uniqExact(frame_hash) FROM %s.frames" % db))[0]
    resources = cc.tsv(ch.query("SELECT count(), uniqExact(resource_hash) FROM %s.resources" % db))[0]
    n_stacks = int(stacks[1])
    check("each distinct stack stored once although sent %d times (%s rows)" % (SENDS, stacks[0]),
          stacks[0] == stacks[1] and cc.EXPECT["distinct_folded_stacks"] <= n_stacks < cc.EXPECT["stacks"],
          stacks)
    check("each distinct frame stored once (%s rows)" % frames[0],
          frames[0] == frames[1] and 0 < int(frames[1]) <= cc.EXPECT["frames"], frames)
    check("each distinct resource stored once", resources == ["4", "4"], resources)
    # All four layouts carry the same content, so they must hash to the same stacks.
    per_layout = cc.tsv(ch.query("SELECT layout, uniqExact(stack_hash) FROM %s.samples GROUP BY layout ORDER BY layout" % db))
    check("the same stacks whatever the proto layout", len(per_layout) >= 3 and
          {r[1] for r in per_layout} == {str(n_stacks)}, per_layout)


def test_auth_errors_and_spool_restart():
    db = "lb_auth"
    spool = os.path.join(ch.dir, "spool-auth")
    # Wrong password: ClickHouse answers an error to every attempt; requests are still
    # acknowledged (their rows are in the write-ahead log), the error is logged once, and at
    # shutdown the batches stay in the log.
    be = cc.Backend(*sink_args(db, "--clickhouse-user", "lbtest", "--clickhouse-password", "wrong",
                               "--clickhouse-spool-dir", spool, "--shutdown-timeout", "2"))
    statuses = [be.export(cc.fixture()).status for _ in range(3)]
    time.sleep(2.0)                                  # several failed attempts with backoff
    statuses += [be.export(cc.fixture()).status]
    rc = be.stop(timeout=60)
    err = be.stderr()
    warnings = [ln for ln in err.splitlines() if "failed (will retry)" in ln]
    check("bad password: requests still acknowledged", statuses == ["OK"] * 4, statuses)
    check("bad password: logged once, with ClickHouse's Code", len(warnings) == 1 and "Code: " in warnings[0],
          "\n".join(warnings) or err[-1500:])
    check("bad password: exit 0, batches left in the write-ahead log", rc == 0 and
          any(n.endswith(".wal") for n in os.listdir(spool)), "%s %s" % (rc, os.listdir(spool)))
    # Right password, same directory: the next start sends the logged batches first.
    be = cc.Backend(*sink_args(db, "--clickhouse-user", "lbtest", "--clickhouse-password", "s3cret",
                               "--clickhouse-spool-dir", spool))
    ok = cc.wait_until(lambda: samples_in(db) == 4 * SAMPLES, 20 * cc.SLOW)
    status = be.export(cc.fixture()).status
    rc = be.stop(timeout=60)
    check("restart with the right password replays the spool", ok, "%d rows" % samples_in(db))
    check("spool replayed then emptied; new data delivered at shutdown", rc == 0 and status == "OK" and
          samples_in(db) == 5 * SAMPLES and not any(n.endswith((".batch", ".wal")) for n in os.listdir(spool)),
          "%s %s %d %s" % (rc, status, samples_in(db), os.listdir(spool)))


def test_decode_path():
    db = "lb_decode"
    rc, _, err = cc.run_decode("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", db,
                               "--clickhouse-spool-dir", os.path.join(ch.dir, "spool-decode"),
                               cc.fx.path("ebpf-jvm-go.v1.8.pb"), cc.fx.path("ebpf-jvm-go.v1.11.pb"))
    check("decode --sink clickhouse exits 0", rc == 0, err[-1500:])
    check("decode --sink clickhouse: 2 x the fixture's samples", samples_in(db) == 2 * SAMPLES, samples_in(db))


def test_unreachable_at_start_and_bad_options():
    rc, _, err = cc.run_decode("--sink", "clickhouse", "--clickhouse-database", "x; DROP", cc.fx.path())
    check("a database name that is not an identifier is refused", rc != 0 and
          "--clickhouse-database" in err, err)
    rc, _, err = cc.run_decode("--sink", "clickhouse", "--clickhouse-url", "ftp://x", cc.fx.path())
    check("a non-HTTP URL is refused", rc != 0 and "--clickhouse-url" in err, err)
    # Nobody listens on this port: decode takes the file, then shutdown cannot deliver. In
    # memory mode without a spool it says how much it lost instead of pretending, and exits 1.
    port = cc.free_port()
    rc, _, err = cc.run_decode("--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % port,
                               "--clickhouse-durability", "memory", "--shutdown-timeout", "1", cc.fx.path())
    check("unreachable ClickHouse, memory mode without a spool: the loss is reported, exit 1", rc == 1 and
          "lost" in err and "%d sample rows" % SAMPLES in err, "%s %s" % (rc, err[-1500:]))
    # The default (the write-ahead log) keeps it for the next start: exit 0, nothing lost.
    wal = os.path.join(ch.dir, "spool-unreachable")
    rc, _, err = cc.run_decode("--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % port,
                               "--clickhouse-spool-dir", wal, "--shutdown-timeout", "1", cc.fx.path())
    check("unreachable ClickHouse with the write-ahead log: exit 0, the batch kept for the next start",
          rc == 0 and "lost" not in err and [n for n in os.listdir(wal) if n.endswith(".wal")],
          "%s %s %s" % (rc, os.listdir(wal), err[-1500:]))


def main():
    cc.run_with_server(ch, [("fixtures sent N times arrive N times", test_fixtures_n_times),
                            ("authentication, error logging, spool across restarts",
                             test_auth_errors_and_spool_restart),
                            ("decode --sink clickhouse", test_decode_path),
                            ("bad options and unreachable server", test_unreachable_at_start_and_bad_options)])


if __name__ == "__main__":
    main()
