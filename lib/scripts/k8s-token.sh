#!/bin/bash
# (Re)creates the bootstrap token on the first control plane right before joins, so a host added
# months after `kubeadm init` still joins. It has no expiry: k8s-token-revoke.sh deletes it once the
# joins are done, and a join that failed in between can be retried any time before that.
#
# Env: BOOTSTRAP_TOKEN (secret), TOKEN_CONFIG (InitConfiguration with the placeholder @BOOTSTRAP_TOKEN@)
set -euo pipefail
: "${BOOTSTRAP_TOKEN:?}" "${TOKEN_CONFIG:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
token_id=${BOOTSTRAP_TOKEN%%.*}
config=/etc/kubernetes/dare/kubeadm-token.yaml

install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
printf '%s\n' "${TOKEN_CONFIG//@BOOTSTRAP_TOKEN@/$BOOTSTRAP_TOKEN}" >"$config"
trap 'rm -f "$config"' EXIT
# The id is the token's public half: it may appear in a command line.
kubeadm token delete "$token_id" >/dev/null 2>&1 || true
kubeadm token create --config "$config" >/dev/null
echo "bootstrap token ${token_id} valid for joins"
