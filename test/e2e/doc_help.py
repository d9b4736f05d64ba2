#!/usr/bin/python3
"""doc_help.py - the option lists in docs/operations.md are the programs' own `--help`.

Why: `--help` is the authoritative list of options, and the documentation shows it whole so
that a reader can search one page; a copy that is not checked drifts with the first new
option. Each fenced block after a `<!-- help:NAME -->` marker must equal, byte for byte, the
standard output of the command that NAME stands for.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402

PAGE = os.path.join(fx.ROOT, "docs", "operations.md")
COMMANDS = {"serve": ["--help"], "send": ["send", "--help"], "check": ["check", "--help"],
            "export": ["export", "--help"]}


def blocks():
    with open(PAGE, encoding="utf-8") as f:
        text = f.read()
    return dict(re.findall(r"<!-- help:([a-z]+) -->[ \t]*\n```[a-z]*\n(.*?)^```", text, re.S | re.M))


def main():
    found = blocks()
    check("docs/operations.md has a help block for each of %s" % ", ".join(sorted(COMMANDS)),
          set(found) == set(COMMANDS), "found: %s" % sorted(found))
    for name, args in sorted(COMMANDS.items()):
        p = subprocess.run([fx.LB] + args, capture_output=True, timeout=30 * fx.SLOW)
        want = p.stdout.decode()
        got = found.get(name, "")
        check("docs/operations.md help:%s is the output of `lazybackend %s`" % (name, " ".join(args)),
              p.returncode == 0 and got == want, fx.first_difference(got, want))


run("help blocks", main)
done()
