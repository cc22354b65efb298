#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: builds the non-debug bench kernel (cached like the test
# kernel) and fr1 against it, boots it once and runs every workload on fr1,
# md raid1 and the raw member (tests/vm/bench_lib.sh), then writes
# bench/results/<date>-<hash>.json, BENCHMARKS.md and SVG plots.
#
# Usage: bench.sh [--quick | --check]
#   --check: the check section alone (2 GiB, 6 repetitions); the report keeps
#   the other sections' records from the newest full run in bench/results.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FR1_ROOT"

mode=full
[ "${1:-}" = --quick ] && mode=quick
[ "${1:-}" = --check ] && mode=check
merge=()
if [ $mode = check ]; then
	last=$(grep -l '"mode": "full' bench/results/*.json 2>/dev/null | sort | tail -n 1 || true)
	[ -n "$last" ] && merge=(--merge "$last")
fi
scripts/setup.sh
kb=$(scripts/build-kernel.sh bench)
mkdir -p out/bench
make -s KDIR="$kb" modules
# The guest's fr1ctl (mkinitramfs.sh copies it in).
cargo build --release -p fr1ctl
cp fr1.ko out/bench/fr1.ko
# The tree's fr1.ko is for the test kernel again at the next `make`.
rm -f fr1.ko src/fr1_main.o
scripts/vm.sh -k "$kb" -m out/bench/fr1.ko -o out/bench "bench_$mode.sh" || true
res=out/bench/bench_$mode/result.ktap
grep -q '^# fr1-exit: 0' "$res" || die "the benchmark failed: $(grep -m1 'Bail out' "$res" || echo 'see out/bench')"
stamp=$(date -u +%Y%m%d-%H%M%S)-$(git rev-parse --short HEAD)
mkdir -p bench/results
"$FR1_CACHE/venv/bin/python" scripts/bench_report.py "$res" "bench/results/$stamp.json" \
	--mode "$mode" --kernel "$(cat "$kb/include/config/kernel.release") ($(sed -n 's/^package: //p' "$kb/fr1-build.log"), bench config)" \
	--qemu "$(qemu-system-x86_64 --version | head -n1)" "${merge[@]}"
log "results: bench/results/$stamp.json, BENCHMARKS.md, bench/*.svg"
