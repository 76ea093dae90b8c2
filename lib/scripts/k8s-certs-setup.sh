#!/bin/bash
# On every control plane: installs the daily certificate check (dare-kubeadm-certs: kubeadm's certificates
# renewed within RENEW_WITHIN_DAYS of expiry, their expiry exported to node-exporter's textfile collector)
# and runs it once with --check-only, so the metrics exist from the start. On the first control plane also
# the hourly approval of renewed kubelet serving certificates (dare-kubelet-serving); elsewhere that is
# removed if present. Rerunning changes nothing but files whose content changed.
#
# Env: NODE_NAME; RENEW_WITHIN_DAYS; TEXTFILE_DIR; CERTS_SCRIPT, CERTS_SERVICE_UNIT, CERTS_TIMER_UNIT (texts);
#      APPROVER_SCRIPT, APPROVER_SERVICE_UNIT, APPROVER_TIMER_UNIT (texts; empty but on the first control plane)
set -euo pipefail
: "${NODE_NAME:?}" "${RENEW_WITHIN_DAYS:?}" "${TEXTFILE_DIR:?}" "${CERTS_SCRIPT:?}" "${CERTS_SERVICE_UNIT:?}" "${CERTS_TIMER_UNIT:?}"
UNIT_DIR=/etc/systemd/system
changed=false

# Writes stdin to $1 with mode $2, only when the content differs (so reruns leave mtimes alone); not in a
# pipeline, so that `changed` reaches the daemon-reload below. Texts arrive with their final newline (or
# without): written with exactly one.
put() {
  local target=$1 mode=$2 tmp
  tmp=$(mktemp "$target.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$target"
    changed=true
    echo "certs-setup: wrote $target"
  fi
}

umask 022
install -d -m 0755 /etc/dare /usr/local/bin "$UNIT_DIR" "$TEXTFILE_DIR"
put /etc/dare/kubeadm-certs.env 0644 < <(printf "NODE_NAME='%s'\nRENEW_WITHIN_DAYS='%s'\nTEXTFILE_DIR='%s'\n" "$NODE_NAME" "$RENEW_WITHIN_DAYS" "$TEXTFILE_DIR")
put /usr/local/bin/dare-kubeadm-certs 0755 <<<"${CERTS_SCRIPT%$'\n'}"
put "$UNIT_DIR/dare-kubeadm-certs.service" 0644 <<<"${CERTS_SERVICE_UNIT%$'\n'}"
put "$UNIT_DIR/dare-kubeadm-certs.timer" 0644 <<<"${CERTS_TIMER_UNIT%$'\n'}"

if [ -n "${APPROVER_SCRIPT:-}" ]; then
  put /usr/local/bin/dare-kubelet-serving 0755 <<<"${APPROVER_SCRIPT%$'\n'}"
  put "$UNIT_DIR/dare-kubelet-serving.service" 0644 <<<"${APPROVER_SERVICE_UNIT%$'\n'}"
  put "$UNIT_DIR/dare-kubelet-serving.timer" 0644 <<<"${APPROVER_TIMER_UNIT%$'\n'}"
elif [ -f "$UNIT_DIR/dare-kubelet-serving.timer" ]; then
  systemctl disable --now dare-kubelet-serving.timer
  rm -f /usr/local/bin/dare-kubelet-serving "$UNIT_DIR/dare-kubelet-serving.service" "$UNIT_DIR/dare-kubelet-serving.timer"
  changed=true
  echo "certs-setup: removed dare-kubelet-serving (the first control plane approves)"
fi

if [ "$changed" = true ]; then systemctl daemon-reload; fi
systemctl enable --now dare-kubeadm-certs.timer
if [ -n "${APPROVER_SCRIPT:-}" ]; then systemctl enable --now dare-kubelet-serving.timer; fi

# The metrics now rather than at the first timer run; never renews (the control planes' timers take turns).
set -a
# shellcheck disable=SC1091
. /etc/dare/kubeadm-certs.env
set +a
/usr/local/bin/dare-kubeadm-certs --check-only
