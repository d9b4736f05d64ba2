"""The binary under test, for the end-to-end scripts: one-shot commands (`lazybackend
decode ...`), and a server on free 127.0.0.1 ports that is waited for, called over gRPC with
grpcio, and stopped with SIGTERM so that its exit code can be checked.

Why: every script started, waited for and stopped the server its own way (and called
Export its own way). One careful version: the probed free port may be taken before the
server binds it (three tries), every wait is bounded (stretched under sanitizers), a server
that hangs on SIGTERM is killed and reported as such (exit code None), and its output stays
in files for the checks and for a look when a check failed. Only 127.0.0.1 is used.
"""
import collections
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import tap
from fixtures import LB, SLOW

PROFILES_EXPORT = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def run_cli(*args, stdin=None, timeout=120):
    """(exit code, stdout bytes, stderr text) of one run of the binary with these arguments."""
    p = subprocess.run([LB, *args], input=stdin, capture_output=True, timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def free_port():
    """A port free on 127.0.0.1 right now (another process may take it before we bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connects(port):
    """True when a TCP connection to 127.0.0.1:port is accepted right now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_logged(argv, env=None):
    """The binary run with `argv` (after its path), stderr read until its gRPC port is
    announced or it exited (bounded): (process, that stderr text)."""
    p = subprocess.Popen([LB, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    os.set_blocking(p.stderr.fileno(), False)
    err, deadline = b"", time.monotonic() + 10 * SLOW
    while b"OTLP/gRPC on" not in err and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        err += p.stderr.read() or b""
    return p, err.decode(errors="replace")


def terminate(p, timeout=10):
    """SIGTERM (unless it exited), then its exit code; None when it hung (it is then killed)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def wait_until(cond, timeout, step=0.05):
    """Polls cond() until it holds or `timeout` seconds passed; the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def channel(port):
    """An insecure grpcio channel to 127.0.0.1:port that ignores any proxy settings."""
    import grpc
    return grpc.insecure_channel("127.0.0.1:%d" % port, options=[("grpc.enable_http_proxy", 0)])


# status: the grpc status name ("OK", "INVALID_ARGUMENT", ...); code: its number.
Reply = collections.namedtuple("Reply", "status code details body seconds")


def export(ch, body, method=PROFILES_EXPORT, gzip=False, timeout=10 * SLOW):
    """One unary call with raw bytes on a grpcio channel; never raises for a gRPC error."""
    import grpc
    comp = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    t0 = time.monotonic()
    try:
        resp = ch.unary_unary(method)(body, timeout=timeout, compression=comp)
        return Reply("OK", 0, "", resp, time.monotonic() - t0)
    except grpc.RpcError as e:
        return Reply(e.code().name, e.code().value[0], e.details() or "", b"", time.monotonic() - t0)


class Server:
    """The real binary serving OTLP/gRPC (and OTLP/HTTP when http=True) on free 127.0.0.1
    ports, stdout and stderr in files of its directory (`dir`, else a new temporary one;
    stderr is appended to, so restarts in one directory keep the whole log). umask: set
    in the child, for tests that check the modes of the files it creates."""

    def __init__(self, *args, http=False, dir=None, umask=None):
        self._own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="lb-server-")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.channel = None
        self._channels = []
        for _ in range(3):   # the probed port may be taken before the server binds it: retry
            self.grpc_port = free_port()
            self.http_port = free_port() if http else None
            argv = [LB, "--grpc-address", "127.0.0.1:%d" % self.grpc_port]
            if http:
                argv += ["--http-address", "127.0.0.1:%d" % self.http_port]
            self._out = open(self.stdout_path, "wb")
            self._err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(argv + list(args), stdout=self._out, stderr=self._err,
                                         preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
            if self._wait_ports():
                self.channel = self.new_channel()
                return
            self.kill()
        raise RuntimeError("lazybackend did not start:\n" + self.stderr()[-2000:])

    def _wait_ports(self):
        ports = [p for p in (self.grpc_port, self.http_port) if p]
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                for p in ports:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def port(self):
        return self.grpc_port

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def new_channel(self):
        """Another grpcio channel (a new connection once used); closed by stop()."""
        ch = channel(self.grpc_port)
        self._channels.append(ch)
        return ch

    def export(self, body, method=PROFILES_EXPORT, gzip=False, timeout=10 * SLOW, channel=None):
        """A Reply; on the server's own channel unless another is given."""
        return export(channel or self.channel, body, method, gzip, timeout)

    def send(self, body, **kw):
        """An Export that must succeed: raises (failing the test function) otherwise."""
        r = self.export(body, **kw)
        if r.status != "OK":
            raise RuntimeError("Export failed: %s %s" % (r.status, r.details))
        return r.body

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
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

    def rss_kb(self):
        """The server's resident memory (VmRSS), 0 when it cannot be read."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self, timeout=10):
        """Closes the channels, sends SIGTERM and waits; the exit code, None if it hung (it
        is then killed)."""
        self._close_channels()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            rc = None
        self.kill()
        return rc

    def kill(self):
        """SIGKILL if still running; closes the channels and the log files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_channels()
        self._out.close()
        self._err.close()

    def _close_channels(self):
        for ch in self._channels:
            ch.close()
        self._channels = []

    def cleanup(self, keep=None):
        """Kills it if still running; removes the directory it made unless a check failed
        (or keep)."""
        self.kill()
        if not self._own_dir:
            return
        if keep is None:
            keep = tap.failed() > 0
        if keep:
            print("# server logs kept in " + self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
