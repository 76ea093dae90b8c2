/**
 * A real `pulumi up` of the bootstrap layer on network-namespace hosts with real OpenSSH: the real CLI
 * runs the program, the command plugin (stand-in, see standin-providers/README.md) runs the host steps
 * over SSH, kubeadm and friends are the recording stand-ins of the host tests. The stack stops after the
 * bootstrap layer (`dare:stopAfter: bootstrap`; platform.test.ts applies the other layers to a real API server). Not with
 * --target or --exclude: the engine creates explicit providers in any targeted update whatever their
 * dependencies, so the Kubernetes provider came up before the cluster and the MPI CRD's ConfigFile (a
 * remote component, constructed at once) failed against it; --exclude of the provider left the state
 * with a child whose parent was excluded (v3.274.1's snapshot integrity check refused it).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readStubCalls, startHosts, stopHosts, TestHost } from "../hosts/harness";
import { bootstrapStubs } from "../hosts/stubs";
import { requireEngine, serveChartMirror, workspace, Workspace } from "./support";
import { existingHostsStack, hostName } from "./stacks";

jest.setTimeout(900_000);

// Host names of this run: namespaces are per host name, so two runs on one machine do not meet.
const RUN = `e${process.pid % 10000}`;
const NAMES = [0, 1, 2, 3].map((i) => `${RUN}-${hostName(i)}`);

let hosts: TestHost[] = [];
let mirror: { url: string; close: () => Promise<void> };
let ws: Workspace;

const upArgs = ["--yes", "--skip-preview"];
const previewJson = async () => JSON.parse(await ws.ok(["preview", "--json"])) as { steps: Array<{ op: string; urn: string }> };
const changed = (steps: Array<{ op: string; urn: string }>) =>
  steps
    .filter((s) => s.op !== "same" && !s.urn.includes("pulumi:pulumi:Stack"))
    .map((s) => `${s.op} ${s.urn.split("::").pop()}`)
    .sort();
const calls = (i: number) => readStubCalls(hosts[i]).catch(() => [] as string[]);

beforeAll(async () => {
  requireEngine();
  mirror = await serveChartMirror();
  // The operator's deployment key, authorised on the hosts before the first up (README: existing hosts).
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-engine-key-"));
  const keyFile = path.join(keyDir, "dare-deployer");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dare-deployer", "-f", keyFile]);
  hosts = await startHosts(NAMES, { authorizedKey: fs.readFileSync(`${keyFile}.pub`, "utf8").trim(), stubs: bootstrapStubs(NAMES) });
  // Host names in the stack are cp-0, w-0…; the namespaces' names carry the run prefix.
  ws = await workspace(
    "engine",
    existingHostsStack({
      hosts: hosts.slice(0, 3).map((h) => h.address),
      hostKeys: hosts.slice(0, 3).map((h) => h.hostPublicKey),
      chartMirror: mirror.url,
      stopAfter: "bootstrap",
    }),
  );
  // As the README says: from the file, through stdin, never on a command line.
  await ws.ok(["config", "set", "--secret", "sshPrivateKey"], { stdin: fs.readFileSync(keyFile, "utf8") });
  fs.rmSync(keyDir, { recursive: true, force: true });
});
afterAll(async () => {
  if (ws) await ws.pulumi(["destroy", "--yes", "--skip-preview"]).catch(() => undefined);
  ws?.remove();
  await stopHosts(hosts);
  await mirror?.close();
});

it("first up: prepares every host, initialises the control plane, joins the workers", async () => {
  const out = await ws.ok(["up", ...upArgs]);
  expect(out).toMatch(/Resources:/);
  const cp = await calls(0);
  expect(cp).toContainEqual("kubeadm init --config /etc/kubernetes/dare/kubeadm-init.yaml --skip-token-print");
  for (const w of [1, 2]) expect(await calls(w)).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
  expect(await calls(3)).toEqual([]);
});

it("second up: no changes", async () => {
  const result = await ws.pulumi(["preview", "--expect-no-changes"]);
  expect({ code: result.code, output: result.code === 0 ? "" : result.stdout }).toEqual({ code: 0, output: "" });
});

it("the admin kubeconfig's certificate is renewed by `pulumi up` within dare:certificateRenewalDays (90) of its expiry, not before", async () => {
  // The state is moved in time: the certificate's recorded end of validity set 91, then 89 days ahead.
  const expiringIn = async (days: number) => {
    const state = JSON.parse(await ws.ok(["stack", "export"]));
    const admin = state.deployment.resources.filter(
      (r: { type: string; urn: string }) => r.type === "tls:index/locallySignedCert:LocallySignedCert" && r.urn.endsWith("-admin"),
    );
    expect(admin).toHaveLength(1);
    admin[0].outputs.validityEndTime = new Date(Date.now() + days * 86400_000).toISOString().replace(/\.\d+Z$/, "Z");
    const file = path.join(ws.dir, "state.json");
    fs.writeFileSync(file, JSON.stringify(state));
    await ws.ok(["stack", "import", "--file", file]);
    return admin[0].urn.split("::").pop() as string;
  };
  const kubeconfig = async () => ws.ok(["stack", "output", "kubeconfig", "--show-secrets"]);
  const before = await kubeconfig();

  await expiringIn(91);
  const outside = await ws.pulumi(["preview", "--expect-no-changes"]);
  expect({ code: outside.code, output: outside.code === 0 ? "" : outside.stdout }).toEqual({ code: 0, output: "" });

  const name = await expiringIn(89);
  expect(changed((await previewJson()).steps)).toContain(`replace ${name}`);
  await ws.ok(["up", ...upArgs]);
  const after = await kubeconfig();
  const clientCert = (text: string) => /client-certificate-data: (\S+)/.exec(text)![1];
  expect(clientCert(after)).not.toBe(clientCert(before));
  // The same cluster and key: only the certificate is new, valid a year from now.
  expect(after.replace(/client-certificate-data: \S+/, "")).toBe(before.replace(/client-certificate-data: \S+/, ""));
  const notAfter = execFileSync("openssl", ["x509", "-noout", "-enddate"], { input: Buffer.from(clientCert(after), "base64") }).toString();
  expect(Math.abs(Date.parse(notAfter.replace(/^notAfter=/, "").trim()) - (Date.now() + 365 * 86400_000))).toBeLessThan(3600_000);
  const again = await ws.pulumi(["preview", "--expect-no-changes"]);
  expect({ code: again.code, output: again.code === 0 ? "" : again.stdout }).toEqual({ code: 0, output: "" });
});

it("one more worker: only the new host's steps, and a fresh join token", async () => {
  await ws.ok(["config", "set", "--path", "hosts[3].name", "w-2"]);
  await ws.ok(["config", "set", "--path", "hosts[3].role", "workers"]);
  await ws.ok(["config", "set", "--path", "hosts[3].address", hosts[3].address]);
  await ws.ok(["config", "set", "--path", "hosts[3].disks[0]", "/dev/vdb"]);
  // Its SSH host key, as an operator reads it on the host's console.
  await ws.ok(["config", "set", "--path", "hosts[3].hostKey", hosts[3].hostPublicKey]);
  const plan = changed((await previewJson()).steps);
  expect(plan).toEqual(
    [
      "create k8s-w-2-join",
      "create k8s-w-2-prepare",
      "create k8s-w-2-upgrade",
      "create k8s-cp-0-node-w-2",
      // Its kubelet's drop-in configuration, before its join.
      "create k8s-w-2-kubelet-config",
      // It holds a disk: the steps that take its OSD out of Ceph before it leaves.
      "create k8s-cp-0-osd-w-2",
      "create k8s-cp-0-osd-w-2-disk-0",
      // Its upgrade's drain and uncordon, and the approval of its kubelet's serving certificate, on the control plane.
      "create k8s-cp-0-upgrade-drain-w-2",
      "create k8s-cp-0-upgrade-uncordon-w-2",
      "create k8s-cp-0-kubelet-serving-w-2",
      "replace k8s-cp-0-token",
      "replace k8s-cp-0-token-revoke",
    ].sort(),
  );
  await ws.ok(["up", ...upArgs]);
  expect(await calls(3)).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
});

it("back to two workers: the removed host is drained on the control plane, then reset", async () => {
  await ws.ok(["config", "rm", "--path", "hosts[3]"]);
  await ws.ok(["up", ...upArgs]);
  const cp = (await calls(0)).map((l) => l.replace(/^KUBECONFIG=\S+ /, ""));
  expect(cp).toContainEqual(expect.stringMatching(/^kubectl drain w-2 /));
  expect(await calls(3)).toContainEqual("kubeadm reset -f");
});

it("a pool's label, taint and kubelet setting and an API server flag: only the steps that apply them change, once", async () => {
  await ws.ok(["config", "set", "--path", "nodes.pools[0].labels.team", "ml"]);
  await ws.ok(["config", "set", "--path", "nodes.pools[0].taints[0]", "dedicated=ml:NoSchedule"]);
  await ws.ok(["config", "set", "--path", "nodes.pools[0].kubelet.maxPods", "150"]);
  await ws.ok(["config", "set", "--path", "controlPlaneExtraArgs.apiServer.service-node-port-range", "30000-32000"]);
  const plan = changed((await previewJson()).steps);
  expect(plan).toEqual(
    [
      // The configurations kubeadm init and join were given (guarded: they do not run again).
      "update k8s-cp-0-init",
      "update k8s-w-0-join",
      "update k8s-w-1-join",
      // What applies them: labels and taints from the control plane, each worker's kubelet, the control plane's manifests.
      "update k8s-cp-0-node-w-0",
      "update k8s-cp-0-node-w-1",
      "update k8s-w-0-kubelet-config",
      "update k8s-w-1-kubelet-config",
      "update k8s-cp-0-control-plane",
    ].sort(),
  );
  await Promise.all(hosts.map((h) => h.exec("rm -f /var/log/dare-stub-calls.log")));
  await ws.ok(["up", ...upArgs]);
  const cp = (await calls(0)).map((l) => l.replace(/^KUBECONFIG=\S+ /, ""));
  expect(cp).toContainEqual("kubectl label node w-0 --overwrite dare.io/pool=workers node-role.kubernetes.io/worker= team=ml");
  expect(cp).toContainEqual("kubectl taint node w-1 dedicated=ml:NoSchedule --overwrite");
  expect(cp).toContainEqual(expect.stringMatching(/^kubeadm init phase control-plane all --config /));
  expect(cp).toContainEqual(expect.stringMatching(/^kubeadm init phase upload-config kubeadm --config /));
  for (const w of [1, 2]) {
    expect((await calls(w)).filter((l) => l === "systemctl restart kubelet")).toEqual(["systemctl restart kubelet"]);
    expect(await hosts[w].readFile("/etc/kubernetes/kubelet.conf.d/50-dare.conf")).toMatch(/^maxPods: 150$/m);
  }
  const again = await ws.pulumi(["preview", "--expect-no-changes"]);
  expect({ code: again.code, output: again.code === 0 ? "" : again.stdout }).toEqual({ code: 0, output: "" });
});

it("destroy: every host is reset", async () => {
  await ws.ok(["destroy", "--yes", "--skip-preview"]);
  for (const i of [0, 1, 2]) expect(await calls(i)).toContainEqual("kubeadm reset -f");
});
