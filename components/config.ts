/**
 * The stack configuration: the project's public interface.
 *
 * Every key is declared in Pulumi.yaml (type, description, default). This module reads them all,
 * validates them together and fails with ONE message that lists every problem (key, value, why, a
 * valid example) before any resource is declared. Later layers add their keys here in the same style:
 * a typed field on `DareConfig`, a `read…` function that pushes problems instead of throwing.
 */
import * as pulumi from "@pulumi/pulumi";
import { cidrsOverlap, isIpv4Address, parseCidr } from "./cidr";

/** Kubernetes minors this program installs and upgrades (upstream support, late 2026). */
export const SUPPORTED_KUBERNETES_MINORS = [35, 36, 37] as const;

export type Provider = "openstack" | "existing";
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

export interface DareConfig {
  stack: string;
  /** prefix of every cloud resource and host name, e.g. dare-testbed */
  clusterName: string;
  provider: Provider;
  nodes: NodesSpec;
  /** existing mode only */
  hosts: ExistingHostSpec[];
  network: NetworkSpec;
  adminCidrs: string[];
  domain: string;
  kubernetesVersion: string;
  image: string;
  sshUser: string;
  /** Octavia load balancer in front of the API when there is more than one control plane */
  apiLoadBalancer: boolean;
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
  const lines = problems.map(
    (p) => `  - dare:${p.key} = ${JSON.stringify(p.value) ?? "(unset)"}: ${p.why}\n      example: ${p.example}`,
  );
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `Invalid stack configuration (${count}):\n${lines.join("\n")}`;
}

/** Where raw values come from: `pulumi.Config` in a deployment, a plain map in tests. */
export interface ConfigSource {
  stack: string;
  /** the raw string of a project key (JSON text for objects and lists), or undefined when unset */
  get(key: string): string | undefined;
}

/** Reads the project's keys from Pulumi's config (stack file over Pulumi.yaml defaults). */
export function pulumiConfigSource(): ConfigSource {
  const config = new pulumi.Config("dare");
  return { stack: pulumi.getStack(), get: (key) => config.get(key) };
}

export const DEFAULT_NODES: NodesSpec = {
  controlPlane: { count: 1, flavor: "m1.medium" },
  pools: [{ name: "workers", count: 2, flavor: "m1.large", disks: { count: 0, sizeGb: 100 }, publicIp: false }],
};

export const DEFAULT_NETWORK: NetworkSpec = {
  cidr: "10.10.0.0/24",
  podCidr: "10.244.0.0/16",
  serviceCidr: "10.96.0.0/12",
  externalNetwork: "public",
  dnsNameservers: ["1.1.1.1", "9.9.9.9"],
};

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

  /** The parsed value of a key: JSON when it parses, else the raw string. */
  raw(key: string): unknown {
    const text = this.source.get(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
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
  r.unknownKeys(key, pool, ["name", "count", "flavor", "disks", "publicIp"], example);
  const name = r.string(`${key}.name`, pool.name ?? "", "", `"workers"`, NAME,
    "must be a lower-case DNS label (letters, digits, '-'), at most 32 characters");
  if (name === CONTROL_PLANE_ROLE) r.problem(`${key}.name`, name, `"${CONTROL_PLANE_ROLE}" is reserved for control planes`, `"workers"`);
  const disksKey = `${key}.disks`;
  const disks = r.object(disksKey, pool.disks, `{"count": 1, "sizeGb": 100}`) ?? {};
  r.unknownKeys(disksKey, disks, ["count", "sizeGb"], `{"count": 1, "sizeGb": 100}`);
  return {
    name,
    count: r.integer(`${key}.count`, pool.count, 0, 0, `pulumi config set --path 'nodes.pools[0].count' 3`),
    flavor: r.string(`${key}.flavor`, pool.flavor, "m1.large", `"m1.large"`),
    disks: {
      count: r.integer(`${disksKey}.count`, disks.count, 0, 0, `pulumi config set --path '${disksKey}.count' 1`),
      sizeGb: r.integer(`${disksKey}.sizeGb`, disks.sizeGb, 100, 1, `pulumi config set --path '${disksKey}.sizeGb' 100`),
    },
    publicIp: r.boolean(`${key}.publicIp`, pool.publicIp, false, "false"),
  };
}

function readNodes(r: Reader): NodesSpec {
  const example = `{"controlPlane": {"count": 3, "flavor": "m1.large"}, "pools": [{"name": "workers", "count": 3, "flavor": "m1.xlarge", "disks": {"count": 1, "sizeGb": 200}}]}`;
  const nodes = r.object("nodes", r.raw("nodes"), example);
  if (!nodes) return DEFAULT_NODES;
  r.unknownKeys("nodes", nodes, ["controlPlane", "pools"], example);
  const cp = r.object("nodes.controlPlane", nodes.controlPlane, `{"count": 3, "flavor": "m1.large"}`) ?? {};
  r.unknownKeys("nodes.controlPlane", cp, ["count", "flavor"], `{"count": 3, "flavor": "m1.large"}`);
  const controlPlane = {
    count: r.integer("nodes.controlPlane.count", cp.count, DEFAULT_NODES.controlPlane.count, 0,
      `pulumi config set --path 'nodes.controlPlane.count' 3`),
    flavor: r.string("nodes.controlPlane.flavor", cp.flavor, DEFAULT_NODES.controlPlane.flavor, `"m1.large"`),
  };
  const rawPools = nodes.pools === undefined ? undefined : r.list("nodes.pools", nodes.pools, `[${example}]`);
  const pools = rawPools === undefined
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

function readHosts(r: Reader, provider: Provider, pools: PoolSpec[]): ExistingHostSpec[] {
  const example = `[{"name": "cp-0", "role": "control-plane", "address": "203.0.113.10", "privateAddress": "10.0.0.10", "user": "ubuntu", "port": 22, "disks": ["/dev/sdb"]}]`;
  const raw = r.raw("hosts");
  if (provider !== "existing") {
    if (raw !== undefined) r.problem("hosts", raw, "is only used with dare:provider = existing", "remove it, or set dare:provider to existing");
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
    r.unknownKeys(key, host, ["name", "role", "address", "privateAddress", "user", "port", "disks"], example);
    const name = r.string(`${key}.name`, host.name ?? "", "", `"worker-3"`, NAME,
      "must be a lower-case DNS label: it becomes the Kubernetes node name");
    if (name && names.has(name)) r.problem(`${key}.name`, name, "duplicate host name", `"worker-4"`);
    names.add(name);
    const role = r.string(`${key}.role`, host.role ?? "", "", `"control-plane"`);
    if (role && !roles.includes(role)) {
      r.problem(`${key}.role`, role, `unknown role: must be one of ${roles.join(", ")} (pools come from dare:nodes.pools)`, `"${roles[roles.length - 1]}"`);
    }
    const address = r.string(`${key}.address`, host.address ?? "", "", `"203.0.113.10"`);
    const privateAddress = r.string(`${key}.privateAddress`, host.privateAddress ?? address, address, `"10.0.0.10"`,
      undefined, "must be an IPv4 address");
    if (privateAddress && !isIpv4Address(privateAddress)) {
      r.problem(`${key}.privateAddress`, privateAddress, "must be an IPv4 address", `"10.0.0.10"`);
    }
    const disks = (r.list(`${key}.disks`, host.disks, `["/dev/sdb"]`) ?? []).map((d, j) =>
      r.string(`${key}.disks[${j}]`, d, "", `"/dev/sdb"`, /^\/dev\/\S+$/, "must be a block device path under /dev"));
    hosts.push({
      name,
      role,
      address,
      privateAddress,
      user: r.string(`${key}.user`, host.user, r.string("sshUser", r.raw("sshUser"), "ubuntu", `"ubuntu"`), `"ubuntu"`),
      port: r.integer(`${key}.port`, host.port, 22, 1, "22"),
      disks,
    });
  });
  return hosts;
}

function readNetwork(r: Reader): NetworkSpec {
  const example = `{"cidr": "10.10.0.0/24", "podCidr": "10.244.0.0/16", "serviceCidr": "10.96.0.0/12", "externalNetwork": "public", "dnsNameservers": ["1.1.1.1"]}`;
  const net = r.object("network", r.raw("network"), example) ?? {};
  r.unknownKeys("network", net, Object.keys(DEFAULT_NETWORK), example);
  const ranges: Array<[keyof NetworkSpec, string]> = [["cidr", "10.10.0.0/24"], ["podCidr", "10.244.0.0/16"], ["serviceCidr", "10.96.0.0/12"]];
  const parsed = ranges.map(([field, ex]) => {
    const key = `network.${field}`;
    const value = net[field] ?? DEFAULT_NETWORK[field];
    const cidr = parseCidr(value);
    if (!cidr || cidr.version !== 4) r.problem(key, value, "must be an IPv4 CIDR such as a.b.c.d/n", `"${ex}"`);
    return { key, cidr: cidr?.version === 4 ? cidr : undefined };
  });
  for (let i = 0; i < parsed.length; i++) {
    for (let j = i + 1; j < parsed.length; j++) {
      const a = parsed[i], b = parsed[j];
      if (a.cidr && b.cidr && cidrsOverlap(a.cidr, b.cidr)) {
        r.problem(b.key, b.cidr.text, `overlaps dare:${a.key} (${a.cidr.text}): node, pod and service ranges must be disjoint`, `"${ranges[j][1]}"`);
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

function readKubernetesVersion(r: Reader): string {
  const value = r.raw("kubernetesVersion");
  const text = typeof value === "string" ? value : value === undefined ? undefined : String(value);
  const example = `"1.36.4"`;
  const version = r.string("kubernetesVersion", text, "1.36.4", example, VERSION, "must be MAJOR.MINOR.PATCH, without a leading v");
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

/** Reads and validates the whole configuration; throws one ConfigError listing every problem. */
export function loadConfig(source: ConfigSource): DareConfig {
  const r = new Reader(source);
  const providerRaw = r.raw("provider") ?? "openstack";
  let provider: Provider = "openstack";
  if (providerRaw === "openstack" || providerRaw === "existing") provider = providerRaw;
  else r.problem("provider", providerRaw, `unknown provider: must be "openstack" or "existing"`, `pulumi config set provider openstack`);

  const nodes = readNodes(r);
  const hosts = readHosts(r, provider, nodes.pools);
  const controlPlanes = provider === "existing"
    ? hosts.filter((h) => h.role === CONTROL_PLANE_ROLE).length
    : nodes.controlPlane.count;
  const cpKey = provider === "existing" ? "hosts" : "nodes.controlPlane.count";
  if (controlPlanes === 0 || controlPlanes % 2 === 0) {
    r.problem(cpKey, controlPlanes, `${controlPlanes} control planes: etcd needs an odd number (1, 3 or 5) to keep a majority`,
      provider === "existing" ? `give 1 or 3 hosts the role "control-plane"` : `pulumi config set --path 'nodes.controlPlane.count' 3`);
  }

  const adminRaw = r.raw("adminCidrs");
  const adminCidrs = (r.list("adminCidrs", adminRaw, `["192.0.2.0/24"]`) ?? []).map(String);
  if (adminRaw === undefined || adminCidrs.length === 0) {
    r.problem("adminCidrs", adminRaw, "name at least one source range for SSH and the Kubernetes API", `pulumi config set --path 'adminCidrs[0]' 192.0.2.0/24`);
  }
  adminCidrs.forEach((c, i) => {
    if (!parseCidr(c)) r.problem(`adminCidrs[${i}]`, c, "must be a CIDR such as a.b.c.d/n", `"192.0.2.0/24"`);
  });

  const stackName = source.stack.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const config: DareConfig = {
    stack: source.stack,
    clusterName: r.string("clusterName", r.raw("clusterName"), `dare-${stackName}`, `"dare-testbed"`, NAME,
      "must be a lower-case DNS label, at most 32 characters"),
    provider,
    nodes,
    hosts,
    network: readNetwork(r),
    adminCidrs,
    domain: r.string("domain", r.raw("domain"), "", `"dare.example.org"`, DOMAIN, "must be a lower-case DNS name with at least one dot"),
    kubernetesVersion: readKubernetesVersion(r),
    image: r.string("image", r.raw("image"), "Ubuntu 24.04", `"Ubuntu 24.04"`),
    sshUser: r.string("sshUser", r.raw("sshUser"), "ubuntu", `"ubuntu"`, /^[a-z_][a-z0-9_-]*$/, "must be a Unix user name"),
    apiLoadBalancer: r.boolean("apiLoadBalancer", r.raw("apiLoadBalancer"), true, "false"),
  };
  if (config.domain === "") r.problem("domain", r.raw("domain"), "is required: the DARE services are served under it", `pulumi config set domain dare.example.org`);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}
