#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `scripts/bench.sh --check` (make bench-check): the check section of
# `make bench` alone, 2 GiB, 6 repetitions (the fewest a 95 % interval needs).
# fr1-disks: 0 0
# fr1-mem: 14G
# fr1-timeout: 1800
SIZE_MB=2048 MIN_REPS=6 SECTIONS=check
. /tests/bench_lib.sh
