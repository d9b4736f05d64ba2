"""Shared pieces of the http_*.py end-to-end tests: the server under test, a curl wrapper,
raw sockets, and OTLP requests built by the reference protobuf library (python3-protobuf).

Why: the HTTP tests must judge the backend with clients and encoders that are not ours -
curl for HTTP/1.1, h2c prior knowledge and the h2c upgrade, grpcio for gRPC, Google's
protobuf runtime (and its json_format) for the request bodies - so that a test can fail when
our transport, transcoder or decoder is wrong.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from google.protobuf import json_format

import fixtures
import otlpgen
import server
from fixtures import FIX, LB, SANITIZED, SLOW  # noqa: F401 - the http tests use them via hg

# google.rpc.Status, the body of OTLP/HTTP errors (field numbers from the OTLP spec); written
# here so the test decodes it with the reference library, not with our encoder.
with open(os.path.join(otlpgen.OUT, "rpc_status.proto"), "w") as _f:
    _f.write('syntax = "proto3";\npackage google.rpc;\n'
             "message Status { int32 code = 1; string message = 2; }\n")
otlpgen.compile_protos("trace.proto", "trace_service.proto")
otlpgen.compile_protos("rpc_status.proto", include=otlpgen.OUT)

import common_pb2 as common              # noqa: E402,F401
import profiles_service_pb2 as profiles_service  # noqa: E402
import trace_pb2 as trace                # noqa: E402
import trace_service_pb2 as trace_service  # noqa: E402
import rpc_status_pb2 as rpc_status      # noqa: E402

PROFILES = "/v1development/profiles"
TRACES = "/v1/traces"
TRACE_METHOD = server.TRACES_EXPORT
PB = "application/x-protobuf"
JSON = "application/json"
ID_KEYS = {"traceId", "spanId", "parentSpanId", "profileId"}
ID_KEYS_SNAKE = {"trace_id", "span_id", "parent_span_id", "profile_id"}
free_port = server.free_port


class Server(server.Server):
    """The real binary with a gRPC and an HTTP port on free 127.0.0.1 ports."""

    def __init__(self, *args, **kw):
        super().__init__(*args, http=True, **kw)


class Response:
    def __init__(self, status, headers, body, protocols):
        self.status = status          # the final status
        self.headers = headers        # of the final response, lowercase names
        self.body = body
        self.protocols = protocols    # e.g. ["HTTP/1.1 101", "HTTP/2 200"]

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return "Response(%s, %s, %r)" % (self.protocols, self.headers, self.body[:300])


def curl(url, body=None, ctype=None, mode="http1.1", gzip_it=False, method=None, headers=(),
         timeout=20):
    """One request with the curl binary. mode: http1.1, h2 (prior knowledge), upgrade (h2c
    upgrade from HTTP/1.1, curl --http2)."""
    import gzip as _gzip
    tmp = tempfile.mkdtemp(prefix="curl-")
    try:
        args = ["curl", "-sS", "--max-time", str(timeout * SLOW), "-D", os.path.join(tmp, "h"),
                "-o", os.path.join(tmp, "b")]
        args += {"http1.1": ["--http1.1"], "h2": ["--http2-prior-knowledge"], "upgrade": ["--http2"]}[mode]
        if method:
            args += ["-X", method]
        if ctype:
            args += ["-H", "Content-Type: " + ctype]
        for h in headers:
            args += ["-H", h]
        if body is not None:
            data = _gzip.compress(body) if gzip_it else body
            if gzip_it:
                args += ["-H", "Content-Encoding: gzip"]
            with open(os.path.join(tmp, "req"), "wb") as f:
                f.write(data)
            args += ["--data-binary", "@" + os.path.join(tmp, "req")]
        args.append(url)
        p = subprocess.run(args, capture_output=True, timeout=timeout * SLOW + 10)
        if p.returncode != 0:
            raise RuntimeError("curl failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
        return parse_head(open(os.path.join(tmp, "h"), "rb").read(), open(os.path.join(tmp, "b"), "rb").read())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_head(raw, body):
    """curl -D output: possibly several response heads (100, 101, final)."""
    protocols, headers, status = [], {}, None
    for block in raw.decode("latin-1").split("\r\n\r\n"):
        lines = [l for l in block.split("\r\n") if l]
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        parts = lines[0].split(" ")
        status = int(parts[1])
        protocols.append(parts[0] + " " + parts[1])
        headers = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    return Response(status, headers, body, protocols)


def raw_exchange(port, data, timeout=5, read_until_close=True):
    """Sends raw bytes over one TCP connection and returns what comes back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()


def parse_raw_responses(data):
    """Splits raw HTTP/1.1 responses (with Content-Length) into (status, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def decode_status(body):
    st = rpc_status.Status()
    st.ParseFromString(body)
    return st


# ---------------------------------------------------------------- OTLP/JSON by the reference lib

def _ids_to_hex(node, keys):
    """json_format writes bytes as base64; OTLP/JSON wants trace/span/profile ids in hex."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k in keys and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _ids_to_hex(v, keys)
    elif isinstance(node, list):
        for v in node:
            _ids_to_hex(v, keys)


def to_otlp_json(msg, camel=True):
    """A message as OTLP/JSON: proto3 JSON by Google's json_format, ids then made hex,
    enums as integers (OTLP/JSON)."""
    d = json_format.MessageToDict(msg, preserving_proto_field_name=not camel,
                                  use_integers_for_enums=True)
    _ids_to_hex(d, ID_KEYS if camel else ID_KEYS_SNAKE)
    return json.dumps(d).encode()


def fixture_request():
    """(bytes, parsed request) of the v1.11 fixture."""
    raw = fixtures.read()
    req = profiles_service.ExportProfilesServiceRequest()
    req.ParseFromString(raw)
    return raw, req
