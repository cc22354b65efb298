#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs kselftest scripts of tests/vm/ in QEMU (TCG), one fresh VM per script,
# and judges them on the host.
#
# Usage: vm.sh [-k KBUILD] [-m FR1_KO] [-o OUTDIR] TEST.sh...
#
# Each script may declare in its header:
#   # fr1-disks: N SIZE     N virtio-blk disks (vda, vdb, ...) of SIZE, backed
#                           by raw files in OUTDIR/<test>/ (default: none)
#   # fr1-timeout: SECONDS  wall-clock limit (default 300)
#   # fr1-mem: SIZE         guest memory (default 1G)
# and may print at run time:
#   # fr1-host-cmp: vdX vdY LABEL   compare two disks byte for byte on the
#                           host after the VM ends (0.7 s/GiB here, 30 s/GiB in TCG)
#
# A script fails if any KTAP result is "not ok", if fewer results than its
# plan arrive (crash, hang, timeout), or if the guest console shows a kernel
# splat. Prints one line per result and writes OUTDIR/summary:
# "<passed> <failed> <skipped>".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kb= ko= outdir=$FR1_ROOT/out/vm
while getopts k:m:o: opt; do
	case $opt in
	k) kb=$OPTARG ;;
	m) ko=$OPTARG ;;
	o) outdir=$OPTARG ;;
	*) die "usage: vm.sh [-k KBUILD] [-m FR1_KO] [-o OUTDIR] TEST.sh..." ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$FR1_ROOT"/tests/vm/test_*.sh
kb=${kb:-$("$FR1_ROOT/scripts/build-kernel.sh" test)}
ko=${ko:-$FR1_ROOT/fr1.ko}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run scripts/setup.sh"

mkdir -p "$outdir"
"$FR1_ROOT/scripts/mkinitramfs.sh" "$kb" "$outdir" "$ko"

# What counts as a kernel splat (any of these fails the run).
SPLAT='BUG:|WARNING:|Oops|general protection|possible circular locking|inconsistent lock state|possible recursive locking|suspicious RCU usage|INFO: task .* blocked|hung task|soft lockup|hard LOCKUP|Kernel panic|KASAN|refcount_t:|UBSAN|Call Trace:|rust_panic|panicked at|kmemleak: fr1 leak'

passed=0 failed=0 skipped=0
report() { # report ok|fail|skip TEXT
	case $1 in
	ok) passed=$((passed + 1)); echo "ok: $2" ;;
	skip) skipped=$((skipped + 1)); echo "skip: $2" ;;
	*) failed=$((failed + 1)); echo "FAIL: $2" ;;
	esac
}

header() { # header FILE KEY DEFAULT
	local v
	v=$(sed -n "s/^# fr1-$2: *//p" "$1" | head -n1)
	echo "${v:-$3}"
}

for t in "$@"; do
	name=$(basename "$t")
	t=$FR1_ROOT/tests/vm/$name
	[ -f "$t" ] || die "no test $name in tests/vm/"
	dir=$outdir/${name%.sh}
	rm -rf "$dir"
	mkdir -p "$dir"
	timeout_s=$(header "$t" timeout 300)
	mem=$(header "$t" mem 1G)
	read -r ndisks dsize <<<"$(header "$t" disks "0 0")"
	drives=()
	for ((i = 0; i < ndisks; i++)); do
		truncate -s "$dsize" "$dir/disk$i.img"
		drives+=(-drive "if=none,id=d$i,file=$dir/disk$i.img,format=raw,cache=none,aio=threads"
			-device "virtio-blk-pci,drive=d$i,serial=fr1d$i")
	done
	start=$(date +%s)
	set +e
	timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 2 \
		-m "$mem" -nographic -no-reboot -kernel "$kb/arch/x86/boot/bzImage" \
		-initrd "$outdir/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 oops=panic softlockup_panic=1 hung_task_panic=1 fr1test=$name" \
		"${drives[@]}" \
		-device virtio-serial-pci -chardev "file,id=res,path=$dir/result.ktap" \
		-device virtserialport,chardev=res,name=fr1.result \
		</dev/null >"$dir/console.log" 2>&1
	qrc=$?
	set -e
	secs=$(($(date +%s) - start))
	res=$dir/result.ktap
	touch "$res"

	# Results of the script's own KTAP (top level only).
	plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$res" | head -n1)
	n=0
	while IFS= read -r line; do
		n=$((n + 1))
		desc=${line#* [0-9]* }
		case $line in
		"not ok "*) report fail "$name: $desc" ;;
		*"# SKIP"* | *"# skip"*) report skip "$name: $desc" ;;
		*) report ok "$name: $desc" ;;
		esac
	done < <(grep -E '^(not )?ok [0-9]+' "$res" || true)
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		report fail "$name: timed out after ${timeout_s}s"
	elif ! grep -q '^# fr1-exit:' "$res"; then
		report fail "$name: guest ended before the test finished (see $dir/console.log)"
	elif [ -z "$plan" ]; then
		report fail "$name: no KTAP plan"
	elif [ "$n" -lt "$plan" ]; then
		report fail "$name: only $n of $plan results"
	fi
	if grep -qE '^1\.\.0 # SKIP' "$res"; then
		report skip "$name: $(sed -n 's/^1\.\.0 # SKIP *//p' "$res")"
	fi
	if grep -qE "$SPLAT" "$dir/console.log"; then
		report fail "$name: kernel splat: $(grep -m1 -E "$SPLAT" "$dir/console.log")"
	fi
	# Host-side comparisons the test asked for.
	while read -r _ _ a b label; do
		ia=$dir/disk$(($(printf '%d' "'${a#vd}") - 97)).img
		ib=$dir/disk$(($(printf '%d' "'${b#vd}") - 97)).img
		if cmp -s "$ia" "$ib"; then
			report ok "$name: $label: $a and $b identical (host cmp)"
		else
			report fail "$name: $label: $a and $b differ: $(cmp "$ia" "$ib" 2>&1 | head -n1)"
		fi
	done < <(grep '^# fr1-host-cmp:' "$res" || true)
	echo "   ($name: ${secs}s, console: $dir/console.log)"
	rm -f "$dir"/disk*.img
done

echo "$passed $failed $skipped" >"$outdir/summary"
echo "VM: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
