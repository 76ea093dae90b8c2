#!/bin/bash
# On each control plane after its init or join (and upgrade), one control plane at a time: keeps its
# static pod manifests (API server, controller manager, scheduler) in step with the ClusterConfiguration
# the program renders, which carries dare:controlPlaneExtraArgs; on the first control plane also the
# kubeadm-config ConfigMap, which later joins and `kubeadm upgrade` read. kubeadm's documented way to
# reconfigure a running cluster ("Reconfiguring a kubeadm cluster": `kubeadm init phase control-plane
# <component> --config`, `kubeadm init phase upload-config kubeadm --config`). The kubelet restarts a
# component whose manifest changed; the step waits for the local API server to be ready again.
# Guarded: nothing runs when the configuration is the one last applied here.
#
# Env: NODE_NAME, CONTROL_PLANE_CONFIG (InitConfiguration with this host's endpoint, ClusterConfiguration),
#      UPLOAD_CLUSTER_CONFIGURATION (true on the first control plane), API_PORT (the local API server's),
#      API_ENDPOINT (for the record: the step depends on it)
set -euo pipefail
: "${NODE_NAME:?}" "${CONTROL_PLANE_CONFIG:?}" "${UPLOAD_CLUSTER_CONFIGURATION:?}" "${API_PORT:?}"
manifests=(/etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/kube-controller-manager.yaml /etc/kubernetes/manifests/kube-scheduler.yaml)
fingerprint() { cat "${manifests[@]}" 2>/dev/null | sha256sum; }
applied=/etc/kubernetes/dare/control-plane.yaml
if [ ! -f /etc/kubernetes/kubelet.conf ]; then
  echo "${NODE_NAME}: not a cluster member yet (no kubelet.conf): kubeadm init or join runs first" >&2
  exit 1
fi
if [ -f "$applied" ] && [ "$(cat "$applied")" = "$CONTROL_PLANE_CONFIG" ]; then
  echo "${NODE_NAME}: control-plane configuration unchanged"
  exit 0
fi

install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
next=$(mktemp /etc/kubernetes/dare/control-plane.XXXXXX)
trap 'rm -f "$next"' EXIT
printf '%s\n' "$CONTROL_PLANE_CONFIG" >"$next"
echo "${NODE_NAME}: writing the control-plane manifests"
before=$(fingerprint)
kubeadm init phase control-plane all --config "$next"
if [ "$UPLOAD_CLUSTER_CONFIGURATION" = true ]; then
  KUBECONFIG=/etc/kubernetes/admin.conf kubeadm init phase upload-config kubeadm --config "$next"
fi
if [ "$(fingerprint)" != "$before" ]; then
  # The kubelet notices a changed manifest within its file check period (20 s) and restarts the component;
  # the next control plane goes only once this API server answers again. /readyz is open to anonymous
  # callers (system:public-info-viewer) and carries nothing secret: its certificate is not checked.
  sleep "${MANIFEST_SETTLE_SECONDS:-25}"
  ready=false
  for _ in $(seq 60); do
    if curl -ksf --max-time 5 "https://127.0.0.1:${API_PORT}/readyz" >/dev/null; then ready=true; break; fi
    sleep 5
  done
  if [ "$ready" != true ]; then
    echo "${NODE_NAME}: the API server is not ready 5 minutes after its manifest was written; see crictl ps -a and its logs" >&2
    exit 1
  fi
fi
mv "$next" "$applied"
trap - EXIT
echo "${NODE_NAME}: control-plane configuration applied"
