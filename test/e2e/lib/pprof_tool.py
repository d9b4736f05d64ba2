"""pprof_tool.py - reading `go tool pprof` output for the export tests (export_pprof.py,
clickhouse_export.py), and what the fixture's samples make it show, computed independently.

    pprof_name(folded frame) -> the name pprof gives it
    traces(text of -traces)  -> {leaf-first frame tuple: summed weight}
    top_rows(text of -top)   -> {name: (flat, cum)}
    expected_top(samples)    -> {name: (flat, cum)} from lib/fixture_model.py's samples
    raw_profile(text of -raw) -> the header, the locations and the mappings pprof read
    expected_raw(request, sample type) -> the same from a v1.11 request (Google's protobuf)
"""
import collections
import datetime
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


def go_time(ns):
    """Go's time.Time.String() in UTC (pprof -raw prints Time: so, run with TZ=UTC)."""
    d = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    frac = f"{ns % 10**9:09d}".rstrip("0")
    return d.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


def go_duration_4(ns):
    """Go's fmt "%.4v" of a time.Duration from 1 s to 1 min (its String() cut to 4 characters),
    which is how pprof -raw prints Duration:."""
    assert 10**9 <= ns < 60 * 10**9, ns
    return (f"{ns // 10**9}.{ns % 10**9:09d}".rstrip("0").rstrip(".") + "s")[:4]


LOCATION = re.compile(r"^\s*(\d+): (0x[0-9a-f]+) (?:M=(\d+) )?(?:\[F\] )?(.*)$")
LINE = re.compile(r"^(.*) (\S*):(-?\d+) s=(-?\d+)(?:\((.*)\))?$")
MAPPING = re.compile(r"^(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) (.*)$")


def raw_profile(text):
    """{"period_type", "period", "time", "duration", "locations", "mappings"} from `pprof -raw`:
    locations as a set of (address, mapping or None, lines), a line (name, system name or None
    when it is the name, file, line, start line), a mapping (start, limit, offset, file, build id)."""
    out = {"locations": set(), "mappings": set()}
    section, locs, maps = None, {}, {}
    for line in text.splitlines():
        for key in ("PeriodType", "Period", "Time", "Duration"):
            if line.startswith(key + ": "):
                out[key.lower().replace("periodtype", "period_type")] = line[len(key) + 2:].strip()
        if line in ("Samples:", "Locations", "Mappings"):
            section = line
            continue
        if section == "Locations":
            m = LOCATION.match(line)
            if m:
                cur = locs.setdefault(int(m.group(1)), [int(m.group(2), 16), m.group(3), []])
                rest = m.group(4)
            elif line.startswith(" " * 13) and locs:
                rest = line.strip()
            else:
                continue
            ln = LINE.match(rest.rstrip())
            if ln:
                cur[2].append((ln.group(1), ln.group(5) if ln.group(5) is not None else None, ln.group(2),
                               int(ln.group(3)), int(ln.group(4))))
        elif section == "Mappings":
            m = MAPPING.match(line)
            if m:
                file, build_id = (m.group(5).split(" ") + ["", ""])[:2]
                start, limit, offset = (int(m.group(i), 16) for i in (2, 3, 4))
                maps[m.group(1)] = (start, limit, offset, file, build_id)
    for address, mapping, lines in locs.values():
        out["locations"].add((address, maps.get(mapping) if mapping else None, tuple(lines)))
    out["mappings"] = set(maps.values())
    return out


BUILD_ID_ORDER = ("gnu", "go", "htlhash")


def expected_raw(req, sample_type):
    """What `pprof -raw` of the exported file of `sample_type` must show, from the v1.11 request
    itself: the first profile's period, the earliest start and the latest end, and every location
    and mapping the samples' stacks use, with the mapping's preferred build id."""
    d = req.dictionary
    s = d.string_table

    def value(v):
        return v.string_value if v.WhichOneof("value") == "string_value" else v.bytes_value.hex()

    def mapping(i):
        if i == 0:
            return None
        m = d.mapping_table[i]
        ids = {}
        for a in m.attribute_indices:
            kv = d.attribute_table[a]
            key = s[kv.key_strindex]
            if key.startswith("process.executable.build_id."):
                ids.setdefault(key.rsplit(".", 1)[1], value(kv.value))
        build_id = next((ids[k] for k in BUILD_ID_ORDER if k in ids), "")
        return (m.memory_start, m.memory_limit, m.file_offset, s[m.filename_strindex], build_id)

    def line(ln):
        f = d.function_table[ln.function_index]
        name, system = s[f.name_strindex], s[f.system_name_strindex]
        return (name, system if system != name else None, s[f.filename_strindex], ln.line, f.start_line)

    profiles = [p for rp in req.resource_profiles for sp in rp.scope_profiles for p in sp.profiles
                if s[p.sample_type.type_strindex] == sample_type and len(p.samples)]
    first = profiles[0]
    start = min(p.time_unix_nano for p in profiles)
    end = max(p.time_unix_nano + p.duration_nano for p in profiles)
    locations = set()
    for p in profiles:
        for smp in p.samples:
            for li in d.stack_table[smp.stack_index].location_indices:
                loc = d.location_table[li]
                locations.add((loc.address, mapping(loc.mapping_index), tuple(line(ln) for ln in loc.lines)))
    return {"period_type": "%s %s" % (s[first.period_type.type_strindex], s[first.period_type.unit_strindex]),
            "period": str(first.period), "time": go_time(start), "duration": go_duration_4(end - start),
            "locations": locations, "mappings": {m for _a, m, _l in locations if m}}
