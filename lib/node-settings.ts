/**
 * Per-pool node settings (labels, taints, kubelet settings) and the operator's extra arguments for the
 * control-plane components: their validation, and what the host steps are given.
 *
 * Applied at join (kubeadm's nodeRegistration: taints, the kubelet's `node-labels`; the kubelet's drop-in
 * file) and kept in step on later `pulumi up`s: labels and taints by k8s-node.sh from the first control
 * plane (removing only those it set itself, which it records in the node annotations below), kubelet
 * settings by k8s-kubelet-config.sh on the node, the extra arguments by k8s-control-plane.sh.
 */
import * as YAML from "yaml";
import { PROGRAM_EXTRA_ARGS } from "../components/cluster/kubeadm-config";

/** A node taint as kubeadm's nodeRegistration and `kubectl taint` take it. */
export interface Taint {
  key: string;
  /** "" for a taint without a value */
  value: string;
  effect: TaintEffect;
}

export const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];

/** KubeletConfiguration (kubelet.config.k8s.io/v1beta1) fields a pool may set; nothing else is accepted. */
export interface KubeletSettings {
  /** maxPods: pods this node runs at most (kubelet default 110) */
  maxPods?: number;
  /** systemReserved: resources kept for the operating system (cpu, memory, ephemeral-storage, pid) */
  systemReserved?: Record<string, string>;
  /** kubeReserved: resources kept for the kubelet and containerd (cpu, memory, ephemeral-storage, pid) */
  kubeReserved?: Record<string, string>;
  /** evictionHard: signal → threshold (quantity or percentage); replaces the kubelet's default thresholds */
  evictionHard?: Record<string, string>;
  /** featureGates: gate name → on/off */
  featureGates?: Record<string, boolean>;
}

/** What a pool (or one existing host) asks of its nodes. */
export interface NodeSettings {
  /** labels the program sets on the node (key → value) */
  labels: Record<string, string>;
  taints: Taint[];
  kubelet: KubeletSettings;
}

/**
 * Node annotations where k8s-node.sh records the labels (keys) and taints (key=value:Effect) it set, so a
 * later run removes those the configuration dropped and never one someone else set.
 */
export const MANAGED_LABELS_ANNOTATION = "dare.io/managed-labels";
export const MANAGED_TAINTS_ANNOTATION = "dare.io/managed-taints";
/** Label prefix the program keeps for itself (dare.io/pool, the annotations above). */
export const PROGRAM_LABEL_PREFIX = "dare.io/";

/**
 * Where the kubelet reads drop-in configuration (`--config-dir`, GA in Kubernetes 1.35: KEP-3983), and the
 * program's file there. Drop-ins are merged over /var/lib/kubelet/config.yaml (kubeadm's cluster-wide
 * KubeletConfiguration) in file-name order, so kubeadm upgrades, which rewrite config.yaml, keep them.
 */
export const KUBELET_DROPIN_DIR = "/etc/kubernetes/kubelet.conf.d";
export const KUBELET_DROPIN_FILE = `${KUBELET_DROPIN_DIR}/50-dare.conf`;

// Kubernetes' label syntax (apimachinery validation: IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain).
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
/** A flag name as the control-plane components spell them (without the leading --). */
export const FLAG_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const FEATURE_GATE = /^[A-Z][A-Za-z0-9]{1,99}$/;
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;
const PERCENT = /^\d+(\.\d+)?%$/;

/**
 * The label namespaces a kubelet may set on its own Node (NodeRestriction admission; the kubelet refuses
 * other kubernetes.io/k8s.io labels in --node-labels): kubernetes/kubernetes pkg/kubelet/apis/well_known_labels.go,
 * `kubeletLabelNamespaces`. The keys of `kubeletLabels` there that the kubelet sets itself (hostname, os,
 * arch) are not the operator's to set; the topology and instance-type ones are.
 */
const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"];
const KUBELET_LABELS_ALLOWED = [
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
  "node.kubernetes.io/instance-type",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "beta.kubernetes.io/instance-type",
];

const inNamespace = (prefix: string, namespace: string) => prefix === namespace || prefix.endsWith(`.${namespace}`);

/** Why `key` is not a valid label or taint key, or undefined. */
function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash < 0 ? "" : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !DNS_SUBDOMAIN.test(prefix)) return `its prefix "${prefix}" is not a lower-case DNS subdomain`;
  if (!LABEL_NAME.test(name)) return "its name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  return undefined;
}

/** Why the operator may not set label `key`, or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  const syntax = qualifiedNameProblem(key);
  if (syntax) return `is not a Kubernetes label key: ${syntax}`;
  if (key.startsWith(PROGRAM_LABEL_PREFIX)) return `the ${PROGRAM_LABEL_PREFIX} prefix is the program's own (dare.io/pool names the pool)`;
  const prefix = key.includes("/") ? key.slice(0, key.indexOf("/")) : "";
  const reserved = inNamespace(prefix, "kubernetes.io") || inNamespace(prefix, "k8s.io");
  if (reserved && !KUBELET_LABELS_ALLOWED.includes(key) && !KUBELET_LABEL_NAMESPACES.some((ns) => inNamespace(prefix, ns))) {
    return (
      "kubernetes.io and k8s.io labels are refused (NodeRestriction forbids kubelets to set node-role.kubernetes.io/* and most others); " +
      `allowed there: ${KUBELET_LABEL_NAMESPACES.map((ns) => `${ns}/*`).join(", ")}, ${KUBELET_LABELS_ALLOWED.join(", ")}`
    );
  }
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  return LABEL_VALUE.test(value)
    ? undefined
    : "is not a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)";
}

/** `key=value:Effect` or `key:Effect` → a Taint, or why not. */
export function parseTaint(text: string): Taint | { problem: string } {
  const match = /^([^=:]+)(?:=([^:]*))?:([A-Za-z]+)$/.exec(text);
  if (!match) return { problem: "must be key=value:Effect or key:Effect" };
  const [, key, value = "", effect] = match;
  const keyProblem = qualifiedNameProblem(key);
  if (keyProblem) return { problem: `has the key "${key}", which is not a Kubernetes taint key: ${keyProblem}` };
  const prefix = key.includes("/") ? key.slice(0, key.indexOf("/")) : "";
  if (inNamespace(prefix, "kubernetes.io") || inNamespace(prefix, "k8s.io") || key.startsWith(PROGRAM_LABEL_PREFIX)) {
    return {
      problem: `has the key "${key}": kubernetes.io, k8s.io and dare.io taints belong to Kubernetes (node lifecycle, the cloud controller) and the program`,
    };
  }
  if (!LABEL_VALUE.test(value))
    return { problem: `has the value "${value}", which is not a Kubernetes taint value (at most 63 letters, digits, '-', '_' or '.')` };
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect))
    return { problem: `has the effect "${effect}": must be one of ${TAINT_EFFECTS.join(", ")}` };
  return { key, value, effect: effect as TaintEffect };
}

export const taintText = (t: Taint) => `${t.key}${t.value === "" ? "" : `=${t.value}`}:${t.effect}`;

/** The kubelet settings' keys and, for the resource maps, the keys each accepts. */
export const KUBELET_FIELDS = ["maxPods", "systemReserved", "kubeReserved", "evictionHard", "featureGates"] as const;
/** Resources systemReserved and kubeReserved take (KubeletConfiguration reference). */
export const RESERVED_RESOURCES = ["cpu", "memory", "ephemeral-storage", "pid"] as const;
/** Eviction signals of the kubelet (Node-pressure Eviction: "Eviction signals"). */
export const EVICTION_SIGNALS = [
  "memory.available",
  "nodefs.available",
  "nodefs.inodesFree",
  "imagefs.available",
  "imagefs.inodesFree",
  "containerfs.available",
  "containerfs.inodesFree",
  "pid.available",
] as const;

/** A problem found while reading settings: where (relative key), the value, why, a valid example. */
export interface SettingsProblem {
  key: string;
  value: unknown;
  why: string;
  example: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads `labels`, `taints` and `kubelet` of one pool or host (`key` is its config path); problems go to `problems`. */
export function readNodeSettings(
  key: string,
  raw: { labels?: unknown; taints?: unknown; kubelet?: unknown },
  problems: SettingsProblem[],
): Partial<NodeSettings> {
  const out: Partial<NodeSettings> = {};
  const problem = (k: string, value: unknown, why: string, example: string) => problems.push({ key: k, value, why, example });
  if (raw.labels !== undefined) {
    const labelsKey = `${key}.labels`;
    const example = `{"example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme"}`;
    if (!isObject(raw.labels)) {
      problem(labelsKey, raw.labels, "must be an object of label key → value", example);
    } else {
      out.labels = {};
      for (const [k, v] of Object.entries(raw.labels)) {
        const keyProblem = labelKeyProblem(k);
        if (keyProblem) {
          problem(`${labelsKey}.${k}`, k, keyProblem, `"example.org/gpu": "a100"`);
          continue;
        }
        const value = typeof v === "number" || typeof v === "boolean" ? String(v) : v;
        const valueProblem = typeof value === "string" ? labelValueProblem(value) : "must be a string";
        if (valueProblem) {
          problem(`${labelsKey}.${k}`, v, valueProblem, `"a100"`);
          continue;
        }
        out.labels[k] = value as string;
      }
    }
  }
  if (raw.taints !== undefined) {
    const taintsKey = `${key}.taints`;
    const example = `["example.org/gpu=true:NoSchedule"]`;
    if (!Array.isArray(raw.taints)) {
      problem(taintsKey, raw.taints, "must be a list of key=value:Effect", example);
    } else {
      out.taints = [];
      raw.taints.forEach((t, i) => {
        const parsed = typeof t === "string" ? parseTaint(t) : { problem: "must be a string key=value:Effect" };
        if ("problem" in parsed) {
          problem(`${taintsKey}[${i}]`, t, parsed.problem, `"example.org/gpu=true:NoSchedule"`);
          return;
        }
        if (out.taints!.some((o) => o.key === parsed.key && o.effect === parsed.effect)) {
          problem(
            `${taintsKey}[${i}]`,
            t,
            `a second taint with key ${parsed.key} and effect ${parsed.effect}: a node has one per key and effect`,
            example,
          );
          return;
        }
        out.taints!.push(parsed);
      });
    }
  }
  if (raw.kubelet !== undefined) out.kubelet = readKubeletSettings(`${key}.kubelet`, raw.kubelet, problem);
  return out;
}

function readKubeletSettings(
  key: string,
  raw: unknown,
  problem: (k: string, v: unknown, why: string, example: string) => void,
): KubeletSettings {
  const example = `{"maxPods": 200, "systemReserved": {"cpu": "500m", "memory": "1Gi"}, "kubeReserved": {"cpu": "500m", "memory": "1Gi"}, "featureGates": {"ExampleGate": true}}`;
  if (!isObject(raw)) {
    problem(key, raw, "must be an object", example);
    return {};
  }
  const out: KubeletSettings = {};
  for (const [field, value] of Object.entries(raw)) {
    const fieldKey = `${key}.${field}`;
    switch (field) {
      case "maxPods":
        if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 10000) {
          problem(fieldKey, value, "must be a whole number from 1 to 10000", "200");
        } else out.maxPods = value;
        break;
      case "systemReserved":
      case "kubeReserved": {
        const map = readStringMap(
          fieldKey,
          value,
          RESERVED_RESOURCES,
          (v) => QUANTITY.test(v),
          "a Kubernetes quantity",
          `{"cpu": "500m", "memory": "1Gi"}`,
          problem,
        );
        if (map) out[field] = map;
        break;
      }
      case "evictionHard": {
        const map = readStringMap(
          fieldKey,
          value,
          EVICTION_SIGNALS,
          (v) => QUANTITY.test(v) || PERCENT.test(v),
          "a quantity or a percentage",
          `{"memory.available": "500Mi", "nodefs.available": "10%", "imagefs.available": "15%", "nodefs.inodesFree": "5%"}`,
          problem,
        );
        if (map) out.evictionHard = map;
        break;
      }
      case "featureGates":
        if (!isObject(value)) {
          problem(fieldKey, value, "must be an object of gate name → true/false", `{"ExampleGate": true}`);
          break;
        }
        out.featureGates = {};
        for (const [gate, on] of Object.entries(value)) {
          if (!FEATURE_GATE.test(gate))
            problem(`${fieldKey}.${gate}`, gate, "is not a feature gate name (CamelCase letters and digits)", `"ExampleGate": true`);
          else if (typeof on !== "boolean") problem(`${fieldKey}.${gate}`, on, "must be true or false", `"${gate}": true`);
          else out.featureGates[gate] = on;
        }
        break;
      default:
        problem(fieldKey, value, `unknown kubelet setting (known: ${KUBELET_FIELDS.join(", ")})`, example);
    }
  }
  return out;
}

function readStringMap(
  key: string,
  value: unknown,
  known: readonly string[],
  valid: (v: string) => boolean,
  what: string,
  example: string,
  problem: (k: string, v: unknown, why: string, example: string) => void,
): Record<string, string> | undefined {
  if (!isObject(value)) {
    problem(key, value, "must be an object", example);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    const text = typeof v === "number" ? String(v) : v;
    if (!known.includes(k)) problem(`${key}.${k}`, v, `unknown key (known: ${known.join(", ")})`, example);
    else if (typeof text !== "string" || !valid(text)) problem(`${key}.${k}`, v, `must be ${what}`, example);
    else out[k] = text;
  }
  return out;
}

/** A host's settings: its pool's, with the host's own labels added (and overriding), its taints and kubelet fields replacing. */
export function mergeNodeSettings(pool: Partial<NodeSettings> | undefined, host: Partial<NodeSettings> | undefined): NodeSettings {
  return {
    labels: { ...pool?.labels, ...host?.labels },
    taints: host?.taints ?? pool?.taints ?? [],
    kubelet: { ...pool?.kubelet, ...host?.kubelet },
  };
}

/** The kubelet's drop-in file for these settings, or "" when there are none (the step then removes the file). */
export function kubeletDropIn(kubelet: KubeletSettings): string {
  const fields = KUBELET_FIELDS.filter((f) => kubelet[f] !== undefined);
  if (fields.length === 0) return "";
  return YAML.stringify(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      ...Object.fromEntries(fields.map((f) => [f, kubelet[f]])),
    },
    { lineWidth: 0, sortMapEntries: true },
  );
}

/** The labels k8s-node.sh sets, as `key=value` words (label keys and values hold no spaces). */
export const labelWords = (labels: Record<string, string>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(" ");
/** The taints k8s-node.sh keeps, as `key=value:Effect` words. */
export const taintWords = (taints: Taint[]) => taints.map(taintText).join(" ");

// ---- Extra arguments of the control-plane components ----

export const CONTROL_PLANE_COMPONENTS = ["apiServer", "controllerManager", "scheduler"] as const;
export type ControlPlaneComponent = (typeof CONTROL_PLANE_COMPONENTS)[number];
/** Operator flags per component (name without -- → value), in the order given. */
export type ControlPlaneExtraArgs = Partial<Record<ControlPlaneComponent, Record<string, string>>>;

/**
 * Flags kubeadm sets itself from its own configuration (kubernetes/kubernetes v1.35
 * cmd/kubeadm/app/phases/controlplane/manifests.go: getAPIServerCommand, getControllerManagerCommand,
 * getSchedulerCommand): certificates, kubeconfigs, ports, etcd, the service range, admission and
 * authorization. An extra argument would override them behind kubeadm's back.
 */
const KUBEADM_FLAGS: Record<ControlPlaneComponent, string[]> = {
  apiServer: [
    "advertise-address",
    "enable-admission-plugins",
    "service-cluster-ip-range",
    "service-account-key-file",
    "service-account-signing-key-file",
    "service-account-issuer",
    "client-ca-file",
    "tls-cert-file",
    "tls-private-key-file",
    "kubelet-client-certificate",
    "kubelet-client-key",
    "enable-bootstrap-token-auth",
    "secure-port",
    "allow-privileged",
    "kubelet-preferred-address-types",
    "requestheader-username-headers",
    "requestheader-group-headers",
    "requestheader-extra-headers-prefix",
    "requestheader-client-ca-file",
    "requestheader-allowed-names",
    "proxy-client-cert-file",
    "proxy-client-key-file",
    "etcd-servers",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
    "authorization-mode",
    "authorization-config",
  ],
  controllerManager: [
    "bind-address",
    "leader-elect",
    "kubeconfig",
    "authentication-kubeconfig",
    "authorization-kubeconfig",
    "client-ca-file",
    "requestheader-client-ca-file",
    "root-ca-file",
    "service-account-private-key-file",
    "cluster-signing-cert-file",
    "cluster-signing-key-file",
    "use-service-account-credentials",
    "controllers",
    "allocate-node-cidrs",
    "cluster-cidr",
    "service-cluster-ip-range",
    "cluster-name",
  ],
  scheduler: ["bind-address", "leader-elect", "kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"],
};

/**
 * Flags (or, ending in `*`, flag prefixes) that would weaken what the program relies on: authentication,
 * authorization and admission (NodeRestriction keeps kubelets to their own Node), encryption at rest, the
 * audit log, serving and client certificates, the insecure and anonymous paths.
 */
const WEAKENING_FLAGS: Record<ControlPlaneComponent, string[]> = {
  apiServer: [
    "anonymous-auth",
    "authentication-config",
    "authorization-*",
    "authentication-token-webhook*",
    "token-auth-file",
    "disable-admission-plugins",
    "admission-control*",
    "encryption-provider-*",
    "audit-*",
    "tls-*",
    "client-ca-file",
    "kubelet-*",
    "service-account-*",
    "etcd-*",
    "insecure-*",
    "requestheader-*",
    "proxy-client-*",
    "bind-address",
  ],
  controllerManager: [
    "authentication-*",
    "authorization-*",
    "tls-*",
    "kubeconfig",
    "secure-port",
    "cluster-signing-*",
    "root-ca-file",
    "service-account-private-key-file",
  ],
  scheduler: ["authentication-*", "authorization-*", "tls-*", "kubeconfig", "secure-port", "config"],
};

/** Why the operator may not give `flag` to `component`, or undefined. One place: the program's own flags come from kubeadm-config.ts. */
export function extraArgProblem(component: ControlPlaneComponent, flag: string): string | undefined {
  if (!FLAG_NAME.test(flag)) return "is not a flag name (lower-case words joined by '-', without the leading --)";
  if (PROGRAM_EXTRA_ARGS[component].some((a) => a.name === flag)) return "the program sets this flag itself";
  if (KUBEADM_FLAGS[component].includes(flag)) return "kubeadm sets this flag itself from its own configuration";
  const weakening = WEAKENING_FLAGS[component].find((p) => (p.endsWith("*") ? flag.startsWith(p.slice(0, -1)) : flag === p));
  if (weakening)
    return `would weaken what the program relies on (${weakening}: authentication, authorization, admission, encryption, audit, certificates)`;
  return undefined;
}

/** Reads dare:controlPlaneExtraArgs; problems go to `problems`. */
export function readControlPlaneExtraArgs(raw: unknown, problems: SettingsProblem[]): ControlPlaneExtraArgs {
  const key = "controlPlaneExtraArgs";
  const example = `{"apiServer": {"service-node-port-range": "30000-32767"}, "controllerManager": {"node-monitor-grace-period": "50s"}, "scheduler": {"v": "2"}}`;
  if (raw === undefined) return {};
  if (!isObject(raw)) {
    problems.push({ key, value: raw, why: "must be an object", example });
    return {};
  }
  const out: ControlPlaneExtraArgs = {};
  for (const [component, flags] of Object.entries(raw)) {
    if (!(CONTROL_PLANE_COMPONENTS as readonly string[]).includes(component)) {
      problems.push({
        key: `${key}.${component}`,
        value: flags,
        why: `unknown component (known: ${CONTROL_PLANE_COMPONENTS.join(", ")})`,
        example,
      });
      continue;
    }
    const c = component as ControlPlaneComponent;
    if (!isObject(flags)) {
      problems.push({ key: `${key}.${c}`, value: flags, why: "must be an object of flag name → value", example });
      continue;
    }
    const args: Record<string, string> = {};
    for (const [flag, value] of Object.entries(flags)) {
      const flagProblem = extraArgProblem(c, flag);
      const text = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
      if (flagProblem) problems.push({ key: `${key}.${c}.${flag}`, value, why: flagProblem, example });
      else if (typeof text !== "string" || /[\n\r]/.test(text))
        problems.push({ key: `${key}.${c}.${flag}`, value, why: "must be a one-line string", example: `"30000-32767"` });
      else args[flag] = text;
    }
    if (Object.keys(args).length > 0) out[c] = args;
  }
  return out;
}
