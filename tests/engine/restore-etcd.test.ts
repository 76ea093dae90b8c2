/**
 * etcd, restored for real at the version kubeadm deploys (etcd, etcdctl and etcdutl v3.6.8, built by
 * tools/engine/build.sh from Go modules):
 *  1. an etcd set up as kubeadm's static pod is (TLS for clients and peers, client certificates required),
 *     in a network namespace of its own so it can listen where kubeadm's does (https://127.0.0.1:2379);
 *  2. the etcd-snapshot CronJob's containers, as rendered: its etcdctl command with kubeadm's healthcheck
 *     client certificate, then its busybox step that names and keeps the snapshot;
 *  3. docs/recovery.md's steps, read from the document: check the snapshot (etcdutl snapshot status), move
 *     the manifests and the data away, and restore the snapshot on three "control planes" (each its own
 *     folder for / and its own loopback address), one after another, as an operator would;
 *  4. the three members started as kubeadm starts them: a key written before the snapshot is read back from
 *     every member, one written after it is absent, and the three form one cluster.
 * Paths the document names on the hosts (/etc/kubernetes, /var/lib/etcd, /var/backups) are mapped to each
 * control plane's folder; nothing else in its commands is changed. Needs root (the namespace).
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ETCD_PKI } from "../../components/backups";
import { engineDir } from "../../tools/engine/pulumi";
import { leafCertificate, testCa } from "../support/test-certificates";
import { backupPods, commands, fill, runbookSection, runContainerScript, theBlock, theCommand } from "../restore/runbook";

jest.setTimeout(300_000);

const bin = path.join(engineDir(), "bin");
const netns = `dare-etcd-restore-${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-etcd-restore-"));
const pki = path.join(dir, "pki");
const running: ChildProcess[] = [];
const members = [0, 1, 2].map((i) => ({ name: `cp-${i}`, ip: `127.0.0.${i + 1}`, root: path.join(dir, `cp-${i}`) }));

function sh(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return spawnSync(command, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    cwd: options.cwd,
    env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, ...options.env },
  });
}
function ok(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = sh(command, args, options);
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${r.status}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}
/** A command inside the namespace. */
const inNs = (args: string[]) => ["netns", "exec", netns, ...args];

/** kubeadm's etcd PKI (/etc/kubernetes/pki/etcd): CA, server and peer certificates, the healthcheck client. */
function makePki(): void {
  fs.mkdirSync(pki);
  testCa(pki, "etcd-ca");
  const sans = ["DNS:localhost", ...members.map((m) => `IP:${m.ip}`)].join(",");
  leafCertificate(pki, "server", "/CN=etcd-server", { usage: "serverAuth,clientAuth", sans });
  leafCertificate(pki, "peer", "/CN=etcd-peer", { usage: "serverAuth,clientAuth", sans });
  leafCertificate(pki, "healthcheck-client", "/CN=kube-etcd-healthcheck-client", { usage: "clientAuth" });
}

/** etcd with the flags of kubeadm's static pod manifest (cmd/kubeadm/app/phases/etcd/local.go), in the namespace. */
function startEtcd(m: { name: string; ip: string; root: string }, initialCluster: string): ChildProcess {
  const p = (f: string) => path.join(pki, f);
  const args = [
    `--name=${m.name}`,
    `--data-dir=${path.join(m.root, "var/lib/etcd")}`,
    // kubeadm adds https://127.0.0.1:2379 on every host; the three "hosts" here share one loopback, where cp-0 has it.
    `--listen-client-urls=https://${m.ip}:2379`,
    `--advertise-client-urls=https://${m.ip}:2379`,
    `--listen-peer-urls=https://${m.ip}:2380`,
    `--initial-advertise-peer-urls=https://${m.ip}:2380`,
    `--initial-cluster=${initialCluster}`,
    `--cert-file=${p("server.crt")}`,
    `--key-file=${p("server.key")}`,
    `--trusted-ca-file=${p("ca.crt")}`,
    "--client-cert-auth=true",
    `--peer-cert-file=${p("peer.crt")}`,
    `--peer-key-file=${p("peer.key")}`,
    `--peer-trusted-ca-file=${p("ca.crt")}`,
    "--peer-client-cert-auth=true",
    "--snapshot-count=10000",
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
  const fd = fs.openSync(path.join(dir, `${m.name}.log`), "a");
  const child = spawn("ip", inNs(["setpriv", "--pdeathsig", "KILL", "--", path.join(bin, "etcd"), ...args]), { stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  running.push(child);
  return child;
}

async function stopEtcd(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** etcdctl in the namespace with the healthcheck client certificate (kubeadm's, as the CronJob uses it). */
function etcdctl(ip: string, args: string[]) {
  return sh(
    "ip",
    inNs([
      path.join(bin, "etcdctl"),
      `--endpoints=https://${ip}:2379`,
      `--cacert=${pki}/ca.crt`,
      `--cert=${pki}/healthcheck-client.crt`,
      `--key=${pki}/healthcheck-client.key`,
      "--dial-timeout=2s",
      "--command-timeout=5s",
      ...args,
    ]),
  );
}

async function healthy(ip: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (etcdctl(ip, ["endpoint", "health"]).status === 0) return;
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`etcd on ${ip} not healthy:\n${fs.readFileSync(path.join(dir, log), "utf8").slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A runbook command run as root on one control plane: its /etc/kubernetes, /var/lib/etcd and /var/backups in its folder. */
function onHost(root: string, command: string, cwd: string) {
  const mapped = command.replace(/(^|[\s=])\/(etc\/kubernetes|var\/lib\/etcd|var\/backups)/g, `$1${root}/$2`);
  const r = sh("bash", ["-euo", "pipefail", "-c", mapped], { cwd });
  if (r.status !== 0) throw new Error(`${mapped}\n${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

beforeAll(() => {
  for (const tool of ["etcd", "etcdctl", "etcdutl"]) {
    if (!fs.existsSync(path.join(bin, tool))) throw new Error(`no ${tool} in ${bin}: run tools/engine/build.sh (npm run test:engine does)`);
  }
  ok("ip", ["netns", "add", netns]);
  ok("ip", inNs(["ip", "link", "set", "lo", "up"]));
  makePki();
  for (const m of members) {
    fs.mkdirSync(path.join(m.root, "etc/kubernetes/manifests"), { recursive: true });
    for (const f of ["kube-apiserver.yaml", "etcd.yaml"]) fs.writeFileSync(path.join(m.root, "etc/kubernetes/manifests", f), `# ${f}\n`);
  }
});

afterAll(async () => {
  for (const c of running) await stopEtcd(c);
  sh("ip", ["netns", "delete", netns]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("etcd snapshot and restore (etcd v3.6.8)", () => {
  let backup: string;
  let snapshotFile: string;

  it("the CronJob's etcdctl command snapshots a kubeadm-style etcd, and its keep step stores it readable by root only", async () => {
    expect(ok(path.join(bin, "etcd"), ["--version"])).toMatch(/^etcd Version: 3\.6\.8$/m);
    const first = members[0];
    const source = startEtcd(first, `${first.name}=https://${first.ip}:2380`);
    await healthy(first.ip, source, `${first.name}.log`);
    expect(etcdctl(first.ip, ["put", "/registry/dare/before", "written before the snapshot"]).status).toBe(0);

    const pod = (await backupPods()).get("etcd-snapshot");
    const [snapshot] = pod.initContainers;
    const [keep] = pod.containers;
    const staging = path.join(dir, "staging");
    fs.mkdirSync(staging);
    // The CronJob's command word for word; only the host paths it mounts are this test's folders.
    const command: string[] = snapshot.command.map((a: string) => a.split(ETCD_PKI).join(pki).split("/staging").join(staging));
    expect(command[0]).toBe("etcdctl");
    const env = Object.fromEntries(snapshot.env.map((e: any) => [e.name, e.value]));
    const saved = sh(
      "ip",
      inNs(["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), path.join(bin, command[0]), ...command.slice(1)]),
    );
    expect({ status: saved.status, stderr: saved.stderr }).toMatchObject({ status: 0 });

    expect(etcdctl(first.ip, ["put", "/registry/dare/after", "written after the snapshot"]).status).toBe(0);

    backup = path.join(first.root, "var/backups/dare/etcd");
    fs.mkdirSync(backup, { recursive: true });
    const kept = runContainerScript(keep, { "/staging": staging, "/backup": backup }, {});
    expect({ status: kept.status, stderr: kept.stderr }).toEqual({ status: 0, stderr: "" });
    [snapshotFile] = fs.readdirSync(backup);
    expect(snapshotFile).toMatch(/^etcd-\d{8}T\d{6}Z\.db$/);
    expect((fs.statSync(path.join(backup, snapshotFile)).mode & 0o777).toString(8)).toBe("600");

    // The runbook's step 2 stops etcd by moving its manifest away; here the process is stopped.
    await stopEtcd(source);
  });

  it("docs/recovery.md's steps restore it on three control planes; the data is the snapshot's and the members form one cluster", async () => {
    expect(snapshotFile).toBeDefined();
    const section = runbookSection("Restore etcd");
    const time = /^etcd-(.*)\.db$/.exec(snapshotFile)![1];
    const places = Object.fromEntries(
      members.flatMap((m, i) => [
        [`cp-${i}`, m.name],
        [`ip-${i}`, m.ip],
      ]),
    );

    // Step 1: check the snapshot.
    const status = onHost(members[0].root, fill(theCommand(section, /^etcdutl snapshot status/), { time }), backup);
    expect(status).toMatch(/HASH.*REVISION.*TOTAL KEYS/s);

    // Every control plane gets the snapshot (the operator copies it, or takes it from borg).
    for (const m of members.slice(1)) {
      fs.mkdirSync(path.join(m.root, "var/lib/etcd"), { recursive: true });
      fs.writeFileSync(path.join(m.root, "var/lib/etcd/old-member-data"), "the member's data before the restore");
      fs.mkdirSync(path.join(m.root, "var/backups/dare/etcd"), { recursive: true });
      fs.copyFileSync(path.join(backup, snapshotFile), path.join(m.root, "var/backups/dare/etcd", snapshotFile));
    }
    const stop = theBlock(section, "manifests.off");
    const restore = theBlock(section, "etcdutl snapshot restore");
    const putBack = theCommand(section, /^mv \/etc\/kubernetes\/manifests\.off\//);
    for (const [i, m] of members.entries()) {
      const here = path.join(m.root, "var/backups/dare/etcd");
      // Step 2: manifests and data moved away.
      for (const line of commands(stop)) onHost(m.root, line, here);
      expect(fs.readdirSync(path.join(m.root, "etc/kubernetes/manifests.off")).sort()).toEqual(["etcd.yaml", "kube-apiserver.yaml"]);
      expect(fs.existsSync(path.join(m.root, "var/lib/etcd.before-restore"))).toBe(true);
      expect(fs.existsSync(path.join(m.root, "var/lib/etcd"))).toBe(false);
      // Step 3: on each host in turn, as an operator goes from one to the next (a second or more apart).
      if (i > 0) await new Promise((r) => setTimeout(r, 1100));
      for (const line of commands(restore))
        onHost(m.root, fill(line, { time, name: m.name, ip: m.ip, ...places, token: "dare-restore-test" }), here);
      // Step 4: manifests back.
      onHost(m.root, putBack, here);
      expect(fs.readdirSync(path.join(m.root, "etc/kubernetes/manifests")).sort()).toEqual(["etcd.yaml", "kube-apiserver.yaml"]);
    }

    // The static pods start again: etcd as kubeadm runs it, on the restored data.
    const initialCluster = members.map((m) => `${m.name}=https://${m.ip}:2380`).join(",");
    const started = members.map((m) => startEtcd(m, initialCluster));
    for (const [i, m] of members.entries()) await healthy(m.ip, started[i], `${m.name}.log`);

    for (const m of members) {
      const before = etcdctl(m.ip, ["get", "/registry/dare/before", "--print-value-only"]);
      expect({ member: m.name, value: before.stdout.trim(), stderr: before.stderr }).toEqual({
        member: m.name,
        value: "written before the snapshot",
        stderr: "",
      });
      const after = etcdctl(m.ip, ["get", "/registry/dare/after", "--print-value-only"]);
      expect({ member: m.name, value: after.stdout.trim(), status: after.status }).toEqual({ member: m.name, value: "", status: 0 });
    }
    const list = etcdctl(members[0].ip, ["member", "list", "-w", "json"]);
    expect(list.status).toBe(0);
    expect(
      JSON.parse(list.stdout)
        .members.map((x: any) => x.name)
        .sort(),
    ).toEqual(members.map((m) => m.name));
    // One cluster: a write on one member is read on another.
    expect(etcdctl(members[1].ip, ["put", "/registry/dare/restored", "yes"]).status).toBe(0);
    expect(etcdctl(members[2].ip, ["get", "/registry/dare/restored", "--print-value-only", "--consistency=l"]).stdout.trim()).toBe("yes");
  });
});
