#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The fr1 README scenario: fail a member, write K scattered blocks, hot-add
# it back: exactly K blocks are copied, the mirrors are identical, dmesg
# shows the dirty and clean ranges. Also remove + re-add (incremental after
# an identity check), a wrong disk re-added (full resync), a new device.
# fr1-disks: 3 64M
# fr1-timeout: 420
. /tests/lib.sh

ktap_print_header
ktap_set_plan 26

# Waits (up to 120 s) until the array shows [2/2] [UU] and no recovery.
in_sync() {
	local i=0
	while [ $i -lt 1200 ]; do
		if grep -A1 "^md0 :" /proc/mdstat | grep -q "\[2/2\] \[UU\]" && ! grep -q recovery /proc/mdstat; then
			return 0
		fi
		i=$((i + 1))
		usleep 100000
	done
	cat /proc/mdstat
	return 1
}

# Writes K distinct random 4 KiB blocks (fio's random map never repeats one).
scatter() {
	fio --name=scatter --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios="$1" \
		--ioengine=psync --direct=1 --randseed="$2" >/dev/null
}

modprobe fr1
check "build md0" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
fio --name=fill --filename=/dev/md0 --rw=write --bs=1M --size=64M --ioengine=libaio --iodepth=4 --direct=1 >/dev/null

for k in 1 10 1000; do
	fr1ctl fail /dev/md0 /dev/vdb >/dev/null
	scatter $k $k
	dmesg -c >/dev/null
	check "K=$k: hot-add after set-faulty" fr1ctl add /dev/md0 /dev/vdb
	check "K=$k: resync finishes" in_sync
	check "K=$k: exactly $k blocks ($((k * 4096)) bytes) copied" \
		dmesg_has "md0: resync terminates with 0 errs on device 0 component 1 ($k blocks, $((k * 4096)) bytes copied)"
	check "K=$k: mirrors identical" same /dev/vda /dev/vdb
done
readme_lines() {
	local n
	dmesg_has "md0: resync starts on device 0 component 1 for 16384 blocks" || { echo "no start line"; return 1; }
	dmesg_has "md0: resynced dirty blocks" || { echo "no dirty range"; return 1; }
	dmesg_has "md0: resync skipped clean blocks" || { echo "no clean range"; return 1; }
	dmesg | grep -q "md0: hotadd component [0-9]*:[0-9]*\[1\] to device 0" || { echo "no hotadd line"; return 1; }
	n=$(dmesg | grep -c "md0: resync")
	echo "$n resync lines for K=1000"
	[ "$n" -le 24 ]
}
check "dmesg: README lines (starts, dirty, clean, hotadd), bounded" readme_lines

# Seed 003: the clone is unplugged (fail + remove), written for a while, and
# plugged back: still incremental, after the identity sample matched.
fr1ctl fail /dev/md0 /dev/vdb >/dev/null
fr1ctl remove /dev/md0 /dev/vdb >/dev/null
scatter 100 7
dmesg -c >/dev/null
check "re-add after remove" fr1ctl re-add /dev/md0 /dev/vdb
check "re-add was incremental (identity sample matched)" \
	dmesg_has "md0: slot 1 is the same device: incremental resync of 100 dirty blocks"
in_sync >/dev/null
check "re-add resync copied exactly 100 blocks" dmesg_has "(100 blocks, 409600 bytes copied)"

# The wrong disk at the slot: different data -> detected, full resync.
fr1ctl fail /dev/md0 /dev/vdb >/dev/null
fr1ctl remove /dev/md0 /dev/vdb >/dev/null
/bin/dd if=/dev/urandom of=/dev/vdb bs=1M count=64 oflag=direct 2>/dev/null
scatter 5 9
dmesg -c >/dev/null
fr1ctl re-add /dev/md0 /dev/vdb >/dev/null
check "wrong disk detected: full resync with the reason logged" sh -c \
	'dmesg | grep -q "md0: full resync of slot 1: sampled clean blocks differ"'
in_sync_same() { in_sync && same "$@"; }
check "wrong disk: in sync and identical after the full resync" in_sync_same /dev/vda /dev/vdb

# A new device in the slot: full resync.
fr1ctl fail /dev/md0 /dev/vdb >/dev/null
fr1ctl remove /dev/md0 /dev/vdb >/dev/null
dmesg -c >/dev/null
check "new device: hot-add vdc" fr1ctl add /dev/md0 /dev/vdc
check "new device: full resync, identical" sh -c \
	'dmesg | grep -q "md0: full resync of slot 1: a new device for this slot"'
in_sync >/dev/null
check "vdc identical to vda" same /dev/vda /dev/vdc
check "stop" fr1ctl stop /dev/md0

# 4 MiB blocks (mdadm's --chunk): one dirty block spans four 1 MiB regions,
# all held against writes until the block is clean.
fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean --chunk=4096 /dev/vda /dev/vdc >/dev/null
fr1ctl fail /dev/md0 /dev/vdc >/dev/null
for off in 0 1280 1281 8448; do # 4 KiB units: blocks 0, 1, 1, 8
	/bin/dd if=/dev/urandom of=/dev/md0 bs=4096 seek=$off count=1 oflag=direct 2>/dev/null
done
dmesg -c >/dev/null
fr1ctl add /dev/md0 /dev/vdc >/dev/null
check "4 MiB blocks: 3 dirty blocks copied whole" sh -c \
	'fr1ctl wait /dev/md0 120 >/dev/null && dmesg | grep -qF "(3 blocks, 12582912 bytes copied)"'
check "4 MiB blocks: mirrors identical" same /dev/vda /dev/vdc
check "stop the 4 MiB-block array" fr1ctl stop /dev/md0
ktap_finished
