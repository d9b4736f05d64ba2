#!/usr/bin/python3
"""clickhouse_durability.py - an acknowledged request is in ClickHouse exactly once, whatever
is killed when.

Why it exists: the ClickHouse sink acknowledges a request only once its rows are synced to
the write-ahead log (docs/clickhouse.md, Durability). Four gRPC clients export continuously
into a real clickhouse-server while lazybackend is killed with SIGKILL at random moments
(CH_DURABILITY_KILLS times, default 100; lower it for sanitizer runs) and restarted on the
same log; in between, ClickHouse itself is stopped (SIGTERM) and killed (SIGKILL), so some
rounds run with nowhere to deliver and the log grows, and some INSERTs are cut off. Every
request carries a unique tag (its resources' service.name, which every sample row stores), so
at the end, without FINAL and by identity:
  - every acknowledged request's samples are in ClickHouse exactly once (count = its samples);
  - no request is stored twice or in part, and nothing is stored that was not sent;
  - after a clean restart and shutdown the log directory is empty (no segment, nothing .bad).
A second case fills a small tmpfs under the log (root only): requests are refused with
UNAVAILABLE, never acknowledged and lost; everything acknowledged arrives once there is room.

Environment: LAZYBACKEND, FIXTURES, SANITIZE, CH_DURABILITY_KILLS, CRASH_SEED. Only 127.0.0.1;
every loop is bounded.
"""
import itertools
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
import otlpgen  # noqa: E402
import server  # noqa: E402
from tap import check  # noqa: E402

SLOW = cc.SLOW
KILLS = int(os.environ.get("CH_DURABILITY_KILLS", "100"))
SEED = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
rng = random.Random(SEED)
CLIENTS = 4
DEADLINE = 5 * SLOW
ch = cc.ClickHouse()

BASE = otlpgen.service.ExportProfilesServiceRequest()
BASE.ParseFromString(cc.fixture())
SAMPLES = sum(len(p.samples) for rp in BASE.resource_profiles for sp in rp.scope_profiles for p in sp.profiles)


def build(tag):
    """The fixture with every resource's service.name set to `tag`: each sample row of the
    request stores it (samples.service_name)."""
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.CopyFrom(BASE)
    for rp in req.resource_profiles:
        keep = [kv for kv in rp.resource.attributes if kv.key != "service.name"]
        del rp.resource.attributes[:]
        rp.resource.attributes.extend(keep)
        kv = rp.resource.attributes.add()
        kv.key = "service.name"
        kv.value.string_value = tag
    return req.SerializeToString()


class Clients:
    """CLIENTS threads exporting tagged requests to the current backend, recording what was
    sent and acknowledged; bounded in time per round."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.seq = itertools.count(1)
        self.lock = threading.Lock()
        self.sent, self.acked, self.refused = set(), set(), []

    def round(self, port, stop):
        threads = [threading.Thread(target=self._one, args=(port, stop), daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads

    def _one(self, port, stop):
        channel = server.channel(port)
        deadline = time.monotonic() + 30 * SLOW
        try:
            for _ in range(5000):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                with self.lock:
                    tag = "%s-%d" % (self.prefix, next(self.seq))
                    self.sent.add(tag)
                reply = server.export(channel, build(tag), timeout=DEADLINE)
                if reply.status == "OK":
                    with self.lock:
                        self.acked.add(tag)
                elif reply.status == "UNAVAILABLE" and "write-ahead log" in reply.details:
                    with self.lock:
                        self.refused.append(reply.details)
                    time.sleep(0.02)
                else:
                    break   # the server was killed: this request may or may not be stored
        finally:
            channel.close()


def stored(db, prefix):
    """{tag: sample rows} for this case's tags, without FINAL: copies would show. Nothing while
    the sink has not created its tables yet (a backend just started on a new database)."""
    out = {}
    try:
        rows = cc.tsv(ch.query("SELECT service_name, count() FROM %s.samples WHERE service_name LIKE '%s-%%' "
                               "GROUP BY service_name FORMAT TabSeparated" % (db, prefix)))
    except RuntimeError as e:
        if "Code: 60" not in str(e) and "Code: 81" not in str(e):
            raise
        rows = []
    for name, n in rows:
        out[name] = int(n)
    return out


def backend(db, spool, *extra):
    return cc.Backend("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", db,
                      "--clickhouse-spool-dir", spool, "--clickhouse-max-queue-bytes", "2M",
                      *extra)


def verify(what, db, prefix, clients):
    got = stored(db, prefix)
    missing = sorted(clients.acked - set(got))
    check("%s: every acknowledged request is in ClickHouse (%d acknowledged of %d sent)"
          % (what, len(clients.acked), len(clients.sent)), not missing,
          "missing %d, e.g. %s (seed %d)" % (len(missing), missing[:10], SEED))
    wrong = {t: n for t, n in got.items() if n != SAMPLES}
    check("%s: each stored exactly once and whole (%d samples each), no copies" % (what, SAMPLES), not wrong,
          "%s (seed %d)" % (sorted(wrong.items())[:10], SEED))
    check("%s: nothing stored that was not sent" % what, set(got) <= clients.sent, sorted(set(got) - clients.sent)[:10])


def drain_and_stop(db, spool, prefix, clients, what):
    """A last backend delivers the rest; a clean shutdown, then a clean restart and shutdown:
    the log is empty."""
    be = backend(db, spool)
    try:
        ok = cc.wait_until(lambda: clients.acked <= set(stored(db, prefix)), 120 * SLOW, 0.25)
    finally:
        rc = be.stop(timeout=60)
    check("%s: the backlog is delivered after the last restart; clean shutdown exits 0" % what, ok and rc == 0,
          "%s %s" % (rc, be.stderr()[-1500:]))
    rc = backend(db, spool).stop(timeout=60)
    left = sorted(os.listdir(spool))
    check("%s: after a clean restart the log directory is empty" % what, rc == 0 and not left, left[:10])
    return be.stderr()


def test_kills():
    db, prefix = "lb_durable", "k"
    spool = os.path.join(ch.dir, "spool-kills")
    clients = Clients(prefix)
    ch_down = None   # "stopped" / "killed" while ClickHouse is down
    events = {"stopped": 0, "killed": 0}
    t0 = time.monotonic()
    for k in range(KILLS):
        be = backend(db, spool)
        stop = threading.Event()
        threads = clients.round(be.port, stop)
        # ClickHouse goes away now and then, and comes back a few rounds later.
        if ch_down is None and k % 20 == 7:
            ch_down = "stopped" if events["stopped"] == 0 else "killed"
            going = threading.Thread(target=ch.stop if ch_down == "stopped" else ch.kill, daemon=True)
            going.start()
            events[ch_down] += 1
            down_until = k + rng.randint(2, 5)
        time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.5)]) * SLOW)
        be.kill()
        stop.set()
        for t in threads:
            t.join(30 * SLOW)
        if ch_down is not None and k >= down_until:
            going.join(90)   # the stopping server is gone before it starts again
            ch.start()
            ch_down = None
    if ch_down is not None:
        going.join(90)
        ch.start()
    print("# %d kills in %.1f s; ClickHouse stopped %d and killed %d times in between"
          % (KILLS, time.monotonic() - t0, events["stopped"], events["killed"]))
    check("the clients were acknowledged along the way (%d of %d)" % (len(clients.acked), len(clients.sent)),
          len(clients.acked) >= KILLS)
    t1 = time.monotonic()
    err = drain_and_stop(db, spool, prefix, clients, "kills")
    print("# delivered and restarted cleanly in %.1f s" % (time.monotonic() - t1))
    verify("after %d SIGKILLs" % KILLS, db, prefix, clients)
    for line in err.splitlines():
        if "not sent again" in line or "quarantine" in line or ".bad" in line:
            print("# " + line)


def test_disk_full():
    """A 1 MiB tmpfs under the log while ClickHouse is down: requests are refused once it is
    full, nothing acknowledged is lost."""
    if os.geteuid() != 0:
        check("disk full (needs root to mount a tmpfs): skipped", True)
        return
    db, prefix = "lb_diskfull", "f"
    spool = os.path.join(ch.dir, "spool-tmpfs")
    os.mkdir(spool, 0o700)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", spool], capture_output=True,
                       text=True)
    if p.returncode != 0:
        check("disk full: tmpfs mounted", False, p.stderr)
        return
    be = None
    try:
        clients = Clients(prefix)
        ch.kill()
        be = backend(db, spool)   # the log's cap (1 GiB) is far above the disk: the disk fills
        stop = threading.Event()
        threads = clients.round(be.port, stop)
        full = cc.wait_until(lambda: len(clients.refused) >= 20, 30 * SLOW, 0.1)
        stop.set()
        for t in threads:
            t.join(30 * SLOW)
        be.kill()
        check("disk full: requests refused with UNAVAILABLE (%d refusals, %d acknowledged before)"
              % (len(clients.refused), len(clients.acked)),
              full and clients.acked and all("write-ahead log" in r for r in clients.refused), clients.refused[:2])
        ch.start()
        drain_and_stop(db, spool, prefix, clients, "disk full")
        verify("disk full", db, prefix, clients)
    finally:
        if be:
            be.kill()   # (killed already unless a check raised): the mount must not be busy
        subprocess.run(["umount", spool], capture_output=True)


def main():
    print("# crash seed %d (CRASH_SEED=%d to repeat)" % (SEED, SEED))
    t0 = time.monotonic()
    cc.run_with_server(ch, [("SIGKILLs of lazybackend and ClickHouse while 4 clients export", test_kills),
                            ("a full disk under the log refuses, never loses", test_disk_full),
                            ("timing", lambda: print("# %.0f s so far" % (time.monotonic() - t0)))])


if __name__ == "__main__":
    main()
