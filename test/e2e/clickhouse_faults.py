#!/usr/bin/python3
"""clickhouse_faults.py - the ClickHouse sink while ClickHouse goes away.

Why it exists: "never block the loop, never lose acknowledged data" is only worth what an
outage test shows. A client sends continuously (bounded in count and time) while the real
clickhouse-server is stopped for seconds and restarted, then killed with SIGKILL and
restarted. At the end every sample the client was told OK for is in ClickHouse (exactly,
duplicates folded by FINAL), every call was answered well within its 5 s deadline, the spool
was used and emptied, and lazybackend's memory (VmRSS) stayed bounded. A second case fills a
tiny spool while ClickHouse is down: requests are then refused with UNAVAILABLE (never dropped
silently), and everything acknowledged before arrives after a restart of both.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
from tap import check  # noqa: E402

SAMPLES = cc.EXPECT["samples"]
DEADLINE = 5.0            # the client's per-call deadline
MAX_CALLS = 4000          # bounds on the client's load loop
MAX_SECONDS = 60
# Memory may grow this much over the warmed-up process, no more. ASan keeps up to 256 MiB of
# freed memory in quarantine, so its builds get that much more.
RSS_GROWTH_KB = (48 + (300 if cc.SLOW > 1 else 0)) * 1024

ch = cc.ClickHouse()


def samples_in(db):
    return ch.try_scalar("SELECT count() FROM %s.samples FINAL" % db)


def delivered_while_draining(db, want, stall=15 * cc.SLOW, cap=300 * cc.SLOW):
    """Waits until ClickHouse holds `want` samples, for as long as the count keeps rising: after
    the outages the backlog drains batch by batch (five INSERTs each) at whatever pace the
    server takes them, which on a loaded machine is slower than the client sent (a fixed
    40 s wait failed there with every batch safe in the log). Gives up when the count has not
    risen for `stall` s, or after `cap` s. (delivered, seconds waited)."""
    t0 = last_rise = time.monotonic()
    last = -1
    while True:
        n = samples_in(db)
        now = time.monotonic()
        if n >= want:
            return True, now - t0
        if n > last:
            last, last_rise = n, now
        if now - last_rise > stall or now - t0 > cap:
            return False, now - t0
        time.sleep(0.5)


def stat(err, name):
    """A counter from the sink's shutdown line ("... 12 spooled, ...")."""
    m = re.search(r"clickhouse: stopped: .*?(\d+) %s" % name, err)
    return int(m.group(1)) if m else -1


class Client(threading.Thread):
    """Sends the fixture in a loop until told to stop (or a bound is hit), recording results."""

    def __init__(self, be):
        super().__init__(daemon=True)
        self.be = be
        self.results = []
        self.stop = threading.Event()

    def run(self):
        payload = cc.fixture()
        end = time.monotonic() + MAX_SECONDS
        while not self.stop.is_set() and len(self.results) < MAX_CALLS and time.monotonic() < end:
            self.results.append(self.be.export(payload, timeout=DEADLINE))
            time.sleep(0.02)


class RssSampler(threading.Thread):
    def __init__(self, be):
        super().__init__(daemon=True)
        self.be = be
        self.kb = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set() and len(self.kb) < 10 * MAX_SECONDS:
            self.kb.append(self.be.rss_kb())
            time.sleep(0.1)


def test_outages():
    db = "lb_faults"
    spool = os.path.join(ch.dir, "spool-faults")
    be = cc.Backend("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", db,
                    "--clickhouse-flush-interval", "100", "--clickhouse-max-queue-bytes", "128K",
                    "--clickhouse-spool-dir", spool, "--clickhouse-spool-max-bytes", "256M")
    client, rss = Client(be), RssSampler(be)
    t0 = time.monotonic()

    def event(what, fn):
        t = time.monotonic()
        fn()
        print("# t=%.1f s: clickhouse-server %s (%.1f s)" % (t - t0, what, time.monotonic() - t), flush=True)

    client.start()
    rss.start()
    time.sleep(2)
    event("stopped with SIGTERM", ch.stop)   # orderly: connections refused for a few seconds
    time.sleep(4)
    event("started", ch.start)
    time.sleep(3)
    event("killed with SIGKILL", ch.kill)    # connections cut mid-request
    time.sleep(3)
    event("started", ch.start)
    time.sleep(3)
    client.stop.set()
    client.join(DEADLINE + 5)
    acked = sum(1 for r in client.results if r.status == "OK")
    statuses = sorted({r.status for r in client.results})
    slowest = max((r.seconds for r in client.results), default=0)
    check("client sent continuously through the outages (%d calls)" % len(client.results),
          len(client.results) >= 100, len(client.results))
    check("every call acknowledged (spool absorbed the outages)", statuses == ["OK"],
          [r for r in client.results if r.status != "OK"][:5])
    check("every call answered within its deadline (slowest %.3f s)" % slowest, slowest < DEADLINE, slowest)
    delivered, waited = delivered_while_draining(db, acked * SAMPLES)
    print("# the backlog %s %.1f s after the client stopped" % ("drained" if delivered else "stalled", waited),
          flush=True)
    rss.stop.set()
    rss.join()
    rc = be.stop(timeout=60)
    err = be.stderr()
    got = samples_in(db)
    check("every acknowledged sample is in ClickHouse: %d x %d = %d" % (acked, SAMPLES, acked * SAMPLES),
          delivered and got == acked * SAMPLES, "got %d" % got)
    check("the outages were real: batches retried and spooled",
          stat(err, "retried") > 0 and stat(err, "spooled") > 0, err[-1500:])
    check("spool emptied; exit 0", rc == 0 and [n for n in os.listdir(spool) if n.endswith((".batch", ".wal"))] == [],
          "%s %s" % (rc, os.listdir(spool)))
    warm = rss.kb[10:] or rss.kb
    base = min(warm) if warm else 0
    peak = max(rss.kb) if rss.kb else 0
    check("memory bounded: VmRSS %d..%d KiB over %d samples" % (base, peak, len(rss.kb)),
          rss.kb and peak - base < RSS_GROWTH_KB, rss.kb[::10])
    distinct_errors = [ln for ln in err.splitlines() if "failed (will retry)" in ln]
    attempts = stat(err, "failed attempts")
    check("errors logged per distinct error and outage, not per attempt (%d lines for %d failed attempts)"
          % (len(distinct_errors), attempts), 0 < len(distinct_errors) < attempts, "\n".join(distinct_errors))
    for line in err.splitlines():
        if "clickhouse:" in line:
            print("# " + line)


def test_spool_full_refuses():
    db = "lb_full"
    spool = os.path.join(ch.dir, "spool-full")
    ch.stop()
    be = cc.Backend("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", db,
                    "--clickhouse-flush-interval", "50", "--clickhouse-max-queue-bytes", "16K",
                    "--clickhouse-spool-dir", spool, "--clickhouse-spool-max-bytes", "400K",
                    "--shutdown-timeout", "2")
    # The write-ahead log holds the requests' rows uncompressed (about 78 KB for this fixture),
    # so its cap fits a few of them.
    results = []
    for _ in range(600):                              # bounded: stops at the 5th refusal
        results.append(be.export(cc.fixture(), timeout=DEADLINE))
        if sum(1 for r in results if r.status != "OK") >= 5:
            break
        time.sleep(0.01)
    acked = sum(1 for r in results if r.status == "OK")
    refused = [r for r in results if r.status != "OK"]
    check("spool full: requests refused with UNAVAILABLE and the reason (%d acknowledged before)" % acked,
          acked > 0 and refused and all(r.status == "UNAVAILABLE" and "full" in r.details for r in refused),
          refused[:3])
    rc = be.stop(timeout=60)
    files = [n for n in os.listdir(spool) if n.endswith(".wal")]
    check("shutdown while ClickHouse is down: exit 0, batches kept in the spool (%d files)" % len(files),
          rc == 0 and files, "%s\n%s" % (rc, be.stderr()[-1500:]))
    ch.start()
    be = cc.Backend("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", db,
                    "--clickhouse-spool-dir", spool)
    ok = cc.wait_until(lambda: samples_in(db) >= acked * SAMPLES, 30 * cc.SLOW, 0.25)
    rc = be.stop(timeout=60)
    check("after restarting both, every acknowledged sample arrives exactly once (%d)" % (acked * SAMPLES),
          ok and samples_in(db) == acked * SAMPLES, "got %d" % samples_in(db))
    check("spool drained", rc == 0 and not [n for n in os.listdir(spool) if n.endswith((".batch", ".wal"))],
          os.listdir(spool))


def main():
    cc.run_with_server(ch, [("outages while a client sends", test_outages),
                            ("a full spool refuses, never drops", test_spool_full_refuses)])


if __name__ == "__main__":
    main()
