#!/bin/bash
# Host backups with BorgBackup: installs borg, this host's own SSH key (the repository server confines
# it to this host's repository: `borg serve --restrict-to-path <path>/<DARE_HOST>`) and the repository
# passphrase, the backup script and its systemd service + timer, and initialises this host's
# repository (<BORG_REPO_BASE>/<DARE_HOST>) once. Rerunning changes nothing but files whose content changed.
#
# Parameters (environment):
#   DARE_HOST              this host's name; its repository is BORG_REPO_BASE/DARE_HOST
#   BORG_REPO_BASE         user@host:path of the repository server
#   BORG_PASSPHRASE        passphrase of the repository key (secret)
#   BORG_SSH_PRIVATE_KEY   this host's OpenSSH private key for the repository server (secret)
#   BORG_BACKUP_SCRIPT     text of the backup script (components/scripts/borg-backup.sh)
#   BORG_SERVICE_UNIT      text of dare-borg-backup.service
#   BORG_TIMER_UNIT        text of dare-borg-backup.timer
#   BORG_PATHS             space-separated paths to back up (/)
#   BORG_EXCLUDES          exclusion patterns, one per line
#   BORG_KEEP_DAILY, BORG_KEEP_WEEKLY, BORG_KEEP_MONTHLY   prune policy
set -euo pipefail

CONF=/etc/dare/borg
SCRIPT=/usr/local/bin/dare-borg-backup
UNIT_DIR=/etc/systemd/system

for var in DARE_HOST BORG_REPO_BASE BORG_PASSPHRASE BORG_SSH_PRIVATE_KEY BORG_BACKUP_SCRIPT BORG_SERVICE_UNIT \
  BORG_TIMER_UNIT BORG_PATHS BORG_EXCLUDES BORG_KEEP_DAILY BORG_KEEP_WEEKLY BORG_KEEP_MONTHLY; do
  if [ -z "${!var:-}" ]; then
    echo "borg-setup: parameter $var is empty" >&2
    exit 2
  fi
done

# borg from Ubuntu 24.04 (noble, universe), at the release's version (packages.ubuntu.com/noble/borgbackup:
# 1.2.8-1), pinned and held like kubeadm: an `apt upgrade` never moves the hosts' borg under their
# repositories, and every host runs the same one. The noble release pocket never changes, so this version
# stays installable; raising it (a security update in noble-updates) is an edit here, which reruns the step.
BORG_VERSION=1.2.8-1
# dpkg's status reads "hold ok installed <version>" once apt-mark held the package: anything else installs.
if ! dpkg-query -W -f='${Status} ${Version}\n' borgbackup 2>/dev/null | grep -qx "hold ok installed ${BORG_VERSION}"; then
  echo "borg-setup: installing borgbackup ${BORG_VERSION}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-change-held-packages "borgbackup=${BORG_VERSION}"
  apt-mark hold borgbackup
fi

# Writes stdin to $1 with mode $2, only when the content differs (so reruns leave mtimes alone).
put() {
  local target=$1 mode=$2 tmp
  tmp=$(mktemp "$target.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$target"
    echo "borg-setup: wrote $target"
  fi
}

umask 077
install -d -m 0700 "$CONF"
printf '%s\n' "$BORG_PASSPHRASE" | put "$CONF/passphrase" 0600
printf '%s\n' "$BORG_SSH_PRIVATE_KEY" | put "$CONF/id_ed25519" 0600
printf '%s\n' "$BORG_EXCLUDES" | put "$CONF/excludes" 0600
# systemd's EnvironmentFile and bash both read single-quoted values.
{
  printf "BORG_REPO='%s/%s'\n" "$BORG_REPO_BASE" "$DARE_HOST"
  printf "BORG_PASSCOMMAND='cat %s/passphrase'\n" "$CONF"
  printf "BORG_RSH='ssh -i %s/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s/known_hosts'\n" "$CONF" "$CONF"
  printf "BORG_BASE_DIR='/var/lib/dare-borg'\n"
  printf "DARE_BORG_PATHS='%s'\n" "$BORG_PATHS"
  printf "DARE_BORG_EXCLUDES='%s/excludes'\n" "$CONF"
  printf "DARE_BORG_KEEP_DAILY='%s'\nDARE_BORG_KEEP_WEEKLY='%s'\nDARE_BORG_KEEP_MONTHLY='%s'\n" \
    "$BORG_KEEP_DAILY" "$BORG_KEEP_WEEKLY" "$BORG_KEEP_MONTHLY"
} | put "$CONF/borg.env" 0600

umask 022
install -d -m 0755 "$(dirname "$SCRIPT")" "$UNIT_DIR"
printf '%s\n' "$BORG_BACKUP_SCRIPT" | put "$SCRIPT" 0755
printf '%s\n' "$BORG_SERVICE_UNIT" | put "$UNIT_DIR/dare-borg-backup.service" 0644
printf '%s\n' "$BORG_TIMER_UNIT" | put "$UNIT_DIR/dare-borg-backup.timer" 0644

# borg init once: an existing repository is left alone, any other failure stops the step.
set -a
# shellcheck disable=SC1091
. "$CONF/borg.env"
set +a
install -d -m 0700 "$BORG_BASE_DIR"
errors=$(mktemp)
if borg info >/dev/null 2>"$errors"; then
  echo "borg-setup: repository $BORG_REPO exists"
elif grep -qE 'does not exist|is not a valid repository' "$errors"; then
  borg init --encryption=repokey-blake2 --make-parent-dirs
  echo "borg-setup: initialised $BORG_REPO"
else
  cat "$errors" >&2
  rm -f "$errors"
  exit 1
fi
rm -f "$errors"

systemctl daemon-reload
systemctl enable --now dare-borg-backup.timer
