#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything fr1 needs on Debian 12, from Debian's packages and
# crates.io only. Idempotent: a second run only checks and takes seconds.
# `make demo` and `make check` run it first. Only apt-get install needs
# root: as root it runs directly, otherwise through sudo; everything else
# (bindgen, the kernel source, mdadm 4.4, the venv) lands in the user's
# $FR1_CACHE and ~/.cargo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(
	# kernel + module toolchain (LLVM 22 and Debian's rustc 1.96 must match)
	clang-22 lld-22 llvm-22 libclang-22-dev
	rustc-web rust-web-src rust-web-clippy
	bc flex bison libelf-dev libssl-dev make cpio kmod xz-utils
	# the VM and the real tools the guest runs
	qemu-system-x86 busybox-static fio linux-perf mdadm dmsetup util-linux e2fsprogs
	# network legs in the guest: NBD client and server, NVMe over TCP
	nbd-client nbd-server nvme-cli
	# dm-integrity legs (checksum failures as read errors): integritysetup
	cryptsetup-bin
	# tests and benchmarks on the host
	python3 python3-venv diffutils dkms patchelf
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	asroot=()
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || die "to install ${missing[*]}: run as root, or install sudo"
		asroot=(sudo DEBIAN_FRONTEND=noninteractive)
	fi
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${asroot[@]}" apt-get update -q || die "apt-get update failed"
	# --no-upgrade: never touch packages that are already installed.
	"${asroot[@]}" apt-get install -y -q --no-install-recommends --no-upgrade "${missing[@]}" \
		|| die "apt-get install failed for: ${missing[*]}"
else
	log "Debian packages: all ${#PKGS[@]} present"
fi

# bindgen 0.72.1: the first release that works with libclang >= 22.
want_bindgen=0.72.1
if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $want_bindgen\$"; then
	log "bindgen $want_bindgen present"
else
	log "installing bindgen-cli $want_bindgen with cargo"
	command -v cargo >/dev/null || die "cargo (rustup) not found"
	cargo install --locked --version "$want_bindgen" bindgen-cli \
		|| die "cargo install bindgen-cli failed"
fi

# Debian packages of another suite, fetched with a private apt state so this
# machine is never upgraded: papt SUITE apt-get|apt-cache ARGS...
papt() {
	local suite=$1 tool=$2 apt=$FR1_CACHE/apt/$1
	shift 2
	mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/cache"
	cat >"$apt/sources.list" <<-SRC
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
	SRC
	"$tool" -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" \
		-o Dir::State::Status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=0 \
		-o APT::Sandbox::User=root "$@"
}

# The kernel source: Debian's linux-source-7.3, from trixie-backports (or sid).
fetch_kernel_source() {
	local suite ver deb
	mkdir -p "$FR1_SRC_DIR"
	for suite in trixie-backports sid; do
		log "looking for $FR1_KSRC_PKG in $suite"
		papt "$suite" apt-get update -q >/dev/null || { log "apt update of $suite failed"; continue; }
		ver=$(papt "$suite" apt-cache show "$FR1_KSRC_PKG" 2>/dev/null \
			| awk '/^Version:/{print $2; exit}') || true
		[ -n "$ver" ] || { log "$FR1_KSRC_PKG not in $suite"; continue; }
		if [ -f "$FR1_SRC_DIR/$ver/.unpacked" ]; then
			echo "$FR1_SRC_DIR/$ver/tree" >"$FR1_SRC_DIR/current"
			echo "$ver" >"$FR1_SRC_DIR/version"
			log "kernel source $FR1_KSRC_PKG $ver ($suite) already unpacked"
			return 0
		fi
		log "downloading $FR1_KSRC_PKG $ver from $suite"
		local arch=$FR1_CACHE/apt/$suite/archives
		(cd "$arch" && papt "$suite" apt-get download "$FR1_KSRC_PKG=$ver") \
			|| die "apt-get download $FR1_KSRC_PKG=$ver failed"
		deb=$(ls "$arch/${FR1_KSRC_PKG}_"*.deb | head -n1)
		rm -rf "$FR1_SRC_DIR/$ver"
		mkdir -p "$FR1_SRC_DIR/$ver/deb" "$FR1_SRC_DIR/$ver/tree"
		dpkg -x "$deb" "$FR1_SRC_DIR/$ver/deb"
		local tarball
		tarball=$(ls "$FR1_SRC_DIR/$ver/deb/usr/src/"linux-source-*.tar.* | head -n1)
		[ -f "$tarball" ] || die "no source tarball inside $deb"
		log "unpacking $tarball"
		tar -xf "$tarball" -C "$FR1_SRC_DIR/$ver/tree" --strip-components=1
		rm -rf "$FR1_SRC_DIR/$ver/deb" "$deb"
		touch "$FR1_SRC_DIR/$ver/.unpacked"
		echo "$FR1_SRC_DIR/$ver/tree" >"$FR1_SRC_DIR/current"
		echo "$ver" >"$FR1_SRC_DIR/version"
		log "kernel source: $FR1_KSRC_PKG $ver from $suite"
		return 0
	done
	die "$FR1_KSRC_PKG found in neither trixie-backports nor sid"
}

if [ -f "$FR1_SRC_DIR/current" ] && [ -f "$(cat "$FR1_SRC_DIR/current")/../.unpacked" ]; then
	log "kernel source $(cat "$FR1_SRC_DIR/version") present"
else
	fetch_kernel_source
fi

# Debian 13's mdadm 4.4 for the guest, beside the host's 4.2
# (tests/vm/test_mdadm44.sh): trixie's binary with trixie's own C library,
# relinked to find both under /opt/mdadm-4.4 (scripts/mkinitramfs.sh).
fetch_mdadm44() {
	local dir=$FR1_MDADM44 arch=$FR1_CACHE/apt/trixie/archives tmp p
	log "downloading mdadm 4.4 and its libraries from trixie"
	papt trixie apt-get update -q >/dev/null || die "apt update of trixie failed"
	rm -rf "$dir" "$arch"/*.deb
	for p in mdadm libc6 libudev1 libcap2; do
		(cd "$arch" && papt trixie apt-get download "$p") || die "apt-get download $p (trixie) failed"
	done
	tmp=$(mktemp -d)
	for p in "$arch"/*.deb; do dpkg -x "$p" "$tmp"; done
	mkdir -p "$dir/sbin" "$dir/lib"
	cp "$tmp/sbin/mdadm" "$dir/sbin/mdadm" 2>/dev/null || cp "$tmp/usr/sbin/mdadm" "$dir/sbin/mdadm"
	cp -L "$tmp"/usr/lib/x86_64-linux-gnu/{ld-linux-x86-64.so.2,libc.so.6,libudev.so.1,libcap.so.2} "$dir/lib/"
	patchelf --set-interpreter /opt/mdadm-4.4/lib/ld-linux-x86-64.so.2 \
		--set-rpath /opt/mdadm-4.4/lib "$dir/sbin/mdadm" || die "patchelf of mdadm 4.4 failed"
	rm -rf "$tmp" "$arch"/*.deb
	"$dir/lib/ld-linux-x86-64.so.2" --library-path "$dir/lib" "$dir/sbin/mdadm" --version 2>&1 \
		| grep -q 'v4\.4' || die "the fetched mdadm is not 4.4"
	touch "$dir/.done"
	log "mdadm 4.4 in $dir"
}

if [ -f "$FR1_MDADM44/.done" ]; then
	log "mdadm 4.4 present"
else
	fetch_mdadm44
fi

# A real mdstat parser from PyPI, to prove fr1's /proc/mdstat reads as md's
# (tests/host/mdstat_parsers.py), in a private venv.
venv=$FR1_CACHE/venv
# matplotlib draws the benchmark's plots (scripts/bench_report.py).
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import mdstat, matplotlib' 2>/dev/null; then
	log "python venv with mdstat and matplotlib present"
else
	log "creating $venv with PyPI's mdstat 1.0.4 and matplotlib"
	[ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
	"$venv/bin/pip" install -q mdstat==1.0.4 matplotlib || die "pip install mdstat matplotlib failed"
fi

# Sanity: the toolchain the kernel and module share.
"$RUSTC" --version | grep -q '^rustc 1\.96' || die "$RUSTC is not 1.96: $($RUSTC --version)"
[ -d /usr/lib/rustlib/src/rust/library/core ] || die "rust-web-src missing (no core source)"
log "done"
