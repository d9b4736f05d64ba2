#!/usr/bin/python3
"""bench-ui-gen.py - the requests of scripts/bench-ui: SAMPLES samples over HOURS hours, as a
length-prefixed stream of ExportProfilesServiceRequests (what `lazybackend decode` reads).

Shape, chosen to look like a busy node seen by the eBPF profiler: one request every 5 s with
5 containers (resources), each sample one timestamp (weight 1), 2,000 distinct stacks 8 to 40
frames deep over 4,000 functions (native, kernel, jvm, go, v8js frames), 40 thread names, 8
executables. A few request templates are built with the reference encoder (test/e2e/lib/
otlpgen.py), their timestamps a sentinel; each request is a template with the sentinel
replaced (timestamps are fixed64), so making ten million samples takes seconds.

Stacks are drawn uniformly (SKEW=0: almost no two samples of a request share a stack and
thread, the rollups' worst case) or heavy-tailed (SKEW=1: stack k with weight 1/k, as hot
code paths dominate real profiles).

Usage: bench-ui-gen.py OUT_PREFIX SAMPLES HOURS START_UNIX_SECONDS SKEW
Writes OUT_PREFIX.0, OUT_PREFIX.1, ... (at most 256 MB each: `decode` reads files up to 1 GiB).
"""
import bisect
import itertools
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "e2e", "lib"))
import otlpgen  # noqa: E402

SENTINEL = 0x5EB7C0DE5EB7C0DE
CONTAINERS, PERIOD_S, STACKS, FUNCTIONS, THREADS, EXES = 5, 5, 2000, 4000, 40, 8
TYPES = ["native", "kernel", "jvm", "go", "v8js"]


def template(rng, per_request, stacks_spec, skew):
    b = otlpgen.Builder()
    profiles = [b.profile(b.resource(container_id="%064x" % (c + 1), service_name="svc-%d" % c))
                for c in range(CONTAINERS)]
    fn_ids, loc_ids = {}, {}

    def loc(f):
        if f not in loc_ids:
            if f not in fn_ids:
                fn_ids[f] = b.function("fn_%d_%s" % (f, TYPES[f % len(TYPES)]), "src/file%d.c" % (f % 97))
            loc_ids[f] = b.location(TYPES[f % len(TYPES)], functions=[(fn_ids[f], f % 500 + 1)])
        return loc_ids[f]

    stack_ids = {}
    threads = [b.attr("thread.name", "worker-%d" % t) for t in range(THREADS)]
    exes = [b.attr("process.executable.name", "app%d" % e) for e in range(EXES)]
    for i in range(per_request):
        p = profiles[i % CONTAINERS]
        if skew:   # rank k drawn with weight 1/k: skew holds the cumulative weights
            s = min(bisect.bisect(skew, rng.random() * skew[-1]), STACKS - 1)
        else:
            s = rng.randrange(STACKS)
        if s not in stack_ids:
            stack_ids[s] = b.stack([loc(f) for f in stacks_spec[s]])
        t = rng.randrange(THREADS)
        b.sample(p, stack_ids[s], timestamps=[SENTINEL], attributes=[threads[t], exes[(s + t) % EXES]])
    return b.bytes()


def main():
    out, samples, hours, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    skewed = sys.argv[5] == "1"
    rng = random.Random(42)
    # stacks: leaf first; a shared base (like main/start) so the flame graph has depth
    stacks_spec = []
    for _ in range(STACKS):
        depth = rng.randrange(8, 41)
        base = [rng.randrange(50) for _ in range(4)]
        stacks_spec.append([rng.randrange(50, FUNCTIONS) for _ in range(depth - 4)] + base)
    requests = int(hours * 3600 / PERIOD_S)
    per_request = max(1, samples // requests)
    skew = list(itertools.accumulate(1 / (k + 1) for k in range(STACKS))) if skewed else None
    templates = [template(rng, per_request, stacks_spec, skew) for _ in range(4)]
    sentinel = struct.pack("<Q", SENTINEL)
    written, part, f = 0, 0, None
    for r in range(requests):
        if f is None or f.tell() > 256 << 20:
            if f:
                f.close()
            f = open("%s.%d" % (out, part), "wb")
            part += 1
        t = (start + r * PERIOD_S) * 10**9
        body = templates[r % len(templates)].replace(sentinel, struct.pack("<Q", t))
        f.write(struct.pack(">I", len(body)) + body)
        written += per_request
    f.close()
    print("%d requests, %d samples" % (requests, written))


main()
