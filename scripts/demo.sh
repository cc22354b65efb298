#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: set up, build, boot the VM and play tests/vm/demo.sh, showing
# what the guest printed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"
scripts/setup.sh
kb=$(scripts/build-kernel.sh test)
make -s KDIR="$kb" modules
mkdir -p out/demo
scripts/vm.sh -k "$kb" -m fr1.ko -o out/demo demo.sh >out/demo/vm.log 2>&1 || true
sed -e '/^# fr1-exit:/d' out/demo/demo/result.ktap
grep -q '^# fr1-exit: 0' out/demo/demo/result.ktap || die "the demo failed (see out/demo/demo/console.log)"
