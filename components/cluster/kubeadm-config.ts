/**
 * kubeadm's configuration files (API kubeadm.k8s.io/v1beta4), rendered from the stack configuration.
 * The bootstrap token is a placeholder here: the host script substitutes it from its (secret) stdin,
 * so these files stay readable in the render and in `pulumi preview`.
 */
import * as YAML from "yaml";
import { NetworkSpec } from "../../lib/config";
import { ApiEndpoint } from "../../lib/hosts";
import type { ControlPlaneExtraArgs, ControlPlaneComponent, NodeSettings } from "../../lib/node-settings";

export const KUBEADM_API = "kubeadm.k8s.io/v1beta4";
export const TOKEN_PLACEHOLDER = "@BOOTSTRAP_TOKEN@";
export const CRI_SOCKET = "unix:///run/containerd/containerd.sock";
/** The sandbox image kubeadm ≥1.34 expects; containerd is configured with the same. */
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1";
/**
 * The bootstrap token lives until the joins it was minted for are done (the token-revoke step deletes it),
 * not for a fixed time: a join that failed and is retried days later still finds it valid.
 */
export const TOKEN_TTL = "0s";
/**
 * Where the control-plane components and kube-proxy serve their metrics. kubeadm binds them to
 * 127.0.0.1; here they listen on every address so Prometheus (in a pod) can scrape them. The host
 * firewall and the security groups admit these ports from cluster members only (`firewallRules` in host-plan.ts).
 * Not bound to the node's private address: that is per host, and the controller manager's and
 * scheduler's settings live in the one cluster-wide ClusterConfiguration every control plane shares.
 * The controller manager and scheduler answer /metrics only to authenticated and authorised callers
 * (their secure port delegates both to the API server; only /healthz, /readyz and /livez are always
 * allowed: `--authorization-always-allow-paths`), so a member that reaches the port still needs RBAC.
 */
export const METRICS_PORTS = { controllerManager: 10257, scheduler: 10259, etcd: 2381, kubeProxy: 10249 } as const;

/**
 * Files the API server reads (or writes) on every control plane, each mounted into its static pod at the
 * same path (`apiServer.extraVolumes`). The pki step places the configuration files before kubeadm runs.
 */
export const CONTROL_PLANE_FILES = {
  /** EncryptionConfiguration: how Secrets are encrypted in etcd (root-only: it holds the keys) */
  encryptionDir: "/etc/kubernetes/enc",
  encryptionConfig: "/etc/kubernetes/enc/encryption.yaml",
  /** the audit Policy */
  auditPolicy: "/etc/kubernetes/audit/policy.yaml",
  /** the audit log and its rotated copies */
  auditLogDir: "/var/log/kubernetes/audit",
  auditLog: "/var/log/kubernetes/audit/audit.log",
} as const;

/** Audit log rotation: days kept, rotated files kept, megabytes before rotation (at most ~1.1 GB per control plane). */
export const AUDIT_LOG_ROTATION = { maxAgeDays: 30, maxBackups: 10, maxSizeMb: 100 } as const;

/** An encryption key's name: what the EncryptionConfiguration and the key's resource name accept. */
export const ENCRYPTION_KEY_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/** A Secret encryption key: its name in the EncryptionConfiguration and 32 random bytes, base64. */
export interface EncryptionKey {
  name: string;
  /** base64 of 32 bytes (secret) */
  secret: string;
}

/**
 * The API server's EncryptionConfiguration: Secrets encrypted with `secretbox` (XSalsa20 and Poly1305, a
 * 32-byte key; Kubernetes' "Encrypting Confidential Data at Rest" rates it strong and, with aescbc, the
 * provider for static keys — aesgcm needs automated rotation every 200k writes). The first key encrypts
 * new writes, every listed key decrypts; `identity` last still reads Secrets written before encryption was on.
 */
export function encryptionConfiguration(keys: EncryptionKey[]): string {
  if (keys.length === 0) throw new Error("encryptionConfiguration: at least one key");
  return YAML.stringify(
    {
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "EncryptionConfiguration",
      resources: [
        {
          resources: ["secrets"],
          providers: [{ secretbox: { keys: keys.map((k) => ({ name: k.name, secret: k.secret })) } }, { identity: {} }],
        },
      ],
    },
    { lineWidth: 0 },
  );
}

/**
 * The audit policy: who did what to which object, at `Metadata` level (user, verb, resource, time, response
 * code; never a request or response body). Secrets, ConfigMaps, service-account tokens and TokenReviews
 * come first, so no later rule can raise them above Metadata: their bodies are credentials. High-volume
 * reads that say nothing about a person (health probes, leases, kube-proxy's watches) are not logged.
 */
export function auditPolicy(): string {
  return YAML.stringify(
    {
      apiVersion: "audit.k8s.io/v1",
      kind: "Policy",
      // One event per request (at its response), not a second at reception.
      omitStages: ["RequestReceived"],
      rules: [
        {
          level: "Metadata",
          resources: [
            { group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"] },
            { group: "authentication.k8s.io", resources: ["tokenreviews"] },
          ],
        },
        { level: "None", nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/metrics"] },
        { level: "None", resources: [{ group: "coordination.k8s.io", resources: ["leases"] }], verbs: ["get", "update", "watch"] },
        { level: "None", users: ["system:kube-proxy"], verbs: ["watch"] },
        { level: "None", resources: [{ group: "", resources: ["events"] }] },
        { level: "Metadata" },
      ],
    },
    { lineWidth: 0 },
  );
}

/** A command-line flag of a control-plane component, as kubeadm v1beta4 lists them (`Arg`: name, value). */
export interface ComponentArg {
  name: string;
  value: string;
}

/**
 * The flags the program gives the control-plane components itself (one place: node-settings.ts refuses
 * them as operator extra arguments). Metrics on every address: see METRICS_PORTS; kubeadm still probes
 * their health on 127.0.0.1.
 */
export const PROGRAM_EXTRA_ARGS: Record<ControlPlaneComponent, readonly ComponentArg[]> = {
  apiServer: [
    { name: "encryption-provider-config", value: CONTROL_PLANE_FILES.encryptionConfig },
    // Re-read when the file changes (key rotation, docs/kubernetes.md) without restarting the API server.
    { name: "encryption-provider-config-automatic-reload", value: "true" },
    { name: "audit-policy-file", value: CONTROL_PLANE_FILES.auditPolicy },
    { name: "audit-log-path", value: CONTROL_PLANE_FILES.auditLog },
    { name: "audit-log-maxage", value: String(AUDIT_LOG_ROTATION.maxAgeDays) },
    { name: "audit-log-maxbackup", value: String(AUDIT_LOG_ROTATION.maxBackups) },
    { name: "audit-log-maxsize", value: String(AUDIT_LOG_ROTATION.maxSizeMb) },
    { name: "profiling", value: "false" },
    // Kubelets serve certificates the cluster CA signed (serverTLSBootstrap below): verify them, so
    // logs, exec and port-forward reach the real kubelet, not whoever answers on its address.
    { name: "kubelet-certificate-authority", value: "/etc/kubernetes/pki/ca.crt" },
  ],
  controllerManager: [
    { name: "bind-address", value: "0.0.0.0" },
    { name: "profiling", value: "false" },
  ],
  scheduler: [
    { name: "bind-address", value: "0.0.0.0" },
    { name: "profiling", value: "false" },
  ],
};

/** A component's flags: the program's, then the operator's (dare:controlPlaneExtraArgs, validated never to repeat one). */
function componentExtraArgs(cluster: ClusterSettings, component: ControlPlaneComponent): ComponentArg[] {
  const operator = cluster.controlPlaneExtraArgs?.[component] ?? {};
  return [...PROGRAM_EXTRA_ARGS[component], ...Object.entries(operator).map(([name, value]) => ({ name, value }))];
}

export interface NodeIdentity {
  /** host name = node name */
  name: string;
  /** address the node's kubelet (and a control plane's API server and etcd) advertise */
  privateAddress: string;
  /** its pool's labels and taints, registered with the node (workers; control planes keep kubeadm's taint) */
  settings?: Pick<NodeSettings, "labels" | "taints">;
}

export interface ClusterSettings {
  clusterName: string;
  /** MAJOR.MINOR.PATCH */
  kubernetesVersion: string;
  apiServer: ApiEndpoint;
  network: Pick<NetworkSpec, "podCidr" | "serviceCidr">;
  /**
   * Kubelets run with `--cloud-provider=external`: a cloud controller manager (OCCM on OpenStack)
   * initialises each node (providerID, addresses) and only then lifts the node's
   * `node.cloudprovider.kubernetes.io/uninitialized` taint.
   */
  externalCloudProvider: boolean;
  /** The operator's extra flags of the API server, controller manager and scheduler (dare:controlPlaneExtraArgs). */
  controlPlaneExtraArgs?: ControlPlaneExtraArgs;
}

const yamlDocs = (...docs: object[]) => docs.map((d) => YAML.stringify(d, { lineWidth: 0 })).join("---\n");

function nodeRegistration(cluster: ClusterSettings, node: NodeIdentity) {
  return {
    name: node.name,
    criSocket: CRI_SOCKET,
    kubeletExtraArgs: [
      // Hosts may have several interfaces (a floating IP, a storage network): pin the cluster one.
      { name: "node-ip", value: node.privateAddress },
      // OCCM finds a node's load-balancer members and instance by its providerID, which only a
      // cloud controller sets, and only on nodes whose kubelet registered with an external provider.
      // Until then the node carries the uninitialized taint. No deadlock: Calico (calico-node, typha
      // and the tigera operator tolerate every taint) readies the nodes first, and OCCM (host network,
      // host DNS, tolerating that taint) needs nothing else to run; CoreDNS, Traefik and every other
      // workload are scheduled once OCCM has initialised the nodes (networking.ts installs OCCM before Traefik).
      ...(cluster.externalCloudProvider ? [{ name: "cloud-provider", value: "external" }] : []),
      ...poolLabelArgs(node),
    ],
    ...poolTaints(node),
  };
}

/**
 * The pool's labels, set by the kubelet when it registers the node (only labels NodeRestriction lets a
 * kubelet set pass the configuration's validation); k8s-node.sh keeps them in step afterwards.
 */
function poolLabelArgs(node: NodeIdentity): ComponentArg[] {
  const labels = node.settings?.labels ?? {};
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? [] : [{ name: "node-labels", value: keys.map((k) => `${k}=${labels[k]}`).join(",") }];
}

/**
 * The pool's taints, on the node from its registration so nothing is scheduled there before they are.
 * Left out when there are none: kubeadm then taints control planes as usual and workers not at all (an
 * empty list would take the control-plane taint away).
 */
function poolTaints(node: NodeIdentity): { taints?: { key: string; value?: string; effect: string }[] } {
  const taints = node.settings?.taints ?? [];
  return taints.length === 0
    ? {}
    : { taints: taints.map((t) => ({ key: t.key, ...(t.value === "" ? {} : { value: t.value }), effect: t.effect })) };
}

const bootstrapTokens = [
  {
    token: TOKEN_PLACEHOLDER,
    ttl: TOKEN_TTL,
    usages: ["signing", "authentication"],
    groups: ["system:bootstrappers:kubeadm:default-node-token"],
    description: "DARE: joins of this pulumi up (revoked after them)",
  },
];

export function endpoint(api: ApiEndpoint): string {
  return `${api.privateAddress}:${api.port}`;
}

/** The cluster-wide ClusterConfiguration: `kubeadm init` uploads it (ConfigMap kubeadm-config), joins and upgrades read it. */
export function clusterConfiguration(cluster: ClusterSettings): object {
  const sans = [...new Set([cluster.apiServer.publicAddress, cluster.apiServer.privateAddress])];
  return {
    apiVersion: KUBEADM_API,
    kind: "ClusterConfiguration",
    clusterName: cluster.clusterName,
    kubernetesVersion: `v${cluster.kubernetesVersion}`,
    // Nodes reach the API here: the load balancer, or the first control plane.
    controlPlaneEndpoint: endpoint(cluster.apiServer),
    certificatesDir: "/etc/kubernetes/pki",
    // The CAs from Pulumi are ECDSA P-256; kubeadm's leaf certificates match them.
    encryptionAlgorithm: "ECDSA-P256",
    apiServer: {
      certSANs: sans,
      extraArgs: componentExtraArgs(cluster, "apiServer"),
      extraVolumes: [
        {
          name: "encryption-config",
          hostPath: CONTROL_PLANE_FILES.encryptionDir,
          mountPath: CONTROL_PLANE_FILES.encryptionDir,
          readOnly: true,
          pathType: "Directory",
        },
        {
          name: "audit-policy",
          hostPath: CONTROL_PLANE_FILES.auditPolicy,
          mountPath: CONTROL_PLANE_FILES.auditPolicy,
          readOnly: true,
          pathType: "File",
        },
        {
          name: "audit-log",
          hostPath: CONTROL_PLANE_FILES.auditLogDir,
          mountPath: CONTROL_PLANE_FILES.auditLogDir,
          readOnly: false,
          pathType: "DirectoryOrCreate",
        },
      ],
    },
    // Metrics on every address (see METRICS_PORTS); kubeadm still probes their health on 127.0.0.1.
    controllerManager: { extraArgs: componentExtraArgs(cluster, "controllerManager") },
    scheduler: { extraArgs: componentExtraArgs(cluster, "scheduler") },
    etcd: { local: { extraArgs: [{ name: "listen-metrics-urls", value: `http://0.0.0.0:${METRICS_PORTS.etcd}` }] } },
    networking: { podSubnet: cluster.network.podCidr, serviceSubnet: cluster.network.serviceCidr, dnsDomain: "cluster.local" },
  };
}

/**
 * For k8s-control-plane.sh on a running control plane: its own endpoint and the ClusterConfiguration, to
 * write its static pod manifests again (`kubeadm init phase control-plane all`) and, on the first, upload
 * the ClusterConfiguration (`kubeadm init phase upload-config kubeadm`), so a change of
 * dare:controlPlaneExtraArgs reaches running control planes, later joins and later upgrades alike.
 * No bootstrap token: nothing here creates one.
 */
export function controlPlaneConfig(cluster: ClusterSettings, node: NodeIdentity): string {
  return yamlDocs(
    {
      apiVersion: KUBEADM_API,
      kind: "InitConfiguration",
      localAPIEndpoint: { advertiseAddress: node.privateAddress, bindPort: cluster.apiServer.port },
      nodeRegistration: { name: node.name, criSocket: CRI_SOCKET },
    },
    clusterConfiguration(cluster),
  );
}

/** `kubeadm init --config`: the first control plane, the cluster-wide settings, the kubelet's and kube-proxy's. */
export function initConfig(cluster: ClusterSettings, node: NodeIdentity): string {
  return yamlDocs(
    {
      apiVersion: KUBEADM_API,
      kind: "InitConfiguration",
      bootstrapTokens,
      localAPIEndpoint: { advertiseAddress: node.privateAddress, bindPort: cluster.apiServer.port },
      nodeRegistration: nodeRegistration(cluster, node),
    },
    clusterConfiguration(cluster),
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      cgroupDriver: "systemd",
      // The kubelet asks the cluster (signer kubernetes.io/kubelet-serving) for its serving certificate
      // instead of signing its own; k8s-kubelet-serving.sh approves each node's own request.
      serverTLSBootstrap: true,
    },
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      metricsBindAddress: `0.0.0.0:${METRICS_PORTS.kubeProxy}`,
    },
  );
}

/** `kubeadm token create --config`: only the token matters. */
export function tokenConfig(): string {
  return yamlDocs({ apiVersion: KUBEADM_API, kind: "InitConfiguration", bootstrapTokens });
}

/** `kubeadm join --config` for a control plane (`controlPlane` set) or a worker. */
export function joinConfig(cluster: ClusterSettings, node: NodeIdentity, discoveryHash: string, controlPlane: boolean): string {
  return yamlDocs({
    apiVersion: KUBEADM_API,
    kind: "JoinConfiguration",
    discovery: {
      bootstrapToken: {
        apiServerEndpoint: endpoint(cluster.apiServer),
        token: TOKEN_PLACEHOLDER,
        caCertHashes: [discoveryHash],
      },
    },
    nodeRegistration: nodeRegistration(cluster, node),
    // No certificateKey: the shared CAs are placed on the host beforehand (k8s-pki.sh).
    ...(controlPlane
      ? { controlPlane: { localAPIEndpoint: { advertiseAddress: node.privateAddress, bindPort: cluster.apiServer.port } } }
      : {}),
  });
}
