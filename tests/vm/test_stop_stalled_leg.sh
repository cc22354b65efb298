#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# mdadm --stop with a leg stalled (issue 12): of two write-mostly NBD legs,
# one's server is stopped (SIGSTOP) with behind writes in flight and a probe
# stuck in a read of it (1 MiB writes meanwhile: more than its socket
# buffers take, so only a writer that never submits to NBD itself goes on).
# The other NBD leg keeps taking every write (each leg has its own submit
# work). The stop returns within the array's stall limit (as a ratio), the
# array is gone, the fast leg and the healthy NBD leg are free at once, the
# stalled leg stays held (EBUSY) and the module in use until its writes
# end; the server continued, the writes land on the store, fr1 releases the
# leg and rmmod works. No splat, no leak (the harness). Each of the three
# mechanisms it needs fails it when taken out (checked by hand): the
# deferred submission (the writer sleeps in NBD's socket send: hung task),
# one submit worker per leg, and each leg's share of a behind write ending
# with its own clone (nbd1 fails as stalled too).
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 10

MB=64
modprobe brd rd_nr=1 rd_size=$((MB * 1024))
modprobe nbd
modprobe fr1
for i in 0 1 2; do
	/usr/bin/fallocate -l ${MB}M /tmp/store$i.img
	/sbin/losetup /dev/loop$i /tmp/store$i.img
done
M=/sys/block/md0/md
B=$M/bitmap
STALL_MS=3000

# Two remote legs: nbd0 (stalled below) and nbd1 (healthy), served from
# loop0 and loop1; loop2 is a spare.
nbd_serve 0 /dev/loop0
nbd_serve 1 /dev/loop1
# No I/O scheduler on the NBD devices (as often set for network disks):
# blk-mq then issues a request in the submitter's context even with
# REQ_NOWAIT (with one, a REQ_NOWAIT request is dispatched from kblockd),
# so NBD's socket send runs in whoever submits.
build() {
	nbd_attach 0 && nbd_attach 1 && echo none >/sys/block/nbd0/queue/scheduler &&
		echo none >/sys/block/nbd1/queue/scheduler &&
		fr1ctl build /dev/md0 --level=1 --raid-devices=3 --assume-clean /dev/ram0 --write-mostly /dev/nbd0 --write-mostly /dev/nbd1 &&
		echo 256 >$B/backlog && echo 0 >$M/fr1_behind_max_ms && echo $STALL_MS >$M/fr1_stall_ms &&
		echo 300 >$M/fr1_probe_ms
}
check "build md0: ram0 + write-mostly nbd0 and nbd1 (nbd-server over loopback), stall limit $STALL_MS ms" build

# Sectors store $1 (loop0, loop1) has written (after its cache is flushed).
remote_written() { blockdev --flushbufs /dev/$1 && awk '{print $7}' /sys/block/$1/stat; }
# Hundredths of a second since boot.
now_cs() { tr -d . </proc/uptime | cut -d' ' -f1; }
behind() { [ "$(cat $B/behind_writes)" -gt 0 ]; }
faulty() { grep -q "nbd0\[1\](W)(F)" /proc/mdstat; }
faulty1() { grep -q "nbd1\[2\](W)(F)" /proc/mdstat; }
# nbd1 is in sync: in the set, not faulty, and no recovery runs.
nbd1_in_sync() {
	grep -q "nbd1\[2\](W)" /proc/mdstat && ! faulty1 &&
		grep -q "in_sync" $M/dev-nbd1/state && ! grep -A2 "^md0 :" /proc/mdstat | grep -q recovery
}

written1=$(remote_written loop1)
nbd_signal 0 STOP
# 1 MiB writes, first, while nbd0 still takes writes: more than the stopped
# server's socket buffers take within a few MiB, so a writer that sent to
# NBD itself would sleep in its socket send from then on (NBD's driver
# sends in the submitter's context). What is in flight on nbd0 afterwards
# (`behind_bytes`: nbd1's writes land) is more than the sockets hold. No
# age limit (fr1_behind_max_ms 0, set at the build): nbd0 takes writes
# until it fails as stalled, so how much is in flight depends on the
# backlog and the stall limit, not on how fast a loaded host writes in
# the first 500 ms (with that limit, a CI run once had 7 MiB in flight).
sock_bytes() { echo $(($(awk '{print $3}' /proc/sys/net/ipv4/tcp_wmem) + $(awk '{print $3}' /proc/sys/net/ipv4/tcp_rmem))); }
stalled() {
	fio_verify /dev/md0 48M --offset=8M --rw=write --bs=1M --iodepth=4 --max_latency=${STALL_MS}ms || return 1
	local stuck
	stuck=$(cat $B/behind_bytes)
	echo "fr1test: $stuck bytes in flight on nbd0, socket buffers $(sock_bytes)" >/dev/kmsg
	[ "$stuck" -gt "$(sock_bytes)" ] &&
		fio_verify /dev/md0 8M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M --max_latency=${STALL_MS}ms &&
		behind && wait_for 30 faulty && grep -q "faulty,probing" $M/dev-nbd0/state || return 1
	# Time for the probe (300 ms after the failure) to start its read of
	# nbd0, which hangs: the stop below must not wait for it.
	usleep 800000
	! dmesg_has "nbd0 answers again" && behind
}
check "server 0 stopped: 1M writes (more than its sockets hold) and 4K writes go on within the limit (never sent to NBD by the writer), behind writes stay in flight on nbd0, which fails (stalled) and is probed" stalled
# Each remote leg has its own submit work: the one stuck in nbd0's socket
# holds up none of nbd1's writes (with one for both, nbd1's would wait
# behind it and fail as stalled too).
other_leg() {
	wait_for 30 nbd1_in_sync || { cat /proc/mdstat; return 1; }
	# Its last behind writes may still be on their way.
	wait_for 30 same /dev/ram0 /dev/loop1 || return 1
	local bytes=$((($(remote_written loop1) - written1) * 512))
	echo "# nbd1's store wrote $bytes bytes while nbd0 stalled"
	[ "$bytes" -ge $((50 * 1024 * 1024)) ] && ! dmesg_has "nbd1 faulty" && ! faulty1
}
check "nbd1 took every write meanwhile (at least 50 MiB on its store, never faulty, in sync, equal to ram0)" other_leg
before=$(remote_written loop0)
t0=$(now_cs)
check "mdadm --stop returns with the leg stalled" mdadm --stop /dev/md0
t1=$(now_cs)
bounded() {
	local ms=$(((t1 - t0) * 10))
	echo "# mdadm --stop took $ms ms; stall limit $STALL_MS ms"
	# Within the limit (the leg had failed already), with 1 s for mdadm.
	[ "$ms" -le $((STALL_MS + 1000)) ] && ! grep -q "^md0 :" /proc/mdstat &&
		dmesg_has "md0: behind writes still in flight on a stalled leg"
}
check "the stop took no longer than the stall limit (+1 s); md0 is gone; dmesg says the leg stays open" bounded
refused() { ! rmmod fr1 2>/dev/null && grep -q "^fr1 " /proc/modules; }
check "rmmod is refused (module in use) while the stalled leg's writes are in flight" refused
held() {
	fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/nbd1 >/dev/null &&
		fr1ctl stop /dev/md1 >/dev/null &&
		! fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/loop2 /dev/nbd0 2>/dev/null
}
check "ram0 and nbd1 are free at once (a new array takes them); nbd0 stays held (a new array cannot)" held
nbd_signal 0 CONT
released() { dmesg_has "md0: the last behind write on nbd0 ended: released"; }
landed() {
	wait_for 60 released || return 1
	local after
	after=$(remote_written loop0)
	echo "# the store wrote $(((after - before) * 512)) bytes after the stop"
	[ "$after" -gt "$before" ]
}
check "server continued: the stalled writes land on the store after the stop, then fr1 releases nbd0" landed
# The stuck probe read ended too (it holds the module while it runs).
unload() {
	local i=0
	while ! rmmod fr1 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 50 ] || return 1
		usleep 100000
	done
	! grep -q "^fr1 " /proc/modules
}
check "rmmod works once the leg answered" unload
cleanup() { nbd_detach 0 && nbd_detach 1 && nbd_kill 0 && nbd_kill 1; }
check "nbd0 and nbd1 detach" cleanup
ktap_finished
