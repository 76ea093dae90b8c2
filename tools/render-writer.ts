/**
 * Writes a program run to a directory an operator (or a validator, or a diff) can read:
 * resources.json, outputs.json, kubernetes/, helm/ and hosts/. Every Pulumi secret becomes "[secret]".
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { envFile, readScript, RecordedStep } from "../lib/host-step";
import { RESOURCE_SIG, RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY, UNKNOWN_VALUE } from "./mocks";

export const SECRET = "[secret]";

/** Replaces secrets by "[secret]" and resource references by their URN; collects the secret texts. */
export class Redactor {
  readonly secrets = new Set<string>();

  /** `collect = false`: a composite secret whose secret parts are collected where they originate. */
  redact(value: unknown, collect = true): unknown {
    if (value === UNKNOWN_VALUE) return "[unknown]";
    if (Array.isArray(value)) return value.map((v) => this.redact(v, collect));
    if (value === null || typeof value !== "object") return value;
    const obj = value as Record<string, unknown>;
    if (obj[SPECIAL_SIG_KEY] === SECRET_SIG) {
      if (collect) this.collect(obj.value);
      return SECRET;
    }
    if (obj[SPECIAL_SIG_KEY] === RESOURCE_SIG) return obj.urn;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj).sort()) out[key] = this.redact(obj[key], collect);
    return out;
  }

  collect(value: unknown): void {
    if (typeof value === "string") {
      this.secrets.add(value);
      // A multi-line secret (a private key) may leak line by line: its long, blank-free lines count too.
      for (const line of value.split("\n")) if (/^[^\s-]{32,}$/.test(line.trim())) this.secrets.add(line.trim());
    } else if (value && typeof value === "object") {
      Object.values(value as object).forEach((v) => this.collect(v));
    }
  }
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const yaml = (value: unknown) => YAML.stringify(value, { sortMapEntries: true, lineWidth: 0 });
const safeName = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, "_");

/** Kubernetes objects the program declares directly (not components, providers, Helm releases or reads). */
function isKubernetesObject(r: RecordedResource): boolean {
  return (
    r.custom &&
    !r.read &&
    r.type.startsWith("kubernetes:") &&
    !r.type.startsWith("kubernetes:helm.sh/") &&
    !r.type.startsWith("pulumi:providers:")
  );
}

/**
 * A host step's connection is secret as a whole (it holds the SSH key) and its stdin mixes secret and
 * plain parameters; collecting them whole would flag the plain parts (addresses, certificates)
 * wherever else they appear. Their secret parts are collected where they come from: the SSH key from
 * the stack outputs, each secret parameter by resolveEnv.
 */
function redactHostStep(redactor: Redactor, inputs: unknown): unknown {
  const { connection, stdin, ...rest } = inputs as Record<string, unknown>;
  return redactor.redact({ ...rest, connection: redactor.redact(connection, false), stdin: redactor.redact(stdin, false) });
}

export interface RenderFiles {
  /** path relative to the output dir -> content */
  [relativePath: string]: string;
}

async function resolveEnv(env: Record<string, pulumi.Input<string>>, redactor: Redactor): Promise<Record<string, string>> {
  const entries = await Promise.all(
    Object.keys(env).map(async (key) => {
      const output = pulumi.output(env[key]);
      // Output.isSecret is how the SDK itself tracks secretness of a resolved value.
      const [value, secret] = await Promise.all([
        (output as any).promise() as Promise<string>,
        (output as any).isSecret as Promise<boolean>,
      ]);
      if (secret) redactor.collect(value);
      return [key, secret ? SECRET : String(value)] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/** Builds every file of a render in memory (so that nothing is written when anything fails). */
export async function renderFiles(
  resources: RecordedResource[],
  outputs: unknown,
  steps: RecordedStep[],
  configSecrets: unknown[] = [],
): Promise<RenderFiles> {
  const redactor = new Redactor();
  // Secret config values count even where the program read them without their marker.
  configSecrets.forEach((s) => redactor.collect(s));
  const files: RenderFiles = {};
  const sorted = [...resources].sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));

  files["resources.json"] = json(
    sorted.map((r) => ({
      urn: r.urn,
      type: r.type,
      name: r.name,
      parent: r.parent,
      custom: r.custom,
      provider: r.provider,
      dependencies: r.dependencies,
      inputs: r.type === "command:remote:Command" ? redactHostStep(redactor, r.inputs) : redactor.redact(r.inputs),
      ...(r.options ? { options: r.options } : {}),
    })),
  );
  files["outputs.json"] = json(redactor.redact(outputs));

  for (const r of sorted.filter(isKubernetesObject)) {
    const obj = redactor.redact(r.inputs) as Record<string, any>;
    const namespace = obj.metadata?.namespace ?? "_cluster";
    const file = `kubernetes/${safeName(namespace)}/${safeName(String(obj.kind).toLowerCase())}-${safeName(obj.metadata?.name ?? r.name)}.yaml`;
    if (files[file]) throw new Error(`two Kubernetes objects render to ${file}: ${r.urn}`);
    files[file] = yaml(obj);
  }

  for (const r of sorted.filter((x) => x.type === "kubernetes:helm.sh/v3:Release")) {
    const inputs = redactor.redact(r.inputs) as Record<string, any>;
    const release = inputs.name ?? r.name;
    files[`helm/${safeName(release)}.yaml`] = yaml({
      chart: inputs.chart,
      version: inputs.version,
      repository: inputs.repositoryOpts?.repo,
      namespace: inputs.namespace,
      values: inputs.values ?? {},
    });
    // Alertmanager's configuration as amtool checks it (kube-prometheus-stack's alertmanager.stringConfig or .config).
    const alertmanager = inputs.values?.alertmanager;
    if (typeof alertmanager?.stringConfig === "string" && alertmanager.stringConfig)
      files["monitoring/alertmanager.yaml"] = alertmanager.stringConfig;
    else if (alertmanager?.config) files["monitoring/alertmanager.yaml"] = yaml(alertmanager.config);
  }

  // Every PrometheusRule's groups as a rule file promtool checks.
  for (const r of sorted.filter((x) => x.type === "kubernetes:monitoring.coreos.com/v1:PrometheusRule")) {
    const obj = redactor.redact(r.inputs) as Record<string, any>;
    files[`monitoring/rules/${safeName(obj.metadata?.name ?? r.name)}.yaml`] = yaml({ groups: obj.spec?.groups ?? [] });
  }

  // Every step's parameters at once: resolving them one after another was a large render's slowest part.
  const envs = await Promise.all(steps.map((step) => resolveEnv(step.env, redactor)));
  const perHost = new Map<string, number>();
  steps.forEach((step, i) => {
    const n = (perHost.get(step.host) ?? 0) + 1;
    perHost.set(step.host, n);
    const base = `hosts/${safeName(step.host)}/${String(n).padStart(2, "0")}-${safeName(step.step)}`;
    files[`${base}.sh`] = readScript(step.script);
    files[`${base}.env`] = envFile(envs[i]);
    if (step.deleteScript) files[`${base}.delete.sh`] = readScript(step.deleteScript);
  });

  // Belt and braces: a secret that lost its marker somewhere (a plain apply) must not reach the disk.
  // Each distinct content is searched once (every worker's copy of a script is the same text).
  const secrets = [...redactor.secrets].filter((secret) => secret.length >= 8);
  const searched = new Set<string>();
  for (const [file, content] of Object.entries(files)) {
    if (searched.has(content)) continue;
    searched.add(content);
    for (const secret of secrets) {
      if (content.includes(secret)) {
        throw new Error(`render refused: ${file} contains the value of a Pulumi secret in plain text (a secret lost its marker)`);
      }
    }
  }
  return files;
}

/**
 * Replaces `dir` with exactly these files. Files with the same content are hard links to one file:
 * every worker's copy of a script is the same text, and creating a file costs far more than linking
 * one (a 300-worker render has thousands).
 */
export function writeFiles(dir: string, files: RenderFiles): void {
  fs.rmSync(dir, { recursive: true, force: true });
  const made = new Set<string>();
  const written = new Map<string, string>();
  for (const [relative, content] of Object.entries(files)) {
    const target = path.join(dir, relative);
    const folder = path.dirname(target);
    if (!made.has(folder)) {
      fs.mkdirSync(folder, { recursive: true });
      made.add(folder);
    }
    const same = written.get(content);
    if (same !== undefined) {
      fs.linkSync(same, target);
    } else {
      fs.writeFileSync(target, content);
      written.set(content, target);
    }
  }
}
