# SPDX-License-Identifier: GPL-2.0
# Helpers shared by fr1's kselftests (sourced; runs in the guest's busybox sh).
. /tests/ktap_helpers.sh

# Runs a command; records pass/fail under DESC and logs its output on failure.
# Usage: check "desc" cmd args...
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_test_pass "$desc"
	else
		ktap_print_msg "failed: $* -> $(echo "$out" | tail -n 5)"
		ktap_test_fail "$desc"
	fi
}

# True when the kernel log contains the fixed string $1.
dmesg_has() { dmesg | grep -qF -- "$1"; }

# True when file $1 holds exactly the string $2 (one line).
file_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }

# Asks the host to compare two virtio disks after the VM ends.
# Usage: host_cmp vdX vdY "label"
host_cmp() { echo "# fr1-host-cmp: $1 $2 $3"; }

# Expects a command to fail with an error message containing $2.
fails_with() { # fails_with "text" cmd...
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then return 1; fi
	echo "$out" | grep -qF -- "$want"
}

# The major:minor of a block device, as "MAJ MIN".
devnum() { cat "/sys/class/block/${1#/dev/}/dev" | tr : ' '; }

# md's ioctl argument for a device: the kernel's new_encode_dev(MAJ, MIN).
encode_dev() { echo $(( ($2 & 0xff) | ($1 << 8) | (($2 & ~0xff) << 12) )); }
# The same for a device node: encoded_dev /dev/vdb.
encoded_dev() { encode_dev $(devnum "$1"); }

# Runs `fr1ctl ioctl ...` and succeeds when it prints exactly $1 (ok or an
# errno name). Usage: ioctl_is EBUSY /dev/md0 STOP_ARRAY
ioctl_is() {
	local want=$1 got
	shift
	got=$(fr1ctl ioctl "$@" 2>/dev/null | head -n1)
	[ "$got" = "$want" ] || { echo "fr1ctl ioctl $*: got '$got', want '$want'"; return 1; }
}

# fio verify run over a whole device; extra fio options may follow.
fio_verify() { # fio_verify DEV SIZE [opts...]
	local dev=$1 size=$2
	shift 2
	fio --name=verify --filename="$dev" --size="$size" --ioengine=libaio --direct=1 \
		--verify=crc32c --verify_fatal=1 --output-format=terse --minimal "$@" >/tmp/fio.out 2>&1 \
		|| { tail -n 5 /tmp/fio.out; return 1; }
}

# The line of /proc/<status file> that describes array $1 and the next one.
array_lines() { grep -A1 "^$1 :" "${STATUS:-/proc/mdstat}"; }

# Debian's busybox-static shell runs its own applets before PATH
# (FEATURE_PREFER_APPLETS): real tools whose options matter are called by
# absolute path (/usr/bin/cmp, /bin/dd, /sbin/mke2fs).

# Byte-for-byte comparison of two block devices. Drops their page caches
# first: bios through an array bypass the members' caches, so a cached
# earlier read would compare stale data. Extra cmp options may follow.
same() { # same DEV_A DEV_B [cmp options]
	local a=$1 b=$2
	shift 2
	blockdev --flushbufs "$a" && blockdev --flushbufs "$b" && /usr/bin/cmp "$@" "$a" "$b"
}

# Waits (up to $2 s, default 120) until array $1 (md0) has every slot in
# sync and no recovery runs.
wait_in_sync() {
	local a=${1:-md0} limit=$(( ${2:-120} * 10 )) i=0 line
	while [ $i -lt $limit ]; do
		line=$(grep -A1 "^$a :" "${STATUS:-/proc/mdstat}" | tail -n1)
		case $line in
		*"[U"*"_"*"]"* | *"[_"*) ;;
		*) grep -A2 "^$a :" "${STATUS:-/proc/mdstat}" | grep -q recovery || return 0 ;;
		esac
		i=$((i + 1))
		usleep 100000
	done
	cat "${STATUS:-/proc/mdstat}"
	return 1
}

# Polls a condition every 100 ms for up to $1 seconds: wait_for 30 cmd...
wait_for() {
	local limit=$(($1 * 10)) i=0
	shift
	while ! "$@"; do
		i=$((i + 1))
		[ $i -lt $limit ] || return 1
		usleep 100000
	done
}

# NBD legs over the guest's loopback. Server N listens on port 10809+N and
# serves one device with Debian's nbd-server in the foreground (-d: one
# process, which a test may stop and kill; no config file); /dev/nbdN is
# attached to it with Debian's nbd-client (busybox has an applet of that
# name). -d serves one connection: nbd_attach starts the server again if
# it ended (a connection the kernel refused while nbdN was still busy ends
# it). Pid and device live in /tmp/nbd-srv.N, since helpers also run in
# the subshells of `check`.
nbd_serve() { # nbd_serve N DEV
	/usr/bin/nbd-server -d -C /nonexistent 127.0.0.1@$((10809 + $1)) "$2" >/tmp/nbd-server.$1.log 2>&1 &
	echo "$! $2" >/tmp/nbd-srv.$1
}
# The pid of server N.
nbd_pid() { cut -d' ' -f1 /tmp/nbd-srv.$1; }
# Attaches /dev/nbdN to server N; retries: the server needs a moment, and a
# probe may still hold nbdN.
nbd_attach() { # nbd_attach N
	local i=0
	while [ $i -lt 50 ]; do
		/usr/sbin/nbd-client 127.0.0.1 $((10809 + $1)) /dev/nbd$1 >/tmp/nbd-client.$1.log 2>&1 && return 0
		kill -0 "$(nbd_pid $1)" 2>/dev/null || nbd_serve $1 "$(cut -d' ' -f2 /tmp/nbd-srv.$1)"
		i=$((i + 1))
		usleep 200000
	done
	cat /tmp/nbd-client.$1.log
	return 1
}
# Sends signal $2 (STOP, CONT, KILL) to server N.
nbd_signal() { kill -"$2" "$(nbd_pid $1)"; }
# Kills server N (its sockets close as it exits) and reaps it if it is
# this shell's child.
nbd_kill() { # nbd_kill N
	local p
	p=$(nbd_pid $1)
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}
# Detaches /dev/nbdN (its client ends).
nbd_detach() { /usr/sbin/nbd-client -d /dev/nbd$1 >/dev/null 2>&1; }
