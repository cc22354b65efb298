#!/bin/sh
# fr1-disks: 2 64M
# fr1-timeout: 120
. /tests/lib.sh
ktap_print_header
ktap_set_plan 6
check "modprobe fr1" modprobe fr1
cat /proc/devices | grep -E "md|fr1"
check "mdadm --build" mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
cat /proc/mdstat
ls -la /sys/block/md0/slaves/ /sys/block/vda/holders/
check "fio verify" fio --name=v --filename=/dev/md0 --rw=randwrite --bs=4k --size=16M --ioengine=libaio --iodepth=8 --direct=1 --verify=crc32c --verify_fatal=1
check "fr1ctl fail" fr1ctl fail /dev/md0 /dev/vdb
cat /proc/mdstat
check "fr1ctl remove" fr1ctl remove /dev/md0 /dev/vdb; fr1ctl detail /dev/md0; fr1ctl detail /dev/md0 --json
cat /proc/mdstat
check "fr1ctl stop" fr1ctl stop /dev/md0
cat /proc/mdstat
rmmod fr1
dmesg | grep fr1
ktap_finished
