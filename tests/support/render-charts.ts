/**
 * Renders the testbed under the mock runtime with some pinned chart versions changed, as a reviewer's
 * version bump would change them, and writes what was registered (resources.json's form) to OUT:
 *
 *   node --require ts-node/register/transpile-only tests/support/render-charts.ts OUT [CHART=VERSION ...]
 *
 * Its own process: Pulumi's runtime is one per process (tools/program.ts).
 */
import * as fs from "fs";
import { CHARTS } from "../../lib/pins";
import { readStackConfig, runProgram } from "../../tools/program";

/** The pinned charts a bump may name, by chart name: the very objects the components read. */
export const BUMPABLE: Record<string, { version: string }> = {
  traefik: CHARTS.traefik,
  "tigera-operator": CHARTS.calico,
  "kube-prometheus-stack": CHARTS.kubePrometheusStack,
};

async function main(): Promise<void> {
  const [out, ...bumps] = process.argv.slice(2);
  for (const bump of bumps) {
    const [chart, version] = bump.split("=");
    if (!BUMPABLE[chart] || !version) throw new Error(`render-charts: no pinned chart "${chart}" to set to "${version}"`);
    (BUMPABLE[chart] as { version: string }).version = version;
  }
  const { resources } = await runProgram("testbed", readStackConfig("testbed"));
  fs.writeFileSync(
    out,
    JSON.stringify(
      resources.map(({ urn, type, name, parent, custom, dependencies, inputs }) => ({
        urn,
        type,
        name,
        parent,
        custom,
        dependencies,
        inputs,
      })),
    ),
  );
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
