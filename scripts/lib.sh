# SPDX-License-Identifier: GPL-2.0
# Shared settings for fr1's scripts. Source it; it defines no side effects.

FR1_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FR1_CACHE=${FR1_CACHE:-$HOME/.cache/fr1}
# The kernel series fr1 targets and the Debian package that carries it.
FR1_KSERIES=7.3
FR1_KSRC_PKG=linux-source-$FR1_KSERIES
# Where setup.sh unpacks the kernel source (one directory per package version).
FR1_SRC_DIR=$FR1_CACHE/src
FR1_MDADM44=$FR1_CACHE/mdadm-4.4

# The toolchain the kernel and the module must share (E0514 otherwise).
# RUSTC is not exported: cargo reads it from the environment, and the host
# crates are built by rustup's toolchain (rust-toolchain.toml).
export LLVM=-22
RUSTC=/usr/bin/rustc
export LIBCLANG_PATH=/usr/lib/llvm-22/lib
BINDGEN=${BINDGEN:-$HOME/.cargo/bin/bindgen}

log() { printf '[fr1 %s] %s\n' "${0##*/}" "$*" >&2; }
die() { printf '[fr1 %s] ERROR: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# The unpacked kernel source tree recorded by setup.sh.
fr1_ksrc() {
	local f=$FR1_SRC_DIR/current
	[ -f "$f" ] || die "no kernel source: run scripts/setup.sh first"
	cat "$f"
}
