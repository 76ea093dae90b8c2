/**
 * Every upstream version the program pins itself, in one place: a version bump is an edit here.
 *  - Charts: each matches `../shared/charts/<chart>-<version>` and the chart mirror (tests/tools/render.test.ts checks).
 *  - Images the program runs without asking the operator. Images an operator may replace (a registry
 *    mirror, a patched build) are configuration instead: `dare:images`, defaults in config-keys.ts.
 * Host packages (kubeadm, containerd.io, borg) follow `dare:kubernetesVersion` and the pins in the host
 * scripts that install them, where the package's key fingerprint is checked alongside.
 */
import type { PinnedChart } from "./helm";

export const CHARTS = {
  calico: { chart: "tigera-operator", version: "v3.32.1", repo: "https://docs.tigera.io/calico/charts" },
  traefik: { chart: "traefik", version: "41.3.0", repo: "https://traefik.github.io/charts" },
  cloudController: {
    chart: "openstack-cloud-controller-manager",
    version: "2.36.0",
    repo: "https://kubernetes.github.io/cloud-provider-openstack",
  },
  rookOperator: { chart: "rook-ceph", version: "v1.20.6", repo: "https://charts.rook.io/release" },
  rookCluster: { chart: "rook-ceph-cluster", version: "v1.20.6", repo: "https://charts.rook.io/release" },
  certManager: { chart: "cert-manager", version: "v1.21.1", repo: "https://charts.jetstack.io" },
  harbor: { chart: "harbor", version: "1.19.1", repo: "https://helm.goharbor.io" },
  cloudnativePg: { chart: "cloudnative-pg", version: "0.29.0", repo: "https://cloudnative-pg.github.io/charts" },
  keycloakx: { chart: "keycloakx", version: "7.1.11", repo: "https://codecentric.github.io/helm-charts" },
  kubePrometheusStack: { chart: "kube-prometheus-stack", version: "88.5.3", repo: "https://prometheus-community.github.io/helm-charts" },
  /** The z2jh chart (jupyterhub/zero-to-jupyterhub-k8s tag 4.4.0, 2026-06-10). */
  jupyterhub: { chart: "jupyterhub", version: "4.4.0", repo: "https://hub.jupyter.org/helm-chart/" },
} as const satisfies Record<string, PinnedChart>;

export const IMAGES = {
  /** The newest Keycloak 26.x (26.7.4) rather than the keycloakx chart's 26.5.6, for its security fixes; the
   * chart's templates only pass KC_* settings and work for every 26.x. */
  keycloak: "quay.io/keycloak/keycloak:26.7.4",
  /** CloudNativePG's PostgreSQL operand image. */
  postgres: "ghcr.io/cloudnative-pg/postgresql:18.4",
  /** keycloak-config-cli 6.5.0 built against Keycloak 26.5.4; the admin REST API it uses is stable across 26.x. */
  keycloakConfigCli: "docker.io/adorsys/keycloak-config-cli:6.5.0-26.5.4",
} as const;

/** kubeflow/mpi-operator: the release whose CRD components/dare-services/crds/ ships; its image (dare:images) must match. */
export const MPI_OPERATOR_VERSION = "v0.8.2";
