#!/usr/bin/python3
"""usdt_input.py - `lazybackend usdt --input`: bpftrace's lines replayed from a file or a pipe,
paired, and exported to a real lazybackend server (its --format json output read back).

Why: every parsing and pairing case must be shown on the command as users run it, without
needing root or bpftrace: the printf envelope and bare lines, an end before its start, a
duplicate start and a duplicate end, lost_events, bad lines (each kind logged once, never
fatal), a line over the limit, 64-bit integer ids, an end alone, a start alone, the TTL, the
grace period and --unfinished drop. The expected spans are written here from the input,
not read from the bridge. The export rules are in usdt_export.py; real bpftrace in
usdt_bpftrace.py.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
from server import run_cli  # noqa: E402
from usdtlib import T0, start_line, end_line, run_bridge, summary, server_spans, attrs  # noqa: E402

U64 = 18446744073709551615
LIMIT = ("--max-line-size", "256")   # the replay has one line longer than this


def replay_lines():
    """The input, and the spans it must give: (reqid, start, end, how)."""
    lines = [
        '{"type": "attached_probes", "data": {"probes": 2}}',
        start_line("req-a", T0),                              # envelope, in order
        end_line("req-a", 1500000, T0),
        end_line("req-b", 7, T0 + 10, envelope=False),        # bare, end before start
        start_line("req-b", T0 + 10, envelope=False),
        start_line("req-c", T0 + 20),                         # duplicate start
        start_line("req-c", T0 + 30),
        end_line("req-c", 5, T0 + 30),
        start_line("req-d", T0 + 40),                         # duplicate end
        end_line("req-d", 9, T0 + 40),
        end_line("req-d", 9, T0 + 40),
        '{"type": "lost_events", "data": {"events": 5}}',
        "not json at all",                                    # bad lines
        '{"event":"request_middle","reqid":"x","timestamp":1}',
        '{"event":"request_start","reqid":"","timestamp":1}',
        '{"event":"request_start","reqid":"y","timestamp":-1}',
        '{"event":"request_start","reqid":"z","timestamp":2}' + " " * 300,   # over --max-line-size
        "not json either",                                    # a second of a kind: only counted
        start_line(U64, T0 + 50, envelope=False),             # 64-bit integer id
        end_line(U64, 11, T0 + 50, envelope=False),
        end_line("req-e", 13, T0 + 60),                       # an end alone, dated by its start
        end_line("req-f", 13),                                # an end alone without start: dropped
        start_line("req-g", T0 + 70),                         # a start alone: unfinished
        "",
        "",
        '{"type": "map", "data": {"@calls": 16}}',
    ]
    want = {
        "req-a": (T0, T0 + 1500000, "complete"),
        "req-b": (T0 + 10, T0 + 17, "complete"),
        "req-c#dup": (T0 + 20, T0 + 20, "duplicate_start"),
        "req-c": (T0 + 30, T0 + 35, "complete"),
        "req-d": (T0 + 40, T0 + 49, "complete"),
        str(U64): (T0 + 50, T0 + 61, "complete"),
        "req-e": (T0 + 60, T0 + 73, "no_start"),
        "req-g": (T0 + 70, T0 + 70, "shutdown"),
    }
    return "\n".join(lines) + "\n", want


def how_of(line):
    a = attrs(line)
    if "usdt.unfinished" in a:
        return a["usdt.unfinished"]
    return "no_start" if a.get("usdt.start_missing") else "complete"


def test_every_case():
    text, want = replay_lines()
    path = fx.write(fx.tempdir("lb-usdt-"), "replay.jsonl", text.encode())
    srv = hg.Server("--format", "json")
    try:
        rc, err = run_bridge("--input", path, "--endpoint", srv.url, *LIMIT)
        s = summary(err)
        spans = server_spans(srv, len(want))
        got = {}
        for line in spans:
            rid = attrs(line)["request.id"]
            key = rid + "#dup" if how_of(line) == "duplicate_start" else rid
            got[key] = (line["span"]["start_time_unix_nano"], line["span"]["end_time_unix_nano"], how_of(line))
        check("input: exactly the expected spans, times exact to the nanosecond", got == want,
              "got  %s\nwant %s" % (sorted(got.items()), sorted(want.items())))
        trace_ids = {line["span"]["trace_id"] for line in spans}
        check("input: trace ids unique, 32 hex digits", len(trace_ids) == len(spans) and
              all(len(t) == 32 and t != "0" * 32 for t in trace_ids), trace_ids)
        complete = [l for l in spans if how_of(l) == "complete"]
        check("input: complete spans: SERVER, http.request, status UNSET, duration attributes",
              all(l["span"]["kind_name"] == "SERVER" and l["span"]["name"] == "http.request" and
                  l["span"]["status"]["code_name"] == "UNSET" and
                  attrs(l)["duration_ns"] == l["span"]["duration_nano"] and
                  abs(attrs(l)["duration_ms"] - l["span"]["duration_nano"] / 1e6) < 1e-9 for l in complete),
              complete)
        unfinished = [l for l in spans if how_of(l) in ("duplicate_start", "shutdown")]
        check("input: unfinished spans: status ERROR, no duration attributes",
              len(unfinished) == 2 and all(l["span"]["status"]["code_name"] == "ERROR" and
                                           "duration_ns" not in attrs(l) for l in unfinished), unfinished)
        check("input: service.name defaults to usdt-bpftrace-exporter, scope lazybackend-usdt",
              all(a["value"] == "usdt-bpftrace-exporter" for l in spans for a in l["resource"]["attributes"]
                  if a["key"] == "service.name") and all(l["scope"]["name"] == "lazybackend-usdt" for l in spans))
        expect = {"starts": 7, "ends": 8, "bad": 6, "lost_events": 5, "complete": 5, "reordered": 1, "no_start": 1,
                  "duplicate_starts": 1, "duplicate_ends": 1, "orphan_ends": 1, "shutdown": 1, "exported": 8,
                  "failed": 0, "dropped": 0}
        check("input: the summary counts every case", all(s.get(k) == v for k, v in expect.items()),
              "%s\n%s" % (s, err))
        check("input: rc 0 (nothing lost in export)", rc == 0, err)
        for why in ("not a JSON object", "unknown event", "bad reqid", "bad timestamp", "line too long"):
            check("input: a bad line is logged once per kind: " + why, err.count(why) == 1, err)
        check("input: lost_events logged", "bpftrace lost 5 events" in err, err)
    finally:
        srv.stop()
        srv.cleanup()


def test_unfinished_drop():
    text, want = replay_lines()
    srv = hg.Server("--format", "json")
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", srv.url, "--unfinished", "drop", *LIMIT,
                             stdin=text.encode())
        spans = server_spans(srv, len(want) - 2)
        s = summary(err)
        check("--unfinished drop: no span without its end", len(spans) == len(want) - 2 and
              not any("usdt.unfinished" in attrs(l) for l in spans), spans)
        check("--unfinished drop: counted", s.get("unfinished_dropped") == 2 and rc == 0, err)
    finally:
        srv.stop()
        srv.cleanup()


def paced(args, steps, srv_args=("--format", "json")):
    """The bridge reading a pipe that `steps` write to: (str, or seconds to wait). Returns
    (exit code, stderr, server spans)."""
    srv = hg.Server(*srv_args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    p = subprocess.Popen([fx.LB, "usdt", "--input", "-", "--endpoint", srv.url, *args], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        for step in steps:
            if isinstance(step, str):
                p.stdin.write((step + "\n").encode())
                p.stdin.flush()
            else:
                time.sleep(step)
        p.stdin.close()
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait(timeout=30 * fx.SLOW)
        return rc, err, server_spans(srv)
    finally:
        if p.poll() is None:
            p.kill()
        srv.stop()
        srv.cleanup()


def test_ttl_and_grace_in_time():
    # --grace-ms 1000: the pairing is checked every 500 ms, so the 0.6 s wait below sees a check
    rc, err, spans = paced(["--ttl", "1", "--grace-ms", "1000"], [
        start_line("slow", T0),                 # never ends: given up after 1 s
        end_line("late", 5, T0 + 1),            # its start comes 0.6 s later: paired
        0.6,
        start_line("late", T0 + 1),
        end_line("orphan", 6, T0 + 2),          # its start comes after the grace period
        2.0 * fx.SLOW,
        start_line("orphan", T0 + 2),
        end_line("orphan", 6, T0 + 2),          # ...and its end again: a new request
    ])
    s = summary(err)
    by = {}
    for l in spans:
        by.setdefault(attrs(l)["request.id"], []).append(how_of(l))
    check("pipe: a start without end is given up after --ttl (usdt.unfinished=ttl)", by.get("slow") == ["ttl"], by)
    check("pipe: an end 0.6 s before its start is paired", by.get("late") == ["complete"] and s.get("reordered") == 1,
          "%s\n%s" % (by, err))
    check("pipe: an end whose start came after --grace-ms is a span of its own, the later pair another",
          sorted(by.get("orphan", [])) == ["complete", "no_start"], by)
    check("pipe: exit 0", rc == 0 and s.get("ttl") == 1, err)


def test_schedule_delay():
    srv = hg.Server("--format", "json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    p = subprocess.Popen([fx.LB, "usdt", "--input", "-", "--endpoint", srv.url], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(("\n".join([start_line("s1", T0), end_line("s1", 3, T0)]) + "\n").encode())
        p.stdin.flush()
        t0 = time.monotonic()
        spans = server_spans(srv, 1, timeout=5)
        waited = time.monotonic() - t0
        check("OTEL_BSP_SCHEDULE_DELAY=200: a lone span leaves after the delay, input still open",
              len(spans) == 1 and p.poll() is None and waited < 2 * fx.SLOW, "%s %.2f" % (spans, waited))
        p.stdin.close()
        check("schedule delay: exit 0 at the end of the input", p.wait(timeout=20 * fx.SLOW) == 0)
    finally:
        if p.poll() is None:
            p.kill()
        p.stderr.close()
        srv.stop()
        srv.cleanup()


def test_small_queue_replay_loses_nothing():
    lines = []
    for i in range(300):
        lines += [start_line("q%d" % i, T0 + i), end_line("q%d" % i, i, T0 + i)]
    srv = hg.Server("--format", "json")
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", srv.url, stdin=("\n".join(lines) + "\n").encode(),
                             env={"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "7"})
        spans = server_spans(srv, 300)
        s = summary(err)
        ids = sorted(attrs(l)["request.id"] for l in spans)
        check("queue of 10, batches of 7: a replay waits instead of dropping (300 spans, once each)",
              rc == 0 and ids == sorted("q%d" % i for i in range(300)) and s.get("dropped") == 0 and
              s.get("requests") == (300 + 6) // 7, "%s\n%s" % (s, err[-2000:]))
    finally:
        srv.stop()
        srv.cleanup()


def test_dry_run_and_json_protocol():
    text, want = replay_lines()
    rc, err = run_bridge("--input", "-", "--dry-run", *LIMIT, stdin=text.encode())
    s = summary(err)
    check("--dry-run: everything encoded and counted, nothing sent", rc == 0 and s.get("exported") == len(want),
          err)
    srv = hg.Server("--format", "json")
    try:
        rc, err = run_bridge("--input", "-", "--endpoint", srv.url, "--protocol", "http/json", "--gzip",
                             *LIMIT, stdin=text.encode())
        spans = server_spans(srv, len(want))
        check("--protocol http/json --gzip: the server takes the same spans", rc == 0 and len(spans) == len(want) and
              "json, gzip" in srv.stderr(), srv.stderr()[-1500:])
        big = [l for l in spans if attrs(l)["request.id"] == str(18446744073709551615)]
        check("json: the 64-bit id and the times stay exact", len(big) == 1 and
              big[0]["span"]["start_time_unix_nano"] == T0 + 50, big)
    finally:
        srv.stop()
        srv.cleanup()


def test_options():
    """--help and the parser agree (both ways), and bad options end with status 2 first."""
    rc, out, _ = run_cli("usdt", "--help")
    listed = set(re.findall(r"--[a-z][a-z0-9-]*", out.decode())) - {"--name"}
    src = open(os.path.join(fx.ROOT, "cmd", "usdt_config.c")).read()
    parsed = set(re.findall(r'strcmp\(name, "(--[a-z0-9-]+)"\)', src))
    check("usdt --help: exit 0, lists the options", rc == 0 and len(listed) > 20, listed)
    check("every option the parser takes is in --help", parsed and not parsed - listed, sorted(parsed - listed))
    unknown = [o for o in sorted(listed) if "unknown option" in run_cli("usdt", o, "x", timeout=30)[2]]
    check("every option --help lists is taken", not unknown, unknown)
    for args, says in ((["--input", "-", "--ttl", "0"], "invalid value for --ttl: '0'"),
                       (["--input", "-", "--provider", "a-b"], "invalid value for --provider: 'a-b'"),
                       (["--input", "-", "--reqid", "uuid"], "invalid value for --reqid: 'uuid'"),
                       (["--input", "-", "--pid"], "--pid needs a value"),
                       (["--input", "-", "--gzip=1"], "unknown option '--gzip=1'"),
                       (["--input", "-", "--nope", "1"], "unknown option '--nope'"),
                       (["--input", "-", "--pid", "1"], "it takes no --pid"),
                       ([], "what to trace?"),
                       (["--input", "-", "--endpoint", "ftp://x"], "expected http://HOST:PORT")):
        rc, _, err = run_cli("usdt", *args, timeout=30)
        check("usdt %s: exit 2, \"%s\"" % (" ".join(args), says), rc == 2 and says in err, "exit %d\n%s" % (rc, err))
    rc, _, err = run_cli("usdt", "--input", "/nonexistent/replay")
    check("usdt --input of a missing file: exit 1, says so", rc == 1 and "No such file" in err, err)
    rc, _, err = run_cli("usdt", "--binary", "/bin/sh", "--bpftrace", "/nonexistent/bpftrace",
                         "--endpoint", "http://127.0.0.1:1")
    check("usdt --bpftrace that is not there: exit 1, says so", rc == 1 and "cannot run /nonexistent/bpftrace" in err,
          err)
    rc, out, _ = run_cli("--help")
    check("lazybackend --help names the usdt command", rc == 0 and b"lazybackend usdt" in out)


def test_repeated_messages_bounded():
    helper = '{"type": "helper_error", "helper": "probe_read", "retcode": -14, "line": 1, "col": 2}'
    lost = '{"type": "lost_events", "data": {"events": 2}}'
    rc, err = run_bridge("--input", "-", "--dry-run", stdin=("\n".join([helper] * 30 + [lost] * 30) + "\n").encode())
    s = summary(err)
    check("a message bpftrace repeats is logged 20 times, then counted",
          rc == 0 and err.count("helper_error") == 20 and err.count("bpftrace lost 2 events") == 20 and
          s.get("notes") == 30 and s.get("lost_events") == 60, err[-1500:])


for name, fn in [("options", test_options), ("repeated messages", test_repeated_messages_bounded), ("every case", test_every_case), ("unfinished drop", test_unfinished_drop),
                 ("ttl and grace", test_ttl_and_grace_in_time), ("schedule delay", test_schedule_delay),
                 ("small queue", test_small_queue_replay_loses_nothing),
                 ("dry run and json", test_dry_run_and_json_protocol)]:
    run(name, fn)
done()
