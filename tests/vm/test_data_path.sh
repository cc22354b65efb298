#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The data path: fio crc32c verify on the array, members identical byte for
# byte (compared on the host), writes while degraded, flushes reaching every
# member, and a member with max_sectors_kb=4 under 1 MiB O_DIRECT writes.
# (Discard and write-zeroes: test_optional_ops.sh.)
# fr1-disks: 4 64M
# fr1-timeout: 420
. /tests/lib.sh

ktap_print_header
ktap_set_plan 11

modprobe fr1
check "build md0 on vda vdb" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
check "fio randwrite 4k QD16 verify" fio_verify /dev/md0 64M --rw=randwrite --bs=4k --iodepth=16
check "fio mixed sizes with verify_backlog" fio_verify /dev/md0 32M --rw=randrw --bsrange=512-256k \
	--iodepth=8 --verify_backlog=256 --offset=32M
# Field 16 of a disk's stat: flush requests completed.
flushes() { awk '{print $16}' "/sys/block/$1/stat"; }
fsync_reaches_members() {
	local a0 b0 a1 b1
	a0=$(flushes vda) b0=$(flushes vdb)
	fio_verify /dev/md0 8M --rw=write --bs=64k --iodepth=4 --fsync=4 --sync=1 || return 1
	a1=$(flushes vda) b1=$(flushes vdb)
	echo "flushes: vda +$((a1 - a0)) vdb +$((b1 - b0))"
	[ "$(cat /sys/block/md0/queue/write_cache)" = "write back" ] || { echo "array does not advertise a write cache"; return 1; }
	[ $((a1 - a0)) -ge 16 ] && [ $((b1 - b0)) -ge 16 ]
}
check "fio with fsync and O_SYNC verifies; every member got the flushes" fsync_reaches_members
sync
check "reads balance over both mirrors" sh -c \
	'r0=$(awk "{print \$1}" /sys/block/vda/stat); r1=$(awk "{print \$1}" /sys/block/vdb/stat);
	 fio --name=r --filename=/dev/md0 --rw=randread --bs=4k --size=64M --ioengine=libaio --iodepth=32 --numjobs=2 --direct=1 --runtime=3 --time_based >/dev/null &&
	 s0=$(awk "{print \$1}" /sys/block/vda/stat); s1=$(awk "{print \$1}" /sys/block/vdb/stat);
	 echo "reads vda +$((s0-r0)) vdb +$((s1-r1))"; [ $((s0-r0)) -gt 100 ] && [ $((s1-r1)) -gt 100 ]'
check "stop md0" fr1ctl stop /dev/md0
host_cmp vda vdb "mirror after fio"

check "max_sectors_kb=4 member: array limit follows" sh -c \
	'echo 4 > /sys/block/vdd/queue/max_sectors_kb && fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/vdc /dev/vdd &&
	 [ "$(cat /sys/block/md1/queue/max_sectors_kb)" -le 4 ]'
check "1 MiB O_DIRECT writes over the 4 KiB member verify" fio_verify /dev/md1 32M --rw=write --bs=1M --iodepth=8
check "degraded writes verify and are counted" sh -c \
	'fr1ctl fail /dev/md1 /dev/vdd && fio --name=d --filename=/dev/md1 --size=8M --rw=randwrite --bs=4k --iodepth=8 --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 --offset=16M >/dev/null'
check "stop md1 reports missed writes" sh -c 'fr1ctl stop /dev/md1 && dmesg | grep "md1: stopped" | grep -vq "(0 writes missed"'
check "members equal before the failure, different after (only vdc got the degraded writes)" sh -c \
	'. /tests/lib.sh; same /dev/vdc /dev/vdd -n 16777216 && ! same /dev/vdc /dev/vdd -s -i 16777216 -n 8388608'
ktap_finished
