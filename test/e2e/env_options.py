#!/usr/bin/python3
"""env_options.py - options from the environment (LAZYBACKEND_GRPC_ADDRESS for
--grpc-address, ...), as a systemd EnvironmentFile= gives them, and $STATE_DIRECTORY.

Why: under systemd the environment file is where the configuration lives; a variable that is
silently ignored, or a bad one that is not refused, is a service that runs with other
settings than written. Every form is checked through what the program does: a string (the
address it listens on), a choice (the output format), a size (a request over the limit
refused), a switch (frames left out; 1/true/yes, 0/false/no, empty), repeatable options as
comma-separated lists (two sinks; two resource filters that must both match), the command line
winning over a variable, a bad value exiting 2 with the variable's name, a variable naming no
option said and ignored; and the sqlite store and the ClickHouse spool defaulting into
$STATE_DIRECTORY. The expectations are written from --help and the fixture's counts
(ebpf-jvm-go.expect.json).
Environment: LAZYBACKEND (the binary), FIXTURES.
"""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import free_port, channel, export, start_logged, terminate as stop  # noqa: E402

TMP = fx.tempdir("lb-env-")
FIXTURE = fx.path()
EXPECT = fx.expect()
C1 = "1e82d7e19251ec59126d036da362a7bcf318420c2e5c9be3818ebc5f92873469"   # two of the fixture's
C2 = "48f1baa088c90b3a5d29773f92fde3da984f0ff581f55391950ece807f7d88a7"   # container ids


def lb(*args, env=None, cwd=None):
    """(exit code, stdout bytes, stderr text) of the binary with these variables added to a
    clean environment (no LAZYBACKEND_* of the caller's)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAZYBACKEND_") and k != "STATE_DIRECTORY"}
    e.update(env or {})
    p = subprocess.run([LB, *args], capture_output=True, env=e, cwd=cwd, timeout=60 * SLOW)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def samples(out):
    return fx.text_counts(out).counts["samples"]


def serve(env, *args):
    """The server with these variables; (process, stderr text once it logged its gRPC port or
    exited)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAZYBACKEND_")}
    e.update(env)
    return start_logged(args, env=e)


def test_strings_and_sizes():
    port = free_port()
    p, err = serve({"LAZYBACKEND_GRPC_ADDRESS": "127.0.0.1:%d" % port, "LAZYBACKEND_HTTP_ADDRESS": "none",
                    "LAZYBACKEND_MAX_MESSAGE_SIZE": "1K"})
    try:
        check("LAZYBACKEND_GRPC_ADDRESS: listens there", "OTLP/gRPC on 127.0.0.1:%d" % port in err, err)
        check("LAZYBACKEND_HTTP_ADDRESS=none: no HTTP port", "OTLP/HTTP" not in err, err)
        ch = channel(port)
        r = export(ch, fx.read())
        ch.close()
        check("LAZYBACKEND_MAX_MESSAGE_SIZE=1K: a %d-byte request is refused" % len(fx.read()),
              r.status == "RESOURCE_EXHAUSTED", r)
    finally:
        stop(p)
    port = free_port()
    p, err = serve({"LAZYBACKEND_GRPC_ADDRESS": str(port), "LAZYBACKEND_HTTP_ADDRESS": "none"})
    try:
        check("LAZYBACKEND_GRPC_ADDRESS=PORT: the forms of the option (loopback)",
              "OTLP/gRPC on 127.0.0.1:%d" % port in err, err)
    finally:
        stop(p)
    # the command line wins over the variable
    port, other = free_port(), free_port()
    p, err = serve({"LAZYBACKEND_GRPC_ADDRESS": "127.0.0.1:%d" % other, "LAZYBACKEND_HTTP_ADDRESS": "none"},
                   "--grpc-address", "127.0.0.1:%d" % port)
    try:
        check("--grpc-address beats LAZYBACKEND_GRPC_ADDRESS", "OTLP/gRPC on 127.0.0.1:%d" % port in err, err)
    finally:
        stop(p)


def test_choices_and_switches():
    rc, out, _ = lb("decode", FIXTURE, env={"LAZYBACKEND_FORMAT": "folded"})
    check("LAZYBACKEND_FORMAT=folded: the fixture's folded stacks", rc == 0 and out == fx.folded(),
          fx.first_difference(out, fx.folded()))
    rc, out, _ = lb("decode", "--format", "text", FIXTURE, env={"LAZYBACKEND_FORMAT": "folded"})
    check("--format text beats LAZYBACKEND_FORMAT=folded", rc == 0 and samples(out) == EXPECT["samples"])
    rc, out, _ = lb("decode", FIXTURE, env={"LAZYBACKEND_FORMAT": ""})
    check("LAZYBACKEND_FORMAT= (empty): the default, text", rc == 0 and samples(out) == EXPECT["samples"])
    for value, frames_shown in (("1", False), ("yes", False), ("TRUE", False), ("0", True), ("false", True),
                                ("no", True), ("", True)):
        rc, out, err = lb("decode", FIXTURE, env={"LAZYBACKEND_NO_FRAMES": value})
        c = fx.text_counts(out).counts
        check("LAZYBACKEND_NO_FRAMES=%r: frames %s" % (value, "shown" if frames_shown else "left out"),
              rc == 0 and c["samples"] == EXPECT["samples"] and
              c["frames"] == (EXPECT["frames"] if frames_shown else 0), (rc, dict(c), err))


def test_lists():
    db = os.path.join(TMP, "two-sinks.db")
    rc, out, err = lb("decode", FIXTURE, env={"LAZYBACKEND_SINK": "stdout,sqlite", "LAZYBACKEND_SQLITE_PATH": db,
                                              "LAZYBACKEND_SQLITE_SYNC": "normal"})
    n = sqlite3.connect(db).execute("SELECT count(*) FROM samples").fetchone()[0] if os.path.exists(db) else -1
    check("LAZYBACKEND_SINK=stdout,sqlite: both sinks (%d samples on stdout and in the store)" % EXPECT["samples"],
          rc == 0 and samples(out) == EXPECT["samples"] and n == EXPECT["samples"], (rc, n, err))
    db2 = os.path.join(TMP, "not-made.db")
    rc, out, err = lb("decode", "--sink", "stdout", FIXTURE,
                      env={"LAZYBACKEND_SINK": "sqlite", "LAZYBACKEND_SQLITE_PATH": db2})
    check("--sink stdout replaces LAZYBACKEND_SINK=sqlite (no store made)",
          rc == 0 and samples(out) == EXPECT["samples"] and not os.path.exists(db2), (rc, err))
    counts = {}
    for name, value in (("one", "container.id=" + C1), ("same resource", "container.id=%s,service.name=%s" % (C1, C1)),
                        ("two resources", "container.id=%s,service.name=%s" % (C1, C2))):
        rc, out, err = lb("decode", FIXTURE, env={"LAZYBACKEND_RESOURCE": value})
        counts[name] = samples(out) if rc == 0 else None
    check("LAZYBACKEND_RESOURCE=one filter: some of the samples",
          counts["one"] and 0 < counts["one"] < EXPECT["samples"], counts)
    check("LAZYBACKEND_RESOURCE=two filters of one resource: the same samples", counts["same resource"] == counts["one"],
          counts)
    check("LAZYBACKEND_RESOURCE=two filters of two resources: both must match, none does",
          counts["two resources"] == 0, counts)


def test_bad_values():
    for env, says in (({"LAZYBACKEND_MAX_CONNECTIONS": "0"}, "invalid value for LAZYBACKEND_MAX_CONNECTIONS: '0'"),
                      ({"LAZYBACKEND_FORMAT": "xml"}, "invalid value for LAZYBACKEND_FORMAT: 'xml'"),
                      ({"LAZYBACKEND_MAX_MESSAGE_SIZE": "2G"}, "invalid value for LAZYBACKEND_MAX_MESSAGE_SIZE"),
                      ({"LAZYBACKEND_NO_FRAMES": "maybe"}, "invalid value for LAZYBACKEND_NO_FRAMES: 'maybe'"),
                      ({"LAZYBACKEND_SINK": "stdout,nope"}, "unknown sink 'nope' in LAZYBACKEND_SINK"),
                      ({"LAZYBACKEND_SINK": "sqlite,sqlite"}, "LAZYBACKEND_SINK (sqlite given twice)")):
        rc, _, err = lb("decode", FIXTURE, env=env)
        check("%s: exit 2, \"%s\"" % (" ".join("%s=%s" % kv for kv in env.items()), says),
              rc == 2 and says in err, (rc, err))
    rc, out, err = lb("decode", FIXTURE, env={"LAZYBACKEND_GRPC_ADRESS": "1.2.3.4"})
    check("a variable naming no option: said (with its name) and ignored",
          rc == 0 and "ignoring LAZYBACKEND_GRPC_ADRESS" in err and samples(out) == EXPECT["samples"], (rc, err))
    rc2, _, err2 = lb("decode", "--format", "json", FIXTURE, env={"LAZYBACKEND_FORMAT": "xml"})
    check("a bad variable the command line overrides is not read", rc2 == 0, (rc2, err2))


def test_state_directory():
    state = os.path.join(TMP, "state")
    os.mkdir(state)
    rc, _, err = lb("decode", "--sink", "sqlite", FIXTURE, env={"STATE_DIRECTORY": state + ":" + TMP + "/other"})
    db = os.path.join(state, "lazybackend.db")
    n = sqlite3.connect(db).execute("SELECT count(*) FROM samples").fetchone()[0] if os.path.exists(db) else -1
    check("STATE_DIRECTORY (its first directory): the sqlite store defaults to $STATE_DIRECTORY/lazybackend.db",
          rc == 0 and n == EXPECT["samples"] and not os.path.exists(os.path.join(TMP, "other")), (rc, n, err))
    given = os.path.join(TMP, "given.db")
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", given, FIXTURE, env={"STATE_DIRECTORY": state})
    check("... --sqlite-path still wins", rc == 0 and os.path.exists(given), (rc, err))
    # ClickHouse unreachable: the batch stays in the write-ahead log, which defaults into the
    # state directory
    rc, _, err = lb("decode", "--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % free_port(),
                    "--shutdown-timeout", "1", FIXTURE, env={"STATE_DIRECTORY": state})
    spool = os.path.join(state, "clickhouse-spool")
    batches = [f for f in os.listdir(spool) if f.endswith(".wal")] if os.path.isdir(spool) else []
    check("STATE_DIRECTORY: the ClickHouse spool defaults to $STATE_DIRECTORY/clickhouse-spool (1 batch there)",
          len(batches) == 1, (rc, batches, err[-600:]))
    cwd_db = os.path.join(TMP, "cwd")
    os.mkdir(cwd_db)
    rc, _, err = lb("decode", "--sink", "sqlite", FIXTURE, cwd=cwd_db)
    check("without STATE_DIRECTORY: lazybackend.db in the working directory, as before",
          rc == 0 and os.path.exists(os.path.join(cwd_db, "lazybackend.db")), err[-400:])
    rc, _, err = lb("decode", "--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % free_port(),
                    "--shutdown-timeout", "1", FIXTURE, cwd=cwd_db)
    wal = os.path.join(cwd_db, "lazybackend-spool")
    kept = [f for f in os.listdir(wal) if f.endswith(".wal")] if os.path.isdir(wal) else []
    check("without STATE_DIRECTORY: the ClickHouse write-ahead log in ./lazybackend-spool (1 batch there)",
          rc == 0 and len(kept) == 1, (rc, kept, err[-600:]))


def test_help_says_so():
    rc, out, _ = lb("--help")
    check("--help says how options come from the environment",
          rc == 0 and b"LAZYBACKEND_GRPC_ADDRESS" in out and b"comma-separated" in out, out[-400:])


run("strings and sizes", test_strings_and_sizes)
run("choices and switches", test_choices_and_switches)
run("lists", test_lists)
run("bad values", test_bad_values)
run("state directory", test_state_directory)
run("help", test_help_says_so)
done()
