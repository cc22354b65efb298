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
