#!/usr/bin/python3
"""Listen addresses in the forms people type: PORT, :PORT, HOST, HOST:PORT, localhost:PORT,
[V6]:PORT, a bare IPv6 address; where each listens (a real connection and an Export), the
warning for every address that is not loopback, and the hint for one that is not an address.

The expectations are written by hand from --help. Only loopback is ever listened on: the
every-interface forms (:PORT, [::]:PORT) run inside a network namespace of their own
(`unshare -n`, root) whose only interface is lo, with `lazybackend send` as the client there.
"""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import free_port, export  # noqa: E402

WARNING = "which is not loopback"
TMP = fx.tempdir("lb-listen-")


def start(address, family=socket.AF_INET):
    """The server on `address` (gRPC, no HTTP port); (process, stderr text so far) once its
    startup line is out or it exited."""
    p = subprocess.Popen([LB, "--grpc-address", address, "--http-address", "none"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = b""
    deadline = time.monotonic() + 10 * SLOW
    os.set_blocking(p.stderr.fileno(), False)
    while time.monotonic() < deadline and b"OTLP/gRPC on" not in err and p.poll() is None:
        time.sleep(0.05)
        err += p.stderr.read() or b""
    return p, err.decode(errors="replace")


def stop(p):
    p.terminate()
    try:
        p.wait(10 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def grpc_export(host, port):
    import grpc
    target = "%s:%d" % (host if ":" not in host else "[%s]" % host, port)
    ch = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
    try:
        return export(ch, fx.read()).status
    finally:
        ch.close()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def case_in_namespace(form, shown, port):
    """An every-interface form, in a network namespace that has only lo (with --insecure: without
    TLS or a token such an address is refused, test/e2e/tls.py)."""
    script = ('ip link set lo up || exit 3; "$0" --grpc-address "$1" --http-address none --insecure 2>"$2" & '
              'for i in $(seq 100); do grep -q "OTLP/gRPC on" "$2" && break; sleep 0.05; done; '
              '"$0" send --to "$3" "$4"; rc=$?; kill $!; wait; exit $rc')
    errfile = os.path.join(TMP, "ns-stderr")
    p = subprocess.run(["unshare", "-n", "sh", "-c", script, LB, form, errfile, str(port), fx.path()],
                       capture_output=True, timeout=60 * SLOW)
    err = open(errfile).read() if os.path.exists(errfile) else p.stderr.decode()
    check(f"--grpc-address {form}: listens on {shown}", f"OTLP/gRPC on {shown}," in err, err)
    check(f"--grpc-address {form}: an Export through loopback is OK", p.returncode == 0 and b": OK" in p.stdout,
          p.stdout + p.stderr)
    check(f"--grpc-address {form}: warns that it is not loopback", f"listens on {shown}, {WARNING}" in err, err)


def can_unshare():
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def case(form, shown, connect_host, port, loopback):
    p, err = start(form)
    try:
        check(f"--grpc-address {form}: listens on {shown}", f"OTLP/gRPC on {shown}," in err, err)
        check(f"--grpc-address {form}: an Export through {connect_host} is OK",
              grpc_export(connect_host, port) == "OK", err)
        if loopback:
            check(f"--grpc-address {form}: no warning (loopback)", WARNING not in err, err)
        else:
            check(f"--grpc-address {form}: warns that it is not loopback",
                  f"listens on {shown}, {WARNING}" in err, err)
    finally:
        stop(p)


def test_forms():
    port = free_port()
    case(str(port), "127.0.0.1:%d" % port, "127.0.0.1", port, True)
    port = free_port()
    case("localhost:%d" % port, "127.0.0.1:%d" % port, "127.0.0.1", port, True)
    port = free_port()
    case("127.0.0.1:%d" % port, "127.0.0.1:%d" % port, "127.0.0.1", port, True)
    if has_ipv6_loopback():
        port = free_port()
        case("[::1]:%d" % port, "[::1]:%d" % port, "::1", port, True)
    else:
        check("IPv6 form: skipped, this machine has no ::1 # SKIP", True)
    if can_unshare():
        case_in_namespace(":4317", "0.0.0.0:4317", 4317)
        case_in_namespace("[::]:4317", "[::]:4317", 4317)
    else:
        check("every-interface forms: skipped, no network namespace (needs root) # SKIP", True)


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_default_port():
    # HOST alone takes the port's default, 4317; only checked when 4317 is free here.
    if not port_free(4317):
        check("HOST alone: skipped, 127.0.0.1:4317 is in use on this machine # SKIP", True)
        return
    case("127.0.0.1", "127.0.0.1:4317", "127.0.0.1", 4317, True)
    if has_ipv6_loopback():
        case("::1", "[::1]:4317", "::1", 4317, True)


def test_not_an_address():
    for form in ("nowhere", "127.0.0.1:99999", "1.2.3.4.5:80"):
        p, err = start(form)
        rc = p.wait(10 * SLOW)
        err += p.stderr.read().decode(errors="replace")
        check(f"--grpc-address {form}: exit 1 with the forms it takes",
              rc == 1 and "cannot listen on" in err and "the forms: 4317, :4317" in err, err)
    rc, _, err = fx_run("--grpc-address", "")
    check("--grpc-address '': exit 2", rc == 2 and "--grpc-address" in err, err)


def fx_run(*args):
    p = subprocess.run([LB, *args], capture_output=True, timeout=30 * SLOW)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


run("forms", test_forms)
run("default port", test_default_port)
run("not an address", test_not_an_address)
done()
