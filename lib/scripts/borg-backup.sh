#!/bin/bash
# The daily host backup, run by dare-borg-backup.service (installed as /usr/local/bin/dare-borg-backup).
# Environment (EnvironmentFile /etc/dare/borg/borg.env): BORG_REPO, BORG_PASSCOMMAND, BORG_RSH,
# BORG_BASE_DIR, DARE_BORG_PATHS, DARE_BORG_EXCLUDES (pattern file), DARE_BORG_KEEP_DAILY/WEEKLY/MONTHLY.
set -euo pipefail

: "${BORG_REPO:?}" "${DARE_BORG_PATHS:?}" "${DARE_BORG_EXCLUDES:?}"
read -r -a roots <<<"$DARE_BORG_PATHS"
mapfile -t excluded < <(grep -v '^[[:space:]]*$' "$DARE_BORG_EXCLUDES")

# True when path $1 is one of the other arguments or lies below one.
below() {
  local path=$1 top
  shift
  for top in "$@"; do
    case "$path/" in "${top%/}/"*) return 0 ;; esac
  done
  return 1
}

# The host's own file systems only: borg create runs with --one-file-system, and every other mount
# below the saved paths is excluded by name (a bind mount repeats a directory of the same device, which
# --one-file-system alone would follow): the kubelet's and CSI's volume mounts, network and memory file
# systems, bind mounts. The host's other disk file systems below those paths (a separate /var or
# /home, btrfs subvolumes) are saved as paths of their own, unless they lie under an excluded path.
paths=("${roots[@]}")
mounts=()
while read -r target fstype source fsroot; do
  target=$(printf '%b' "$target")
  below "$target" "${paths[@]}" || continue
  below "$target" "${excluded[@]}" && continue
  for p in "${paths[@]}"; do [ "$p" = "$target" ] && continue 2; done
  own=no
  case "$fstype" in ext2 | ext3 | ext4 | xfs | btrfs)
    # A bind mount shows the directory it repeats as its root; a btrfs subvolume is a file system of its own.
    case "$source" in /dev/*) [ "$fsroot" = / ] || [ "$fstype" = btrfs ] && own=yes ;; esac ;;
  esac
  if [ "$own" = yes ]; then
    paths+=("$target")
  else
    mounts+=(--exclude "pp:$target")
  fi
done < <(findmnt -rn -o TARGET,FSTYPE,SOURCE,FSROOT)

# borg's exit status 1 is a warning (a file changed while being read): the archive is still good.
tolerate_warning() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "dare-borg-backup: $1 $2 failed with status $rc" >&2
    exit "$rc"
  fi
}

tolerate_warning borg create --stats --show-rc --compression zstd,3 --one-file-system --exclude-caches \
  --exclude-from "$DARE_BORG_EXCLUDES" "${mounts[@]}" "::{hostname}-{now:%Y-%m-%dT%H:%M:%S}" "${paths[@]}"
tolerate_warning borg prune --stats --show-rc --glob-archives '{hostname}-*' \
  --keep-daily "${DARE_BORG_KEEP_DAILY:-7}" --keep-weekly "${DARE_BORG_KEEP_WEEKLY:-4}" \
  --keep-monthly "${DARE_BORG_KEEP_MONTHLY:-6}"
# Since borg 1.2, prune only marks space free; compact returns it.
tolerate_warning borg compact
