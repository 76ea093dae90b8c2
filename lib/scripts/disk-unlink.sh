#!/bin/bash
# On a worker, when one of its Ceph volumes leaves (after the disk's OSD was taken out of Ceph, before the
# volume is detached): removes the udev rule disk-link.sh installed for it. The name /dev/disk/dare/<id>
# goes with the disk when it is detached. A rerun finds no rule and does nothing.
#
# Env: VOLUME_ID, DISK_HOST (the host's name, for messages)
set -euo pipefail
: "${VOLUME_ID:?}" "${DISK_HOST:?}"
if ! [[ $VOLUME_ID =~ ^[0-9A-Za-z][0-9A-Za-z-]{19,}$ ]]; then
  echo "${DISK_HOST}: '${VOLUME_ID}' is not an OpenStack volume id" >&2
  exit 1
fi
rule=/etc/udev/rules.d/61-dare-disk-${VOLUME_ID}.rules
if [ ! -e "$rule" ]; then
  echo "${DISK_HOST}: no udev rule for volume ${VOLUME_ID}: nothing to remove"
  exit 0
fi
rm -f "$rule"
udevadm control --reload
echo "${DISK_HOST}: udev rule for volume ${VOLUME_ID} removed"
