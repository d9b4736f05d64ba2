"""values_request.py - an off-CPU style request (built with lib/otlpgen.py, the reference
encoder) whose samples carry values, timestamps, or both, for the time-window rules of
docs/queries.md: a sample's weight in a window is the values of its timestamps inside it, 1
per timestamp when it has no values, and all of it at its profile's time when it has no
timestamps. Shared by sqlite_store.py and query_clickhouse.py, which hand-compute the weights
of windows relative to T0.
"""
import otlpgen

T0 = 1758603335000000000   # the profile's time is T0 + 0.517877230 s

# (timestamps, values) of the three samples, in order: "paired" (native), "counted" (kernel),
# "untimed" (go)
SAMPLES = [([T0 + 1000000000, T0 + 2000000000], [100, 200]),
           ([T0 + 1500000000, T0 + 3000000000, T0 + 4000000000], []),
           ([], [50])]


def values_request():
    """The request's bytes: one profile of type off_cpu/nanoseconds in container "vals"."""
    b = otlpgen.Builder()
    stacks = [b.stack([b.location(ftype, functions=[(b.function(name, "f.c"), 1)])])
              for name, ftype in (("paired", "native"), ("counted", "kernel"), ("untimed", "go"))]
    p = b.profile(b.resource(container_id="vals"), "off_cpu", "nanoseconds")
    for stack, (timestamps, values) in zip(stacks, SAMPLES):
        b.sample(p, stack, timestamps=timestamps, values=values)
    return b.bytes()
