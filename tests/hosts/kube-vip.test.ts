/**
 * dare:apiVirtualIp on real OpenSSH servers (tests/hosts/harness.ts): three control planes, each step sent as the
 * program sends it, in the program's dependency order. kube-vip's static pod is on every control plane before
 * kubeadm runs there (the kubeadm stand-in keeps the manifest it found), reads super-admin.conf on the first
 * control plane while init runs and admin.conf after; a failed init keeps it; the API endpoint of a running cluster
 * is never moved to or from the VIP. Stand-ins only for kubeadm, kubelet, kubectl, systemctl, apt's downloads,
 * modprobe, sysctl, swapoff and nft; `ip` (the interface that holds the host's address) is the real one.
 */
import * as YAML from "yaml";
import { KUBE_VIP_IMAGE, KUBE_VIP_MANIFEST } from "../../components/cluster/kube-vip";
import { readStubCalls, startHosts, stopHosts, STUB_CALL_LOG, TestHost, TEST_SUBNET_PREFIX } from "./harness";
import { bootstrapStubs, STUB_STATE as STATE } from "./stubs";
import { program, runStep, sshKeyOf, Step } from "./program";

jest.setTimeout(240_000);

const CLUSTER = "kv";
const NAMES = ["kv-0", "kv-1", "kv-2"];
// Outside the harness's address slots (10-250) and not the bridge's (.1): free, as the configuration requires.
const VIP = `${TEST_SUBNET_PREFIX}.254`;
const SPEC = NAMES.map((name) => ({ name, controlPlane: true }));

let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
});
afterAll(async () => {
  await stopHosts(hosts);
});

async function run(step: Step): Promise<string> {
  const result = await runStep(CLUSTER, hosts, step);
  if (result.code !== 0) throw new Error(`${step.name} failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

type Pod = {
  spec: {
    containers: Array<{ image: string; env: Array<{ name: string; value?: string }> }>;
    volumes: Array<{ hostPath: { path: string } }>;
  };
};
const podAt = async (host: string, file: string): Promise<Pod> => YAML.parse(await byName(host).readFile(file));
const envOf = (pod: Pod) =>
  Object.fromEntries(pod.spec.containers[0].env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
const kubeconfigOf = (pod: Pod) => pod.spec.volumes[0].hostPath.path;
/** The interface that holds the host's address, as `ip` reports it in the host's network namespace. */
async function interfaceOf(host: TestHost): Promise<string> {
  const out = (
    await host.exec(`ip -o -4 addr show | awk -v a=${host.address} '{ split($4, p, "/"); if (p[1] == a) print $2 }'`)
  ).stdout.trim();
  return out.replace(/@.*$/, "");
}

describe("the API's virtual IP: kube-vip on every control plane before kubeadm", () => {
  let steps: Step[];

  it("a failed kubeadm init keeps kube-vip's manifest for the next attempt (kubeadm reset empties the folder)", async () => {
    steps = await program(CLUSTER, hosts, SPEC, "1.36.4", { apiVirtualIp: { address: VIP } });
    const initAt = steps.findIndex((s) => s.name === "k8s-kv-0-init");
    for (const step of steps.slice(0, initAt)) await run(step);
    await byName("kv-0").exec("touch /etc/dare-test-fail");
    const failed = await runStep(CLUSTER, hosts, steps[initAt]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("kv-0: kubeadm init failed");
    const kept = await podAt("kv-0", KUBE_VIP_MANIFEST);
    expect(kubeconfigOf(kept)).toBe("/etc/kubernetes/super-admin.conf");
  });

  it("writes the manifest on each control plane before its kubeadm init or join, then switches the first to admin.conf", async () => {
    // The kubelet takes a while to replace kube-vip's pod after the switch: init waits until it runs with admin.conf.
    await byName("kv-0").exec(`mkdir -p ${STATE} && echo 2 > ${STATE}/kube-vip-lag && rm -f ${STUB_CALL_LOG}`);
    const ran: string[] = [];
    for (const step of steps) {
      const out = await run(step);
      if (step.name === "k8s-kv-0-init")
        expect(out).toContain("kv-0: kube-vip now reads /etc/kubernetes/admin.conf and holds the API's virtual IP");
      ran.push(step.name);
    }
    const polls = (await readStubCalls(byName("kv-0"))).filter((c) => c.includes("get pod kube-vip-kv-0"));
    expect(polls).toHaveLength(3);
    expect(polls[0]).toMatch(/^KUBECONFIG=\/etc\/kubernetes\/admin\.conf kubectl -n kube-system get pod kube-vip-kv-0 /);
    const at = (name: string) => ran.indexOf(name);
    expect(at("k8s-kv-0-kube-vip")).toBeGreaterThan(at("k8s-kv-0-prepare"));
    expect(at("k8s-kv-0-kube-vip")).toBeLessThan(at("k8s-kv-0-init"));
    expect(at("k8s-kv-1-kube-vip")).toBeLessThan(at("k8s-kv-1-join"));
    expect(at("k8s-kv-2-kube-vip")).toBeLessThan(at("k8s-kv-2-join"));

    // What the kubelet found beside kubeadm's own manifests when kubeadm ran: on the first control plane the
    // super-admin kubeconfig (kube-vip issue #684), on the others admin.conf; the VIP on the host's own interface.
    const atInit = await podAt("kv-0", `${STATE}/kube-vip-at-init.yaml`);
    expect(kubeconfigOf(atInit)).toBe("/etc/kubernetes/super-admin.conf");
    expect(atInit.spec.containers[0].image).toBe(KUBE_VIP_IMAGE);
    expect(envOf(atInit)).toMatchObject({
      address: VIP,
      port: "6443",
      vip_arp: "true",
      cp_enable: "true",
      svc_enable: "false",
      vip_leaderelection: "true",
    });
    for (const name of ["kv-1", "kv-2"]) {
      const atJoin = await podAt(name, `${STATE}/kube-vip-at-join.yaml`);
      expect(kubeconfigOf(atJoin)).toBe("/etc/kubernetes/admin.conf");
      const iface = await interfaceOf(byName(name));
      expect(iface).not.toBe("");
      expect(envOf(atJoin).vip_interface).toBe(iface);
    }
    expect(envOf(atInit).vip_interface).toBe(await interfaceOf(byName("kv-0")));
    // Once init has succeeded, admin.conf (bound to cluster-admin by init) on the first control plane too.
    expect(kubeconfigOf(await podAt("kv-0", KUBE_VIP_MANIFEST))).toBe("/etc/kubernetes/admin.conf");
    expect((await byName("kv-0").exec("ls -a /etc/kubernetes/manifests")).stdout).not.toContain(".kube-vip.yaml.new");

    // kubeadm was told the VIP: the endpoint nodes use, in the API server's certificate.
    const init = YAML.parseAllDocuments(await byName("kv-0").readFile(`${STATE}/kubeadm-init.yaml`)).map((d) => d.toJS());
    expect(init[1].controlPlaneEndpoint).toBe(`${VIP}:6443`);
    expect(init[1].apiServer.certSANs).toContain(VIP);
    const join = YAML.parse(await byName("kv-1").readFile(`${STATE}/kubeadm-join.yaml`));
    expect(join.discovery.bootstrapToken.apiServerEndpoint).toBe(`${VIP}:6443`);
  });

  it("a second run changes nothing", async () => {
    const before = await Promise.all(NAMES.map((n) => byName(n).readFile(KUBE_VIP_MANIFEST)));
    for (const step of steps.filter((s) => s.name.endsWith("-kube-vip"))) {
      expect(await run(step)).toContain(`${KUBE_VIP_MANIFEST} is up to date`);
    }
    expect(await Promise.all(NAMES.map((n) => byName(n).readFile(KUBE_VIP_MANIFEST)))).toEqual(before);
  });

  it("refuses to add the VIP to a control plane of a running cluster with another endpoint", async () => {
    const kv1 = byName("kv-1");
    const manifest = await kv1.readFile(KUBE_VIP_MANIFEST);
    await kv1.exec(`rm -f ${KUBE_VIP_MANIFEST}`);
    await kv1.writeFile("/etc/kubernetes/admin.conf", `clusters:\n- cluster:\n    server: https://${kv1.address}:6443\n`);
    const refused = await runStep(
      CLUSTER,
      hosts,
      steps.find((s) => s.name === "k8s-kv-1-kube-vip")!,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `kv-1: refusing to add the API virtual IP ${VIP}:6443: this control plane belongs to a running cluster whose API endpoint is ${kv1.address}:6443`,
    );
    expect((await kv1.exec(`test -e ${KUBE_VIP_MANIFEST}`)).code).toBe(1);
    // Its own endpoint is accepted.
    await kv1.writeFile("/etc/kubernetes/admin.conf", `clusters:\n- cluster:\n    server: https://${VIP}:6443\n`);
    await run(steps.find((s) => s.name === "k8s-kv-1-kube-vip")!);
    expect(await kv1.readFile(KUBE_VIP_MANIFEST)).toBe(manifest);
  });

  it("refuses to remove the VIP from a running cluster: kubeadm's step will not move the endpoint back to the first control plane", async () => {
    const kv0 = byName("kv-0");
    await kv0.writeFile("/etc/kubernetes/admin.conf", `clusters:\n- cluster:\n    server: https://${VIP}:6443\n`);
    const without = await program(CLUSTER, hosts, SPEC);
    expect(without.some((s) => s.name.endsWith("-kube-vip"))).toBe(false);
    const moved = await runStep(
      CLUSTER,
      hosts,
      without.find((s) => s.name === "k8s-kv-0-init")!,
    );
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain(`kv-0: refusing to move the running cluster's API endpoint from ${VIP}:6443 to ${kv0.address}:6443`);
    expect(moved.stderr).toContain("dare:apiVirtualIp");
    // kube-vip stays (its step has no delete script), and with it the endpoint every node uses.
    expect(steps.filter((s) => s.name.endsWith("-kube-vip")).map((s) => s.delete)).toEqual([undefined, undefined, undefined]);
    expect((await kv0.exec(`test -f ${KUBE_VIP_MANIFEST}`)).code).toBe(0);
  });
});
