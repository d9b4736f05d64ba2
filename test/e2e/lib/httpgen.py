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
import signal
import socket
import subprocess
import sys
import tempfile
import time

from google.protobuf import json_format

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_OUT = tempfile.mkdtemp(prefix="httpgen-")
# google.rpc.Status, the body of OTLP/HTTP errors (field numbers from the OTLP spec); written
# here so the test decodes it with the reference library, not with our encoder.
with open(os.path.join(_OUT, "rpc_status.proto"), "w") as _f:
    _f.write('syntax = "proto3";\npackage google.rpc;\n'
             "message Status { int32 code = 1; string message = 2; }\n")
subprocess.run(["protoc", "-I", os.path.join(_ROOT, "pb"), "--python_out", _OUT,
                "common.proto", "profiles.proto", "profiles_service.proto", "trace.proto",
                "trace_service.proto"], check=True)
subprocess.run(["protoc", "-I", _OUT, "--python_out", _OUT, "rpc_status.proto"],
               check=True)
sys.path.insert(0, _OUT)

import common_pb2 as common              # noqa: E402,F401
import profiles_service_pb2 as profiles_service  # noqa: E402
import trace_pb2 as trace                # noqa: E402
import trace_service_pb2 as trace_service  # noqa: E402
import rpc_status_pb2 as rpc_status      # noqa: E402

LB = os.environ.get("LAZYBACKEND", os.path.join(_ROOT, "lazybackend"))
FIX = os.environ.get("FIXTURES", "/work/shared/fixtures/otlp")
SANITIZED = os.environ.get("SANITIZE") == "1"
SLOW = 3 if SANITIZED else 1
PROFILES = "/v1development/profiles"
TRACES = "/v1/traces"
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = "application/x-protobuf"
JSON = "application/json"
ID_KEYS = {"traceId", "spanId", "parentSpanId", "profileId"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real binary with a gRPC and an HTTP port on free 127.0.0.1 ports."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="lb-http-")
        self.proc = None
        for _ in range(3):   # a free port may be taken between probe and bind: retry
            self.grpc_port, self.http_port = free_port(), free_port()
            self.out = open(os.path.join(self.dir, "stdout"), "wb")
            self.err = open(os.path.join(self.dir, "stderr"), "wb")
            self.proc = subprocess.Popen(
                [LB, "--grpc-address", "127.0.0.1:%d" % self.grpc_port,
                 "--http-address", "127.0.0.1:%d" % self.http_port, *args],
                stdout=self.out, stderr=self.err)
            if self._wait_port():
                return
            self.kill()
        raise RuntimeError("server did not start: " + self.stderr())

    def _wait_port(self):
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def stdout(self):
        self.out.flush()
        with open(os.path.join(self.dir, "stdout"), "rb") as f:
            return f.read()

    def stderr(self):
        self.err.flush()
        with open(os.path.join(self.dir, "stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_stdout(self, predicate, timeout=5):
        """Waits (bounded) until predicate(stdout bytes) holds; returns the last stdout."""
        deadline = time.monotonic() + timeout * SLOW
        out = self.stdout()
        while not predicate(out) and time.monotonic() < deadline:
            time.sleep(0.05)
            out = self.stdout()
        return out

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM; returns the exit code (None if it hung and had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            rc = None
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.out.close()
        self.err.close()

    def cleanup(self, keep=False):
        self.kill()
        if keep:
            print("# server logs kept in " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


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

def _ids_to_hex(node):
    """json_format writes bytes as base64; OTLP/JSON wants trace/span/profile ids in hex."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k in ID_KEYS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _ids_to_hex(v)
    elif isinstance(node, list):
        for v in node:
            _ids_to_hex(v)


def to_otlp_json(msg, camel=True):
    """A message as OTLP/JSON: proto3 JSON by Google's json_format, ids then made hex,
    enums as integers (OTLP/JSON)."""
    d = json_format.MessageToDict(msg, preserving_proto_field_name=not camel,
                                  use_integers_for_enums=True)
    if camel:
        _ids_to_hex(d)
    else:
        _ids_to_hex_snake(d)
    return json.dumps(d).encode()


def _ids_to_hex_snake(node):
    keys = {"trace_id", "span_id", "parent_span_id", "profile_id"}
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k in keys and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _ids_to_hex_snake(v)
    elif isinstance(node, list):
        for v in node:
            _ids_to_hex_snake(v)


def fixture_request():
    raw = open(os.path.join(FIX, "ebpf-jvm-go.v1.11.pb"), "rb").read()
    req = profiles_service.ExportProfilesServiceRequest()
    req.ParseFromString(raw)
    return raw, req
