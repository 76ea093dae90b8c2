#!/bin/bash
# On every host, after its preparation and before kubeadm first starts its kubelet, and again whenever the
# pool's kubelet settings change: the kubelet reads drop-in configuration from KUBELET_DROPIN_DIR
# (`--config-dir`, GA in Kubernetes 1.35, KEP-3983), merged over kubeadm's cluster-wide
# /var/lib/kubelet/config.yaml; the program's file there holds the pool's settings (none: no file).
# The flag goes in /etc/default/kubelet, the file kubeadm's kubelet drop-in (10-kubeadm.conf, kubeadm's
# "Configuring each kubelet in your cluster using kubeadm") reads KUBELET_EXTRA_ARGS from and kubeadm
# never writes: so it holds for nodes joined before it existed and through `kubeadm upgrade`.
# Guarded: the kubelet is restarted only when a file changed and kubeadm has configured it already
# (before the join, kubeadm starts it with these files in place).
#
# Env: NODE_NAME, KUBELET_DROPIN_DIR, KUBELET_DROPIN_FILE, KUBELET_CONFIG (the drop-in's text; empty: none)
set -euo pipefail
: "${NODE_NAME:?}" "${KUBELET_DROPIN_DIR:?}" "${KUBELET_DROPIN_FILE:?}"
changed=false

# put PATH MODE: writes stdin to PATH unless it holds exactly that already.
put() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
  install -m "$2" -o root -g root "$tmp" "$1"
  rm -f "$tmp"
  echo "${NODE_NAME}: $1 written"
  changed=true
}

install -d -m 0755 -o root -g root "$KUBELET_DROPIN_DIR"
put /etc/default/kubelet 0644 <<<"KUBELET_EXTRA_ARGS=--config-dir=${KUBELET_DROPIN_DIR}"
if [ -n "${KUBELET_CONFIG:-}" ]; then
  put "$KUBELET_DROPIN_FILE" 0644 <<<"$KUBELET_CONFIG"
elif [ -f "$KUBELET_DROPIN_FILE" ]; then
  rm -f "$KUBELET_DROPIN_FILE"
  echo "${NODE_NAME}: ${KUBELET_DROPIN_FILE} removed (no kubelet settings configured)"
  changed=true
fi

# A restart that failed half-way is tried again by the next run, though the files are then unchanged.
pending=/var/lib/dare-kubelet-restart-pending
if [ "$changed" = true ] && [ -f /var/lib/kubelet/config.yaml ]; then touch "$pending"; fi
if [ -f "$pending" ]; then
  echo "${NODE_NAME}: restarting the kubelet for its new configuration"
  systemctl restart kubelet
  rm -f "$pending"
else
  echo "${NODE_NAME}: kubelet configuration unchanged"
fi
