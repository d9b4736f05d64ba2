#!/usr/bin/python3
"""readme_quickstart.py - the README's quick start, followed literally.

Why: the quick start is the first thing a newcomer runs; if a command there is wrong, the
first minute is lost. So the commands are not copied into this test: they are read from the
README's shell blocks marked `<!-- quickstart -->`, line by line, and each one is either run
or known for a reason:
  - `make run` starts the server: it is started here the way the Makefile's `run` recipe
    starts it (the recipe's arguments), with $LAZYBACKEND, on free 127.0.0.1 ports instead of
    4317/4318 (another server may hold those);
  - `./lazybackend decode ...` is run as written, from the repository's root, with
    $LAZYBACKEND for ./lazybackend;
  - `./lazybackend send ...` is run as written against that server, `--to` added for its port;
  - `make` and `make test` are only checked to be Makefile targets (this test runs inside
    `make test`).
Any other line fails the test: a new quick-start command needs a way to be followed here.

Expectations come from outside the code under test: the example payload is the shared
fixture ebpf-jvm-go.v1.11.pb (checked byte for byte), whose counts ebpf-jvm-go.expect.json
holds (computed with the reference protobuf library); the text output is counted line by line
(fixtures.text_counts).
"""
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from server import Server  # noqa: E402

ROOT = fx.ROOT
README = os.path.join(ROOT, "README.md")
MAKEFILE = os.path.join(ROOT, "Makefile")
EXPECT = fx.expect()
EXAMPLE = "examples/ebpf-profiler.pb"
COUNTED = ("resource_profiles", "profiles", "samples", "timestamps", "frames")


def quickstart():
    """The shell lines of the README's `<!-- quickstart -->` blocks, each as an argv (comments
    and comment-only lines dropped), in README order."""
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"<!-- quickstart -->[ \t]*\n```(?:sh|bash|shell)?\n(.*?)^```", text, re.S | re.M)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                lines.append(argv)
    return blocks, lines


def make_targets():
    with open(MAKEFILE) as f:
        return set(re.findall(r"^([A-Za-z_-]+):", f.read(), re.M))


def run_recipe():
    """The arguments the Makefile's `run` recipe gives the binary (`./$(BIN) ARGS`), or None."""
    with open(MAKEFILE) as f:
        m = re.search(r"^run:.*\n\t(.*)$", f.read(), re.M)
    if not m:
        return None
    argv = shlex.split(m.group(1))
    return argv[1:] if argv and argv[0] in ("./$(BIN)", "./lazybackend") else None


def local(argv):
    """A README line `./lazybackend ...` with the binary under test."""
    return [fx.LB] + argv[1:]


def counts_match(what, out):
    c = fx.text_counts(out, errors="replace")
    got = {k: c.counts[k] for k in COUNTED}
    want = {k: EXPECT[k] for k in COUNTED}
    check("%s: %d samples and %d frames, as the example holds" % (what, want["samples"], want["frames"]),
          got == want, "got %s\nwant %s" % (got, want))
    check("%s: frames per frame type as the example holds" % what,
          c.frame_types == EXPECT["frame_types"], "got %s\nwant %s" % (c.frame_types, EXPECT["frame_types"]))


def ui_shows_it(server):
    """`make run` stores what it receives, so the web UI on its HTTP port shows the example."""
    try:
        with urllib.request.urlopen(server.url + "/api/requests?limit=1", timeout=30) as r:
            newest = json.loads(r.read())["requests"][0]
        with urllib.request.urlopen(server.url + "/api/top?limit=1", timeout=30) as r:
            top = json.loads(r.read())["rows"][0]["name"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        newest, top = {}, repr(e)
    leaves = {}
    for line in fx.folded().decode().splitlines():
        stack, w = line.rsplit(" ", 1)
        leaves[stack.split(";")[-1]] = leaves.get(stack.split(";")[-1], 0) + int(w)
    check("after `make run` and the `send`, the web UI has the request (%d samples)" % EXPECT["samples"],
          newest.get("samples") == EXPECT["samples"], newest)
    check("... and its top function (%s)" % max(leaves, key=leaves.get), top == max(leaves, key=leaves.get), top)


def main():
    blocks, lines = quickstart()
    check("README.md has quick-start blocks (<!-- quickstart -->) with commands", blocks and lines,
          "found %d blocks, %d command lines" % (len(blocks), len(lines)))
    with open(fx.path("ebpf-jvm-go.v1.11.pb"), "rb") as f, open(os.path.join(ROOT, EXAMPLE), "rb") as g:
        check("%s is the shared fixture ebpf-jvm-go.v1.11.pb (its expectations apply)" % EXAMPLE,
              f.read() == g.read())
    targets = make_targets()
    server = None
    seen = []
    try:
        for argv in lines:
            shown = " ".join(argv)
            if argv[0] == "make":
                target = argv[1] if len(argv) > 1 else "all"
                check("quick start `%s`: a Makefile target" % shown, len(argv) <= 2 and target in targets,
                      "targets: %s" % sorted(targets))
                if target == "run":
                    args = run_recipe()
                    check("`make run` runs the binary (`./$(BIN) ARGS` in the Makefile)", args is not None)
                    server = Server(*(args or []), http=True)
                    check("`make run`: the server is up (gRPC on 127.0.0.1:%d)" % server.grpc_port, server.alive())
                seen.append(target)
            elif argv[0] == "./lazybackend" and len(argv) > 1 and argv[1] == "decode":
                p = subprocess.run(local(argv), cwd=ROOT, capture_output=True, timeout=60 * fx.SLOW)
                check("quick start `%s`: exit 0" % shown, p.returncode == 0, p.stderr.decode(errors="replace"))
                counts_match("quick start `%s`" % shown, p.stdout)
                seen.append("decode")
            elif argv[0] == "./lazybackend" and len(argv) > 1 and argv[1] == "send":
                if not check("quick start `%s`: comes after `make run`, which starts the server" % shown,
                             server is not None):
                    continue
                check("quick start `%s`: sends to the default address (no --to)" % shown,
                      not any(a == "--to" or a.startswith("--to=") for a in argv))
                cmd = local(argv)[:2] + ["--to", "127.0.0.1:%d" % server.grpc_port] + argv[2:]
                p = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=60 * fx.SLOW)
                out = p.stdout.decode(errors="replace")
                check("quick start `%s`: exit 0, every request accepted whole" % shown,
                      p.returncode == 0 and "request 0: OK" in out, out + p.stderr.decode(errors="replace"))
                got = server.wait_stdout(lambda o: fx.text_counts(o, errors="replace").counts["samples"]
                                         >= EXPECT["samples"], timeout=10)
                counts_match("quick start `%s`: the server printed" % shown, got)
                ui_shows_it(server)
                seen.append("send")
            else:
                check("quick start line `%s` is one this test knows how to follow" % shown, False,
                      "teach test/e2e/readme_quickstart.py to run it")
        for step in ("run", "decode", "send", "test"):
            check("the quick start has a `%s` line" % step, step in seen, "seen: %s" % seen)
        if server:
            check("`make run` server stopped cleanly (SIGTERM, exit 0)", server.stop() == 0, server.stderr()[-2000:])
    finally:
        if server:
            server.cleanup()


def defaults():
    """The README says `make run` serves on 127.0.0.1:4317 and `send` needs no --to: that holds
    only while the server's and send's default addresses agree."""
    with open(README) as f:
        text = f.read()
    check("README.md: `make run` serves gRPC on 127.0.0.1:4317", "127.0.0.1:4317" in text)
    for args, what in (([fx.LB, "--help"], "--grpc-address ADDR"), ([fx.LB, "send", "--help"], "--grpc")):
        p = subprocess.run(args, capture_output=True, timeout=30 * fx.SLOW)
        line = next((ln for ln in p.stdout.decode().splitlines() if ln.strip().startswith(what)), "")
        check("`%s`: the default gRPC address is 127.0.0.1:4317" % " ".join(["lazybackend"] + args[1:]),
              "127.0.0.1:4317" in line, line)


run("README quick start", main)
run("default addresses", defaults)
done()
