#!/bin/bash
# kube-vip's static pod on a control plane (components/kube-vip.ts), written before kubeadm init or join runs
# there, so the API's virtual IP exists as soon as an API server does. Guarded: the file is replaced only when
# it differs. Refused on a control plane of a running cluster whose API endpoint is not the virtual IP: adding
# the VIP would move the endpoint every kubeconfig, certificate and node points at.
#
# The kubeconfig it mounts: on the first control plane before `kubeadm init` has run, super-admin.conf
# (Kubernetes >= 1.29: admin.conf gets its rights only during init; kube-vip issue #684); admin.conf everywhere
# else and afterwards (k8s-kubeadm.sh switches the first control plane's manifest once init has succeeded).
#
# Env: KUBE_VIP_MANIFEST (the Pod, the interface as @VIP_INTERFACE@ when the configuration names none),
#      API_ENDPOINT (VIP:port), NODE_ADDRESS (the host's private address), NODE_NAME,
#      FIRST_CONTROL_PLANE (true on the host that runs kubeadm init)
set -euo pipefail
: "${KUBE_VIP_MANIFEST:?}" "${API_ENDPOINT:?}" "${NODE_ADDRESS:?}" "${NODE_NAME:?}" "${FIRST_CONTROL_PLANE:?}"
manifest=/etc/kubernetes/manifests/kube-vip.yaml
admin=/etc/kubernetes/admin.conf
super_admin=/etc/kubernetes/super-admin.conf

if [ -f "$admin" ]; then
  current=$(sed -n 's|^ *server: *https://\([^ ]*\)$|\1|p' "$admin" | head -n 1)
  if [ -n "$current" ] && [ "$current" != "$API_ENDPOINT" ]; then
    echo "${NODE_NAME}: refusing to add the API virtual IP ${API_ENDPOINT}: this control plane belongs to a running" \
      "cluster whose API endpoint is ${current}, and the endpoint is fixed for the life of a cluster (every kubeconfig," \
      "certificate and node points at it). Remove dare:apiVirtualIp again, or rebuild the cluster with it." >&2
    exit 1
  fi
fi

pod=$KUBE_VIP_MANIFEST
if [[ "$pod" == *@VIP_INTERFACE@* ]]; then
  # The interface that holds the node's private address: the VIP must sit on the same layer-2 network.
  interface=$(ip -o -4 addr show | awk -v a="$NODE_ADDRESS" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
  interface=${interface%%@*}
  if [ -z "$interface" ]; then
    echo "${NODE_NAME}: no interface holds ${NODE_ADDRESS} (ip -o -4 addr show); name one in dare:apiVirtualIp.interface" >&2
    exit 1
  fi
  pod=${pod//@VIP_INTERFACE@/$interface}
fi
if [ "$FIRST_CONTROL_PLANE" = true ] && [ ! -f "$admin" ]; then
  pod=${pod//"path: $admin"/"path: $super_admin"}
fi

install -d -m 0755 -o root -g root /etc/kubernetes/manifests
tmp=$(mktemp)
printf '%s\n' "${pod%$'\n'}" >"$tmp"
if [ -f "$manifest" ] && cmp -s "$tmp" "$manifest"; then
  rm -f "$tmp"
  echo "${NODE_NAME}: ${manifest} is up to date"
  exit 0
fi
# Written beside it under a dot name (the kubelet skips those), then renamed: the kubelet never reads half a file.
install -m 0600 -o root -g root "$tmp" "/etc/kubernetes/manifests/.kube-vip.yaml.new"
mv -f /etc/kubernetes/manifests/.kube-vip.yaml.new "$manifest"
rm -f "$tmp"
echo "${NODE_NAME}: placed ${manifest} (VIP ${API_ENDPOINT}, kubeconfig $(sed -n 's/^ *path: *\(\/etc\/kubernetes\/[a-z-]*\.conf\)$/\1/p' "$manifest"))"
