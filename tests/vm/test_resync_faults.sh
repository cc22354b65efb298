#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Faults around the resync: source read errors (dm-dust) served by another
# mirror, target write errors (dm-flakey) failing the target with its bitmap
# kept, stop / fail / rmmod in the middle of a resync (repeated), and
# allocation failures (failslab) while writes are recorded.
# fr1-disks: 3 64M
# fr1-timeout: 600
. /tests/lib.sh

ktap_print_header
ktap_set_plan 14

modprobe fr1
modprobe dm-dust
modprobe dm-flakey
sz=$(blockdev --getsz /dev/vda)

# --- source read errors: slot 0 is dust over vda, slot 1 vdb, slot 2 vdc ---
dmsetup create dust0 --table "0 $sz dust /dev/vda 0 4096"
fr1ctl build /dev/md0 --level=1 --raid-devices=3 --assume-clean /dev/mapper/dust0 /dev/vdb /dev/vdc >/dev/null
fio --name=fill --filename=/dev/md0 --rw=write --bs=1M --size=64M --ioengine=libaio --iodepth=4 --direct=1 >/dev/null
fr1ctl fail /dev/md0 /dev/vdc >/dev/null
for blk in 10 500 9000; do
	/bin/dd if=/dev/urandom of=/dev/md0 bs=4096 seek=$blk count=1 oflag=direct 2>/dev/null
done
# The source now fails reads of two of the blocks to copy.
dmsetup message dust0 0 addbadblock 500
dmsetup message dust0 0 addbadblock 9000
dmsetup message dust0 0 enable
dmesg -c >/dev/null
check "re-add with bad source blocks" fr1ctl add /dev/md0 /dev/vdc
check "resync completes from the other mirror" wait_in_sync md0 60
check "dmesg: source read error retried elsewhere, 0 errs" sh -c \
	'dmesg | grep -q "resync: read error on slot 0" && dmesg | grep -q "resync terminates with 0 errs on device 0 component 2 (3 blocks"'
check "target identical to the good mirror" same /dev/vdb /dev/vdc
fr1ctl stop /dev/md0 >/dev/null
dmsetup remove dust0

# --- target write errors ---
fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb >/dev/null
fr1ctl fail /dev/md1 /dev/vdb >/dev/null
fr1ctl remove /dev/md1 /dev/vdb >/dev/null
fio --name=w --filename=/dev/md1 --rw=randwrite --bs=4k --size=64M --number_ios=200 --ioengine=psync --direct=1 >/dev/null
dmsetup create bad1 --table "0 $sz flakey /dev/vdb 0 0 60"
dmesg -c >/dev/null
fr1ctl add /dev/md1 /dev/mapper/bad1 >/dev/null
check "target write error fails the target" sh -c \
	'. /tests/lib.sh; i=0; until dmesg | grep -q "faulty (write error during resync)"; do i=$((i+1)); [ $i -gt 300 ] && exit 1; usleep 100000; done;
	 grep -A1 "^md1 :" /proc/mdstat | grep -q "\[2/1\] \[U_\]"'
check "the resync ends with errs, array stays degraded" sh -c \
	'. /tests/lib.sh; i=0; until dmesg | grep -q "resync terminates with [1-9][0-9]* errs on device 1 component 1"; do i=$((i+1)); [ $i -gt 300 ] && exit 1; usleep 100000; done;
	 file_is /sys/block/md1/md/degraded 1 && grep -A1 "^md1 :" /proc/mdstat | grep -q "\[2/1\] \[U_\]" && ! fr1ctl wait /dev/md1 10 >/dev/null 2>&1'
fr1ctl stop /dev/md1 >/dev/null
dmsetup remove bad1

# --- stop / fail / rmmod during a resync (slow: speed_limit_max=1) ---
echo 1 > /sys/module/fr1/parameters/speed_limit_max
during_resync() { # during_resync ACTION
	fr1ctl build /dev/md2 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb >/dev/null || return 1
	fr1ctl fail /dev/md2 /dev/vdb >/dev/null && fr1ctl remove /dev/md2 /dev/vdb >/dev/null || return 1
	fr1ctl add /dev/md2 /dev/vdc >/dev/null || return 1
	usleep 500000
	grep -q "recovery =" /proc/mdstat || { echo "no recovery running"; cat /proc/mdstat; return 1; }
	case $1 in
	stop) timeout 10 fr1ctl stop /dev/md2 >/dev/null || return 1 ;;
	fail) fr1ctl fail /dev/md2 /dev/vdc >/dev/null || return 1
		i=0; until dmesg | grep -q "resync of slot 1 interrupted"; do i=$((i+1)); [ $i -gt 100 ] && return 1; usleep 100000; done
		fr1ctl stop /dev/md2 >/dev/null || return 1 ;;
	rmmod) timeout 10 rmmod fr1 || return 1; modprobe fr1 || return 1
		echo 1 > /sys/module/fr1/parameters/speed_limit_max ;;
	esac
	dmesg -c >/dev/null
}
repeat3() { for i in 1 2 3; do during_resync "$1" || return 1; done; }
check "stop during a resync, 3 times: prompt" repeat3 stop
check "fail the target during a resync, 3 times" repeat3 fail
check "rmmod during a resync, 3 times" repeat3 rmmod
check "no resync thread left behind" sh -c '! ps | grep -q "md[0-9]*_resync"'
echo 200000 > /sys/module/fr1/parameters/speed_limit_max

# --- allocation failures while degraded writes are recorded ---
fr1ctl build /dev/md3 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb >/dev/null
fr1ctl fail /dev/md3 /dev/vdb >/dev/null
F=/sys/kernel/debug/failslab
echo 100 > $F/probability; echo -1 > $F/times; echo Y > $F/task-filter; echo 0 > $F/space; echo 0 > $F/verbose
# Only this subshell's non-sleeping slab allocations fail (fr1's bitmap
# nodes come from the writer's context).
(echo 1 > /proc/self/make-it-fail; exec fio --name=oom --filename=/dev/md3 --rw=randwrite --bs=4k --size=64M \
	--number_ios=300 --ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1) >/tmp/oom.out 2>&1
oom_rc=$?
echo 0 > $F/probability
check "writes succeed while bitmap memory fails" test $oom_rc = 0
check "coarse ranges visible in md/bitmap/coarse and mdstat" sh -c \
	'[ "$(cat /sys/block/md3/md/bitmap/coarse)" -gt 0 ] && [ "$(cat /sys/block/md3/md/bitmap/leaves)" = 0 ] && grep -A3 "^md3 :" /proc/mdstat | grep -q "bitmap: "'
dmesg -c >/dev/null
check "re-add: coarse bitmap, full copy, data correct" sh -c \
	'. /tests/lib.sh; fr1ctl add /dev/md3 /dev/vdb >/dev/null && wait_in_sync md3 120 && dmesg | grep -q "full resync of slot 1: the bitmap holds no detail" && same /dev/vda /dev/vdb'
check "data verifies after the coarse resync" fio --name=oom --filename=/dev/md3 --rw=randwrite --bs=4k --size=64M \
	--number_ios=300 --ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1 --verify_only
fr1ctl stop /dev/md3 >/dev/null
ktap_finished
