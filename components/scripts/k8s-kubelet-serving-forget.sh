#!/bin/bash
# When a host leaves (its kubelet-serving step is deleted), on the first control plane: forgets the
# addresses recorded for it, so that the renewal approver (k8s-kubelet-serving.sh) approves nothing more
# for that name until a host of that name joins again.
#
# Env: NODE_NAME
set -euo pipefail
: "${NODE_NAME:?}"
rm -f "/etc/dare/kubelet-serving/nodes/${NODE_NAME}"
