/**
 * The host firewall (nftables), rendered from the same rule table as the OpenStack security groups
 * (`firewallRules` in host-plan.ts), so the two cannot drift. With `existing` hosts it is the
 * only firewall; on OpenStack it repeats the security groups on the host.
 *
 * One table of its own (`inet dare_firewall`), replaced atomically, so kube-proxy's and Calico's
 * tables are never touched. Only the input hook is filtered: pod traffic is forwarded, not input.
 *
 * Pods reach their own host from their pod address; other hosts see the sending node's address, since
 * Calico's natOutgoing masquerades "packets sent from Calico networked containers in this pool to destinations
 * outside of any Calico IP pools" (docs.tigera.io, IPPool reference), and meet the rule table's "nodes"
 * rules. So the pod range is let in only on the ports pods call on a host (`podPorts`), not on every port:
 * not etcd, SSH, BGP or VXLAN.
 */
import { cidrsOverlap, parseCidr } from "../../lib/cidr";
import { API_PORT, firewallRules } from "../../lib/host-plan";
import { HostRole } from "../../lib/hosts";
import { METRICS_PORTS } from "./kubeadm-config";

type Rule = ReturnType<typeof firewallRules>[number];
type Group = Rule["group"];

export const FIREWALL_TABLE = "dare_firewall";

/** The security groups a host is in: the same assignment Infrastructure gives its ports. */
export function groupsOf(role: HostRole): Group[] {
  return role === "control-plane" ? ["nodes", "controlPlane"] : ["nodes", "web"];
}

export interface FirewallMembers {
  /**
   * The nodes' subnet, standing for every host in it (listing each host would change every host's
   * firewall, and update every host's step, whenever a worker is added), plus any host outside it.
   */
  nodes: string[];
  /** private addresses of the control planes (etcd); they change only with the control planes */
  controlPlane: string[];
}

/** The subnet, then the addresses it does not contain (existing hosts on another network). */
export function nodeSources(subnet: string, addresses: string[]): string[] {
  const net = parseCidr(subnet);
  const outside = addresses.filter((a) => {
    const host = parseCidr(`${a}/32`);
    return !(net && host && cidrsOverlap(net, host));
  });
  return [subnet, ...outside];
}

/** kubelet's port: Prometheus scrapes it (kube-prometheus-stack's kubelet ServiceMonitor). */
export const KUBELET_PORT = 10250;
/** node-exporter, on the host network (kube-prometheus-stack's prometheus-node-exporter). */
export const NODE_EXPORTER_PORT = 9100;
/**
 * kubeadm's default Service node-port range (kube-apiserver --service-node-port-range): Octavia's health monitor
 * checks the Traefik Service's healthCheckNodePort there (externalTrafficPolicy Local), which kube-proxy itself
 * answers on the host, so the packet meets the input hook (node ports proper are DNATed to pods before it).
 */
export const NODE_PORT_RANGE: [number, number] = [30000, 32767];

/**
 * What pods may call on a host's own address: the metrics Prometheus scrapes (kubelet, node-exporter,
 * kube-proxy; on control planes also the controller manager, scheduler and etcd metrics) and, on control planes,
 * the API server (the kubernetes Service's endpoints are the control planes' addresses).
 */
export function podPorts(role: HostRole): number[] {
  const every = [KUBELET_PORT, NODE_EXPORTER_PORT, METRICS_PORTS.kubeProxy];
  const controlPlane = [API_PORT, METRICS_PORTS.controllerManager, METRICS_PORTS.scheduler, METRICS_PORTS.etcd];
  return [...every, ...(role === "control-plane" ? controlPlane : [])].sort((a, b) => a - b);
}

const setName = { nodes: "nodes", controlPlane: "control_planes" } as const;

function elements(addresses: string[]): string {
  // nftables refuses an empty element list; 0.0.0.0/32 never matches a real source.
  return addresses.length > 0 ? [...new Set(addresses)].sort().join(", ") : "0.0.0.0/32";
}

/** The nftables ruleset (`nft -f` input) for a host with `role`. */
export function nftablesRuleset(rules: Rule[], role: HostRole, members: FirewallMembers, podCidr: string): string {
  const groups = groupsOf(role);
  const lines = rules
    .filter((rule) => groups.includes(rule.group))
    .map((rule) => {
      const ports = rule.ports[0] === rule.ports[1] ? `${rule.ports[0]}` : `${rule.ports[0]}-${rule.ports[1]}`;
      const source =
        "cidr" in rule.from
          ? `${rule.from.cidr.includes(":") ? "ip6" : "ip"} saddr ${rule.from.cidr}`
          : `ip saddr @${setName[rule.from.group]}`;
      return `    ${source} ${rule.protocol} dport ${ports} accept comment "${rule.description}"`;
    });
  return [
    `# DARE host firewall for a ${role} host: the security groups ${groups.join(", ")} (components/infrastructure.ts)`,
    `table inet ${FIREWALL_TABLE}`,
    `delete table inet ${FIREWALL_TABLE}`,
    `table inet ${FIREWALL_TABLE} {`,
    `  set ${setName.nodes} { type ipv4_addr; flags interval; elements = { ${elements(members.nodes)} } }`,
    `  set ${setName.controlPlane} { type ipv4_addr; flags interval; elements = { ${elements(members.controlPlane)} } }`,
    `  chain input {`,
    `    type filter hook input priority filter; policy drop;`,
    `    iif "lo" accept`,
    `    ct state established,related accept`,
    `    ct state invalid drop`,
    `    meta l4proto { icmp, ipv6-icmp } accept`,
    `    ip saddr ${podCidr} tcp dport { ${podPorts(role).join(", ")} } accept comment "pods: API server and metrics"`,
    ...(role === "control-plane"
      ? []
      : [
          `    ip saddr @${setName.nodes} tcp dport ${NODE_PORT_RANGE[0]}-${NODE_PORT_RANGE[1]} accept comment "load-balancer health checks (healthCheckNodePort)"`,
        ]),
    ...[...new Set(lines)],
    `  }`,
    `}`,
    ``,
  ].join("\n");
}
