#!/bin/bash
# On a worker, per OpenStack volume attached for Ceph: finds the volume's disk by the volume id, under
# the /dev/disk/by-id names that cloud-provider-openstack's cinder CSI driver tries (pkg/util/mount,
# getDevicePathBySerialID): virtio-blk puts the id (cut to 20 characters, or whole) in the disk's serial,
# virtio-scsi in QEMU's SCSI serial, VMware in the WWN. Then it installs a udev rule that names the disk
# /dev/disk/dare/<volume id> whatever the bus, and waits until udev made that name. Rook is given that
# name: it matches it against the disk's udev links (DEVLINKS), so it must come from udev, and the rule
# makes it again at every boot. While the disk is not there yet it rescans the SCSI hosts and asks udev
# to look again (as the CSI driver does), at most DISK_WAIT_SECONDS. A rerun finds the name in place and
# changes nothing.
#
# Env: VOLUME_ID, DISK_HOST (the host's name, for messages), DISK_WAIT_SECONDS (default 120)
set -euo pipefail
: "${VOLUME_ID:?}" "${DISK_HOST:?}"
wait_s=${DISK_WAIT_SECONDS:-120}
# The id goes into a udev rule and its match patterns: nothing but letters, digits and dashes.
if ! [[ $VOLUME_ID =~ ^[0-9A-Za-z][0-9A-Za-z-]{19,}$ ]]; then
  echo "${DISK_HOST}: '${VOLUME_ID}' is not an OpenStack volume id" >&2
  exit 1
fi
id20=${VOLUME_ID:0:20}
by_id=/dev/disk/by-id
names=("virtio-${id20}" "virtio-${VOLUME_ID}" "scsi-0QEMU_QEMU_HARDDISK_${id20}" "scsi-0QEMU_QEMU_HARDDISK_${VOLUME_ID}"
  "wwn-0x${VOLUME_ID//-/}")
link=/dev/disk/dare/${VOLUME_ID}
rule=/etc/udev/rules.d/61-dare-disk-${VOLUME_ID}.rules

# One line per bus, each matching the udev properties its /dev/disk/by-id name above is made of
# (systemd's 60-persistent-storage.rules: virtio-$ID_SERIAL for vd*, $ID_BUS-$ID_SERIAL, wwn-$ID_WWN_WITH_EXTENSION;
# QEMU's SCSI disk's ID_SERIAL is 0QEMU_QEMU_HARDDISK_<serial>).
# All of them, whichever bus the disk is on today: the name stays if the instance comes back on another one.
rule_text="# Ceph disk of OpenStack volume ${VOLUME_ID} on ${DISK_HOST}, whatever the bus (DARE: disk-link.sh)
SUBSYSTEM==\"block\", ENV{DEVTYPE}==\"disk\", KERNEL==\"vd*\", ENV{ID_SERIAL}==\"${id20}|${VOLUME_ID}\", SYMLINK+=\"disk/dare/${VOLUME_ID}\"
SUBSYSTEM==\"block\", ENV{DEVTYPE}==\"disk\", ENV{ID_BUS}==\"scsi\", ENV{ID_SERIAL}==\"0QEMU_QEMU_HARDDISK_${id20}|0QEMU_QEMU_HARDDISK_${VOLUME_ID}\", SYMLINK+=\"disk/dare/${VOLUME_ID}\"
SUBSYSTEM==\"block\", ENV{DEVTYPE}==\"disk\", ENV{ID_WWN_WITH_EXTENSION}==\"0x${VOLUME_ID//-/}\", SYMLINK+=\"disk/dare/${VOLUME_ID}\""

found() { # prints the by-id name of the volume's disk, if one is there
  local n
  for n in "${names[@]}"; do
    if [ -e "${by_id}/${n}" ]; then echo "$n"; return 0; fi
  done
  return 1
}
probe() { # what the CSI driver does while a disk is missing: rescan SCSI hosts, let udev look again
  local scan
  for scan in /sys/class/scsi_host/*/scan; do
    if [ -w "$scan" ]; then echo "- - -" >"$scan" || true; fi
  done
  udevadm trigger --subsystem-match=block --action=change || true
  udevadm settle --timeout=10 || true
}
# udev made the name for this disk: the link is there, points at it, and udev's database has it (Rook reads that).
linked() { # linked DEVICE
  [ "$(readlink -f "$link" 2>/dev/null)" = "$1" ] &&
    udevadm info --query=symlink --name="$1" 2>/dev/null | tr ' ' '\n' | grep -qxF "disk/dare/${VOLUME_ID}"
}

deadline=$((SECONDS + wait_s))
until name=$(found); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    tried=$(printf '%s, ' "${names[@]/#/${by_id}/}")
    echo "${DISK_HOST}: the disk of OpenStack volume ${VOLUME_ID} is not there after ${wait_s} s: none of ${tried%, } exists (the names the cinder CSI driver tries). Check that the volume is attached to this instance (openstack volume show ${VOLUME_ID}: status in-use, attached to ${DISK_HOST}), that the guest sees a new disk (lsblk, dmesg) and what udev calls it (ls -l ${by_id}; udevadm info /dev/<disk>: ID_SERIAL, ID_WWN): a hypervisor that gives the disk no serial with the volume id is not supported. Then run pulumi up again" >&2
    exit 1
  fi
  echo "${DISK_HOST}: waiting for the disk of volume ${VOLUME_ID} (${names[*]})"
  probe
  sleep 2
done
device=$(readlink -f "${by_id}/${name}")
if [ ! -b "$device" ]; then
  echo "${DISK_HOST}: ${by_id}/${name} (volume ${VOLUME_ID}) leads to ${device}, which is not a block device" >&2
  exit 1
fi

rule_changed=false
if ! [ -f "$rule" ] || [ "$(cat "$rule")" != "$rule_text" ]; then
  tmp=$(mktemp)
  printf '%s\n' "$rule_text" >"$tmp"
  install -D -m 0644 -o root -g root "$tmp" "$rule"
  rm -f "$tmp"
  rule_changed=true
  udevadm control --reload
fi
if [ "$rule_changed" = false ] && linked "$device"; then
  echo "${DISK_HOST}: ${link} -> ${device} (${name}): in place"
  exit 0
fi

echo "${DISK_HOST}: ${by_id}/${name} is ${device}: udev names it ${link}"
udevadm trigger --action=change --subsystem-match=block --sysname-match="${device#/dev/}"
deadline=$((SECONDS + wait_s))
until linked "$device"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "${DISK_HOST}: udev has not made ${link} for ${device} (volume ${VOLUME_ID}, found as ${by_id}/${name}) within ${wait_s} s; now: $(readlink -f "$link" 2>/dev/null || echo "no ${link}"). Check the rule ${rule} (udevadm test /sys/class/block/${device#/dev/}) and the disk's properties (udevadm info ${device}), then run pulumi up again" >&2
    exit 1
  fi
  udevadm settle --timeout=10 || true
  sleep 1
done
echo "${DISK_HOST}: ${link} -> ${device}"
