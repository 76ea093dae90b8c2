#!/bin/bash
# On the first control plane, for a node that has joined: labels it with its pool and, for a worker,
# the worker role (a kubelet may not set node-role labels on itself). Its delete script
# (k8s-remove-node.sh) runs before the host's own reset when the host leaves the configuration.
#
# Env: NODE_NAME, NODE_ROLE (control-plane|worker), NODE_POOL
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ROLE:?}" "${NODE_POOL:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
labels=("dare.io/pool=${NODE_POOL}")
if [ "$NODE_ROLE" = worker ]; then labels+=("node-role.kubernetes.io/worker="); fi
kubectl label node "$NODE_NAME" --overwrite "${labels[@]}"
