#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Checksum failures heal (issue 13): each leg is a standalone dm-integrity
# device (Debian's integritysetup, crc32c tags, no journal), so a sector
# whose data no longer matches its tag reads as EILSEQ. Sectors of one
# leg's data are corrupted on its backing device: every read of the array
# returns the written data, the corrupt sectors are rewritten from the other
# leg (the leg re-reads through dm-integrity without error), dev-*/errors
# counts them and the legs end equal. Then different sectors inside one
# 64 KiB range are corrupted on both legs: no leg reads the range whole,
# the read is served block by block and both legs are healed.
# fr1-timeout: 400
. /tests/lib.sh

ktap_print_header
ktap_set_plan 7

MB=32
modprobe brd rd_nr=2 rd_size=$((MB * 1024))
modprobe dm-integrity
modprobe fr1
M=/sys/block/md0/md
IS=/usr/sbin/integritysetup

# Where a leg's data area starts on its backing device, in bytes: the
# first run of 4096 changed bytes after a 4 KiB write of 0xff bytes at
# array offset 0 over the zeroes `format` wiped (the tags of those 8
# sectors change too, elsewhere, a few bytes each).
# Usage: data_start N (compares /tmp/before.N with the device now).
data_start() {
	/bin/dd if=/dev/ram$1 of=/tmp/after.$1 bs=1M count=4 iflag=direct 2>/dev/null &&
		/usr/bin/cmp -l /tmp/before.$1 /tmp/after.$1 | awk '
			{ if ($1 == last + 1) run++; else { run = 1; start = $1 } last = $1
			  if (run == 4096) { print start - 1; exit } }'
}

setup() {
	for i in 0 1; do
		$IS format /dev/ram$i --batch-mode --integrity crc32c >/dev/null 2>&1 || return 1
		$IS open /dev/ram$i int$i --integrity crc32c --integrity-no-journal || return 1
		/bin/dd if=/dev/ram$i of=/tmp/before.$i bs=1M count=4 iflag=direct 2>/dev/null || return 1
	done
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/mapper/int0 /dev/mapper/int1 &&
		echo 0 >$M/fr1_probe_ms &&
		tr '\0' '\377' </dev/zero | /bin/dd of=/dev/md0 bs=4k count=1 iflag=fullblock oflag=direct 2>/dev/null &&
		off0=$(data_start 0) && off1=$(data_start 1) && [ -n "$off0" ] && [ -n "$off1" ] &&
		echo $off0 >/tmp/off.0 && echo $off1 >/tmp/off.1 &&
		SECTORS=$(blockdev --getsz /dev/md0) &&
		/bin/dd if=/dev/urandom of=/tmp/data bs=512 count=$SECTORS 2>/dev/null &&
		/bin/dd if=/tmp/data of=/dev/md0 bs=1M oflag=direct 2>/dev/null &&
		same /dev/mapper/int0 /dev/mapper/int1
}
check "dm-integrity (crc32c) under each leg; md0 built over them, filled with random data, legs equal" setup
# setup ran in check's subshell: what it found, from its files.
off0=$(cat /tmp/off.0 2>/dev/null)
off1=$(cat /tmp/off.1 2>/dev/null)
SECTORS=$(blockdev --getsz /dev/md0 2>/dev/null)
echo "# data areas at byte $off0 of ram0, $off1 of ram1; md0 has $SECTORS sectors" >/dev/kmsg
d0=$(dmsetup info -c -o blkdevname --noheadings int0)
d1=$(dmsetup info -c -o blkdevname --noheadings int1)

# Overwrites $3 sectors at array sector $2 on leg $1's backing device.
corrupt() {
	local off
	eval off=\$off$1
	/bin/dd if=/dev/urandom of=/dev/ram$1 bs=512 count=$3 seek=$((off / 512 + $2)) oflag=direct conv=notrunc 2>/dev/null
}
# $2 KiB at $1 KiB of the array (direct reads of 64 KiB; both multiples of
# 64) equal the written data.
reads_back() {
	/bin/dd if=/dev/md0 of=/tmp/got bs=64k count=$(($2 / 64)) skip=$(($1 / 64)) iflag=direct 2>/dev/null &&
		/bin/dd if=/tmp/data of=/tmp/want bs=64k count=$(($2 / 64)) skip=$(($1 / 64)) 2>/dev/null &&
		/usr/bin/cmp /tmp/got /tmp/want
}
# Leg $3 reads the 64 KiB at $1 KiB through dm-integrity without error, as written.
leg_reads() {
	/bin/dd if=/dev/mapper/int$2 of=/tmp/got bs=64k count=1 skip=$(($1 / 64)) iflag=direct 2>/dev/null &&
		/bin/dd if=/tmp/data of=/tmp/want bs=64k count=1 skip=$(($1 / 64)) 2>/dev/null &&
		/usr/bin/cmp /tmp/got /tmp/want
}

# 8 sectors at 1 MiB on leg 0. Leg 1 is write-mostly meanwhile, so the
# array's reads go to leg 0.
corrupt0() {
	corrupt 0 2048 8 && ! leg_reads 1024 0 2>/dev/null && echo writemostly >$M/dev-$d1/state
}
check "8 corrupt sectors on leg 0 at 1 MiB: dm-integrity fails their read (EILSEQ)" corrupt0
healed0() {
	reads_back 1024 64 && dmesg_has "md0: read error on $d0 at sector 2048 (128 sectors)" &&
		dmesg_has "md0: read error corrected (128 sectors at 2048 on $d0)" && leg_reads 1024 0 &&
		file_is $M/dev-$d0/errors 1 && file_is $M/dev-$d1/errors 0 &&
		grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]" && echo -writemostly >$M/dev-$d1/state
}
check "the array reads the written data; leg 0 rewritten (reads clean through dm-integrity), its errors counted" healed0

# Sectors 8 KiB apart inside the 64 KiB at 4 MiB: 4 KiB block 2 bad on leg
# 0, block 4 on leg 1.
corrupt_both() {
	corrupt 0 $((8192 + 16)) 8 && corrupt 1 $((8192 + 32)) 8 &&
		! leg_reads 4096 0 2>/dev/null && ! leg_reads 4096 1 2>/dev/null
}
check "different sectors corrupt on both legs inside one 64 KiB range: neither leg reads it whole" corrupt_both
healed_both() {
	dmesg -c >/dev/null && reads_back 4096 64 &&
		dmesg_has "md0: read error corrected (8 sectors at 8208 on $d0)" &&
		dmesg_has "md0: read error corrected (8 sectors at 8224 on $d1)" &&
		leg_reads 4096 0 && leg_reads 4096 1 && ! dmesg_has "unrecoverable" &&
		file_is $M/dev-$d0/errors 2 && file_is $M/dev-$d1/errors 1
}
check "the read is served block by block: the written data, both legs healed, no unrecoverable block" healed_both
equal() {
	reads_back 0 $((SECTORS / 2 / 64 * 64)) && same /dev/mapper/int0 /dev/mapper/int1 && echo check >$M/sync_action &&
		wait_for 120 file_is $M/sync_action idle && file_is $M/mismatch_cnt 0 &&
		grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]"
}
check "legs equal; check finds 0 mismatches; both in sync" equal
stop() { mdadm --stop /dev/md0 && $IS close int0 && $IS close int1; }
check "stop md0, close the integrity devices" stop
ktap_finished
