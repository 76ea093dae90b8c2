/**
 * Existing hosts behind a jump host (dare:bastion) under the real Pulumi CLI: the hosts' sshd answers the
 * jump host only (nftables in their namespaces), the jump host takes only its own key (dare:bastionPrivateKey,
 * set with --secret), and `pulumi up` bootstraps the hosts through it (the command plugin's `proxy`; stand-in,
 * see standin-providers/README.md), then destroys them through it.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { readStubCalls, sshExec, startHosts, stopHosts, TestHost } from "../hosts/harness";
import { bootstrapStubs } from "../hosts/stubs";
import { requireEngine, serveChartMirror, workspace, Workspace } from "./support";
import { existingHostsStack } from "./stacks";

jest.setTimeout(900_000);

const RUN = `b${process.pid % 10000}`;
const NAMES = ["jump", "cp-0", "w-0"].map((n) => `${RUN}-${n}`);

let hosts: TestHost[] = [];
let mirror: { url: string; close: () => Promise<void> };
let ws: Workspace;
let dir: string;
const key = (name: string) => fs.readFileSync(path.join(dir, name), "utf8");
const calls = (i: number) => readStubCalls(hosts[i]).catch(() => [] as string[]);

beforeAll(async () => {
  requireEngine();
  mirror = await serveChartMirror();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-engine-bastion-"));
  for (const name of ["dare-deployer", "jump-key"])
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path.join(dir, name)]);
  hosts = await startHosts(NAMES, { authorizedKey: key("dare-deployer.pub").trim(), stubs: bootstrapStubs(NAMES) });
  const [jump, ...behind] = hosts;
  await jump.writeFile(`/home/${jump.user}/.ssh/authorized_keys`, key("jump-key.pub"), { mode: 0o600, owner: jump.user });
  for (const host of behind) {
    // The real nft: the hosts' own is a recording stand-in.
    const r = await host.exec(
      "/usr/sbin/nft add table inet jump_only && " +
        "/usr/sbin/nft add chain inet jump_only input '{ type filter hook input priority 0; policy accept; }' && " +
        `/usr/sbin/nft add rule inet jump_only input tcp dport 22 ip saddr != ${jump.address} reject with tcp reset`,
    );
    if (r.code !== 0) throw new Error(`nft on ${host.name}: ${r.stderr}`);
  }
  const stack = YAML.parse(
    existingHostsStack({
      hosts: behind.map((h) => h.address),
      hostKeys: behind.map((h) => h.hostPublicKey),
      chartMirror: mirror.url,
      stopAfter: "bootstrap",
    }),
  );
  stack.config["dare:bastion"] = { address: jump.address, user: jump.user, hostKey: jump.hostPublicKey };
  ws = await workspace("bastion", YAML.stringify(stack));
  await ws.ok(["config", "set", "--secret", "sshPrivateKey"], { stdin: key("dare-deployer") });
  await ws.ok(["config", "set", "--secret", "bastionPrivateKey"], { stdin: key("jump-key") });
});
afterAll(async () => {
  if (ws) await ws.pulumi(["destroy", "--yes", "--skip-preview"]).catch(() => undefined);
  ws?.remove();
  await stopHosts(hosts);
  await mirror?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it("the hosts are out of the deployer's direct reach, and the jump host refuses the deployer's key", async () => {
  expect((await sshExec(hosts[1], key("dare-deployer"), "true")).stderr).toMatch(/Connection refused/);
  expect((await sshExec(hosts[0], key("dare-deployer"), "true")).code).toBe(255);
});

it("up: bootstraps both hosts through the jump host, and a second up changes nothing", async () => {
  await ws.ok(["up", "--yes", "--skip-preview"]);
  expect(await calls(1)).toContainEqual("kubeadm init --config /etc/kubernetes/dare/kubeadm-init.yaml --skip-token-print");
  expect(await calls(2)).toContainEqual("kubeadm join --config /etc/kubernetes/dare/kubeadm-join.yaml");
  // Nothing ran on the jump host itself.
  expect(await calls(0)).toEqual([]);
  const outputs = JSON.parse(await ws.ok(["stack", "output", "--json"]));
  expect(outputs.bastion).toEqual({
    address: hosts[0].address,
    port: 22,
    user: hosts[0].user,
    hostKey: hosts[0].hostPublicKey.split(" ").slice(0, 2).join(" "),
  });
  const again = await ws.pulumi(["preview", "--expect-no-changes"]);
  expect({ code: again.code, output: again.code === 0 ? "" : again.stdout }).toEqual({ code: 0, output: "" });
});

it("destroy: both hosts are reset through the jump host", async () => {
  await ws.ok(["destroy", "--yes", "--skip-preview"]);
  for (const i of [1, 2]) expect(await calls(i)).toContainEqual("kubeadm reset -f");
});
