#!/bin/bash
# On the first control plane, before a host that holds Ceph OSDs is drained and reset, or before one of
# its disks is detached: Rook's "Remove an OSD" (Documentation/Storage-Configuration/Advanced/
# ceph-osd-mgmt.md, Rook v1.20.6), with ceph run in the Rook toolbox (deploy/rook-ceph-tools):
#   1. mark the OSDs out: Ceph backfills their placement groups onto the other hosts' OSDs;
#   2. wait until every placement group is active+clean and Ceph calls the OSDs safe to destroy, at most
#      CEPH_CLEAN_TIMEOUT seconds; otherwise fail, and nothing is purged, drained, reset or detached;
#   3. stop the Rook operator (so that it does not re-create the OSDs), then per OSD: stop its pod, mark
#      it down, purge it, delete its deployment; for a whole host, drop its empty CRUSH bucket; start the
#      operator again.
# One removal at a time on this host (a lock): Rook warns against removing many OSDs at once.
# A rerun finds nothing left and does nothing; so does a cluster without Ceph (bootstrap only, or a
# destroy after the storage layer is gone).
#
# Env: OSD_HOST (node name), OSD_DEVICE (a disk as Rook was given it; empty: every OSD of the host),
#      CEPH_CLEAN_TIMEOUT (seconds, default 3600), CEPH_POLL_INTERVAL (seconds, default 10),
#      API_ENDPOINT (admin.conf's server, for the record: the step depends on it so the API outlives it)
set -euo pipefail
: "${OSD_HOST:?}"
OSD_DEVICE=${OSD_DEVICE:-}
timeout_s=${CEPH_CLEAN_TIMEOUT:-3600}
interval=${CEPH_POLL_INTERVAL:-10}
export KUBECONFIG=/etc/kubernetes/admin.conf
ns=rook-ceph
what="${OSD_HOST}${OSD_DEVICE:+ disk ${OSD_DEVICE}}"
# Rook names a host's CRUSH bucket after its node, dots made dashes.
bucket=${OSD_HOST//./-}

mkdir -p /run/lock
exec 9>/run/lock/dare-ceph-osd-removal.lock
flock 9

# No Ceph here (yet, or any more): nothing to move. An unreachable API is an error, never "no Ceph".
if [ -z "$(kubectl get crd cephclusters.ceph.rook.io --ignore-not-found -o name)" ]; then
  echo "${what}: no Ceph cluster: no OSD to remove"
  exit 0
fi
cluster=$(kubectl -n "$ns" get cephcluster --ignore-not-found -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}')
if [ -z "$cluster" ]; then
  echo "${what}: no Ceph cluster: no OSD to remove"
  exit 0
fi
if [ -n "$(echo "$cluster" | awk 'NF > 1')" ]; then
  echo "${what}: the Ceph cluster is being deleted: no OSD to move"
  exit 0
fi
if [ -z "$(kubectl -n "$ns" get deployment rook-ceph-tools --ignore-not-found -o name)" ]; then
  echo "refusing to remove ${what}: the Rook toolbox (deployment rook-ceph-tools in ${ns}) is missing, so the OSDs cannot be taken out of Ceph first; enable toolbox.enabled in the rook-ceph-cluster chart's values and run pulumi up again" >&2
  exit 1
fi
ceph() { kubectl -n "$ns" exec deploy/rook-ceph-tools -- ceph "$@"; }

ceph health >/dev/null # Ceph answers (fails loudly otherwise)
# The host's OSDs as CRUSH places them (the bucket is gone once a host removal finished).
bucket_exists=true
if ! host_osds=$(ceph osd ls-tree "$bucket" 2>/dev/null); then
  bucket_exists=false
  host_osds=""
fi

selected=""
if [ -z "$OSD_DEVICE" ]; then
  selected=$host_osds
elif [ -n "$host_osds" ]; then
  # The disk's kernel name as the host sees it (/dev/disk/by-id/virtio-… -> vdc), read in one of the
  # host's OSD pods (they mount the host's /dev), against each OSD's devices in Ceph's metadata.
  if [[ $OSD_DEVICE =~ ^/dev/[^/]+$ ]]; then
    kname=${OSD_DEVICE#/dev/}
  else
    kname=""
    for id in $host_osds; do
      if kname=$(kubectl -n "$ns" exec "deploy/rook-ceph-osd-${id}" -c osd -- readlink -f "$OSD_DEVICE" 2>/dev/null); then break; fi
      kname=""
    done
    if [ -z "$kname" ]; then
      echo "refusing to detach ${what}: none of the host's OSD pods (osd.${host_osds//$'\n'/, osd.}) runs to tell which OSD is on it; remove that OSD by hand (docs/operations.md, Removing a disk or a host with Ceph OSDs) and run pulumi up again" >&2
      exit 1
    fi
    kname=${kname#/dev/}
  fi
  for id in $host_osds; do
    devices=$(ceph osd metadata "$id" -f json-pretty | sed -n 's/^ *"devices": "\([^"]*\)".*/\1/p')
    case ",${devices}," in *",${kname},"*) selected+="${selected:+ }${id}" ;; esac
  done
fi
selected=$(echo "$selected" | xargs)

# Deployments of OSDs that Ceph no longer has (a run interrupted after the purge): always safe to delete.
all_osds=" $(ceph osd ls | xargs) "
for id in $(kubectl -n "$ns" get deployment -l "app=rook-ceph-osd,topology-location-host=${bucket}" -o jsonpath='{range .items[*]}{.metadata.labels.ceph-osd-id}{"\n"}{end}'); do
  if [[ $all_osds != *" ${id} "* ]]; then
    echo "${what}: osd.${id} is already purged: delete its deployment"
    kubectl -n "$ns" delete deployment "rook-ceph-osd-${id}" --ignore-not-found
  fi
done

if [ -z "$selected" ]; then
  if [ -z "$OSD_DEVICE" ] && [ "$bucket_exists" = true ]; then
    echo "${OSD_HOST}: remove its empty CRUSH bucket"
    ceph osd crush rm "$bucket"
  fi
  echo "${what}: no OSD left: nothing to remove"
  exit 0
fi
read -r -a ids <<<"$selected"
osds=$(printf 'osd.%s ' "${ids[@]}" | xargs)
echo "${what}: ${osds}: out"
for id in "${ids[@]}"; do ceph osd out "osd.${id}"; done

all_clean() { # `ceph pg stat`: "129 pgs: 129 active+clean; 4.1 GiB data, …"
  if [[ $1 =~ ^0\ pgs: ]]; then return 0; fi
  [[ $1 =~ ^([0-9]+)\ pgs:\ ([0-9]+)\ active\+clean\; ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
}
deadline=$((SECONDS + timeout_s))
echo "${what}: waiting (at most ${timeout_s} s) for Ceph to re-replicate ${osds}: every placement group active+clean"
for (( ; ; )); do
  stat=$(ceph pg stat)
  # shellcheck disable=SC2086 # one argument per OSD
  if all_clean "$stat" && ceph osd safe-to-destroy $osds >/dev/null 2>&1; then break; fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "refusing to remove ${what}: Ceph has not re-replicated the data of ${osds} within ${timeout_s} s (ceph pg stat: ${stat}). Nothing was purged, drained, reset or detached; the OSDs stay out and keep serving their data. See ceph status and ceph health detail (backfill_toofull: the other OSDs lack room), fix, then run pulumi up again to go on waiting; to keep the ${OSD_DEVICE:+disk}${OSD_DEVICE:-host} instead, put it back in the configuration and run ceph osd in ${osds} in the toolbox" >&2
    exit 1
  fi
  echo "${what}: ${stat}"
  sleep "$interval"
done
echo "${what}: re-replicated: ${stat}"

# Rook would re-create what it sees; stop it until the OSDs are gone, start it whatever happens.
operator_replicas=$(kubectl -n "$ns" get deployment rook-ceph-operator -o jsonpath='{.spec.replicas}')
if [ "${operator_replicas:-0}" -lt 1 ]; then operator_replicas=1; fi
restart_operator() { kubectl -n "$ns" scale deployment rook-ceph-operator --replicas="$operator_replicas"; }
trap restart_operator EXIT
kubectl -n "$ns" scale deployment rook-ceph-operator --replicas=0
for id in "${ids[@]}"; do
  echo "${what}: osd.${id}: stop, purge, delete its deployment"
  kubectl -n "$ns" scale deployment "rook-ceph-osd-${id}" --replicas=0
  ceph osd down "osd.${id}"
  ceph osd purge "$id" --yes-i-really-mean-it
  kubectl -n "$ns" delete deployment "rook-ceph-osd-${id}" --ignore-not-found
done
if [ -z "$OSD_DEVICE" ]; then
  echo "${OSD_HOST}: remove its empty CRUSH bucket"
  ceph osd crush rm "$bucket"
fi
echo "${what}: ${osds} removed"
