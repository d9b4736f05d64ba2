#!/usr/bin/python3
"""sqlite_batch.py - the SQLite sink's batches: many requests in one transaction, replies held
until the commit that holds them, one bad request never taking its batch-mates with it.

  - serve, several concurrent gRPC clients: the server is killed with SIGKILL right after an
    acknowledgement; the file, reopened, holds every acknowledged request, each whole (the
    fixture's sample count from its .expect.json), and the server committed fewer times than
    it acknowledged requests (the batches are real);
  - a request that fails inside a batch (a trigger added to the database refuses one string)
    gets an error while its batch-mates are stored and acknowledged: in `decode` (one batch
    by construction) and in `serve` (concurrent clients);
  - a COMMIT that fails (the database on a full tmpfs, when the test may mount one) turns the
    held replies into errors: nothing acknowledged is missing from the file, the log says a
    batch was rolled back with its replies withheld, and once space is back the server stores
    again.

Environment: LAZYBACKEND, FIXTURES, SANITIZE. Only 127.0.0.1; every loop is bounded.
"""
import os
import sqlite3
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import scrape  # noqa: E402
import server  # noqa: E402

SLOW = fx.SLOW
TMP = fx.tempdir("lb-sqlite-batch-")
SAMPLES = fx.expect()["samples"]       # the fixture's samples, by the reference library
CLIENTS = 8

BASE = otlpgen.service.ExportProfilesServiceRequest()
BASE.ParseFromString(fx.read())


def build(request_id, poison=False):
    """The fixture tagged with a unique id; a poisoned one also carries the string the
    trigger of poison_db refuses."""
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.CopyFrom(BASE)
    attrs = req.resource_profiles[0].resource.attributes
    kv = attrs.add()
    kv.key = "test.request.id"
    kv.value.int_value = request_id
    if poison:
        kv = attrs.add()
        kv.key = "test.poison"
        kv.value.string_value = "poison-%d" % request_id
    return req.SerializeToString()


def stored(db):
    """{request id: samples stored}, integrity, untagged requests; a read-write connection, so
    that a WAL left by a killed server is recovered as any later user would."""
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(
            "SELECT CAST(a.value AS INTEGER), "
            "  (SELECT count(*) FROM resources r JOIN profiles p ON p.resource_id = r.id "
            "   JOIN samples s ON s.profile_id = p.id WHERE r.request_id = q.id) "
            "FROM requests q JOIN resources r0 ON r0.request_id = q.id AND r0.idx = 0 "
            "JOIN attribute_sets_v a ON a.set_id = r0.attributes_id AND a.key = 'test.request.id'").fetchall()
        integrity = con.execute("PRAGMA integrity_check").fetchall()
        untagged = con.execute("SELECT count(*) FROM requests").fetchone()[0] - len(rows)
    finally:
        con.close()
    return dict(rows), integrity, untagged


def poison_db(db):
    """A database of the current schema (one `decode` makes it) with a trigger that refuses the
    strings of poisoned requests: the statement fails, the transaction stays open."""
    rc, _, err = server.run_cli("decode", "--sink", "sqlite", "--sqlite-path", db, "--log-level", "warn",
                                fx.path(), timeout=60)
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON strings WHEN NEW.value LIKE 'poison-%' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned request'); END")
    con.commit()
    con.close()
    return rc == 0 and not err.strip()


class Client(threading.Thread):
    """Sends the ids it is given, one after the other on its own connection, until told to
    stop or the server is gone; records what it sent and which were acknowledged."""

    def __init__(self, port, ids, poisoned=(), on_ack=None):
        super().__init__(daemon=True)
        self.port, self.ids, self.poisoned, self.on_ack = port, ids, set(poisoned), on_ack
        self.sent, self.acked, self.failed = set(), set(), {}
        self.stop = threading.Event()

    def run(self):
        ch = server.channel(self.port)
        deadline = time.monotonic() + 30 * SLOW
        for rid in self.ids:
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            self.sent.add(rid)
            r = server.export(ch, build(rid, rid in self.poisoned), timeout=10 * SLOW)
            if r.status != "OK":
                self.failed[rid] = r.status + " " + r.details
                if not self.poisoned:
                    break   # the server went away (killed) or refused: stop here
                continue
            self.acked.add(rid)
            if self.on_ack:
                self.on_ack()
        ch.close()


def commits(srv):
    """COMMITs the SQLite sink made so far (/metrics)."""
    page = scrape.scrape(srv.url)
    return int(page.value("lazybackend_sqlite_commit_duration_seconds_count"))


def test_kill_right_after_acks():
    for sync in ("normal", "full"):
        db = os.path.join(TMP, "kill-%s.db" % sync)
        srv = server.Server("--sink", "sqlite", "--sqlite-path", db, "--sqlite-sync", sync,
                            "--log-level", "warn", http=True, dir=TMP)
        lock = threading.Lock()
        count = [0]
        enough = threading.Event()
        target = 60 + int(time.time() * 1000) % 60   # where the kill lands moves from run to run

        def on_ack():
            with lock:
                count[0] += 1
                if count[0] >= target:
                    enough.set()

        clients = [Client(srv.port, range(1 + 100000 * i, 100000 * (i + 1)), on_ack=on_ack)
                   for i in range(CLIENTS)]
        for c in clients:
            c.start()
        reached = enough.wait(60 * SLOW)
        n_commits = commits(srv) if reached else None
        with lock:
            acked_then = count[0]
        srv.kill()   # SIGKILL: whatever was acknowledged must be in the file
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=30 * SLOW)
        check("%s: %d clients acknowledged %d requests before the kill" % (sync, CLIENTS, target), reached,
              srv.stderr()[-2000:])
        acked = set().union(*(c.acked for c in clients))
        sent = set().union(*(c.sent for c in clients))
        rows, integrity, untagged = stored(db)
        check("%s: integrity_check ok after the kill" % sync, integrity == [("ok",)], integrity)
        missing = sorted(acked - set(rows))
        check("%s: all %d acknowledged requests are in the file" % (sync, len(acked)), not missing,
              missing[:20])
        partial = {k: v for k, v in rows.items() if v != SAMPLES}
        check("%s: every stored request holds the fixture's %d samples" % (sync, SAMPLES), not partial,
              list(partial.items())[:10])
        check("%s: nothing stored that was not sent" % sync, set(rows) <= sent and untagged == 0,
              sorted(set(rows) - sent)[:10])
        check("%s: fewer commits (%s) than acknowledged requests (%d): requests share them" %
              (sync, n_commits, acked_then), n_commits is not None and 0 < n_commits < acked_then)


def stream(*bodies):
    return b"".join(struct.pack(">I", len(b)) + b for b in bodies)


def test_bad_request_in_a_batch_decode():
    db = os.path.join(TMP, "poison-decode.db")
    check("decode: a database with the refusing trigger", poison_db(db))
    path = fx.write(TMP, "poison.bin", stream(build(1), build(2, poison=True), build(3), build(4)))
    rc, _, err = server.run_cli("decode", "--sink", "sqlite", "--sqlite-path", db, path, timeout=60)
    check("decode: exit status 1 for the refused request", rc == 1, (rc, err[-1500:]))
    reported = [line for line in err.splitlines() if line.startswith("lazybackend: ")]
    check("decode: the poisoned request (index 1 of the file) is the one reported",
          len(reported) == 1 and ": request 1: sqlite sink: " in reported[0] and "poisoned request" in reported[0],
          err[-1500:])
    rows, integrity, untagged = stored(db)
    check("decode: its batch-mates 1, 3 and 4 are stored, whole; 2 is not",
          rows == {1: SAMPLES, 3: SAMPLES, 4: SAMPLES} and untagged == 1, (rows, untagged))
    check("decode: integrity_check ok", integrity == [("ok",)], integrity)
    rc, out, err = server.run_cli("top", "--db", db, "--limit", "1", timeout=60)
    out = out.decode(errors="replace")
    check("decode: top reads the samples of four requests (poison_db's first and three)", rc == 0 and
          ("# %d samples" % (4 * SAMPLES)) in out, out + err)


def test_bad_request_in_a_batch_serve():
    db = os.path.join(TMP, "poison-serve.db")
    check("serve: a database with the refusing trigger", poison_db(db))
    srv = server.Server("--sink", "sqlite", "--sqlite-path", db, "--sqlite-sync", "normal",
                        "--log-level", "warn", http=True, dir=TMP)
    per = 25
    poisoned = {1000 * i + 7 for i in range(CLIENTS)}   # one in each client's run
    clients = [Client(srv.port, range(1000 * i, 1000 * i + per), poisoned=poisoned) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=60 * SLOW)
    n_commits = commits(srv)
    check("serve: clean shutdown", srv.stop(timeout=30) == 0, srv.stderr()[-2000:])
    acked = set().union(*(c.acked for c in clients))
    failed = {}
    for c in clients:
        failed.update(c.failed)
    check("serve: every poisoned request got an error", set(failed) == poisoned, failed)
    check("serve: every other request was acknowledged", len(acked) == CLIENTS * per - len(poisoned),
          (len(acked), sorted(failed)))
    rows, integrity, untagged = stored(db)
    check("serve: the acknowledged requests are stored, whole, and no poisoned one",
          set(rows) == acked and all(v == SAMPLES for v in rows.values()) and untagged == 1,
          (len(rows), len(acked), untagged))
    check("serve: fewer commits (%d) than requests (%d): the failed ones had batch-mates" %
          (n_commits, len(acked)), 0 < n_commits < len(acked))


def mount_tmpfs(where, size):
    os.makedirs(where, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", where],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def test_failed_commit_withholds_replies():
    where = os.path.join(TMP, "small")
    if not mount_tmpfs(where, "6m"):
        print("ok - a failed commit withholds the held replies # SKIP cannot mount a small tmpfs (needs root)")
        return
    try:
        db = os.path.join(where, "full.db")
        srv = server.Server("--sink", "sqlite", "--sqlite-path", db, "--sqlite-sync", "normal",
                            "--log-level", "info", http=True, dir=TMP)
        srv.send(build(1))   # the schema and the first pages exist; now leave little room
        st = os.statvfs(where)
        filler = os.path.join(where, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 1200 * 1024))
        # grpcio carries these channels over one HTTP/2 connection: its output holds replies of
        # several batches at once, the case where a lost batch's replies once went out with the
        # next one's (test_held_replies.c pins that in order; this sees it under real timing).
        clients = [Client(srv.port, range(1000 * (i + 1), 1000 * (i + 1) + 40), poisoned={-1})
                   for i in range(CLIENTS)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=120 * SLOW)
        acked = {1}.union(*(c.acked for c in clients))
        failed = {}
        for c in clients:
            failed.update(c.failed)
        log = srv.stderr()
        check("full disk: some requests were acknowledged, then some got errors", failed and len(acked) > 3,
              (len(acked), len(failed)))
        check("full disk: a batch's COMMIT failed and its held replies were withheld",
              "committing: database or disk is full" in log and "replies are withheld" in log, log[-3000:])
        os.unlink(filler)
        r = srv.export(build(99999), channel=srv.new_channel())
        check("full disk: once space is back, requests are stored again", r.status == "OK", r)
        if r.status == "OK":
            acked.add(99999)
        check("full disk: clean shutdown", srv.stop(timeout=30) == 0, srv.stderr()[-2000:])
        rows, integrity, _ = stored(db)
        check("full disk: integrity_check ok", integrity == [("ok",)], integrity)
        missing = sorted(acked - set(rows))
        check("full disk: every one of %d acknowledged requests is stored, whole" % len(acked),
              not missing and all(rows[k] == SAMPLES for k in acked), missing[:20])
        # A request that got an error may still be stored (its connection was closed for a
        # batch-mate's failed commit after its own batch committed): the client sends it again,
        # a duplicate, never a loss. Only acknowledged-but-missing is a failure.
    finally:
        subprocess.run(["umount", "-l", where], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


run("kill_right_after_acks", test_kill_right_after_acks)
run("bad_request_in_a_batch_decode", test_bad_request_in_a_batch_decode)
run("bad_request_in_a_batch_serve", test_bad_request_in_a_batch_serve)
run("failed_commit_withholds_replies", test_failed_commit_withholds_replies)
done()
