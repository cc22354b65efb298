#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A slow leg is not a stalled one (md/fr1_stall_ms). The write-mostly leg is
# a null_blk device limited to 4 MiB/s (null_blk's mbps): a burst of 1 MiB
# writes queues more behind writes on it than it lands within the stall
# limit, so the oldest one in flight grows older than the limit, while the
# leg lands a write every few hundred ms. Such a leg must drain behind and
# stay in sync: the stall watch fails a leg only when it has landed nothing
# for the limit (with "a write in flight for longer than the limit" it
# fails here: checked by hand). A leg that lands nothing at all fails as
# stalled: test_network_legs.sh, test_nvme_tcp_leg.sh,
# test_stop_stalled_leg.sh.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 4

MB=64
STALL_MS=1000
MBPS=4
modprobe brd rd_nr=1 rd_size=$((MB * 1024))
# A queue deep enough for the whole burst (fr1 sends behind writes with
# REQ_NOWAIT: a full queue would send the leg behind, not test a deep one).
modprobe null_blk nr_devices=1 gb=1 memory_backed=1 mbps=$MBPS hw_queue_depth=1024
# null_blk lets a request through only within one tick's budget (1/50 s
# of mbps): a larger request would never be sent. 64 KiB requests fit.
echo 64 >/sys/block/nullb0/queue/max_sectors_kb
modprobe fr1
M=/sys/block/md0/md
B=$M/bitmap

build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/nullb0 &&
		echo 256 >$B/backlog && echo 0 >$M/fr1_behind_max_ms && echo $STALL_MS >$M/fr1_stall_ms &&
		echo 0 >$M/fr1_probe_ms && grep -q "nullb0\[1\](W)" /proc/mdstat
}
check "build md0: ram0 + write-mostly nullb0 at $MBPS MiB/s; no age limit, stall limit $STALL_MS ms" build

# Hundredths of a second since boot.
now_cs() { tr -d . </proc/uptime | cut -d' ' -f1; }
idle() { [ "$(cat $B/behind_writes)" -eq 0 ]; }
faulty() { grep -q "nullb0\[1\](W)(F)" /proc/mdstat || grep -q faulty $M/dev-nullb0/state; }
# 16 MiB at QD 8 finishes on ram0 long before nullb0 lands it (4 s at
# 4 MiB/s): what is in flight when the writer is done takes the leg
# longer than twice the stall limit to land, so its last write is older
# than the limit when it lands (the drain time, measured, says so).
slow() {
	fio_verify /dev/md0 16M --rw=write --bs=1M --iodepth=8 || return 1
	local t0 t1 queued ms
	t0=$(now_cs)
	queued=$(cat $B/behind_bytes)
	wait_for 60 idle || return 1
	t1=$(now_cs)
	ms=$(((t1 - t0) * 10))
	echo "fr1test: $queued bytes in flight on nullb0 when the writer was done; it landed them in $ms ms" >/dev/kmsg
	[ "$ms" -gt $((2 * STALL_MS)) ] && ! faulty && ! dmesg_has "nullb0 faulty" &&
		! dmesg_has "nullb0 goes behind"
}
check "a burst deeper than the leg lands within the stall limit drains behind (drained in more than twice the limit); the leg never fails nor goes behind" slow
in_sync() {
	wait_in_sync md0 60 && grep -q in_sync $M/dev-nullb0/state && ! faulty &&
		same /dev/ram0 /dev/nullb0 -n $((MB * 1024 * 1024)) &&
		fio_verify /dev/md0 16M --rw=write --bs=1M --verify_only
}
check "nullb0 is in sync and equal to ram0; the data verifies" in_sync
check "stop md0" mdadm --stop /dev/md0
ktap_finished
