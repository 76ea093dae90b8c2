#!/bin/bash
# Run when a host leaves the cluster (after the first control plane drained it and deleted its Node):
# `kubeadm reset` stops the kubelet and removes what kubeadm put on the host; CNI configuration and
# the program's files go too, so the host could join again cleanly; a control plane's Secret encryption keys
# and audit policy with them (a host that left keeps no key to the cluster's Secrets).
#
# Env: NODE_NAME
set -euo pipefail
: "${NODE_NAME:?}"
if [ ! -f /etc/kubernetes/kubelet.conf ] && [ ! -f /etc/kubernetes/admin.conf ]; then
  echo "${NODE_NAME}: not a cluster member: nothing to reset"
  exit 0
fi
echo "${NODE_NAME}: kubeadm reset"
kubeadm reset -f
rm -rf /etc/cni/net.d /etc/kubernetes/dare /etc/kubernetes/enc /etc/kubernetes/audit
