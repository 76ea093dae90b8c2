/**
 * Item 7 of the benchmarks, second half (`npm run bench`, as root): how much each host's borg archive
 * holds. Test hosts (tests/hosts/harness.ts) as in tests/hosts/borg.test.ts: a repository server with
 * sshd and a `borg` user whose authorized_keys confines each host's own key to its own repository
 * (borgAuthorizedKey), a control plane and a worker. Each gets the program's borg-setup.sh with what the
 * host step sends (borgSetupEnv, the backupPolicy default, BORG_EXCLUDES), then the unit it installs is
 * run as systemd would (its ExecStart, the program's borg-backup.sh, with its EnvironmentFile), once,
 * and once more after a simulated day (the CronJobs' new snapshot and dumps, their retention applied).
 * `borg info --json` of each archive gives its original, compressed and deduplicated size and its files.
 *
 * What the hosts hold (the parts of a real host that borg saves and that matter for its size; the rest
 * of "/", the operating system, is left out here, see MODEL):
 *  - both: /etc (the test host's own, a copy of this machine's) and /var/lib/kubelet's configuration
 *    (config.yaml, kubeadm-flags.env, its certificates, the managers' state); a pod's emptyDir under
 *    /var/lib/kubelet/pods, which BORG_EXCLUDES must leave out;
 *  - the control plane: /etc/kubernetes as kubeadm leaves it (PKI, static pod manifests, kubeconfigs),
 *    keepEtcdSnapshots etcd snapshots and keepDumps dumps per database engine under /var/backups/dare;
 *  - the worker: /etc/kubernetes with kubelet.conf and the cluster CA only.
 * The program backs up "/" (BORG_PATHS); a test host's / holds this machine's /usr and bind mounts
 * that borg-backup.sh rightly leaves out, so, as in borg.test.ts, the paths are named instead.
 *
 *   npx ts-node --transpile-only tools/bench-borg.ts
 *   BENCH_BORG_ETCD_CHANGES=clustered: a day's changed etcd pages lie together (borg's best case)
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { BACKUP_ROOT, borgAuthorizedKey, borgSetupEnv } from "../components/backups";
import { BackupSpec } from "../lib/config";
import { defaultOf } from "../lib/config-keys";
import { envFile, readScript, wrapScript } from "../lib/host-step";
import { recordingStub, sshExec, startHosts, stopHosts, TestHost } from "../tests/hosts/harness";

const MiB = 1024 * 1024;

/** The assumptions, in one place (printed with the results). */
export const MODEL = {
  /** etcd's backend (bbolt) page size */
  etcdPage: 4096,
  /** size of one `etcdctl snapshot save` */
  etcdSnapshotBytes: 20 * MiB,
  /** share of the pages of one day's snapshot that are byte-identical in the next day's */
  etcdSharedFraction: 0.95,
  /**
   * Where a day's changed pages lie: scattered over the file (bbolt writes every changed page
   * copy-on-write to a page taken from its freelist, wherever that is) or together in one run.
   */
  etcdChanges: (process.env.BENCH_BORG_ETCD_CHANGES === "clustered" ? "clustered" : "scattered") as "scattered" | "clustered",
  /** bytes of each page that are object data (random); the rest is page slack (zeros): about 2:1 for zstd */
  etcdPageData: 2048,
  /**
   * Uncompressed size of one dump per engine (the dump jobs write them gzipped: `mysqldump | gzip`,
   * `mongodump --gzip`; pg_dump's custom format is compressed too, modelled as gzip of the whole).
   * d4p-registry's MySQL and Keycloak's PostgreSQL stay small; s-ProvFlow's MongoDB grows with every run.
   */
  dumpBytes: { mysql: 4 * MiB, mongodb: 64 * MiB, postgresql: 8 * MiB } as Record<string, number>,
  /** share of rows rewritten, and rows added, per day */
  dumpRowsChanged: 0.02,
  dumpRowsAdded: 0.01,
  /** a pod's emptyDir on each host, under /var/lib/kubelet/pods (must not be saved) */
  podVolumeBytes: 8 * MiB,
};

const ENGINES: Array<{ engine: string; ext: string }> = [
  { engine: "mysql", ext: "sql.gz" },
  { engine: "mongodb", ext: "archive.gz" },
  { engine: "postgresql", ext: "dump" },
];

export interface ArchiveStats {
  files: number;
  original: number;
  compressed: number;
  deduplicated: number;
  repository: number;
  seconds: number;
}
export interface RoleResult {
  role: string;
  /** what the first archive holds, by area: bytes and files */
  holds: Array<{ area: string; bytes: number; files: number }>;
  runs: ArchiveStats[];
}
export interface BorgSizes {
  borgVersion: string;
  policy: BackupSpec;
  roles: RoleResult[];
  total: number;
}

// ------------------------------------------------------------------ what the hosts hold

const b64 = (bytes: number) => crypto.randomBytes(bytes).toString("base64");
const pem = (label: string, derBytes: number) =>
  `-----BEGIN ${label}-----\n${b64(derBytes)
    .match(/.{1,64}/g)!
    .join("\n")}\n-----END ${label}-----\n`;
/** kubeadm's defaults: RSA 2048 keys (PKCS#1 DER ≈ 1190 bytes), certificates of ≈ 800–1100 bytes DER. */
const cert = () => pem("CERTIFICATE", 820 + crypto.randomInt(300));
const key = () => pem("RSA PRIVATE KEY", 1190 + crypto.randomInt(3));

function kubeconfig(user: string, clientData: boolean): string {
  const auth = clientData
    ? `    client-certificate-data: ${Buffer.from(cert()).toString("base64")}\n    client-key-data: ${Buffer.from(key()).toString("base64")}\n`
    : "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n";
  return (
    `apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ${Buffer.from(cert()).toString("base64")}\n` +
    `    server: https://10.0.0.10:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: ${user}\n` +
    `  name: ${user}@kubernetes\ncurrent-context: ${user}@kubernetes\nkind: Config\npreferences: {}\nusers:\n- name: ${user}\n  user:\n${auth}`
  );
}

function staticPod(name: string, flags: number): string {
  const args = Array.from({ length: flags }, (_, i) => `    - --${name}-option-${i}=/etc/kubernetes/pki/${name}-${i}.crt`).join("\n");
  return (
    `apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/${name}.advertise-address.endpoint: 10.0.0.10:6443\n` +
    `  labels:\n    component: ${name}\n    tier: control-plane\n  name: ${name}\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - ${name}\n${args}\n` +
    `    image: registry.k8s.io/${name}:v1.31.4\n    imagePullPolicy: IfNotPresent\n    livenessProbe:\n      failureThreshold: 8\n      httpGet:\n` +
    `        host: 127.0.0.1\n        path: /livez\n        port: 6443\n        scheme: HTTPS\n      initialDelaySeconds: 10\n      periodSeconds: 10\n` +
    `      timeoutSeconds: 15\n    name: ${name}\n    resources:\n      requests:\n        cpu: 250m\n    volumeMounts:\n    - mountPath: /etc/ssl/certs\n` +
    `      name: ca-certs\n      readOnly: true\n    - mountPath: /etc/kubernetes/pki\n      name: k8s-certs\n      readOnly: true\n  hostNetwork: true\n` +
    `  priority: 2000001000\n  priorityClassName: system-node-critical\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n` +
    `  volumes:\n  - hostPath:\n      path: /etc/ssl/certs\n      type: DirectoryOrCreate\n    name: ca-certs\n  - hostPath:\n` +
    `      path: /etc/kubernetes/pki\n      type: DirectoryOrCreate\n    name: k8s-certs\nstatus: {}\n`
  );
}

/** /etc/kubernetes as kubeadm leaves it: relative path -> content (mode 0600 for keys and kubeconfigs). */
function etcKubernetes(controlPlane: boolean): Record<string, string> {
  if (!controlPlane) return { "kubelet.conf": kubeconfig("system:node:worker", false), "pki/ca.crt": cert() };
  const files: Record<string, string> = {};
  for (const pair of [
    "ca",
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "front-proxy-ca",
    "front-proxy-client",
    "etcd/ca",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
  ]) {
    files[`pki/${pair}.crt`] = cert();
    files[`pki/${pair}.key`] = key();
  }
  files["pki/sa.key"] = key();
  files["pki/sa.pub"] = pem("PUBLIC KEY", 294);
  for (const [name, flags] of [
    ["etcd", 20],
    ["kube-apiserver", 30],
    ["kube-controller-manager", 18],
    ["kube-scheduler", 4],
  ] as const) {
    files[`manifests/${name}.yaml`] = staticPod(name, flags);
  }
  for (const conf of ["admin", "super-admin", "controller-manager", "scheduler"]) files[`${conf}.conf`] = kubeconfig(conf, true);
  files["kubelet.conf"] = kubeconfig("system:node:cp", false);
  return files;
}

/** /var/lib/kubelet's own files (no pods, no plugins). */
function varLibKubelet(): Record<string, string> {
  const clientPem = cert() + key();
  return {
    "config.yaml":
      `apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\n  webhook:\n    cacheTTL: 0s\n` +
      `    enabled: true\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nauthorization:\n  mode: Webhook\ncgroupDriver: systemd\n` +
      `clusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\ncontainerRuntimeEndpoint: ""\nkind: KubeletConfiguration\n` +
      `rotateCertificates: true\nserverTLSBootstrap: true\nstaticPodPath: /etc/kubernetes/manifests\n`.repeat(2),
    "kubeadm-flags.env": `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"\n`,
    "pki/kubelet.crt": cert(),
    "pki/kubelet.key": key(),
    "pki/kubelet-client-2026-01-01-02-00-00.pem": clientPem,
    "pki/kubelet-server-2026-01-01-02-00-00.pem": cert() + key(),
    cpu_manager_state: `{"policyName":"none","defaultCpuSet":"","checksum":1353318690}\n`,
    memory_manager_state: `{"policyName":"None","machineState":{},"checksum":1234567890}\n`,
    "device-plugins/kubelet_internal_checkpoint": `{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{}},"Checksum":1234567890}\n`,
  };
}

function writeTree(host: TestHost, dir: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(host.root, dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const secret = /\.(key|conf|pem)$/.test(rel);
    fs.writeFileSync(file, content, { mode: secret ? 0o600 : 0o644 });
  }
}

/** One day's etcd snapshot: the previous day's with 1 - etcdSharedFraction of its pages rewritten. */
function nextSnapshot(previous?: Buffer): Buffer {
  const { etcdPage: page, etcdSnapshotBytes: size, etcdPageData: data } = MODEL;
  const pages = size / page;
  const fill = (buf: Buffer, p: number) => {
    crypto.randomFillSync(buf, p * page, data);
    buf.fill(0, p * page + data, (p + 1) * page);
  };
  if (!previous) {
    const buf = Buffer.alloc(size);
    for (let p = 0; p < pages; p++) fill(buf, p);
    return buf;
  }
  const buf = Buffer.from(previous);
  const changed = Math.round(pages * (1 - MODEL.etcdSharedFraction));
  if (MODEL.etcdChanges === "clustered") {
    const start = crypto.randomInt(pages - changed + 1);
    for (let p = start; p < start + changed; p++) fill(buf, p);
  } else {
    const order = Array.from({ length: pages }, (_, i) => i);
    for (let i = 0; i < changed; i++) {
      const j = i + crypto.randomInt(pages - i);
      [order[i], order[j]] = [order[j], order[i]];
      fill(buf, order[i]);
    }
  }
  return buf;
}

/**
 * A database's rows, dumped as text and gzipped as the dump jobs do. Each day rewrites dumpRowsChanged of
 * the rows (scattered) and appends dumpRowsAdded.
 */
class Table {
  private rows: string[] = [];
  private next = 0;
  private static readonly WORDS = [
    "workflow",
    "dataset",
    "processing",
    "element",
    "provenance",
    "run",
    "user",
    "realm",
    "session",
    "client",
    "seismic",
    "waveform",
    "station",
    "event",
    "stream",
    "trace",
    "registry",
    "module",
    "import",
    "export",
  ];

  constructor(
    private readonly engine: string,
    bytes: number,
  ) {
    while (this.rows.length * 130 < bytes) this.rows.push(this.row());
  }

  private row(): string {
    const id = this.next++;
    const w = Table.WORDS;
    const text = Array.from({ length: 6 }, () => w[crypto.randomInt(w.length)]).join(" ");
    return (
      `INSERT INTO \`${this.engine}_data\` VALUES (${id},'${crypto.randomBytes(12).toString("hex")}','${text}',` +
      `'2026-01-${String(1 + (id % 28)).padStart(2, "0")} 02:00:00');\n`
    );
  }

  day(): void {
    const changed = Math.round(this.rows.length * MODEL.dumpRowsChanged);
    for (let i = 0; i < changed; i++) {
      const at = crypto.randomInt(this.rows.length);
      this.rows[at] = this.rows[at].replace(/'[0-9a-f]{24}'/, `'${crypto.randomBytes(12).toString("hex")}'`);
    }
    const added = Math.round(this.rows.length * MODEL.dumpRowsAdded);
    for (let i = 0; i < added; i++) this.rows.push(this.row());
  }

  dump(): Buffer {
    return zlib.gzipSync(Buffer.from(`-- ${this.engine} dump\n${this.rows.join("")}`), { level: 6 });
  }
}

const stamp = (day: Date) =>
  day
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");

/** The control plane's /var/backups/dare: the CronJobs' output up to `day`, each file dated at 02:00 UTC of its day. */
class CronJobs {
  private snapshot?: Buffer;
  private tables = new Map(ENGINES.map(({ engine }) => [engine, new Table(engine, MODEL.dumpBytes[engine])]));
  private day = new Date(Date.UTC(2026, 0, 1, 2, 0, 0));
  private nights = 0;

  constructor(
    private readonly host: TestHost,
    private readonly policy: BackupSpec,
  ) {}

  /** One night's run of every CronJob, then each one's retention (the same `ls -1t | tail` as the jobs). */
  async night(): Promise<void> {
    this.snapshot = nextSnapshot(this.snapshot);
    const at = this.day;
    const write = (dir: string, name: string, content: Buffer) => {
      const file = path.join(this.host.root, dir, name);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(file, content, { mode: 0o600 });
      fs.utimesSync(file, at, at);
    };
    write(`${BACKUP_ROOT}/etcd`, `etcd-${stamp(at)}.db`, this.snapshot);
    for (const { engine, ext } of ENGINES) {
      const table = this.tables.get(engine)!;
      if (this.nights > 0) table.day();
      write(`${BACKUP_ROOT}/db/${engine}`, `${engine}-${stamp(at)}.${ext}`, table.dump());
    }
    const keep = (dir: string, glob: string, n: number) => `ls -1t ${dir}/${glob} | tail -n +$((${n} + 1)) | xargs -r rm -f --`;
    const retention = [
      keep(`${BACKUP_ROOT}/etcd`, "etcd-*.db", this.policy.keepEtcdSnapshots),
      ...ENGINES.map(({ engine, ext }) => keep(`${BACKUP_ROOT}/db/${engine}`, `${engine}-*.${ext}`, this.policy.keepDumps)),
    ];
    const r = await this.host.exec(`set -e\n${retention.join("\n")}`);
    if (r.code !== 0) throw new Error(`retention on ${this.host.name}: ${r.stderr}`);
    this.day = new Date(this.day.getTime() + 86_400_000);
    this.nights++;
  }
}

// ------------------------------------------------------------------ borg on the hosts

function keygen(dir: string, name: string): { priv: string; pub: string } {
  const file = path.join(dir, name);
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return { priv: fs.readFileSync(file, "utf8"), pub: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

async function must(host: TestHost, cmd: string, what: string, stdin?: string): Promise<string> {
  const r = await host.exec(cmd, { timeoutMs: 120_000, stdin });
  if (r.code !== 0) throw new Error(`${host.name}: ${what} failed (${r.code}):\n${r.stderr.slice(-2000)}${r.stdout.slice(-1000)}`);
  return r.stdout;
}

/** borg on a host with the settings the setup step installed. */
const borg = (host: TestHost, args: string) =>
  must(host, `set -a; . /etc/dare/borg/borg.env; set +a; cd / && borg ${args}`, `borg ${args}`);

/** Runs the installed unit's ExecStart with its EnvironmentFile, as systemd would; returns the archive's stats. */
async function backupOnce(host: TestHost): Promise<ArchiveStats & { name: string }> {
  const unit = fs.readFileSync(path.join(host.root, "etc/systemd/system/dare-borg-backup.service"), "utf8");
  const envFileLine = /^EnvironmentFile=(.+)$/m.exec(unit)![1];
  const execStart = /^ExecStart=(.+)$/m.exec(unit)![1];
  const started = process.hrtime.bigint();
  const r = await host.exec(`set -a; . ${envFileLine}; set +a; ${execStart}`, { timeoutMs: 300_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.code !== 0) throw new Error(`${host.name}: ${execStart} failed (${r.code}):\n${r.stderr.slice(-2000)}`);
  const name = /^Archive name: (\S+)$/m.exec(r.stderr + r.stdout)![1];
  const archive = JSON.parse(await borg(host, `info --json ::${name}`)).archives[0].stats;
  const repository = JSON.parse(await borg(host, "info --json")).cache.stats.unique_csize;
  return {
    name,
    seconds,
    repository,
    files: archive.nfiles,
    original: archive.original_size,
    compressed: archive.compressed_size,
    deduplicated: archive.deduplicated_size,
  };
}

/** What an archive holds, by area. */
async function holdings(host: TestHost, name: string): Promise<RoleResult["holds"]> {
  const listing = await borg(host, `list --format '{type} {size} {path}{NL}' ::${name}`);
  const areas = new Map<string, { bytes: number; files: number }>();
  for (const line of listing.split("\n")) {
    const m = /^(\S) (\d+) (.*)$/.exec(line);
    if (!m || m[1] !== "-") continue;
    const p = m[3];
    if (p.startsWith("var/lib/kubelet/pods/") || p.startsWith("var/lib/kubelet/plugins/")) {
      throw new Error(`${host.name}: the archive holds ${p}, which BORG_EXCLUDES leaves out`);
    }
    const area =
      /^var\/backups\/dare\/db\/[^/]+/.exec(p)?.[0] ??
      ["etc/kubernetes", "etc/dare", "etc", "var/backups/dare/etcd", "var/lib/kubelet"].find((a) => p === a || p.startsWith(`${a}/`)) ??
      p;
    const entry = areas.get(area) ?? { bytes: 0, files: 0 };
    entry.bytes += Number(m[2]);
    entry.files += 1;
    areas.set(area, entry);
  }
  return [...areas]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([area, v]) => ({ area: area === "etc" ? "/etc (the rest)" : `/${area}`, ...v }));
}

export async function borgSizeBench(): Promise<BorgSizes> {
  const started = process.hrtime.bigint();
  const keys = fs.mkdtempSync(path.join(os.tmpdir(), "dare-bench-borg-"));
  let hosts: TestHost[] = [];
  try {
    const login = keygen(keys, "login");
    hosts = await startHosts(["bb-repo", "bb-cp", "bb-worker"], {
      authorizedKey: login.pub,
      stubs: { systemctl: recordingStub("systemctl") },
    });
    const [repo, cp, worker] = hosts;
    const policy: BackupSpec = {
      ...(defaultOf("backupPolicy") as Omit<BackupSpec, "repository">),
      repository: `borg@${repo.address}:/srv/borg`,
    };
    const roles = [
      { role: "control plane", host: cp, controlPlane: true, paths: `/etc ${BACKUP_ROOT} /var/lib/kubelet` },
      { role: "worker", host: worker, controlPlane: false, paths: "/etc /var/lib/kubelet" },
    ];
    const borgKeys = new Map(roles.map(({ host }) => [host.name, keygen(keys, `borg-${host.name}`)]));

    // The repository server, as the runbook says: a `borg` user whose authorized_keys is the stack output.
    const authorized = roles.map(({ host }) => borgAuthorizedKey(policy.repository!, host.name, borgKeys.get(host.name)!.pub)).join("\n");
    await must(
      repo,
      "set -e; useradd --create-home --shell /bin/sh borg; install -d -m 0700 -o borg -g borg /home/borg/.ssh; " +
        "cat > /home/borg/.ssh/authorized_keys; chown borg:borg /home/borg/.ssh/authorized_keys; chmod 0600 /home/borg/.ssh/authorized_keys; " +
        "usermod --password '*' borg; install -d -m 0700 -o borg -g borg /srv/borg",
      "repository server",
      `${authorized}\n`,
    );

    // What each host holds before its first backup.
    const jobs = new CronJobs(cp, policy);
    for (const { host, controlPlane } of roles) {
      writeTree(host, "etc/kubernetes", etcKubernetes(controlPlane));
      fs.mkdirSync(path.join(host.root, "etc/kubernetes/manifests"), { recursive: true });
      writeTree(host, "var/lib/kubelet", varLibKubelet());
      fs.symlinkSync(
        "/var/lib/kubelet/pki/kubelet-client-2026-01-01-02-00-00.pem",
        path.join(host.root, "var/lib/kubelet/pki/kubelet-client-current.pem"),
      );
      writeTree(host, "var/lib/kubelet/pods/0b1c2d3e-0000-4000-8000-000000000001/volumes/kubernetes.io~empty-dir/cache", {
        "data.bin": crypto.randomBytes(MODEL.podVolumeBytes),
      });
    }
    // As many nights as the retention keeps: the first backup finds full directories.
    for (let n = 0; n < Math.max(policy.keepEtcdSnapshots, policy.keepDumps); n++) await jobs.night();

    // The host step: borg-setup.sh over SSH as the login user, its parameters on stdin.
    await Promise.all(
      roles.map(async ({ host, paths }) => {
        const env = {
          ...borgSetupEnv(host.name, policy, "", ""),
          BORG_PASSPHRASE: crypto.randomBytes(20).toString("hex"),
          BORG_SSH_PRIVATE_KEY: borgKeys.get(host.name)!.priv,
          BORG_PATHS: paths,
        } as Record<string, string>;
        const r = await sshExec(host, login.priv, wrapScript(readScript("borg-setup.sh")), { stdin: envFile(env) });
        if (r.code !== 0) throw new Error(`${host.name}: borg-setup.sh failed (${r.code}):\n${r.stderr}${r.stdout}`);
        const installed = fs.readFileSync(path.join(host.root, "usr/local/bin/dare-borg-backup"), "utf8");
        if (installed.trimEnd() !== readScript("borg-backup.sh").trimEnd())
          throw new Error(`${host.name}: the installed backup script is not borg-backup.sh`);
      }),
    );

    const results: RoleResult[] = roles.map(({ role }) => ({ role, holds: [], runs: [] }));
    for (const [i, { host }] of roles.entries()) {
      const first = await backupOnce(host);
      results[i].runs.push(first);
      results[i].holds = await holdings(host, first.name);
    }
    // A day later: the CronJobs ran at 02:00 (one more snapshot and dump each, the oldest removed).
    await jobs.night();
    for (const [i, { host }] of roles.entries()) results[i].runs.push(await backupOnce(host));

    const borgVersion = (await must(cp, "borg --version", "borg --version")).trim();
    return { borgVersion, policy, roles: results, total: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    if (hosts.length) await stopHosts(hosts);
    fs.rmSync(keys, { recursive: true, force: true });
  }
}

const mib = (bytes: number) => (bytes / MiB >= 10 ? (bytes / MiB).toFixed(1) : (bytes / MiB).toFixed(2));

export function printBorgSizes(r: BorgSizes): void {
  const p = r.policy;
  console.log(
    `\nhost backups: what each host's borg archive holds (${r.borgVersion}, the program's borg-backup.sh on test hosts, ` +
      `keepEtcdSnapshots ${p.keepEtcdSnapshots}, keepDumps ${p.keepDumps}; ${r.total.toFixed(0)} s in all)`,
  );
  for (const role of r.roles) {
    console.log(`  ${role.role}: ${role.holds.map((h) => `${h.area} ${mib(h.bytes)} MiB in ${h.files}`).join(", ")}`);
    console.log(`    run                  files  original MiB  compressed MiB  deduplicated MiB  repository MiB  seconds`);
    role.runs.forEach((s, i) => {
      console.log(
        `    ${(i === 0 ? "first" : "next day").padEnd(19)} ${String(s.files).padStart(6)}  ${mib(s.original).padStart(12)}  ` +
          `${mib(s.compressed).padStart(14)}  ${mib(s.deduplicated).padStart(16)}  ${mib(s.repository).padStart(14)}  ${s.seconds.toFixed(1).padStart(7)}`,
      );
    });
  }
  const m = MODEL;
  console.log(
    `  assumed: etcd snapshots of ${mib(m.etcdSnapshotBytes)} MiB, ${m.etcdSharedFraction * 100}% of their ${m.etcdPage / 1024} KiB pages ` +
      `unchanged from one day to the next, the rest ${m.etcdChanges} (BENCH_BORG_ETCD_CHANGES), pages ${(m.etcdPageData / m.etcdPage) * 100}% data; ` +
      `gzipped dumps of ${ENGINES.map(({ engine }) => `${engine} ${mib(m.dumpBytes[engine])}`).join(", ")} MiB uncompressed, ` +
      `${m.dumpRowsChanged * 100}% of rows rewritten and ${m.dumpRowsAdded * 100}% added a day; deduplicated = what the run added to the repository`,
  );
  console.log(`  not modelled: the rest of "/" (the operating system, /var/log, /var/lib), saved too on a real host`);
}

if (require.main === module) {
  borgSizeBench()
    .then(printBorgSizes)
    .catch((err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
