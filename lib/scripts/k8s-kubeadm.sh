#!/bin/bash
# `kubeadm init` on the first control plane (the PKI already placed by k8s-pki.sh) or `kubeadm join` of
# a control plane or worker (the discovery hash pins the cluster CA), with the configuration rendered by
# the program. Guarded: init is skipped when the cluster exists (admin.conf), join when the host has
# joined (kubelet.conf). With the API's virtual IP (k8s-kube-vip.sh), the first control plane's kube-vip reads
# super-admin.conf while init runs and admin.conf once it has succeeded: switched here.
#
# Env: KUBEADM_ACTION (init or join), KUBEADM_CONFIG (Init/Cluster/KubeletConfiguration, or
#      JoinConfiguration, with the placeholder @BOOTSTRAP_TOKEN@), BOOTSTRAP_TOKEN (secret), NODE_NAME
set -euo pipefail
: "${KUBEADM_ACTION:?}" "${KUBEADM_CONFIG:?}" "${BOOTSTRAP_TOKEN:?}" "${NODE_NAME:?}"
config=/etc/kubernetes/dare/kubeadm-${KUBEADM_ACTION}.yaml
kube_vip=/etc/kubernetes/manifests/kube-vip.yaml

case "$KUBEADM_ACTION" in
  init) done_file=/etc/kubernetes/admin.conf; args=(init --config "$config" --skip-token-print) ;;
  join) done_file=/etc/kubernetes/kubelet.conf; args=(join --config "$config") ;;
  *) echo "KUBEADM_ACTION must be init or join, not ${KUBEADM_ACTION}" >&2; exit 2 ;;
esac
if [ -f "$done_file" ]; then
  # The API endpoint is fixed for the life of a cluster: every kubeconfig, certificate and node points at
  # it. A configuration that moves it (apiLoadBalancer switched, hosts reordered) must not pass silently.
  wanted=$(printf '%s\n' "$KUBEADM_CONFIG" | sed -n 's/^ *\(controlPlaneEndpoint\|apiServerEndpoint\): *\([^ ]*\)$/\2/p' | head -n 1)
  current=$(sed -n 's|^ *server: *https://\([^ ]*\)$|\1|p' "$done_file" | head -n 1)
  if [ -n "$wanted" ] && [ -n "$current" ] && [ "$wanted" != "$current" ]; then
    echo "${NODE_NAME}: refusing to move the running cluster's API endpoint from ${current} to ${wanted}." \
      "Put the configuration back (dare:apiLoadBalancer, dare:apiVirtualIp, the first control plane), or rebuild the cluster." >&2
    exit 1
  fi
  echo "${NODE_NAME}: kubeadm ${KUBEADM_ACTION} already done (${done_file} exists): nothing to do"
  exit 0
fi

# A failed kubeadm leaves half a node (kubeconfigs, manifests, an etcd member) that would make the
# guard above skip the next attempt: undo it with `kubeadm reset`, keeping the cluster's shared CAs
# and keys, which the pki step placed and will not place again.
undo_failed() {
  local keep f vip
  keep=$(mktemp -d)
  cp -a /etc/kubernetes/pki/. "$keep"/ 2>/dev/null || true
  # kube-vip's static pod too (reset empties the manifests folder): the next attempt needs the VIP again.
  vip=$(mktemp)
  cp -a "$kube_vip" "$vip" 2>/dev/null || rm -f "$vip"
  kubeadm reset -f >&2 || true
  if [ -f "$vip" ]; then install -D -m 0600 -o root -g root "$vip" "$kube_vip"; rm -f "$vip"; fi
  # Only a control plane has them (a worker's ca.crt comes from the join and must not be there before).
  if [ -f "$keep/ca.key" ]; then
    for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub etcd/ca.crt etcd/ca.key; do
      if [ -f "$keep/$f" ]; then install -D -m "$(stat -c %a "$keep/$f")" -o root -g root "$keep/$f" "/etc/kubernetes/pki/$f"; fi
    done
  fi
  rm -rf "$keep"
}

install -d -m 0700 -o root -g root /etc/kubernetes/dare
umask 077
# The token reaches the file through the shell's own substitution: never a process argument.
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/$BOOTSTRAP_TOKEN}" >"$config"
echo "${NODE_NAME}: kubeadm ${KUBEADM_ACTION}"
status=0
kubeadm "${args[@]}" || status=$?
# The token expires, but the file outlives it: what stays for operators to read has none.
printf '%s\n' "${KUBEADM_CONFIG//@BOOTSTRAP_TOKEN@/<redacted>}" >"$config"
if [ "$status" -ne 0 ]; then
  undo_failed
  echo "${NODE_NAME}: kubeadm ${KUBEADM_ACTION} failed (output above); the host is reset, the next pulumi up tries again" >&2
  exit 1
fi
# kube-vip on the first control plane read super-admin.conf while init ran (kube-vip issue #684): from now on
# admin.conf, whose group init has bound to cluster-admin. The kubelet restarts the pod on the change.
if [ "$KUBEADM_ACTION" = init ] && [ -f "$kube_vip" ] && grep -q '^ *path: /etc/kubernetes/super-admin.conf$' "$kube_vip"; then
  # Renamed into place from a dot name (the kubelet skips those): sed -i would leave a second manifest there for a moment.
  sed 's|^\( *path: \)/etc/kubernetes/super-admin.conf$|\1/etc/kubernetes/admin.conf|' "$kube_vip" >/etc/kubernetes/manifests/.kube-vip.yaml.new
  mv -f /etc/kubernetes/manifests/.kube-vip.yaml.new "$kube_vip"
  # The kubelet replaces the pod, and the VIP is gone for the few seconds that takes: the steps after this one
  # (the bootstrap token, the joins) reach the API there. Done once the API answers at the VIP (admin.conf's server)
  # with the new pod's mirror: the kubelet's copy of the new manifest, running.
  export KUBECONFIG=/etc/kubernetes/admin.conf
  deadline=$((SECONDS + 180))
  until [ "$(kubectl -n kube-system get pod "kube-vip-${NODE_NAME}" -o 'jsonpath={.spec.volumes[0].hostPath.path} {.status.phase}' 2>/dev/null)" = "/etc/kubernetes/admin.conf Running" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "${NODE_NAME}: kube-vip did not come back with admin.conf within 180 s: the API's virtual IP is not held" \
        "(crictl ps --name kube-vip; crictl logs <id>); the next pulumi up goes on once it is" >&2
      exit 1
    fi
    sleep 2
  done
  echo "${NODE_NAME}: kube-vip now reads /etc/kubernetes/admin.conf and holds the API's virtual IP"
fi
