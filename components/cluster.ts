/**
 * Layer 2, Kubernetes: kubeadm over SSH on the IaaS layer's hosts. Yields the admin kubeconfig and
 * the `k8s.Provider` every later layer passes to its Kubernetes resources.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { ApiVirtualIpSpec, MirrorsSpec, NetworkSpec } from "./config";
import { nftablesRuleset, nodeSources } from "./host-firewall";
import { hostStep, HostRef, readScript, SshAccess } from "./host-step";
import { ApiEndpoint, Host, SshEndpoint } from "./hosts";
import { ClusterNode, firewallRules } from "./host-plan";
import {
  auditPolicy,
  ClusterSettings,
  controlPlaneConfig,
  ENCRYPTION_KEY_NAME,
  encryptionConfiguration,
  initConfig,
  joinConfig,
  PAUSE_IMAGE,
  tokenConfig,
} from "./kubeadm-config";
import {
  ControlPlaneExtraArgs,
  KUBELET_DROPIN_DIR,
  KUBELET_DROPIN_FILE,
  kubeletDropIn,
  labelWords,
  MANAGED_LABELS_ANNOTATION,
  MANAGED_TAINTS_ANNOTATION,
  mergeNodeSettings,
  taintWords,
} from "./node-settings";
import { kubeVipManifest } from "./kube-vip";
import { createClusterPki, ClusterPki } from "./pki";
import {
  certificateCheckCalendar,
  CERTIFICATE_RENEWAL_DAYS_MAX,
  CERTIFICATE_RENEWAL_DAYS_MIN,
  NODE_EXPORTER_TEXTFILE_DIR,
} from "./certificate-renewal";
import { defaultOf } from "./config-keys";

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

/**
 * The prepare step's mirror parameters, set only when used (k8s-prepare.sh reads an unset one as upstream).
 * REGISTRY_MIRRORS: a line per registry, `<registry> <endpoint> <override_path>`: an endpoint with a path
 * names the registry API's root there (containerd docs/hosts.md, override_path), as Harbor's proxy-cache
 * projects do (/v2/<project>).
 */
export function mirrorEnv(mirrors: HostMirrors | undefined): Record<string, pulumi.Input<string>> {
  if (!mirrors) return {};
  const registryLines = Object.keys(mirrors.registries)
    .sort()
    .map((registry) => {
      const endpoint = mirrors.registries[registry];
      return `${registry} ${endpoint} ${new URL(endpoint).pathname.replace(/\/+$/, "") !== ""}`;
    });
  const env: Record<string, pulumi.Input<string>> = {};
  if (registryLines.length > 0) env.REGISTRY_MIRRORS = registryLines.join("\n");
  if (mirrors.apt.ubuntu) env.UBUNTU_APT_MIRROR = mirrors.apt.ubuntu;
  if (mirrors.apt.kubernetes) env.KUBERNETES_APT_MIRROR = mirrors.apt.kubernetes;
  if (mirrors.apt.docker) env.DOCKER_APT_MIRROR = mirrors.apt.docker;
  if (mirrors.caCertificate !== undefined) env.MIRROR_CA_CERT = mirrors.caCertificate;
  return env;
}

/** Seconds the kubelet-serving step waits for a node's certificate request and for the kubelet to serve it. */
export const KUBELET_SERVING_TIMEOUT_SECONDS = 300;

/** Workers without OSDs upgraded at once: a tenth of them (at least one), so capacity stays while they drain. */
export function upgradeBatchSize(workers: number): number {
  return Math.max(1, Math.ceil(workers / 10));
}

/** Seconds the OSD removal waits for Ceph to re-replicate (every placement group active+clean) before it fails. */
export const CEPH_CLEAN_TIMEOUT_SECONDS = 3600;

/**
 * Worker upgrades in the order they run: lists that run one after another, the hosts of a list at once.
 * Workers that hold OSDs go alone, one after another (Rook's PodDisruptionBudgets let one OSD host
 * drain at a time; a second drain would wait on them until it timed out); the others, alongside,
 * in batches of `upgradeBatchSize`.
 */
export function workerUpgradeWaves(workers: ClusterNode[]): { osd: ClusterNode[][]; other: ClusterNode[][] } {
  const osd = workers.filter((w) => (w.disks ?? 0) > 0);
  const other = workers.filter((w) => (w.disks ?? 0) === 0);
  const batch = upgradeBatchSize(other.length);
  const waves: ClusterNode[][] = [];
  for (let i = 0; i < other.length; i += batch) waves.push(other.slice(i, i + batch));
  return { osd: osd.map((w) => [w]), other: waves };
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

  /** Declares every host step and their order (see the module comment in docs/kubernetes.md). */
  private bootstrap(name: string, args: KubernetesClusterArgs, renewalDays: number): ClusterSteps {
    const access: SshAccess = { privateKey: args.sshPrivateKey, bastion: args.bastion, bastionPrivateKey: args.bastionPrivateKey };
    const api = pulumi.output(args.apiServer);
    const hostOf = (node: ClusterNode): pulumi.Output<Host> => pulumi.output(args.hosts[node.name]);
    const ref = (node: ClusterNode): HostRef => ({ name: node.name, host: hostOf(node) });
    const step = (
      node: ClusterNode,
      stepName: string,
      script: string,
      env: Record<string, pulumi.Input<string>>,
      dependsOn: pulumi.Resource[],
      extra: { deleteScript?: string; triggers?: pulumi.Input<unknown>[]; rerunOnNewMachine?: boolean } = {},
    ) => hostStep("k8s", { host: ref(node), step: stepName, script, env, ...extra }, access, { parent: this, dependsOn });

    const [first, ...others] = args.nodes;
    const controlPlanes = args.nodes.filter((n) => n.role === "control-plane");
    const workers = args.nodes.filter((n) => n.role === "worker");
    const pki = this.pki;

    const token = pulumi.secret(
      pulumi
        .all([
          new random.RandomString(`${name}-token-id`, { length: 6, upper: false, special: false }, { parent: this }).result,
          // A RandomPassword: its result is a secret in the state too (a RandomString's is plain text there).
          new random.RandomPassword(`${name}-token-secret`, { length: 16, upper: false, special: false }, { parent: this }).result,
        ])
        .apply(([id, secret]) => `${id}.${secret}`),
    );

    const settings: pulumi.Output<ClusterSettings> = api.apply((apiServer) => ({
      clusterName: args.clusterName,
      kubernetesVersion: args.kubernetesVersion,
      apiServer,
      network: args.network,
      externalCloudProvider: args.externalCloudProvider ?? false,
      controlPlaneExtraArgs: args.controlPlaneExtraArgs,
    }));
    const privateAddress = (node: ClusterNode) => hostOf(node).apply((h) => h.privateAddress);
    // Steps that reach the API (kubeadm, kubectl) take its endpoint as a parameter: then they depend on the
    // load balancer, which a destroy or scale-in therefore removes only after them.
    const apiEndpoint = api.apply((a) => `${a.privateAddress}:${a.port}`);

    // Host preparation: every host at once, nothing before it.
    const rules = firewallRules(
      { adminCidrs: args.adminCidrs, network: args.network as NetworkSpec },
      args.apiLoadBalancer,
      args.jumpHostAddress,
    );
    // Machines the IaaS layer makes sit in the subnet; only configured (existing) hosts may sit outside
    // it, and their addresses are known from the configuration: no host's firewall waits for all machines.
    const members = pulumi.all(controlPlanes.map(privateAddress)).apply((controlPlane) => ({
      nodes: nodeSources(
        args.network.cidr,
        args.nodes.flatMap((n) => (n.privateAddress ? [n.privateAddress] : [])),
      ),
      controlPlane,
    }));
    // One ruleset per role: every worker's is the same text.
    const rulesets = new Map<ClusterNode["role"], pulumi.Output<string>>();
    const rulesetFor = (role: ClusterNode["role"]) => {
      if (!rulesets.has(role))
        rulesets.set(
          role,
          members.apply((m) => nftablesRuleset(rules, role, m, args.network.podCidr)),
        );
      return rulesets.get(role)!;
    };
    const prepare = new Map(
      args.nodes.map((node) => [
        node.name,
        step(
          node,
          "prepare",
          "k8s-prepare.sh",
          {
            KUBERNETES_VERSION: args.kubernetesVersion,
            PAUSE_IMAGE,
            FIREWALL_RULESET: rulesetFor(node.role),
            ...mirrorEnv(args.mirrors),
          },
          [],
        ),
      ]),
    );

    const kubeletConfig = this.kubeletConfigSteps(args.nodes, prepare, step);

    // Secrets in etcd: one 32-byte key per configured name, secret in the state and on the wire.
    const encryption = pulumi.secret(
      pulumi
        .all(
          (args.secretsEncryptionKeys ?? ["key1"]).map((keyName) =>
            new random.RandomBytes(`${name}-secrets-encryption-${keyName}`, { length: 32 }, { parent: this }).base64.apply((secret) => ({
              name: keyName,
              secret,
            })),
          ),
        )
        .apply(encryptionConfiguration),
    );

    // The shared CAs, the encryption configuration and the audit policy on every control plane, before kubeadm runs there.
    const pkiEnv = {
      CA_CERT: pki.ca.certPem,
      CA_KEY: pki.ca.keyPem,
      FRONT_PROXY_CA_CERT: pki.frontProxyCa.certPem,
      FRONT_PROXY_CA_KEY: pki.frontProxyCa.keyPem,
      ETCD_CA_CERT: pki.etcdCa.certPem,
      ETCD_CA_KEY: pki.etcdCa.keyPem,
      SA_KEY: pki.serviceAccountKeyPem,
      // Public, but an EC key's PEM repeats its private key's last line: kept out of the render with it.
      SA_PUB: pulumi.secret(pki.serviceAccountPublicKeyPem),
      ENCRYPTION_CONFIG: encryption,
      AUDIT_POLICY: auditPolicy(),
    };
    const pkiSteps = new Map(controlPlanes.map((node) => [node.name, step(node, "pki", "k8s-pki.sh", pkiEnv, [])]));

    // kube-vip's static pod on every control plane, before kubeadm runs there: kubeadm init and a control plane's
    // join reach the API at the VIP, which only exists once a kube-vip holds it (components/kube-vip.ts).
    const kubeVip = new Map<string, command.remote.Command>();
    const vip = args.apiVirtualIp;
    if (vip) {
      const manifest = api.apply((a) => {
        // The IaaS layer made the VIP the endpoint; anything else is a wiring bug, not a configuration.
        if (a.privateAddress !== vip.address)
          throw new Error(`${name}: API endpoint ${a.privateAddress} is not the virtual IP ${vip.address}`);
        return kubeVipManifest({ address: vip.address, port: a.port, interface: vip.interface, image: vip.image });
      });
      for (const node of controlPlanes) {
        kubeVip.set(
          node.name,
          step(
            node,
            "kube-vip",
            "k8s-kube-vip.sh",
            {
              KUBE_VIP_MANIFEST: manifest,
              API_ENDPOINT: apiEndpoint,
              NODE_ADDRESS: privateAddress(node),
              NODE_NAME: node.name,
              FIRST_CONTROL_PLANE: String(node === first),
            },
            [prepare.get(node.name)!],
          ),
        );
      }
    }
    const kubeVipOf = (node: ClusterNode) => (kubeVip.has(node.name) ? [kubeVip.get(node.name)!] : []);

    const init = step(
      first,
      "init",
      "k8s-kubeadm.sh",
      {
        KUBEADM_ACTION: "init",
        KUBEADM_CONFIG: pulumi
          .all([settings, privateAddress(first)])
          .apply(([s, address]) => initConfig(s, { name: first.name, privateAddress: address })),
        BOOTSTRAP_TOKEN: token,
        NODE_NAME: first.name,
      },
      [prepare.get(first.name)!, kubeletConfig.get(first.name)!, pkiSteps.get(first.name)!, ...kubeVipOf(first)],
      {
        // A lone control plane re-created is a lost cluster: init builds it again. With others still
        // running, init would start a second cluster: that host is re-joined by hand (docs/recovery.md).
        rerunOnNewMachine: controlPlanes.length === 1,
        // `pulumi destroy` leaves the first control plane as clean as the others (after every join's reset).
        deleteScript: "k8s-reset.sh",
      },
    );

    // Minted again whenever a join will run: a host added, or a machine re-created (a new id under the
    // same name). It never expires by itself; the revoke step below deletes it once every join is done,
    // so a join that failed finds it still valid when it is retried, however much later.
    const joinRound = pulumi
      .all(others.map((n) => hostOf(n).apply((h) => `${n.name}=${h.machineId ?? ""}`)))
      .apply((members) => members.join(","));
    const tokenStep = step(
      first,
      "token",
      "k8s-token.sh",
      {
        BOOTSTRAP_TOKEN: token,
        TOKEN_CONFIG: tokenConfig(),
      },
      [init],
      { triggers: [joinRound] },
    );

    const join = new Map<string, command.remote.Command>();
    const joinStep = (node: ClusterNode, dependsOn: pulumi.Resource[]) => {
      const controlPlane = node.role === "control-plane";
      const joined = step(
        node,
        "join",
        "k8s-kubeadm.sh",
        {
          KUBEADM_ACTION: "join",
          KUBEADM_CONFIG: pulumi
            .all([settings, privateAddress(node), pki.discoveryHash])
            .apply(([s, address, hash]) =>
              joinConfig(s, { name: node.name, privateAddress: address, settings: node.settings }, hash, controlPlane),
            ),
          BOOTSTRAP_TOKEN: token,
          NODE_NAME: node.name,
        },
        [
          prepare.get(node.name)!,
          kubeletConfig.get(node.name)!,
          // A control plane joins etcd: every control plane's firewall must admit it first (their prepare
          // steps re-run with the new member's address when one is added).
          ...(controlPlane ? [pkiSteps.get(node.name)!, ...kubeVipOf(node), ...controlPlanes.map((cp) => prepare.get(cp.name)!)] : []),
          init,
          tokenStep,
          ...dependsOn,
        ],
        { deleteScript: "k8s-reset.sh" },
      );
      join.set(node.name, joined);
      return joined;
    };
    // Control planes one at a time (etcd grows by one member, keeping its majority).
    let lastControlPlane: command.remote.Command = init;
    for (const node of controlPlanes.slice(1)) lastControlPlane = joinStep(node, [lastControlPlane]);

    // Upgrades in kubeadm's order: first control plane, the others one at a time, then the workers: those
    // with OSDs one at a time, the others in batches (workerUpgradeWaves).
    // No-ops at the installed version, so on a fresh cluster they only add a quick check.
    const upgrade = new Map<string, command.remote.Command>();
    const upgradeStep = (member: ClusterNode, role: "first" | "control-plane" | "worker", dependsOn: pulumi.Resource[]) => {
      const upgraded = step(
        member,
        "upgrade",
        "k8s-upgrade.sh",
        {
          KUBERNETES_VERSION: args.kubernetesVersion,
          NODE_NAME: member.name,
          UPGRADE_ROLE: role,
          API_ENDPOINT: apiEndpoint,
        },
        dependsOn,
      );
      upgrade.set(member.name, upgraded);
      return upgraded;
    };
    let previousUpgrades: command.remote.Command[] = [upgradeStep(first, "first", [init])];
    for (const member of controlPlanes.slice(1)) {
      previousUpgrades = [upgradeStep(member, "control-plane", [join.get(member.name)!, ...previousUpgrades])];
    }
    const controlPlanesUpgraded = previousUpgrades;

    // Then every worker at once: each waits for the control planes (joined, and upgraded, so that a
    // worker added with a version raise never runs a kubelet newer than the API), none for another worker.
    for (const node of workers) joinStep(node, [lastControlPlane, ...controlPlanesUpgraded]);

    // Per joined host, on the first control plane: labels now, drain and delete when the host leaves.
    // Control planes are chained so that two etcd members are never removed at once.
    const node = new Map<string, command.remote.Command>();
    let previousControlPlaneNode: command.remote.Command | undefined;
    for (const member of others) {
      const isControlPlane = member.role === "control-plane";
      const labelled = step(
        first,
        `node-${member.name}`,
        "k8s-node.sh",
        {
          NODE_NAME: member.name,
          NODE_ROLE: member.role,
          NODE_POOL: member.pool,
          ...nodeLabelsAndTaints(member),
          FIRST_CONTROL_PLANE: first.name,
          // A re-created machine registers a Node without labels: label it again.
          NODE_MACHINE_ID: hostOf(member).apply((h) => h.machineId ?? ""),
          // The drain reaches the API here (admin.conf's server): taking it as a parameter keeps the load
          // balancer in place until the drain has run, on destroy and scale-in.
          API_ENDPOINT: apiEndpoint,
        },
        [join.get(member.name)!, ...(isControlPlane && previousControlPlaneNode ? [previousControlPlaneNode] : [])],
        { deleteScript: "k8s-remove-node.sh" },
      );
      if (isControlPlane) previousControlPlaneNode = labelled;
      node.set(member.name, labelled);
    }

    const controlPlaneArgs = this.controlPlaneArgsSteps(controlPlanes, settings, privateAddress, init, join, upgrade, apiEndpoint, step);

    const revoke = step(first, "token-revoke", "k8s-token-revoke.sh", { BOOTSTRAP_TOKEN: token }, [tokenStep, ...join.values()], {
      triggers: [joinRound],
    });

    // Per joined host with disks, on the first control plane: nothing while it stays; when the host or a
    // disk leaves, its OSDs are taken out of Ceph first (ceph-remove-osds.sh). Deletes run dependents
    // first, so each of these depends on what must outlive it: a disk's step on the disk's path (which the
    // IaaS layer derives from the volume attachment), the host's step on the node step (the drain) and
    // on its disks' steps, so that a host leaving moves its data once, for all its OSDs together.
    const osdHost = new Map<string, command.remote.Command>();
    const osdDisk = new Map<string, command.remote.Command>();
    for (const member of others.filter((n) => (n.disks ?? 0) > 0)) {
      const osdEnv = (device: pulumi.Input<string>) => ({
        OSD_HOST: member.name,
        OSD_DEVICE: device,
        CEPH_CLEAN_TIMEOUT: String(CEPH_CLEAN_TIMEOUT_SECONDS),
        API_ENDPOINT: apiEndpoint,
      });
      const disks = Array.from({ length: member.disks! }, (_, j) => {
        const disk = step(
          first,
          `osd-${member.name}-disk-${j}`,
          "ceph-osd.sh",
          osdEnv(hostOf(member).apply((h) => h.disks[j] ?? "")),
          [init],
          { deleteScript: "ceph-remove-osds.sh", rerunOnNewMachine: false },
        );
        osdDisk.set(`${member.name}/${j}`, disk);
        return disk;
      });
      osdHost.set(
        member.name,
        step(first, `osd-${member.name}`, "ceph-osd.sh", osdEnv(""), [node.get(member.name)!, ...disks], {
          deleteScript: "ceph-remove-osds.sh",
          rerunOnNewMachine: false,
        }),
      );
    }

    // Workers after the control planes: those with OSDs one at a time, the others alongside in batches.
    // Each worker is drained and uncordoned from the first control plane (its admin.conf never leaves it).
    const drain = new Map<string, command.remote.Command>();
    const uncordon = new Map<string, command.remote.Command>();
    const drainStep = (member: ClusterNode, action: "drain" | "uncordon", dependsOn: pulumi.Resource[]) =>
      step(
        first,
        `upgrade-${action}-${member.name}`,
        "k8s-drain.sh",
        {
          DRAIN_ACTION: action,
          NODE_NAME: member.name,
          KUBERNETES_VERSION: args.kubernetesVersion,
          API_ENDPOINT: apiEndpoint,
        },
        dependsOn,
      );
    const waves = workerUpgradeWaves(workers);
    for (const stream of [waves.osd, waves.other]) {
      let before: command.remote.Command[] = controlPlanesUpgraded;
      for (const wave of stream) {
        const previous = before;
        before = wave.map((member) => {
          const drained = drainStep(member, "drain", [join.get(member.name)!, node.get(member.name)!, ...previous]);
          const upgraded = upgradeStep(member, "worker", [drained]);
          const back = drainStep(member, "uncordon", [upgraded]);
          drain.set(member.name, drained);
          uncordon.set(member.name, back);
          return back;
        });
      }
    }

    // Per host, on the first control plane: its kubelet's serving certificate, after the host joined and
    // was labelled (a re-created machine asks again).
    const kubeletServing = new Map(
      args.nodes.map((member) => [
        member.name,
        step(
          first,
          `kubelet-serving-${member.name}`,
          "k8s-kubelet-serving.sh",
          {
            NODE_NAME: member.name,
            NODE_ADDRESSES: hostOf(member).apply((h) =>
              [...new Set([h.privateAddress, ...(h.publicAddress ? [h.publicAddress] : [])])].join(" "),
            ),
            CSR_TIMEOUT: String(KUBELET_SERVING_TIMEOUT_SECONDS),
            NODE_MACHINE_ID: hostOf(member).apply((h) => h.machineId ?? ""),
            API_ENDPOINT: apiEndpoint,
          },
          [member === first ? init : node.get(member.name)!],
          // A host that leaves is forgotten: the renewal approver approves nothing more for its name.
          { deleteScript: "k8s-kubelet-serving-forget.sh" },
        ),
      ]),
    );

    // Per control plane, after its upgrade (kubeadm upgrades renew the certificates too): the daily check
    // and renewal, each control plane at its own hour; on the first, the renewal approver for kubelets.
    const certificates = new Map(
      controlPlanes.map((member, index) => [
        member.name,
        step(
          member,
          "certificates",
          "k8s-certs-setup.sh",
          {
            NODE_NAME: member.name,
            RENEW_WITHIN_DAYS: String(renewalDays),
            TEXTFILE_DIR: NODE_EXPORTER_TEXTFILE_DIR,
            CERTS_SCRIPT: readScript("k8s-certs-renew.sh"),
            CERTS_SERVICE_UNIT: readScript("dare-kubeadm-certs.service"),
            CERTS_TIMER_UNIT: readScript("dare-kubeadm-certs.timer").replace("@ON_CALENDAR@", certificateCheckCalendar(index)),
            APPROVER_SCRIPT: member === first ? readScript("k8s-kubelet-serving.sh") : "",
            APPROVER_SERVICE_UNIT: member === first ? readScript("dare-kubelet-serving.service") : "",
            APPROVER_TIMER_UNIT: member === first ? readScript("dare-kubelet-serving.timer") : "",
          },
          [upgrade.get(member.name)!],
        ),
      ]),
    );

    return {
      prepare,
      kubeVip,
      pki: pkiSteps,
      init,
      token: tokenStep,
      tokenRevoke: revoke,
      join,
      node,
      osdHost,
      osdDisk,
      upgrade,
      drain,
      uncordon,
      kubeletServing,
      certificates,
      kubeletConfig,
      controlPlaneArgs,
      all: [
        ...prepare.values(),
        ...kubeletConfig.values(),
        ...kubeVip.values(),
        ...controlPlaneArgs.values(),
        ...pkiSteps.values(),
        init,
        tokenStep,
        ...join.values(),
        revoke,
        ...node.values(),
        ...osdDisk.values(),
        ...osdHost.values(),
        ...upgrade.values(),
        ...drain.values(),
        ...uncordon.values(),
        ...kubeletServing.values(),
        ...certificates.values(),
      ],
    };
  }

  /**
   * Per host, after its preparation and before kubeadm starts its kubelet: the kubelet's drop-in
   * configuration with the pool's settings (none: the file is removed), re-run whenever they change.
   */
  private kubeletConfigSteps(
    nodes: ClusterNode[],
    prepare: Map<string, command.remote.Command>,
    step: StepFactory,
  ): Map<string, command.remote.Command> {
    return new Map(
      nodes.map((node) => [
        node.name,
        step(
          node,
          "kubelet-config",
          "k8s-kubelet-config.sh",
          {
            NODE_NAME: node.name,
            KUBELET_DROPIN_DIR,
            KUBELET_DROPIN_FILE,
            KUBELET_CONFIG: kubeletDropIn(node.settings?.kubelet ?? {}),
          },
          [prepare.get(node.name)!],
        ),
      ]),
    );
  }

  /**
   * Per control plane, after it is initialised or joined and upgraded, one after another (never two API
   * servers restarting at once): its static pod manifests written again from the ClusterConfiguration
   * when that changed (dare:controlPlaneExtraArgs), and on the first the kubeadm-config ConfigMap, which
   * later joins and `kubeadm upgrade` read.
   */
  private controlPlaneArgsSteps(
    controlPlanes: ClusterNode[],
    settings: pulumi.Output<ClusterSettings>,
    privateAddress: (node: ClusterNode) => pulumi.Output<string>,
    init: command.remote.Command,
    join: Map<string, command.remote.Command>,
    upgrade: Map<string, command.remote.Command>,
    apiEndpoint: pulumi.Output<string>,
    step: StepFactory,
  ): Map<string, command.remote.Command> {
    const steps = new Map<string, command.remote.Command>();
    let previous: command.remote.Command | undefined;
    controlPlanes.forEach((node, i) => {
      previous = step(
        node,
        "control-plane",
        "k8s-control-plane.sh",
        {
          NODE_NAME: node.name,
          CONTROL_PLANE_CONFIG: pulumi
            .all([settings, privateAddress(node)])
            .apply(([s, address]) => controlPlaneConfig(s, { name: node.name, privateAddress: address })),
          UPLOAD_CLUSTER_CONFIGURATION: i === 0 ? "true" : "false",
          API_PORT: settings.apply((s) => String(s.apiServer.port)),
          API_ENDPOINT: apiEndpoint,
        },
        [i === 0 ? init : join.get(node.name)!, upgrade.get(node.name)!, ...(previous ? [previous] : [])],
      );
      steps.set(node.name, previous);
    });
    return steps;
  }
}

/** Declares one host step of the cluster (KubernetesCluster.bootstrap's `step`). */
type StepFactory = (
  node: ClusterNode,
  stepName: string,
  script: string,
  env: Record<string, pulumi.Input<string>>,
  dependsOn: pulumi.Resource[],
  extra?: { deleteScript?: string; triggers?: pulumi.Input<unknown>[]; rerunOnNewMachine?: boolean },
) => command.remote.Command;

/**
 * A worker's labels and taints for k8s-node.sh, and the annotations where it records what it set (so it
 * removes only those it set when the configuration drops one).
 */
function nodeLabelsAndTaints(node: ClusterNode): Record<string, string> {
  const settings = node.settings ?? mergeNodeSettings(undefined, undefined);
  return {
    NODE_LABELS: labelWords(settings.labels),
    NODE_TAINTS: taintWords(settings.taints),
    MANAGED_LABELS_ANNOTATION,
    MANAGED_TAINTS_ANNOTATION,
  };
}
