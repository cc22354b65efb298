#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Network legs (issue 12): a two-way mirror whose second, write-mostly leg is
# kernel NBD (nbd-client) served by nbd-server over the guest's loopback,
# from a loop device whose write counters measure what reaches the remote
# store. Brownouts, repeated: the server stopped (SIGSTOP) past the stall
# limit, then continued; the server killed and restarted, the client
# re-attached. Each time: fio's writes never wait longer than the limit,
# crc32c-verify, the leg fails with its reason, fr1 re-adds it by itself,
# the resync writes exactly the dirty blocks to the remote store, and the
# legs are equal. Then a different image at the same address: full resync.
# fr1-timeout: 900
. /tests/lib.sh

CYCLES=10
ktap_print_header
ktap_set_plan $((4 + CYCLES * 4 + 5))

MB=64
modprobe brd rd_nr=1 rd_size=$((MB * 1024))
modprobe nbd
modprobe fr1
/usr/bin/fallocate -l ${MB}M /tmp/remote.img
/usr/bin/fallocate -l ${MB}M /tmp/other.img
/sbin/losetup /dev/loop0 /tmp/remote.img
/sbin/losetup /dev/loop1 /tmp/other.img
M=/sys/block/md0/md
B=$M/bitmap
STALL_MS=2000

nbd_serve 0 /dev/loop0
check "nbd-client attaches nbd0 to nbd-server over loopback" nbd_attach 0
build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/nbd0 &&
		grep -q "nbd0\[1\](W)" /proc/mdstat && echo 256 >$B/backlog && echo 500 >$M/fr1_behind_max_ms &&
		echo $STALL_MS >$M/fr1_stall_ms && file_is $M/fr1_probe_ms 5000 && echo 300 >$M/fr1_probe_ms
}
check "build md0: ram0 + write-mostly nbd0, backlog 256, stall limit $STALL_MS ms, probe default 5000 ms" build
BLOCK=$(cat $B/chunksize)
check "fio crc32c over the healthy network mirror" \
	fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --max_latency=${STALL_MS}ms
check "the legs are equal" same /dev/ram0 /dev/loop0

# Writes during an outage: never an error, never a wait past the limit.
outage_writes() {
	fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M \
		--randseed=$1 --max_latency=${STALL_MS}ms
}
# Sectors written to the remote store so far (after its cache is flushed).
remote_written() { blockdev --flushbufs /dev/loop0 && awk '{print $7}' /sys/block/loop0/stat; }
leg_faulty() { grep -q "nbd0\[1\](W)(F)" /proc/mdstat; }
leg_gone() { ! grep -q "nbd0\[" /proc/mdstat; }
# Failed: (F) in mdstat, or let go of already (with the server gone the
# probe's third failed read comes about 1 s after the failure, maybe
# before the test looks).
failed() { leg_faulty || dmesg_has "nbd0 does not answer: let go of it"; }
no_behind() { file_is $B/behind_writes 0; }
readded() { dmesg_has "nbd0 answers again: re-adding it"; }
# The resync after the re-add wrote exactly the dirty blocks to the store.
resynced_exactly() { # resynced_exactly BEFORE_SECTORS DIRTY_BITS
	fr1ctl wait /dev/md0 120 >/dev/null || return 1
	local after bytes
	after=$(remote_written)
	bytes=$(((after - $1) * 512))
	echo "# remote store: $bytes bytes written by the resync, $2 dirty blocks of $BLOCK bytes"
	[ "$2" -gt 0 ] && [ "$bytes" -eq $(($2 * BLOCK)) ] && same /dev/ram0 /dev/loop0
}

cycle=1
while [ $cycle -le $CYCLES ]; do
	dmesg -c >/dev/null
	if [ $((cycle % 2)) -eq 1 ]; then
		# The server stops answering; its connection stays. The probe is
		# off while the late writes land, so the store's counters see the
		# resync alone; turning it back on re-adds the leg.
		echo 0 >$M/fr1_probe_ms
		nbd_signal 0 STOP
		stalled() {
			outage_writes $cycle && wait_for 30 leg_faulty &&
				dmesg_has "nbd0 faulty (stalled: no write landed for" && grep -q "faulty,probing" $M/dev-nbd0/state &&
				fr1ctl detail /dev/md0 | grep -qE "faulty.*probing.*/dev/nbd0" &&
				outage_writes $((cycle + 100))
		}
		check "cycle $cycle: server stopped: writes go on within ${STALL_MS} ms; nbd0 fails (stalled), state and fr1ctl detail say faulty,probing" stalled
		nbd_signal 0 CONT
		landed() { wait_for 60 no_behind; }
		check "cycle $cycle: server continued: the stalled writes land" landed
		before=$(remote_written)
		bits=$(cat $B/bits)
		echo 300 >$M/fr1_probe_ms
	else
		# The server dies: the leg fails at its next write; fr1 lets the
		# device go; the server comes back and the client re-attaches.
		nbd_kill 0
		died() {
			outage_writes $cycle && wait_for 30 failed && dmesg_has "nbd0 faulty (" &&
				outage_writes $((cycle + 100))
		}
		check "cycle $cycle: server killed: writes go on within ${STALL_MS} ms; nbd0 fails" died
		detach() { nbd_detach 0; wait_for 60 leg_gone && dmesg_has "nbd0 does not answer: let go of it"; }
		check "cycle $cycle: nbd0 disconnected: fr1 lets go of it" detach
		bits=$(cat $B/bits)
		before=$(remote_written)
		nbd_serve 0 /dev/loop0
		nbd_attach 0 || echo "# attach failed"
	fi
	back() { wait_for 60 readded && resynced_exactly "$before" "$bits"; }
	check "cycle $cycle: re-added by itself; the resync wrote exactly the dirty blocks to the store; legs equal" back
	verify() {
		fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M \
			--randseed=$((cycle + 100)) --verify_only
	}
	check "cycle $cycle: the last writes verify through the array" verify
	cycle=$((cycle + 1))
done

# A brownout during the leg's own resync: the resync stops, what it copied
# stays copied, and after the return only what is still dirty is copied.
dmesg -c >/dev/null
echo 0 >$M/fr1_probe_ms
nbd_signal 0 STOP
outage_writes 7 && fio_verify /dev/md0 32M --rw=write --bs=64k --offset=16M --iodepth=4 >/dev/null
wait_for 30 leg_faulty
nbd_signal 0 CONT
wait_for 60 no_behind
echo 2000 >$M/sync_speed_max
dirty=$(cat $B/bits)
echo 300 >$M/fr1_probe_ms
copying() { case $(cat $M/sync_completed) in none | delayed | "0 /"*) return 1 ;; esac; }
wait_for 60 copying
nbd_kill 0
interrupted() {
	wait_for 60 failed && wait_for 30 dmesg_has "resync of slot 1 interrupted; what is left stays dirty"
}
check "a brownout during the leg's resync: the resync stops, what is left stays dirty" interrupted
nbd_detach 0
wait_for 60 leg_gone
left=$(cat $B/bits)
before=$(remote_written)
echo system >$M/sync_speed_max
dmesg -c >/dev/null
nbd_serve 0 /dev/loop0
nbd_attach 0 || echo "# attach failed"
resumed() {
	echo "# $dirty dirty blocks before the brownout, $left after it"
	[ "$left" -lt "$dirty" ] && wait_for 60 readded && resynced_exactly "$before" "$left"
}
check "after the return only what was left is copied (exactly, to the store); legs equal" resumed

# A different image at the same address during an outage: a full resync.
dmesg -c >/dev/null
/bin/dd if=/dev/urandom of=/dev/loop1 bs=1M count=1 2>/dev/null
nbd_kill 0
/bin/dd if=/dev/urandom of=/dev/md0 bs=4k count=16 seek=100 oflag=direct 2>/dev/null
nbd_detach 0
wait_for 60 leg_gone
nbd_serve 0 /dev/loop1
nbd_attach 0 || echo "# attach failed"
other() {
	wait_for 60 readded && fr1ctl wait /dev/md0 300 >/dev/null && dmesg_has "not the same data" &&
		same /dev/ram0 /dev/loop1
}
check "a different image behind nbd0: sample mismatch, full resync, legs equal" other
stop() { fr1ctl stop /dev/md0 && nbd_detach 0 && nbd_kill 0; }
check "stop md0, detach nbd0" stop
check "rmmod fr1" rmmod fr1
ktap_finished
