/**
 * NetworkPolicies that every protected namespace shares, and a helper for the explicit allows.
 *
 * A protected namespace denies all incoming traffic, except from the ingress controller and from
 * monitoring. Whatever else must reach a pod (one DARE service calling another) is one explicit
 * `allowTraffic` rule, written by the layer that owns the pods. Egress stays open: DNS, the
 * Kubernetes API and Keycloak are reached from everywhere.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { NAMESPACES } from "./namespaces";
import { INGRESS_POD_LABELS } from "./networking";

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
  /** The namespace to protect (pass the Namespace's `metadata.name`, so it exists first). */
  namespace: pulumi.Input<string>;
  /** Also let the namespace's pods reach each other: for a namespace that holds one application (Harbor). */
  allowWithinNamespace?: boolean;
}

/** Default-deny ingress in one namespace, with the ingress controller and monitoring let in. */
export class NamespaceIsolation extends pulumi.ComponentResource {
  constructor(name: string, args: NamespaceIsolationArgs, opts: pulumi.ComponentResourceOptions & { provider: k8s.Provider }) {
    super("dare:platform:NamespaceIsolation", name, {}, opts);
    const k8sOpts = { provider: opts.provider, parent: this };
    const policy = (suffix: string, policyName: string, from?: k8s.types.input.networking.v1.NetworkPolicyPeer[]) =>
      new k8s.networking.v1.NetworkPolicy(`${name}-${suffix}`, {
        metadata: { name: policyName, namespace: args.namespace },
        spec: {
          podSelector: {},
          policyTypes: ["Ingress"],
          // No rules: nothing is let in by this policy (the deny); one peer list: exactly those peers.
          ...(from ? { ingress: [{ from }] } : {}),
        },
      }, k8sOpts);
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
  return new k8s.networking.v1.NetworkPolicy(name, {
    metadata: { name, namespace: args.namespace },
    spec: {
      podSelector: { matchLabels: args.to },
      policyTypes: ["Ingress"],
      ingress: [{
        from: args.from.map((peer) => ({
          podSelector: { matchLabels: peer.podLabels },
          ...(peer.namespace ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } } } : {}),
        })),
        ports: args.ports.map((port) => ({ protocol: "TCP", port })),
      }],
    },
  }, opts);
}
