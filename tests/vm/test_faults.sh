#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Real device faults under fr1: write errors (dm-flakey) fail the member and
# never reach the writer; read errors (dm-dust) are served by the other
# mirror and repaired by rewriting the range; the last copy is never failed.
# fr1-disks: 4 64M
# fr1-timeout: 420
. /tests/lib.sh

ktap_print_header
ktap_set_plan 15

modprobe fr1
modprobe dm-flakey
modprobe dm-dust
sz=$(blockdev --getsz /dev/vdb)

# --- write errors on one member ---
dmsetup create leg1 --table "0 $sz linear /dev/vdb 0"
leg1=$(dmsetup info -c -o blkdevname --noheadings leg1)
check "build md0 on vda + dm(vdb)" fr1ctl build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/mapper/leg1
# No probing (md's manual behaviour): the failed leg stays in its slot as
# (F) however long fio runs; with probes it would be let go after
# LET_GO_PROBES unanswered ones (test_network_legs.sh tests that).
echo 0 > /sys/block/md0/md/fr1_probe_ms
FIO_W="--name=w --filename=/dev/md0 --size=32M --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1"
fio $FIO_W --verify_backlog=512 >/tmp/fio1.out 2>&1 &
fio_pid=$!
sleep 2
# All I/O to leg1 now fails (flakey: 0 s up, 60 s down).
dmsetup suspend leg1 && dmsetup load leg1 --table "0 $sz flakey /dev/vdb 0 0 60" && dmsetup resume leg1
wait $fio_pid
fio_rc=$?
[ $fio_rc = 0 ] || tail -n 20 /tmp/fio1.out | sed 's/^/# /'
check "fio with verify_backlog saw no error while the leg failed" test $fio_rc = 0
check "member marked faulty, array [2/1] [U_]" sh -c "grep -q '$leg1\[1\](F)' /proc/mdstat && grep -q '\[2/1\] \[U_\]' /proc/mdstat"
# Whichever hits first: a write, or the rewrite after a verify read failed.
check "dmesg: faulty line with the reason" sh -c \
	"dmesg | grep -qE 'md0: $leg1 faulty \((write error|rewrite after read error failed)\), operation continuing on 1 of 2 mirrors'"
check "data still verifies (verify_only pass)" fio $FIO_W --verify_only
check "write errors on the last copy go up, member kept" sh -c \
	'dmsetup create leg0 --table "0 '"$sz"' flakey /dev/vdc 0 0 60" && fr1ctl build /dev/md1 --level=1 --raid-devices=1 --assume-clean /dev/mapper/leg0 &&
	 ! /bin/dd if=/dev/zero of=/dev/md1 bs=4k count=1 oflag=direct 2>/dev/null && grep -A1 "^md1" /proc/mdstat | grep -q "\[1/1\] \[U\]"'
fr1ctl stop /dev/md1 >/dev/null 2>&1
fr1ctl stop /dev/md0 >/dev/null 2>&1
dmsetup remove leg0; dmsetup remove leg1

# --- read errors on one member, repaired ---
/bin/dd if=/dev/urandom of=/dev/vdd bs=1M count=8 oflag=direct 2>/dev/null
/bin/dd if=/dev/vdd of=/dev/vdc bs=1M count=8 oflag=direct 2>/dev/null
dmsetup create dust1 --table "0 $sz dust /dev/vdd 0 512"
dmsetup message dust1 0 addbadblock 100
dmsetup message dust1 0 addbadblock 1000
dmsetup message dust1 0 enable
dust=$(dmsetup info -c -o blkdevname --noheadings dust1)
check "build md2 on dust(vdd) first, vdc second" fr1ctl build /dev/md2 --level=1 --raid-devices=2 --assume-clean /dev/mapper/dust1 /dev/vdc
check "reads over bad blocks return the good data" sh -c \
	'blockdev --flushbufs /dev/vdc; /bin/dd if=/dev/md2 bs=512 count=16384 iflag=direct 2>/dev/null | /usr/bin/cmp -n 8388608 - /dev/vdc'
check "dmesg: read error redirected and corrected" sh -c \
	"dmesg | grep -q 'md2: read error on $dust' && dmesg | grep -q 'md2: read error corrected'"
check "bad blocks rewritten (dm-dust dropped them)" sh -c \
	'{ dmsetup message dust1 0 countbadblocks; dmesg | tail -n 3; } 2>&1 | grep -q "countbadblocks: 0 badblock(s) found"'
check "member still in sync after repair" sh -c 'grep -A1 "^md2" /proc/mdstat | grep -q "\[2/2\] \[UU\]"'
M2=/sys/block/md2/md
check "dev-*/errors counts the 2 corrected reads; max_read_errors is md's 20" sh -c \
	"[ \$(cat $M2/dev-$dust/errors) = 2 ] && [ \$(cat $M2/max_read_errors) = 20 ]"
check "max_read_errors takes md's 0..INT_MAX only" sh -c \
	"! echo -1 > $M2/max_read_errors && ! echo x > $M2/max_read_errors && ! echo 2147483648 > $M2/max_read_errors &&
	 echo 2147483647 > $M2/max_read_errors && echo 2 > $M2/max_read_errors && [ \$(cat $M2/max_read_errors) = 2 ]"
# A third read error (two counted, not decayed within the hour) is past the
# maximum: the member fails and is read around, not rewritten.
dmsetup message dust1 0 addbadblock 3000
check "past max_read_errors the member fails and the read still returns the good data" sh -c \
	'/bin/dd if=/dev/md2 bs=512 count=16384 iflag=direct 2>/dev/null | /usr/bin/cmp -n 8388608 - /dev/vdc &&
	 grep -A1 "^md2" /proc/mdstat | grep -q "\[2/1\] \[_U\]"'
check "dmesg: threshold [cur 3:max 2]; the block not rewritten; not probed" sh -c \
	"dmesg | grep -q 'md2: $dust: Raid device exceeded read_error threshold \[cur 3:max 2\]' &&
	 dmesg | grep -q 'md2: $dust faulty (exceeded read_error threshold)' &&
	 { dmsetup message dust1 0 countbadblocks; dmesg | tail -n 3; } 2>&1 | grep -q 'countbadblocks: 1 badblock(s) found' &&
	 [ \$(cat $M2/dev-$dust/state) = faulty ]"
fr1ctl stop /dev/md2 >/dev/null 2>&1
dmsetup remove dust1
ktap_finished
