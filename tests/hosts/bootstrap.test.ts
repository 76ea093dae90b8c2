/**
 * The Kubernetes layer's host steps on real OpenSSH servers (tests/hosts/harness.ts): four hosts,
 * logged into with the program's own SSH key (the mock's deterministic ED25519 key), each step sent
 * exactly as the program's command.remote.Command would send it (its `create` command and its stdin,
 * with the real secret values), in the dependency order of the program. Stand-ins only for what
 * cannot run here: kubeadm, kubelet, kubectl, systemctl, apt's downloads, modprobe, sysctl, swapoff, nft.
 * Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import * as YAML from "yaml";
import { KubernetesCluster } from "../../components/cluster";
import { ClusterNode } from "../../lib/host-plan";
import { DEFAULT_NETWORK } from "../../lib/config";
import { Infrastructure } from "../../components/infrastructure";
import { mockPrivateKey } from "../../tools/mock-keys";
import { RecordedResource } from "../../tools/mocks";
import { runMocked } from "../support/mocked";
import { readStubCalls, sshExec, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { bootstrapStubs, STUB_STATE as STATE } from "./stubs";
import { creationOrder, deletionOrder, reveal, Step, stepsOf } from "./program";

jest.setTimeout(240_000);

const CLUSTER = "bt";
const NAMES = ["bt-0", "bt-1", "bt-2", "bt-3"];
// The program's SSH key: Infrastructure names it `<name>-ssh`, the mocks derive it from that name.
const SSH_KEY = mockPrivateKey(`${CLUSTER}-ssh`, "ED25519");
const STUBS = bootstrapStubs(NAMES);

let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: SSH_KEY.publicKeyOpenssh, stubs: STUBS });
});
afterAll(async () => {
  await stopHosts(hosts);
});

/** The program for these hosts (the first `controlPlanes` are control planes), its steps in dependency order. */
async function program(
  names: string[],
  { controlPlanes = 1, version = "1.36.4", keys = undefined as string[] | undefined } = {},
): Promise<Step[]> {
  const isControlPlane = (i: number) => i < controlPlanes;
  const nodes: ClusterNode[] = names.map((name, i) => ({
    name,
    role: isControlPlane(i) ? "control-plane" : "worker",
    pool: isControlPlane(i) ? "control-plane" : "workers",
  }));
  const resources: RecordedResource[] = await runMocked(() => {
    const infra = new Infrastructure(CLUSTER, {
      provider: "existing",
      clusterName: CLUSTER,
      nodes: { controlPlane: { count: 1, flavor: "-" }, pools: [] },
      hosts: names.map((name, i) => ({
        name,
        role: isControlPlane(i) ? "control-plane" : "workers",
        address: byName(name).address,
        privateAddress: byName(name).address,
        user: byName(name).user,
        port: 22,
        disks: [],
        hostKey: byName(name).hostPublicKey,
      })),
      network: { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" },
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
      kubernetesVersion: version,
      network: { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" },
      clusterName: CLUSTER,
      adminCidrs: ["10.213.0.0/24"],
      apiLoadBalancer: false,
      secretsEncryptionKeys: keys,
    });
  });
  const commands = stepsOf(resources, hosts);
  for (const r of resources.filter((x) => x.type === "command:remote:Command")) {
    expect(reveal(r.inputs).connection.privateKey).toBe(SSH_KEY.privateKeyOpenssh);
  }
  return creationOrder(commands);
}

async function run(step: Step, which: "create" | "delete" = "create"): Promise<string> {
  const result = await sshExec(byName(step.host), SSH_KEY.privateKeyOpenssh, which === "create" ? step.create : step.delete!, {
    stdin: step.stdin,
  });
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
const env = (step: Step, key: string) => new RegExp(`^${key}='([^']*)'`, "m").exec(step.parameters)![1];

describe("bootstrap over SSH: one control plane and two workers, then a third, then it leaves", () => {
  let first: Step[];
  let token: string;

  it("first run: prepares every host, initialises the control plane, joins the workers", async () => {
    first = await program(NAMES.slice(0, 3));
    token = env(
      first.find((s) => s.name.endsWith("-init"))!,
      "BOOTSTRAP_TOKEN",
    );
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const ran = await runAll(first);
    const at = (suffix: string) => ran.findIndex((n) => n.endsWith(suffix));
    expect(at("bt-0-init")).toBeGreaterThan(at("bt-0-prepare"));
    expect(at("bt-0-token")).toBeGreaterThan(at("bt-0-init"));
    expect(at("bt-1-join")).toBeGreaterThan(at("bt-0-token"));

    const cp = await calls("bt-0");
    // (Its init phases are the control-plane step's, tests/hosts/node-pools.test.ts.)
    expect(cp.filter((c) => /^(KUBECONFIG=\S* )?kubeadm init (?!phase )/.test(c))).toEqual([
      "kubeadm init --config /etc/kubernetes/dare/kubeadm-init.yaml --skip-token-print",
    ]);
    expect(cp).toContainEqual(
      "KUBECONFIG=/etc/kubernetes/admin.conf kubeadm token create --config /etc/kubernetes/dare/kubeadm-token.yaml",
    );
    expect(cp).toContainEqual(
      expect.stringMatching(
        /^apt-get install -y -q --allow-change-held-packages kubelet=1\.36\.4-\\\* kubeadm=1\.36\.4-\\\* kubectl=1\.36\.4-\\\*$/,
      ),
    );
    expect(cp).toContainEqual("apt-mark hold kubelet kubeadm kubectl");
    expect(cp).toContainEqual("swapoff -a");
    expect(cp).toContainEqual("modprobe br_netfilter");
    expect(cp).toContainEqual("nft -f /etc/dare/firewall.nft");
    expect(cp).toContainEqual(
      "KUBECONFIG=/etc/kubernetes/admin.conf kubectl label node bt-1 --overwrite dare.io/pool=workers node-role.kubernetes.io/worker=",
    );
    const init = YAML.parseAllDocuments(await byName("bt-0").readFile(`${STATE}/kubeadm-init.yaml`)).map((d) => d.toJS());
    expect(init[0].bootstrapTokens[0].token).toBe(token);
    expect(init[0].nodeRegistration.name).toBe("bt-0");
    expect(init[1].controlPlaneEndpoint).toBe(`${byName("bt-0").address}:6443`);

    for (const w of ["bt-1", "bt-2"]) {
      const wc = await calls(w);
      expect(wc).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
      expect(wc.some((c) => c.includes("kubeadm init"))).toBe(false);
      const join = YAML.parse(await byName(w).readFile(`${STATE}/kubeadm-join.yaml`));
      expect(join.discovery.bootstrapToken).toMatchObject({ token, apiServerEndpoint: `${byName("bt-0").address}:6443` });
      expect(join.discovery.bootstrapToken.caCertHashes[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(join.nodeRegistration.name).toBe(w);
    }
    // Not yet in the cluster: nothing ran there.
    expect(await calls("bt-3")).toEqual([]);
  });

  it("never puts the token or a key on a command line", async () => {
    const key = env(
      first.find((s) => s.name.endsWith("-pki"))!,
      "CA_KEY",
    ).split("\n")[1];
    for (const name of NAMES) {
      const text = (await calls(name)).join("\n");
      expect(text).not.toContain(token.split(".")[1]);
      expect(text).not.toContain(key);
    }
    for (const step of first) expect(step.create).not.toContain(token);
  });

  it("lands files with the right owners and modes", async () => {
    const cp = byName("bt-0");
    for (const [file, mode] of [
      ["/etc/kubernetes/pki/ca.key", 0o600],
      ["/etc/kubernetes/pki/etcd/ca.key", 0o600],
      ["/etc/kubernetes/pki/front-proxy-ca.key", 0o600],
      ["/etc/kubernetes/pki/sa.key", 0o600],
      ["/etc/kubernetes/pki/ca.crt", 0o644],
      ["/etc/kubernetes/pki/sa.pub", 0o644],
      ["/etc/kubernetes/dare", 0o700],
      ["/etc/kubernetes/dare/kubeadm-init.yaml", 0o600],
      ["/etc/dare/firewall.nft", 0o600],
      ["/etc/containerd/config.toml", 0o644],
      ["/etc/sysctl.d/90-kubernetes.conf", 0o644],
      ["/etc/kubernetes/enc", 0o700],
      ["/etc/kubernetes/enc/encryption.yaml", 0o600],
      ["/etc/kubernetes/audit/policy.yaml", 0o600],
    ] as const) {
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
    const worker = byName("bt-1");
    expect((await worker.stat("/etc/kubernetes/dare/kubeadm-join.yaml")).mode).toBe(0o600);
    expect(await worker.readFile("/etc/kubernetes/dare/kubeadm-join.yaml")).not.toContain(token);
    // Workers get no CA key, no encryption key, no audit policy.
    for (const file of ["/etc/kubernetes/pki/ca.key", "/etc/kubernetes/enc", "/etc/kubernetes/audit"]) {
      expect([file, (await worker.exec(`test -e ${file}`)).code]).toEqual([file, 1]);
    }
    // The encryption configuration on the host is the program's, with its generated key.
    const placed = YAML.parse(await cp.readFile("/etc/kubernetes/enc/encryption.yaml"));
    expect(placed).toEqual(
      YAML.parse(
        env(
          first.find((s) => s.name.endsWith("-pki"))!,
          "ENCRYPTION_CONFIG",
        ),
      ),
    );
    expect(Buffer.from(placed.resources[0].providers[0].secretbox.keys[0].secret, "base64")).toHaveLength(32);
  });

  it("second run changes nothing: no init, no join, no restart, no file rewritten", async () => {
    const cp = byName("bt-0");
    const stamp =
      "stat -c '%n %Y %s' /etc/kubernetes/pki/ca.key /etc/containerd/config.toml /etc/dare/firewall.nft /etc/kubernetes/kubelet.conf " +
      "/etc/kubernetes/enc/encryption.yaml /etc/kubernetes/audit/policy.yaml";
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
    expect(await calls("bt-3")).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
    for (const w of ["bt-1", "bt-2"]) expect((await calls(w)).filter((l) => l.includes("kubeadm join"))).toEqual([]);
    // The token was made valid again before the join.
    expect(await calls("bt-0")).toContainEqual(
      "KUBECONFIG=/etc/kubernetes/admin.conf kubeadm token create --config /etc/kubernetes/dare/kubeadm-token.yaml",
    );
  });

  it("removing a worker drains and deletes its node on the control plane, then resets it", async () => {
    await clearCalls();
    const removed = second.filter((s) => s.delete && (s.host === "bt-3" || s.name.endsWith("node-bt-3")));
    const order = deletionOrder(removed);
    expect(order.map((s) => s.name)).toEqual(["k8s-bt-0-node-bt-3", "k8s-bt-3-join"]);
    for (const step of order) await run(step, "delete");
    const cp = await calls("bt-0");
    expect(cp).toContainEqual(
      "KUBECONFIG=/etc/kubernetes/admin.conf kubectl drain bt-3 --ignore-daemonsets --delete-emptydir-data --timeout=600s",
    );
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubectl delete node bt-3 --wait=true");
    expect(cp.findIndex((l) => l.includes("drain"))).toBeLessThan(cp.findIndex((l) => l.includes("delete node")));
    expect(await calls("bt-3")).toContainEqual("kubeadm reset -f");
    expect((await byName("bt-3").exec("test -e /etc/kubernetes/kubelet.conf")).code).toBe(1);
    // The others are untouched.
    expect(await calls("bt-1")).toEqual([]);
  });

  it("raising the version by one minor upgrades the control plane first, then the workers, drained from the control plane", async () => {
    await clearCalls();
    // What the workers' Nodes report until their kubelets run the new version (the control plane's stand-in reads it).
    for (const w of ["bt-1", "bt-2"]) await byName("bt-0").writeFile(`${STATE}/node-version-${w}`, "v1.36.4");
    const steps = await program(NAMES.slice(0, 3), { version: "1.37.0" });
    const ran = await runAll(steps);
    expect(ran.indexOf("k8s-bt-0-upgrade")).toBeLessThan(ran.indexOf("k8s-bt-1-upgrade"));
    const cp = await calls("bt-0");
    expect(cp).toContainEqual("KUBECONFIG=/etc/kubernetes/admin.conf kubeadm upgrade apply -y v1.37.0");
    // Preparation leaves installed packages to the upgrade step.
    expect(cp.filter((l) => l.startsWith("apt-get install") && l.includes("kubeadm"))).toEqual([
      "apt-get install -y -q --allow-change-held-packages kubeadm=1.37.0-\\*",
    ]);
    expect(await byName("bt-0").readFile("/etc/apt/sources.list.d/kubernetes.list")).toContain("/core:/stable:/v1.37/deb/");
    for (const w of ["bt-1", "bt-2"]) {
      // Drained and uncordoned by the first control plane, with its own admin.conf, around the worker's step.
      expect(ran.indexOf(`k8s-bt-0-upgrade-drain-${w}`)).toBeLessThan(ran.indexOf(`k8s-${w}-upgrade`));
      expect(ran.indexOf(`k8s-${w}-upgrade`)).toBeLessThan(ran.indexOf(`k8s-bt-0-upgrade-uncordon-${w}`));
      expect(cp).toContainEqual(
        `KUBECONFIG=/etc/kubernetes/admin.conf kubectl drain ${w} --ignore-daemonsets --delete-emptydir-data --timeout=600s`,
      );
      expect(cp).toContainEqual(`KUBECONFIG=/etc/kubernetes/admin.conf kubectl uncordon ${w}`);
      const wc = await calls(w);
      const at = (pattern: RegExp) => wc.findIndex((l) => pattern.test(l));
      const order = [/kubeadm upgrade node/, /kubelet=1\.37\.0/, /systemctl restart kubelet/].map(at);
      expect(order).not.toContain(-1);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(wc.some((l) => l.includes("upgrade apply"))).toBe(false);
      // The worker itself never talks to the API as an admin: no kubectl, no admin kubeconfig on it.
      expect(wc.filter((l) => /kubectl |KUBECONFIG=/.test(l))).toEqual([]);
      expect((await byName(w).exec("test -e /etc/kubernetes/admin.conf")).code).toBe(1);
      expect((await byName(w).exec("ls /run | grep -c dare-admin")).stdout.trim()).toBe("0");
      // The Node reports the new kubelet from now on.
      await byName("bt-0").writeFile(`${STATE}/node-version-${w}`, "v1.37.0");
    }
    // Each worker's drain mark is gone once it is back.
    expect((await byName("bt-0").exec(`ls ${STATE} | grep -c drain-mark`)).stdout.trim()).toBe("0");
    // At the version now: a rerun upgrades nothing.
    await clearCalls();
    await runAll(steps);
    for (const name of NAMES.slice(0, 3))
      expect((await calls(name)).filter((l) => /upgrade (apply|node)|kubectl (drain|uncordon|annotate)/.test(l))).toEqual([]);
  });

  it("refuses a downgrade on the first control plane before any host changes", async () => {
    await clearCalls();
    const steps = await program(NAMES.slice(0, 3), { version: "1.36.4" });
    const upgrade = steps.find((s) => s.name === "k8s-bt-0-upgrade")!;
    const result = await sshExec(byName("bt-0"), SSH_KEY.privateKeyOpenssh, upgrade.create, { stdin: upgrade.stdin });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      "refusing to change bt-0 from v1.37.0 to v1.36.4: kubeadm cannot downgrade; set dare:kubernetesVersion back to 1.37.0",
    );
    expect((await calls("bt-0")).filter((l) => /apt-get|upgrade|drain/.test(l))).toEqual([]);
  });

  it("rotates the Secret encryption key in steps, and refuses a configuration that drops the key in use", async () => {
    const cp = byName("bt-0");
    const pkiOf = async (keys: string[]) =>
      (await program(NAMES.slice(0, 3), { version: "1.37.0", keys })).find((s) => s.name === "k8s-bt-0-pki")!;
    const onHost = async () =>
      YAML.parse(await cp.readFile("/etc/kubernetes/enc/encryption.yaml")).resources[0].providers[0].secretbox.keys.map(
        (k: { name: string; secret: string }) => k.name,
      );
    expect(await onHost()).toEqual(["key1"]);
    const jump = await pkiOf(["key2"]);
    const refused = await sshExec(cp, SSH_KEY.privateKeyOpenssh, jump.create, { stdin: jump.stdin });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      "refusing to replace /etc/kubernetes/enc/encryption.yaml: the new configuration drops the key this API server encrypts with now",
    );
    expect(await onHost()).toEqual(["key1"]);
    // The documented order: add the new key as a reader, make it the writer, (rewrite Secrets), drop the old one.
    for (const keys of [["key1", "key2"], ["key2", "key1"], ["key2"]]) {
      const placed = await run(await pkiOf(keys));
      expect(placed).toContain("placed /etc/kubernetes/enc/encryption.yaml");
      expect(await onHost()).toEqual(keys);
      expect((await cp.stat("/etc/kubernetes/enc/encryption.yaml")).mode).toBe(0o600);
    }
    // The CAs were left as they were, and a rerun changes nothing.
    expect(await run(await pkiOf(["key2"]))).not.toContain("placed");
  });

  it("refuses to move a running cluster's API endpoint, and skips init when it stays", async () => {
    const steps = await program(NAMES.slice(0, 3), { version: "1.37.0" });
    const init = steps.find((s) => s.name === "k8s-bt-0-init")!;
    const address = byName("bt-0").address;
    const runInit = () => sshExec(byName("bt-0"), SSH_KEY.privateKeyOpenssh, init.create, { stdin: init.stdin });
    // What kubeadm init leaves: the admin kubeconfig pointing at the endpoint it was given.
    await byName("bt-0").writeFile("/etc/kubernetes/admin.conf", `clusters:\n- cluster:\n    server: https://${address}:6443\n`);
    const same = await runInit();
    expect(same.code).toBe(0);
    expect(same.stdout).toContain("bt-0: kubeadm init already done");
    await byName("bt-0").writeFile("/etc/kubernetes/admin.conf", "clusters:\n- cluster:\n    server: https://192.0.2.10:6443\n");
    const moved = await runInit();
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain(`bt-0: refusing to move the running cluster's API endpoint from 192.0.2.10:6443 to ${address}:6443`);
  });
});

describe("three control planes", () => {
  let steps: Step[];
  beforeAll(async () => {
    await Promise.all(hosts.map((h) => h.exec(`rm -rf /etc/kubernetes /etc/dare /etc/containerd ${STATE} ${STUB_CALL_LOG}`)));
    steps = await program(NAMES, { controlPlanes: 3 });
  });

  it("a failed join is undone, keeping the shared CAs, so the next run joins", async () => {
    await byName("bt-2").writeFile("/etc/dare-test-fail", "");
    await expect(runAll(steps)).rejects.toThrow(
      /k8s-bt-2-join \(create\) failed[\s\S]*kubeadm join failed \(output above\); the host is reset/,
    );
    const host = byName("bt-2");
    expect(await calls("bt-2")).toContainEqual("kubeadm reset -f");
    expect((await host.exec("test -e /etc/kubernetes/kubelet.conf")).code).toBe(1);
    expect((await host.stat("/etc/kubernetes/pki/ca.key")).mode).toBe(0o600);
    expect((await host.exec("cmp /etc/kubernetes/pki/etcd/ca.key /dev/null")).code).toBe(1);
    expect(await host.readFile("/etc/kubernetes/dare/kubeadm-join.yaml")).toContain("<redacted>");
  });

  it("joins the other control planes with the shared CAs, and the worker after them", async () => {
    const ran = await runAll(steps);
    expect(ran.indexOf("k8s-bt-1-join")).toBeLessThan(ran.indexOf("k8s-bt-2-join"));
    expect(ran.indexOf("k8s-bt-2-join")).toBeLessThan(ran.indexOf("k8s-bt-3-join"));
    const digest = (name: string) =>
      byName(name).exec("sha256sum /etc/kubernetes/pki/ca.key /etc/kubernetes/pki/sa.key /etc/kubernetes/pki/etcd/ca.key | cut -d' ' -f1");
    const first = (await digest("bt-0")).stdout;
    expect(first.trim().split("\n")).toHaveLength(3);
    for (const cp of ["bt-1", "bt-2"]) {
      expect((await digest(cp)).stdout).toBe(first);
      const join = YAML.parse(await byName(cp).readFile(`${STATE}/kubeadm-join.yaml`));
      expect(join.controlPlane.localAPIEndpoint.advertiseAddress).toBe(byName(cp).address);
      expect(join.controlPlane.certificateKey).toBeUndefined();
    }
    expect((await byName("bt-3").exec("test -e /etc/kubernetes/pki/ca.key")).code).toBe(1);
    expect(YAML.parse(await byName("bt-3").readFile(`${STATE}/kubeadm-join.yaml`)).controlPlane).toBeUndefined();
  });

  it("removing two control planes removes their etcd members one at a time, each after a health check", async () => {
    await clearCalls();
    const leaving = steps.filter((s) => s.delete && ["bt-1", "bt-2"].some((n) => s.host === n || s.name.endsWith(`node-${n}`)));
    const order = deletionOrder(leaving).map((s) => s.name);
    expect(order.indexOf("k8s-bt-0-node-bt-2")).toBeLessThan(order.indexOf("k8s-bt-0-node-bt-1"));
    expect(order.indexOf("k8s-bt-0-node-bt-2")).toBeLessThan(order.indexOf("k8s-bt-2-join"));
    expect(order.indexOf("k8s-bt-0-node-bt-1")).toBeLessThan(order.indexOf("k8s-bt-1-join"));
    for (const step of deletionOrder(leaving)) await run(step, "delete");
    const cp = (await calls("bt-0")).filter((l) => /etcdctl|drain|delete node/.test(l)).map((l) => l.replace(/^KUBECONFIG=\S+ /, ""));
    const etcd =
      "kubectl -n kube-system exec etcd-bt-0 -- etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key";
    expect(cp).toEqual([
      "kubectl drain bt-2 --ignore-daemonsets --delete-emptydir-data --timeout=600s",
      `${etcd} endpoint health --cluster`,
      `${etcd} member list`,
      `${etcd} member remove 2a1b2c3d4e5f6a7b`,
      "kubectl delete node bt-2 --wait=true",
      "kubectl drain bt-1 --ignore-daemonsets --delete-emptydir-data --timeout=600s",
      `${etcd} endpoint health --cluster`,
      `${etcd} member list`,
      `${etcd} member remove 1a1b2c3d4e5f6a7b`,
      "kubectl delete node bt-1 --wait=true",
    ]);
    for (const name of ["bt-1", "bt-2"]) {
      expect(await calls(name)).toContainEqual("kubeadm reset -f");
      // A control plane that left keeps no key to the cluster's Secrets.
      expect([name, (await byName(name).exec("test -e /etc/kubernetes/enc")).code]).toEqual([name, 1]);
    }
  });
});
