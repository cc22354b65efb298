#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# fr1.ko loads and unloads, logs its version, and exposes md_compat in sysfs.
# fr1-timeout: 120
. /tests/lib.sh

version=$(modinfo -F version fr1 2>/dev/null || true)
ktap_print_header
ktap_set_plan 8

check "modinfo names the module and its license" sh -c \
	'modinfo fr1 | grep -q "^license: *GPL" && modinfo fr1 | grep -q "^parm: *md_compat:"'
check "modprobe fr1" modprobe fr1
check "load message with version" dmesg_has "fr1: version 0.1.0 loaded (md_compat=Y)"
check "md_compat parameter in sysfs reads Y" file_is /sys/module/fr1/parameters/md_compat Y
check "md_compat is read-only" sh -c '! echo N > /sys/module/fr1/parameters/md_compat'
check "rmmod fr1" rmmod fr1
check "unload message" dmesg_has "fr1: version 0.1.0 unloaded"
check "md_compat=0 at load reads N" sh -c \
	'modprobe fr1 md_compat=0 && grep -qx N /sys/module/fr1/parameters/md_compat && rmmod fr1'
ktap_finished
