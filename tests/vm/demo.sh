#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo played by `make demo` (not a test): fr1 at work in the VM.
# fr1-disks: 2 64M
set -e
say() { printf '\n### %s\n' "$*"; }
say "modprobe fr1"
modprobe fr1
say "dmesg | grep fr1"
dmesg | grep fr1
say "lsmod"
lsmod
say "modinfo fr1"
modinfo fr1
say "rmmod fr1"
rmmod fr1
dmesg | tail -n 1
