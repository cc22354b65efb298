#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the Rust-enabled 7.3 kernel fr1 is tested on, out of tree, from
# tinyconfig + the fragments in tests/. The build is cached in
# $FR1_CACHE/kernel/<key>, keyed by the source package version, the fragments
# and the toolchain versions: with nothing changed a rerun takes seconds.
#
# Usage: build-kernel.sh [test|bench|kasan]
#   test  (default) tests/config + tests/config.debug (lockdep, Rust checks)
#   bench           tests/config + tests/config.bench (no debug options)
#   kasan           the test kernel + tests/config.kasan (make check-kasan)
# Prints the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-test}
case $variant in
test) frags=("$FR1_ROOT/tests/config" "$FR1_ROOT/tests/config.debug") ;;
bench) frags=("$FR1_ROOT/tests/config" "$FR1_ROOT/tests/config.bench") ;;
kasan) frags=("$FR1_ROOT/tests/config" "$FR1_ROOT/tests/config.debug" "$FR1_ROOT/tests/config.kasan") ;;
*) die "unknown variant '$variant' (test|bench|kasan)" ;;
esac
for f in "${frags[@]}"; do [ -f "$f" ] || die "missing fragment $f"; done

ksrc=$(fr1_ksrc)
kver=$(cat "$FR1_SRC_DIR/version")
[ -x "$BINDGEN" ] || die "bindgen not found at $BINDGEN: run scripts/setup.sh"

key=$( {
	echo "$kver"
	cat "${frags[@]}"
	"$RUSTC" --version
	clang-22 --version | head -n1
	"$BINDGEN" --version
} | sha256sum | cut -c1-16)
out=$FR1_CACHE/kernel/$variant-$key
mkdir -p "$FR1_CACHE/kernel"

if [ -f "$out/.done" ]; then
	log "kernel $kver ($variant) cached in $out"
	echo "$out"
	exit 0
fi

# One kernel build at a time on this machine.
exec 9>"$FR1_CACHE/kernel/.lock"
flock 9

kmake() {
	make -C "$ksrc" O="$out" LLVM="$LLVM" RUSTC="$RUSTC" BINDGEN="$BINDGEN" \
		LIBCLANG_PATH="$LIBCLANG_PATH" "$@"
}

start=$(date +%s)
mkdir -p "$out"
log "building kernel from $FR1_KSRC_PKG $kver ($variant) in $out"
echo "package: $FR1_KSRC_PKG $kver" >"$out/fr1-build.log"
echo "toolchain: $("$RUSTC" --version); $(clang-22 --version | head -n1); $("$BINDGEN" --version)" \
	>>"$out/fr1-build.log"

kmake rustavailable >&2 || die "the Rust toolchain is not usable for this kernel"
kmake tinyconfig >/dev/null
"$ksrc/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null
kmake olddefconfig >/dev/null

# Every option of the fragments must have taken effect.
bad=()
while IFS= read -r line; do
	case $line in '' | '#'*) continue ;; esac
	opt=${line%%=*}
	if [[ $line == *=n ]]; then
		grep -qx "$line\|# $opt is not set" "$out/.config" || bad+=("$line")
	else
		grep -qx -- "$line" "$out/.config" || bad+=("$line (got: $(grep "^$opt=\|^# $opt is" "$out/.config" || echo unset))")
	fi
done < <(cat "${frags[@]}")
if [ ${#bad[@]} -gt 0 ]; then
	printf '  %s\n' "${bad[@]}" >&2
	die "these config options did not take effect after olddefconfig"
fi
log "config verified ($(grep -c '=[ym]$' "$out/.config") options on)"

kmake -j"$(nproc)" all >>"$out/fr1-build.log" 2>&1 || {
	tail -n 40 "$out/fr1-build.log" >&2
	die "kernel build failed (full log: $out/fr1-build.log)"
}
rm -rf "$out/modroot"
kmake INSTALL_MOD_PATH="$out/modroot" modules_install >>"$out/fr1-build.log" 2>&1 \
	|| die "modules_install failed"
# Clippy for out-of-tree modules needs nothing more; record the time.
echo "built in $(( $(date +%s) - start )) s" >>"$out/fr1-build.log"
touch "$out/.done"
log "kernel built in $(( $(date +%s) - start )) s"
echo "$out"
