/**
 * tools/reference: the manifest is what make-manifest.ts derives from the shared folder, and fetch.ts rebuilds
 * the shared folder from "upstream". Upstream here is a server on 127.0.0.1 built from the shared folder itself:
 * a raw-GitHub lookalike serving each manifest URL's file, and Helm repositories serving, per upstream
 * repository URL, an index.yaml of the mirror's charts from it plus their tgz files.
 */
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { execFile } from "child_process";
import { createHash } from "crypto";
import { AddressInfo } from "net";
import * as YAML from "yaml";
import { sharedDir } from "../../tools/validate/shared";
import { MANIFEST_FILE, Manifest, RAW_BASE, makeManifest, renderManifest } from "../../tools/reference/make-manifest";

const ROOT = path.join(__dirname, "..", "..");
const SHARED = sharedDir();
const manifest = JSON.parse(fs.readFileSync(MANIFEST_FILE, "utf8")) as Manifest;
/** The curated shared folder (with its READMEs), not a copy fetch.ts made from the manifest. */
const curated = fs.existsSync(path.join(SHARED, "chart-mirror", "README.md"));
const hasMirror = fs.existsSync(path.join(SHARED, "chart-mirror", "index.yaml"));
const mirrorIt = hasMirror ? it : it.skip;

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

interface HelmEntry {
  name: string;
  version: string;
  urls: string[];
  digest: string;
  created?: string;
}
const readIndex = (file: string) =>
  YAML.parse(fs.readFileSync(file, "utf8")) as { apiVersion: string; entries: Record<string, HelmEntry[]> };

/** Every file below dir, relative, with `/`. */
function walk(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// The fake upstream

const requests: string[] = [];
/** Request paths whose body is served with its first byte flipped. */
const corrupt = new Set<string>();

/** `/<owner>/<repo>/<commit>/<path>` -> the shared file the manifest says it is. */
const rawFiles = new Map(manifest.files.map((f) => [f.url.slice(RAW_BASE.length), f.path]));

/**
 * The index.yaml at `url` (an upstream index URL): the shared mirror's entries of the charts the manifest
 * fetches from there. A chart with fallback indexes is listed in its repository's own index only as an
 * oci:// artifact (as Bitnami does now) and in the fallback with an absolute URL, as upstream has them.
 */
function helmIndex(url: string): string | null {
  const shared = readIndex(path.join(SHARED, "chart-mirror", "index.yaml"));
  const entries: Record<string, HelmEntry[]> = {};
  for (const c of manifest.chartMirror) {
    const own = `${c.repository}/index.yaml` === url;
    if (!own && !c.fallbackIndexes?.includes(url)) continue;
    const entry = shared.entries[c.name].find((e) => e.version === c.version)!;
    const tgz = entry.urls[0];
    const urls = !c.fallbackIndexes ? [tgz] : own ? [`oci://registry.example/charts/${c.name}:${c.version}`] : [`${c.repository}/${tgz}`];
    // another version first, so fetch.ts has to pick the right one
    (entries[c.name] ??= []).push({ ...entry, version: "0.0.1-other", digest: "0".repeat(64) }, { ...entry, urls });
  }
  return Object.keys(entries).length ? YAML.stringify({ apiVersion: "v1", entries, generated: "2026-01-01T00:00:00Z" }) : null;
}

function upstreamFile(p: string): Buffer | null {
  if (p.startsWith("/raw/")) {
    const rel = rawFiles.get(p.slice("/raw".length));
    return rel ? fs.readFileSync(path.join(SHARED, rel)) : null;
  }
  if (p.startsWith("/helm/")) {
    if (p.endsWith("/index.yaml")) {
      const text = helmIndex(`https://${p.slice("/helm/".length)}`);
      return text === null ? null : Buffer.from(text);
    }
    const tgz = path.join(SHARED, "chart-mirror", path.basename(p));
    return p.endsWith(".tgz") && fs.existsSync(tgz) ? fs.readFileSync(tgz) : null;
  }
  return null;
}

let server: http.Server;
let base: string;
const tmp: string[] = [];

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "dare-reference-"));
  tmp.push(d);
  return d;
}

/** Runs fetch.ts as the docs say, against the fake upstream. */
function runFetch(dest: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, DARE_REFERENCE_RAW_BASE: `${base}/raw`, DARE_REFERENCE_HELM_BASE: `${base}/helm` };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", "tools/reference/fetch.ts", dest, ...args],
      { cwd: ROOT, env },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const allParts = hasMirror ? "charts,crds,chart-mirror" : "charts,crds";
let dest: string;
let first: { code: number; stdout: string; stderr: string };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const p = decodeURIComponent((req.url ?? "/").split("?")[0]);
    requests.push(p);
    const body = upstreamFile(p);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (corrupt.has(p)) body[0] ^= 0xff;
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dest = tempDir();
  first = await runFetch(dest, "--only", allParts);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe("tools/reference/manifest.json", () => {
  (curated ? it : it.skip)("is what make-manifest.ts writes from the shared folder", () => {
    expect(fs.readFileSync(MANIFEST_FILE, "utf8")).toBe(renderManifest(makeManifest(SHARED)));
  });

  it("pins every file to a raw GitHub URL at a full commit, and every mirrored chart to an https Helm repository", () => {
    for (const f of manifest.files) {
      expect(f.url).toMatch(/^https:\/\/raw\.githubusercontent\.com\/[\w.-]+\/[\w.-]+\/[0-9a-f]{40}\/\S+$/);
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(manifest.files.map((f) => f.path.split("/")[0]).sort()).toEqual(expect.arrayContaining(["charts", "crds"]));
    for (const c of manifest.chartMirror) expect(c.repository).toMatch(/^https:\/\/[^\s/]+(\/\S*)?[^/]$/);
  });

  it("gives each chart the program installs from a Helm repository the same repository as lib/pins.ts", () => {
    const sources = fs.readFileSync(path.join(ROOT, "lib", "pins.ts"), "utf8");
    const pinned = [...sources.matchAll(/\{\s*(?:repo: "([^"]+)",\s*)?chart: "([^"]+)", version: "([^"]+)"(?:, repo: "([^"]+)")?/g)]
      .filter((m) => m[1] ?? m[4])
      .map((m) => ({ name: m[2], version: m[3], repository: (m[1] ?? m[4]).replace(/\/+$/, "") }));
    expect(pinned.length).toBeGreaterThan(5);
    for (const p of pinned) expect(manifest.chartMirror).toContainEqual(expect.objectContaining(p));
  });
});

describe("tools/reference/fetch.ts", () => {
  it("succeeds against the upstream lookalike", () => {
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/ 0 already present/);
  });

  it("writes charts/ and crds/ byte for byte as the shared folder has them (index.json: the same data)", () => {
    for (const sub of ["charts", "crds"]) {
      const want = walk(path.join(SHARED, sub)).filter((f) => f !== "README.md");
      expect(walk(path.join(dest, sub))).toEqual(want);
      for (const rel of want) {
        const [got, exp] = [path.join(dest, sub, rel), path.join(SHARED, sub, rel)].map((f) => fs.readFileSync(f));
        if (rel === "index.json") expect(JSON.parse(got.toString())).toEqual(JSON.parse(exp.toString()));
        else if (!got.equals(exp)) throw new Error(`${sub}/${rel} differs from ${path.join(SHARED, sub, rel)}`);
      }
    }
  });

  mirrorIt("writes chart-mirror/ with every chart version of the shared mirror and an index.yaml Helm can read", () => {
    const shared = readIndex(path.join(SHARED, "chart-mirror", "index.yaml"));
    const got = readIndex(path.join(dest, "chart-mirror", "index.yaml"));
    expect(got.apiVersion).toBe("v1");
    const pairs = (idx: typeof got) =>
      Object.values(idx.entries)
        .flat()
        .map((e) => `${e.name} ${e.version}`)
        .sort();
    expect(pairs(got)).toEqual(pairs(shared));
    for (const e of Object.values(got.entries).flat()) {
      expect(e.urls).toEqual([`${e.name}-${e.version}.tgz`]);
      expect(e.created).toBe("2026-08-22T00:00:00Z");
      const tgz = fs.readFileSync(path.join(dest, "chart-mirror", e.urls[0]));
      expect(sha256(tgz)).toBe(e.digest);
      expect(tgz.equals(fs.readFileSync(path.join(SHARED, "chart-mirror", e.urls[0])))).toBe(true);
    }
  });

  it("downloads nothing on a second run", async () => {
    requests.length = 0;
    const again = await runFetch(dest, "--only", allParts);
    expect(again.code).toBe(0);
    expect(requests).toEqual([]);
    expect(again.stdout).toMatch(/: 0 downloaded/);
  });

  it("downloads again only a file whose hash is wrong", async () => {
    const f = manifest.files.find((x) => x.path.startsWith("charts/"))!;
    fs.appendFileSync(path.join(dest, f.path), "# local edit\n");
    requests.length = 0;
    const again = await runFetch(dest, "--only", "charts");
    expect(again.code).toBe(0);
    expect(requests).toEqual([`/raw${f.url.slice(RAW_BASE.length)}`]);
    expect(sha256(fs.readFileSync(path.join(dest, f.path)))).toBe(f.sha256);
  });

  it("refuses a corrupted download, naming the file, the URL and both hashes, and writes nothing for it", async () => {
    const f = manifest.files.find((x) => x.path.endsWith("values.yaml"))!;
    const fileUrl = `${base}/raw${f.url.slice(RAW_BASE.length)}`;
    const bad = fs.readFileSync(path.join(SHARED, f.path));
    bad[0] ^= 0xff;
    corrupt.add(new URL(fileUrl).pathname);
    const chart = manifest.chartMirror.find((c) => !c.fallbackIndexes)!;
    const tgz = `${chart.name}-${chart.version}.tgz`;
    const tgzUrl = `${base}/helm/${chart.repository.replace(/^https:\/\//, "")}/${tgz}`;
    if (hasMirror) corrupt.add(new URL(tgzUrl).pathname);
    const out = tempDir();
    let run: Awaited<ReturnType<typeof runFetch>>;
    try {
      run = await runFetch(out, "--only", hasMirror ? "charts,chart-mirror" : "charts");
    } finally {
      corrupt.clear();
    }
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${f.path}: sha256 mismatch, not written\n  url:      ${fileUrl}\n  expected: ${f.sha256} (tools/reference/manifest.json)\n  actual:   ${sha256(bad)}`,
    );
    expect(fs.existsSync(path.join(out, f.path))).toBe(false);
    expect(fs.existsSync(path.join(out, "charts", "index.json"))).toBe(false);
    if (hasMirror) {
      const entry = readIndex(path.join(SHARED, "chart-mirror", "index.yaml")).entries[chart.name].find(
        (e) => e.version === chart.version,
      )!;
      const badTgz = fs.readFileSync(path.join(SHARED, "chart-mirror", tgz));
      badTgz[0] ^= 0xff;
      expect(run.stderr).toContain(
        `chart-mirror/${tgz}: sha256 mismatch, not written\n  url:      ${tgzUrl}\n  expected: ${entry.digest} (digest in ${base}/helm/`,
      );
      expect(run.stderr).toContain(`actual:   ${sha256(badTgz)}`);
      expect(fs.existsSync(path.join(out, "chart-mirror", tgz))).toBe(false);
      expect(fs.existsSync(path.join(out, "chart-mirror", "index.yaml"))).toBe(false);
    }
    expect(walk(out).filter((p) => p.includes(".part-"))).toEqual([]);
  });
});
