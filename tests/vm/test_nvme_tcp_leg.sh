#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# An NVMe over TCP leg (issue 12): the kernel's target (nvmet-tcp, set up
# through configfs) serves a loop device over the guest's loopback; the host
# (nvme-tcp, nvme-cli) attaches it as the write-mostly leg of a mirror. The
# target's port is unlinked (the host requeues its requests and reconnects
# every second, forever) and relinked, repeatedly: fio's writes never wait
# past the stall limit and verify, the leg fails as stalled, fr1 re-adds it
# by itself when it answers again (the same /dev/nvme0n1 comes back), the
# resync writes exactly the dirty blocks to the target's store, legs equal.
# fr1-timeout: 600
. /tests/lib.sh

CYCLES=3
ktap_print_header
ktap_set_plan $((4 + CYCLES * 3 + 2))

MB=64
modprobe brd rd_nr=1 rd_size=$((MB * 1024))
modprobe nvmet-tcp
modprobe nvme-tcp
modprobe fr1
/usr/bin/fallocate -l ${MB}M /tmp/remote.img
/sbin/losetup /dev/loop0 /tmp/remote.img
M=/sys/block/md0/md
B=$M/bitmap
STALL_MS=2000
NQN=nqn.2026-12.io.fr1:leg1
S=/sys/kernel/config/nvmet/subsystems/$NQN
P=/sys/kernel/config/nvmet/ports/1
U=4e0f1f2a-0000-4000-8000-000000000001

target() {
	mkdir $S && echo 1 >$S/attr_allow_any_host && mkdir $S/namespaces/1 &&
		echo -n /dev/loop0 >$S/namespaces/1/device_path && echo 1 >$S/namespaces/1/enable &&
		mkdir $P && echo tcp >$P/addr_trtype && echo ipv4 >$P/addr_adrfam &&
		echo 127.0.0.1 >$P/addr_traddr && echo 4420 >$P/addr_trsvcid && ln -s $S $P/subsystems/$NQN
}
check "nvmet: loop0 exported as $NQN on 127.0.0.1:4420 (tcp)" target
connect() {
	/usr/sbin/nvme connect -t tcp -a 127.0.0.1 -s 4420 -n $NQN --hostnqn=nqn.2014-08.org.nvmexpress:uuid:$U \
		--hostid=$U --reconnect-delay=1 --ctrl-loss-tmo=-1 >/tmp/nvme.log 2>&1 || { cat /tmp/nvme.log; return 1; }
	local i=0
	while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
	[ -b /dev/nvme0n1 ]
}
check "nvme connect: /dev/nvme0n1 over TCP, reconnecting forever" connect
build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/nvme0n1 &&
		grep -q "nvme0n1\[1\](W)" /proc/mdstat && echo 256 >$B/backlog && echo 500 >$M/fr1_behind_max_ms &&
		echo $STALL_MS >$M/fr1_stall_ms && echo 300 >$M/fr1_probe_ms
}
check "build md0: ram0 + write-mostly nvme0n1, backlog 256, stall limit $STALL_MS ms" build
BLOCK=$(cat $B/chunksize)
healthy() {
	fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --max_latency=${STALL_MS}ms &&
		fr1ctl wait /dev/md0 60 >/dev/null && same /dev/ram0 /dev/loop0
}
check "fio crc32c over the healthy NVMe/TCP mirror; legs equal" healthy

outage_writes() {
	fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M \
		--randseed=$1 --max_latency=${STALL_MS}ms
}
# Sectors nvmet wrote to its store so far (bios: no cache in between).
remote_written() { awk '{print $7}' /sys/block/loop0/stat; }
leg_faulty() { grep -q "nvme0n1\[1\](W)(F)" /proc/mdstat; }
no_behind() { file_is $B/behind_writes 0; }
readded() { dmesg_has "nvme0n1 answers again: re-adding it"; }

cycle=1
while [ $cycle -le $CYCLES ]; do
	dmesg -c >/dev/null
	# The probe is off while the held writes land, so the store's counters
	# see the resync alone; turning it back on re-adds the leg.
	echo 0 >$M/fr1_probe_ms
	rm $P/subsystems/$NQN
	stalled() {
		outage_writes $cycle && wait_for 30 leg_faulty &&
			dmesg_has "nvme0n1 faulty (stalled: no write landed for" && outage_writes $((cycle + 100))
	}
	check "cycle $cycle: port unlinked: writes go on within ${STALL_MS} ms; nvme0n1 fails (stalled)" stalled
	ln -s $S $P/subsystems/$NQN
	landed() { wait_for 60 no_behind && [ -b /dev/nvme0n1 ]; }
	check "cycle $cycle: port relinked: the host reconnects, the held writes land" landed
	before=$(remote_written)
	bits=$(cat $B/bits)
	echo 300 >$M/fr1_probe_ms
	back() {
		wait_for 60 readded && fr1ctl wait /dev/md0 120 >/dev/null || return 1
		local bytes=$((($(remote_written) - before) * 512))
		echo "# target store: $bytes bytes written by the resync, $bits dirty blocks of $BLOCK bytes"
		[ "$bits" -gt 0 ] && [ "$bytes" -eq $((bits * BLOCK)) ] && same /dev/ram0 /dev/loop0 &&
			fio_verify /dev/md0 16M --rw=randwrite --bs=4k --iodepth=8 --io_size=2M \
				--randseed=$((cycle + 100)) --verify_only
	}
	check "cycle $cycle: re-added by itself; the resync wrote exactly the dirty blocks; legs equal; data verifies" back
	cycle=$((cycle + 1))
done

stop() { fr1ctl stop /dev/md0 && /usr/sbin/nvme disconnect -n $NQN >/dev/null; }
check "stop md0, disconnect the controller" stop
check "rmmod fr1" rmmod fr1
ktap_finished
