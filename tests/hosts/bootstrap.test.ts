/**
 * The Kubernetes layer's host steps on real OpenSSH servers (tests/hosts/harness.ts): four hosts,
 * logged into with the program's own SSH key (the mock's deterministic ED25519 key), each step sent
 * exactly as the program's command.remote.Command would send it (its `create` command and its stdin,
 * with the real secret values), in the dependency order of the program. Stand-ins only for what
 * cannot run here: kubeadm, kubelet, kubectl, systemctl, apt's downloads, modprobe, sysctl, swapoff, nft.
 * Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import * as YAML from "yaml";
import { ClusterNode, KubernetesCluster } from "../../components/cluster";
import { DEFAULT_NETWORK } from "../../components/config";
import { Infrastructure } from "../../components/infrastructure";
import { mockPrivateKey } from "../../tools/mock-keys";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { runMocked } from "../support/mocked";
import { readStubCalls, recordingStub, sshExec, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";

jest.setTimeout(240_000);

const CLUSTER = "bt";
const NAMES = ["bt-cp-0", "bt-w-0", "bt-w-1", "bt-w-2"];
// The program's SSH key: Infrastructure names it `<name>-ssh`, the mocks derive it from that name.
const SSH_KEY = mockPrivateKey(`${CLUSTER}-ssh`, "ED25519");
const STATE = "/var/lib/dare-stub";

/** Stand-ins that behave enough for the scripts' guards to be exercised for real. */
const STUBS: Record<string, string> = {
  kubeadm: recordingStub("kubeadm", `
set -e
case "$1" in
  version) [ -f ${STATE}/version ] || exit 1; echo "v$(cat ${STATE}/version)" ;;
  init|join)
    # Keep what kubeadm was given, to check it; then leave what the real one leaves.
    cp "$3" "${STATE}/kubeadm-$1.yaml"
    mkdir -p /etc/kubernetes
    if [ "$1" = init ]; then echo "admin" > /etc/kubernetes/admin.conf; fi
    echo "kubelet" > /etc/kubernetes/kubelet.conf ;;
  token) [ "$2" != create ] || cp "$4" "${STATE}/kubeadm-token.yaml" ;;
  reset) rm -f /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf; rm -rf /etc/kubernetes/pki ;;
esac`, { env: ["KUBECONFIG"] }),
  kubelet: recordingStub("kubelet", `echo "Kubernetes v$(cat ${STATE}/version)"`),
  kubectl: recordingStub("kubectl", undefined, { env: ["KUBECONFIG"] }),
  "apt-get": recordingStub("apt-get", `
for a in "$@"; do case "$a" in kubeadm=*) v=\${a#kubeadm=}; mkdir -p ${STATE}; echo "\${v%-*}" > ${STATE}/version ;; esac; done`),
  "apt-mark": recordingStub("apt-mark"),
  curl: recordingStub("curl", "echo 'stand-in release key'"),
  gpg: recordingStub("gpg", `
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then cat > "$2"; exit 0; fi; shift; done; cat`),
  modprobe: recordingStub("modprobe"),
  sysctl: recordingStub("sysctl"),
  swapoff: recordingStub("swapoff"),
  systemctl: recordingStub("systemctl"),
  nft: recordingStub("nft"),
};

let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: SSH_KEY.publicKeyOpenssh, stubs: STUBS });
});
afterAll(async () => { await stopHosts(hosts); });

/** Replaces Pulumi's secret markers by their values: what the provider would send. */
function reveal(value: any): any {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    if (value[SPECIAL_SIG_KEY] === SECRET_SIG) return reveal(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

interface Step { name: string; host: string; create: string; delete?: string; stdin: string; urn: string; dependencies: string[] }

/** The program for these hosts (first one control plane, the rest workers), its steps in dependency order. */
async function program(names: string[]): Promise<Step[]> {
  const nodes: ClusterNode[] = names.map((name, i) => ({ name, role: i === 0 ? "control-plane" : "worker", pool: i === 0 ? "control-plane" : "workers" }));
  const resources: RecordedResource[] = await runMocked(() => {
    const infra = new Infrastructure(CLUSTER, {
      provider: "existing", clusterName: CLUSTER, nodes: { controlPlane: { count: 1, flavor: "-" }, pools: [] },
      hosts: names.map((name, i) => ({
        name, role: i === 0 ? "control-plane" : "workers", address: byName(name).address, privateAddress: byName(name).address,
        user: byName(name).user, port: 22, disks: [],
      })),
      network: { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" }, adminCidrs: ["10.213.0.0/24"], image: "-", sshUser: "dare", apiLoadBalancer: false,
    });
    new KubernetesCluster(CLUSTER, {
      nodes, hosts: infra.hosts, apiServer: infra.apiServer, bastion: infra.bastion, sshPrivateKey: infra.sshPrivateKey,
      kubernetesVersion: "1.36.4", network: { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" }, clusterName: CLUSTER,
      adminCidrs: ["10.213.0.0/24"], apiLoadBalancer: false,
    });
  });
  const commands = resources.filter((r) => r.type === "command:remote:Command").map((r): Step => {
    const inputs = reveal(r.inputs);
    const host = hosts.find((h) => h.address === inputs.connection.host)!;
    expect(inputs.connection.privateKey).toBe(SSH_KEY.privateKeyOpenssh);
    return { name: r.name, host: host.name, create: inputs.create, delete: inputs.delete, stdin: inputs.stdin, urn: r.urn, dependencies: r.dependencies };
  });
  // Dependency order, as Pulumi creates them (ties in declaration order).
  const done = new Set<string>();
  const ordered: Step[] = [];
  while (ordered.length < commands.length) {
    const ready = commands.filter((c) => !done.has(c.urn) && c.dependencies.every((d) => done.has(d) || !commands.some((o) => o.urn === d)));
    if (ready.length === 0) throw new Error("dependency cycle among host steps");
    for (const c of ready) { done.add(c.urn); ordered.push(c); }
  }
  return ordered;
}

async function run(step: Step, which: "create" | "delete" = "create"): Promise<string> {
  const result = await sshExec(byName(step.host), SSH_KEY.privateKeyOpenssh, which === "create" ? step.create : step.delete!, { stdin: step.stdin });
  if (result.code !== 0) throw new Error(`${step.name} (${which}) failed with ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function runAll(steps: Step[]): Promise<string[]> {
  const ran: string[] = [];
  for (const step of steps) {
    await run(step);
    ran.push(step.name);
  }
  return ran;
}

async function clearCalls(): Promise<void> {
  await Promise.all(hosts.map((h) => h.exec(`rm -f ${STUB_CALL_LOG}`)));
}
const calls = async (name: string) => readStubCalls(byName(name)).catch(() => [] as string[]);
const env = (step: Step, key: string) => new RegExp(`^${key}='([^']*)'`, "m").exec(step.stdin)![1];

describe("bootstrap over SSH: one control plane and two workers, then a third, then it leaves", () => {
  let first: Step[];
  let token: string;

  it("first run: prepares every host, initialises the control plane, joins the workers", async () => {
    first = await program(NAMES.slice(0, 3));
    token = env(first.find((s) => s.name.endsWith("-init"))!, "BOOTSTRAP_TOKEN");
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const ran = await runAll(first);
    const at = (suffix: string) => ran.findIndex((n) => n.endsWith(suffix));
    expect(at("bt-cp-0-init")).toBeGreaterThan(at("bt-cp-0-prepare"));
    expect(at("bt-cp-0-token")).toBeGreaterThan(at("bt-cp-0-init"));
    expect(at("bt-w-0-join")).toBeGreaterThan(at("bt-cp-0-token"));

    const cp = await calls("bt-cp-0");
    expect(cp.filter((c) => /^KUBECONFIG=\S* ?kubeadm init|^kubeadm init/.test(c))).toEqual(["kubeadm init --config /etc/kubernetes/dare/kubeadm-init.yaml --skip-token-print"]);
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubeadm token create --config /etc/kubernetes/dare/kubeadm-token.yaml");
    expect(cp).toContainEqual(expect.stringMatching(/^apt-get install -y -q --allow-change-held-packages kubelet=1\.36\.4-\\\* kubeadm=1\.36\.4-\\\* kubectl=1\.36\.4-\\\*$/));
    expect(cp).toContainEqual("apt-mark hold kubelet kubeadm kubectl");
    expect(cp).toContainEqual("swapoff -a");
    expect(cp).toContainEqual("modprobe br_netfilter");
    expect(cp).toContainEqual("nft -f /etc/dare/firewall.nft");
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubectl label node bt-w-0 --overwrite dare.io/pool=workers node-role.kubernetes.io/worker=");
    const init = YAML.parseAllDocuments(await byName("bt-cp-0").readFile(`${STATE}/kubeadm-init.yaml`)).map((d) => d.toJS());
    expect(init[0].bootstrapTokens[0].token).toBe(token);
    expect(init[0].nodeRegistration.name).toBe("bt-cp-0");
    expect(init[1].controlPlaneEndpoint).toBe(`${byName("bt-cp-0").address}:6443`);

    for (const w of ["bt-w-0", "bt-w-1"]) {
      const wc = await calls(w);
      expect(wc).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
      expect(wc.some((c) => c.includes("kubeadm init"))).toBe(false);
      const join = YAML.parse(await byName(w).readFile(`${STATE}/kubeadm-join.yaml`));
      expect(join.discovery.bootstrapToken).toMatchObject({ token, apiServerEndpoint: `${byName("bt-cp-0").address}:6443` });
      expect(join.discovery.bootstrapToken.caCertHashes[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(join.nodeRegistration.name).toBe(w);
    }
    // Not yet in the cluster: nothing ran there.
    expect(await calls("bt-w-2")).toEqual([]);
  });

  it("never puts the token or a key on a command line", async () => {
    const key = env(first.find((s) => s.name.endsWith("-pki"))!, "CA_KEY").split("\n")[1];
    for (const name of NAMES) {
      const text = (await calls(name)).join("\n");
      expect(text).not.toContain(token.split(".")[1]);
      expect(text).not.toContain(key);
    }
    for (const step of first) expect(step.create).not.toContain(token);
  });

  it("lands files with the right owners and modes", async () => {
    const cp = byName("bt-cp-0");
    for (const [file, mode] of [["/etc/kubernetes/pki/ca.key", 0o600], ["/etc/kubernetes/pki/etcd/ca.key", 0o600], ["/etc/kubernetes/pki/front-proxy-ca.key", 0o600],
      ["/etc/kubernetes/pki/sa.key", 0o600], ["/etc/kubernetes/pki/ca.crt", 0o644], ["/etc/kubernetes/pki/sa.pub", 0o644],
      ["/etc/kubernetes/dare", 0o700], ["/etc/kubernetes/dare/kubeadm-init.yaml", 0o600], ["/etc/dare/firewall.nft", 0o600],
      ["/etc/containerd/config.toml", 0o644], ["/etc/sysctl.d/90-kubernetes.conf", 0o644]] as const) {
      const st = await cp.stat(file);
      expect({ file, mode: st.mode, user: st.user, group: st.group }).toEqual({ file, mode, user: "root", group: "root" });
    }
    expect(await cp.readFile("/etc/kubernetes/pki/ca.key")).toContain("BEGIN EC PRIVATE KEY");
    expect(await cp.readFile("/etc/containerd/config.toml")).toMatch(/SystemdCgroup = true/);
    expect(await cp.readFile("/etc/apt/sources.list.d/kubernetes.list")).toContain("https://pkgs.k8s.io/core:/stable:/v1.36/deb/");
    expect(await cp.readFile("/etc/dare/firewall.nft")).toMatch(/ip saddr 10\.213\.0\.0\/24 tcp dport 6443 accept/);
    // Configuration files keep no token once used; the token file goes right away.
    expect(await cp.readFile("/etc/kubernetes/dare/kubeadm-init.yaml")).not.toContain(token);
    expect(await cp.exec("test -e /etc/kubernetes/dare/kubeadm-token.yaml")).toMatchObject({ code: 1 });
    const worker = byName("bt-w-0");
    expect((await worker.stat("/etc/kubernetes/dare/kubeadm-join.yaml")).mode).toBe(0o600);
    expect(await worker.readFile("/etc/kubernetes/dare/kubeadm-join.yaml")).not.toContain(token);
    // Workers get no CA key.
    expect((await worker.exec("test -e /etc/kubernetes/pki/ca.key")).code).toBe(1);
  });

  it("second run changes nothing: no init, no join, no restart, no file rewritten", async () => {
    const cp = byName("bt-cp-0");
    const stamp = "stat -c '%n %Y %s' /etc/kubernetes/pki/ca.key /etc/containerd/config.toml /etc/dare/firewall.nft /etc/kubernetes/kubelet.conf";
    const before = (await cp.exec(stamp)).stdout;
    await clearCalls();
    await new Promise((r) => setTimeout(r, 1100));
    await runAll(first);
    for (const name of NAMES) {
      const c = await calls(name);
      expect(c.filter((l) => /kubeadm (init|join)|systemctl restart|^nft -f|apt-get install.*kubeadm/.test(l))).toEqual([]);
    }
    expect((await cp.exec(stamp)).stdout).toBe(before);
  });

  let second: Step[];
  it("a host added later joins; hosts joined earlier are skipped", async () => {
    second = await program(NAMES);
    await clearCalls();
    await runAll(second);
    expect(await calls("bt-w-2")).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
    for (const w of ["bt-w-0", "bt-w-1"]) expect((await calls(w)).filter((l) => l.includes("kubeadm join"))).toEqual([]);
    // The token was made valid again before the join.
    expect(await calls("bt-cp-0")).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubeadm token create --config /etc/kubernetes/dare/kubeadm-token.yaml");
  });

  it("removing a worker drains and deletes its node on the control plane, then resets it", async () => {
    await clearCalls();
    const removed = second.filter((s) => s.delete && (s.host === "bt-w-2" || s.name.endsWith("node-bt-w-2")));
    // Pulumi deletes dependents first: reverse dependency order.
    const order = removed.sort((a, b) => (a.dependencies.includes(b.urn) ? -1 : b.dependencies.includes(a.urn) ? 1 : 0));
    expect(order.map((s) => s.name)).toEqual(["k8s-bt-cp-0-node-bt-w-2", "k8s-bt-w-2-join"]);
    for (const step of order) await run(step, "delete");
    const cp = await calls("bt-cp-0");
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubectl drain bt-w-2 --ignore-daemonsets --delete-emptydir-data --timeout=600s");
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubectl delete node bt-w-2 --wait=true");
    expect(cp.findIndex((l) => l.includes("drain"))).toBeLessThan(cp.findIndex((l) => l.includes("delete node")));
    expect(await calls("bt-w-2")).toContainEqual("kubeadm reset -f");
    expect((await byName("bt-w-2").exec("test -e /etc/kubernetes/kubelet.conf")).code).toBe(1);
    // The others are untouched.
    expect(await calls("bt-w-0")).toEqual([]);
  });
});
