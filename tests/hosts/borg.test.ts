/**
 * Host backups with real borg between test hosts: bk-cp and bk-worker back up to bk-repo over SSH with
 * exactly what the program sends (the rendered borg steps of the testbed's first control plane and
 * first worker, through hostStep's wrapper, their parameters on stdin) and exactly the unit it installs
 * (its ExecStart, run with its EnvironmentFile, since systemd is a recording stand-in here). The
 * repository server's authorized_keys is the stack output borgAuthorizedKeys, as the runbook says:
 * each host's own key may reach its own repository only. Then files are deleted and restored with
 * `borg extract`.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BackupSpec } from "../../lib/config";
import { readScript, shellQuote, wrapScript } from "../../lib/host-step";
import { mockPrivateKey } from "../../tools/mock-keys";
import { render } from "../support/render";
import { ExecResult, readStubCalls, recordingStub, sshExec, startHosts, stopHosts, STUB_CALL_LOG, TestHost } from "./harness";
import { packageStubs, STUB_PACKAGES } from "./stubs";

jest.setTimeout(180_000);

const CP = "dare-testbed-cp-0";
const WORKER = "dare-testbed-workers-0";

let keyDir: string;
let loginKey: string;
let cp: TestHost;
let worker: TestHost;
let repo: TestHost;
let policy: BackupSpec;
let authorizedKeys: string;
const rendered = new Map<string, { script: string; env: string }>();
const PASSPHRASE = "correct horse battery staple 42";

function keygen(name: string): { priv: string; pub: string } {
  const file = path.join(keyDir, name);
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return { priv: fs.readFileSync(file, "utf8"), pub: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

/** The host's own borg key as the program makes it: under the mocks, the key of that resource name. */
const borgKeyOf = (host: string) => mockPrivateKey(`backups-borg-ssh-${host}`, "ED25519");

/**
 * The offline render of the testbed stack with this test's repository host: each host's borg step, with
 * the two secrets the render hides filled in (the passphrase, and the host's own key), and the stack
 * output borgAuthorizedKeys.
 */
function renderSteps(): void {
  const result = render("testbed", [
    "--set",
    `backup=${policy.repository}`,
    "--set",
    "backupOptOut=",
    "--set-secret",
    `backupPassphrase=${PASSPHRASE}`,
  ]);
  if (result.status !== 0) throw new Error(`render failed: ${result.stderr}`);
  authorizedKeys = JSON.parse(fs.readFileSync(path.join(result.dir, "outputs.json"), "utf8")).borgAuthorizedKeys;
  if (typeof authorizedKeys !== "string")
    throw new Error("the render has no stack output borgAuthorizedKeys (index.ts exports backups.borgAuthorizedKeys)");
  for (const host of [CP, WORKER]) {
    const dir = path.join(result.dir, "hosts", host);
    const base = fs
      .readdirSync(dir)
      .find((f) => /^\d+-borg-backup\.sh$/.test(f))!
      .replace(/\.sh$/, "");
    const env = fs
      .readFileSync(path.join(dir, `${base}.env`), "utf8")
      .replace(`BORG_PASSPHRASE='[secret]'`, `BORG_PASSPHRASE=${shellQuote(PASSPHRASE)}`)
      .replace(`BORG_SSH_PRIVATE_KEY='[secret]'`, `BORG_SSH_PRIVATE_KEY=${shellQuote(borgKeyOf(host).privateKeyOpenssh)}`);
    rendered.set(host, { script: fs.readFileSync(path.join(dir, `${base}.sh`), "utf8"), env });
  }
}

/** The setup step as hostStep sends it: the wrapped script over SSH as the login user, parameters on stdin. */
async function runSetup(client: TestHost, host: string, paths: string) {
  const step = rendered.get(host)!;
  // The program backs up "/"; a test host's / holds the real machine's /usr, so the test names its own paths.
  const env = step.env.replace(/^BORG_PATHS='\/'$/m, `BORG_PATHS=${shellQuote(paths)}`);
  expect(env).toContain(`BORG_PATHS=${shellQuote(paths)}`);
  return sshExec(client, loginKey, wrapScript(step.script), { stdin: env });
}

/** Runs the installed unit's ExecStart with its EnvironmentFile, as systemd would. */
async function runUnit(client: TestHost): Promise<ExecResult> {
  const unit = await client.readFile("/etc/systemd/system/dare-borg-backup.service");
  const envFileLine = /^EnvironmentFile=(.+)$/m.exec(unit)![1];
  const execStart = /^ExecStart=(.+)$/m.exec(unit)![1];
  return client.exec(`set -a; . ${envFileLine}; set +a; ${execStart}`, { timeoutMs: 120_000 });
}

/** borg on a host with its installed settings; `repoPath` points it at another repository path on the same server. */
async function borg(client: TestHost, args: string, repoPath?: string): Promise<ExecResult> {
  const repoOverride = repoPath ? `BORG_REPO=${shellQuote(`borg@${repo.address}:${repoPath}`)}; ` : "";
  return client.exec(`set -a; . /etc/dare/borg/borg.env; ${repoOverride}set +a; cd / && borg ${args}`, { timeoutMs: 120_000 });
}

/** Deduplicated size of "This archive" in bytes, from borg create --stats. */
function deduplicatedBytes(output: string): { original: number; deduplicated: number } {
  const line = /^This archive:\s+(\S+) (\S?B)\s+(\S+) (\S?B)\s+(\S+) (\S?B)\s*$/m.exec(output);
  if (!line) throw new Error(`no stats in:\n${output}`);
  const bytes = (n: string, unit: string) => Number(n) * ({ B: 1, kB: 1e3, MB: 1e6, GB: 1e9 } as Record<string, number>)[unit];
  return { original: bytes(line[1], line[2]), deduplicated: bytes(line[5], line[6]) };
}

beforeAll(async () => {
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-borg-test-"));
  const login = keygen("login");
  loginKey = login.priv;
  [cp, worker, repo] = await startHosts(["bk-cp", "bk-worker", "bk-repo"], {
    authorizedKey: login.pub,
    // apt's downloads are stand-ins (borg itself is this machine's real one); dpkg-query reports what they installed.
    stubs: { systemctl: recordingStub("systemctl"), ...packageStubs() },
  });
  policy = {
    repository: `borg@${repo.address}:/srv/borg`,
    schedule: "0 2 * * *",
    keepEtcdSnapshots: 7,
    keepDumps: 7,
    hostSchedule: "*-*-* 03:00:00",
    prune: { daily: 7, weekly: 4, monthly: 6 },
  };
  renderSteps();
  // What runs is the program's own script, not a test copy.
  for (const step of rendered.values()) expect(step.script).toBe(readScript("borg-setup.sh"));
  // The repository server, as the runbook says: a user whose authorized_keys is the stack output.
  const prep = await repo.exec(
    "set -e; useradd --create-home --shell /bin/sh borg; install -d -m 0700 -o borg -g borg /home/borg/.ssh; " +
      "cat > /home/borg/.ssh/authorized_keys; chown borg:borg /home/borg/.ssh/authorized_keys; " +
      'chmod 0600 /home/borg/.ssh/authorized_keys; usermod --password "*" borg; install -d -m 0700 -o borg -g borg /srv/borg',
    { stdin: `${authorizedKeys}\n` },
  );
  if (prep.code !== 0) throw new Error(`repo prep: ${prep.stderr}`);
  // Files worth keeping, one of them a stand-in etcd snapshot, and two that must be left out.
  const data = crypto.randomBytes(3 * 1024 * 1024);
  await cp.writeFile("/srv/data/measurements.bin", data);
  await cp.writeFile("/etc/dare-test/settings.conf", "realm = dare\n", { mode: 0o640 });
  await cp.writeFile("/var/backups/dare/etcd/etcd-20260101T020000Z.db", crypto.randomBytes(64 * 1024));
  await cp.writeFile("/tmp/scratch.txt", "temporary\n");
  await cp.writeFile("/root/private.txt", "root only\n");
});

afterAll(async () => {
  // The worker's test mounts go first (the loop devices detach with them).
  if (worker) await worker.exec(`for m in ${WORKER_MOUNTS.slice().reverse().join(" ")}; do umount "$m" 2>/dev/null; done; true`);
  if (cp || worker || repo) await stopHosts([cp, worker, repo].filter(Boolean));
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true });
});

const PATHS = "/etc/dare-test /srv/data /var/backups/dare /tmp /root";
const KEPT = ["/srv/data/measurements.bin", "/etc/dare-test/settings.conf", "/var/backups/dare/etcd/etcd-20260101T020000Z.db"];
const sha = async (p: string) => (await cp.exec(`sha256sum ${p}`)).stdout.split(" ")[0];

test("the stack output authorises each host's own key for its own repository only", () => {
  const lines = authorizedKeys.split("\n");
  expect(lines).toHaveLength(3);
  for (const host of [CP, WORKER]) {
    const pub = borgKeyOf(host).publicKeyOpenssh.trim();
    expect(lines).toContain(`command="borg serve --restrict-to-path /srv/borg/${host}",restrict ${pub} dare-borg@${host}`);
  }
  // Three hosts, three different keys.
  expect(new Set(lines.map((l) => / (ssh-ed25519 \S+) /.exec(l)![1])).size).toBe(3);
});

test("setup installs the unit and timer, initialises the repository once, and enables the timer", async () => {
  const first = await runSetup(cp, CP, PATHS);
  expect({ code: first.code, stderr: first.code === 0 ? "" : first.stderr + first.stdout }).toEqual({ code: 0, stderr: "" });
  expect(first.stdout).toContain("initialised");
  const onRepo = await repo.exec(`test -f /srv/borg/${CP}/config && echo repo`);
  expect(onRepo.stdout.trim()).toBe("repo");
  const timer = await cp.readFile("/etc/systemd/system/dare-borg-backup.timer");
  expect(timer).toMatch(/^OnCalendar=\*-\*-\* 03:00:00$/m);
  expect((await cp.stat("/etc/dare/borg/passphrase")).mode).toBe(0o600);
  expect((await cp.stat("/etc/dare/borg/id_ed25519")).mode).toBe(0o600);
  expect((await cp.readFile("/etc/dare/borg/id_ed25519")).trim()).toBe(borgKeyOf(CP).privateKeyOpenssh.trim());
  const calls = await readStubCalls(cp);
  expect(calls).toEqual(expect.arrayContaining(["systemctl daemon-reload", "systemctl enable --now dare-borg-backup.timer"]));
  // borg at Ubuntu 24.04's version, pinned and held like kubeadm.
  expect(first.stdout).toContain("borg-setup: installing borgbackup 1.2.8-1");
  expect(calls.filter((l) => /^apt-(get|mark) /.test(l))).toEqual([
    "apt-get update -q",
    "apt-get install -y -q --allow-change-held-packages borgbackup=1.2.8-1",
    "apt-mark hold borgbackup",
  ]);
  expect((await cp.exec("dpkg-query -W -f='${Status} ${Version}' borgbackup")).stdout).toBe("hold ok installed 1.2.8-1");

  await cp.exec(`rm -f ${STUB_CALL_LOG}`);
  const again = await runSetup(cp, CP, PATHS);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain("exists");
  expect(again.stdout).not.toContain("initialised");
  expect(again.stdout).not.toContain("wrote");
  expect(again.stdout).not.toContain("installing");
  expect((await readStubCalls(cp).catch(() => [] as string[])).filter((l) => /^apt-(get|mark) /.test(l))).toEqual([]);
});

test("setup moves a host whose borg is not the pinned, held one to it", async () => {
  // Another version (say, from an upgrade) or the right one without the hold: installed again at the pin, and held.
  for (const version of ["1.4.0-5", "1.2.8-1"]) {
    await cp.exec(`echo ${version} > ${STUB_PACKAGES}/borgbackup; rm -f ${STUB_PACKAGES}/borgbackup.hold ${STUB_CALL_LOG}`);
    const run = await runSetup(cp, CP, PATHS);
    expect(run.code).toBe(0);
    expect((await readStubCalls(cp)).filter((l) => /^apt-(get|mark) /.test(l))).toEqual([
      "apt-get update -q",
      "apt-get install -y -q --allow-change-held-packages borgbackup=1.2.8-1",
      "apt-mark hold borgbackup",
    ]);
    expect((await cp.exec("dpkg-query -W -f='${Status} ${Version}' borgbackup")).stdout).toBe("hold ok installed 1.2.8-1");
  }
});

test("the unit backs up over SSH, a second run sends no unchanged data, and borg extract restores byte-identical files", async () => {
  const before = await Promise.all(KEPT.map(sha));

  const first = await runUnit(cp);
  expect({ code: first.code, err: first.stderr.slice(-2000) }).toEqual({ code: 0, err: expect.any(String) });
  const firstStats = deduplicatedBytes(first.stderr + first.stdout);
  expect(firstStats.deduplicated).toBeGreaterThan(2e6);

  await new Promise((r) => setTimeout(r, 1100)); // archive names carry the second
  const second = await runUnit(cp);
  expect(second.code).toBe(0);
  const secondStats = deduplicatedBytes(second.stderr + second.stdout);
  expect(secondStats.original).toBeGreaterThan(3e6);
  // Unchanged data is not sent again: the new archive adds (almost) nothing to the repository.
  expect(secondStats.deduplicated).toBeLessThan(20e3);
  const names = [first, second].map((r) => /^Archive name: (\S+)$/m.exec(r.stderr + r.stdout)![1]);
  expect(names[0]).not.toBe(names[1]);

  const list = await borg(cp, "list --short");
  expect(list.code).toBe(0);
  // The second run added an archive; prune keeps both (the daily rule keeps the newer, the weekly
  // rule, which skips archives kept by earlier rules, the older).
  expect(list.stdout.trim().split("\n")).toEqual(names);
  const contents = await borg(cp, `list --short ::${names[1]}`);
  expect(contents.stdout).toContain("srv/data/measurements.bin");
  expect(contents.stdout).toContain("var/backups/dare/etcd/etcd-20260101T020000Z.db");
  expect(contents.stdout).not.toContain("tmp/scratch.txt");
  expect(contents.stdout).not.toContain("root/private.txt");

  expect((await cp.exec(`rm -rf /srv/data /etc/dare-test /var/backups/dare`)).code).toBe(0);
  expect((await cp.exec("test -e /srv/data/measurements.bin")).code).not.toBe(0);
  const restore = await borg(cp, `extract ::${names[1]} srv/data etc/dare-test var/backups/dare`);
  expect({ code: restore.code, stderr: restore.stderr }).toEqual({ code: 0, stderr: "" });
  expect(await Promise.all(KEPT.map(sha))).toEqual(before);
  expect((await cp.stat("/etc/dare-test/settings.conf")).mode).toBe(0o640);
});

/** Mounts on the worker below what it saves, in mount order. */
const WORKER_MOUNTS = [
  "/srv/data/tmpfs",
  "/srv/data/bind",
  "/srv/data/disk",
  "/var/lib/kubelet/pods/0000-pod/volumes/kubernetes.io~secret/token",
  "/var/lib/kubelet/plugins/kubernetes.io/csi/rook-ceph.rbd.csi.ceph.com/0000/globalmount",
];

test("borg stays on the host's own disk file systems and leaves out the kubelet's volumes", async () => {
  const setupMounts = await worker.exec(
    [
      "set -e",
      "mkdir -p /srv/data/tmpfs /srv/data/bind /srv/data/disk /srv/elsewhere /var/lib/dare-test-disks",
      "echo kept > /srv/data/plain.txt",
      "mount -t tmpfs tmpfs /srv/data/tmpfs && echo memory > /srv/data/tmpfs/in-tmpfs.txt",
      "echo elsewhere > /srv/elsewhere/in-bind.txt && mount --bind /srv/elsewhere /srv/data/bind",
      // A disk file system of the host's own (a separate /var or /home): saved although --one-file-system.
      "truncate -s 16M /var/lib/dare-test-disks/own.img && mkfs.ext4 -q -F /var/lib/dare-test-disks/own.img",
      "mount -o loop /var/lib/dare-test-disks/own.img /srv/data/disk && echo own > /srv/data/disk/on-own-disk.txt",
      // The kubelet: its configuration is kept, pod volumes and CSI mounts (an RBD-like ext4 disk) are not.
      "mkdir -p /var/lib/kubelet/pods/0000-pod/volumes/kubernetes.io~empty-dir/scratch " + WORKER_MOUNTS.slice(3).join(" "),
      'echo "kind: KubeletConfiguration" > /var/lib/kubelet/config.yaml',
      "echo pod > /var/lib/kubelet/pods/0000-pod/volumes/kubernetes.io~empty-dir/scratch/pod-data.txt",
      `mount -t tmpfs tmpfs ${WORKER_MOUNTS[3]} && echo token > ${WORKER_MOUNTS[3]}/token.txt`,
      "truncate -s 16M /var/lib/dare-test-disks/rbd.img && mkfs.ext4 -q -F /var/lib/dare-test-disks/rbd.img",
      `mount -o loop /var/lib/dare-test-disks/rbd.img ${WORKER_MOUNTS[4]} && echo volume > ${WORKER_MOUNTS[4]}/rbd-data.txt`,
      "mkdir -p /var/lib/kubelet/plugins/kubernetes.io/csi/rook-ceph.cephfs.csi.ceph.com && echo plugin > /var/lib/kubelet/plugins/kubernetes.io/csi/rook-ceph.cephfs.csi.ceph.com/state.json",
    ].join("\n"),
  );
  expect({ code: setupMounts.code, stderr: setupMounts.stderr }).toEqual({ code: 0, stderr: "" });

  const setup = await runSetup(worker, WORKER, "/srv/data /var/lib/kubelet");
  expect({ code: setup.code, out: setup.code === 0 ? "" : setup.stderr + setup.stdout }).toEqual({ code: 0, out: "" });
  expect(setup.stdout).toContain("initialised");
  const run = await runUnit(worker);
  expect({ code: run.code, err: run.code === 0 ? "" : run.stderr.slice(-2000) }).toEqual({ code: 0, err: "" });
  const name = /^Archive name: (\S+)$/m.exec(run.stderr + run.stdout)![1];

  // The worker lists its own repository.
  const list = await borg(worker, "list --short");
  expect({ code: list.code, archives: list.stdout.trim().split("\n") }).toEqual({ code: 0, archives: [name] });
  const files = (await borg(worker, `list --short --format '{type} {path}{NL}' ::${name}`)).stdout
    .split("\n")
    .filter((l) => l.startsWith("-"))
    .map((l) => l.slice(2))
    .sort();
  expect(files).toEqual(["srv/data/disk/on-own-disk.txt", "srv/data/plain.txt", "var/lib/kubelet/config.yaml"]);
});

test("a host's key cannot reach another host's repository, though the passphrase is the same", async () => {
  // Each host reads its own repository.
  for (const [client] of [
    [cp, CP],
    [worker, WORKER],
  ] as const) {
    expect((await borg(client, "list --short")).code).toBe(0);
  }
  // Root on the worker, with everything the worker has (its key, the shared passphrase), asks for the
  // control plane's repository (its etcd snapshots and CA keys): the server refuses the path.
  for (const target of [`/srv/borg/${CP}`, `/srv/borg/${WORKER}/../${CP}`, "/srv/borg"]) {
    const stolen = await borg(worker, "list --short", target);
    expect({ target, code: stolen.code }).toEqual({ target, code: 2 });
    expect(stolen.stderr).toMatch(/Repository path not allowed/);
    expect(stolen.stdout).toBe("");
  }
  // Nor can it make a repository of its own elsewhere on the server.
  const init = await borg(worker, "init --encryption=repokey-blake2 --make-parent-dirs", "/srv/borg/elsewhere");
  expect(init.code).not.toBe(0);
  expect(init.stderr).toMatch(/Repository path not allowed/);
  // And the control plane's key cannot read the worker's.
  const other = await borg(cp, "list --short", `/srv/borg/${WORKER}`);
  expect(other.code).not.toBe(0);
  expect(other.stderr).toMatch(/Repository path not allowed/);
  // A shell on the server is not to be had with a host's key either: the forced command runs instead.
  const shell = await worker.exec(
    `set -a; . /etc/dare/borg/borg.env; set +a; $BORG_RSH borg@${repo.address} cat /home/borg/.ssh/authorized_keys </dev/null`,
    { timeoutMs: 30_000 },
  );
  expect(shell.stdout).not.toContain("ssh-ed25519");
  expect((await repo.exec("ls /srv/borg")).stdout.trim().split("\n").sort()).toEqual([CP, WORKER]);
});
