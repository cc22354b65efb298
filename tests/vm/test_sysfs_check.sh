#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# md's sysfs surface of an fr1 array, and seed 003's drive-cloning workflow
# on 3 members: detach the clone, write, re-attach, wait for degraded 0,
# echo check > sync_action, mismatch_cnt 0. Then an injected mismatch is
# found by check and fixed by repair.
# fr1-disks: 3 64M
# fr1-timeout: 420
. /tests/lib.sh

ktap_print_header
ktap_set_plan 20

M=/sys/block/md0/md
wait_idle() { # until sync_action reads idle (60 s)
	local i=0
	while [ "$(cat $M/sync_action)" != idle ]; do
		i=$((i + 1)); [ $i -gt 600 ] && return 1; usleep 100000
	done
}
modprobe fr1
fr1ctl build /dev/md0 --level=1 --raid-devices=3 --assume-clean /dev/vda /dev/vdb /dev/vdc >/dev/null
check "md/ values as md prints them" sh -c \
	"[ \"\$(cat $M/level)\" = raid1 ] && [ \"\$(cat $M/metadata_version)\" = none ] && [ \"\$(cat $M/raid_disks)\" = 3 ] &&
	 [ \"\$(cat $M/component_size)\" = 65536 ] && [ \"\$(cat $M/degraded)\" = 0 ] && [ \"\$(cat $M/sync_action)\" = idle ] &&
	 [ \"\$(cat $M/array_state)\" = clean ] && [ \"\$(cat $M/sync_completed)\" = none ] && [ \"\$(cat $M/bitmap/chunksize)\" = 4096 ] &&
	 [ \"\$(cat $M/sync_speed_max)\" = '200000 (system)' ]"
check "clean array holds no bitmap memory" sh -c "[ \"\$(cat $M/bitmap/bytes)\" = 0 ] && [ \"\$(cat $M/bitmap/bits)\" = 0 ]"
check "unsupported writes: EINVAL" sh -c "! echo 5 > $M/level 2>/dev/null && ! echo bogus > $M/sync_action 2>/dev/null &&
	[ \"\$(cat $M/array_size)\" = default ] && ! echo 0:0 > $M/new_dev 2>/dev/null"

# Seed 003: the clone (vdc) is detached for "a week".
fr1ctl fail /dev/md0 /dev/vdc >/dev/null
fr1ctl remove /dev/md0 /dev/vdc >/dev/null
check "degraded reads 1" sh -c "[ \"\$(cat $M/degraded)\" = 1 ]"
fio --name=week --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios=500 --ioengine=psync --direct=1 >/dev/null
check "bitmap statistics count the missed writes" sh -c \
	"[ \"\$(cat $M/bitmap/bits)\" = 500 ] && [ \"\$(cat $M/bitmap/leaves)\" = 4 ] && [ \"\$(cat $M/bitmap/nodes)\" = 0 ] &&
	 [ \"\$(cat $M/bitmap/bytes)\" = 2048 ] && [ \"\$(cat $M/bitmap/pages)\" = 1 ] && [ \"\$(cat $M/bitmap/root_bytes)\" = 96 ]"
check "re-attach the clone through md/new_dev" sh -c "echo \$(cat /sys/block/vdc/dev) > $M/new_dev"
check "wait until degraded is 0" sh -c \
	"i=0; until [ \"\$(cat $M/degraded)\" = 0 ]; do i=\$((i+1)); [ \$i -gt 600 ] && exit 1; usleep 100000; done"
check "resync copied exactly the missed blocks" sh -c "[ \"\$(cat $M/bitmap/resync_copied_bytes)\" = $((500 * 4096)) ]"
check "in sync again: the bitmap memory is freed" sh -c "[ \"\$(cat $M/bitmap/bytes)\" = 0 ] && grep -q 'bitmap: 0/1 pages \[0KB\], 4KB chunk' /proc/mdstat"
check "echo check > sync_action" sh -c "echo check > $M/sync_action"
check "check runs, then idle" wait_idle
check "mismatch_cnt is 0" sh -c "[ \"\$(cat $M/mismatch_cnt)\" = 0 ] && dmesg | grep -q 'md0: check of RAID array md0 done: 0 mismatched sectors'"

# An injected difference behind the array's back.
/bin/dd if=/dev/urandom of=/dev/vdb bs=4096 seek=77 count=2 oflag=direct 2>/dev/null
echo check > $M/sync_action; wait_idle
check "check finds the injected mismatch: mismatch_cnt 16, md/fr1_mismatches lists vdb's 2 blocks" sh -c \
	"[ \"\$(cat $M/mismatch_cnt)\" = 16 ] && [ \"\$(cat $M/fr1_mismatches)\" = '616 16 1 0' ]"
echo repair > $M/sync_action; wait_idle
echo check > $M/sync_action; wait_idle
check "repair fixes it: check reads 0 again" sh -c "[ \"\$(cat $M/mismatch_cnt)\" = 0 ] && . /tests/lib.sh && same /dev/vda /dev/vdb"

# md's per-array limits: "N (local)" over the module's "N (system)".
check "sync_speed_max/min: local values, 'system', EINVAL for 0 and junk" sh -c \
	"echo 16000 > $M/sync_speed_max && [ \"\$(cat $M/sync_speed_max)\" = '16000 (local)' ] &&
	 ! echo 0 > $M/sync_speed_max 2>/dev/null && ! echo x > $M/sync_speed_min 2>/dev/null &&
	 echo 2000 > $M/sync_speed_min && [ \"\$(cat $M/sync_speed_min)\" = '2000 (local)' ] &&
	 echo system > $M/sync_speed_min && [ \"\$(cat $M/sync_speed_min)\" = '1000 (system)' ]"
check "sync_io_depth (md 7.3): '32 (system)' from the module parameter, local values, 'system', EINVAL for 0 and junk" sh -c \
	"[ \"\$(cat $M/sync_io_depth)\" = '32 (system)' ] && [ \"\$(cat /sys/module/fr1/parameters/sync_io_depth)\" = 32 ] &&
	 echo 4 > $M/sync_io_depth && [ \"\$(cat $M/sync_io_depth)\" = '4 (local)' ] &&
	 ! echo 0 > $M/sync_io_depth 2>/dev/null && ! echo x > $M/sync_io_depth 2>/dev/null &&
	 echo system > $M/sync_io_depth && [ \"\$(cat $M/sync_io_depth)\" = '32 (system)' ]"
# A check of 64 MiB at 16000 KiB/s: the progress the kernel reports over a
# second of uptime must not exceed the limit (a slow machine cannot fake
# that; it could fake a long wall time), and must be non-zero.
echo check > $M/sync_action
# Sample the speed once 16 MiB (a second at the limit) are done.
i=0
until [ "$(sed -n 's| /.*||p' $M/sync_completed)" -ge 32768 ] 2>/dev/null; do
	i=$((i + 1)); [ "$(cat $M/sync_action)" = idle ] || [ $i -gt 600 ] && break; usleep 50000
done
check "throttled: mdstat speed stays near 16000K/sec" sh -c \
	"s=\$(sed -n 's/.*speed=\([0-9]*\)K.*/\1/p' /proc/mdstat); echo speed \$s; [ -n \"\$s\" ] && [ \$s -le 20000 ]"
progress_rate() {
	local a b t0 t1
	a=$(sed -n 's| /.*||p' $M/sync_completed); t0=$(awk '{printf "%d", $1 * 1000}' /proc/uptime)
	sleep 1
	b=$(sed -n 's| /.*||p' $M/sync_completed); t1=$(awk '{printf "%d", $1 * 1000}' /proc/uptime)
	[ -n "$a" ] && [ -n "$b" ] || { echo "the check ended before it was measured"; return 1; }
	rate=$(( (b - a) / 2 * 1000 / (t1 - t0) ))
	echo "$rate KiB/s over $((t1 - t0)) ms"
	[ "$rate" -gt 0 ] && [ "$rate" -le 24000 ]
}
check "throttled: progress over a second stays within 16000 KiB/s (+50%)" progress_rate
wait_idle
echo system > $M/sync_speed_max
check "back to the system limit" sh -c "[ \"\$(cat $M/sync_speed_max)\" = '200000 (system)' ]"
check "stop" fr1ctl stop /dev/md0
ktap_finished
