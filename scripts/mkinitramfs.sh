#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the guest's initramfs in two layers (the kernel unpacks concatenated
# cpio archives in order):
#   base.cpio  busybox-static, the real host tools the tests use (fio, mdadm,
#              dmsetup, ...) with their shared libraries, Debian 13's mdadm
#              4.4 under /opt/mdadm-4.4, and the kernel's modules. Cached,
#              keyed by the kernel build and the tool list.
#   run.cpio   /init, the tests, ktap_helpers.sh and fr1.ko (and fr1ctl with
#              its shared libraries, when built). Rebuilt every run; it is
#              small.
# Both are uncompressed: decompressing under TCG is slow.
#
# Usage: mkinitramfs.sh KBUILD OUTDIR FR1_KO
# Writes OUTDIR/initramfs.cpio.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kb=${1:?kernel build dir}
outdir=${2:?output dir}
ko=${3:?fr1.ko}
[ -f "$ko" ] || die "no module at $ko"
kver=$(cat "$kb/include/config/kernel.release")
ksrc=$(fr1_ksrc)

# Real tools copied from the host, with their ldd closure.
TOOLS=(
	/usr/bin/fio /sbin/mdadm /sbin/dmsetup /usr/bin/cmp /sbin/blockdev
	/sbin/losetup /usr/bin/setpriv /sbin/mke2fs /bin/kmod /bin/dd
	/usr/bin/sha256sum /bin/sync /usr/bin/stat /sbin/blkdiscard /usr/bin/fallocate /sbin/e2fsck
	/usr/sbin/nbd-client /usr/bin/nbd-server /usr/sbin/nvme /usr/sbin/integritysetup
)

key=$( { echo "$kb $kver"; cat "$kb/.done" 2>/dev/null; printf '%s\n' "${TOOLS[@]}";
	for t in "${TOOLS[@]}"; do stat -c '%n %s %Y' "$t"; done; cat "$0";
	find "$FR1_MDADM44" -type f -printf '%P %s %T@\n' 2>/dev/null | sort; } | sha256sum | cut -c1-16)
base=$FR1_CACHE/initramfs/base-$key.cpio
mkdir -p "$FR1_CACHE/initramfs" "$outdir"

copy_with_libs() { # copy_with_libs ROOT FILE...
	local root=$1 f lib
	shift
	for f in "$@"; do
		[ -e "$f" ] || die "missing host tool $f (run scripts/setup.sh)"
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
		for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
			[ -e "$root$lib" ] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
}

if [ ! -f "$base" ]; then
	log "building base initramfs ($base)"
	root=$(mktemp -d)
	trap 'rm -rf "$root"' EXIT
	chmod 755 "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,mnt,lib/modules}
	# Real tools first: busybox applets only fill the gaps (a symlink
	# created first would make cp overwrite busybox through it).
	copy_with_libs "$root" "${TOOLS[@]}"
	for a in modprobe insmod rmmod lsmod modinfo depmod; do
		ln -s /bin/kmod "$root/sbin/$a"
	done
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$root/bin/$a" ] || [ -e "$root/sbin/$a" ] || [ -e "$root/usr/bin/$a" ] \
			|| [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/bin/$a"
	done
	# Debian 13's mdadm 4.4 with its own C library (scripts/setup.sh).
	[ -f "$FR1_MDADM44/.done" ] || die "mdadm 4.4 missing (run scripts/setup.sh)"
	mkdir -p "$root/opt/mdadm-4.4"
	cp -a "$FR1_MDADM44/sbin" "$FR1_MDADM44/lib" "$root/opt/mdadm-4.4/"
	cp -a "$kb/modroot/lib/modules/$kver" "$root/lib/modules/"
	rm -f "$root/lib/modules/$kver"/{build,source}
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >>"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	# The kernel opens /dev/console for init before devtmpfs is mounted:
	# the device nodes come from the kernel's own gen_init_cpio, so no
	# mknod (and no root) is needed. Every file is root's in the guest.
	printf '%s\n' 'dir /dev 0755 0 0' 'nod /dev/console 0600 0 0 c 5 1' 'nod /dev/null 0666 0 0 c 1 3' \
		| "$kb/usr/gen_init_cpio" - >"$base.tmp"
	(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) >>"$base.tmp"
	mv "$base.tmp" "$base"
	rm -rf "$root"
	trap - EXIT
fi

# The per-run layer.
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
# The kernel applies each directory entry's mode, "." (the guest's /)
# included: mktemp's 0700 would lock every non-root user out.
chmod 755 "$run"
mkdir -p "$run/lib/modules/$kver/extra" "$run/tests" "$run/usr/bin"
cp "$ko" "$run/lib/modules/$kver/extra/fr1.ko"
cp "$FR1_ROOT/tests/vm/init" "$run/init"
chmod 755 "$run/init"
cp "$FR1_ROOT"/tests/vm/*.sh "$run/tests/"
cp "$ksrc/tools/testing/selftests/kselftest/ktap_helpers.sh" "$run/tests/"
# FR1_EXTRA_TOOLS: more host programs for this run only (e.g. /usr/bin/perf
# to profile in the guest), with their libraries.
# shellcheck disable=SC2086
[ -z "${FR1_EXTRA_TOOLS:-}" ] || copy_with_libs "$run" $FR1_EXTRA_TOOLS
if [ -x "$FR1_ROOT/target/release/fr1ctl" ]; then
	cp "$FR1_ROOT/target/release/fr1ctl" "$run/usr/bin/fr1ctl"
	# Its shared libraries (glibc's libc and libm, libgcc_s): the base layer
	# has them as the tools' libraries, but fr1ctl must not depend on which
	# tools those are. The same files, so the later copy changes nothing.
	for lib in $(ldd "$FR1_ROOT/target/release/fr1ctl" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$run$(dirname "$lib")"
		cp -L "$lib" "$run$lib"
	done
fi
(cd "$run" && find . | cpio -o -H newc -R 0:0 --quiet) >"$outdir/run.cpio"
cat "$base" "$outdir/run.cpio" >"$outdir/initramfs.cpio"
rm -f "$outdir/run.cpio"
