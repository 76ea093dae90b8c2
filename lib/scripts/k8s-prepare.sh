#!/bin/bash
# Prepares a host for Kubernetes (Ubuntu 24.04): swap off, kernel modules and sysctls for pod
# networking, containerd 2.x (containerd.io from Docker's signed apt repository, pinned and held)
# configured for the kubelet (config version 3, systemd cgroup driver, the pause image), kubeadm/kubelet/
# kubectl from pkgs.k8s.io held at the configured version, and the host firewall. Every part is idempotent.
# Kubernetes packages already installed are left alone: version changes are the upgrade step's job, in
# kubeadm's order. containerd is moved to the pinned version in place (see "containerd" below).
# Mirrors (dare:mirrors, for air-gapped sites): registry mirrors for containerd, apt sources on mirrors of
# Ubuntu, pkgs.k8s.io and Docker's repository (the same signing keys checked), the CA their certificates
# are checked against; a mirror no longer configured is taken off the host.
#
# Env: KUBERNETES_VERSION (e.g. 1.36.4), PAUSE_IMAGE, FIREWALL_RULESET (nftables text);
#      optional: REGISTRY_MIRRORS (lines "<registry> <endpoint URL> <override_path true|false>"),
#      UBUNTU_APT_MIRROR, KUBERNETES_APT_MIRROR, DOCKER_APT_MIRROR (base URLs serving upstream's paths),
#      MIRROR_CA_CERT (PEM)
set -euo pipefail
: "${KUBERNETES_VERSION:?}" "${PAUSE_IMAGE:?}" "${FIREWALL_RULESET:?}"
minor=${KUBERNETES_VERSION%.*}
export DEBIAN_FRONTEND=noninteractive
# The upstream repositories, and what this host uses instead when a mirror is set.
DOCKER_APT_UPSTREAM=https://download.docker.com/linux/ubuntu
KUBERNETES_APT_UPSTREAM=https://pkgs.k8s.io
docker_apt=${DOCKER_APT_MIRROR:-$DOCKER_APT_UPSTREAM}
kubernetes_apt=${KUBERNETES_APT_MIRROR:-$KUBERNETES_APT_UPSTREAM}
MIRROR_CA=/etc/dare/mirror-ca.pem

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
# apt's index is read again after any of its sources or settings changed, once, before the next install.
APT_FILES=(/etc/apt/sources.list /etc/apt/sources.list.d/ubuntu.sources /etc/apt/sources.list.d/docker.list
  /etc/apt/sources.list.d/kubernetes.list /etc/apt/apt.conf.d/60dare-mirror-ca /etc/dare/mirror-ca.pem)
apt_read=0 # how many changes apt-get update has seen
apt_update() { apt-get update -q; apt_read=${#changed[@]}; }
apt_stale() { # whether an apt file changed after the last apt_update
  local p
  for p in "${changed[@]:$apt_read}"; do case " ${APT_FILES[*]} " in *" $p "*) return 0 ;; esac; done
  return 1
}
# Remove a file, recording the change, when it exists.
drop() { # drop PATH
  if [ -e "$1" ]; then rm -f "$1"; changed+=("$1"); fi
}

# An apt repository's signing key, fetched once into KEYRING and refused unless the file holds exactly one
# primary key, whose fingerprint is the published one (a second key in the file would be trusted too).
# CA_FILE (optional): the only CA the download's server certificate is checked against (a mirror's).
apt_key() { # apt_key LABEL URL FINGERPRINT KEYRING [CA_FILE]
  local label=$1 url=$2 expected=$3 keyring=$4 ca=${5:-} key gnupg fingerprints
  [ -s "$keyring" ] && return 0
  key=$(mktemp) gnupg=$(mktemp -d)
  curl -fsSL --retry 5 ${ca:+--cacert "$ca"} "$url" >"$key"
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

# The mirrors' CA: the only one their certificates are checked against (containerd's `ca`, apt's CAInfo, curl's
# --cacert), so that it vouches for the mirrors and nothing else.
echo "mirrors"
if [ -n "${MIRROR_CA_CERT:-}" ]; then put "$MIRROR_CA" 0644 <<<"${MIRROR_CA_CERT%$'\n'}"; else drop "$MIRROR_CA"; fi
# The CA for a mirror URL: the file when the URL is a mirror's https URL and a CA is set; else nothing.
mirror_ca() { # mirror_ca URL
  case "$1" in https://*) [ -n "${MIRROR_CA_CERT:-}" ] && echo "$MIRROR_CA" ;; esac
  return 0
}

# apt over https to a mirror checks its certificate against the mirror CA alone: per host, apt's
# Acquire::https::<host>::CAInfo (apt-transport-https(1) of Ubuntu 24.04's apt 2.8, "Server credentials"; the
# host, without its port, before the option, as apt's https method looks it up: "Acquire::https::" + Uri.Host +
# "::CaInfo"). http mirrors need none: apt checks every repository's signature with its signed-by key either way.
apt_ca_conf=/etc/apt/apt.conf.d/60dare-mirror-ca
apt_ca=""
for url in ${UBUNTU_APT_MIRROR:-} ${KUBERNETES_APT_MIRROR:-} ${DOCKER_APT_MIRROR:-}; do
  if [ -n "$(mirror_ca "$url")" ]; then
    host=${url#https://}; host=${host%%/*}; host=${host%:*}
    line="Acquire::https::${host}::CAInfo \"${MIRROR_CA}\";"
    case "$apt_ca" in *"$line"*) ;; *) apt_ca+="${line}"$'\n' ;; esac
  fi
done
if [ -n "$apt_ca" ]; then put "$apt_ca_conf" 0644 <<<"${apt_ca%$'\n'}"; else drop "$apt_ca_conf"; fi

# Ubuntu's own sources (Ubuntu 24.04: /etc/apt/sources.list.d/ubuntu.sources, deb822; a host upgraded from an
# older release may still list them in /etc/apt/sources.list): replaced by the mirror, the original kept
# in /etc/dare/apt-original/ and put back when the mirror is removed. The mirror serves archive.ubuntu.com's
# paths, where every pocket lives, -security included; Ubuntu's archive key still signs it.
APT_ORIGINAL=/etc/dare/apt-original
replace_keeping_original() { # replace_keeping_original PATH  (content on stdin)
  local path=$1 saved
  saved=$APT_ORIGINAL/$(basename "$1")
  if [ ! -e "$saved" ] && [ ! -e "$saved.absent" ]; then
    install -d -m 0755 "$APT_ORIGINAL"
    if [ -e "$path" ]; then cp -p "$path" "$saved"; else touch "$saved.absent"; fi
  fi
  put "$path" 0644
}
restore_original() { # restore_original PATH
  local path=$1 saved
  saved=$APT_ORIGINAL/$(basename "$1")
  if [ -e "$saved" ]; then
    if ! cmp -s "$saved" "$path"; then cp -p "$saved" "$path"; changed+=("$path"); fi
    rm -f "$saved"
  elif [ -e "$saved.absent" ]; then
    drop "$path"
    rm -f "$saved.absent"
  fi
}
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
if [ -n "${UBUNTU_APT_MIRROR:-}" ]; then
  replace_keeping_original /etc/apt/sources.list.d/ubuntu.sources <<SOURCES
Types: deb
URIs: ${UBUNTU_APT_MIRROR}/
Suites: ${codename} ${codename}-updates ${codename}-backports ${codename}-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
SOURCES
  if [ -e /etc/apt/sources.list ] && grep -Eq '^[[:space:]]*deb' /etc/apt/sources.list; then
    replace_keeping_original /etc/apt/sources.list <<<"# Ubuntu's sources: /etc/apt/sources.list.d/ubuntu.sources (a mirror, dare:mirrors.apt.ubuntu)"
  fi
else
  restore_original /etc/apt/sources.list.d/ubuntu.sources
  restore_original /etc/apt/sources.list
fi

echo "packages: prerequisites"
need=()
for pkg in ca-certificates curl gpg nftables; do
  # dpkg's status is "install ok installed", or "hold ok installed" once apt-mark held the package.
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -Eq '^(install|hold) ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt_update
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
apt_key "Docker's apt key" "${docker_apt}/gpg" "$DOCKER_KEY_FINGERPRINT" /etc/apt/keyrings/docker.gpg "$(mirror_ca "${DOCKER_APT_MIRROR:-}")"
put /etc/apt/sources.list.d/docker.list 0644 \
  <<<"deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.gpg] ${docker_apt} ${codename} stable"
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
  apt_update
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
# image, pinned so that image garbage collection keeps it; registry hosts from config_path) and
# io.containerd.cri.v1.runtime (runc with the systemd cgroup driver, as the kubelet is configured by kubeadm).
# config_path is set with or without mirrors, so adding or removing one never restarts containerd: it reads
# <config_path>/<registry>/hosts.toml at each pull ("Updates under this directory do not require restarting
# the containerd daemon", containerd v2.3.6 docs/hosts.md; its "CRI" part names the 2.x section, and
# internal/cri/config/config.go has ImageConfig.Registry `toml:"registry"` with `ConfigPath toml:"config_path"`).
REGISTRY_HOSTS_DIR=/etc/containerd/certs.d
put /etc/containerd/config.toml 0644 <<TOML
version = 3
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE}'
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '${REGISTRY_HOSTS_DIR}'
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

# Registry mirrors: /etc/containerd/certs.d/<registry>/hosts.toml (containerd docs/hosts.md) with the mirror as
# the host tried first, trusted to pull and resolve tags (a private mirror, hosts.md "capabilities field");
# when it fails, containerd falls back to the registry itself. A registry with a port: the directory is
# named host:port, as hosts.md's lookup order allows. Files this step wrote begin with HOSTS_MARK; those of
# registries no longer mirrored are removed (others are left alone).
HOSTS_MARK="# Written by the DARE deployer (dare:mirrors). Do not edit: the next pulumi up rewrites it."
mirrored=" "
while read -r registry endpoint override_path; do
  [ -n "$registry" ] || continue
  mirrored+="$registry "
  hosts_toml="${HOSTS_MARK}"$'\n'"[host.\"${endpoint}\"]"$'\n'"  capabilities = [\"pull\", \"resolve\"]"
  if [ "$override_path" = true ]; then hosts_toml+=$'\n'"  override_path = true"; fi
  if [ -n "$(mirror_ca "$endpoint")" ]; then hosts_toml+=$'\n'"  ca = \"${MIRROR_CA}\""; fi
  put "${REGISTRY_HOSTS_DIR}/${registry}/hosts.toml" 0644 <<<"$hosts_toml"
done <<<"${REGISTRY_MIRRORS:-}"
for hosts_toml in "${REGISTRY_HOSTS_DIR}"/*/hosts.toml; do
  if [ ! -f "$hosts_toml" ] || [ "$(head -n 1 "$hosts_toml")" != "$HOSTS_MARK" ]; then continue; fi
  registry=$(basename "$(dirname "$hosts_toml")")
  case "$mirrored" in *" $registry "*) continue ;; esac
  echo "registry mirror of ${registry}: removed"
  drop "$hosts_toml"
  rmdir --ignore-fail-on-non-empty "$(dirname "$hosts_toml")"
done

# The key of pkgs.k8s.io (the "isv:kubernetes OBS Project" key, one for every minor's repository): its
# fingerprint as upstream's Release.key shows it in kubernetes/kubernetes#128609 and kubernetes/release#3818
# (renewed in November 2024 with the same fingerprint, a new expiry).
KUBERNETES_KEY_FINGERPRINT=DE15B14486CD377B9E876E1A234654DA9A296436
echo "packages: kubeadm, kubelet, kubectl ${KUBERNETES_VERSION}"
# The repository of the configured minor (the upgrade step moves it too), on a mirror when one is set; written
# on hosts that have the packages too, so that setting or removing a mirror reaches them.
install -d -m 0755 /etc/apt/keyrings
apt_key "the Kubernetes apt key (pkgs.k8s.io)" "${kubernetes_apt}/core:/stable:/v${minor}/deb/Release.key" \
  "$KUBERNETES_KEY_FINGERPRINT" /etc/apt/keyrings/kubernetes-apt-keyring.gpg "$(mirror_ca "${KUBERNETES_APT_MIRROR:-}")"
put /etc/apt/sources.list.d/kubernetes.list 0644 \
  <<<"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] ${kubernetes_apt}/core:/stable:/v${minor}/deb/ /"
if installed=$(kubeadm version -o short 2>/dev/null); then
  echo "kubeadm ${installed} already installed: left to the upgrade step"
else
  apt_update
  apt-get install -y -q --allow-change-held-packages \
    "kubelet=${KUBERNETES_VERSION}-*" "kubeadm=${KUBERNETES_VERSION}-*" "kubectl=${KUBERNETES_VERSION}-*"
  apt-mark hold kubelet kubeadm kubectl
fi
# A source set or removed on a host that installed nothing now: its index follows, for the next install.
if apt_stale; then apt_update; fi
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
