/** The other control planes join, one at a time (etcd grows by one member, keeping its majority). */
import * as command from "@pulumi/command";
import { ClusterPki } from "../pki";
import { kubeVipOf } from "./api-virtual-ip";
import { ClusterContext, HostSteps } from "./context";
import { Initialised, JoinToken } from "./init";
import { kubeadmJoin } from "./kubeadm-join";

/** The control planes joined. */
export interface ControlPlanesJoined {
  /** the join step per control plane but the first, in join order */
  joins: HostSteps;
  /** the last of them (init with a single control plane): the workers join after it */
  last: command.remote.Command;
}

/**
 * Each control plane's join depends on its own `prepare`, `kubeletConfig`, `pki` and `kubeVip` steps;
 * on every control plane's `prepare` (joining etcd, it must be admitted by their firewalls, whose
 * preparation re-runs with the new member's address); on `init` and the `token`; and on the previous
 * control plane's join (init for the second), so the joins are chained.
 */
export function joinControlPlanes(
  ctx: ClusterContext,
  {
    prepare,
    kubeletConfig,
    pki,
    kubeVip,
    clusterPki,
    init,
    token,
  }: {
    prepare: HostSteps;
    kubeletConfig: HostSteps;
    pki: HostSteps;
    kubeVip: HostSteps;
    clusterPki: ClusterPki;
    init: Initialised;
    token: JoinToken;
  },
): ControlPlanesJoined {
  const joins: HostSteps = new Map();
  let last = init.step;
  for (const node of ctx.controlPlanes.slice(1)) {
    last = kubeadmJoin(ctx, node, { init, pki: clusterPki }, [
      prepare.get(node.name)!,
      kubeletConfig.get(node.name)!,
      pki.get(node.name)!,
      ...kubeVipOf(kubeVip, node),
      ...ctx.controlPlanes.map((cp) => prepare.get(cp.name)!),
      init.step,
      token.step,
      last,
    ]);
    joins.set(node.name, last);
  }
  return { joins, last };
}
