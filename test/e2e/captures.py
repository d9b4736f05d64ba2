#!/usr/bin/python3
"""Captured payloads: `lazybackend decode` on OTLP/JSON files, and `lazybackend send` to a
real server over gRPC and OTLP/HTTP.

Expectations come from outside the code under test: the folded file and the counts of the
shared fixture (computed with the reference protobuf library), JSON written by Google's
json_format from the fixture's protobuf, and requests built by the reference encoder.
"""
import gzip
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import otlpgen  # noqa: E402
from server import Server, run_cli, free_port, wait_until  # noqa: E402

EXPECT = fx.expect()
FOLDED = fx.folded()
TMP = fx.tempdir("lb-captures-")
RAW, REQ = hg.fixture_request()
JSON = hg.to_otlp_json(REQ)


def folded_of(*args):
    rc, out, err = run_cli("decode", "--format", "folded", *args)
    return rc, out, err


def test_decode_json():
    doc = fx.write(TMP, "fixture.json", JSON)
    rc, out, err = folded_of(doc)
    check("decode FILE.json: exit 0", rc == 0, err)
    check("decode FILE.json: folded output equals the fixture's folded file", out == FOLDED,
          out[:300])
    snake = fx.write(TMP, "snake.json", hg.to_otlp_json(REQ, camel=False))
    rc, out, err = folded_of(snake)
    check("decode JSON with proto field names: same folded output", rc == 0 and out == FOLDED, err)

    lines = fx.write(TMP, "lines.jsonl", JSON + b"\n\n" + JSON + b"\n")
    rc, out, err = folded_of(lines)
    check("decode JSON lines: two requests, each the fixture's folded file",
          rc == 0 and out == FOLDED + FOLDED, err)

    rc, out, err = run_cli("decode", lines)
    c, _, _, _ = fx.text_counts(out)
    check("decode JSON lines (text): twice the fixture's samples",
          rc == 0 and c["samples"] == 2 * EXPECT["samples"], c)

    gz = fx.write(TMP, "fixture.json.gz", gzip.compress(JSON))
    rc, out, err = folded_of(gz)
    check("decode gzipped JSON: same folded output", rc == 0 and out == FOLDED, err)

    rc, out, err = run_cli("decode", "--format", "folded", "-", stdin=b"  \n" + JSON)
    check("decode JSON from stdin (leading white space): same folded output", rc == 0 and out == FOLDED, err)

    rc, out, err = folded_of("--input-format", "json", doc)
    check("--input-format json: same folded output", rc == 0 and out == FOLDED, err)
    rc, out, err = folded_of("--input-format", "proto", doc)
    check("--input-format proto on JSON: refused as malformed protobuf, exit 1",
          rc == 1 and "malformed" in err and out == b"", err)
    rc, out, err = folded_of("--input-format", "json", fx.path())
    check("--input-format json on protobuf: refused as not OTLP/JSON, exit 1",
          rc == 1 and "not OTLP/JSON" in err, err)
    rc, out, err = folded_of("--input-format", "yaml", doc)
    check("--input-format yaml: bad value, exit 2", rc == 2 and "--input-format" in err, err)

    rc, out, err = folded_of("--proto-version", "v1.9", doc)
    check("JSON with --proto-version v1.9: refused, it is read as v1.11",
          rc == 1 and "read as v1.11" in err, err)
    rc, out, err = folded_of("--proto-version", "v1.11", doc)
    check("JSON with --proto-version v1.11: decoded", rc == 0 and out == FOLDED, err)

    bad = fx.write(TMP, "bad.json", b'{"resourceProfiles": [ {')
    rc, out, err = folded_of(bad)
    check("truncated JSON: exit 1, says where", rc == 1 and "not OTLP/JSON" in err and "byte" in err, err)


def server_folded(srv, n):
    """The server's stdout once it holds n requests' worth of folded lines."""
    want = len(FOLDED.splitlines()) * n
    wait_until(lambda: len(open(srv.stdout_path, "rb").read().splitlines()) >= want, 10)
    return open(srv.stdout_path, "rb").read()


def send(*args):
    return run_cli("send", *args)


def test_send():
    doc = fx.write(TMP, "send.json", JSON)
    srv = Server("--format", "folded", http=True)
    try:
        rc, out, err = send("--to", str(srv.grpc_port), fx.path())
        check("send over gRPC: exit 0, OK", rc == 0 and out == fx.path().encode() + b": request 0: OK\n", out + err.encode())
        rc, out, err = send("--gzip", "--to", "127.0.0.1:%d" % srv.grpc_port, fx.path())
        check("send --gzip over gRPC: OK", rc == 0 and b"OK" in out, out + err.encode())
        rc, out, err = send("--http", "--to", ":%d" % srv.http_port, fx.path(), doc)
        check("send --http, protobuf and JSON: both OK", rc == 0 and out.count(b": OK\n") == 2, out + err.encode())
        rc, out, err = send("--http", "--gzip", "--to", srv.url, doc)
        check("send --http --gzip to a URL: OK", rc == 0 and out.endswith(b"OK\n"), out + err.encode())
        got = server_folded(srv, 5)
        check("the server wrote the fixture's folded stacks once per request (5)",
              got == FOLDED * 5, got[:300])
        log = srv.stderr()
        check("the JSON capture went over HTTP as JSON", "(HTTP/1.1, json)" in log, log[-2000:])

        b, p, good = otlpgen.one_stack_request()
        b.sample(p, good, timestamps=[1])
        b.sample(p, 99, timestamps=[2])
        partial = fx.write(TMP, "partial.pb", b.bytes())
        rc, out, err = send("--to", str(srv.grpc_port), partial)
        check("send of a request with a bad stack index: partial success reported, exit 1",
              rc == 1 and b"partial success: 1 profile(s) rejected" in out and b"stack_index 99" in out,
              out + err.encode())
        rc, out, err = send("--http", "--to", str(srv.http_port), partial)
        check("the same over HTTP: partial success, exit 1",
              rc == 1 and b"partial success: 1 profile(s) rejected" in out, out + err.encode())

        garbage = fx.write(TMP, "garbage.pb", b"\xff\xff\xff\xff not protobuf")
        rc, out, err = send("--to", str(srv.grpc_port), garbage)
        check("send of garbage over gRPC: refused with INVALID_ARGUMENT (3), exit 1",
              rc == 1 and b"refused: gRPC status 3: malformed" in out, out + err.encode())
        rc, out, err = send("--http", "--to", str(srv.http_port), garbage)
        check("send of garbage over HTTP: refused with 400, exit 1",
              rc == 1 and b"refused: HTTP 400: malformed" in out, out + err.encode())
    finally:
        srv.stop()

    rc, out, err = send("--to", str(free_port()), fx.path())
    check("send to a closed port: not sent, exit 1", rc == 1 and b"not sent" in out, out + err.encode())
    rc, out, err = send("--to", "nowhere", fx.path())
    check("send --to without a port: exit 2", rc == 2 and "--to nowhere" in err, err)
    rc, out, err = send()
    check("send without a file: exit 2", rc == 2 and "no input" in err, err)
    rc, out, err = send("--help")
    check("send --help: exit 0, usage", rc == 0 and b"Usage: lazybackend send" in out, err)


run("decode JSON", test_decode_json)
run("send", test_send)
done()
