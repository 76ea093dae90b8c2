/**
 * Item 7 of the benchmarks (`npm run bench`, as root): removing one worker that holds a Ceph OSD, on test
 * hosts (tests/hosts/harness.ts) with the recording stand-ins for kubectl and the toolbox's ceph
 * (tests/hosts/stubs.ts). The steps run as Pulumi deletes them: the OSD removal on the first control plane
 * (out, wait for every placement group active+clean, purge, delete the deployment), then the drain, then
 * the reset. The stand-in re-replicates in BENCH_BACKFILL_POLLS polls (default 5) of `ceph pg stat`, one
 * a second (the real poll is every 10 s): the wait is that, the rest is the scripts' own cost over SSH.
 *
 *   npx ts-node --transpile-only tools/bench-osd.ts
 */
import { readStubCalls, startHosts, stopHosts } from "../tests/hosts/harness";
import { deletionOrder, program, ProgramHost, removedSteps, runStep, sshKeyOf } from "../tests/hosts/program";
import { bootstrapStubs, seedCeph } from "../tests/hosts/stubs";

export interface OsdRemovalTimes {
  total: number;
  phases: Array<{ step: string; seconds: number; polls?: number }>;
  order: string[];
}

export async function osdRemovalBench(): Promise<OsdRemovalTimes> {
  const polls = Number(process.env.BENCH_BACKFILL_POLLS ?? 5);
  const cluster = "ob";
  const names = ["obc-0", "obw-1", "obw-2", "obw-3"];
  const spec: ProgramHost[] = names.map((name, i) =>
    i === 0 ? { name, controlPlane: true } : { name, disks: [`/dev/disk/by-id/virtio-${name}-disk-0`] },
  );
  const hosts = await startHosts(names, { authorizedKey: sshKeyOf(cluster).publicKeyOpenssh, stubs: bootstrapStubs(names) });
  try {
    const all = await program(cluster, hosts, spec);
    for (const step of all) {
      const r = await runStep(cluster, hosts, step);
      if (r.code !== 0) throw new Error(`${step.name} failed:\n${r.stderr}`);
    }
    const seeded = await hosts[0].exec(
      seedCeph(
        spec.slice(1).map((h, i) => ({ id: i, host: h.name, device: h.disks![0], kernelName: "vdb" })),
        polls,
      ),
    );
    if (seeded.code !== 0) throw new Error(seeded.stderr);
    await hosts[0].exec("rm -f /var/log/dare-stub-calls.log");
    const removed = deletionOrder(removedSteps(all, await program(cluster, hosts, spec.slice(0, 3)))).filter((s) => s.delete);
    const phases: OsdRemovalTimes["phases"] = [];
    const started = process.hrtime.bigint();
    for (const step of removed) {
      const t0 = process.hrtime.bigint();
      const r = await runStep(cluster, hosts, step, "delete", { CEPH_POLL_INTERVAL: "1" });
      if (r.code !== 0) throw new Error(`${step.name} (delete) failed:\n${r.stderr}`);
      phases.push({ step: step.name, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    }
    const total = Number(process.hrtime.bigint() - started) / 1e9;
    const calls = (await readStubCalls(hosts[0])).map((l) => l.replace(/^KUBECONFIG=\S+ /, ""));
    phases[0].polls = calls.filter((l) => l === "ceph pg stat").length;
    const order = calls
      .filter((l) =>
        /^ceph (osd (out|down|purge|safe-to-destroy|crush)|pg stat)|^kubectl (-n rook-ceph (scale|delete)|drain|delete node)/.test(l),
      )
      .filter((l, i, a) => l !== "ceph pg stat" || a[i - 1] !== "ceph pg stat");
    return { total, phases, order: [...order, "kubeadm reset -f (on the worker)"] };
  } finally {
    await stopHosts(hosts);
  }
}

export function printOsdRemoval(t: OsdRemovalTimes): void {
  console.log(
    `\nremoving one OSD worker on test hosts (stand-ins re-replicate in ${t.phases[0].polls! - 1} polls, 1 s apart): ${t.total.toFixed(2)} s`,
  );
  for (const p of t.phases)
    console.log(`  ${p.step.padEnd(34)} ${p.seconds.toFixed(2).padStart(6)} s${p.polls ? ` (${p.polls} × ceph pg stat)` : ""}`);
  console.log(`  in this order: ${t.order.join(" → ")}`);
}

if (require.main === module) {
  osdRemovalBench()
    .then(printOsdRemoval)
    .catch((err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
