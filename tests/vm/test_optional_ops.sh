#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# An operation a leg does not support is not a leg failure (issue 10,
# defect 4). Legs are loop devices over files on tmpfs: tmpfs has no
# FALLOC_FL_ZERO_RANGE, so loop advertises WRITE_ZEROES but answers it with
# BLK_STS_NOTSUPP (and then stops advertising it). Each scenario starts on
# fresh loop devices, so the operation really reaches the legs: mkfs.ext4
# (which zeroes with it), blkdiscard -z, fallocate -z. None may fail a leg or
# touch the bitmap; the array stops advertising the operation, the range
# ends up zero (the block layer's fallback) and the legs equal. Then
# operations that end refused (fallocate -p, blkdiscard -s) and real discard
# (which loop on tmpfs supports). Last, mixed legs: a virtio disk that does
# write-zeroes and a loop-on-tmpfs leg that does not: fr1 writes zero pages
# to the second itself, the command succeeds and the legs are equal.
# fr1-disks: 1 64M
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 13

M=/sys/block/md0/md
Q=/sys/block/md0/queue
mkdir -p /mnt/t && mount -t tmpfs -o size=200m tmpfs /mnt/t
truncate -s 64M /mnt/t/a /mnt/t/b
modprobe fr1
A="" B=""

# Stops md0 if it runs, sets up new loop devices over the files (their
# write-zeroes limit is advertised again) and builds md0 on them.
fresh() {
	[ -e $M ] && fr1ctl stop /dev/md0 >/dev/null
	[ -n "$A" ] && /sbin/losetup -d "$A" "$B"
	A=$(/sbin/losetup -f --show /mnt/t/a) && B=$(/sbin/losetup -f --show /mnt/t/b) || return 1
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean "$A" "$B" >/dev/null || return 1
	dmesg -c >/dev/null
	[ "$(cat $Q/write_zeroes_max_bytes)" != 0 ] || { echo "write-zeroes not advertised on fresh legs"; return 1; }
}
# No leg faulty, nothing recorded as missed, legs equal.
legs_healthy() {
	file_is $M/degraded 0 || { echo "degraded $(cat $M/degraded)"; return 1; }
	! dmesg | grep -q "faulty" || { dmesg | grep faulty | tail -n 3; return 1; }
	file_is $M/bitmap/bits 0 || { echo "bitmap bits $(cat $M/bitmap/bits)"; return 1; }
	same "$A" "$B" >/dev/null || { echo "legs differ"; return 1; }
}
fill() { /bin/dd if=/dev/urandom of=/dev/md0 bs=1M count=1 seek=8 oflag=direct 2>/dev/null; }
range_zero() {
	/bin/dd if=/dev/md0 bs=1M count=1 skip=8 iflag=direct 2>/dev/null | /usr/bin/cmp -s -n 1048576 - /dev/zero ||
		{ echo "range not zero"; return 1; }
}
# Runs an operation on fresh legs over random data: it must succeed (or be
# refused with "not supported" if $1 is "refusable"), fail no leg, and leave
# the legs equal; "zero" also wants the range zero afterwards.
optional() { # optional zero|refusable CMD...
	local want=$1 out
	shift
	fresh && fill || return 1
	if ! out=$("$@" 2>&1); then
		[ "$want" = refusable ] && echo "$out" | grep -qi "not supported" || { echo "$*: $out"; return 1; }
	fi
	legs_healthy || return 1
	[ "$want" != zero ] || range_zero
}
write_zeroes_dropped() {
	file_is $Q/write_zeroes_max_bytes 0 || { echo "write_zeroes_max_bytes $(cat $Q/write_zeroes_max_bytes)"; return 1; }
}

fresh || echo "# setting up fresh legs failed"
check "mkfs.ext4 on the array over loop-on-tmpfs legs succeeds" /sbin/mke2fs -q -F -t ext4 /dev/md0
check "after mkfs.ext4: no leg faulty, nothing in the bitmap, legs equal" legs_healthy
check "after mkfs.ext4: the array no longer advertises write-zeroes" write_zeroes_dropped
check "after mkfs.ext4: e2fsck finds the filesystem clean" /sbin/e2fsck -fn /dev/md0
check "blkdiscard -z (BLKZEROOUT): range zero, no leg failed, legs equal" optional zero /sbin/blkdiscard -f -z -o 8M -l 1M /dev/md0
check "fallocate -z (ZERO_RANGE): range zero, no leg failed, legs equal" optional zero /usr/bin/fallocate -z -o 8M -l 1M /dev/md0
check "fallocate -p (PUNCH_HOLE, no fallback): refused at most, no leg failed" optional refusable /usr/bin/fallocate -p -o 8M -l 1M /dev/md0
check "blkdiscard -s (secure erase): refused at most, no leg failed" optional refusable /sbin/blkdiscard -f -s -o 8M -l 1M /dev/md0
discard_mirrored() {
	fresh && fill || return 1
	[ "$(cat $Q/discard_max_bytes)" != 0 ] || { echo "discard not advertised"; return 1; }
	/sbin/blkdiscard -f -o 8M -l 1M /dev/md0 || return 1
	legs_healthy && range_zero
}
check "discard: advertised, reaches both legs (range zero on each), no leg failed" discard_mirrored
# Field 12 of a disk's stat: discards completed.
discards() { awk '{print $12}' "/sys/block/${1#/dev/}/stat"; }
discard_split_at_regions() {
	local a0 b0 da db
	fresh || return 1
	/bin/dd if=/dev/urandom of=/dev/md0 bs=512K count=4 seek=14 oflag=direct 2>/dev/null
	a0=$(discards "$A") b0=$(discards "$B")
	# 7.5 MiB to 8.5 MiB: across the region boundary at 8 MiB.
	/sbin/blkdiscard -f -o 7680K -l 1M /dev/md0 || return 1
	da=$(($(discards "$A") - a0)) db=$(($(discards "$B") - b0))
	echo "discards: $A +$da, $B +$db"
	[ "$da" -ge 2 ] && [ "$db" -ge 2 ] || { echo "not split at the region boundary"; return 1; }
	/bin/dd if=/dev/md0 bs=512K count=2 skip=15 iflag=direct 2>/dev/null | /usr/bin/cmp -s -n 1048576 - /dev/zero ||
		{ echo "discarded range not zero"; return 1; }
	legs_healthy
}
check "discard across a 1 MiB region boundary: split there (one bio per region), range zero, legs equal" discard_split_at_regions
check "stop md0" fr1ctl stop /dev/md0

mixed_legs_zeroout() {
	/sbin/losetup -d "$A" "$B"
	A=/dev/vda B=$(/sbin/losetup -f --show /mnt/t/b) || return 1
	[ "$(cat /sys/block/vda/queue/write_zeroes_max_bytes)" != 0 ] || { echo "vda has no write-zeroes"; return 1; }
	/bin/dd if=/dev/urandom of=/dev/vda bs=1M count=64 oflag=direct 2>/dev/null
	/bin/dd if=/dev/vda of="$B" bs=1M count=64 oflag=direct 2>/dev/null
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean "$A" "$B" >/dev/null || return 1
	dmesg -c >/dev/null
	[ "$(cat $Q/write_zeroes_max_bytes)" != 0 ] || { echo "array does not advertise write-zeroes"; return 1; }
	/sbin/blkdiscard -f -z -o 8M -l 1M /dev/md0 || return 1
	dmesg | grep -q "WRITE_ZEROES" || { echo "the loop leg never saw the write-zeroes"; return 1; }
	legs_healthy && range_zero
}
check "mixed legs: write-zeroes done by one leg, zero pages for the other; succeeds, legs equal" mixed_legs_zeroout
check "stop the mixed array" fr1ctl stop /dev/md0
ktap_finished
