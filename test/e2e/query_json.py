#!/usr/bin/python3
"""query_json.py - `top`, `folded` and `flamegraph` with `--format json` (docs/queries.md).

Why it exists: programs (a web page, a script) read these answers, so the JSON must be valid,
carry exactly the documented keys, and say the same as the fixtures. This stores the fixture
several times in a SQLite store and checks each command's JSON: the schema key by key, and
every value against figures computed from the fixture with the reference protobuf library
(lib/fixture_model.py) or from its folded file, never against the text output.
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import fixture_model  # noqa: E402
from server import run_cli as lb  # noqa: E402

EXPECT = fx.expect()
MODEL = fixture_model.load(fx.path())
TMP = fx.tempdir("lb-qjson-")
DB = os.path.join(TMP, "store.db")
COPIES = len(fx.FIXTURE_FILES)   # each layout's file once: the same content 4 times

HEAD = {"command", "samples", "weight", "sample_type", "sample_unit", "mixed_sample_types"}
TOP_KEYS = HEAD | {"by", "order", "limit", "rows"}
ROW_KEYS = {"name", "self", "self_percent", "total", "total_percent"}
FOLDED_KEYS = HEAD | {"root", "stacks"}
STACK_KEYS = {"frames", "weight"}
FLAME_KEYS = HEAD | {"root", "tree"}
NODE_KEYS = {"name", "type", "value", "children"}
WEIGHT = EXPECT["timestamps"] * COPIES   # the fixture has no values: a sample weighs its timestamps


def query(*args):
    """The parsed JSON of one command over the store, or None (with a failed check)."""
    rc, out, err = lb(*args, "--db", DB, "--format", "json")
    if not check("%s --format json exits 0" % " ".join(args), rc == 0, err):
        return None
    try:
        return json.loads(out)
    except ValueError as e:
        check("%s --format json is valid JSON" % " ".join(args), False, "%s\n%s" % (e, out[:300]))
        return None


def folded_model():
    """{stack (root first, as a tuple): weight} x COPIES, from the fixture's folded file."""
    out = {}
    for line in fx.folded().decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        out[tuple(stack.split(";"))] = int(w) * COPIES
    return out


def check_head(d, command, samples, weight, keys):
    check("%s: exactly the documented keys" % command, set(d) == keys, sorted(set(d) ^ keys))
    check("%s: command, samples = %d, weight = %d, sample type samples/count" % (command, samples, weight),
          (d.get("command"), d.get("samples"), d.get("weight"), d.get("sample_type"), d.get("sample_unit"),
           d.get("mixed_sample_types")) == (command, samples, weight, "samples", "count", False),
          {k: d.get(k) for k in HEAD})


def store():
    rc, _, err = lb("decode", "--sink", "sqlite", "--sqlite-path", DB, *(fx.path(n) for n in fx.FIXTURE_FILES))
    check("decode --sink sqlite stores the fixture %d times" % COPIES, rc == 0, err)


def test_top():
    d = query("top", "--limit", "0")
    if d is None:
        return
    check_head(d, "top", EXPECT["samples"] * COPIES, WEIGHT, TOP_KEYS)
    check("top: by function, order self, limit 0", (d["by"], d["order"], d["limit"]) == ("function", "self", 0))
    self_w, total_w = collections.Counter(), collections.Counter()
    for stack, w in folded_model().items():
        self_w[stack[-1]] += w
        for name in set(stack):
            total_w[name] += w
    want = sorted(((n, self_w[n], total_w[n]) for n in total_w), key=lambda r: (-r[1], -r[2], r[0].encode()))
    rows = d["rows"]
    check("top: every row has exactly the documented keys", all(set(r) == ROW_KEYS for r in rows),
          [sorted(r) for r in rows if set(r) != ROW_KEYS][:2])
    got = [(r["name"], r["self"], r["total"]) for r in rows]
    check("top: rows (name, self, total) = the folded file's, heaviest self first", got == want,
          "got  %s\nwant %s" % (got[:3], want[:3]))
    check("top: percents = 100 x weight / total weight",
          all(abs(r["self_percent"] - 100.0 * r["self"] / WEIGHT) < 1e-9 and
              abs(r["total_percent"] - 100.0 * r["total"] / WEIGHT) < 1e-9 for r in rows))
    d = query("top", "--total", "--limit", "3")
    if d is not None:
        want_total = sorted(want, key=lambda r: (-r[2], -r[1], r[0].encode()))[:3]
        check("top --total --limit 3: three rows, heaviest total first, order and limit echoed",
              [(r["name"], r["self"], r["total"]) for r in d["rows"]] == want_total and d["order"] == "total"
              and d["limit"] == 3, d["rows"])


def test_top_groups():
    for by, key_of in (("executable", fixture_model.executable), ("container", fixture_model.container),
                       ("thread", fixture_model.thread)):
        d = query("top", "--by", by, "--limit", "0")
        if d is None:
            continue
        want = collections.Counter()
        for s in MODEL:
            want[key_of(s)] += s.weight * COPIES
        got = {r["name"]: (r["self"], r["total"]) for r in d["rows"]}
        check("top --by %s: self = total = weight per %s from the protobuf message" % (by, by),
              got == {k: (v, v) for k, v in want.items()} and d["by"] == by, (got, dict(want)))


def test_folded():
    d = query("folded")
    if d is None:
        return
    check_head(d, "folded", EXPECT["samples"] * COPIES, WEIGHT, FOLDED_KEYS)
    check("folded: root none", d["root"] == "none")
    check("folded: every stack has exactly frames and weight", all(set(s) == STACK_KEYS for s in d["stacks"]))
    got = {tuple(s["frames"]): s["weight"] for s in d["stacks"]}
    check("folded: stacks (root first) and weights = ebpf-jvm-go.folded x %d" % COPIES, got == folded_model(),
          sorted(set(got.items()) ^ set(folded_model().items()))[:3])
    check("folded: %d stacks, one per distinct stack" % EXPECT["distinct_folded_stacks"],
          len(d["stacks"]) == EXPECT["distinct_folded_stacks"])
    lines = ["%s %d" % (";".join(s["frames"]), s["weight"]) for s in d["stacks"]]
    check("folded: in the order of the sorted folded lines", lines == sorted(lines, key=lambda x: x.encode()))
    d = query("folded", "--root", "executable")
    if d is not None:
        per_root = collections.Counter()
        for s in d["stacks"]:
            per_root[s["frames"][0]] += s["weight"]
        want = collections.Counter()
        for s in MODEL:
            want[fixture_model.executable(s)] += s.weight * COPIES
        check("folded --root executable: the first frame is the process, weights per process = model",
              d["root"] == "executable" and dict(per_root) == dict(want), (dict(per_root), dict(want)))


def walk(node, path, out, types):
    """Every node's value by its path from the root, and the set of types seen per name."""
    out[path] = node["value"]
    types[node["name"]].add(node["type"])
    names = [c["name"] for c in node["children"]]
    out[path + ("<order>",)] = names == sorted(names, key=lambda x: x.encode()) and len(set(names)) == len(names)
    for c in node["children"]:
        if set(c) != NODE_KEYS:
            out[path + ("<keys>",)] = sorted(c)
        walk(c, path + (c["name"],), out, types)


def test_flamegraph():
    d = query("flamegraph")
    if d is None:
        return
    check_head(d, "flamegraph", EXPECT["samples"] * COPIES, WEIGHT, FLAME_KEYS)
    tree = d["tree"]
    check("flamegraph: the tree's root is all/root with exactly the node keys",
          set(tree) == NODE_KEYS and tree["name"] == "all" and tree["type"] == "root", sorted(tree))
    got, types = {}, collections.defaultdict(set)
    walk(tree, (), got, types)
    check("flamegraph: every node has exactly name, type, value, children", not any(k and k[-1] == "<keys>" for k in got))
    check("flamegraph: siblings distinct and in byte order of their names",
          all(v for k, v in got.items() if k and k[-1] == "<order>"))
    want = collections.Counter()
    for stack, w in folded_model().items():
        for i in range(len(stack) + 1):
            want[stack[:i]] += w
    values = {k: v for k, v in got.items() if k and k[-1] not in ("<order>", "<keys>")} | {(): got[()]}
    check("flamegraph: each node's value = the weight of the folded stacks through it",
          values == dict(want), sorted(set(values.items()) ^ set(want.items()))[:3])
    model_types = collections.defaultdict(set)
    for s in MODEL:
        for name, ftype in s.frames:
            model_types[name].add(ftype)
    frame_types = {n: t for n, t in types.items() if n != "all"}
    check("flamegraph: each frame's type = its profile.frame.type in the protobuf message",
          frame_types == {n: model_types[n] for n in frame_types}, "")
    d = query("flamegraph", "--root", "container")
    if d is not None:
        kids = {c["name"]: (c["type"], c["value"]) for c in d["tree"]["children"]}
        want = collections.Counter()
        for s in MODEL:
            want[fixture_model.container(s)] += s.weight * COPIES
        check("flamegraph --root container: first level = the containers (type group), weights = model",
              d["root"] == "container" and kids == {k: ("group", v) for k, v in want.items()}, kids)


def test_empty_and_errors():
    d = query("top", "--where", "container.id=nope")
    if d is not None:
        check("nothing matches: samples 0, weight 0, sample type null, no rows",
              (d["samples"], d["weight"], d["sample_type"], d["sample_unit"], d["rows"]) == (0, 0, None, None, []), d)
    d = query("flamegraph", "--where", "container.id=nope")
    if d is not None:
        check("nothing matches: the flame graph is the empty root",
              d["tree"] == {"name": "all", "type": "root", "value": 0, "children": []}, d["tree"])
    rc, _, err = lb("top", "--db", DB, "--format", "yaml")
    check("--format yaml is a usage error (exit 2)", rc == 2 and "--format" in err, err)
    rc, _, err = lb("flamegraph", "--db", DB, "--format", "json", "--width", "800")
    check("flamegraph --format json --width: a usage error (the SVG's option)", rc == 2 and "--width" in err, err)


def main():
    try:
        store()
        for name, fn in [("top", test_top), ("top groups", test_top_groups), ("folded", test_folded),
                         ("flamegraph", test_flamegraph), ("empty and errors", test_empty_and_errors)]:
            run(name, fn)
    finally:
        done()


if __name__ == "__main__":
    main()
