#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The anchor works in the guest: md raid1 built by the harness's mdadm on two
# brd disks and on two virtio disks, verified with fio and compared.
# fr1-disks: 2 64M
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 9

check "load brd (2 x 64 MiB)" modprobe brd rd_nr=2 rd_size=65536
check "mdadm --build raid1 on ram0 ram1" \
	mdadm --build /dev/md0 --level=1 --raid-devices=2 /dev/ram0 /dev/ram1
check "mdstat shows [2/2] [UU]" grep -q '\[2/2\] \[UU\]' /proc/mdstat
check "fio crc32c verify on md0" fio --name=v --filename=/dev/md0 --rw=randwrite --bs=4k \
	--size=16M --ioengine=libaio --iodepth=8 --direct=1 --verify=crc32c --verify_fatal=1
check "ram0 and ram1 identical" cmp /dev/ram0 /dev/ram1
check "mdadm --stop" mdadm --stop /dev/md0

check "mdadm --build raid1 on vda vdb" \
	mdadm --build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
check "fio write on md1" fio --name=w --filename=/dev/md1 --rw=write --bs=1M --size=32M \
	--ioengine=libaio --iodepth=4 --direct=1 --verify=crc32c --verify_fatal=1
check "mdadm --stop md1" mdadm --stop /dev/md1
host_cmp vda vdb "md raid1 members"
ktap_finished
