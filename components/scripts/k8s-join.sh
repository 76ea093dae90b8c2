#!/bin/bash
# `kubeadm join` of a control plane or worker, with the configuration rendered by the program (the
# discovery hash pins the cluster CA). Skipped when the host has joined (kubelet.conf is there).
#
# Env: KUBEADM_CONFIG (JoinConfiguration with the placeholder @BOOTSTRAP_TOKEN@), BOOTSTRAP_TOKEN (secret), NODE_NAME
set -euo pipefail
: "${KUBEADM_CONFIG:?}" "${BOOTSTRAP_TOKEN:?}" "${NODE_NAME:?}"
config=/etc/kubernetes/dare/kubeadm-join.yaml

if [ -f /etc/kubernetes/kubelet.conf ]; then
  echo "${NODE_NAME}: already joined (/etc/kubernetes/kubelet.conf exists): nothing to do"
  exit 0
fi

install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/$BOOTSTRAP_TOKEN}" >"$config"
echo "${NODE_NAME}: kubeadm join"
kubeadm join --config "$config"
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/<redacted>}" >"$config"
