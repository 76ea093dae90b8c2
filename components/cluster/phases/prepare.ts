/**
 * Host preparation: packages, containerd, mirrors and the host firewall on every host, then each
 * pool's kubelet drop-in. Nothing runs before it.
 */
import * as pulumi from "@pulumi/pulumi";
import type { HostMirrors } from "../../cluster";
import { NetworkSpec } from "../../../lib/config";
import { nftablesRuleset, nodeSources } from "../host-firewall";
import { ClusterNode, firewallRules } from "../../../lib/host-plan";
import { PAUSE_IMAGE } from "../kubeadm-config";
import { KUBELET_DROPIN_DIR, KUBELET_DROPIN_FILE, kubeletDropIn } from "../../../lib/node-settings";
import { ClusterContext, HostSteps } from "./context";

/**
 * The prepare step's mirror parameters, set only when used (k8s-prepare.sh reads an unset one as upstream).
 * REGISTRY_MIRRORS: a line per registry, `<registry> <endpoint> <override_path>`: an endpoint with a path
 * names the registry API's root there (containerd docs/hosts.md, override_path), as Harbor's proxy-cache
 * projects do (/v2/<project>).
 */
export function mirrorEnv(mirrors: HostMirrors | undefined): Record<string, pulumi.Input<string>> {
  if (!mirrors) return {};
  const registryLines = Object.keys(mirrors.registries)
    .sort()
    .map((registry) => {
      const endpoint = mirrors.registries[registry];
      return `${registry} ${endpoint} ${new URL(endpoint).pathname.replace(/\/+$/, "") !== ""}`;
    });
  const env: Record<string, pulumi.Input<string>> = {};
  if (registryLines.length > 0) env.REGISTRY_MIRRORS = registryLines.join("\n");
  if (mirrors.apt.ubuntu) env.UBUNTU_APT_MIRROR = mirrors.apt.ubuntu;
  if (mirrors.apt.kubernetes) env.KUBERNETES_APT_MIRROR = mirrors.apt.kubernetes;
  if (mirrors.apt.docker) env.DOCKER_APT_MIRROR = mirrors.apt.docker;
  if (mirrors.caCertificate !== undefined) env.MIRROR_CA_CERT = mirrors.caCertificate;
  return env;
}

/**
 * Every host's preparation, all at once. Depends on nothing (each host's machine only). Its firewall
 * ruleset names the control planes' addresses, so a control plane added re-runs every control plane's
 * preparation (which the control-plane joins rely on). Returns the prepare step per host.
 */
export function prepareHosts(ctx: ClusterContext): HostSteps {
  const { args } = ctx;
  const rules = firewallRules(
    { adminCidrs: args.adminCidrs, network: args.network as NetworkSpec },
    args.apiLoadBalancer,
    args.jumpHostAddress,
  );
  // Machines the IaaS layer makes sit in the subnet; only configured (existing) hosts may sit outside
  // it, and their addresses are known from the configuration: no host's firewall waits for all machines.
  const members = pulumi.all(ctx.controlPlanes.map(ctx.privateAddress)).apply((controlPlane) => ({
    nodes: nodeSources(
      args.network.cidr,
      args.nodes.flatMap((n) => (n.privateAddress ? [n.privateAddress] : [])),
    ),
    controlPlane,
  }));
  // One ruleset per role: every worker's is the same text.
  const rulesets = new Map<ClusterNode["role"], pulumi.Output<string>>();
  const rulesetFor = (role: ClusterNode["role"]) => {
    if (!rulesets.has(role))
      rulesets.set(
        role,
        members.apply((m) => nftablesRuleset(rules, role, m, args.network.podCidr)),
      );
    return rulesets.get(role)!;
  };
  return new Map(
    ctx.nodes.map((node) => [
      node.name,
      ctx.step(
        node,
        "prepare",
        "k8s-prepare.sh",
        {
          KUBERNETES_VERSION: args.kubernetesVersion,
          PAUSE_IMAGE,
          FIREWALL_RULESET: rulesetFor(node.role),
          ...mirrorEnv(args.mirrors),
        },
        [],
      ),
    ]),
  );
}

/**
 * Per host, the kubelet's drop-in configuration with its pool's settings (none: the file is removed),
 * re-run whenever they change. Depends on `prepare` (the kubelet's package); kubeadm's init and joins
 * depend on it, so a kubelet starts with its settings. Returns the kubelet-config step per host.
 */
export function configureKubelets(ctx: ClusterContext, { prepare }: { prepare: HostSteps }): HostSteps {
  return new Map(
    ctx.nodes.map((node) => [
      node.name,
      ctx.step(
        node,
        "kubelet-config",
        "k8s-kubelet-config.sh",
        {
          NODE_NAME: node.name,
          KUBELET_DROPIN_DIR,
          KUBELET_DROPIN_FILE,
          KUBELET_CONFIG: kubeletDropIn(node.settings?.kubelet ?? {}),
        },
        [prepare.get(node.name)!],
      ),
    ]),
  );
}
