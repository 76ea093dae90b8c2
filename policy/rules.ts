/**
 * The platform's rules as plain functions of (resource type, inputs) → violation messages, so that the
 * policy pack (policy/index.ts), the tests and a render-dir check all run exactly the same logic.
 *
 * Under `pulumi preview`, @pulumi/policy hands `props` through a proxy that throws when a rule reads a
 * value not known yet (an output of a resource created in the same update); the SDK then reports
 * "can't run policy during preview" as advisory. The rules do not catch that on purpose: at
 * `pulumi up` the values are known and the rules are enforced for real.
 */
import { dataKindOf } from "../lib/data-kinds";

/** What a rule may know of a resource besides its inputs: its name and lifecycle options. */
export interface ResourceFacts {
  name: string;
  protect?: boolean;
}

/** A rule: violation messages for one resource, empty when it complies. */
export type Rule = (type: string, props: Record<string, any>, resource?: ResourceFacts) => string[];

const SERVICE = "kubernetes:core/v1:Service";
const HELM_RELEASE = "kubernetes:helm.sh/v3:Release";
const HELM_V4_CHART = "kubernetes:helm.sh/v4:Chart";
const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
const K8S_SECRET = "kubernetes:core/v1:Secret";
const SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule";
const COMPUTE_SEC_GROUP = "openstack:compute/secGroup:SecGroup";
const APPLICATION_CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential";

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATHS: Record<string, string[]> = {
  "kubernetes:core/v1:Pod": ["spec"],
  "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
  "kubernetes:batch/v1:Job": ["spec", "template", "spec"],
  "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);

function dig(value: any, path: string[]): any {
  return path.reduce((node, key) => (isObject(node) ? node[key] : undefined), value);
}

/** Every (path, value) pair of a JSON tree, depth first, in key order. */
function* walk(value: unknown, path: string[] = []): Generator<[string[], unknown]> {
  yield [path, value];
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) yield* walk(value[i], [...path, String(i)]);
  else if (isObject(value)) for (const key of Object.keys(value)) yield* walk(value[key], [...path, key]);
}

interface NamedContainer {
  /** e.g. `containers[0] (api)` */
  label: string;
  container: Record<string, any>;
}

/** The containers and init containers of a workload; none for other types. */
export function containersOf(type: string, props: Record<string, any>): NamedContainer[] {
  const specPath = POD_SPEC_PATHS[type];
  if (!specPath) return [];
  const spec = dig(props, specPath);
  if (!isObject(spec)) return [];
  const out: NamedContainer[] = [];
  for (const list of ["initContainers", "containers"]) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    containers.forEach((c, i) => {
      if (isObject(c)) out.push({ label: `${list}[${i}] (${c.name ?? "unnamed"})`, container: c });
    });
  }
  return out;
}

/** Helm values as (dotted path, value) pairs, for releases and v4 charts. */
function helmValues(type: string, props: Record<string, any>): Array<[string, unknown]> {
  if (type !== HELM_RELEASE && type !== HELM_V4_CHART) return [];
  return [...walk(props.values ?? {})].map(([path, value]) => [path.join("."), value]);
}

/** No Service of type NodePort: it opens a port on every node, around the ingress and the firewall. */
export const noNodePortServices: Rule = (type, props) => {
  if (type === SERVICE) {
    return props.spec?.type === "NodePort"
      ? [`Service ${props.metadata?.name ?? ""} has type NodePort; use ClusterIP behind the ingress, or LoadBalancer`]
      : [];
  }
  return helmValues(type, props)
    .filter(([path, value]) => /(^|\.)type$/.test(path) && typeof value === "string" && value.toLowerCase() === "nodeport")
    .map(([path]) => `Helm value ${path} is NodePort; use ClusterIP behind the ingress, or LoadBalancer`);
};

/**
 * Every container asks for CPU and memory and is capped in memory: requests let the scheduler place
 * pods, the memory limit keeps one pod from starving its node. A CPU limit is not required (it only
 * throttles), but allowed.
 */
export const containerResources: Rule = (type, props) => {
  const problems: string[] = [];
  for (const { label, container } of containersOf(type, props)) {
    const requests = container.resources?.requests ?? {};
    const limits = container.resources?.limits ?? {};
    const missing = [
      ...(requests.cpu === undefined ? ["requests.cpu"] : []),
      ...(requests.memory === undefined ? ["requests.memory"] : []),
      ...(limits.memory === undefined ? ["limits.memory"] : []),
    ];
    if (missing.length > 0) problems.push(`${label} has no resources.${missing.join(", resources.")}`);
  }
  return problems;
};

/** Why an image reference is not pinned, or undefined when it is (a tag other than latest, or a digest). */
export function unpinnedImageReason(image: string): string | undefined {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return undefined;
  // The tag follows the last ":" after the last "/"; a ":" before it is a registry port.
  const lastSegment = image.slice(image.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  if (colon < 0) return "has no tag (means latest)";
  const tag = lastSegment.slice(colon + 1);
  if (tag === "") return "has an empty tag";
  if (tag === "latest") return "uses the tag latest";
  return undefined;
}

/** No image without a pinned tag or digest: `latest` or no tag changes under a running cluster. */
export const pinnedImages: Rule = (type, props) => {
  const problems: string[] = [];
  for (const { label, container } of containersOf(type, props)) {
    const reason = typeof container.image === "string" ? unpinnedImageReason(container.image) : "has no image";
    if (reason) problems.push(`${label} image ${container.image ?? ""} ${reason}; pin a version tag or a digest`);
  }
  for (const [path, value] of helmValues(type, props)) {
    // Charts take images as `image: repo:tag` or `image: {repository, tag}`; an empty tag means the
    // chart's appVersion, which the pinned chart version fixes.
    if (/(^|\.)tag$/.test(path) && value === "latest") problems.push(`Helm value ${path} is latest; pin a version`);
    if (/(^|\.)image$/.test(path) && typeof value === "string") {
      const reason = unpinnedImageReason(value);
      if (reason) problems.push(`Helm value ${path} (${value}) ${reason}; pin a version tag or a digest`);
    }
  }
  return problems;
};

const WORLD_OPEN_PORTS = new Set([80, 443]);

/** A CIDR with prefix length 0 (0.0.0.0/0, ::/0) is the whole Internet. */
const isWorld = (cidr: unknown) => typeof cidr === "string" && /\/0$/.test(cidr.trim());

function worldRuleProblem(what: string, protocol: unknown, min: unknown, max: unknown): string | undefined {
  const tcpOrUdp = typeof protocol === "string" && ["tcp", "udp"].includes(protocol.toLowerCase());
  if (tcpOrUdp && typeof min === "number" && min === max && WORLD_OPEN_PORTS.has(min)) return undefined;
  const ports = min === undefined ? "all ports" : min === max ? `port ${min}` : `ports ${min}-${max}`;
  return `${what} opens ${protocol ?? "every protocol"} ${ports} to the world; only 80 and 443 may be, restrict the source CIDR`;
}

/** No security group rule open to the world except ports 80 and 443. */
export const noWorldOpenSecurityGroupRules: Rule = (type, props) => {
  if (type === SEC_GROUP_RULE) {
    if (props.direction !== "ingress") return [];
    // Neutron treats a rule with neither a remote prefix nor a remote group as open to every source.
    const world = isWorld(props.remoteIpPrefix) || (props.remoteIpPrefix === undefined && props.remoteGroupId === undefined);
    if (!world) return [];
    const problem = worldRuleProblem("security group rule", props.protocol, props.portRangeMin, props.portRangeMax);
    return problem ? [problem] : [];
  }
  if (type === COMPUTE_SEC_GROUP && Array.isArray(props.rules)) {
    return props.rules.flatMap((rule: Record<string, any>, i: number) => {
      if (!isWorld(rule.cidr)) return [];
      const problem = worldRuleProblem(`rules[${i}]`, rule.ipProtocol, rule.fromPort, rule.toPort);
      return problem ? [problem] : [];
    });
  }
  return [];
};

/** An exact chart version: MAJOR.MINOR.PATCH with an optional pre-release/build, not a range. */
const EXACT_VERSION = /^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/;

/** Every Helm release pinned to an exact chart version: otherwise a preview today and an up tomorrow differ. */
export const pinnedHelmReleases: Rule = (type, props) => {
  if (type !== HELM_RELEASE && type !== HELM_V4_CHART) return [];
  const version = props.version;
  if (version === undefined || version === "") return [`Helm chart ${props.chart ?? ""} has no version; pin the exact chart version`];
  if (typeof version !== "string" || !EXACT_VERSION.test(version)) {
    return [`Helm chart ${props.chart ?? ""} version ${String(version)} is not an exact version (e.g. 1.2.3)`];
  }
  return [];
};

/** Names that hold a credential (env vars, ConfigMap keys, Helm value keys). */
const CREDENTIAL_NAME = /(password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|secret[_-]?key|credentials?)$/i;
/** Names that only point at a credential stored elsewhere (existingSecret: the Secret's name). */
const CREDENTIAL_REFERENCE = /^existing/i;
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

const isCredentialName = (name: string) => CREDENTIAL_NAME.test(name) && !CREDENTIAL_REFERENCE.test(name);

/** Whether a value carries Pulumi's secret marker, as far as the caller can tell. */
export type SecretTest = (value: unknown) => boolean;

/**
 * Secrets marked secret.
 *
 * What the engine gives a policy about secretness: the engine sends inputs with their secret markers,
 * but @pulumi/policy 1.21 unwraps them before validateResource/validateStack (only remediations see
 * them), so a mandatory rule in the pack cannot ask "is this value a Pulumi secret?". The pack
 * therefore enforces where credentials live: never in a ConfigMap, never as a literal container env
 * value (they belong in a Secret, referenced by secretKeyRef; a Pod spec is readable by anyone who
 * may list pods). A caller that can see the markers (a render dir, where secrets are "[secret]")
 * passes `isSecret` and also gets the value check: every Kubernetes Secret's data/stringData value,
 * an OpenStack application credential's secret and every credential-named Helm value must be a
 * Pulumi secret (from @pulumi/random, @pulumi/tls or `pulumi config set --secret`).
 */
export function secretsMarkedSecret(type: string, props: Record<string, any>, isSecret?: SecretTest): string[] {
  const problems: string[] = [];
  if (type === CONFIG_MAP) {
    for (const field of ["data", "binaryData"]) {
      if (!isObject(props[field])) continue;
      for (const [key, value] of Object.entries<unknown>(props[field])) {
        if (isCredentialName(key)) problems.push(`ConfigMap key ${field}.${key} looks like a credential; put it in a Secret`);
        else if (typeof value === "string" && PRIVATE_KEY_PEM.test(value))
          problems.push(`ConfigMap key ${field}.${key} holds a private key; put it in a Secret`);
      }
    }
  }
  for (const { label, container } of containersOf(type, props)) {
    for (const env of Array.isArray(container.env) ? container.env : []) {
      if (isObject(env) && typeof env.name === "string" && isCredentialName(env.name) && env.value !== undefined && env.value !== "") {
        problems.push(`${label} env ${env.name} is a literal value; take it from a Secret with valueFrom.secretKeyRef`);
      }
    }
  }
  if (!isSecret) return problems;

  if (type === K8S_SECRET) {
    for (const field of ["data", "stringData"]) {
      // A whole map that is one secret (pulumi.secret({...})) is as good as secret values.
      if (isSecret(props[field]) || !isObject(props[field])) continue;
      for (const [key, value] of Object.entries<unknown>(props[field])) {
        if (!isSecret(value)) problems.push(`Secret ${props.metadata?.name ?? ""} ${field}.${key} is not a Pulumi secret`);
      }
    }
  }
  if (type === APPLICATION_CREDENTIAL && props.secret !== undefined && !isSecret(props.secret)) {
    problems.push("application credential secret is not a Pulumi secret");
  }
  for (const [path, value] of helmValues(type, props)) {
    const key = path.slice(path.lastIndexOf(".") + 1);
    if (typeof value === "string" && value !== "" && isCredentialName(key) && !isSecret(value)) {
      problems.push(`Helm value ${path} looks like a credential but is not a Pulumi secret`);
    }
  }
  return problems;
}

/**
 * Every resource that holds data is protected (lib/data-protection.ts). A deliberate removal lifts
 * the protection and runs with policy/allow-data-loss.json, which makes this rule advisory for that run.
 */
export function dataResourcesProtected(type: string, props: Record<string, any>, resource?: ResourceFacts): string[] {
  if (!resource) return [];
  const kind = dataKindOf(type, resource.name, props);
  return kind && !resource.protect ? [`${resource.name} holds data (${kind.what}) but is not protected: an edit could delete it`] : [];
}

export interface RuleDefinition {
  /** policy name, unique in the pack */
  name: string;
  description: string;
  check: Rule;
}

/** The pack's rules, in the order they are reported. */
export const RULES: RuleDefinition[] = [
  {
    name: "no-nodeport-services",
    description: "No Service of type NodePort (Kubernetes Services and Helm values).",
    check: noNodePortServices,
  },
  {
    name: "container-resources",
    description: "Every container has CPU and memory requests and a memory limit.",
    check: containerResources,
  },
  { name: "pinned-images", description: "Every image has a version tag (not latest) or a digest.", check: pinnedImages },
  {
    name: "no-world-open-security-group-rules",
    description: "No security group rule open to 0.0.0.0/0 or ::/0 except TCP/UDP 80 and 443.",
    check: noWorldOpenSecurityGroupRules,
  },
  { name: "pinned-helm-releases", description: "Every Helm release is pinned to an exact chart version.", check: pinnedHelmReleases },
  {
    name: "secrets-marked-secret",
    description: "Credentials live in Secrets (not ConfigMaps or literal env values).",
    check: (type, props) => secretsMarkedSecret(type, props),
  },
  {
    name: "data-resources-protected",
    description: "Every resource that holds data (volumes, VMs, claims, the database cluster, data namespaces) is protected.",
    check: dataResourcesProtected,
  },
];
