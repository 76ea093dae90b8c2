/**
 * Compares two offline renders (tools/render.ts) and prints a Markdown summary for a pull request:
 * resources added / changed / removed per type (a host step's by the plain parameter or the script that
 * changed in its command), Helm chart versions and values changed (key paths), and how many other rendered
 * files (Kubernetes objects, host scripts) changed.
 *
 *   npm run render-diff -- [--title TEXT] [--full FILE] BASE_DIR HEAD_DIR
 *
 * --full FILE writes the unified diff of every rendered file (`diff -ruN`). Secret values are
 * "[secret]" in both renders, so a changed secret does not show; that is by design of the render.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { parseEnvFile, unwrapScript } from "../lib/host-step";

const USAGE = "usage: npm run render-diff -- [--title TEXT] [--full FILE] BASE_DIR HEAD_DIR";

export class UsageError extends Error {}

interface RenderedResource {
  urn: string;
  type: string;
  name: string;
  inputs: unknown;
  /** lifecycle options (protect, retainOnDelete, deleteBeforeReplace…), where set */
  options?: unknown;
}

interface RenderedRelease {
  chart?: string;
  version?: string;
  repository?: string;
  namespace?: string;
  values: unknown;
}

export interface Render {
  resources: Map<string, RenderedResource>;
  releases: Map<string, RenderedRelease>;
  /** every file, relative path → content */
  files: Map<string, string>;
}

export interface ResourceChange {
  type: string;
  name: string;
  urn: string;
  /** input key paths that differ (changed resources only) */
  paths: string[];
}

export interface ReleaseChange {
  release: string;
  status: "added" | "removed" | "changed";
  chart?: string;
  baseVersion?: string;
  headVersion?: string;
  /** values key paths added, removed or changed */
  valuePaths: string[];
}

export interface RenderDiff {
  added: ResourceChange[];
  changed: ResourceChange[];
  removed: ResourceChange[];
  releases: ReleaseChange[];
  /** rendered files other than resources.json, outputs.json and helm/ */
  otherFiles: { added: string[]; changed: string[]; removed: string[] };
}

function listFiles(dir: string, prefix = ""): string[] {
  return fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? listFiles(dir, relative) : [relative];
  });
}

/** Reads a render directory; a directory that is not a render is a usage error. */
export function readRender(dir: string): Render {
  const resourcesFile = path.join(dir, "resources.json");
  if (!fs.existsSync(resourcesFile))
    throw new UsageError(`${dir} is not a render directory (no resources.json); make one with npm run render -- --stack NAME --out ${dir}`);
  const files = new Map(
    listFiles(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")] as [string, string]),
  );
  const resources = new Map<string, RenderedResource>();
  for (const r of JSON.parse(files.get("resources.json")!) as RenderedResource[]) resources.set(r.urn, r);
  const releases = new Map<string, RenderedRelease>();
  for (const [file, content] of files) {
    const match = /^helm\/(.+)\.yaml$/.exec(file);
    if (match) releases.set(match[1], { values: {}, ...(YAML.parse(content) ?? {}) });
  }
  return { resources, releases, files };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function joinPath(prefix: string, key: string | number): string {
  if (typeof key === "number") return `${prefix}[${key}]`;
  return prefix ? `${prefix}.${key}` : key;
}

/** Leaf key paths where two JSON values differ (a whole subtree when one side lacks it). */
export function changedPaths(base: unknown, head: unknown, prefix = ""): string[] {
  if (isObject(base) && isObject(head)) {
    const keys = [...new Set([...Object.keys(base), ...Object.keys(head)])].sort();
    return keys.flatMap((k) => changedPaths(base[k], head[k], joinPath(prefix, k)));
  }
  if (Array.isArray(base) && Array.isArray(head)) {
    const length = Math.max(base.length, head.length);
    return Array.from({ length }, (_, i) => changedPaths(base[i], head[i], joinPath(prefix, i))).flat();
  }
  return JSON.stringify(base) === JSON.stringify(head) ? [] : [prefix || "(root)"];
}

/**
 * A host step's changed command (`create` or `delete`) by what changed in it: each plain parameter
 * (`create.KUBERNETES_VERSION`) and the script (`create.script`); the whole command when it is not a wrapped step.
 */
function commandPaths(key: string, base: unknown, head: unknown): string[] {
  const before = typeof base === "string" ? unwrapScript(base) : undefined;
  const after = typeof head === "string" ? unwrapScript(head) : undefined;
  if (!before || !after) return [key];
  const paths = changedPaths(parseEnvFile(before.parameters), parseEnvFile(after.parameters), key);
  return before.script === after.script ? paths : [...paths, `${key}.script`];
}

/** Input paths that differ; a host step's commands are compared parameter by parameter. */
function inputPaths(type: string, base: unknown, head: unknown): string[] {
  const paths = changedPaths(base, head);
  if (type !== "command:remote:Command" || !isObject(base) || !isObject(head)) return paths;
  return paths.flatMap((p) => (p === "create" || p === "delete" ? commandPaths(p, base[p], head[p]) : [p]));
}

const byTypeThenName = (a: ResourceChange, b: ResourceChange) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name);

export function diffRenders(base: Render, head: Render): RenderDiff {
  const change = (r: RenderedResource, paths: string[] = []): ResourceChange => ({ type: r.type, name: r.name, urn: r.urn, paths });
  const added = [...head.resources.values()].filter((r) => !base.resources.has(r.urn)).map((r) => change(r));
  const removed = [...base.resources.values()].filter((r) => !head.resources.has(r.urn)).map((r) => change(r));
  const changed = [...head.resources.values()].flatMap((r) => {
    const before = base.resources.get(r.urn);
    if (!before) return [];
    // A changed lifecycle option (say protect dropped) matters as much as a changed input.
    const paths = [
      ...inputPaths(r.type, before.inputs, r.inputs),
      ...changedPaths(before.options ?? {}, r.options ?? {}).map((p) => `options.${p}`),
    ];
    return paths.length > 0 ? [change(r, paths)] : [];
  });

  const releases: ReleaseChange[] = [];
  for (const name of [...new Set([...base.releases.keys(), ...head.releases.keys()])].sort()) {
    const before = base.releases.get(name);
    const after = head.releases.get(name);
    const valuePaths = changedPaths(before?.values ?? {}, after?.values ?? {});
    const status = !before ? "added" : !after ? "removed" : "changed";
    const chartMoved = before?.version !== after?.version || before?.chart !== after?.chart || before?.repository !== after?.repository;
    if (status === "changed" && !chartMoved && valuePaths.length === 0) continue;
    releases.push({
      release: name,
      status,
      chart: after?.chart ?? before?.chart,
      baseVersion: before?.version,
      headVersion: after?.version,
      valuePaths,
    });
  }

  const summarised = (f: string) => f === "resources.json" || f === "outputs.json" || f.startsWith("helm/");
  const baseFiles = [...base.files.keys()].filter((f) => !summarised(f));
  const headFiles = [...head.files.keys()].filter((f) => !summarised(f));
  const otherFiles = {
    added: headFiles.filter((f) => !base.files.has(f)),
    changed: headFiles.filter((f) => base.files.has(f) && base.files.get(f) !== head.files.get(f)),
    removed: baseFiles.filter((f) => !head.files.has(f)),
  };
  return {
    added: added.sort(byTypeThenName),
    changed: changed.sort(byTypeThenName),
    removed: removed.sort(byTypeThenName),
    releases,
    otherFiles,
  };
}

/** Long lists are cut in the comment; the full diff has everything. */
const MAX_LISTED = 50;
const MAX_PATHS = 8;

function listPaths(paths: string[]): string {
  const shown = paths
    .slice(0, MAX_PATHS)
    .map((p) => `\`${p}\``)
    .join(", ");
  return paths.length > MAX_PATHS ? `${shown} and ${paths.length - MAX_PATHS} more` : shown;
}

export function formatMarkdown(diff: RenderDiff, title = "Render diff"): string {
  const lines: string[] = [`### ${title}`, ""];
  const { added, changed, removed, releases, otherFiles } = diff;
  const otherCount = otherFiles.added.length + otherFiles.changed.length + otherFiles.removed.length;
  if (added.length + changed.length + removed.length + releases.length + otherCount === 0) {
    return [...lines, "No differences: this change does not alter what the program deploys.", "", ""].join("\n");
  }

  lines.push(`**Resources:** ${added.length} added, ${changed.length} changed, ${removed.length} removed`, "");
  if (added.length + changed.length + removed.length > 0) {
    const types = [...new Set([...added, ...changed, ...removed].map((c) => c.type))].sort();
    const count = (list: ResourceChange[], type: string) => list.filter((c) => c.type === type).length;
    lines.push("| Type | Added | Changed | Removed |", "|---|---:|---:|---:|");
    for (const type of types) lines.push(`| \`${type}\` | ${count(added, type)} | ${count(changed, type)} | ${count(removed, type)} |`);
    lines.push("", "<details><summary>Resources</summary>", "");
    const entries = [
      ...removed.map((c) => `- removed \`${c.type}\` **${c.name}**`),
      ...changed.map((c) => `- changed \`${c.type}\` **${c.name}**: ${listPaths(c.paths)}`),
      ...added.map((c) => `- added \`${c.type}\` **${c.name}**`),
    ];
    lines.push(...entries.slice(0, MAX_LISTED));
    if (entries.length > MAX_LISTED) lines.push(`- … ${entries.length - MAX_LISTED} more in the full diff`);
    lines.push("", "</details>", "");
  }

  if (releases.length > 0) {
    lines.push("**Helm releases:**", "", "| Release | Chart | Version | Values changed |", "|---|---|---|---|");
    for (const r of releases) {
      const version =
        r.status === "added"
          ? `(new) ${r.headVersion}`
          : r.status === "removed"
            ? `${r.baseVersion} (removed)`
            : r.baseVersion === r.headVersion
              ? `${r.headVersion}`
              : `**${r.baseVersion} → ${r.headVersion}**`;
      const values = r.status === "changed" ? (r.valuePaths.length > 0 ? listPaths(r.valuePaths) : "none") : "";
      lines.push(`| ${r.release} | ${r.chart ?? ""} | ${version} | ${values} |`);
    }
    lines.push("");
  }

  if (otherCount > 0) {
    lines.push(
      `**Other rendered files** (Kubernetes objects, host scripts): ${otherFiles.added.length} added, ${otherFiles.changed.length} changed, ${otherFiles.removed.length} removed`,
      "",
    );
    const entries = [
      ...otherFiles.removed.map((f) => `- removed \`${f}\``),
      ...otherFiles.changed.map((f) => `- changed \`${f}\``),
      ...otherFiles.added.map((f) => `- added \`${f}\``),
    ];
    lines.push("<details><summary>Files</summary>", "", ...entries.slice(0, MAX_LISTED));
    if (entries.length > MAX_LISTED) lines.push(`- … ${entries.length - MAX_LISTED} more in the full diff`);
    lines.push("", "</details>", "");
  }
  // A trailing blank line ends any HTML block, so whatever follows (the next stack's heading) stays Markdown.
  return `${lines.join("\n").trimEnd()}\n\n`;
}

/** Unified diff of every rendered file; empty when the renders are identical. */
export function fullDiff(baseDir: string, headDir: string): string {
  const result = spawnSync("diff", ["-ruN", baseDir, headDir], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  // diff exits 0 when equal, 1 when different, 2 on trouble.
  if (result.error || result.status === 2 || result.status === null) {
    throw new Error(`diff -ruN failed: ${result.error?.message ?? result.stderr}`);
  }
  return result.stdout;
}

export interface DiffArgs {
  base: string;
  head: string;
  title?: string;
  full?: string;
}

export function parseArgs(argv: string[]): DiffArgs {
  const positional: string[] = [];
  let title: string | undefined;
  let full: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--title" || arg === "--full") {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value\n${USAGE}`);
      if (arg === "--title") title = value;
      else full = value;
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}\n${USAGE}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 2) throw new UsageError(`expected BASE_DIR and HEAD_DIR\n${USAGE}`);
  return { base: positional[0], head: positional[1], title, full };
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const diff = diffRenders(readRender(args.base), readRender(args.head));
  process.stdout.write(formatMarkdown(diff, args.title));
  if (args.full) {
    fs.mkdirSync(path.dirname(path.resolve(args.full)), { recursive: true });
    fs.writeFileSync(args.full, fullDiff(args.base, args.head));
  }
  return 0;
}

if (require.main === module) {
  try {
    process.exit(main());
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
