/**
 * NetworkPolicy semantics for tests: whether the policies of a render let one pod open a TCP connection
 * to another (both sides: the caller's egress and the callee's ingress), as the Kubernetes API defines
 * them (a pod no policy of a type selects is open in that direction; rules are unions).
 */

/** A pod (labels in a namespace) or an address outside the cluster (ip only), and the port called. */
export interface Endpoint {
  ns: string;
  labels: Record<string, string>;
  ip?: string;
  port: number;
}

export function matches(selector: any, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const ok = Object.entries<string>(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const exprs = (selector.matchExpressions ?? []).every((e: any) =>
    e.operator === "Exists"
      ? e.key in labels
      : e.operator === "In"
        ? e.values.includes(labels[e.key])
        : e.operator === "NotIn"
          ? !e.values.includes(labels[e.key])
          : !(e.key in labels),
  );
  return ok && exprs;
}

export function ipIn(ip: string | undefined, cidr: string): boolean {
  if (!ip) return false;
  const [base, bits] = cidr.split("/");
  const n = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const block = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / block) === Math.floor(n(base) / block);
}

function peerMatches(peer: any, policyNs: string, other: Endpoint): boolean {
  if (peer.ipBlock) return ipIn(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c: string) => ipIn(other.ip, c));
  if (other.ip && !other.labels) return false;
  const nsOk = peer.namespaceSelector
    ? matches(peer.namespaceSelector, { "kubernetes.io/metadata.name": other.ns })
    : other.ns === policyNs;
  return nsOk && matches(peer.podSelector, other.labels);
}

function portMatches(ports: any[] | undefined, port: number): boolean {
  // endPort: the range port..endPort (NetworkPolicyPort, stable since Kubernetes 1.25).
  return (
    !ports ||
    ports.length === 0 ||
    ports.some(
      (p) =>
        (p.port === undefined || p.port === port || (p.endPort !== undefined && p.port <= port && port <= p.endPort)) &&
        (p.protocol ?? "TCP") === "TCP",
    )
  );
}

/** Whether the policies in force let `from` open a TCP connection to `to` on `to.port`. */
export function allowed(policies: any[], from: Endpoint, to: Endpoint): boolean {
  const side = (self: Endpoint, type: "Egress" | "Ingress", other: Endpoint) => {
    // An address outside the cluster has no policies of its own.
    if (!self.labels) return true;
    const selecting = policies.filter(
      (p) =>
        p.metadata.namespace === self.ns && matches(p.spec.podSelector, self.labels) && (p.spec.policyTypes ?? ["Ingress"]).includes(type),
    );
    if (selecting.length === 0) return true;
    const rules = selecting.flatMap((p) => (type === "Egress" ? p.spec.egress : p.spec.ingress) ?? []);
    return rules.some((rule: any) => {
      const peers = type === "Egress" ? rule.to : rule.from;
      return (!peers || peers.some((peer: any) => peerMatches(peer, self.ns, other))) && portMatches(rule.ports, to.port);
    });
  };
  return side(from, "Egress", to) && side(to, "Ingress", from);
}
