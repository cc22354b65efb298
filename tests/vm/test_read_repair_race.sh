#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Read repair never writes older data over newer (issue 10, defect 1).
# Both legs delay writes by 200 ms (dm-delay); leg B has a bad block
# (dm-dust, below its delay so the bad block lives until the write lands);
# leg A is write-mostly, so reads go to B. Each round writes block X and,
# while that write is in flight, reads X: B fails, fr1 reads A and rewrites
# B. Reading A before freezing writes gets the old data and rewrites it over
# B after the new write landed there; freezing first waits for the write.
# Every round the legs must agree on X; at the end check counts nothing.
# fr1-timeout: 300
. /tests/lib.sh

ktap_print_header
ktap_set_plan 6

SECTORS=131072
modprobe brd rd_nr=2 rd_size=$((SECTORS / 2))
modprobe dm-delay
modprobe dm-dust
modprobe fr1
dmsetup create dust1 --table "0 $SECTORS dust /dev/ram1 0 4096"
dmsetup create slowa --table "0 $SECTORS delay /dev/ram0 0 0 /dev/ram0 0 200"
dmsetup create slowb --table "0 $SECTORS delay /dev/mapper/dust1 0 0 /dev/mapper/dust1 0 200"
dmsetup message dust1 0 quiet >/dev/null 2>&1
dmsetup message dust1 0 enable
M=/sys/block/md0/md
for d in /sys/block/dm-*; do [ "$(cat "$d/dm/name")" = slowa ] && a=${d##*/}; done

check "build md0 over two write-delayed legs, A write-mostly" sh -c \
	"fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/mapper/slowa /dev/mapper/slowb &&
	 echo writemostly > $M/dev-$a/state && grep -q write_mostly $M/dev-$a/state"

block_of() { /bin/dd if="$1" bs=4096 skip="$2" count=1 iflag=direct 2>/dev/null >"$3"; }
rounds() {
	local x=1 bad=0
	while [ $x -le 16 ]; do
		dmsetup message dust1 0 addbadblock $x >/dev/null || return 1
		/bin/dd if=/dev/urandom of=/dev/md0 bs=4096 seek=$x count=1 oflag=direct 2>/dev/null &
		usleep 40000
		/bin/dd if=/dev/md0 of=/dev/null bs=4096 skip=$x count=1 iflag=direct 2>/dev/null
		wait
		block_of /dev/ram0 $x /tmp/a && block_of /dev/ram1 $x /tmp/b
		if ! /usr/bin/cmp -s /tmp/a /tmp/b; then
			echo "block $x: legs differ after the repair raced a write"
			bad=$((bad + 1))
		fi
		x=$((x + 1))
	done
	[ $bad = 0 ]
}
dmesg -c >/dev/null
check "16 rounds of read repair racing a write of the same block: the legs agree on every block" rounds
check "the race was exercised: B's read errors were repaired from A" sh -c \
	'n=$(dmesg | grep -c "read error corrected"); echo "$n repairs"; [ "$n" -ge 8 ]'
check "no leg failed" file_is $M/degraded 0
check_clean() {
	echo check >$M/sync_action && fr1ctl wait /dev/md0 300 >/dev/null && file_is $M/mismatch_cnt 0 ||
		{ echo "mismatch_cnt $(cat $M/mismatch_cnt)"; return 1; }
}
check "check counts 0 mismatches" check_clean
check "stop md0" fr1ctl stop /dev/md0
ktap_finished
