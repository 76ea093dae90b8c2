/**
 * NetworkPolicies that every protected namespace shares, and a helper for the explicit allows.
 *
 * NamespaceIsolation: a namespace that denies all incoming traffic, except from the ingress controller and
 * from monitoring. Whatever else must reach a pod (one DARE service calling another) is one explicit
 * `allowTraffic` rule, written by the layer that owns the pods.
 *
 * Walls (below): default deny, ingress and egress, in the namespaces the program creates, each with the
 * flows it needs, in one table (`wallPolicies`), created once every layer has made its namespace.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { parseCidr } from "./cidr";
import { NAMESPACES } from "./namespaces";
import { INGRESS_POD_LABELS, INGRESS_POD_PORTS } from "../components/networking";

/** Pods of the ingress controller (Traefik, chart labels) in its namespace. */
export const INGRESS_CONTROLLER_PEER = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACES.ingress.name } },
  podSelector: { matchLabels: { ...INGRESS_POD_LABELS } },
};
/** Every pod of the monitoring namespace (Prometheus, blackbox probes). */
export const MONITORING_PEER = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACES.monitoring.name } },
};

/**
 * Pods cert-manager starts, in the namespace of an Ingress or Certificate, to answer ACME HTTP-01
 * challenges; Traefik forwards Let's Encrypt's request to them on this port. NamespaceIsolation's
 * ingress-controller allow (every pod, every port) covers them; a namespace with narrower policies
 * needs `ACME_SOLVER_POLICY`, or its certificates are never issued.
 */
export const ACME_SOLVER_POD_LABELS = { "acme.cert-manager.io/http01-solver": "true" } as const;
export const ACME_SOLVER_PORT = 8089;
/** Spec of the NetworkPolicy that lets the ingress controller reach the HTTP-01 solver pods. */
export const ACME_SOLVER_POLICY = {
  podSelector: { matchLabels: { ...ACME_SOLVER_POD_LABELS } },
  policyTypes: ["Ingress"],
  ingress: [{ from: [INGRESS_CONTROLLER_PEER], ports: [{ protocol: "TCP", port: ACME_SOLVER_PORT }] }],
};

/** The policy names a protected namespace always has. */
export const DEFAULT_DENY_POLICY = "default-deny-ingress";

export interface NamespaceIsolationArgs {
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** The namespace to protect (pass the Namespace's `metadata.name`, so it exists first). */
  namespace: pulumi.Input<string>;
  /** Also let the namespace's pods reach each other: for a namespace that holds one application (Harbor). */
  allowWithinNamespace?: boolean;
}

/** Default-deny ingress in one namespace, with the ingress controller and monitoring let in. */
export class NamespaceIsolation extends pulumi.ComponentResource {
  constructor(name: string, args: NamespaceIsolationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:platform:NamespaceIsolation", name, {}, opts);
    const k8sOpts = { provider: args.provider, parent: this };
    const policy = (suffix: string, policyName: string, from?: k8s.types.input.networking.v1.NetworkPolicyPeer[]) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${suffix}`,
        {
          metadata: { name: policyName, namespace: args.namespace },
          spec: {
            podSelector: {},
            policyTypes: ["Ingress"],
            // No rules: nothing is let in by this policy (the deny); one peer list: exactly those peers.
            ...(from ? { ingress: [{ from }] } : {}),
          },
        },
        k8sOpts,
      );
    policy("default-deny", DEFAULT_DENY_POLICY);
    policy("allow-ingress-controller", "allow-from-ingress-controller", [INGRESS_CONTROLLER_PEER]);
    policy("allow-monitoring", "allow-from-monitoring", [MONITORING_PEER]);
    if (args.allowWithinNamespace) policy("allow-within-namespace", "allow-within-namespace", [{ podSelector: {} }]);
    this.registerOutputs({});
  }
}

export interface AllowTrafficArgs {
  /** Namespace of the pods that receive the traffic. */
  namespace: pulumi.Input<string>;
  /** Labels of the receiving pods. */
  to: Record<string, string>;
  /** Who may call: pods by labels, in the same namespace unless `namespace` names another one. */
  from: Array<{ podLabels: Record<string, string>; namespace?: string }>;
  /** TCP ports of the receiving pods that the callers use. */
  ports: number[];
}

/** One explicit allow: the listed callers may reach the listed TCP ports of the selected pods. */
export function allowTraffic(name: string, args: AllowTrafficArgs, opts: pulumi.CustomResourceOptions): k8s.networking.v1.NetworkPolicy {
  if (args.from.length === 0 || args.ports.length === 0) {
    throw new Error(`${name}: an allow rule needs at least one caller and one port`);
  }
  return new k8s.networking.v1.NetworkPolicy(
    name,
    {
      metadata: { name, namespace: args.namespace },
      spec: {
        podSelector: { matchLabels: args.to },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: args.from.map((peer) => ({
              podSelector: { matchLabels: peer.podLabels },
              ...(peer.namespace ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } } } : {}),
            })),
            ports: args.ports.map((port) => ({ protocol: "TCP", port })),
          },
        ],
      },
    },
    opts,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Walls: default-deny NetworkPolicies in the platform's namespaces, with the flows each one needs.

type PolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;
type PolicyPeer = k8s.types.input.networking.v1.NetworkPolicyPeer;
type PolicyPort = k8s.types.input.networking.v1.NetworkPolicyPort;

/**
 * Addresses that are not "the internet" for egress rules: private (RFC 1918), shared (RFC 6598) and
 * link-local ranges, which hold the nodes, pods, Services and the cloud's metadata service.
 */
export const NON_PUBLIC_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"];
/**
 * The OpenStack metadata service. It serves each VM's user data, which holds the VM's SSH host key
 * (infrastructure.ts): no pod may reach it, including in the namespaces whose egress is otherwise open.
 */
export const CLOUD_METADATA_CIDR = "169.254.169.254/32";
/** Egress anywhere (pods and addresses) but the metadata service. */
const ALL_BUT_CLOUD_METADATA: PolicySpec = {
  podSelector: {},
  policyTypes: ["Egress"],
  // Pods by selector as well: whether an ipBlock covers pod addresses is the network plugin's choice.
  egress: [{ to: [{ namespaceSelector: {} }, { ipBlock: { cidr: "0.0.0.0/0", except: [CLOUD_METADATA_CIDR] } }] }],
};
/** Public addresses only. */
export const INTERNET_PEER: PolicyPeer = { ipBlock: { cidr: "0.0.0.0/0", except: NON_PUBLIC_RANGES } };
/** Every pod of one namespace (or the pods with `pods` labels there). */
export const namespacePeer = (namespace: string, pods?: Record<string, string>): PolicyPeer => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
  ...(pods ? { podSelector: { matchLabels: pods } } : {}),
});
const tcp = (...ports: number[]): PolicyPort[] => ports.map((port) => ({ protocol: "TCP", port }));
/** The cluster's DNS (CoreDNS, kubeadm's labels), UDP and TCP 53. */
export const DNS_EGRESS = {
  to: [
    {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
      podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
    },
  ],
  ports: [
    { protocol: "UDP", port: 53 },
    { protocol: "TCP", port: 53 },
  ],
};

/** The Kubernetes API as a pod reaches it. */
export interface ApiServerPeers {
  /**
   * The API server's addresses after Service translation (control planes' private addresses, the API load
   * balancer's), as CIDRs: kube-proxy rewrites kubernetes.default's ClusterIP to them before the policy is
   * judged (Calico applies Kubernetes policy after kube-proxy's DNAT: projectcalico/calico#2088; kube-router
   * the same: cloudnativelabs/kube-router#1617, "allow list all of your node IPs").
   */
  cidrs: pulumi.Input<string[]>;
  /** Port on those addresses (6443). */
  port: number;
  /** The kubernetes Service's ClusterIP (1st address of the service range), port 443, for policy engines that judge before DNAT. */
  serviceAddress: string;
}

/** Egress rules to the Kubernetes API. */
export function apiEgress(api: ApiServerPeers): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  return [
    { to: pulumi.output(api.cidrs).apply((cidrs) => cidrs.map((cidr): PolicyPeer => ({ ipBlock: { cidr } }))), ports: tcp(api.port) },
    { to: [{ ipBlock: { cidr: `${api.serviceAddress}/32` } }], ports: tcp(443) },
  ];
}

/** The 1st address of the service range: kubeadm gives it to the kubernetes Service. */
export function apiServiceAddress(serviceCidr: string): string {
  const cidr = parseCidr(serviceCidr);
  if (!cidr || cidr.version !== 4) throw new Error(`service range ${serviceCidr}: must be an IPv4 CIDR`);
  const address = cidr.network + 1n;
  return [24n, 16n, 8n, 0n].map((shift) => String((address >> shift) & 255n)).join(".");
}

/**
 * Ports the Ceph dashboard may listen on in the mgr pods (Rook: 8443 with ssl, the chart's default, 7000
 * without). The mgr pods take every other port from anywhere (Ceph clients are the kernels of every node,
 * reached from node and tunnel addresses), these from nobody: `kubectl port-forward` still works, since it
 * enters the pod's own network namespace.
 */
export const CEPH_DASHBOARD_PORTS = [7000, 8443];
/** Rook's mgr pods. */
export const CEPH_MGR_POD_LABELS = { app: "rook-ceph-mgr" };
/** Port ranges (endPort) that leave out the given ports. */
export function portsExcept(excluded: number[]): PolicyPort[] {
  const out: PolicyPort[] = [];
  let from = 1;
  for (const port of [...excluded].sort((a, b) => a - b)) {
    if (port > from) out.push({ protocol: "TCP", port: from, endPort: port - 1 });
    from = port + 1;
  }
  out.push({ protocol: "TCP", port: from, endPort: 65535 });
  return out;
}

/** Well-known ports of the components the walls let through. */
export const WALL_PORTS = {
  /** cert-manager's webhook (chart default webhook.securePort) and the Prometheus Operator's admission webhook. */
  webhook10250: 10250,
  certManagerMetrics: 9402,
  /** CloudNativePG's webhook (chart value webhook.port) and metrics. */
  cnpgWebhook: 9443,
  cnpgMetrics: 8080,
  /** CNPG instance manager's status endpoint, which the operator calls. */
  cnpgInstanceStatus: 8000,
  mpiOperatorMetrics: 8081,
  /** The MPIJob conversion webhook's pod port. */
  mpijobConversion: 8443,
  traefikMetrics: 9100,
  grafana: 3000,
  postgres: 5432,
} as const;

export interface WallsArgs {
  /** Provider of the cluster. */
  provider: k8s.Provider;
  /** The Kubernetes API as pods reach it. */
  api: ApiServerPeers;
  /** Harbor is installed (its namespace exists). */
  harbor: boolean;
  /** Keycloak has identity providers: it calls their token and key endpoints (HTTPS on the internet). */
  identityProviders: boolean;
}

/** A namespace's policies: name → spec. */
export type NamespacePolicies = Record<string, PolicySpec>;

/**
 * The policies of each namespace the walls cover, keyed by namespace. Pure, so the tests judge the flows
 * on it with NetworkPolicy's own semantics. The API server calls webhooks from the host network: after
 * Calico's VXLAN a control plane reaches a pod on another node from its tunnel address, which lies in the pod
 * range, so no ipBlock tells the API server from a pod: webhook ports are open to every source, and only those
 * ports.
 */
export function wallPolicies(args: Omit<WallsArgs, "provider">): Record<string, NamespacePolicies> {
  const denyAll: PolicySpec = { podSelector: {}, policyTypes: ["Ingress", "Egress"] };
  const denyIngress: PolicySpec = { podSelector: {}, policyTypes: ["Ingress"] };
  const dns: PolicySpec = { podSelector: {}, policyTypes: ["Egress"], egress: [DNS_EGRESS] };
  const api = (pods: Record<string, string> = {}): PolicySpec => ({
    podSelector: { matchLabels: pods },
    policyTypes: ["Egress"],
    egress: apiEgress(args.api),
  });
  const open = (ports: PolicyPort[], pods: Record<string, string> = {}): PolicySpec => ({
    podSelector: { matchLabels: pods },
    policyTypes: ["Ingress"],
    ingress: [{ ports }],
  });
  const from = (peers: PolicyPeer[], ports?: PolicyPort[], pods: Record<string, string> = {}): PolicySpec => ({
    podSelector: { matchLabels: pods },
    policyTypes: ["Ingress"],
    ingress: [{ from: peers, ...(ports ? { ports } : {}) }],
  });
  const to = (peers: PolicyPeer[], ports?: PolicyPort[], pods: Record<string, string> = {}): PolicySpec => ({
    podSelector: { matchLabels: pods },
    policyTypes: ["Egress"],
    egress: [{ to: peers, ...(ports ? { ports } : {}) }],
  });
  const within = (ns: string): PolicySpec => ({
    podSelector: {},
    policyTypes: ["Ingress", "Egress"],
    ingress: [{ from: [{ podSelector: {} }] }],
    egress: [{ to: [namespacePeer(ns)] }],
  });
  const N = NAMESPACES;
  const walls: Record<string, NamespacePolicies> = {
    [N.mpiOperator.name]: {
      "default-deny": denyAll,
      "allow-dns": dns,
      "allow-api-operator": api({ app: "mpi-operator" }),
      "allow-conversion-webhook": open(tcp(WALL_PORTS.mpijobConversion), { "app.kubernetes.io/name": "mpijob-conversion" }),
      "allow-monitoring": from([MONITORING_PEER], tcp(WALL_PORTS.mpiOperatorMetrics), { app: "mpi-operator" }),
    },
    [N.certManager.name]: {
      "default-deny": denyAll,
      "allow-dns": dns,
      "allow-api": api(),
      "allow-webhook": open(tcp(WALL_PORTS.webhook10250)),
      "allow-monitoring": from([MONITORING_PEER], tcp(WALL_PORTS.certManagerMetrics)),
      // ACME (Let's Encrypt) and the HTTP-01 self-check, to wherever dare:domain resolves (a floating IP,
      // or ingress nodes' addresses, which may be private): HTTP and HTTPS to any address but the metadata service.
      "allow-acme": to([{ ipBlock: { cidr: "0.0.0.0/0", except: [CLOUD_METADATA_CIDR] } }], tcp(80, 443), {
        "app.kubernetes.io/name": "cert-manager",
      }),
    },
    [N.cnpg.name]: {
      "default-deny": denyAll,
      "allow-dns": dns,
      "allow-api": api(),
      "allow-webhook": open(tcp(WALL_PORTS.cnpgWebhook)),
      "allow-monitoring": from([MONITORING_PEER], tcp(WALL_PORTS.cnpgMetrics)),
      "allow-instances": to(
        [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: "cnpg.io/cluster", operator: "Exists" }] } }],
        tcp(WALL_PORTS.cnpgInstanceStatus),
      ),
    },
    [N.ingress.name]: {
      "default-deny": denyAll,
      "allow-dns": dns,
      "allow-api": api(),
      // The world, through the load balancer or the host ports; pods, through traefik-cluster.
      "allow-entry-points": open(tcp(INGRESS_POD_PORTS.web, INGRESS_POD_PORTS.websecure)),
      "allow-monitoring": from([MONITORING_PEER], tcp(WALL_PORTS.traefikMetrics)),
      // The domain's Certificate lives here: cert-manager's HTTP-01 solver pods answer Let's Encrypt here.
      "allow-acme-http01-solver": ACME_SOLVER_POLICY as PolicySpec,
      // Backends are pods in any namespace; each namespace's own ingress rules decide which. Not the internet.
      "allow-backends": to([{ namespaceSelector: {} }]),
    },
    [N.monitoring.name]: {
      // Ingress only: Prometheus scrapes every namespace and node, Alertmanager mails any SMTP server.
      "default-deny-ingress": denyIngress,
      // Prometheus, Alertmanager, Grafana, the exporters and the operator among themselves; nothing else
      // reaches Prometheus or Alertmanager.
      "allow-within-namespace": { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] },
      "allow-grafana-from-ingress": from([INGRESS_CONTROLLER_PEER], tcp(WALL_PORTS.grafana)),
      "allow-operator-webhook": open(tcp(WALL_PORTS.webhook10250)),
      "allow-acme-http01-solver": ACME_SOLVER_POLICY as PolicySpec,
      // Egress stays open for scraping and mail, but not to the VMs' user data (Grafana faces the internet).
      "deny-cloud-metadata": ALL_BUT_CLOUD_METADATA,
    },
    [N.rookCeph.name]: {
      // Not default-deny (every node's kernel is a Ceph client): the dashboard only, on the mgr pods.
      "deny-ceph-dashboard": {
        podSelector: { matchLabels: CEPH_MGR_POD_LABELS },
        policyTypes: ["Ingress"],
        ingress: [{ ports: portsExcept(CEPH_DASHBOARD_PORTS) }],
      },
      "deny-cloud-metadata": ALL_BUT_CLOUD_METADATA,
    },
    [N.keycloak.name]: {
      // Ingress is NamespaceIsolation's (identity.ts); egress here.
      "default-deny-egress": { podSelector: {}, policyTypes: ["Egress"] },
      "allow-dns": dns,
      "allow-egress-within-namespace": { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }] }] },
      // CloudNativePG's instance manager reads and writes its Cluster through the API.
      "allow-api-database": {
        podSelector: { matchExpressions: [{ key: "cnpg.io/cluster", operator: "Exists" }] },
        policyTypes: ["Egress"],
        egress: apiEgress(args.api),
      },
      ...(args.identityProviders
        ? { "allow-identity-providers": to([INTERNET_PEER], tcp(443), { "app.kubernetes.io/name": "keycloakx" }) }
        : {}),
    },
    [N.backups.name]: {
      // The dump jobs reach the databases; each database's namespace decides which port (ingress rules there).
      // The etcd snapshot job runs on the host network, where NetworkPolicy does not apply.
      "default-deny": denyAll,
      "allow-dns": dns,
      "allow-databases": to([namespacePeer(N.dare.name), namespacePeer(N.keycloak.name)]),
    },
    ...(args.harbor
      ? {
          [N.harbor.name]: {
            // Ingress is NamespaceIsolation's (security.ts); egress: itself, DNS, and replication and Trivy's
            // database downloads (HTTPS to public registries).
            "default-deny-egress": { podSelector: {}, policyTypes: ["Egress"] },
            "allow-dns": dns,
            "allow-egress-within-namespace": within(N.harbor.name),
            "allow-registries": to([INTERNET_PEER], tcp(443)),
            // Sign-in at Keycloak (in the cluster, or its public URL through the ingress controller).
            "allow-keycloak": to([namespacePeer(N.keycloak.name), INGRESS_CONTROLLER_PEER], tcp(8080, INGRESS_POD_PORTS.websecure)),
          },
        }
      : {}),
  };
  // Any namespace that denies ingress may hold a Certificate or an Ingress some day: its HTTP-01 solver pods
  // must answer Traefik, or the certificate is never issued (and nothing says why).
  for (const policies of Object.values(walls)) {
    if (policies["default-deny"] || policies["default-deny-ingress"])
      policies["allow-acme-http01-solver"] ??= ACME_SOLVER_POLICY as PolicySpec;
  }
  return walls;
}

/** The walls as NetworkPolicies: create after the layers that own the namespaces. */
export class Walls extends pulumi.ComponentResource {
  constructor(name: string, args: WallsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:platform:Walls", name, {}, opts);
    const k8sOpts = { provider: args.provider, parent: this };
    for (const [namespace, policies] of Object.entries(wallPolicies(args))) {
      for (const [policyName, spec] of Object.entries(policies)) {
        new k8s.networking.v1.NetworkPolicy(
          `${name}-${namespace}-${policyName}`,
          { metadata: { name: policyName, namespace }, spec },
          k8sOpts,
        );
      }
    }
    this.registerOutputs({});
  }
}
