#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `make bench --quick` as a kselftest, so the benchmark never rots: every
# workload ran on every target without an fio error, the runner measured the
# targets of undecided goals again (and only those), and the resync copied
# exactly K x 4 KiB with identical mirrors.
# fr1-mem: 2G
# fr1-timeout: 1200
. /tests/lib.sh

ktap_print_header
ktap_set_plan 11
( SIZE_MB=128 RUNTIME=1 INFO_REPS=1 MIN_REPS=1 MAX_REPS=2 KS="10 1000" BENCH_NO_PLAN=1; . /tests/bench_lib.sh ) >/tmp/bench.out 2>&1
rc=$?
grep '^# bench:' /tmp/bench.out
[ $rc = 0 ] || tail -n 5 /tmp/bench.out | sed 's/^/# /'
check "bench --quick ran to the end" test $rc = 0
has() { grep -q "$1" /tmp/bench.out || { echo "missing $1"; return 1; }; }
all_targets() {
	for t in raw fr1 fr1-degraded fr1-3way md-none md-internal md-none-degraded md-internal-degraded md-none-3way; do
		has "\"target\":\"$t\"" || return 1
	done
}
check "every target measured" all_targets
# One repetition decides nothing: a goal's targets (fr1 and md-none,
# fr1-degraded and raw) get a second one, a target of no goal (md-internal
# healthy) does not.
again() {
	has '"workload":"randwrite","target":"fr1","pass":[0-9]*,"rep":2' \
		&& has '"workload":"randwrite","target":"md-none","pass":[0-9]*,"rep":2' \
		&& has '"workload":"randwrite","target":"raw","pass":[0-9]*,"rep":2' \
		&& ! has '"target":"md-internal","pass":[0-9]*,"rep":2'
}
check "undecided goals measured again, only their targets" again
check "resync of K=10 copied exactly 40960 bytes" has '"target":"fr1","k":10,"ms":[0-9]*,"kernel_ms":[0-9]*,"bytes":40960}'
check "resync of K=1000 copied exactly 4096000 bytes" has '"target":"fr1","k":1000,"ms":[0-9]*,"kernel_ms":[0-9]*,"bytes":4096000}'
check "md re-add and full copies measured" sh -c 'grep -q "md-internal-[0-9]*K" /tmp/bench.out && grep -q "raw-dd" /tmp/bench.out'
check "1 PiB array: clean bitmap (roots included) costs <= 64 KiB" sh -c \
	'b=$(sed -n "s/.*\"k\":0,\"bytes\":\([0-9]*\),\"root_bytes\":\([0-9]*\).*/\1 + \2/p" /tmp/bench.out); [ -n "$b" ] && [ $(($b)) -le 65536 ]'
check "md's resync time read from its kernel log" has '"target":"md-internal","k":10,"ms":[0-9]*,"kernel_ms":[0-9]'
check "1000 scattered writes over 1 PiB: <= 4 KiB of bitmap each" sh -c \
	'b=$(sed -n "s/.*\"k\":1000,\"bytes\":\([0-9]*\),.*/\1/p" /tmp/bench.out); [ -n "$b" ] && [ "$b" -le 4096000 ]'
net() {
	for t in fr1-nbd md-wb-nbd md-build-nbd; do has "\"workload\":\"net-qd1\",\"target\":\"$t\"" || return 1; done
	local r
	r=$(grep '"workload":"brownout","target":"fr1-nbd"' /tmp/bench.out) || return 1
	echo "$r" | sed -n 's/.*"leg_failed":\([0-9]*\),"dirty_blocks":\([0-9]*\),"copied":\([0-9]*\),"block":\([0-9]*\).*/\1 \2 \3 \4/p' | {
		read -r failed dirty copied block
		[ "$failed" -ge 1 ] && [ "$dirty" -gt 0 ] && [ "$copied" -eq $((dirty * block)) ]
	}
}
check "network leg: fr1, md write-behind, md build measured; the brownout failed fr1's leg, which resynced exactly its dirty blocks" net
check "check section: fr1, md and both members raw measured, each check with 0 mismatches and its kernel time" sh -c \
	'grep -q "\"workload\":\"check\",\"target\":\"fr1\",\"rep\":1,\"ms\":[0-9]*,\"kernel_ms\":[0-9]" /tmp/bench.out &&
	 grep -q "\"workload\":\"check\",\"target\":\"md\",\"rep\":1,\"ms\":[0-9]*,\"kernel_ms\":[0-9]" /tmp/bench.out &&
	 grep -q "\"workload\":\"check\",\"target\":\"raw-both\"" /tmp/bench.out'
ktap_finished
