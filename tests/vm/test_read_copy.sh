#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# fr1's copy ioctls (include/uapi/linux/fr1.h, issue 13), end to end:
# - FR1_READ_COPY returns each leg's own bytes: after different data is
#   written straight to one leg's backing device (across a region
#   boundary), slot 0 gives the array's data and slot 1 the changed bytes;
#   a read-copy of more than 1 MiB takes several calls and matches the leg.
# - A check lists exactly that range (md/fr1_mismatches, dmesg, fr1ctl
#   check --json, exit 1 with EUCLEAN), merged from 4 KiB blocks across the
#   region boundary.
# - FR1_REPAIR_RANGE from the good leg makes the legs equal again; a check
#   then lists nothing (exit 0).
# - A read-copy of a leg with a bad block fails with EIO and repairs
#   nothing (the bad block stays, no error is counted, no leg fails).
# - On a write-mostly leg with writes landing 1.5 s late, a read-copy
#   returns the data the array acknowledged (it waits for the behind write),
#   and a repair-range sends that leg its piece as a behind write.
# - A repair waiting for a region's write (a 5 s slow leg) sleeps
#   interruptibly: a signal ends it before the write lands.
# - Validation: bad slot, failed or recovering leg, range past the end,
#   unaligned, empty, over 1 MiB, flags, bad struct and buffer pointers,
#   an unprivileged caller, a repair during a recovery: md's errnos, no splat.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 16

MB=16
modprobe brd rd_nr=3 rd_size=$((MB * 1024))
modprobe dm-dust
modprobe dm-delay
modprobe fr1
M=/sys/block/md0/md
dmsetup create dust1 --table "0 $((MB * 2048)) dust /dev/ram1 0 4096"
d1=$(dmsetup info -c -o blkdevname --noheadings dust1)
/bin/dd if=/dev/urandom of=/tmp/data bs=1M count=$MB 2>/dev/null
/bin/dd if=/dev/urandom of=/tmp/other bs=64k count=1 2>/dev/null

build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 /dev/ram0 /dev/mapper/dust1 &&
		wait_in_sync md0 && echo 0 >$M/fr1_probe_ms &&
		/bin/dd if=/tmp/data of=/dev/md0 bs=1M oflag=direct 2>/dev/null && file_is $M/fr1_readable_copies 2
}
check "build md0 on ram0 and dust1 (ram1), 16 MiB written; fr1_readable_copies is 2" build

# 64 KiB of other data straight onto ram1, 32 KiB each side of the region
# boundary at 1 MiB.
/bin/dd if=/tmp/other of=/dev/ram1 bs=32k seek=31 oflag=direct 2>/dev/null
# Bytes $2 (KiB) at $1 (KiB) of file $3 into /tmp/want.
want() { /bin/dd if=$3 of=/tmp/want bs=1k skip=$1 count=$2 2>/dev/null; }
each_leg() {
	fr1ctl read-copy /dev/md0 --slot 0 --offset 992K --length 64K --output /tmp/c0 &&
		fr1ctl read-copy /dev/md0 --slot 1 --offset 992K --length 64K --output /tmp/c1 &&
		want 992 64 /tmp/data && /usr/bin/cmp /tmp/c0 /tmp/want && /usr/bin/cmp /tmp/c1 /tmp/other
}
check "read-copy across a region: slot 0 returns the array's data, slot 1 the bytes written to its device" each_leg
long_read() {
	fr1ctl read-copy /dev/md0 --slot 1 --offset 0 --length 3M >/tmp/c1 &&
		/bin/dd if=/dev/ram1 of=/tmp/want bs=1M count=3 iflag=direct 2>/dev/null &&
		/usr/bin/cmp /tmp/c1 /tmp/want
}
check "a 3 MiB read-copy of slot 1 (three calls, to stdout) equals ram1" long_read

# The changed 64 KiB (sectors 1984-2111, across the region boundary at
# sector 2048) is the one range a check lists: md/fr1_mismatches, dmesg and
# fr1ctl check (exit 1, EUCLEAN) name it, in 4 KiB blocks merged.
listed() {
	local rc=0
	fr1ctl check /dev/md0 60 --json >/tmp/chk.json 2>/tmp/chk.err || rc=$?
	cat /tmp/chk.json /tmp/chk.err
	[ $rc = 1 ] && grep -q EUCLEAN /tmp/chk.err &&
		grep -qF '"action":"check","result":"differ","mismatch_cnt":128,"ranges":[{"sector":1984,"sectors":128,"offset":1015808,"length":65536,"slot":1,"device":"'$d1'","primary":0,"primary_device":"ram0"}],"unlisted_sectors":0,' /tmp/chk.json &&
		file_is $M/mismatch_cnt 128 && file_is $M/fr1_mismatches "1984 128 1 0" &&
		dmesg_has "md0: check: slot 1 ($d1) differs from slot 0 (ram0) at sector 1984, 128 sectors" &&
		file_is $M/sync_action idle
}
check "check lists exactly the range made to differ: 1984+128 sectors, slot 1 vs slot 0 (sysfs, dmesg, fr1ctl --json)" listed
repaired() {
	fr1ctl repair-range /dev/md0 --from 0 --offset 992K --length 64K &&
		dmesg_has "md0: repair-range from ram0: 128 sectors at sector 1984 written over the other legs" &&
		same /dev/ram0 /dev/ram1 && /usr/bin/cmp /dev/ram0 /tmp/data &&
		grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]"
}
check "repair-range from slot 0 over the changed range: legs equal, the written data, both in sync" repaired
clean_check() {
	fr1ctl check /dev/md0 60 >/tmp/chk.out && cat /tmp/chk.out &&
		[ "$(tail -n 1 /tmp/chk.out)" = "fr1ctl: /dev/md0: check done: mismatch_cnt 0" ] &&
		! grep -q differs /tmp/chk.out && file_is $M/mismatch_cnt 0 && file_is $M/fr1_mismatches ""
}
check "after the repair a check finds nothing: mismatch_cnt 0, no range listed, exit 0" clean_check

# A bad 4 KiB block on dust1 (block 100): read-copy returns the error as it
# is and repairs nothing; the array's own reads still heal it.
dmsetup message dust1 0 addbadblock 100 && dmsetup message dust1 0 enable
bad_count() { dmsetup message dust1 0 countbadblocks 2>&1 | grep -q "countbadblocks: $1 badblock(s) found"; }
raw_eio() {
	rm -f /tmp/c1 && fails_with "EIO" fr1ctl read-copy /dev/md0 --slot 1 --offset 400K --length 4K --output /tmp/c1 &&
		[ ! -e /tmp/c1 ] && bad_count 1 && file_is $M/dev-$d1/errors 0 &&
		! dmesg_has "read error corrected" && grep -A1 "^md0" /proc/mdstat | grep -q "\[2/2\] \[UU\]" &&
		fr1ctl read-copy /dev/md0 --slot 0 --offset 400K --length 4K --output /tmp/c0 &&
		want 400 4 /tmp/data && /usr/bin/cmp /tmp/c0 /tmp/want
}
check "read-copy of a bad block: EIO, no output file, nothing repaired or counted, no leg failed; slot 0 reads it" raw_eio
dmsetup message dust1 0 disable

# Validation through the raw ioctl (fields of struct fr1_copy_io).
validation() {
	rc_() { local want=$1; shift; ioctl_is "$want" /dev/md0 FR1_READ_COPY "$@"; }
	rr_() { local want=$1; shift; ioctl_is "$want" /dev/md0 FR1_REPAIR_RANGE "$@"; }
	rc_ ok slot=1 offset=4096 length=4096 &&
		rc_ EINVAL slot=2 offset=0 length=4096 &&
		rc_ EINVAL slot=4294967295 offset=0 length=4096 &&
		rc_ EINVAL slot=0 offset=$((MB << 20)) length=512 &&
		rc_ EINVAL slot=0 offset=$(((MB << 20) - 512)) length=1024 &&
		rc_ EINVAL slot=0 offset=0xfffffffffffffe00 length=1024 &&
		rc_ EINVAL slot=0 offset=100 length=512 &&
		rc_ EINVAL slot=0 offset=0 length=100 &&
		rc_ EINVAL slot=0 offset=0 length=0 &&
		rc_ ok slot=0 offset=0 length=1048576 &&
		rc_ EINVAL slot=0 offset=0 length=1049088 &&
		rc_ EINVAL slot=0 offset=0 length=0x100000000000 &&
		rc_ EINVAL slot=0 flags=1 offset=0 length=4096 &&
		rc_ EFAULT slot=0 offset=0 length=4096 buf=16 &&
		ioctl_is EFAULT /dev/md0 FR1_READ_COPY bad &&
		ioctl_is EFAULT /dev/md0 FR1_REPAIR_RANGE bad &&
		rr_ EINVAL from=2 offset=0 length=4096 &&
		rr_ EINVAL from=0 offset=0 length=0 &&
		rr_ EINVAL from=0 flags=1 offset=0 length=4096 &&
		rr_ EINVAL from=0 offset=0 length=1049088 &&
		rr_ ok from=1 offset=0 length=4096 && same /dev/ram0 /dev/ram1
}
check "validation: bad slot, past the end, unaligned, empty, over 1 MiB, flags: EINVAL; bad pointers: EFAULT" validation
nobody() { /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups "$@" 2>&1 | head -n1; }
unprivileged() {
	chmod 666 /dev/md0 &&
		[ "$(nobody fr1ctl ioctl /dev/md0 FR1_READ_COPY slot=0 offset=0 length=4096)" = EACCES ] &&
		[ "$(nobody fr1ctl ioctl /dev/md0 FR1_REPAIR_RANGE from=0 offset=0 length=4096)" = EACCES ] &&
		chmod 660 /dev/md0
}
check "an unprivileged caller: EACCES for both" unprivileged

failed_leg() {
	mdadm /dev/md0 --fail /dev/mapper/dust1 >/dev/null 2>&1 &&
		ioctl_is EINVAL /dev/md0 FR1_READ_COPY slot=1 offset=0 length=4096 &&
		ioctl_is EINVAL /dev/md0 FR1_REPAIR_RANGE from=0 offset=0 length=4096 &&
		file_is $M/fr1_readable_copies 1 && ioctl_is ok /dev/md0 FR1_READ_COPY slot=0 offset=0 length=4096
}
check "a failed leg: read-copy of it and a repair with no other leg are EINVAL; fr1_readable_copies 1" failed_leg
# 8 MiB written while it is out, then copied back at 1 MiB/s: a long recovery.
recovering() {
	/bin/dd if=/tmp/data of=/dev/md0 bs=1M count=8 seek=8 oflag=direct 2>/dev/null &&
		echo 1000 >$M/sync_speed_max && mdadm /dev/md0 --remove /dev/mapper/dust1 >/dev/null &&
		mdadm /dev/md0 --re-add /dev/mapper/dust1 >/dev/null &&
		wait_for 10 grep -q recovery /proc/mdstat &&
		ioctl_is EINVAL /dev/md0 FR1_READ_COPY slot=1 offset=0 length=4096 &&
		ioctl_is EBUSY /dev/md0 FR1_REPAIR_RANGE from=0 offset=0 length=4096 &&
		echo system >$M/sync_speed_max && wait_in_sync md0 &&
		ioctl_is ok /dev/md0 FR1_REPAIR_RANGE from=0 offset=0 length=4096 && same /dev/ram0 /dev/ram1
}
check "during a recovery: read-copy of the recovering leg EINVAL, repair-range EBUSY; both work once in sync" recovering
stop0() { mdadm --stop /dev/md0 && dmsetup remove dust1; }
check "stop md0" stop0

# A write-mostly leg whose writes land 1.5 s late (dm-delay), write-behind on.
S=/sys/block/md1/md
dmsetup create slow --table "0 $((MB * 2048)) delay /dev/ram2 0 0 /dev/ram2 0 1500"
behind_read() {
	/bin/dd if=/dev/zero of=/dev/ram0 bs=1M count=$MB oflag=direct 2>/dev/null &&
		/bin/dd if=/dev/zero of=/dev/ram2 bs=1M count=$MB oflag=direct 2>/dev/null &&
		fr1ctl build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/mapper/slow &&
		echo 0 >$S/fr1_probe_ms && echo 256 >$S/bitmap/backlog &&
		/bin/dd if=/tmp/other of=/dev/md1 bs=64k seek=3 oflag=direct 2>/dev/null &&
		[ "$(cat $S/bitmap/behind_writes)" -ge 1 ] &&
		fr1ctl read-copy /dev/md1 --slot 1 --offset 192K --length 64K --output /tmp/c1 &&
		/usr/bin/cmp /tmp/c1 /tmp/other && file_is $S/bitmap/behind_writes 0
}
check "write-behind: a read-copy of the slow leg right after a write returns the acknowledged data" behind_read
# Other bytes straight onto the slow leg's device; a repair from slot 0
# sends its piece to the write-mostly leg as a behind write (1.5 s) and
# returns at once: the behind write is still in flight when it does.
behind_repair() {
	/bin/dd if=/tmp/other of=/dev/ram2 bs=64k seek=8 oflag=direct 2>/dev/null &&
		! same /dev/ram0 /dev/ram2 &&
		fr1ctl repair-range /dev/md1 --from 0 --offset 512K --length 64K &&
		[ "$(cat $S/bitmap/behind_writes)" -ge 1 ] &&
		fr1ctl read-copy /dev/md1 --slot 1 --offset 512K --length 64K --output /tmp/c1 &&
		file_is $S/bitmap/behind_writes 0 &&
		/bin/dd if=/dev/ram0 of=/tmp/want bs=64k skip=8 count=1 iflag=direct 2>/dev/null &&
		/usr/bin/cmp /tmp/c1 /tmp/want && same /dev/ram0 /dev/ram2
}
check "write-behind: repair-range returns with its copy to the write-mostly leg behind; that leg then equals slot 0" behind_repair
# Write-behind off and writes landing 5 s late: a write holds its region
# for 5 s. A repair of that region sleeps interruptibly (S, not D) and a
# signal ends it while the write is still in flight; then it repairs.
wait_state() { grep -q "^State:[[:space:]]*$2" /proc/$1/status; }
writing() { read -r r w </sys/block/md1/inflight && [ "$w" -ge 1 ]; }
interrupted() {
	echo 0 >$S/bitmap/backlog && dmsetup suspend slow &&
		dmsetup reload slow --table "0 $((MB * 2048)) delay /dev/ram2 0 0 /dev/ram2 0 5000" &&
		dmsetup resume slow || return 1
	/bin/dd if=/tmp/other of=/dev/md1 bs=64k seek=12 oflag=direct 2>/dev/null &
	local dd=$!
	wait_for 4 writing || return 1
	fr1ctl repair-range /dev/md1 --from 0 --offset 768K --length 64K &
	local rr=$!
	wait_for 4 wait_state $rr S && writing && kill -TERM $rr && ! wait $rr && writing &&
		wait $dd && ! dmesg_has "md1: repair-range from ram0: 128 sectors at sector 1536" &&
		fr1ctl repair-range /dev/md1 --from 0 --offset 768K --length 64K && same /dev/ram0 /dev/ram2
}
check "a repair waiting for a region's slow write sleeps interruptibly; a signal ends it before the write lands" interrupted
stop1() { mdadm --stop /dev/md1 && dmsetup remove slow; }
check "stop md1" stop1
ktap_finished
