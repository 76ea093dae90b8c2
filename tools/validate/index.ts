/**
 * Checks an offline render directory for what no real component checks:
 *   DIR/kubernetes/<namespace or _cluster>/<kind>-<name>.yaml   one object per file: YAML that parses to
 *                                                                objects with apiVersion and kind
 *   DIR/helm/<release>.yaml                                      {chart, version, repository, namespace, values}:
 *                                                                the chart version is one in ../shared/charts,
 *                                                                every values key one the chart reads (helm-values.ts)
 * Whether the objects are valid (built-in schemas, CRD schemas and their CEL rules, Pod Security, unknown
 * kinds) and whether the values pass the chart's values.schema.json is decided by the real API server and
 * the real `helm template` in the engine tier (tests/engine/helm-template.test.ts); the validators that
 * guessed at it here (kubernetes-models, CRD schemas through ajv) are gone.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { HelmRelease, validateHelmValues } from "./helm-values";
import { listYaml } from "./shared";

export { crdVersions, sharedDir } from "./shared";
export { validateHelmValues, chartVersions } from "./helm-values";
export type { HelmRelease } from "./helm-values";

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

/** Checks a render directory; returns "file: problem" strings (empty = valid). */
export async function validateRenderDir(dir: string): Promise<string[]> {
  const errors: string[] = [];
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [`${dir}: not a directory`];
  const kdir = path.join(dir, "kubernetes");
  const hdir = path.join(dir, "helm");
  if (!fs.existsSync(kdir) && !fs.existsSync(hdir)) return [`${dir}: has neither kubernetes/ nor helm/`];

  for (const file of listYaml(kdir)) {
    const rel = path.relative(dir, file);
    const { docs, errors: yamlErrors } = parseDocs(file);
    errors.push(...yamlErrors.map((e) => `${rel}: ${e}`));
    if (!docs.length && !yamlErrors.length) errors.push(`${rel}: empty file`);
    for (const obj of docs) {
      const o = obj as { apiVersion?: unknown; kind?: unknown };
      if (obj === null || typeof obj !== "object" || Array.isArray(obj) || typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
        errors.push(`${rel}: not a Kubernetes object (apiVersion and kind are required)`);
      }
    }
  }

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
