/**
 * The bootstrap's phase contract (components/cluster/phases/): a phase declares its steps through the
 * context's `step` factory, after exactly the earlier phases' outputs it is handed, and returns them.
 * Here the factory is a fake that records each declaration, so the order a phase imposes is read directly.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesClusterArgs } from "../../../components/cluster";
import { DEFAULT_NETWORK } from "../../../lib/config";
import { ClusterNode } from "../../../lib/host-plan";
import { Host } from "../../../lib/hosts";
import { ClusterPki } from "../../../components/cluster/pki";
import { clusterContext, ClusterContext, HostSteps } from "../../../components/cluster/phases/context";
import { joinControlPlanes } from "../../../components/cluster/phases/control-plane-joins";
import { Initialised, JoinToken } from "../../../components/cluster/phases/init";
import { ControlPlanesUpgraded, upgradeControlPlanes, upgradeWorkers } from "../../../components/cluster/phases/upgrades";
import { joinWorkers } from "../../../components/cluster/phases/worker-joins";
import { runMocked } from "../../support/mocked";

/** A declared step as the fake factory saw it: `<host>/<step>`, and what it was declared after. */
interface Declared {
  id: string;
  after: string[];
}

/** A context whose `step` records declarations and returns placeholders named `<host>/<step>`. */
function fakeContext(nodes: ClusterNode[]): { ctx: ClusterContext; declared: Declared[]; fake: (id: string) => command.remote.Command } {
  const ids = new WeakMap<object, string>();
  const fake = (id: string) => {
    const placeholder = {};
    ids.set(placeholder, id);
    return placeholder as command.remote.Command;
  };
  const hosts = Object.fromEntries(
    nodes.map((n, i): [string, Host] => [
      n.name,
      {
        name: n.name,
        role: n.role,
        pool: n.pool,
        address: `10.0.0.${i + 10}`,
        privateAddress: `10.0.0.${i + 10}`,
        sshUser: "ubuntu",
        port: 22,
        hostKey: "ssh-ed25519 AAAA",
        disks: [],
        viaBastion: false,
      },
    ]),
  );
  const args: KubernetesClusterArgs = {
    nodes,
    hosts,
    apiServer: { privateAddress: "10.0.0.5", publicAddress: "192.0.2.5", port: 6443 },
    bastion: undefined,
    sshPrivateKey: "key",
    kubernetesVersion: "1.36.4",
    network: DEFAULT_NETWORK,
    clusterName: "phases",
    adminCidrs: ["192.0.2.0/24"],
    apiLoadBalancer: true,
  };
  const declared: Declared[] = [];
  const ctx: ClusterContext = {
    ...clusterContext("phases", args, 90, undefined as unknown as pulumi.Resource),
    step: (node, stepName, _script, _env, dependsOn) => {
      const id = `${node.name}/${stepName}`;
      declared.push({ id, after: dependsOn.map((d) => ids.get(d) ?? "?") });
      return fake(id);
    },
  };
  return { ctx, declared, fake };
}

const node = (name: string, role: ClusterNode["role"], disks = 0): ClusterNode => ({
  name,
  role,
  pool: role === "control-plane" ? "control-plane" : "workers",
  disks,
});
const controlPlanes = ["cp-0", "cp-1", "cp-2"].map((n) => node(n, "control-plane"));

/** The earlier phases' outputs as placeholders: what a later phase is handed. */
function earlier(nodes: ClusterNode[], fake: (id: string) => command.remote.Command) {
  const perHost = (step: string, on: ClusterNode[]): HostSteps => new Map(on.map((n) => [n.name, fake(`${n.name}/${step}`)]));
  const init: Initialised = { step: fake("cp-0/init"), bootstrapToken: pulumi.secret("abcdef.0123456789abcdef") };
  const token: JoinToken = { step: fake("cp-0/token"), joinRound: pulumi.output("") };
  const cps = nodes.filter((n) => n.role === "control-plane");
  return {
    prepare: perHost("prepare", nodes),
    kubeletConfig: perHost("kubelet-config", nodes),
    pki: perHost("pki", cps),
    kubeVip: new Map() as HostSteps,
    clusterPki: { discoveryHash: pulumi.output("sha256:00") } as unknown as ClusterPki,
    init,
    token,
  };
}

describe("cluster bootstrap phases", () => {
  it("control-plane joins are chained: each after the previous one's (the second after init), and after every control plane's preparation", async () => {
    let declared: Declared[] = [];
    let last: string | undefined;
    await runMocked(() => {
      const f = fakeContext(controlPlanes);
      const joined = joinControlPlanes(f.ctx, earlier(controlPlanes, f.fake));
      declared = f.declared;
      last = [...joined.joins.keys()].join(",");
    });
    expect(declared.map((d) => d.id)).toEqual(["cp-1/join", "cp-2/join"]);
    expect(last).toBe("cp-1,cp-2");
    const [second, third] = declared;
    expect(second.after).toEqual([
      "cp-1/prepare",
      "cp-1/kubelet-config",
      "cp-1/pki",
      "cp-0/prepare",
      "cp-1/prepare",
      "cp-2/prepare",
      "cp-0/init",
      "cp-0/token",
      "cp-0/init",
    ]);
    expect(third.after.at(-1)).toBe("cp-1/join");
    expect(third.after).toEqual(expect.arrayContaining(["cp-0/prepare", "cp-1/prepare", "cp-2/prepare"]));
  });

  it("worker joins wait for the last control-plane join and the control planes' upgrades, never for another worker", async () => {
    const workers = ["w-0", "w-1", "w-2"].map((n) => node(n, "worker"));
    const nodes = [...controlPlanes, ...workers];
    let declared: Declared[] = [];
    let joins: string[] = [];
    await runMocked(() => {
      const f = fakeContext(nodes);
      const before = earlier(nodes, f.fake);
      const controlPlanesJoined = joinControlPlanes(f.ctx, before);
      const controlPlanesUpgraded = upgradeControlPlanes(f.ctx, { init: before.init, controlPlanesJoined });
      joins = [...joinWorkers(f.ctx, { ...before, controlPlanesJoined, controlPlanesUpgraded }).keys()];
      declared = f.declared;
    });
    expect(joins).toEqual(["w-0", "w-1", "w-2"]);
    // The control planes' upgrades: the first after init, each other after its join and the previous upgrade.
    expect(declared.filter((d) => d.id.endsWith("/upgrade")).map((d) => [d.id, d.after])).toEqual([
      ["cp-0/upgrade", ["cp-0/init"]],
      ["cp-1/upgrade", ["cp-1/join", "cp-0/upgrade"]],
      ["cp-2/upgrade", ["cp-2/join", "cp-1/upgrade"]],
    ]);
    for (const w of workers) {
      const join = declared.find((d) => d.id === `${w.name}/join`)!;
      expect(join.after).toEqual([`${w.name}/prepare`, `${w.name}/kubelet-config`, "cp-0/init", "cp-0/token", "cp-2/join", "cp-2/upgrade"]);
      expect(join.after.filter((a) => a.startsWith("w-") && !a.startsWith(`${w.name}/`))).toEqual([]);
    }
  });

  it("worker upgrades: OSD workers one at a time, the others in batches alongside, each drained before and uncordoned after", async () => {
    const osd = ["osd-0", "osd-1", "osd-2"].map((n) => node(n, "worker", 1));
    const others = Array.from({ length: 12 }, (_, i) => node(`w-${i}`, "worker"));
    const nodes = [node("cp-0", "control-plane"), ...osd, ...others];
    let declared: Declared[] = [];
    let upgrades: string[] = [];
    await runMocked(() => {
      const f = fakeContext(nodes);
      const perWorker = (step: string): HostSteps => new Map([...osd, ...others].map((n) => [n.name, f.fake(`${n.name}/${step}`)]));
      const controlPlanesUpgraded: ControlPlanesUpgraded = {
        upgrades: new Map([["cp-0", f.fake("cp-0/upgrade")]]),
        last: f.fake("cp-0/upgrade"),
      };
      const result = upgradeWorkers(f.ctx, { controlPlanesUpgraded, workersJoined: perWorker("join"), nodes: perWorker("node") });
      upgrades = [...result.upgrades.keys()];
      declared = f.declared;
    });
    const after = (id: string) => declared.find((d) => d.id === id)!.after;
    // Drains and uncordons run on the first control plane, named after the worker.
    expect(after("cp-0/upgrade-drain-osd-0")).toEqual(["osd-0/join", "osd-0/node", "cp-0/upgrade"]);
    expect(after("osd-0/upgrade")).toEqual(["cp-0/upgrade-drain-osd-0"]);
    expect(after("cp-0/upgrade-uncordon-osd-0")).toEqual(["osd-0/upgrade"]);
    // One OSD worker at a time: each drain waits for the previous OSD worker's uncordon.
    expect(after("cp-0/upgrade-drain-osd-1")).toEqual(["osd-1/join", "osd-1/node", "cp-0/upgrade-uncordon-osd-0"]);
    expect(after("cp-0/upgrade-drain-osd-2")).toEqual(["osd-2/join", "osd-2/node", "cp-0/upgrade-uncordon-osd-1"]);
    // The others alongside, from the control planes' upgrade, in batches of two (a tenth of 12, rounded up).
    expect(after("cp-0/upgrade-drain-w-0")).toEqual(["w-0/join", "w-0/node", "cp-0/upgrade"]);
    expect(after("cp-0/upgrade-drain-w-1")).toEqual(["w-1/join", "w-1/node", "cp-0/upgrade"]);
    expect(after("cp-0/upgrade-drain-w-2")).toEqual(["w-2/join", "w-2/node", "cp-0/upgrade-uncordon-w-0", "cp-0/upgrade-uncordon-w-1"]);
    // No OSD worker waits for another worker's batch, nor the batches for an OSD worker.
    for (const d of declared.filter((x) => x.id.includes("drain-osd"))) expect(d.after.some((a) => /-w-\d+$/.test(a))).toBe(false);
    for (const d of declared.filter((x) => x.id.includes("drain-w-"))) expect(d.after.some((a) => a.includes("osd"))).toBe(false);
    expect(upgrades).toEqual([...osd, ...others].map((n) => n.name));
  });
});
