#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo played by `make demo` (not a test): the fr1 README scenario on a
# 1 GiB mirror built with unmodified mdadm. Fail a member, write, see
# [2/1] [U_]; hot-add it back: only the dirty blocks are copied (progress
# bar, dmesg ranges); [2/2] [UU]; check: mismatch_cnt 0.
# fr1-disks: 2 1G
# fr1-timeout: 600
set -e
say() { printf '\n### %s\n' "$*"; }
say "modprobe fr1"
modprobe fr1
dmesg | grep 'fr1:'
say "mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb"
mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdb
cat /proc/mdstat
say "mdadm /dev/md0 --fail /dev/vdb   (raidsetfaulty)"
mdadm /dev/md0 --fail /dev/vdb
cat /proc/mdstat
say "write 1000 scattered 4 KiB blocks (fio, crc32c verified)"
fio --name=scatter --filename=/dev/md0 --rw=randwrite --bs=4k --size=1G --number_ios=1000 \
	--ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1 | grep -E 'IOPS|err='
dirty=$(cat /sys/block/md0/md/bitmap/bits)
say "bitmap: $dirty dirty blocks in $(cat /sys/block/md0/md/bitmap/leaves) leaves of 512 bytes = $(cat /sys/block/md0/md/bitmap/bytes) bytes of memory"
say "mdadm /dev/md0 --re-add /dev/vdb   (raidhotadd; resync throttled to 1 MB/s so the bar shows)"
echo 1000 > /sys/module/fr1/parameters/speed_limit_max
dmesg -c >/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
mdadm /dev/md0 --re-add /dev/vdb
usleep 500000
cat /proc/mdstat
say "fr1ctl wait /dev/md0"
fr1ctl wait /dev/md0
t1=$(cut -d' ' -f1 /proc/uptime)
cat /proc/mdstat
say "dmesg: only the dirty blocks were copied"
dmesg | grep 'fr1:'
copied=$(cat /sys/block/md0/md/bitmap/resync_copied_bytes)
size=$(/sbin/blockdev --getsize64 /dev/vdb)
say "copied: $copied bytes ($dirty dirty blocks x 4096)"
echo 200000 > /sys/module/fr1/parameters/speed_limit_max
say "echo check > /sys/block/md0/md/sync_action"
echo check > /sys/block/md0/md/sync_action
fr1ctl wait /dev/md0
say "mismatch_cnt = $(cat /sys/block/md0/md/mismatch_cnt)"
say "fr1ctl detail /dev/md0"
fr1ctl detail /dev/md0
say "mdadm --stop /dev/md0; rmmod fr1"
mdadm --stop /dev/md0
rmmod fr1
# What the user just saw, for scripts/demo.sh to print last.
echo "# fr1-summary: /dev/vdb came back by copying its $dirty dirty blocks: $copied of its $size bytes ($(awk "BEGIN{printf \"%.2f\", 100 * $copied / $size}") %), where md raid1 without a bitmap copies all of them"
echo "# fr1-resync-secs: $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")"
