#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo played by `make demo` (not a test): an fr1 mirror over two disks
# built with unmodified mdadm, written, a member failed, status shown, stopped.
# fr1-disks: 2 256M
# fr1-timeout: 300
set -e
say() { printf '\n### %s\n' "$*"; }
say "modprobe fr1"
modprobe fr1
dmesg | grep 'fr1:'
say "mdadm --build /dev/md0 --level=1 --raid-devices=2 /dev/vda /dev/vdb --assume-clean"
mdadm --build /dev/md0 --level=1 --raid-devices=2 /dev/vda /dev/vdb --assume-clean
say "cat /proc/mdstat"
cat /proc/mdstat
say "fio: 64 MiB of random 4 KiB writes with crc32c verification"
fio --name=demo --filename=/dev/md0 --size=64M --rw=randwrite --bs=4k --iodepth=16 \
	--ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 | grep -E 'IOPS|err='
say "fr1ctl fail /dev/md0 /dev/vdb"
fr1ctl fail /dev/md0 /dev/vdb
say "cat /proc/mdstat"
cat /proc/mdstat
say "more writes while degraded (fio verify)"
fio --name=degraded --filename=/dev/md0 --size=32M --offset=64M --rw=randwrite --bs=4k --iodepth=16 \
	--ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 | grep -E 'IOPS|err='
say "fr1ctl detail /dev/md0"
fr1ctl detail /dev/md0
say "fr1ctl remove /dev/md0 /dev/vdb; fr1ctl stop /dev/md0"
fr1ctl remove /dev/md0 /dev/vdb
fr1ctl stop /dev/md0
say "dmesg (fr1)"
dmesg | grep 'fr1:'
say "rmmod fr1"
rmmod fr1
