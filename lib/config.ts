/**
 * The stack configuration: the project's public interface.
 *
 * Every key is declared once in config-keys.ts (type, default, description), from which Pulumi.yaml is
 * generated. This module reads them all,
 * validates them together and fails with ONE message that lists every problem (key, value, why, a
 * valid example) before any resource is declared. Later layers add their keys here in the same style:
 * a typed field on `DareConfig`, a `read…` function that pushes problems instead of throwing.
 */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { cidrsOverlap, isIpv4Address, parseCidr } from "./cidr";
import { CERTIFICATE_RENEWAL_DAYS_MAX, CERTIFICATE_RENEWAL_DAYS_MIN } from "../components/cluster/certificate-renewal";
import { ENCRYPTION_KEY_NAME } from "../components/cluster/kubeadm-config";
import { KUBE_VIP_IMAGE } from "../components/cluster/kube-vip";
import { ControlPlaneExtraArgs, NodeSettings, readControlPlaneExtraArgs, readNodeSettings, SettingsProblem } from "./node-settings";
import { hostKeyProblem, normalizeHostKey, opensshKeyProblem } from "./ssh-key";
import { CA_ISSUER, CONFIG_KEYS, ConfigKey, defaultOf, KeyDeclaration, PROVIDERS, TLS_ISSUERS, withDefaults } from "./config-keys";
import { DARE_WORKLOADS, DareWorkload, DATABASES, REQUIRED_IMAGES, WORKLOADS } from "../components/dare-services/workloads";

/** Kubernetes minors this program installs and upgrades (upstream support, late 2026). */
export const SUPPORTED_KUBERNETES_MINORS = [35, 36, 37] as const;

export { PROVIDERS, TLS_ISSUERS } from "./config-keys";
export type Provider = (typeof PROVIDERS)[number];
export const CONTROL_PLANE_ROLE = "control-plane";

export interface DiskSpec {
  /** block volumes per node, each becomes one Ceph OSD */
  count: number;
  sizeGb: number;
}

export interface PoolSpec {
  name: string;
  count: number;
  flavor: string;
  disks: DiskSpec;
  /** give each node of this pool a floating IP (ingress nodes when there is no load balancer) */
  publicIp: boolean;
  /** labels, taints and kubelet settings of this pool's nodes (lib/node-settings.ts) */
  settings?: Partial<NodeSettings>;
}

export interface NodesSpec {
  controlPlane: { count: number; flavor: string };
  pools: PoolSpec[];
}

export interface ExistingHostSpec {
  name: string;
  /** "control-plane" or the name of a pool in dare:nodes.pools */
  role: string;
  /** the address SSH dials */
  address: string;
  /** the address cluster members use to reach this host */
  privateAddress: string;
  user: string;
  port: number;
  /** block devices for Ceph OSDs, e.g. /dev/sdb */
  disks: string[];
  /** the host's SSH host key, `ssh-ed25519 <base64>`: SSH to the host accepts this key only */
  hostKey: string;
  /**
   * Names this installation of the machine's system; a new value (after re-installing the host) makes the
   * program set the host up again, as a re-created VM's new instance id does. Undefined: never re-installed.
   */
  installation?: string;
  /** this host's own labels, taints and kubelet settings, over its pool's (workers only) */
  settings?: Partial<NodeSettings>;
  /** true: SSH reaches the host through dare:bastion (the loader's default whenever one is set); unset: directly */
  viaBastion?: boolean;
}

/** The jump host of existing hosts (dare:bastion, dare:bastionPrivateKey). */
export interface BastionSpec {
  /** the address SSH dials */
  address: string;
  /** the address the hosts see its connections come from (IPv4): the host firewall admits SSH from it */
  privateAddress: string;
  port: number;
  user: string;
  /** its SSH host key, `ssh-ed25519 <base64>`: the only key accepted from it */
  hostKey: string;
  /** the key to log in to it with (secret); undefined: the hosts' key */
  privateKey?: pulumi.Output<string>;
}

export interface NetworkSpec {
  /** the nodes' private subnet */
  cidr: string;
  /** Calico's pod range; must not overlap the node or service ranges */
  podCidr: string;
  /** Kubernetes Service range */
  serviceCidr: string;
  /** OpenStack external network for the router gateway and floating IPs */
  externalNetwork: string;
  dnsNameservers: string[];
}

/** The API's virtual IP, held by kube-vip on one control plane at a time (dare:apiVirtualIp). */
export interface ApiVirtualIpSpec {
  /** a free IPv4 address in the nodes' subnet: the cluster's API endpoint */
  address: string;
  /** the host interface the VIP is added to; undefined: the one holding each control plane's private address */
  interface?: string;
  /** kube-vip's image; undefined: KUBE_VIP_IMAGE */
  image?: string;
}

export interface DareConfig {
  stack: string;
  /** prefix of every cloud resource and host name, e.g. dare-testbed */
  clusterName: string;
  provider: Provider;
  nodes: NodesSpec;
  /** existing mode only */
  hosts: ExistingHostSpec[];
  /** existing mode only: the jump host SSH goes through to reach the hosts marked viaBastion */
  bastion?: BastionSpec;
  network: NetworkSpec;
  adminCidrs: string[];
  domain: string;
  kubernetesVersion: string;
  /** names of the keys that encrypt Secrets in etcd, the writing key first (dare:secretsEncryptionKeys) */
  secretsEncryptionKeys: string[];
  /** days before expiry that kubeadm's certificates and the admin kubeconfig's are renewed (dare:certificateRenewalDays) */
  certificateRenewalDays: number;
  /** the operator's extra flags of the API server, controller manager and scheduler (dare:controlPlaneExtraArgs) */
  controlPlaneExtraArgs: ControlPlaneExtraArgs;
  image: string;
  sshUser: string;
  /** the operator's own SSH key (secret); undefined: the program generates one */
  sshPrivateKey?: pulumi.Output<string>;
  /** Octavia load balancer in front of the API (openstack), whatever the control-plane count */
  apiLoadBalancer: boolean;
  /** the API's virtual IP (kube-vip) when there is no load balancer; undefined: none */
  apiVirtualIp?: ApiVirtualIpSpec;
  /** Octavia load balancer in front of the ingress (openstack); false: Traefik binds ports 80/443 of the ingress nodes */
  ingressLoadBalancer: boolean;
  ceph: CephSpec;
  /** the ClusterIssuer that public endpoints get their certificates from */
  tlsIssuer: TlsIssuer;
  /** Let's Encrypt account e-mail ("" with the self-signed CA) */
  acmeEmail: string;
  harbor: HarborSpec;
  /** "bootstrap": declare only the IaaS and bootstrap layers; "": every layer */
  stopAfter: "" | "bootstrap";
  /** dare:skipAwait: objects are created without waiting for readiness (lib/await.ts) */
  skipAwait: boolean;
  /** names of data resources whose protection is lifted for this run (dare:allowDataLoss) */
  allowDataLoss: string[];
  /** Helm repository every chart is pulled from instead of its upstream one; undefined: upstream */
  chartMirror?: string;
  /** the hosts' image registry and apt mirrors (dare:mirrors) */
  mirrors: MirrorsSpec;
  keycloak: KeycloakSpec;
  /** OIDC and SAML providers users may log in with (Keycloak identity brokering) */
  identityProviders: IdentityProviderSpec[];
  /** Alertmanager e-mail; undefined: alerts are only shown in Alertmanager and Grafana */
  alerting?: AlertingSpec;
  /** the DARE services layer, the MPI operator and backups */
  dare: DareLayerSpec;
}

export type TlsIssuer = (typeof TLS_ISSUERS)[number];

export interface CephSpec {
  /** copies of each object; at most the number of hosts with disks (failure domain: host) */
  replicas: number;
  /** Ceph monitors: 1, 3 or 5 */
  monitors: number;
}

/** The apt repositories the hosts install from that a mirror may replace. */
export const APT_MIRRORED = ["ubuntu", "kubernetes", "docker"] as const;
export type AptMirrored = (typeof APT_MIRRORED)[number];

/** The hosts' mirrors (dare:mirrors); every field optional, `{registries: {}, apt: {}}` is "none". */
export interface MirrorsSpec {
  /** registry name as images name it (docker.io, registry.k8s.io, host:port) → the mirror's endpoint URL, no trailing slash */
  registries: Record<string, string>;
  /** apt repository → the mirror's base URL (same paths as upstream), no trailing slash */
  apt: Partial<Record<AptMirrored, string>>;
  /** "dare-ca" (the cluster's own CA) or a PEM certificate the mirrors' https certificates are checked against; undefined: the hosts' trust store */
  caCertificate?: string;
}

export interface HarborSpec {
  enabled: boolean;
  /** size of the registry's image volume (Ceph block) */
  registrySizeGb: number;
}

export interface Problem {
  key: string;
  value: unknown;
  why: string;
  example: string;
}

/** A user's mistake in the stack configuration. A RunError, so Pulumi prints it without a stack trace. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: Problem[]) {
    super(formatProblems(problems));
    this.name = "ConfigError";
  }
}

export function formatProblems(problems: Problem[]): string {
  const lines = problems.map((p) => `  - dare:${p.key} = ${JSON.stringify(p.value) ?? "(unset)"}: ${p.why}\n      example: ${p.example}`);
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `Invalid stack configuration (${count}):\n${lines.join("\n")}`;
}

/** Where raw values come from: `pulumi.Config` in a deployment, a plain map in tests. */
export interface ConfigSource {
  stack: string;
  /** the raw string of a project key (JSON text for objects and lists), or undefined when unset */
  get(key: string): string | undefined;
  /** whether the key was set with --secret */
  isSecret?(key: string): boolean;
}

/**
 * Keys that may hold secrets (set with `pulumi config set --secret`); their readers keep them Pulumi
 * secrets. Any other key set with --secret is refused: its value would end up in plain text.
 */
export const SECRET_KEYS = new Set<string>(["identityProviders", "alerting", "backupPassphrase", "sshPrivateKey", "bastionPrivateKey"]);

/** Reads the project's keys from Pulumi's config (stack file over Pulumi.yaml defaults). */
export function pulumiConfigSource(): ConfigSource {
  const config = new pulumi.Config("dare");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require("@pulumi/pulumi/runtime/config");
  return {
    stack: pulumi.getStack(),
    get: (key) => config.get(key),
    isSecret: (key) => Boolean(runtimeConfig.isConfigSecret(`dare:${key}`)),
  };
}

export const DEFAULT_NODES: NodesSpec = defaultOf("nodes");
export const DEFAULT_NETWORK: NetworkSpec = defaultOf("network");

/** `registry[:port]/path` of an image reference, before its tag and digest. */
const IMAGE_NAME = /^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:\d+)?(\/[a-z0-9._-]+)*$/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** The only digest form accepted: what registries and containerd print (OCI image-spec, "Digests"). */
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;
export const IMAGE_FORMS = "repository:tag, repository@sha256:<64 hex digits> or repository:tag@sha256:<64 hex digits>";

/** An image reference split into its name, tag and digest. */
export interface ImageRef {
  name: string;
  tag?: string;
  /** `sha256:<64 hex>` */
  digest?: string;
}

/**
 * Parses `name:tag`, `name@sha256:<hex>` or `name:tag@sha256:<hex>` (the tag follows the last ":" after the
 * last "/", so a registry port is not a tag). A pinned reference has a digest, or a tag other than latest;
 * anything else returns why not.
 */
export function parseImage(ref: string): ImageRef | { problem: string } {
  const at = ref.indexOf("@");
  const digest = at < 0 ? undefined : ref.slice(at + 1);
  const rest = at < 0 ? ref : ref.slice(0, at);
  if (digest !== undefined && !IMAGE_DIGEST.test(digest)) {
    const hex = /^sha256:([0-9a-f]*)$/.exec(digest);
    return {
      problem: hex
        ? `has a digest of ${hex[1].length} hex digits: a sha256 digest has 64`
        : `has the digest "${digest}": only sha256:<64 lowercase hex digits> is accepted`,
    };
  }
  const slash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", slash + 1);
  const name = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (!IMAGE_NAME.test(name)) return { problem: `has the repository "${name}", which is not an image name (lowercase registry/path)` };
  if (tag !== undefined && !IMAGE_TAG.test(tag))
    return { problem: `has the tag "${tag}", which is not a tag (letters, digits, _ . -, at most 128 characters)` };
  if (tag === undefined && digest === undefined) return { problem: "has neither a tag nor a digest (that means latest): pin one" };
  if (tag === "latest" && digest === undefined) return { problem: "`latest` is not a pinned tag: use a version tag or add the digest" };
  return { name, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const NAME = /^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;

/** Collects problems while reading; each reader returns a usable value even when it reported one. */
export class Reader {
  readonly problems: Problem[] = [];
  constructor(private readonly source: ConfigSource) {}

  problem(key: string, value: unknown, why: string, example: string): void {
    this.problems.push({ key, value, why, example });
  }

  /** Whether the key was set with --secret (undefined when the source cannot tell). */
  isSecretKey(key: string): boolean | undefined {
    return this.source.isSecret?.(key);
  }

  /** The parsed value of a key: JSON when it parses, else the raw string. */
  raw(key: string): unknown {
    const text = this.source.get(key);
    if (text === undefined) return undefined;
    if (!SECRET_KEYS.has(key) && this.source.isSecret?.(key)) {
      this.problem(
        key,
        "[secret]",
        "is set as a secret, but it is not a secret setting: its value would be stored and shown in plain text",
        `pulumi config set ${key} <value>   (without --secret)`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    const decl: KeyDeclaration | undefined = CONFIG_KEYS[key as ConfigKey];
    return decl ? withDefaults(value, decl.default) : value;
  }

  /** A plain key's value when it is one of its declared values, else the default (and a problem). */
  oneOf<K extends ConfigKey>(key: K, example: string): unknown {
    const decl: KeyDeclaration = CONFIG_KEYS[key];
    const value = this.raw(key) ?? decl.default;
    if (decl.oneOf && !decl.oneOf.includes(value)) {
      this.problem(
        key,
        value,
        `must be one of ${decl.oneOf.map((v) => (typeof v === "string" ? `"${v}"` : String(v))).join(", ")}`,
        example,
      );
      return decl.default;
    }
    return value;
  }

  /** A Kubernetes quantity; `pulumi config set --path` stores a plain number such as 2 as an integer. */
  quantity(key: string, value: unknown, fallback: string, example: string): string {
    const text = typeof value === "number" ? String(value) : value;
    return this.string(key, text, fallback, example, QUANTITY, "must be a Kubernetes quantity");
  }

  string(key: string, value: unknown, fallback: string, example: string, pattern?: RegExp, why?: string): string {
    if (value === undefined) return fallback;
    if (typeof value !== "string" || value.length === 0 || (pattern && !pattern.test(value))) {
      this.problem(key, value, why ?? "must be a non-empty string", example);
      return fallback;
    }
    return value;
  }

  integer(key: string, value: unknown, fallback: number, min: number, example: string): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      this.problem(key, value, `must be a whole number ≥ ${min}`, example);
      return fallback;
    }
    return value;
  }

  boolean(key: string, value: unknown, fallback: boolean, example: string): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") {
      this.problem(key, value, "must be true or false", example);
      return fallback;
    }
    return value;
  }

  object(key: string, value: unknown, example: string): Record<string, unknown> | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(key, value, "must be an object", example);
      return undefined;
    }
    return value as Record<string, unknown>;
  }

  list(key: string, value: unknown, example: string): unknown[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.problem(key, value, "must be a list", example);
      return undefined;
    }
    return value;
  }

  /** Reports keys the program does not know: a typo must not silently fall back to a default. */
  unknownKeys(key: string, value: Record<string, unknown>, known: string[], example: string): void {
    for (const k of Object.keys(value)) {
      if (!known.includes(k)) this.problem(`${key}.${k}`, value[k], `unknown key (known: ${known.join(", ")})`, example);
    }
  }
}

function readPool(r: Reader, key: string, value: unknown): PoolSpec | undefined {
  const example = `{"name": "workers", "count": 3, "flavor": "m1.large", "disks": {"count": 1, "sizeGb": 100}}`;
  const pool = r.object(key, value, example);
  if (!pool) return undefined;
  r.unknownKeys(key, pool, ["name", "count", "flavor", "disks", "publicIp", ...NODE_SETTINGS_KEYS], example);
  const name = r.string(
    `${key}.name`,
    pool.name ?? "",
    "",
    `"workers"`,
    NAME,
    "must be a lower-case DNS label (letters, digits, '-'), at most 32 characters",
  );
  if (name === CONTROL_PLANE_ROLE) r.problem(`${key}.name`, name, `"${CONTROL_PLANE_ROLE}" is reserved for control planes`, `"workers"`);
  const disksKey = `${key}.disks`;
  const disks = r.object(disksKey, pool.disks, `{"count": 1, "sizeGb": 100}`) ?? {};
  r.unknownKeys(disksKey, disks, ["count", "sizeGb"], `{"count": 1, "sizeGb": 100}`);
  return {
    name,
    count: r.integer(`${key}.count`, pool.count, 0, 0, `pulumi config set --path 'nodes.pools[0].count' 3`),
    flavor: r.string(`${key}.flavor`, pool.flavor, DEFAULT_NODES.pools[0].flavor, `"m1.large"`),
    disks: {
      count: r.integer(`${disksKey}.count`, disks.count, 0, 0, `pulumi config set --path '${disksKey}.count' 1`),
      sizeGb: r.integer(`${disksKey}.sizeGb`, disks.sizeGb, 100, 1, `pulumi config set --path '${disksKey}.sizeGb' 100`),
    },
    publicIp: r.boolean(`${key}.publicIp`, pool.publicIp, false, "false"),
    ...readSettings(r, key, pool),
  };
}

const NODE_SETTINGS_KEYS = ["labels", "taints", "kubelet"];

/** A pool's or host's labels, taints and kubelet settings (node-settings.ts validates them). */
function readSettings(r: Reader, key: string, raw: Record<string, unknown>): { settings?: Partial<NodeSettings> } {
  const problems: SettingsProblem[] = [];
  const settings = readNodeSettings(key, raw, problems);
  for (const p of problems) r.problem(p.key, p.value, p.why, p.example);
  // Given at all (even empty: a host's `taints: []` clears its pool's).
  return Object.keys(settings).length > 0 ? { settings } : {};
}

function readNodes(r: Reader): NodesSpec {
  const example = `{"controlPlane": {"count": 3, "flavor": "m1.large"}, "pools": [{"name": "workers", "count": 3, "flavor": "m1.xlarge", "disks": {"count": 1, "sizeGb": 200}}]}`;
  const nodes = r.object("nodes", r.raw("nodes"), example);
  if (!nodes) return DEFAULT_NODES;
  r.unknownKeys("nodes", nodes, ["controlPlane", "pools"], example);
  const cp = r.object("nodes.controlPlane", nodes.controlPlane, `{"count": 3, "flavor": "m1.large"}`) ?? {};
  r.unknownKeys("nodes.controlPlane", cp, ["count", "flavor"], `{"count": 3, "flavor": "m1.large"}`);
  const controlPlane = {
    count: r.integer(
      "nodes.controlPlane.count",
      cp.count,
      DEFAULT_NODES.controlPlane.count,
      0,
      `pulumi config set --path 'nodes.controlPlane.count' 3`,
    ),
    flavor: r.string("nodes.controlPlane.flavor", cp.flavor, DEFAULT_NODES.controlPlane.flavor, `"m1.large"`),
  };
  const rawPools = nodes.pools === undefined ? undefined : r.list("nodes.pools", nodes.pools, `[${example}]`);
  const pools =
    rawPools === undefined
      ? DEFAULT_NODES.pools
      : rawPools.map((p, i) => readPool(r, `nodes.pools[${i}]`, p)).filter((p): p is PoolSpec => p !== undefined);
  const seen = new Set<string>();
  pools.forEach((pool, i) => {
    if (pool.name && seen.has(pool.name)) {
      r.problem(`nodes.pools[${i}].name`, pool.name, "duplicate pool name: each pool needs its own", `"gpu-workers"`);
    }
    seen.add(pool.name);
  });
  return { controlPlane, pools };
}

function readHosts(r: Reader, provider: Provider, pools: PoolSpec[], bastion: BastionSpec | undefined): ExistingHostSpec[] {
  const example = `[{"name": "cp-0", "role": "control-plane", "address": "203.0.113.10", "privateAddress": "10.0.0.10", "user": "ubuntu", "port": 22, "disks": ["/dev/sdb"], "hostKey": "${EXAMPLE_HOST_KEY}"}]`;
  const raw = r.raw("hosts");
  if (provider !== "existing") {
    if (Array.isArray(raw) ? raw.length > 0 : raw !== undefined) {
      r.problem(
        "hosts",
        raw,
        "is only used with dare:provider = existing",
        "pulumi config rm hosts, or pulumi config set provider existing",
      );
    }
    return [];
  }
  const list = r.list("hosts", raw, example);
  if (!list || list.length === 0) {
    r.problem("hosts", raw, "dare:provider = existing needs at least one host", example);
    return [];
  }
  const roles = [CONTROL_PLANE_ROLE, ...pools.map((p) => p.name)];
  const names = new Set<string>();
  const hosts: ExistingHostSpec[] = [];
  list.forEach((item, i) => {
    const key = `hosts[${i}]`;
    const host = r.object(key, item, example);
    if (!host) return;
    r.unknownKeys(
      key,
      host,
      [
        "name",
        "role",
        "address",
        "privateAddress",
        "user",
        "port",
        "disks",
        "hostKey",
        "installation",
        "viaBastion",
        ...NODE_SETTINGS_KEYS,
      ],
      example,
    );
    const name = r.string(
      `${key}.name`,
      host.name ?? "",
      "",
      `"worker-3"`,
      NAME,
      "must be a lower-case DNS label: it becomes the Kubernetes node name",
    );
    if (name && names.has(name)) r.problem(`${key}.name`, name, "duplicate host name", `"worker-4"`);
    names.add(name);
    const role = r.string(`${key}.role`, host.role ?? "", "", `"control-plane"`);
    if (role && !roles.includes(role)) {
      r.problem(
        `${key}.role`,
        role,
        `unknown role: must be one of ${roles.join(", ")} (pools come from dare:nodes.pools)`,
        `"${roles[roles.length - 1]}"`,
      );
    }
    const address = r.string(`${key}.address`, host.address ?? "", "", `"203.0.113.10"`);
    const privateAddress = r.string(
      `${key}.privateAddress`,
      host.privateAddress ?? address,
      address,
      `"10.0.0.10"`,
      undefined,
      "must be an IPv4 address",
    );
    if (privateAddress && !isIpv4Address(privateAddress)) {
      r.problem(`${key}.privateAddress`, privateAddress, "must be an IPv4 address", `"10.0.0.10"`);
    }
    const disks = (r.list(`${key}.disks`, host.disks, `["/dev/sdb"]`) ?? []).map((d, j) =>
      r.string(`${key}.disks[${j}]`, d, "", `"/dev/sdb"`, /^\/dev\/\S+$/, "must be a block device path under /dev"),
    );
    const hostKey = readHostKey(r, `${key}.hostKey`, host.hostKey, address);
    const settings = readSettings(r, key, host);
    if (role === CONTROL_PLANE_ROLE && settings.settings) {
      r.problem(
        key,
        NODE_SETTINGS_KEYS.filter((k) => host[k] !== undefined).join(", "),
        "labels, taints and kubelet settings apply to workers only: control planes keep kubeadm's taint and the cluster's kubelet settings",
        `move them to a worker host, or to a pool in dare:nodes.pools`,
      );
    }
    const viaBastion = r.boolean(`${key}.viaBastion`, host.viaBastion, bastion !== undefined, "false");
    if (viaBastion && !bastion) {
      r.problem(
        `${key}.viaBastion`,
        true,
        "names no jump host: dare:bastion is not set",
        `pulumi config set --path 'bastion.address' 203.0.113.5 (and bastion.hostKey), or pulumi config set --path '${key}.viaBastion' false`,
      );
    }
    hosts.push({
      name,
      role,
      address,
      privateAddress,
      user: r.string(`${key}.user`, host.user, r.string("sshUser", r.raw("sshUser"), defaultOf("sshUser"), `"ubuntu"`), `"ubuntu"`),
      port: r.integer(`${key}.port`, host.port, 22, 1, "22"),
      disks,
      hostKey,
      ...(host.installation === undefined || host.installation === ""
        ? {}
        : {
            installation: r.string(
              `${key}.installation`,
              host.installation,
              "",
              `"reinstalled-2026-12-01"`,
              /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
              "must be a short identifier (letters, digits, . _ : -)",
            ),
          }),
      ...settings,
      viaBastion,
    });
  });
  return hosts;
}

/**
 * dare:bastion: existing hosts' jump host, its host key pinned as every host's, and the key to log in to it
 * (dare:bastionPrivateKey; unset: the hosts' key). OpenStack has its own (the first control plane).
 */
function readBastion(r: Reader, provider: Provider): BastionSpec | undefined {
  const example = `{"address": "203.0.113.5", "privateAddress": "10.0.0.5", "port": 22, "user": "ubuntu", "hostKey": "${EXAMPLE_HOST_KEY}"}`;
  const raw = r.raw("bastion");
  const keyRaw = r.raw("bastionPrivateKey");
  const unset = raw === undefined || raw === "" || (typeof raw === "object" && raw !== null && Object.keys(raw).length === 0);
  if (unset) {
    if (keyRaw !== undefined && keyRaw !== "") {
      r.problem(
        "bastionPrivateKey",
        SECRET_SHOWN,
        "is only used with dare:bastion (a jump host)",
        `pulumi config set --path 'bastion' '${example}'`,
      );
    }
    return undefined;
  }
  if (provider !== "existing") {
    r.problem(
      "bastion",
      raw,
      "is only used with dare:provider = existing: on OpenStack the first control plane is the jump host",
      "pulumi config rm bastion",
    );
    return undefined;
  }
  const spec = r.object("bastion", raw, example);
  if (!spec) return undefined;
  r.unknownKeys("bastion", spec, ["address", "privateAddress", "port", "user", "hostKey"], example);
  const address = r.string("bastion.address", spec.address ?? "", "", `"203.0.113.5"`);
  const privateAddress = r.string("bastion.privateAddress", spec.privateAddress ?? address, address, `"10.0.0.5"`);
  if (privateAddress && !isIpv4Address(privateAddress)) {
    r.problem(
      "bastion.privateAddress",
      privateAddress,
      "must be an IPv4 address: the one the hosts see the jump host's SSH connections come from, which their firewall admits",
      `"10.0.0.5"`,
    );
  }
  const privateKey = readPrivateKey(
    r,
    "bastionPrivateKey",
    "pulumi config set --secret bastionPrivateKey < jump-key",
    "it logs in to the jump host in front of every host",
  );
  return {
    address,
    privateAddress,
    port: r.integer("bastion.port", spec.port, 22, 1, "22"),
    user: r.string(
      "bastion.user",
      spec.user,
      r.string("sshUser", r.raw("sshUser"), defaultOf("sshUser"), `"ubuntu"`),
      `"ubuntu"`,
      /^[a-z_][a-z0-9_-]*$/,
      "must be a Unix user name",
    ),
    hostKey: readHostKey(r, "bastion.hostKey", spec.hostKey, address),
    ...(privateKey ? { privateKey } : {}),
  };
}

/** A documentation-only ED25519 key (the examples in error messages and the configuration reference). */
export const EXAMPLE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGV4YW1wbGUtaG9zdC1rZXktZG8tbm90LXVzZS0wMDAw";

/**
 * A host's SSH host key: required, since without it the first connection would trust whoever answers on the
 * address. The message says how to read the key, safest first (on the host's console, where no network sits
 * between the operator and the key).
 */
function readHostKey(r: Reader, key: string, value: unknown, address: string): string {
  const where = address || "<address>";
  const how =
    `read it on the host's console: cat /etc/ssh/ssh_host_ed25519_key.pub (or, over the network, ` +
    `ssh-keyscan -t ed25519 ${where}, and check that its fingerprint, ssh-keyscan -t ed25519 ${where} | ssh-keygen -lf -, ` +
    `is the one ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub prints on the host's console); then ` +
    `pulumi config set --path '${key}' 'ssh-ed25519 AAAA…'`;
  if (value === undefined || value === null || value === "") {
    r.problem(
      key,
      value,
      `is missing: every SSH connection to the host accepts only this key, so that nobody else answering on its address receives the cluster's secrets; ${how}`,
      `"${EXAMPLE_HOST_KEY}"`,
    );
    return "";
  }
  const problem = typeof value === "string" ? hostKeyProblem(value) : "must be a string";
  if (problem) {
    r.problem(key, typeof value === "string" ? value.slice(0, 80) : value, `${problem}; ${how}`, `"${EXAMPLE_HOST_KEY}"`);
    return "";
  }
  return normalizeHostKey(value as string);
}

function readNetwork(r: Reader): NetworkSpec {
  const example = `{"cidr": "10.10.0.0/24", "podCidr": "10.244.0.0/16", "serviceCidr": "10.96.0.0/12", "externalNetwork": "public", "dnsNameservers": ["1.1.1.1"]}`;
  const net = r.object("network", r.raw("network"), example) ?? {};
  r.unknownKeys("network", net, Object.keys(DEFAULT_NETWORK), example);
  const ranges: Array<[keyof NetworkSpec, string]> = [
    ["cidr", "10.10.0.0/24"],
    ["podCidr", "10.244.0.0/16"],
    ["serviceCidr", "10.96.0.0/12"],
  ];
  const parsed = ranges.map(([field, ex]) => {
    const key = `network.${field}`;
    const value = net[field] ?? DEFAULT_NETWORK[field];
    const cidr = parseCidr(value);
    if (!cidr || cidr.version !== 4) r.problem(key, value, "must be an IPv4 CIDR such as a.b.c.d/n", `"${ex}"`);
    return { key, cidr: cidr?.version === 4 ? cidr : undefined };
  });
  // Traefik's in-cluster Service takes the 12th Service address, inside the band the API server keeps for fixed ones.
  const services = parsed[2].cidr;
  if (services && services.prefix > 28) {
    r.problem(
      "network.serviceCidr",
      services.text,
      "needs at least 16 addresses (/28): fixed Service addresses (the API, DNS, Traefik's in-cluster Service) come from its start",
      `"10.96.0.0/12"`,
    );
  }
  for (let i = 0; i < parsed.length; i++) {
    for (let j = i + 1; j < parsed.length; j++) {
      const a = parsed[i],
        b = parsed[j];
      if (a.cidr && b.cidr && cidrsOverlap(a.cidr, b.cidr)) {
        r.problem(
          b.key,
          b.cidr.text,
          `overlaps dare:${a.key} (${a.cidr.text}): node, pod and service ranges must be disjoint`,
          `"${ranges[j][1]}"`,
        );
      }
    }
  }
  const dns = r.list("network.dnsNameservers", net.dnsNameservers, `["1.1.1.1", "9.9.9.9"]`) ?? DEFAULT_NETWORK.dnsNameservers;
  dns.forEach((d, i) => {
    if (!isIpv4Address(d)) r.problem(`network.dnsNameservers[${i}]`, d, "must be an IPv4 address", `"1.1.1.1"`);
  });
  return {
    cidr: String(net.cidr ?? DEFAULT_NETWORK.cidr),
    podCidr: String(net.podCidr ?? DEFAULT_NETWORK.podCidr),
    serviceCidr: String(net.serviceCidr ?? DEFAULT_NETWORK.serviceCidr),
    externalNetwork: r.string("network.externalNetwork", net.externalNetwork, DEFAULT_NETWORK.externalNetwork, `"public"`),
    dnsNameservers: dns.map(String),
  };
}

/** dare:certificateRenewalDays: a whole number of days within the bounds certificate-renewal.ts gives. */
function readCertificateRenewalDays(r: Reader): number {
  const raw = r.raw("certificateRenewalDays");
  const fallback = defaultOf("certificateRenewalDays") as number;
  const example = `pulumi config set certificateRenewalDays ${fallback}`;
  if (raw === undefined) return fallback;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < CERTIFICATE_RENEWAL_DAYS_MIN || raw > CERTIFICATE_RENEWAL_DAYS_MAX) {
    r.problem(
      "certificateRenewalDays",
      raw,
      `must be a whole number of days from ${CERTIFICATE_RENEWAL_DAYS_MIN} (above the ` +
        `30-day expiry warning, with two weeks of daily retries) to ${CERTIFICATE_RENEWAL_DAYS_MAX} (half of the one-year certificate lifetime)`,
      example,
    );
    return fallback;
  }
  return raw;
}

function readSecretsEncryptionKeys(r: Reader): string[] {
  const example = `["key1"] (while rotating: ["key1", "key2"], then ["key2", "key1"], then ["key2"])`;
  const raw = r.raw("secretsEncryptionKeys");
  const list = raw === undefined ? (defaultOf("secretsEncryptionKeys") as string[]) : r.list("secretsEncryptionKeys", raw, example);
  if (list === undefined) return ["key1"];
  if (list.length === 0) r.problem("secretsEncryptionKeys", raw, "needs at least one key: the first encrypts Secrets in etcd", example);
  const names = list.map((k, i) =>
    r.string(
      `secretsEncryptionKeys[${i}]`,
      k,
      "",
      `"key2"`,
      ENCRYPTION_KEY_NAME,
      "must be lower-case letters, digits and dashes (at most 32)",
    ),
  );
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) r.problem("secretsEncryptionKeys", raw, `names ${twice.join(", ")} twice`, example);
  return names.length > 0 ? names : ["key1"];
}

function readKubernetesVersion(r: Reader): string {
  const value = r.raw("kubernetesVersion");
  const text = typeof value === "string" ? value : value === undefined ? undefined : String(value);
  const example = `"1.36.4"`;
  const version = r.string(
    "kubernetesVersion",
    text,
    defaultOf("kubernetesVersion"),
    example,
    VERSION,
    "must be MAJOR.MINOR.PATCH, without a leading v",
  );
  const match = VERSION.exec(version);
  if (match && VERSION.test(text ?? version)) {
    const [major, minor] = [Number(match[1]), Number(match[2])];
    if (major !== 1 || !(SUPPORTED_KUBERNETES_MINORS as readonly number[]).includes(minor)) {
      const range = SUPPORTED_KUBERNETES_MINORS.map((m) => `1.${m}`).join(", ");
      r.problem("kubernetesVersion", version, `is outside the supported minors (${range})`, example);
    }
  }
  return version;
}

/** A Linux interface name (at most 15 characters, IFNAMSIZ less the terminating NUL). */
const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;

/**
 * dare:apiVirtualIp: a free address in the nodes' subnet, reachable by ARP from every control plane, that no host
 * uses, and only where no load balancer already gives the API its endpoint.
 */
function readApiVirtualIp(
  r: Reader,
  provider: Provider,
  network: NetworkSpec,
  hosts: ExistingHostSpec[],
  apiLoadBalancer: boolean,
): ApiVirtualIpSpec | undefined {
  const example = `{"address": "10.10.0.250"}`;
  const raw = r.object("apiVirtualIp", r.raw("apiVirtualIp"), example);
  if (!raw || Object.keys(raw).length === 0) return undefined;
  r.unknownKeys("apiVirtualIp", raw, ["address", "interface", "image"], example);
  const key = "apiVirtualIp.address";
  const address = r.string(key, raw.address ?? "", "", `"10.10.0.250"`);
  if (!address) {
    r.problem(key, raw.address, "is required: the virtual IP the API is reached at", example);
    return undefined;
  }
  if (!isIpv4Address(address)) {
    r.problem(key, address, "must be an IPv4 address", `"10.10.0.250"`);
    return undefined;
  }
  if (provider === "openstack" && apiLoadBalancer) {
    r.problem(
      "apiVirtualIp",
      raw,
      "is for clusters without an API load balancer, and dare:apiLoadBalancer is on (the default): " +
        "the load balancer already gives the API a fixed endpoint",
      "pulumi config set apiLoadBalancer false (keeping apiVirtualIp), or pulumi config rm apiVirtualIp",
    );
  }
  const subnet = parseCidr(network.cidr);
  const vip = parseCidr(`${address}/32`)!;
  const inSubnet = (a: string) => {
    const c = parseCidr(`${a}/32`);
    return Boolean(subnet && c && cidrsOverlap(subnet, c));
  };
  const free = subnet ? `e.g. "${ipv4At(subnet, -2)}"` : `"10.10.0.250"`;
  if (subnet && subnet.version === 4) {
    const last = subnet.network + (1n << BigInt(32 - subnet.prefix)) - 1n;
    if (!inSubnet(address)) {
      r.problem(
        key,
        address,
        `must be in the nodes' subnet dare:network.cidr (${network.cidr}): kube-vip announces it by ARP, ` +
          "which reaches only the control planes' own layer-2 network",
        free,
      );
    } else if (subnet.prefix < 31 && (vip.network === subnet.network || vip.network === last)) {
      r.problem(
        key,
        address,
        `is the ${vip.network === last ? "broadcast" : "network"} address of ${network.cidr}, not one a host can hold`,
        free,
      );
    } else if (provider === "openstack" && vip.network === subnet.network + 1n) {
      r.problem(key, address, `is the gateway of ${network.cidr}: OpenStack gives the subnet's first address to its router`, free);
    }
  }
  if (provider === "existing") {
    hosts.forEach((h, i) => {
      if (h.address === address || h.privateAddress === address) {
        r.problem(
          key,
          address,
          `is host ${h.name}'s address (dare:hosts[${i}]): the virtual IP must be a free address that no host uses`,
          free,
        );
      }
      if (h.role === CONTROL_PLANE_ROLE && h.privateAddress && subnet && !inSubnet(h.privateAddress)) {
        r.problem(
          key,
          address,
          `control plane ${h.name} (${h.privateAddress}, dare:hosts[${i}]) is outside dare:network.cidr (${network.cidr}): ` +
            "every control plane must sit in the virtual IP's subnet to hold it; set dare:network.cidr to the control planes' subnet",
          free,
        );
      }
    });
  }
  const iface =
    raw.interface === undefined || raw.interface === ""
      ? undefined
      : r.string(
          "apiVirtualIp.interface",
          raw.interface,
          "",
          `"ens3"`,
          INTERFACE_NAME,
          "must be a network interface name (at most 15 characters)",
        );
  let image: string | undefined;
  if (raw.image !== undefined && raw.image !== "") {
    const parsed = typeof raw.image === "string" ? parseImage(raw.image) : { problem: "must be a string" };
    if ("problem" in parsed) r.problem("apiVirtualIp.image", raw.image, `${parsed.problem} (${IMAGE_FORMS})`, `"${KUBE_VIP_IMAGE}"`);
    else image = raw.image as string;
  }
  return { address, ...(iface ? { interface: iface } : {}), ...(image ? { image } : {}) };
}

/** The address `offset` from a subnet's start (negative: from its end, -1 being the broadcast address). */
function ipv4At(subnet: { network: bigint; prefix: number }, offset: number): string {
  const size = 1n << BigInt(32 - subnet.prefix);
  const value = offset >= 0 ? subnet.network + BigInt(offset) : subnet.network + size + BigInt(offset);
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join(".");
}

/** Keys of the platform base (networking, storage, security): ingress, Ceph, certificates, Harbor. */
function readPlatformBase(r: Reader, provider: Provider, nodes: NodesSpec, hosts: ExistingHostSpec[]) {
  // `pulumi config set ingressLoadBalancer false` (without --path) stores the string "false": raw() parses it.
  const lbRaw = r.oneOf("ingressLoadBalancer", "pulumi config set ingressLoadBalancer false");
  // auto follows apiLoadBalancer: a cloud without Octavia switches that off, and then has no ingress LB either.
  const ingressLoadBalancer = lbRaw === "auto" ? provider === "openstack" && r.raw("apiLoadBalancer") !== false : lbRaw === true;
  if (ingressLoadBalancer && provider === "existing") {
    r.problem(
      "ingressLoadBalancer",
      lbRaw,
      "needs Octavia: with dare:provider = existing the ingress listens on host ports 80/443",
      "pulumi config set ingressLoadBalancer false",
    );
  }
  if (!ingressLoadBalancer && provider === "openstack" && !nodes.pools.some((p) => p.publicIp && p.count > 0)) {
    r.problem(
      "ingressLoadBalancer",
      lbRaw ?? false,
      "without a load balancer the ingress needs worker nodes with public addresses: give a pool publicIp: true",
      "pulumi config set --path 'nodes.pools[0].publicIp' true",
    );
  }

  const workers =
    provider === "existing" ? hosts.filter((h) => h.role !== CONTROL_PLANE_ROLE).length : nodes.pools.reduce((n, p) => n + p.count, 0);
  const withDisks =
    provider === "existing"
      ? hosts.filter((h) => h.disks.length > 0).length
      : nodes.pools.reduce((n, p) => n + (p.disks.count > 0 ? p.count : 0), 0);
  const cephExample = `{"replicas": 3, "monitors": 3}`;
  const ceph = r.object("ceph", r.raw("ceph"), cephExample) ?? {};
  r.unknownKeys("ceph", ceph, ["replicas", "monitors"], cephExample);
  // Unset: as safe as the hosts allow (3 replicas, 3 monitors), less on a small cluster.
  const replicas = r.integer(
    "ceph.replicas",
    ceph.replicas,
    Math.max(1, Math.min(3, withDisks)),
    1,
    "pulumi config set --path 'ceph.replicas' 3",
  );
  const monitors = r.integer("ceph.monitors", ceph.monitors, workers >= 3 ? 3 : 1, 1, "pulumi config set --path 'ceph.monitors' 3");
  const disksKey = provider === "existing" ? "hosts[].disks" : "nodes.pools[].disks.count";
  if (withDisks === 0) {
    r.problem(
      disksKey,
      0,
      "no host has a disk for Ceph: the storage classes need at least one OSD",
      provider === "existing" ? `"disks": ["/dev/sdb"]` : "pulumi config set --path 'nodes.pools[0].disks.count' 1",
    );
  } else if (replicas > withDisks) {
    r.problem(
      "ceph.replicas",
      replicas,
      `${withDisks} host(s) have disks: each replica needs its own host, so at most ${withDisks}`,
      `pulumi config set --path 'ceph.replicas' ${withDisks}`,
    );
  }
  if (![1, 3, 5].includes(monitors)) {
    r.problem(
      "ceph.monitors",
      monitors,
      "Ceph monitors keep a majority: 1 (testbed), 3 or 5",
      "pulumi config set --path 'ceph.monitors' 3",
    );
  } else if (workers > 0 && monitors > workers) {
    r.problem(
      "ceph.monitors",
      monitors,
      `each monitor needs its own worker node and there are ${workers}`,
      "pulumi config set --path 'ceph.monitors' 1",
    );
  }

  const tlsIssuer = r.oneOf("tlsIssuer", "pulumi config set tlsIssuer letsencrypt-staging") as TlsIssuer;
  // "" (the default) is unset.
  const acmeRaw = r.raw("acmeEmail") || undefined;
  const acmeEmail = r.string("acmeEmail", acmeRaw, "", `"ops@example.org"`, /^[^@\s]+@[^@\s]+\.[^@\s]+$/, "must be an e-mail address");
  if (tlsIssuer.startsWith("letsencrypt") && acmeRaw === undefined) {
    r.problem(
      "acmeEmail",
      r.raw("acmeEmail"),
      `${tlsIssuer} needs an account e-mail (Let's Encrypt sends expiry warnings there)`,
      "pulumi config set acmeEmail ops@example.org",
    );
  }

  const chartMirror =
    r.string(
      "chartMirror",
      r.raw("chartMirror") || undefined,
      "",
      `"http://charts.example.org:8879"`,
      /^https?:\/\/[^\s/]+(\/\S*)?$/,
      "must be an http:// or https:// URL of a Helm chart repository",
    ) || undefined;

  const mirrors = readMirrors(r);

  const harborExample = `{"enabled": true, "registrySizeGb": 100}`;
  const harbor = r.object("harbor", r.raw("harbor"), harborExample) ?? {};
  r.unknownKeys("harbor", harbor, ["enabled", "registrySizeGb"], harborExample);
  return {
    ingressLoadBalancer,
    ceph: { replicas, monitors },
    tlsIssuer,
    acmeEmail,
    chartMirror,
    mirrors,
    harbor: {
      enabled: r.boolean("harbor.enabled", harbor.enabled, defaultOf("harbor").enabled, "true"),
      registrySizeGb: r.integer(
        "harbor.registrySizeGb",
        harbor.registrySizeGb,
        defaultOf("harbor").registrySizeGb,
        1,
        "pulumi config set --path 'harbor.registrySizeGb' 100",
      ),
    },
  };
}

/** A registry as image references name it, and as containerd names its hosts directory: a DNS name or IPv4 address, an optional port. */
const REGISTRY_NAME = /^(?=[^:]{1,253}(:|$))([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;
/** http(s), a host (name or IPv4, optional port), an optional path; nothing a hosts.toml, apt or shell line would need to quote or expand. */
const MIRROR_URL = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~%+:@/-]*)?$/;
const MIRROR_URL_WHY =
  "must be an http:// or https:// URL: a host name or IPv4 address, an optional port and path (letters, digits and . _ ~ % + : @ / -), no query";

/** The PEM certificates of a text, or why it is none. */
export function pemCertificateProblem(text: string): string | undefined {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return "must be a PEM certificate (-----BEGIN CERTIFICATE----- …) or dare-ca";
  for (const block of blocks) {
    let cert: crypto.X509Certificate;
    try {
      cert = new crypto.X509Certificate(block);
    } catch (e) {
      return `holds a certificate that cannot be read (${(e as Error).message})`;
    }
    if (!cert.ca)
      return `holds a certificate that is not a CA's (subject ${cert.subject.replace(/\n/g, ", ")}): give the CA that signed the mirror's certificate`;
  }
  return undefined;
}

/** dare:mirrors: the hosts' registry and apt mirrors, and the CA their certificates are checked against. */
function readMirrors(r: Reader): MirrorsSpec {
  const example = `{"registries": {"docker.io": {"endpoint": "https://harbor.example.org/v2/dockerhub-proxy"}}, "apt": {"ubuntu": "https://mirror.example.org/ubuntu"}, "caCertificate": "dare-ca"}`;
  const mirrors = r.object("mirrors", r.raw("mirrors"), example) ?? {};
  r.unknownKeys("mirrors", mirrors, ["registries", "apt", "caCertificate"], example);
  const url = (key: string, value: unknown, ex: string) => r.string(key, value, "", ex, MIRROR_URL, MIRROR_URL_WHY).replace(/\/+$/, "");

  const registries: Record<string, string> = {};
  const registryExample = `{"docker.io": {"endpoint": "https://harbor.example.org/v2/dockerhub-proxy"}}`;
  for (const [name, entry] of Object.entries(r.object("mirrors.registries", mirrors.registries, registryExample) ?? {})) {
    const key = `mirrors.registries["${name}"]`;
    if (!REGISTRY_NAME.test(name)) {
      r.problem(
        key,
        entry,
        "is not a registry name: a lower-case DNS name or IPv4 address with an optional port, as image references begin (docker.io, registry.k8s.io, registry.example.org:5000)",
        registryExample,
      );
      continue;
    }
    const endpointExample = `pulumi config set --path 'mirrors.registries["${name}"].endpoint' https://harbor.example.org/v2/${name.replace(/[^a-z0-9]+/g, "-")}-proxy`;
    const fields = r.object(key, entry, `{"endpoint": "https://harbor.example.org/v2/dockerhub-proxy"}`);
    if (!fields) continue;
    r.unknownKeys(key, fields, ["endpoint"], endpointExample);
    if (fields.endpoint === undefined) {
      r.problem(`${key}.endpoint`, undefined, "is required: the mirror's URL", endpointExample);
      continue;
    }
    const endpoint = url(`${key}.endpoint`, fields.endpoint, endpointExample);
    if (endpoint) registries[name] = endpoint;
  }

  const apt: MirrorsSpec["apt"] = {};
  const aptExample = (name: AptMirrored) =>
    `pulumi config set --path 'mirrors.apt.${name}' https://mirror.example.org/${name === "ubuntu" ? "ubuntu" : name === "kubernetes" ? "pkgs.k8s.io" : "download.docker.com/linux/ubuntu"}`;
  const aptFields = r.object("mirrors.apt", mirrors.apt, `{"ubuntu": "https://mirror.example.org/ubuntu"}`) ?? {};
  r.unknownKeys("mirrors.apt", aptFields, [...APT_MIRRORED], aptExample("ubuntu"));
  for (const name of APT_MIRRORED) {
    // "" (as `pulumi config set --path 'mirrors.apt.docker' ''` leaves it) is unset.
    const value = aptFields[name] === "" ? undefined : aptFields[name];
    const mirror = url(`mirrors.apt.${name}`, value, aptExample(name));
    if (mirror) apt[name] = mirror;
  }

  const caRaw = mirrors.caCertificate === "" ? undefined : mirrors.caCertificate;
  let caCertificate: string | undefined;
  if (caRaw !== undefined) {
    const caExample = `pulumi config set --path 'mirrors.caCertificate' ${CA_ISSUER}   (or the PEM text: … --path 'mirrors.caCertificate' "$(cat mirror-ca.pem)")`;
    const problem =
      typeof caRaw !== "string" ? "must be dare-ca or a PEM certificate" : caRaw === CA_ISSUER ? undefined : pemCertificateProblem(caRaw);
    if (problem) r.problem("mirrors.caCertificate", typeof caRaw === "string" ? caRaw.slice(0, 80) : caRaw, problem, caExample);
    else caCertificate = caRaw as string;
    if (!problem && Object.keys(registries).length === 0 && Object.keys(apt).length === 0) {
      r.problem(
        "mirrors.caCertificate",
        caRaw === CA_ISSUER ? caRaw : "[PEM]",
        "no mirror is configured for it to check: set mirrors.registries or mirrors.apt, or remove it",
        `pulumi config set --path 'mirrors.registries["docker.io"].endpoint' https://harbor.example.org/v2/dockerhub-proxy`,
      );
    }
  }
  return { registries, apt, ...(caCertificate ? { caCertificate } : {}) };
}

export { DARE_WORKLOADS };
export type { DareWorkload };

/**
 * Default images (declared in config-keys.ts). Only dare-login's image is published; the other DARE
 * images default to "" and are required (REQUIRED_IMAGES names the project that builds each).
 * Databases and tools: official images, pinned patch releases.
 */
export const DEFAULT_IMAGES = CONFIG_KEYS.images.default satisfies Record<
  DareWorkload | "mpi-operator" | "mpijob-conversion" | "blackbox-exporter" | "etcd" | "postgres-client" | "busybox",
  string
>;
export type ImageName = keyof typeof DEFAULT_IMAGES;

export interface ServiceSizing {
  replicas: number;
  /** the container port the service listens on */
  port: number;
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
  /** databases and workloads with local state: size of the Ceph block volume */
  storageSize: string;
  /** workloads with local state (WORKLOADS[…].localState): where their volume is mounted */
  dataPath?: string;
}

export interface BackupSpec {
  /** borg repository `user@host:path`; unset: no host backups */
  repository?: string;
  /** borg passphrase (Pulumi secret); set when `repository` is */
  passphrase?: pulumi.Output<string>;
  /** cron schedule of the etcd snapshot and database dump CronJobs */
  schedule: string;
  keepEtcdSnapshots: number;
  keepDumps: number;
  /** systemd OnCalendar of the hosts' borg run: after the snapshots and dumps */
  hostSchedule: string;
  prune: { daily: number; weekly: number; monthly: number };
}

export interface DareLayerSpec {
  images: Record<ImageName, string>;
  services: Record<DareWorkload, ServiceSizing>;
  /** size of the DARE shared file system (CephFS, ReadWriteMany) */
  sharedFilesystemSize: string;
  jupyterhub: boolean;
  /** workflow pods may reach the internet (pip, downloads of input data) */
  workflowInternetAccess: boolean;
  backup: BackupSpec;
}

export function defaultSizing(name: DareWorkload): ServiceSizing {
  const db = DATABASES.includes(name);
  const state = WORKLOADS[name].localState;
  return {
    replicas: 1,
    port: WORKLOADS[name].port,
    requests: db ? { cpu: "250m", memory: "512Mi" } : { cpu: "100m", memory: "256Mi" },
    limits: db ? { cpu: "2", memory: "2Gi" } : { cpu: "1", memory: "1Gi" },
    storageSize: "10Gi",
    ...(state ? { dataPath: state.path } : {}),
  };
}

const CRON = /^(\S+\s+){4}\S+$/;
const BORG_REPO = /^[a-z_][a-z0-9_-]*@[A-Za-z0-9.-]+:\S+$/;

/** dare:backupPolicy's declared default, the fallback of each of its fields. */
const POLICY = defaultOf("backupPolicy");

function readDareLayer(r: Reader): DareLayerSpec {
  const imagesExample = `{"exec-api": "harbor.dare.example.org/dare/exec-api:v3.6"}`;
  const imagesRaw = r.object("images", r.raw("images"), imagesExample) ?? {};
  r.unknownKeys("images", imagesRaw, Object.keys(DEFAULT_IMAGES), imagesExample);
  const images = { ...DEFAULT_IMAGES } as Record<ImageName, string>;
  for (const name of Object.keys(DEFAULT_IMAGES) as ImageName[]) {
    const value = imagesRaw[name];
    // "" is the declared default of an image that must be configured: unset, reported below.
    if (value === undefined || value === "") continue;
    const example = `"${DEFAULT_IMAGES[name] || `harbor.dare.example.org/dare/${name}:v3.6`}"`;
    if (typeof value !== "string") {
      r.problem(`images.${name}`, value, `must be an image reference: ${IMAGE_FORMS}`, example);
      continue;
    }
    const ref = parseImage(value);
    if ("problem" in ref) {
      r.problem(`images.${name}`, value, `${ref.problem}; write ${IMAGE_FORMS}`, example);
      continue;
    }
    images[name] = value;
  }
  // The operator and the MPIJob CRD shipped in components/dare-services/crds are one release: its tag must stay (a digest may be added).
  const mpiTag = (parseImage(DEFAULT_IMAGES["mpi-operator"]) as ImageRef).tag;
  const mpi = parseImage(images["mpi-operator"]);
  if (!("problem" in mpi) && mpi.tag !== mpiTag) {
    r.problem(
      "images.mpi-operator",
      images["mpi-operator"],
      `must keep the tag ${mpiTag}, the release of the MPIJob CRD the program ships (pin it further with its digest)`,
      `"${DEFAULT_IMAGES["mpi-operator"]}@sha256:<64 hex digits>"`,
    );
  }
  // No public image or tag exists for these: the site builds them (the project is named) and says where they are.
  for (const [name, project] of REQUIRED_IMAGES) {
    if (images[name] === "") {
      r.problem(
        `images.${name}`,
        undefined,
        `is required: no published image of ${name} exists; build it from ${project} and push it to your registry`,
        `pulumi config set --path 'images.${name}' harbor.dare.example.org/dare/${name}:v3.6`,
      );
    }
  }

  const servicesExample = `{"dare-login": {"replicas": 2, "requests": {"cpu": "200m", "memory": "256Mi"}}}`;
  const servicesRaw = r.object("services", r.raw("services"), servicesExample) ?? {};
  r.unknownKeys("services", servicesRaw, [...DARE_WORKLOADS], servicesExample);
  const services = {} as Record<DareWorkload, ServiceSizing>;
  for (const name of DARE_WORKLOADS) {
    const base = defaultSizing(name);
    const key = `services.${name}`;
    const s = r.object(key, servicesRaw[name], servicesExample) ?? {};
    r.unknownKeys(
      key,
      s,
      ["replicas", "port", "requests", "limits", "storageSize", ...(base.dataPath ? ["dataPath"] : [])],
      servicesExample,
    );
    const quantities = (field: "requests" | "limits") => {
      const q = r.object(`${key}.${field}`, s[field], `{"cpu": "500m", "memory": "1Gi"}`) ?? {};
      r.unknownKeys(`${key}.${field}`, q, ["cpu", "memory"], `{"cpu": "500m", "memory": "1Gi"}`);
      return {
        cpu: r.quantity(`${key}.${field}.cpu`, q.cpu, base[field].cpu, `"500m"`),
        memory: r.quantity(`${key}.${field}.memory`, q.memory, base[field].memory, `"1Gi"`),
      };
    };
    const replicas = r.integer(`${key}.replicas`, s.replicas, base.replicas, 1, `pulumi config set --path '${key}.replicas' 2`);
    // A database is one pod with its own volume: more replicas would be independent, diverging copies.
    if (DATABASES.includes(name) && replicas > 1) {
      r.problem(`${key}.replicas`, replicas, "a database here is a single instance (no replication is configured)", "1");
    }
    // A "local DB" lives on one ReadWriteOnce volume: a second pod could not mount it, or would diverge.
    if (base.dataPath && replicas > 1) {
      r.problem(`${key}.replicas`, replicas, `${name} keeps its local state on one volume: it runs one replica`, "1");
    }
    services[name] = {
      replicas,
      port: r.integer(`${key}.port`, s.port, base.port, 1, "8080"),
      requests: quantities("requests"),
      limits: quantities("limits"),
      storageSize: r.quantity(`${key}.storageSize`, s.storageSize, base.storageSize, `"20Gi"`),
      ...(base.dataPath
        ? {
            dataPath: r.string(
              `${key}.dataPath`,
              s.dataPath,
              base.dataPath,
              `"/var/lib/${name}"`,
              /^\/[^\s]*$/,
              "must be an absolute path",
            ),
          }
        : {}),
    };
  }

  const policyExample = `{"schedule": "0 2 * * *", "keepEtcdSnapshots": 7, "keepDumps": 7, "hostSchedule": "*-*-* 03:00:00", "prune": {"daily": 7, "weekly": 4, "monthly": 6}}`;
  const policy = r.object("backupPolicy", r.raw("backupPolicy"), policyExample) ?? {};
  r.unknownKeys("backupPolicy", policy, ["schedule", "keepEtcdSnapshots", "keepDumps", "hostSchedule", "prune"], policyExample);
  const prune = r.object("backupPolicy.prune", policy.prune, `{"daily": 7, "weekly": 4, "monthly": 6}`) ?? {};
  r.unknownKeys("backupPolicy.prune", prune, ["daily", "weekly", "monthly"], `{"daily": 7, "weekly": 4, "monthly": 6}`);

  // "" (the default) is unset, for both keys.
  const repoRaw = r.raw("backup") || undefined;
  const repository =
    repoRaw === undefined
      ? undefined
      : r.string(
          "backup",
          repoRaw,
          "",
          `"borg@backup.example.org:/srv/borg/dare"`,
          BORG_REPO,
          "must name a borg repository as user@host:path",
        );
  let passphrase: pulumi.Output<string> | undefined;
  const passRaw = r.raw("backupPassphrase") || undefined;
  const optOut = (r.raw("backupOptOut") as string | undefined) || undefined;
  if (!repository && !optOut) {
    r.problem(
      "backup",
      undefined,
      "off-host backups are required: without them etcd snapshots and database dumps live only on the control planes' disks",
      "pulumi config set backup borg@backup.example.org:/srv/borg/dare (or, for disposable data: pulumi config set backupOptOut 'testbed: disposable data')",
    );
  } else if (repository && optOut) {
    r.problem("backupOptOut", optOut, "contradicts dare:backup, which is set", "pulumi config rm backupOptOut");
  }
  if (repository) {
    // Unset: Backups generates one (stack output borgPassphrase).
    if (passRaw === undefined) {
      passphrase = undefined;
    } else if (typeof passRaw !== "string" || passRaw.length < 12) {
      r.problem(
        "backupPassphrase",
        "[secret]",
        "a borg passphrase needs at least 12 characters",
        'pulumi config set --secret backupPassphrase "$(openssl rand -base64 32)"',
      );
    } else if (r.isSecretKey("backupPassphrase") === false) {
      r.problem(
        "backupPassphrase",
        "[not shown]",
        "must be set with --secret: it protects every host's backup",
        "pulumi config set --secret backupPassphrase <passphrase>",
      );
    } else {
      passphrase = pulumi.secret(passRaw);
    }
  } else if (passRaw !== undefined) {
    r.problem(
      "backupPassphrase",
      "[secret]",
      "is only used with dare:backup (a borg repository)",
      "pulumi config set backup borg@backup.example.org:/srv/borg/dare",
    );
  }

  return {
    images,
    services,
    sharedFilesystemSize: r.quantity("sharedFilesystemSize", r.raw("sharedFilesystemSize"), defaultOf("sharedFilesystemSize"), `"200Gi"`),
    jupyterhub: r.boolean("jupyterhub", r.raw("jupyterhub"), defaultOf("jupyterhub"), "true"),
    workflowInternetAccess: r.boolean(
      "workflowInternetAccess",
      r.raw("workflowInternetAccess"),
      defaultOf("workflowInternetAccess"),
      "true",
    ),
    backup: {
      repository: repository || undefined,
      passphrase,
      schedule: r.string(
        "backupPolicy.schedule",
        policy.schedule,
        POLICY.schedule,
        `"0 2 * * *"`,
        CRON,
        "must be a cron schedule (five fields)",
      ),
      keepEtcdSnapshots: r.integer("backupPolicy.keepEtcdSnapshots", policy.keepEtcdSnapshots, POLICY.keepEtcdSnapshots, 1, "7"),
      keepDumps: r.integer("backupPolicy.keepDumps", policy.keepDumps, POLICY.keepDumps, 1, "7"),
      hostSchedule: r.string(
        "backupPolicy.hostSchedule",
        policy.hostSchedule,
        POLICY.hostSchedule,
        `"*-*-* 03:00:00"`,
        /^[0-9*][-0-9*,:. /A-Za-z]*$/,
        "must be a systemd OnCalendar expression",
      ),
      prune: {
        daily: r.integer("backupPolicy.prune.daily", prune.daily, POLICY.prune.daily, 0, "7"),
        weekly: r.integer("backupPolicy.prune.weekly", prune.weekly, POLICY.prune.weekly, 0, "4"),
        monthly: r.integer("backupPolicy.prune.monthly", prune.monthly, POLICY.prune.monthly, 0, "6"),
      },
    },
  };
}

/** `dare:keycloak`: sizes of Keycloak and its PostgreSQL cluster. */
export interface KeycloakSpec {
  /** Keycloak pods (they share sessions through the database: jdbc-ping) */
  replicas: number;
  /** PostgreSQL instances run by CloudNativePG: 1 primary, the rest streaming replicas */
  databaseInstances: number;
  databaseSizeGb: number;
}

export const DEFAULT_KEYCLOAK: KeycloakSpec = defaultOf("keycloak");

/** An OpenID Connect identity provider (EGI Check-in, EUDAT B2ACCESS, Google…) users may log in with. */
export interface OidcIdentityProvider {
  protocol: "oidc";
  /** Keycloak's name for it; part of the broker redirect URI https://<domain>/auth/realms/dare/broker/<alias>/endpoint */
  alias: string;
  displayName: string;
  issuer: string;
  authorizationUrl: string;
  tokenUrl: string;
  jwksUrl: string;
  userInfoUrl?: string;
  clientId: string;
  /** set with `pulumi config set --secret --path 'identityProviders[N].clientSecret' …` */
  clientSecret: pulumi.Output<string>;
}

/** A SAML 2.0 identity provider. */
export interface SamlIdentityProvider {
  protocol: "saml";
  alias: string;
  displayName: string;
  idpEntityId: string;
  singleSignOnServiceUrl: string;
  /** the IdP's signing certificate (base64 DER, as in its metadata); when set, signatures are checked */
  signingCertificate?: string;
}

export type IdentityProviderSpec = OidcIdentityProvider | SamlIdentityProvider;

/** `dare:alerting`: where Alertmanager sends e-mail. */
export interface AlertingSpec {
  /** host:port of the SMTP relay */
  smtpHost: string;
  from: string;
  to: string[];
  /** SMTP login; "" for a relay without authentication */
  user: string;
  /** set with `pulumi config set --secret --path 'alerting.smtpPassword' …`; required when user is set */
  smtpPassword?: pulumi.Output<string>;
  /** severities mailed to the operators (the seed: critical only) */
  severities: string[];
}

export const ALERT_SEVERITIES = ["critical", "warning", "info"] as const;
const ALIAS = /^[a-z][a-z0-9-]{0,30}$/;
const HTTPS_URL = /^https:\/\/[^\s/]+(\/\S*)?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const SECRET_SHOWN = "[secret]";
/** An object whose values are hidden, for messages about keys of objects that hold secrets. */
const masked = (o: Record<string, unknown>) => Object.fromEntries(Object.keys(o).map((k) => [k, SECRET_SHOWN]));

function readKeycloak(r: Reader): KeycloakSpec {
  const example = `{"replicas": 2, "databaseInstances": 3, "databaseSizeGb": 20}`;
  const kc = r.object("keycloak", r.raw("keycloak"), example) ?? {};
  r.unknownKeys("keycloak", kc, Object.keys(DEFAULT_KEYCLOAK), example);
  return {
    replicas: r.integer("keycloak.replicas", kc.replicas, DEFAULT_KEYCLOAK.replicas, 1, "pulumi config set --path 'keycloak.replicas' 2"),
    databaseInstances: r.integer(
      "keycloak.databaseInstances",
      kc.databaseInstances,
      DEFAULT_KEYCLOAK.databaseInstances,
      1,
      "pulumi config set --path 'keycloak.databaseInstances' 3",
    ),
    databaseSizeGb: r.integer(
      "keycloak.databaseSizeGb",
      kc.databaseSizeGb,
      DEFAULT_KEYCLOAK.databaseSizeGb,
      1,
      "pulumi config set --path 'keycloak.databaseSizeGb' 20",
    ),
  };
}

function readIdentityProvider(r: Reader, key: string, item: unknown): IdentityProviderSpec | undefined {
  const oidcExample = `{"alias": "egi", "displayName": "EGI Check-in", "issuer": "https://aai.egi.eu/auth/realms/egi", "authorizationUrl": "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/auth", "tokenUrl": "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token", "jwksUrl": "https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/certs", "clientId": "dare"} and pulumi config set --secret --path '${key}.clientSecret' …`;
  const samlExample = `{"alias": "b2access", "protocol": "saml", "idpEntityId": "https://b2access.eudat.eu/saml-idp/metadata", "singleSignOnServiceUrl": "https://b2access.eudat.eu/saml-idp/saml2webssoidp"}`;
  // Never print the object or its unknown keys' values: they may hold the client secret.
  if (item === null || typeof item !== "object" || Array.isArray(item)) {
    r.problem(key, SECRET_SHOWN, "must be an object", oidcExample);
    return undefined;
  }
  const p = item as Record<string, unknown>;
  const protocol = p.protocol ?? "oidc";
  if (protocol !== "oidc" && protocol !== "saml") {
    r.problem(`${key}.protocol`, protocol, `must be "oidc" or "saml"`, `"oidc"`);
    return undefined;
  }
  const alias = r.string(
    `${key}.alias`,
    p.alias ?? "",
    "",
    `"egi"`,
    ALIAS,
    "must start with a letter and hold only lower-case letters, digits and '-' (at most 31): it is part of the broker URL",
  );
  const displayName = r.string(`${key}.displayName`, p.displayName, alias, `"EGI Check-in"`);
  const url = (field: string, required: boolean, example: string) => {
    if (p[field] === undefined && !required) return undefined;
    return r.string(`${key}.${field}`, p[field] ?? "", "", example, HTTPS_URL, "must be an https:// URL");
  };
  if (protocol === "saml") {
    r.unknownKeys(
      key,
      masked(p),
      ["protocol", "alias", "displayName", "idpEntityId", "singleSignOnServiceUrl", "signingCertificate"],
      samlExample,
    );
    const cert =
      p.signingCertificate === undefined
        ? undefined
        : r.string(
            `${key}.signingCertificate`,
            p.signingCertificate,
            "",
            `"MIIC…"`,
            /^[A-Za-z0-9+/=\s]+$/,
            "must be the base64 certificate from the IdP's metadata, without PEM header lines",
          );
    return {
      protocol,
      alias,
      displayName,
      idpEntityId: r.string(`${key}.idpEntityId`, p.idpEntityId ?? "", "", `"https://idp.example.org/metadata"`),
      singleSignOnServiceUrl: url("singleSignOnServiceUrl", true, `"https://idp.example.org/sso"`)!,
      signingCertificate: cert?.replace(/\s+/g, ""),
    };
  }
  r.unknownKeys(
    key,
    masked(p),
    ["protocol", "alias", "displayName", "issuer", "authorizationUrl", "tokenUrl", "jwksUrl", "userInfoUrl", "clientId", "clientSecret"],
    oidcExample,
  );
  const secretRaw = p.clientSecret;
  if (typeof secretRaw !== "string" || secretRaw.length === 0) {
    r.problem(
      `${key}.clientSecret`,
      secretRaw === undefined ? undefined : SECRET_SHOWN,
      "is required: the secret the provider issued for this client",
      `pulumi config set --secret --path '${key}.clientSecret' <secret>`,
    );
  } else if (r.isSecretKey("identityProviders") === false) {
    r.problem(
      `${key}.clientSecret`,
      "[not shown]",
      "must be set with --secret: it would be stored in plain text in the stack file",
      `pulumi config set --secret --path '${key}.clientSecret' <secret>`,
    );
  }
  return {
    protocol,
    alias,
    displayName,
    issuer: url("issuer", true, `"https://aai.egi.eu/auth/realms/egi"`)!,
    authorizationUrl: url("authorizationUrl", true, `"https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/auth"`)!,
    tokenUrl: url("tokenUrl", true, `"https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token"`)!,
    jwksUrl: url("jwksUrl", true, `"https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/certs"`)!,
    userInfoUrl: url("userInfoUrl", false, `"https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/userinfo"`),
    clientId: r.string(`${key}.clientId`, p.clientId ?? "", "", `"dare"`),
    clientSecret: pulumi.secret(typeof secretRaw === "string" ? secretRaw : ""),
  };
}

function readIdentityProviders(r: Reader): IdentityProviderSpec[] {
  const raw = r.raw("identityProviders");
  if (raw !== undefined && !Array.isArray(raw)) r.problem("identityProviders", SECRET_SHOWN, "must be a list", `[{"alias": "egi", …}]`);
  const list = Array.isArray(raw) ? raw : [];
  const providers = list
    .map((item, i) => readIdentityProvider(r, `identityProviders[${i}]`, item))
    .filter((p): p is IdentityProviderSpec => p !== undefined);
  const seen = new Set<string>();
  providers.forEach((p, i) => {
    if (p.alias && seen.has(p.alias))
      r.problem(`identityProviders[${i}].alias`, p.alias, "duplicate alias: each provider needs its own", `"b2access"`);
    seen.add(p.alias);
  });
  return providers;
}

function readAlerting(r: Reader): AlertingSpec | undefined {
  const example = `{"smtpHost": "smtp.example.org:587", "from": "alertmanager@dare.example.org", "to": ["dare-ops@example.org"], "user": "alertmanager"}`;
  const raw = r.raw("alerting");
  // {} (the default) is unset.
  if (raw === undefined || (typeof raw === "object" && raw !== null && Object.keys(raw).length === 0)) return undefined;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    r.problem("alerting", SECRET_SHOWN, "must be an object", example);
    return undefined;
  }
  const a = raw as Record<string, unknown>;
  r.unknownKeys("alerting", masked(a), ["smtpHost", "from", "to", "user", "smtpPassword", "severities"], example);
  const email = (key: string, value: unknown, ex: string) => r.string(key, value ?? "", "", ex, EMAIL, "must be an e-mail address");
  const to = r.list("alerting.to", a.to ?? [], `["dare-ops@example.org"]`) ?? [];
  if (to.length === 0)
    r.problem(
      "alerting.to",
      a.to,
      "name at least one address the alerts go to",
      `pulumi config set --path 'alerting.to[0]' dare-ops@example.org`,
    );
  const user = a.user === undefined ? "" : r.string("alerting.user", a.user, "", `"alertmanager"`);
  const password = a.smtpPassword;
  if (user !== "" && (typeof password !== "string" || password === "")) {
    r.problem(
      "alerting.smtpPassword",
      password === undefined ? undefined : SECRET_SHOWN,
      "is required when alerting.user is set",
      "pulumi config set --secret --path 'alerting.smtpPassword' <password>",
    );
  }
  if (typeof password === "string" && password !== "" && r.isSecretKey("alerting") === false) {
    r.problem(
      "alerting.smtpPassword",
      "[not shown]",
      "must be set with --secret: it would be stored in plain text in the stack file",
      "pulumi config set --secret --path 'alerting.smtpPassword' <password>",
    );
  }
  if (user === "" && password !== undefined) {
    r.problem(
      "alerting.user",
      a.user,
      "is required when alerting.smtpPassword is set: the SMTP login",
      `pulumi config set --path 'alerting.user' alertmanager`,
    );
  }
  const severities = (r.list("alerting.severities", a.severities, `["critical"]`) ?? ["critical"]).map(String);
  severities.forEach((s, i) => {
    if (!(ALERT_SEVERITIES as readonly string[]).includes(s)) {
      r.problem(`alerting.severities[${i}]`, s, `must be one of ${ALERT_SEVERITIES.join(", ")}`, `"critical"`);
    }
  });
  if (severities.length === 0) r.problem("alerting.severities", severities, "name at least one severity", `["critical"]`);
  return {
    smtpHost: r.string(
      "alerting.smtpHost",
      a.smtpHost ?? "",
      "",
      `"smtp.example.org:587"`,
      /^[A-Za-z0-9.-]+:\d{1,5}$/,
      "must be host:port",
    ),
    from: email("alerting.from", a.from, `"alertmanager@dare.example.org"`),
    to: to.map((t, i) => email(`alerting.to[${i}]`, t, `"dare-ops@example.org"`)),
    user,
    smtpPassword: typeof password === "string" && password !== "" ? pulumi.secret(password) : undefined,
    severities,
  };
}

/** Keys of the A/A and monitoring layers: Keycloak sizes, identity providers, alert e-mail. */
function readAccessAndMonitoring(r: Reader) {
  return { keycloak: readKeycloak(r), identityProviders: readIdentityProviders(r), alerting: readAlerting(r) };
}

function readSshPrivateKey(r: Reader): pulumi.Output<string> | undefined {
  return readPrivateKey(r, "sshPrivateKey", "pulumi config set --secret sshPrivateKey < dare-deployer", "it logs in as root on every host");
}

/** An SSH private key set with --secret, or undefined when unset. */
function readPrivateKey(
  r: Reader,
  key: "sshPrivateKey" | "bastionPrivateKey",
  example: string,
  why: string,
): pulumi.Output<string> | undefined {
  // The value is never shown: a problem names the key only. raw() does not parse a PEM text.
  const value = r.raw(key);
  if (value === undefined || value === "") return undefined;
  const problem = typeof value === "string" ? opensshKeyProblem(value) : "must be the text of a private key";
  if (problem) {
    r.problem(key, SECRET_SHOWN, problem, example);
    return undefined;
  }
  if (r.isSecretKey(key) === false) {
    r.problem(key, "[not shown]", `must be set with --secret: ${why}`, example);
    return undefined;
  }
  return pulumi.secret(value as string);
}

function readExtraArgs(r: Reader): ControlPlaneExtraArgs {
  const problems: SettingsProblem[] = [];
  const args = readControlPlaneExtraArgs(r.raw("controlPlaneExtraArgs"), problems);
  for (const p of problems) r.problem(p.key, p.value, p.why, p.example);
  return args;
}

/** Reads and validates the whole configuration; throws one ConfigError listing every problem. */
export function loadConfig(source: ConfigSource): DareConfig {
  const r = new Reader(source);
  const provider = r.oneOf("provider", "pulumi config set provider openstack") as Provider;

  const nodes = readNodes(r);
  const bastion = readBastion(r, provider);
  const hosts = readHosts(r, provider, nodes.pools, bastion);
  const controlPlanes = provider === "existing" ? hosts.filter((h) => h.role === CONTROL_PLANE_ROLE).length : nodes.controlPlane.count;
  const cpKey = provider === "existing" ? "hosts" : "nodes.controlPlane.count";
  if (controlPlanes === 0 || controlPlanes % 2 === 0) {
    r.problem(
      cpKey,
      controlPlanes,
      `${controlPlanes} control planes: etcd needs an odd number (1, 3 or 5) to keep a majority`,
      provider === "existing" ? `give 1 or 3 hosts the role "control-plane"` : `pulumi config set --path 'nodes.controlPlane.count' 3`,
    );
  }

  const adminRaw = r.raw("adminCidrs");
  const adminCidrs = (r.list("adminCidrs", adminRaw, `["192.0.2.0/24"]`) ?? []).map(String);
  if (adminRaw === undefined || adminCidrs.length === 0) {
    r.problem(
      "adminCidrs",
      adminRaw,
      "name at least one source range for SSH and the Kubernetes API",
      `pulumi config set --path 'adminCidrs[0]' 192.0.2.0/24`,
    );
  }
  adminCidrs.forEach((c, i) => {
    if (!parseCidr(c)) r.problem(`adminCidrs[${i}]`, c, "must be a CIDR such as a.b.c.d/n", `"192.0.2.0/24"`);
  });

  const stackName = source.stack.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const config: DareConfig = {
    stack: source.stack,
    clusterName: r.string(
      "clusterName",
      r.raw("clusterName") || undefined,
      `dare-${stackName}`,
      `"dare-testbed"`,
      NAME,
      "must be a lower-case DNS label, at most 32 characters",
    ),
    provider,
    nodes,
    hosts,
    ...(bastion ? { bastion } : {}),
    network: readNetwork(r),
    adminCidrs,
    domain: r.string("domain", r.raw("domain"), "", `"dare.example.org"`, DOMAIN, "must be a lower-case DNS name with at least one dot"),
    kubernetesVersion: readKubernetesVersion(r),
    secretsEncryptionKeys: readSecretsEncryptionKeys(r),
    certificateRenewalDays: readCertificateRenewalDays(r),
    controlPlaneExtraArgs: readExtraArgs(r),
    image: r.string("image", r.raw("image"), defaultOf("image"), `"Ubuntu 24.04"`),
    sshUser: r.string("sshUser", r.raw("sshUser"), defaultOf("sshUser"), `"ubuntu"`, /^[a-z_][a-z0-9_-]*$/, "must be a Unix user name"),
    sshPrivateKey: readSshPrivateKey(r),
    apiLoadBalancer: r.boolean("apiLoadBalancer", r.raw("apiLoadBalancer"), defaultOf("apiLoadBalancer"), "false"),
    stopAfter: r.oneOf("stopAfter", "pulumi config set stopAfter bootstrap") as DareConfig["stopAfter"],
    skipAwait: r.boolean("skipAwait", r.raw("skipAwait"), defaultOf("skipAwait"), "true"),
    allowDataLoss: (r.list("allowDataLoss", r.raw("allowDataLoss"), `["dare-production-workers-2-disk-0"]`) ?? []).map((name, i) =>
      r.string(
        `allowDataLoss[${i}]`,
        name,
        "",
        `"dare-production-workers-2-disk-0"`,
        /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
        "must be a resource name as the refusal prints it",
      ),
    ),
    ...readPlatformBase(r, provider, nodes, hosts),
    ...readAccessAndMonitoring(r),
    dare: readDareLayer(r),
  };
  const apiVirtualIp = readApiVirtualIp(r, provider, config.network, hosts, config.apiLoadBalancer);
  if (apiVirtualIp) config.apiVirtualIp = apiVirtualIp;
  if (config.domain === "")
    r.problem("domain", r.raw("domain"), "is required: the DARE services are served under it", `pulumi config set domain dare.example.org`);
  if (r.problems.length > 0) {
    // A key read in two places reports its problem once.
    const unique = new Map(r.problems.map((p) => [`${p.key}\u0000${p.why}`, p]));
    throw new ConfigError([...unique.values()]);
  }
  return config;
}
