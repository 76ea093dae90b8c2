/**
 * The test-host harness itself, for real: four hosts (network + mount + UTS
 * namespaces, each with its own sshd), reached over SSH from this process and
 * from each other. Needs root and iproute2/openssh/sudo (CI runs as root):
 * without them the tests fail with the harness's message, they never skip.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  TestHost,
  hostsBaseDir,
  installClientKey,
  readStubCalls,
  recordingStub,
  sshExec,
  startHosts,
  stopHosts,
  toOpenSshPrivateKey,
} from "./harness";

jest.setTimeout(60_000);

const NAMES = ["ha", "hb", "hc", "hd"];
let keyDir: string;
let privateKey: string;
let publicKey: string;
let hosts: TestHost[] = [];

/** This run's test-host namespaces (another run on the same machine has its own, and may be running now). */
function netnsList(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((n) => n.startsWith(`dare-t-r${process.pid.toString(36)}-`));
}

beforeAll(async () => {
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-harness-test-"));
  const kg = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "harness-test", "-f", path.join(keyDir, "id")], {
    encoding: "utf8",
  });
  if (kg.status !== 0) throw new Error(`ssh-keygen failed: ${kg.stderr}`);
  privateKey = fs.readFileSync(path.join(keyDir, "id"), "utf8");
  publicKey = fs.readFileSync(path.join(keyDir, "id.pub"), "utf8").trim();

  hosts = await startHosts(NAMES, {
    authorizedKey: publicKey,
    stubs: {
      kubeadm: recordingStub("kubeadm", undefined, { env: ["KUBECONFIG"] }),
      systemctl: recordingStub("systemctl", 'if [ "$1" = is-active ]; then echo active; fi; exit 0'),
    },
  });
});

afterAll(async () => {
  if (hosts.length) await stopHosts(hosts);
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
});

const byName = (n: string) => hosts.find((h) => h.name === n)!;

test("four hosts come up in parallel within seconds, each on its own address", () => {
  expect(hosts.map((h) => h.name)).toEqual(NAMES);
  expect(new Set(hosts.map((h) => h.address)).size).toBe(4);
  for (const h of hosts) {
    expect(h.address).toMatch(/^10\.213\.0\.\d+$/);
    expect(h.port).toBe(22);
    expect(h.user).toBe("ubuntu");
    expect(netnsList()).toContain(`dare-t-${h.id}`);
    // This run's own names: another run's host cp-0 is another namespace.
    expect(h.id).toBe(`r${process.pid.toString(36)}-${h.name}`);
  }
});

test("each host answers over SSH with its own hostname and address", async () => {
  const results = await Promise.all(hosts.map((h) => sshExec(h, privateKey, "hostname; ip -4 -o addr show dev eth0; id -un")));
  results.forEach((r, i) => {
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [hostname, addrLine, user] = r.stdout.trim().split("\n");
    expect(hostname).toBe(hosts[i].name);
    expect(addrLine).toContain(`inet ${hosts[i].address}/24`);
    expect(user).toBe("ubuntu");
  });
});

test("key-only auth: a wrong key and passwords are refused", async () => {
  const other = crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const r = await sshExec(hosts[0], other, "true");
  expect(r.code).toBe(255);
  expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
  const cfg = await hosts[0].readFile("/etc/ssh/sshd_config");
  expect(cfg).toMatch(/^PasswordAuthentication no$/m);
});

test("a PKCS#8 ED25519 key is converted to OpenSSH form and works", async () => {
  const { privateKey: k, publicKey: p } = crypto.generateKeyPairSync("ed25519");
  const pkcs8 = k.export({ type: "pkcs8", format: "pem" }).toString();
  const converted = toOpenSshPrivateKey(pkcs8);
  expect(converted).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  // ssh-keygen derives the same public key from the converted file.
  const f = path.join(keyDir, "conv");
  fs.writeFileSync(f, converted, { mode: 0o600 });
  const y = spawnSync("ssh-keygen", ["-y", "-f", f], { encoding: "utf8" });
  expect(y.status).toBe(0);
  const raw = Buffer.from(p.export({ format: "jwk" }).x as string, "base64url");
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), raw]);
  expect(y.stdout.trim()).toBe(`ssh-ed25519 ${blob.toString("base64")}`);
  await hosts[1].exec(`printf '%s\\n' 'ssh-ed25519 ${blob.toString("base64")} pkcs8' >> /home/ubuntu/.ssh/authorized_keys`);
  const r = await sshExec(hosts[1], pkcs8, "echo via-pkcs8");
  expect(r).toEqual({ code: 0, stdout: "via-pkcs8\n", stderr: "" });
});

test("sudo works without a password; files land in the host private tree only", async () => {
  const [a, b] = [byName("ha"), byName("hb")];
  const marker = `dare-${crypto.randomBytes(6).toString("hex")}`;
  const r = await sshExec(
    a,
    privateKey,
    `echo ${marker} | sudo tee /etc/dare-test >/dev/null && sudo chmod 600 /etc/dare-test && sudo id -u`,
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe("0");

  // In A's private tree on the real fs, and as A sees it.
  expect(fs.readFileSync(path.join(a.root, "etc/dare-test"), "utf8")).toBe(`${marker}\n`);
  expect(await a.readFile("/etc/dare-test")).toBe(`${marker}\n`);
  // Not on B, not in the real /etc.
  expect(fs.existsSync(path.join(b.root, "etc/dare-test"))).toBe(false);
  const onB = await sshExec(b, privateKey, "test -e /etc/dare-test && echo present || echo absent");
  expect(onB.stdout.trim()).toBe("absent");
  expect(fs.existsSync("/etc/dare-test")).toBe(false);

  // Modes and owners survive.
  const st = await a.stat("/etc/dare-test");
  expect(st).toMatchObject({ mode: 0o600, uid: 0, gid: 0, user: "root", group: "root", type: "file" });
  const mine = await sshExec(a, privateKey, "umask 027; mkdir -p ~/d && echo x > ~/d/f && chmod 640 ~/d/f");
  expect(mine.code).toBe(0);
  const fst = await a.stat("/home/ubuntu/d/f");
  expect(fst.mode).toBe(0o640);
  expect(fst.user).toBe("ubuntu");
  expect(fst.uid).toBe(fs.statSync(path.join(a.root, "home/ubuntu/d/f")).uid);
  // The deployer's pattern: parameters on stdin, script under `sudo -n bash -c`.
  const wrapped = await sshExec(
    a,
    privateKey,
    `sudo -n bash -c 'set -euo pipefail; set -a; . /dev/stdin; set +a; echo "$(id -u) $GREETING"'`,
    {
      stdin: "GREETING='hello there'\n",
    },
  );
  expect(wrapped).toEqual({ code: 0, stdout: "0 hello there\n", stderr: "" });
  // Without sudo the login user cannot write /etc.
  const denied = await sshExec(a, privateKey, "echo no > /etc/dare-nosudo");
  expect(denied.code).not.toBe(0);
  expect(denied.stderr).toMatch(/Permission denied/);
});

test("the real /usr is read-only from a host; /usr/local/bin is the host’s own", async () => {
  const a = byName("ha");
  const r = await sshExec(a, privateKey, "sudo touch /usr/bin/dare-should-not-exist");
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/Read-only file system/);
  expect(fs.existsSync("/usr/bin/dare-should-not-exist")).toBe(false);
  const w = await sshExec(a, privateKey, "sudo install -m 0755 /dev/null /usr/local/bin/dare-tool && command -v dare-tool");
  expect(w.stdout.trim()).toBe("/usr/local/bin/dare-tool");
  expect(fs.existsSync(path.join(a.root, "usr/local/bin/dare-tool"))).toBe(true);
  expect(fs.existsSync("/usr/local/bin/dare-tool")).toBe(false);
});

test("hosts reach each other by name; host A can ssh (and so borg) to host B as root", async () => {
  const [a, b] = [byName("ha"), byName("hb")];
  const ping = await a.exec(`getent hosts hb && bash -c 'echo > /dev/tcp/hb/22' && echo reach`);
  expect(ping.stdout).toContain(b.address);
  expect(ping.stdout).toContain("reach");

  const pub = await installClientKey(a, b);
  expect(pub).toMatch(/^ssh-ed25519 \S+ root@ha$/);
  // Through SSH into A, then sudo, then ssh to B with A's own key and known_hosts (strict checking).
  const r = await sshExec(a, privateKey, 'sudo ssh -o BatchMode=yes -o StrictHostKeyChecking=yes root@hb "hostname; id -un"');
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe("hb\nroot\n");

  // borg over SSH from A into a repository on B.
  const borg = await a.exec(
    'export BORG_RSH="ssh -o BatchMode=yes"; ' +
      "borg init -e none root@hb:/var/backups/borg-test && " +
      "mkdir -p /opt/data && echo payload > /opt/data/f && " +
      "borg create --stats root@hb:/var/backups/borg-test::first /opt/data",
  );
  expect(borg.stderr).not.toMatch(/Error|Traceback/);
  expect(borg.code).toBe(0);
  expect(borg.stdout + borg.stderr).toMatch(/Archive name: first/); // borg logs --stats to stderr
  // The repository (with its archive's segment) is in B's private tree, not A's.
  expect(fs.existsSync(path.join(b.root, "var/backups/borg-test/config"))).toBe(true);
  expect(fs.readdirSync(path.join(b.root, "var/backups/borg-test/data/0")).length).toBeGreaterThan(1);
  expect(fs.existsSync(path.join(a.root, "var/backups/borg-test"))).toBe(false);
});

test("sshExec through a jump host, with stdin", async () => {
  const [a, c] = [byName("ha"), byName("hc")];
  const r = await sshExec(c, privateKey, "cat; hostname", { via: a, stdin: "from-stdin\n" });
  expect(r).toEqual({ code: 0, stdout: "from-stdin\nhc\n", stderr: "" });
  // C's sshd saw the connection come from A, not from the test process.
  const log = fs.readFileSync(path.join(hostsBaseDir(), `${c.id}.log`), "utf8");
  expect(log).toContain(`Connection from ${a.address} port`);
});

test("recording stand-ins come first on PATH, are called and logged in order", async () => {
  const d = byName("hd");
  const r = await sshExec(
    d,
    privateKey,
    'command -v kubeadm systemctl; sudo KUBECONFIG=/etc/kubernetes/admin.conf kubeadm init --pod-network-cidr "10.244.0.0/16" --skip-phases=addon/kube-proxy ' +
      '&& sudo -E systemctl is-active kubelet && systemctl enable --now "kubelet service"',
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("/usr/local/bin/kubeadm\n/usr/local/bin/systemctl\nactive\n");
  expect(await readStubCalls(d)).toEqual([
    "KUBECONFIG=/etc/kubernetes/admin.conf kubeadm init --pod-network-cidr 10.244.0.0/16 --skip-phases=addon/kube-proxy",
    "systemctl is-active kubelet",
    "systemctl enable --now kubelet\\ service",
  ]);
  // Only D was called.
  expect(await readStubCalls(byName("hc"))).toEqual([]);
  expect((await d.stat("/usr/local/bin/kubeadm")).mode).toBe(0o755);
});

test("stopHosts leaves no namespace, veth, bridge or private tree behind; a stale setup is cleaned at start", async () => {
  // Simulate a crash: start a host, "forget" it, start the same name again.
  const stale = await startHosts(["hz"], { authorizedKey: publicKey });
  const again = await startHosts(["hz"], { authorizedKey: publicKey, user: "root" });
  expect(fs.existsSync(stale[0].root)).toBe(true);
  expect(() => process.kill(stale[0].pid, 0)).toThrow(); // the crashed run's sshd is gone
  const who = await sshExec(again[0], privateKey, "id -un; hostname");
  expect(who.stdout).toBe("root\nhz\n");
  await stopHosts(again);

  // A crashed run's slot (taken long ago, its namespace gone) must not keep the shared bridge alive.
  const slots = path.join(hostsBaseDir(), "slots");
  const crashedSlot = path.join(slots, "250");
  fs.writeFileSync(crashedSlot, "rcrashed-cp-0");
  const longAgo = new Date(Date.now() - 5 * 60_000);
  fs.utimesSync(crashedSlot, longAgo, longAgo);

  const roots = hosts.map((h) => h.root);
  const pids = hosts.map((h) => h.pid);
  const veths = [...hosts, ...again].map((h) => h.veth);
  await stopHosts(hosts);
  hosts = [];
  expect(netnsList()).toEqual([]);
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  const linkNames = links
    .split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0])
    .filter(Boolean);
  for (const v of veths) expect(linkNames).not.toContain(v);
  // The bridge is shared by every run on the machine: the last one to stop removes it, whatever a crashed run
  // left. (Another run that is up, or took a slot this last minute, keeps it: then there is nothing to check.)
  const otherRunUp =
    spawnSync("ip", ["netns", "list"], { encoding: "utf8" })
      .stdout.split("\n")
      .some((l) => l.startsWith("dare-t-")) ||
    fs.readdirSync(slots).some((f) => f !== "250" && Date.now() - fs.statSync(path.join(slots, f)).mtimeMs < 60_000);
  fs.rmSync(crashedSlot, { force: true });
  if (!otherRunUp) expect(linkNames).not.toContain("dare-tbr0");
  for (const r of [...roots, ...again.map((h) => h.root)]) expect(fs.existsSync(r)).toBe(false);
  for (const p of pids) expect(() => process.kill(p, 0)).toThrow();
});
