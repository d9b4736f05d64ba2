#!/usr/bin/python3
"""static_binary.py - the binary `make static` ships (docs/static-build.md) is what it says:
fully static, stripped, at most MAX_SIZE, its .sha256 right, and every feature working on a
node that has nothing else: run inside an empty chroot (a directory holding only the binary
and one fixture), it decodes the fixture, serves OTLP over gRPC and HTTP to clients outside
(the chroot shares the network), in cleartext and over TLS with a token, sends with its own
client (libcurl, HTTP/2 and HTTP/1.1, with and without TLS), stores into SQLite and delivers to
ClickHouse over libcurl.

Why a chroot: "runs on any x86-64 Linux" is only shown by a run where no library, no loader,
no /etc and no /dev exist. Expectations come from outside the binary: the fixture's folded
file and expect.json, `file`, `ldd`, readelf and Python's hashlib.

Environment: LAZYBACKEND_STATIC (the static binary; default dist/lazybackend-VERSION-linux-
ARCH of this checkout), FIXTURES. Skips (one `# SKIP` line) when the binary was not built;
the chroot part needs root and says so when skipped.
"""
import atexit
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# 6 MiB: 1.8 MB before TLS, 4.7 MB with OpenSSL (docs/static-build.md). libssl and libcrypto
# add 2.9 MB even cut down to TLS 1.2/1.3: OpenSSL 3's default provider reaches every algorithm
# compiled in through its dispatch tables, so --gc-sections cannot drop them. The rest is
# headroom for the project's own growth, not for another library.
MAX_SIZE = 6 * 1024 * 1024


def static_path():
    if os.environ.get("LAZYBACKEND_STATIC"):
        return os.environ["LAZYBACKEND_STATIC"]
    with open(os.path.join(ROOT, "cmd", "version.h")) as f:
        version = re.search(r'#define LAZYBACKEND_VERSION "([^"]+)"', f.read()).group(1)
    return os.path.join(ROOT, "dist", "lazybackend-%s-linux-%s" % (version, os.uname().machine))


STATIC = static_path()
if not os.path.isfile(STATIC):
    shown = os.path.relpath(STATIC, ROOT) if STATIC.startswith(ROOT + os.sep) else STATIC
    print("ok - static binary # SKIP %s not built (make static)" % shown)
    sys.exit(0)

# The shared helpers (fixtures.py, server.py) run the binary named by LAZYBACKEND: here a
# wrapper that starts the static binary inside the chroot, so a Server is the chrooted binary.
WORK = tempfile.mkdtemp(prefix="lb-static-")
JAIL = os.path.join(WORK, "jail")
WRAPPER = os.path.join(WORK, "in-chroot")
os.environ["LAZYBACKEND"] = WRAPPER

sys.path.insert(0, os.path.join(HERE, "lib"))
from tap import check, run, done, failed  # noqa: E402
import fixtures as fx  # noqa: E402
import server  # noqa: E402

FOLDED = fx.folded()
EXPECT = fx.expect()
FIXTURE = "/" + fx.FIXTURE                 # the fixture's path inside the chroot
CAN_CHROOT = os.geteuid() == 0


@atexit.register
def _cleanup():
    if failed():
        print("# files kept in " + WORK, flush=True)
    else:
        shutil.rmtree(WORK, ignore_errors=True)


def tool(*argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


# --------------------------------------------------------------------------- the file

def test_file():
    rc, out = tool("file", "-b", STATIC)
    check("file: an x86-64 ELF executable (or this machine's arch)",
          out.startswith("ELF 64-bit") and ("x86-64" in out or os.uname().machine != "x86_64"), out)
    check("file: statically linked, no interpreter", "statically linked" in out and "interpreter" not in out, out)
    check("file: stripped", ", stripped" in out, out)
    rc, out = tool("ldd", STATIC)
    check("ldd: not a dynamic executable", "not a dynamic executable" in out, out)
    rc, out = tool("readelf", "-lW", STATIC)
    check("readelf: no INTERP and no DYNAMIC segment", rc == 0 and " INTERP " not in out and " DYNAMIC " not in out,
          out)
    size = os.path.getsize(STATIC)
    check("size %d bytes <= 6 MiB (%d)" % (size, MAX_SIZE), size <= MAX_SIZE)


def test_sha256():
    name = os.path.basename(STATIC)
    check("named lazybackend-VERSION-linux-ARCH",
          re.fullmatch(r"lazybackend-[0-9][^-]*-linux-" + re.escape(os.uname().machine), name) is not None, name)
    try:
        with open(STATIC + ".sha256") as f:
            line = f.read()
    except OSError as e:
        check("the .sha256 beside the binary exists", False, e)
        return
    with open(STATIC, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(".sha256: one line in sha256sum format naming the file", line == "%s  %s\n" % (digest, name),
          "%r, binary's sha256 %s" % (line, digest))
    rc, out = tool("sh", "-c", 'cd "$(dirname "$1")" && sha256sum -c "$(basename "$1").sha256"', "-", STATIC)
    check("sha256sum -c accepts it", rc == 0, out)


# --------------------------------------------------------------------------- in an empty chroot

def make_jail():
    os.mkdir(JAIL)
    shutil.copy2(STATIC, os.path.join(JAIL, "lazybackend"))
    shutil.copy(fx.path(), os.path.join(JAIL, fx.FIXTURE))
    with open(WRAPPER, "w") as f:
        f.write('#!/bin/sh\nexec chroot "%s" /lazybackend "$@"\n' % JAIL)
    os.chmod(WRAPPER, 0o755)


def jail_files():
    return sorted(os.listdir(JAIL))


def test_decode():
    check("the chroot holds only the binary and the fixture", jail_files() == sorted(["lazybackend", fx.FIXTURE]),
          jail_files())
    rc, out, err = server.run_cli("decode", "--format", "folded", FIXTURE)
    check("chroot: decode --format folded is byte-identical to ebpf-jvm-go.folded", rc == 0 and out == FOLDED,
          err or fx.first_difference(out, FOLDED))
    rc, out, err = server.run_cli("decode", FIXTURE)
    c = fx.text_counts(out).counts
    check("chroot: decode (text) shows expect.json's samples and frames",
          rc == 0 and c["samples"] == EXPECT["samples"] and c["frames"] == EXPECT["frames"], err or c)


def test_serve():
    import httpgen as hg
    srv = hg.Server("--format", "folded")
    try:
        r = srv.export(fx.read())
        check("chroot: serve, gRPC Export from outside: OK", r.status == "OK", r)
        out = srv.wait_stdout(lambda o: len(o) >= len(FOLDED))
        check("chroot: the gRPC request's folded output is ebpf-jvm-go.folded", out == FOLDED,
              fx.first_difference(out, FOLDED))
        r = srv.export(fx.read(), gzip=True)
        check("chroot: gRPC Export, gzip: OK", r.status == "OK", r)
        r = hg.curl(srv.url + hg.PROFILES, fx.read(), hg.PB)
        check("chroot: OTLP/HTTP POST from outside: 200", r.status == 200, r)
        r = hg.curl(srv.url + hg.PROFILES, fx.read(), hg.PB, mode="h2", gzip_it=True)
        check("chroot: OTLP/HTTP over h2c, gzip: 200", r.status == 200, r)
        # The other way round: the chrooted `send` (libcurl, HTTP/2 over nghttp2) as the client.
        rc, out, err = server.run_cli("send", "--grpc", "--to", str(srv.grpc_port), FIXTURE)
        check("chroot: send --grpc (libcurl over HTTP/2) to the server: exit 0", rc == 0, out + err.encode())
        rc, out, err = server.run_cli("send", "--http", "--gzip", "--to", str(srv.http_port), FIXTURE)
        check("chroot: send --http --gzip to the server: exit 0", rc == 0, out + err.encode())
        out = srv.wait_stdout(lambda o: len(o) >= 6 * len(FOLDED))
        check("chroot: six requests, six copies of the folded stacks", out == FOLDED * 6, "%d bytes" % len(out))
        check("chroot: server exits 0 on SIGTERM", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def test_tls():
    """OpenSSL inside the binary: TLS and a token on both ports, a client outside, and the
    chrooted `send` (libcurl over the same OpenSSL) as a TLS client."""
    import grpc
    for args in (["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                  "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=static-ca"],
                 ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
                  "-out", "server.csr", "-subj", "/CN=localhost"]):
        subprocess.run(["openssl", *args], cwd=WORK, capture_output=True, check=True)
    with open(os.path.join(WORK, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "1",
                    "-extfile", "san.ext", "-out", "server.crt"], cwd=WORK, capture_output=True, check=True)
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(os.path.join(WORK, name), os.path.join(JAIL, name))
    with open(os.path.join(JAIL, "tokens"), "w") as f:
        f.write("static-token\n")
    srv = server.Server("--format", "folded", "--tls-cert", "/server.crt", "--tls-key", "/server.key",
                        "--auth-token-file", "/tokens", http=True)
    try:
        creds = grpc.ssl_channel_credentials(open(os.path.join(WORK, "ca.crt"), "rb").read())
        ch = grpc.secure_channel("127.0.0.1:%d" % srv.grpc_port, creds, options=[("grpc.enable_http_proxy", 0)])
        try:
            ch.unary_unary(server.PROFILES_EXPORT)(fx.read(), timeout=10, metadata=(("authorization", "Bearer static-token"),))
            status = "OK"
        except grpc.RpcError as e:
            status = e.code().name
        ch.close()
        check("chroot: gRPC over TLS with a token from outside (grpcio): OK", status == "OK", status)
        rc, out, err = server.run_cli("send", "--tls", "--cacert", "/ca.crt", "--token-file", "/tokens",
                                      "--to", str(srv.grpc_port), FIXTURE)
        check("chroot: send --tls --cacert --token-file (libcurl + OpenSSL, HTTP/2 by ALPN): exit 0", rc == 0,
              out + err.encode())
        rc, out, err = server.run_cli("send", "--http", "--cacert", "/ca.crt", "--token-file", "/tokens",
                                      "--to", "https://127.0.0.1:%d" % srv.http_port, FIXTURE)
        check("chroot: send --http to https:// with a token: exit 0", rc == 0, out + err.encode())
        rc, out, err = server.run_cli("send", "--tls", "--cacert", "/ca.crt", "--to", str(srv.grpc_port), FIXTURE)
        check("chroot: send without the token: refused, gRPC status 16", rc == 1 and b"gRPC status 16" in out,
              out + err.encode())
        out = srv.wait_stdout(lambda o: len(o) >= 3 * len(FOLDED))
        check("chroot: three accepted requests, three copies of the folded stacks", out == FOLDED * 3,
              "%d bytes" % len(out))
        check("chroot: TLS server exits 0 on SIGTERM", srv.stop() == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()


def test_sqlite():
    srv = server.Server("--sink", "sqlite", "--sqlite-path", "/store.db")
    try:
        r = srv.export(fx.read())
        check("chroot: gRPC Export into the sqlite sink: OK", r.status == "OK", r)
        check("chroot: sqlite server exits 0 on SIGTERM", srv.stop(timeout=30) == 0, srv.stderr()[-1500:])
    finally:
        srv.cleanup()
    db = os.path.join(JAIL, "store.db")
    if not check("chroot: the database was written inside the chroot", os.path.isfile(db), jail_files()):
        return
    con = sqlite3.connect(db)
    try:
        n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
        ok = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    check("chroot: the database holds the fixture's %d samples (read by Python's sqlite3)" % EXPECT["samples"],
          n == EXPECT["samples"], n)
    check("chroot: integrity_check ok", ok == [("ok",)], ok)
    rc, out, err = server.run_cli("folded", "--db", "/store.db")
    check("chroot: folded --db over it is ebpf-jvm-go.folded", rc == 0 and out == FOLDED,
          err or fx.first_difference(out, FOLDED))


def test_clickhouse():
    if not os.path.exists("/usr/sbin/clickhouse-server"):
        print("ok - chroot: ClickHouse over libcurl # SKIP clickhouse-server not installed")
        return
    sys.path.insert(0, HERE)
    import clickhouse_common as cc
    ch = cc.ClickHouse()
    try:
        ch.start()
        rc, _, err = server.run_cli("decode", "--sink", "clickhouse", "--clickhouse-url", ch.url,
                                    "--clickhouse-database", "lb_static", "--clickhouse-durability", "memory",
                                    FIXTURE)
        check("chroot: decode --sink clickhouse (libcurl to 127.0.0.1) exits 0", rc == 0, err[-1500:])
        n = ch.try_scalar("SELECT count() FROM lb_static.samples FINAL")
        check("chroot: ClickHouse holds the fixture's %d samples" % EXPECT["samples"], n == EXPECT["samples"], n)
    finally:
        ch.stop()
        ch.cleanup(keep=failed() > 0)


run("the file", test_file)
run("sha256", test_sha256)
if CAN_CHROOT:
    make_jail()
    run("decode in a chroot", test_decode)
    run("serve in a chroot", test_serve)
    run("TLS in a chroot", test_tls)
    run("sqlite in a chroot", test_sqlite)
    run("clickhouse from a chroot", test_clickhouse)
else:
    print("ok - static binary in an empty chroot # SKIP chroot needs root")
done()
