#!/bin/bash
# On a control plane, daily from dare-kubeadm-certs.timer (installed as /usr/local/bin/dare-kubeadm-certs by
# k8s-certs-setup.sh): renews kubeadm's certificates well before they expire, not only as a side effect of
# an upgrade, and exports their expiry dates to node-exporter's textfile collector.
#
# kubeadm's certificates (API server, etcd, front proxy, the kubeconfigs admin.conf, super-admin.conf,
# controller-manager.conf, scheduler.conf) are valid one year. When any of them that kubeadm manages expires
# within RENEW_WITHIN_DAYS, `kubeadm certs renew all` renews them all, and the control-plane static pods are
# restarted the way kubernetes.io's "Certificate Management with kubeadm" (Manual certificate renewal) says:
# components do not all reload certificates, and a static pod restarts when its manifest leaves
# /etc/kubernetes/manifests for the kubelet's fileCheckFrequency (20 s) and comes back. One component at a
# time, each back and Ready before the next; control planes run this at different hours (their timers).
# Guarded: nothing due, nothing renewed or restarted; `--check-only` never renews (the setup step runs it).
#
# A restart that fails leaves the components still to restart in $PENDING: the next run restarts them
# first (the certificates are renewed by then, so nothing else would), and fails until they are back.
#
# Env (/etc/dare/kubeadm-certs.env): NODE_NAME, RENEW_WITHIN_DAYS, TEXTFILE_DIR;
#      optional FILE_CHECK_SECONDS (20), RESTART_TIMEOUT (300 s per component)
set -euo pipefail
: "${NODE_NAME:?}" "${RENEW_WITHIN_DAYS:?}" "${TEXTFILE_DIR:?}"
FILE_CHECK_SECONDS=${FILE_CHECK_SECONDS:-20}
RESTART_TIMEOUT=${RESTART_TIMEOUT:-300}
export KUBECONFIG=/etc/kubernetes/admin.conf
MANIFESTS=/etc/kubernetes/manifests
PENDING=/var/lib/dare/kubeadm-certs/restart-pending
# etcd last: the others are back (and the API reachable again) before this member leaves etcd for a moment.
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler etcd)
check_only=false
[ "${1:-}" != "--check-only" ] || check_only=true

# "<kind> <name> <expiry, seconds since the epoch>" per certificate kubeadm manages on this host (kind:
# certificate or authority); externally managed and missing ones are left out. kubeadm's structured output
# (output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo: certificates[] and certificateAuthorities[] of
# {name, expirationDate (RFC 3339), residualTime, externallyManaged, caName, missing};
# kubernetes/kubernetes cmd/kubeadm/app/apis/output/v1alpha3/types.go).
expiries() {
  local listing kind name date external missing
  listing=$(kubeadm certs check-expiration -o jsonpath='{range .certificates[*]}certificate {.name} {.expirationDate} {.externallyManaged} {.missing}{"\n"}{end}{range .certificateAuthorities[*]}authority {.name} {.expirationDate} {.externallyManaged} {.missing}{"\n"}{end}')
  while read -r kind name date external missing; do
    [ -n "$kind" ] || continue
    if [ "$external" = true ] || [ "$missing" = true ]; then continue; fi
    echo "$kind $name $(date -u -d "$date" +%s)"
  done <<<"$listing"
}

# Writes the textfile atomically (node-exporter must never read half a file), readable by node-exporter's user.
export_metrics() {
  local now=$1 listing=$2 tmp
  install -d -m 0755 "$TEXTFILE_DIR"
  tmp=$(mktemp "$TEXTFILE_DIR/.dare_kubeadm_certificates.XXXXXX")
  {
    echo "# HELP dare_kubeadm_certificate_expiry_timestamp_seconds When a certificate kubeadm manages on this control plane expires (kubeadm certs check-expiration)."
    echo "# TYPE dare_kubeadm_certificate_expiry_timestamp_seconds gauge"
    while read -r kind name expiry; do
      [ -n "$kind" ] || continue
      echo "dare_kubeadm_certificate_expiry_timestamp_seconds{node=\"${NODE_NAME}\",certificate=\"${name}\",authority=\"$([ "$kind" = authority ] && echo true || echo false)\"} ${expiry}"
    done <<<"$listing"
    echo "# HELP dare_kubeadm_certificate_check_timestamp_seconds When dare-kubeadm-certs last checked (and renewed what was due) without an error."
    echo "# TYPE dare_kubeadm_certificate_check_timestamp_seconds gauge"
    echo "dare_kubeadm_certificate_check_timestamp_seconds{node=\"${NODE_NAME}\"} ${now}"
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$TEXTFILE_DIR/dare_kubeadm_certificates.prom"
}

# The mirror pod of a static pod: "<uid> <Ready status>", empty while the API cannot say.
mirror_pod() {
  kubectl -n kube-system get pod "$1-${NODE_NAME}" -o jsonpath='{.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true
}

restart_static_pod() {
  local component=$1 before after deadline parked
  [ -f "$MANIFESTS/$component.yaml" ] || { echo "dare-kubeadm-certs: no $MANIFESTS/$component.yaml: not restarted" >&2; return 0; }
  before=$(mirror_pod "$component")
  parked=$(mktemp -d /etc/kubernetes/dare-restart.XXXXXX)
  mv "$MANIFESTS/$component.yaml" "$parked/"
  sleep "$FILE_CHECK_SECONDS"
  mv "$parked/$component.yaml" "$MANIFESTS/"
  rmdir "$parked"
  deadline=$((SECONDS + RESTART_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    after=$(mirror_pod "$component")
    if [ -n "$after" ] && [ "${after%% *}" != "${before%% *}" ] && [ "${after##* }" = True ]; then
      echo "dare-kubeadm-certs: $component restarted with the renewed certificates"
      return 0
    fi
    sleep 5
  done
  echo "dare-kubeadm-certs: $component is not Ready again within ${RESTART_TIMEOUT}s after its restart; look at 'crictl ps -a --name $component' and the kubelet's log" >&2
  return 1
}

# Restarts the components listed in $PENDING, one at a time, each struck off once it is back.
restart_pending() {
  local component components
  mapfile -t components <"$PENDING"
  for component in "${components[@]}"; do
    [ -n "$component" ] || continue
    restart_static_pod "$component"
    sed -i "/^${component}\$/d" "$PENDING"
  done
  rm -f "$PENDING"
}

if [ -s "$PENDING" ] && [ "$check_only" = false ]; then
  echo "dare-kubeadm-certs: restarting what an earlier renewal left: $(tr '\n' ' ' <"$PENDING")"
  restart_pending
fi
now=$(date -u +%s)
listing=$(expiries)
if [ -z "$listing" ]; then
  echo "dare-kubeadm-certs: kubeadm reported no certificate" >&2
  exit 1
fi
due_by=$((now + RENEW_WITHIN_DAYS * 86400))
due=$(awk -v by="$due_by" '$1 == "certificate" && $3 <= by { print $2 }' <<<"$listing" | tr '\n' ' ')
if [ -n "$due" ] && [ "$check_only" = false ]; then
  echo "dare-kubeadm-certs: expiring within ${RENEW_WITHIN_DAYS} days: ${due}; renewing all"
  kubeadm certs renew all
  install -d -m 0755 "$(dirname "$PENDING")"
  printf '%s\n' "${COMPONENTS[@]}" >"$PENDING"
  restart_pending
  listing=$(expiries)
elif [ -n "$due" ]; then
  echo "dare-kubeadm-certs: expiring within ${RENEW_WITHIN_DAYS} days: ${due}; the daily timer renews them"
else
  echo "dare-kubeadm-certs: no certificate expires within ${RENEW_WITHIN_DAYS} days: nothing to renew"
fi
export_metrics "$now" "$listing"
