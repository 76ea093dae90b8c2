/**
 * The shared folder beside the clone (`../shared`, or $DARE_SHARED_DIR): the upstream charts' defaults,
 * the chart mirror and the upstream CRDs the tests read. What checks objects against those CRDs is the real
 * API server now (tests/engine/helm-template.test.ts), not a validator here.
 */
import * as fs from "fs";
import * as path from "path";

/** The shared folder: $DARE_SHARED_DIR, else `<repo>/../shared`. */
export function sharedDir(): string {
  const env = process.env.DARE_SHARED_DIR;
  return env ? path.resolve(env) : path.resolve(__dirname, "../../../shared");
}

/** Every .yaml/.yml file under dir, sorted; none when dir does not exist. */
export function listYaml(dir: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listYaml(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

/** `{project: version}` from the folder names `shared/crds/<project>/<version>/` (highest version if several). */
export function crdVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  const dir = path.join(sharedDir(), "crds");
  for (const p of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!p.isDirectory()) continue;
    const versions = fs
      .readdirSync(path.join(dir, p.name), { withFileTypes: true })
      .filter((v) => v.isDirectory())
      .map((v) => v.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    if (versions.length) out[p.name] = versions[versions.length - 1];
  }
  return out;
}
