/**
 * Existing hosts behind a jump host (dare:bastion) on real OpenSSH servers (tests/hosts/harness.ts): the
 * cluster hosts' sshd answers only the jump host's address (an nftables rule in each host's namespace), so
 * a step gets through only by the jump host, as its connection's `proxy` says: pinned to the jump host's
 * key and logged in with the jump host's own key (dare:bastionPrivateKey).
 *
 * The client is OpenSSH with a ProxyCommand (`ssh -W`), given what the step's connection holds: what
 * @pulumi/command 1.2.1 does with `proxy` (provider/pkg/provider/remote/proxyConnection.go: an SSH client to
 * the proxy, then a TCP forward to the host through it). Needs root (CI runs as root).
 */
import { generateKeyPairSync } from "crypto";
import { readStubCalls, sshExec, startHosts, stopHosts, TestHost, toOpenSshPrivateKey } from "./harness";
import { program, runStep, sshKeyOf, Step } from "./program";
import { bootstrapStubs } from "./stubs";

jest.setTimeout(180_000);

const CLUSTER = "bj";
const NAMES = ["bj-0", "bj-1", "bj-2"];
let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const keyOnly = (line: string) => line.split(/\s+/).slice(0, 2).join(" ");
// The jump host's own login key: it does not take the cluster's.
const JUMP_KEY = toOpenSshPrivateKey(generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString());

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
  const jump = byName("bj-0");
  // Only the jump key logs in to the jump host.
  const pub = (
    await jump.exec(`printf '%s' '${JUMP_KEY}' > /tmp/k && chmod 600 /tmp/k && ssh-keygen -y -f /tmp/k && rm /tmp/k`)
  ).stdout.trim();
  await jump.writeFile(`/home/${jump.user}/.ssh/authorized_keys`, `${pub}\n`, { mode: 0o600, owner: jump.user });
  // The cluster hosts' sshd answers the jump host only (the real nft: the hosts' own is a recording stand-in).
  for (const name of ["bj-1", "bj-2"]) {
    const r = await byName(name).exec(
      "/usr/sbin/nft add table inet jump_only && " +
        "/usr/sbin/nft add chain inet jump_only input '{ type filter hook input priority 0; policy accept; }' && " +
        `/usr/sbin/nft add rule inet jump_only input tcp dport 22 ip saddr != ${jump.address} reject with tcp reset`,
    );
    if (r.code !== 0) throw new Error(`nft on ${name}: ${r.stderr}`);
  }
});
afterAll(async () => {
  await stopHosts(hosts);
});

const spec = [{ name: "bj-1", controlPlane: true }, { name: "bj-2" }];

it("the cluster hosts are out of reach but from the jump host, which takes only its own key", async () => {
  const key = sshKeyOf(CLUSTER).privateKeyOpenssh;
  expect((await sshExec(byName("bj-1"), key, "true")).stderr).toMatch(/Connection refused/);
  expect((await sshExec(byName("bj-0"), key, "true")).code).toBe(255);
  expect((await sshExec(byName("bj-0"), JUMP_KEY, "true")).code).toBe(0);
});

it("sends every step through the jump host, pinned, with its own key, and the steps run there", async () => {
  const steps = await program(CLUSTER, hosts, spec, "1.36.4", { bastion: { host: byName("bj-0"), privateKey: JUMP_KEY } });
  expect(steps.length).toBeGreaterThan(0);
  for (const step of steps) {
    expect({ step: step.name, proxy: step.proxy }).toEqual({
      step: step.name,
      proxy: {
        host: byName("bj-0").address,
        port: 22,
        user: byName("bj-0").user,
        hostKey: keyOnly(byName("bj-0").hostPublicKey),
        privateKey: JUMP_KEY,
        dialErrorLimit: 30,
        perDialTimeout: 15,
      },
    });
  }
  // Each host's preparation, as the provider would run it: through the jump host, to the host's own pinned key.
  for (const name of ["bj-1", "bj-2"]) {
    const prepare = steps.find((s: Step) => s.name === `k8s-${name}-prepare`)!;
    const r = await runStep(CLUSTER, hosts, prepare);
    expect({ step: prepare.name, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ step: prepare.name, code: 0, stderr: "" });
    expect((await readStubCalls(byName(name))).length).toBeGreaterThan(0);
  }
});

it("a host with viaBastion: false is dialled directly, and a jump host answering with another key is refused", async () => {
  const steps = await program(
    CLUSTER,
    hosts,
    [
      { name: "bj-1", controlPlane: true },
      { name: "bj-0", viaBastion: false },
    ],
    "1.36.4",
    { bastion: { host: byName("bj-0"), privateKey: JUMP_KEY, hostKey: byName("bj-2").hostPublicKey } },
  );
  expect(steps.filter((s) => s.host === "bj-0").every((s) => s.proxy === undefined)).toBe(true);
  const behind = steps.find((s) => s.name === "k8s-bj-1-prepare")!;
  expect(behind.proxy!.hostKey).toBe(keyOnly(byName("bj-2").hostPublicKey));
  const refused = await runStep(CLUSTER, hosts, behind);
  expect(refused.code).toBe(255);
  expect(refused.stderr).toMatch(/Host key verification failed/);
});
