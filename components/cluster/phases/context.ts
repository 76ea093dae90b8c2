/**
 * What every phase of the cluster bootstrap shares: the hosts in their roles, how each is reached, the
 * API's endpoint, kubeadm's cluster settings, and the factory that declares a host step. A phase reads
 * these and the outputs of the earlier phases it names; it never writes anything another phase reads.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesClusterArgs } from "../../cluster";
import { hostStep, HostRef, SshAccess } from "../../../lib/host-step";
import { ClusterNode } from "../../../lib/host-plan";
import { ApiEndpoint, Host } from "../../../lib/hosts";
import { ClusterSettings } from "../kubeadm-config";

/** One step per host, keyed by host name, in declaration order. */
export type HostSteps = Map<string, command.remote.Command>;

/** Declares one host step of the cluster: on `node`, named `k8s-<node>-<stepName>`, after `dependsOn`. */
export type StepFactory = (
  node: ClusterNode,
  stepName: string,
  script: string,
  env: Record<string, pulumi.Input<string>>,
  dependsOn: pulumi.Resource[],
  extra?: { deleteScript?: string; triggers?: pulumi.Input<unknown>[]; rerunOnNewMachine?: boolean },
) => command.remote.Command;

export interface ClusterContext {
  /** The component's name: the prefix of the resources a phase makes besides its steps (random token, keys). */
  name: string;
  /** The component those resources belong to. */
  parent: pulumi.Resource;
  /** The cluster's arguments, already validated by KubernetesCluster. */
  args: KubernetesClusterArgs;
  /** Days before expiry that certificates are renewed (args.certificateRenewalDays or its default). */
  renewalDays: number;
  /** Every host, control planes first. */
  nodes: ClusterNode[];
  /** The control plane that runs `kubeadm init`; every step that needs admin.conf runs here. */
  first: ClusterNode;
  /** Every host but `first`: the ones that join. */
  others: ClusterNode[];
  controlPlanes: ClusterNode[];
  workers: ClusterNode[];
  /** A host's addresses from the IaaS layer (that host's machine only). */
  hostOf: (node: ClusterNode) => pulumi.Output<Host>;
  privateAddress: (node: ClusterNode) => pulumi.Output<string>;
  api: pulumi.Output<ApiEndpoint>;
  /**
   * `<private address>:<port>` of the API. Steps that reach the API (kubeadm, kubectl) take it as a
   * parameter: then they depend on the load balancer, which a destroy or scale-in removes only after them.
   */
  apiEndpoint: pulumi.Output<string>;
  /** kubeadm's cluster-wide settings. */
  settings: pulumi.Output<ClusterSettings>;
  /** Declares a host step (hostStep with the cluster's SSH access, recorder and parent). */
  step: StepFactory;
}

/** The context of `args`' cluster, whose steps are children of `parent`. */
export function clusterContext(name: string, args: KubernetesClusterArgs, renewalDays: number, parent: pulumi.Resource): ClusterContext {
  const access: SshAccess = {
    privateKey: args.sshPrivateKey,
    bastion: args.bastion,
    bastionPrivateKey: args.bastionPrivateKey,
    stepRecorder: args.stepRecorder,
  };
  const api = pulumi.output(args.apiServer);
  const hostOf = (node: ClusterNode): pulumi.Output<Host> => pulumi.output(args.hosts[node.name]);
  const ref = (node: ClusterNode): HostRef => ({ name: node.name, host: hostOf(node) });
  const step: StepFactory = (node, stepName, script, env, dependsOn, extra = {}) =>
    hostStep("k8s", { host: ref(node), step: stepName, script, env, ...extra }, access, { parent, dependsOn });
  const [first, ...others] = args.nodes;
  return {
    name,
    parent,
    args,
    renewalDays,
    nodes: args.nodes,
    first,
    others,
    controlPlanes: args.nodes.filter((n) => n.role === "control-plane"),
    workers: args.nodes.filter((n) => n.role === "worker"),
    hostOf,
    privateAddress: (node) => hostOf(node).apply((h) => h.privateAddress),
    api,
    apiEndpoint: api.apply((a) => `${a.privateAddress}:${a.port}`),
    settings: api.apply((apiServer) => ({
      clusterName: args.clusterName,
      kubernetesVersion: args.kubernetesVersion,
      apiServer,
      network: args.network,
      externalCloudProvider: args.externalCloudProvider ?? false,
      controlPlaneExtraArgs: args.controlPlaneExtraArgs,
    })),
    step,
  };
}
