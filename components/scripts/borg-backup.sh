#!/bin/bash
# The daily host backup, run by dare-borg-backup.service (installed as /usr/local/bin/dare-borg-backup).
# Environment (EnvironmentFile /etc/dare/borg/borg.env): BORG_REPO, BORG_PASSCOMMAND, BORG_RSH,
# BORG_BASE_DIR, DARE_BORG_PATHS, DARE_BORG_EXCLUDES (pattern file), DARE_BORG_KEEP_DAILY/WEEKLY/MONTHLY.
set -euo pipefail

: "${BORG_REPO:?}" "${DARE_BORG_PATHS:?}" "${DARE_BORG_EXCLUDES:?}"
read -r -a paths <<<"$DARE_BORG_PATHS"

# borg's exit status 1 is a warning (a file changed while being read): the archive is still good.
tolerate_warning() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "dare-borg-backup: $1 $2 failed with status $rc" >&2
    exit "$rc"
  fi
}

tolerate_warning borg create --stats --show-rc --compression zstd,3 --exclude-caches \
  --exclude-from "$DARE_BORG_EXCLUDES" "::{hostname}-{now:%Y-%m-%dT%H:%M:%S}" "${paths[@]}"
tolerate_warning borg prune --stats --show-rc --glob-archives '{hostname}-*' \
  --keep-daily "${DARE_BORG_KEEP_DAILY:-7}" --keep-weekly "${DARE_BORG_KEEP_WEEKLY:-4}" \
  --keep-monthly "${DARE_BORG_KEEP_MONTHLY:-6}"
# Since borg 1.2, prune only marks space free; compact returns it.
tolerate_warning borg compact
