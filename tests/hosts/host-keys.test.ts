/**
 * SSH host keys on real OpenSSH servers (tests/hosts/harness.ts): the program pins each existing host's
 * configured key (dare:hosts[].hostKey) on every step's connection, and a host answering with another key
 * gets no session, so no script and none of the secret parameters on its stdin.
 *
 * The client here is OpenSSH, told to accept the pinned key only (a known_hosts with that key alone, strict
 * checking, the key's type as the only host-key algorithm): what @pulumi/command 1.2.1 does with `hostKey`
 * (provider/pkg/provider/remote/connection.go: ssh.FixedHostKey and HostKeyAlgorithms = the key's type).
 * Needs root (CI runs as root): without it the tests fail with the harness's message.
 */
import * as YAML from "yaml";
import { DEFAULT_NETWORK } from "../../lib/config";
import { Infrastructure } from "../../components/infrastructure";
import { ofType, runMocked, unsecret } from "../support/mocked";
import { sshExec, startHosts, stopHosts, TestHost } from "./harness";
import { program, runStep, sshKeyOf, Step } from "./program";
import { bootstrapStubs } from "./stubs";

jest.setTimeout(120_000);

const CLUSTER = "hk";
const NAMES = ["hk-0", "hk-1"];
let hosts: TestHost[] = [];
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const keyOnly = (line: string) => line.split(/\s+/).slice(0, 2).join(" ");

beforeAll(async () => {
  hosts = await startHosts(NAMES, { authorizedKey: sshKeyOf(CLUSTER).publicKeyOpenssh, stubs: bootstrapStubs(NAMES) });
});
afterAll(async () => {
  await stopHosts(hosts);
});

const firstStepOn = (steps: Step[], host: string) => steps.find((s) => s.host === host)!;
const ran = async (host: TestHost) => (await host.exec("test -e /tmp/dare-host-key-probe")).code === 0;

it("pins each host's own key, which its sshd presents: the step's connection gets through", async () => {
  const steps = await program(CLUSTER, hosts, [{ name: "hk-0", controlPlane: true }, { name: "hk-1" }]);
  for (const name of NAMES) {
    const step = firstStepOn(steps, name);
    expect({ step: step.name, hostKey: step.hostKey }).toEqual({ step: step.name, hostKey: keyOnly(byName(name).hostPublicKey) });
    const r = await sshExec(byName(name), sshKeyOf(CLUSTER).privateKeyOpenssh, "touch /tmp/dare-host-key-probe", { hostKey: step.hostKey });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await ran(byName(name))).toBe(true);
  }
});

it("refuses a host that answers with another key: no session, no script, no parameters", async () => {
  await Promise.all(hosts.map((h) => h.exec("rm -f /tmp/dare-host-key-probe")));
  // The stack says hk-0's key is hk-1's: whoever answers on hk-0's address without hk-1's private key is refused.
  const steps = await program(CLUSTER, hosts, [
    { name: "hk-0", controlPlane: true, hostKey: byName("hk-1").hostPublicKey },
    { name: "hk-1" },
  ]);
  const step = firstStepOn(steps, "hk-0");
  expect(step.hostKey).toBe(keyOnly(byName("hk-1").hostPublicKey));
  const refused = await runStep(CLUSTER, hosts, step);
  expect(refused.code).toBe(255);
  expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED[\s\S]*Host key verification failed/);
  const probe = await sshExec(byName("hk-0"), sshKeyOf(CLUSTER).privateKeyOpenssh, "touch /tmp/dare-host-key-probe", {
    hostKey: step.hostKey,
  });
  expect(probe.code).toBe(255);
  expect(await ran(byName("hk-0"))).toBe(false);
  // The same key on its own host is still fine: the refusal is the mismatch, not the key.
  const own = await sshExec(byName("hk-1"), sshKeyOf(CLUSTER).privateKeyOpenssh, "true", { hostKey: step.hostKey });
  expect(own.code).toBe(0);
});

it("refuses a bastion that answers with another key before reaching the host behind it", async () => {
  const key = sshKeyOf(CLUSTER).privateKeyOpenssh;
  const through = (viaHostKey: string) =>
    sshExec(byName("hk-1"), key, "true", {
      via: byName("hk-0"),
      viaPrivateKeyPem: key,
      hostKey: byName("hk-1").hostPublicKey,
      viaHostKey,
    });
  expect((await through(byName("hk-0").hostPublicKey)).code).toBe(0);
  const refused = await through(byName("hk-1").hostPublicKey);
  expect(refused.code).toBe(255);
  expect(refused.stderr).toMatch(/Host key verification failed/);
});

it("an OpenStack VM's generated host key, installed from its user data as cloud-init does, is the key its steps pin", async () => {
  const resources = await runMocked(
    () =>
      new Infrastructure("hk-os", {
        provider: "openstack",
        clusterName: "hk-os",
        hosts: [],
        network: { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" },
        adminCidrs: ["192.0.2.0/24"],
        nodes: {
          controlPlane: { count: 1, flavor: "m" },
          pools: [{ name: "workers", count: 1, flavor: "m", disks: { count: 1, sizeGb: 10 }, publicIp: false }],
        },
        image: "Ubuntu 24.04",
        sshUser: "ubuntu",
        apiLoadBalancer: false,
      }),
  );
  const instance = ofType(resources, "openstack:compute/instance:Instance").find((r) => (r.inputs as any).name === "hk-os-workers-0")!;
  const { ssh_keys: keys } = YAML.parse(unsecret(instance.inputs).userData);
  // The disk step is the worker's only step in this layer: its connection's pin.
  const diskStep = ofType(resources, "command:remote:Command").find((r) => r.name === "iaas-hk-os-workers-0-disk-0")!;
  const pinned: string = unsecret(diskStep.inputs).connection.hostKey;
  expect(pinned).toBe(keyOnly(keys.ed25519_public));

  // What cloud-init's ssh module does with ssh_keys (cloudinit/config/cc_ssh.py): the files, mode 600.
  const host = byName("hk-1");
  const before = host.hostPublicKey;
  await host.writeFile("/etc/ssh/ssh_host_ed25519_key", keys.ed25519_private, { mode: 0o600 });
  await host.writeFile("/etc/ssh/ssh_host_ed25519_key.pub", `${keys.ed25519_public}\n`, { mode: 0o600 });
  // sshd re-reads its host keys when it re-executes on SIGHUP.
  process.kill(host.pid, "SIGHUP");
  const key = sshKeyOf(CLUSTER).privateKeyOpenssh;
  let r = await sshExec(host, key, "true", { hostKey: pinned });
  for (let i = 0; i < 40 && r.code !== 0; i++) {
    await new Promise((done) => setTimeout(done, 250));
    r = await sshExec(host, key, "true", { hostKey: pinned });
  }
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  // The image's own key is no longer what the host presents.
  expect((await sshExec(host, key, "true", { hostKey: before })).code).toBe(255);
});
