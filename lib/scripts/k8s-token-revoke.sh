#!/bin/bash
# On the first control plane, after every join of this round: deletes the bootstrap token, which was
# minted without an expiry (k8s-token.sh) so that a failed join could be retried. Guarded: an absent
# token is nothing to do.
#
# Env: BOOTSTRAP_TOKEN (secret; only its id, the public half, is used)
set -euo pipefail
: "${BOOTSTRAP_TOKEN:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
token_id=${BOOTSTRAP_TOKEN%%.*}
if kubeadm token delete "$token_id" >/dev/null 2>&1; then
  echo "bootstrap token ${token_id} revoked: every join is done"
else
  echo "bootstrap token ${token_id}: already gone"
fi
