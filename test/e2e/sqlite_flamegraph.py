#!/usr/bin/python3
"""sqlite_flamegraph.py - `lazybackend flamegraph` makes an SVG that a browser opens offline.

Checks the SVG itself (well-formed XML, nothing fetched from the network, every frame's
width and place equal to the tree computed independently from ebpf-jvm-go.folded), then opens
it in headless Chromium (Debian's `chromium`) with networking disabled and checks the DOM the
browser built: no parser error, no script error, the script ran, every frame name of the
folded file is a text element, and the URL parameters for search (?s=) and zoom (?f=) do what
the buttons do.

Environment: LAZYBACKEND, FIXTURES. Chromium runs as root with --no-sandbox, on file:// only.
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import run_cli as lb  # noqa: E402

FOLDED = fx.folded().decode()
TMP = fx.tempdir("lb-flamegraph-")
DB = os.path.join(TMP, "fg.db")
COPIES = 2
SVGNS = "{http://www.w3.org/2000/svg}"
INNER = 1180          # default width 1200 minus the 10-pixel margins
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def expected_tree():
    """{path tuple: weight} for every prefix of every folded line, plus the root."""
    tree = collections.Counter()
    for line in FOLDED.splitlines():
        stack, w = line.rsplit(" ", 1)
        names = stack.split(";")
        tree[()] += int(w) * COPIES
        for i in range(1, len(names) + 1):
            tree[tuple(names[:i])] += int(w) * COPIES
    return tree


def svg_frames(root):
    """[(id, name, s, n, d, x, width, classes)] of the frame elements of a parsed SVG/DOM."""
    out = []
    for el in root.iter(SVGNS + "svg"):
        if "f" not in (el.get("class") or "").split():
            continue
        text = el.find(SVGNS + "text")
        out.append((el.get("id"), text.text if text is not None else None, int(el.get("data-s")),
                    int(el.get("data-n")), int(el.get("data-d")), float(el.get("x")), float(el.get("width")),
                    (el.get("class") or "").split()))
    return out


def svg_tree(frames):
    """{path: weight}, rebuilt from depth and x ranges alone."""
    by_depth = collections.defaultdict(list)
    for f in frames:
        by_depth[f[4]].append(f)
    paths = {}
    for f in by_depth[0]:
        paths[f[0]] = ()
    for d in sorted(by_depth)[1:]:
        for f in by_depth[d]:
            parent = [p for p in by_depth[d - 1] if p[2] <= f[2] and f[2] + f[3] <= p[2] + p[3]]
            if len(parent) != 1 or parent[0][0] not in paths:
                return None
            paths[f[0]] = paths[parent[0][0]] + (f[1],)
    return {paths[f[0]]: f[3] for f in frames}


def make_db():
    path = fx.path()
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", DB, *([path] * COPIES))
    check("store the fixture %d times" % COPIES, rc == 0, err)


def test_svg_structure():
    rc, out, err = lb("flamegraph", "--db", DB, "--title", "a <b> & 'c'")
    if not check("flamegraph exits 0", rc == 0, err):
        return
    path = os.path.join(TMP, "plain.svg")
    open(path, "wb").write(out)
    try:
        root = ET.fromstring(out)
    except ET.ParseError as e:
        check("the SVG is well-formed XML", False, e)
        return
    check("the SVG is well-formed XML", root.tag == SVGNS + "svg")
    urls = set(re.findall(rb"(?:https?|ftp)://[^\s\"'<>)]+", out))
    check("no network references (only the SVG namespace)", urls == {b"http://www.w3.org/2000/svg"}, urls)
    check("no href or src attributes", not re.search(rb"\b(?:xlink:)?href=|\bsrc=", out))
    check("the script is embedded", root.find(SVGNS + "script") is not None and b"function zoom" in out)
    title = root.find(SVGNS + "text[@id='title']")
    check("the title is escaped and shown as given", title is not None and title.text == "a <b> & 'c'",
          title.text if title is not None else None)
    frames = svg_frames(root)
    got, want = svg_tree(frames), dict(expected_tree())
    check("every frame's place and weight match the tree of the folded file", got == want,
          "got %d frames, want %d" % (len(got or {}), len(want)))
    check("frame widths are proportional to weight",
          all(abs(f[6] - f[3] / want[()] * INNER) < 0.01 for f in frames))
    check("siblings in alphabetical order, left to right", siblings_sorted(frames))


def siblings_sorted(frames):
    """Children of each frame, left to right, are in byte order of their names."""
    by_parent = collections.defaultdict(list)
    for f in frames:
        parent = [p for p in frames if p[4] == f[4] - 1 and p[2] <= f[2] < p[2] + p[3]]
        by_parent[parent[0][0] if parent else None].append(f)
    for kids in by_parent.values():
        names = [k[1] for k in sorted(kids, key=lambda f: f[2])]
        if names != sorted(names, key=lambda s: s.encode()):
            return False
    return True


def chromium(url, name):
    """(returncode, dom text, console error lines) of Chromium headless on a file: URL."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--user-data-dir=" + os.path.join(TMP, "profile-" + name), "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=3000", "--dump-dom", url]
    p = subprocess.run(cmd, capture_output=True, timeout=180)
    err = p.stderr.decode(errors="replace")
    console = [line for line in err.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return p.returncode, p.stdout.decode(errors="replace"), console


def parse_dom(dom):
    try:
        return ET.fromstring(dom)
    except ET.ParseError:
        return None


def test_chromium_renders():
    if not check("chromium is installed (scripts/install-deps.sh)", CHROMIUM is not None):
        return
    rc, out, err = lb("flamegraph", "--db", DB, "--root", "executable")
    path = os.path.join(TMP, "rooted.svg")
    open(path, "wb").write(out)
    rc, dom, console = chromium("file://" + path, "plain")
    check("chromium exits 0", rc == 0)
    check("no script errors in the console", not console, "\n".join(console))
    check("no XML parser error", "parsererror" not in dom, dom[:500])
    root = parse_dom(dom)
    if not check("the DOM is an SVG document", root is not None and root.tag == SVGNS + "svg", dom[:300]):
        return
    check("the embedded script ran (data-ready)", root.get("data-ready") == "1")
    texts = set(el.text for el in root.iter(SVGNS + "text") if el.text)
    names = set(n for line in FOLDED.splitlines() for n in line.rsplit(" ", 1)[0].split(";"))
    missing = sorted(names - texts)
    check("every frame name of the folded file is a text element (%d names)" % len(names), not missing,
          missing[:10])
    check("the process names are root frames", {"java", "node", "agent"} <= texts)


def test_chromium_search_and_zoom():
    if CHROMIUM is None:
        return
    path = os.path.join(TMP, "plain.svg")
    # search: the share of weight under frames matching the regex, without double counting
    total = matched = 0
    for line in FOLDED.splitlines():
        stack, w = line.rsplit(" ", 1)
        total += int(w)
        if any(re.search("Random", n) for n in stack.split(";")):
            matched += int(w)
    rc, dom, console = chromium("file://" + path + "?s=Random", "search")
    root = parse_dom(dom)
    shown = root.find(SVGNS + "text[@id='matched']").text if root is not None else None
    check("?s=Random: 'Matched: %.1f%%' from the folded file" % (100.0 * matched / total),
          shown == "Matched: %.1f%%" % (100.0 * matched / total) and not console, (shown, console))
    hits = svg_frames(root) if root is not None else []
    pink = [el for el in root.iter(SVGNS + "rect") if el.get("fill") == "rgb(230,0,230)"] if root is not None else []
    check("?s=Random highlights exactly the matching frames",
          len(pink) == sum(1 for f in hits if f[1] and re.search("Random", f[1]) and f[4] > 0), len(pink))

    frames = svg_frames(ET.parse(path).getroot())
    target = [f for f in frames if f[4] == 3][0]   # some frame three levels up
    rc, dom, console = chromium("file://" + path + "?f=" + target[0], "zoom")
    root = parse_dom(dom)
    after = {f[0]: f for f in svg_frames(root)} if root is not None else {}
    z = after.get(target[0])
    check("?f=ID: the zoomed frame spans the full width",
          z is not None and abs(z[5] - 10) < 0.01 and abs(z[6] - INNER) < 0.01 and not console, (z, console))
    outside = [f for f in after.values() if f[4] >= 3 and not (target[2] <= f[2] < target[2] + target[3])]
    check("?f=ID: frames outside the zoomed one are hidden", outside and all("hide" in f[7] for f in outside))
    ancestors = [f for f in after.values() if f[4] < 3 and f[2] <= target[2] < f[2] + f[3]]
    check("?f=ID: its ancestors stretch to the full width",
          len(ancestors) == 3 and all(abs(f[6] - INNER) < 0.01 for f in ancestors))


def test_empty_result():
    rc, out, err = lb("flamegraph", "--db", DB, "--where", "container.id=none")
    try:
        ok = ET.fromstring(out).tag == SVGNS + "svg" and b"no samples match" in out
    except ET.ParseError:
        ok = False
    check("no matching samples: still a valid SVG that says so", rc == 0 and ok, err)


make_db()
for t in (test_svg_structure, test_chromium_renders, test_chromium_search_and_zoom, test_empty_result):
    run(t.__name__, t)
done()
