#!/usr/bin/python3
"""cli_options.py - the --help text and the option parser stay in sync.

Why: options were added by several hands; an option the usage text lists but the parser does
not take (or the other way round) is a promise the program breaks. Both directions are
checked: every option in `lazybackend --help` is recognised by the binary (it may complain
about the value, never that the option is unknown), and every option the parser in
cmd/options.c matches (opt(...) and flag(...) calls) is listed in --help. Also: a wrong value
and a missing value end the process with status 2 and say which option, before anything is
set up.
Environment: LAZYBACKEND (the binary).
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
from server import run_cli as lb  # noqa: E402

OPTIONS_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cmd", "options.c")
NOT_OPTIONS = {"--name", "--db"}   # "--name value or --name=value"; --db is the query commands'


def help_options():
    rc, out, _ = lb("--help")
    return rc, set(re.findall(r"--[a-z][a-z0-9-]*", out.decode())) - NOT_OPTIONS


def test_every_listed_option_is_taken():
    rc, listed = help_options()
    check("--help: exit 0, lists options", rc == 0 and len(listed) > 30, listed)
    unknown = []
    for name in sorted(listed):
        # a switch stands alone; an option with a value takes the path as its value
        rc, _, err = lb("decode", name, "/nonexistent/input", timeout=60)
        if "unknown option" in err:
            unknown.append(name)
    check("every option --help lists is taken by the parser", not unknown, unknown)


def test_every_parsed_option_is_listed():
    _, listed = help_options()
    with open(OPTIONS_C) as f:
        parsed = set(re.findall(r'\b(?:opt|flag)\(a, "(--[a-z0-9-]+)"\)', f.read()))
    check("cmd/options.c parses options (opt/flag calls found)", len(parsed) > 30, parsed)
    check("every option cmd/options.c parses is in --help", not (parsed - listed), sorted(parsed - listed))


def test_bad_values_exit_2():
    for args, says in ((["--max-connections", "0"], "invalid value for --max-connections: '0'"),
                       (["--max-message-size", "2G"], "invalid value for --max-message-size: '2G'"),
                       (["--format=xml"], "invalid value for --format: 'xml'"),
                       (["--clickhouse-spool-dir="], "invalid value for --clickhouse-spool-dir: ''"),
                       (["--idle-timeout"], "--idle-timeout needs a value"),
                       (["--no-frames=1"], "unknown option '--no-frames=1'"),
                       (["--nope"], "unknown option '--nope'")):
        rc, _, err = lb(*args, timeout=60)
        check(f"{' '.join(args)}: exit 2, \"{says}\"", rc == 2 and says in err, f"exit {rc}\n{err}")


run("listed options are taken", test_every_listed_option_is_taken)
run("parsed options are listed", test_every_parsed_option_is_listed)
run("bad values", test_bad_values_exit_2)
done()
