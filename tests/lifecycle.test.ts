/**
 * Lifecycle defects that only a real engine run shows, asserted on the render (the graph the engine gets):
 * a re-created VM is set up again, destroy and scale-in keep SSH and the API open until the host steps
 * that need them are gone, the API endpoint survives a change of the control-plane count, and the options
 * that decide a resource's lifecycle are visible to reviewers.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { render, RenderResult } from "./support/render";

jest.setTimeout(180_000);

interface Resource { urn: string; type: string; name: string; dependencies: string[]; inputs: any; options?: Record<string, unknown> }

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
      for (const step of ["prepare", "join", "upgrade"].filter((s) => fs.readdirSync(path.join(production.dir, "hosts", host)).some((f) => f.endsWith(`-${s}.env`)))) {
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
    const machines = byType("openstack:compute/instance:Instance").filter((i) => i.name !== "dare-production-cp-0")
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
    const joins = steps().filter((s) => s.name.endsWith("-join")).map((s) => s.urn);
    expect(joins).toHaveLength(5);
    expect(joins.filter((u) => !revoke.dependencies.includes(u))).toEqual([]);
    expect(revoke.inputs.triggers).toEqual(steps().find((s) => s.name === "k8s-dare-production-cp-0-token")!.inputs.triggers);
  });
});

describe("destroy and scale-in", () => {
  it("make every host step depend on the SSH and API firewall rules and its host's floating-IP association", () => {
    const rules = byType("openstack:networking/secGroupRule:SecGroupRule")
      .filter((r) => [22, 6443].some((port) => r.inputs.portRangeMin <= port && port <= r.inputs.portRangeMax)).map((r) => r.urn);
    expect(rules.length).toBe(7); // SSH from 2 admin ranges and the control planes (bastion); the API from 2 admin ranges, the nodes and the subnet (LB)
    const cp0Association = byType("openstack:networking/floatingIpAssociate:FloatingIpAssociate").find((r) => r.name === "dare-production-cp-0-fip")!;
    for (const step of steps()) {
      const missing = rules.filter((u) => !step.dependencies.includes(u));
      expect({ step: step.name, missing }).toEqual({ step: step.name, missing: [] });
      // cp-0 is the SSH entry host of every other host.
      expect({ step: step.name, viaBastion: step.dependencies.includes(cp0Association.urn) }).toEqual({ step: step.name, viaBastion: true });
    }
  });

  it("make the steps that reach the API depend on every part of the API load balancer", () => {
    const lbParts = resources.filter((r) => r.type.startsWith("openstack:loadbalancer/")
      || r.type === "openstack:networking/floatingIpAssociate:FloatingIpAssociate" && r.name === "dare-production-api-fip").map((r) => r.urn);
    expect(lbParts.length).toBe(8); // load balancer, listener, pool, monitor, 3 members, floating-IP association
    // Joins and the node steps' drains reach the API through it; so do worker upgrades (their drain).
    const apiSteps = steps().filter((s) => /-join$|-workers-\d+-upgrade$|-node-/.test(s.name));
    expect(apiSteps.length).toBe(5 + 3 + 5);
    for (const step of apiSteps) {
      const missing = lbParts.filter((u) => !step.dependencies.includes(u));
      expect({ step: step.name, missing }).toEqual({ step: step.name, missing: [] });
    }
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
    const database = (r: RenderResult) => YAML.parse(fs.readFileSync(path.join(r.dir, "kubernetes", "keycloak", "cluster-keycloak-db.yaml"), "utf8"));
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
      "loadbalancer.openstack.org/timeout-client-data": "3600000", "loadbalancer.openstack.org/timeout-member-data": "3600000",
    });
    expect(traefik.ports.websecure.transport.respondingTimeouts.readTimeout).toBe("3600s");
  });
});

describe("resource options in the render", () => {
  it("record what decides a resource's lifecycle", () => {
    const credential = byType("openstack:identity/applicationCredential:ApplicationCredential")[0];
    expect(credential.options).toMatchObject({ deleteBeforeReplace: true });
    const instance = byType("openstack:compute/instance:Instance")[0];
    expect(instance.options).toMatchObject({ ignoreChanges: ["imageName"] });
    expect(byType("tls:index/privateKey:PrivateKey")[0].options?.additionalSecretOutputs).toContain("privateKeyPem");
    // Options nobody set are left out.
    expect(byType("openstack:networking/network:Network")[0].options).toBeUndefined();
  });
});
