#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `make bench --quick`: small sizes, one repetition.
# fr1-disks: 0 0
# fr1-mem: 3G
# fr1-timeout: 900
SIZE_MB=256 RUNTIME=2 REPS=1 KS="10 1000"
. /tests/bench_lib.sh
