#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Debian 13's unmodified mdadm 4.4 (trixie's binary with its own C library
# under /opt/mdadm-4.4: scripts/setup.sh, scripts/mkinitramfs.sh) drives
# fr1: the flow in mdadm_flow.sh.
# fr1-disks: 3 64M
# fr1-timeout: 420
export PATH=/opt/mdadm-4.4/sbin:$PATH
MDADM_VERSION=4.4
. /tests/mdadm_flow.sh
