#!/usr/bin/python3
"""output_file.py - `--output FILE` and SIGHUP, as logrotate uses them, against the real
server over gRPC (python3-grpcio) on 127.0.0.1.

The file is appended to (what was there stays), created 0644, and nothing goes to stdout.
After the file is renamed and SIGHUP sent, the next request lands in a new file at the same
path and the renamed file keeps exactly what it had. A reopen that fails (the path is now a
directory) is logged and the server keeps writing to the old file. Expected content is the
fixture's ebpf-jvm-go.folded (the server runs --format folded), not the server's own output.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
import server  # noqa: E402

FIXTURE = fx.read()
FOLDED = fx.folded()
SLOW = fx.SLOW
TMP = fx.tempdir("lb-output-")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Server(server.Server):
    """The server with its logs in TMP, files it creates under umask 022, and SIGHUP."""

    def __init__(self, *args):
        super().__init__(*args, dir=TMP, umask=0o022)

    def log(self):
        return self.stderr()

    def send(self):
        return super().send(FIXTURE, timeout=5 * SLOW)

    def hup_and_wait(self, needle):
        before = self.log().count(needle)
        self.proc.send_signal(signal.SIGHUP)
        return server.wait_until(lambda: self.log().count(needle) > before, 5 * SLOW)


def test_rotation():
    path = os.path.join(TMP, "profiles.txt")
    with open(path, "wb") as f:
        f.write(b"previous content\n")
    srv = Server("--output", path, "--format", "folded")
    try:
        check("server starts with --output", srv.alive(), srv.log())
        srv.send()
        check("first request appended to the existing file", read(path) == b"previous content\n" + FOLDED,
              (read(path) or b"")[:200])
        os.rename(path, path + ".1")
        check("SIGHUP: the server says it reopened the file", srv.hup_and_wait("SIGHUP: reopened"), srv.log())
        check("SIGHUP: a new, empty file at the path, mode 0644", read(path) == b"" and
              os.stat(path).st_mode & 0o777 == 0o644, oct(os.stat(path).st_mode) if read(path) is not None else "missing")
        srv.send()
        check("second request lands in the new file", read(path) == FOLDED, (read(path) or b"")[:200])
        check("the rotated file kept exactly its content", read(path + ".1") == b"previous content\n" + FOLDED)

        # A reopen that fails keeps the old file: the path is a directory now.
        os.rename(path, path + ".2")
        os.mkdir(path)
        check("SIGHUP with an unopenable path: an error is logged",
              srv.hup_and_wait("SIGHUP: cannot reopen"), srv.log())
        srv.send()
        check("... and the request still goes to the old (renamed) file", read(path + ".2") == FOLDED * 2,
              (read(path + ".2") or b"")[:200])
        os.rmdir(path)
        check("SIGHUP again once the path is free", srv.hup_and_wait("SIGHUP: reopened"), srv.log())
        srv.send()
        check("... and the next request lands at the path", read(path) == FOLDED)
        check("nothing was written to stdout", srv.stdout() == b"")
    finally:
        rc = srv.stop(timeout=15)
    check("server exits 0 on SIGTERM", rc == 0, srv.log()[-2000:])


def test_json_to_file():
    path = os.path.join(TMP, "profiles.jsonl")
    srv = Server("--output", path, "--format", "json", "--container-id",
                 "6ad3c930c936050866dfe2262244430b843010791d6e3b9dda1b2bf52fbc93df")
    try:
        srv.send()
        lines = (read(path) or b"").splitlines()
        check("json with a filter to a file: one line per kept sample (5 PerformanceTest samples)",
              len(lines) == 5 and all(b'"container.id"' in x for x in lines), len(lines))
    finally:
        srv.stop()


def test_bad_path():
    rc, _, err = server.run_cli("--grpc-address", f"127.0.0.1:{server.free_port()}", "--output",
                                os.path.join(TMP, "no-such-dir", "x.txt"), timeout=30)
    check("--output in a missing directory: exit 1 with the reason", rc == 1 and
          "No such file or directory" in err and "x.txt" in err, err)


def test_hup_without_output():
    srv = Server("--format", "folded")
    try:
        check("SIGHUP without --output is harmless", srv.hup_and_wait("SIGHUP: no output file") and
              srv.proc.poll() is None, srv.log())
        srv.send()
        check("... and stdout still gets the request", srv.stdout() == FOLDED)
    finally:
        srv.stop()


run("rotation", test_rotation)
run("json to file", test_json_to_file)
run("bad path", test_bad_path)
run("hup without output", test_hup_without_output)
done()
