#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Arrays built by mdadm (md identity: major 9, /proc/mdstat) and by fr1ctl:
# exact mdstat lines, sysfs holders, fail/remove, stop/rebuild and
# rmmod/modprobe cycles, a 3-way mirror.
# fr1-disks: 3 32M
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 22

check "modprobe fr1 takes md's major" sh -c 'modprobe fr1 && grep -qx "  9 md" /proc/devices'
check "mdadm --build (unmodified mdadm)" \
	mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
check "dmesg: array running" dmesg_has "md0: running with 2 of 2 mirrors"
check "mdstat array line" sh -c 'grep -qx "md0 : active raid1 vdb\[1\] vda\[0\]" /proc/mdstat'
check "mdstat blocks line" sh -c 'grep -qx "      32768 blocks super non-persistent \[2\/2\] \[UU\]" /proc/mdstat'
check "mdstat first and last line" sh -c \
	'head -n1 /proc/mdstat | grep -qx "Personalities : \[raid1\] " && tail -n1 /proc/mdstat | grep -qx "unused devices: <none>"'
check "slaves and holders in sysfs" sh -c \
	'[ -e /sys/block/md0/slaves/vda ] && [ -e /sys/block/md0/slaves/vdb ] && [ -e /sys/block/vda/holders/md0 ]'
check "array size is the member size" sh -c '[ "$(blockdev --getsize64 /dev/md0)" = 33554432 ]'
check "fr1ctl detail --json" sh -c \
	'fr1ctl detail /dev/md0 --json | grep -q "\"state\":\"clean\",\"active\":2,\"working\":2,\"failed\":0"'
check "fr1ctl fail vdb" fr1ctl fail /dev/md0 /dev/vdb
check "mdstat shows [2/1] [U_] and (F)" sh -c \
	'grep -q "vdb\[1\](F)" /proc/mdstat && grep -q "\[2/1\] \[U_\]" /proc/mdstat'
check "dmesg: faulty line" dmesg_has "md0: vdb faulty (set faulty by request), operation continuing on 1 of 2 mirrors"
check "fr1ctl remove vdb" fr1ctl remove /dev/md0 /dev/vdb
check "holder link gone after remove" sh -c '[ ! -e /sys/block/md0/slaves/vdb ] && [ ! -e /sys/block/vdb/holders/md0 ]'
check "fr1ctl stop" fr1ctl stop /dev/md0
check "stopped array leaves mdstat" sh -c '! grep -q "^md0" /proc/mdstat && dmesg | grep -q "md0: stopped"'
check "members are free again (exclusive open works)" sh -c \
	'fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb && fr1ctl stop /dev/md1'

cycles() {
	for i in 1 2 3 4 5; do
		fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb || return 1
		/bin/dd if=/dev/md0 of=/dev/null bs=64k count=16 2>/dev/null || return 1
		fr1ctl stop /dev/md0 || return 1
		rmmod fr1 || return 1
		modprobe fr1 || return 1
	done
}
check "5 build/stop/rmmod/modprobe cycles" cycles
check "rmmod stops an idle running array" sh -c \
	'fr1ctl build /dev/md2 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb && rmmod fr1 && modprobe fr1 \
	 && fr1ctl build /dev/md2 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb'
check "rmmod refused while open" sh -c \
	'sleep 5 </dev/md2 & p=$!; sleep 1; ! rmmod fr1 2>/dev/null; r=$?; kill $p; wait $p; [ $r = 0 ] && fr1ctl stop /dev/md2'

check "3-way mirror builds" fr1ctl build /dev/md3 --level=1 --raid-devices=3 --assume-clean /dev/vda /dev/vdb /dev/vdc
check "3-way mirror: fio verify, fail two, still verifies" sh -c \
	'fio_verify() { fio --name=v --filename=/dev/md3 --size=16M --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 "$@" >/tmp/f 2>&1; };
	 fio_verify --rw=randwrite --bs=4k --iodepth=8 && fr1ctl fail /dev/md3 /dev/vda && fr1ctl fail /dev/md3 /dev/vdc \
	 && grep -q "\[3/1\] \[_U_\]" /proc/mdstat && fio_verify --rw=randwrite --bs=16k --iodepth=4 && fr1ctl stop /dev/md3'
ktap_finished
