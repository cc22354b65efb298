#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Captures /proc/mdstat in every state a monitor meets (clean, degraded,
# recovering with progress, check) for the host to parse with a real mdstat
# parser from PyPI (tests/host/mdstat_parsers.py), and fr1ctl's --json output
# in the same states for the host's json parser (tests/host/fr1ctl_json.py).
# fr1-disks: 2 64M
# fr1-timeout: 240
. /tests/lib.sh

ktap_print_header
ktap_set_plan 4

capture() {
	echo "# mdstat-capture: $1"; cat /proc/mdstat; echo "# mdstat-capture-end"
	echo "# json-capture: detail $1"; fr1ctl detail /dev/md0 --json; echo; echo "# json-capture-end"
}
M=/sys/block/md0/md

modprobe fr1
mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb >/dev/null 2>&1
check "clean" grep -q "\[2/2\] \[UU\]" /proc/mdstat
capture clean
fr1ctl fail /dev/md0 /dev/vdb >/dev/null
fio --name=w --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios=2000 --ioengine=psync --direct=1 >/dev/null
check "degraded" grep -q "\[2/1\] \[U_\]" /proc/mdstat
capture degraded
echo 100 > /sys/module/fr1/parameters/speed_limit_max
fr1ctl add /dev/md0 /dev/vdb >/dev/null
usleep 300000
check "recovering" grep -q "recovery =" /proc/mdstat
capture recovering
echo 200000 > /sys/module/fr1/parameters/speed_limit_max
echo "# json-capture: wait"; fr1ctl wait /dev/md0 --json; echo; echo "# json-capture-end"
echo 100 > /sys/module/fr1/parameters/speed_limit_max
echo check > $M/sync_action
usleep 300000
check "check" grep -q "check =" /proc/mdstat
capture check
echo idle > $M/sync_action
fr1ctl stop /dev/md0 >/dev/null
ktap_finished
