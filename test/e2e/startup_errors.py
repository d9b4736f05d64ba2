#!/usr/bin/python3
"""startup_errors.py - every way `lazybackend serve` can fail to start ends with exit status 1,
one error line that says why, and nothing left allocated.

Why: a failure after some of the process was built (the loop, the decoders, the sinks, the
signalfd, the gRPC server) used to return without giving those back, so LeakSanitizer failed
the run whenever a port was taken (app_teardown, in cmd/pipeline.c, now takes every such
path). Under SANITIZE=1 the binary under test is the ASan build and a leak shows as a
LeakSanitizer report (and another exit status); in a plain build the checks still pin the
status and the message.
The reasons are written here by hand. Only 127.0.0.1 is used; each run is bounded.
Environment: LAZYBACKEND (the binary).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import run_cli as lb  # noqa: E402

TMP = fx.tempdir("lb-startup-")


def failed_cleanly(name, args, reason):
    rc, _, err = lb(*args, timeout=60)
    check(f"{name}: exit 1, '{reason}'", rc == 1 and reason in err, f"exit {rc}\n{err}")
    check(f"{name}: nothing leaked, no sanitizer report",
          "Sanitizer" not in err and "runtime error" not in err, err)


def test_taken_ports():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = "127.0.0.1:%d" % taken.getsockname()[1]
        failed_cleanly("gRPC port taken", ["--grpc-address", addr, "--http-address", "none"],
                       f"cannot listen on {addr}")
        # with the filter stage and a sink in front: more to give back
        failed_cleanly("gRPC port taken, filters", ["--grpc-address", addr, "--http-address", "none",
                                                     "--resource", "service.name=x", "--format", "folded"],
                       f"cannot listen on {addr}")
        # the gRPC port is up already when the HTTP port the user asked for fails
        failed_cleanly("HTTP port taken", ["--grpc-address", "127.0.0.1:0", "--http-address", addr],
                       f"cannot listen on {addr}")


def test_bad_address():
    failed_cleanly("unusable gRPC address", ["--grpc-address", "nowhere", "--http-address", "none"],
                   "expected a.b.c.d:port or [v6]:port")


def test_sinks_that_cannot_open():
    missing = os.path.join(TMP, "no", "such", "dir")
    failed_cleanly("--output in a missing directory",
                   ["--grpc-address", "127.0.0.1:0", "--output", os.path.join(missing, "out")],
                   "cannot open the stdout sink on")
    # the stdout sink is open already when the second sink fails
    failed_cleanly("sqlite sink after the stdout sink",
                   ["--grpc-address", "127.0.0.1:0", "--sink", "stdout", "--sink", "sqlite",
                    "--sqlite-path", os.path.join(missing, "x.db")],
                   "cannot open the sqlite sink")


def test_unsafe_clickhouse_log_directory():
    """The write-ahead log holds acknowledged data: a directory others could alter is refused."""
    ch = ["--grpc-address", "127.0.0.1:0", "--http-address", "none", "--sink", "clickhouse",
          "--clickhouse-url", "http://127.0.0.1:9"]
    open_dir = os.path.join(TMP, "world-writable")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    failed_cleanly("world-writable --clickhouse-spool-dir", ch + ["--clickhouse-spool-dir", open_dir],
                   "is writable by everyone (mode 0777)")
    group_dir = os.path.join(TMP, "group-writable")
    os.mkdir(group_dir)
    os.chmod(group_dir, 0o770)
    failed_cleanly("group-writable --clickhouse-spool-dir", ch + ["--clickhouse-spool-dir", group_dir],
                   "is writable by its group")
    link = os.path.join(TMP, "link-to-log")
    safe = os.path.join(TMP, "safe-log")
    os.mkdir(safe, 0o700)
    os.symlink(safe, link)
    failed_cleanly("--clickhouse-spool-dir a symbolic link", ch + ["--clickhouse-spool-dir", link],
                   "is a symbolic link")
    failed_cleanly("memory mode's spool: the same checks",
                   ch + ["--clickhouse-durability", "memory", "--clickhouse-spool-dir", open_dir],
                   "is writable by everyone")


run("taken ports", test_taken_ports)
run("bad address", test_bad_address)
run("sinks that cannot open", test_sinks_that_cannot_open)
run("an unsafe ClickHouse log directory", test_unsafe_clickhouse_log_directory)
done()
