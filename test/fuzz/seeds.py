#!/usr/bin/python3
"""seeds.py OUTDIR - extra fuzzing seeds beside the fixtures: one small request in every
proto layout (v1.11, v1.9, v1.8, v1.7), built by the reference encoder, so mutations start
from each layout's shapes (the fixtures hold no v1.7 request). Written at run time into the
fuzzer's temporary seed directory, never into the repository.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "lib"))
import otlpgen  # noqa: E402
import otlpgen_layouts  # noqa: E402


def request():
    b = otlpgen.Builder()
    work, main = b.function("work", "work.c"), b.function("main", "main.c")
    libc = b.mapping("libc.so.6", build_id="abcd")
    l_work, l_main = b.location("go", [(work, 7)]), b.location("go", [(main, 3)])
    l_libc = b.location("native", mapping=libc, address=0x1234)
    s1, s2 = b.stack([l_work, l_main]), b.stack([l_libc, l_main])
    link = b.link(bytes(range(16)), bytes(range(8)))
    scope = b.resource(service_name="svc", process_pid=42)
    p = b.profile(scope)
    b.sample(p, s1, timestamps=[1, 2, 3], attributes=[b.attr("thread.name", "a"), b.attr("thread.id", 7)])
    b.sample(p, s2, timestamps=[4], attributes=[b.attr("thread.name", "a")], link=link)
    p2 = b.profile(scope, "off_cpu", "nanoseconds")
    b.sample(p2, s1, timestamps=[5, 6], values=[100, 250], attributes=[b.attr("thread.id", 7)])
    return b.req


out = sys.argv[1]
req = request()
for layout in otlpgen_layouts.LAYOUTS:
    with open(os.path.join(out, f"built.{layout}.pb"), "wb") as f:
        f.write(otlpgen_layouts.encode(req, layout))
