/**
 * Failure prevention and recovery (the seed's chapter 6.3), in three parts:
 *  - etcd: a CronJob on a control-plane node saves `etcdctl snapshot save` to
 *    /var/backups/dare/etcd on that node and keeps the newest N;
 *  - databases: CronJobs dump each DARE database as its descriptor says (dare-workloads.ts: MySQL of
 *    d4p-registry, MongoDB of s-ProvFlow) and Keycloak's PostgreSQL (CloudNativePG cluster) to
 *    /var/backups/dare/db/<engine> on a control-plane node, newest N kept;
 *  - hosts: when `dare:backup` names a borg repository, every host gets BorgBackup over SSH
 *    (lib/scripts/borg-setup.sh), with a daily systemd timer. /var/backups is inside what borg
 *    saves, so the snapshots and dumps leave the cluster with the hosts' files.
 * docs/recovery.md is the runbook that undoes each of these.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { BackupSpec } from "../lib/config";
import { HostRef, hostStep, readScript, SshAccess } from "../lib/host-step";
import { createNamespace, NAMESPACES } from "../lib/namespaces";

export const BACKUP_ROOT = "/var/backups/dare";
export const ETCD_PKI = "/etc/kubernetes/pki/etcd";

/**
 * What borg leaves out: the seed's /tmp, /root and /boot, plus what is rebuilt at boot or by
 * Kubernetes (kernel file systems, container images, the kubelet's pod volumes and CSI mounts (Ceph
 * RBD and CephFS volumes mounted on the node), live etcd and Ceph monitor stores whose consistent
 * copies are the snapshots, caches). borg also stays on the host's own disk file systems
 * (`--one-file-system`, lib/scripts/borg-backup.sh).
 */
export const BORG_EXCLUDES = [
  "/tmp",
  "/root",
  "/boot",
  "/proc",
  "/sys",
  "/dev",
  "/run",
  "/mnt",
  "/media",
  "/lost+found",
  "/swap.img",
  "/var/tmp",
  "/var/cache",
  "/var/lib/containerd",
  "/var/lib/kubelet/pods",
  "/var/lib/kubelet/plugins",
  "/var/lib/etcd",
  "/var/lib/rook",
  "/var/log/pods",
  "/var/log/containers",
  "/var/lib/dare-borg",
];

/** A repository path that is safe unquoted in an authorized_keys command (read by the borg user's shell). */
const BORG_SERVE_PATH = /^(~[a-z0-9_-]*\/)?[A-Za-z0-9._+/-]+$/;

/**
 * The repository server's authorized_keys line for one host: its own key may only run `borg serve`
 * restricted to its own repository, `<dare:backup path>/<host>` (borg's "Hosting repositories").
 */
export function borgAuthorizedKey(repository: string, host: string, publicKeyOpenssh: string): string {
  const base = repository.slice(repository.indexOf(":") + 1).replace(/\/+$/, "");
  const path = `${base}/${host}`;
  if (!BORG_SERVE_PATH.test(path)) {
    throw new Error(
      `borg repository path ${JSON.stringify(path)}: use letters, digits and . _ + - / only (it goes unquoted into the server's authorized_keys)`,
    );
  }
  return `command="borg serve --restrict-to-path ${path}",restrict ${publicKeyOpenssh.trim()} dare-borg@${host}`;
}

export interface DatabaseTarget {
  /** in-cluster host name */
  host: pulumi.Input<string>;
  port: number;
  /** user with read access to everything (root, postgres' superuser or owner) */
  username: pulumi.Input<string>;
  /** its password (Pulumi secret) */
  password: pulumi.Input<string>;
}

/** One database a backup job dumps: what the DARE layer derives from the database's descriptor. */
export interface DatabaseDump {
  /** names the job (`<engine>-dump`), its directory under db/ and the dump files */
  engine: string;
  /** image with the dump client: the database's own image */
  image: string;
  /** in-cluster host name */
  host: pulumi.Input<string>;
  port: number;
  /** shell command that writes the dump to stdout, reading DB_HOST, DB_PORT (and DB_USER) */
  command: string;
  /** file name extension of the dumps */
  extension: string;
  /** the user the client signs in as and its password (Pulumi secret) in the variable passwordEnv; none: no authentication */
  credentials?: { username: pulumi.Input<string>; password: pulumi.Input<string>; passwordEnv: string };
}

export interface BorgHosts {
  /** Hosts to back up, by name (for stable resource names) and address. */
  hosts: HostRef[];
  /** How SSH reaches them. */
  ssh: SshAccess;
  /** Steps that must have run on the hosts first (bootstrap). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export interface BackupsArgs {
  /** Provider of the cluster. */
  provider: k8s.Provider;
  /** Schedules, retention and the borg repository (dare:backupPolicy, dare:backup, dare:backupPassphrase). */
  policy: BackupSpec;
  /** Images with pinned tags: etcd (etcdctl), PostgreSQL's client and busybox. */
  images: { etcd: string; postgres: string; busybox: string };
  /** The DARE databases (DareServices.databaseDumps). */
  databases: DatabaseDump[];
  /** Keycloak's PostgreSQL (CloudNativePG read-write Service) and the database to dump. */
  postgres?: DatabaseTarget & { database: pulumi.Input<string> };
  /** Hosts for borg; required when policy.repository is set. */
  borg?: BorgHosts;
}

/** The environment of borg-setup.sh for one host: what hostStep sends, and what the host test runs. */
export function borgSetupEnv(
  host: string,
  policy: BackupSpec,
  sshPrivateKey: pulumi.Input<string>,
  passphrase: pulumi.Input<string>,
): Record<string, pulumi.Input<string>> {
  if (!policy.repository) throw new Error("borgSetupEnv: no repository");
  return {
    DARE_HOST: host,
    BORG_REPO_BASE: policy.repository,
    BORG_PASSPHRASE: pulumi.secret(passphrase),
    BORG_SSH_PRIVATE_KEY: pulumi.secret(sshPrivateKey),
    BORG_BACKUP_SCRIPT: readScript("borg-backup.sh"),
    BORG_SERVICE_UNIT: readScript("borg-backup.service"),
    BORG_TIMER_UNIT: readScript("borg-backup.timer").replace("@ON_CALENDAR@", policy.hostSchedule),
    BORG_PATHS: "/",
    BORG_EXCLUDES: BORG_EXCLUDES.join("\n"),
    BORG_KEEP_DAILY: String(policy.prune.daily),
    BORG_KEEP_WEEKLY: String(policy.prune.weekly),
    BORG_KEEP_MONTHLY: String(policy.prune.monthly),
  };
}

export class Backups extends pulumi.ComponentResource {
  /** The namespace of the backup jobs. */
  public readonly namespace: string;
  /**
   * The borg repository server's authorized_keys lines, one per host ("" without a repository): each
   * host's own key, confined to that host's repository by `borg serve --restrict-to-path`.
   */
  public readonly borgAuthorizedKeys: pulumi.Output<string>;
  /** The borg repositories' passphrase (secret; "" without a repository): dare:backupPassphrase, or generated. */
  public readonly borgPassphrase: pulumi.Output<string>;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    if (args.policy.repository && !args.borg) {
      throw new Error(`${name}: a borg repository (${args.policy.repository}) needs the hosts to back up (borg)`);
    }
    if (args.borg && !args.policy.repository) {
      throw new Error(`${name}: hosts were given for borg but no repository (dare:backup)`);
    }
    super("dare:backups:Backups", name, {}, opts);

    const childOpts = { provider: args.provider, parent: this };
    const ns = createNamespace("backups", childOpts);
    this.namespace = NAMESPACES.backups.name;
    const nsOpts = { ...childOpts, dependsOn: [ns] };

    this.etcdSnapshots(name, args, nsOpts);
    this.dumps(name, args, nsOpts);

    if (args.policy.repository && args.borg) {
      // The operator's passphrase, or one made here: a secret in the state, shown by `pulumi stack output borgPassphrase`.
      const passphrase =
        args.policy.passphrase ??
        new random.RandomPassword(`${name}-borg-passphrase`, { length: 40, special: false }, { parent: this }).result;
      this.borgPassphrase = pulumi.secret(passphrase);
      // One key per host, each confined on the server to that host's repository: root on one host
      // cannot read (or delete) another host's archives, e.g. a control plane's etcd snapshots and CA keys.
      const repository = args.policy.repository;
      const lines: pulumi.Output<string>[] = [];
      for (const host of args.borg.hosts) {
        const key = new tls.PrivateKey(`${name}-borg-ssh-${host.name}`, { algorithm: "ED25519" }, { parent: this });
        lines.push(key.publicKeyOpenssh.apply((k) => borgAuthorizedKey(repository, host.name, k)));
        hostStep(
          name,
          {
            host,
            step: "borg-backup",
            script: "borg-setup.sh",
            env: borgSetupEnv(host.name, args.policy, key.privateKeyOpenssh, passphrase),
          },
          args.borg.ssh,
          { parent: this, dependsOn: args.borg.dependsOn },
        );
      }
      this.borgAuthorizedKeys = pulumi.all(lines).apply((l) => l.join("\n"));
    } else {
      this.borgAuthorizedKeys = pulumi.output("");
      this.borgPassphrase = pulumi.output("");
    }

    this.registerOutputs({ namespace: this.namespace, borgAuthorizedKeys: this.borgAuthorizedKeys });
  }

  /** A pod spec pinned to a control-plane node, writing under BACKUP_ROOT on that node. */
  private controlPlanePod(
    extra: Partial<k8s.types.input.core.v1.PodSpec>,
    volumes: k8s.types.input.core.v1.Volume[],
  ): k8s.types.input.core.v1.PodSpec {
    return {
      restartPolicy: "OnFailure",
      nodeSelector: { "node-role.kubernetes.io/control-plane": "" },
      tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
      automountServiceAccountToken: false,
      volumes,
      ...extra,
    } as k8s.types.input.core.v1.PodSpec;
  }

  private cronJob(
    name: string,
    id: string,
    schedule: string,
    pod: k8s.types.input.core.v1.PodSpec,
    opts: pulumi.CustomResourceOptions,
  ): void {
    const labels = { app: id, "app.kubernetes.io/part-of": "dare", service: "dare-backups" };
    new k8s.batch.v1.CronJob(
      `${name}-${id}`,
      {
        metadata: { name: id, namespace: this.namespace, labels },
        spec: {
          schedule,
          concurrencyPolicy: "Forbid",
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 3,
          jobTemplate: { spec: { backoffLimit: 2, activeDeadlineSeconds: 3600, template: { metadata: { labels }, spec: pod } } },
        },
      },
      opts,
    );
  }

  private etcdSnapshots(name: string, args: BackupsArgs, opts: pulumi.CustomResourceOptions): void {
    const keep = args.policy.keepEtcdSnapshots;
    const resources = { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "512Mi" } };
    this.cronJob(
      name,
      "etcd-snapshot",
      args.policy.schedule,
      this.controlPlanePod(
        {
          // etcd listens on the node's loopback; the snapshot is taken with kubeadm's etcd client certificate.
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          initContainers: [
            {
              name: "snapshot",
              image: args.images.etcd,
              command: [
                "etcdctl",
                "--endpoints=https://127.0.0.1:2379",
                `--cacert=${ETCD_PKI}/ca.crt`,
                `--cert=${ETCD_PKI}/healthcheck-client.crt`,
                `--key=${ETCD_PKI}/healthcheck-client.key`,
                "snapshot",
                "save",
                "/staging/snapshot.db",
              ],
              env: [{ name: "ETCDCTL_API", value: "3" }],
              resources,
              volumeMounts: [
                { name: "pki", mountPath: ETCD_PKI, readOnly: true },
                { name: "staging", mountPath: "/staging" },
              ],
            },
          ],
          // The etcd image has no shell: a busybox step names the snapshot and keeps the newest N.
          containers: [
            {
              name: "keep",
              image: args.images.busybox,
              command: [
                "sh",
                "-c",
                [
                  "set -eu",
                  "rm -f /backup/etcd-*.part",
                  "test -s /staging/snapshot.db",
                  "name=etcd-$(date -u +%Y%m%dT%H%M%SZ).db",
                  'mv /staging/snapshot.db "/backup/$name.part" && mv "/backup/$name.part" "/backup/$name"',
                  `ls -1t /backup/etcd-*.db | tail -n +$((${keep} + 1)) | xargs -r rm -f --`,
                  'echo "saved /backup/$name"',
                ].join("\n"),
              ],
              resources,
              volumeMounts: [
                { name: "staging", mountPath: "/staging" },
                { name: "backup", mountPath: "/backup" },
              ],
            },
          ],
        },
        [
          { name: "pki", hostPath: { path: ETCD_PKI, type: "Directory" } },
          { name: "backup", hostPath: { path: `${BACKUP_ROOT}/etcd`, type: "DirectoryOrCreate" } },
          { name: "staging", emptyDir: {} },
        ],
      ),
      opts,
    );
  }

  private dumps(name: string, args: BackupsArgs, opts: pulumi.CustomResourceOptions): void {
    const keep = args.policy.keepDumps;
    const secretData: Record<string, pulumi.Input<string>> = {
      ...Object.fromEntries(args.databases.flatMap((d) => (d.credentials ? [[d.credentials.passwordEnv, d.credentials.password]] : []))),
      ...(args.postgres ? { PGPASSWORD: args.postgres.password } : {}),
    };
    // The passwords come from the layers that own the databases; a copy lives here for the jobs.
    new k8s.core.v1.Secret(
      `${name}-db-credentials`,
      {
        metadata: { name: "db-credentials", namespace: this.namespace },
        type: "Opaque",
        stringData: Object.fromEntries(Object.entries(secretData).map(([k, v]) => [k, pulumi.secret(v)])),
      },
      opts,
    );
    const password = (key: string) => ({ name: key, valueFrom: { secretKeyRef: { name: "db-credentials", key } } });
    const resources = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } };
    /** Writes the dump to a temporary name, renames it when complete, keeps the newest N. */
    const script = (engine: string, ext: string, dump: string) =>
      [
        // bash where a pipe must fail as a whole (the mysql image's sh is bash; dash lacks pipefail).
        dump.includes("|") ? "set -euo pipefail" : "set -eu",
        // Dumps hold every row (password hashes, tokens): readable by root only (tests/restore/dump-mode.test.ts).
        "umask 077",
        // What a failed run left behind.
        `rm -f /backup/${engine}-*.part`,
        `name=${engine}-$(date -u +%Y%m%dT%H%M%SZ).${ext}`,
        `${dump} > "/backup/$name.part"`,
        'test -s "/backup/$name.part"',
        'mv "/backup/$name.part" "/backup/$name"',
        `ls -1t /backup/${engine}-*.${ext} | tail -n +$((${keep} + 1)) | xargs -r rm -f --`,
        'echo "saved /backup/$name"',
      ].join("\n");
    const job = (engine: string, image: string, env: k8s.types.input.core.v1.EnvVar[], command: string) =>
      this.cronJob(
        name,
        `${engine}-dump`,
        args.policy.schedule,
        this.controlPlanePod(
          {
            containers: [
              {
                name: "dump",
                image,
                command: [command.startsWith("set -euo pipefail") ? "bash" : "sh", "-c", command],
                env,
                resources,
                volumeMounts: [{ name: "backup", mountPath: "/backup" }],
              },
            ],
          },
          [{ name: "backup", hostPath: { path: `${BACKUP_ROOT}/db/${engine}`, type: "DirectoryOrCreate" } }],
        ),
        opts,
      );

    for (const db of args.databases) {
      job(
        db.engine,
        db.image,
        [
          { name: "DB_HOST", value: db.host },
          { name: "DB_PORT", value: String(db.port) },
          ...(db.credentials ? [{ name: "DB_USER", value: db.credentials.username }, password(db.credentials.passwordEnv)] : []),
        ],
        script(db.engine, db.extension, db.command),
      );
    }

    if (args.postgres) {
      job(
        "postgresql",
        args.images.postgres,
        [
          { name: "PGHOST", value: args.postgres.host },
          { name: "PGPORT", value: String(args.postgres.port) },
          { name: "PGUSER", value: args.postgres.username },
          { name: "PGDATABASE", value: args.postgres.database },
          password("PGPASSWORD"),
        ],
        script("postgresql", "dump", "pg_dump --format=custom --no-owner"),
      );
    }
  }
}
