#!/usr/bin/env bash
# Installs the Debian 12 packages lazybackend needs, when any is missing. Idempotent and quick
# when everything is there (one dpkg-query), so `make` can call it.
#   scripts/install-deps.sh [--quiet] [build|test]
#   build   what building and running need (`make`, `make run`): compiler, headers, nanopb
#   test    the above, and what the test suite runs (`make test`, CI): clang and the sanitizer
#           and libFuzzer runtimes, the real clients (grpcio, h2, curl, nghttp/h2load), the
#           real servers (clickhouse-server), a browser (chromium, driven by node), sqlite3, jq, bc, systemd-analyze,
#           man, Prometheus' parsers (python3-prometheus-client, promtool), bpftrace and
#           <sys/sdt.h>, go tool pprof (default)
#   --quiet print nothing when nothing is missing
set -euo pipefail

BUILD_PACKAGES=(
  build-essential pkg-config                             # the compiler and library lookup
  libnghttp2-dev                                         # HTTP/2 server library
  libhttp-parser-dev                                     # HTTP/1.1 request parser (OTLP/HTTP port)
  nanopb libnanopb-dev protobuf-compiler python3-protobuf  # protobuf code generation and runtime
  zlib1g-dev libsqlite3-dev libcurl4-openssl-dev         # gzip, SQLite store, ClickHouse over HTTP
  libssl-dev                                             # TLS on both ports, token digests (OpenSSL)
)
TEST_PACKAGES=(
  clang libclang-rt-14-dev                               # the second compiler; libFuzzer/sanitizer runtimes
  nghttp2-client                                         # nghttp/h2load clients
  python3-grpcio curl jq bc sqlite3 python3-yaml         # test clients and tools; bc for scripts/bench; yaml for the Collector config
  openssl                                                # certificates and s_client in the TLS test
  python3-h2                                             # raw HTTP/2 frames in the transport e2e test
  clickhouse-server clickhouse-client                    # ClickHouse 18.16 for the clickhouse sink tests
  chromium                                               # headless checks of the flame graph SVG and the web UI
  systemd man-db                                         # systemd-analyze verify/security on the unit; man -l on the page
  python3-prometheus-client prometheus                   # /metrics read by Prometheus' parsers (promtool)
  bpftrace systemtap-sdt-dev                             # lazybackend usdt end to end; <sys/sdt.h> for the example app
  golang-go                                              # go tool pprof reads the pprof export
)
# node and npm run the web UI's browser test (puppeteer-core, which the test installs from npm):
# Debian's packages, unless a node with npm is there already (some node packages bundle npm,
# and Debian's npm would conflict with them).
command -v npm >/dev/null 2>&1 || TEST_PACKAGES+=(nodejs npm)

quiet=0 set=test
for a in "$@"; do
  case $a in
    --quiet) quiet=1 ;;
    build|test) set=$a ;;
    *) echo "usage: $0 [--quiet] [build|test]" >&2; exit 2 ;;
  esac
done
PACKAGES=("${BUILD_PACKAGES[@]}")
[ "$set" = build ] || PACKAGES+=("${TEST_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "$quiet" = 1 ] || echo "all $set packages present"
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
