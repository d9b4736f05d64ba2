#!/usr/bin/python3
"""tls.py - TLS and bearer tokens on both ports, with real clients: grpcio's
ssl_channel_credentials (with and without a client certificate), curl --cacert/--cert/--key,
`openssl s_client` for the protocol versions and ALPN, Python's ssl module for a connection
held open across a reload, and `lazybackend send`'s client options.

Why: a receiver reachable from the network must refuse whoever has no token or no trusted
certificate, must never fall back to an old protocol version, and must take a renewed
certificate without dropping the connections it serves. Every certificate is made here with
the openssl command line (a CA for the server, one for clients, a rogue one, an expired
client certificate); the expectations are written from the TLS and RFC 6750 rules, and the
data delivered is counted against the fixture's expect.json.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import httpgen as hg  # noqa: E402
import scrape  # noqa: E402
from fixtures import LB, SLOW  # noqa: E402
from server import PROFILES_EXPORT, Server, free_port, run_cli, wait_until  # noqa: E402

TMP = fx.tempdir("lb-tls-")
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
PROFILES_HTTP = "/v1development/profiles"
TOKENS = ("first-token_1", "second.token+2/==")


def path(name):
    return os.path.join(TMP, name)


def openssl(*args):
    p = subprocess.run(["openssl", *args], capture_output=True, cwd=TMP, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def make_ca(name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "3", "-subj", "/CN=" + name)


def make_cert(name, ca, serial, days="2", client=False):
    """A certificate signed by `ca`: for 127.0.0.1/localhost, or a client's."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
    with open(path(name + ".ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n" if client else
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-set_serial", serial, "-days", days, "-extfile", name + ".ext", "-out", name + ".crt")


def make_all():
    make_ca("server-ca")
    make_cert("server1", "server-ca", "0x1001")
    make_cert("server2", "server-ca", "0x1002")
    make_ca("client-ca")
    make_cert("client", "client-ca", "0x2001", client=True)
    make_cert("client-expired", "client-ca", "0x2002", days="-1", client=True)
    make_ca("rogue-ca")
    make_cert("client-rogue", "rogue-ca", "0x2003", client=True)
    with open(path("tokens"), "w") as f:
        f.write("# agents\n%s\n\n  %s  \n" % TOKENS)
    os.chmod(path("tokens"), 0o644)


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


def tls_server(*extra, http=True):
    shutil.copy(path("server1.crt"), path("served.crt"))
    shutil.copy(path("server1.key"), path("served.key"))
    return Server("--tls-cert", path("served.crt"), "--tls-key", path("served.key"), *extra, http=http)


# ---------- clients ----------

def channel(port, cert=None, ca="server-ca.crt"):
    import grpc
    creds = grpc.ssl_channel_credentials(root_certificates=read(ca),
                                         private_key=read(cert + ".key") if cert else None,
                                         certificate_chain=read(cert + ".crt") if cert else None)
    return grpc.secure_channel("127.0.0.1:%d" % port, creds,
                               options=[("grpc.enable_http_proxy", 0), ("grpc.ssl_target_name_override", "localhost")])


def call(ch, body=None, token=None, method=PROFILES_EXPORT, timeout=10):
    """(status name, details) of one unary call; never raises for a gRPC error."""
    import grpc
    md = (("authorization", "Bearer " + token),) if token else None
    try:
        ch.unary_unary(method)(fx.read() if body is None else body, timeout=timeout * SLOW, metadata=md)
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


def curl(url, *args, token=None, data=None):
    """(curl exit code, HTTP status, HTTP version, response head, body) with the server CA."""
    h, b = path("curl.head"), path("curl.body")
    for f in (h, b):
        if os.path.exists(f):
            os.unlink(f)
    cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(20 * SLOW), "-D", h, "-o", b,
           "-w", "%{http_code} %{http_version}", "--cacert", path("server-ca.crt"), *args]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    if data is not None:
        with open(path("curl.req"), "wb") as f:
            f.write(data)
        cmd += ["-H", "Content-Type: application/x-protobuf", "--data-binary", "@" + path("curl.req")]
    p = subprocess.run(cmd + [url], capture_output=True, timeout=30 * SLOW)
    code, _, version = p.stdout.decode().partition(" ")
    head = open(h, "rb").read().decode(errors="replace") if os.path.exists(h) else ""
    body = open(b, "rb").read() if os.path.exists(b) else b""
    return p.returncode, code, version, head, body


def s_client(port, *args):
    """(exit code, output) of `openssl s_client` against 127.0.0.1:port, stdin closed."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
                        "-CAfile", path("server-ca.crt"), *args],
                       input=b"", capture_output=True, timeout=30 * SLOW)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def served_serial(port):
    """The serial number of the certificate a new connection is shown ("1002")."""
    _, out = s_client(port, "-alpn", "h2")
    begin, end = out.find("-----BEGIN CERTIFICATE-----"), out.find("-----END CERTIFICATE-----")
    if begin < 0 or end < 0:
        return None
    with open(path("shown.pem"), "w") as f:
        f.write(out[begin:end + 25] + "\n")
    return openssl("x509", "-in", "shown.pem", "-noout", "-serial").strip().split("=")[1]


def der_serial(der):
    with open(path("peer.der"), "wb") as f:
        f.write(der)
    return openssl("x509", "-inform", "DER", "-in", "peer.der", "-noout", "-serial").strip().split("=")[1]


def samples_delivered(srv, n):
    want = fx.expect()["samples"] * n
    out = srv.wait_stdout(lambda o: fx.text_counts(o, "replace").counts["samples"] >= want)
    return fx.text_counts(out, "replace").counts["samples"]


def stop(srv):
    """SIGTERM; the exit must be clean (0: no sanitizer report, no leak)."""
    rc = srv.stop()
    check("the server stops with exit 0", rc == 0, srv.stderr()[-2000:])
    srv.cleanup()


def sighup(srv, log_line, count_before):
    os.kill(srv.proc.pid, signal.SIGHUP)
    return wait_until(lambda: srv.stderr().count(log_line) > count_before, 10 * SLOW)


# ---------- the tests ----------

def test_tokens_over_tls():
    srv = tls_server("--auth-token-file", path("tokens"))
    try:
        check("start-up line: TLS and a token", "TLS, bearer token required" in srv.stderr(), srv.stderr())
        check("a token file others can read (0644) is warned about",
              "the token file %s is readable by every user (mode 644): chmod 600 it" % path("tokens") in srv.stderr(),
              srv.stderr())
        check("a key only its owner reads (openssl's 0600) is not", "the TLS key" not in srv.stderr(), srv.stderr())
        ch = channel(srv.grpc_port)
        check("gRPC with the first token: OK", call(ch, token=TOKENS[0]) == ("OK", ""))
        check("gRPC with the second token: OK", call(ch, token=TOKENS[1])[0] == "OK")
        st, details = call(ch)
        check("gRPC without a token: UNAUTHENTICATED", st == "UNAUTHENTICATED" and "bearer token is required" in details,
              (st, details))
        st, details = call(ch, token="wrong")
        check("gRPC with a wrong token: UNAUTHENTICATED", st == "UNAUTHENTICATED" and "not accepted" in details,
              (st, details))
        check("gRPC with a prefix of a token: UNAUTHENTICATED", call(ch, token=TOKENS[0][:-1])[0] == "UNAUTHENTICATED")
        check("gRPC with a token and more: UNAUTHENTICATED", call(ch, token=TOKENS[0] + "x")[0] == "UNAUTHENTICATED")
        check("gRPC with a token of an unknown method: UNAUTHENTICATED before UNIMPLEMENTED",
              call(ch, method="/no.Such/Method")[0] == "UNAUTHENTICATED")
        check("gRPC health check without a token: OK (stays open)",
              call(ch, body=b"", method=HEALTH_CHECK)[0] == "OK")
        check("the two accepted Exports delivered every sample",
              samples_delivered(srv, 2) == 2 * fx.expect()["samples"])
        ch.close()

        url = "https://127.0.0.1:%d" % srv.http_port
        rc, code, version, head, _ = curl(url + PROFILES_HTTP, "--http1.1", token=TOKENS[1], data=fx.read())
        check("HTTP/1.1 over TLS with a token: 200", (rc, code, version) == (0, "200", "1.1"), (rc, code, version, head))
        rc, code, version, _, _ = curl(url + PROFILES_HTTP, "--http2", token=TOKENS[0], data=fx.read())
        check("HTTP/2 over TLS (ALPN h2) with a token: 200", (rc, code, version) == (0, "200", "2"), (rc, code, version))
        rc, code, _, head, body = curl(url + PROFILES_HTTP, "--http1.1", data=fx.read())
        check("HTTP without a token: 401", code == "401", (code, head))
        check("401's body: google.rpc.Status {16 UNAUTHENTICATED}, protobuf like the request",
              hg.decode_status(body).code == 16 and "bearer token is required" in hg.decode_status(body).message, body)
        check("401 without a token: WWW-Authenticate: Bearer realm, no error code",
              'www-authenticate: bearer realm="lazybackend"\r\n' in head.lower(), head)
        rc, code, _, head, _ = curl(url + PROFILES_HTTP, "--http2", token="wrong", data=fx.read())
        check("HTTP/2 with a wrong token: 401 with error=\"invalid_token\"",
              code == "401" and 'error="invalid_token"' in head, (code, head))
        check("/healthz without a token: 200", curl(url + "/healthz")[1] == "200")
        check("/metrics without a token: 401", curl(url + "/metrics")[1] == "401")
        rc, code, _, _, body = curl(url + "/metrics", token=TOKENS[0])
        check("/metrics with a token: 200, the page", code == "200" and b"# TYPE" in body, (code, body[:200]))
        check("an unknown path without a token: 401, not 404", curl(url + "/nowhere")[1] == "401")
        check("HTTP Exports delivered every sample", samples_delivered(srv, 4) == 4 * fx.expect()["samples"])

        # a body of several TLS records both ways: 3 MiB that is no request is read whole and refused
        rc, code, _, _, body = curl(url + PROFILES_HTTP, "--http1.1", token=TOKENS[0], data=b"\x0a\xff" * (3 << 19))
        check("3 MiB over TLS read whole: 400 (not a request), connection intact", (rc, code) == (0, "400"), (rc, code, body[:200]))

        import grpc
        plain = grpc.insecure_channel("127.0.0.1:%d" % srv.grpc_port, options=[("grpc.enable_http_proxy", 0)])
        st = call(plain, token=TOKENS[0], timeout=5)[0]
        plain.close()
        check("a cleartext gRPC client is refused (UNAVAILABLE)", st == "UNAVAILABLE", st)
        check("... and the log says it spoke cleartext",
              wait_until(lambda: "a cleartext client? this port speaks TLS" in srv.stderr(), 5 * SLOW), srv.stderr()[-1500:])

        # lazybackend send's client options
        code, out, err = run_cli("send", "--tls", "--cacert", path("server-ca.crt"), "--token-file", path("tokens"),
                                 "--to", "127.0.0.1:%d" % srv.grpc_port, fx.path())
        check("send --tls --cacert --token-file (gRPC): OK", code == 0 and b": OK" in out, (code, out, err))
        code, out, err = run_cli("send", "--tls", "--cacert", path("server-ca.crt"), "--to", "127.0.0.1:%d" % srv.grpc_port,
                                 fx.path())
        check("send without --token-file: gRPC status 16, exit 1", code == 1 and b"gRPC status 16" in out, (code, out, err))
        code, out, err = run_cli("send", "--http", "--cacert", path("server-ca.crt"), "--token-file", path("tokens"),
                                 "--to", "https://127.0.0.1:%d" % srv.http_port, fx.path())
        check("send --http to an https:// URL with a token: OK", code == 0 and b": OK" in out, (code, out, err))
        code, out, err = run_cli("send", "--tls", "--to", "127.0.0.1:%d" % srv.grpc_port, fx.path())
        check("send --tls without the CA: not sent (certificate not verified)", code == 1 and b"not sent" in out,
              (code, out, err))
        code, out, err = run_cli("send", "--cacert", path("server-ca.crt"), fx.path())
        check("send --cacert without --tls: exit 2", code == 2 and "need --tls" in err, (code, err))
        rc, code, _, _, body = curl(url + "/metrics", token=TOKENS[0])
        page = scrape.Page(body.decode())
        unauth = {p: page.value("lazybackend_unauthenticated_total", port=p) for p in ("grpc", "http")}
        check("/metrics: requests refused for want of a token, per port (6 gRPC, 4 HTTP sent above)",
              unauth == {"grpc": 6, "http": 4}, unauth)
        failures = {p: page.value("lazybackend_tls_handshake_failures_total", port=p) for p in ("grpc", "http")}
        check("/metrics: failed handshakes (a cleartext client, a client without the CA) on the gRPC port only; "
              "readiness probes not counted", failures["grpc"] >= 2 and failures["http"] == 0, failures)
        check("the server kept serving", srv.alive())
    finally:
        stop(srv)


def test_versions_and_alpn():
    srv = tls_server()
    try:
        for flag in ("-tls1", "-tls1_1"):
            rc, out = s_client(srv.grpc_port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
            check("%s offered by the client: the server refuses it (protocol_version alert)" % flag,
                  rc != 0 and "alert protocol version" in out, out[-1500:])
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(srv.grpc_port, flag, "-alpn", "h2")
            check("%s accepted, certificate verified" % name,
                  rc == 0 and "New, %s, Cipher is" % name in out and "Verify return code: 0 (ok)" in out,
                  out[out.find("---\nNew,"):][:1500])
        rc, out = s_client(srv.grpc_port, "-alpn", "h2")
        check("gRPC port: ALPN h2", rc == 0 and "ALPN protocol: h2" in out, out[-800:])
        rc, out = s_client(srv.grpc_port, "-alpn", "http/1.1")
        check("gRPC port: a client without h2 is refused (no_application_protocol)",
              rc != 0 and "no application protocol" in out, out[-800:])
        rc, out = s_client(srv.http_port, "-alpn", "h2,http/1.1")
        check("HTTP port: h2 preferred", rc == 0 and "ALPN protocol: h2" in out, out[-800:])
        rc, out = s_client(srv.http_port, "-alpn", "http/1.1")
        check("HTTP port: http/1.1", rc == 0 and "ALPN protocol: http/1.1" in out, out[-800:])
        rc, code, version, _, _ = curl("https://127.0.0.1:%d%s" % (srv.http_port, PROFILES_HTTP), "--http2", data=fx.read())
        check("no token configured: an HTTP/2 Export over TLS is taken", (rc, code, version) == (0, "200", "2"),
              (rc, code, version))
        check("start-up line: TLS, no authentication", "; TLS, no authentication" in srv.stderr(), srv.stderr())

        # HTTP/1.1 pipelining over TLS: five Exports and a last request with Connection: close
        # in one write; six answers in order, then the server closes (close_notify or EOF).
        ctx = ssl.create_default_context(cafile=path("server-ca.crt"))
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.http_port), timeout=20 * SLOW),
                            server_hostname="localhost")
        body = fx.read()
        post = (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: %d\r\n\r\n" % (PROFILES_HTTP.encode(), len(body))) + body
        s.sendall(post * 5 + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        check("HTTP/1.1 over TLS: 6 pipelined requests, 6 answers, then closed",
              got.count(b"HTTP/1.1 200 OK\r\n") == 6 and got.rstrip().endswith(b"ok"), got[-300:])
        check("... their samples delivered (1 HTTP/2 + 5 pipelined Exports)",
              samples_delivered(srv, 6) == 6 * fx.expect()["samples"])
    finally:
        stop(srv)


def test_mutual_tls():
    srv = tls_server("--tls-client-ca", path("client-ca.crt"))
    try:
        check("start-up line: client certificates required", "TLS, client certificates required" in srv.stderr(),
              srv.stderr())
        for cert, want in (("client", "OK"), (None, "UNAVAILABLE"), ("client-expired", "UNAVAILABLE"),
                           ("client-rogue", "UNAVAILABLE")):
            ch = channel(srv.grpc_port, cert=cert)
            st = call(ch, timeout=5)[0]
            ch.close()
            check("gRPC, client certificate %s: %s" % (cert or "none", want), st == want, st)
        url = "https://127.0.0.1:%d%s" % (srv.http_port, PROFILES_HTTP)
        rc, code, _, _, _ = curl(url, "--cert", path("client.crt"), "--key", path("client.key"), data=fx.read())
        check("curl --cert/--key: 200", (rc, code) == (0, "200"), (rc, code))
        for cert in (None, "client-expired", "client-rogue"):
            args = ["--cert", path(cert + ".crt"), "--key", path(cert + ".key")] if cert else []
            rc, code, _, _, _ = curl(url, *args, data=fx.read())
            check("curl, client certificate %s: refused in the handshake" % (cert or "none"), rc != 0 and code == "000",
                  (rc, code))
        log = srv.stderr()
        check("the log says why: no certificate, expired, unknown CA",
              "peer did not return a certificate" in log and "client certificate: certificate has expired" in log and
              "client certificate: unable to get local issuer certificate" in log, log[-3000:])
        check("port probes (connect, close) are not logged as failed handshakes", "peer closed" not in log, log[-3000:])
        code, out, err = run_cli("send", "--tls", "--cacert", path("server-ca.crt"), "--cert", path("client.crt"),
                                 "--key", path("client.key"), "--to", "127.0.0.1:%d" % srv.grpc_port, fx.path())
        check("send --cert --key: OK", code == 0 and b": OK" in out, (code, out, err))
        check("3 Exports with a trusted certificate delivered every sample",
              samples_delivered(srv, 3) == 3 * fx.expect()["samples"])
    finally:
        stop(srv)


def test_reload():
    shutil.copy(path("tokens"), path("reload-tokens"))
    srv = tls_server("--auth-token-file", path("reload-tokens"))
    try:
        check("serves serial 1001 at start", served_serial(srv.grpc_port) == "1001")
        ch = channel(srv.grpc_port)
        check("an Export before the reload", call(ch, token=TOKENS[0])[0] == "OK")
        ctx = ssl.create_default_context(cafile=path("server-ca.crt"))
        ctx.set_alpn_protocols(["http/1.1"])
        held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.http_port), timeout=10 * SLOW),
                               server_hostname="localhost")
        get = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        held.sendall(get)
        first = held.recv(4096)

        shutil.copy(path("server2.crt"), path("served.crt"))
        shutil.copy(path("server2.key"), path("served.key"))
        check("SIGHUP: reloaded", sighup(srv, "SIGHUP: TLS reloaded", 0), srv.stderr()[-1500:])
        check("a new connection is shown serial 1002", served_serial(srv.grpc_port) == "1002")
        held.sendall(get)
        second = held.recv(4096)
        check("a connection open across the reload keeps working (keep-alive, same TLS session)",
              first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200"), (first, second))
        check("... with the certificate it started with (1001)", der_serial(held.getpeercert(binary_form=True)) == "1001")
        held.close()
        check("the gRPC channel opened before the reload still exports", call(ch, token=TOKENS[0])[0] == "OK")

        with open(path("served.crt"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        check("SIGHUP with a broken certificate: not reloaded, said why",
              sighup(srv, "SIGHUP: TLS not reloaded, still serving the previous certificate: cannot load the certificate", 0),
              srv.stderr()[-1500:])
        check("... and serial 1002 is still served", served_serial(srv.grpc_port) == "1002")
        shutil.copy(path("server1.crt"), path("served.crt"))   # with server2's key: a mismatch
        check("SIGHUP with a key that does not match: not reloaded",
              sighup(srv, "the private key does not match the certificate", 0), srv.stderr()[-1500:])
        check("... and serial 1002 is still served", served_serial(srv.grpc_port) == "1002")

        with open(path("reload-tokens"), "w") as f:
            f.write("renewed-token\n")
        check("SIGHUP: tokens reloaded", sighup(srv, "SIGHUP: 1 bearer tokens reloaded", 0), srv.stderr()[-1500:])
        ch2 = channel(srv.grpc_port)
        check("the old token is refused now", call(ch2, token=TOKENS[0])[0] == "UNAUTHENTICATED")
        check("the new token is taken", call(ch2, token="renewed-token")[0] == "OK")
        with open(path("reload-tokens"), "w") as f:
            f.write("renewed-token\nnot a token\n")
        check("SIGHUP with a bad token file: the previous tokens kept, line named",
              sighup(srv, "tokens not reloaded, the previous 1 still accepted: %s: line 2" % path("reload-tokens"), 0),
              srv.stderr()[-1500:])
        check("... the new token still taken", call(ch2, token="renewed-token")[0] == "OK")
        ch.close()
        ch2.close()
        check("4 accepted Exports delivered every sample", samples_delivered(srv, 4) == 4 * fx.expect()["samples"])
        check("the server kept serving through every reload", srv.alive())
    finally:
        stop(srv)


def test_handshake_timeout():
    srv = tls_server("--request-timeout", "1", http=False)
    try:
        s = socket.create_connection(("127.0.0.1", srv.grpc_port), timeout=10 * SLOW)
        t0 = time.monotonic()
        got = s.recv(100)   # nothing sent: the server must give up on the handshake
        took = time.monotonic() - t0
        s.close()
        check("a client that never says hello is closed after the request timeout (1 s)",
              got == b"" and 0.8 < took < 5 * SLOW, (got, took))
        check("... and the log says so", "TLS handshake timeout" in srv.stderr(), srv.stderr()[-800:])
    finally:
        stop(srv)


def test_startup_refusals():
    def first_line(err):
        return err.strip().splitlines()[0] if err.strip() else ""
    code, _, err = run_cli("--tls-cert", path("server1.crt"))
    check("--tls-cert without --tls-key: exit 2", code == 2 and "--tls-cert and --tls-key go together" in err, err)
    code, _, err = run_cli("--tls-client-ca", path("client-ca.crt"))
    check("--tls-client-ca without TLS: exit 2", code == 2 and "needs TLS" in err, err)
    port = free_port()
    code, _, err = run_cli("--grpc-address", "127.0.0.1:%d" % port, "--http-address", "none",
                           "--tls-cert", path("missing.crt"), "--tls-key", path("server1.key"))
    check("a missing certificate: exit 1, says which file", code == 1 and "cannot load the certificate " +
          path("missing.crt") in err, err)
    code, _, err = run_cli("--grpc-address", "127.0.0.1:%d" % port, "--http-address", "none",
                           "--tls-cert", path("server1.crt"), "--tls-key", path("server2.key"))
    check("a key of another certificate: exit 1", code == 1 and "does not match the certificate" in err, err)
    with open(path("bad-tokens"), "w") as f:
        f.write("ok-token\nbad token\n")
    code, _, err = run_cli("--grpc-address", "127.0.0.1:%d" % port, "--http-address", "none",
                           "--auth-token-file", path("bad-tokens"))
    check("a bad token file: exit 1, names the line", code == 1 and path("bad-tokens") + ": line 2" in err, err)
    code, _, err = run_cli("--grpc-address", "0.0.0.0:%d" % port, "--http-address", "none")
    check("0.0.0.0 without TLS or a token: exit 1, one line saying why",
          code == 1 and first_line(err).endswith("or --insecure to accept that") and
          "refusing to listen on 0.0.0.0:%d (OTLP/gRPC)" % port in first_line(err) and len(err.strip().splitlines()) == 1,
          err)
    code, _, err = run_cli("--grpc-address", "127.0.0.1:%d" % port, "--http-address", "[::]:%d" % port)
    check("the HTTP port on [::] without TLS or a token: refused too",
          code == 1 and "refusing to listen on [::]:%d (OTLP/HTTP)" % port in err, err)


def test_documented_setup():
    """docs/tls.md's openssl commands, run as written: the certificates they make verify, and a
    server given them takes a client certificate and a token (curl --resolve maps the
    documented host name to 127.0.0.1)."""
    import re
    with open(os.path.join(fx.ROOT, "docs", "tls.md"), encoding="utf-8") as f:
        page = f.read()
    section = page[page.index("## Certificates with the openssl command"):]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    d = path("documented")
    os.mkdir(d)
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=d, capture_output=True, timeout=60)
    check("docs/tls.md: the openssl commands run", p.returncode == 0, p.stderr.decode(errors="replace"))
    for ca, crt in (("ca.crt", "server.crt"), ("client-ca.crt", "node1.crt")):
        v = subprocess.run(["openssl", "verify", "-CAfile", ca, crt], cwd=d, capture_output=True)
        check("docs/tls.md: %s verifies against %s" % (crt, ca), v.returncode == 0, v.stdout + v.stderr)
    modes = {n: os.stat(os.path.join(d, n)).st_mode & 0o777 for n in ("server.key", "tokens")}
    check("docs/tls.md: the key and the tokens are 0600", set(modes.values()) == {0o600}, modes)
    srv = Server("--tls-cert", os.path.join(d, "server.crt"), "--tls-key", os.path.join(d, "server.key"),
                 "--tls-client-ca", os.path.join(d, "client-ca.crt"), "--auth-token-file", os.path.join(d, "tokens"),
                 http=True)
    try:
        with open(os.path.join(d, "tokens")) as f:
            token = f.readline().strip()
        base = ["--resolve", "backend.example:%d:127.0.0.1" % srv.http_port, "--cacert", os.path.join(d, "ca.crt"),
                "--cert", os.path.join(d, "node1.crt"), "--key", os.path.join(d, "node1.key")]
        url = "https://backend.example:%d" % srv.http_port
        rc, code, _, _, _ = curl(url + "/metrics", *base, token=token)
        check("docs/tls.md setup: /metrics with the client certificate and the token: 200", (rc, code) == (0, "200"),
              (rc, code, srv.stderr()[-1000:]))
        rc, code, _, _, _ = curl(url + PROFILES_HTTP, *base, token=token, data=fx.read())
        check("docs/tls.md setup: an Export: 200", (rc, code) == (0, "200"), (rc, code))
        rc, code, _, _, _ = curl(url + "/metrics", *base)
        check("docs/tls.md setup: without the token: 401", code == "401", (rc, code))
    finally:
        stop(srv)


def main():
    if not shutil.which("openssl") or not shutil.which("curl"):
        check("tls: skipped, openssl or curl missing # SKIP", True)
        return
    make_all()
    run("tokens over TLS", test_tokens_over_tls)
    run("protocol versions and ALPN", test_versions_and_alpn)
    run("mutual TLS", test_mutual_tls)
    run("reload", test_reload)
    run("handshake timeout", test_handshake_timeout)
    run("start-up refusals", test_startup_refusals)
    run("the setup docs/tls.md describes", test_documented_setup)


main()
done()
