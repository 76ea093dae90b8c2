/**
 * The MPIJob conversion webhook: DARE's exec-api creates MPIJobs at kubeflow.org/v1alpha1 (mpi-operator
 * 0.1.0's API), the operator the program installs (v0.8.2) serves only kubeflow.org/v2beta1, and 0.1.0
 * does not run on Kubernetes 1.35+. The MPIJob CRD therefore also serves v1alpha1 (deprecated, not
 * stored) and asks this webhook to convert between the two (docs/mpi-workflows.md):
 *  - `withV1alpha1Conversion` is the pure function that adds the v1alpha1 version and the conversion
 *    stanza to the upstream CRD; the MPI operator component applies it as a `transforms` entry of the
 *    CRD's ConfigFile, so the CRD still comes from the pinned upstream URL and is applied whole, by one
 *    field manager (`spec.versions` is an atomic list for server-side apply: a second manager could not
 *    add one version to it, only replace the whole list);
 *  - `MpiJobConversion` runs mpijob-conversion/webhook.js (one dependency-free file, delivered in a
 *    ConfigMap) in the official node image, over HTTPS with a certificate from cert-manager (a
 *    self-signed Issuer in the operator's namespace); cert-manager's cainjector puts the CA into the
 *    CRD's `caBundle` (annotation `cert-manager.io/inject-ca-from`) and renews the certificate, which the
 *    script re-reads every minute.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS } from "../../lib/config-keys";

/**
 * The official Node.js image the webhook runs in: tag listed in docker-library/official-images
 * library/node (commit 37079fb, 2026-08-21: "24.19.0-alpine3.24", built from nodejs/docker-node
 * fd1bf45, 24/alpine3.24). Node 24 is the maintained LTS line; the image's user `node` is uid 1000.
 */
/** The pinned runtime image (declared with the other images in config-keys.ts, dare:images.mpijob-conversion). */
export const MPIJOB_CONVERSION_IMAGE = CONFIG_KEYS.images.default["mpijob-conversion"];
/** The webhook script; the same file runs in the cluster and in tests/mpijob-conversion.test.ts. */
export const WEBHOOK_SCRIPT_FILE = path.join(__dirname, "mpijob-conversion", "webhook.js");
export const MPIJOB_CRD_NAME = "mpijobs.kubeflow.org";

const NAME = "mpijob-conversion";
const CONTAINER_PORT = 8443;
const SCRIPT_DIR = "/opt/mpijob-conversion";
const TLS_DIR = "/etc/mpijob-conversion/tls";
const RUN_AS = 1000; // `node` in the official image

/** Where the API server reaches the webhook. */
export interface ConversionWebhookRef {
  /** In-cluster Service (namespace, name, port, path); or `url` for a webhook outside the cluster (tests). */
  service?: { namespace: string; name: string; port: number; path: string };
  url?: string;
  /** PEM bundle to trust; with `certificate` cert-manager's cainjector fills it in instead. */
  caBundle?: string;
  /** cert-manager Certificate `<namespace>/<name>` whose CA the cainjector injects into the CRD. */
  certificate?: string;
}

export const DEPRECATION_WARNING =
  "kubeflow.org/v1alpha1 MPIJob (mpi-operator 0.1.0) is deprecated: it is converted to and stored as kubeflow.org/v2beta1; use kubeflow.org/v2beta1";

// CRD schemas and objects: untyped JSON, walked recursively.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A schema without descriptions and defaults (keys named so inside `properties` are field names and stay). */
function stripSchema(node: Json, keepDefault = false): Json {
  if (Array.isArray(node)) return node.map((n) => stripSchema(n));
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, Json> = {};
  // The API server requires a default (or `required`) on every key of a map-list (x-kubernetes-list-map-keys,
  // e.g. ports[].protocol): those defaults stay, the others go.
  const mapKeys = new Set<string>(((node as Record<string, Json>)["x-kubernetes-list-map-keys"] as string[] | undefined) ?? []);
  for (const [k, v] of Object.entries(node)) {
    if (k === "description" || (k === "default" && !keepDefault)) continue;
    if (k === "items" && mapKeys.size > 0 && v && typeof v === "object" && !Array.isArray(v)) {
      const items = v as Record<string, Json>;
      const properties = (items.properties ?? {}) as Record<string, Json>;
      out[k] = {
        ...(stripSchema(items) as Record<string, Json>),
        properties: Object.fromEntries(Object.entries(properties).map(([f, s]) => [f, stripSchema(s, mapKeys.has(f))])),
      };
      continue;
    }
    out[k] =
      k === "properties" && v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v as Record<string, Json>).map(([f, s]) => [f, stripSchema(s)]))
        : stripSchema(v);
  }
  return out;
}

/**
 * The structural schema of mpi-operator 0.1.0's MPIJob (pkg/apis/kubeflow/v1alpha1/types.go at tag 0.1.0:
 * gpus, launcherOnMaster, backoffLimit, replicas, template; status launcherStatus, workerReplicas), with
 * the pod template schema of the v2beta1 version it will run as (without descriptions and defaults, so
 * that a v1alpha1 object reads back as it was written; only the defaults the API server requires of
 * map-list keys stay: a port without a protocol reads back with `protocol: TCP`).
 */
export function v1alpha1Schema(podTemplateSchema: Json): Json {
  const int32 = (minimum?: number) => ({ type: "integer", format: "int32", ...(minimum === undefined ? {} : { minimum }) });
  return {
    openAPIV3Schema: {
      type: "object",
      description: "MPIJob of mpi-operator 0.1.0, converted to and stored as kubeflow.org/v2beta1 by the mpijob-conversion webhook.",
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: { type: "object" },
        spec: {
          type: "object",
          description: "Exactly one of replicas and gpus.",
          properties: {
            gpus: { ...int32(1), description: "Total number of GPUs: one worker per GPU." },
            launcherOnMaster: { type: "boolean", description: "Run the launcher on a control-plane node." },
            backoffLimit: { ...int32(0), description: "Retries of the launcher before the job fails (default 6)." },
            replicas: { ...int32(1), description: "Number of workers." },
            template: stripSchema(podTemplateSchema),
          },
        },
        status: {
          type: "object",
          properties: {
            launcherStatus: { type: "string", enum: ["Active", "Succeeded", "Failed"] },
            workerReplicas: int32(),
          },
        },
      },
    },
  };
}

/**
 * The upstream MPIJob CRD (v0.8.2) with kubeflow.org/v1alpha1 served (deprecated, not stored) and webhook
 * conversion. Pure: returns a new object, and throws when the input is not the CRD it was written for.
 */
export function withV1alpha1Conversion(crd: Json, webhook: ConversionWebhookRef): Json {
  if (crd?.kind !== "CustomResourceDefinition" || crd?.metadata?.name !== MPIJOB_CRD_NAME) {
    throw new Error(
      `withV1alpha1Conversion: expected the CustomResourceDefinition ${MPIJOB_CRD_NAME}, got ${crd?.kind} ${crd?.metadata?.name}`,
    );
  }
  if ((webhook.service === undefined) === (webhook.url === undefined)) {
    throw new Error("withV1alpha1Conversion: exactly one of service and url");
  }
  const out = JSON.parse(JSON.stringify(crd));
  const versions: Json[] = (out.spec?.versions ?? []).filter((v: Json) => v?.name !== "v1alpha1");
  const v2beta1 = versions.find((v) => v?.name === "v2beta1");
  if (!v2beta1 || v2beta1.storage !== true || v2beta1.served !== true) {
    throw new Error(`withV1alpha1Conversion: ${MPIJOB_CRD_NAME} has no served storage version v2beta1`);
  }
  const template =
    v2beta1.schema?.openAPIV3Schema?.properties?.spec?.properties?.mpiReplicaSpecs?.additionalProperties?.properties?.template;
  if (!template || template.type !== "object") {
    throw new Error(`withV1alpha1Conversion: v2beta1 of ${MPIJOB_CRD_NAME} has no pod template schema at spec.mpiReplicaSpecs.*.template`);
  }
  versions.push({
    name: "v1alpha1",
    served: true,
    storage: false,
    deprecated: true,
    deprecationWarning: DEPRECATION_WARNING,
    schema: v1alpha1Schema(template),
    subresources: { status: {} },
  });
  out.spec.versions = versions;
  const clientConfig: Json = webhook.service ? { service: { ...webhook.service } } : { url: webhook.url };
  if (webhook.caBundle) clientConfig.caBundle = Buffer.from(webhook.caBundle).toString("base64");
  out.spec.conversion = { strategy: "Webhook", webhook: { conversionReviewVersions: ["v1"], clientConfig } };
  if (webhook.certificate) {
    out.metadata.annotations = { ...(out.metadata.annotations ?? {}), "cert-manager.io/inject-ca-from": webhook.certificate };
  }
  return out;
}

/** A `transforms` entry that applies `withV1alpha1Conversion` to the MPIJob CRD and leaves every other resource alone. */
export function mpijobCrdTransform(webhook: ConversionWebhookRef): pulumi.ResourceTransform {
  return (args) => {
    if (args.type !== "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition" || args.props?.metadata?.name !== MPIJOB_CRD_NAME) {
      return undefined;
    }
    return { props: withV1alpha1Conversion(args.props, webhook), opts: args.opts };
  };
}

export interface MpiJobConversionArgs {
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** Namespace of the webhook (the operator's). */
  namespace: string;
  /** Node.js image (MPIJOB_CONVERSION_IMAGE). */
  image: string;
  /** The claim a Rook flexVolume of a v1alpha1 job becomes (SHARED_FS_CLAIM of the DARE services). */
  sharedFsClaim: string;
  /** Replicas of the webhook (2: a rolling update or a drain never leaves v1alpha1 clients without it). */
  replicas?: number;
}

export class MpiJobConversion extends pulumi.ComponentResource {
  /** Where the API server calls the webhook, and the cert-manager Certificate whose CA it trusts. */
  public readonly webhook: ConversionWebhookRef;

  constructor(name: string, args: MpiJobConversionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:mpi:MpiJobConversion", name, {}, opts);
    const k8sOpts = { provider: args.provider, parent: this };
    const ns = args.namespace;
    const labels = {
      app: NAME,
      "app.kubernetes.io/name": NAME,
      "app.kubernetes.io/component": "conversion-webhook",
      "app.kubernetes.io/part-of": "mpi-operator",
    };
    const selector = { "app.kubernetes.io/name": NAME };
    const script = fs.readFileSync(WEBHOOK_SCRIPT_FILE, "utf8");
    const tlsSecret = `${NAME}-tls`;

    const issuer = new k8s.apiextensions.CustomResource(
      `${name}-issuer`,
      {
        apiVersion: "cert-manager.io/v1",
        kind: "Issuer",
        metadata: { name: `${NAME}-selfsigned`, namespace: ns, labels },
        spec: { selfSigned: {} },
      },
      k8sOpts,
    );
    // A self-signed serving certificate: its own CA, which the cainjector copies into the CRD.
    new k8s.apiextensions.CustomResource(
      `${name}-certificate`,
      {
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: NAME, namespace: ns, labels },
        spec: {
          secretName: tlsSecret,
          commonName: `${NAME}.${ns}.svc`,
          dnsNames: [NAME, `${NAME}.${ns}`, `${NAME}.${ns}.svc`, `${NAME}.${ns}.svc.cluster.local`],
          duration: "2160h",
          renewBefore: "720h",
          privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
          usages: ["server auth", "digital signature"],
          issuerRef: { group: "cert-manager.io", kind: "Issuer", name: `${NAME}-selfsigned` },
        },
      },
      { ...k8sOpts, dependsOn: [issuer] },
    );

    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-script`,
      {
        metadata: { name: `${NAME}-script`, namespace: ns, labels },
        data: { "webhook.js": script },
      },
      k8sOpts,
    );

    const probe = { httpGet: { scheme: "HTTPS", path: "/healthz", port: "https" }, periodSeconds: 10, timeoutSeconds: 3 };
    new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: NAME, namespace: ns, labels },
        spec: {
          replicas: args.replicas ?? 2,
          selector: { matchLabels: selector },
          template: {
            metadata: {
              labels,
              // A new script rolls the pods (the ConfigMap's content is not part of the pod spec otherwise).
              annotations: { "dare.io/script-sha256": createHash("sha256").update(script).digest("hex") },
            },
            spec: {
              automountServiceAccountToken: false,
              securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                {
                  name: NAME,
                  image: args.image,
                  command: ["node", `${SCRIPT_DIR}/webhook.js`],
                  env: [
                    { name: "PORT", value: String(CONTAINER_PORT) },
                    { name: "TLS_CERT_FILE", value: `${TLS_DIR}/tls.crt` },
                    { name: "TLS_KEY_FILE", value: `${TLS_DIR}/tls.key` },
                    { name: "SHARED_FS_CLAIM", value: args.sharedFsClaim },
                    { name: "NODE_OPTIONS", value: "--max-old-space-size=192" },
                  ],
                  ports: [{ name: "https", containerPort: CONTAINER_PORT }],
                  livenessProbe: { ...probe, initialDelaySeconds: 5 },
                  readinessProbe: probe,
                  resources: { requests: { cpu: "10m", memory: "48Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                  volumeMounts: [
                    { name: "script", mountPath: SCRIPT_DIR, readOnly: true },
                    { name: "tls", mountPath: TLS_DIR, readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "script", configMap: { name: `${NAME}-script` } },
                { name: "tls", secret: { secretName: tlsSecret } },
              ],
            },
          },
        },
      },
      { ...k8sOpts, dependsOn: [configMap] },
    );

    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: NAME, namespace: ns, labels },
        spec: { type: "ClusterIP", selector, ports: [{ name: "https", port: 443, targetPort: "https", protocol: "TCP" }] },
      },
      k8sOpts,
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: { name: NAME, namespace: ns, labels },
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
      },
      k8sOpts,
    );

    this.webhook = { service: { namespace: ns, name: NAME, port: 443, path: "/convert" }, certificate: `${ns}/${NAME}` };
    this.registerOutputs({ service: `${ns}/${NAME}` });
  }
}
