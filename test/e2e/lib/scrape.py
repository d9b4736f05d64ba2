"""GET /metrics for the end-to-end tests, read by Prometheus' own parsers: the Python client's
(python3-prometheus-client, `prometheus_client.parser.text_string_to_metric_families`) always,
and `promtool check metrics` (Debian's prometheus package) when it is installed.

Why not a parser of our own: the page must be what a Prometheus server accepts, so it is
judged by Prometheus' code; the counts read from it are then compared with what the test
sent, never with another of lazybackend's counters.
"""
import shutil
import subprocess
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Page:
    """One scrape: the text, its families (name -> type), and every sample by name and
    labels."""

    def __init__(self, text, content_type=None):
        self.text = text
        self.content_type = content_type
        self.types = {}
        self.samples = {}        # (sample name, frozenset of label items) -> value
        self.by_name = {}        # sample name -> [(labels dict, value)]
        for fam in text_string_to_metric_families(text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                key = (s.name, frozenset(s.labels.items()))
                if key in self.samples:
                    raise ValueError("sample twice: %s %s" % (s.name, s.labels))
                self.samples[key] = s.value
                self.by_name.setdefault(s.name, []).append((dict(s.labels), s.value))

    def value(self, name, **labels):
        """The sample's value; KeyError when the page lacks it."""
        return self.samples[(name, frozenset(labels.items()))]

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset(labels.items())), default)

    def total(self, name, **labels):
        """The sum over every sample of `name` whose labels include `labels`."""
        return sum(v for l, v in self.by_name.get(name, []) if all(l.get(k) == x for k, x in labels.items()))

    def series(self, name):
        """[(labels, value)] of every sample called `name`."""
        return self.by_name.get(name, [])

    def histogram(self, name, **labels):
        """(buckets [(le, count)] in page order, sum, count) of one histogram."""
        buckets = [(l["le"], v) for l, v in self.series(name + "_bucket")
                   if all(l.get(k) == x for k, x in labels.items())]
        return buckets, self.value(name + "_sum", **labels), self.value(name + "_count", **labels)


def get(url, timeout=10):
    """(status, content type, body text) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(base_url):
    """The server's /metrics, parsed (raises when the client library's parser refuses it)."""
    status, ctype, text = get(base_url + "/metrics")
    if status != 200:
        raise RuntimeError("GET /metrics: %d %s" % (status, text[:300]))
    return Page(text, ctype)


def promtool(text):
    """(ran, ok, output) of `promtool check metrics` on the page; ran is False when promtool
    is not installed."""
    if not shutil.which("promtool"):
        return False, True, "promtool not installed"
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    return True, p.returncode == 0 and not out.strip(), out
