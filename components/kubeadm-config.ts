/**
 * kubeadm's configuration files (API kubeadm.k8s.io/v1beta4), rendered from the stack configuration.
 * The bootstrap token is a placeholder here: the host script substitutes it from its (secret) stdin,
 * so these files stay readable in the render and in `pulumi preview`.
 */
import * as YAML from "yaml";
import { NetworkSpec } from "./config";
import { ApiEndpoint } from "./hosts";

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
 * firewall and the security groups admit these ports from cluster members only (`firewallRules`).
 */
export const METRICS_PORTS = { controllerManager: 10257, scheduler: 10259, etcd: 2381, kubeProxy: 10249 } as const;

export interface NodeIdentity {
  /** host name = node name */
  name: string;
  /** address the node's kubelet (and a control plane's API server and etcd) advertise */
  privateAddress: string;
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
    ],
  };
}

const bootstrapTokens = [{
  token: TOKEN_PLACEHOLDER,
  ttl: TOKEN_TTL,
  usages: ["signing", "authentication"],
  groups: ["system:bootstrappers:kubeadm:default-node-token"],
  description: "DARE: joins of this pulumi up (revoked after them)",
}];

export function endpoint(api: ApiEndpoint): string {
  return `${api.privateAddress}:${api.port}`;
}

/** `kubeadm init --config`: the first control plane, the cluster-wide settings, the kubelet's and kube-proxy's. */
export function initConfig(cluster: ClusterSettings, node: NodeIdentity): string {
  const sans = [...new Set([cluster.apiServer.publicAddress, cluster.apiServer.privateAddress])];
  return yamlDocs(
    {
      apiVersion: KUBEADM_API,
      kind: "InitConfiguration",
      bootstrapTokens,
      localAPIEndpoint: { advertiseAddress: node.privateAddress, bindPort: cluster.apiServer.port },
      nodeRegistration: nodeRegistration(cluster, node),
    },
    {
      apiVersion: KUBEADM_API,
      kind: "ClusterConfiguration",
      clusterName: cluster.clusterName,
      kubernetesVersion: `v${cluster.kubernetesVersion}`,
      // Nodes reach the API here: the load balancer, or the first control plane.
      controlPlaneEndpoint: endpoint(cluster.apiServer),
      certificatesDir: "/etc/kubernetes/pki",
      // The CAs from Pulumi are ECDSA P-256; kubeadm's leaf certificates match them.
      encryptionAlgorithm: "ECDSA-P256",
      apiServer: { certSANs: sans },
      // Metrics on every address (see METRICS_PORTS); kubeadm still probes their health on 127.0.0.1.
      controllerManager: { extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] },
      scheduler: { extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] },
      etcd: { local: { extraArgs: [{ name: "listen-metrics-urls", value: `http://0.0.0.0:${METRICS_PORTS.etcd}` }] } },
      networking: { podSubnet: cluster.network.podCidr, serviceSubnet: cluster.network.serviceCidr, dnsDomain: "cluster.local" },
    },
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      cgroupDriver: "systemd",
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
    ...(controlPlane ? { controlPlane: { localAPIEndpoint: { advertiseAddress: node.privateAddress, bindPort: cluster.apiServer.port } } } : {}),
  });
}
