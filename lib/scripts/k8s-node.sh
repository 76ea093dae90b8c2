#!/bin/bash
# On the first control plane, for a node that has joined: labels it with its pool and, for a worker,
# the worker role (a kubelet may not set node-role labels on itself), and keeps the pool's own labels and
# taints in step with the configuration. What it set is recorded on the node (MANAGED_LABELS_ANNOTATION:
# label keys, MANAGED_TAINTS_ANNOTATION: key=value:Effect), so that a label or taint the configuration
# drops is removed, and one someone else set is never touched. Its delete script (k8s-remove-node.sh) runs
# before the host's own reset when the host leaves the configuration.
#
# Env: NODE_NAME, NODE_ROLE (control-plane|worker), NODE_POOL; NODE_LABELS (key=value words), NODE_TAINTS
#      (key=value:Effect or key:Effect words), MANAGED_LABELS_ANNOTATION, MANAGED_TAINTS_ANNOTATION
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ROLE:?}" "${NODE_POOL:?}" "${MANAGED_LABELS_ANNOTATION:?}" "${MANAGED_TAINTS_ANNOTATION:?}"
# A test may point kubectl at another API server; on a host the step's environment never sets it.
export KUBECONFIG=${KUBECONFIG:-/etc/kubernetes/admin.conf}
read -r -a wanted_labels <<<"${NODE_LABELS:-}"
read -r -a wanted_taints <<<"${NODE_TAINTS:-}"
jsonpath_key() { printf '%s' "${1//./\\.}"; }
contains() { local item=$1; shift; local x; for x in "$@"; do [ "$x" = "$item" ] && return 0; done; return 1; }

labels=("dare.io/pool=${NODE_POOL}")
if [ "$NODE_ROLE" = worker ]; then labels+=("node-role.kubernetes.io/worker="); fi
kubectl label node "$NODE_NAME" --overwrite "${labels[@]}" "${wanted_labels[@]}"

# Labels this step set before and the configuration no longer has.
previous=$(kubectl get node "$NODE_NAME" -o jsonpath="{.metadata.annotations.$(jsonpath_key "$MANAGED_LABELS_ANNOTATION")}")
wanted_keys=()
for l in "${wanted_labels[@]}"; do wanted_keys+=("${l%%=*}"); done
# shellcheck disable=SC2016 # a Go template for kubectl, not a shell expansion
present=$(kubectl get node "$NODE_NAME" -o go-template='{{range $k, $v := .metadata.labels}}{{$k}}{{"\n"}}{{end}}')
for key in ${previous//,/ }; do
  if ! contains "$key" "${wanted_keys[@]}" && grep -qxF -- "$key" <<<"$present"; then
    echo "${NODE_NAME}: label ${key} no longer configured: removed"
    kubectl label node "$NODE_NAME" "${key}-"
  fi
done

# Taints: the node's as key=value:Effect, then those to drop (set by this step before) and those to add.
current=$(kubectl get node "$NODE_NAME" -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect}{"\n"}{end}' | sed 's/=:/:/')
previous=$(kubectl get node "$NODE_NAME" -o jsonpath="{.metadata.annotations.$(jsonpath_key "$MANAGED_TAINTS_ANNOTATION")}")
for taint in ${previous//,/ }; do
  if ! contains "$taint" "${wanted_taints[@]}" && grep -qxF -- "$taint" <<<"$current"; then
    echo "${NODE_NAME}: taint ${taint} no longer configured: removed"
    # key:Effect- removes the taint with that key and effect, whatever its value.
    kubectl taint node "$NODE_NAME" "${taint%%[=:]*}:${taint##*:}-"
  fi
done
for taint in "${wanted_taints[@]}"; do
  if ! grep -qxF -- "$taint" <<<"$current"; then
    echo "${NODE_NAME}: taint ${taint}"
    kubectl taint node "$NODE_NAME" "$taint" --overwrite
  fi
done

# What this step now manages; rewritten only when it changed, so a rerun changes nothing.
record() {
  local annotation=$1 value=$2 now
  now=$(kubectl get node "$NODE_NAME" -o jsonpath="{.metadata.annotations.$(jsonpath_key "$annotation")}")
  if [ "$now" != "$value" ]; then kubectl annotate node "$NODE_NAME" --overwrite "${annotation}=${value}"; fi
}
keys=${wanted_keys[*]}
taints=${wanted_taints[*]}
record "$MANAGED_LABELS_ANNOTATION" "${keys// /,}"
record "$MANAGED_TAINTS_ANNOTATION" "${taints// /,}"
