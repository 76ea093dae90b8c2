/**
 * Every namespace the platform uses, with its Pod Security Admission level, in one table so that
 * the levels are reviewed together. Each layer creates the namespaces it owns with `createNamespace`.
 * "restricted" where the workloads allow it; "baseline" where they need more (MPI, Harbor);
 * "privileged" only for node agents (CNI, Ceph, node-exporter).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

export const NAMESPACES = {
  tigeraOperator: { name: "tigera-operator", podSecurity: "privileged" },
  ingress: { name: "traefik", podSecurity: "baseline" },
  cloudController: { name: "openstack-system", podSecurity: "privileged" },
  rookCeph: { name: "rook-ceph", podSecurity: "privileged" },
  certManager: { name: "cert-manager", podSecurity: "restricted" },
  harbor: { name: "harbor", podSecurity: "baseline" },
  cnpg: { name: "cnpg-system", podSecurity: "restricted" },
  keycloak: { name: "keycloak", podSecurity: "restricted" },
  monitoring: { name: "monitoring", podSecurity: "privileged" },
  mpiOperator: { name: "mpi-operator", podSecurity: "restricted" },
  dare: { name: "dare", podSecurity: "baseline" },
  jupyterhub: { name: "jupyterhub", podSecurity: "baseline" },
  backups: { name: "dare-backups", podSecurity: "privileged" },
} as const satisfies Record<string, { name: string; podSecurity: PodSecurityLevel }>;

export type NamespaceKey = keyof typeof NAMESPACES;

/**
 * Creates one namespace of the table, with PSA enforce/audit/warn labels at its level.
 * `level` overrides the table where a deployment mode needs more: PSA baseline forbids host ports,
 * so the ingress namespace is privileged only when Traefik binds ports 80/443 of its nodes.
 */
export function createNamespace(key: NamespaceKey, opts: pulumi.CustomResourceOptions, level?: PodSecurityLevel): k8s.core.v1.Namespace {
  const name = NAMESPACES[key].name;
  const podSecurity = level ?? NAMESPACES[key].podSecurity;
  return new k8s.core.v1.Namespace(
    `ns-${name}`,
    {
      metadata: {
        name,
        labels: {
          "pod-security.kubernetes.io/enforce": podSecurity,
          "pod-security.kubernetes.io/audit": podSecurity,
          "pod-security.kubernetes.io/warn": podSecurity,
          "app.kubernetes.io/part-of": "dare-platform",
        },
      },
    },
    opts,
  );
}
