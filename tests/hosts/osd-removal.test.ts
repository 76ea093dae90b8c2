/**
 * Removing a worker or a disk that holds Ceph OSDs, on real OpenSSH servers (tests/hosts/harness.ts):
 * the program's OSD-removal steps (ceph-remove-osds.sh on the first control plane) run before the drain
 * and reset, as Pulumi deletes them, against a simulated Rook Ceph cluster (tests/hosts/stubs.ts: kubectl
 * and the toolbox's ceph are recording stand-ins; re-replication takes a few `ceph pg stat` polls).
 * Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import { readStubCalls, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { deletionOrder, program, ProgramHost, removedSteps, runStep, sshKeyOf, Step } from "./program";
import { bootstrapStubs, CEPH_STATE, seedCeph, SimulatedOsd } from "./stubs";

jest.setTimeout(240_000);

const CLUSTER = "ot";
const NAMES = ["oc-0", "ow-1", "ow-2", "ow-3"];
const byId = (host: string, j: number) => `/dev/disk/by-id/virtio-${host.replace("-", "")}-disk-${j}`;
const SPEC: ProgramHost[] = [
  { name: "oc-0", controlPlane: true },
  { name: "ow-1", disks: [byId("ow-1", 0)] },
  { name: "ow-2", disks: [byId("ow-2", 0), byId("ow-2", 1)] },
  // Existing hosts' disks by kernel name.
  { name: "ow-3", disks: ["/dev/sdb", "/dev/sdc"] },
];
const OSDS: SimulatedOsd[] = [
  { id: 0, host: "ow-1", device: byId("ow-1", 0), kernelName: "vdb" },
  { id: 1, host: "ow-2", device: byId("ow-2", 0), kernelName: "vdb" },
  { id: 2, host: "ow-2", device: byId("ow-2", 1), kernelName: "vdc" },
  { id: 3, host: "ow-3", device: "/dev/sdb", kernelName: "sdb" },
  { id: 4, host: "ow-3", device: "/dev/sdc", kernelName: "sdc" },
];
// Re-replication is polled every second here (10 s by default).
const FAST = { CEPH_POLL_INTERVAL: "1" };

let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const cp = () => byName("oc-0");

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
});
afterAll(async () => {
  await stopHosts(hosts);
});

const clearCalls = () => Promise.all(hosts.map((h) => h.exec(`rm -f ${STUB_CALL_LOG}`)));
const calls = async (name: string) => readStubCalls(byName(name)).catch(() => [] as string[]);
/** The first control plane's calls that change Ceph, Rook or the node, without the kubeconfig prefix. */
const actions = async () =>
  (await calls("oc-0"))
    .map((l) => l.replace(/^KUBECONFIG=\S+ /, ""))
    .filter((l) =>
      /^ceph (osd (out|in|down|purge|crush|safe-to-destroy)|pg stat)|^kubectl (-n rook-ceph (scale|delete|exec deploy\/rook-ceph-osd)|drain|delete node)/.test(
        l,
      ),
    );
const cephFile = async (name: string) => (await cp().readFile(`${CEPH_STATE}/${name}`)).trim().split("\n").filter(Boolean);
const seed = async (osds: SimulatedOsd[], polls: number | "never" = 2) => {
  const r = await cp().exec(seedCeph(osds, polls));
  if (r.code !== 0) throw new Error(r.stderr);
};

async function remove(steps: Step[], extra: Record<string, string> = FAST) {
  const results: Array<{ step: string; code: number; stdout: string; stderr: string }> = [];
  // Steps without a delete script leave nothing to run.
  for (const step of deletionOrder(steps).filter((s) => s.delete)) {
    const r = await runStep(CLUSTER, hosts, step, "delete", extra);
    results.push({ step: step.name, ...r });
    // Pulumi deletes nothing a failed delete depends on.
    if (r.code !== 0) break;
  }
  return results;
}

describe("removing hosts and disks that hold Ceph OSDs", () => {
  let all: Step[];

  beforeAll(async () => {
    all = await program(CLUSTER, hosts, SPEC);
    for (const step of all) {
      const r = await runStep(CLUSTER, hosts, step);
      if (r.code !== 0) throw new Error(`${step.name} failed:\n${r.stdout}\n${r.stderr}`);
    }
    await seed(OSDS);
  });

  it("deletes a host's OSD steps first, then drains it, then resets it", () => {
    const removed = removedSteps(all, []).filter((s) => s.delete && (s.host === "ow-3" || s.name.includes("-ow-3")));
    expect(deletionOrder(removed).map((s) => s.name)).toEqual([
      "k8s-oc-0-osd-ow-3",
      "k8s-oc-0-osd-ow-3-disk-0",
      "k8s-oc-0-osd-ow-3-disk-1",
      // The renewal approver forgets it before it leaves the cluster.
      "k8s-oc-0-kubelet-serving-ow-3",
      "k8s-oc-0-node-ow-3",
      "k8s-ow-3-join",
    ]);
    // Hosts without disks get none.
    expect(all.filter((s) => s.name.includes("-osd-")).map((s) => s.host)).toEqual(Array(8).fill("oc-0"));
  });

  let removal: Step[];
  it("a worker with two OSDs: out, re-replicated (active+clean), purged, deployments deleted, then drained and reset", async () => {
    await clearCalls();
    removal = removedSteps(
      all,
      await program(
        CLUSTER,
        hosts,
        SPEC.filter((h) => h.name !== "ow-3"),
      ),
    );
    const started = Date.now();
    const results = await remove(removal);
    expect(results.map((r) => [r.step, r.code])).toEqual(
      deletionOrder(removal)
        .filter((s) => s.delete)
        .map((s) => [s.name, 0]),
    );
    const rook = (verb: string) => `kubectl -n rook-ceph ${verb}`;
    expect(await actions()).toEqual([
      "ceph osd out osd.3",
      "ceph osd out osd.4",
      // Two polls while the stand-in backfills, the third finds every placement group active+clean.
      "ceph pg stat",
      "ceph pg stat",
      "ceph pg stat",
      "ceph osd safe-to-destroy osd.3 osd.4",
      rook("scale deployment rook-ceph-operator --replicas=0"),
      rook("scale deployment rook-ceph-osd-3 --replicas=0"),
      "ceph osd down osd.3",
      "ceph osd purge 3 --yes-i-really-mean-it",
      rook("delete deployment rook-ceph-osd-3 --ignore-not-found"),
      rook("scale deployment rook-ceph-osd-4 --replicas=0"),
      "ceph osd down osd.4",
      "ceph osd purge 4 --yes-i-really-mean-it",
      rook("delete deployment rook-ceph-osd-4 --ignore-not-found"),
      "ceph osd crush rm ow-3",
      rook("scale deployment rook-ceph-operator --replicas=1"),
      "kubectl drain ow-3 --ignore-daemonsets --delete-emptydir-data --timeout=600s",
      "kubectl delete node ow-3 --wait=true",
    ]);
    expect(await calls("ow-3")).toContainEqual("kubeadm reset -f");
    expect((await byName("ow-3").exec("test -e /etc/kubernetes/kubelet.conf")).code).toBe(1);
    expect(results[0].stdout).toContain(
      "ow-3: waiting (at most 3600 s) for Ceph to re-replicate osd.3 osd.4: every placement group active+clean",
    );
    expect(await cephFile("osds")).toEqual(["0 ow-1 vdb in up", "1 ow-2 vdb in up", "2 ow-2 vdc in up"]);
    expect(await cephFile("buckets")).toEqual(["ow-1", "ow-2"]);
    expect(await cephFile("deployments")).toEqual(["0 ow-1 1", "1 ow-2 1", "2 ow-2 1"]);
    expect(await cephFile("operator-replicas")).toEqual(["1"]);
    // Two one-second polls.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    // The other workers are untouched.
    for (const w of ["ow-1", "ow-2"]) expect(await calls(w)).toEqual([]);
  });

  it("a rerun of the removal is a no-op", async () => {
    await clearCalls();
    const results = await remove(removal);
    expect(results.every((r) => r.code === 0)).toBe(true);
    expect(await actions()).toEqual([]);
    expect(results.map((r) => r.stdout.trim().split("\n").pop())).toEqual([
      "ow-3: no OSD left: nothing to remove",
      "ow-3 disk /dev/sdb: no OSD left: nothing to remove",
      "ow-3 disk /dev/sdc: no OSD left: nothing to remove",
      "ow-3: no kubelet serving record: nothing to forget",
      "ow-3: no such node: nothing to remove",
      "ow-3: not a cluster member: nothing to reset",
    ]);
    expect((await calls("ow-3")).filter((l) => l.includes("kubeadm reset"))).toEqual([]);
  });

  it("a disk: only its OSD goes (found through the host's /dev in an OSD pod), nothing is drained or reset", async () => {
    await clearCalls();
    const before = SPEC.filter((h) => h.name !== "ow-3");
    const after = before.map((h) => (h.name === "ow-2" ? { ...h, disks: [byId("ow-2", 0)] } : h));
    const removed = removedSteps(await program(CLUSTER, hosts, before), await program(CLUSTER, hosts, after));
    expect(removed.map((s) => s.name)).toEqual(["k8s-oc-0-osd-ow-2-disk-1"]);
    const results = await remove(removed);
    expect(results.map((r) => r.code)).toEqual([0]);
    const acts = await actions();
    expect(acts[0]).toBe(`kubectl -n rook-ceph exec deploy/rook-ceph-osd-1 -c osd -- readlink -f ${byId("ow-2", 1)}`);
    expect(acts.slice(1).filter((l) => /out|purge|crush|drain|delete/.test(l))).toEqual([
      "ceph osd out osd.2",
      "ceph osd purge 2 --yes-i-really-mean-it",
      "kubectl -n rook-ceph delete deployment rook-ceph-osd-2 --ignore-not-found",
    ]);
    expect(await cephFile("osds")).toEqual(["0 ow-1 vdb in up", "1 ow-2 vdb in up"]);
    expect(await cephFile("buckets")).toEqual(["ow-1", "ow-2"]);
    expect(await calls("ow-2")).toEqual([]);
  });

  it("a re-replication that does not finish in time fails loudly: nothing purged, drained or reset", async () => {
    await clearCalls();
    await seed(OSDS.slice(0, 2), "never");
    const current = SPEC.filter((h) => h.name !== "ow-3").map((h) => (h.name === "ow-2" ? { ...h, disks: [byId("ow-2", 0)] } : h));
    const removed = removedSteps(
      await program(CLUSTER, hosts, current),
      await program(
        CLUSTER,
        hosts,
        current.filter((h) => h.name !== "ow-1"),
      ),
    );
    const results = await remove(removed, { ...FAST, CEPH_CLEAN_TIMEOUT: "3" });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ step: "k8s-oc-0-osd-ow-1", code: 1 });
    expect(results[0].stderr).toContain(
      "refusing to remove ow-1: Ceph has not re-replicated the data of osd.0 within 3 s (ceph pg stat: 64 pgs: 57 active+clean, 7 active+remapped+backfilling;",
    );
    expect(results[0].stderr).toContain("Nothing was purged, drained, reset or detached");
    const acts = await actions();
    expect(acts[0]).toBe("ceph osd out osd.0");
    expect(acts.slice(1).every((l) => l === "ceph pg stat")).toBe(true);
    expect(acts.length).toBeGreaterThanOrEqual(4);
    expect(await calls("ow-1")).toEqual([]);
    expect(await cephFile("osds")).toEqual(["0 ow-1 vdb out up", "1 ow-2 vdb in up"]);
    expect(await cephFile("deployments")).toEqual(["0 ow-1 1", "1 ow-2 1"]);
    expect(await cephFile("operator-replicas")).toEqual(["1"]);
  });

  it("refuses without the Rook toolbox, and does nothing where there is no Ceph", async () => {
    const step = all.find((s) => s.name === "k8s-oc-0-osd-ow-1")!;
    await cp().exec(`touch ${CEPH_STATE}/no-toolbox`);
    const refused = await runStep(CLUSTER, hosts, step, "delete", FAST);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("refusing to remove ow-1: the Rook toolbox (deployment rook-ceph-tools in rook-ceph) is missing");
    await cp().exec(`rm -rf ${CEPH_STATE}`);
    await clearCalls();
    const none = await runStep(CLUSTER, hosts, step, "delete", FAST);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain("ow-1: no Ceph cluster: no OSD to remove");
    expect(await actions()).toEqual([]);
  });
});
