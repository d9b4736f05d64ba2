"""TAP-like reporting for the end-to-end scripts: test/run.sh counts the lines."""
import sys
import traceback

_failed = 0


def check(name, cond, detail=""):
    global _failed
    if cond:
        print(f"ok - {name}", flush=True)
    else:
        _failed += 1
        print(f"not ok - {name}", flush=True)
        if detail:
            for line in str(detail).splitlines()[:30]:
                print(f"#   {line}", flush=True)
    return cond


def run(name, fn):
    """Runs a test function; an exception counts as a failure of `name`."""
    try:
        fn()
    except Exception:  # noqa: BLE001 - a test's crash is a failure, reported in full
        check(name, False, traceback.format_exc())


def failed():
    """How many checks failed so far (a run keeps its temporary files when any did)."""
    return _failed


def done():
    sys.exit(1 if _failed else 0)
