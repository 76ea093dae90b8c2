#!/bin/bash
# On the first control plane, when a host leaves the configuration: drains its node (DaemonSet pods
# stay, emptyDir data goes), removes a control plane's etcd member, then deletes the Node. The host's
# own `kubeadm reset` (k8s-reset.sh) runs after this, and its VM is deleted after that.
#
# Env: NODE_NAME, NODE_ROLE (control-plane|worker), FIRST_CONTROL_PLANE; API_ENDPOINT (admin.conf's
# server, for the record: the step depends on it so the API outlives the drain)
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ROLE:?}" "${FIRST_CONTROL_PLANE:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf

if ! kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  echo "${NODE_NAME}: no such node: nothing to remove"
  exit 0
fi
echo "${NODE_NAME}: drain"
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=600s

if [ "$NODE_ROLE" = control-plane ]; then
  etcdctl() {
    kubectl -n kube-system exec "etcd-${FIRST_CONTROL_PLANE}" -- etcdctl \
      --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
      --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key "$@"
  }
  # Removing a member while another is down could cost etcd its majority: refuse instead.
  if ! etcdctl endpoint health --cluster >/dev/null; then
    echo "refusing to remove control plane ${NODE_NAME}: etcd is not healthy on every member; repair it first (etcdctl endpoint health --cluster)" >&2
    exit 1
  fi
  member=$(etcdctl member list | awk -F', ' -v name="$NODE_NAME" '$3 == name { print $1 }')
  if [ -n "$member" ]; then
    echo "${NODE_NAME}: remove etcd member ${member}"
    etcdctl member remove "$member"
  fi
fi

echo "${NODE_NAME}: delete node"
kubectl delete node "$NODE_NAME" --wait=true
