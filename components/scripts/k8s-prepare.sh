#!/bin/bash
# Prepares a host for Kubernetes (Ubuntu 24.04): swap off, kernel modules and sysctls for pod
# networking, containerd from the OS packages with the systemd cgroup driver, kubeadm/kubelet/kubectl
# from pkgs.k8s.io held at the configured version, and the host firewall. Every part is idempotent.
# Packages already installed are left alone: version changes are the upgrade step's job, in kubeadm's order.
#
# Env: KUBERNETES_VERSION (e.g. 1.36.4), PAUSE_IMAGE, FIREWALL_RULESET (nftables text)
set -euo pipefail
: "${KUBERNETES_VERSION:?}" "${PAUSE_IMAGE:?}" "${FIREWALL_RULESET:?}"
minor=${KUBERNETES_VERSION%.*}
export DEBIAN_FRONTEND=noninteractive

# Write a file only when its content differs, so reruns do not restart services needlessly.
# (Feed it with a here-document or here-string, never a pipe: a pipe runs it in a subshell, which
# would lose the record of what changed.)
changed=()
put() { # put PATH MODE  (content on stdin)
  local path=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
  else
    install -D -m "$mode" -o root -g root "$tmp" "$path"
    rm -f "$tmp"
    changed+=("$path")
  fi
}
was_changed() { local p; for p in "${changed[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

echo "swap: off"
swapoff -a
if [ -f /etc/fstab ] && grep -Eq '^[^#].*\sswap\s' /etc/fstab; then
  sed -i -E 's/^([^#].*\sswap\s.*)$/# disabled for kubelet: \1/' /etc/fstab
fi

echo "kernel modules and sysctls"
put /etc/modules-load.d/kubernetes.conf 0644 <<'CONF'
overlay
br_netfilter
CONF
modprobe overlay
modprobe br_netfilter
put /etc/sysctl.d/90-kubernetes.conf 0644 <<'CONF'
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
CONF
sysctl --system >/dev/null

echo "packages: containerd and prerequisites"
need=()
for pkg in containerd ca-certificates curl gpg nftables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi

# containerd 1.7 (Ubuntu 24.04) reads config version 2; kubelet and containerd must agree on systemd cgroups.
put /etc/containerd/config.toml 0644 <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
TOML
systemctl enable --now containerd
if was_changed /etc/containerd/config.toml; then systemctl restart containerd; fi

echo "packages: kubeadm, kubelet, kubectl ${KUBERNETES_VERSION}"
if installed=$(kubeadm version -o short 2>/dev/null); then
  echo "kubeadm ${installed} already installed: left to the upgrade step"
else
  install -d -m 0755 /etc/apt/keyrings
  if [ ! -s /etc/apt/keyrings/kubernetes-apt-keyring.gpg ]; then
    curl -fsSL --retry 5 "https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key" \
      | gpg --dearmor --batch --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
  fi
  put /etc/apt/sources.list.d/kubernetes.list 0644 \
    <<<"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /"
  apt-get update -q
  apt-get install -y -q --allow-change-held-packages \
    "kubelet=${KUBERNETES_VERSION}-*" "kubeadm=${KUBERNETES_VERSION}-*" "kubectl=${KUBERNETES_VERSION}-*"
  apt-mark hold kubelet kubeadm kubectl
fi
systemctl enable kubelet

echo "host firewall"
put /etc/dare/firewall.nft 0600 <<<"$FIREWALL_RULESET"
put /etc/systemd/system/dare-firewall.service 0644 <<'UNIT'
[Unit]
Description=DARE host firewall (nftables table inet dare_firewall)
Wants=network-pre.target
Before=network-pre.target kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/dare/firewall.nft

[Install]
WantedBy=multi-user.target
UNIT
nft -c -f /etc/dare/firewall.nft
if was_changed /etc/systemd/system/dare-firewall.service; then systemctl daemon-reload; fi
systemctl enable dare-firewall.service
if was_changed /etc/dare/firewall.nft; then nft -f /etc/dare/firewall.nft; fi
echo "prepared"
