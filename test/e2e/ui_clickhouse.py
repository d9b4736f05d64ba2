#!/usr/bin/python3
"""ui_clickhouse.py - the web UI's API over ClickHouse (`lazybackend ui --clickhouse-url`, and
`serve --sink clickhouse` itself) against a real clickhouse-server (Debian 18.16).

Why it exists: the UI must show the same profiles whichever store holds them, and right. The
fixture goes over gRPC to a server with only the ClickHouse sink, which serves the UI from
ClickHouse itself, and to a server with the SQLite sink; then `lazybackend ui --clickhouse-url`
and the ClickHouse server are asked the API's questions: the top function and the total
weight, the flame graph's root and paths, weights per executable, container and thread, per
frame type, a filter, a time window and the timeline must equal the fixture's own figures
(expect.json, the .folded file, the request read with the reference protobuf library), the
SQLite-backed answers, and the server's must equal the offline command's. Views ClickHouse
cannot answer are 501s; ClickHouse stopped is a 502 with the reason, ClickHouse too slow a
504. In the server, the API never blocks ingest: behind a proxy that holds the UI's SELECTs,
a gRPC Export is answered in under a second while UI calls hang, a fifth call is a 503, the
held calls end in 504s, a client that leaves cancels its call, SIGTERM answers a waiting call
503 and exits 0. Debian's Chromium (headless) loads the page's views over ClickHouse: the top
function, the executables, and the 501s' reasons shown.

Environment: LAZYBACKEND, FIXTURES. Only 127.0.0.1.
"""
import collections
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clickhouse_common as cc  # noqa: E402  (puts lib/ on sys.path)
import fixture_model  # noqa: E402
import otlpgen  # noqa: E402
from server import Server, connects, free_port, run_cli, terminate, wait_until  # noqa: E402
from tap import check  # noqa: E402

EXPECT = cc.EXPECT
MODEL = fixture_model.load(cc.fx.path())
RAW = cc.fixture()
CHDB = "lbui"
DB = os.path.join(cc.TMP, "ui.db")

ch = cc.ClickHouse()
SQLITE = None   # a server with the SQLite sink: the reference answers
SERVE = None    # `serve --sink clickhouse`: answers the API from ClickHouse itself
UI = None       # `lazybackend ui --clickhouse-url`: (process, base URL)


def get(url):
    """(status, parsed JSON body or the raw bytes)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            st, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, body = e.code, e.read()
    try:
        return st, json.loads(body)
    except ValueError:
        return st, body


def url_of(base, path, params):
    q = urllib.parse.urlencode(params, doseq=True)
    return base + path + ("?" + q if q else "")


def both(path, **params):
    """(ClickHouse's status and answer, SQLite's) for the same call."""
    return get(url_of(UI[1], path, params)), get(url_of(SQLITE.url, path, params))


def same(name, path, **params):
    """ClickHouse's answer after checking it is a 200 equal to SQLite's, and that the ClickHouse
    server answers the same as `ui --clickhouse-url`; None on failure."""
    (st, d), (st2, d2) = both(path, **params)
    st3, d3 = get(url_of(SERVE.url, path, params))
    check("%s: serve --sink clickhouse answers it as `ui --clickhouse-url` does" % name, st3 == st and d3 == d,
          (st3, d3) if len(str(d3)) < 3000 else st3)
    if not check("%s: 200 over ClickHouse" % name, st == 200 and st2 == 200, (st, d, st2)):
        return None
    if isinstance(d2, dict) and d.get("by") == "executable":   # ClickHouse keeps no mappings: no build ids
        d2 = dict(d2, rows=[{k: v for k, v in r.items() if k != "build_id"} for r in d2["rows"]])
    check("%s: ClickHouse answers what SQLite answers" % name, d == d2, (d, d2) if len(str(d)) < 3000 else "")
    return d


def folded_pairs():
    out = []
    for line in cc.FOLDED.splitlines():
        stack, w = line.rsplit(" ", 1)
        out.append((stack.split(";"), int(w)))
    return out


def expected_functions(pairs):
    """{name: [self, total]}: self at the leaf, total once per stack."""
    fns = collections.defaultdict(lambda: [0, 0])
    for frames, w in pairs:
        fns[frames[-1]][0] += w
        for name in set(frames):
            fns[name][1] += w
    return dict(fns)


def model_groups(key_of, samples=MODEL):
    out = collections.Counter()
    for s in samples:
        k = key_of(s)
        out["" if k in ("[unknown]", "[empty]") else k] += s.weight
    return dict(out)


def flame_paths(d):
    """{root-first names joined by ';': self weight} from /api/flame's nodes."""
    nodes, paths, out = d["nodes"], [], collections.Counter()
    for i in range(len(nodes) // 4):
        parent, f, self_w = nodes[4 * i], nodes[4 * i + 1], nodes[4 * i + 2]
        path = () if parent < 0 else paths[parent] + (d["frames"][f]["name"],)
        paths.append(path)
        if self_w:
            out[";".join(path)] += self_w
    return dict(out)


def start_ui(*extra):
    port = free_port()
    p = subprocess.Popen([cc.fx.LB, "ui", "--address", "127.0.0.1:%d" % port, *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    check("`lazybackend ui %s` listens" % " ".join(extra[:1]), wait_until(lambda: connects(port), 10 * cc.SLOW))
    return p, "http://127.0.0.1:%d" % port


# --------------------------------------------------------------------------- tests

def test_store():
    global SQLITE, SERVE, UI
    SERVE = Server("--sink", "clickhouse", "--clickhouse-url", ch.url, "--clickhouse-database", CHDB,
                   "--clickhouse-flush-interval", "200", "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool"),
                   http=True)
    check("serve --sink clickhouse accepts the fixture over gRPC", SERVE.send(RAW) is not None)
    check("ClickHouse holds the fixture's %d samples" % EXPECT["samples"],
          wait_until(lambda: ch.try_scalar("SELECT count() FROM %s.samples FINAL" % CHDB) == EXPECT["samples"],
                     30 * cc.SLOW))
    SQLITE = Server("--sink", "sqlite", "--sqlite-path", DB, http=True)
    SQLITE.send(RAW)
    UI = start_ui("--clickhouse-url", ch.url, "--clickhouse-database", CHDB)


def test_top_and_flame():
    top = same("/api/top", "/api/top", limit=10000)
    if top is not None:
        want = expected_functions(folded_pairs())
        best = max(want.items(), key=lambda kv: (kv[1][0], kv[1][1]))
        check("total weight = expect.json's timestamps (%d)" % EXPECT["timestamps"], top["total"] == EXPECT["timestamps"],
              top["total"])
        first = top["rows"][0]
        check("top function = the .folded file's heaviest leaf (%s, %d)" % (best[0], best[1][0]),
              [first["name"], first["self"], first["total"]] == [best[0]] + best[1], first)
        got = {r["name"]: [r["self"], r["total"]] for r in top["rows"]}
        check("every function's self and total = the .folded file's", got == want)
    (st, fl), (st2, fl2) = both("/api/flame")
    if check("/api/flame: 200 over ClickHouse", st == 200 and st2 == 200, (st, fl)):
        check("flame graph: the root weighs expect.json's timestamps", fl["nodes"][:2] == [-1, -1] and
              fl["nodes"][3] == EXPECT["timestamps"] == fl2["nodes"][3] and fl["truncated"] == 0, fl["nodes"][:4])
        want = collections.Counter()
        for frames, w in folded_pairs():
            want[";".join(frames)] += w
        check("flame graph: paths and self weights = the .folded file = SQLite's", flame_paths(fl) == dict(want) ==
              flame_paths(fl2))
        check("flame graph frames: name and type (ClickHouse keeps no file, line, mapping)",
              all(set(f) == {"name", "type"} for f in fl["frames"]), fl["frames"][:3])
    st, small = get(url_of(UI[1], "/api/flame", {"max_nodes": 5}))
    check("max_nodes=5: five nodes, the root's weight kept", st == 200 and len(small["nodes"]) == 20 and
          small["nodes"][3] == EXPECT["timestamps"] and small["truncated"] > 0, small)


def test_groups_and_filters():
    for by, key_of in (("executable", fixture_model.executable), ("container", fixture_model.container),
                       ("thread", fixture_model.thread)):
        d = same("by=" + by, "/api/top", by=by, limit=1000)
        if d is not None:
            check("by=%s: weights = the fixture read by the reference library" % by,
                  {r["name"]: r["total"] for r in d["rows"]} == model_groups(key_of))
    d = same("by=frame_type", "/api/top", by="frame_type", limit=100)
    if d is not None:
        want = collections.Counter()
        for s in MODEL:
            want[s.frames[0][1]] += s.weight
        check("by=frame_type: self weight per leaf frame type", {r["name"]: r["self"] for r in d["rows"]} == dict(want))
    java = [s for s in MODEL if fixture_model.executable(s) == "java"]
    d = same("executable=java", "/api/top", executable="java", limit=10000)
    if d is not None:
        pairs = [([n for n, _ in reversed(s.frames)], s.weight) for s in java]
        best = max(expected_functions(pairs).items(), key=lambda kv: (kv[1][0], kv[1][1]))
        check("executable=java: java's weight and top function", d["total"] == sum(s.weight for s in java) > 0 and
              d["rows"][0]["name"] == best[0] and d["rows"][0]["self"] == best[1][0], (d["total"], d["rows"][:1]))
    d = same("frame_type=v8js", "/api/top", frame_type="v8js")
    want = sum(s.weight for s in MODEL if any(t == "v8js" for _, t in s.frames))
    check("frame_type=v8js: stacks holding such a frame", d is not None and d["total"] == want > 0)


def test_window_and_timeline():
    per_minute = collections.Counter()
    for s in MODEL:
        for t in s.timestamps:
            per_minute[t // (60 * 10**9) * 60] += 1
    tl = same("/api/timeline", "/api/timeline")
    check("timeline: the fixture's timestamps per minute", tl is not None and tl["step"] == 60 and
          tl["points"] == sorted([m, w] for m, w in per_minute.items()), tl)
    m = max(per_minute, key=per_minute.get)
    tl = same("timeline executable=java, one minute", "/api/timeline", executable="java", **{"from": m, "to": m + 60})
    java = sum(1 for s in MODEL if fixture_model.executable(s) == "java" for t in s.timestamps
               if t // (60 * 10**9) * 60 == m)
    check("timeline executable=java in that minute", tl is not None and tl["points"] == ([[m, java]] if java else []), tl)
    (st, meta), (st2, meta2) = both("/api/meta")
    keys = ("first", "last", "sample_types", "frame_types", "requests")
    check("/api/meta: ClickHouse's = SQLite's (time range, sample and frame types, requests)",
          st == 200 and {k: meta.get(k) for k in keys} == {k: meta2.get(k) for k in keys}, (meta, meta2))


def test_windows():
    """Two requests at chosen minutes (reference encoder), in a store of their own: windows
    pick one, the other, both, over ClickHouse and over SQLite."""
    b = otlpgen.Builder()
    f1, f2 = b.function("early_fn", "e.c"), b.function("late_fn", "l.c")
    s1 = b.stack([b.location("native", functions=[(f1, 1)])])
    s2 = b.stack([b.location("native", functions=[(f2, 2)])])
    p = b.profile(b.resource(container_id="windows"))
    t1 = 1900000000 * 10**9            # 2030-03-17T17:46:40Z
    t2 = t1 + 10 * 60 * 10**9
    b.sample(p, s1, timestamps=[t1, t1 + 1, t1 + 2])
    b.sample(p, s2, timestamps=[t2, t2 + 3 * 10**9])
    path = os.path.join(cc.TMP, "windows.pb")
    with open(path, "wb") as f:
        f.write(b.bytes())
    db = os.path.join(cc.TMP, "windows.db")
    rc, _, err = run_cli("decode", "--sink", "sqlite", "--sqlite-path", db, "--sink", "clickhouse",
                         "--clickhouse-url", ch.url, "--clickhouse-database", "lbuiwin",
                         "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool-win"), path)
    check("the windows request stored in SQLite and ClickHouse", rc == 0, err)
    chp, chu = start_ui("--clickhouse-url", ch.url, "--clickhouse-database", "lbuiwin")
    sqp, squ = start_ui("--db", db)
    m1, m2 = t1 // 10**9 // 60 * 60, t2 // 10**9 // 60 * 60
    try:
        def top(**w):
            (st, d), (st2, d2) = [get(url_of(u, "/api/top", w)) for u in (chu, squ)]
            ok = st == st2 == 200 and d == d2
            return {r["name"]: r["self"] for r in d["rows"]} if ok else (st, d, st2, d2)

        check("no window: both", top() == {"early_fn": 3, "late_fn": 2}, top())
        check("the first minute: early_fn only", top(**{"from": m1, "to": m1 + 60}) == {"early_fn": 3})
        check("a window inside the first minute widens to it",
              top(**{"from": m1 + 1, "to": m1 + 2}) == {"early_fn": 3})
        check("the tenth minute on: late_fn only", top(**{"from": m1 + 600}) == {"late_fn": 2})
        check("a window between them: nothing", top(**{"from": m1 + 120, "to": m1 + 300}) == {})
        check("a filter and a window: container=windows, up to the tenth minute",
              top(container="windows", to=m1 + 600) == {"early_fn": 3})
        (st, tl), (st2, tl2) = [get(url_of(u, "/api/timeline", {})) for u in (chu, squ)]
        check("timeline: one point per minute with data, as over SQLite", st == 200 and tl == tl2 and
              tl["points"] == [[m1, 3], [m2, 2]], (tl, tl2))
        st, fl = get(url_of(chu, "/api/flame", {"from": m1 + 600, "to": m1 + 660}))
        check("flame graph in the tenth minute: late_fn, weight 2", st == 200 and fl["nodes"][3] == 2 and
              [f["name"] for f in fl["frames"]] == ["late_fn"], fl)
    finally:
        terminate(chp)
        terminate(sqp)


def test_not_kept():
    for path, params in (("/api/top", {"by": "mapping"}), ("/api/requests", {})):
        for base in (UI[1], SERVE.url):
            st, d = get(url_of(base, path, params))
            check("%s %s: 501, saying ClickHouse does not keep it" % (path, params), st == 501 and
                  "ClickHouse does not keep" in d.get("error", ""), (st, d))
    st, d = get(UI[1] + "/api/top?bogus=1")
    check("a bad parameter: still 400", st == 400, st)


def page(view):
    """(exit code, the DOM after the page's scripts ran) of Debian's Chromium, headless, on one
    view of the `ui --clickhouse-url` page."""
    cmd = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--user-data-dir=" + os.path.join(cc.TMP, "profile-" + view), "--virtual-time-budget=5000",
           "--dump-dom", UI[1] + "/#view=" + view]
    p = subprocess.run(cmd, capture_output=True, timeout=180)
    return p.returncode, p.stdout.decode(errors="replace")


def test_page():
    """The page in a real browser: the views over ClickHouse, and a 501 shown, not a blank."""
    if not check("Debian's chromium is installed (scripts/install-deps.sh test)", os.access("/usr/bin/chromium", os.X_OK)):
        return
    want = expected_functions(folded_pairs())
    best = max(want.items(), key=lambda kv: (kv[1][0], kv[1][1]))[0]
    rc, dom = page("top")
    check("the Top view: the heaviest function and the total weight (%d)" % EXPECT["timestamps"],
          rc == 0 and best in dom and "%d total weight" % EXPECT["timestamps"] in dom, dom[-600:])
    rc, dom = page("groups")
    mapping = dom[dom.find('id="g-mapping"'):][:600]
    check("the Executables view: the executables' table filled, the mappings' table says ClickHouse does not "
          "keep them", rc == 0 and "<td>java</td>" in dom and "ClickHouse does not keep" in mapping, mapping)
    rc, dom = page("live")
    status = dom[dom.find('id="status"'):][:300]
    check("the Requests view: the 501's reason in the status line", rc == 0 and 'class="error"' in status and
          "ClickHouse does not keep" in status, status)


class HoldingProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy to ClickHouse that passes the sink's requests and holds every SELECT
    (the UI's) unanswered until released: a ClickHouse that is slow for the UI only."""
    daemon_threads = True

    def __init__(self, upstream):
        self.upstream, self.release, self.held = upstream, threading.Event(), 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                body += self.rfile.read(n)
                self.rfile.readline()
                if n == 0:
                    break
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        query = urllib.parse.urlparse(self.path).query
        if body.lstrip().upper().startswith(b"SELECT") and b"FORMAT RowBinary" in body and "query=" not in query \
                and not self.server.release.is_set():
            self.server.held += 1
            self.server.release.wait(60)
            self.close_connection = True
            return
        host, port = self.server.upstream
        c = http.client.HTTPConnection(host, port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding",
                                                                          "content-length", "connection")}
        c.request("POST", self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        c.close()


def test_serve_never_blocked():
    """serve --sink clickhouse behind a proxy holding the UI's SELECTs: ingest goes on."""
    proxy = HoldingProxy(("127.0.0.1", int(ch.url.rsplit(":", 1)[1])))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    be = Server("--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % proxy.server_address[1],
                "--clickhouse-database", "lbuislow", "--clickhouse-flush-interval", "200",
                "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool-slow"), "--ui-timeout", "4", http=True)
    try:
        answers = []

        def ask():
            t = time.monotonic()
            st, d = get(be.url + "/api/top")
            answers.append((st, d, time.monotonic() - t))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        check("four UI calls held by the slow ClickHouse", wait_until(lambda: proxy.held >= 4, 10 * cc.SLOW),
              proxy.held)
        st, d = get(be.url + "/api/top")
        check("a fifth UI call while four wait: 503, too many", st == 503 and "too many" in d.get("error", ""),
              (st, d))
        t0 = time.monotonic()
        ok = be.send(RAW) is not None
        took = time.monotonic() - t0
        check("a gRPC Export while UI calls hang: answered in %.3f s (< 1 s)" % took, ok and took < 1.0, took)
        for t in threads:
            t.join(30)
        check("the held UI calls: 504 after --ui-timeout 4, with the reason",
              len(answers) == 4 and all(a[0] == 504 and "did not answer within 4 s" in a[1].get("error", "")
                                        and a[2] >= 3.5 for a in answers), answers)
        # a client that leaves before ClickHouse answers: its call is cancelled
        with socket.create_connection(("127.0.0.1", int(be.url.rsplit(":", 1)[1])), timeout=5) as s:
            s.sendall(b"GET /api/meta HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: proxy.held >= 5, 10 * cc.SLOW)
        check("a client gone before the answer: the call cancelled",
              wait_until(lambda: "the client left before ClickHouse answered" in be.stderr(), 10 * cc.SLOW),
              be.stderr()[-1500:])
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "1", be.url + "/api/meta"],
                           capture_output=True, timeout=30)
        check("an h2c client gone before the answer (curl --max-time 1): the call cancelled", r.returncode == 28 and
              wait_until(lambda: be.stderr().count("the client left before ClickHouse answered") >= 2, 10 * cc.SLOW),
              (r.returncode, be.stderr()[-1500:]))
        proxy.release.set()
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_code} %{http_version}",
                            be.url + "/api/top"], capture_output=True, timeout=60)
        body, _, status = r.stdout.decode().rpartition("\n")
        check("over h2c: 200 and the Export's samples, answered later on its stream",
              status == "200 2" and json.loads(body or "{}").get("total") == EXPECT["timestamps"], r.stdout[-300:])
        st, d = get(be.url + "/api/top")
        check("ClickHouse answering again: the server's UI answers (200) with the Export's samples",
              st == 200 and d.get("total") == EXPECT["timestamps"], (st, str(d)[:300]))
        # SIGTERM while an h2c call waits: the transport answers it 503, the server exits 0
        proxy.release = threading.Event()
        held = proxy.held
        waiting = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_code}",
                                    be.url + "/api/flame"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        check("an h2c UI call held", wait_until(lambda: proxy.held > held, 10 * cc.SLOW), proxy.held)
        rc = be.stop()
        out = waiting.communicate(timeout=30)[0].decode(errors="replace")
        check("SIGTERM with an h2c UI call waiting: the server exits 0, the call answered 503 (shutting down)",
              rc == 0 and out.endswith("\n503") and "shutting down" in out, (rc, out, be.stderr()[-1500:]))
    finally:
        proxy.release.set()
        check("the server stops cleanly after it all", be.stop() == 0, be.stderr()[-2000:])
        proxy.shutdown()
        proxy.server_close()


def test_serve_clickhouse_down():
    with socket.socket() as dead:   # a port with no listener: connection refused
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
    be = Server("--sink", "clickhouse", "--clickhouse-url", "http://127.0.0.1:%d" % port,
                "--clickhouse-database", "lbuidown", "--clickhouse-spool-dir", os.path.join(cc.TMP, "spool-down"),
                http=True)
    try:
        for path in ("/api/top", "/api/meta"):
            st, d = get(be.url + path)
            check("serve, ClickHouse unreachable: %s is a 502 with the reason" % path, st == 502 and
                  "ClickHouse at" in d.get("error", "") and "127.0.0.1" in d["error"], (st, d))
    finally:
        be.kill()


def test_clickhouse_down():
    with socket.socket() as mute:   # accepts connections, never answers
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        p, base = start_ui("--clickhouse-url", "http://127.0.0.1:%d" % mute.getsockname()[1],
                           "--clickhouse-timeout", "1")
        try:
            st, d = get(base + "/api/top")
            check("ClickHouse too slow (--clickhouse-timeout 1): 504 with the reason", st == 504 and
                  "timed out" in d.get("error", "").lower(), (st, d))
        finally:
            check("`lazybackend ui` stops on SIGTERM", terminate(p) == 0)
    ch.stop()
    for base, who in ((UI[1], "ui --clickhouse-url"), (SERVE.url, "serve --sink clickhouse")):
        for path in ("/api/flame", "/api/top", "/api/timeline", "/api/meta"):
            st, d = get(base + path)
            check("ClickHouse stopped: %s: %s is a 502 with the reason" % (who, path), st == 502 and
                  "ClickHouse at" in d.get("error", "") and "127.0.0.1" in d["error"], (st, d))
    rc = subprocess.run([cc.fx.LB, "ui", "--db", DB, "--clickhouse-url", ch.url], capture_output=True, timeout=30)
    check("--db with --clickhouse-url: usage error", rc.returncode == 2 and b"exclude" in rc.stderr, rc.stderr)
    rc = subprocess.run([cc.fx.LB, "ui", "--clickhouse-user", "x"], capture_output=True, timeout=30)
    check("--clickhouse-user without --clickhouse-url: usage error", rc.returncode == 2, rc.stderr)


def test_stop():
    check("`lazybackend ui --clickhouse-url` stops on SIGTERM with status 0", terminate(UI[0]) == 0)
    check("the SQLite server stops cleanly", SQLITE.stop() == 0, SQLITE.stderr()[-2000:])
    SERVE.kill()   # its ClickHouse is stopped: its spool would wait


cc.run_with_server(ch, [(t.__name__, t) for t in (test_store, test_top_and_flame, test_groups_and_filters,
                                                   test_window_and_timeline, test_windows, test_not_kept, test_page,
                                                   test_serve_never_blocked, test_serve_clickhouse_down,
                                                   test_clickhouse_down,
                                                   test_stop)])
