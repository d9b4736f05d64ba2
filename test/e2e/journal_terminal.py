#!/usr/bin/python3
"""journal_terminal.py - the log read by journald, by a person at a terminal, and by a
script; the stdout sink read through a pipe as requests arrive.

Why: under systemd, stderr is a stream into the journal, which reads a leading "<N>" as the
line's syslog priority and stamps the time itself; at a terminal the level reads faster in
colour; in a file or a pipe neither may appear (scripts parse it). And `ssh node lazybackend
| grep ...` must show each request when it arrives, not when some buffer fills.
Checks: with $JOURNAL_STREAM naming stderr's own device and inode, every line starts with
its priority (<7> debug, <6> info, <4> warning, <3> error, from syslog(3)) and carries no
timestamp; with a $JOURNAL_STREAM of another file, the plain format; under a pseudo-terminal
the level is coloured (ANSI SGR), not with NO_COLOR or TERM=dumb. A request's folded stacks
(the fixture's ebpf-jvm-go.folded) are in the pipe as soon as its Export returned.
Environment: LAZYBACKEND (the binary), FIXTURES.
"""
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import free_port, channel, connects, export, wait_until  # noqa: E402

TMP = fx.tempdir("lb-journal-")
PRIORITY = {"DEBUG": "7", "INFO": "6", "WARN": "4", "ERROR": "3"}   # syslog(3) levels
PLAIN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S")
JOURNAL = re.compile(r"^<(\d)>(DEBUG|INFO |WARN |ERROR) \S")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def clean_env(**extra):
    e = {k: v for k, v in os.environ.items()
         if k not in ("JOURNAL_STREAM", "NO_COLOR", "TERM") and not k.startswith("LAZYBACKEND_")}
    e.update(extra)
    return e


def every_level_run(stderr_fd, env):
    """A server whose log holds every level: debug (connections, --log-level debug), info,
    warn (ClickHouse unreachable), error (a batch it could not deliver, at shutdown: memory
    mode, which has nowhere to keep it)."""
    closed = socket.socket()   # bound, never listening: ClickHouse refuses every connection
    closed.bind(("127.0.0.1", 0))
    port = free_port()
    p = subprocess.Popen([LB, "--grpc-address", "127.0.0.1:%d" % port, "--http-address", "none",
                          "--log-level", "debug", "--sink", "clickhouse", "--clickhouse-url",
                          "http://127.0.0.1:%d" % closed.getsockname()[1], "--shutdown-timeout", "1",
                          "--clickhouse-durability", "memory"],
                         stdout=subprocess.DEVNULL, stderr=stderr_fd, env=env)
    wait_until(lambda: p.poll() is not None or connects(port), 10 * SLOW)
    ch = channel(port)
    ok = export(ch, fx.read()).status == "OK"
    ch.close()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(30 * SLOW)
    closed.close()
    return ok, rc


def journal_run(name, stream_of):
    """every_level_run() with stderr a file and JOURNAL_STREAM = stream_of(its stat); the log."""
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        st = os.fstat(f.fileno())
        every_level_run(f, clean_env(JOURNAL_STREAM=stream_of(st)))
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def test_journal():
    lines = journal_run("journal", lambda st: "%d:%d" % (st.st_dev, st.st_ino))
    levels = {m.group(2).strip() for m in map(JOURNAL.match, lines) if m}
    check("stderr is the journal: every line starts with <N>LEVEL", lines and all(JOURNAL.match(l) for l in lines),
          lines[:10])
    check("the log holds every level (debug, info, warn, error)", levels == set(PRIORITY), levels)
    wrong = [l for l in lines if JOURNAL.match(l) and PRIORITY[JOURNAL.match(l).group(2).strip()] != JOURNAL.match(l).group(1)]
    check("<7> debug, <6> info, <4> warning, <3> error", not wrong, wrong[:5])
    check("no timestamp of its own", not any(TIMESTAMP.search(l[:40]) for l in lines), lines[:5])

    for name, stream in (("another file", lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1)),
                         ("not DEV:INODE", lambda st: "journal")):
        lines = journal_run("plain-" + name.replace(" ", "-"), stream)
        check("JOURNAL_STREAM of %s: the plain format (timestamp, level), no <N>" % name,
              lines and all(PLAIN.match(l) for l in lines), lines[:5])


def pty_run(**env):
    """every_level_run() with stderr a pseudo-terminal; what it showed."""
    master, slave = pty.openpty()
    every_level_run(slave, clean_env(**env))
    os.close(slave)
    out = b""
    while select.select([master], [], [], 1)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return out.decode("utf-8", "replace").replace("\r\n", "\n").splitlines()


COLOURED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \x1b\[[0-9;]+m(DEBUG|INFO|WARN|ERROR)\x1b\[0m +\S")


def test_terminal():
    lines = pty_run(TERM="xterm")
    check("a terminal: the level in colour on every line", lines and all(COLOURED.match(l) for l in lines), lines[:5])
    colours = {m.group(1): l.split("\x1b[")[1].split("m")[0] for l in lines for m in [COLOURED.match(l)] if m}
    check("warnings and errors stand out (a colour of their own each)",
          "WARN" in colours and "ERROR" in colours and colours["WARN"] != colours["ERROR"], colours)
    for env in ({"TERM": "xterm", "NO_COLOR": "1"}, {"TERM": "dumb"}):
        lines = pty_run(**env)
        check("a terminal with %s: no colour, the plain format" % " ".join("%s=%s" % kv for kv in env.items()),
              lines and all(PLAIN.match(l) for l in lines) and not any("\x1b" in l for l in lines), lines[:5])
    path = os.path.join(TMP, "file")
    with open(path, "wb") as f:
        every_level_run(f, clean_env(TERM="xterm"))
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    check("a file: no colour, the plain format", lines and all(PLAIN.match(l) for l in lines), lines[:5])


def test_stdout_pipe():
    port = free_port()
    p = subprocess.Popen([LB, "--grpc-address", "127.0.0.1:%d" % port, "--http-address", "none",
                          "--format", "folded"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=clean_env())
    try:
        fd = p.stdout.fileno()
        os.set_blocking(fd, False)
        wait_until(lambda: p.poll() is not None or connects(port), 10 * SLOW)
        ch = channel(port)
        for n in (1, 2):
            r = export(ch, fx.read())
            # right after the reply: what the pipe holds now, with no other request and no exit
            got, deadline = b"", time.monotonic() + 0.5 * SLOW
            while got != fx.folded() and time.monotonic() < deadline:
                select.select([fd], [], [], 0.05)
                try:
                    got += os.read(fd, 1 << 20)
                except BlockingIOError:
                    pass
            check("request %d: its whole block is in the pipe as soon as Export returned" % n,
                  r.status == "OK" and got == fx.folded() and p.poll() is None,
                  (r, fx.first_difference(got, fx.folded())))
        ch.close()
    finally:
        p.terminate()
        p.wait(10 * SLOW)


run("journal", test_journal)
run("terminal", test_terminal)
run("stdout through a pipe", test_stdout_pipe)
done()
