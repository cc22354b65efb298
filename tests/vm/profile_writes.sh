#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Where the time goes: perf profiles of the workloads where fr1 trails md
# or the goal (scripts/profile.sh; not part of make check). Prints the top
# kernel symbols of each run as "# " lines.
# fr1-mem: 4G
# fr1-timeout: 1800
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
die() { echo "Bail out! $*"; exit 1; }
command -v perf >/dev/null || die "perf missing (scripts/profile.sh passes it in)"
echo 0 >/proc/sys/kernel/kptr_restrict
echo -1 >/proc/sys/kernel/perf_event_paranoid
modprobe md_mod
modprobe raid1
modprobe fr1
modprobe brd rd_nr=3 rd_size=$((512 * 1024))
for i in 0 1 2; do /bin/dd if=/dev/zero of=/dev/ram$i bs=1M count=512 oflag=direct 2>/dev/null; done

profile() { # profile LABEL DEV fio-args...
	local label=$1 dev=$2
	shift 2
	perf record -a -e cpu-clock -F 499 -o /tmp/perf.data -- \
		fio --name=p --filename="$dev" --direct=1 --ioengine=libaio --time_based --runtime=8 --ramp_time=1 \
		--group_reporting --output-format=terse --minimal "$@" >/tmp/fio.terse 2>/dev/null || die "fio $label"
	echo "# == $label: $(awk -F';' '{printf "write %s KiB/s %s IOPS", $48, $49}' /tmp/fio.terse)"
	perf report -i /tmp/perf.data --stdio --sort sym --percent-limit 1.5 2>/dev/null | grep '%' | head -n 25 | sed 's/^/#   /'
	# The bitmap's share: samples in its code (the dirty bitmap and the
	# record of a missed write, which inlines it) over all samples, as ns
	# per write: share x CPUs x run time / writes.
	perf report -i /tmp/perf.data --stdio --sort sym --percent-limit 0 2>/dev/null | grep '%' >/tmp/perf.syms
	awk -v iops="$(awk -F';' '{print $49}' /tmp/fio.terse)" -v cpus="$(nproc)" '
		{gsub(/%/, "", $1)}
		/DirtyBitmap|record_missed_write/ {bm += $1}
		/fr1_main/ {fr1 += $1}
		END {if (iops > 0) printf "#   fr1: %.2f %% of the samples, %.0f ns per write; bitmap: %.2f %%, %.0f ns per write\n",
			fr1, fr1 / 100 * cpus * 1e9 / iops, bm, bm / 100 * cpus * 1e9 / iops}' /tmp/perf.syms
	grep fr1_main /tmp/perf.syms | head -n 8 | sed 's/^/#     /' | cut -c1-160
}
SEQ="--rw=write --bs=1M --iodepth=16"
RAND="--rw=randwrite --bs=4k --iodepth=32"
RAND2J="--rw=randwrite --bs=4k --iodepth=32 --numjobs=2"

fr1ctl build /dev/fr0 --level=1 --raid-devices=3 --assume-clean /dev/ram0 /dev/ram1 /dev/ram2 >/dev/null || die build
profile "fr1 3-way seqwrite" /dev/fr0 $SEQ
fr1ctl fail /dev/fr0 /dev/ram2 >/dev/null
fr1ctl fail /dev/fr0 /dev/ram1 >/dev/null
profile "fr1 degraded seqwrite" /dev/fr0 $SEQ
profile "fr1 degraded randwrite" /dev/fr0 $RAND
profile "fr1 degraded randwrite 2 jobs" /dev/fr0 $RAND2J
fr1ctl stop /dev/fr0 >/dev/null
mdadm --create /dev/md0 --run --level=1 --raid-devices=3 --assume-clean --metadata=1.2 --bitmap=none \
	/dev/ram0 /dev/ram1 /dev/ram2 >/dev/null 2>&1 || die "md create"
profile "md 3-way seqwrite" /dev/md0 $SEQ
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram0 /dev/ram1 /dev/ram2 >/dev/null 2>&1
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 --bitmap=internal \
	/dev/ram0 /dev/ram1 >/dev/null 2>&1 || die "md create"
mdadm /dev/md0 --fail /dev/ram1 >/dev/null 2>&1
profile "md-internal degraded randwrite 2 jobs" /dev/md0 $RAND2J
mdadm --stop /dev/md0 >/dev/null 2>&1
profile "raw seqwrite" /dev/ram2 $SEQ
profile "raw randwrite" /dev/ram2 $RAND
profile "raw randwrite 2 jobs" /dev/ram2 $RAND2J
echo "1..0 # SKIP profile (the # lines are the result)"
