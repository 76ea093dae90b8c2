#!/bin/bash
# In-place upgrade to KUBERNETES_VERSION in kubeadm's order; the program runs this step on the first
# control plane, then on the other control planes one at a time, then on workers in batches.
# A host already at the version does nothing (so does one that has not joined: it joins at the version).
# Refused: a downgrade, or a jump of more than one minor version (kubeadm supports neither).
#
# A worker has no admin credential: the first control plane drains it before this step and uncordons it
# after (k8s-drain.sh); here it only upgrades its packages and kubelet configuration.
#
# Env: KUBERNETES_VERSION, NODE_NAME, UPGRADE_ROLE (first|control-plane|worker); API_ENDPOINT (for the record:
#      the step depends on it so the API outlives the upgrade)
set -euo pipefail
: "${KUBERNETES_VERSION:?}" "${NODE_NAME:?}" "${UPGRADE_ROLE:?}"
export DEBIAN_FRONTEND=noninteractive
target=v${KUBERNETES_VERSION}

if ! kubeadm_now=$(kubeadm version -o short 2>/dev/null) || [ ! -f /etc/kubernetes/kubelet.conf ]; then
  echo "${NODE_NAME}: not a cluster member yet: nothing to upgrade"
  exit 0
fi
kubelet_now=$(kubelet --version | awk '{ print $2 }')
if [ "$kubeadm_now" = "$target" ] && [ "$kubelet_now" = "$target" ]; then
  echo "${NODE_NAME}: at ${target}"
  exit 0
fi

# Versions as comparable numbers: v1.36.4 -> 1 36 4.
read -r now_major now_minor now_patch <<<"$(echo "${kubelet_now#v}" | tr . ' ')"
read -r to_major to_minor to_patch <<<"$(echo "${KUBERNETES_VERSION}" | tr . ' ')"
if [ "$to_major" -ne "$now_major" ] || [ "$to_minor" -lt "$now_minor" ] ||
  { [ "$to_minor" -eq "$now_minor" ] && [ "$to_patch" -lt "$now_patch" ]; }; then
  echo "refusing to change ${NODE_NAME} from ${kubelet_now} to ${target}: kubeadm cannot downgrade; set dare:kubernetesVersion back to ${kubelet_now#v} (or newer)" >&2
  exit 1
fi
if [ "$to_minor" -gt $((now_minor + 1)) ]; then
  echo "refusing to upgrade ${NODE_NAME} from ${kubelet_now} to ${target}: kubeadm upgrades one minor version at a time; set dare:kubernetesVersion to 1.$((now_minor + 1)).x first, run pulumi up, then ${KUBERNETES_VERSION}" >&2
  exit 1
fi

if [ "$UPGRADE_ROLE" != worker ]; then
  # A control plane drains itself with its own admin.conf, which never leaves it.
  export KUBECONFIG=/etc/kubernetes/admin.conf
fi

install_held() { # install_held PACKAGE...: at the target version, held there
  local pkgs=() p
  for p in "$@"; do pkgs+=("${p}=${KUBERNETES_VERSION}-*"); done
  apt-mark unhold "$@" >/dev/null
  apt-get install -y -q --allow-change-held-packages "${pkgs[@]}"
  apt-mark hold "$@" >/dev/null
}

echo "${NODE_NAME}: upgrade ${kubelet_now} -> ${target}"
# The target minor's repository, at the address the prepare step wrote (pkgs.k8s.io or its mirror, dare:mirrors).
sed -i -E "s#/core:/stable:/v[0-9]+\.[0-9]+/deb/#/core:/stable:/v${to_major}.${to_minor}/deb/#" /etc/apt/sources.list.d/kubernetes.list
apt-get update -q
if [ "$kubeadm_now" != "$target" ]; then install_held kubeadm; fi

if [ "$UPGRADE_ROLE" = first ]; then
  kubeadm upgrade apply -y "$target"
else
  kubeadm upgrade node
fi

if [ "$UPGRADE_ROLE" != worker ]; then kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=600s; fi
install_held kubelet kubectl
systemctl daemon-reload
systemctl restart kubelet
if [ "$UPGRADE_ROLE" != worker ]; then kubectl uncordon "$NODE_NAME"; fi
echo "${NODE_NAME}: at ${target}"
