#!/usr/bin/python3
"""clickhouse_cluster.py - the scale-out layout of docs/clickhouse.md ("On a ClickHouse
cluster") on real clickhouse-servers (Debian 18.16): two shards on loopback plus one single
node for reference.

Why it exists: the cluster layout is what a fleet runs, and it had never run. This starts the
two shards in the cluster mode of scripts/clickhouse-test-server.sh (native TCP ports and a
`remote_servers` entry `prof`), runs the docs' cluster DDL (`<!-- sql:cluster-ddl -->`) on
both, sends the fixtures through lazybackend into the `Distributed` tables of one shard and the
same into the single node, then checks: the rows reached both shards; every query of the page
answers the same over the `Distributed` tables (from either node) as over the single node, and
those answers equal the fixtures' (expect.json, the folded file, top functions computed with
the reference protobuf library); `FINAL` over the `Distributed` tables folds a re-sent batch;
and the docs' claims about joins: the page's queries run unchanged, a join read by the shards
fails without `GLOBAL` and answers right with it.
"""
import os
import re
import sys
import threading
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
import tap  # noqa: E402
from tap import check  # noqa: E402

SAMPLES = cc.EXPECT["samples"]
TIMESTAMPS = cc.EXPECT["timestamps"]
CONTAINER = "1e82d7e19251ec59126d036da362a7bcf318420c2e5c9be3818ebc5f92873469"
ROUNDS = 3                         # each fixture file 3 times: 12 requests, 12 batches or more
SENDS = ROUNDS * len(cc.FIXTURE_FILES)
CLUSTER_ONLY = {"cluster-ddl", "cluster-global-join"}


class ClusterNode(cc.ClickHouse):
    """A shard of the cluster `prof`: the test server's cluster mode (--tcp-port, --cluster)."""

    def __init__(self, tcp_port, shard_ports):
        super().__init__()
        self.tcp_port = tcp_port
        self.shard_ports = shard_ports

    def _script(self, cmd, timeout=60):
        if cmd != "start":
            return super()._script(cmd, timeout)
        cluster = "prof=" + ",".join(str(p) for p in self.shard_ports)
        return cc.subprocess.run([cc.SCRIPT, cmd, self.dir, str(self.port), "--tcp-port", str(self.tcp_port),
                                  "--cluster", cluster], capture_output=True, text=True, timeout=timeout)


def distinct_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(cc.free_port())
    return sorted(ports)


tcp1, tcp2 = distinct_ports(2)
shards = [ClusterNode(tcp1, [tcp1, tcp2]), ClusterNode(tcp2, [tcp1, tcp2])]
single = cc.ClickHouse()
nodes = shards + [single]


def start_all():
    """The three servers start side by side (each takes about half a second)."""
    errors = []

    def start(node):
        try:
            node.start()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def statements(sql):
    """The `;`-separated statements of a block (the docs' cluster DDL has no comments)."""
    return [s.strip() for s in sql.split(";") if s.strip()]


def send_fixtures(node):
    """The fixtures SENDS times through a lazybackend whose ClickHouse sink points at `node`;
    the Export statuses."""
    be = cc.Backend("--sink", "clickhouse", "--clickhouse-url", node.url, "--clickhouse-database", "otel",
                    "--clickhouse-flush-interval", "100",
                    "--clickhouse-spool-dir", tempfile.mkdtemp(prefix="spool-", dir=cc.TMP))
    statuses = []
    try:
        for _ in range(ROUNDS):
            for name in cc.FIXTURE_FILES:
                statuses.append(be.export(cc.fixture(name)).status)
                time.sleep(0.15)   # one batch per request: batches spread over the shards
    finally:
        rc = be.stop(timeout=30)
    return statuses, rc, be.stderr()


def count(node, sql):
    return node.try_scalar(sql)


def test_cluster_ddl_from_the_docs():
    q = cc.doc_queries("otel")
    check("docs/clickhouse.md has the cluster DDL and the GLOBAL join", CLUSTER_ONLY <= set(q), sorted(q))
    for node in shards:
        for st in statements(q["cluster-ddl"]):
            node.query(st)
    tables = [sorted(shards[i].query("SHOW TABLES FROM otel").split()) for i in range(2)]
    want = sorted(["frames", "frames_local", "requests", "requests_local", "resources", "resources_local",
                   "samples", "samples_local", "stacks", "stacks_local"])
    check("both shards have the local and Distributed tables", tables == [want, want], tables)
    clusters = cc.tsv(shards[0].query("SELECT shard_num, port FROM system.clusters WHERE cluster = 'prof' ORDER BY shard_num"))
    check("cluster prof: two shards on the two TCP ports", clusters == [["1", str(tcp1)], ["2", str(tcp2)]], clusters)


def test_sends_reach_both_shards():
    for node, what in ((shards[0], "the cluster (Distributed tables on shard 1)"), (single, "the single node")):
        statuses, rc, err = send_fixtures(node)
        check("%d Export calls into %s answered OK, clean stop" % (SENDS, what),
              statuses == ["OK"] * SENDS and rc == 0, "%s rc=%s\n%s" % (statuses, rc, err[-1500:]))
    want = SENDS * SAMPLES
    ok = cc.wait_until(lambda: count(shards[0], "SELECT count() FROM otel.samples") == want and
                       count(single, "SELECT count() FROM otel.samples") == want, 30 * cc.SLOW)
    check("all %d sample rows queryable over the Distributed table and on the single node" % want, ok,
          "cluster %d, single %d" % (count(shards[0], "SELECT count() FROM otel.samples"),
                                     count(single, "SELECT count() FROM otel.samples")))
    local = [count(s, "SELECT count() FROM otel.samples_local") for s in shards]
    check("the shards hold the rows between them", sum(local) == want, local)
    # Which shard a row goes to is the sharding key modulo 2 (weights 1 and 1): the first
    # shard takes remainder 0. batch_id is random, so check the rule rather than a spread.
    misplaced = [count(s, "SELECT count() FROM otel.samples_local WHERE cityHash64(batch_id) %% 2 != %d" % i)
                 for i, s in enumerate(shards)]
    check("every sample row is on the shard cityHash64(batch_id) picks", misplaced == [0, 0], misplaced)
    stacks = [count(s, "SELECT count() FROM otel.stacks_local") for s in shards]
    misplaced = [count(s, "SELECT count() FROM otel.stacks_local WHERE stack_hash %% 2 != %d" % i)
                 for i, s in enumerate(shards)]
    check("stacks are on both shards, each on the one stack_hash picks", all(n > 0 for n in stacks) and
          misplaced == [0, 0], (stacks, misplaced))
    batches = [count(s, "SELECT uniqExact(batch_id) FROM otel.samples_local") for s in shards]
    check("no batch on two shards", sum(batches) == count(shards[0], "SELECT uniqExact(batch_id) FROM otel.samples"),
          batches)


def doc_answers(node, queries):
    """{name: answer text} of the page's queries on `node`; `containers` over a fixed window."""
    out = {}
    for name, sql in queries.items():
        if name in CLUSTER_ONLY:
            continue
        sql = sql.replace("now() - 3600", "toDateTime('2025-10-31 00:00:00')")
        try:
            out[name] = node.query(sql)
        except RuntimeError as e:
            out[name] = "ERROR " + str(e)[:300]
    return out


def check_against_fixtures(answers, where):
    totals = [r[:5] for r in cc.tsv(answers["totals"])]
    want = [["samples", "count", str(SAMPLES * SENDS), str(TIMESTAMPS * SENDS), str(TIMESTAMPS * SENDS)]]
    check("%s: totals = %d x expect.json" % (where, SENDS), totals == want, "%s\nwant %s" % (totals, want))
    folded = sorted(answers["folded"].splitlines())
    want_folded = cc.folded_lines(SENDS)
    check("%s: folded = ebpf-jvm-go.folded x %d" % (where, SENDS), folded == want_folded,
          "\n".join(sorted(set(folded) ^ set(want_folded))[:10]))
    types = {r[0]: int(r[1]) for r in cc.tsv(answers["frame-types"])}
    want_types = {k: v * SENDS for k, v in cc.EXPECT["frame_types"].items()}
    check("%s: frames per frame type = %d x expect.json" % (where, SENDS), types == want_types,
          "%s\nwant %s" % (types, want_types))
    top = [(r[0], int(r[1]), int(r[2])) for r in cc.tsv(answers["top-functions"])]
    want_top = cc.top_functions(CONTAINER, SENDS)
    check("%s: top functions of a container = the reference protobuf library's" % where, top == want_top,
          "got  %s\nwant %s" % (top[:5], want_top[:5]))
    check("%s: no duplicate batches" % where, answers["duplicates"].strip() == "", answers["duplicates"][:300])


def test_doc_queries_same_over_the_cluster():
    q = cc.doc_queries("otel")
    one = doc_answers(single, q)
    check_against_fixtures(one, "single node")
    for i, node in enumerate(shards):
        got = doc_answers(node, q)
        same = [n for n in one if got.get(n) == one[n]]
        check("every documented query (%d) over the Distributed tables from shard %d = over the single node"
              % (len(one), i + 1), len(same) == len(one) and len(one) >= 6,
              "differ: %s" % {n: (got.get(n, "")[:200], one[n][:200]) for n in one if n not in same})
    check_against_fixtures(doc_answers(shards[0], q), "cluster")


def folded_frames_weight(times):
    """sum(weight x frames in the stack) from the folded file: what `frames_weighted` counts."""
    total = 0
    for line in cc.FOLDED.splitlines():
        stack, w = line.rsplit(" ", 1)
        total += int(w) * (stack.count(";") + 1)
    return total * times


def test_global_join():
    sql = cc.doc_queries("otel")["cluster-global-join"]
    want = [[str(SAMPLES * SENDS), str(TIMESTAMPS * SENDS), str(folded_frames_weight(SENDS))]]
    try:
        got = cc.tsv(shards[0].query(sql))
    except RuntimeError as e:
        got = str(e)[:400]
    check("the docs' GLOBAL join over the Distributed tables = the fixtures'", got == want, "%s\nwant %s" % (got, want))
    plain = sql.replace("GLOBAL ", "")
    check("the same join on the single node (no GLOBAL needed) gives the same", cc.tsv(single.query(plain)) == want)
    try:
        shards[0].query(plain)
        err = ""
    except RuntimeError as e:
        err = str(e)
    check("without GLOBAL the shards refuse it (Code: 288, as the docs say)",
          "Code: 288" in err and "Double-distributed" in err, err[:300])


def test_query_commands_over_the_cluster():
    """`lazybackend folded|top --clickhouse-url` (docs/queries.md) over the Distributed tables."""
    for node, where in ((shards[1], "the cluster (shard 2)"), (single, "the single node")):
        rc, out, err = cc.server.run_cli("folded", "--clickhouse-url", node.url)
        got = sorted(out.decode().splitlines())
        check("lazybackend folded --clickhouse-url over %s = ebpf-jvm-go.folded x %d" % (where, SENDS),
              rc == 0 and got == cc.folded_lines(SENDS), err or "\n".join(sorted(set(got) ^ set(cc.folded_lines(SENDS)))[:5]))
    tops = [cc.server.run_cli("top", "--by", "container", "--clickhouse-url", n.url) for n in (shards[0], single)]
    check("lazybackend top --by container: the cluster answers what the single node answers",
          tops[0][0] == 0 and tops[0][1] == tops[1][1] and tops[0][1].count(b"\n") > 2, tops[0][2] + tops[1][2])


def test_export_over_the_cluster():
    """`lazybackend export --clickhouse-url` over the Distributed tables gives back every request
    sent, whole: the canonical forms (lib/otlp_canon.py, the reference protobuf library) of the
    exported requests are those of the fixtures sent, as from the single node."""
    import otlp_canon as C
    want = sorted(repr(C.canon(cc.fixture(name), re.search(r"\.(v1\.\d+)", name).group(1)))
                  for _ in range(ROUNDS) for name in cc.FIXTURE_FILES)
    for node, where in ((shards[1], "the cluster (shard 2)"), (single, "the single node")):
        out = os.path.join(cc.TMP, "export-%d.pb" % node.port)
        rc, _, err = cc.server.run_cli("export", "--clickhouse-url", node.url, "--output", out)
        reqs = C.split_stream(open(out, "rb").read()) if rc == 0 else []
        got = sorted(repr(C.canon(r, "v1.11")) for r in reqs)
        check("export --clickhouse-url over %s: the %d requests sent, whole" % (where, len(want)),
              rc == 0 and got == want, err or "%d requests, %d sent" % (len(got), len(want)))


def test_final_folds_a_resent_batch_on_its_shard():
    """A batch stored twice (an ambiguous failure re-sent) lies on one shard: FINAL on the
    Distributed table reaches the shards, so the page's totals do not change.

    The shard's merges are stopped first: a ReplacingMergeTree folds the copy away whenever a
    background merge runs, and one that ran between the INSERT and the counts (it happened in
    CI) left nothing to find."""
    shard = max(shards, key=lambda n: count(n, "SELECT count() FROM otel.samples_local"))   # one that has rows
    shard.query("SYSTEM STOP MERGES otel.samples_local")
    batch = shard.query("SELECT batch_id FROM otel.samples_local LIMIT 1").strip()
    rows = count(shard, "SELECT count() FROM otel.samples_local WHERE batch_id = %s" % batch)
    shard.query("INSERT INTO otel.samples_local SELECT * FROM otel.samples_local WHERE batch_id = %s" % batch)
    raw = count(shard, "SELECT count() FROM otel.samples")
    check("a batch of %d rows stored twice on a shard" % rows, rows > 0 and raw == SENDS * SAMPLES + rows, raw)
    q = cc.doc_queries("otel")
    totals = [r[:5] for r in cc.tsv(shard.query(q["totals"]))]
    want = [["samples", "count", str(SAMPLES * SENDS), str(TIMESTAMPS * SENDS), str(TIMESTAMPS * SENDS)]]
    check("totals over the Distributed tables still = %d x expect.json (FINAL reached the shard)" % SENDS,
          totals == want, "%s\nwant %s" % (totals, want))
    dup = cc.tsv(shard.query(q["duplicates"]))
    check("the duplicates query finds that batch", dup == [[batch, str(2 * rows), str(rows)]], dup)


def main():
    started = time.monotonic()
    errors = start_all()
    try:
        if errors:
            check("three clickhouse-servers start (two in cluster mode)", False, errors)
        else:
            for name, fn in [("cluster DDL", test_cluster_ddl_from_the_docs),
                             ("sends", test_sends_reach_both_shards),
                             ("doc queries", test_doc_queries_same_over_the_cluster),
                             ("GLOBAL join", test_global_join),
                             ("query commands", test_query_commands_over_the_cluster),
                             ("export", test_export_over_the_cluster),
                             ("FINAL", test_final_folds_a_resent_batch_on_its_shard)]:
                tap.run(name, fn)
    finally:
        for n in nodes:
            n.stop()
        single.cleanup(keep=tap.failed() > 0)
    check("the whole test took under 2 minutes", time.monotonic() - started < 120,
          "%.1f s" % (time.monotonic() - started))
    tap.done()


if __name__ == "__main__":
    main()
