/**
 * The kubeflow MPI operator v0.8.2 (MPIJob kubeflow.org/v2beta1), which runs exec-api's dispel4py and
 * CWL workflows as MPI jobs. The seed pinned 0.1.0, whose kubeflow.org/v1alpha1 API no longer exists.
 *
 * Upstream installs with `kubectl apply --server-side -f <release>/deploy/v2beta1/mpi-operator.yaml`.
 * That manifest is a CRD plus a handful of small objects. Here:
 *  - the CRD (670 kB of generated schema) is the upstream release's file, shipped with the program in
 *    components/dare-services/crds/kubeflow.org_mpijobs.yaml (its header: source, tag, how to refresh it) and applied
 *    as a `k8s.yaml.v2.ConfigFile` of that local file, so nothing is fetched from a URL at deploy time;
 *    the release is the same string as the operator image's tag;
 *  - the namespace, ServiceAccount, ClusterRole, ClusterRoleBinding and Deployment are typed objects
 *    below, equal to the manifest's (release-0.8 branch) except: the namespace comes from the project's
 *    table (Pod Security "restricted"), the pod runs as non-root with a read-only root file system,
 *    has probes on the operator's /healthz (port 8080), serves metrics on 8081, and has resources; the
 *    Kubeflow-dashboard aggregation roles (kubeflow-mpijobs-admin/edit/view) are left out.
 * The offline render and the tests see the typed objects in full and the CRD as its file's path; the
 * file is checked in tests to be the upstream one recorded in ../shared/crds/mpi-operator/v0.8.2 (sha256).
 *
 * DARE's exec-api still creates kubeflow.org/v1alpha1 MPIJobs (0.1.0's API). The CRD is applied with a
 * `transforms` entry (withV1alpha1Conversion, mpijob-conversion.ts) that adds v1alpha1 as a served,
 * deprecated, non-storage version converted by the mpijob-conversion webhook, which runs here too
 * (docs/mpi-workflows.md). Its certificate comes from cert-manager: the component needs the Security
 * layer installed first.
 */
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { SHARED_FS_CLAIM } from "./workloads";
import { MPIJOB_CONVERSION_IMAGE, MpiJobConversion, mpijobCrdTransform } from "./mpijob-conversion";
import { createNamespace, NAMESPACES } from "../../lib/namespaces";
import { MPI_OPERATOR_VERSION } from "../../lib/pins";

/** The shipped CRD file (upstream's manifests/base/kubeflow.org_mpijobs.yaml at MPI_OPERATOR_VERSION, after a header). */
export const MPI_OPERATOR_CRD_FILE = path.join(__dirname, "crds", "kubeflow.org_mpijobs.yaml");
/** sha256 of the upstream file (the shipped file after its header's marker line). */
export const MPI_OPERATOR_CRD_SHA256 = "78b0131f931fcc8d99f6ce0407281f41b62527e443ec691d26d9634b390ad3bb";
/**
 * The file as the ConfigFile names it: relative to the project directory, where Pulumi runs the program
 * and its providers (ConfigFile's documented local-file form), so that the state and the render do not
 * depend on where the project is checked out.
 */
export const MPI_OPERATOR_CRD_SOURCE = path
  .relative(path.join(__dirname, "..", ".."), MPI_OPERATOR_CRD_FILE)
  .split(path.sep)
  .join("/");
const HEALTH_PORT = 8080;
const METRICS_PORT = 8081;

/** What the operator may do (ClusterRole mpi-operator): no pods/exec, no CRDs, no endpoints. */
export const MPI_OPERATOR_RULES = [
  { apiGroups: [""], resources: ["configmaps", "secrets", "services"], verbs: ["create", "list", "watch", "update"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "watch", "delete", "update", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "list", "update", "watch"] },
  { apiGroups: ["kubeflow.org"], resources: ["mpijobs", "mpijobs/finalizers", "mpijobs/status"], verbs: ["*"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["*"] },
  { apiGroups: ["scheduling.k8s.io"], resources: ["priorityclasses"], verbs: ["get", "list", "watch"] },
];

export interface MpiOperatorArgs {
  /** Provider of the cluster. */
  provider: k8s.Provider;
  /** Operator image with its tag; its tag must be the release this component pins (0.8.2). */
  image: string;
  /** The MPIJob CRD file (default MPI_OPERATOR_CRD_SOURCE, shipped with the program); tests may point it elsewhere. */
  crdSource?: string;
  /** Node.js image of the v1alpha1 conversion webhook (default MPIJOB_CONVERSION_IMAGE). */
  conversionImage?: string;
}

export class MpiOperator extends pulumi.ComponentResource {
  /** The namespace the operator runs in. */
  public readonly namespace: string;
  /** API version of the jobs it runs. */
  public readonly apiVersion = "kubeflow.org/v2beta1";
  /** The older API version it also accepts, through the conversion webhook (what DARE's exec-api sends). */
  public readonly legacyApiVersion = "kubeflow.org/v1alpha1";
  /** The transform applied to the CRD's ConfigFile (exposed for tests). */
  public readonly crdTransform: pulumi.ResourceTransform;

  constructor(name: string, args: MpiOperatorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:mpi:MpiOperator", name, {}, opts);
    // The image keeps the CRD's release tag (MPI_OPERATOR_VERSION): the loader checked it (lib/config.ts, images.mpi-operator).

    const childOpts = { provider: args.provider, parent: this };
    const ns = createNamespace("mpiOperator", childOpts);
    this.namespace = NAMESPACES.mpiOperator.name;
    const labels = {
      app: "mpi-operator",
      "app.kubernetes.io/name": "mpi-operator",
      "app.kubernetes.io/component": "mpijob",
      "app.kubernetes.io/version": MPI_OPERATOR_VERSION,
    };

    // v1alpha1 -> v2beta1 conversion for exec-api's jobs: the webhook, and the CRD changes that call it.
    const conversion = new MpiJobConversion(
      `${name}-conversion`,
      {
        provider: args.provider,
        namespace: this.namespace,
        image: args.conversionImage ?? MPIJOB_CONVERSION_IMAGE,
        sharedFsClaim: SHARED_FS_CLAIM,
      },
      { parent: this, dependsOn: [ns] },
    );
    this.crdTransform = mpijobCrdTransform(conversion.webhook);
    const crd = new k8s.yaml.v2.ConfigFile(
      `${name}-crd`,
      { file: args.crdSource ?? MPI_OPERATOR_CRD_SOURCE },
      { ...childOpts, transforms: [this.crdTransform] },
    );

    const sa = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: { name: "mpi-operator", namespace: this.namespace, labels },
      },
      { ...childOpts, dependsOn: [ns] },
    );
    // The operator watches MPIJobs in every namespace and creates their pods, Services, Secrets,
    // ConfigMaps and launcher Jobs there: cluster-wide while the jobs share the DARE namespace (a
    // namespace of their own, with the operator's rights a Role there, is docs/mpi-workflows.md's open
    // item). Upstream's rules (manifests/base/cluster-role.yaml, release-0.8) minus what v0.8.2's controller
    // never calls: pods/exec (0.1.0's kubectl-exec launcher; v2beta1 reaches workers over SSH), endpoints and
    // customresourcedefinitions (no client for either in pkg/ or cmd/ at v0.8.2), and the gang schedulers'
    // PodGroups and Queues (no gang scheduler is installed).
    const role = new k8s.rbac.v1.ClusterRole(
      `${name}-role`,
      {
        metadata: { name: "mpi-operator", labels },
        rules: MPI_OPERATOR_RULES,
      },
      childOpts,
    );
    new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-binding`,
      {
        metadata: { name: "mpi-operator", labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "mpi-operator" },
        subjects: [{ kind: "ServiceAccount", name: "mpi-operator", namespace: this.namespace }],
      },
      { ...childOpts, dependsOn: [role, sa] },
    );

    const probe = { httpGet: { path: "/healthz", port: HEALTH_PORT }, periodSeconds: 20, timeoutSeconds: 5 };
    new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: "mpi-operator", namespace: this.namespace, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "mpi-operator" } },
          template: {
            metadata: {
              labels: { ...labels, service: "mpi-operator" },
              annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(METRICS_PORT), "prometheus.io/path": "/metrics" },
            },
            spec: {
              serviceAccountName: "mpi-operator",
              securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                {
                  name: "mpi-operator",
                  image: args.image,
                  args: ["-alsologtostderr", `--lock-namespace=${this.namespace}`, `--monitoring-port=${METRICS_PORT}`],
                  ports: [
                    { name: "health", containerPort: HEALTH_PORT },
                    { name: "metrics", containerPort: METRICS_PORT },
                  ],
                  livenessProbe: { ...probe, initialDelaySeconds: 15 },
                  readinessProbe: probe,
                  resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } },
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                },
              ],
              volumes: [{ name: "tmp", emptyDir: {} }],
            },
          },
        },
      },
      { ...childOpts, dependsOn: [crd, sa] },
    );

    this.registerOutputs({ namespace: this.namespace, apiVersion: this.apiVersion });
  }
}
