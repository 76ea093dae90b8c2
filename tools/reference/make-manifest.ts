/**
 * Writes tools/reference/manifest.json from a shared folder (see docs/reference-files.md):
 *
 *   npx ts-node --transpile-only tools/reference/make-manifest.ts /work/shared [OUT]
 *
 * - `files`: every reference file under charts/ and crds/ (from charts/index.json and crds/index.json): its
 *   path in the shared folder, its raw URL on GitHub at the pinned commit, its byte size and sha256. Each
 *   file on disk is hashed and must match its index entry, and every file on disk must be in an index.
 * - `indexes`: the two index.json files, verbatim, so fetch.ts can write them next to the files.
 * - `chartMirror`: each (name, version) of chart-mirror/index.yaml with the upstream Helm repository that
 *   publishes it (the table in chart-mirror/README.md), plus known extra index locations for that repository.
 */
import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import * as YAML from "yaml";

export const RAW_BASE = "https://raw.githubusercontent.com";
export const MANIFEST_FILE = path.join(__dirname, "manifest.json");

export interface ManifestFile {
  /** Path under the shared folder, e.g. `charts/traefik/41.3.0/values.yaml`. */
  path: string;
  url: string;
  bytes: number;
  sha256: string;
}

export interface MirroredChart {
  name: string;
  version: string;
  /** The chart's upstream Helm repository (its index.yaml is `<repository>/index.yaml`). */
  repository: string;
  /** Further index.yaml URLs to try, in order, when the repository's own index no longer lists the version. */
  fallbackIndexes?: string[];
}

export interface Manifest {
  comment: string;
  files: ManifestFile[];
  /** `charts/index.json` and `crds/index.json` as in the shared folder. */
  indexes: Record<string, unknown>;
  chartMirror: MirroredChart[];
}

/**
 * Helm repositories whose own index.yaml drops old versions. Bitnami keeps only recent entries in
 * charts.bitnami.com's index and the full history on the `archive-full-index` branch of bitnami/charts
 * (bitnami/charts#10539, #10830).
 */
const FALLBACK_INDEXES: Record<string, string[]> = {
  "https://charts.bitnami.com/bitnami": [`${RAW_BASE}/bitnami/charts/archive-full-index/bitnami/index.yaml`],
};

interface ChartIndexEntry {
  chart: string;
  version: string;
  repository: string;
  path: string;
  commit: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

interface CrdIndexEntry {
  path: string;
  bytes: number;
  sha256: string;
  upstream_repo: string;
  upstream_commit: string;
  upstream_path: string;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** `owner/repo` of a GitHub repository written as `https://github.com/o/r` or `github.com/o/r`. */
function githubRepo(repo: string, where: string): string {
  const m = /^(?:https:\/\/)?github\.com\/([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(repo);
  if (!m) throw new Error(`${where}: ${JSON.stringify(repo)} is not a GitHub repository`);
  return `${m[1]}/${m[2]}`;
}

function rawUrl(repo: string, commit: string, upstreamPath: string, where: string): string {
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`${where}: commit ${JSON.stringify(commit)} is not a full commit id`);
  const segments = upstreamPath.split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".."))
    throw new Error(`${where}: bad upstream path ${JSON.stringify(upstreamPath)}`);
  return `${RAW_BASE}/${githubRepo(repo, where)}/${commit}/${segments.map(encodeURIComponent).join("/")}`;
}

/** Every file below dir, as paths relative to it with `/`. */
function walk(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

/** Checks that the file in the shared folder has the size and hash its index gives. */
function checkFile(shared: string, f: ManifestFile): void {
  const abs = path.join(shared, f.path);
  if (!fs.existsSync(abs)) throw new Error(`${f.path} is in the index but not in ${shared}`);
  const data = fs.readFileSync(abs);
  const sha = createHash("sha256").update(data).digest("hex");
  if (data.length !== f.bytes || sha !== f.sha256) {
    throw new Error(
      `${path.join(shared, f.path)}: ${data.length} bytes, sha256 ${sha}; the index says ${f.bytes} bytes, sha256 ${f.sha256}`,
    );
  }
}

function chartFiles(shared: string): ManifestFile[] {
  const where = path.join(shared, "charts", "index.json");
  const index = readJson(where) as ChartIndexEntry[];
  return index.flatMap((c) => {
    const at = `${where} (${c.chart} ${c.version})`;
    // The chart directory in the upstream tree: `charts/x/`, or the repository root (harbor: "/ (repo root)").
    const dir = /^\/(\s|$)/.test(c.path) ? "" : c.path;
    if (dir !== "" && !dir.endsWith("/")) throw new Error(`${at}: path ${JSON.stringify(c.path)} should end with /`);
    return Object.entries(c.files).map(([name, f]) => ({
      path: `charts/${c.chart}/${c.version}/${name}`,
      url: rawUrl(c.repository, c.commit, dir + name, at),
      bytes: f.bytes,
      sha256: f.sha256,
    }));
  });
}

function crdFiles(shared: string): ManifestFile[] {
  const where = path.join(shared, "crds", "index.json");
  const index = readJson(where) as CrdIndexEntry[];
  return index.map((f) => ({
    path: `crds/${f.path}`,
    url: rawUrl(f.upstream_repo, f.upstream_commit, f.upstream_path, `${where} (${f.path})`),
    bytes: f.bytes,
    sha256: f.sha256,
  }));
}

/** `name version` -> upstream repository URL, from the "## Charts" table of chart-mirror/README.md. */
function mirrorReadmeRepos(file: string): Map<string, string> {
  const out = new Map<string, string>();
  const text = fs.readFileSync(file, "utf8");
  const section = /^## Charts\n([\s\S]*?)(?=^## )/m.exec(text)?.[1] ?? "";
  for (const line of section.split("\n")) {
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.length < 3 || cells[0] === "chart" || /^-+$/.test(cells[0])) continue;
    // e.g. "↳ cluster (alias `monitoring`)", "↳ common (library)"
    const name = /^(?:↳\s*)?([a-z0-9][a-z0-9-]*)/.exec(cells[0])?.[1];
    const repo = cells[2];
    if (!name || !/^https:\/\/\S+$/.test(repo)) throw new Error(`${file}: cannot read the table row ${JSON.stringify(line)}`);
    out.set(`${name} ${cells[1]}`, repo.replace(/\/+$/, ""));
  }
  return out;
}

function mirroredCharts(shared: string): MirroredChart[] {
  const indexFile = path.join(shared, "chart-mirror", "index.yaml");
  const readme = path.join(shared, "chart-mirror", "README.md");
  const index = YAML.parse(fs.readFileSync(indexFile, "utf8")) as { entries?: Record<string, { version: string }[]> };
  const repos = mirrorReadmeRepos(readme);
  const out: MirroredChart[] = [];
  for (const [name, versions] of Object.entries(index.entries ?? {})) {
    for (const { version } of versions) {
      const repository = repos.get(`${name} ${version}`);
      if (!repository)
        throw new Error(`${indexFile} has ${name} ${version}, but the table in ${readme} gives no upstream repository for it`);
      out.push({ name, version, repository, ...(FALLBACK_INDEXES[repository] ? { fallbackIndexes: FALLBACK_INDEXES[repository] } : {}) });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

export function makeManifest(shared: string): Manifest {
  const files = [...chartFiles(shared), ...crdFiles(shared)].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`${f.path} is listed twice in the shared indexes`);
    seen.add(f.path);
    checkFile(shared, f);
  }
  for (const sub of ["charts", "crds"]) {
    for (const rel of walk(path.join(shared, sub))) {
      if (rel === "README.md" || rel === "index.json") continue;
      if (!seen.has(`${sub}/${rel}`))
        throw new Error(`${path.join(shared, sub, rel)} is not in ${sub}/index.json, so it cannot be fetched`);
    }
  }
  return {
    comment: "Generated by tools/reference/make-manifest.ts from the shared folder; do not edit. See docs/reference-files.md.",
    files,
    indexes: {
      "charts/index.json": readJson(path.join(shared, "charts", "index.json")),
      "crds/index.json": readJson(path.join(shared, "crds", "index.json")),
    },
    chartMirror: mirroredCharts(shared),
  };
}

/** The manifest file's exact text. */
export function renderManifest(m: Manifest): string {
  return JSON.stringify(m, null, 1) + "\n";
}

if (require.main === module) {
  const [shared, out = MANIFEST_FILE] = process.argv.slice(2);
  if (!shared) {
    console.error("usage: make-manifest.ts SHARED_DIR [OUT]   (e.g. ../shared)");
    process.exit(2);
  }
  try {
    const m = makeManifest(path.resolve(shared));
    fs.writeFileSync(out, renderManifest(m));
    console.log(`${out}: ${m.files.length} files, ${m.chartMirror.length} mirrored charts`);
  } catch (e) {
    console.error(`make-manifest: ${(e as Error).message}`);
    process.exit(1);
  }
}
