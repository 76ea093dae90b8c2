/** Per joined host, on the first control plane: its Node's labels and taints now, drain and delete when it leaves. */
import * as command from "@pulumi/command";
import { ClusterNode } from "../../../lib/host-plan";
import {
  labelWords,
  MANAGED_LABELS_ANNOTATION,
  MANAGED_TAINTS_ANNOTATION,
  mergeNodeSettings,
  taintWords,
} from "../../../lib/node-settings";
import { ClusterContext, HostSteps } from "./context";

/**
 * A worker's labels and taints for k8s-node.sh, and the annotations where it records what it set (so it
 * removes only those it set when the configuration drops one).
 */
function nodeLabelsAndTaints(node: ClusterNode): Record<string, string> {
  const settings = node.settings ?? mergeNodeSettings(undefined, undefined);
  return {
    NODE_LABELS: labelWords(settings.labels),
    NODE_TAINTS: taintWords(settings.taints),
    MANAGED_LABELS_ANNOTATION,
    MANAGED_TAINTS_ANNOTATION,
  };
}

/**
 * Each host's node step depends on its join (`joins`: every host but the first, control planes' and
 * workers'); a control plane's also on the previous control plane's node step, so that two etcd members
 * are never removed at once. Returns the node step per joined host (deleted, draining and deleting the
 * Node, before that host resets).
 */
export function labelNodes(ctx: ClusterContext, { joins }: { joins: HostSteps }): HostSteps {
  const nodes: HostSteps = new Map();
  let previousControlPlaneNode: command.remote.Command | undefined;
  for (const member of ctx.others) {
    const isControlPlane = member.role === "control-plane";
    const labelled = ctx.step(
      ctx.first,
      `node-${member.name}`,
      "k8s-node.sh",
      {
        NODE_NAME: member.name,
        NODE_ROLE: member.role,
        NODE_POOL: member.pool,
        ...nodeLabelsAndTaints(member),
        FIRST_CONTROL_PLANE: ctx.first.name,
        // A re-created machine registers a Node without labels: label it again.
        NODE_MACHINE_ID: ctx.hostOf(member).apply((h) => h.machineId ?? ""),
        // The drain reaches the API here (admin.conf's server): taking it as a parameter keeps the load
        // balancer in place until the drain has run, on destroy and scale-in.
        API_ENDPOINT: ctx.apiEndpoint,
      },
      [joins.get(member.name)!, ...(isControlPlane && previousControlPlaneNode ? [previousControlPlaneNode] : [])],
      { deleteScript: "k8s-remove-node.sh" },
    );
    if (isControlPlane) previousControlPlaneNode = labelled;
    nodes.set(member.name, labelled);
  }
  return nodes;
}
