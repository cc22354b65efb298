#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Member states the data path must honour: a write-mostly member gets every
# write and no read while another member can serve it; HOT_REMOVE of a
# failed member that still has bios in flight answers EBUSY and leaves the
# member where it was (faulty, in its slot), and succeeds once they landed.
# fr1-disks: 2 64M
# fr1-timeout: 240
. /tests/lib.sh

ktap_print_header
ktap_set_plan 6

modprobe fr1
modprobe dm-delay
M=/sys/block/md0/md
reads() { awk '{print $1}' "/sys/block/$1/stat"; }
writes() { awk '{print $5}' "/sys/block/$1/stat"; }

check "build md0 with vdb write-mostly" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean \
	/dev/vda --write-mostly /dev/vdb
write_mostly_io() {
	local ra rb wa wb
	grep -q write_mostly $M/dev-vdb/state || { echo "vdb state: $(cat $M/dev-vdb/state)"; return 1; }
	ra=$(reads vda) rb=$(reads vdb) wa=$(writes vda) wb=$(writes vdb)
	fio --name=mix --filename=/dev/md0 --rw=randrw --bs=4k --size=32M --number_ios=2000 --iodepth=8 \
		--ioengine=libaio --direct=1 --numjobs=2 >/dev/null || return 1
	ra=$(($(reads vda) - ra)) rb=$(($(reads vdb) - rb)) wa=$(($(writes vda) - wa)) wb=$(($(writes vdb) - wb))
	echo "reads vda +$ra vdb +$rb; writes vda +$wa vdb +$wb"
	[ "$rb" = 0 ] && [ "$ra" -gt 500 ] && [ "$wb" -gt 500 ] && [ "$wa" -gt 500 ]
}
check "write-mostly: reads never reach vdb, writes reach both" write_mostly_io
check "write-mostly member still serves reads when it is the only one left" sh -c \
	"fr1ctl fail /dev/md0 /dev/vda >/dev/null && r=\$(awk '{print \$1}' /sys/block/vdb/stat) &&
	 /bin/dd if=/dev/md0 of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null &&
	 [ \$((\$(awk '{print \$1}' /sys/block/vdb/stat) - r)) -ge 64 ]"
fr1ctl stop /dev/md0 >/dev/null

# vdb behind a 3 s write delay: writes in flight keep its slot referenced.
sz=$(blockdev --getsz /dev/vdb)
dmsetup create slow --table "0 $sz delay /dev/vdb 0 0 /dev/vdb 0 3000"
fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/mapper/slow >/dev/null
slow=$(for d in /sys/block/dm-*; do [ "$(cat "$d/dm/name")" = slow ] && echo "${d##*/}"; done)
busy_remove() {
	/bin/dd if=/dev/zero of=/dev/md0 bs=4096 count=4 oflag=direct 2>/dev/null &
	usleep 500000
	fr1ctl fail /dev/md0 /dev/mapper/slow >/dev/null || return 1
	ioctl_is EBUSY /dev/md0 HOT_REMOVE_DISK "$(encoded_dev $slow)" || return 1
	# Rolled back: still in its slot, still faulty.
	grep -q faulty "$M/dev-$slow/state" || { echo "state after EBUSY: $(cat "$M/dev-$slow/state" 2>&1)"; return 1; }
	grep -A1 "^md0 :" /proc/mdstat | grep -q "$slow\[1\](F)" || { cat /proc/mdstat; return 1; }
	wait
}
check "HOT_REMOVE with bios in flight: EBUSY, the member stays faulty in its slot" busy_remove
check "HOT_REMOVE once they landed: removed" sh -c \
	". /tests/lib.sh; ioctl_is ok /dev/md0 HOT_REMOVE_DISK $(encoded_dev $slow) && [ ! -e $M/dev-$slow ]"
check "stop" fr1ctl stop /dev/md0
ktap_finished
