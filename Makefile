# lazybackend - see README.md.
#   make            build ./lazybackend (installs missing build packages first)
#   make run        run it on 127.0.0.1:4317 (gRPC) and :4318 (OTLP/HTTP and the web UI), printing
#                   every sample and storing it in build/run.db for the UI
#   make test       install the test packages, build and run the whole suite; ends with "N passed, N failed"
#   make test SANITIZE=1   the same under ASan+UBSan
#   make CC=clang   any C11 compiler; gcc and clang are both kept warning-free
#   make fuzz       the libFuzzer targets build/fuzz/fuzz_* (clang); scripts/fuzz runs them
#   make static     the fully static binary for nodes, dist/lazybackend-VERSION-linux-ARCH
#                   (musl, libraries rebuilt from Debian sources; docs/static-build.md)
#   make install    the binary, the systemd unit and the man page under PREFIX (/usr/local),
#                   below DESTDIR when given; make uninstall removes them
#   make examples   build/examples/usdt-app, the USDT example program (docs/usdt.md)
CC       ?= cc
SANITIZE ?= 0
NANOPB_GEN ?= /usr/bin/nanopb_generator.py

ifeq ($(SANITIZE),1)
BUILD    := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
else
BUILD    := build/rel
SANFLAGS :=
OPT      := -O2
endif

# The fuzz build (make fuzz): clang, coverage for libFuzzer, ASan+UBSan, in its own tree.
FUZZ     ?= 0
ifeq ($(FUZZ),1)
BUILD    := build/fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
endif

PKGS     := libnghttp2 zlib sqlite3 libcurl libssl libcrypto
CPPFLAGS += -I. -I$(BUILD)/pb -I$(BUILD) -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lnghttp2 -lz -lsqlite3 -lcurl -lssl -lcrypto) -lprotobuf-nanopb -lhttp_parser -lm

# The nanopb-generated messages: the envelope, the v1.11 messages the JSON transcoder and the
# responses need, and traces. pb/profiles_v1_{7,8,9}.proto are not compiled: they are the
# tests' reference encoder's schemas; the decoder reads those layouts from otlp/layouts.c.
PROTOS   := common profiles profiles_service trace trace_service
PB_C     := $(PROTOS:%=$(BUILD)/pb/%.pb.c)
PB_H     := $(PROTOS:%=$(BUILD)/pb/%.pb.h)
# Every .c below the layer folders (one level of sub-folders: sinks/<sink>/, cmd/ ...).
LIB_SRC  := $(foreach d,lib h2 otlp sinks ui cmd,$(wildcard $(d)/*.c $(d)/*/*.c))
# The web UI's files, embedded into the binary as one generated C source.
UI_ASSETS := $(sort $(wildcard ui/assets/*))
OBJS     := $(LIB_SRC:%.c=$(BUILD)/%.o) $(PB_C:%.c=%.o) $(BUILD)/ui/assets.o
BIN      := lazybackend
ifeq ($(SANITIZE),1)
BIN      := $(BUILD)/lazybackend
endif
TEST_BINS := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(wildcard test/unit/*.c))

.PHONY: all run test tests deps test-deps clean bench fuzz static examples
.SECONDARY:
all: deps $(BIN)

# Building and running need only the build packages; the suite installs the rest.
deps:
	@scripts/install-deps.sh --quiet build
test-deps:
	@scripts/install-deps.sh --quiet test

# The commit --version names, rewritten only when it changes (so nothing rebuilds for nothing).
VERSION_H := $(BUILD)/build_commit.h
.PHONY: FORCE
$(VERSION_H): FORCE
	@mkdir -p $(BUILD); v="#define LAZYBACKEND_COMMIT \"$$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)\""; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" > $@
$(BUILD)/cmd/version.o: $(VERSION_H)

$(BUILD)/pb/%.pb.c $(BUILD)/pb/%.pb.h: pb/%.proto pb/%.options
	@mkdir -p $(BUILD)/pb
	cd pb && $(NANOPB_GEN) -q -D ../$(BUILD)/pb $*.proto

# Generated headers first: every object may include them.
$(BUILD)/%.o: %.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/ui/assets.c: $(UI_ASSETS) scripts/embed-assets.awk
	@mkdir -p $(dir $@)
	LC_ALL=C awk -f scripts/embed-assets.awk $(UI_ASSETS) > $@.tmp && mv $@.tmp $@

$(BUILD)/ui/assets.o: $(BUILD)/ui/assets.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/pb/%.pb.o: $(BUILD)/pb/%.pb.c $(PB_H)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BIN): $(BUILD)/main.o $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/%: test/unit/%.c $(OBJS) $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OBJS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_decode: test/bench/bench_decode.c $(OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OBJS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_usdt: test/bench/bench_usdt.c $(OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OBJS) $(LDFLAGS) $(LDLIBS)

# One libFuzzer target per network parser (test/fuzz/fuzz_*.c), each linked with the shared
# harness: fuzz_decode (detector, decoder, sinks), fuzz_check (the conformance checker), fuzz_json (OTLP/JSON transcoder),
# fuzz_traces (traces decoder), fuzz_http (the HTTP port), fuzz_grpc (gRPC framing, gRPC port),
# fuzz_usdt (the usdt bridge's lines, pairing and encoding), fuzz_wal (the write-ahead log
# and its records read back), fuzz_query_rows (ClickHouse's RowBinary answers to the query
# commands), fuzz_auth (the bearer-token file and the Authorization header), fuzz_store_blobs
# (attribute lists and request content read back from ClickHouse by export).
FUZZ_TARGETS := $(patsubst test/fuzz/%.c,%,$(wildcard test/fuzz/fuzz_*.c))
FUZZ_HARNESS := test/fuzz/harness.c
$(BUILD)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_HARNESS) test/fuzz/harness.h $(OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_HARNESS) $(OBJS) $(LDFLAGS) $(LDLIBS)

fuzz: test-deps
	@$(MAKE) --no-print-directory FUZZ=1 CC=clang $(FUZZ_TARGETS:%=build/fuzz/%)

# The static binary: scripts/build-static.sh rebuilds the libraries with musl-gcc from Debian
# source packages under build/static/, then calls this Makefile again (CC=musl-gcc, BUILD
# under build/static/obj) for our own code. The dynamic build stays the default.
VERSION := $(shell sed -n 's/^.define LAZYBACKEND_VERSION "\(.*\)"/\1/p' cmd/version.h)
static: deps
	@VERSION=$(VERSION) scripts/build-static.sh
# The example programs: not part of the binary, built with the same compiler and warnings,
# without the project's flags (each stands alone). <sys/sdt.h> is a test package's.
EXAMPLES := build/examples/usdt-app
build/examples/usdt-app: examples/usdt-app/usdt-app.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror -o $@ $<

examples: test-deps $(EXAMPLES)

# Everything that compiles, for the compiler matrix in .ci/run.
tests: $(BIN) $(TEST_BINS) $(BUILD)/bench_decode $(BUILD)/bench_usdt $(EXAMPLES)

# The store beside the printout, so the web UI (http://127.0.0.1:4318/) shows what arrives.
run: all
	./$(BIN) --sink stdout --sink sqlite --sqlite-path build/run.db

test: test-deps $(BIN) $(TEST_BINS) $(EXAMPLES)
	@SANITIZE=$(SANITIZE) BUILD=$(BUILD) LAZYBACKEND=$(abspath $(BIN)) test/run.sh

bench: test-deps all
	scripts/bench

# make install: $(PREFIX)/bin/lazybackend, the unit in $(PREFIX)/lib/systemd/system (where
# systemd looks for the units of /usr/local and /usr: `systemd-analyze unit-paths`), its
# ExecStart= rewritten to this PREFIX, and lazybackend(1) generated from --help
# (scripts/manpage). DESTDIR stages it all elsewhere (packaging, tests): no root needed.
PREFIX  ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR  ?= $(PREFIX)/share/man
MANPAGE := $(BUILD)/lazybackend.1
.PHONY: install uninstall man
man: $(MANPAGE)
$(MANPAGE): $(BIN) scripts/manpage
	scripts/manpage $(abspath $(BIN)) > $@.tmp && mv $@.tmp $@

# The binary installed: this build's, or another one (INSTALL_BIN=dist/lazybackend-...-linux-x86_64).
INSTALL_BIN ?= $(BIN)
install: $(INSTALL_BIN) $(MANPAGE)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/lazybackend
	sed 's|^ExecStart=/usr/local/bin/|ExecStart=$(PREFIX)/bin/|' dist/systemd/lazybackend.service \
	  > $(DESTDIR)$(UNITDIR)/lazybackend.service
	chmod 644 $(DESTDIR)$(UNITDIR)/lazybackend.service
	install -m 644 $(MANPAGE) $(DESTDIR)$(MANDIR)/man1/lazybackend.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lazybackend $(DESTDIR)$(UNITDIR)/lazybackend.service \
	  $(DESTDIR)$(MANDIR)/man1/lazybackend.1

clean:
	rm -rf build lazybackend

# Only this build's dependency files: build/static/src holds other projects' *.d files.
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
