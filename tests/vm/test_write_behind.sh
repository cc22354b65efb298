#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Write-behind and ahead/behind (issue 11). A two-way mirror: a fast leg
# (brd) and a write-mostly leg behind dm-delay. With bitmap/backlog > 0 the
# writer sees the fast leg's latency, not the slow one's (p99 ratios measured
# in this run); a failing behind write fails the leg without an error to the
# caller; a full backlog sends the leg behind (bitmap only) and, once the
# delay is gone, it catches up by itself, copying exactly what it missed.
# fr1-timeout: 600
. /tests/lib.sh

ktap_print_header
ktap_set_plan 20

SECTORS=262144 # 128 MiB
modprobe brd rd_nr=4 rd_size=$((SECTORS / 2))
modprobe dm-delay
modprobe fr1
# ram1 behind a 50 ms write delay (reads undelayed).
delay_table() { echo "0 $SECTORS delay /dev/ram1 0 0 /dev/ram1 0 $1"; }
dmsetup create slow --table "$(delay_table 50)"
# The same delay over ram3, no member: the load beside the fast leg alone.
dmsetup create slow2 --table "0 $SECTORS delay /dev/ram3 0 0 /dev/ram3 0 50"
for d in /sys/block/dm-*; do [ "$(cat "$d/dm/name")" = slow ] && s=${d##*/}; done
M=/sys/block/md0/md
B=$M/bitmap

# p99 write latency (us: submission to completion, fio's lat) of 4 KiB random
# writes at QD1 on $1, at most 2000 a second: 2000/s x 50 ms = 100 behind
# writes in flight, well within the backlog of 256 (unthrottled, a fast
# guest fills any backlog: that case is the backlog-overflow test below).
p99_us() {
	fio --name=lat --filename="$1" --rw=randwrite --bs=4k --size=32M --direct=1 --rate_iops=2000 \
		--ioengine=libaio --iodepth=1 --time_based --runtime=4 --ramp_time=1 --lat_percentiles=1 \
		--output-format=json >/tmp/lat.json 2>/tmp/lat.err || { tail -3 /tmp/lat.err; return 1; }
	grep -q '"error" : 0' /tmp/lat.json || return 1
	awk -F: '/"99.000000" :/ {gsub(/[ ,]/,"",$2); if ($2 > m) m = $2} END {printf "%d\n", m / 1000}' /tmp/lat.json
}

# mdadm 4.2 takes --write-behind only with --bitmap (mdadm.c, BUILD), which
# a build array cannot have: bitmap/backlog is the knob.
check "mdadm --build --write-behind without --bitmap: mdadm refuses it" \
	fails_with "write-behind mode requires a bitmap" mdadm --build /dev/md1 --level=1 --raid-devices=2 \
	/dev/ram0 --write-mostly /dev/mapper/slow --write-behind=256
build() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/mapper/slow &&
		grep -q "$s\[1\](W)" /proc/mdstat && grep -q write_mostly $M/dev-$s/state
}
check "build md0: ram0 + write-mostly slow leg; mdstat shows (W)" build
# This test drives the re-adds itself (md's manual behaviour): no probe.
echo 0 >$M/fr1_probe_ms
backlog_range() {
	file_is $B/backlog 0 && ! echo 16384 2>/dev/null >$B/backlog && echo 16383 >$B/backlog &&
		file_is $B/backlog 16383 && echo 0 >$B/backlog
}
check "bitmap/backlog: md's range (0..16383), default 0" backlog_range

# The fast leg alone is measured with the slow device taking the same
# write stream beside it (/dev/mapper/slow2, not a member): a TCG guest
# spends CPU on each delayed write's completion, and that cost is the
# guest's, not write-behind's. Measured without it, the fast leg alone
# went from 70 us to 550 us p99 between boots while the behind array
# stayed at 1-2 ms: a ratio to that swung with the boot, not with fr1.
beside_slow() {
	fio --name=bg --filename=/dev/mapper/slow2 --rw=randwrite --bs=4k --size=32M --direct=1 \
		--rate_iops=2000 --ioengine=libaio --iodepth=256 --time_based --runtime=6 >/dev/null 2>&1 &
	p99_us /dev/ram2
	wait
}
# The median of three: the fast leg and the behind array take turns (a TCG
# guest has slow spells that a single run of either can fall into).
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
dmesg -c >/dev/null
echo 0 >$B/backlog
sync_p99=$(p99_us /dev/md0)
echo 256 >$B/backlog
f1=$(beside_slow); b1=$(p99_us /dev/md0)
f2=$(beside_slow); b2=$(p99_us /dev/md0)
f3=$(beside_slow); b3=$(p99_us /dev/md0)
fast=$(median3 $f1 $f2 $f3)
behind_p99=$(median3 $b1 $b2 $b3)
echo "# p99 us: fast leg alone $fast ($f1 $f2 $f3), backlog 0 $sync_p99, backlog 256 $behind_p99 ($b1 $b2 $b3)"
waits_for_slow() { [ -n "$sync_p99" ] && [ "$sync_p99" -ge 40000 ] && [ "$sync_p99" -ge $((5 * fast)) ]; }
check "backlog 0: writes wait for the slow leg (p99 >= 40 ms, >= 5x the fast leg)" waits_for_slow
# fio's percentiles come in power-of-two-ish buckets: a factor 4 is about
# two buckets; the slow leg is ten buckets away.
at_fast_speed() {
	[ -n "$behind_p99" ] && [ -n "$fast" ] && [ "$behind_p99" -le $((4 * fast + 200)) ] &&
		[ $((behind_p99 * 4)) -le "$sync_p99" ]
}
check "backlog 256: p99 within 4x the fast leg alone, under a quarter of backlog 0's" at_fast_speed
# 2000 writes a second x 50 ms: about 100 in flight, never the 256.
never_behind() { ! dmesg_has "goes behind" && [ "$(cat $B/max_backlog_used)" -lt 256 ]; }
check "backlog 256 at 2000 writes/s over 50 ms: the leg never went behind" never_behind
drained() {
	local i=0
	while [ "$(cat $B/behind_writes)" != 0 ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
	file_is $B/behind_writes 0 && file_is $B/behind_bytes 0
}
drained_equal() {
	drained && [ "$(cat $B/max_backlog_used)" -gt 0 ] && same /dev/ram0 /dev/ram1 && file_is $M/degraded 0
}
check "behind writes drain; max_backlog_used counted them; the legs are equal" drained_equal

# A read that only the write-mostly leg can serve waits for its behind
# write to land (md's wait_behind_writes), and returns the new data.
read_waits() {
	dmsetup suspend slow && dmsetup load slow --table "$(delay_table 3000)" && dmsetup resume slow || return 1
	/bin/dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
	/bin/dd if=/tmp/blk of=/dev/md0 bs=4096 seek=5000 count=1 oflag=direct 2>/dev/null || return 1
	file_is $B/behind_writes 1 || { echo "behind_writes $(cat $B/behind_writes)"; return 1; }
	fr1ctl fail /dev/md0 /dev/ram0 || return 1
	/bin/dd if=/dev/md0 of=/tmp/got bs=4096 skip=5000 count=1 iflag=direct 2>/dev/null || return 1
	/usr/bin/cmp /tmp/blk /tmp/got && file_is $B/behind_writes 0
}
check "fast leg failed under a behind write: reading the block waits for it, returns the new data" read_waits
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 0)" && dmsetup resume slow
readd_fast() {
	fr1ctl remove /dev/md0 /dev/ram0 && fr1ctl re-add /dev/md0 /dev/ram0 && fr1ctl wait /dev/md0 120 >/dev/null &&
		same /dev/ram0 /dev/ram1 && file_is $M/degraded 0
}
check "the fast leg re-added: in sync, legs equal" readd_fast

# A failing behind write: the leg fails, the caller sees nothing.
dmesg -c >/dev/null
dmsetup suspend slow && dmsetup load slow --table "0 $SECTORS error" && dmsetup resume slow
failing() {
	/bin/dd if=/dev/urandom of=/dev/md0 bs=4096 seek=1000 count=1 oflag=direct 2>/dev/null || return 1
	local i=0
	while ! grep -q faulty $M/dev-$s/state && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
	grep -q faulty $M/dev-$s/state && dmesg_has "faulty (behind write error)"
}
check "a failing behind write: the write succeeds, the leg is faulty (behind write error)" failing
more() { # 99 more distinct blocks while the leg is faulty
	local b=2000
	while [ $b -lt 2099 ]; do
		/bin/dd if=/dev/urandom of=/dev/md0 bs=4096 seek=$b count=1 oflag=direct 2>/dev/null || return 1
		b=$((b + 1))
	done
}
check "99 more writes while the leg is faulty succeed" more
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 0)" && dmsetup resume slow
readd() {
	fr1ctl remove /dev/md0 /dev/mapper/slow && fr1ctl re-add /dev/md0 /dev/mapper/slow &&
		fr1ctl wait /dev/md0 120 >/dev/null && dmesg_has "(100 blocks, 409600 bytes copied)" &&
		same /dev/ram0 /dev/ram1
}
check "re-add copies exactly the 100 blocks written since (409600 bytes)" readd

# Backlog overflow: the leg goes behind instead of blocking the writer.
echo writemostly >$M/dev-$s/state
echo 4 >$B/backlog
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 20000)" && dmsetup resume slow
dmesg -c >/dev/null
check "backlog 4 over a 20 s leg: 8 MiB of sequential writes (crc32c-stamped) finish without error" \
	fio --name=seq --filename=/dev/md0 --rw=write --bs=4k --size=8M --offset=16M --direct=1 \
	--ioengine=libaio --iodepth=16 --verify=crc32c --verify_fatal=1 --do_verify=0
went_behind() {
	dmesg_has "goes behind (backlog full" && grep -q behind $M/dev-$s/state &&
		array_lines md0 | grep -qF "[U_]" && grep -A2 "^md0 :" /proc/mdstat | grep -q "behind: $s " &&
		fr1ctl detail /dev/md0 | grep -qE "writemostly.* behind" &&
		fr1ctl detail /dev/md0 | grep -q "Write Behind : backlog 4"
}
check "the leg went behind: dmesg, dev state, mdstat ([U_], 'behind:'), fr1ctl detail" went_behind
not_in_sync() { ! fr1ctl wait /dev/md0 1 >/dev/null 2>&1; }
check "fr1ctl wait does not call the behind leg in sync" not_in_sync
# The delay goes (dm-delay flushes its queue on suspend): it catches up alone.
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 0)" && dmsetup resume slow
caught_up() {
	local i=0
	while ! dmesg_has "caught up (" && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
	fr1ctl wait /dev/md0 60 >/dev/null || return 1
	skipped=$(dmesg | sed -n 's/.*resyncing what it missed (\([0-9]*\) bytes written while behind).*/\1/p' | awk '{s += $1} END {print s + 0}')
	copied=$(dmesg | sed -n 's/.*caught up (\([0-9]*\) bytes copied).*/\1/p' | awk '{s += $1} END {print s + 0}')
	echo "# written while behind $skipped, copied $copied"
	[ "$skipped" -gt 0 ] && [ "$copied" = "$skipped" ]
}
check "it catches up by itself: bytes copied == bytes written while behind" caught_up
after_catch_up() {
	file_is $M/degraded 0 && ! grep -q behind $M/dev-$s/state && same /dev/ram0 /dev/ram1 &&
		fio --name=seq --filename=/dev/md0 --rw=write --bs=4k --size=8M --offset=16M --direct=1 \
			--ioengine=libaio --iodepth=16 --verify=crc32c --verify_fatal=1 --verify_only >/dev/null
}
check "after the catch-up: in sync, legs equal, data verifies" after_catch_up
# A leg that answers, but too slowly: the oldest behind write passes
# md/fr1_behind_max_ms long before the backlog fills.
echo 500 >$M/fr1_behind_max_ms
echo 256 >$B/backlog
echo 0 >$B/max_backlog_used
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 3000)" && dmsetup resume slow
dmesg -c >/dev/null
too_slow() {
	fio --name=slow --filename=/dev/md0 --rw=randwrite --bs=4k --size=8M --offset=64M --direct=1 \
		--ioengine=libaio --iodepth=1 --rate_iops=100 --time_based --runtime=2 >/dev/null || return 1
	dmesg_has "goes behind (oldest behind write too old" && [ "$(cat $B/max_backlog_used)" -lt 256 ]
}
check "fr1_behind_max_ms 500 over a 3 s leg: it goes behind for age, the backlog never full" too_slow
dmsetup suspend slow && dmsetup load slow --table "$(delay_table 0)" && dmsetup resume slow
back_again() {
	local i=0
	while ! dmesg_has "caught up (" && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
	fr1ctl wait /dev/md0 60 >/dev/null && file_is $M/degraded 0 && same /dev/ram0 /dev/ram1
}
check "and catches up again by itself: in sync, legs equal" back_again
check "stop md0" fr1ctl stop /dev/md0
ktap_finished
