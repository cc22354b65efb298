#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# "In sync" is never said before the copy is done (issue 17). A leg misses
# K scattered 4 KiB blocks and is added back; when `fr1ctl wait` or
# `mdadm --wait` returns, the kernel log already has the "resync terminates"
# line, exactly K x 4096 bytes were copied and the legs are equal (K = 10,
# 1000, 100000, five times each; both tools wait at once, each recording
# what it saw when it returned; the re-add alternates between fr1ctl add
# and mdadm --re-add). A poller reads every state
# file from the moment the add returns and fails if any says in sync before
# the copy ended. The same contract for the initial resync of a not-clean
# build, for check, and for a recovery cut short by a failing leg (wait
# fails and says why) and resumed by a re-add.
# fr1-mem: 3G
# fr1-timeout: 1500
. /tests/lib.sh

ktap_print_header
ktap_set_plan 12

MB=512
modprobe brd rd_nr=2 rd_size=$((MB * 1024))
modprobe fr1
M=/sys/block/md0/md
copied() { cat $M/bitmap/resync_copied_bytes; }
terminations() { dmesg | grep -c "md0: resync terminates with" || true; }

# Writes K distinct 4 KiB blocks (fio's random map never repeats one):
# up to 1000 in the first 64 MiB, more over the whole array with two jobs
# on its two halves (K/2 each, so still distinct).
scatter() { # scatter K SEED
	if [ "$1" -le 1000 ]; then
		fio --name=scatter --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios="$1" \
			--ioengine=libaio --iodepth=16 --direct=1 --randseed="$2" >/dev/null 2>&1
	else
		fio --name=scatter --filename=/dev/md0 --rw=randwrite --bs=4k --size=$((MB / 2))M \
			--offset_increment=$((MB / 2))M --numjobs=2 --number_ios=$(($1 / 2)) \
			--ioengine=libaio --iodepth=16 --direct=1 --randseed="$2" >/dev/null 2>&1
	fi
}
# The legs are equal where scatter $1 wrote (the rest was equal before).
legs_equal() { # legs_equal K
	if [ "$1" -le 1000 ]; then same /dev/ram0 /dev/ram1 -n 67108864 >/dev/null; else same /dev/ram0 /dev/ram1 >/dev/null; fi
}

# What a waiter saw the moment it returned: "TERMINATIONS COPIED_BYTES".
seen() { echo "$(terminations) $(copied)"; }

# One cycle: ram1 misses K blocks and is added back (fr1ctl add after set
# faulty, or mdadm --re-add after --remove: $1). `fr1ctl wait` and
# `mdadm --wait` both wait for it, at the same time; each records what it
# saw when it returned, and both must have returned after the copy.
cycle() { # cycle fr1ctl|mdadm K SEED
	local how=$1 k=$2 before n0 f m
	if [ "$how" = fr1ctl ]; then
		fr1ctl fail /dev/md0 /dev/ram1 >/dev/null || { echo "fail"; return 1; }
	else
		mdadm /dev/md0 --fail /dev/ram1 >/dev/null 2>&1 && mdadm /dev/md0 --remove /dev/ram1 >/dev/null 2>&1 ||
			{ echo "mdadm fail/remove"; return 1; }
	fi
	scatter "$k" "$3" || { echo "scatter"; return 1; }
	before=$(copied)
	n0=$(terminations)
	if [ "$how" = fr1ctl ]; then
		fr1ctl add /dev/md0 /dev/ram1 >/dev/null || { echo "add"; return 1; }
	else
		mdadm /dev/md0 --re-add /dev/ram1 >/dev/null 2>&1 || { echo "mdadm --re-add"; return 1; }
	fi
	{ fr1ctl wait /dev/md0 600 >/dev/null && seen >/tmp/seen.fr1ctl || echo "failed" >/tmp/seen.fr1ctl; } &
	mdadm --wait /dev/md0 >/dev/null 2>&1
	seen >/tmp/seen.mdadm
	wait
	for tool in fr1ctl mdadm; do
		read -r f m </tmp/seen.$tool
		[ "$f" != failed ] || { echo "K=$k: fr1ctl wait failed"; return 1; }
		[ "$f" -gt "$n0" ] || { echo "K=$k: $tool wait returned before 'resync terminates' ($((m - before)) bytes copied)"; return 1; }
		[ $((m - before)) = $((k * 4096)) ] || { echo "K=$k: $((m - before)) bytes copied when $tool wait returned, want $((k * 4096))"; return 1; }
	done
	dmesg | grep -qF "($k blocks, $((k * 4096)) bytes copied)" || { echo "K=$k: wrong block count logged"; return 1; }
	file_is $M/degraded 0 || { echo "K=$k: degraded $(cat $M/degraded) after the wait"; return 1; }
	legs_equal "$k" || { echo "K=$k: legs differ"; return 1; }
}

cycles() { # cycles K: five cycles, the re-add alternating between the tools
	local i=1 how
	while [ $i -le 5 ]; do
		how=fr1ctl
		[ $((i % 2)) = 0 ] && how=mdadm
		cycle $how "$1" "$(($1 + i))" || { echo "cycle $i ($how)"; return 1; }
		i=$((i + 1))
	done
}

check "build md0 over two brd disks" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/ram1
for k in 10 1000 100000; do
	check "K=$k x5: fr1ctl wait and mdadm --wait return after 'resync terminates', $((k * 4096)) bytes copied, legs equal" cycles $k
done

# The poller: from the moment the add returns, nothing may say in sync
# before the kernel logged the end of the copy. Each sample reads mdstat,
# md/degraded, md/sync_action, md/sync_completed and dev-ram1/state.
poll_until_in_sync() {
	# Shell builtins only (read, case, test): no fork per sample, so the
	# samples are dense enough to catch a window of a few milliseconds.
	local n0=$1 busy=0 l deg act comp st said inmd uu rec
	while :; do
		read -r deg <$M/degraded
		read -r act <$M/sync_action
		read -r comp <$M/sync_completed
		read -r st <$M/dev-ram1/state
		inmd=0 uu=0 rec=0
		while read -r l; do
			case $l in "md0 :"*) inmd=1; continue ;; esac
			[ $inmd = 1 ] || continue
			case $l in
			"") break ;;
			*"[UU]"*) uu=1 ;;
			*recovery* | *DELAYED*) rec=1 ;;
			esac
		done </proc/mdstat
		said=""
		[ $uu = 1 ] && said="$said mdstat[UU]"
		[ $rec = 0 ] && said="$said mdstat-no-recovery-line"
		[ "$deg" = 0 ] && said="$said degraded=0"
		[ "$act" = idle ] && said="$said sync_action=idle"
		[ "$comp" = none ] && said="$said sync_completed=none"
		case $st in *in_sync*) said="$said state=$st" ;; esac
		if [ -n "$said" ]; then
			if [ "$(terminations)" -le "$n0" ]; then
				echo "in sync said before the copy ended:$said (after $busy samples)"
				return 1
			fi
			echo "$busy"
			return 0
		fi
		busy=$((busy + 1))
	done
}
stress() {
	local i=1 n0 busy
	while [ $i -le 2 ]; do
		fr1ctl fail /dev/md0 /dev/ram1 >/dev/null
		scatter 100000 $((70 + i)) || return 1
		n0=$(terminations)
		fr1ctl add /dev/md0 /dev/ram1 >/dev/null || return 1
		busy=$(poll_until_in_sync "$n0") || { echo "$busy"; return 1; }
		echo "cycle $i: $busy samples said not in sync, then in sync after the copy"
		# The poll must have watched the copy, not arrived after it.
		[ "$busy" -ge 3 ] || { echo "only $busy samples during the copy"; return 1; }
		fr1ctl wait /dev/md0 600 >/dev/null || return 1
		i=$((i + 1))
	done
}
check "stress: polling every state file from the add on, none says in sync before the copy ends" stress
check "stop md0" fr1ctl stop /dev/md0

# The initial resync of a not-clean build: the wait returns once ram1 holds
# ram0's data and resync_start says none.
/bin/dd if=/dev/urandom of=/dev/ram0 bs=1M count=64 oflag=direct 2>/dev/null
initial() { # initial TOOL
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 /dev/ram0 /dev/ram1 >/dev/null || return 1
	# Announced from the moment the build returns (or already over).
	file_is $M/sync_action resync || dmesg | grep -q "md0: resync of RAID array md0 done" ||
		{ echo "sync_action $(cat $M/sync_action) right after the build"; return 1; }
	if [ "$1" = fr1ctl ]; then fr1ctl wait /dev/md0 600 >/dev/null || return 1; else mdadm --wait /dev/md0 >/dev/null 2>&1; fi
	dmesg | grep -q "md0: resync of RAID array md0 done" || { echo "wait returned before 'resync ... done'"; return 1; }
	file_is $M/resync_start none || { echo "resync_start $(cat $M/resync_start)"; return 1; }
	same /dev/ram0 /dev/ram1 -n 67108864 >/dev/null || { echo "legs differ"; return 1; }
	fr1ctl stop /dev/md0 >/dev/null
}
dmesg -c >/dev/null
check "initial resync, fr1ctl wait: returns after 'resync done', legs equal" initial fr1ctl
/bin/dd if=/dev/urandom of=/dev/ram0 bs=1M count=64 oflag=direct 2>/dev/null
dmesg -c >/dev/null
check "initial resync, mdadm --wait: returns after 'resync done', legs equal" initial mdadm

# check: the wait returns with the result counted.
check_waits() {
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/ram1 >/dev/null || return 1
	/bin/dd if=/dev/urandom of=/dev/ram1 bs=4096 seek=100 count=8 oflag=direct 2>/dev/null
	dmesg -c >/dev/null
	echo check >$M/sync_action
	file_is $M/sync_action check || dmesg | grep -q "md0: check of RAID array md0 done" ||
		{ echo "sync_action $(cat $M/sync_action) right after the write"; return 1; }
	fr1ctl wait /dev/md0 600 >/dev/null || return 1
	dmesg | grep -q "md0: check of RAID array md0 done" || { echo "wait returned before 'check ... done'"; return 1; }
	file_is $M/mismatch_cnt 64 || { echo "mismatch_cnt $(cat $M/mismatch_cnt), want 64 (8 blocks)"; return 1; }
}
check "check: fr1ctl wait returns after 'check done' with the mismatches counted" check_waits

# A recovery cut short: ram1 sits behind a dm device whose table turns to
# "error" while the copy runs (slowed by sync_speed_max). The wait fails and
# names the faulty leg; the leg is restored, re-added, and the wait then
# returns with the legs equal.
fr1ctl stop /dev/md0 >/dev/null
SECTORS=$((MB * 2048))
dmsetup create leg --table "0 $SECTORS linear /dev/ram1 0" || true
interrupted() {
	local out
	fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 /dev/mapper/leg >/dev/null || return 1
	/bin/dd if=/dev/ram0 of=/dev/mapper/leg bs=1M count=64 oflag=direct 2>/dev/null
	fr1ctl fail /dev/md0 /dev/mapper/leg >/dev/null || return 1
	fio --name=scatter --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios=4000 \
		--ioengine=libaio --iodepth=16 --direct=1 --randseed=5 >/dev/null 2>&1 || return 1
	echo 2000 >$M/sync_speed_max
	fr1ctl add /dev/md0 /dev/mapper/leg >/dev/null || return 1
	dmsetup suspend leg && dmsetup load leg --table "0 $SECTORS error" && dmsetup resume leg || return 1
	if out=$(fr1ctl wait /dev/md0 600 2>&1); then
		echo "wait succeeded with a failing leg: $out"
		return 1
	fi
	echo "$out" | grep -q "not in sync: degraded 1: dm-[0-9]* faulty" || { echo "wait said: $out"; return 1; }
	dmsetup suspend leg && dmsetup load leg --table "0 $SECTORS linear /dev/ram1 0" && dmsetup resume leg || return 1
	echo system >$M/sync_speed_max
	fr1ctl add /dev/md0 /dev/mapper/leg >/dev/null || return 1
	fr1ctl wait /dev/md0 600 >/dev/null || return 1
	file_is $M/degraded 0 || return 1
	same /dev/ram0 /dev/mapper/leg -n 67108864 >/dev/null || { echo "legs differ"; return 1; }
}
dmesg -c >/dev/null
check "recovery cut by a failing leg: wait fails naming it; after the re-add it returns, legs equal" interrupted

# frozen: the wait does not pretend.
frozen() {
	local out
	fr1ctl fail /dev/md0 /dev/mapper/leg >/dev/null || return 1
	scatter 100 6 || return 1
	echo frozen >$M/sync_action
	fr1ctl add /dev/md0 /dev/mapper/leg >/dev/null || return 1
	if out=$(fr1ctl wait /dev/md0 60 2>&1); then echo "wait succeeded while frozen: $out"; return 1; fi
	echo "$out" | grep -q "frozen" || { echo "wait said: $out"; return 1; }
	echo idle >$M/sync_action
	fr1ctl wait /dev/md0 600 >/dev/null || return 1
	same /dev/ram0 /dev/mapper/leg -n 67108864 >/dev/null
}
check "frozen: wait fails saying so; after idle it returns, legs equal" frozen
check "stop" fr1ctl stop /dev/md0
ktap_finished
