#!/bin/bash
# Prepares a host for Kubernetes (Ubuntu 24.04): swap off, kernel modules and sysctls for pod
# networking, containerd 2.x (containerd.io from Docker's signed apt repository, pinned and held)
# configured for the kubelet (config version 3, systemd cgroup driver, the pause image), kubeadm/kubelet/
# kubectl from pkgs.k8s.io held at the configured version, and the host firewall. Every part is idempotent.
# Kubernetes packages already installed are left alone: version changes are the upgrade step's job, in
# kubeadm's order. containerd is moved to the pinned version in place (see "containerd" below).
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

# An apt repository's signing key, fetched once into KEYRING and refused unless the file holds exactly one
# primary key, whose fingerprint is the published one (a second key in the file would be trusted too).
apt_key() { # apt_key LABEL URL FINGERPRINT KEYRING
  local label=$1 url=$2 expected=$3 keyring=$4 key gnupg fingerprints
  [ -s "$keyring" ] && return 0
  key=$(mktemp) gnupg=$(mktemp -d)
  curl -fsSL --retry 5 "$url" >"$key"
  # --with-colons: a "pub" record, then its "fpr" record (field 10); subkeys' fpr records follow "sub".
  # A file gpg cannot read at all has no fingerprint: refused below, with the message.
  fingerprints=$({ GNUPGHOME=$gnupg gpg --batch --show-keys --with-colons "$key" 2>/dev/null || true; } \
    | awk -F: '$1 == "pub" { primary = 1; next } $1 == "sub" { primary = 0 } $1 == "fpr" && primary { printf "%s%s", sep, $10; sep = " "; primary = 0 }')
  if [ "$fingerprints" != "$expected" ]; then
    rm -rf "$key" "$gnupg"
    echo "refusing ${label}: fingerprint '${fingerprints}', expected ${expected}" >&2
    exit 1
  fi
  gpg --dearmor --batch --yes -o "$keyring" <"$key"
  rm -rf "$key" "$gnupg"
}

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

echo "packages: prerequisites"
need=()
for pkg in ca-certificates curl gpg nftables; do
  # dpkg's status is "install ok installed", or "hold ok installed" once apt-mark held the package.
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -Eq '^(install|hold) ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi

# containerd: Kubernetes 1.36 is tested with containerd 2.2+/2.3+ only, and only containerd 2.x answers the
# kubelet's RuntimeConfig call (cgroup driver); 1.7 reaches its end of life in September 2026. 2.3 is
# containerd's long-term line (to April 2028) and the one it supports upgrading 1.7 to directly.
# The pin: containerd.io's upstream version; raising it reruns this step on every host.
CONTAINERD_VERSION=2.3.6
DOCKER_KEY_FINGERPRINT=9DC858229FC7DD38854AE2D88D81803C0EBFCD88
echo "packages: containerd.io ${CONTAINERD_VERSION}"
install -d -m 0755 /etc/apt/keyrings
apt_key "Docker's apt key" https://download.docker.com/linux/ubuntu/gpg "$DOCKER_KEY_FINGERPRINT" /etc/apt/keyrings/docker.gpg
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
put /etc/apt/sources.list.d/docker.list 0644 \
  <<<"deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu ${codename} stable"
# Guard: containerd.io at the pinned version. Anything else (Ubuntu's containerd 1.7 or 2.2, another
# containerd.io) is replaced in place: containerd.io conflicts with Ubuntu's containerd and runc, so apt
# removes them in the same transaction. Containers survive it (containerd.service stops with
# KillMode=process: shims and containers keep running, and the new containerd takes them over).
# The package is downloaded first; on a cluster member the kubelet is stopped only for the swap, and
# started again afterwards so that it asks the new containerd for its cgroup driver.
# --force-confold: our /etc/containerd/config.toml stays (containerd.io's own would disable the CRI).
swapped=false member=false
if ! dpkg-query -W -f='${Status} ${Version}' containerd.io 2>/dev/null | grep -Eq "^(install|hold) ok installed ${CONTAINERD_VERSION//./\\.}-"; then
  apt_install=(apt-get install -y -q --allow-change-held-packages
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "containerd.io=${CONTAINERD_VERSION}-*")
  apt-get update -q
  "${apt_install[@]}" --download-only
  if [ -f /etc/kubernetes/kubelet.conf ]; then
    member=true
    trap 'systemctl start kubelet' EXIT # whatever happens next, the kubelet runs again
    systemctl stop kubelet
  fi
  "${apt_install[@]}"
  apt-mark hold containerd.io
  swapped=true
fi

# containerd 2.x config version 3: the CRI plugin is split into io.containerd.cri.v1.images (the pause
# image, pinned so that image garbage collection keeps it) and io.containerd.cri.v1.runtime (runc with
# the systemd cgroup driver, as the kubelet is configured by kubeadm).
put /etc/containerd/config.toml 0644 <<TOML
version = 3
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE}'
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
TOML
systemctl enable --now containerd
if was_changed /etc/containerd/config.toml || [ "$swapped" = true ]; then
  containerd config dump >/dev/null # refuses a configuration containerd cannot read, before the restart
  systemctl restart containerd
fi
if [ "$member" = true ]; then systemctl start kubelet; trap - EXIT; fi

# The key of pkgs.k8s.io (the "isv:kubernetes OBS Project" key, one for every minor's repository): its
# fingerprint as upstream's Release.key shows it in kubernetes/kubernetes#128609 and kubernetes/release#3818
# (renewed in November 2024 with the same fingerprint, a new expiry).
KUBERNETES_KEY_FINGERPRINT=DE15B14486CD377B9E876E1A234654DA9A296436
echo "packages: kubeadm, kubelet, kubectl ${KUBERNETES_VERSION}"
if installed=$(kubeadm version -o short 2>/dev/null); then
  echo "kubeadm ${installed} already installed: left to the upgrade step"
else
  install -d -m 0755 /etc/apt/keyrings
  apt_key "the Kubernetes apt key (pkgs.k8s.io)" "https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key" \
    "$KUBERNETES_KEY_FINGERPRINT" /etc/apt/keyrings/kubernetes-apt-keyring.gpg
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
