#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# I/O accounting on the array's disk (md's md_account_bio): every read,
# write and discard the array serves is counted once in /sys/block/md0/stat
# (what iostat and sar read), with its sectors, on a whole array (writes
# cloned to both legs) and on a degraded one (the upper bio sent to the one
# leg itself); nothing stays counted in flight; queue/iostats 0 turns it
# off, as for md.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 7

modprobe brd rd_nr=2 rd_size=65536
modprobe fr1
S=/sys/block/md0/stat

check "build md0: ram0 + ram1" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/ram1

# Field $1 of md0's stat (1 read I/Os, 3 read sectors, 5 write I/Os,
# 7 write sectors, 9 in flight, 10 io_ticks, 12 discard I/Os, 14 discard
# sectors): linux/Documentation/block/stat.rst.
field() { awk -v f="$1" '{print $f}' $S; }
# Direct 4 KiB I/O, one bio each (a bio-based disk merges nothing): $1
# reads or writes, $2 of them, at random offsets.
io() {
	fio --name=st --filename=/dev/md0 --rw="$1" --bs=4k --size=32M --direct=1 --ioengine=libaio \
		--iodepth=4 --number_ios="$2" --randrepeat=0 --output-format=terse >/tmp/fio.out 2>&1 ||
		{ tail -3 /tmp/fio.out; return 1; }
}
# After $1 ($2 of them), the stat fields for its I/Os and sectors grew by
# exactly $2 and 8 x $2, and nothing is in flight.
counted() {
	local rw=$1 n=$2 fi fs i0 s0 i1 s1
	case $rw in
	randread) fi=1 fs=3 ;;
	*) fi=5 fs=7 ;;
	esac
	i0=$(field $fi) s0=$(field $fs)
	io "$rw" "$n" || return 1
	i1=$(field $fi) s1=$(field $fs)
	echo "# $rw: $((i1 - i0)) I/Os, $((s1 - s0)) sectors counted for $n"
	[ $((i1 - i0)) -eq "$n" ] && [ $((s1 - s0)) -eq $((8 * n)) ] && wait_for 5 idle
}
idle() { [ "$(field 9)" -eq 0 ] && [ "$(cat /sys/block/md0/inflight)" = "$(printf '%8d %8d' 0 0)" ]; }
both() { counted randwrite 1000 && counted randread 500; }
check "2 legs: 1000 writes and 500 reads are counted once each, with their sectors; none left in flight" both
discarded() {
	local i0 s0
	i0=$(field 12) s0=$(field 14)
	/sbin/blkdiscard -f -o 8M -l 1M /dev/md0 || return 1
	echo "# discard: $(($(field 12) - i0)) I/Os, $(($(field 14) - s0)) sectors"
	[ $(($(field 12) - i0)) -ge 1 ] && [ $(($(field 14) - s0)) -eq 2048 ] && wait_for 5 idle
}
check "a 1 MiB discard is counted (2048 sectors)" discarded
check "fail ram1: degraded" mdadm /dev/md0 --fail /dev/ram1
check "degraded (the bio itself goes to ram0): 1000 writes and 500 reads counted once each; none in flight" both
off() {
	local w0
	echo 0 >/sys/block/md0/queue/iostats || return 1
	w0=$(field 5)
	io randwrite 200 || return 1
	[ "$(field 5)" -eq "$w0" ] && echo 1 >/sys/block/md0/queue/iostats && counted randwrite 100
}
check "queue/iostats 0: nothing counted; 1 again: counted" off
check "stop md0" mdadm --stop /dev/md0
ktap_finished
