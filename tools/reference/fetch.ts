/**
 * Downloads the reference files of tools/reference/manifest.json into DEST, in the shared folder's layout
 * (see docs/reference-files.md):
 *
 *   npx ts-node --transpile-only tools/reference/fetch.ts DEST [--only charts,crds,chart-mirror]
 *
 * - charts/, crds/: each file from its raw GitHub URL at the pinned commit, checked against the manifest's
 *   sha256; then charts/index.json and crds/index.json as the shared folder has them.
 * - chart-mirror/: each chart version from its upstream Helm repository (its index.yaml, then the tgz the
 *   entry names, relative URLs resolved against the index), checked against that index's `digest`; then an
 *   index.yaml that lets the folder be served as a Helm repository.
 * A file already in DEST with the right hash is not downloaded again; a chart-mirror/index.yaml that already
 * lists a chart whose tgz matches its digest saves the upstream index look-up, so a rerun makes no request.
 * Files are written whole (temporary file + rename) and only once their hash is right.
 *
 * Environment (tests point these at 127.0.0.1):
 *   DARE_REFERENCE_RAW_BASE   replaces https://raw.githubusercontent.com in the charts/ and crds/ URLs
 *   DARE_REFERENCE_HELM_BASE  every chart-mirror request https://HOST/PATH goes to $DARE_REFERENCE_HELM_BASE/HOST/PATH
 */
import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import * as YAML from "yaml";
import { Manifest, ManifestFile, MirroredChart, MANIFEST_FILE, RAW_BASE } from "./make-manifest";

export const SECTIONS = ["charts", "crds", "chart-mirror"] as const;
export type Section = (typeof SECTIONS)[number];

/** `created` of every entry and `generated` of the written chart-mirror/index.yaml: fixed, so reruns give the same file. */
export const MIRROR_CREATED = "2026-08-22T00:00:00Z";

const ATTEMPTS = 3;
const PARALLEL = 8;
const TIMEOUT_MS = 120_000;

export interface FetchResult {
  downloaded: number;
  downloadedBytes: number;
  present: number;
  failures: string[];
}

interface HelmIndexEntry {
  name?: string;
  version?: unknown;
  apiVersion?: string;
  appVersion?: unknown;
  created?: string;
  urls?: string[];
  digest?: string;
}
interface HelmIndex {
  entries?: Record<string, HelmIndexEntry[]>;
}

/** An entry of the written chart-mirror/index.yaml. */
type MirrorEntry = HelmIndexEntry & { name: string; version: string };
function mirrorEntry(from: HelmIndexEntry, name: string, version: string, tgz: string, digest: string): MirrorEntry {
  return {
    apiVersion: from.apiVersion ?? "v2",
    ...(from.appVersion !== undefined ? { appVersion: String(from.appVersion) } : {}),
    created: MIRROR_CREATED,
    digest,
    name,
    urls: [tgz],
    version,
  };
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function fileSha256(file: string): string | null {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return null;
  }
}

function writeWhole(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.part-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function mismatch(file: string, url: string, expected: string, actual: string, against: string): string {
  return `${file}: sha256 mismatch, not written\n  url:      ${url}\n  expected: ${expected} (${against})\n  actual:   ${actual}`;
}

/** GET with a timeout, retried on network errors, 429 and 5xx. */
async function download(url: string): Promise<Buffer> {
  let last = "";
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "follow" });
      if (res.ok) return Buffer.from(await res.arrayBuffer());
      last = `HTTP ${res.status} ${res.statusText}`.trim();
      if (res.status !== 429 && res.status < 500) break;
    } catch (e) {
      const err = e as Error & { cause?: Error };
      last = err.cause?.message ? `${err.message} (${err.cause.message})` : err.message;
    }
    if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * attempt));
  }
  throw new Error(`GET ${url}: ${last}`);
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function readManifest(file = MANIFEST_FILE): Manifest {
  return JSON.parse(fs.readFileSync(file, "utf8")) as Manifest;
}

/** charts/ or crds/: every manifest file under it, then its index.json once all are in place. */
async function fetchFiles(
  manifest: Manifest,
  dest: string,
  section: "charts" | "crds",
  env: NodeJS.ProcessEnv,
  result: FetchResult,
): Promise<void> {
  const rawBase = (env.DARE_REFERENCE_RAW_BASE ?? RAW_BASE).replace(/\/+$/, "");
  const files = manifest.files.filter((f) => f.path.startsWith(`${section}/`));
  const failed = result.failures.length;
  await mapLimit(files, PARALLEL, async (f: ManifestFile) => {
    const file = path.join(dest, f.path);
    if (fileSha256(file) === f.sha256) {
      result.present++;
      return;
    }
    const url = f.url.startsWith(`${RAW_BASE}/`) ? rawBase + f.url.slice(RAW_BASE.length) : f.url;
    let data: Buffer;
    try {
      data = await download(url);
    } catch (e) {
      result.failures.push(`${f.path}: ${(e as Error).message}`);
      return;
    }
    const actual = sha256(data);
    if (actual !== f.sha256) {
      result.failures.push(mismatch(f.path, url, f.sha256, actual, "tools/reference/manifest.json"));
      return;
    }
    writeWhole(file, data);
    result.downloaded++;
    result.downloadedBytes += data.length;
  });
  const indexPath = `${section}/index.json`;
  const index = manifest.indexes[indexPath];
  if (index === undefined || result.failures.length > failed) return;
  const file = path.join(dest, indexPath);
  let current: unknown;
  try {
    current = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    current = undefined;
  }
  if (JSON.stringify(current) !== JSON.stringify(index)) writeWhole(file, JSON.stringify(index, null, 1) + "\n");
}

function readHelmIndex(file: string): HelmIndex | null {
  try {
    return YAML.parse(fs.readFileSync(file, "utf8"), { uniqueKeys: false }) as HelmIndex;
  } catch {
    return null;
  }
}

/**
 * The entries of one chart in a Helm repository index. Indexes of large repositories run to tens of MB,
 * too slow to parse whole for one chart, so the chart's block (`  <name>:` below `entries:`, as helm writes
 * it) is cut out and parsed alone; an index laid out otherwise is parsed whole.
 */
export function chartVersions(text: string, name: string, where: string): HelmIndexEntry[] {
  const lines = text.split("\n");
  const entriesAt = lines.findIndex((l) => /^entries:\s*$/.test(l));
  const start = entriesAt < 0 ? -1 : lines.findIndex((l, i) => i > entriesAt && (l === `  ${name}:` || l.trimEnd() === `  ${name}:`));
  if (start >= 0) {
    let end = start + 1;
    // up to the next chart (indent 2) or top-level key (indent 0); `  - ` items belong to this chart
    while (end < lines.length && !/^ {0,2}[^\s#-]/.test(lines[end])) end++;
    const block = YAML.parse(lines.slice(start, end).join("\n").replace(/^ {2}/gm, ""), { uniqueKeys: false }) as Record<
      string,
      HelmIndexEntry[]
    > | null;
    if (Array.isArray(block?.[name])) return block![name];
  }
  let index: HelmIndex;
  try {
    index = YAML.parse(text, { uniqueKeys: false, maxAliasCount: -1 }) as HelmIndex;
  } catch (e) {
    throw new Error(`${where} is not a Helm repository index: ${(e as Error).message}`);
  }
  const versions = index && typeof index === "object" ? index.entries?.[name] : undefined;
  return Array.isArray(versions) ? versions : [];
}

/** chart-mirror/: each chart's tgz from its upstream Helm repository, then index.yaml. */
async function fetchMirror(manifest: Manifest, dest: string, env: NodeJS.ProcessEnv, result: FetchResult): Promise<void> {
  const dir = path.join(dest, "chart-mirror");
  const helmBase = env.DARE_REFERENCE_HELM_BASE?.replace(/\/+$/, "");
  const rewrite = (url: string): string => {
    if (!helmBase) return url;
    const u = new URL(url);
    return `${helmBase}/${u.host}${u.pathname}${u.search}`;
  };
  const existing = readHelmIndex(path.join(dir, "index.yaml"));
  const indexes = new Map<string, Promise<string>>();
  /** The versions of a chart in an upstream index.yaml (downloaded once per run). */
  const upstreamVersions = async (url: string, name: string): Promise<HelmIndexEntry[]> => {
    let text = indexes.get(url);
    if (!text) {
      text = download(rewrite(url)).then((data) => {
        result.downloaded++;
        result.downloadedBytes += data.length;
        return data.toString("utf8");
      });
      indexes.set(url, text);
    }
    return chartVersions(await text, name, rewrite(url));
  };

  const entries: MirrorEntry[] = [];
  let reusedAll = existing !== null;
  const failed = result.failures.length;
  await mapLimit(manifest.chartMirror, PARALLEL, async (c: MirroredChart) => {
    const tgz = `${c.name}-${c.version}.tgz`;
    const file = path.join(dir, tgz);
    const what = `chart-mirror/${tgz}`;
    // Already fetched: the index written last time names the file and its digest.
    const known = existing?.entries?.[c.name]?.find((e) => String(e.version) === c.version);
    if (known?.digest && known.urls?.[0] === tgz && fileSha256(file) === known.digest) {
      entries.push(mirrorEntry(known, c.name, c.version, tgz, known.digest));
      result.present++;
      return;
    }
    reusedAll = false;
    // The first index that lists the version with an http(s) URL (some list old versions only as oci://).
    const misses: string[] = [];
    let found: { entry: HelmIndexEntry; indexUrl: string; source: string } | null = null;
    for (const indexUrl of [`${c.repository}/index.yaml`, ...(c.fallbackIndexes ?? [])]) {
      let entry: HelmIndexEntry | undefined;
      try {
        entry = (await upstreamVersions(indexUrl, c.name)).find((e) => String(e.version) === c.version);
      } catch (e) {
        misses.push((e as Error).message);
        continue;
      }
      const source = entry?.urls?.[0] ? new URL(entry.urls[0], indexUrl).toString() : "";
      if (entry && /^https?:/.test(source)) {
        found = { entry, indexUrl, source };
        break;
      }
      misses.push(
        !entry
          ? `${rewrite(indexUrl)} does not list it`
          : `${rewrite(indexUrl)} lists it ${source ? `only at ${source}, not an http(s) URL` : "with no urls"}`,
      );
    }
    if (!found) {
      result.failures.push(`${what}: cannot find ${c.name} ${c.version} to download: ${misses.join("; ")}`);
      return;
    }
    const { entry, indexUrl, source } = found;
    const digest = typeof entry.digest === "string" ? entry.digest.replace(/^sha256:/, "").toLowerCase() : "";
    if (!/^[0-9a-f]{64}$/.test(digest)) {
      result.failures.push(
        `${what}: the entry for ${c.name} ${c.version} in ${rewrite(indexUrl)} has no sha256 digest to check the download against`,
      );
      return;
    }
    const url = rewrite(source);
    if (fileSha256(file) !== digest) {
      let data: Buffer;
      try {
        data = await download(url);
      } catch (e) {
        result.failures.push(`${what}: ${(e as Error).message}`);
        return;
      }
      const actual = sha256(data);
      if (actual !== digest) {
        result.failures.push(mismatch(what, url, digest, actual, `digest in ${rewrite(indexUrl)}`));
        return;
      }
      writeWhole(file, data);
      result.downloaded++;
      result.downloadedBytes += data.length;
    } else {
      result.present++;
    }
    entries.push(mirrorEntry(entry, c.name, c.version, tgz, digest));
  });
  // Nothing new: leave the index as it is (it may be a richer one, e.g. the shared folder's own).
  if (result.failures.length > failed || reusedAll) return;
  const byName: Record<string, HelmIndexEntry[]> = {};
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version)))
    (byName[e.name] ??= []).push(e);
  writeWhole(path.join(dir, "index.yaml"), YAML.stringify({ apiVersion: "v1", entries: byName, generated: MIRROR_CREATED }));
}

export async function fetchReference(
  dest: string,
  only: readonly Section[] = SECTIONS,
  env: NodeJS.ProcessEnv = process.env,
  manifest = readManifest(),
): Promise<FetchResult> {
  const result: FetchResult = { downloaded: 0, downloadedBytes: 0, present: 0, failures: [] };
  for (const section of only) {
    if (section === "chart-mirror") await fetchMirror(manifest, dest, env, result);
    else await fetchFiles(manifest, dest, section, env, result);
  }
  return result;
}

function usage(message?: string): never {
  if (message) console.error(`fetch: ${message}`);
  console.error(`usage: fetch.ts DEST [--only ${SECTIONS.join(",")}]   (e.g. ../shared)`);
  process.exit(2);
}

export function parseArgs(argv: string[]): { dest: string; only: Section[] } {
  let dest: string | undefined;
  let only: Section[] = [...SECTIONS];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h" || a === "--help") usage();
    else if (a === "--only" || a.startsWith("--only=")) {
      const list = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!list) usage("--only needs a list");
      const names = list
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (bad.length || !names.length) usage(`--only: unknown part ${bad.join(", ")}; the parts are ${SECTIONS.join(", ")}`);
      only = SECTIONS.filter((s) => names.includes(s));
    } else if (a.startsWith("-")) usage(`unknown option ${a}`);
    else if (dest === undefined) dest = a;
    else usage(`one destination only (got ${dest} and ${a})`);
  }
  if (!dest) usage("no destination folder");
  return { dest: path.resolve(dest), only };
}

if (require.main === module) {
  const { dest, only } = parseArgs(process.argv.slice(2));
  fetchReference(dest, only).then(
    (r) => {
      const mb = (r.downloadedBytes / 1e6).toFixed(1);
      console.log(`${dest} (${only.join(", ")}): ${r.downloaded} downloaded (${mb} MB), ${r.present} already present`);
      if (r.failures.length) {
        console.error(`fetch: ${r.failures.length} failed:\n${[...r.failures].sort().join("\n")}`);
        process.exit(1);
      }
    },
    (e: Error) => {
      console.error(`fetch: ${e.stack ?? e.message}`);
      process.exit(1);
    },
  );
}
