/**
 * Layer 2, Kubernetes: kubeadm over SSH on the IaaS layer's hosts. Yields the admin kubeconfig and
 * the `k8s.Provider` every later layer passes to its Kubernetes resources.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import * as command from "@pulumi/command";
import { ApiVirtualIpSpec, MirrorsSpec, NetworkSpec } from "../lib/config";
import { SshEndpoint, ApiEndpoint, Host } from "../lib/hosts";
import { StepRecorder } from "../lib/host-step";
import { ClusterNode } from "../lib/host-plan";
import { ENCRYPTION_KEY_NAME } from "./cluster/kubeadm-config";
import { ControlPlaneExtraArgs } from "../lib/node-settings";
import { createClusterPki, ClusterPki } from "./cluster/pki";
import { CERTIFICATE_RENEWAL_DAYS_MAX, CERTIFICATE_RENEWAL_DAYS_MIN } from "./cluster/certificate-renewal";
import { defaultOf } from "../lib/config-keys";
import { placeKubeVip } from "./cluster/phases/api-virtual-ip";
import { approveKubeletServing, installCertificateRenewal } from "./cluster/phases/certificates";
import { clusterContext } from "./cluster/phases/context";
import { joinControlPlanes } from "./cluster/phases/control-plane-joins";
import { initCluster, mintJoinToken, revokeJoinToken } from "./cluster/phases/init";
import { labelNodes } from "./cluster/phases/nodes";
import { distributePki } from "./cluster/phases/pki";
import { configureKubelets, prepareHosts } from "./cluster/phases/prepare";
import { osdRemoval } from "./cluster/phases/removal";
import { reconfigureControlPlanes, upgradeControlPlanes, upgradeWorkers } from "./cluster/phases/upgrades";
import { joinWorkers } from "./cluster/phases/worker-joins";

// Helpers that live next to the phase that uses them, exported here too for the layer's other users.
export { mirrorEnv } from "./cluster/phases/prepare";
export { KUBELET_SERVING_TIMEOUT_SECONDS } from "./cluster/phases/certificates";
export { CEPH_CLEAN_TIMEOUT_SECONDS } from "./cluster/phases/removal";
export { upgradeBatchSize, workerUpgradeWaves } from "./cluster/phases/upgrades";

export interface KubernetesClusterArgs {
  /**
   * Every host by name, role and pool, control planes first (the first one runs `kubeadm init`).
   * Plain values, so each host gets its own, stably named steps; see `clusterNodes()`.
   */
  nodes: ClusterNode[];
  /**
   * The same hosts with their addresses, by name, from the IaaS layer (`Infrastructure.hostByName`):
   * each host's steps depend on that host's machine only, never on another host's.
   */
  hosts: Record<string, pulumi.Input<Host>>;
  /** Where nodes (private) and operators (public) reach the Kubernetes API. */
  apiServer: pulumi.Input<ApiEndpoint>;
  /** SSH entry host for hosts without a public address; undefined when every host is reachable directly. */
  bastion: pulumi.Input<SshEndpoint | undefined>;
  /** Private key SSH logs in with (OpenSSH format, secret). */
  sshPrivateKey: pulumi.Input<string>;
  /** Private key SSH logs in to the bastion with (secret); undefined: sshPrivateKey. */
  bastionPrivateKey?: pulumi.Input<string>;
  /** Existing hosts' configured jump host: the address its SSH connections come from, which the host firewall admits. */
  jumpHostAddress?: string;
  /** Kubernetes MAJOR.MINOR.PATCH, without a leading v. */
  kubernetesVersion: string;
  /** The nodes' subnet and the pod and Service ranges (the same the network layer uses). */
  network: Pick<NetworkSpec, "cidr" | "podCidr" | "serviceCidr">;
  /** Cluster name in kubeadm's configuration and in the kubeconfig. */
  clusterName: string;
  /** Source ranges allowed to reach SSH and the API: the host firewall opens them as the security groups do. */
  adminCidrs: string[];
  /** The IaaS layer put a load balancer in front of the API (OpenStack with dare:apiLoadBalancer). */
  apiLoadBalancer: boolean;
  /**
   * The API's virtual IP (dare:apiVirtualIp), held by kube-vip on one control plane at a time; undefined: none.
   * The IaaS layer made it `apiServer.privateAddress`; here every control plane gets kube-vip's static pod
   * before kubeadm runs there. Not with `apiLoadBalancer`.
   */
  apiVirtualIp?: ApiVirtualIpSpec;
  /**
   * Kubelets register with `--cloud-provider=external` and wait for a cloud controller manager to
   * initialise their node: true on OpenStack (the networking layer installs OCCM there); default
   * false (existing hosts have no cloud controller, and a node would stay tainted for ever).
   */
  externalCloudProvider?: boolean;
  /**
   * Names of the keys that encrypt Secrets in etcd, in the EncryptionConfiguration's order: the first
   * encrypts new writes, every one decrypts. Each name gets its own 32 random bytes (a secret in the state).
   * Default `["key1"]`. Rotation is a sequence of updates of this list (docs/kubernetes.md).
   */
  secretsEncryptionKeys?: string[];
  /**
   * Days before expiry that certificates are renewed: kubeadm's, by each control plane's daily timer, and
   * the admin kubeconfig's, by `pulumi up`. Default: dare:certificateRenewalDays' default (90).
   */
  certificateRenewalDays?: number;
  /** The operator's extra flags of the API server, controller manager and scheduler (validated by the configuration). */
  controlPlaneExtraArgs?: ControlPlaneExtraArgs;
  /** Registry and apt mirrors the hosts use instead of the upstream sources (dare:mirrors); default none. */
  mirrors?: HostMirrors;
  /** Receives every host step as it is declared (the offline render's); undefined: recorded nowhere. */
  stepRecorder?: StepRecorder;
}

/** The hosts' mirrors: dare:mirrors with its CA as a certificate. */
export interface HostMirrors {
  /** registry name (docker.io, registry.k8s.io, host:port) → the mirror's endpoint URL */
  registries: Record<string, string>;
  /** apt repository → the mirror's base URL, serving the upstream repository's paths */
  apt: MirrorsSpec["apt"];
  /** PEM certificate of the CA that signed the mirrors' certificates; undefined: the hosts' trust store */
  caCertificate?: pulumi.Input<string>;
}

/** The admin kubeconfig: the cluster CA and an admin client certificate, for `server`. */
export function adminKubeconfig(clusterName: string, server: string, caPem: string, certPem: string, keyPem: string): string {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const user = `${clusterName}-admin`;
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: clusterName, cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(certPem), "client-key-data": b64(keyPem) } }],
    contexts: [{ name: clusterName, context: { cluster: clusterName, user } }],
    "current-context": clusterName,
  });
}

export interface ClusterSteps {
  prepare: Map<string, command.remote.Command>;
  /** per control plane, with dare:apiVirtualIp: kube-vip's static pod (empty without it) */
  kubeVip: Map<string, command.remote.Command>;
  pki: Map<string, command.remote.Command>;
  init: command.remote.Command;
  token: command.remote.Command;
  /** deletes the bootstrap token after every join */
  tokenRevoke: command.remote.Command;
  /** every host but the first control plane */
  join: Map<string, command.remote.Command>;
  /** on the first control plane, per joined host: labels it; deleted (drain, delete) before the host resets */
  node: Map<string, command.remote.Command>;
  /**
   * On the first control plane, per joined host with disks: deleted (its OSDs out, re-replicated, purged)
   * before that host's node step drains it. Keyed by host name.
   */
  osdHost: Map<string, command.remote.Command>;
  /**
   * On the first control plane, per disk of those hosts: deleted (that disk's OSD out, re-replicated,
   * purged) before the disk's volume attachment, from which the disk's path derives. Keyed `<host>/<j>`.
   */
  osdDisk: Map<string, command.remote.Command>;
  upgrade: Map<string, command.remote.Command>;
  /** On the first control plane, per worker: drains it before its upgrade step, uncordons it after. */
  drain: Map<string, command.remote.Command>;
  uncordon: Map<string, command.remote.Command>;
  /** On the first control plane, per host: approves that kubelet's own serving-certificate request. */
  kubeletServing: Map<string, command.remote.Command>;
  /**
   * Per control plane: the daily certificate check and renewal (and, on the first, the hourly approval of
   * renewed kubelet serving certificates), after that host's upgrade.
   */
  certificates: Map<string, command.remote.Command>;
  /** Per host, before it joins and on every change: its pool's kubelet settings (drop-in file), the kubelet restarted on change. */
  kubeletConfig: Map<string, command.remote.Command>;
  /** Per control plane, one after another: the static pod manifests and (first) the kubeadm-config ConfigMap in step with the configuration. */
  controlPlaneArgs: Map<string, command.remote.Command>;
  all: command.remote.Command[];
}

export class KubernetesCluster extends pulumi.ComponentResource {
  /** Admin kubeconfig (secret) for operators: the API's public address, group kubeadm:cluster-admins. */
  public readonly kubeconfig: pulumi.Output<string>;
  /** Provider for every Kubernetes resource of later layers; ready once the cluster is. */
  public readonly provider: k8s.Provider;
  /** The cluster CA certificate (PEM). */
  public readonly caCertPem: pulumi.Output<string>;
  /** The Kubernetes version the cluster runs after this update. */
  public readonly kubernetesVersion: string;

  /** The host steps, by kind: other layers order their own host steps after these (e.g. after preparation). */
  public readonly steps: ClusterSteps;

  private readonly pki: ClusterPki;

  constructor(name: string, args: KubernetesClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    // Checked before anything registers, so a bad combination creates nothing.
    const controlPlanes = args.nodes.filter((n) => n.role === "control-plane");
    if (args.nodes.length === 0 || args.nodes[0].role !== "control-plane") {
      throw new Error(
        `${name}: nodes must start with a control plane (it runs kubeadm init); got ${args.nodes.map((n) => n.name).join(", ") || "none"}`,
      );
    }
    if (controlPlanes.length % 2 === 0) {
      throw new Error(`${name}: ${controlPlanes.length} control planes: etcd needs an odd number`);
    }
    const names = new Set<string>();
    for (const n of args.nodes) {
      if (names.has(n.name)) throw new Error(`${name}: host ${n.name} appears twice`);
      names.add(n.name);
    }
    const keys = args.secretsEncryptionKeys ?? ["key1"];
    const badKeys = keys.filter((k) => !ENCRYPTION_KEY_NAME.test(k) || keys.indexOf(k) !== keys.lastIndexOf(k));
    if (keys.length === 0 || badKeys.length > 0) {
      throw new Error(
        `${name}: secretsEncryptionKeys ${JSON.stringify(keys)}: needs at least one key, each named once in lower-case ` +
          `letters, digits and dashes (e.g. ["key1"], or ["key2", "key1"] while rotating)`,
      );
    }
    if (args.apiVirtualIp && args.apiLoadBalancer) {
      throw new Error(`${name}: apiVirtualIp ${args.apiVirtualIp.address} and apiLoadBalancer both give the API an endpoint: choose one`);
    }
    const renewalDays = args.certificateRenewalDays ?? (defaultOf("certificateRenewalDays") as number);
    if (!Number.isInteger(renewalDays) || renewalDays < CERTIFICATE_RENEWAL_DAYS_MIN || renewalDays > CERTIFICATE_RENEWAL_DAYS_MAX) {
      throw new Error(
        `${name}: certificateRenewalDays ${renewalDays}: must be a whole number of days from ${CERTIFICATE_RENEWAL_DAYS_MIN} ` +
          `to ${CERTIFICATE_RENEWAL_DAYS_MAX} (e.g. 90)`,
      );
    }
    const missing = args.nodes.filter((n) => !(n.name in args.hosts)).map((n) => n.name);
    if (missing.length > 0) {
      throw new Error(
        `${name}: no address from the IaaS layer for ${missing.join(", ")} (hosts: ${Object.keys(args.hosts).join(", ") || "none"})`,
      );
    }
    super("dare:cluster:KubernetesCluster", name, {}, opts);

    this.kubernetesVersion = args.kubernetesVersion;
    this.pki = createClusterPki(name, this, renewalDays);
    this.caCertPem = this.pki.ca.certPem;

    const server = pulumi.output(args.apiServer).apply((api) => `https://${api.publicAddress}:${api.port}`);
    this.kubeconfig = pulumi.secret(
      pulumi
        .all([server, this.pki.ca.certPem, this.pki.adminCertPem, this.pki.adminKeyPem])
        .apply(([url, ca, cert, key]) => adminKubeconfig(args.clusterName, url, ca, cert, key)),
    );

    const steps = this.bootstrap(name, args, renewalDays);
    this.steps = steps;

    this.provider = new k8s.Provider(
      `${name}-k8s`,
      {
        kubeconfig: this.kubeconfig,
        // Replaced (and with it every Kubernetes object of later layers) only if this changes, never
        // because a kubeconfig field did: the endpoint and certificates are updates of the same cluster.
        clusterIdentifier: args.clusterName,
      },
      {
        parent: this,
        // Ready means: initialised, every node joined and labelled, every upgrade done.
        dependsOn: steps.all,
      },
    );

    this.registerOutputs({ kubeconfig: this.kubeconfig, caCertPem: this.caCertPem });
  }

  /**
   * Declares every host step, phase by phase (components/cluster/phases/, k0sctl's manager's list of
   * phases): each phase is handed exactly the earlier phases' outputs it depends on. The order of the calls
   * is also each host's order of steps in the render.
   */
  private bootstrap(name: string, args: KubernetesClusterArgs, renewalDays: number): ClusterSteps {
    const ctx = clusterContext(name, args, renewalDays, this);
    const clusterPki = this.pki;

    const prepare = prepareHosts(ctx);
    const kubeletConfig = configureKubelets(ctx, { prepare });
    const pki = distributePki(ctx, { pki: clusterPki });
    const kubeVip = placeKubeVip(ctx, { prepare });
    const init = initCluster(ctx, { prepare, kubeletConfig, pki, kubeVip });
    const token = mintJoinToken(ctx, { init });
    const controlPlanesJoined = joinControlPlanes(ctx, { prepare, kubeletConfig, pki, kubeVip, clusterPki, init, token });
    const controlPlanesUpgraded = upgradeControlPlanes(ctx, { init, controlPlanesJoined });
    const workersJoined = joinWorkers(ctx, {
      prepare,
      kubeletConfig,
      clusterPki,
      init,
      token,
      controlPlanesJoined,
      controlPlanesUpgraded,
    });
    const join = new Map([...controlPlanesJoined.joins, ...workersJoined]);
    const nodes = labelNodes(ctx, { joins: join });
    const controlPlaneArgs = reconfigureControlPlanes(ctx, { init, controlPlanesJoined, controlPlanesUpgraded });
    const tokenRevoke = revokeJoinToken(ctx, { init, token, joins: join });
    const { osdHost, osdDisk } = osdRemoval(ctx, { init, nodes });
    const workersUpgraded = upgradeWorkers(ctx, { controlPlanesUpgraded, workersJoined, nodes });
    const kubeletServing = approveKubeletServing(ctx, { init, nodes });
    const certificates = installCertificateRenewal(ctx, { controlPlanesUpgraded });

    const upgrade = new Map([...controlPlanesUpgraded.upgrades, ...workersUpgraded.upgrades]);
    return {
      prepare,
      kubeVip,
      pki,
      init: init.step,
      token: token.step,
      tokenRevoke,
      join,
      node: nodes,
      osdHost,
      osdDisk,
      upgrade,
      drain: workersUpgraded.drain,
      uncordon: workersUpgraded.uncordon,
      kubeletServing,
      certificates,
      kubeletConfig,
      controlPlaneArgs,
      all: [
        ...prepare.values(),
        ...kubeletConfig.values(),
        ...kubeVip.values(),
        ...controlPlaneArgs.values(),
        ...pki.values(),
        init.step,
        token.step,
        ...join.values(),
        tokenRevoke,
        ...nodes.values(),
        ...osdDisk.values(),
        ...osdHost.values(),
        ...upgrade.values(),
        ...workersUpgraded.drain.values(),
        ...workersUpgraded.uncordon.values(),
        ...kubeletServing.values(),
        ...certificates.values(),
      ],
    };
  }
}
