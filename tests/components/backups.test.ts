/**
 * Backups in the cluster: the etcd snapshot and database dump CronJobs (their shell actually run
 * here against stand-in tools, to see what they keep), the borg steps in the render, and the
 * configuration's refusals.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import { Backups, borgAuthorizedKey } from "../../components/backups";
import { ConfigError } from "../../lib/config";
import { readScript } from "../../lib/host-step";
import { installMocks } from "../../tools/mocks";
import { Built, buildDareLayer, configFrom } from "../support/dare-fixture";
import { readTree, render } from "../support/render";

jest.setTimeout(180_000);

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({ backupPolicy: { schedule: "15 1 * * *", keepEtcdSnapshots: 3, keepDumps: 2 } }));
});

const cronJobs = () => built.objects.filter((o) => o.kind === "CronJob" && o.metadata.namespace === "dare-backups");
const podOf = (name: string) => cronJobs().find((c) => c.metadata.name === name).spec.jobTemplate.spec.template.spec;

/** Runs a container's `sh -c`/`bash -c` script with /backup (and /staging) mapped to temp dirs and stand-ins on PATH. */
function runScript(container: any, dirs: Record<string, string>, stubs: Record<string, string>, env: Record<string, string> = {}) {
  let script: string = container.command[2];
  for (const [from, to] of Object.entries(dirs)) script = script.split(from).join(to);
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "dare-stubs-"));
  for (const [name, body] of Object.entries(stubs)) fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  // stdin not a socket: bash would otherwise take itself for an rsh session and read ~/.bashrc.
  return spawnSync(container.command[0], ["-c", script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
  });
}

describe("etcd snapshots", () => {
  it("run on a control plane with kubeadm's etcd client certificate, on the configured schedule", () => {
    const job = cronJobs().find((c) => c.metadata.name === "etcd-snapshot");
    expect(job.spec.schedule).toBe("15 1 * * *");
    const pod = podOf("etcd-snapshot");
    expect(pod.nodeSelector).toEqual({ "node-role.kubernetes.io/control-plane": "" });
    expect(pod.tolerations).toContainEqual(expect.objectContaining({ key: "node-role.kubernetes.io/control-plane" }));
    expect(pod.hostNetwork).toBe(true);
    const [snapshot] = pod.initContainers;
    expect(snapshot.command.slice(0, 1)).toEqual(["etcdctl"]);
    expect(snapshot.command).toEqual(
      expect.arrayContaining([
        "snapshot",
        "save",
        "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
      ]),
    );
    const pki = pod.volumes.find((v: any) => v.hostPath?.path === "/etc/kubernetes/pki/etcd");
    expect(snapshot.volumeMounts.find((m: any) => m.name === pki.name).readOnly).toBe(true);
    expect(pod.volumes.find((v: any) => v.name === "backup").hostPath.path).toBe("/var/backups/dare/etcd");
  });

  it("keep the newest N snapshots (N from config) and never a half-written one", () => {
    const staging = fs.mkdtempSync(path.join(os.tmpdir(), "dare-staging-"));
    const backup = fs.mkdtempSync(path.join(os.tmpdir(), "dare-etcd-"));
    const keep = podOf("etcd-snapshot").containers[0];
    for (let i = 0; i < 5; i++) {
      const old = path.join(backup, `etcd-2026010${i}T020000Z.db`);
      fs.writeFileSync(old, "old");
      fs.utimesSync(old, 1_700_000_000 + i * 86400, 1_700_000_000 + i * 86400);
    }
    fs.writeFileSync(path.join(staging, "snapshot.db"), "new snapshot");
    const r = runScript(keep, { "/staging": staging, "/backup": backup }, {});
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
    const left = fs.readdirSync(backup).sort();
    expect(left).toHaveLength(3);
    expect(left).toEqual(expect.arrayContaining(["etcd-20260104T020000Z.db", "etcd-20260103T020000Z.db"]));
    const fresh = left.find((f) => !f.startsWith("etcd-2026010"))!;
    expect(fs.readFileSync(path.join(backup, fresh), "utf8")).toBe("new snapshot");

    // etcdctl failed: nothing staged, nothing replaced.
    const again = runScript(keep, { "/staging": staging, "/backup": backup }, {});
    expect(again.status).not.toBe(0);
    expect(fs.readdirSync(backup).sort()).toEqual(left);
  });
});

describe("database dumps", () => {
  it("dump MySQL, MongoDB and PostgreSQL on the schedule, to the control planes' backup directory, with credentials from a Secret where the database has them", () => {
    const names = cronJobs()
      .map((c) => c.metadata.name)
      .sort();
    expect(names).toEqual(["etcd-snapshot", "mongodb-dump", "mysql-dump", "postgresql-dump"]);
    for (const engine of ["mysql", "mongodb", "postgresql"]) {
      const job = cronJobs().find((c) => c.metadata.name === `${engine}-dump`);
      expect(job.spec.schedule).toBe("15 1 * * *");
      const pod = podOf(`${engine}-dump`);
      expect(pod.volumes[0].hostPath.path).toBe(`/var/backups/dare/db/${engine}`);
      expect(pod.nodeSelector).toEqual({ "node-role.kubernetes.io/control-plane": "" });
      const env = pod.containers[0].env;
      const secretRefs = env.filter((e: any) => e.valueFrom?.secretKeyRef);
      // s-ProvFlow's MongoDB runs without authentication (its client cannot send credentials).
      expect(secretRefs).toHaveLength(engine === "mongodb" ? 0 : 1);
      // No password on the command line or in a plain env value.
      expect(JSON.stringify(pod.containers[0].command)).not.toMatch(/password=|-p\$|PWD=/i);
    }
  });

  it("keep a complete dump under its final name, the newest N, and leave no file when the dump fails", () => {
    const backup = fs.mkdtempSync(path.join(os.tmpdir(), "dare-mysql-"));
    const dump = podOf("mysql-dump").containers[0];
    const ok = { mysqldump: 'echo "-- dump of $DB_HOST:$DB_PORT as $DB_USER ($MYSQL_PWD)"' };
    const env = { DB_HOST: "d4p-registry-db.dare.svc", DB_PORT: "3306", DB_USER: "root", MYSQL_PWD: "pw" };
    for (let i = 0; i < 3; i++) {
      const r = runScript(dump, { "/backup": backup }, ok, env);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
      spawnSync("sleep", ["1.05"]);
    }
    const files = fs.readdirSync(backup);
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/^mysql-\d{8}T\d{6}Z\.sql\.gz$/);
    const text = spawnSync("gzip", ["-dc", path.join(backup, files[0])], { encoding: "utf8" }).stdout;
    expect(text).toContain("dump of d4p-registry-db.dare.svc:3306 as root");

    // A failed dump (pipefail) never takes a final name, nor pushes a good dump out.
    const failing = runScript(dump, { "/backup": backup }, { mysqldump: "echo partial; exit 2" }, env);
    expect(failing.status).not.toBe(0);
    expect(
      fs
        .readdirSync(backup)
        .filter((f) => !f.endsWith(".part"))
        .sort(),
    ).toEqual(files.sort());
  });

  it("pass shellcheck, as the shell each container runs them with", () => {
    const scripts = cronJobs().flatMap((c) => {
      const pod = c.spec.jobTemplate.spec.template.spec;
      return [...(pod.initContainers ?? []), ...pod.containers]
        .filter((x: any) => x.command?.[1] === "-c")
        .map((x: any) => ({ name: `${c.metadata.name}/${x.name}`, shell: x.command[0], text: x.command[2] }));
    });
    expect(scripts.length).toBe(4);
    for (const s of scripts) {
      // Warnings and errors; the info note on `ls -t` does not apply to names these scripts chose.
      const r = spawnSync("shellcheck", ["-S", "warning", "-s", s.shell === "bash" ? "bash" : "sh", "-"], {
        input: s.text,
        encoding: "utf8",
      });
      expect({ name: s.name, out: r.stdout }).toEqual({ name: s.name, out: "" });
    }
  });
});

describe("borg host backups", () => {
  it("are absent without dare:backup, and then every host gets the borg step with its own key, its secrets hidden", () => {
    const without = render("testbed");
    expect(without.status).toBe(0);
    expect([...readTree(without.dir).keys()].filter((f) => f.includes("borg"))).toEqual([]);

    const withBorg = render("testbed", [
      "--set",
      "backup=borg@backup.example.org:/srv/borg/dare",
      "--set",
      "backupOptOut=",
      "--set-secret",
      "backupPassphrase=a passphrase long enough",
    ]);
    expect(withBorg.stderr).not.toMatch(/render failed|Invalid/);
    expect(withBorg.status).toBe(0);
    const files = readTree(withBorg.dir);
    const hosts = JSON.parse(files.get("outputs.json")!).hosts.map((h: any) => h.name);
    const steps = [...files.keys()].filter((f) => /^hosts\/[^/]+\/\d+-borg-backup\.sh$/.test(f));
    expect(steps.map((f) => f.split("/")[1]).sort()).toEqual([...hosts].sort());
    for (const step of steps) {
      expect(files.get(step)).toBe(readScript("borg-setup.sh"));
      const env = files.get(step.replace(/\.sh$/, ".env"))!;
      expect(env).toContain("BORG_PASSPHRASE='[secret]'");
      expect(env).toContain("BORG_SSH_PRIVATE_KEY='[secret]'");
      expect(env).toContain(`DARE_HOST='${step.split("/")[1]}'`);
      expect(env).toMatch(/^BORG_REPO_BASE='borg@backup\.example\.org:\/srv\/borg\/dare'$/m);
      expect(env).toMatch(/OnCalendar=\*-\*-\* 03:00:00/);
      for (const excluded of [
        "/tmp",
        "/root",
        "/boot",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/var/lib/containerd",
        "/var/lib/kubelet/pods",
        "/var/lib/kubelet/plugins",
      ]) {
        expect(env.split("\n")).toContain(excluded === "/tmp" ? "BORG_EXCLUDES='/tmp" : excluded);
      }
      // The snapshots and dumps are inside what is saved.
      expect(env).not.toMatch(/^\/var\/backups/m);
    }
    for (const [file, content] of files)
      expect({ file, leak: content.includes("a passphrase long enough") }).toEqual({ file, leak: false });
    // One key per host (a resource named after it), each confined on the server to that host's repository.
    const keys = JSON.parse(files.get("resources.json")!).filter(
      (r: any) => r.type === "tls:index/privateKey:PrivateKey" && r.name.includes("borg"),
    );
    expect(keys.map((k: any) => k.name).sort()).toEqual(hosts.map((h: string) => `backups-borg-ssh-${h}`).sort());
    for (const step of steps) {
      const host = step.split("/")[1];
      const command = JSON.parse(files.get("resources.json")!).find((r: any) => r.name === `backups-${host}-borg-backup`);
      expect(command.dependencies).toContain(keys.find((k: any) => k.name === `backups-borg-ssh-${host}`).urn);
      expect(command.dependencies.filter((d: string) => d.includes("privateKey:PrivateKey::backups-borg-ssh"))).toHaveLength(1);
    }
    const lines: string[] = JSON.parse(files.get("outputs.json")!).borgAuthorizedKeys.split("\n");
    expect(
      lines.map((l) =>
        /^command="borg serve --restrict-to-path \/srv\/borg\/dare\/([^"]+)",restrict ssh-ed25519 \S+ dare-borg@(\S+)$/.exec(l)?.slice(1),
      ),
    ).toEqual(hosts.map((h: string) => [h, h]));
    expect(new Set(lines.map((l) => l.split(" ")[5])).size).toBe(hosts.length);
  });

  it("authorise a host's key for its own repository only, and refuse a path the server's shell would read otherwise", () => {
    expect(borgAuthorizedKey("borg@b.example.org:/srv/borg/dare/", "cp-0", "ssh-ed25519 AAAAkey\n")).toBe(
      'command="borg serve --restrict-to-path /srv/borg/dare/cp-0",restrict ssh-ed25519 AAAAkey dare-borg@cp-0',
    );
    expect(borgAuthorizedKey("borg@b.example.org:~/dare", "w-1", "ssh-ed25519 AAAAkey")).toBe(
      'command="borg serve --restrict-to-path ~/dare/w-1",restrict ssh-ed25519 AAAAkey dare-borg@w-1',
    );
    for (const bad of ['/srv/"x', "/srv/a;rm", "/srv/$(id)", "/srv/a,b"]) {
      expect(() => borgAuthorizedKey(`borg@b.example.org:${bad}`, "cp-0", "ssh-ed25519 AAAAkey")).toThrow(/unquoted/);
    }
  });

  it("refuse a passphrase not set as a secret, a malformed repository, and a passphrase without a repository", () => {
    const problems = (values: Record<string, unknown>, secret: string[] = []) => {
      try {
        configFrom(values, secret);
        return "";
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
    };
    // No passphrase: Backups generates one (stack output borgPassphrase).
    expect(problems({ backup: "borg@backup.example.org:/srv/borg" })).toBe("");
    expect(problems({ backup: "borg@backup.example.org:/srv/borg", backupPassphrase: "long enough passphrase" }, [])).toMatch(
      /backupPassphrase.*--secret/s,
    );
    expect(problems({ backup: "backup.example.org/srv/borg", backupPassphrase: "long enough passphrase" }, ["backupPassphrase"])).toContain(
      "user@host:path",
    );
    expect(problems({ backupPassphrase: "long enough passphrase" }, ["backupPassphrase"])).toContain("only used with dare:backup");
    expect(
      problems({ backup: "borg@backup.example.org:/srv/borg", backupPassphrase: "long enough passphrase" }, ["backupPassphrase"]),
    ).toBe("");
  });

  it("refuse a repository without hosts to back up in the component", () => {
    installMocks("test");
    const config = configFrom({ backup: "borg@backup.example.org:/srv/borg", backupPassphrase: "long enough passphrase" }, [
      "backupPassphrase",
    ]);
    expect(
      () =>
        new Backups("b", {
          provider: new k8s.Provider("test", { kubeconfig: "{}" }),
          policy: config.dare.backup,
          images: { etcd: "e:1", postgres: "p:1", busybox: "b:1" },
          databases: [{ engine: "mysql", image: "m:1", host: "h", port: 1, command: "true", extension: "sql" }],
        }),
    ).toThrow(/needs the hosts to back up/);
  });
});
