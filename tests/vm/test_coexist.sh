#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# With md_mod loaded (or md_compat=0) fr1 runs on its own major: /dev/frN and
# /proc/fr1stat, driven by fr1ctl; md raid1 works next to it.
# fr1-disks: 4 32M
# fr1-timeout: 240
. /tests/lib.sh
export STATUS=/proc/fr1stat

ktap_print_header
ktap_set_plan 9

check "md_mod loaded first" modprobe md_mod
check "fr1 takes a dynamic major named fr1" sh -c 'modprobe fr1 && grep -q " fr1$" /proc/devices && [ -e /proc/fr1stat ]'
check "dmesg names the identity" dmesg_has "(/dev/frN), status in /proc/fr1stat"
check "fr1ctl build /dev/fr0" fr1ctl build /dev/fr0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
check "fr1stat in md's format" sh -c \
	'grep -qx "fr0 : active raid1 vdb\[1\] vda\[0\]" /proc/fr1stat && grep -q "32768 blocks super non-persistent \[2/2\] \[UU\]" /proc/fr1stat'
check "fio verify on fr0" fio --name=v --filename=/dev/fr0 --size=16M --rw=randwrite --bs=4k \
	--ioengine=libaio --iodepth=8 --direct=1 --verify=crc32c --verify_fatal=1
check "md raid1 next to fr1" sh -c \
	'modprobe raid1 && mdadm --build /dev/md0 --level=1 --raid-devices=2 /dev/vdc /dev/vdd && grep -q "^md0 : active raid1" /proc/mdstat && mdadm --stop /dev/md0'
check "mdadm --detail reads fr0 (ioctls + md/ sysfs)" sh -c \
	'mdadm --detail /dev/fr0 > /tmp/d 2>&1; grep -q "Raid Level : raid1" /tmp/d && grep -q "active sync   /dev/vda" /tmp/d && grep -q "Creation Time" /tmp/d'
check "fr1ctl stop; rmmod" sh -c 'fr1ctl stop /dev/fr0 && rmmod fr1'
ktap_finished
