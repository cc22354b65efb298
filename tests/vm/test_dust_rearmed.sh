#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad blocks that keep coming back under live I/O (issue 13): leg B is
# dm-dust over ram1, leg A (ram0) write-mostly so that reads go to B; 16 blocks of a 64 KiB range are made bad again every
# 250 ms (a write to a bad block clears it, so each write or repair heals
# one until the next re-arm), 40 times, while a verifying writer (fio
# crc32c, verify_backlog) and a reader hit those same blocks. Every read
# that fails on B is served from A and B rewritten, racing writes to the
# same blocks. Afterwards: no I/O or verify error, the repairs happened
# (counted in dev-*/errors), no leg failed, the legs are byte-equal and a
# check (fr1ctl check) finds nothing.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 6

SECTORS=32768
modprobe brd rd_nr=2 rd_size=$((SECTORS / 2))
modprobe dm-dust
modprobe fr1
M=/sys/block/md0/md
dmsetup create dust1 --table "0 $SECTORS dust /dev/ram1 0 4096"
dmsetup message dust1 0 quiet >/dev/null 2>&1
d1=$(dmsetup info -c -o blkdevname --noheadings dust1)

# md's policy would fail B after 20 corrected reads: every re-arm costs B
# up to 16, and this test is about the repairs, not the policy.
build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean --write-mostly /dev/ram0 /dev/mapper/dust1 &&
		echo 0 >$M/fr1_probe_ms && echo 1000000 >$M/max_read_errors &&
		dmsetup message dust1 0 enable
}
check "build md0 on ram0 (write-mostly: reads go to B) and dust1 (ram1), max_read_errors 1000000" build

# Blocks 256..271 (1 MiB in), the range both fio jobs work on.
rearm() {
	local i=0 b
	while [ $i -lt 40 ]; do
		b=256
		while [ $b -lt 272 ]; do
			dmsetup message dust1 0 addbadblock $b >/dev/null 2>&1
			b=$((b + 1))
		done
		usleep 250000
		i=$((i + 1))
	done
}
dmesg -c >/dev/null
rearm &
rearm_pid=$!
fio --name=writer --filename=/dev/md0 --offset=1M --size=64k --rw=randwrite --bs=4k --ioengine=psync \
	--direct=1 --verify=crc32c --verify_fatal=1 --verify_backlog=4 --time_based --runtime=12 \
	--name=reader --filename=/dev/md0 --offset=1M --size=64k --rw=randread --bs=4k --ioengine=libaio --iodepth=4 \
	--direct=1 --time_based --runtime=12 >/tmp/fio.out 2>&1
fio_rc=$?
wait $rearm_pid
dmsetup message dust1 0 disable >/dev/null
fio_ok() {
	[ $fio_rc = 0 ] && [ "$(grep -c 'err= 0:' /tmp/fio.out)" = 2 ] &&
		! grep -qi "verify: bad\|bad magic\|crc32c: verify failed" /tmp/fio.out
}
fio_ok || head -n 30 /tmp/fio.out | sed 's/^/# /'
check "40 re-arms of 16 bad blocks under a verifying writer and a reader of those blocks: no I/O or verify error" fio_ok
repaired() {
	local n e
	n=$(dmesg | grep -c "read error corrected")
	e=$(cat $M/dev-$d1/errors)
	echo "$n repairs logged, dev-$d1/errors $e"
	[ "$n" -ge 40 ] && [ "$e" -ge 40 ] && ! dmesg_has "unrecoverable read error"
}
check "the bad blocks were hit: at least 40 reads repaired from ram0, counted in dev-*/errors, none unrecoverable" repaired
check "no leg failed" file_is $M/degraded 0
legs_equal() {
	dmsetup message dust1 0 countbadblocks 2>&1 | head -n1
	same /dev/ram0 /dev/ram1 && fr1ctl check /dev/md0 60 >/tmp/chk.out &&
		[ "$(tail -n 1 /tmp/chk.out)" = "fr1ctl: /dev/md0: check done: mismatch_cnt 0" ] && file_is $M/fr1_mismatches ""
}
check "the legs are byte-equal and a check finds nothing (exit 0, mismatch_cnt 0, no range)" legs_equal
stop0() { fr1ctl stop /dev/md0 >/dev/null && dmsetup remove dust1; }
check "stop md0" stop0
ktap_finished
