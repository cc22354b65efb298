#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `make bench`: 2 GiB arrays, three repetitions.
# fr1-disks: 0 0
# fr1-mem: 14G
# fr1-timeout: 5400
SIZE_MB=2048 RUNTIME=8 REPS=3 KS="10 1000 100000"
. /tests/bench_lib.sh
