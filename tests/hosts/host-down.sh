#!/bin/bash
# Tear down one test host (idempotent; also cleans what a crashed run left):
# kills every process in its network namespace (its sshd, SSH sessions,
# anything started by exec), deletes the namespace (which destroys its veth
# pair) and the root-side veth if still there, and removes its private tree.
#
# Usage (as root; normally called by tests/hosts/harness.ts):
#   host-down.sh NAME ROOTDIR [VETH]
#   host-down.sh --bridge BRIDGE BASEDIR
#       delete the bridge if no dare-t-* namespace is left
set -uo pipefail

if [ "${1:-}" = "--bridge" ]; then
  BRIDGE=${2:?bridge name}
  BASE=${3:?base directory}
  mkdir -p "$BASE"
  exec 9>"$BASE/.bridge.lock"
  flock 9
  if ! ip netns list 2>/dev/null | grep -q '^dare-t-'; then
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  exit 0
fi

NAME=${1:?host name}
ROOT=${2:?private directory}
VETH=${3:-}
NS="dare-t-$NAME"

if ip netns list 2>/dev/null | grep -qE "^$NS( |\$)"; then
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 40); do
      pids=$(ip netns pids "$NS" 2>/dev/null || true)
      [ -z "$pids" ] && break
      sleep 0.05
    done
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      for _ in $(seq 1 40); do
        [ -z "$(ip netns pids "$NS" 2>/dev/null || true)" ] && break
        sleep 0.05
      done
    fi
  fi
  # Deleting the pair explicitly is synchronous; the namespace's own teardown
  # is not, and its root-side veth could otherwise linger for a moment.
  ip -n "$NS" link del eth0 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
fi
# An sshd whose namespace handle was already deleted by an interrupted run.
if [ -f "$ROOT/run/sshd.pid" ]; then
  pid=$(cat "$ROOT/run/sshd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] &&
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = / ] &&
    [ -f "/proc/$pid/root/run/sshd.pid" ] &&
    [ "$(cat "/proc/$pid/root/run/sshd.pid" 2>/dev/null)" = "$pid" ] &&
    [ "/proc/$pid/root/run/sshd.pid" -ef "$ROOT/run/sshd.pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
if [ -n "$VETH" ] && ip link show "$VETH" >/dev/null 2>&1; then
  ip link del "$VETH" 2>/dev/null || true
fi

case "$ROOT" in
  /*/*/*) rm -rf --one-file-system "$ROOT" ;;
  *) echo "host-down: refusing to remove suspicious directory '$ROOT'" >&2; exit 1 ;;
esac
exit 0
