# SPDX-License-Identifier: GPL-2.0
#
# fr1 top-level Makefile.
#
#   make               build fr1.ko against the cached test kernel (or KDIR=...)
#   make CLIPPY=1      the same, with clippy through Kbuild
#   make check         the README's test command: setup, kernel, module, host
#                      tests, VM kselftests; ends with "N passed, N failed"
#   make demo          boot the VM and show fr1 at work
#   make bench         fr1 vs md raid1 side by side (bench kernel); bench-quick,
#                      bench-check (the check section alone)
#   make test-host     cargo test of the pure logic (and fr1ctl)
#   make fmt / fmtcheck  rustfmt
#   make install       fr1ctl, its man pages and shell completions into
#                      $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)
#   make clean

FR1_CACHE ?= $(HOME)/.cache/fr1
# Default KDIR: the cached test kernel built by scripts/build-kernel.sh. Any
# other built, Rust-enabled tree works: make KDIR=/path/to/linux.
KDIR ?= $(shell scripts/build-kernel.sh test 2>/dev/null)

# The module must be built by the kernel's own compiler (E0514 otherwise).
# CC/LD are explicit so that a caller's (e.g. dkms's CC=clang) cannot pick
# another compiler than the kernel's LLVM 22.
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=-22 CC=clang-22 LD=ld.lld-22 RUSTC=/usr/bin/rustc \
	CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$(HOME)/.cargo/bin/bindgen \
	LIBCLANG_PATH=/usr/lib/llvm-22/lib

# make install: fr1ctl under $(DESTDIR)$(PREFIX), and the uapi header of
# fr1's own ioctls (include/linux/fr1.h).
PREFIX ?= /usr/local
DESTDIR ?=

RUSTFMT ?= rustfmt
RS_SOURCES = $(shell find src fr1ctl -name '*.rs' ! -name glue_generated.rs 2>/dev/null)

.PHONY: all modules clean check check-kasan demo bench bench-check bench-quick profile test-host fmt fmtcheck kernel \
	setup install

all: modules

modules:
	@test -n "$(KDIR)" || { echo "no kernel: run scripts/setup.sh and scripts/build-kernel.sh, or pass KDIR=" >&2; exit 1; }
	$(KMAKE) modules

kernel:
	scripts/build-kernel.sh test

setup:
	scripts/setup.sh

test-host:
	cargo test --workspace

fmt:
	$(RUSTFMT) --edition 2021 $(RS_SOURCES)

fmtcheck:
	$(RUSTFMT) --edition 2021 --check $(RS_SOURCES)

check:
	scripts/check.sh

check-kasan:
	scripts/check-kasan.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

bench-check:
	scripts/bench.sh --check

bench-quick:
	scripts/bench.sh --quick

profile:
	scripts/profile.sh

# The binary to sbin, the man pages (fr1ctl.8 and fr1ctl-VERB.8) to man8, the
# completions to bash-completion's, zsh's and fish's standard directories.
# fr1ctl-build.sh runs cargo build --release -p fr1ctl and says where cargo
# put the binary and what build.rs generated.
install:
	@eval "$$(scripts/fr1ctl-build.sh)" && d='$(DESTDIR)$(PREFIX)' && set -x && \
	install -d "$$d/sbin" "$$d/share/man/man8" "$$d/share/bash-completion/completions" \
		"$$d/share/zsh/site-functions" "$$d/share/fish/vendor_completions.d" \
		"$$d/include/linux" && \
	install -m 0644 include/uapi/linux/fr1.h "$$d/include/linux/fr1.h" && \
	install -m 0755 "$$bin" "$$d/sbin/fr1ctl" && \
	install -m 0644 "$$assets"/*.8 "$$d/share/man/man8/" && \
	install -m 0644 "$$assets/fr1ctl.bash" "$$d/share/bash-completion/completions/fr1ctl" && \
	install -m 0644 "$$assets/_fr1ctl" "$$d/share/zsh/site-functions/_fr1ctl" && \
	install -m 0644 "$$assets/fr1ctl.fish" "$$d/share/fish/vendor_completions.d/fr1ctl.fish"

clean:
	@test -z "$(KDIR)" || $(KMAKE) clean
	cargo clean
