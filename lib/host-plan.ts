/**
 * The host plan: the machines the configuration asks for, in the one order every layer uses (control planes
 * first; the first of them runs `kubeadm init` and is the SSH entry host on OpenStack), which of them take
 * the ingress, and the firewall rule table that both the OpenStack security groups and the hosts' nftables
 * apply. Pure (no Pulumi resource): the IaaS, cluster and networking layers read it, none recomputes it.
 */
import { CONTROL_PLANE_ROLE, DareConfig, ExistingHostSpec, NetworkSpec, NodesSpec } from "./config";
import { HostRole } from "./hosts";
import { METRICS_PORTS } from "../components/cluster/kubeadm-config";
import { mergeNodeSettings, NodeSettings } from "./node-settings";

export const API_PORT = 6443;
export const SSH_PORT = 22;

/** What the plan is made from. */
export type PlanConfig = Pick<DareConfig, "provider" | "clusterName" | "nodes" | "hosts">;

export interface NodePlan {
  /** host name, e.g. dare-testbed-workers-0 */
  name: string;
  /** resource-name suffix, e.g. workers-0: stable for node i of pool p */
  key: string;
  role: "control-plane" | "worker";
  pool: string;
  flavor: string;
  disks: { count: number; sizeGb: number };
  publicIp: boolean;
}

/** Node `i` of pool `p` is always `<cluster>-<p>-<i>`: scaling adds or removes only the highest indexes. */
export function planNodes(clusterName: string, nodes: NodesSpec): NodePlan[] {
  const controlPlanes = Array.from({ length: nodes.controlPlane.count }, (_, i): NodePlan => ({
    name: `${clusterName}-cp-${i}`,
    key: `cp-${i}`,
    role: CONTROL_PLANE_ROLE,
    pool: CONTROL_PLANE_ROLE,
    flavor: nodes.controlPlane.flavor,
    disks: { count: 0, sizeGb: 0 },
    // The first control plane is the SSH entry host (bastion).
    publicIp: i === 0,
  }));
  const workers = nodes.pools.flatMap((pool) =>
    Array.from({ length: pool.count }, (_, i): NodePlan => ({
      name: `${clusterName}-${pool.name}-${i}`,
      key: `${pool.name}-${i}`,
      role: "worker",
      pool: pool.name,
      flavor: pool.flavor,
      disks: pool.disks,
      publicIp: pool.publicIp,
    })),
  );
  return [...controlPlanes, ...workers];
}

/** Existing hosts in plan order: control planes first, otherwise as configured (a stable sort). */
export function existingHostsInOrder(hosts: ExistingHostSpec[]): ExistingHostSpec[] {
  return [...hosts].sort((a, b) => Number(b.role === CONTROL_PLANE_ROLE) - Number(a.role === CONTROL_PLANE_ROLE));
}

/** A host as known when the program is declared: enough to name its steps and order them. */
export interface ClusterNode {
  /** host name = Kubernetes node name */
  name: string;
  role: HostRole;
  /** pool name ("control-plane" for control planes) */
  pool: string;
  /** the private address, when the configuration already knows it (existing hosts) */
  privateAddress?: string;
  /**
   * Disks the configuration gives this host for Ceph (one OSD each; default 0). A host with disks gets
   * OSD-removal steps, and its upgrades drain it alone (Rook's PodDisruptionBudgets allow one OSD host down).
   */
  disks?: number;
  /** labels, taints and kubelet settings from its pool (and, for an existing host, its own); workers only */
  settings?: NodeSettings;
}

/**
 * The hosts the IaaS layer will hand over, by name and role, known from the configuration alone:
 * the same names and order as `Infrastructure.hosts` (control planes first).
 */
export function clusterNodes(config: PlanConfig): ClusterNode[] {
  const poolSettings = (pool: string) => config.nodes.pools.find((p) => p.name === pool)?.settings;
  if (config.provider === "openstack") {
    return planNodes(config.clusterName, config.nodes).map((n) => ({
      name: n.name,
      role: n.role,
      pool: n.pool,
      disks: n.disks.count,
      ...(n.role === "worker" ? { settings: mergeNodeSettings(poolSettings(n.pool), undefined) } : {}),
    }));
  }
  return existingHostsInOrder(config.hosts).map((h): ClusterNode => ({
    name: h.name,
    role: h.role === CONTROL_PLANE_ROLE ? "control-plane" : "worker",
    pool: h.role,
    privateAddress: h.privateAddress,
    disks: h.disks.length,
    ...(h.role === CONTROL_PLANE_ROLE ? {} : { settings: mergeNodeSettings(poolSettings(h.role), h.settings) }),
  }));
}

/**
 * The nodes that serve ingress on host ports: workers with a public address, or every worker when
 * none has one (existing hosts on one network). Known from the configuration alone, so each node's
 * label is its own, stably named resource.
 */
export function ingressNodeNames(config: PlanConfig): string[] {
  const workers =
    config.provider === "openstack"
      ? planNodes(config.clusterName, config.nodes)
          .filter((n) => n.role === "worker")
          .map((n) => ({ name: n.name, public: n.publicIp }))
      : config.hosts.filter((h) => h.role !== CONTROL_PLANE_ROLE).map((h) => ({ name: h.name, public: h.address !== h.privateAddress }));
  const withPublic = workers.filter((w) => w.public);
  return (withPublic.length > 0 ? withPublic : workers).map((w) => w.name);
}

/** One security-group rule, declared as data so the whole firewall reads as a table. */
export interface RuleSpec {
  group: "nodes" | "controlPlane" | "web";
  description: string;
  protocol: "tcp" | "udp";
  ports: [number, number];
  /** a CIDR, or another of this cluster's groups (members only) */
  from: { cidr: string } | { group: "nodes" | "controlPlane" };
}

/**
 * What each group opens. Cluster-internal ports are reachable from cluster members only. `jumpHost`: the
 * address existing hosts see a configured jump host's SSH come from (dare:bastion.privateAddress), admitted to SSH.
 */
export function firewallRules(
  args: { adminCidrs: string[]; network: Pick<NetworkSpec, "cidr"> },
  apiLoadBalancer: boolean,
  jumpHost?: string,
): RuleSpec[] {
  const fromAdmins = (group: RuleSpec["group"], description: string, port: number): RuleSpec[] =>
    args.adminCidrs.map((cidr) => ({ group, description, protocol: "tcp", ports: [port, port], from: { cidr } }));
  const members = { group: "nodes" } as const;
  return [
    ...fromAdmins("nodes", "ssh", 22),
    // Hosts without a public address are reached through the bastion, the first control plane.
    { group: "nodes", description: "ssh", protocol: "tcp", ports: [22, 22], from: { group: "controlPlane" } },
    ...(jumpHost
      ? [
          {
            group: "nodes",
            description: "ssh from the jump host",
            protocol: "tcp",
            ports: [22, 22],
            from: { cidr: `${jumpHost}/32` },
          } as RuleSpec,
        ]
      : []),
    ...fromAdmins("controlPlane", "kube-apiserver", API_PORT),
    { group: "controlPlane", description: "kube-apiserver", protocol: "tcp", ports: [API_PORT, API_PORT], from: members },
    // Octavia's amphorae sit in the node subnet and forward API traffic (and health checks) from there.
    ...(apiLoadBalancer
      ? [
          {
            group: "controlPlane",
            description: "kube-apiserver",
            protocol: "tcp",
            ports: [API_PORT, API_PORT],
            from: { cidr: args.network.cidr },
          } as RuleSpec,
        ]
      : []),
    { group: "controlPlane", description: "etcd", protocol: "tcp", ports: [2379, 2380], from: { group: "controlPlane" } },
    { group: "nodes", description: "kubelet", protocol: "tcp", ports: [10250, 10250], from: members },
    { group: "nodes", description: "calico-bgp", protocol: "tcp", ports: [179, 179], from: members },
    { group: "nodes", description: "calico-vxlan", protocol: "udp", ports: [4789, 4789], from: members },
    { group: "nodes", description: "calico-typha", protocol: "tcp", ports: [5473, 5473], from: members },
    // node-exporter listens on the host network; Prometheus' scrapes of other nodes arrive from node addresses.
    { group: "nodes", description: "node-exporter", protocol: "tcp", ports: [9100, 9100], from: members },
    // The same for the metrics kubeadm is told to serve on every address (kubeadm-config.ts).
    ...(
      [
        ["controlPlane", "kube-controller-manager-metrics", METRICS_PORTS.controllerManager],
        ["controlPlane", "kube-scheduler-metrics", METRICS_PORTS.scheduler],
        ["controlPlane", "etcd-metrics", METRICS_PORTS.etcd],
        ["nodes", "kube-proxy-metrics", METRICS_PORTS.kubeProxy],
      ] as const
    ).map(([group, description, port]): RuleSpec => ({ group, description, protocol: "tcp", ports: [port, port], from: members })),
    { group: "web", description: "http", protocol: "tcp", ports: [80, 80], from: { cidr: "0.0.0.0/0" } },
    { group: "web", description: "https", protocol: "tcp", ports: [443, 443], from: { cidr: "0.0.0.0/0" } },
  ];
}
