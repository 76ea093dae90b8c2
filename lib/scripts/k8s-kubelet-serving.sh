#!/bin/bash
# On the first control plane, after a node has joined (or, for itself, after init): approves that node's
# own request for a kubelet serving certificate (the kubelet runs with serverTLSBootstrap, so it serves
# nothing until one is issued, and the API server verifies it against the cluster CA). Approved is only a
# CertificateSigningRequest that is pending, for signer kubernetes.io/kubelet-serving, made by
# system:node:NODE_NAME itself, for subject CN=system:node:NODE_NAME O=system:nodes, and whose every DNS
# name is the node's name and every IP address one of NODE_ADDRESSES (what the IaaS layer knows of the
# host, not what the node reports of itself). Anything else is left pending and named.
# Guarded: when the API server already reaches the kubelet through its verified TLS (nodes/proxy), there
# is nothing to do; otherwise it waits up to CSR_TIMEOUT seconds for the request and for the kubelet to
# serve the issued certificate. Either way it records the node's addresses in $RECORDS/NODE_NAME.
#
# Renewals (KUBELET_SERVING_MODE=renewals; hourly from dare-kubelet-serving.timer, installed by
# k8s-certs-setup.sh as /usr/local/bin/dare-kubelet-serving): a kubelet asks again before its certificate
# expires (one year). Each pending kubelet-serving request is approved under the same checks, for the node
# its requestor names, when that Node exists and this step recorded its addresses; any other is named and
# left pending. The checks are those of kubelet-csr-approver (postfinance/kubelet-csr-approver, README
# "Parameters": signer, requestor prefixed system:node:, CN equal to it, DNS names the node's, IP addresses
# in allowed sets), with the addresses the IaaS layer gave instead of configured IP prefixes.
#
# Env: NODE_NAME, NODE_ADDRESSES (space-separated), CSR_TIMEOUT (seconds); NODE_MACHINE_ID (a re-created
#      machine asks again); API_ENDPOINT (admin.conf's server, for the record, as in k8s-drain.sh);
#      or KUBELET_SERVING_MODE=renewals alone
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
signer=kubernetes.io/kubelet-serving
# One file per joined node, its addresses; KUBELET_SERVING_RECORDS moves it (tests on the machine itself).
RECORDS=${KUBELET_SERVING_RECORDS:-/etc/dare/kubelet-serving/nodes}

serving() { kubectl get --raw "/api/v1/nodes/${NODE_NAME}/proxy/healthz" >/dev/null 2>&1; }

# valid CSR_NAME: 0 when the request is the node's own, for its own names and addresses only.
valid() {
  local name=$1 text subject sans entry
  text=$(kubectl get csr "$name" -o jsonpath='{.spec.request}' | base64 -d | openssl req -noout -text -nameopt RFC2253) || return 1
  subject=$(sed -n 's/^ *Subject: *//p' <<<"$text")
  if [ "$subject" != "CN=system:node:${NODE_NAME},O=system:nodes" ] && [ "$subject" != "O=system:nodes,CN=system:node:${NODE_NAME}" ]; then
    echo "${NODE_NAME}: not approving ${name}: subject '${subject}'" >&2
    return 1
  fi
  sans=$(grep -A1 'X509v3 Subject Alternative Name' <<<"$text" | tail -n 1 | tr -d ' ')
  if [ -z "$sans" ]; then echo "${NODE_NAME}: not approving ${name}: no names or addresses" >&2; return 1; fi
  IFS=, read -ra entries <<<"$sans"
  for entry in "${entries[@]}"; do
    case "$entry" in
      "DNS:${NODE_NAME}") ;;
      IPAddress:*) if ! grep -qxF -- "${entry#IPAddress:}" <<<"$(tr ' ' '\n' <<<"$NODE_ADDRESSES")"; then
          echo "${NODE_NAME}: not approving ${name}: address ${entry#IPAddress:} is not the host's (${NODE_ADDRESSES})" >&2
          return 1
        fi ;;
      *) echo "${NODE_NAME}: not approving ${name}: ${entry} is not the node's name" >&2; return 1 ;;
    esac
  done
}

# Pending requests: name, signer, requestor, conditions (empty while pending).
pending() {
  kubectl get csr -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.signerName}{" "}{.spec.username}{" "}{.status.conditions[*].type}{"\n"}{end}'
}

if [ "${KUBELET_SERVING_MODE:-join}" = renewals ]; then
  approved=0
  while read -r name csr_signer user conditions; do
    if [ -z "$name" ] || [ "$csr_signer" != "$signer" ] || [ -n "$conditions" ]; then continue; fi
    NODE_NAME=${user#system:node:}
    if [ "$NODE_NAME" = "$user" ] || ! [[ "$NODE_NAME" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || [ ! -f "$RECORDS/$NODE_NAME" ]; then
      echo "renewals: not approving ${name}: requested by '${user}', not a node this cluster's program joined" >&2
      continue
    fi
    if ! kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
      echo "renewals: not approving ${name}: node ${NODE_NAME} does not exist" >&2
      continue
    fi
    NODE_ADDRESSES=$(cat "$RECORDS/$NODE_NAME")
    if valid "$name"; then
      kubectl certificate approve "$name"
      approved=$((approved + 1))
    fi
  done < <(pending)
  echo "renewals: approved ${approved} kubelet serving certificate request(s)"
  exit 0
fi

: "${NODE_NAME:?}" "${NODE_ADDRESSES:?}" "${CSR_TIMEOUT:?}"
# The addresses the renewals are checked against (rewritten only when they change).
install -d -m 0755 "$RECORDS"
if [ "$(cat "$RECORDS/$NODE_NAME" 2>/dev/null)" != "$NODE_ADDRESSES" ]; then
  printf '%s\n' "$NODE_ADDRESSES" >"$RECORDS/$NODE_NAME.new"
  mv -f "$RECORDS/$NODE_NAME.new" "$RECORDS/$NODE_NAME"
fi

if serving; then
  echo "${NODE_NAME}: the kubelet serves a certificate the cluster signed: nothing to do"
  exit 0
fi
deadline=$((SECONDS + CSR_TIMEOUT))
approved=0
while [ "$SECONDS" -lt "$deadline" ]; do
  while read -r name csr_signer user conditions; do
    [ -n "$name" ] || continue
    if [ "$csr_signer" != "$signer" ] || [ "$user" != "system:node:${NODE_NAME}" ] || [ -n "$conditions" ]; then continue; fi
    if valid "$name"; then
      kubectl certificate approve "$name"
      approved=$((approved + 1))
    fi
  done < <(pending)
  if [ "$approved" -gt 0 ] && serving; then
    echo "${NODE_NAME}: kubelet serving certificate approved and served"
    exit 0
  fi
  sleep 5
done
echo "${NODE_NAME}: no kubelet serving certificate within ${CSR_TIMEOUT}s (approved ${approved} request(s));" \
  "look at 'kubectl get csr' for a request the checks above refused, and at the node's kubelet log" >&2
exit 1
