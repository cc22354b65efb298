#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make profile`: perf profiles, in the bench kernel, of the workloads where
# fr1 trails md or a goal (tests/vm/profile_writes.sh). Prints the top
# symbols of each run; the output also lands in out/profile/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"
command -v perf >/dev/null || die "perf missing: apt-get install linux-perf"
kb=$(scripts/build-kernel.sh bench)
mkdir -p out/profile
make -s KDIR="$kb" modules
# The guest's fr1ctl (mkinitramfs.sh copies it in).
cargo build --release -q -p fr1ctl
cp fr1.ko out/profile/fr1.ko
rm -f fr1.ko src/fr1_main.o
FR1_EXTRA_TOOLS=$(command -v perf) scripts/vm.sh -k "$kb" -m out/profile/fr1.ko -o out/profile profile_writes.sh || true
grep '^# ' out/profile/profile_writes/result.ktap
