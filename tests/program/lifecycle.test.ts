/**
 * Lifecycle defects that only a real engine run shows, asserted on the render (the graph the engine gets):
 * a re-created VM is set up again, destroy and scale-in keep SSH and the API open until the host steps
 * that need them are gone, the API endpoint survives a change of the control-plane count, and the options
 * that decide a resource's lifecycle are visible to reviewers.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { render, RenderResult } from "../support/render";

jest.setTimeout(180_000);

interface Resource {
  urn: string;
  type: string;
  name: string;
  dependencies: string[];
  inputs: any;
  options?: Record<string, unknown>;
}

const resourcesOf = (result: RenderResult): Resource[] => {
  expect(result.stderr).toBe("");
  return JSON.parse(fs.readFileSync(path.join(result.dir, "resources.json"), "utf8"));
};
const envText = (result: RenderResult, host: string, step: string): string => {
  const dir = path.join(result.dir, "hosts", host);
  const file = fs.readdirSync(dir).find((f) => f.endsWith(`-${step}.env`));
  if (!file) throw new Error(`no ${step} step on ${host}`);
  return fs.readFileSync(path.join(dir, file), "utf8");
};
/** The one-line parameters of a step (multi-line ones: envText). */
const envOf = (result: RenderResult, host: string, step: string): Record<string, string> =>
  Object.fromEntries([...envText(result, host, step).matchAll(/^([A-Z_]+)='([^'\n]*)'$/gm)].map((m) => [m[1], m[2]]));

let production: RenderResult;
let resources: Resource[];
beforeAll(() => {
  production = render("production");
  resources = resourcesOf(production);
});
const byType = (type: string) => resources.filter((r) => r.type === type);
const steps = () => byType("command:remote:Command");

describe("a VM lost and re-created under the same name", () => {
  it("gives every step on that host the instance id, so a new instance re-runs them as updates", () => {
    const instances = byType("openstack:compute/instance:Instance");
    expect(instances.length).toBe(6);
    const ids = new Set<string>();
    for (const instance of instances) {
      const host = instance.inputs.name;
      for (const step of ["prepare", "join", "upgrade"].filter((s) =>
        fs.readdirSync(path.join(production.dir, "hosts", host)).some((f) => f.endsWith(`-${s}.env`)),
      )) {
        const id = envOf(production, host, step).MACHINE_ID;
        expect({ host, step, id: id.length > 0 }).toEqual({ host, step, id: true });
        ids.add(`${host}=${id}`);
      }
    }
    // One id per host, the same in all its steps.
    expect(new Set([...ids].map((e) => e.split("=")[0])).size).toBe(ids.size);
  });

  it("re-labels a re-created worker's node, and does not run init again while other control planes run", () => {
    const cp0 = "dare-production-cp-0";
    const worker = "dare-production-workers-0";
    const workerMachine = envOf(production, worker, "prepare").MACHINE_ID;
    expect(workerMachine).toMatch(/.+/);
    expect(envOf(production, cp0, `node-${worker}`).NODE_MACHINE_ID).toBe(workerMachine);
    expect(envOf(production, cp0, "init").MACHINE_ID).toBeUndefined();
    const testbed = render("testbed");
    expect(envOf(testbed, "dare-testbed-cp-0", "init").MACHINE_ID).toMatch(/.+/);
    expect(envOf(testbed, "dare-testbed-cp-0", "init").MACHINE_ID).toBe(envOf(testbed, "dare-testbed-cp-0", "prepare").MACHINE_ID);
  });
});

describe("the join token", () => {
  it("is minted for every joining machine and never expires by itself", () => {
    const token = steps().find((s) => s.name === "k8s-dare-production-cp-0-token")!;
    const machines = byType("openstack:compute/instance:Instance")
      .filter((i) => i.name !== "dare-production-cp-0")
      .map((i) => `${i.inputs.name}=${envOf(production, i.inputs.name, "prepare").MACHINE_ID}`);
    // A re-created machine (a new id) mints it again, as a new host does.
    expect(token.inputs.triggers[0].split(",").sort()).toEqual(machines.sort());
    expect(envText(production, "dare-production-cp-0", "token")).toMatch(/^ {4}ttl: 0s$/m);
  });

  it("keeps its secret half a secret in the state (a RandomPassword, not a RandomString)", () => {
    const secretHalf = resources.find((r) => r.name === "dare-production-token-secret")!;
    expect(secretHalf.type).toBe("random:index/randomPassword:RandomPassword");
    expect(secretHalf.options?.additionalSecretOutputs).toContain("result");
  });

  it("is revoked only after every join of the round, so a failed join can be retried any time", () => {
    const revoke = steps().find((s) => s.name === "k8s-dare-production-cp-0-token-revoke")!;
    const joins = steps()
      .filter((s) => s.name.endsWith("-join"))
      .map((s) => s.urn);
    expect(joins).toHaveLength(5);
    expect(joins.filter((u) => !revoke.dependencies.includes(u))).toEqual([]);
    expect(revoke.inputs.triggers).toEqual(steps().find((s) => s.name === "k8s-dare-production-cp-0-token")!.inputs.triggers);
  });
});

describe("destroy and scale-in", () => {
  it("make every host step depend on the SSH and API firewall rules and its host's floating-IP association", () => {
    const rules = byType("openstack:networking/secGroupRule:SecGroupRule")
      .filter((r) => [22, 6443].some((port) => r.inputs.portRangeMin <= port && port <= r.inputs.portRangeMax))
      .map((r) => r.urn);
    expect(rules.length).toBe(7); // SSH from 2 admin ranges and the control planes (bastion); the API from 2 admin ranges, the nodes and the subnet (LB)
    const cp0Association = byType("openstack:networking/floatingIpAssociate:FloatingIpAssociate").find(
      (r) => r.name === "dare-production-cp-0-fip",
    )!;
    for (const step of steps()) {
      const missing = rules.filter((u) => !step.dependencies.includes(u));
      expect({ step: step.name, missing }).toEqual({ step: step.name, missing: [] });
      // cp-0 is the SSH entry host of every other host.
      expect({ step: step.name, viaBastion: step.dependencies.includes(cp0Association.urn) }).toEqual({
        step: step.name,
        viaBastion: true,
      });
    }
  });

  it("make the steps that reach the API depend on every part of the API load balancer", () => {
    const lbParts = resources
      .filter(
        (r) =>
          r.type.startsWith("openstack:loadbalancer/") ||
          (r.type === "openstack:networking/floatingIpAssociate:FloatingIpAssociate" && r.name === "dare-production-api-fip"),
      )
      .map((r) => r.urn);
    expect(lbParts.length).toBe(8); // load balancer, listener, pool, monitor, 3 members, floating-IP association
    // Joins and the node steps' drains reach the API through it; so do upgrades (kubeadm), the worker
    // upgrades' drains and uncordons on the first control plane, the kubelet-serving approvals, and the OSD
    // removals (ceph in the toolbox through the API), per worker and per disk.
    const apiSteps = steps().filter((s) => /-join$|-upgrade$|-node-|-osd-|-upgrade-(drain|uncordon)-|-kubelet-serving-/.test(s.name));
    expect(apiSteps.length).toBe(5 + 6 + 5 + 3 * 2 + 3 * 2 + 6); // joins, upgrades, node steps, OSD steps, drain/uncordon, approvals
    for (const step of apiSteps) {
      const missing = lbParts.filter((u) => !step.dependencies.includes(u));
      expect({ step: step.name, missing }).toEqual({ step: step.name, missing: [] });
    }
  });
});

describe("removing a worker or a disk that holds Ceph OSDs", () => {
  const step = (name: string) => steps().find((s) => s.name === name)!;
  const worker = (i: number) => `dare-production-workers-${i}`;

  it("takes the OSDs out of Ceph before the drain and reset (the OSD steps depend on what must outlive them)", () => {
    for (let i = 0; i < 3; i++) {
      const osdHost = step(`k8s-dare-production-cp-0-osd-${worker(i)}`);
      const osdDisk = step(`k8s-dare-production-cp-0-osd-${worker(i)}-disk-0`);
      // Deleted first: the node step (drain, delete Node) and, through it, the join step (reset) come after.
      expect(osdHost.dependencies).toEqual(expect.arrayContaining([step(`k8s-dare-production-cp-0-node-${worker(i)}`).urn, osdDisk.urn]));
      expect(step(`k8s-dare-production-cp-0-node-${worker(i)}`).dependencies).toContain(step(`k8s-${worker(i)}-join`).urn);
      // The disk's step names the disk as Rook has it, and is deleted before the detach and the volume: the
      // IaaS layer's disk path derives from both.
      const volume = byType("openstack:blockstorage/volume:Volume").find((v) => v.inputs.name === `${worker(i)}-disk-0`)!;
      const attachment = byType("openstack:compute/volumeAttach:VolumeAttach").find((a) => a.name === `${worker(i)}-disk-0`)!;
      expect(osdDisk.dependencies).toEqual(expect.arrayContaining([volume.urn, attachment.urn]));
      expect(envOf(production, "dare-production-cp-0", `osd-${worker(i)}-disk-0`)).toMatchObject({
        OSD_HOST: worker(i),
        OSD_DEVICE: expect.stringMatching(/^\/dev\/disk\/dare\/[0-9a-f-]{36}$/),
        CEPH_CLEAN_TIMEOUT: "3600",
      });
      expect(osdHost.inputs.delete).toContain("ceph osd purge");
    }
    // Control planes hold no disks here: no OSD steps for them.
    expect(steps().filter((s) => /-osd-dare-production-cp-/.test(s.name))).toEqual([]);
  });

  it("is refused by the configuration loader when fewer hosts with disks than ceph.replicas would remain", () => {
    const two = render("production", ["--set", "nodes.pools[0].count=2"]);
    expect(two.status).not.toBe(0);
    expect(two.stderr).toContain("ceph.replicas");
    expect(two.stderr).toContain("2 host(s) have disks: each replica needs its own host, so at most 2");
    // Fewer disks per host is fine while every host keeps one.
    expect(render("production", ["--set", "nodes.pools[0].count=4"]).status).toBe(0);
  });
});

describe("worker upgrades with Ceph OSDs", () => {
  /** Every upgrade step's upgrade steps before it (transitively), by host. */
  const upgradeOrder = (result: RenderResult) => {
    const all = resourcesOf(result).filter((r) => r.type === "command:remote:Command");
    const byUrn = new Map(all.map((r) => [r.urn, r]));
    const upgrades = all.filter((r) => r.name.endsWith("-upgrade"));
    const hostOf = (r: Resource) => r.name.replace(/^k8s-/, "").replace(/-upgrade$/, "");
    const before = new Map<string, Set<string>>();
    const visit = (urn: string, into: Set<string>) => {
      for (const d of byUrn.get(urn)?.dependencies ?? []) {
        const dep = byUrn.get(d);
        if (!dep || into.has(d)) continue;
        into.add(d);
        visit(d, into);
      }
    };
    for (const u of upgrades) {
      const deps = new Set<string>();
      visit(u.urn, deps);
      before.set(
        hostOf(u),
        new Set(
          [...deps]
            .map((d) => byUrn.get(d)!)
            .filter((r) => r.name.endsWith("-upgrade"))
            .map(hostOf),
        ),
      );
    }
    return before;
  };
  const ordered = (before: Map<string, Set<string>>, a: string, b: string) => before.get(a)!.has(b) || before.get(b)!.has(a);

  it("drain one OSD host at a time, however many workers; workers without OSDs still go in batches alongside", () => {
    const mixed = upgradeOrder(
      render("production", [
        "--set",
        "nodes.pools[0].count=4",
        "--set",
        'nodes.pools[1]={"name":"compute","count":27,"flavor":"m1.xlarge"}',
      ]),
    );
    const osd = [0, 1, 2, 3].map((i) => `dare-production-workers-${i}`);
    const compute = Array.from({ length: 27 }, (_, i) => `dare-production-compute-${i}`);
    for (const a of osd) for (const b of osd) if (a !== b) expect({ a, b, ordered: ordered(mixed, a, b) }).toEqual({ a, b, ordered: true });
    // After every control plane; no worker waits for an OSD host, nor an OSD host for one of them.
    const controlPlanes = [0, 1, 2].map((i) => `dare-production-cp-${i}`);
    for (const w of [...osd, ...compute]) expect([...mixed.get(w)!].filter((h) => controlPlanes.includes(h)).sort()).toEqual(controlPlanes);
    for (const w of compute) expect([...mixed.get(w)!].filter((h) => osd.includes(h))).toEqual([]);
    for (const w of osd) expect([...mixed.get(w)!].filter((h) => compute.includes(h))).toEqual([]);
    // 27 workers without OSDs: batches of 3 (a tenth), 9 one after another.
    expect(compute.filter((w) => mixed.get(w)!.size === 3)).toEqual(compute.slice(0, 3));
    expect(Math.max(...compute.map((w) => [...mixed.get(w)!].filter((h) => compute.includes(h)).length))).toBe(24);

    const thirty = upgradeOrder(render("production", ["--set", "nodes.pools[0].count=30"]));
    const workers = Array.from({ length: 30 }, (_, i) => `dare-production-workers-${i}`);
    // Every worker holds an OSD: 30 drains one after another, after the 3 control planes.
    expect(workers.map((w) => thirty.get(w)!.size)).toEqual(workers.map((_, i) => 3 + i));
  });
});

describe("the API endpoint", () => {
  it("is the load balancer whatever the control-plane count, so 1 → 3 control planes changes no address", () => {
    const one = render("production", ["--set", "nodes.controlPlane.count=1", "--set", "ceph.monitors=1"]);
    const apiUrl = (r: RenderResult) => JSON.parse(fs.readFileSync(path.join(r.dir, "outputs.json"), "utf8")).apiServerUrl;
    expect(apiUrl(one)).toBe(apiUrl(production));
    expect(resourcesOf(one).filter((r) => r.type === "openstack:loadbalancer/loadBalancer:LoadBalancer")).toHaveLength(1);
  });

  it("names the cluster to the Kubernetes provider, so a kubeconfig change is an update, not a replacement of every object", () => {
    const provider = resources.find((r) => r.type === "pulumi:providers:kubernetes")!;
    expect(provider.inputs.clusterIdentifier).toBe("dare-production");
  });
});

describe("drains", () => {
  it("can finish on the testbed: a one-instance Keycloak database has no PodDisruptionBudget of its own", () => {
    const database = (r: RenderResult) =>
      YAML.parse(fs.readFileSync(path.join(r.dir, "kubernetes", "keycloak", "cluster-keycloak-db.yaml"), "utf8"));
    const testbed = database(render("testbed"));
    expect(testbed.spec.instances).toBe(1);
    expect(testbed.spec.enablePDB).toBe(false);
    expect(database(production).spec.enablePDB).toBeUndefined();
  });
});

describe("long-lived connections", () => {
  it("stay open for an hour through the API load balancer, the ingress load balancer and Traefik", () => {
    const listener = byType("openstack:loadbalancer/listener:Listener")[0];
    expect([listener.inputs.timeoutClientData, listener.inputs.timeoutMemberData]).toEqual([3_600_000, 3_600_000]);
    const traefik = YAML.parse(fs.readFileSync(path.join(production.dir, "helm", "traefik.yaml"), "utf8")).values;
    expect(traefik.service.annotations).toMatchObject({
      "loadbalancer.openstack.org/timeout-client-data": "3600000",
      "loadbalancer.openstack.org/timeout-member-data": "3600000",
    });
    expect(traefik.ports.websecure.transport.respondingTimeouts.readTimeout).toBe("3600s");
  });
});

describe("resource options in the render", () => {
  it("record what decides a resource's lifecycle", () => {
    const credential = byType("openstack:identity/applicationCredential:ApplicationCredential")[0];
    expect(credential.options).toMatchObject({ deleteBeforeReplace: true });
    const instance = byType("openstack:compute/instance:Instance")[0];
    expect(instance.options).toMatchObject({ ignoreChanges: ["imageName", "userData"] });
    expect(byType("tls:index/privateKey:PrivateKey")[0].options?.additionalSecretOutputs).toContain("privateKeyPem");
    // Options nobody set are left out.
    expect(byType("openstack:networking/network:Network")[0].options).toBeUndefined();
  });
});
