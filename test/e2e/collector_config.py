#!/usr/bin/python3
"""collector_config.py - examples/otel-collector.yaml is a Collector configuration that sends
profiles and traces to lazybackend.

What is tested, and what is not: the OpenTelemetry Collector is not packaged in Debian, so no
Collector runs here. The file is parsed with python3-yaml and checked the way the Collector
would read its structure:
  - top-level `receivers`, `exporters` and `service.pipelines`; every component a pipeline
    names is defined (a component ID is `type` or `type/name`), every defined one is used;
  - a `profiles` and a `traces` pipeline, each from an `otlp` receiver to an OTLP gRPC
    exporter (`otlp`, called `otlp_grpc` since Collector v0.144.0);
  - that exporter sends to lazybackend's gRPC port, 127.0.0.1:4317 (the address `lazybackend
    --help` gives as the default), with `tls: insecure: true` (lazybackend has no TLS);
  - the receiver's endpoints do not take lazybackend's own 127.0.0.1:4317/4318;
  - the file says that profiles need `--feature-gates=service.profilesSupport`.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from tap import check, run, done  # noqa: E402
import fixtures as fx  # noqa: E402

# The file may be given as an argument, for a test of the test.
CONFIG = sys.argv[1] if len(sys.argv) > 1 else os.path.join(fx.ROOT, "examples", "otel-collector.yaml")
GRPC_EXPORTERS = ("otlp", "otlp_grpc")
LAZYBACKEND_GRPC = "127.0.0.1:4317"


def ctype(component_id):
    return component_id.split("/", 1)[0]


def main():
    try:
        import yaml
    except ImportError:
        check("python3-yaml is installed (scripts/install-deps.sh test)", False)
        return
    with open(CONFIG, encoding="utf-8") as f:
        text = f.read()
    cfg = yaml.safe_load(text)
    check("the configuration parses as a YAML mapping", isinstance(cfg, dict), repr(cfg)[:300])
    if not isinstance(cfg, dict):
        return
    for section in ("receivers", "exporters", "service"):
        check("top-level `%s` is a mapping" % section, isinstance(cfg.get(section), dict), repr(cfg.get(section)))
    service = cfg.get("service") or {}
    pipelines = service.get("pipelines") if isinstance(service, dict) else None
    if not check("`service.pipelines` is a mapping", isinstance(pipelines, dict), repr(pipelines)):
        return

    used = {"receivers": set(), "exporters": set(), "processors": set()}
    for name, p in pipelines.items():
        if not check("pipeline %s: a mapping with receivers and exporters" % name,
                     isinstance(p, dict) and p.get("receivers") and p.get("exporters"), repr(p)):
            continue
        for kind in used:
            ids = p.get(kind) or []
            check("pipeline %s: `%s` is a list of component IDs" % (name, kind),
                  isinstance(ids, list) and all(isinstance(i, str) for i in ids), repr(ids))
            for cid in ids if isinstance(ids, list) else []:
                check("pipeline %s: %s `%s` is defined under `%s`" % (name, kind[:-1], cid, kind),
                      isinstance(cfg.get(kind), dict) and cid in cfg[kind])
                used[kind].add(cid)
    for kind, ids in used.items():
        defined = set(cfg.get(kind) or {})
        check("every component under `%s` is used by a pipeline" % kind, defined <= ids,
              "unused: %s" % sorted(defined - ids))

    for signal in ("profiles", "traces"):
        p = pipelines.get(signal)
        if not check("a `%s` pipeline" % signal, isinstance(p, dict), sorted(pipelines)):
            continue
        recv = [r for r in p.get("receivers", []) if ctype(r) == "otlp"]
        check("pipeline %s receives OTLP (an `otlp` receiver)" % signal, recv, p.get("receivers"))
        exps = [e for e in p.get("exporters", []) if ctype(e) in GRPC_EXPORTERS]
        check("pipeline %s exports with the OTLP gRPC exporter (`otlp`)" % signal, exps, p.get("exporters"))
        for e in exps:
            conf = cfg["exporters"].get(e) or {}
            check("pipeline %s: exporter %s sends to lazybackend's gRPC port %s" % (signal, e, LAZYBACKEND_GRPC),
                  conf.get("endpoint") == LAZYBACKEND_GRPC, repr(conf.get("endpoint")))
            tls = conf.get("tls") or {}
            check("pipeline %s: exporter %s has TLS off (tls: insecure: true)" % (signal, e),
                  isinstance(tls, dict) and tls.get("insecure") is True, repr(tls))

    for rid, conf in (cfg.get("receivers") or {}).items():
        protocols = (conf or {}).get("protocols") or {}
        check("receiver %s has OTLP protocols (grpc, http)" % rid,
              isinstance(protocols, dict) and set(protocols) and set(protocols) <= {"grpc", "http"}, repr(protocols))
        for proto, pconf in protocols.items() if isinstance(protocols, dict) else []:
            endpoint = (pconf or {}).get("endpoint", "")
            port = endpoint.rsplit(":", 1)[-1] if endpoint else ("4317" if proto == "grpc" else "4318")
            check("receiver %s %s (%s) does not take lazybackend's own ports 4317/4318" % (rid, proto, endpoint or "default"),
                  port not in ("4317", "4318"))

    check("the file says profiles need --feature-gates=service.profilesSupport",
          "--feature-gates=service.profilesSupport" in text)
    p = subprocess.run([fx.LB, "--help"], capture_output=True, timeout=30 * fx.SLOW)
    line = next((ln for ln in p.stdout.decode().splitlines() if ln.strip().startswith("--grpc-address")), "")
    check("`lazybackend --help`: gRPC listens on %s by default, where the exporter sends" % LAZYBACKEND_GRPC,
          "default %s" % LAZYBACKEND_GRPC in line, line)


run("Collector configuration", main)
done()
