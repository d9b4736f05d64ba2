#!/usr/bin/python3
"""systemd_notify.py - the server under systemd's notification protocol, this script in
systemd's place: an AF_UNIX datagram socket named by $NOTIFY_SOCKET, $WATCHDOG_USEC set.

Why: Type=notify units trust READY=1 to mean "connect now", and WatchdogSec= restarts a
service whose pings stop. So: READY=1 arrives only once a client can connect (it connects the
moment READY arrives; a port that cannot be bound or a sink that cannot be opened gives no
READY and exit 1); WATCHDOG=1 comes every half of $WATCHDOG_USEC while requests are served;
STATUS= carries counts equal to the requests this script sent; SIGTERM brings STOPPING=1,
then the final counts. Also: the abstract namespace ("@name"), $WATCHDOG_PID naming another
process (no pings), and no service manager at all. The expectations are the protocol as
sd_notify(3) documents it and the counts of what was sent (the fixture's sample count from
ebpf-jvm-go.expect.json).
Environment: LAZYBACKEND (the binary), FIXTURES.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import free_port, channel, connects, export, terminate as stop, wait_until  # noqa: E402

TMP = fx.tempdir("lb-notify-")
BODY = fx.read()
SAMPLES = fx.expect()["samples"]
STATUS_RE = re.compile(r"STATUS=(\w+): (\d+) requests ok, (\d+) failed; (\d+) samples, (\d+) spans "
                       r"delivered; (\d+) connections? open, (\d+) accepted")


class Manager:
    """systemd's end: a datagram socket that records every message with its arrival time."""

    def __init__(self, name, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.address = "@" + name
            self.sock.bind("\0" + name)
        else:
            self.address = os.path.join(TMP, name)
            self.sock.bind(self.address)
        self.sock.settimeout(0.05)
        self.messages = []          # (monotonic seconds, text)
        self.idle = 0               # receives that found the socket empty
        self.arrived = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                with self.arrived:
                    self.idle += 1
                    self.arrived.notify_all()
                continue
            with self.arrived:
                self.messages.append((time.monotonic(), data.decode()))
                self.arrived.notify_all()

    def wait_for(self, pred, timeout):
        """The first message satisfying pred, waiting up to `timeout` seconds; None if none."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for t, m in self.messages:
                    if pred(m):
                        return t, m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)

    def texts(self):
        """Every message so far. Once the sender has exited, everything it sent is queued in
        the socket: wait until the receiver found the queue empty, then answer."""
        with self.arrived:
            seen = self.idle
            self.arrived.wait_for(lambda: self.idle >= seen + 2, timeout=5)
            return [m for _, m in self.messages]

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


def start(manager, *args, env=None):
    """The server told to notify `manager` (a Manager, or None for no $NOTIFY_SOCKET);
    returns (process, grpc port, http port, stderr path)."""
    gport, hport = free_port(), free_port()
    e = dict(os.environ)
    e.pop("NOTIFY_SOCKET", None)
    if manager:
        e["NOTIFY_SOCKET"] = manager.address
    e.update(env or {})
    err = os.path.join(TMP, "stderr-%d" % gport)
    argv = [LB, "--grpc-address", "127.0.0.1:%d" % gport, "--http-address", "127.0.0.1:%d" % hport,
            "--format", "folded", *args]
    with open(err, "wb") as ef, open(os.path.join(TMP, "stdout-%d" % gport), "wb") as of:
        p = subprocess.Popen(argv, stdout=of, stderr=ef, env=e)
    return p, gport, hport, err


def status_counts(text):
    """(phase, ok, failed, samples, spans, open, accepted) of a STATUS= message, or None."""
    m = STATUS_RE.search(text)
    return (m.group(1),) + tuple(int(g) for g in m.groups()[1:]) if m else None


def test_serving():
    mgr = Manager("notify")
    p, gport, hport, err = start(mgr, env={"WATCHDOG_USEC": "400000"})
    try:
        ready = mgr.wait_for(lambda m: "READY=1" in m, 10 * SLOW)
        # connect the moment READY arrives: no retry, both ports must listen already
        grpc_ok, http_ok = connects(gport), connects(hport)
        check("READY=1 arrives", ready is not None, open(err).read())
        check("when READY=1 arrives, a client connects to the gRPC port at once", grpc_ok)
        check("... and to the HTTP port", http_ok)
        check("READY=1 is the first message and carries a STATUS= with zero counts",
              mgr.texts() and "READY=1" in mgr.texts()[0] and
              status_counts(mgr.texts()[0]) == ("serving", 0, 0, 0, 0, 0, 0), mgr.texts()[:1])

        # requests over gRPC for ~2 s; the pings must keep coming every 200 ms meanwhile
        ch = channel(gport)
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 2.0:
            r = export(ch, BODY)
            check_ok = r.status == "OK"
            if not check_ok:
                break
            sent += 1
        t1 = time.monotonic()
        bad = export(ch, b"\xff\xff\xff not a protobuf")
        check("%d requests served during the watchdog window, all OK" % sent, sent >= 5 and check_ok, sent)
        check("a garbage request is refused", bad.status == "INVALID_ARGUMENT", bad)
        with mgr.arrived:
            pings = [t for t, m in mgr.messages if m == "WATCHDOG=1" and t0 <= t <= t1]
        gaps = [b - a for a, b in zip([t0] + pings, pings + [t1])]
        check("WATCHDOG=1 about every 200 ms while serving: %d pings in %.2f s" % (len(pings), t1 - t0),
              7 <= len(pings) <= 13, pings)
        check("no gap between pings over %.2f s (largest %.3f s)" % (0.2 + 0.15 * SLOW, max(gaps)),
              max(gaps) <= 0.2 + 0.15 * SLOW, gaps)
        check("pings not faster than asked (smallest gap %.3f s)" % min(gaps[1:-1] or [1]),
              min(gaps[1:-1] or [1]) >= 0.15, gaps)

        # the periodic STATUS= catches up with what was sent (within its few seconds)
        want = (sent, 1, sent * SAMPLES, 0)
        got = mgr.wait_for(lambda m: (status_counts(m) or ())[1:5] == want, 6 * SLOW)
        check("STATUS= while serving: %d requests ok, 1 failed, %d samples" % (sent, sent * SAMPLES),
              got is not None and status_counts(got[1])[0] == "serving",
              [m for m in mgr.texts() if "STATUS" in m][-3:])
        check("STATUS= counts the open connection", got and status_counts(got[1])[5] >= 1, got)
        ch.close()

        rc = stop(p)
        texts = mgr.texts()
        stopping = [i for i, m in enumerate(texts) if "STOPPING=1" in m]
        check("SIGTERM: STOPPING=1, once", len(stopping) == 1, texts[-4:])
        check("STOPPING=1 carries the counts", stopping and
              status_counts(texts[stopping[0]])[:5] == ("stopping",) + want, texts[-4:])
        final = [status_counts(m) for m in texts if "STATUS=stopped" in m]
        check("then the final STATUS=: stopped, the same counts",
              stopping and final and final[-1][:5] == ("stopped",) + want
              and texts.index(next(m for m in texts if "STATUS=stopped" in m)) > stopping[0], texts[-4:])
        check("exit 0", rc == 0, rc)
        n_ready = sum("READY=1" in m for m in texts)
        check("READY=1 was sent once", n_ready == 1, n_ready)
    finally:
        stop(p)
        mgr.close()


def test_no_ready_on_failure():
    for what, args, busy in (("the gRPC port is taken", (), "grpc"),
                             ("the HTTP port given is taken", (), "http"),
                             ("the sqlite sink cannot be opened",
                              ("--sink", "sqlite", "--sqlite-path", "/nonexistent/dir/x.db"), None)):
        mgr = Manager("fail-%s" % (busy or "sink"))
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        extra = list(args)
        if busy:
            extra += ["--%s-address" % busy, "127.0.0.1:%d" % port]
        p, _, _, err = start(mgr, *extra, env={"WATCHDOG_USEC": "400000"})
        try:
            rc = p.wait(15 * SLOW)
        except subprocess.TimeoutExpired:
            rc = stop(p)
        check("%s: exit 1, no READY=1 (nothing at all sent)" % what, rc == 1 and mgr.texts() == [],
              (rc, mgr.texts(), open(err).read()[-400:]))
        holder.close()
        mgr.close()


def test_abstract_socket_and_watchdog_pid():
    mgr = Manager("lb-notify-test-%d" % os.getpid(), abstract=True)
    # $WATCHDOG_PID names another process: the watchdog is not ours to ping
    p, gport, _, err = start(mgr, env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())})
    try:
        ready = mgr.wait_for(lambda m: "READY=1" in m, 10 * SLOW)
        check("@abstract NOTIFY_SOCKET: READY=1 arrives", ready is not None, open(err).read())
        time.sleep(0.6)
        check("WATCHDOG_PID of another process: no WATCHDOG=1",
              not any("WATCHDOG" in m for m in mgr.texts()), mgr.texts())
        check("SIGTERM: exit 0, STOPPING=1", stop(p) == 0 and any("STOPPING=1" in m for m in mgr.texts()),
              mgr.texts())
    finally:
        stop(p)
        mgr.close()


def test_without_manager():
    p, gport, _, err = start(None, env={"WATCHDOG_USEC": "200000"})
    try:
        check("no NOTIFY_SOCKET: serves as ever", wait_until(lambda: connects(gport), 10 * SLOW))
        check("... exit 0, no word of a service manager", stop(p) == 0 and
              "notify" not in open(err).read().lower(), open(err).read())
    finally:
        stop(p)
    p, gport, _, err = start(None, env={"NOTIFY_SOCKET": "relative/path"})
    try:
        # The warning comes when the service would say READY=1, just after the
        # listeners are up: a connect can win that race, so wait for both.
        check("NOTIFY_SOCKET not a path: serves, and says it does not notify",
              wait_until(lambda: connects(gport) and "not notifying" in open(err).read(), 10 * SLOW),
              open(err).read())
    finally:
        stop(p)


run("serving under a service manager", test_serving)
run("no READY on a failed start", test_no_ready_on_failure)
run("abstract socket, WATCHDOG_PID", test_abstract_socket_and_watchdog_pid)
run("no service manager", test_without_manager)
done()
