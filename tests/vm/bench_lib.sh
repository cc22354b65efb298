# SPDX-License-Identifier: GPL-2.0
# Guest side of `make bench` (sourced by bench_quick.sh / bench_full.sh with
# SIZE_MB, RUNTIME, KS and REPS, or INFO_REPS + MIN_REPS + MAX_REPS, set).
# Runs every workload on the raw member, fr1 (coexistence mode: /dev/fr0)
# and md raid1 (no bitmap, internal bitmap with mdadm's default chunk and
# with 4 KiB-like small chunk) on identical brd members in one boot, and
# prints one JSON record per measurement as "# bench: {...}". Any fio error
# or unfinished resync aborts (exit 1).
set -e
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

rec() { echo "# bench: $*"; }
die() { echo "Bail out! $*"; exit 1; }

modprobe md_mod
modprobe raid1
modprobe fr1
modprobe brd rd_nr=6 rd_size=$((SIZE_MB * 1024))
M=/sys/block
# brd allocates a page at the first write to it: write every member once so
# that no target pays for it in its first measurement (md's runs came after
# fr1's on already written disks).
for i in 0 1 2 3 4 5; do
	/bin/dd if=/dev/zero of=/dev/ram$i bs=1M count="$SIZE_MB" oflag=direct 2>/dev/null || die "prefill ram$i"
done

# fio_job NAME DEV extra-args: prints IOPS and KiB/s of the job (json).
fio_job() {
	local name=$1 dev=$2
	shift 2
	fio --name="$name" --filename="$dev" --direct=1 --ioengine=libaio --time_based --runtime="$RUNTIME" \
		--ramp_time=1 --group_reporting --output-format=json "$@" >/tmp/fio.json 2>/tmp/fio.err \
		|| die "fio $name on $dev failed: $(tail -n 3 /tmp/fio.err)"
	grep -q '"error" : 0' /tmp/fio.json || die "fio $name on $dev reported an error"
	# iops and bw (KiB/s) of reads + writes, from fio's JSON.
	awk -F: '/"iops" :/ {gsub(/[ ,]/,"",$2); iops+=$2} /"bw" :/ {gsub(/[ ,]/,"",$2); bw+=$2} END {printf "%d %d\n", iops, bw}' /tmp/fio.json
}

WORKLOADS="seqwrite:--rw=write:--bs=1M:--iodepth=16
randwrite:--rw=randwrite:--bs=4k:--iodepth=32
randwrite2j:--rw=randwrite:--bs=4k:--iodepth=32:--numjobs=2
seqread:--rw=read:--bs=1M:--iodepth=16
randread2j:--rw=randread:--bs=4k:--iodepth=32:--numjobs=2"

# rotate N ITEMS...: the items, starting with the N-th (round robin).
rotate() {
	local n=$1 i=0 head="" tail=""
	shift
	n=$(((n - 1) % $#))
	for x in "$@"; do
		if [ $i -lt $n ]; then tail="$tail $x"; else head="$head $x"; fi
		i=$((i + 1))
	done
	echo $head $tail
}

# --- repetitions until the goals are decided ---
# Every measurement of a pass (one `interleaved` call) is also kept in $RECS
# as "workload target rep iops kib_s p99". A goal "A/B:METRIC>=X" (or <=X)
# holds for the median of the per-repetition ratios A/B (A and B measured
# back to back in the same repetition). Its 95 % interval is distribution-free: the order statistics
# [r(k), r(n+1-k)] of the n sorted ratios, k the largest with
# 2 P(Binomial(n, 1/2) < k) <= 0.05 (the sign test's interval for a median;
# n >= 6 is needed for any). bench_report.py computes the same interval.
# A goal is decided when its interval lies on one side of X.
RECS=/tmp/bench.recs
: >"$RECS"
MIN_REPS=${MIN_REPS:-${REPS:-3}}
MAX_REPS=${MAX_REPS:-$MIN_REPS}
INFO_REPS=${INFO_REPS:-$MIN_REPS}
# undecided WORKLOAD "GOAL...": the targets of its goals not yet decided.
undecided() {
	awk -v w="$1" -v goals="$2" '
	$1 == w { v[$2 SUBSEP $3 SUBSEP "iops"] = $4; v[$2 SUBSEP $3 SUBSEP "kib_s"] = $5
		v[$2 SUBSEP $3 SUBSEP "p99"] = $6; if ($3 > reps) reps = $3 }
	END {
		ng = split(goals, G, " ")
		for (g = 1; g <= ng; g++) {
			spec = G[g]; metric = "kib_s"
			if (index(spec, ">=")) { op = ">="; split(spec, P, ">=") } else { op = "<="; split(spec, P, "<=") }
			x = P[2] + 0; pair = P[1]
			if (index(pair, ":")) { split(pair, Q, ":"); pair = Q[1]; metric = Q[2] }
			split(pair, AB, "/"); n = 0
			for (r = 1; r <= reps; r++) {
				a = v[AB[1] SUBSEP r SUBSEP metric]; b = v[AB[2] SUBSEP r SUBSEP metric]
				if (a != "" && b != "" && b + 0 > 0) s[++n] = a / b
			}
			for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
			k = 0; c = 1; cum = 0; p2 = 1
			for (i = 0; i < n; i++) p2 *= 2
			for (i = 0; i < n; i++) {
				if (i) c = c * (n - i + 1) / i
				cum += c / p2
				if (2 * cum <= 0.05) k = i + 1; else break
			}
			decided = 0
			if (k) {
				lo = s[k]; hi = s[n + 1 - k]
				if (op == ">=") decided = lo >= x || hi < x; else decided = hi <= x || lo > x
			}
			if (!decided) print AB[1] "\n" AB[2]
		}
	}' "$RECS" | sort -u | tr '\n' ' '
}
# goal_targets "GOAL...": the targets the goals compare.
goal_targets() {
	local g pair
	for g in $1; do
		pair=${g%%[<>]=*}
		pair=${pair%%:*}
		echo "${pair%/*} ${pair#*/}"
	done
}
# interleaved MEASURE "TARGET=DEV ..." FILTER "GOAL..." WORKLOADS: every
# workload (NAME:fio-args, ':' for ' ') matching FILTER on each target, the
# targets taking turns (the order rotates with each repetition, so drift in
# the VM's speed hits them alike). Every target runs INFO_REPS times, the
# targets of a goal MIN_REPS times, then only the targets of goals still
# undecided, up to MAX_REPS. MEASURE is fio_tput or fio_lat_rec.
PASS=0
interleaved() {
	local measure=$1 targets=$2 filter=$3 goals=$4 w name args r t out active want
	# A target measured in several passes (raw: healthy, then beside
	# fr1-degraded) pairs only within its pass ("pass" in the records).
	PASS=$((PASS + 1))
	: >"$RECS"
	for w in $5; do
		name=${w%%:*}
		echo "$name" | grep -qE "$filter" || continue
		args=$(echo "${w#*:}" | tr : ' ')
		r=1
		active=$targets
		while [ $r -le "$MAX_REPS" ] && [ -n "$active" ]; do
			# shellcheck disable=SC2086
			for t in $(rotate $r $active); do
				out=$($measure "$name" "${t#*=}" $args)
				set -- $out
				echo "$name ${t%%=*} $r $1 $2 $3" >>"$RECS"
				rec "{\"workload\":\"$name\",\"target\":\"${t%%=*}\",\"pass\":$PASS,\"rep\":$r,$4}"
			done
			r=$((r + 1))
			if [ $r -le "$INFO_REPS" ]; then
				continue
			elif [ $r -le "$MIN_REPS" ]; then
				want=$(goal_targets "$goals")
			else
				want=$(undecided "$name" "$goals")
			fi
			active=""
			for t in $targets; do
				case " $want " in *" ${t%%=*} "*) active="$active $t" ;; esac
			done
		done
	done
}
# fio_tput NAME DEV args: "IOPS KiB/s 0 JSON-FIELDS".
fio_tput() {
	set -- $(fio_job "$@")
	echo "$1 $2 0 \"iops\":$1,\"kib_s\":$2"
}
# run_interleaved "TARGET=DEV ..." FILTER "GOAL...": the throughput workloads.
run_interleaved() { interleaved fio_tput "$1" "${2:-.}" "${3:-}" "$WORKLOADS"; }

md_create() { # md_create NAME BITMAP [chunk] DEVS...
	local name=$1 bitmap=$2 chunk=$3
	shift 3
	if [ -n "$chunk" ]; then
		mdadm --create "$name" --run --level=1 --raid-devices=$# --assume-clean --metadata=1.2 \
			--bitmap="$bitmap" --bitmap-chunk="$chunk" "$@" >/tmp/mdadm.err 2>&1
	else
		mdadm --create "$name" --run --level=1 --raid-devices=$# --assume-clean --metadata=1.2 \
			--bitmap="$bitmap" "$@" >/dev/null 2>&1 || die "mdadm --create $name"
	fi
}

fr1_build() { fr1ctl build /dev/fr0 --level=1 --raid-devices=$# --assume-clean "$@" >/dev/null || die "fr1ctl build"; }
# Members written apart (degraded runs, md superblocks) differ: the resync
# measurements start from an array made identical by fr1's initial resync.
fr1_build_synced() {
	fr1ctl build /dev/fr0 --level=1 --raid-devices=$# "$@" >/dev/null || die "fr1ctl build"
	fr1ctl wait /dev/fr0 600 >/dev/null || die "initial resync"
}

# section NAME: whether this run measures NAME (SECTIONS, a list of
# throughput, resync, check, slow, net and memory; all by default).
section() {
	case " ${SECTIONS:-all} " in
	*" all "* | *" $1 "*) return 0 ;;
	esac
	return 1
}
wait_fr1() { fr1ctl wait /dev/fr0 600 >/dev/null || die "fr1 resync did not finish"; }
wait_md() { mdadm --wait /dev/md0 >/dev/null 2>&1 || true; grep -q "recovery\|resync" /proc/mdstat && die "md resync did not finish"; return 0; }
now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
# kspan START END: ms between the kernel log lines containing START and END
# (the sync engine alone, without the tools' process start-up; "null" if
# either line is missing).
kstamp() { dmesg | grep -F -- "$1" | tail -n 1 | sed -n 's/^\[ *\([0-9]*\)\.\([0-9]\{3\}\).*/\1\2/p'; }
kspan() {
	local a b
	a=$(kstamp "$1"); b=$(kstamp "$2")
	if [ -n "$a" ] && [ -n "$b" ]; then echo $((b - a)); else echo null; fi
}

if section throughput; then
# --- throughput: fr1 and md side by side (coexistence: /dev/fr0 next to
# /dev/md0, on their own members), the raw member alone ---
md_stop() { mdadm --stop /dev/md0 >/dev/null 2>&1; mdadm --zero-superblock "$@" >/dev/null 2>&1 || true; }
# side_by_side BITMAP [TARGET=DEV] GOALS DEGRADED-GOALS [TARGET=DEV]: fr1
# and md (BITMAP) on two members each (and the first extra target), then
# both degraded (writes only, bitmaps recording; and both extra targets).
side_by_side() {
	fr1_build /dev/ram0 /dev/ram1
	md_create /dev/md0 "$1" "" /dev/ram2 /dev/ram3
	run_interleaved "${2:-} fr1=/dev/fr0 md-$1=/dev/md0" . "$3"
	fr1ctl fail /dev/fr0 /dev/ram1 >/dev/null
	mdadm /dev/md0 --fail /dev/ram3 >/dev/null 2>&1
	run_interleaved "fr1-degraded=/dev/fr0 md-$1-degraded=/dev/md0 ${2:-} ${5:-}" write "$4"
	fr1ctl stop /dev/fr0 >/dev/null
	md_stop /dev/ram2 /dev/ram3
}
# The goals (bench_report.py shows them): fr1 >= md without a bitmap, healthy
# and degraded; degraded, >= 0.95 of the raw leg it writes to, and twice md
# with its internal bitmap recording.
# dm-linear over a member of its own is the cheapest stacked driver there is
# (a remap, no bookkeeping): how close to the raw leg stacking itself gets.
modprobe dm-mod
dmsetup create linear --table "0 $((SIZE_MB * 2048)) linear /dev/ram5 0" || die "dm-linear"
side_by_side none raw=/dev/ram4 "fr1/md-none>=1.0" \
	"fr1-degraded/md-none-degraded>=1.0 fr1-degraded/raw>=0.95 dm-linear/raw>=0.95" dm-linear=/dev/mapper/linear
dmsetup remove linear
side_by_side internal "" "" "fr1-degraded/md-internal-degraded>=2"
fr1_build /dev/ram0 /dev/ram1 /dev/ram4
md_create /dev/md0 none "" /dev/ram2 /dev/ram3 /dev/ram5
run_interleaved "fr1-3way=/dev/fr0 md-none-3way=/dev/md0" write "fr1-3way/md-none-3way>=1.0"
fr1ctl stop /dev/fr0 >/dev/null
md_stop /dev/ram2 /dev/ram3 /dev/ram5
fi

# --- resync: K scattered 4 KiB blocks while one member is out ---
# The copy engines are measured, not the default ceiling of 200000 KiB/s
# that md and fr1 share: lift it for both (idle arrays run at full speed).
if section resync; then
echo 2000000000 >/proc/sys/dev/raid/speed_limit_max
echo 2000000000 >/sys/module/fr1/parameters/speed_limit_max
fr1_kms() { kspan "resync starts on device" "resync terminates with"; }
md_kms() { kspan "md: recover of RAID array md0" "md: md0: recover done."; }
scatter() { fio --name=scatter --filename="$1" --rw=randwrite --bs=4k --number_ios="$2" --size="${SIZE_MB}M" \
	--ioengine=psync --direct=1 --randseed=7 >/dev/null 2>&1 || die "scatter on $1"; }
for k in $KS; do
	fr1_build_synced /dev/ram0 /dev/ram1
	fr1ctl fail /dev/fr0 /dev/ram1 >/dev/null
	scatter /dev/fr0 "$k"
	before=$(cat $M/fr0/md/bitmap/resync_copied_bytes)
	dmesg -c >/dev/null
	t0=$(now_ms)
	fr1ctl add /dev/fr0 /dev/ram1 >/dev/null
	wait_fr1
	t1=$(now_ms)
	copied=$(( $(cat $M/fr0/md/bitmap/resync_copied_bytes) - before ))
	# The wait's contract: it returns after the copy, never before.
	[ "$copied" = $((k * 4096)) ] || die "fr1 resync: wait returned with $copied bytes copied, K x 4096 = $((k * 4096))"
	dmesg | grep -qF "resync terminates with 0 errs" || die "fr1 resync: wait returned before the resync terminated (K=$k)"
	blockdev --flushbufs /dev/ram0 && blockdev --flushbufs /dev/ram1 && /usr/bin/cmp /dev/ram0 /dev/ram1 >/dev/null \
		|| die "fr1 mirrors differ after resync (K=$k)"
	rec "{\"workload\":\"resync\",\"target\":\"fr1\",\"k\":$k,\"ms\":$((t1 - t0)),\"kernel_ms\":$(fr1_kms),\"bytes\":$copied}"
	fr1ctl stop /dev/fr0 >/dev/null
	for chunk in "" small; do
		if [ "$chunk" = small ]; then
			# The smallest chunk mdadm accepts for this size (4 KiB if it can).
			for chunk in 4K 16K 64K 256K; do
				md_create /dev/md0 internal "$chunk" /dev/ram0 /dev/ram1 && break
				mdadm --zero-superblock /dev/ram0 /dev/ram1 >/dev/null 2>&1 || true
			done
			[ -e /sys/block/md0/md/bitmap/chunksize ] || die "mdadm --create with a small bitmap chunk: $(cat /tmp/mdadm.err)"
		else
			md_create /dev/md0 internal "" /dev/ram0 /dev/ram1
		fi
		mdadm /dev/md0 --fail /dev/ram1 >/dev/null 2>&1
		scatter /dev/md0 "$k"
		mdadm /dev/md0 --remove /dev/ram1 >/dev/null 2>&1
		dmesg -c >/dev/null
		t0=$(now_ms)
		mdadm /dev/md0 --re-add /dev/ram1 >/dev/null 2>&1 || die "md re-add"
		wait_md
		t1=$(now_ms)
		rec "{\"workload\":\"resync\",\"target\":\"md-internal${chunk:+-$chunk}\",\"k\":$k,\"ms\":$((t1 - t0)),\"kernel_ms\":$(md_kms),\"chunk\":$(cat /sys/block/md0/md/bitmap/chunksize)}"
		mdadm --stop /dev/md0 >/dev/null 2>&1
		mdadm --zero-superblock /dev/ram0 /dev/ram1 >/dev/null 2>&1 || true
	done
done
# Full copies: fr1 with every block dirty (a new device) vs raw dd.
fr1_build /dev/ram0 /dev/ram1
fr1ctl fail /dev/fr0 /dev/ram1 >/dev/null
fr1ctl remove /dev/fr0 /dev/ram1 >/dev/null
dmesg -c >/dev/null
t0=$(now_ms); fr1ctl add /dev/fr0 /dev/ram2 >/dev/null; wait_fr1; t1=$(now_ms)
rec "{\"workload\":\"fullcopy\",\"target\":\"fr1\",\"ms\":$((t1 - t0)),\"kernel_ms\":$(fr1_kms),\"bytes\":$((SIZE_MB * 1048576))}"
fr1ctl stop /dev/fr0 >/dev/null
blockdev --flushbufs /dev/ram0 && blockdev --flushbufs /dev/ram2 && /usr/bin/cmp /dev/ram0 /dev/ram2 >/dev/null \
	|| die "fr1 full copy: mirrors differ"
# md's full recovery of a new member (no bitmap).
md_create /dev/md0 none "" /dev/ram0 /dev/ram1
mdadm /dev/md0 --fail /dev/ram1 >/dev/null 2>&1
mdadm /dev/md0 --remove /dev/ram1 >/dev/null 2>&1
dmesg -c >/dev/null
t0=$(now_ms); mdadm /dev/md0 --add /dev/ram2 >/dev/null 2>&1 || die "md add"; wait_md; t1=$(now_ms)
rec "{\"workload\":\"fullcopy\",\"target\":\"md-recovery\",\"ms\":$((t1 - t0)),\"kernel_ms\":$(md_kms),\"bytes\":$((SIZE_MB * 1048576))}"
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram0 /dev/ram1 /dev/ram2 >/dev/null 2>&1 || true
t0=$(now_ms); /bin/dd if=/dev/ram0 of=/dev/ram3 bs=1M iflag=direct oflag=direct 2>/dev/null; t1=$(now_ms)
rec "{\"workload\":\"fullcopy\",\"target\":\"raw-dd\",\"ms\":$((t1 - t0)),\"bytes\":$((SIZE_MB * 1048576))}"
fi

# --- check: md's check of a whole mirror (echo check > sync_action),
# fr1 and md raid1 (mdadm --build: no superblock, the whole device, as
# fr1) on members of their own, against the limit: reading both of fr1's
# members raw at once (a check reads each member once). The three take
# turns in each repetition (the order rotating); every member holds the
# same data and both checks must find 0 mismatches. Speed limits lifted.
if section check; then
echo 2000000000 >/proc/sys/dev/raid/speed_limit_max
echo 2000000000 >/sys/module/fr1/parameters/speed_limit_max
fio --name=fill --filename=/dev/ram0 --rw=write --bs=1M --size="${SIZE_MB}M" --direct=1 --ioengine=libaio \
	--iodepth=4 --buffer_compress_percentage=50 --refill_buffers >/dev/null 2>&1 || die "fill ram0"
for i in 1 2 3; do
	/bin/dd if=/dev/ram0 of=/dev/ram$i bs=1M iflag=direct oflag=direct 2>/dev/null || die "copy to ram$i"
done
fr1_build /dev/ram0 /dev/ram1
mdadm --build /dev/md0 --level=1 --raid-devices=2 --assume-clean /dev/ram2 /dev/ram3 >/dev/null 2>&1 ||
	die "mdadm --build"
check_fr1() {
	dmesg -c >/dev/null
	t0=$(now_ms)
	echo check >$M/fr0/md/sync_action
	fr1ctl wait /dev/fr0 600 >/dev/null || die "fr1 check did not finish"
	t1=$(now_ms)
	dmesg | grep -qF "fr0: check of RAID array fr0 done: 0 mismatched sectors" || die "fr1 check: $(dmesg | grep check | tail -n 2)"
	rec "{\"workload\":\"check\",\"target\":\"fr1\",\"rep\":$1,\"ms\":$((t1 - t0)),\"kernel_ms\":$(kspan "check of RAID array fr0 started" "check of RAID array fr0 done"),\"bytes\":$((SIZE_MB * 1048576))}"
}
check_md() {
	dmesg -c >/dev/null
	t0=$(now_ms)
	echo check >$M/md0/md/sync_action
	wait_md
	t1=$(now_ms)
	[ "$(cat $M/md0/md/mismatch_cnt)" = 0 ] || die "md check: mismatch_cnt $(cat $M/md0/md/mismatch_cnt)"
	rec "{\"workload\":\"check\",\"target\":\"md\",\"rep\":$1,\"ms\":$((t1 - t0)),\"kernel_ms\":$(kspan "md: check of RAID array md0" "md: md0: check done"),\"bytes\":$((SIZE_MB * 1048576))}"
}
check_raw() {
	t0=$(now_ms)
	/bin/dd if=/dev/ram0 of=/dev/null bs=1M iflag=direct 2>/dev/null &
	/bin/dd if=/dev/ram1 of=/dev/null bs=1M iflag=direct 2>/dev/null
	wait $! || die "raw read of ram0"
	t1=$(now_ms)
	rec "{\"workload\":\"check\",\"target\":\"raw-both\",\"rep\":$1,\"ms\":$((t1 - t0)),\"bytes\":$((SIZE_MB * 1048576))}"
}
rep=1
while [ $rep -le "${MIN_REPS:-${REPS:-1}}" ]; do
	for t in $(rotate $rep fr1 md raw); do "check_$t" $rep; done
	rep=$((rep + 1))
done
fr1ctl stop /dev/fr0 >/dev/null
mdadm --stop /dev/md0 >/dev/null 2>&1
fi

# --- slow leg: the second member behind dm-delay (SLOW_MS per write) ---
# fr1 write-mostly + write-behind (bitmap/backlog), md raid1 with internal
# bitmap + --write-mostly + --write-behind (md needs a superblock and a
# bitmap for it), md without write-behind, fr1 without it, the fast leg alone.
if section slow; then
SLOW_MS=${SLOW_MS:-10}
SECTORS=$((SIZE_MB * 2048))
modprobe dm-delay
dmsetup create slowa --table "0 $SECTORS delay /dev/ram1 0 0 /dev/ram1 0 $SLOW_MS" || die "dm-delay"
dmsetup create slowb --table "0 $SECTORS delay /dev/ram3 0 0 /dev/ram3 0 $SLOW_MS" || die "dm-delay"
# fio_lat NAME DEV extra-args: IOPS, p50 and p99 write latency (ns,
# submission to completion: fio's lat, as brd completes within submission),
# read from the write section's "lat_ns" percentiles only (the clat ones,
# and other sections', are other distributions).
fio_lat() {
	fio_job "$@" --lat_percentiles=1 >/dev/null
	awk -F: '/"iops" :/ {gsub(/[ ,]/,"",$2); iops+=$2}
		/"write" : \{/ {w = 1} /"trim" : \{/ {w = 0}
		w && /"lat_ns" : \{/ {l = 1}
		w && l && /"50.000000" :/ {gsub(/[ ,]/,"",$2); p50 = $2}
		w && l && /"99.000000" :/ {gsub(/[ ,]/,"",$2); p99 = $2; l = 0}
		END {printf "%d %d %d\n", iops, p50, p99}' /tmp/fio.json
}
# fio_lat_rec NAME DEV args: "IOPS 0 P99 JSON-FIELDS" for `interleaved`.
fio_lat_rec() {
	set -- $(fio_lat "$@")
	echo "$1 0 $3 \"iops\":$1,\"p50_ns\":$2,\"p99_ns\":$3,\"slow_ms\":$SLOW_MS"
}
LAT="slowleg-qd1:--rw=randwrite:--bs=4k:--iodepth=1
slowleg-qd32:--rw=randwrite:--bs=4k:--iodepth=32"
lat_interleaved() { interleaved fio_lat_rec "$1" . "${2:-}" "$LAT"; }
fr1ctl build /dev/fr0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/mapper/slowa >/dev/null \
	|| die "fr1ctl build (slow leg)"
echo 256 >$M/fr0/md/bitmap/backlog
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 --bitmap=internal \
	/dev/ram2 --write-mostly /dev/mapper/slowb --write-behind=256 >/dev/null 2>&1 || die "mdadm --create --write-behind"
md_chunk=$(cat $M/md0/md/bitmap/chunksize)
lat_interleaved "fr1-wb=/dev/fr0 md-wb=/dev/md0 fast=/dev/ram4" "fr1-wb/fast:p99<=1.2 fr1-wb/md-wb:iops>=1.0"
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram2 /dev/mapper/slowb >/dev/null 2>&1 || true
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 --bitmap=internal \
	/dev/ram2 --write-mostly /dev/mapper/slowb >/dev/null 2>&1 || die "mdadm --create (no write-behind)"
echo 0 >$M/fr0/md/bitmap/backlog
lat_interleaved "fr1-nowb=/dev/fr0 md-nowb=/dev/md0"
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram2 /dev/mapper/slowb >/dev/null 2>&1 || true
# A behind episode: backlog 4 against a 5 s leg; 16 MiB of sequential 4 KiB
# writes; the delay goes; fr1 catches up alone. Bytes copied vs written.
echo 4 >$M/fr0/md/bitmap/backlog
dmsetup suspend slowa && dmsetup load slowa --table "0 $SECTORS delay /dev/ram1 0 0 /dev/ram1 0 5000" && dmsetup resume slowa
dmesg -c >/dev/null
t0=$(now_ms)
fio --name=episode --filename=/dev/fr0 --rw=write --bs=4k --size=16M --offset=32M --direct=1 --ioengine=libaio \
	--iodepth=16 >/dev/null 2>&1 || die "behind episode writes"
t1=$(now_ms)
grep -q behind $M/fr0/md/dev-*/state 2>/dev/null || dmesg | grep -q "goes behind" || die "the slow leg did not go behind"
dmsetup suspend slowa && dmsetup load slowa --table "0 $SECTORS delay /dev/ram1 0 0 /dev/ram1 0 0" && dmsetup resume slowa
i=0
while ! dmesg | grep -q "caught up (" && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
t2=$(now_ms)
wait_fr1
skipped=$(dmesg | sed -n 's/.*resyncing what it missed (\([0-9]*\) bytes written while behind).*/\1/p' | awk '{s += $1} END {print s + 0}')
copied=$(dmesg | sed -n 's/.*caught up (\([0-9]*\) bytes copied).*/\1/p' | awk '{s += $1} END {print s + 0}')
blockdev --flushbufs /dev/ram0 && blockdev --flushbufs /dev/ram1 && /usr/bin/cmp /dev/ram0 /dev/ram1 >/dev/null \
	|| die "fr1 legs differ after the catch-up"
rec "{\"workload\":\"behind-episode\",\"target\":\"fr1\",\"write_ms\":$((t1 - t0)),\"catch_up_ms\":$((t2 - t1)),\"written_behind\":$skipped,\"copied\":$copied,\"md_chunk\":$md_chunk}"
fr1ctl stop /dev/fr0 >/dev/null
dmsetup remove slowa && dmsetup remove slowb
fi

# --- network leg: the second member on kernel NBD (nbd-server over the
# guest's loopback). fr1 write-mostly + behind, md raid1 with internal
# bitmap + --write-mostly + --write-behind (superblock), md on a build array
# (no bitmap, no write-behind: mdadm refuses both there), the local leg
# alone. Then a brownout under load: the server stopped for OUTAGE_MS.
if section net; then
modprobe nbd
OUTAGE_MS=${OUTAGE_MS:-5000}
nbd_serve() { # nbd_serve PORT DEV: pid in $SRV
	/usr/bin/nbd-server -d -C /nonexistent "127.0.0.1@$1" "$2" >/dev/null 2>&1 &
	SRV=$!
}
nbd_attach() { # nbd_attach PORT NODE
	local i=0
	while ! /usr/sbin/nbd-client 127.0.0.1 "$1" "$2" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 50 ] || die "nbd-client $2"
		usleep 200000
	done
}
nbd_serve 10809 /dev/ram1; SRV_FR1=$SRV
nbd_serve 10810 /dev/ram3; SRV_MD=$SRV
nbd_attach 10809 /dev/nbd0
nbd_attach 10810 /dev/nbd1
fr1ctl build /dev/fr0 --level=1 --raid-devices=2 --assume-clean /dev/ram0 --write-mostly /dev/nbd0 >/dev/null \
	|| die "fr1ctl build (NBD leg)"
echo 256 >$M/fr0/md/bitmap/backlog
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 --bitmap=internal \
	/dev/ram2 --write-mostly /dev/nbd1 --write-behind=256 >/dev/null 2>&1 || die "mdadm --create (NBD leg)"
SLOW_MS=0
LAT="net-qd1:--rw=randwrite:--bs=4k:--iodepth=1
net-qd32:--rw=randwrite:--bs=4k:--iodepth=32"
lat_interleaved "fr1-nbd=/dev/fr0 md-wb-nbd=/dev/md0 fast=/dev/ram4" "fr1-nbd/md-wb-nbd:iops>=1.0"
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram2 /dev/nbd1 >/dev/null 2>&1 || true
mdadm --build /dev/md0 --level=1 --raid-devices=2 /dev/ram2 /dev/nbd1 >/dev/null 2>&1 || die "mdadm --build (NBD leg)"
lat_interleaved "md-build-nbd=/dev/md0"
mdadm --stop /dev/md0 >/dev/null 2>&1
# A brownout under load: 4 KiB random writes at QD8 for OUTAGE_MS + 4 s; the
# server is stopped 1 s in, for OUTAGE_MS. fr1 (stall limit 2 s) against md
# with write-behind. The array blocks for fio's longest write; afterwards the
# leg returns (fr1: by itself) and is resynced: bytes copied vs the blocks
# written while it was out.
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 --bitmap=internal \
	/dev/ram2 --write-mostly /dev/nbd1 --write-behind=256 >/dev/null 2>&1 || die "mdadm --create (brownout)"
echo 2000 >$M/fr0/md/fr1_stall_ms
echo 500 >$M/fr0/md/fr1_behind_max_ms
# The leg returns once the load is over (the probe is off until then), so
# that its resync is one pass over what it missed.
echo 0 >$M/fr0/md/fr1_probe_ms
brownout() { # brownout TARGET DEV SERVER_PID: fio's max write latency (ns)
	fio --name=brownout --filename="$2" --rw=randwrite --bs=4k --size=$((SIZE_MB / 2))M --direct=1 \
		--ioengine=libaio --iodepth=8 --time_based --runtime=$((OUTAGE_MS / 1000 + 4)) \
		--output-format=json >/tmp/brownout.json 2>/tmp/brownout.err &
	local fio=$!
	sleep 1
	kill -STOP "$3"
	usleep $((OUTAGE_MS * 1000))
	kill -CONT "$3"
	wait $fio || die "brownout fio on $1: $(tail -n 3 /tmp/brownout.err)"
	grep -q '"error" : 0' /tmp/brownout.json || die "brownout fio on $1 reported an error"
	awk -F: '/"lat_ns" :/ {l = 1} l && /"max" :/ {gsub(/[ ,]/,"",$2); if ($2 + 0 > m) m = $2 + 0; l = 0} END {printf "%.0f\n", m}' /tmp/brownout.json
}
dmesg -c >/dev/null
max_fr1=$(brownout fr1 /dev/fr0 "$SRV_FR1")
i=0
while [ "$(cat $M/fr0/md/bitmap/behind_writes)" != 0 ] && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
fr1_dirty=$(cat $M/fr0/md/bitmap/bits)
echo 500 >$M/fr0/md/fr1_probe_ms
i=0
while ! dmesg | grep -q "nbd0 answers again" && [ $i -lt 600 ]; do usleep 100000; i=$((i + 1)); done
wait_fr1
# The re-add's resync: the last one (catch-ups before the leg failed are not
# part of the return).
fr1_copied=$(dmesg | sed -n 's/.*resync terminates with 0 errs.*(\([0-9]*\) blocks, \([0-9]*\) bytes copied).*/\2/p' | tail -n 1)
fr1_failed=$(dmesg | grep -c "nbd0 faulty (stalled" || true)
blockdev --flushbufs /dev/ram0 && blockdev --flushbufs /dev/ram1 && /usr/bin/cmp /dev/ram0 /dev/ram1 >/dev/null \
	|| die "fr1 legs differ after the brownout"
max_md=$(brownout md-wb /dev/md0 "$SRV_MD")
i=0
while grep -A3 "^md0 :" /proc/mdstat | grep -qE "recovery|resync" && [ $i -lt 3000 ]; do usleep 100000; i=$((i + 1)); done
md_faulty=$(grep -c "nbd1\[1\](W)(F)" /proc/mdstat || true)
rec "{\"workload\":\"brownout\",\"target\":\"fr1-nbd\",\"outage_ms\":$OUTAGE_MS,\"max_lat_ns\":$max_fr1,\"leg_failed\":$fr1_failed,\"dirty_blocks\":$fr1_dirty,\"copied\":$fr1_copied,\"block\":$(cat $M/fr0/md/bitmap/chunksize)}"
rec "{\"workload\":\"brownout\",\"target\":\"md-wb-nbd\",\"outage_ms\":$OUTAGE_MS,\"max_lat_ns\":$max_md,\"leg_failed\":$md_faulty,\"md_chunk\":$(cat $M/md0/md/bitmap/chunksize)}"
mdadm --stop /dev/md0 >/dev/null 2>&1
mdadm --zero-superblock /dev/ram2 /dev/nbd1 >/dev/null 2>&1 || true
fr1ctl stop /dev/fr0 >/dev/null
/usr/sbin/nbd-client -d /dev/nbd0 >/dev/null 2>&1
/usr/sbin/nbd-client -d /dev/nbd1 >/dev/null 2>&1
kill -KILL "$SRV_FR1" "$SRV_MD" 2>/dev/null || true
fi

# --- bitmap memory on a 1 PiB array (null_blk, no backing memory) ---
if section memory; then
modprobe null_blk nr_devices=2 gb=1048576 memory_backed=0 >/dev/null 2>&1 || die "null_blk"
fr1ctl build /dev/fr1 --level=1 --raid-devices=2 --assume-clean /dev/nullb0 /dev/nullb1 >/dev/null || die "fr1 on null_blk"
rec "{\"workload\":\"memory\",\"target\":\"fr1\",\"k\":0,\"bytes\":$(cat $M/fr1/md/bitmap/bytes),\"root_bytes\":$(cat $M/fr1/md/bitmap/root_bytes)}"
fr1ctl fail /dev/fr1 /dev/nullb1 >/dev/null
for k in $KS; do
	fio --name=mem --filename=/dev/fr1 --rw=randwrite --bs=4k --number_ios="$k" --ioengine=psync --direct=1 \
		--size=1125899906842624 --norandommap --randseed=11 >/dev/null 2>&1 || die "memory fio"
	rec "{\"workload\":\"memory\",\"target\":\"fr1\",\"k\":$k,\"bytes\":$(cat $M/fr1/md/bitmap/bytes),\"leaves\":$(cat $M/fr1/md/bitmap/leaves),\"nodes\":$(cat $M/fr1/md/bitmap/nodes),\"coarse\":$(cat $M/fr1/md/bitmap/coarse)}"
done
fr1ctl stop /dev/fr1 >/dev/null
fi
[ -n "$BENCH_NO_PLAN" ] || echo "1..0 # SKIP benchmark (results are the # bench: lines)"
