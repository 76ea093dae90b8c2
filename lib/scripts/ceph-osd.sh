#!/bin/bash
# On the first control plane, per host that holds Ceph OSDs and per disk of it: nothing to do while the
# host or the disk stays (Rook makes the OSDs from the CephCluster's storage list). The step exists for
# its delete script, ceph-remove-osds.sh: Pulumi runs it before the host is drained and reset, and
# before the disk's volume is detached (both depend on nothing of it; it depends on them).
#
# Env: OSD_HOST, OSD_DEVICE (empty for the whole host)
set -euo pipefail
: "${OSD_HOST:?}"
echo "${OSD_HOST}${OSD_DEVICE:+ disk ${OSD_DEVICE}}: Ceph OSDs are Rook's; removed (out, re-replicated, purged) before the ${OSD_DEVICE:+disk}${OSD_DEVICE:-host} goes"
