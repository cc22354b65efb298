#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Every md ioctl validates everything: each bad input gets md's errno (one
# result per case), never an oops, a hang or a leak.
# fr1-disks: 4 32M
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 34

modprobe fr1
modprobe dm-mod
fr1ctl ioctl /dev/md0 RAID_VERSION >/dev/null 2>&1 || mknod /dev/md0 b 9 0
for n in 1 2 3 4; do [ -e /dev/md$n ] || mknod /dev/md$n b 9 $n; done
read vda_maj vda_min <<EOF2
$(devnum vda)
EOF2
read vdb_maj vdb_min <<EOF2
$(devnum vdb)
EOF2
read vdc_maj vdc_min <<EOF2
$(devnum vdc)
EOF2
A="SET_ARRAY_INFO level=1 raid_disks=2 nr_disks=2 not_persistent=1 state=1"

check "RAID_VERSION works on an empty array" ioctl_is ok /dev/md0 RAID_VERSION
check "unknown ioctl: ENOTTY" ioctl_is ENOTTY /dev/md0 0x1234 0
check "retired md ioctl (RAID_AUTORUN): ENOTTY" ioctl_is ENOTTY /dev/md0 RAID_AUTORUN
check "GET_ARRAY_INFO before SET_ARRAY_INFO: ENODEV" ioctl_is ENODEV /dev/md0 GET_ARRAY_INFO
check "SET_ARRAY_INFO bad pointer: EFAULT" ioctl_is EFAULT /dev/md0 SET_ARRAY_INFO bad
check "SET_ARRAY_INFO NULL: EINVAL" ioctl_is EINVAL /dev/md0 SET_ARRAY_INFO null
check "SET_ARRAY_INFO level 5: EINVAL" ioctl_is EINVAL /dev/md0 $A md_minor=0 level=5
check "SET_ARRAY_INFO persistent: EINVAL" ioctl_is EINVAL /dev/md0 $A md_minor=0 not_persistent=0
check "SET_ARRAY_INFO 0 or 17 mirrors: EINVAL" sh -c \
	"ioctl_is() { [ \"\$(fr1ctl ioctl \"\$@\" 2>/dev/null | head -n1)\" = EINVAL ]; };
	 ioctl_is /dev/md0 $A md_minor=0 raid_disks=0 && ioctl_is /dev/md0 $A md_minor=0 raid_disks=17"
check "SET_ARRAY_INFO wrong md_minor: EINVAL" ioctl_is EINVAL /dev/md0 $A md_minor=7
check "SET_ARRAY_INFO negative size: EINVAL" ioctl_is EINVAL /dev/md0 $A md_minor=0 size=-5
check "SET_ARRAY_INFO ok" ioctl_is ok /dev/md0 $A md_minor=0 size=16384
check "SET_ARRAY_INFO twice: EBUSY" ioctl_is EBUSY /dev/md0 $A md_minor=0
check "GET_ARRAY_INFO bad pointer: EFAULT" ioctl_is EFAULT /dev/md0 GET_ARRAY_INFO bad
check "ADD_NEW_DISK bad pointer: EFAULT" ioctl_is EFAULT /dev/md0 ADD_NEW_DISK bad
check "ADD_NEW_DISK slot out of range: EINVAL" ioctl_is EINVAL /dev/md0 ADD_NEW_DISK number=0 major=$vda_maj minor=$vda_min raid_disk=2 state=6
check "ADD_NEW_DISK faulty state bit: EINVAL" ioctl_is EINVAL /dev/md0 ADD_NEW_DISK number=0 major=$vda_maj minor=$vda_min raid_disk=0 state=7
check "ADD_NEW_DISK no such device: ENXIO/ENODEV" sh -c \
	"r=\$(fr1ctl ioctl /dev/md0 ADD_NEW_DISK number=0 major=$vda_maj minor=999 raid_disk=0 state=6 2>/dev/null); [ \"\$r\" = ENXIO ] || [ \"\$r\" = ENODEV ]"
check "ADD_NEW_DISK the array itself: EBUSY" ioctl_is EBUSY /dev/md0 ADD_NEW_DISK number=0 major=9 minor=0 raid_disk=0 state=6
check "ADD_NEW_DISK smaller than the array: ENOSPC" sh -c \
	"dmsetup create small --table '0 2048 linear /dev/vdd 0' && r=\$(fr1ctl ioctl /dev/md0 ADD_NEW_DISK number=0 major=\$(cut -d: -f1 /sys/block/dm-0/dev) minor=\$(cut -d: -f2 /sys/block/dm-0/dev) raid_disk=0 state=6 2>/dev/null); dmsetup remove small; [ \"\$r\" = ENOSPC ]"
check "ADD_NEW_DISK vda ok" ioctl_is ok /dev/md0 ADD_NEW_DISK number=0 major=$vda_maj minor=$vda_min raid_disk=0 state=6
check "ADD_NEW_DISK same device twice: EBUSY" ioctl_is EBUSY /dev/md0 ADD_NEW_DISK number=1 major=$vda_maj minor=$vda_min raid_disk=1 state=6
check "ADD_NEW_DISK slot taken: EBUSY" ioctl_is EBUSY /dev/md0 ADD_NEW_DISK number=1 major=$vdb_maj minor=$vdb_min raid_disk=0 state=6
check "ADD_NEW_DISK device held by another array: EBUSY" sh -c \
	"fr1ctl build /dev/md1 --level=1 --raid-devices=1 --assume-clean /dev/vdc >/dev/null &&
	 [ \"\$(fr1ctl ioctl /dev/md0 ADD_NEW_DISK number=1 major=$vdc_maj minor=$vdc_min raid_disk=1 state=6 2>/dev/null)\" = EBUSY ]"
check "ADD_NEW_DISK stacking loop (md2 over md0, md2 into md0): EBUSY" sh -c \
	"fr1ctl ioctl /dev/md2 SET_ARRAY_INFO level=1 raid_disks=1 nr_disks=1 not_persistent=1 state=1 md_minor=2 >/dev/null &&
	 fr1ctl ioctl /dev/md2 ADD_NEW_DISK number=0 major=9 minor=0 raid_disk=0 state=6 >/dev/null &&
	 [ \"\$(fr1ctl ioctl /dev/md0 ADD_NEW_DISK number=1 major=9 minor=2 raid_disk=1 state=6 2>/dev/null)\" = EBUSY ]"
check "RUN_ARRAY without an in-sync member: EINVAL" sh -c \
	"fr1ctl ioctl /dev/md3 SET_ARRAY_INFO level=1 raid_disks=2 nr_disks=2 not_persistent=1 state=1 md_minor=3 >/dev/null &&
	 fr1ctl ioctl /dev/md3 ADD_NEW_DISK number=0 major=$vdb_maj minor=$vdb_min raid_disk=0 state=0 >/dev/null &&
	 [ \"\$(fr1ctl ioctl /dev/md3 RUN_ARRAY 2>/dev/null)\" = EINVAL ] && fr1ctl stop /dev/md3 >/dev/null"
check "RUN_ARRAY ok (one of two mirrors)" ioctl_is ok /dev/md0 RUN_ARRAY
check "fail the last in-sync member: EBUSY" ioctl_is EBUSY /dev/md0 SET_DISK_FAULTY $(encode_dev $vda_maj $vda_min)
check "HOT_REMOVE an active member: EBUSY; a stranger: ENXIO" sh -c \
	"[ \"\$(fr1ctl ioctl /dev/md0 HOT_REMOVE_DISK $(encode_dev $vda_maj $vda_min) 2>/dev/null)\" = EBUSY ] &&
	 [ \"\$(fr1ctl ioctl /dev/md0 HOT_REMOVE_DISK $(encode_dev $vdb_maj $vdb_min) 2>/dev/null)\" = ENXIO ]"
check "SET_DISK_FAULTY of a non-member: ENODEV; dev_t 0: EINVAL" sh -c \
	"[ \"\$(fr1ctl ioctl /dev/md0 SET_DISK_FAULTY $(encode_dev $vdb_maj $vdb_min) 2>/dev/null)\" = ENODEV ] &&
	 [ \"\$(fr1ctl ioctl /dev/md0 SET_DISK_FAULTY 0 2>/dev/null)\" = EINVAL ]"
check "HOT_ADD of an active member or a configured-only array: EBUSY, ENODEV" sh -c \
	"[ \"\$(fr1ctl ioctl /dev/md0 HOT_ADD_DISK $(encode_dev $vda_maj $vda_min) 2>/dev/null)\" = EBUSY ] &&
	 fr1ctl ioctl /dev/md4 SET_ARRAY_INFO level=1 raid_disks=1 nr_disks=1 not_persistent=1 state=1 md_minor=4 >/dev/null &&
	 [ \"\$(fr1ctl ioctl /dev/md4 HOT_ADD_DISK $(encode_dev $vdb_maj $vdb_min) 2>/dev/null)\" = ENODEV ] && fr1ctl stop /dev/md4 >/dev/null"
check "STOP_ARRAY_RO: EINVAL" ioctl_is EINVAL /dev/md0 STOP_ARRAY_RO
# As user nobody (no capabilities): changes are refused, queries allowed.
nobody() { /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups "$@" 2>&1 | head -n1; }
unprivileged() {
	chmod 666 /dev/md0 || return 1
	local id stop faulty get
	id=$(nobody id -u)
	stop=$(nobody fr1ctl ioctl /dev/md0 STOP_ARRAY)
	faulty=$(nobody fr1ctl ioctl /dev/md0 SET_DISK_FAULTY 1)
	get=$(nobody fr1ctl ioctl /dev/md0 GET_ARRAY_INFO)
	echo "uid=$id stop=$stop faulty=$faulty get=$get"
	[ "$id" = 65534 ] && [ "$stop" = EACCES ] && [ "$faulty" = EACCES ] && [ "$get" = ok ]
}
check "unprivileged: EACCES for changes, queries allowed" unprivileged
fr1ctl stop /dev/md2 >/dev/null
check "STOP while open or mounted: EBUSY, then stops" sh -c \
	"sleep 3 </dev/md0 & p=\$!; sleep 1; r1=\$(fr1ctl ioctl /dev/md0 STOP_ARRAY 2>/dev/null); wait \$p;
	 /sbin/mke2fs -q -t ext4 /dev/md0 && mount -t ext4 /dev/md0 /mnt && r2=\$(fr1ctl ioctl /dev/md0 STOP_ARRAY 2>/dev/null); umount /mnt;
	 [ \"\$r1\" = EBUSY ] && [ \"\$r2\" = EBUSY ] && fr1ctl stop /dev/md0 >/dev/null && fr1ctl stop /dev/md1 >/dev/null"
ktap_finished
