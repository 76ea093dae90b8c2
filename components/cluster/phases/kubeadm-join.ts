/** The `kubeadm join` step both join phases declare; each phase says what the join waits for. */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ClusterNode } from "../../../lib/host-plan";
import { joinConfig } from "../kubeadm-config";
import { ClusterPki } from "../pki";
import { ClusterContext } from "./context";
import { Initialised } from "./init";

/** `kubeadm join` of `node` (as a control plane or a worker, by its role) with `init`'s token, after `dependsOn`. */
export function kubeadmJoin(
  ctx: ClusterContext,
  node: ClusterNode,
  { init, pki }: { init: Initialised; pki: ClusterPki },
  dependsOn: pulumi.Resource[],
): command.remote.Command {
  const controlPlane = node.role === "control-plane";
  return ctx.step(
    node,
    "join",
    "k8s-kubeadm.sh",
    {
      KUBEADM_ACTION: "join",
      KUBEADM_CONFIG: pulumi
        .all([ctx.settings, ctx.privateAddress(node), pki.discoveryHash])
        .apply(([s, address, hash]) =>
          joinConfig(s, { name: node.name, privateAddress: address, settings: node.settings }, hash, controlPlane),
        ),
      BOOTSTRAP_TOKEN: init.bootstrapToken,
      NODE_NAME: node.name,
    },
    dependsOn,
    { deleteScript: "k8s-reset.sh" },
  );
}
