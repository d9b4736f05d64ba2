#!/usr/bin/env bash
# build-static.sh - the fully static lazybackend that `make static` ships:
# dist/lazybackend-VERSION-linux-ARCH, its .sha256 and a .sources list (docs/static-build.md).
#
# Why a script of its own: a node where the backend runs should need nothing but the file, so
# every library is rebuilt with musl-gcc from Debian's source packages (Debian's glibc-built
# .a files cannot be linked fully static, and a glibc -static binary still dlopens NSS
# modules). Every input comes through apt: the host packages, then `apt-get source` of the
# libraries. The project's own code is compiled by the Makefile itself (a sub-make with
# CC=musl-gcc), so the static binary has exactly the dynamic build's sources, flags and
# nanopb-generated files.
#
# Reproducible: the same sources give the same bytes whatever directory the tree is built in
# (file prefix maps, deterministic archives, sorted lists, a fixed SOURCE_DATE_EPOCH, strip).
#
# Run by `make static`, which passes what the Makefile knows (see the static target):
#   VERSION     the release named in the file (cmd/version.h's LAZYBACKEND_VERSION)
#   STATIC_OBJ  lazybackend's own build tree, relative to the checkout (default build/static/obj)
#   STATIC_DEPS the libraries' build tree and sysroot (default build/static/deps)
#   JOBS        parallel compile jobs (default 2)
# Sources are fetched once into build/static/src; a library is rebuilt only when it is missing,
# its source changed or this script changed. The libraries live apart from lazybackend's own
# objects, so a second build in another STATIC_OBJ (CI's reproducibility check) reuses them and
# compiles only the project.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD

: "${VERSION:?VERSION is set by make static}"
JOBS=${JOBS:-2}
SRC=build/static/src
OBJ=${STATIC_OBJ:-build/static/obj}
DEPS=${STATIC_DEPS:-build/static/deps}
for d in "$OBJ" "$DEPS"; do
  case $d in /*|*..*) echo "STATIC_OBJ and STATIC_DEPS must be paths inside the checkout, relative" >&2; exit 2 ;; esac
done
SYSROOT=$DEPS/sysroot                # the rebuilt libraries' headers and .a files, nothing else
ARCH=$(uname -m)
NAME=lazybackend-$VERSION-linux-$ARCH
DIST=dist

# Reproducibility: same locale, time zone and file modes everywhere; dates (should any tool
# look) from the last commit, not the clock.
export LC_ALL=C TZ=UTC
umask 022
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1)}
export SOURCE_DATE_EPOCH

# The Debian source packages that go in, each with the binary package whose installed version
# is fetched when the archive still has it (so the static binary's --version names the same
# library versions as the node's Debian packages); otherwise the archive's newest.
SOURCES=(
  "zlib         zlib1g"
  "nghttp2      libnghttp2-14"
  "http-parser  libhttp-parser2.9"
  "nanopb       libnanopb-dev"
  "sqlite3      libsqlite3-0"
  "curl         libcurl4"
  "openssl      libssl3"
)
# What the build itself needs on this machine: musl-gcc, apt-get source's unpacker, tclsh
# for the SQLite amalgamation.
HOST_PACKAGES=(musl-tools dpkg-dev tcl8.6)

# TLS: OpenSSL, for the server's ports (--tls-cert), the token digests, and libcurl (`send
# --tls`, an https ClickHouse URL). Cut down to what these use: TLS 1.2 and 1.3 with ECDHE over
# the default provider (no finite-field DH or DSA, no binary curves, no OCSP; no legacy
# algorithms, no SSL 3, TLS 1.0/1.1 or DTLS, no engines, no
# loadable modules: a static binary cannot dlopen; no secure heap, which needs kernel headers
# that musl-gcc does not see and which lazybackend does not use), no apps, tests or docs (only the
# libraries are built). libcurl verifies servers against Debian's CA bundle path, which is
# where most distributions keep one too (others: --cacert).
OPENSSL_FLAGS=(no-shared no-module no-dso no-engine no-tests no-comp no-async no-legacy no-secure-memory
  no-ssl3 no-tls1 no-tls1_1 no-dtls no-srp no-psk no-idea no-mdc2 no-rc2 no-rc4 no-rc5 no-md4 no-whirlpool
  no-seed no-sm2 no-sm3 no-sm4 no-camellia no-aria no-gost no-bf no-cast no-des no-ct no-cms no-ts
  no-ui-console no-siphash no-scrypt no-ocb no-cmp no-nextprotoneg no-srtp
  no-dh no-dsa no-ec2m no-ocsp no-rfc3779 no-ssl-trace no-blake2 no-rmd160 no-siv no-cmac no-filenames)
CURL_TLS=(--with-openssl="$TOP/$SYSROOT" --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path)

# libcurl reduced to what lazybackend uses: HTTP/1.1 for the ClickHouse sink and `send --http`
# (basic auth; proxies kept, both set NOPROXY themselves), HTTP/2 with prior knowledge over
# the nghttp2 built here for `send`'s gRPC; no other protocol, no compression, no IDN.
CURL_FLAGS=(--disable-shared --enable-static --disable-dependency-tracking --disable-ftp --disable-file
  --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3
  --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt --disable-manual --disable-ntlm
  --disable-ntlm-wb --disable-tls-srp --disable-alt-svc --disable-hsts --disable-websockets --disable-netrc
  --disable-cookies --disable-mime --without-libpsl --without-brotli --without-zstd --without-libidn2
  --without-librtmp --without-libssh2 --without-libssh --without-gssapi --without-hyper
  --without-zlib --with-nghttp2="$TOP/$SYSROOT")

# SQLite: Debian's compile-time choices that change what a program sees (limits, URI file
# names, LIKE on blobs, secure delete); not its extensions (FTS, R-tree, sessions), which
# lazybackend does not use. No loadable extensions: a static binary cannot dlopen.
SQLITE_FLAGS=(-DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_SECURE_DELETE -DSQLITE_USE_URI=1
  -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_MAX_SCHEMA_RETRY=25 -DSQLITE_MAX_VARIABLE_NUMBER=250000)

# Link order: users before what they use.
LINK_LIBS=(libcurl.a libnghttp2.a libsqlite3.a libhttp_parser.a libprotobuf-nanopb.a libssl.a libcrypto.a libz.a)

step() { echo "== static: [${SECONDS}s] $*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------- host packages, sources

install_host_packages() {
  local p missing=()
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  step "installing ${missing[*]}"
  as_root apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# apt-get source needs deb-src entries; Debian does not configure them by default.
enable_deb_src() {
  apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -qx Sources && return
  step "adding deb-src entries (/etc/apt/sources.list.d/deb-src.sources)"
  as_root tee /etc/apt/sources.list.d/deb-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  as_root apt-get update -q >&2
}

# $SRC/<package>/ holds the unpacked tree (Debian patches applied), $SRC/<package>.version
# the Debian version it is, $SRC/<package>.wanted the version asked for (the installed one,
# or nothing). Fetched again only when the wanted version changed.
fetch() {   # source-package binary-package
  local pkg=$1 bin=$2 want tmp spec
  want=$(dpkg-query -W -f='${source:Version}' "$bin" 2>/dev/null || true)
  if [ -d "$SRC/$pkg" ] && [ -f "$SRC/$pkg.version" ] && [ "$(cat "$SRC/$pkg.wanted" 2>/dev/null)" = "$want" ]; then
    return
  fi
  tmp=$SRC/fetch.$pkg
  rm -rf "$tmp" "$SRC/$pkg" "$SRC/$pkg.version" "$SRC/$pkg.wanted"
  mkdir -p "$tmp"
  spec=$pkg${want:+=$want}
  step "apt-get source $spec"
  if ! (cd "$tmp" && apt-get source -q -o APT::Sandbox::User=root "$spec" >&2); then
    # Not in the archive (any more), or a mirror that lists a version it cannot serve yet:
    # the archive's versions, newest first, until one comes.
    local v got=""
    for v in $(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u |
               sort -r -V); do
      [ "$v" != "$want" ] || continue
      echo "note: $pkg ${want:-(no version wanted)} could not be fetched; trying $v" >&2
      rm -rf "${tmp:?}"/*
      if (cd "$tmp" && apt-get source -q -o APT::Sandbox::User=root "$pkg=$v" >&2); then
        got=$v
        break
      fi
    done
    [ -n "$got" ] || { echo "cannot fetch the source of $pkg" >&2; exit 1; }
  fi
  sed -n 's/^Version: //p' "$tmp"/*.dsc | head -1 > "$SRC/$pkg.version"
  mv "$tmp"/*/ "$SRC/$pkg"
  echo "$want" > "$SRC/$pkg.wanted"
  rm -rf "$tmp"
}

fetch_all() {
  mkdir -p "$SRC"
  local line
  for line in "${SOURCES[@]}"; do
    # shellcheck disable=SC2086
    fetch $line
  done
}

# ---------------------------------------------------------------- libraries

# Flags for every object, ours too: one section per function and datum (the link drops the
# unused ones), and the checkout, the fetched sources and the build tree become fixed names in
# the binary (assert messages, debug info), whatever the checkout's path.
common_cflags() {
  echo "-ffunction-sections -fdata-sections -ffile-prefix-map=$TOP/=" \
       "-ffile-prefix-map=$TOP/$SRC=src -ffile-prefix-map=$TOP/$OBJ=obj -ffile-prefix-map=$TOP/$DEPS=deps"
}
# The libraries' (ours get the Makefile's -O2 and warnings).
lib_cflags() { echo "-O2 $(common_cflags)"; }

# A library is rebuilt when its .a is missing, its source version changed or this script
# (its flags) changed: the stamp beside the .a holds both.
stamp() { cat "$SRC/$1.version"; sha256sum < "$TOP/scripts/build-static.sh"; }
built() {   # library.a source-package
  [ -f "$SYSROOT/lib/$1" ] && [ "$(stamp "$2")" = "$(cat "$DEPS/$1.stamp" 2>/dev/null)" ]
}
mark_built() { stamp "$2" > "$DEPS/$1.stamp"; }

# Compiles the given .c files into $DEPS/<dir>/ (one object per file, named after it) and
# archives them in name order.
compile_archive() {   # dir library.a cflags... -- files...
  local dir=$1 lib=$2; shift 2
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done; shift
  rm -rf "${DEPS:?}/$dir"; mkdir -p "$DEPS/$dir"
  # shellcheck disable=SC2046
  (cd "$DEPS/$dir" && printf '%s\0' "$@" | sort -z |
     xargs -0 -n 1 -P "$JOBS" musl-gcc $(lib_cflags) "${flags[@]}" -c &&
   rm -f "$TOP/$SYSROOT/lib/$lib" && ls -1 ./*.o | sort | xargs ar rcsD "$TOP/$SYSROOT/lib/$lib")
}

build_zlib() {
  built libz.a zlib && return
  step "zlib $(cat "$SRC/zlib.version")"
  local z=$TOP/$SRC/zlib f files=()
  for f in adler32 crc32 deflate infback inffast inflate inftrees trees zutil compress uncompr \
           gzclose gzlib gzread gzwrite; do files+=("$z/$f.c"); done
  compile_archive zlib libz.a -D_REENTRANT -DHAVE_UNISTD_H -DHAVE_STDARG_H -- "${files[@]}"
  cp "$z/zlib.h" "$z/zconf.h" "$SYSROOT/include/"
  mark_built libz.a zlib
}

build_nghttp2() {
  built libnghttp2.a nghttp2 && return
  step "nghttp2 $(cat "$SRC/nghttp2.version")"
  local ng=$TOP/$SRC/nghttp2/lib v num
  # nghttp2ver.h is what configure would write: the version from configure.ac.
  v=$(sed -n 's/^AC_INIT(\[nghttp2\], \[\([0-9.]*\)\].*/\1/p' "$TOP/$SRC/nghttp2/configure.ac")
  num=$(printf '0x%02x%02x%02x' ${v//./ })
  mkdir -p "$SYSROOT/include/nghttp2"
  sed -e "s/@PACKAGE_VERSION@/$v/" -e "s/@PACKAGE_VERSION_NUM@/$num/" \
      "$ng/includes/nghttp2/nghttp2ver.h.in" > "$SYSROOT/include/nghttp2/nghttp2ver.h"
  cp "$ng/includes/nghttp2/nghttp2.h" "$SYSROOT/include/nghttp2/"
  compile_archive nghttp2 libnghttp2.a -DHAVE_ARPA_INET_H -DHAVE_NETINET_IN_H -DHAVE_TIME_H \
      -DHAVE_CLOCK_GETTIME -DBUILDING_NGHTTP2 -DNGHTTP2_STATICLIB -I"$TOP/$SYSROOT/include" -I"$ng" \
      -- "$ng"/*.c
  mark_built libnghttp2.a nghttp2
}

# Debian builds the library with upstream's CPPFLAGS_FAST: not strict.
build_http_parser() {
  built libhttp_parser.a http-parser && return
  step "http-parser $(cat "$SRC/http-parser.version")"
  local hp=$TOP/$SRC/http-parser
  compile_archive http-parser libhttp_parser.a -DHTTP_PARSER_STRICT=0 -- "$hp/http_parser.c"
  cp "$hp/http_parser.h" "$SYSROOT/include/"
  mark_built libhttp_parser.a http-parser
}

build_nanopb() {
  built libprotobuf-nanopb.a nanopb && return
  step "nanopb $(cat "$SRC/nanopb.version")"
  local pb=$TOP/$SRC/nanopb
  compile_archive nanopb libprotobuf-nanopb.a -- "$pb/pb_common.c" "$pb/pb_decode.c" "$pb/pb_encode.c"
  cp "$pb/pb.h" "$pb/pb_common.h" "$pb/pb_decode.h" "$pb/pb_encode.h" "$SYSROOT/include/"
  mark_built libprotobuf-nanopb.a nanopb
}

# Debian's sqlite3 source is the canonical tree: its own configure and tclsh generate the
# amalgamation (sqlite3.c, sqlite3.h), which musl-gcc then compiles.
build_sqlite() {
  built libsqlite3.a sqlite3 && return
  step "sqlite3 $(cat "$SRC/sqlite3.version") (amalgamation, then compile)"
  local b=$DEPS/sqlite-amalgamation
  rm -rf "$b"; mkdir -p "$b"
  (cd "$b" && "$TOP/$SRC/sqlite3/configure" --quiet >/dev/null && make -s sqlite3.c >/dev/null)
  compile_archive sqlite libsqlite3.a "${SQLITE_FLAGS[@]}" -- "$TOP/$b/sqlite3.c"
  cp "$b/sqlite3.h" "$SYSROOT/include/"
  mark_built libsqlite3.a sqlite3
}

build_curl() {
  built libcurl.a curl && return
  step "curl $(cat "$SRC/curl.version") (configure, then lib/)"
  local b=$DEPS/curl
  rm -rf "$b"; mkdir -p "$b"
  (cd "$b" && "$TOP/$SRC/curl/configure" --quiet CC=musl-gcc CFLAGS="$(lib_cflags)" \
       "${CURL_FLAGS[@]}" "${CURL_TLS[@]}" >/dev/null &&
   make -s -j"$JOBS" -C lib AR_FLAGS=crD libcurl.la >/dev/null)
  cp "$b/lib/.libs/libcurl.a" "$SYSROOT/lib/"
  mkdir -p "$SYSROOT/include/curl"
  cp "$SRC"/curl/include/curl/*.h "$SYSROOT/include/curl/"
  mark_built libcurl.a curl
}

# OpenSSL's own Configure and Makefile, libraries only (build_libs). The compiler is given by
# name (a wrapper on PATH that adds the common flags), not by path: OpenSSL keeps its compile
# command in the library (OpenSSL_version(OPENSSL_CFLAGS)), and a path there would make the
# binary depend on where it was built. Its build date comes from SOURCE_DATE_EPOCH.
build_openssl() {
  built libssl.a openssl && built libcrypto.a openssl && return
  step "openssl $(cat "$SRC/openssl.version") (Configure, then make build_libs)"
  local b=$DEPS/openssl
  rm -rf "$b"; mkdir -p "$b" "$DEPS/bin"
  printf '#!/bin/sh\nexec musl-gcc %s "$@"\n' "$(common_cflags)" > "$DEPS/bin/lb-musl-cc"
  chmod 755 "$DEPS/bin/lb-musl-cc"
  (cd "$b" && export PATH="$TOP/$DEPS/bin:$PATH" &&
   "$TOP/$SRC/openssl/Configure" linux-x86_64 CC=lb-musl-cc --prefix=/usr/local --openssldir=/etc/ssl \
       --libdir=lib "${OPENSSL_FLAGS[@]}" -O2 >/dev/null &&
   make -s -j"$JOBS" build_libs >/dev/null)
  cp "$b/libssl.a" "$b/libcrypto.a" "$SYSROOT/lib/"
  rm -rf "$SYSROOT/include/openssl"; mkdir -p "$SYSROOT/include/openssl"
  cp "$SRC"/openssl/include/openssl/*.h "$SYSROOT/include/openssl/"
  cp "$b"/include/openssl/*.h "$SYSROOT/include/openssl/"   # the generated ones
  mark_built libssl.a openssl
  mark_built libcrypto.a openssl
}

# ---------------------------------------------------------------- lazybackend

# The Makefile's own rules compile the project (generator step included) into $OBJ/lazybackend
# with musl-gcc; only the libraries and the link differ from the dynamic build.
build_lazybackend() {
  step "lazybackend (make CC=musl-gcc BUILD=$OBJ/lazybackend)"
  local libs=() l
  # make sees neither the libraries' headers (system headers to -MMD) nor their .a files:
  # other libraries than the last build's mean recompiling our code (their stamps say which),
  # and the link is always redone.
  local deps
  deps=$(cat "$DEPS"/*.stamp | sha256sum)
  [ "$deps" = "$(cat "$OBJ/lazybackend.deps" 2>/dev/null)" ] || rm -rf "${OBJ:?}/lazybackend"
  mkdir -p "$OBJ/lazybackend"
  echo "$deps" > "$OBJ/lazybackend.deps"
  rm -f "$OBJ/lazybackend/lazybackend"
  for l in "${LINK_LIBS[@]}"; do libs+=("$TOP/$SYSROOT/lib/$l"); done
  CPPFLAGS="-isystem $TOP/$SYSROOT/include" \
  CFLAGS="$(common_cflags)" \
  LDFLAGS="-static -Wl,--gc-sections" \
  make --no-print-directory -s -j"$JOBS" CC=musl-gcc BUILD="$OBJ/lazybackend" \
       BIN="$OBJ/lazybackend/lazybackend" LDLIBS="${libs[*]} -lm" "$OBJ/lazybackend/lazybackend"
}

package() {
  mkdir -p "$DIST"
  strip --strip-all -o "$DIST/$NAME.tmp" "$OBJ/lazybackend/lazybackend"
  mv "$DIST/$NAME.tmp" "$DIST/$NAME"
  (cd "$DIST" && sha256sum "$NAME" > "$NAME.sha256")
  local line pkg
  for line in "${SOURCES[@]}"; do
    pkg=${line%% *}
    echo "$pkg $(cat "$SRC/$pkg.version")"
  done > "$DIST/$NAME.sources"
  step "$DIST/$NAME: $(stat -c %s "$DIST/$NAME") bytes, sha256 $(cut -d' ' -f1 "$DIST/$NAME.sha256")"
}

install_host_packages
enable_deb_src
fetch_all
mkdir -p "$SYSROOT/include" "$SYSROOT/lib"
build_zlib
build_nghttp2
build_http_parser
build_nanopb
build_sqlite
build_openssl
build_curl
build_lazybackend
package
