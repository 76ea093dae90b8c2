/**
 * Pools' kubelet settings and the control-plane components' extra arguments on real OpenSSH servers
 * (tests/hosts/harness.ts): a control plane and a worker of a pool with settings, every step sent as the
 * program sends it, in its dependency order; then the configuration changes and the program runs again.
 * Stand-ins only for kubeadm, the kubelet (its restart: systemctl; its mirror pod: kubectl) and downloads.
 * Needs root (CI runs as root).
 */
import * as YAML from "yaml";
import { KubernetesCluster } from "../../components/cluster";
import { ClusterNode, clusterNodes } from "../../lib/host-plan";
import { DEFAULT_NETWORK, EXAMPLE_HOST_KEY, loadConfig } from "../../lib/config";
import { Infrastructure } from "../../components/infrastructure";
import { ControlPlaneExtraArgs, KUBELET_DROPIN_DIR, KUBELET_DROPIN_FILE } from "../../lib/node-settings";
import { RecordedResource } from "../../tools/mocks";
import { runMocked } from "../support/mocked";
import { SITE_CONFIG } from "../support/site";
import { readStubCalls, sshExec, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { bootstrapStubs, STUB_STATE } from "./stubs";
import { creationOrder, sshKeyOf, Step, stepsOf } from "./program";

jest.setTimeout(240_000);

const CLUSTER = "np";
const NAMES = ["np-0", "np-1"];
const SSH_KEY = sshKeyOf(CLUSTER);
const NETWORK = { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" };

let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: SSH_KEY.publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
});
afterAll(async () => {
  await stopHosts(hosts);
});

/** The program for a control plane and a worker of pool `workers` with these settings (as the configuration reads them). */
async function program(poolSettings: Record<string, unknown>, extraArgs: ControlPlaneExtraArgs): Promise<Step[]> {
  const hostSpec = (name: string, role: string) => ({
    name,
    role,
    address: byName(name).address,
    privateAddress: byName(name).address,
    user: byName(name).user,
    port: 22,
    disks: [] as string[],
    hostKey: byName(name).hostPublicKey,
  });
  // The configuration's own reading of the pool's settings (validated), as index.ts hands it over.
  const config = loadConfig({
    stack: "test",
    get: (key) => {
      const values: Record<string, unknown> = {
        domain: "dare.example.org",
        adminCidrs: ["10.213.0.0/24"],
        ...SITE_CONFIG,
        provider: "existing",
        apiLoadBalancer: false,
        ingressLoadBalancer: false,
        ceph: { replicas: 1, monitors: 1 },
        nodes: { pools: [{ name: "workers", count: 0, flavor: "-", ...poolSettings }] },
        hosts: [
          { ...hostSpec("np-0", "control-plane"), hostKey: EXAMPLE_HOST_KEY },
          { ...hostSpec("np-1", "workers"), hostKey: EXAMPLE_HOST_KEY, disks: ["/dev/sdb"] },
        ],
      };
      return values[key] === undefined ? undefined : JSON.stringify(values[key]);
    },
  });
  const nodes: ClusterNode[] = clusterNodes(config).map((n) => ({ ...n, disks: 0 }));
  const resources: RecordedResource[] = await runMocked(() => {
    const infra = new Infrastructure(CLUSTER, {
      provider: "existing",
      clusterName: CLUSTER,
      nodes: { controlPlane: { count: 1, flavor: "-" }, pools: [] },
      hosts: NAMES.map((name, i) => hostSpec(name, i === 0 ? "control-plane" : "workers")),
      network: NETWORK,
      adminCidrs: ["10.213.0.0/24"],
      image: "-",
      sshUser: "dare",
      apiLoadBalancer: false,
    });
    new KubernetesCluster(CLUSTER, {
      nodes,
      hosts: infra.hostByName,
      apiServer: infra.apiServer,
      bastion: infra.bastion,
      sshPrivateKey: infra.sshPrivateKey,
      kubernetesVersion: "1.36.4",
      network: NETWORK,
      clusterName: CLUSTER,
      adminCidrs: ["10.213.0.0/24"],
      apiLoadBalancer: false,
      controlPlaneExtraArgs: extraArgs,
    });
  });
  return creationOrder(stepsOf(resources, hosts));
}

async function runAll(steps: Step[]): Promise<void> {
  for (const step of steps) {
    const result = await sshExec(byName(step.host), SSH_KEY.privateKeyOpenssh, step.create, { stdin: step.stdin, hostKey: step.hostKey });
    if (result.code !== 0) throw new Error(`${step.name} failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
  }
}
const clearCalls = () => Promise.all(hosts.map((h) => h.exec(`rm -f ${STUB_CALL_LOG}`)));
const calls = (name: string) => readStubCalls(byName(name)).catch(() => [] as string[]);
const restarts = async (name: string) => (await calls(name)).filter((c) => c === "systemctl restart kubelet");
const kubeadmPhases = async (name: string) => (await calls(name)).filter((c) => /kubeadm init phase/.test(c));
const clusterConfigurationIn = (text: string) =>
  YAML.parseAllDocuments(text)
    .map((d) => d.toJS())
    .find((d) => d?.kind === "ClusterConfiguration");

const GPU = {
  labels: { "example.org/gpu": "a100" },
  taints: ["example.org/gpu=true:NoSchedule"],
  kubelet: { maxPods: 200, systemReserved: { cpu: "500m", memory: "1Gi" }, featureGates: { ExampleGate: true } },
};

describe("a pool's kubelet settings and the control plane's extra arguments, over SSH", () => {
  it("first run: the drop-in is in place before the join, kubeadm registers the worker with the pool's labels and taints, no restart", async () => {
    await runAll(await program(GPU, { apiServer: { "service-node-port-range": "30000-32000" } }));
    const worker = byName("np-1");
    expect(await worker.readFile("/etc/default/kubelet")).toBe(`KUBELET_EXTRA_ARGS=--config-dir=${KUBELET_DROPIN_DIR}\n`);
    expect(YAML.parse(await worker.readFile(KUBELET_DROPIN_FILE))).toEqual({
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      featureGates: { ExampleGate: true },
      maxPods: 200,
      systemReserved: { cpu: "500m", memory: "1Gi" },
    });
    expect(await worker.stat(KUBELET_DROPIN_FILE)).toMatchObject({ mode: 0o644, user: "root" });
    const workerCalls = await calls("np-1");
    // Written before kubeadm started the kubelet: nothing to restart.
    expect(await restarts("np-1")).toEqual([]);
    expect(workerCalls).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
    const join = YAML.parse(await worker.readFile(`${STUB_STATE}/kubeadm-join.yaml`));
    expect(join.nodeRegistration.taints).toEqual([{ key: "example.org/gpu", value: "true", effect: "NoSchedule" }]);
    expect(join.nodeRegistration.kubeletExtraArgs).toContainEqual({ name: "node-labels", value: "example.org/gpu=a100" });
    // The control plane: no pool settings, the directory and flag all the same (a later pool setting needs no new flag).
    expect(await byName("np-0").readFile("/etc/default/kubelet")).toBe(`KUBELET_EXTRA_ARGS=--config-dir=${KUBELET_DROPIN_DIR}\n`);
    expect((await byName("np-0").exec(`test -e ${KUBELET_DROPIN_FILE}`)).code).toBe(1);
    // The node step labelled and tainted it from the first control plane.
    const cp = await calls("np-0");
    expect(cp).toContainEqual(
      "KUBECONFIG=/etc/kubernetes/admin.conf kubectl label node np-1 --overwrite dare.io/pool=workers node-role.kubernetes.io/worker= example.org/gpu=a100",
    );
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubectl taint node np-1 example.org/gpu=true:NoSchedule --overwrite");
    // The extra argument is in the configuration kubeadm init was given, and in the one its step applied and uploaded.
    const init = clusterConfigurationIn(await byName("np-0").readFile(`${STUB_STATE}/kubeadm-init.yaml`));
    expect(init.apiServer.extraArgs).toContainEqual({ name: "service-node-port-range", value: "30000-32000" });
    expect(await kubeadmPhases("np-0")).toEqual([
      expect.stringMatching(
        /^KUBECONFIG=\/etc\/kubernetes\/admin.conf kubeadm init phase control-plane all --config \/etc\/kubernetes\/dare\/control-plane\.\w+$/,
      ),
      expect.stringMatching(
        /^KUBECONFIG=\/etc\/kubernetes\/admin.conf kubeadm init phase upload-config kubeadm --config \/etc\/kubernetes\/dare\/control-plane\.\w+$/,
      ),
    ]);
    const uploaded = clusterConfigurationIn(await byName("np-0").readFile(`${STUB_STATE}/kubeadm-config-configmap.yaml`));
    expect(uploaded.apiServer.extraArgs).toContainEqual({ name: "service-node-port-range", value: "30000-32000" });
    expect((await byName("np-0").stat("/etc/kubernetes/dare/control-plane.yaml")).mode).toBe(0o600);
    // Its manifest changed, so the step waited for the API server to run it and answer.
    expect(cp).toContainEqual("curl -ksf --max-time 5 https://127.0.0.1:6443/readyz");
  });

  it("a rerun changes nothing: no file rewritten, no kubelet restart, no manifest written again", async () => {
    const stamp = `stat -c '%n %Y' /etc/default/kubelet ${KUBELET_DROPIN_FILE} 2>/dev/null; stat -c '%n %Y' /etc/kubernetes/dare/control-plane.yaml /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null; true`;
    const before = await Promise.all(hosts.map((h) => h.exec(stamp)));
    await clearCalls();
    await new Promise((r) => setTimeout(r, 1100));
    await runAll(await program(GPU, { apiServer: { "service-node-port-range": "30000-32000" } }));
    for (const name of NAMES) {
      expect([name, await restarts(name), await kubeadmPhases(name)]).toEqual([name, [], []]);
    }
    expect((await Promise.all(hosts.map((h) => h.exec(stamp)))).map((r) => r.stdout)).toEqual(before.map((r) => r.stdout));
  });

  it("changed settings: the worker's drop-in is rewritten and its kubelet restarted once; the extra argument reaches the manifests and the ConfigMap", async () => {
    await clearCalls();
    const changed = { ...GPU, kubelet: { maxPods: 150, kubeReserved: { memory: "512Mi" } } };
    await runAll(await program(changed, { apiServer: { "service-node-port-range": "30000-32500" }, scheduler: { v: "2" } }));
    expect(YAML.parse(await byName("np-1").readFile(KUBELET_DROPIN_FILE))).toMatchObject({
      maxPods: 150,
      kubeReserved: { memory: "512Mi" },
    });
    expect(YAML.parse(await byName("np-1").readFile(KUBELET_DROPIN_FILE))).not.toHaveProperty("systemReserved");
    expect(await restarts("np-1")).toEqual(["systemctl restart kubelet"]);
    expect(await restarts("np-0")).toEqual([]);
    expect(await kubeadmPhases("np-0")).toHaveLength(2);
    const manifest = clusterConfigurationIn(await byName("np-0").readFile("/etc/kubernetes/manifests/kube-apiserver.yaml"));
    expect(manifest.apiServer.extraArgs).toContainEqual({ name: "service-node-port-range", value: "30000-32500" });
    expect(manifest.scheduler.extraArgs).toContainEqual({ name: "v", value: "2" });
    const uploaded = clusterConfigurationIn(await byName("np-0").readFile(`${STUB_STATE}/kubeadm-config-configmap.yaml`));
    expect(uploaded.scheduler.extraArgs).toContainEqual({ name: "v", value: "2" });
    // The join is a no-op rerun: the host joined already.
    expect((await calls("np-1")).filter((c) => c.includes("kubeadm join"))).toEqual([]);
  });

  it("settings dropped: the drop-in goes and the kubelet restarts once; a failed restart is tried again by the next run", async () => {
    await clearCalls();
    const worker = byName("np-1");
    // The kubelet's restart fails once (systemctl's stand-in exits 1 on its first call).
    await worker.exec(
      `cp /usr/local/bin/systemctl /usr/local/bin/systemctl.real && printf '%s\\n' '#!/bin/bash' ` +
        `'echo "systemctl $*" >> ${STUB_CALL_LOG}; mv /usr/local/bin/systemctl.real /usr/local/bin/systemctl; exit 1' > /usr/local/bin/systemctl`,
    );
    const dropped = await program({}, {});
    const kubeletStep = dropped.find((s) => s.name === `k8s-np-1-kubelet-config`)!;
    const failed = await sshExec(worker, SSH_KEY.privateKeyOpenssh, kubeletStep.create, {
      stdin: kubeletStep.stdin,
      hostKey: kubeletStep.hostKey,
    });
    expect(failed.code).not.toBe(0);
    expect((await worker.exec(`test -e ${KUBELET_DROPIN_FILE}`)).code).toBe(1);
    await runAll(dropped);
    expect(await restarts("np-1")).toEqual(["systemctl restart kubelet", "systemctl restart kubelet"]);
    await clearCalls();
    await runAll(dropped);
    expect(await restarts("np-1")).toEqual([]);
  });
});
