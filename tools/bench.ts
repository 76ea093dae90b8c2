/**
 * Benchmarks (`npm run bench`): speed goals live here, not in timed tests.
 *  1. Render time of production with a worker pool of 3, 30 and 300 nodes, and ratios to the smallest.
 *     Goal: production renders in under 10 s on a 2-core machine; 300 workers take at most 3x as long as 3.
 *  2. Longest dependency chain from the first resource to the last worker join, for 3 and 30 workers
 *     (tools/bench-chain.ts). Goal: the same length (workers join in parallel).
 *  3. Kubernetes upgrade of 30 workers, modelled on the render: hosts drained and upgraded one after
 *     another on the longest path of upgrade steps × BENCH_HOST_UPGRADE_SECONDS (default 300 s: drain,
 *     packages, kubelet restart, uncordon, Ceph recovering). Workers with OSDs go one at a time (Rook's
 *     PodDisruptionBudgets), so production's pool, where every worker holds an OSD, upgrades in sequence;
 *     a pool of 3 OSD workers beside 27 without disks shows the other case. No goal: a figure to plan with.
 *  4. (as root) Removing one worker that holds an OSD on test hosts, as the stand-ins simulate the
 *     re-replication (tools/bench-osd.ts): what is waited for, in which order, and how long.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderCommand } from "./render-command";

const ROOT = path.resolve(__dirname, "..");

function renderOnce(workers: number, out: string): number {
  const started = process.hrtime.bigint();
  const [program, args] = renderCommand(["--stack", "production", "--set", `nodes.pools[0].count=${workers}`, "--out", out]);
  const result = spawnSync(program, args, { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`render of ${workers} workers failed:\n${result.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function renderResources(args: string[], out: string) {
  const [program, argv] = renderCommand(["--stack", "production", ...args, "--out", out]);
  const result = spawnSync(program, argv, { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`render ${args.join(" ")} failed:\n${result.stderr}`);
  return JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8"));
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dare-bench-"));
  const sizes = [3, 30, 300];
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const best: Record<number, number> = {};
  for (const workers of sizes) {
    const times = Array.from({ length: runs }, () => renderOnce(workers, path.join(tmp, String(workers))));
    best[workers] = Math.min(...times);
  }
  console.log(`render time of production (best of ${runs}, ${os.cpus().length} cores)`);
  console.log("workers   seconds   ratio to 3");
  for (const workers of sizes) {
    console.log(
      `${String(workers).padStart(7)}   ${best[workers].toFixed(2).padStart(7)}   ${(best[workers] / best[3]).toFixed(2).padStart(10)}`,
    );
  }
  const goals = [
    [`production (3 workers) renders in under 10 s`, best[3] < 10],
    [`300 workers take at most 3x as long as 3`, best[300] / best[3] <= 3],
  ] as const;

  const chainTool = path.join(ROOT, "tools", "bench-chain.ts");
  const chainGoals: Array<readonly [string, boolean]> = [];
  if (fs.existsSync(chainTool)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { longestChain } = require(chainTool);
    const lengths = [3, 30].map((workers) => {
      const resources = JSON.parse(fs.readFileSync(path.join(tmp, String(workers), "resources.json"), "utf8"));
      return longestChain(resources) as number;
    });
    console.log(`\nlongest dependency chain to the last worker join: 3 workers ${lengths[0]}, 30 workers ${lengths[1]}`);
    chainGoals.push([`chain length does not grow with workers`, lengths[0] === lengths[1]]);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { upgradeWaves } = require(chainTool);
  const perHost = Number(process.env.BENCH_HOST_UPGRADE_SECONDS ?? 300);
  const cases: Array<[string, number]> = [
    [
      "3 control planes, 30 workers each with an OSD (production's pool)",
      upgradeWaves(JSON.parse(fs.readFileSync(path.join(tmp, "30", "resources.json"), "utf8"))),
    ],
    [
      "3 control planes, 3 OSD workers + 27 without disks",
      upgradeWaves(
        renderResources(
          ["--set", "nodes.pools[0].count=3", "--set", 'nodes.pools[1]={"name":"compute","count":27,"flavor":"m1.xlarge"}'],
          path.join(tmp, "mixed"),
        ),
      ),
    ],
  ];
  console.log(`\nKubernetes upgrade, modelled: hosts drained one after another × ${perHost} s per host (BENCH_HOST_UPGRADE_SECONDS)`);
  for (const [what, waves] of cases) console.log(`  ${what}: ${waves} in sequence, ${((waves * perHost) / 60).toFixed(0)} min`);
  console.log(
    `  (before OSD hosts went alone: batches of a tenth, 3 + 10 in sequence for 30 workers, ${((13 * perHost) / 60).toFixed(0)} min)`,
  );

  if (process.getuid?.() === 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { osdRemovalBench, printOsdRemoval } = require(path.join(ROOT, "tools", "bench-osd.ts"));
    printOsdRemoval(await osdRemovalBench());
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { borgSizeBench, printBorgSizes } = require(path.join(ROOT, "tools", "bench-borg.ts"));
    printBorgSizes(await borgSizeBench());
  } else {
    console.log("\nremoving one OSD worker on test hosts: needs root, skipped");
  }

  console.log("");
  for (const [goal, met] of [...goals, ...chainGoals]) console.log(`${met ? "met    " : "MISSED "} ${goal}`);
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
