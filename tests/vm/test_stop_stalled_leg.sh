#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# mdadm --stop with a leg stalled (issue 12): the write-mostly NBD leg's
# server is stopped (SIGSTOP) with behind writes in flight and a probe stuck
# in a read of it (1 MiB writes meanwhile: more than its socket buffers
# take, so only a writer that never submits to NBD itself goes on). The
# stop returns within the array's stall limit (as a
# ratio), the array is gone, the fast leg is free at once, the stalled leg
# stays held (EBUSY) and the module in use until its writes end; the server
# continued, the writes land on the store, fr1 releases the leg and rmmod
# works. No splat, no leak (the harness).
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 9

MB=64
modprobe brd rd_nr=1 rd_size=$((MB * 1024))
modprobe nbd
modprobe fr1
/usr/bin/fallocate -l ${MB}M /tmp/remote.img
/usr/bin/fallocate -l ${MB}M /tmp/spare.img
/sbin/losetup /dev/loop0 /tmp/remote.img
/sbin/losetup /dev/loop1 /tmp/spare.img
M=/sys/block/md0/md
B=$M/bitmap
STALL_MS=3000

# -d serves one connection: attach() starts it again if it ended (a
# connection the kernel refused while nbd0 was still busy ends it).
serve() { SRV_DEV=$1; /usr/bin/nbd-server -d -C /nonexistent 127.0.0.1@10809 "$1" >/tmp/nbd-server.log 2>&1 & SRV=$!; }
attach() {
	local i=0
	while [ $i -lt 50 ]; do
		/usr/sbin/nbd-client 127.0.0.1 10809 /dev/nbd0 >/tmp/nbd-client.log 2>&1 && return 0
		kill -0 $SRV 2>/dev/null || serve "$SRV_DEV"
		i=$((i + 1))
		usleep 200000
	done
	cat /tmp/nbd-client.log
	return 1
}
serve /dev/loop0
build() {
	attach && fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/nbd0 &&
		echo 256 >$B/backlog && echo 500 >$M/fr1_behind_max_ms && echo $STALL_MS >$M/fr1_stall_ms &&
		echo 300 >$M/fr1_probe_ms
}
check "build md0: ram0 + write-mostly nbd0 (nbd-server over loopback), stall limit $STALL_MS ms" build

# Sectors the store has written (after its cache is flushed).
remote_written() { blockdev --flushbufs /dev/loop0 && awk '{print $7}' /sys/block/loop0/stat; }
# Hundredths of a second since boot.
now_cs() { tr -d . </proc/uptime | cut -d' ' -f1; }
behind() { [ "$(cat $B/behind_writes)" -gt 0 ]; }
faulty() { grep -q "nbd0\[1\](W)(F)" /proc/mdstat; }

kill -STOP $SRV
# 1 MiB writes fill the stopped server's socket buffers within a few
# MiB: a writer that sent to NBD itself would sleep in its socket send
# from then on (NBD's driver sends in the submitter's context).
stalled() {
	fio_verify /dev/md0 8M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M --max_latency=${STALL_MS}ms &&
		fio_verify /dev/md0 48M --offset=8M --rw=write --bs=1M --iodepth=4 --max_latency=${STALL_MS}ms &&
		behind && echo "# $(cat $B/behind_writes) behind writes ($(cat $B/behind_bytes) bytes) in flight on nbd0" &&
		wait_for 30 faulty && grep -q "faulty,probing" $M/dev-nbd0/state || return 1
	# Time for the probe (300 ms after the failure) to start its read of
	# nbd0, which hangs: the stop below must not wait for it.
	usleep 800000
	! dmesg_has "nbd0 answers again" && behind
}
check "server stopped: 4K and 1M writes go on within the limit (never sent to NBD by the writer), behind writes stay in flight on nbd0, which fails (stalled) and is probed" stalled
before=$(remote_written)
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
	fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/loop1 >/dev/null &&
		fr1ctl stop /dev/md1 >/dev/null &&
		! fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/loop1 /dev/nbd0 2>/dev/null
}
check "ram0 is free at once (a new array takes it); nbd0 stays held (a new array cannot)" held
kill -CONT $SRV
released() { dmesg_has "md0: the last behind write on nbd0 ended: released"; }
landed() {
	wait_for 60 released || return 1
	local after
	after=$(remote_written)
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
cleanup() { /usr/sbin/nbd-client -d /dev/nbd0 >/dev/null 2>&1; kill -KILL $SRV; }
check "nbd0 detaches" cleanup
ktap_finished
