#!/usr/bin/python3
"""check_serve.py - `serve --check off|log|strict` over gRPC (grpcio) and OTLP/HTTP (urllib,
protobuf and JSON bodies): what each mode answers, delivers, logs and counts in /metrics.

Expectations come from outside the code under test: the requests are built with Google's
protobuf runtime (lib/otlpgen.py) with one known fault each (a timestamp before its profile's
start, a scope without profiles, an empty request, a duplicate string), so the rule each must
break, and the number of profiles a strict rejection must name, are known here; responses are
parsed with the same runtime (and json for OTLP/JSON); /metrics is read by Prometheus' parser.
Environment: LAZYBACKEND (the binary). Only 127.0.0.1 is used; every wait is bounded.
"""
import json
import os
import sys
import urllib.error
import urllib.request

from google.protobuf import json_format

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import otlpgen  # noqa: E402
import scrape  # noqa: E402
from server import Server  # noqa: E402

PATH = "/v1development/profiles"
GARBAGE = b"\xff\xff\xff\xff not protobuf"


def build(thread, timestamps_of, profiles=1, extra_strings=()):
    """A request of `profiles` profiles, one sample each, tagged thread.name=thread; the
    sample's timestamps are timestamps_of(profile start)."""
    b = otlpgen.Builder()
    fn = b.function("work", "work.c")
    loc = b.location("go", [(fn, 7)])
    st = b.stack([loc])
    tag = b.attr("thread.name", thread)
    scope = b.resource(service_name="svc")
    for _ in range(profiles):
        p = b.profile(scope)
        p.profile_id = b""   # OTLP/JSON writes ids in hex, json_format in base64: none is simpler
        b.sample(p, st, timestamps=timestamps_of(p.time_unix_nano), attributes=[tag])
    for s in extra_strings:
        b.req.dictionary.string_table.append(s)
    return b.req


CLEAN = build("clean-thread", lambda t0: [t0 + 1, t0 + 2])
LATE = build("bad-thread", lambda t0: [t0 - 1], profiles=2)          # timestamp-range, 2 profiles
NO_PROFILES = otlpgen.service.ExportProfilesServiceRequest()
NO_PROFILES.CopyFrom(CLEAN)
NO_PROFILES.resource_profiles[0].scope_profiles[0].ClearField("profiles")   # no-profiles, 0 profiles
EMPTY = otlpgen.service.ExportProfilesServiceRequest()                      # no-resource-profiles
DUP_STRING = build("dup-thread", lambda t0: [t0 + 1], extra_strings=["work"])  # duplicate-string


def response(body):
    r = otlpgen.service.ExportProfilesServiceResponse()
    r.ParseFromString(body)
    return r


def post(url, body, ctype):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10 * fx.SLOW) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def grpc_partial(srv, req):
    """(status, has partial_success, rejected_profiles, error_message) over gRPC."""
    r = srv.export(req.SerializeToString())
    if r.status != "OK":
        return r.status, False, 0, r.details
    resp = response(r.body)
    return "OK", resp.HasField("partial_success"), resp.partial_success.rejected_profiles, \
        resp.partial_success.error_message


def http_partial(srv, req, as_json):
    if as_json:
        status, body = post(srv.url + PATH, json_format.MessageToJson(req).encode(), "application/json")
        doc = json.loads(body or b"{}") if status == 200 else {}
        ps = doc.get("partialSuccess")
        return status, ps is not None, int((ps or {}).get("rejectedProfiles", 0)), (ps or {}).get("errorMessage", "")
    status, body = post(srv.url + PATH, req.SerializeToString(), "application/x-protobuf")
    resp = response(body) if status == 200 else otlpgen.service.ExportProfilesServiceResponse()
    return status, resp.HasField("partial_success"), resp.partial_success.rejected_profiles, \
        resp.partial_success.error_message


def test_off():
    srv = Server(http=True)
    try:
        st, partial, _, msg = grpc_partial(srv, LATE)
        check("--check off (default): a request with findings is accepted whole", st == "OK" and not partial, msg)
        out = srv.wait_stdout(lambda o: b"bad-thread" in o)
        check("--check off: its samples reach the sink", b"bad-thread" in out)
        page = scrape.scrape(srv.url)
        check("--check off: nothing is checked", page.total("lazybackend_check_requests_total") == 0, page.text[-800:])
        check("--check off: no check log line", "check:" not in srv.stderr(), srv.stderr()[-800:])
    finally:
        srv.stop()


def test_log():
    srv = Server("--check", "log", http=True)
    try:
        st, partial, _, msg = grpc_partial(srv, LATE)
        check("--check log: a request with findings is still accepted whole (gRPC)", st == "OK" and not partial, msg)
        status, partial, _, msg = http_partial(srv, LATE, False)
        check("--check log: ... and over OTLP/HTTP", status == 200 and not partial, msg)
        st, partial, _, _ = grpc_partial(srv, CLEAN)
        check("--check log: a clean request is accepted whole", st == "OK" and not partial)
        out = srv.wait_stdout(lambda o: b"clean-thread" in o and o.count(b"bad-thread") >= 4)
        check("--check log: every sample is delivered", out.count(b"bad-thread") >= 4 and b"clean-thread" in out)
        err = srv.stderr()
        warn = [line for line in err.splitlines() if "check: export from" in line and "WARN" in line]
        check("--check log: one WARN line per request with findings, naming the rule and the path",
              len(warn) == 2 and all("[timestamp-range]" in w and "profiles[0].sample[0].timestamps_unix_nano[0]" in w
                                     for w in warn), err[-1500:])
        check("--check log: the clean request's verdict is logged", "conformance checks passed" in err, err[-800:])
        page = scrape.scrape(srv.url)
        check("--check log: /metrics counts 2 requests with findings, 1 clean, 4 timestamp-range findings",
              page.value("lazybackend_check_requests_total", verdict="findings") == 2 and
              page.value("lazybackend_check_requests_total", verdict="clean") == 1 and
              page.value("lazybackend_check_findings_total", rule="timestamp-range") == 4 and
              page.value("lazybackend_check_rejected_requests_total") == 0, page.text[-3000:])
    finally:
        srv.stop()


def test_strict():
    srv = Server("--check", "strict", http=True)
    try:
        st, partial, rejected, msg = grpc_partial(srv, LATE)
        check("--check strict (gRPC): findings become a partial success rejecting both profiles",
              st == "OK" and partial and rejected == 2 and "[timestamp-range]" in msg and
              "resource_profiles[0].scope_profiles[0].profiles[0].sample[0].timestamps_unix_nano[0]" in msg, msg)
        for as_json in (False, True):
            status, partial, rejected, msg = http_partial(srv, LATE, as_json)
            check("--check strict (HTTP, %s): the same rejection" % ("JSON" if as_json else "protobuf"),
                  status == 200 and partial and rejected == 2 and "[timestamp-range]" in msg, f"{status} {msg}")
        for name, req, rule in (("a scope without profiles", NO_PROFILES, "no-profiles"),
                                ("an empty request", EMPTY, "no-resource-profiles")):
            st, partial, rejected, msg = grpc_partial(srv, req)
            check("--check strict (gRPC): %s: partial success, 0 profiles rejected, the finding as the message"
                  % name, st == "OK" and partial and rejected == 0 and "[%s]" % rule in msg, f"{st} {msg}")
            status, partial, rejected, msg = http_partial(srv, req, True)
            check("--check strict (HTTP JSON): %s: the same" % name,
                  status == 200 and partial and rejected == 0 and "[%s]" % rule in msg, f"{status} {msg}")
        st, partial, _, msg = grpc_partial(srv, CLEAN)
        check("--check strict: a clean request is accepted whole", st == "OK" and not partial, msg)
        st, partial, _, msg = grpc_partial(srv, DUP_STRING)
        check("--check strict: a duplicate string is no finding with the default groups", st == "OK" and not partial,
              msg)
        r = srv.export(GARBAGE)
        check("--check strict: bytes no layout reads are refused by the decoder as before (INVALID_ARGUMENT)",
              r.status == "INVALID_ARGUMENT", r)
        out = srv.wait_stdout(lambda o: b"clean-thread" in o and b"dup-thread" in o)
        check("--check strict: the clean requests' samples are delivered", b"clean-thread" in out and b"dup-thread" in out)
        check("--check strict: nothing of a rejected request reaches the sink", b"bad-thread" not in out)
        page = scrape.scrape(srv.url)
        check("--check strict: /metrics counts 7 rejections, 7 requests with findings, 2 clean, 1 unreadable",
              page.value("lazybackend_check_rejected_requests_total") == 7 and
              page.value("lazybackend_check_requests_total", verdict="findings") == 7 and
              page.value("lazybackend_check_requests_total", verdict="clean") == 2 and
              page.value("lazybackend_check_requests_total", verdict="unreadable") == 1 and
              page.value("lazybackend_check_findings_total", rule="no-profiles") == 2 and
              page.value("lazybackend_check_findings_total", rule="no-resource-profiles") == 2, page.text[-3000:])
        check("--check strict: the rejections are partial outcomes of lazybackend_requests_total",
              page.total("lazybackend_requests_total", signal="profiles", outcome="partial") == 7, page.text[:3000])
    finally:
        srv.stop()


def test_groups():
    srv = Server("--check", "strict", "--check-groups", "default,duplicates")
    try:
        st, partial, rejected, msg = grpc_partial(srv, DUP_STRING)
        check("--check-groups default,duplicates: a duplicate string is rejected",
              st == "OK" and partial and rejected == 1 and "[duplicate-string]" in msg, msg)
    finally:
        srv.stop()
    rc = os.system("%s --check sometimes --help >/dev/null 2>&1" % fx.LB) >> 8
    check("--check with an unknown mode: exit status 2", rc == 2)
    rc = os.system("%s --check-groups nonsense --help >/dev/null 2>&1" % fx.LB) >> 8
    check("--check-groups with an unknown group: exit status 2", rc == 2)


run("off", test_off)
run("log", test_log)
run("strict", test_strict)
run("groups", test_groups)
done()
