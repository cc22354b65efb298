#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: set up, build, boot the VM and play tests/vm/demo.sh, showing
# what the guest printed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"
t0=$(date +%s)
scripts/setup.sh
kb=$(scripts/build-kernel.sh test)
make -s KDIR="$kb" modules
cargo build --release -q -p fr1ctl
mkdir -p out/demo
scripts/vm.sh -k "$kb" -m fr1.ko -o out/demo demo.sh >out/demo/vm.log 2>&1 || true
r=out/demo/demo/result.ktap
sed -e '/^# fr1-/d' "$r"
grep -q '^# fr1-exit: 0' "$r" || die "the demo failed (see out/demo/demo/console.log)"
# The two lines that say what was just shown.
echo
sed -n 's/^# fr1-summary: //p' "$r"
echo "The copy took $(sed -n 's/^# fr1-resync-secs: //p' "$r") s (throttled to 1 MB/s so the bar shows); the whole make demo took $(( $(date +%s) - t0 )) s (set-up, builds and VM boot included)."
