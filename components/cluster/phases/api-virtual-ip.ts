/**
 * With dare:apiVirtualIp, kube-vip's static pod on every control plane, before kubeadm runs
 * there: kubeadm init and a control plane's join reach the API at the VIP, which only exists once a
 * kube-vip holds it (components/cluster/kube-vip.ts).
 */
import { kubeVipManifest } from "../kube-vip";
import { ClusterNode } from "../../../lib/host-plan";
import { ClusterContext, HostSteps } from "./context";
import * as command from "@pulumi/command";

/**
 * Depends on `prepare` (containerd, and the kubelet's static pod folder). Returns the kube-vip step per
 * control plane; empty without a virtual IP.
 */
export function placeKubeVip(ctx: ClusterContext, { prepare }: { prepare: HostSteps }): HostSteps {
  const kubeVip: HostSteps = new Map();
  const vip = ctx.args.apiVirtualIp;
  if (!vip) return kubeVip;
  const manifest = ctx.api.apply((a) => {
    // The IaaS layer made the VIP the endpoint; anything else is a wiring bug, not a configuration.
    if (a.privateAddress !== vip.address)
      throw new Error(`${ctx.name}: API endpoint ${a.privateAddress} is not the virtual IP ${vip.address}`);
    return kubeVipManifest({ address: vip.address, port: a.port, interface: vip.interface, image: vip.image });
  });
  for (const node of ctx.controlPlanes) {
    kubeVip.set(
      node.name,
      ctx.step(
        node,
        "kube-vip",
        "k8s-kube-vip.sh",
        {
          KUBE_VIP_MANIFEST: manifest,
          API_ENDPOINT: ctx.apiEndpoint,
          NODE_ADDRESS: ctx.privateAddress(node),
          NODE_NAME: node.name,
          FIRST_CONTROL_PLANE: String(node === ctx.first),
        },
        [prepare.get(node.name)!],
      ),
    );
  }
  return kubeVip;
}

/** A control plane's kube-vip step as a dependency list: empty without a virtual IP. */
export function kubeVipOf(kubeVip: HostSteps, node: ClusterNode): command.remote.Command[] {
  return kubeVip.has(node.name) ? [kubeVip.get(node.name)!] : [];
}
