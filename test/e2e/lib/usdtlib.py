"""What the `lazybackend usdt` end-to-end scripts share: running the bridge, reading its
summary line, the spans a real lazybackend server printed (--format json), and a fake OTLP
receiver whose answers a test scripts (503 with Retry-After, 400, partial success, silence).

Why a fake receiver beside the real server: the retry rules are about what the receiver
answers and what the bridge then sends again, which only a receiver that records every
request and answers as told can show. It decodes the bodies with Google's protobuf runtime
(the reference library, not our encoder), and gzip with Python's zlib.
"""
import gzip
import http.server
import json
import os
import re
import subprocess
import threading
import time

import httpgen as hg
from fixtures import LB, SLOW

T0 = 1796400430172630642          # above 2^53 and not a multiple of 256: a double rounds it


def start_line(reqid, ts, envelope=True):
    """bpftrace's printf envelope (0.17 spacing), or the bare event line."""
    rid = json.dumps(reqid) if isinstance(reqid, str) else str(reqid)
    inner = '{"event":"request_start","reqid":%s,"timestamp":%d}' % (rid, ts)
    return envelope_of(inner) if envelope else inner


def end_line(reqid, duration, start=None, envelope=True):
    rid = json.dumps(reqid) if isinstance(reqid, str) else str(reqid)
    inner = '{"event":"request_end","reqid":%s,%s"duration":%d}' % (
        rid, '' if start is None else '"start":%d,' % start, duration)
    return envelope_of(inner) if envelope else inner


def envelope_of(inner):
    return '{"type": "printf", "data": %s}' % json.dumps(inner + "\n")


def run_bridge(*args, stdin=None, env=None, timeout=60):
    """(exit code, stderr text) of `lazybackend usdt ARGS`."""
    full_env = dict(os.environ)
    for k in list(full_env):
        if k.startswith("OTEL_"):
            del full_env[k]
    full_env.update(env or {})
    p = subprocess.run([LB, "usdt", *args], input=stdin, capture_output=True, env=full_env,
                       timeout=timeout * SLOW)
    return p.returncode, p.stderr.decode(errors="replace")


def summary(stderr):
    """The counters of the bridge's last "usdt: summary" line, as a dict (empty if none)."""
    lines = [l for l in stderr.splitlines() if "usdt: summary " in l]
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


def server_spans(srv, want=None, timeout=10):
    """The spans a real server printed (its --format json lines, each a dict), waiting until
    `want` of them are there (or the timeout)."""
    def spans(out):
        return [json.loads(l) for l in out.decode().splitlines() if l.startswith("{") and '"span"' in l]
    out = srv.wait_stdout(lambda o: want is None or len(spans(o)) >= want, timeout)
    if want is None:
        time.sleep(0.3 * SLOW)
        out = srv.stdout()
    return spans(out)


def attrs(span_line):
    """A printed span's attributes as {key: value}."""
    return {a["key"]: a["value"] for a in span_line["span"]["attributes"]}


class Receiver:
    """A fake OTLP/HTTP receiver on 127.0.0.1. `answers` is a list of (status, headers,
    body, delay seconds) used one per request in order; the last one repeats. Every request
    is kept in `requests` as a dict: path, headers (lowercase), body (decompressed), time,
    and spans (decoded ExportTraceServiceRequest spans, protobuf or JSON)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with outer.lock:
                    n = len(outer.requests)
                    outer.requests.append({"path": self.path, "time": time.monotonic(), "body": body,
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "spans": outer.decode(body, self.headers.get("Content-Type", ""))})
                    status, headers, answer, delay = outer.answers[min(n, len(outer.answers) - 1)]
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:   # the bridge gave up waiting (a timeout test): nobody to answer
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def decode(body, ctype):
        req = hg.trace_service.ExportTraceServiceRequest()
        try:
            if "json" in ctype:
                from google.protobuf import json_format
                doc = json.loads(body)
                for rs in doc.get("resourceSpans", []):   # hex ids to base64 for json_format
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            for k in ("traceId", "spanId"):
                                import base64
                                sp[k] = base64.b64encode(bytes.fromhex(sp[k])).decode()
                json_format.ParseDict(doc, req)
            else:
                req.ParseFromString(body)
        except Exception:  # noqa: BLE001 - an undecodable body is recorded as no spans
            return None
        return req

    def spans(self):
        """Every span of every request received, in order, with its request's resource."""
        out = []
        for r in self.requests:
            for rs in (r["spans"].resource_spans if r["spans"] else []):
                for ss in rs.scope_spans:
                    out.extend((rs.resource, ss.scope, sp) for sp in ss.spans)
        return out

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def partial_success_body(rejected, message):
    """ExportTraceServiceResponse{partial_success{rejected_spans, error_message}}, by hand."""
    inner = bytes([0x08, rejected]) + bytes([0x12, len(message)]) + message.encode()
    return bytes([0x0a, len(inner)]) + inner
