#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `make bench`: 2 GiB arrays; 3 repetitions of every target, 6 of a goal's
# targets (the fewest a 95 % interval needs), then more of the goals still
# undecided, up to 12.
# fr1-disks: 0 0
# fr1-mem: 14G
# fr1-timeout: 5400
SIZE_MB=2048 RUNTIME=4 INFO_REPS=3 MIN_REPS=6 MAX_REPS=12 KS="10 1000 100000"
. /tests/bench_lib.sh
