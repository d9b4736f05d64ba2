#!/usr/bin/python3
"""systemd_unit.py - the unit file (dist/systemd/lazybackend.service), `make install`, and the
man page it generates from --help.

Why: a unit that systemd refuses, or that runs the parser of network input with more rights
than it needs, is worse than none; an install that writes elsewhere than documented or needs
root to stage a package breaks packaging; a man page that lacks an option misleads.
Checks: `systemd-analyze verify` passes on the installed unit (its ExecStart= and its
man: link resolved) and on the repository's unit pointed at the binary under test;
`systemd-analyze security --offline=true` rates it OK or better (overall exposure below 5.0,
systemd's bands: PERFECT 0, SAFE < 1, OK < 5); `make install DESTDIR=... PREFIX=/usr` writes
exactly the binary, the unit (ExecStart= rewritten to PREFIX) and lazybackend.1 where
docs/systemd.md says, nothing else; `man -l` renders the page without warnings and it names
every option of `lazybackend --help`, `send --help` and `top --help`.
Environment: LAZYBACKEND (the binary), SANITIZE (which build `make install` takes).
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402
from fixtures import LB, ROOT  # noqa: E402

TMP = fx.tempdir("lb-unit-")
UNIT = os.path.join(ROOT, "dist", "systemd", "lazybackend.service")
EXPOSURE = re.compile(r"Overall exposure level for [^:]+: (\d+\.\d) (\w+)")


def make_install(*args):
    """`make install ARGS` in the repository, for the build under test; (exit code, output)."""
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install",
                        "SANITIZE=" + os.environ.get("SANITIZE", "0"), "INSTALL_BIN=" + LB, *args],
                       capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


def analyze(*args, env=None):
    p = subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout + p.stderr


def installed_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_tools():
    check("systemd-analyze is installed (Debian's systemd package)", shutil.which("systemd-analyze"))
    check("man is installed (man-db)", shutil.which("man"))


def test_verify_and_security():
    prefix = os.path.join(TMP, "prefix")
    rc, out = make_install("PREFIX=" + prefix)
    check("make install PREFIX=<tmp>/prefix: exit 0", rc == 0, out[-1500:])
    unit = os.path.join(prefix, "lib", "systemd", "system", "lazybackend.service")
    text = open(unit).read() if os.path.exists(unit) else ""
    check("the installed unit starts <tmp>/prefix/bin/lazybackend",
          "\nExecStart=%s/bin/lazybackend\n" % prefix in text, text[:800])
    # the man: link in Documentation= is checked too: man finds the installed page
    rc, out = analyze("verify", unit, env={"MANPATH": os.path.join(prefix, "share", "man")})
    check("systemd-analyze verify: the installed unit passes", rc == 0 and "lazybackend" not in out, out)

    copy = os.path.join(TMP, "lazybackend.service")
    with open(UNIT) as f, open(copy, "w") as g:
        g.write(re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + LB, f.read()))
    rc, out = analyze("verify", "--man=no", copy)
    check("systemd-analyze verify: the repository's unit (ExecStart= the binary under test) passes",
          rc == 0 and "lazybackend" not in out, out)

    rc, out = analyze("security", "--offline=true", unit)
    m = EXPOSURE.search(out)
    check("systemd-analyze security --offline=true: rated", m is not None, out[-1500:])
    if m:
        score, rating = float(m.group(1)), m.group(2)
        print("# overall exposure %.1f %s" % (score, rating), flush=True)
        check("... OK or better: exposure %.1f < 5.0, rated %s" % (score, rating),
              score < 5.0 and rating in ("OK", "SAFE", "PERFECT"), out[-1500:])
    for setting in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=lazybackend",
                    "ProtectSystem=strict", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
                    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "MemoryMax=",
                    "EnvironmentFile=-/etc/default/lazybackend"):
        check("the unit says %s" % setting, re.search(r"(?m)^" + re.escape(setting), text), setting)


def help_options(*args):
    out = subprocess.run([LB, *args, "--help"], capture_output=True, text=True, timeout=60).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", out))


def test_destdir_and_man_page():
    dest = os.path.join(TMP, "dest")
    rc, out = make_install("DESTDIR=" + dest, "PREFIX=/usr")
    check("make install DESTDIR=... PREFIX=/usr: exit 0", rc == 0, out[-1500:])
    want = ["usr/bin/lazybackend", "usr/lib/systemd/system/lazybackend.service", "usr/share/man/man1/lazybackend.1"]
    got = installed_files(dest)
    check("it installs exactly the binary, the unit and the man page, below DESTDIR", got == sorted(want), got)
    binary = os.path.join(dest, want[0])
    check("the binary: executable, the one under test",
          os.access(binary, os.X_OK) and open(binary, "rb").read() == open(LB, "rb").read())
    unit = open(os.path.join(dest, want[1])).read()
    check("the unit: ExecStart=/usr/bin/lazybackend (PREFIX, not DESTDIR)",
          re.findall(r"(?m)^ExecStart=.*$", unit) == ["ExecStart=/usr/bin/lazybackend"], unit[:600])

    page = os.path.join(dest, want[2])
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, timeout=60,
                       env=dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat"))
    text = re.sub(r".\x08", "", p.stdout.decode("utf-8", "replace"))   # overstrike, if any
    check("man -l renders it, without warnings", p.returncode == 0 and "NAME" in text and not p.stderr,
          p.stderr.decode(errors="replace")[-800:])
    check("its first line says it is generated from --help",
          open(page).readline().startswith('.\\" Generated by scripts/manpage'))
    shown = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    for what, args in (("lazybackend --help", ()), ("lazybackend send --help", ("send",)),
                       ("lazybackend top --help", ("top",))):
        listed = help_options(*args)
        missing = sorted(listed - shown)
        check("the page names every option of %s (%d)" % (what, len(listed)), len(listed) > 5 and not missing,
              missing)
    check("... and the environment variables' rule", "LAZYBACKEND_GRPC_ADDRESS" in text)
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "uninstall", "DESTDIR=" + dest, "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=120)
    check("make uninstall removes the three files", p.returncode == 0 and installed_files(dest) == [],
          installed_files(dest))


run("tools", test_tools)
run("verify and security", test_verify_and_security)
run("DESTDIR and the man page", test_destdir_and_man_page)
done()
