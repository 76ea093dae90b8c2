/**
 * Engine benchmarks (part of `npm run bench`; needs the engine from tools/engine/build.sh and, for the
 * `up`, root and the test hosts' packages):
 *  1. Real `pulumi preview` of an existing-hosts stack with 3 and 30 workers. Goal: 30 take at most 3x as long as 3.
 *  2. A no-change `pulumi up` of the bootstrap layer on 3 network-namespace hosts. Goal: under 60 s.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startHosts, stopHosts, TEST_SUBNET_PREFIX } from "../tests/hosts/harness";
import { bootstrapStubs } from "../tests/hosts/stubs";
import { existingHostsStack, hostName } from "../tests/engine/stacks";
import { requireEngine, serveChartMirror, workspace } from "../tests/engine/support";

const RUNS = Number(process.env.BENCH_RUNS ?? 2);

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function best(run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await timed(run));
  return Math.min(...times);
}

async function main(): Promise<void> {
  requireEngine();
  const mirror = await serveChartMirror();
  const goals: Array<[string, boolean]> = [];
  try {
    const preview: Record<number, number> = {};
    for (const workers of [3, 30]) {
      // A preview dials no host: any addresses of the subnet do.
      const hosts = Array.from({ length: workers + 1 }, (_, i) => `${TEST_SUBNET_PREFIX}.${100 + i}`);
      const ws = await workspace("bench", existingHostsStack({ hosts, chartMirror: mirror.url }));
      try {
        preview[workers] = await best(() => ws.ok(["preview"]));
      } finally {
        ws.remove();
      }
    }
    console.log(`real pulumi preview, existing hosts (best of ${RUNS}, ${os.cpus().length} cores)`);
    console.log(`workers   seconds   ratio to 3`);
    for (const w of [3, 30])
      console.log(`${String(w).padStart(7)}   ${preview[w].toFixed(2).padStart(7)}   ${(preview[w] / preview[3]).toFixed(2).padStart(10)}`);
    goals.push(["preview of 30 workers at most 3x that of 3", preview[30] / preview[3] <= 3]);

    const names = [0, 1, 2].map((i) => `b${process.pid % 10000}-${hostName(i)}`);
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-bench-key-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keyDir, "k")]);
    const hosts = await startHosts(names, {
      authorizedKey: fs.readFileSync(path.join(keyDir, "k.pub"), "utf8").trim(),
      stubs: bootstrapStubs(names),
    });
    const ws = await workspace(
      "bench",
      existingHostsStack({
        hosts: hosts.map((h) => h.address),
        hostKeys: hosts.map((h) => h.hostPublicKey),
        chartMirror: mirror.url,
        stopAfter: "bootstrap",
      }),
    );
    try {
      await ws.ok(["config", "set", "--secret", "sshPrivateKey"], { stdin: fs.readFileSync(path.join(keyDir, "k"), "utf8") });
      const first = await timed(() => ws.ok(["up", "--yes", "--skip-preview"]));
      const again = await best(() => ws.ok(["up", "--yes", "--skip-preview"]));
      console.log(`\nreal pulumi up of the bootstrap layer on 3 test hosts: first ${first.toFixed(2)} s, no change ${again.toFixed(2)} s`);
      goals.push(["a no-change up on 3 hosts under 60 s", again < 60]);
      await ws.ok(["destroy", "--yes", "--skip-preview"]);
    } finally {
      ws.remove();
      await stopHosts(hosts);
      fs.rmSync(keyDir, { recursive: true, force: true });
    }
  } finally {
    await mirror.close();
  }
  console.log("");
  for (const [goal, met] of goals) console.log(`${met ? "met    " : "MISSED "} ${goal}`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
