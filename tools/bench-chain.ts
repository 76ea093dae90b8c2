/**
 * The longest chain of dependencies in a render, ending at a join step: how many resources Pulumi
 * must create one after another before the last host has joined. Workers join in parallel, so the
 * length must not grow with the number of workers.
 *
 *   npx ts-node --transpile-only tools/bench-chain.ts [--stack production] [WORKERS ...]
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderCommand } from "./render-command";

export interface ChainResource {
  urn: string;
  type: string;
  name: string;
  dependencies: string[];
}

const isJoin = (r: ChainResource) => r.type === "command:remote:Command" && r.name.endsWith("-join");

/** Number of resources on the longest dependency path that ends at a join step (0 without joins). */
export function longestChain(resources: ChainResource[], endsAt: (r: ChainResource) => boolean = isJoin): number {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const lengthTo = (urn: string): number => {
    const known = depth.get(urn);
    if (known !== undefined) return known;
    if (visiting.has(urn)) throw new Error(`dependency cycle through ${urn}`);
    visiting.add(urn);
    const r = byUrn.get(urn);
    const deps = (r?.dependencies ?? []).filter((d) => byUrn.has(d));
    const length = 1 + Math.max(0, ...deps.map(lengthTo));
    visiting.delete(urn);
    depth.set(urn, length);
    return length;
  };
  return Math.max(0, ...resources.filter(endsAt).map((r) => lengthTo(r.urn)));
}

/**
 * Worker-upgrade time model: the most upgrade steps on one dependency path (each drains and upgrades a
 * host; the others of its wave run at the same time), and that many times `perHostSeconds`.
 */
export function upgradeWaves(resources: ChainResource[]): number {
  const isUpgrade = (r: ChainResource) => r.type === "command:remote:Command" && r.name.endsWith("-upgrade");
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const memo = new Map<string, number>();
  const upgradesTo = (urn: string): number => {
    const known = memo.get(urn);
    if (known !== undefined) return known;
    const r = byUrn.get(urn)!;
    const n = (isUpgrade(r) ? 1 : 0) + Math.max(0, ...r.dependencies.filter((d) => byUrn.has(d)).map(upgradesTo));
    memo.set(urn, n);
    return n;
  };
  return Math.max(0, ...resources.filter(isUpgrade).map((r) => upgradesTo(r.urn)));
}

function main(): void {
  const argv = process.argv.slice(2);
  const stackAt = argv.indexOf("--stack");
  const stack = stackAt >= 0 ? argv.splice(stackAt, 2)[1] : "production";
  const sizes = argv.length > 0 ? argv.map(Number) : [3, 30];
  const root = path.resolve(__dirname, "..");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dare-chain-"));
  try {
    for (const workers of sizes) {
      const out = path.join(tmp, String(workers));
      const [program, args] = renderCommand(["--stack", stack, "--set", `nodes.pools[0].count=${workers}`, "--out", out]);
      const result = spawnSync(program, args, { cwd: root, encoding: "utf8" });
      if (result.status !== 0) throw new Error(`render of ${workers} workers failed:\n${result.stderr}`);
      const resources = JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as ChainResource[];
      console.log(`${stack}, ${workers} workers: longest chain to a join: ${longestChain(resources)} resources`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) main();
