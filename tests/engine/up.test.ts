/**
 * A real `pulumi up` of the bootstrap layer on network-namespace hosts with real OpenSSH: the real CLI
 * runs the program, the command plugin (stand-in, see standin-providers/README.md) runs the host steps
 * over SSH, kubeadm and friends are the recording stand-ins of the host tests. Until the tests have a
 * Kubernetes API server, every `up` here stops after the bootstrap layer: it excludes the Kubernetes
 * provider and everything that depends on it (`--exclude <provider> --exclude-dependents`).
 */
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

const PROVIDER = "urn:pulumi:engine::dare::dare:cluster:KubernetesCluster$pulumi:providers:kubernetes::*";
const upArgs = ["--yes", "--skip-preview", "--exclude", PROVIDER, "--exclude-dependents"];
const previewJson = async () => JSON.parse(await ws.ok(["preview", "--json", "--exclude", PROVIDER, "--exclude-dependents"])) as
  { steps: Array<{ op: string; urn: string }> };
const changed = (steps: Array<{ op: string; urn: string }>) =>
  steps.filter((s) => s.op !== "same" && !s.urn.includes("pulumi:pulumi:Stack")).map((s) => `${s.op} ${s.urn.split("::").pop()}`).sort();
const calls = (i: number) => readStubCalls(hosts[i]).catch(() => [] as string[]);

beforeAll(async () => {
  requireEngine();
  mirror = await serveChartMirror();
  // Logged into with a throwaway key until the program's own key exists (README: existing hosts).
  hosts = await startHosts(NAMES, { authorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZm6Tt8fM1D0H7kx1XvS3nHh3Rk9F0cXq0qfQ6oKXgS placeholder", stubs: bootstrapStubs(NAMES) });
  const stack = (count: number) => existingHostsStack({ hosts: hosts.slice(0, count).map((h) => h.address), subnet: "10.213.0.0/24", chartMirror: mirror.url });
  ws = await workspace("engine", stack(3));
  // Host names in the stack are cp-0, w-0…; the namespaces' names carry the run prefix.
});
afterAll(async () => {
  if (ws) await ws.pulumi(["destroy", "--yes", "--skip-preview"]).catch(() => undefined);
  ws?.remove();
  await stopHosts(hosts);
  await mirror?.close();
});

it("creates the program's SSH key first, which the operator authorises on every host", async () => {
  await ws.ok(["up", "--yes", "--skip-preview", "--target", "urn:pulumi:engine::dare::dare:iaas:Infrastructure$tls:index/privateKey:PrivateKey::*"]);
  const key = (await ws.ok(["stack", "output", "sshPublicKey"])).trim();
  expect(key).toMatch(/^ssh-ed25519 /);
  for (const host of hosts) await host.writeFile(`/home/${host.user}/.ssh/authorized_keys`, `${key}\n`, { mode: 0o600, owner: host.user });
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
  const result = await ws.pulumi(["preview", "--expect-no-changes", "--exclude", PROVIDER, "--exclude-dependents"]);
  expect({ code: result.code, output: result.code === 0 ? "" : result.stdout }).toEqual({ code: 0, output: "" });
});

it("one more worker: only the new host's steps, and a fresh join token", async () => {
  await ws.ok(["config", "set", "--path", "hosts[3].name", "w-2"]);
  await ws.ok(["config", "set", "--path", "hosts[3].role", "workers"]);
  await ws.ok(["config", "set", "--path", "hosts[3].address", hosts[3].address]);
  await ws.ok(["config", "set", "--path", "hosts[3].disks[0]", "/dev/vdb"]);
  const plan = changed((await previewJson()).steps);
  expect(plan).toEqual([
    "create k8s-w-2-join", "create k8s-w-2-prepare", "create k8s-w-2-upgrade", "create k8s-cp-0-node-w-2",
    "replace k8s-cp-0-token",
  ].sort());
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

it("destroy: every host is reset", async () => {
  await ws.ok(["destroy", "--yes", "--skip-preview"]);
  for (const i of [0, 1, 2]) expect(await calls(i)).toContainEqual("kubeadm reset -f");
});
