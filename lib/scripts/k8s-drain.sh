#!/bin/bash
# On the first control plane, around a worker's upgrade (k8s-upgrade.sh on the worker): DRAIN_ACTION=drain
# cordons and drains the worker before, DRAIN_ACTION=uncordon lets it take pods again after. The drain runs
# here, with this host's admin.conf, so no admin credential is ever sent to a worker.
# Guarded: a node whose kubelet already reports KUBERNETES_VERSION (or that has not joined) is not
# drained; only a node this step drained (annotation dare.io/upgrade-drain) is uncordoned, so a node an
# operator cordoned stays cordoned.
#
# Env: DRAIN_ACTION (drain|uncordon), NODE_NAME, KUBERNETES_VERSION; API_ENDPOINT (admin.conf's server, for the
#      record: the step depends on it so the API outlives the drain)
set -euo pipefail
: "${DRAIN_ACTION:?}" "${NODE_NAME:?}" "${KUBERNETES_VERSION:?}"
export KUBECONFIG=/etc/kubernetes/admin.conf
mark=dare.io/upgrade-drain

case "$DRAIN_ACTION" in
  drain)
    if ! kubelet=$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}' 2>/dev/null); then
      echo "${NODE_NAME}: not a node yet: nothing to drain"
      exit 0
    fi
    if [ "$kubelet" = "v${KUBERNETES_VERSION}" ]; then
      echo "${NODE_NAME}: kubelet at ${kubelet}: no drain"
      exit 0
    fi
    echo "${NODE_NAME}: drain for the upgrade ${kubelet} -> v${KUBERNETES_VERSION}"
    kubectl annotate node "$NODE_NAME" --overwrite "${mark}=v${KUBERNETES_VERSION}"
    kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout=600s
    ;;
  uncordon)
    if ! marked=$(kubectl get node "$NODE_NAME" -o jsonpath='{.metadata.annotations.dare\.io/upgrade-drain}' 2>/dev/null); then
      echo "${NODE_NAME}: not a node: nothing to uncordon"
      exit 0
    fi
    if [ -z "$marked" ]; then
      echo "${NODE_NAME}: not drained for an upgrade: left as it is"
      exit 0
    fi
    kubectl uncordon "$NODE_NAME"
    kubectl annotate node "$NODE_NAME" "${mark}-"
    echo "${NODE_NAME}: uncordoned after the upgrade to ${marked}"
    ;;
  *) echo "DRAIN_ACTION must be drain or uncordon, not ${DRAIN_ACTION}" >&2; exit 2 ;;
esac
