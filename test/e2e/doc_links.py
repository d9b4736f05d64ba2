#!/usr/bin/python3
"""doc_links.py - every relative link of the documentation leads somewhere.

Why: the README is a table of contents into docs/, and the pages point at each other's
sections; when a page or a heading is renamed, a link breaks silently. Checked for README.md,
docs/*.md and examples/README.md:
  - every relative link (`[text](path)`, `[text](path#anchor)`, `[text](#anchor)`, images too)
    names a file or directory inside the repository that exists;
  - every `#anchor` is a heading of the linked Markdown file, by GitHub's slug rules
    (lowercase; punctuation dropped except `-` and `_`; spaces become `-`; a repeated heading
    gets `-1`, `-2`, ...);
  - README.md does not send the reader to "the README" (it is the README).
Links inside code (fenced blocks, `inline code`) are not links; absolute URLs are not
fetched (the suite runs offline).
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402

ROOT = fx.ROOT
# Doc files may be given as arguments (relative to the repository), for a test of the test.
PAGES = sys.argv[1:] or (["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
                         + ["examples/README.md"])
LINK_RE = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans removed."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if fence is None:
            yield n, line


def heading_text(raw):
    """What GitHub shows of a heading: links as their text, code without backticks."""
    raw = LINK_RE.sub(lambda m: m.group(1), raw)
    return raw.replace("`", "")


def slug(text):
    s = text.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    """The anchors GitHub makes for the headings of a Markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    seen = {}
    out = set()
    for _, line in prose_lines(text):
        m = HEADING_RE.match(line)
        if not m:
            continue
        base = slug(heading_text(m.group(2)))
        k = seen.get(base, 0)
        out.add(base if k == 0 else "%s-%d" % (base, k))
        seen[base] = k + 1
    return out


def links(path):
    """(line number, target) of every link in the file's prose."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for n, line in prose_lines(text):
        line = re.sub(r"`[^`]*`", "", line)
        for m in LINK_RE.finditer(line):
            yield n, m.group(2)


def check_page(page):
    path = os.path.join(ROOT, page)
    if not check("%s exists" % page, os.path.isfile(path)):
        return
    bad = []
    count = 0
    for n, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, https:, mailto: ...
            continue
        count += 1
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if os.path.commonpath([dest, ROOT]) != ROOT:
            bad.append("line %d: %s leaves the repository" % (n, target))
            continue
        if not os.path.exists(dest):
            bad.append("line %d: %s: no such file" % (n, target))
            continue
        if anchor:
            if not dest.endswith(".md") or not os.path.isfile(dest):
                bad.append("line %d: %s: an anchor into a file that is not Markdown" % (n, target))
            elif anchor not in anchors(dest):
                bad.append("line %d: %s: no heading #%s in %s" % (n, target, anchor, os.path.relpath(dest, ROOT)))
    check("%s: its %d relative links lead to existing files and headings" % (page, count), not bad,
          "\n".join(bad))


def readme_self_reference():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    found = ["line %d: %s" % (n, line.strip()) for n, line in prose_lines(text)
             if re.search(r"\bthe README\b|\(see the README\)", line)]
    check("README.md does not refer the reader to \"the README\"", not found, "\n".join(found))


def slug_rules():
    """The slug function against headings whose GitHub anchors are known."""
    cases = {"Quick start (Debian 12)": "quick-start-debian-12",
             "`--output FILE` and log rotation": "--output-file-and-log-rotation",
             "The commands: `top`, `folded`, `flamegraph`": "the-commands-top-folded-flamegraph",
             "Duplicates and `batch_id`": "duplicates-and-batch_id",
             "OTLP/JSON": "otlpjson"}
    got = {h: slug(heading_text(h)) for h in cases}
    check("GitHub's slug rules on known headings", got == cases, "got %s" % got)


run("slug rules", slug_rules)
for p in PAGES:
    run("links of %s" % p, lambda p=p: check_page(p))
if not sys.argv[1:]:
    run("README self-reference", readme_self_reference)
done()
