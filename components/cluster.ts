/**
 * Layer 2, Kubernetes: kubeadm over SSH on the IaaS layer's hosts. Yields the admin kubeconfig and
 * the `k8s.Provider` every later layer passes to its Kubernetes resources.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { CONTROL_PLANE_ROLE, DareConfig, NetworkSpec } from "./config";
import { ApiEndpoint, Host, HostRole, SshEndpoint } from "./hosts";
import { planNodes } from "./infrastructure";
import { createClusterPki, ClusterPki } from "./pki";

/** A host as known when the program is declared: enough to name its steps and order them. */
export interface ClusterNode {
  /** host name = Kubernetes node name */
  name: string;
  role: HostRole;
  /** pool name ("control-plane" for control planes) */
  pool: string;
}

export interface KubernetesClusterArgs {
  /**
   * Every host by name, role and pool, control planes first (the first one runs `kubeadm init`).
   * Plain values, so each host gets its own, stably named steps; see `clusterNodes()`.
   */
  nodes: ClusterNode[];
  /** The same hosts with their addresses, from the IaaS layer (known once the machines exist). */
  hosts: pulumi.Input<Host[]>;
  /** Where nodes (private) and operators (public) reach the Kubernetes API. */
  apiServer: pulumi.Input<ApiEndpoint>;
  /** SSH entry host for hosts without a public address; undefined when every host is reachable directly. */
  bastion: pulumi.Input<SshEndpoint | undefined>;
  /** Private key SSH logs in with (OpenSSH format, secret). */
  sshPrivateKey: pulumi.Input<string>;
  /** Kubernetes MAJOR.MINOR.PATCH, without a leading v. */
  kubernetesVersion: string;
  /** The nodes' subnet and the pod and Service ranges (the same the network layer uses). */
  network: Pick<NetworkSpec, "cidr" | "podCidr" | "serviceCidr">;
  /** Cluster name in kubeadm's configuration and in the kubeconfig. */
  clusterName: string;
}

/**
 * The hosts the IaaS layer will hand over, by name and role, known from the configuration alone:
 * the same names and order as `Infrastructure.hosts` (control planes first).
 */
export function clusterNodes(config: Pick<DareConfig, "provider" | "clusterName" | "nodes" | "hosts">): ClusterNode[] {
  if (config.provider === "openstack") {
    return planNodes(config.clusterName, config.nodes).map((n) => ({ name: n.name, role: n.role, pool: n.pool }));
  }
  const nodes = config.hosts.map((h): ClusterNode => ({
    name: h.name,
    role: h.role === CONTROL_PLANE_ROLE ? "control-plane" : "worker",
    pool: h.role,
  }));
  // Stable sort, as Infrastructure does: "the first control plane" is the same host everywhere.
  return nodes.sort((a, b) => Number(b.role === "control-plane") - Number(a.role === "control-plane"));
}

/** The admin kubeconfig: the cluster CA and an admin client certificate, for `server`. */
export function adminKubeconfig(clusterName: string, server: string, caPem: string, certPem: string, keyPem: string): string {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const user = `${clusterName}-admin`;
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: clusterName, cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(certPem), "client-key-data": b64(keyPem) } }],
    contexts: [{ name: clusterName, context: { cluster: clusterName, user } }],
    "current-context": clusterName,
  });
}

export class KubernetesCluster extends pulumi.ComponentResource {
  /** Admin kubeconfig (secret) for operators: the API's public address, group kubeadm:cluster-admins. */
  public readonly kubeconfig: pulumi.Output<string>;
  /** Provider for every Kubernetes resource of later layers; ready once the cluster is. */
  public readonly provider: k8s.Provider;
  /** The cluster CA certificate (PEM). */
  public readonly caCertPem: pulumi.Output<string>;
  /** The Kubernetes version the cluster runs after this update. */
  public readonly kubernetesVersion: string;

  private readonly pki: ClusterPki;

  constructor(name: string, args: KubernetesClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:cluster:KubernetesCluster", name, {}, opts);

    const controlPlanes = args.nodes.filter((n) => n.role === "control-plane");
    if (args.nodes.length === 0 || args.nodes[0].role !== "control-plane") {
      throw new Error(`${name}: nodes must start with a control plane (it runs kubeadm init); got ${args.nodes.map((n) => n.name).join(", ") || "none"}`);
    }
    if (controlPlanes.length % 2 === 0) {
      throw new Error(`${name}: ${controlPlanes.length} control planes: etcd needs an odd number`);
    }
    const names = new Set<string>();
    for (const n of args.nodes) {
      if (names.has(n.name)) throw new Error(`${name}: host ${n.name} appears twice`);
      names.add(n.name);
    }

    this.kubernetesVersion = args.kubernetesVersion;
    this.pki = createClusterPki(name, this);
    this.caCertPem = this.pki.ca.certPem;

    const server = pulumi.output(args.apiServer).apply((api) => `https://${api.publicAddress}:${api.port}`);
    this.kubeconfig = pulumi.secret(pulumi.all([server, this.pki.ca.certPem, this.pki.adminCertPem, this.pki.adminKeyPem])
      .apply(([url, ca, cert, key]) => adminKubeconfig(args.clusterName, url, ca, cert, key)));

    this.provider = new k8s.Provider(`${name}-k8s`, { kubeconfig: this.kubeconfig }, { parent: this });

    this.registerOutputs({ kubeconfig: this.kubeconfig, caCertPem: this.caCertPem });
  }
}
