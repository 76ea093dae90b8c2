#!/bin/bash
# Bring up one test host: a network namespace joined to a bridge in the root
# namespace, and a mount + UTS namespace whose root is a tmpfs holding
#   - the real /usr (read-only, with the host's private /usr/local/bin on top),
#   - the host's private /etc /var /root /home /opt /srv /mnt /tmp /run,
#   - /proc /sys /dev from the real machine,
# in which the script finally execs a real OpenSSH server in the foreground
# (so the caller's child pid IS the host's sshd pid).
#
# Usage (as root; normally called by tests/hosts/harness.ts):
#   host-up.sh NAME ADDRESS PREFIXLEN VETH BRIDGE BRIDGE_ADDRESS ROOTDIR USER PEERS AUTHORIZED_KEY
#     PEERS: space separated "name=address" pairs written into /etc/hosts
# The private tree ROOTDIR must exist (the harness pre-creates it with stubs
# in ROOTDIR/usr/local/bin); stale state of the same NAME must already be
# gone (host-down.sh).
set -euo pipefail

SELF=$(readlink -f "$0")

die() {
  echo "host-up: $*" >&2
  exit 1
}

if [ "${1:-}" = "--inside" ]; then
  shift
  NAME=$1 ROOT=$2 NEWROOT=$3 LOGIN=$4

  hostname "$NAME"

  # The new root: a tmpfs that only this mount namespace sees.
  mount -t tmpfs -o mode=0755 "dare-t-$NAME" "$NEWROOT"
  for d in usr etc var root home opt srv mnt tmp run proc sys dev; do
    mkdir -p "$NEWROOT/$d"
  done
  # /bin, /sbin, /lib, ...: symlinks into /usr on a merged-usr system,
  # read-only binds otherwise.
  for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then
      ln -s "$(readlink "/$d")" "$NEWROOT/$d"
    elif [ -d "/$d" ]; then
      mkdir -p "$NEWROOT/$d"
      mount --bind "/$d" "$NEWROOT/$d"
      mount -o remount,bind,ro "$NEWROOT/$d"
    fi
  done
  mount --bind /usr "$NEWROOT/usr"
  mount -o remount,bind,ro "$NEWROOT/usr"
  mount --bind "$ROOT/usr/local/bin" "$NEWROOT/usr/local/bin"
  for d in etc var root home opt srv mnt tmp run; do
    mount --bind "$ROOT/$d" "$NEWROOT/$d"
  done
  # Package database: readable (dpkg -s works), never writable from a host.
  if [ -d /var/lib/dpkg ]; then
    mount --bind /var/lib/dpkg "$NEWROOT/var/lib/dpkg"
    mount -o remount,bind,ro "$NEWROOT/var/lib/dpkg"
  fi
  mount -t proc proc "$NEWROOT/proc" 2>/dev/null || mount --rbind /proc "$NEWROOT/proc"
  mount --rbind /sys "$NEWROOT/sys"
  mount --rbind /dev "$NEWROOT/dev"

  cd "$NEWROOT"
  mkdir .oldroot
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  rmdir /.oldroot

  # ---- from here on, everything is the host's own view ----
  if [ "$LOGIN" != root ]; then
    useradd --create-home --shell /bin/bash --groups sudo "$LOGIN"
    usermod --password '*' "$LOGIN" # not locked, but no password either
    printf '%s ALL=(ALL:ALL) NOPASSWD:ALL\n' "$LOGIN" >"/etc/sudoers.d/90-dare-test"
    chmod 0440 /etc/sudoers.d/90-dare-test
  fi
  home=$(getent passwd "$LOGIN" | cut -d: -f6)
  install -d -m 0700 -o "$LOGIN" -g "$(id -gn "$LOGIN")" "$home/.ssh"
  mv /run/dare-authorized-key "$home/.ssh/authorized_keys"
  chown "$LOGIN:$(id -gn "$LOGIN")" "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
  install -d -m 0700 /root/.ssh

  exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
fi

[ "$#" -eq 10 ] || die "usage: $0 NAME ADDRESS PREFIXLEN VETH BRIDGE BRIDGE_ADDRESS ROOTDIR USER PEERS AUTHORIZED_KEY"
NAME=$1 ADDRESS=$2 PREFIXLEN=$3 VETH=$4 BRIDGE=$5 BRIDGE_ADDRESS=$6 ROOT=$7 LOGIN=$8 PEERS=$9 AUTHORIZED_KEY=${10}
# The namespace carries the test run's id (DARE_TEST_HOST_ID, harness.ts) so two runs never share one.
NS="dare-t-${DARE_TEST_HOST_ID:-$NAME}"

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -d "$ROOT" ] || die "private directory $ROOT does not exist"
case "$ROOT" in /*/*) ;; *) die "refusing suspicious private directory '$ROOT'" ;; esac

# ---------------------------------------------------------------- network
# Serialised with host-down.sh --bridge, so that the shared bridge is never
# deleted between its creation here and this host's namespace appearing.
exec 9>"$(dirname "$ROOT")/.bridge.lock"
flock 9
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  # Another host may be creating it at the same moment: tolerate that.
  ip link add "$BRIDGE" type bridge 2>/dev/null || ip link show "$BRIDGE" >/dev/null
fi
# Bridged frames must not be run through the root namespace's iptables
# (br_netfilter + a FORWARD DROP policy would cut hosts off from each other).
ip link set "$BRIDGE" type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0 2>/dev/null || true
ip addr replace "$BRIDGE_ADDRESS/$PREFIXLEN" dev "$BRIDGE"
ip link set "$BRIDGE" up

ip netns add "$NS"
# The host's MAC is derived from its address, so that a reused address
# (a host restarted under the same name) keeps its MAC and no neighbour cache
# anywhere points at a vanished interface.
IFS=. read -r _ _ o3 o4 <<<"$ADDRESS"
MAC=$(printf '02:da:7e:00:%02x:%02x' "$o3" "$o4")
ip neigh flush to "$ADDRESS" dev "$BRIDGE" 2>/dev/null || true
ip link add "$VETH" type veth peer name eth0 netns "$NS"
ip -n "$NS" link set eth0 address "$MAC"
ip link set "$VETH" master "$BRIDGE"
ip link set "$VETH" up
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$ADDRESS/$PREFIXLEN" dev eth0
ip -n "$NS" link set eth0 up
flock -u 9
exec 9>&-
# No default route on purpose: a test host reaches its peers and the test
# process (the bridge address), nothing else.

# ------------------------------------------------------------ private tree
cd "$ROOT"
mkdir -p usr/local/bin var root home opt srv mnt tmp run
chmod 0700 root
chmod 1777 tmp
cp -a /etc etc
rm -f etc/ssh/ssh_host_*_key etc/ssh/ssh_host_*_key.pub
rm -rf etc/ssh/sshd_config.d
mkdir -p var/lib/dpkg var/log var/backups var/cache var/spool var/mail var/local var/opt var/tmp run/lock run/sshd
chmod 1777 var/tmp run/lock
chmod 0755 run/sshd
ln -sfn /run var/run
ln -sfn /run/lock var/lock
: >var/log/dare-stub-calls.log
chmod 0666 var/log/dare-stub-calls.log
printf '%s\n' "$AUTHORIZED_KEY" >run/dare-authorized-key

echo "$NAME" >etc/hostname
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >etc/machine-id
echo >>etc/machine-id
{
  echo "127.0.0.1 localhost"
  echo "::1 localhost ip6-localhost ip6-loopback"
  for p in $PEERS; do
    echo "${p#*=} ${p%%=*}"
  done
} >etc/hosts
rm -f etc/resolv.conf
: >etc/resolv.conf

ssh-keygen -q -t ed25519 -N '' -C "root@$NAME" -f etc/ssh/ssh_host_ed25519_key
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo "PATH=\"$SAFE_PATH\"" >etc/environment
cat >etc/ssh/sshd_config <<EOF
# dare test host $NAME (generated by tests/hosts/host-up.sh)
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes yes
UsePAM yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding yes
MaxStartups 200:30:400
MaxSessions 100
LogLevel VERBOSE
SetEnv PATH=$SAFE_PATH
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
# Containers usually cannot write /proc/self/loginuid: keep it, but optional.
sed -i -E 's/^(session[[:space:]]+)required([[:space:]]+pam_loginuid\.so)/\1optional\2/' etc/pam.d/sshd

NEWROOT="$(dirname "$ROOT")/.newroot"
mkdir -p "$NEWROOT"

exec ip netns exec "$NS" unshare --mount --uts --propagation private -- \
  /bin/bash "$SELF" --inside "$NAME" "$ROOT" "$NEWROOT" "$LOGIN"
