#!/usr/bin/python3
"""ui_api.py - the web UI's JSON API (docs/ui.md) against independent expectations.

A server with the SQLite sink receives the fixture over gRPC; its HTTP port serves the UI.
Every figure is checked against the fixture's expect.json and .folded files, or against the
request read with the reference protobuf library (lib/fixture_model.py): the top function
and its weight, weights per executable, container and thread, filters, frame types, and the
flame graph's paths (which must add up to the .folded file). Time windows are checked on
requests built by the reference encoder at chosen minutes. Then: bad parameters are 400s,
the security headers, read-only routes, `--ui off`, the live tail (Server-Sent Events over
HTTP/1.1 and h2c, with curl), and the offline `lazybackend ui --db` command.

Environment: LAZYBACKEND, FIXTURES. Only 127.0.0.1.
"""
import collections
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import fixture_model  # noqa: E402
import otlpgen  # noqa: E402
from server import Server, free_port, terminate, wait_until, connects  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
RAW = fx.read()
MODEL = fixture_model.load(fx.path())
TMP = fx.tempdir("lb-ui-")
DB = os.path.join(TMP, "ui.db")
MINUTE = 60 * 10**9


def get(url, method="GET"):
    """(status, headers, body) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api(server, path, **params):
    q = urllib.parse.urlencode(params, doseq=True)
    status, _, body = get(server.url + path + ("?" + q if q else ""))
    return status, json.loads(body)


def folded_pairs():
    """[(frames root first, weight)] of the fixture's .folded file."""
    out = []
    for line in FOLDED.decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        out.append((stack.split(";"), int(w)))
    return out


def expected_functions(pairs):
    """{name: [self, total]} from folded stacks: self at the leaf, total once per stack."""
    fns = collections.defaultdict(lambda: [0, 0])
    for frames, w in pairs:
        fns[frames[-1]][0] += w
        for name in set(frames):
            fns[name][1] += w
    return fns


def dict_diff(got, want):
    """The keys whose values differ, for a failed check's detail."""
    keys = sorted(set(got) | set(want))
    return [(k, got.get(k), want.get(k)) for k in keys if got.get(k) != want.get(k)][:5]


def model_groups(key_of, samples=MODEL):
    out = collections.Counter()
    for s in samples:
        k = key_of(s)
        out["" if k in ("[unknown]", "[empty]") else k] += s.weight
    return dict(out)


SERVER = None


def start():
    global SERVER
    SERVER = Server("--sink", "sqlite", "--sqlite-path", DB, http=True)
    SERVER.send(RAW)


def test_top_function():
    st, top = api(SERVER, "/api/top", limit=10000)
    check("/api/top answers 200", st == 200, top)
    check("total weight = the fixture's timestamps (expect.json)", top["total"] == EXPECT["timestamps"], top["total"])
    want = expected_functions(folded_pairs())
    best = max(want.items(), key=lambda kv: (kv[1][0], kv[1][1]))
    first = top["rows"][0]
    check("top function by self weight = the .folded file's heaviest leaf (%s, %d)" % (best[0], best[1][0]),
          first["name"] == best[0] and first["self"] == best[1][0] and first["total"] == best[1][1], first)
    got = {r["name"]: [r["self"], r["total"]] for r in top["rows"]}
    check("every function's self and total weight = the .folded file's", got == dict(want),
          dict_diff(got, dict(want)))
    st, by_total = api(SERVER, "/api/top", sort="total", limit=3)
    heaviest = max(want.items(), key=lambda kv: kv[1][1])[1][1]
    check("sort=total: the heaviest total first, limit=3 rows", st == 200 and by_total["rows"][0]["total"] == heaviest
          and len(by_total["rows"]) == 3 and by_total["matched"] == len(want), by_total)
    st, found = api(SERVER, "/api/top", q="RANDOM.NEXT")
    check("q= filters names (any case)", st == 200 and found["matched"] >= 1 and
          all("random.next" in r["name"].lower() for r in found["rows"]), found)


def test_groups():
    for by, key_of in (("executable", fixture_model.executable), ("container", fixture_model.container),
                       ("thread", fixture_model.thread)):
        st, d = api(SERVER, "/api/top", by=by, limit=1000)
        got = {r["name"]: r["total"] for r in d["rows"]}
        want = model_groups(key_of)
        check("/api/top?by=%s: weights per %s = the fixture read by the reference library" % (by, by),
              st == 200 and got == want, (got, want))
    st, d = api(SERVER, "/api/executables")
    check("/api/executables = by=executable", st == 200 and {r["name"]: r["total"] for r in d["rows"]}
          == model_groups(fixture_model.executable), d)
    # build ids of the mappings named like an executable, read from the fixture itself
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.ParseFromString(RAW)
    dic = req.dictionary
    ids = collections.defaultdict(set)
    for m in dic.mapping_table:
        for i in m.attribute_indices:
            a = dic.attribute_table[i]
            if "build_id" in dic.string_table[a.key_strindex]:
                ids[dic.string_table[m.filename_strindex]].add(a.value.string_value)
    named = {r["name"] for r in d["rows"]} & set(ids)
    check("executables with a mapping of their name carry its build id (%s)" % ", ".join(sorted(named)),
          named and all(r.get("build_id") in ids[r["name"]] for r in d["rows"] if r["name"] in named) and
          not any(r.get("build_id") for r in d["rows"] if r["name"] not in named), d["rows"])
    st, d = api(SERVER, "/api/top", by="frame_type", limit=100)
    want = collections.Counter()
    for s in MODEL:
        want[s.frames[0][1]] += s.weight
    check("by=frame_type: self weight per leaf frame type", st == 200 and
          {r["name"]: r["self"] for r in d["rows"]} == dict(want), d)
    st, d = api(SERVER, "/api/top", by="mapping", limit=100)
    check("by=mapping: native mappings with their build ids", st == 200 and d["rows"] and
          any(r.get("build_id") for r in d["rows"]), d["rows"][:3])


def test_filters():
    java = [s for s in MODEL if fixture_model.executable(s) == "java"]
    st, d = api(SERVER, "/api/top", executable="java", limit=10000)
    want = sum(s.weight for s in java)
    check("executable=java: the weight of java's samples", st == 200 and d["total"] == want and want > 0,
          (d.get("total"), want))
    pairs = [([n for n, _ in reversed(s.frames)], s.weight) for s in java]
    best = max(expected_functions(pairs).items(), key=lambda kv: (kv[1][0], kv[1][1]))
    check("executable=java: its top function", d["rows"][0]["name"] == best[0] and d["rows"][0]["self"] == best[1][0],
          (d["rows"][0], best))
    for types in (["v8js"], ["v8js", "go"]):
        st, d = api(SERVER, "/api/top", frame_type=types)
        want = sum(s.weight for s in MODEL if any(t in types for _, t in s.frames))
        check("frame_type=%s: stacks holding such a frame" % ",".join(types), st == 200 and d["total"] == want,
              (d.get("total"), want))
    cid = next(k for k in model_groups(fixture_model.container) if k)
    st, d = api(SERVER, "/api/top", container=cid)
    check("container=...: that container's weight", st == 200 and
          d["total"] == model_groups(fixture_model.container)[cid], d.get("total"))
    st, d = api(SERVER, "/api/top", attr="container.id=" + cid)
    check("attr=container.id=...: the same", st == 200 and d["total"] == model_groups(fixture_model.container)[cid])
    st, d = api(SERVER, "/api/top", thread="no such thread")
    check("a filter nothing matches: weight 0, no rows", st == 200 and d["total"] == 0 and d["rows"] == [], d)
    st, d = api(SERVER, "/api/top", sample_type="off_cpu")
    check("sample_type=off_cpu: nothing", st == 200 and d["total"] == 0, d)
    st, d = api(SERVER, "/api/top", sample_type="samples")
    check("sample_type=samples: everything", st == 200 and d["total"] == EXPECT["timestamps"], d.get("total"))


def test_timeline_filters():
    """The timeline under filters (attributes: rollup_minute_sets; frame types: the stacks'
    rows) against the fixture's timestamps, one per minute, over the whole range and a
    one-minute window."""
    thread = next(k for k, _ in sorted(model_groups(fixture_model.thread).items(), key=lambda kv: -kv[1]) if k)
    cases = (("executable=java", {"executable": "java"}, lambda s: fixture_model.executable(s) == "java"),
             ("thread=" + thread, {"thread": thread}, lambda s: fixture_model.thread(s) == thread),
             ("frame_type=v8js", {"frame_type": ["v8js"]}, lambda s: any(t == "v8js" for _, t in s.frames)),
             ("frame_type=go and executable=agent", {"frame_type": ["go"], "executable": "agent"},
              lambda s: fixture_model.executable(s) == "agent" and any(t == "go" for _, t in s.frames)))
    for name, params, keep in cases:
        want = collections.Counter()
        for s in MODEL:
            if keep(s):
                for t in s.timestamps:
                    want[t // (60 * 10**9) * 60] += 1
        check("timeline %s: samples in the fixture" % name, sum(want.values()) > 0, want)
        st, tl = api(SERVER, "/api/timeline", **params)
        check("timeline %s: the fixture's timestamps per minute" % name,
              st == 200 and tl["step"] == 60 and tl["points"] == sorted([m, w] for m, w in want.items()), (tl, want))
        m = max(want, key=want.get)
        st, tl = api(SERVER, "/api/timeline", **params, **{"from": m, "to": m + 60})
        check("timeline %s, one minute: that minute" % name, st == 200 and tl["points"] == [[m, want[m]]], tl)
        st, tl = api(SERVER, "/api/timeline", **params, **{"from": m + 3600, "to": m + 7200})
        check("timeline %s, an hour later: nothing" % name, st == 200 and tl["points"] == [], tl)
    # a frame without a type is "unknown" (reference encoder: an empty profile.frame.type)
    b = otlpgen.Builder()
    f = b.function("untyped_fn", "u.c")
    stack = b.stack([b.location("", functions=[(f, 1)]), b.location("native", functions=[(f, 2)])])
    t0 = 1910000000 * 10**9
    b.sample(b.profile(b.resource(container_id="untyped")), stack, timestamps=[t0, t0 + 1, t0 + 2, t0 + 3])
    SERVER.send(b.bytes())
    untyped = sum(len(s.timestamps) for s in MODEL if any(t in ("unknown", "", None) for _, t in s.frames))
    m0 = t0 // 10**9 // 60 * 60
    st, tl = api(SERVER, "/api/timeline", frame_type=["unknown"] * 16)
    check("timeline frame_type=unknown, 16 times (the most): the untyped frames' minutes",
          st == 200 and sum(w for _, w in tl["points"]) == untyped + 4 and [m0, 4] in tl["points"], (st, tl))
    st, top = api(SERVER, "/api/top", frame_type="unknown", container="untyped")
    check("top frame_type=unknown (the stacks' path): the same weight", st == 200 and top["total"] == 4, top)


def flame_paths(d):
    """{root-first names: self weight} from /api/flame's nodes."""
    nodes = d["nodes"]
    n = len(nodes) // 4
    paths = []
    out = collections.Counter()
    for i in range(n):
        parent, f, self_w = nodes[4 * i], nodes[4 * i + 1], nodes[4 * i + 2]
        path = () if parent < 0 else paths[parent] + (d["frames"][f]["name"],)
        paths.append(path)
        if self_w:
            out[";".join(path)] += self_w
    return out


def test_flame():
    st, d = api(SERVER, "/api/flame")
    check("/api/flame answers", st == 200 and d["truncated"] == 0, d.get("truncated"))
    nodes = d["nodes"]
    check("the root weighs the whole", nodes[0] == -1 and nodes[3] == EXPECT["timestamps"], nodes[:4])
    check("every parent comes before its children", all(nodes[4 * i] < i for i in range(1, len(nodes) // 4)))
    want = collections.Counter()
    for frames, w in folded_pairs():
        want[";".join(frames)] += w
    got = flame_paths(d)
    check("the flame graph's paths and self weights = the .folded file", got == want, dict_diff(got, want))
    check("native frames carry mapping and build id", any(f.get("build_id") and f.get("mapping")
                                                          for f in d["frames"] if f["type"] == "native"))
    check("symbolized frames carry file and line", any(f.get("file") and f.get("line") for f in d["frames"]))
    st, small = api(SERVER, "/api/flame", max_nodes=5)
    check("max_nodes=5: five nodes, the rest counted as truncated",
          st == 200 and len(small["nodes"]) == 20 and small["truncated"] == len(nodes) // 4 - 5, small)


def test_time_windows():
    """Two requests at chosen minutes (reference encoder): windows pick one, the other, both."""
    b = otlpgen.Builder()
    f1, f2 = b.function("early_fn", "e.c"), b.function("late_fn", "l.c")
    s1 = b.stack([b.location("native", functions=[(f1, 1)])])
    s2 = b.stack([b.location("native", functions=[(f2, 2)])])
    p = b.profile(b.resource(container_id="windows"))
    t1 = 1900000000 * 10**9            # 2030-03-17T17:46:40Z
    t2 = t1 + 10 * MINUTE
    b.sample(p, s1, timestamps=[t1, t1 + 1, t1 + 2])
    b.sample(p, s2, timestamps=[t2, t2 + 3 * 10**9])
    SERVER.send(b.bytes())
    sec1, sec2 = t1 // 10**9, t2 // 10**9
    m1 = sec1 // 60 * 60

    def top(**w):
        st, d = api(SERVER, "/api/top", container="windows", **w)
        return {r["name"]: r["self"] for r in d["rows"]} if st == 200 else d

    check("no window: both", top() == {"early_fn": 3, "late_fn": 2}, top())
    check("the first minute: early_fn only", top(**{"from": m1, "to": m1 + 60}) == {"early_fn": 3})
    check("a window inside the first minute widens to it", top(**{"from": sec1 + 1, "to": sec1 + 2}) == {"early_fn": 3})
    check("the tenth minute on: late_fn only", top(**{"from": m1 + 600}) == {"late_fn": 2})
    check("a window between them: nothing", top(**{"from": m1 + 120, "to": m1 + 300}) == {})
    check("a window over hours reads the hour table and the edges: both",
          top(**{"from": m1 - 7200, "to": m1 + 7200}) == {"early_fn": 3, "late_fn": 2})
    st, tl = api(SERVER, "/api/timeline", container="windows")
    check("timeline: one point per minute with data", st == 200 and tl["step"] == 60 and
          tl["points"] == [[m1, 3], [(sec2 // 60) * 60, 2]], tl)
    st, fl = api(SERVER, "/api/flame", container="windows", **{"from": m1 + 600, "to": m1 + 660})
    check("flame graph in the tenth minute: late_fn, weight 2", st == 200 and fl["nodes"][3] == 2 and
          [f["name"] for f in fl["frames"]] == ["late_fn"], fl)


def test_bad_parameters():
    for path, q, what in (("/api/top", "bogus=1", "bogus"), ("/api/top", "limit=0", "limit"),
                          ("/api/top", "limit=x", "limit"), ("/api/top", "by=colour", "by"),
                          ("/api/top", "from=20&to=10", "from"), ("/api/top", "from=-5", "from"),
                          ("/api/top", "attr=novalue", "attr"), ("/api/top", "q=%zz", "malformed"),
                          ("/api/top", "executable=" + "x" * 300, "256"), ("/api/flame", "max_nodes=0", "max_nodes"),
                          ("/api/flame", "by=thread", "by"), ("/api/meta", "from=1", "from"),
                          ("/api/top", "&".join("frame_type=t%d" % i for i in range(17)), "frame_type"),
                          ("/api/top", "thread=%00", "malformed")):
        st, _, body = get(SERVER.url + path + "?" + q)
        err = json.loads(body).get("error", "") if st == 400 else body
        check("400 for %s?%s" % (path, q[:40]), st == 400 and what in err, (st, err))
    st, _, _ = get(SERVER.url + "/api/top?q=" + "y" * 2000)
    check("a query string over the bound: 414", st == 414, st)
    st, _, _ = get(SERVER.url + "/api/nothing")
    check("an unknown API path: 404", st == 404, st)


def test_headers_and_methods():
    for path in ("/", "/app.js", "/flame.js", "/app.css", "/api/top"):
        st, h, body = get(SERVER.url + path)
        csp = h.get("Content-Security-Policy", "")
        check("%s: 200 with a strict CSP (no inline script), nosniff" % path,
              st == 200 and "script-src 'self'" in csp and "default-src 'none'" in csp and
              "unsafe-inline" not in csp and h.get("X-Content-Type-Options") == "nosniff", (st, csp))
    st, h, body = get(SERVER.url + "/")
    check("GET / is the page", st == 200 and h.get("Content-Type", "").startswith("text/html") and b"app.js" in body)
    check("the page has no inline script", b"<script>" not in body and b"onclick" not in body.lower())
    for method in ("POST", "PUT", "DELETE"):
        st, h, _ = get(SERVER.url + "/api/top", method=method)
        check("%s /api/top: 405 (read-only)" % method, st == 405 and "GET" in h.get("Allow", ""), st)
    st, meta = api(SERVER, "/api/meta")
    check("/api/meta: sample types, frame types, time range", st == 200 and
          meta["sample_types"][0]["type"] == "samples" and set(EXPECT["frame_types"]) <= set(meta["frame_types"]), meta)
    st, reqs = api(SERVER, "/api/requests", limit=1)
    check("/api/requests: the newest stored request", st == 200 and len(reqs["requests"]) == 1 and
          reqs["requests"][0]["transport"] == "grpc", reqs)
    st, reqs = api(SERVER, "/api/requests")
    first = reqs["requests"][-1]
    check("... the fixture's: its samples, layout, resource", first["samples"] == EXPECT["samples"] and
          first["layout"] == "v1.11" and "container.id=" in first["resource"], first)


def sse_events(argv, n, send):
    """Starts `curl` on /api/live, then calls send(); the first n `request` events."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first = p.stdout.readline()   # "retry: ..." arrives at once: the stream is open
        if not first.startswith(b"retry:"):
            return first
        send()
        events, deadline = [], time.monotonic() + 20
        while len(events) < n and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
        return events
    finally:
        p.kill()
        p.wait()


def test_live():
    url = SERVER.url + "/api/live"
    for proto, extra in (("HTTP/1.1", ["--http1.1"]), ("h2c", ["--http2-prior-knowledge"])):
        ev = sse_events(["curl", "-sN"] + extra + [url], 1, lambda: SERVER.send(RAW))
        ok = isinstance(ev, list) and len(ev) == 1
        e = ev[0] if ok else {}
        check("live tail over %s: a request sent after it opened arrives as an event" % proto,
              ok and e["samples"] == EXPECT["samples"] and e["outcome"] == "ok" and e["layout"] == "v1.11" and
              e["transport"] == "grpc" and "container.id=" in e["resource"], ev)
    bad = SERVER.export(b"\x0a\x05\xff")
    ev = sse_events(["curl", "-sN", url], 1, lambda: SERVER.export(b"\x0a\x05\xff"))
    check("a refused request arrives too, with its outcome and why", isinstance(ev, list) and ev and
          ev[0]["outcome"] == "invalid" and ev[0]["message"], (bad.status, ev))
    st, h, _ = get(SERVER.url + "/api/live", method="HEAD")
    check("HEAD /api/live ends at once", st == 200)
    check("the server still answers after the streams closed", api(SERVER, "/api/meta")[0] == 200)


def test_ui_off_and_offline():
    off = Server("--ui", "off", http=True)
    try:
        st, _, _ = get(off.url + "/")
        check("--ui off: no page", st == 404, st)
        st, _, _ = get(off.url + "/healthz")
        check("--ui off: the HTTP port still serves", st == 200, st)
    finally:
        off.stop()
    for mode, want in (("auto", 404), ("on", 200)):
        port = free_port()   # the HTTP port on every interface; reached here on 127.0.0.1 only
        wide = Server("--http-address", "0.0.0.0:%d" % port, "--insecure", "--ui", mode)
        try:
            wait_until(lambda: connects(port), 10)
            st, _, _ = get("http://127.0.0.1:%d/" % port)
            check("--ui %s with the HTTP port beyond loopback: %s" % (mode, "the page" if want == 200 else "no page"),
                  st == want, (st, wide.stderr()[-500:]))
        finally:
            wide.stop()
    nostore = Server(http=True)
    try:
        st, d = api(nostore, "/api/top")
        check("without --sink sqlite: 503 saying how to get a store", st == 503 and "--sink sqlite" in d["error"], d)
    finally:
        nostore.stop()
    port = free_port()
    p = subprocess.Popen([fx.LB, "ui", "--db", DB, "--address", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not check("`lazybackend ui --db` listens", wait_until(lambda: connects(port), 10)):
            return
        base = "http://127.0.0.1:%d" % port
        st, _, body = get(base + "/")
        check("`lazybackend ui`: the page", st == 200 and b"app.js" in body)
        st, _, body = get(base + "/api/top?limit=3")
        st2, served = api(SERVER, "/api/top", limit=3)
        check("`lazybackend ui`: the same answers as the server's port", st == 200 and json.loads(body) == served)
        st, _, _ = get(base + "/v1development/profiles", method="POST")
        check("`lazybackend ui`: no OTLP routes", st == 404, st)
    finally:
        check("`lazybackend ui` stops on SIGTERM with status 0", terminate(p) == 0)
    rc = subprocess.run([fx.LB, "ui", "--db", os.path.join(TMP, "missing.db"), "--address", "127.0.0.1:%d" % free_port(),
                         "--bogus"], capture_output=True, timeout=30)
    check("`lazybackend ui --bogus`: usage error, status 2", rc.returncode == 2 and b"--bogus" in rc.stderr)


try:
    start()
    for t in (test_top_function, test_groups, test_filters, test_flame, test_time_windows, test_timeline_filters,
              test_bad_parameters, test_headers_and_methods, test_live, test_ui_off_and_offline):
        run(t.__name__, t)
finally:
    if SERVER:
        check("the server stops cleanly (live streams included)", SERVER.stop() == 0, SERVER.stderr()[-2000:])
done()
