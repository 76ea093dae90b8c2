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
apiserver_manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
export KUBECONFIG=/etc/kubernetes/admin.conf
# The hash the kubelet gives the API server's mirror pod (annotation kubernetes.io/config.hash): it changes
# once the kubelet runs the new manifest. kubeadm waits on the same when it upgrades (WaitForStaticPodHash).
running_hash() { kubectl -n kube-system get pod "kube-apiserver-${NODE_NAME}" -o jsonpath='{.metadata.annotations.kubernetes\.io/config\.hash}' 2>/dev/null || true; }
applied=/etc/kubernetes/dare/control-plane.yaml
if [ ! -f /etc/kubernetes/kubelet.conf ]; then
  echo "${NODE_NAME}: not a cluster member yet (no kubelet.conf): kubeadm init or join runs first" >&2
  exit 1
fi
if [ -f "$applied" ] && printf '%s\n' "$CONTROL_PLANE_CONFIG" | cmp -s - "$applied"; then
  echo "${NODE_NAME}: control-plane configuration unchanged"
  exit 0
fi

install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
next=$(mktemp /etc/kubernetes/dare/control-plane.XXXXXX)
trap 'rm -f "$next"' EXIT
printf '%s\n' "$CONTROL_PLANE_CONFIG" >"$next"
echo "${NODE_NAME}: writing the control-plane manifests"
before=$(sha256sum "$apiserver_manifest" 2>/dev/null || true)
hash_before=$(running_hash)
kubeadm init phase control-plane all --config "$next"
if [ "$UPLOAD_CLUSTER_CONFIGURATION" = true ]; then
  kubeadm init phase upload-config kubeadm --config "$next"
fi
if [ "$(sha256sum "$apiserver_manifest")" != "$before" ]; then
  # The kubelet restarts the API server on its new manifest; the next control plane goes only once this one
  # runs it and answers again. /readyz is open to anonymous callers (system:public-info-viewer) and carries
  # nothing secret: its certificate is not checked.
  ready=false
  for _ in $(seq 120); do
    hash_now=$(running_hash)
    if [ -n "$hash_now" ] && [ "$hash_now" != "$hash_before" ] && curl -ksf --max-time 5 "https://127.0.0.1:${API_PORT}/readyz" >/dev/null; then
      ready=true
      break
    fi
    sleep 5
  done
  if [ "$ready" != true ]; then
    echo "${NODE_NAME}: the API server does not run its new manifest 10 minutes after it was written; see crictl ps -a and its logs" >&2
    exit 1
  fi
  echo "${NODE_NAME}: the API server runs its new manifest and is ready"
fi
mv "$next" "$applied"
trap - EXIT
echo "${NODE_NAME}: control-plane configuration applied"
