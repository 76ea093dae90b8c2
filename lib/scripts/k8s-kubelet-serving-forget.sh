#!/bin/bash
# When a host leaves (its kubelet-serving step is deleted), on the first control plane: forgets the
# addresses recorded for it, so that the renewal approver (k8s-kubelet-serving.sh) approves nothing more
# for that name until a host of that name joins again.
#
# Env: NODE_NAME; KUBELET_SERVING_RECORDS (as k8s-kubelet-serving.sh: tests on the machine itself)
set -euo pipefail
: "${NODE_NAME:?}"
record="${KUBELET_SERVING_RECORDS:-/etc/dare/kubelet-serving/nodes}/${NODE_NAME}"
if [ ! -e "$record" ]; then
  echo "${NODE_NAME}: no kubelet serving record: nothing to forget"
  exit 0
fi
rm -f "$record"
echo "${NODE_NAME}: kubelet serving record forgotten: renewals for this name are no longer approved"
