#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Resyncs overlapping live writes: fio crc32c verify (with verify_backlog)
# runs on the array through 20 fail / write / re-add cycles; zero verify
# errors, then the members are identical.
# fr1-disks: 2 64M
# fr1-timeout: 600
. /tests/lib.sh

ktap_print_header
ktap_set_plan 5

modprobe fr1
check "build md0" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
fio --name=live --filename=/dev/md0 --rw=randwrite --bs=4k --size=48M --iodepth=8 --ioengine=libaio \
	--direct=1 --verify=crc32c --verify_fatal=1 --verify_backlog=64 --time_based --runtime=600 \
	>/tmp/fio-live.out 2>&1 &
fio_pid=$!
cycles() {
	local i=0
	while [ $i -lt 20 ]; do
		i=$((i + 1))
		fr1ctl fail /dev/md0 /dev/vdb >/dev/null || { echo "cycle $i: fail"; return 1; }
		usleep 300000
		if [ $((i % 2)) = 0 ]; then
			fr1ctl remove /dev/md0 /dev/vdb >/dev/null 2>&1 || fr1ctl remove /dev/md0 /dev/vdb >/dev/null || { echo "cycle $i: remove"; return 1; }
			fr1ctl re-add /dev/md0 /dev/vdb >/dev/null || { echo "cycle $i: re-add"; return 1; }
		else
			fr1ctl add /dev/md0 /dev/vdb >/dev/null || { echo "cycle $i: add"; return 1; }
		fi
		wait_in_sync md0 120 >/dev/null || { echo "cycle $i: no sync"; return 1; }
		kill -0 $fio_pid 2>/dev/null || { echo "cycle $i: fio died"; return 1; }
	done
	n=$(dmesg | grep -c 'resync terminates with 0 errs')
	echo "$i cycles, $n clean resyncs"
	[ "$i" = 20 ] && [ "$n" -ge 20 ]
}
dmesg -c >/dev/null
check "20 fail/write/re-add cycles under fio, each ending in a clean resync" cycles
check "every one of the 20 resyncs was incremental" sh -c \
	'n=$(dmesg | grep -c "slot 1 is the same device: incremental resync"); echo "$n incremental"; [ "$n" = 20 ]'
# fio ends on SIGINT with its summary; "err= 0" there means no I/O or
# verify error in the whole run (verify_fatal would have stopped it).
kill -INT $fio_pid
wait $fio_pid
fio_ok() { grep -q "err= 0:" /tmp/fio-live.out && ! grep -qi "verify: bad\|bad magic\|crc32c: verify failed" /tmp/fio-live.out; }
fio_ok || head -n 30 /tmp/fio-live.out | sed 's/^/# /'
check "fio verify: zero errors through the cycles" fio_ok
check "members identical after the last resync" sh -c 'fr1ctl stop /dev/md0 && . /tests/lib.sh && same /dev/vda /dev/vdb'
host_cmp vda vdb "members after 20 cycles"
check "no splat-free shortcut: resyncs copied data" sh -c 'dmesg | grep "resync terminates" | grep -vq "(0 blocks"'
ktap_finished
