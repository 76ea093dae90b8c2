#!/bin/bash
# `kubeadm init` on the first control plane, with the configuration rendered by the program and the
# PKI already in place (k8s-pki.sh). Skipped when the cluster exists (admin.conf is there).
#
# Env: KUBEADM_CONFIG (InitConfiguration + ClusterConfiguration + KubeletConfiguration, with the
#      placeholder @BOOTSTRAP_TOKEN@), BOOTSTRAP_TOKEN (secret), NODE_NAME
set -euo pipefail
: "${KUBEADM_CONFIG:?}" "${BOOTSTRAP_TOKEN:?}" "${NODE_NAME:?}"
config=/etc/kubernetes/dare/kubeadm-init.yaml

if [ -f /etc/kubernetes/admin.conf ]; then
  echo "${NODE_NAME}: cluster already initialised (/etc/kubernetes/admin.conf exists): nothing to do"
  exit 0
fi

# The token reaches the file through the shell's own substitution: never a process argument.
install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/$BOOTSTRAP_TOKEN}" >"$config"
echo "${NODE_NAME}: kubeadm init"
kubeadm init --config "$config" --skip-token-print
# The token in it expires; the configuration without it stays for operators to read.
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/<redacted>}" >"$config"
