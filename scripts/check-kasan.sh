#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check-kasan`: the data-path, fault and resync VM tests on the KASAN
# kernel (scripts/build-kernel.sh kasan: the test kernel's lockdep, kmemleak
# and Rust checks plus generic inline KASAN). Any KASAN report fails the run
# (scripts/vm.sh's splat scan). Not part of `make check`: see README.md for
# the times that decided it. FR1_TESTS="test_a.sh ..." overrides the list.
# Ends with "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"

t0=$(date +%s)
scripts/setup.sh
kb=$(scripts/build-kernel.sh kasan)
mkdir -p out/kasan
rm -f src/fr1_main.o fr1.ko
make -s KDIR="$kb" modules >out/kasan/module-build.log 2>&1 || { tail -n 40 out/kasan/module-build.log; die "fr1.ko does not build"; }
cp fr1.ko out/kasan/fr1.ko
rm -f fr1.ko src/fr1_main.o
cargo build --release -p fr1ctl --color never >out/kasan/fr1ctl-build.log 2>&1 || die "fr1ctl does not build"
list=${FR1_TESTS:-"test_data_path.sh test_faults.sh test_resync.sh test_resync_faults.sh test_read_repair_race.sh test_write_behind.sh test_member_states.sh test_ioctl_errors.sh"}
tests=()
for t in $list; do tests+=("tests/vm/$t"); done
scripts/vm.sh -k "$kb" -m out/kasan/fr1.ko -o out/kasan/vm "${tests[@]}" || true
[ -f out/kasan/vm/summary ] || die "the VM harness did not run"
read -r vp vf vs <out/kasan/vm/summary
grep -h 'KASAN' out/kasan/vm/*/console.log 2>/dev/null | head -n 20 || true
log "check-kasan took $(( $(date +%s) - t0 )) s"
if [ "$vs" -gt 0 ]; then echo "$vp passed, $vf failed, $vs skipped"; else echo "$vp passed, $vf failed"; fi
[ "$vf" = 0 ]
