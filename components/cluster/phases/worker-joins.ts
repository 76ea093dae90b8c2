/** The workers join, all at once. */
import { ClusterPki } from "../pki";
import { ClusterContext, HostSteps } from "./context";
import { ControlPlanesJoined } from "./control-plane-joins";
import { Initialised, JoinToken } from "./init";
import { kubeadmJoin } from "./kubeadm-join";
import { ControlPlanesUpgraded } from "./upgrades";

/**
 * Each worker's join depends on its own `prepare` and `kubeletConfig` steps, on `init` and the `token`,
 * on the last control plane's join, and on the control planes' upgrades (so a worker added with a
 * version raise never runs a kubelet newer than the API); never on another worker. Returns the join
 * step per worker.
 */
export function joinWorkers(
  ctx: ClusterContext,
  {
    prepare,
    kubeletConfig,
    clusterPki,
    init,
    token,
    controlPlanesJoined,
    controlPlanesUpgraded,
  }: {
    prepare: HostSteps;
    kubeletConfig: HostSteps;
    clusterPki: ClusterPki;
    init: Initialised;
    token: JoinToken;
    controlPlanesJoined: ControlPlanesJoined;
    controlPlanesUpgraded: ControlPlanesUpgraded;
  },
): HostSteps {
  return new Map(
    ctx.workers.map((node) => [
      node.name,
      kubeadmJoin(ctx, node, { init, pki: clusterPki }, [
        prepare.get(node.name)!,
        kubeletConfig.get(node.name)!,
        init.step,
        token.step,
        controlPlanesJoined.last,
        controlPlanesUpgraded.last,
      ]),
    ]),
  );
}
