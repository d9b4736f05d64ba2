#!/usr/bin/env bash
# Installs the Debian 12 packages lazybackend builds and tests with, when any is missing.
# Idempotent and quick when everything is there (one dpkg-query), so `make` can call it.
#   --quiet   print nothing when nothing is missing
set -euo pipefail

PACKAGES=(
  build-essential pkg-config clang libclang-rt-14-dev   # compilers, libFuzzer/sanitizer runtimes
  libnghttp2-dev nghttp2-client                          # HTTP/2 server library; nghttp/h2load clients
  libhttp-parser-dev                                     # HTTP/1.1 request parser (OTLP/HTTP port)
  nanopb libnanopb-dev protobuf-compiler python3-protobuf  # protobuf code generation and runtime
  zlib1g-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev # gzip, SQLite store, ClickHouse over HTTP
  python3-grpcio curl jq bc                              # test clients; bc for scripts/bench
  python3-h2                                             # raw HTTP/2 frames in the transport e2e test
  clickhouse-server clickhouse-client                    # ClickHouse 18.16 for the clickhouse sink tests
  chromium                                               # headless check of the flame graph SVG
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--quiet" ] || echo "all packages present"
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
