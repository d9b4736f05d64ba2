#!/usr/bin/python3
"""metrics.py - GET /metrics, read by Prometheus' parsers, against what the test sent.

Why: a counter nobody checks drifts; here each one is compared with the requests this script
made and the fixture's own counts (ebpf-jvm-go.expect.json, computed with the reference
protobuf library), the text output counted line by line, a SQLite file read with Python's
sqlite3 and a real clickhouse-server's row count - never with another of lazybackend's
counters. The page must parse with python3-prometheus-client's parser and pass
`promtool check metrics` (when Debian's prometheus package is there).

Sent: N fixture requests over gRPC (grpcio) and M over HTTP (urllib), one gzip'd over HTTP,
the fixture in the v1.9 and v1.8 layouts, one traces request over each transport (the HTTP
one with two bad spans), and four bad requests: garbage protobuf and a body of another
content type and invalid OTLP/JSON over HTTP, a request fitting no layout over gRPC.
"""
import gzip
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import scrape  # noqa: E402
from server import TRACES_EXPORT, wait_until  # noqa: E402

EXPECT = fx.expect()
SAMPLES = EXPECT["samples"]
RAW = fx.read()
TMP = fx.tempdir("lb-metrics-")
N, M = 4, 3
TRANSPORTS, SIGNALS = ("grpc", "http"), ("profiles", "traces")
OUTCOMES = ("ok", "partial", "invalid", "unavailable", "failed")


def raw_field(number, wire_type, payload):
    """One protobuf field, encoded here by hand (a varint payload for wire type 0)."""
    def varint(v):
        out = b""
        while True:
            b = v & 0x7F
            v >>= 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out
    key = varint(number << 3 | wire_type)
    return key + (varint(payload) if wire_type == 0 else varint(len(payload)) + payload)


# A well-formed request no layout reads: a Sample field 1 that is LEN, a varint in every layout
# (a field no layout has would be kept as unknown, not refused).
NO_LAYOUT = RAW + raw_field(1, 2, raw_field(2, 2, raw_field(2, 2, raw_field(2, 2, raw_field(1, 2, b"\x01")))))
GARBAGE = b"\xff\xff\xff\xff not protobuf"
BAD_JSON = b'{"resourceProfiles": [ {'
TEXT_BODY = b"samples please"


def post(url, body, ctype, encoding=None):
    """(status, body) of a POST with urllib (an HTTP client that is not curl nor ours)."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    if encoding:
        req.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(req, timeout=10 * fx.SLOW) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def trace_requests():
    """(full, partial): three good spans; one good and two bad (short trace id, zero span id)."""
    full = hg.trace_service.ExportTraceServiceRequest()
    ss = full.resource_spans.add().scope_spans.add()
    for i in range(3):
        sp = ss.spans.add()
        sp.trace_id, sp.span_id, sp.name = bytes(range(1, 17)), bytes([i + 1] * 8), "span %d" % i
    partial = hg.trace_service.ExportTraceServiceRequest()
    ss = partial.resource_spans.add().scope_spans.add()
    ok = ss.spans.add()
    ok.trace_id, ok.span_id, ok.name = bytes(range(1, 17)), b"\x01" * 8, "fine"
    bad = ss.spans.add()
    bad.trace_id, bad.span_id, bad.name = b"\x01\x02\x03", b"\x01" * 8, "short trace id"
    zero = ss.spans.add()
    zero.trace_id, zero.span_id, zero.name = bytes(range(1, 17)), b"\x00" * 8, "zero span id"
    return full.SerializeToString(), partial.SerializeToString()


def check_page_form(label, page):
    """What every page must be: a real parser's and promtool's approval, our prefix, counters
    ending in _total, histogram buckets cumulative and ending at +Inf = _count."""
    check("%s: Content-Type %s" % (label, scrape.CONTENT_TYPE), page.content_type == scrape.CONTENT_TYPE,
          page.content_type)
    ran, ok, out = scrape.promtool(page.text)
    if ran:
        check("%s: promtool check metrics passes" % label, ok, out)
    names = [n for n in page.by_name]
    check("%s: every metric is called lazybackend_*" % label, all(n.startswith("lazybackend_") for n in names),
          [n for n in names if not n.startswith("lazybackend_")])
    counters = [f for f, t in page.types.items() if t == "counter"]
    check("%s: every counter's samples end in _total" % label,
          counters and all((f + "_total") in page.by_name for f in counters),
          [f for f in counters if (f + "_total") not in page.by_name])
    bad = []
    for fam, t in page.types.items():
        if t != "histogram":
            continue
        groups = {}
        for labels, v in page.series(fam + "_bucket"):
            key = frozenset((k, x) for k, x in labels.items() if k != "le")
            groups.setdefault(key, []).append((labels["le"], v))
        for key, buckets in groups.items():
            counts = [v for _, v in buckets]
            les = [float(le) for le, _ in buckets]
            total = page.value(fam + "_count", **dict(key))
            if counts != sorted(counts) or les != sorted(les) or buckets[-1][0] != "+Inf" or counts[-1] != total:
                bad.append((fam, dict(key), buckets, total))
    check("%s: histogram buckets are cumulative, +Inf last and equal to _count" % label, not bad, bad)


def test_counts():
    full, partial = trace_requests()
    gz = gzip.compress(RAW)
    srv = hg.Server("--format", "folded", "--output", os.path.join(TMP, "out.folded"))
    try:
        t_start = time.time()
        first = scrape.scrape(srv.url)
        check_page_form("fresh server", first)
        check("fresh server: no request counted yet", first.total("lazybackend_requests_total") == 0,
              first.series("lazybackend_requests_total"))
        replies = [srv.export(RAW) for _ in range(N)]
        replies += [srv.export(fx.read(name)) for name in ("ebpf-jvm-go.v1.9.pb", "ebpf-jvm-go.v1.8.pb")]
        check("%d gRPC profiles requests: OK" % (N + 2), all(r.status == "OK" for r in replies),
              [r.status for r in replies])
        r = srv.export(NO_LAYOUT)
        check("gRPC request fitting no layout: INVALID_ARGUMENT", r.status == "INVALID_ARGUMENT", r)
        r = srv.export(full, method=TRACES_EXPORT)
        check("gRPC traces request: OK", r.status == "OK", r)
        statuses = [post(srv.url + hg.PROFILES, RAW, hg.PB)[0] for _ in range(M)]
        statuses.append(post(srv.url + hg.PROFILES, gz, hg.PB, "gzip")[0])
        check("%d HTTP profiles requests (one gzip'd): 200" % (M + 1), statuses == [200] * (M + 1), statuses)
        bad = [post(srv.url + hg.PROFILES, GARBAGE, hg.PB)[0], post(srv.url + hg.PROFILES, BAD_JSON, hg.JSON)[0],
               post(srv.url + hg.PROFILES, TEXT_BODY, "text/plain")[0]]
        check("HTTP garbage, bad JSON, text/plain: 400, 400, 415", bad == [400, 400, 415], bad)
        st, body = post(srv.url + hg.TRACES, partial, hg.PB)
        check("HTTP traces request with two bad spans: 200", st == 200, body)
        fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
        with open("/proc/%d/statm" % srv.proc.pid) as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        page = scrape.scrape(srv.url)
        check_page_form("after the requests", page)

        want = {(t, s, o): 0 for t in TRANSPORTS for s in SIGNALS for o in OUTCOMES}
        want.update({("grpc", "profiles", "ok"): N + 2, ("grpc", "profiles", "invalid"): 1,
                     ("grpc", "traces", "ok"): 1, ("http", "profiles", "ok"): M + 1,
                     ("http", "profiles", "invalid"): 3, ("http", "traces", "partial"): 1})
        got = {(t, s, o): page.get("lazybackend_requests_total", transport=t, signal=s, outcome=o)
               for t in TRANSPORTS for s in SIGNALS for o in OUTCOMES}
        check("requests by transport, signal and outcome: as sent", got == want,
              {k: (got[k], v) for k, v in want.items() if got[k] != v})
        counts = {(t, s): page.histogram("lazybackend_request_duration_seconds", transport=t, signal=s)[2]
                  for t in TRANSPORTS for s in SIGNALS}
        check("latency histogram: _count = the requests of each transport and signal",
              all(counts[t, s] == sum(want[t, s, o] for o in OUTCOMES) for t in TRANSPORTS for s in SIGNALS),
              counts)
        check("latency histogram: the counts add up to every request sent (%d)" % sum(want.values()),
              sum(counts.values()) == sum(want.values()), counts)
        _, dsum, _ = page.histogram("lazybackend_request_duration_seconds", transport="grpc", signal="profiles")
        check("latency histogram: a positive sum, below the test's own time",
              0 < dsum < time.time() - t_start, dsum)

        wire = {("grpc", "profiles"): N * len(RAW) + len(fx.read("ebpf-jvm-go.v1.9.pb")) +
                len(fx.read("ebpf-jvm-go.v1.8.pb")) + len(NO_LAYOUT),
                ("grpc", "traces"): len(full),
                ("http", "profiles"): M * len(RAW) + len(gz) + len(GARBAGE) + len(BAD_JSON) + len(TEXT_BODY),
                ("http", "traces"): len(partial)}
        inflated = dict(wire)
        inflated["http", "profiles"] += len(RAW) - len(gz)
        for name, w in (("wire", wire), ("inflated", inflated)):
            got = {k: page.get("lazybackend_received_%s_bytes_total" % name, transport=k[0], signal=k[1]) for k in w}
            check("bytes received (%s): the sizes of the bodies sent" % name, got == w, (got, w))
        check("port bytes: at least the bodies, framing included",
              page.value("lazybackend_port_received_bytes_total", port="grpc") > wire["grpc", "profiles"] and
              page.value("lazybackend_port_received_bytes_total", port="http") > wire["http", "profiles"])

        samples = {t: page.value("lazybackend_samples_delivered_total", transport=t) for t in TRANSPORTS}
        check("samples delivered: (N+2) x %d over gRPC, (M+1) x %d over HTTP" % (SAMPLES, SAMPLES),
              samples == {"grpc": (N + 2) * SAMPLES, "http": (M + 1) * SAMPLES}, samples)
        received = {t: page.value("lazybackend_samples_received_total", transport=t) for t in TRANSPORTS}
        check("samples received = delivered (nothing rejected, no filter)", received == samples, received)
        out = open(os.path.join(TMP, "out.folded"), "rb").read()
        check("the folded output holds every delivered sample's weight",
              out == fx.folded() * (N + 2 + M + 1), "%d bytes" % len(out))
        spans = {(k, t): page.value("lazybackend_spans_%s_total" % k, transport=t)
                 for k in ("received", "rejected", "delivered", "not_kept") for t in TRANSPORTS}
        check("spans: gRPC 3 received and delivered; HTTP 3 received, 2 rejected, 1 delivered",
              spans == {("received", "grpc"): 3, ("rejected", "grpc"): 0, ("delivered", "grpc"): 3,
                        ("not_kept", "grpc"): 0, ("received", "http"): 3, ("rejected", "http"): 2,
                        ("delivered", "http"): 1, ("not_kept", "http"): 0}, spans)

        errors = {(l["signal"], l["kind"]): v for l, v in page.series("lazybackend_decode_errors_total") if v}
        check("decode errors by kind: malformed, no_layout, json, content_type once each",
              errors == {("profiles", "malformed"): 1, ("profiles", "no_layout"): 1, ("profiles", "json"): 1,
                         ("profiles", "content_type"): 1}, errors)
        layouts = {l["layout"]: v for l, v in page.series("lazybackend_layout_requests_total")}
        check("requests by layout: v1.11 N+M+1, v1.9 1, v1.8 1, none 2 (the garbage, the odd one)",
              layouts == {"v1.11": N + M + 1, "v1.9": 1, "v1.8": 1, "v1.7": 0, "none": 2}, layouts)

        commits = page.value("lazybackend_sink_commits_total", sink="stdout", index="0")
        check("stdout sink: one commit per accepted request", commits == N + 2 + M + 1 + 2, commits)
        check("stdout sink: no failure, no refusal",
              page.value("lazybackend_sink_commit_failures_total", sink="stdout", index="0") == 0 and
              page.value("lazybackend_sink_refusals_total", sink="stdout", index="0") == 0)
        calls = {(p, r): page.value("lazybackend_port_calls_total", port=p, result=r)
                 for p in ("grpc", "http") for r in ("ok", "error")}
        check("port calls: answers counted by each port (the first scrape included)",
              calls == {("grpc", "ok"): N + 2 + 1, ("grpc", "error"): 1, ("http", "ok"): M + 1 + 1 + 1,
                        ("http", "error"): 3}, calls)
        replies = {p: {l["outcome"]: v for l, v in page.series("lazybackend_port_replies_total") if l["port"] == p}
                   for p in ("grpc", "http")}
        check("port replies by outcome: ok as counted above, every error under one outcome",
              all(replies[p]["ok"] == calls[(p, "ok")] and sum(replies[p].values()) == calls[(p, "ok")] + calls[(p, "error")]
                  for p in ("grpc", "http")) and
              set(replies["grpc"]) == {"ok", "invalid", "exhausted", "timed_out", "unavailable", "failed"}, replies)
        quiet = {(f, p): page.total(f, port=p) for p in ("grpc", "http")
                 for f in ("lazybackend_connections_refused_per_ip_total", "lazybackend_connections_evicted_total",
                           "lazybackend_connections_cut_total")}
        cut_reasons = {l["reason"] for l, _ in page.series("lazybackend_connections_cut_total")}
        check("connection limits and cuts: present, all zero for well-behaved clients",
              set(quiet.values()) == {0} and cut_reasons == {"setup_timeout", "idle", "too_many_pings", "no_progress"},
              (quiet, cut_reasons))
        check("one gRPC connection open, nothing in flight",
              page.value("lazybackend_connections_open", port="grpc") == 1 and
              page.value("lazybackend_request_bytes_in_flight", port="grpc") == 0 and
              page.value("lazybackend_request_bytes_in_flight", port="http") == 0)
        check("no filter: nothing dropped", page.total("lazybackend_filter_dropped_samples_total") == 0)

        got_rss = page.value("lazybackend_process_resident_memory_bytes")
        check("resident memory near what /proc/PID/statm says (%d)" % rss, rss / 2 < got_rss < rss * 2, got_rss)
        got_fds = page.value("lazybackend_process_open_fds")
        check("open fds near what /proc/PID/fd lists (%d)" % fds, abs(got_fds - fds) <= 2, got_fds)
        check("start time: when the test started it", t_start - 30 < page.value("lazybackend_start_time_seconds")
              <= time.time())
        check("CPU time: positive", page.value("lazybackend_process_cpu_seconds_total") > 0)
        line = subprocess.run([fx.LB, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        info = page.series("lazybackend_build_info")
        check("build_info: the version and commit --version prints, value 1",
              len(info) == 1 and info[0][1] == 1 and
              line == "lazybackend %s (commit %s)" % (info[0][0]["version"], info[0][0]["commit"]), (info, line))
        check("healthy: 1", page.value("lazybackend_healthy") == 1)
        head = scrape.get(srv.url + "/healthz")
        check("/healthz: 200 ok", head[0] == 200 and head[2] == "ok\n", head)
        check("server exits 0 on SIGTERM", srv.stop() == 0, srv.stderr()[-2000:])
    finally:
        srv.cleanup()


def text_samples_and_frames(out):
    c = fx.text_counts(out)
    return c.counts["samples"], c.frame_types


def test_filter():
    """--frame-types go: the fixture's frames by type (expect.json) say how many frames go; the
    samples the text output shows are the ones delivered, the rest were dropped."""
    k = 3
    srv = hg.Server("--frame-types", "go")
    try:
        for _ in range(k):
            srv.send(RAW)   # written by the time the answer comes
        page = scrape.scrape(srv.url)
        check_page_form("with a filter", page)
        srv.stop()
        shown, frame_types = text_samples_and_frames(srv.stdout())
        check("--frame-types go: only go frames shown, %d x %d" % (k, EXPECT["frame_types"]["go"]),
              frame_types == {"go": k * EXPECT["frame_types"]["go"]}, frame_types)
        dropped = {l["filter"]: v for l, v in page.series("lazybackend_filter_dropped_samples_total")}
        check("dropped by frame_types: the samples without a go frame (%d of %d)" % (k * SAMPLES - shown,
                                                                                    k * SAMPLES),
              dropped.get("frame_types") == k * SAMPLES - shown and shown > 0 and
              sum(dropped.values()) == dropped.get("frame_types"), dropped)
        removed = k * (EXPECT["frames"] - EXPECT["frame_types"]["go"])
        check("frames removed: %d x (%d frames - %d go)" % (k, EXPECT["frames"], EXPECT["frame_types"]["go"]),
              page.value("lazybackend_filter_removed_frames_total") == removed,
              page.value("lazybackend_filter_removed_frames_total"))
        check("samples delivered = the samples shown (%d)" % shown,
              page.value("lazybackend_samples_delivered_total", transport="grpc") == shown and
              page.value("lazybackend_samples_received_total", transport="grpc") == k * SAMPLES)
    finally:
        srv.cleanup()


def test_sqlite():
    k = 3
    db = os.path.join(TMP, "store.db")
    srv = hg.Server("--sink", "sqlite", "--sqlite-path", db)
    try:
        before = scrape.scrape(srv.url)
        check("sqlite: no commit before any request",
              before.histogram("lazybackend_sqlite_commit_duration_seconds")[2] == 0)
        for _ in range(k):
            srv.send(RAW)
        page = scrape.scrape(srv.url)
        check_page_form("with the sqlite sink", page)
        stored = sqlite3.connect(db).execute("SELECT count(*), sum(samples) FROM requests").fetchone()
        check("sqlite: the database holds %d requests of %d samples" % (k, SAMPLES),
              stored == (k, k * SAMPLES), stored)
        buckets, total, count = page.histogram("lazybackend_sqlite_commit_duration_seconds")
        check("sqlite: one commit timed per request stored", count == stored[0] and total > 0, (count, total))
        check("sqlite: the sink's commits", page.value("lazybackend_sink_commits_total", sink="sqlite", index="0")
              == stored[0] and page.value("lazybackend_sqlite_rollbacks_total") == 0)
        check("sqlite: no ClickHouse metrics without the sink",
              not any(n.startswith("lazybackend_clickhouse_") for n in page.by_name))
        check("server exits 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def test_clickhouse():
    """A real clickhouse-server (scripts/clickhouse-test-server.sh): the batches and rows the
    page says were sent are the rows ClickHouse holds."""
    import clickhouse_common as cc
    k = 3
    ch = cc.ClickHouse()
    try:
        ch.start()
    except Exception as e:  # noqa: BLE001
        check("clickhouse-server starts", False, e)
        return
    spool = os.path.join(TMP, "spool")
    srv = hg.Server("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", "lb_metrics",
                    "--clickhouse-flush-interval", "50", "--clickhouse-spool-dir", spool)
    try:
        for _ in range(k):
            srv.send(RAW)
        sent = lambda: scrape.scrape(srv.url).value("lazybackend_clickhouse_rows_sent_total", index="0")  # noqa: E731
        wait_until(lambda: sent() >= k * SAMPLES, 30 * fx.SLOW, 0.1)
        page = scrape.scrape(srv.url)
        check_page_form("with the clickhouse sink", page)
        rows = ch.scalar("SELECT count() FROM lb_metrics.samples")
        v = {n: page.value("lazybackend_clickhouse_" + n, index="0") for n in (
            "rows_sent_total", "requests_queued_total", "batches_sent_total", "batches_sealed_total",
            "queue_rows", "queue_bytes", "spool_bytes", "spool_batches", "requests_refused_total",
            "batches_spooled_total", "wal_max_bytes", "wal_bytes", "wal_records", "wal_batches", "wal_syncs_total",
            "wal_sync_failures_total", "lost_rows_total", "duplicate_batches_skipped_total")}
        check("clickhouse: rows sent = the rows ClickHouse holds = %d x %d" % (k, SAMPLES),
              v["rows_sent_total"] == rows == k * SAMPLES, (v, rows))
        check("clickhouse: %d requests queued, every sealed batch sent, nothing left in memory or spool" % k,
              v["requests_queued_total"] == k and v["batches_sent_total"] == v["batches_sealed_total"] >= 1 and
              v["queue_rows"] == v["queue_bytes"] == v["spool_bytes"] == v["spool_batches"] == 0, v)
        check("clickhouse: nothing refused or spooled; the write-ahead log's limit shown",
              v["requests_refused_total"] == v["batches_spooled_total"] == 0 and v["wal_max_bytes"] > 0, v)
        check("clickhouse: the write-ahead log synced (at most once a request), emptied once delivered; "
              "nothing lost or skipped",
              1 <= v["wal_syncs_total"] <= k and v["wal_sync_failures_total"] == 0 and
              v["wal_bytes"] == v["wal_records"] == v["wal_batches"] == 0 and
              v["lost_rows_total"] == v["duplicate_batches_skipped_total"] == 0, v)
        check("clickhouse: the sink's commits", page.value("lazybackend_sink_commits_total", sink="clickhouse",
                                                           index="0") == k)
        check("server exits 0", srv.stop(timeout=60) == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()
        ch.stop_and_clean()


def test_any_client():
    """The page over h2c too, HEAD without a body, and whole even when --max-message-size is
    smaller than the page (that limit is about what clients send)."""
    srv = hg.Server("--max-message-size", "1024")
    try:
        r = hg.curl(srv.url + "/metrics", mode="h2")
        ok = r.status == 200 and r.header("content-type") == scrape.CONTENT_TYPE and len(r.body) > 1024
        check("GET /metrics over h2c with --max-message-size 1024: 200, the whole page", ok, r)
        if ok:
            page = scrape.Page(r.body.decode())
            check("... which parses, with the healthy gauge at 1", page.value("lazybackend_healthy") == 1)
        raw = hg.raw_exchange(srv.http_port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check("HEAD /metrics: 200 and no body", raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"\r\n\r\n"),
              raw[:300])
        check("server exits 0", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


run("counts equal what was sent", test_counts)
run("any client, any size limit", test_any_client)
run("a filter's drops", test_filter)
run("sqlite commits", test_sqlite)
run("clickhouse batches", test_clickhouse)
done()
