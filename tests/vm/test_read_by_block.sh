#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A read that no leg can serve whole is served block by block (issue 13):
# both legs sit on dm-dust (4 KiB blocks) with a bad block each, at
# different places inside one 64 KiB read. Neither leg reads the range
# whole, yet every block has a good copy: the read returns the written
# data, each leg's bad block is rewritten from the other (dm-dust drops a
# bad block once it is written), dev-*/errors counts it, the legs end
# equal and a second read finds no error. A block bad on both legs fails
# that read only (EIO, "unrecoverable" names the block), the rest of its
# range is still repaired, no leg fails, and other reads go on.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 6

MB=16
modprobe brd rd_nr=2 rd_size=$((MB * 1024))
modprobe dm-dust
modprobe fr1
M=/sys/block/md0/md
/bin/dd if=/dev/urandom of=/tmp/data bs=1M count=$MB 2>/dev/null
for i in 0 1; do
	/bin/dd if=/tmp/data of=/dev/ram$i bs=1M oflag=direct 2>/dev/null
	dmsetup create dust$i --table "0 $((MB * 2048)) dust /dev/ram$i 0 4096"
done
d0=$(dmsetup info -c -o blkdevname --noheadings dust0)
d1=$(dmsetup info -c -o blkdevname --noheadings dust1)
bad() { dmsetup message dust$1 0 addbadblock $2; }
bad_count() { dmsetup message dust$1 0 countbadblocks 2>&1 | grep -q "countbadblocks: $2 badblock(s) found"; }

build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/mapper/dust0 /dev/mapper/dust1 &&
		echo 0 >$M/fr1_probe_ms
}
check "build md0 on dust0 (ram0) and dust1 (ram1), equal data" build

# 64 KiB at $1 KiB (direct) equals the written data there.
reads_back() {
	/bin/dd if=/dev/md0 of=/tmp/got bs=64k count=1 skip=$(($1 / 64)) iflag=direct 2>/dev/null &&
		/bin/dd if=/tmp/data of=/tmp/want bs=64k count=1 skip=$(($1 / 64)) 2>/dev/null &&
		/usr/bin/cmp /tmp/got /tmp/want
}
# Blocks 10 (dust0) and 12 (dust1) of the 64 KiB at 0: no leg reads it whole.
bad 0 10 && bad 1 12 && dmsetup message dust0 0 enable && dmsetup message dust1 0 enable
by_block() {
	reads_back 0 && dmesg_has "md0: read error corrected (8 sectors at 80 on $d0)" &&
		dmesg_has "md0: read error corrected (8 sectors at 96 on $d1)" && ! dmesg_has "unrecoverable"
}
check "64 KiB over a bad block on each leg (4 KiB blocks 10 and 12): the written data; each block rewritten on the leg that failed it" by_block
healed() {
	bad_count 0 0 && bad_count 1 0 && [ "$(cat $M/dev-$d0/errors)" -ge 1 ] && [ "$(cat $M/dev-$d1/errors)" -ge 1 ] &&
		grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]" && same /dev/ram0 /dev/ram1 &&
		dmesg -c >/dev/null && reads_back 0 && ! dmesg_has "read error"
}
check "dm-dust dropped both bad blocks; dev-*/errors counts them; both legs in sync and equal; read again without error" healed

# Block 20 bad on both legs, block 22 on dust0 only, inside the 64 KiB at 64 KiB.
bad 0 20 && bad 1 20 && bad 0 22
unreadable() {
	! /bin/dd if=/dev/md0 of=/dev/null bs=64k count=1 skip=1 iflag=direct 2>/dev/null &&
		dmesg_has "md0: unrecoverable read error at sector 160 (8 sectors)" &&
		dmesg_has "md0: read error corrected (8 sectors at 176 on $d0)" && bad_count 0 1 && bad_count 1 1
}
check "a block bad on both legs: that read fails (EIO, the block named); the other bad block of its range is repaired" unreadable
others() {
	reads_back 0 && reads_back 128 && grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]"
}
check "other reads return the written data; no leg failed" others
stop() { mdadm --stop /dev/md0 && dmsetup remove dust0 && dmsetup remove dust1; }
check "stop md0, remove the dust devices" stop
ktap_finished
