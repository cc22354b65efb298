#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Debian 12's unmodified mdadm 4.2 (the host's, /sbin/mdadm) drives fr1:
# the flow in mdadm_flow.sh.
# fr1-disks: 3 64M
# fr1-timeout: 420
MDADM_VERSION=4.2
. /tests/mdadm_flow.sh
