/**
 * Validates an offline render directory:
 *   DIR/kubernetes/<namespace or _cluster>/<kind>-<name>.yaml   one object per file
 *   DIR/helm/<release>.yaml                                      {chart, version, repository, namespace, values}
 * Built-in kinds are checked strictly with kubernetes-models (k8s-openapi.mjs, run in ONE child
 * node process per call because kubernetes-models is ESM-only and jest runs CommonJS), custom
 * resources with the shared CRDs (crd.ts), Helm values with the shared chart defaults
 * (helm-values.ts). An object whose apiVersion/kind is neither built-in nor defined by a shared CRD
 * is an error ("unknown kind").
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { listYaml, validateCustomResource } from "./crd";
import { HelmRelease, validateHelmValues } from "./helm-values";

export { validateCustomResource, crdVersions, customResourceKinds, sharedDir } from "./crd";
export { validateHelmValues, chartVersions } from "./helm-values";
export type { HelmRelease } from "./helm-values";

const K8S_OPENAPI = path.join(__dirname, "k8s-openapi.mjs");

/**
 * Validates built-in objects with kubernetes-models (one child process for the whole batch).
 * Result i is null when objs[i] is not a built-in kind, else its errors (empty = valid).
 */
export function validateBuiltinObjects(objs: unknown[]): Promise<(string[] | null)[]> {
  if (objs.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [K8S_OPENAPI, "--stdin"], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`k8s-openapi.mjs exited with ${code}: ${Buffer.concat(err).toString()}`));
        return;
      }
      try {
        const res = JSON.parse(Buffer.concat(out).toString("utf8")) as (string[] | null)[];
        if (!Array.isArray(res) || res.length !== objs.length) throw new Error("unexpected output");
        resolve(res);
      } catch (e) {
        reject(new Error(`k8s-openapi.mjs: ${(e as Error).message}: ${Buffer.concat(out).toString().slice(0, 500)}`));
      }
    });
    child.stdin.end(JSON.stringify(objs));
  });
}

function unknownKind(obj: unknown): string {
  const o = (obj ?? {}) as { apiVersion?: unknown; kind?: unknown };
  return `unknown kind: apiVersion ${JSON.stringify(o.apiVersion)} kind ${JSON.stringify(o.kind)} is neither a built-in Kubernetes kind nor defined by a CRD in shared/crds`;
}

function parseDocs(file: string): { docs: unknown[]; errors: string[] } {
  const docs: unknown[] = [];
  const errors: string[] = [];
  for (const d of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (d.errors.length) errors.push(...d.errors.map((e) => `YAML: ${e.message}`));
    else {
      const js = d.toJS() as unknown;
      if (js !== null && js !== undefined) docs.push(js);
    }
  }
  return { docs, errors };
}

function label(obj: unknown): string {
  const o = (obj ?? {}) as { kind?: unknown; metadata?: { name?: unknown } };
  return `${String(o.kind)}/${String(o.metadata?.name)}`;
}

/** Validates a render directory; returns "file: [kind/name: ]problem" strings (empty = valid). */
export async function validateRenderDir(dir: string): Promise<string[]> {
  const errors: string[] = [];
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [`${dir}: not a directory`];
  const kdir = path.join(dir, "kubernetes");
  const hdir = path.join(dir, "helm");
  if (!fs.existsSync(kdir) && !fs.existsSync(hdir)) return [`${dir}: has neither kubernetes/ nor helm/`];

  const objs: { rel: string; obj: unknown }[] = [];
  for (const file of listYaml(kdir)) {
    const rel = path.relative(dir, file);
    const { docs, errors: yamlErrors } = parseDocs(file);
    errors.push(...yamlErrors.map((e) => `${rel}: ${e}`));
    if (!docs.length && !yamlErrors.length) errors.push(`${rel}: empty file`);
    for (const obj of docs) {
      const o = obj as { apiVersion?: unknown; kind?: unknown };
      if (obj === null || typeof obj !== "object" || Array.isArray(obj) || typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
        errors.push(`${rel}: not a Kubernetes object (apiVersion and kind are required)`);
        continue;
      }
      objs.push({ rel, obj });
    }
  }
  const builtin = await validateBuiltinObjects(objs.map((o) => o.obj));
  objs.forEach(({ rel, obj }, i) => {
    const errs = builtin[i] ?? validateCustomResource(obj) ?? [unknownKind(obj)];
    for (const e of errs) errors.push(`${rel}: ${label(obj)}: ${e}`);
  });

  for (const file of listYaml(hdir)) {
    const rel = path.relative(dir, file);
    const { docs, errors: yamlErrors } = parseDocs(file);
    errors.push(...yamlErrors.map((e) => `${rel}: ${e}`));
    if (docs.length !== 1) {
      if (!yamlErrors.length) errors.push(`${rel}: expected one YAML document, got ${docs.length}`);
      continue;
    }
    const release = docs[0] as Partial<HelmRelease> | null;
    if (!release || typeof release !== "object" || typeof release.chart !== "string" || typeof release.version !== "string") {
      errors.push(`${rel}: a Helm release needs string fields chart and version`);
      continue;
    }
    for (const e of validateHelmValues(release as HelmRelease)) errors.push(`${rel}: ${e}`);
  }
  return errors;
}
