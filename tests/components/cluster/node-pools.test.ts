/**
 * Pools with labels, taints and kubelet settings, and the control-plane components' extra arguments:
 * the configuration's validation, what kubeadm is given at init and join, and the steps that keep them in
 * step on later updates (their scripts run on real hosts in tests/hosts/node-pools.test.ts and against a
 * real API server in tests/engine/node-labels.test.ts).
 */
import * as YAML from "yaml";
import { KubernetesCluster } from "../../../components/cluster";
import { clusterNodes } from "../../../lib/host-plan";
import { ConfigError, ConfigSource, DEFAULT_NETWORK, EXAMPLE_HOST_KEY, loadConfig, NodesSpec, Problem } from "../../../lib/config";
import { controlPlaneConfig, initConfig, joinConfig, PROGRAM_EXTRA_ARGS } from "../../../components/cluster/kubeadm-config";
import {
  CONTROL_PLANE_COMPONENTS,
  extraArgProblem,
  KUBELET_DROPIN_FILE,
  kubeletDropIn,
  labelKeyProblem,
  parseTaint,
} from "../../../lib/node-settings";
import { Infrastructure } from "../../../components/infrastructure";
import { RecordedResource } from "../../../tools/mocks";
import { runMocked } from "../../support/mocked";
import { SITE_CONFIG } from "../../support/site";
import { stepEnv } from "../../support/step-env";

function source(values: Record<string, unknown>): ConfigSource {
  return {
    stack: "test",
    get: (key) =>
      values[key] === undefined ? undefined : typeof values[key] === "string" ? (values[key] as string) : JSON.stringify(values[key]),
  };
}
const valid = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };
const pool = (over: Record<string, unknown> = {}) => ({
  name: "workers",
  count: 2,
  flavor: "m1.large",
  disks: { count: 1, sizeGb: 50 },
  ...over,
});

function problemsOf(values: Record<string, unknown>): Problem[] {
  try {
    loadConfig(source({ ...valid, ...values }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the configuration to be refused");
}
function expectProblem(values: Record<string, unknown>, key: string, why: RegExp): void {
  const match = problemsOf(values).find((p) => p.key === key);
  expect(match).toBeDefined();
  expect(match!.why).toMatch(why);
  expect(match!.example.length).toBeGreaterThan(0);
}

describe("configuration: pool labels, taints and kubelet settings", () => {
  const settings = {
    labels: { "example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme", "topology.kubernetes.io/zone": "z1", tier: 2 },
    taints: ["example.org/gpu=true:NoSchedule", "dedicated:PreferNoSchedule"],
    kubelet: {
      maxPods: 200,
      systemReserved: { cpu: "500m", memory: "1Gi" },
      kubeReserved: { cpu: 1, memory: "512Mi", pid: 1000 },
      evictionHard: { "memory.available": "500Mi", "nodefs.available": "10%" },
      featureGates: { ExampleGate: true },
    },
  };

  it("reads a pool's settings", () => {
    const config = loadConfig(source({ ...valid, nodes: { pools: [pool(settings)] } }));
    expect(config.nodes.pools[0].settings).toEqual({
      labels: { "example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme", "topology.kubernetes.io/zone": "z1", tier: "2" },
      taints: [
        { key: "example.org/gpu", value: "true", effect: "NoSchedule" },
        { key: "dedicated", value: "", effect: "PreferNoSchedule" },
      ],
      kubelet: {
        maxPods: 200,
        systemReserved: { cpu: "500m", memory: "1Gi" },
        kubeReserved: { cpu: "1", memory: "512Mi", pid: "1000" },
        evictionHard: { "memory.available": "500Mi", "nodefs.available": "10%" },
        featureGates: { ExampleGate: true },
      },
    });
    // A pool without them has none.
    expect(loadConfig(source(valid)).nodes.pools[0].settings).toBeUndefined();
  });

  it.each([
    ["node-role.kubernetes.io/gpu", /NodeRestriction/],
    ["kubernetes.io/hostname", /kubernetes.io and k8s.io labels are refused/],
    ["foo.k8s.io/x", /refused/],
    ["dare.io/pool", /the program's own/],
    ["Bad_Prefix/x", /prefix/],
    ["-bad", /name must be/],
    ["a".repeat(64), /name must be/],
  ])("refuses the label key %s", (key, why) => {
    expectProblem({ nodes: { pools: [pool({ labels: { [key]: "x" } })] } }, `nodes.pools[0].labels.${key}`, why);
  });

  it("refuses a label value Kubernetes would refuse, and a labels list", () => {
    expectProblem(
      { nodes: { pools: [pool({ labels: { "example.org/x": "has space" } })] } },
      "nodes.pools[0].labels.example.org/x",
      /label value/,
    );
    expectProblem({ nodes: { pools: [pool({ labels: ["a=b"] })] } }, "nodes.pools[0].labels", /object/);
  });

  it.each([
    ["gpu=true", /key=value:Effect/],
    ["gpu=true:NoWay", /effect "NoWay"/],
    ["node.kubernetes.io/unreachable:NoExecute", /belong to Kubernetes/],
    ["gpu=a b:NoSchedule", /taint value/],
  ])("refuses the taint %s", (taint, why) => {
    expectProblem({ nodes: { pools: [pool({ taints: [taint] })] } }, "nodes.pools[0].taints[0]", why);
  });

  it("refuses two taints with the same key and effect", () => {
    expectProblem(
      { nodes: { pools: [pool({ taints: ["gpu=a:NoSchedule", "gpu=b:NoSchedule"] })] } },
      "nodes.pools[0].taints[1]",
      /one per key and effect/,
    );
  });

  it("accepts known kubelet fields only, each checked", () => {
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { cgroupDriver: "cgroupfs" } })] } },
      "nodes.pools[0].kubelet.cgroupDriver",
      /unknown kubelet setting \(known: maxPods/,
    );
    expectProblem({ nodes: { pools: [pool({ kubelet: { maxPods: 0 } })] } }, "nodes.pools[0].kubelet.maxPods", /1 to 10000/);
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { systemReserved: { gpu: "1" } } })] } },
      "nodes.pools[0].kubelet.systemReserved.gpu",
      /unknown key \(known: cpu, memory/,
    );
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { kubeReserved: { memory: "lots" } } })] } },
      "nodes.pools[0].kubelet.kubeReserved.memory",
      /quantity/,
    );
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { evictionHard: { "memory.available": "ten" } } })] } },
      "nodes.pools[0].kubelet.evictionHard.memory.available",
      /percentage/,
    );
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { featureGates: { ExampleGate: "yes" } } })] } },
      "nodes.pools[0].kubelet.featureGates.ExampleGate",
      /true or false/,
    );
    expectProblem(
      { nodes: { pools: [pool({ kubelet: { featureGates: { "not-a-gate": true } } })] } },
      "nodes.pools[0].kubelet.featureGates.not-a-gate",
      /feature gate name/,
    );
  });

  it("gives existing hosts their pool's settings, a worker host's own over them, and refuses them on control planes", () => {
    const host = (name: string, role: string, over: Record<string, unknown> = {}) => ({
      name,
      role,
      address: `10.0.0.${name.length}${name.slice(-1)}`,
      privateAddress: `10.0.0.${name.length}${name.slice(-1)}`,
      hostKey: EXAMPLE_HOST_KEY,
      disks: ["/dev/sdb"],
      ...over,
    });
    const values = {
      ...valid,
      provider: "existing",
      apiLoadBalancer: false,
      ingressLoadBalancer: false,
      nodes: { pools: [pool({ labels: { "example.org/a": "1" }, taints: ["t=1:NoSchedule"], kubelet: { maxPods: 50 } })] },
      hosts: [
        host("cp-0", "control-plane"),
        host("w-1", "workers"),
        host("w-2", "workers", { labels: { "example.org/b": "2" }, taints: [], kubelet: { maxPods: 80 } }),
      ],
    };
    const config = loadConfig(source(values));
    const nodes = clusterNodes(config);
    expect(nodes.find((n) => n.name === "cp-0")!.settings).toBeUndefined();
    expect(nodes.find((n) => n.name === "w-1")!.settings).toEqual({
      labels: { "example.org/a": "1" },
      taints: [{ key: "t", value: "1", effect: "NoSchedule" }],
      kubelet: { maxPods: 50 },
    });
    expect(nodes.find((n) => n.name === "w-2")!.settings).toEqual({
      labels: { "example.org/a": "1", "example.org/b": "2" },
      taints: [],
      kubelet: { maxPods: 80 },
    });

    const refused = problemsOf({
      ...values,
      hosts: [host("cp-0", "control-plane", { taints: ["t=1:NoSchedule"] }), host("w-1", "workers")],
    });
    expect(refused.find((p) => p.key === "hosts[0]")!.why).toMatch(/workers only/);
  });

  it("gives OpenStack pools' nodes their pool's settings", () => {
    const config = loadConfig(
      source({
        ...valid,
        nodes: { controlPlane: { count: 1 }, pools: [pool({ count: 1, taints: ["t:NoExecute"] }), pool({ name: "plain", count: 1 })] },
      }),
    );
    const nodes = clusterNodes(config);
    expect(nodes.map((n) => [n.name, n.settings?.taints.length])).toEqual([
      ["dare-test-cp-0", undefined],
      ["dare-test-workers-0", 1],
      ["dare-test-plain-0", 0],
    ]);
  });
});

describe("configuration: control-plane extra arguments", () => {
  it("reads them per component, values as strings", () => {
    const config = loadConfig(
      source({
        ...valid,
        controlPlaneExtraArgs: {
          apiServer: { "service-node-port-range": "30000-32767", "max-requests-inflight": 800 },
          scheduler: { v: 2 },
        },
      }),
    );
    expect(config.controlPlaneExtraArgs).toEqual({
      apiServer: { "service-node-port-range": "30000-32767", "max-requests-inflight": "800" },
      scheduler: { v: "2" },
    });
    expect(loadConfig(source(valid)).controlPlaneExtraArgs).toEqual({});
  });

  it("refuses every flag the program sets itself, read from the same list the configuration is rendered from", () => {
    for (const component of CONTROL_PLANE_COMPONENTS) {
      for (const arg of PROGRAM_EXTRA_ARGS[component])
        expect([component, arg.name, extraArgProblem(component, arg.name)]).toEqual([component, arg.name, expect.stringMatching(/./)]);
    }
    expectProblem(
      { controlPlaneExtraArgs: { apiServer: { profiling: "true" } } },
      "controlPlaneExtraArgs.apiServer.profiling",
      /program sets this flag itself/,
    );
  });

  it.each([
    ["apiServer", "authorization-mode", /kubeadm sets/],
    ["apiServer", "anonymous-auth", /weaken/],
    ["apiServer", "encryption-provider-config", /program sets/],
    ["apiServer", "audit-log-maxage", /program sets/],
    ["apiServer", "audit-webhook-config-file", /weaken/],
    ["apiServer", "tls-cipher-suites", /weaken/],
    ["apiServer", "disable-admission-plugins", /weaken/],
    ["apiServer", "enable-admission-plugins", /kubeadm sets/],
    ["controllerManager", "cluster-signing-duration", /weaken/],
    ["scheduler", "authorization-always-allow-paths", /weaken/],
    ["scheduler", "--v", /not a flag name/],
  ])("refuses %s flag %s", (component, flag, why) => {
    expectProblem({ controlPlaneExtraArgs: { [component]: { [flag]: "x" } } }, `controlPlaneExtraArgs.${component}.${flag}`, why);
  });

  it("refuses an unknown component and a multi-line value", () => {
    expectProblem(
      { controlPlaneExtraArgs: { etcd: { "quota-backend-bytes": "8589934592" } } },
      "controlPlaneExtraArgs.etcd",
      /unknown component/,
    );
    expectProblem(
      { controlPlaneExtraArgs: { apiServer: { "service-node-port-range": "1\n2" } } },
      "controlPlaneExtraArgs.apiServer.service-node-port-range",
      /one-line/,
    );
  });
});

describe("node-settings helpers", () => {
  it("knows Kubernetes' label rules", () => {
    expect(labelKeyProblem("kubelet.kubernetes.io/x")).toBeUndefined();
    expect(labelKeyProblem("sub.node.kubernetes.io/x")).toBeUndefined();
    expect(labelKeyProblem("node.kubernetes.io/instance-type")).toBeUndefined();
    expect(labelKeyProblem("kubernetes.io/arch")).toMatch(/refused/);
    expect(parseTaint("a.example/b=c:NoExecute")).toEqual({ key: "a.example/b", value: "c", effect: "NoExecute" });
  });

  it("renders the kubelet drop-in, or nothing without settings", () => {
    expect(kubeletDropIn({})).toBe("");
    expect(YAML.parse(kubeletDropIn({ maxPods: 200, featureGates: { ExampleGate: false } }))).toEqual({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      maxPods: 200,
      featureGates: { ExampleGate: false },
    });
  });
});

const API = { publicAddress: "203.0.113.5", privateAddress: "10.0.0.5", port: 6443 };
const CLUSTER_SETTINGS = {
  clusterName: "c",
  kubernetesVersion: "1.36.4",
  apiServer: API,
  network: { podCidr: "10.244.0.0/16", serviceCidr: "10.96.0.0/12" },
  externalCloudProvider: false,
  controlPlaneExtraArgs: {
    apiServer: { "service-node-port-range": "30000-32767" },
    controllerManager: { "node-monitor-grace-period": "50s" },
  },
};
const NODE_SETTINGS = {
  labels: { "example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme" },
  taints: [
    { key: "gpu", value: "true", effect: "NoSchedule" as const },
    { key: "d", value: "", effect: "NoExecute" as const },
  ],
};

describe("kubeadm's configuration", () => {
  it("registers a worker with its pool's labels (kubelet node-labels) and taints", () => {
    const join = YAML.parse(
      joinConfig(CLUSTER_SETTINGS, { name: "w-0", privateAddress: "10.0.0.7", settings: NODE_SETTINGS }, "sha256:" + "0".repeat(64), false),
    );
    expect(join.nodeRegistration.kubeletExtraArgs).toContainEqual({
      name: "node-labels",
      value: "example.org/gpu=a100,node.kubernetes.io/storage=nvme",
    });
    expect(join.nodeRegistration.taints).toEqual([
      { key: "gpu", value: "true", effect: "NoSchedule" },
      { key: "d", effect: "NoExecute" },
    ]);
  });

  it("leaves kubeadm's default taints alone without pool taints (an empty list would untaint control planes)", () => {
    const join = YAML.parse(joinConfig(CLUSTER_SETTINGS, { name: "cp-1", privateAddress: "10.0.0.8" }, "sha256:" + "0".repeat(64), true));
    expect(join.nodeRegistration).not.toHaveProperty("taints");
    expect(join.nodeRegistration.kubeletExtraArgs.map((a: { name: string }) => a.name)).not.toContain("node-labels");
  });

  it("gives the components the program's flags, then the operator's, in init and in the reconfiguration", () => {
    for (const text of [
      initConfig(CLUSTER_SETTINGS, { name: "cp-0", privateAddress: "10.0.0.5" }),
      controlPlaneConfig(CLUSTER_SETTINGS, { name: "cp-0", privateAddress: "10.0.0.5" }),
    ]) {
      const cluster = YAML.parseAllDocuments(text)
        .map((d) => d.toJS())
        .find((d) => d.kind === "ClusterConfiguration");
      expect(cluster.apiServer.extraArgs).toEqual([
        ...PROGRAM_EXTRA_ARGS.apiServer,
        { name: "service-node-port-range", value: "30000-32767" },
      ]);
      expect(cluster.controllerManager.extraArgs).toEqual([
        ...PROGRAM_EXTRA_ARGS.controllerManager,
        { name: "node-monitor-grace-period", value: "50s" },
      ]);
      expect(cluster.scheduler.extraArgs).toEqual(PROGRAM_EXTRA_ARGS.scheduler);
    }
    const [init] = YAML.parseAllDocuments(controlPlaneConfig(CLUSTER_SETTINGS, { name: "cp-1", privateAddress: "10.0.0.8" })).map((d) =>
      d.toJS(),
    );
    // The reconfiguration creates no token and speaks for this control plane's own API server.
    expect(init).not.toHaveProperty("bootstrapTokens");
    expect(init.localAPIEndpoint).toEqual({ advertiseAddress: "10.0.0.8", bindPort: 6443 });
  });
});

// ---- The steps ----

const CLUSTER = "np";
const NETWORK = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
async function build(poolOver: Record<string, unknown>, controlPlanes = 3, extraArgs = {}): Promise<RecordedResource[]> {
  const config = loadConfig(
    source({ ...valid, nodes: { controlPlane: { count: controlPlanes }, pools: [pool({ count: 2, ...poolOver })] } }),
  );
  const nodesSpec: NodesSpec = config.nodes;
  return runMocked(() => {
    const infra = new Infrastructure(CLUSTER, {
      provider: "openstack",
      clusterName: CLUSTER,
      nodes: nodesSpec,
      hosts: [],
      network: NETWORK,
      adminCidrs: ["192.0.2.0/24"],
      image: "Ubuntu 24.04",
      sshUser: "ubuntu",
      apiLoadBalancer: true,
    });
    new KubernetesCluster(CLUSTER, {
      nodes: clusterNodes({ ...config, clusterName: CLUSTER }),
      hosts: infra.hostByName,
      apiServer: infra.apiServer,
      bastion: infra.bastion,
      sshPrivateKey: infra.sshPrivateKey,
      kubernetesVersion: "1.36.4",
      network: NETWORK,
      clusterName: CLUSTER,
      adminCidrs: ["192.0.2.0/24"],
      apiLoadBalancer: true,
      controlPlaneExtraArgs: extraArgs,
    });
  });
}

describe("the cluster's steps", () => {
  const find = (rs: RecordedResource[], name: string) => {
    const r = rs.find((x) => x.type === "command:remote:Command" && x.name === `k8s-${CLUSTER}-${name}`);
    if (!r) throw new Error(`no step ${name}`);
    return r;
  };
  let plain: RecordedResource[];
  let pooled: RecordedResource[];
  beforeAll(async () => {
    plain = await build({});
    pooled = await build({ labels: { "example.org/gpu": "a100" }, taints: ["gpu=true:NoSchedule"], kubelet: { maxPods: 200 } }, 3, {
      apiServer: { "service-node-port-range": "30000-32767" },
    });
  });

  it("writes each host's kubelet drop-in after its preparation and before kubeadm starts its kubelet", () => {
    const worker = find(pooled, "workers-0-kubelet-config");
    expect(stepEnv(worker).KUBELET_DROPIN_FILE).toBe(KUBELET_DROPIN_FILE);
    expect(YAML.parse(stepEnv(worker).KUBELET_CONFIG)).toMatchObject({ kind: "KubeletConfiguration", maxPods: 200 });
    expect(worker.dependencies).toContain(find(pooled, "workers-0-prepare").urn);
    expect(find(pooled, "workers-0-join").dependencies).toContain(worker.urn);
    expect(find(pooled, "cp-0-init").dependencies).toContain(find(pooled, "cp-0-kubelet-config").urn);
    // Control planes and pools without settings: no drop-in (the script removes one left over).
    expect(stepEnv(find(pooled, "cp-0-kubelet-config")).KUBELET_CONFIG ?? "").toBe("");
    expect(stepEnv(find(plain, "workers-0-kubelet-config")).KUBELET_CONFIG ?? "").toBe("");
  });

  it("gives the node step the pool's labels and taints; a change reaches only the pool's steps", () => {
    const env = stepEnv(find(pooled, "cp-0-node-np-workers-1"));
    expect(env).toMatchObject({
      NODE_LABELS: "example.org/gpu=a100",
      NODE_TAINTS: "gpu=true:NoSchedule",
      MANAGED_LABELS_ANNOTATION: "dare.io/managed-labels",
      MANAGED_TAINTS_ANNOTATION: "dare.io/managed-taints",
    });
    expect(stepEnv(find(plain, "cp-0-node-np-workers-1"))).toMatchObject({ NODE_LABELS: "", NODE_TAINTS: "" });
    expect(stepEnv(find(plain, "cp-0-node-np-cp-1"))).toMatchObject({ NODE_LABELS: "", NODE_TAINTS: "" });

    const params = (rs: RecordedResource[]) =>
      new Map(rs.filter((r) => r.type === "command:remote:Command").map((r) => [r.name, JSON.stringify(stepEnv(r))]));
    const [a, b] = [params(plain), params(pooled)];
    const changed = [...a.keys()].filter((k) => a.get(k) !== b.get(k)).sort();
    expect(changed).toEqual(
      [
        // extra arguments: init's configuration (a no-op rerun) and the control-plane steps (joins read the ConfigMap)
        "k8s-np-cp-0-control-plane",
        "k8s-np-cp-0-init",
        "k8s-np-cp-0-node-np-workers-0",
        "k8s-np-cp-0-node-np-workers-1",
        "k8s-np-cp-1-control-plane",
        "k8s-np-cp-2-control-plane",
        "k8s-np-workers-0-join",
        "k8s-np-workers-0-kubelet-config",
        "k8s-np-workers-1-join",
        "k8s-np-workers-1-kubelet-config",
      ].sort(),
    );
  });

  it("reconfigures the control planes one at a time, each after its own upgrade; only the first uploads the ClusterConfiguration", () => {
    const [c0, c1, c2] = [0, 1, 2].map((i) => find(pooled, `cp-${i}-control-plane`));
    expect(c0.dependencies).toEqual(expect.arrayContaining([find(pooled, "cp-0-init").urn, find(pooled, "cp-0-upgrade").urn]));
    expect(c1.dependencies).toEqual(expect.arrayContaining([find(pooled, "cp-1-join").urn, find(pooled, "cp-1-upgrade").urn, c0.urn]));
    expect(c2.dependencies).toEqual(expect.arrayContaining([find(pooled, "cp-2-join").urn, find(pooled, "cp-2-upgrade").urn, c1.urn]));
    expect([c0, c1, c2].map((c) => stepEnv(c).UPLOAD_CLUSTER_CONFIGURATION)).toEqual(["true", "false", "false"]);
    const cluster = YAML.parseAllDocuments(stepEnv(c1).CONTROL_PLANE_CONFIG)
      .map((d) => d.toJS())
      .find((d) => d.kind === "ClusterConfiguration");
    expect(cluster.apiServer.extraArgs).toContainEqual({ name: "service-node-port-range", value: "30000-32767" });
    expect(stepEnv(c1).API_PORT).toBe("6443");
  });
});
