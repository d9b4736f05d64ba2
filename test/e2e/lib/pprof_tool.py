"""pprof_tool.py - reading `go tool pprof` output for the export tests (export_pprof.py,
clickhouse_export.py), and what the fixture's samples make it show, computed independently.

    pprof_name(folded frame) -> the name pprof gives it
    traces(text of -traces)  -> {leaf-first frame tuple: summed weight}
    top_rows(text of -top)   -> {name: (flat, cum)}
    expected_top(samples)    -> {name: (flat, cum)} from lib/fixture_model.py's samples
"""
import collections
import re


def pprof_name(frame):
    """A folded frame name as pprof shows it: unsymbolized frames by their mapping."""
    m = re.match(r"^(.*)\+0x[0-9a-f]+$", frame)
    if not m:
        return frame
    return "[%s]" % m.group(1) if m.group(1) else "<unknown>"


def traces(text):
    """{leaf-first frame tuple: summed weight} from `pprof -traces`."""
    out = collections.Counter()
    for block in text.split("-----------+-------------------------------------------------------")[1:]:
        weight, frames = None, []
        for line in block.splitlines():
            m = re.match(r"^\s+(\d+)   (\S.*)$", line)
            if weight is None and m:
                weight, frames = int(m.group(1)), [m.group(2).strip()]
            elif weight is not None and line.strip():
                frames.append(line.strip())
        if weight is not None:
            out[tuple(frames)] += weight
    return out


def top_rows(text):
    """{name: (flat, cum)} from `pprof -top`."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(-?\d+)\s+\S+%\s+\S+%\s+(-?\d+)\s+\S+%\s+(.*)$", line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return rows


def expected_top(samples):
    """{function: (self, total)} from the fixture itself: self at the leaf, total once per stack."""
    flat, cum = collections.Counter(), collections.Counter()
    for s in samples:
        names = [pprof_name(n) for n, _t in s.frames]
        if names:
            flat[names[0]] += s.weight
        for n in set(names):
            cum[n] += s.weight
    return {n: (flat[n], cum[n]) for n in cum}
