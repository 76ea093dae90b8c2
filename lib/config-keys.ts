/**
 * The stack configuration's keys, declared once: type, default, description and (for plain values)
 * constraint. Pulumi.yaml's `config:` block and the README's configuration reference are generated from
 * this table (`npm run config-reference -- --write`; a test fails when either disagrees), and the loader
 * (config.ts) takes its defaults and scalar constraints from it.
 *
 * The Pulumi CLI's contract (pkg/workspace/config.go, mergeConfig): a key declared with neither `default`
 * nor `value` must be set in every stack, or `pulumi preview` stops before the program runs. So only keys
 * a stack must really set (domain, adminCidrs) have no default; optional keys default to an "unset" value
 * ("", [], {} or "auto") that the loader reads as such. The CLI applies a default only to a key the stack
 * does not set at all: it never merges a default into a structured key the stack sets in part (as
 * `pulumi config set --path 'nodes.pools[0].count' 4` does), so the loader fills the missing fields from
 * the same default (see `withDefaults`).
 */
import { KUBE_VIP_IMAGE } from "../components/cluster/kube-vip";

/** Pulumi.yaml's config types (checked by the CLI); structured keys carry none. */
export type PulumiConfigType = "string" | "integer" | "boolean" | "array";

export interface KeyDeclaration {
  /** the type the CLI checks; absent for structured (object) keys and keys that take several types */
  type?: PulumiConfigType;
  /** element type of an array */
  items?: { type: "string" };
  /**
   * The key is a secret (set with --secret). Only untyped keys say so in Pulumi.yaml: the CLI applies a
   * typed secret key's default as plain text and then refuses it ("must be encrypted").
   */
  secret?: boolean;
  /** applied by the CLI (and the offline render) when the stack does not set the key; absent: required */
  default?: unknown;
  /** allowed values of a plain key, checked by the loader */
  oneOf?: readonly unknown[];
  description: string;
}

export const PROVIDERS = ["openstack", "existing"] as const;
/** The self-signed CA's ClusterIssuer, whose certificate the program makes (components/security.ts). */
export const CA_ISSUER = "dare-ca";
export const TLS_ISSUERS = ["letsencrypt-prod", "letsencrypt-staging", CA_ISSUER] as const;

const declare = <T extends Record<string, KeyDeclaration>>(keys: T) => keys;

export const CONFIG_KEYS = declare({
  provider: {
    type: "string",
    default: "openstack",
    oneOf: PROVIDERS,
    description: "Where the machines come from: `openstack` (created by this program) or `existing` (listed in dare:hosts).",
  },
  clusterName: {
    type: "string",
    default: "",
    description: "Prefix of every cloud resource and host name. Empty: dare-<stack>.",
  },
  nodes: {
    default: {
      controlPlane: { count: 1, flavor: "m1.medium" },
      // One disk each: Ceph needs OSDs for the storage classes every later layer uses.
      pools: [{ name: "workers", count: 2, flavor: "m1.large", disks: { count: 1, sizeGb: 100 }, publicIp: false }],
    },
    description:
      "Machines to create (openstack): `controlPlane: {count, flavor}` (count odd: 1, 3 or 5) and " +
      "`pools: [{name, count, flavor, disks: {count, sizeGb}, publicIp}]`. Disks are block volumes that become Ceph OSDs; " +
      "a pool may have none. With `existing`, only the pool names (host roles) and their labels, taints and kubelet settings are used. Fields a stack leaves out " +
      "take the default's values (pool N from default pool N), so " +
      "`pulumi config set --path 'nodes.pools[0].count' 4 && pulumi up` scales the default pool. A pool may also give its nodes " +
      "`labels` ({key: value}; kubernetes.io/k8s.io keys only under node.kubernetes.io/, kubelet.kubernetes.io/ or the topology ones, " +
      'never node-role.kubernetes.io/ or dare.io/), `taints` (["key=value:Effect"], effect NoSchedule, PreferNoSchedule or NoExecute) and ' +
      "`kubelet` settings ({maxPods, systemReserved, kubeReserved, evictionHard, featureGates}): applied when a node joins and kept in " +
      'step by every later `pulumi up` (README, "Node pools").',
  },
  hosts: {
    default: [],
    description:
      "`existing` only: the machines, `[{name, role, address, privateAddress, user, port, disks, hostKey, installation, viaBastion}]`; role is " +
      "`control-plane` or a pool name from dare:nodes; disks are device paths (e.g. /dev/sdb) for Ceph; hostKey (required) is " +
      "the host's SSH host key, `ssh-ed25519 AAAA…`, the only key SSH accepts from the host: read it on the host's console " +
      "(`cat /etc/ssh/ssh_host_ed25519_key.pub`), or with `ssh-keyscan -t ed25519 <address>` after comparing fingerprints " +
      'with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the console (docs/operations.md, "SSH host keys"); installation ' +
      "(optional) names the host's installation: give it a new value after re-installing the host, and `pulumi up` sets " +
      "it up again (docs/recovery.md); viaBastion (default true when dare:bastion is set) reaches the host through that " +
      "jump host, `false` directly. Set it field by field with `--path` (`hosts[0].name`, `hosts[0].address`, …). A worker host " +
      "may also have its own `labels` (added to its pool's), `taints` and `kubelet` settings (replacing its pool's), as in dare:nodes.pools.",
  },
  network: {
    default: {
      cidr: "10.10.0.0/24",
      podCidr: "10.244.0.0/16",
      serviceCidr: "10.96.0.0/12",
      externalNetwork: "public",
      dnsNameservers: ["1.1.1.1", "9.9.9.9"],
    },
    description:
      "`{cidr, podCidr, serviceCidr, externalNetwork, dnsNameservers}`: the nodes' subnet, Calico's pod range, " +
      "the Service range (all three disjoint; at least /28: its 1st, 10th and 12th addresses are the API's, DNS's and " +
      "Traefik's in-cluster Service's), the OpenStack external network for the router and floating IPs.",
  },
  adminCidrs: {
    type: "array",
    items: { type: "string" },
    description: "Source ranges (CIDR) allowed to reach SSH and the Kubernetes API. Required.",
  },
  domain: {
    type: "string",
    description: "DNS name the DARE services, Keycloak and Grafana are served under. Required.",
  },
  kubernetesVersion: {
    type: "string",
    default: "1.36.4",
    description: "Kubernetes MAJOR.MINOR.PATCH (supported minors 1.35-1.37). Raise by one minor at a time to upgrade.",
  },
  secretsEncryptionKeys: {
    type: "array",
    items: { type: "string" },
    default: ["key1"],
    description:
      "Names of the keys that encrypt Kubernetes Secrets in etcd (secretbox), the one that encrypts new " +
      "writes first; every listed key decrypts. The program generates 32 random bytes per name (secrets in the " +
      'state). Rotate in three updates: ["key1", "key2"], then ["key2", "key1"] and rewrite every Secret, ' +
      'then ["key2"] (docs/kubernetes.md, "Secret encryption keys").',
  },
  certificateRenewalDays: {
    type: "integer",
    default: 90,
    description:
      "Days before expiry that certificates are renewed: each control plane's daily timer runs `kubeadm certs " +
      "renew all` (then restarts its static pods, control planes an hour apart) when any certificate kubeadm manages " +
      "expires within them, and `pulumi up` renews the admin kubeconfig's certificate within them. 45 to 180: above " +
      "the 30-day KubeadmCertificateExpiresSoon warning, at most half of the one-year lifetime " +
      '(docs/kubernetes.md, "Certificates: what renews when").',
  },
  controlPlaneExtraArgs: {
    default: {},
    description:
      "`{apiServer, controllerManager, scheduler}`, each `{flag: value}` (flag without --): extra flags of the control-plane " +
      'components, e.g. `{"apiServer": {"service-node-port-range": "30000-32767"}}`. Refused: flags the program or kubeadm ' +
      "sets itself, and flags that would weaken authentication, authorization, admission, encryption at rest, the audit log or the " +
      "certificates. A change is applied to running control planes one at a time on the next `pulumi up` (each component restarts).",
  },
  image: {
    type: "string",
    default: "Ubuntu 24.04",
    description: "OpenStack image name (Ubuntu 24.04 LTS). Applies to new nodes; running nodes are upgraded in place.",
  },
  sshUser: {
    type: "string",
    default: "ubuntu",
    description: "Login user of the image (openstack) and default user of existing hosts.",
  },
  bastion: {
    default: {},
    description:
      "`existing` only: a jump host `{address, privateAddress, port, user, hostKey}` that SSH goes through to reach the hosts " +
      "(every host step, the borg setup included), as the first control plane is on OpenStack. Every host in dare:hosts is " +
      "reached through it, except those with `viaBastion: false` (e.g. the jump host itself when it is also a cluster host). " +
      "privateAddress (IPv4, default address) is the address the hosts see its connections come from: their firewall admits SSH " +
      "from it. port defaults to 22 and user to dare:sshUser; hostKey (required) is its SSH host key, `ssh-ed25519 AAAA…`, the only " +
      "key accepted from it (read as for dare:hosts[].hostKey). It must allow TCP forwarding (sshd's AllowTcpForwarding, " +
      "on by default) to the hosts' SSH ports. Empty: every host is reached directly.",
  },
  bastionPrivateKey: {
    secret: true,
    default: "",
    description:
      "The private key (OpenSSH format, no passphrase) the program logs in to dare:bastion with, when the jump " +
      "host takes another key than the hosts; set it with --secret from the key file, as dare:sshPrivateKey. Empty: the key of " +
      "dare:sshPrivateKey (or the program's own).",
  },
  sshPrivateKey: {
    secret: true,
    default: "",
    description:
      "The private key (OpenSSH format, no passphrase) the program logs in to every host with, instead of " +
      "one it generates: needed with existing hosts, which must accept the key before the first `pulumi up` " +
      "(`ssh-keygen -t ed25519 -N '' -f dare-deployer`, authorise dare-deployer.pub on the hosts, then " +
      "`pulumi config set --secret sshPrivateKey < dare-deployer`). Empty: an ED25519 key made by the program " +
      "(stack output sshPublicKey), which OpenStack gives its VMs.",
  },
  apiLoadBalancer: {
    type: "boolean",
    default: true,
    description:
      "openstack: an Octavia load balancer in front of the API, whatever the control-plane count, so the API " +
      "endpoint never changes for the life of the cluster (going from 1 to 3 control planes keeps it). Off: nodes use " +
      "the first control plane as the API endpoint, so losing it stops the API until it returns, unless dare:apiVirtualIp " +
      "gives the API a virtual IP. Decide before the " +
      "first `pulumi up`: switching it on a running cluster changes the endpoint, which the bootstrap refuses.",
  },
  apiVirtualIp: {
    default: {},
    description:
      "`{address, interface, image}`: a virtual IP for the Kubernetes API without a cloud load balancer, for " +
      "`existing` hosts or openstack with apiLoadBalancer false. kube-vip (a static pod on every control plane, ARP mode, " +
      "leader election through a Lease) holds `address` on one control plane at a time, so losing the first control plane " +
      "no longer stops the API. `address`: a free IPv4 address in the nodes' subnet (dare:network.cidr), on the control " +
      "planes' layer-2 network, that no host uses; on openstack the program reserves it with a Neutron port, lets the control " +
      "planes' ports carry it (allowed-address-pairs) and gives it the API's floating IP. `interface` (optional): the host " +
      "interface for the VIP; default: the one holding each control plane's private address. `image` (optional): default " +
      `${KUBE_VIP_IMAGE} (the tag is upstream's release; its digest is not pinned, as none could be verified: add one with ` +
      "repository:tag@sha256:…). Decide before the first `pulumi up`: adding or removing it on a running cluster changes " +
      'the API endpoint, which the bootstrap refuses. Empty: no virtual IP (README, "API endpoint").',
  },
  ingressLoadBalancer: {
    default: "auto",
    oneOf: ["auto", true, false],
    description:
      "openstack only: an Octavia load balancer (made by the OpenStack cloud controller manager) in front of " +
      "Traefik; point DNS at its floating IP (stack output ingressAddresses). `auto`: the value of apiLoadBalancer with " +
      "openstack, off with existing hosts. Off: Traefik listens on ports 80/443 of the ingress nodes (workers with a " +
      "public address; with `existing`, every worker); point DNS at those addresses.",
  },
  ceph: {
    default: {},
    description:
      "`{replicas, monitors}`: copies of each object in the Ceph pools (at most the number of hosts with " +
      "disks; 1 keeps a single copy: testbed only) and Ceph monitors (1, 3 or 5, at most one per worker). " +
      "Unset: 3 of each, fewer when the cluster is smaller.",
  },
  tlsIssuer: {
    type: "string",
    default: "dare-ca",
    oneOf: TLS_ISSUERS,
    description:
      "ClusterIssuer for every public endpoint's certificate: `letsencrypt-prod`, `letsencrypt-staging` " +
      "(test certificates, not trusted by browsers) or `dare-ca` (a self-signed CA, for installs without public DNS; " +
      "browsers must trust its certificate: `pulumi stack output dareCaCertificate --show-secrets`).",
  },
  acmeEmail: {
    type: "string",
    default: "",
    description: "Let's Encrypt account e-mail (expiry notices). Required with a letsencrypt-* tlsIssuer.",
  },
  stopAfter: {
    type: "string",
    default: "",
    oneOf: ["", "bootstrap"],
    description:
      "`bootstrap`: stop after the Kubernetes bootstrap (hosts prepared, the cluster initialised and joined); " +
      "nothing is applied to the cluster and the later stack outputs are null. For a staged bring-up (check the " +
      "hosts first), and the engine tier's bootstrap test (tests/engine/up.test.ts). Empty: every layer.",
  },
  skipAwait: {
    type: "boolean",
    default: false,
    description:
      "Do not wait for what the cluster reports ready: every Helm release is installed without `--wait` " +
      '(its `skipAwait`) and without its hooks (`--no-hooks`: Helm waits for hook Jobs to complete), and every other Kubernetes object carries `pulumi.com/skipAwait: "true"` (CRDs excepted: ' +
      "their custom resources still wait for them to be Established). Objects are then only accepted by the API " +
      "server, not running. For staged bring-ups (nodes not yet able to run pods) and the engine tier's tests, whose " +
      "API server has no kubelet behind it. Off: Pulumi waits for each object as `helm --wait` does.",
  },
  chartMirror: {
    type: "string",
    default: "",
    description:
      "A Helm chart repository (http:// or https:// URL) that every release is installed from instead of " +
      "its upstream repository: an air-gapped site's mirror holding the same chart versions, and Traefik's and " +
      'kube-prometheus-stack\'s charts unpacked beside their archives, for their CRDs (README, "Air-gapped sites"). ' +
      "Empty: each chart's upstream repository.",
  },
  mirrors: {
    default: {},
    description:
      'Mirrors for an air-gapped site\'s hosts (README, "Air-gapped sites"): `{registries, apt, caCertificate}`. ' +
      "`registries`: by registry name as images name it (`docker.io`, `registry.k8s.io`, `quay.io`, `host:port`), " +
      "`{endpoint}`: the mirror containerd pulls that registry's images from first (an http:// or https:// URL; a path " +
      "is the registry API's root there, e.g. a Harbor proxy-cache project `https://harbor.example.org/v2/dockerhub-proxy`), " +
      "written to /etc/containerd/certs.d/<registry>/hosts.toml; set one with " +
      "`pulumi config set --path 'mirrors.registries[\"docker.io\"].endpoint' https://harbor.example.org/v2/dockerhub-proxy`. " +
      "`apt`: `{ubuntu, kubernetes, docker}`, URLs that serve the same paths as http://archive.ubuntu.com/ubuntu, " +
      "https://pkgs.k8s.io and https://download.docker.com/linux/ubuntu; the hosts' apt sources use them instead, " +
      "with the same signing keys. `caCertificate`: the CA the mirrors' https certificates are checked against " +
      "(containerd's `ca`, apt's CAInfo, the key downloads): `dare-ca` (the cluster's own CA, stack output dareCaCertificate) " +
      "or a PEM certificate; empty: the hosts' trust store. Removing a mirror puts the upstream source back on every host.",
  },
  harbor: {
    default: { enabled: false, registrySizeGb: 50 },
    description:
      "`{enabled, registrySizeGb}`: Harbor container registry (with Trivy scanning) at harbor.<domain>, " +
      "its image store on Ceph block storage of registrySizeGb.",
  },
  images: {
    default: {
      // D5.4's appendix names this image and tag.
      "dare-login": "registry.gitlab.com/project-dare/dare-platform/dare-login:v1.1",
      // No image or tag of these is published: each must be configured (the loader names its GitLab project).
      "d4p-registry": "",
      "d4p-registry-db": "mysql:8.4.6",
      "exec-api": "",
      "exec-registry": "",
      playground: "",
      "workflow-registry": "",
      "semantic-data": "",
      sprov: "",
      // s-ProvFlow's client (pymongo 3.4.0) speaks the OP_QUERY command protocol MongoDB 5.1 removed: 5.0 is
      // the newest server it can use (end of life; docker-library rebuilt 5.0.33 for CVE-2026-8053 in
      // official-images#21477; isolated, see docs/dare-services.md).
      "sprov-db": "mongo:5.0.33",
      "sprov-view": "",
      "sprov-cronjob": "",
      "mpi-operator": "mpioperator/mpi-operator:0.8.2",
      // The MPIJob conversion webhook's runtime (docker-library official-images library/node at 37079fb):
      // a dependency-free script, components/dare-services/mpijob-conversion/webhook.js.
      "mpijob-conversion": "node:24.19.0-alpine3.24",
      // prometheus/blackbox_exporter tag v0.28.0 (2025-12-04), published to quay.io by its release CI.
      "blackbox-exporter": "quay.io/prometheus/blackbox-exporter:v0.28.0",
      // The etcd kubeadm 1.36 deploys (cmd/kubeadm/app/constants: DefaultEtcdVersion 3.6.8-0): etcdctl of the same release.
      etcd: "registry.k8s.io/etcd:3.6.8-0",
      "postgres-client": "postgres:18.1",
      busybox: "busybox:1.37.0",
    },
    description:
      "Image and pinned tag of each DARE workload, the MPI operator, the blackbox exporter and the backup tools, by name. Set only " +
      "the ones to change, e.g. `pulumi config set --path 'images.exec-api' harbor.dare.example.org/dare/exec-api:v3.6`. " +
      "Each is pinned by a tag (not latest), a digest or both: `repository:tag`, `repository@sha256:<64 hex digits>` or " +
      "`repository:tag@sha256:<64 hex digits>` (a digest names one image for good; `crane digest` or `docker buildx imagetools " +
      "inspect` prints it). The MPI operator keeps its tag 0.8.2, the release of the MPIJob CRD the program ships. " +
      "Only dare-login's image is published (registry.gitlab.com/project-dare/dare-platform/dare-login:v1.1, D5.4): " +
      "d4p-registry, exec-api, exec-registry, playground, workflow-registry, semantic-data, sprov, sprov-view and " +
      "sprov-cronjob have no public image or tag and are required: build each from its GitLab project under " +
      "gitlab.com/project-dare (docs/dare-services.md) and push it to your registry. sprov-db is MongoDB 5.0, the newest " +
      "server s-ProvFlow's pymongo 3.4 can talk to.",
  },
  services: {
    default: {},
    description:
      "Per-workload sizing, by the names of dare:images (DARE workloads only): `{replicas, port, requests: {cpu, memory}, " +
      "limits: {cpu, memory}, storageSize, dataPath}`. Defaults: 1 replica; requests 100m/256Mi, limits 1/1Gi (databases " +
      "250m/512Mi and 2/2Gi); 10Gi volumes. Ports with a source: d4p-registry 8000, sprov 8082, sprov-view 8080, databases " +
      "3306/27017. Ports that are guesses (confirm in each service's GitLab project): dare-login 80, exec-api 80, " +
      "exec-registry 80, playground 80, semantic-data 80, workflow-registry 8000. exec-api and workflow-registry keep a " +
      '"local DB" on a volume of storageSize at dataPath (default /data, a guess: the path is not published); they run ' +
      "one replica. More than one replica adds a PodDisruptionBudget.",
  },
  sharedFilesystemSize: {
    type: "string",
    default: "100Gi",
    description: "Size of the DARE shared file system (CephFS, ReadWriteMany) mounted at /home/mpiuser/sfs.",
  },
  jupyterhub: {
    type: "boolean",
    default: false,
    description: "Install JupyterHub (upstream chart) at https://<domain>/jupyter in its own namespace.",
  },
  workflowInternetAccess: {
    type: "boolean",
    default: false,
    description:
      "Let workflow pods (MPIJobs) reach the internet on any port (pip, GitLab downloads, FDSN data), " +
      "private and link-local ranges excepted. Off: they reach only s-ProvFlow, exec-api and each other.",
  },
  backup: {
    type: "string",
    default: "",
    description:
      "Borg repository for host backups, `user@host:path` (each host uses path/<host name>). Empty: no host " +
      "backups. Needs dare:backupPassphrase. Install the stack output borgAuthorizedKeys (one line per host: its own key, " +
      "confined to its own repository) as the repository server's authorized_keys.",
  },
  backupPassphrase: {
    secret: true,
    default: "",
    description:
      "Passphrase of the borg repositories' keys (repokey-blake2). Set with --secret. Empty: the program " +
      "generates one (a secret in the state); keep a copy outside it (`pulumi stack output borgPassphrase " +
      "--show-secrets`): without it no archive can be read.",
  },
  allowDataLoss: {
    type: "array",
    items: { type: "string" },
    default: [],
    description:
      "Names of data-holding resources (volumes, VMs, volume claims, the database cluster, data " +
      "namespaces) that this run may delete or replace. Empty: the program refuses any change that would delete " +
      'one, naming it (docs/operations.md, "Letting data go"). Remove the entries after the run.',
  },
  backupOptOut: {
    type: "string",
    default: "",
    description:
      'Why this stack runs without off-host backups (dare:backup unset), e.g. "testbed: disposable ' +
      'data". Without dare:backup or this reason the configuration is refused: etcd snapshots and database ' +
      "dumps would otherwise live only on the control planes' disks.",
  },
  backupPolicy: {
    default: {
      schedule: "0 2 * * *",
      keepEtcdSnapshots: 7,
      keepDumps: 7,
      hostSchedule: "*-*-* 03:00:00",
      prune: { daily: 7, weekly: 4, monthly: 6 },
    },
    description:
      "`{schedule, keepEtcdSnapshots, keepDumps, hostSchedule, prune: {daily, weekly, monthly}}`: cron schedule " +
      "of the etcd snapshot and database dump CronJobs, how many of each to keep on the control planes " +
      "(/var/backups/dare), the systemd OnCalendar of the hosts' borg run (after the dumps), and borg prune's keep counts.",
  },
  keycloak: {
    default: { replicas: 1, databaseInstances: 1, databaseSizeGb: 10 },
    description:
      "`{replicas, databaseInstances, databaseSizeGb}`: Keycloak pods (served at https://<domain>/auth) and the " +
      "PostgreSQL cluster (CloudNativePG) behind them: instances (1 primary + streaming replicas) and volume size.",
  },
  identityProviders: {
    default: [],
    description:
      "Identity providers users may log in with, a list. OpenID Connect: `{alias, displayName, issuer, " +
      "authorizationUrl, tokenUrl, jwksUrl, userInfoUrl?, clientId, clientSecret}`; set the secret with " +
      "`pulumi config set --secret --path 'identityProviders[0].clientSecret' …`. SAML: `{protocol: saml, alias, " +
      "displayName, idpEntityId, singleSignOnServiceUrl, signingCertificate?}`. Register " +
      "https://<domain>/auth/realms/dare/broker/<alias>/endpoint as the redirect URI at the provider.",
  },
  alerting: {
    default: {},
    description:
      'Alertmanager e-mail `{smtpHost: "host:port", from, to: [addresses], user?, severities?}`; with a user, set ' +
      "the password with `pulumi config set --secret --path 'alerting.smtpPassword' …`. severities (default " +
      "[critical]) are the ones mailed. Empty: alerts are only visible in Alertmanager and Grafana.",
  },
});

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** A key's declared default, as a fresh copy (callers may change it). */
export function defaultOf<K extends ConfigKey>(key: K): (typeof CONFIG_KEYS)[K] extends { default: infer D } ? D : undefined {
  const decl: KeyDeclaration = CONFIG_KEYS[key];
  return (decl.default === undefined ? undefined : structuredClone(decl.default)) as never;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * A structured value with the fields it leaves out taken from the default: objects merge field by field,
 * a list of objects element by element (element i from the default's element i), anything else is the
 * stack's value as it is. What `pulumi config set --path` on a key the stack does not set yet would need.
 */
export function withDefaults(value: unknown, fallback: unknown): unknown {
  if (isPlainObject(value) && isPlainObject(fallback)) {
    const merged: Record<string, unknown> = { ...fallback };
    for (const [k, v] of Object.entries(value)) merged[k] = k in fallback ? withDefaults(v, fallback[k]) : v;
    return merged;
  }
  if (Array.isArray(value) && Array.isArray(fallback) && value.every(isPlainObject)) {
    return value.map((v, i) => (i < fallback.length ? withDefaults(v, fallback[i]) : v));
  }
  return value;
}

/** Pulumi.yaml's `config:` block: what the CLI reads of each declaration. */
export function pulumiYamlConfig(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(CONFIG_KEYS).map(([key, decl]: [string, KeyDeclaration]) => [
      key,
      {
        ...(decl.type ? { type: decl.type } : {}),
        ...(decl.items ? { items: decl.items } : {}),
        ...(decl.secret && !decl.type ? { secret: true } : {}),
        description: decl.description,
        ...(decl.default !== undefined ? { default: decl.default } : {}),
      },
    ]),
  );
}
