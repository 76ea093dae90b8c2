/**
 * Runs the real program (program.ts, which index.ts runs for the Pulumi CLI) under Pulumi's
 * mock runtime with a stack's configuration.
 * Used by the offline render and by tests that need the whole program.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { StepRecorder } from "../lib/host-step";
import { DareMocks, installMocks, RecordedResource, settle } from "./mocks";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
const NAMESPACE = "dare";

/** A user's mistake on the render's command line. */
export class UsageError extends Error {}

export interface StackConfig {
  /** full keys (`dare:nodes`) to their JSON-able values */
  values: Record<string, unknown>;
  /** full keys whose values are secret */
  secretKeys: Set<string>;
  /** the secret values themselves (leaves), so the render can prove none reaches the disk */
  secretValues: unknown[];
}

function fullKey(key: string): string {
  return key.includes(":") ? key : `${NAMESPACE}:${key}`;
}

/**
 * The stack file's values, as the Pulumi CLI stores them. The project defaults join only when the program
 * runs (`withProjectDefaults`), after any --set, as the CLI applies them: to keys the stack does not set.
 */
export function readStackConfig(stack: string, root = PROJECT_ROOT, stackFile = path.join(root, `Pulumi.${stack}.yaml`)): StackConfig {
  if (!fs.existsSync(stackFile)) {
    const stacks = fs
      .readdirSync(root)
      .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
      .map((f) => f.slice(7, -5));
    throw new UsageError(`no stack "${stack}": ${stackFile} does not exist (stacks: ${stacks.join(", ")})`);
  }
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  const secretValues: unknown[] = [];
  const stackConfig = (YAML.parse(fs.readFileSync(stackFile, "utf8")) ?? {}).config ?? {};
  // Encrypted values need the stack's passphrase, which the offline render does not have: placeholders.
  const decrypt = (value: unknown, where: string): unknown => {
    if (Array.isArray(value)) return value.map((v, i) => decrypt(v, `${where}[${i}]`));
    if (value === null || typeof value !== "object") return value;
    if ("secure" in value) {
      const placeholder = `offline-render-placeholder-for-${where}`;
      secretValues.push(placeholder);
      return placeholder;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decrypt(v, `${where}.${k}`)]));
  };
  for (const [key, value] of Object.entries<unknown>(stackConfig)) {
    const k = fullKey(key);
    const before = secretValues.length;
    values[k] = decrypt(value, k);
    if (secretValues.length > before) secretKeys.add(k);
  }
  return { values, secretKeys, secretValues };
}

/** Each key Pulumi.yaml declares with a default and the stack leaves unset gets that default (the CLI's mergeConfig). */
export function withProjectDefaults(values: Record<string, unknown>, root = PROJECT_ROOT): Record<string, unknown> {
  const project = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) ?? {};
  const merged = { ...values };
  for (const [key, decl] of Object.entries<Record<string, unknown>>(project.config ?? {})) {
    if (decl && typeof decl === "object" && "default" in decl && !(fullKey(key) in merged)) merged[fullKey(key)] = decl.default;
  }
  return merged;
}

/** Splits `nodes.pools[0].count` or `dare:hosts[1]["name"]` into the key and the path inside it. */
export function parseConfigPath(text: string): { key: string; path: Array<string | number> } {
  const segments: Array<string | number> = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["([^"]+)"\]|(\.)/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = re.exec(text)) !== null) {
    consumed = re.lastIndex;
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (match[3] !== undefined) segments.push(match[3]);
  }
  if (consumed !== text.length || segments.length === 0 || typeof segments[0] !== "string") {
    throw new UsageError(`"${text}" is not a config path; example: nodes.pools[0].count`);
  }
  const [key, ...rest] = segments as [string, ...Array<string | number>];
  return { key: fullKey(key), path: rest };
}

/**
 * `pulumi config set --path KEY VALUE` on the stack file's value (never on a project default, as the CLI).
 * VALUE is JSON when it parses, else a string (the CLI itself types only integers and true/false).
 */
export function setConfigPath(config: StackConfig, keyPath: string, rawValue: string, secret: boolean): void {
  let value: unknown;
  try {
    value = JSON.parse(rawValue);
  } catch {
    value = rawValue;
  }
  const { key, path: inner } = parseConfigPath(keyPath);
  if (secret) {
    config.secretKeys.add(key);
    config.secretValues.push(value);
  }
  if (inner.length === 0) {
    config.values[key] = value;
    return;
  }
  let current = config.values[key];
  if (typeof current === "string") {
    try {
      current = JSON.parse(current);
    } catch {
      /* a plain string gets replaced below */
    }
  }
  const root = current !== null && typeof current === "object" ? structuredClone(current) : typeof inner[0] === "number" ? [] : {};
  let node: any = root;
  inner.forEach((segment, i) => {
    if (i === inner.length - 1) {
      node[segment] = value;
      return;
    }
    if (node[segment] === null || typeof node[segment] !== "object") node[segment] = typeof inner[i + 1] === "number" ? [] : {};
    node = node[segment];
  });
  config.values[key] = root;
}

export interface ProgramRun {
  resources: RecordedResource[];
  /** stack outputs in wire form (secrets wrapped) */
  outputs: unknown;
}

/**
 * Runs the program inside a mocked Pulumi stack, its host steps recorded by `stepRecorder`, and waits
 * for every registration. Its outputs are the stack's, as index.ts exports them on `pulumi up`.
 * One run per process: Pulumi's runtime is a process-wide singleton.
 */
export async function runProgram(
  stack: string,
  config: StackConfig,
  lastUpdateOutputs: Record<string, unknown> = {},
  stepRecorder?: StepRecorder,
): Promise<ProgramRun> {
  const resources = installMocks(stack, new DareMocks(lastUpdateOutputs));
  const allConfig: Record<string, string> = {};
  for (const [key, value] of Object.entries(withProjectDefaults(config.values))) {
    allConfig[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  pulumi.runtime.setAllConfig(allConfig, [...config.secretKeys]);

  const failures: unknown[] = [];
  const onRejection = (reason: unknown) => failures.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    // Loaded here, as the Pulumi CLI loads index.ts: once the mocks and the configuration are in place.
    const { dareProgram } = await import("../program");
    await pulumi.runtime.runInPulumiStack(async () => dareProgram({ stepRecorder }));
    await settle();
  } finally {
    process.off("unhandledRejection", onRejection);
  }
  if (failures.length > 0) throw failures[0];
  const stackResource = resources.find((r) => r.type === "pulumi:pulumi:Stack");
  return { resources, outputs: stackResource?.outputs ?? {} };
}
