# SPDX-License-Identifier: GPL-2.0
# The mdadm flow of test_mdadm.sh (Debian 12's mdadm 4.2) and
# test_mdadm44.sh (Debian 13's 4.4), sourced by both with PATH set so that
# `mdadm` is the version under test and MDADM_VERSION naming it. Unmodified
# mdadm drives fr1 (md identity, md_mod absent): build (resync and
# --assume-clean), --fail, --remove, --add, --re-add (4.2) or its 4.4
# replacement (--remove then --add: incremental when the device matches the
# slot), --detail, --wait, --monitor --oneshot, --stop. Each flow checks
# mdadm's exit code and the words it prints.
. /tests/lib.sh

ktap_print_header
ktap_set_plan 19

# Runs mdadm, keeps its output in /tmp/out, succeeds when it exits $1 and
# prints every following word.
mdadm_says() { # mdadm_says RC "word"... -- ARGS...
	local rc=$1 words= w
	shift
	while [ "$1" != -- ]; do words="$words|$1"; shift; done
	shift
	mdadm "$@" >/tmp/out 2>&1
	local got=$?
	[ "$got" = "$rc" ] || { echo "mdadm $*: exit $got, want $rc: $(cat /tmp/out)"; return 1; }
	IFS='|'
	for w in ${words#|}; do
		grep -qF -- "$w" /tmp/out || { echo "mdadm $*: no '$w' in: $(cat /tmp/out)"; unset IFS; return 1; }
	done
	unset IFS
}

check "mdadm is $MDADM_VERSION ($(command -v mdadm))" sh -c "mdadm --version 2>&1 | grep -q 'v$MDADM_VERSION '"
modprobe fr1
# 64 MiB resyncs in a third of a second at the default 200 MB/s, before the
# mdstat check can see it: 20 MB/s keeps it running for about 3 s.
echo 20000 >/sys/module/fr1/parameters/speed_limit_max
check "mdadm --build (resync)" mdadm_says 0 "array /dev/md0 built and started." -- \
	--build /dev/md0 --level=1 --raid-devices=2 /dev/vda /dev/vdb
check "initial resync shows in mdstat, then mdadm --wait returns 0" sh -c \
	'grep -q "resync =" /proc/mdstat && mdadm --wait /dev/md0'
echo 200000 >/sys/module/fr1/parameters/speed_limit_max
check "mdadm --detail: raid1, clean, both active sync" mdadm_says 0 "Raid Level : raid1" "State : clean" \
	"active sync   /dev/vda" "active sync   /dev/vdb" -- --detail /dev/md0
# /proc/mdstat poll: a reader sleeping on it wakes on the array event.
fr1ctl events 30 >/tmp/ev 2>&1 &
ev_pid=$!
usleep 500000
# 4.4 fails the member silently (the next --detail shows it faulty).
if [ "$MDADM_VERSION" = 4.2 ]; then
	check "mdadm --fail" mdadm_says 0 "set /dev/vdb faulty in /dev/md0" -- /dev/md0 --fail /dev/vdb
else
	check "mdadm --fail" mdadm_says 0 -- /dev/md0 --fail /dev/vdb
fi
wait $ev_pid
ev_rc=$?
check "/proc/mdstat poll: POLLPRI on the failure" sh -c "[ $ev_rc = 0 ] && grep -qx event /tmp/ev"
check "no event without a change: poll times out" sh -c '! fr1ctl events 1 >/dev/null 2>&1'
check "mdadm --detail: degraded, vdb faulty" mdadm_says 0 "State : clean, degraded" "faulty   /dev/vdb" -- --detail /dev/md0
check "mdadm --monitor --oneshot --scan reports the degraded array" \
	mdadm_says 0 "DegradedArray /dev/md0" -- --monitor --oneshot --scan --program=/bin/echo
fio --name=w --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios=64 --ioengine=psync --direct=1 >/dev/null
dmesg -c >/dev/null
if [ "$MDADM_VERSION" = 4.2 ]; then
	check "mdadm --re-add of the failed member" mdadm_says 0 "re-add /dev/vdb to md0 succeed" -- /dev/md0 --re-add /dev/vdb
else
	# mdadm 4.3+ refuses --re-add on an array without a superblock; its
	# replacement is --remove then --add in one call, which fr1 takes as
	# the same incremental re-add (the device matches the slot).
	check "mdadm $MDADM_VERSION refuses --re-add (non-persistent); --remove --add re-adds" sh -c \
		'! mdadm /dev/md0 --re-add /dev/vdb >/tmp/out 2>&1 && grep -q "array is not persistent" /tmp/out &&
		mdadm /dev/md0 --remove /dev/vdb --add /dev/vdb >/tmp/out 2>&1 && grep -q "added /dev/vdb" /tmp/out'
fi
check "it was incremental: 64 blocks copied" sh -c \
	'mdadm --wait /dev/md0; dmesg | grep -q "(64 blocks, 262144 bytes copied)"'
check "mdadm --remove after --fail" sh -c \
	'mdadm /dev/md0 --fail /dev/vdb >/dev/null && mdadm /dev/md0 --remove /dev/vdb >/tmp/out 2>&1 && grep -q "hot removed /dev/vdb from /dev/md0" /tmp/out'
check "md/ shows one member, degraded 1" sh -c \
	'[ ! -e /sys/block/md0/md/dev-vdb ] && [ "$(cat /sys/block/md0/md/degraded)" = 1 ] && [ "$(cat /sys/block/md0/md/rd0/state)" = in_sync ]'
fio --name=w --filename=/dev/md0 --rw=randwrite --bs=4k --size=64M --number_ios=32 --ioengine=psync --direct=1 --randseed=3 >/dev/null
dmesg -c >/dev/null
check "mdadm --add of the removed member" mdadm_says 0 "added /dev/vdb" -- /dev/md0 --add /dev/vdb
check "still incremental (same device, sample matched)" sh -c \
	'mdadm --wait /dev/md0; dmesg | grep -q "slot 1 is the same device: incremental resync of 32 dirty blocks"'
check "mdadm --add of a new device to a full array is refused" sh -c '! mdadm /dev/md0 --add /dev/vdc >/dev/null 2>&1'
check "mdadm --stop" mdadm_says 0 "stopped /dev/md0" -- --stop /dev/md0
check "mdadm --build --assume-clean: no resync" sh -c \
	'mdadm --build /dev/md1 --level=1 --raid-devices=2 --assume-clean /dev/vda /dev/vdc >/dev/null 2>&1 && ! grep -q resync /proc/mdstat && [ "$(cat /sys/block/md1/md/sync_action)" = idle ]'
check "mdadm --stop md1; rmmod" sh -c 'mdadm --stop /dev/md1 >/dev/null 2>&1 && rmmod fr1'
ktap_finished
