"""clickhouse_common.py - what the ClickHouse end-to-end tests share (a module, not a test:
it is not executable, so test/run.sh does not run it).

- ClickHouse: a real Debian clickhouse-server started by scripts/clickhouse-test-server.sh in
  a private directory on a free loopback port; queries over its HTTP interface.
- Backend: the real lazybackend binary serving gRPC with the ClickHouse sink.
- doc_queries(): the SQL of docs/clickhouse.md, so the tests run what users copy.
- Expectations computed from the fixture with the reference protobuf library (otlpgen), not
  with our decoder: per-container leaf/total function weights, and the shared folded file.
"""
import collections
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import server  # noqa: E402
import tap  # noqa: E402

ROOT = fx.ROOT
SCRIPT = os.path.join(ROOT, "scripts", "clickhouse-test-server.sh")
SLOW = fx.SLOW
EXPECT = fx.expect()
FOLDED = fx.folded().decode()
# Everything a test run writes (server data, spools, logs) lives under one directory.
TMP = tempfile.mkdtemp(prefix="lb-chtest-")
FIXTURE_FILES = fx.FIXTURE_FILES
fixture = fx.read
free_port = server.free_port
wait_until = server.wait_until
run_decode = functools.partial(server.run_cli, "decode")


class ClickHouse:
    """A private clickhouse-server (HTTP only) in its own directory; data survives restarts."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="server-", dir=TMP)
        self.port = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _script(self, cmd, timeout=60):
        return subprocess.run([SCRIPT, cmd, self.dir, str(self.port)], capture_output=True, text=True,
                              timeout=timeout)

    def start(self):
        """Starts on the same port as before (a restart), or on a free one the first time."""
        for _ in range(3):
            if self.port is None:
                self.port = free_port()
            p = self._script("start")
            if p.returncode == 0:
                return
            if "Address already in use" not in p.stderr + self.log():
                break
            self.port = None
        raise RuntimeError("clickhouse-server did not start:\n" + p.stderr)

    def stop(self):
        self._script("stop")

    def kill(self):
        self._script("kill")

    def stop_and_clean(self):
        """stop(), then cleanup() keeping the files when a check of the run failed."""
        self.stop()
        self.cleanup(keep=tap.failed() > 0)

    def cleanup(self, keep):
        """Removes the run's directory (stop the server first), or says where it is when a
        test failed."""
        if keep:
            print("# test directory kept for inspection: " + TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def query(self, sql, timeout=30):
        """The response body as text; raises RuntimeError with ClickHouse's message on failure."""
        req = urllib.request.Request(self.url + "/", data=sql.encode())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError("ClickHouse: %s\n%s" % (e.read().decode(errors="replace")[:600], sql[:300]))

    def scalar(self, sql):
        return int(self.query(sql).strip() or 0)

    def try_scalar(self, sql):
        try:
            return self.scalar(sql)
        except (RuntimeError, OSError):
            return -1


class Backend(server.Server):
    """lazybackend serving gRPC on a free port (lib/server.py), its logs under TMP; Export
    calls wait 5 s at most unless told otherwise."""

    def __init__(self, *args):
        super().__init__(*args, dir=tempfile.mkdtemp(prefix="backend-", dir=TMP))

    def export(self, body, timeout=5.0, **kw):
        return super().export(body, timeout=timeout, **kw)


def run_with_server(ch, tests):
    """Starts ClickHouse, runs the (name, function) tests, stops it, keeps the run's
    directory when a check failed, and exits with the verdict."""
    try:
        ch.start()
    except Exception as e:  # noqa: BLE001
        tap.check("clickhouse-server starts (scripts/clickhouse-test-server.sh)", False, e)
        tap.done()
    try:
        for name, fn in tests:
            tap.run(name, fn)
    finally:
        ch.stop()
        ch.cleanup(keep=tap.failed() > 0)
    tap.done()


# --------------------------------------------------------------------------- the docs' SQL

def doc_queries(database):
    """{name: sql} from the `<!-- sql:NAME -->` blocks of docs/clickhouse.md, with the
    database `otel` replaced by `database`."""
    with open(os.path.join(ROOT, "docs", "clickhouse.md")) as f:
        doc = f.read()
    found = re.findall(r"<!-- sql:([a-z-]+) -->\n```sql\n(.*?)```", doc, re.S)
    return {name: sql.replace("otel.", database + ".") for name, sql in found}


def tsv(text):
    return [line.split("\t") for line in text.splitlines() if line]


# --------------------------------------------------------------------------- expectations

def fixture_functions():
    """From the v1.11 fixture, parsed by the reference protobuf library:
    {container.id: (self {name: weight}, total {name: weight})}, with names as in folded
    stacks (function name, else "<mapping file>+0x<address>")."""
    req = otlpgen.service.ExportProfilesServiceRequest()
    req.ParseFromString(fixture())
    d = req.dictionary
    st = d.string_table

    def names(stack_index):
        out = []   # leaf first: locations leaf first, lines innermost first
        for li in d.stack_table[stack_index].location_indices:
            loc = d.location_table[li]
            if loc.lines:
                out.extend(st[d.function_table[ln.function_index].name_strindex] for ln in loc.lines)
            else:
                mapping = st[d.mapping_table[loc.mapping_index].filename_strindex] if loc.mapping_index else ""
                out.append("%s+0x%x" % (mapping, loc.address))
        return out

    result = {}
    for rp in req.resource_profiles:
        cid = ""
        for kv in rp.resource.attributes:
            key = kv.key or st[kv.key_strindex]
            if key == "container.id":
                v = kv.value
                cid = v.string_value if v.HasField("string_value") else st[v.string_value_strindex]
        self_w, total_w = result.setdefault(cid, (collections.Counter(), collections.Counter()))
        for sp in rp.scope_profiles:
            for p in sp.profiles:
                for s in p.samples:
                    w = sum(s.values) if len(s.values) else len(s.timestamps_unix_nano)
                    ns = names(s.stack_index)
                    if ns:
                        self_w[ns[0]] += w
                    for n in set(ns):
                        total_w[n] += w
    return result


def top_functions(container, times, limit=20):
    """The docs' top-functions answer for `container` after `times` sends, computed in Python
    with the query's own ordering (self desc, total desc, name)."""
    self_w, total_w = fixture_functions()[container]
    rows = [(n, self_w.get(n, 0) * times, t * times) for n, t in total_w.items()]
    rows.sort(key=lambda r: (-r[1], -r[2], r[0].encode()))
    return rows[:limit]


def folded_lines(times):
    """The fixture's folded file with every weight multiplied by `times`, sorted."""
    out = []
    for line in FOLDED.splitlines():
        stack, w = line.rsplit(" ", 1)
        out.append("%s %d" % (stack, int(w) * times))
    return sorted(out)
