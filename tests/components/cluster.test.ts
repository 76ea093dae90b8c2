/**
 * The Kubernetes layer under mocks: step order (the dependency graph Pulumi will follow), secrets,
 * the admin kubeconfig, kubeadm's configuration and the host firewall.
 */
import * as crypto from "crypto";
import * as YAML from "yaml";
import { KubernetesCluster, KubernetesClusterArgs, upgradeBatchSize } from "../../components/cluster";
import { ClusterNode, clusterNodes } from "../../lib/host-plan";
import { DEFAULT_NETWORK, NodesSpec } from "../../lib/config";
import { plainParametersOf, readScript, StepList } from "../../lib/host-step";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../../components/cluster/certificate-renewal";
import { Infrastructure } from "../../components/infrastructure";
import { nodeSources } from "../../components/cluster/host-firewall";
import { TOKEN_PLACEHOLDER } from "../../components/cluster/kubeadm-config";
import { longestChain } from "../../tools/bench-chain";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { runMocked, valueOf } from "../support/mocked";
import { stepEnv } from "../support/step-env";

const CLUSTER = "dare-test";
// The mocks give ports addresses anywhere in 10.10.0.0/16: the node subnet must hold them, as on OpenStack.
const NETWORK = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
const nodesSpec = (controlPlanes: number, workers: number): NodesSpec => ({
  controlPlane: { count: controlPlanes, flavor: "m1.large" },
  pools: [{ name: "workers", count: workers, flavor: "m1.large", disks: { count: 1, sizeGb: 50 }, publicIp: false }],
});

interface Built {
  resources: RecordedResource[];
  cluster: KubernetesCluster;
  infra: Infrastructure;
  nodes: ClusterNode[];
  /** every host step of the build, as the render receives them */
  steps: StepList;
}

async function build(
  controlPlanes: number,
  workers: number,
  externalCloudProvider = true,
  secretsEncryptionKeys?: string[],
  certificateRenewalDays?: number,
): Promise<Built> {
  let cluster: KubernetesCluster | undefined;
  let infra: Infrastructure | undefined;
  const steps = new StepList();
  const nodes = clusterNodes({ provider: "openstack", clusterName: CLUSTER, nodes: nodesSpec(controlPlanes, workers), hosts: [] });
  const resources = await runMocked(() => {
    infra = new Infrastructure(CLUSTER, {
      provider: "openstack",
      clusterName: CLUSTER,
      nodes: nodesSpec(controlPlanes, workers),
      hosts: [],
      network: NETWORK,
      adminCidrs: ["192.0.2.0/24"],
      image: "Ubuntu 24.04",
      sshUser: "ubuntu",
      apiLoadBalancer: true,
      stepRecorder: steps,
    });
    cluster = new KubernetesCluster(CLUSTER, {
      nodes,
      hosts: infra.hostByName,
      apiServer: infra.apiServer,
      bastion: infra.bastion,
      sshPrivateKey: infra.sshPrivateKey,
      kubernetesVersion: "1.36.4",
      network: NETWORK,
      clusterName: CLUSTER,
      adminCidrs: ["192.0.2.0/24"],
      apiLoadBalancer: true,
      externalCloudProvider,
      secretsEncryptionKeys,
      certificateRenewalDays,
      stepRecorder: steps,
    });
  });
  return { resources, cluster: cluster!, infra: infra!, nodes, steps };
}

const isSecret = (v: any) => v && v[SPECIAL_SIG_KEY] === SECRET_SIG;
const plain = (v: any) => (isSecret(v) ? v.value : v);

describe("KubernetesCluster: 3 control planes and 4 workers on OpenStack", () => {
  let b: Built;
  const step = (host: string, name: string) => {
    const r = b.resources.find((x) => x.type === "command:remote:Command" && x.name === `k8s-${host}-${name}`);
    if (!r) throw new Error(`no step ${name} on ${host}`);
    return r;
  };
  const cp = (i: number) => `${CLUSTER}-cp-${i}`;
  const worker = (i: number) => `${CLUSTER}-workers-${i}`;
  const workers = [0, 1, 2, 3].map(worker);

  beforeAll(async () => {
    b = await build(3, 4);
  });

  it("prepares every host with no step before it", () => {
    for (const host of [cp(0), cp(1), cp(2), ...workers]) {
      const deps = step(host, "prepare").dependencies;
      // (The IaaS layer's own disk-naming step may come first: it is not a cluster step.)
      expect(deps.filter((d) => d.includes("KubernetesCluster$command:remote:Command"))).toEqual([]);
    }
  });

  it("initialises on the first control plane after its preparation and PKI", () => {
    const deps = step(cp(0), "init").dependencies;
    expect(deps).toEqual(expect.arrayContaining([step(cp(0), "prepare").urn, step(cp(0), "pki").urn]));
    expect(b.resources.filter((r) => r.name.endsWith("-init"))).toHaveLength(1);
  });

  it("joins the other control planes one at a time", () => {
    expect(step(cp(1), "join").dependencies).toEqual(expect.arrayContaining([step(cp(0), "init").urn, step(cp(0), "token").urn]));
    expect(step(cp(2), "join").dependencies).toContain(step(cp(1), "join").urn);
    expect(step(cp(1), "join").dependencies).not.toContain(step(cp(2), "join").urn);
  });

  it("joins a control plane only after every control plane's firewall (its prepare step) admits it to etcd", () => {
    for (const joining of [cp(1), cp(2)]) {
      const deps = step(joining, "join").dependencies;
      expect([cp(0), cp(1), cp(2)].filter((other) => !deps.includes(step(other, "prepare").urn))).toEqual([]);
    }
    // A worker's join waits for no other host's firewall.
    expect(step(worker(0), "join").dependencies.filter((d) => d.endsWith("-prepare") && !d.endsWith(`${worker(0)}-prepare`))).toEqual([]);
  });

  it("joins workers after the last control plane, each independent of every other worker", () => {
    const workerJoins = new Set(workers.map((w) => step(w, "join").urn));
    for (const w of workers) {
      const deps = step(w, "join").dependencies;
      expect(deps).toEqual(
        expect.arrayContaining([step(cp(0), "init").urn, step(cp(0), "token").urn, step(cp(2), "join").urn, step(w, "prepare").urn]),
      );
      // A worker added with a version raise joins after the control planes run the new version.
      expect(deps).toContain(step(cp(2), "upgrade").urn);
      expect(deps.filter((d) => workerJoins.has(d))).toEqual([]);
      // Nothing a worker's join depends on may wait for another worker either.
      expect(deps.filter((d) => workers.some((o) => o !== w && d.includes(`::${o}-`) && d.includes("command:remote")))).toEqual([]);
      // Nor on another worker's machine: a slow or failed VM holds up only its own host.
      expect(deps.filter((d) => workers.some((o) => o !== w && (d.endsWith(`::${o}`) || d.includes(`::${o}-`))))).toEqual([]);
    }
  });

  it("removes a host in the right order: drain and delete on the first control plane, then reset, then the VM", () => {
    for (const w of workers) {
      const removal = step(cp(0), `node-${w}`);
      const join = step(w, "join");
      // Pulumi deletes dependents first: the removal step, then the join (kubeadm reset), then the instance.
      expect(removal.dependencies).toContain(join.urn);
      const instance = b.resources.find((r) => r.type === "openstack:compute/instance:Instance" && (r.inputs as any).name === w)!;
      expect(join.dependencies).toContain(instance.urn);
      expect((removal.inputs as any).delete).toContain("kubectl drain");
      expect((removal.inputs as any).delete).toContain("--ignore-daemonsets --delete-emptydir-data");
      expect((join.inputs as any).delete).toContain("kubeadm reset -f");
    }
    // Two etcd members are never removed at once.
    expect(step(cp(0), `node-${cp(2)}`).dependencies).toContain(step(cp(0), `node-${cp(1)}`).urn);
    expect((step(cp(0), `node-${cp(1)}`).inputs as any).delete).toContain("member remove");
  });

  it("upgrades in kubeadm's order: first control plane, the others one by one, workers in batches", () => {
    expect(step(cp(1), "upgrade").dependencies).toContain(step(cp(0), "upgrade").urn);
    expect(step(cp(2), "upgrade").dependencies).toContain(step(cp(1), "upgrade").urn);
    const batch = upgradeBatchSize(4);
    expect(batch).toBe(1);
    // 4 workers, batches of one: a chain behind the last control plane. Each worker is drained from the
    // first control plane, upgraded, then uncordoned from there, before the next one is drained.
    const drain = (w: string) => step(cp(0), `upgrade-drain-${w}`);
    const uncordon = (w: string) => step(cp(0), `upgrade-uncordon-${w}`);
    expect(drain(worker(0)).dependencies).toContain(step(cp(2), "upgrade").urn);
    for (let i = 0; i < 4; i++) {
      expect(step(worker(i), "upgrade").dependencies).toContain(drain(worker(i)).urn);
      expect(uncordon(worker(i)).dependencies).toContain(step(worker(i), "upgrade").urn);
      expect(stepEnv(drain(worker(i)))).toMatchObject({ DRAIN_ACTION: "drain", NODE_NAME: worker(i), KUBERNETES_VERSION: "1.36.4" });
      expect(stepEnv(uncordon(worker(i)))).toMatchObject({ DRAIN_ACTION: "uncordon", NODE_NAME: worker(i) });
      if (i > 0) expect(drain(worker(i)).dependencies).toContain(uncordon(worker(i - 1)).urn);
    }
    expect(stepEnv(step(cp(0), "upgrade")).UPGRADE_ROLE).toBe("first");
    expect(stepEnv(step(cp(1), "upgrade")).UPGRADE_ROLE).toBe("control-plane");
    expect(stepEnv(step(worker(3), "upgrade")).UPGRADE_ROLE).toBe("worker");
  });

  it("keeps key material, the token and the kubeconfig secret", async () => {
    for (const [host, name] of [
      [cp(0), "pki"],
      [cp(0), "init"],
      [cp(0), "token"],
      [worker(0), "join"],
    ]) {
      expect(isSecret((step(host, name).inputs as any).stdin)).toBe(true);
    }
    // Parameters without secrets stay readable: all in the command, nothing on stdin.
    expect((step(worker(0), "prepare").inputs as any).stdin).toBe("");
    expect(plainParametersOf((step(worker(0), "prepare").inputs as any).create)).toMatch(/^KUBERNETES_VERSION='1\.36\.4'$/m);
    // A step with both: the plain ones in the command (a preview shows them), only the secret ones on stdin.
    const init = step(cp(0), "init").inputs as any;
    expect(plainParametersOf(init.create).match(/^[A-Z_]+(?==)/gm)).toEqual(["KUBEADM_ACTION", "KUBEADM_CONFIG", "NODE_NAME"]);
    expect(plain(init.stdin).match(/^[A-Z_]+(?==)/gm)).toEqual(["BOOTSTRAP_TOKEN"]);
    const token = stepEnv(step(cp(0), "token")).BOOTSTRAP_TOKEN;
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const caKey = stepEnv(step(cp(0), "pki")).CA_KEY;
    expect(caKey).toContain("PRIVATE KEY");
    // Neither appears outside a secret anywhere the engine would record.
    const visible = JSON.stringify(
      b.resources.map((r) => r.inputs),
      (_k, v) => (isSecret(v) ? "[secret]" : v),
    );
    expect(visible).not.toContain(token);
    expect(visible).not.toContain(caKey.split("\n")[1]);
    expect((await (b.cluster.kubeconfig as any).isSecret) as boolean).toBe(true);
    // Nor on a command line: scripts read them from stdin.
    for (const r of b.resources.filter((x) => x.type === "command:remote:Command")) {
      expect(JSON.stringify((r.inputs as any).create)).not.toContain(token);
    }
  });

  it("builds a kubeconfig for the API's public address, the cluster CA and an admin certificate", async () => {
    const kubeconfig = YAML.parse(await valueOf(b.cluster.kubeconfig));
    const api = await valueOf(b.infra.apiServer);
    const ca = await valueOf(b.cluster.caCertPem);
    expect(kubeconfig.clusters).toHaveLength(1);
    expect(kubeconfig.clusters[0].cluster.server).toBe(`https://${api.publicAddress}:6443`);
    expect(Buffer.from(kubeconfig.clusters[0].cluster["certificate-authority-data"], "base64").toString()).toBe(ca);
    const context = kubeconfig.contexts.find((c: any) => c.name === kubeconfig["current-context"]).context;
    const user = kubeconfig.users.find((u: any) => u.name === context.user).user;
    expect(Buffer.from(user["client-key-data"], "base64").toString()).toContain("PRIVATE KEY");
    const adminCsr = b.resources.find((r) => r.type === "tls:index/certRequest:CertRequest")!;
    expect((adminCsr.inputs as any).subject.organization).toBe("kubeadm:cluster-admins");
    const adminCert = b.resources.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert")!;
    expect((adminCert.inputs as any).allowedUses).toContain("client_auth");
  });

  it("pins joins to the CA with kubeadm's discovery hash", () => {
    const env = stepEnv(step(worker(1), "join"));
    const join = YAML.parse(env.KUBEADM_CONFIG);
    // The SubjectPublicKeyInfo built by hand (RFC 5480: id-ecPublicKey, prime256v1, the point 04||x||y),
    // not by the library the program uses.
    const jwk = crypto.createPrivateKey(stepEnv(step(cp(0), "pki")).CA_KEY).export({ format: "jwk" });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
    const der = Buffer.concat([Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex"), point]);
    expect(join.discovery.bootstrapToken.caCertHashes).toEqual([`sha256:${crypto.createHash("sha256").update(der).digest("hex")}`]);
  });

  it("renders kubeadm v1beta4 configuration from the stack configuration", async () => {
    const api = await valueOf(b.infra.apiServer);
    const hosts = await valueOf(b.infra.hosts);
    const [init, clusterConfig, kubelet] = YAML.parseAllDocuments(stepEnv(step(cp(0), "init")).KUBEADM_CONFIG).map((d) => d.toJS());
    expect(init.kind).toBe("InitConfiguration");
    expect(init.nodeRegistration.name).toBe(cp(0));
    expect(init.bootstrapTokens[0].token).toBe(TOKEN_PLACEHOLDER);
    expect(clusterConfig.apiVersion).toBe("kubeadm.k8s.io/v1beta4");
    expect(clusterConfig.kubernetesVersion).toBe("v1.36.4");
    // With three control planes the load balancer is the endpoint.
    expect(clusterConfig.controlPlaneEndpoint).toBe(`${api.privateAddress}:6443`);
    expect(api.privateAddress).not.toBe(hosts[0].privateAddress);
    expect(clusterConfig.apiServer.certSANs).toContain(api.publicAddress);
    expect(clusterConfig.networking).toMatchObject({ podSubnet: DEFAULT_NETWORK.podCidr, serviceSubnet: DEFAULT_NETWORK.serviceCidr });
    expect(clusterConfig.encryptionAlgorithm).toBe("ECDSA-P256");
    expect(kubelet.cgroupDriver).toBe("systemd");

    const cpJoin = YAML.parse(stepEnv(step(cp(2), "join")).KUBEADM_CONFIG);
    const workerJoin = YAML.parse(stepEnv(step(worker(2), "join")).KUBEADM_CONFIG);
    expect(cpJoin.controlPlane.localAPIEndpoint.advertiseAddress).toBe(hosts.find((h) => h.name === cp(2))!.privateAddress);
    expect(workerJoin.controlPlane).toBeUndefined();
    expect(workerJoin.nodeRegistration.name).toBe(worker(2));
    expect(workerJoin.nodeRegistration.kubeletExtraArgs).toContainEqual({
      name: "node-ip",
      value: hosts.find((h) => h.name === worker(2))!.privateAddress,
    });
  });

  it("registers every kubelet with the external cloud provider, so OCCM can give the nodes their providerIDs", () => {
    const configs = [
      YAML.parseAllDocuments(stepEnv(step(cp(0), "init")).KUBEADM_CONFIG)[0].toJS(),
      ...[cp(1), cp(2), ...workers].map((host) => YAML.parse(stepEnv(step(host, "join")).KUBEADM_CONFIG)),
    ];
    for (const config of configs) {
      // v1beta4: a list of {name, value}, next to node-ip.
      expect(config.nodeRegistration.kubeletExtraArgs).toContainEqual({ name: "cloud-provider", value: "external" });
      expect(config.nodeRegistration.kubeletExtraArgs.map((a: { name: string }) => a.name)).toContain("node-ip");
    }
  });

  it("serves the control plane's and kube-proxy's metrics beyond localhost, and admits them from members only", () => {
    const docs = YAML.parseAllDocuments(stepEnv(step(cp(0), "init")).KUBEADM_CONFIG).map((d) => d.toJS());
    const clusterConfig = docs.find((d) => d.kind === "ClusterConfiguration");
    const arg = (args: Array<{ name: string; value: string }>, name: string) => args.find((a) => a.name === name)?.value;
    expect(arg(clusterConfig.controllerManager.extraArgs, "bind-address")).toBe("0.0.0.0");
    expect(arg(clusterConfig.scheduler.extraArgs, "bind-address")).toBe("0.0.0.0");
    const etcdMetrics = new URL(arg(clusterConfig.etcd.local.extraArgs, "listen-metrics-urls")!);
    expect(etcdMetrics.hostname).toBe("0.0.0.0");
    const proxy = docs.find((d) => d.kind === "KubeProxyConfiguration");
    expect(proxy.apiVersion).toBe("kubeproxy.config.k8s.io/v1alpha1");
    const [proxyHost, proxyPort] = proxy.metricsBindAddress.split(":");
    expect(proxyHost).toBe("0.0.0.0");

    const cpRules = stepEnv(step(cp(0), "prepare")).FIREWALL_RULESET;
    const workerRules = stepEnv(step(worker(0), "prepare")).FIREWALL_RULESET;
    const admitted = (rules: string, port: string | number) =>
      rules.split("\n").filter((l) => new RegExp(` tcp dport ${port} accept`).test(l));
    for (const port of [10257, 10259, etcdMetrics.port]) {
      expect(admitted(cpRules, port).length).toBeGreaterThan(0);
      expect(admitted(cpRules, port).every((l) => l.includes("ip saddr @nodes"))).toBe(true);
      expect(admitted(workerRules, port)).toEqual([]);
    }
    for (const rules of [cpRules, workerRules]) {
      expect(admitted(rules, proxyPort).length).toBeGreaterThan(0);
      expect(admitted(rules, proxyPort).every((l) => l.includes("ip saddr @nodes"))).toBe(true);
    }
  });

  it("opens on each host what its security groups open, and nothing of the others", () => {
    const cpRules = stepEnv(step(cp(0), "prepare")).FIREWALL_RULESET;
    const workerRules = stepEnv(step(worker(0), "prepare")).FIREWALL_RULESET;
    expect(cpRules).toMatch(/ip saddr @control_planes tcp dport 2379-2380 accept/);
    expect(cpRules).toMatch(/ip saddr 192\.0\.2\.0\/24 tcp dport 6443 accept/);
    expect(cpRules).not.toMatch(/dport 443 /);
    expect(workerRules).toMatch(/tcp dport 443 accept/);
    expect(workerRules).not.toMatch(/2379/);
    expect(workerRules).toMatch(/policy drop/);
  });

  it("encrypts Secrets in etcd with a generated 32-byte secretbox key, placed on every control plane before kubeadm", () => {
    const configs = [cp(0), cp(1), cp(2)].map((h) => stepEnv(step(h, "pki")).ENCRYPTION_CONFIG);
    expect(new Set(configs).size).toBe(1);
    const enc = YAML.parse(configs[0]);
    expect(enc).toMatchObject({ apiVersion: "apiserver.config.k8s.io/v1", kind: "EncryptionConfiguration" });
    expect(enc.resources).toHaveLength(1);
    expect(enc.resources[0].resources).toEqual(["secrets"]);
    const [secretbox, identity] = enc.resources[0].providers;
    expect(identity).toEqual({ identity: {} });
    expect(secretbox.secretbox.keys).toHaveLength(1);
    expect(secretbox.secretbox.keys[0].name).toBe("key1");
    expect(Buffer.from(secretbox.secretbox.keys[0].secret, "base64")).toHaveLength(32);
    const key = b.resources.find(
      (r) => r.type === "random:index/randomBytes:RandomBytes" && r.name === `${CLUSTER}-secrets-encryption-key1`,
    )!;
    expect((key.inputs as any).length).toBe(32);
    // The key is a secret on the wire and nowhere in plain text.
    expect(isSecret((step(cp(0), "pki").inputs as any).stdin)).toBe(true);
    const visible = JSON.stringify(
      b.resources.map((r) => r.inputs),
      (_k, v) => (isSecret(v) ? "[secret]" : v),
    );
    expect(visible).not.toContain(secretbox.secretbox.keys[0].secret);
    // Placed by the pki step, which init and every control-plane join wait for.
    expect(step(cp(0), "init").dependencies).toContain(step(cp(0), "pki").urn);
    for (const h of [cp(1), cp(2)]) expect(step(h, "join").dependencies).toContain(step(h, "pki").urn);
    expect(b.resources.some((r) => r.name === `k8s-${worker(0)}-pki`)).toBe(false);
  });

  it("wires encryption, audit logging with rotation, profiling off and kubelet verification into the API server", () => {
    const docs = YAML.parseAllDocuments(stepEnv(step(cp(0), "init")).KUBEADM_CONFIG).map((d) => d.toJS());
    const cc = docs.find((d) => d.kind === "ClusterConfiguration");
    const args = (component: { extraArgs: Array<{ name: string; value: string }> }) =>
      Object.fromEntries(component.extraArgs.map((a) => [a.name, a.value]));
    const api = args(cc.apiServer);
    expect(api).toMatchObject({
      "encryption-provider-config": "/etc/kubernetes/enc/encryption.yaml",
      "encryption-provider-config-automatic-reload": "true",
      "audit-policy-file": "/etc/kubernetes/audit/policy.yaml",
      "audit-log-path": "/var/log/kubernetes/audit/audit.log",
      "audit-log-maxage": "30",
      "audit-log-maxbackup": "10",
      "audit-log-maxsize": "100",
      profiling: "false",
      "kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt",
    });
    // Every file the API server is given is mounted into its pod: read-only, but for the log.
    const mounted = (file: string) =>
      cc.apiServer.extraVolumes.find((v: any) => file === v.mountPath || file.startsWith(`${v.mountPath}/`));
    for (const file of [api["encryption-provider-config"], api["audit-policy-file"]]) {
      expect(mounted(file)).toMatchObject({ readOnly: true });
      expect(mounted(file).hostPath).toBe(mounted(file).mountPath);
    }
    expect(mounted(api["audit-log-path"])).toMatchObject({ readOnly: false, pathType: "DirectoryOrCreate" });
    expect(args(cc.controllerManager).profiling).toBe("false");
    expect(args(cc.scheduler).profiling).toBe("false");
    // Metrics stay on every address (the one ClusterConfiguration serves every control plane) and need
    // authorisation: nothing widens the always-allowed paths to /metrics.
    for (const component of [cc.controllerManager, cc.scheduler]) {
      expect(args(component)["bind-address"]).toBe("0.0.0.0");
      expect(args(component)["authorization-always-allow-paths"]).toBeUndefined();
    }
    expect(docs.find((d) => d.kind === "KubeletConfiguration").serverTLSBootstrap).toBe(true);

    const policy = YAML.parse(stepEnv(step(cp(0), "pki")).AUDIT_POLICY);
    expect(policy).toMatchObject({ apiVersion: "audit.k8s.io/v1", kind: "Policy" });
    // The first rule that matches decides: Secrets, ConfigMaps, tokens and TokenReviews are never logged with bodies.
    const first = (group: string, resource: string) =>
      policy.rules.find(
        (r: any) =>
          !r.nonResourceURLs &&
          !r.users &&
          (!r.resources || r.resources.some((g: any) => g.group === group && g.resources.includes(resource))),
      );
    for (const [group, resource] of [
      ["", "secrets"],
      ["", "configmaps"],
      ["", "serviceaccounts/token"],
      ["authentication.k8s.io", "tokenreviews"],
    ]) {
      expect([resource, first(group, resource).level]).toEqual([resource, "Metadata"]);
    }
    expect(policy.rules.filter((r: any) => /Request/.test(r.level))).toEqual([]);
    expect(policy.rules[policy.rules.length - 1]).toEqual({ level: "Metadata" });
  });

  it("approves each node's own kubelet serving certificate from the first control plane, after it joined", () => {
    const hosts = [cp(0), cp(1), cp(2), ...workers];
    for (const h of hosts) {
      const approval = step(cp(0), `kubelet-serving-${h}`);
      expect(stepEnv(approval)).toMatchObject({ NODE_NAME: h, CSR_TIMEOUT: "300" });
      expect((approval.inputs as any).create).toContain("kubernetes.io/kubelet-serving");
      expect(approval.dependencies).toContain(h === cp(0) ? step(cp(0), "init").urn : step(cp(0), `node-${h}`).urn);
    }
  });

  it("forgets a host's recorded addresses when its kubelet-serving step leaves (the renewal approver then refuses its name)", () => {
    const approval = step(cp(0), `kubelet-serving-${worker(1)}`);
    expect((approval.inputs as any).delete).toContain(readScript("k8s-kubelet-serving-forget.sh"));
  });

  it("installs the daily certificate check on every control plane after its upgrade, each at its own hour, the renewal approver on the first only", () => {
    const calendars = [0, 1, 2].map((i) => {
      const certificates = step(cp(i), "certificates");
      const env = stepEnv(certificates);
      expect(env).toMatchObject({ NODE_NAME: cp(i), RENEW_WITHIN_DAYS: "90", TEXTFILE_DIR: NODE_EXPORTER_TEXTFILE_DIR });
      expect(env.CERTS_SCRIPT).toBe(readScript("k8s-certs-renew.sh"));
      expect(certificates.dependencies).toContain(step(cp(i), "upgrade").urn);
      expect(env.APPROVER_SCRIPT !== undefined && env.APPROVER_SCRIPT.length > 0).toBe(i === 0);
      if (i === 0) expect(env.APPROVER_SCRIPT).toContain('KUBELET_SERVING_MODE:-join}" = renewals');
      return /^OnCalendar=(.*)$/m.exec(env.CERTS_TIMER_UNIT)![1];
    });
    expect(calendars).toEqual(["*-*-* 04:00:00", "*-*-* 05:00:00", "*-*-* 06:00:00"]);
    expect(
      b.resources
        .filter((r) => r.type === "command:remote:Command" && r.name.endsWith("-certificates"))
        .map((r) => r.name)
        .sort(),
    ).toEqual([0, 1, 2].map((i) => `k8s-${cp(i)}-certificates`));
  });

  it("renews the admin kubeconfig's certificate by `pulumi up` within the renewal window (90 days by default)", () => {
    const adminCert = b.resources.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert")!;
    expect(adminCert.inputs).toMatchObject({ validityPeriodHours: 365 * 24, earlyRenewalHours: 90 * 24 });
  });

  it("sends no admin kubeconfig to a worker: drains and uncordons run on the first control plane", async () => {
    const kubeconfig = YAML.parse(await valueOf(b.cluster.kubeconfig));
    const clientKey = kubeconfig.users[0].user["client-key-data"];
    const adminKey = Buffer.from(clientKey, "base64").toString().split("\n")[1];
    const onWorkers = b.resources.filter((r) => r.type === "command:remote:Command" && workers.some((w) => r.name.startsWith(`k8s-${w}-`)));
    expect(onWorkers.map((r) => r.name)).toEqual(expect.arrayContaining(workers.map((w) => `k8s-${w}-upgrade`)));
    for (const r of onWorkers) {
      const text = JSON.stringify([plain((r.inputs as any).stdin), (r.inputs as any).create, (r.inputs as any).delete]);
      expect([
        r.name,
        text.includes(adminKey),
        text.includes(clientKey),
        /ADMIN_KUBECONFIG|client-key-data|kubeadm:cluster-admins/.test(text),
      ]).toEqual([r.name, false, false, false]);
    }
    // Every drain is on the first control plane, and reads its own admin.conf there.
    // (A worker's upgrade step carries the script whose control-plane path drains itself; a worker never takes it:
    // tests/lib/scripts.test.ts runs it as a worker.)
    const drains = b.resources.filter(
      (r) =>
        r.type === "command:remote:Command" && /kubectl drain/.test((r.inputs as any).create ?? "") && stepEnv(r).UPGRADE_ROLE !== "worker",
    );
    expect(drains.length).toBeGreaterThan(0);
    for (const r of drains) {
      expect([r.name, r.name.startsWith(`k8s-${cp(0)}-`) || [cp(1), cp(2)].some((c) => r.name === `k8s-${c}-upgrade`)]).toEqual([
        r.name,
        true,
      ]);
    }
    for (const w of workers) expect(stepEnv(step(w, "upgrade")).UPGRADE_ROLE).toBe("worker");
  });

  it("records every host's steps for the render in the order they run", () => {
    const mine = b.steps.steps.filter((s) => s.host === worker(0)).map((s) => s.step);
    expect(mine).toEqual(["disk-0", "prepare", "kubelet-config", "join", "upgrade"]);
  });
});

describe("Secret encryption key rotation", () => {
  const keysOf = async (keys?: string[]) => {
    const b = await build(1, 0, true, keys);
    const pki = b.resources.find((r) => r.name === `k8s-${CLUSTER}-cp-0-pki`)!;
    return YAML.parse(stepEnv(pki).ENCRYPTION_CONFIG).resources[0].providers[0].secretbox.keys as Array<{ name: string; secret: string }>;
  };

  it("keeps a key's bytes while the list around it changes, and orders the providers as configured", async () => {
    const [only] = await keysOf();
    const added = await keysOf(["key1", "key2"]);
    const swapped = await keysOf(["key2", "key1"]);
    const dropped = await keysOf(["key2"]);
    expect(added.map((k) => k.name)).toEqual(["key1", "key2"]);
    expect(added[0].secret).toBe(only.secret);
    expect(added[1].secret).not.toBe(only.secret);
    expect(swapped).toEqual([added[1], added[0]]);
    expect(dropped).toEqual([added[1]]);
  });
});

describe("existing hosts", () => {
  it("keep the kubelet's own node initialisation: no cloud controller would lift the uninitialized taint", async () => {
    const b = await build(1, 1, false);
    const init = b.resources.find((r) => r.type === "command:remote:Command" && r.name === `k8s-${CLUSTER}-cp-0-init`)!;
    const join = b.resources.find((r) => r.type === "command:remote:Command" && r.name === `k8s-${CLUSTER}-workers-0-join`)!;
    for (const config of [YAML.parseAllDocuments(stepEnv(init).KUBEADM_CONFIG)[0].toJS(), YAML.parse(stepEnv(join).KUBEADM_CONFIG)]) {
      expect(config.nodeRegistration.kubeletExtraArgs.map((a: { name: string }) => a.name)).not.toContain("cloud-provider");
    }
  });
});

describe("scaling", () => {
  it("adding a worker adds only that worker's steps and leaves every other step's parameters alone", async () => {
    const before = await build(1, 2);
    const after = await build(1, 3);
    // The cluster's steps (the IaaS layer's disk steps are its own tests' business).
    const params = (b: Built) =>
      new Map(
        b.resources
          .filter((r) => r.type === "command:remote:Command" && r.name.startsWith("k8s-"))
          .map((r) => [r.name, JSON.stringify(stepEnv(r))]),
      );
    const [p2, p3] = [params(before), params(after)];
    const added = [...p3.keys()].filter((k) => !p2.has(k)).sort();
    // A new worker with a disk also gets the steps that would take its OSDs out of Ceph before it leaves.
    expect(added).toEqual(
      [
        `k8s-${CLUSTER}-cp-0-node-${CLUSTER}-workers-2`,
        `k8s-${CLUSTER}-workers-2-join`,
        `k8s-${CLUSTER}-workers-2-prepare`,
        `k8s-${CLUSTER}-workers-2-upgrade`,
        // Its kubelet's drop-in configuration, before it joins.
        `k8s-${CLUSTER}-workers-2-kubelet-config`,
        `k8s-${CLUSTER}-cp-0-osd-${CLUSTER}-workers-2`,
        `k8s-${CLUSTER}-cp-0-osd-${CLUSTER}-workers-2-disk-0`,
        // Its upgrade's drain and uncordon run on the first control plane; so does the approval of its serving certificate.
        `k8s-${CLUSTER}-cp-0-upgrade-drain-${CLUSTER}-workers-2`,
        `k8s-${CLUSTER}-cp-0-upgrade-uncordon-${CLUSTER}-workers-2`,
        `k8s-${CLUSTER}-cp-0-kubelet-serving-${CLUSTER}-workers-2`,
      ].sort(),
    );
    const changed = [...p2.keys()].filter((k) => p3.get(k) !== p2.get(k));
    expect(changed).toEqual([]);
    // Nor does any existing step gain a dependency (on the new machine, say), but the token's mint and
    // revoke: they are about every joining machine (a re-created one needs a token too).
    const deps = (b: Built) =>
      new Map(
        b.resources
          .filter((r) => r.type === "command:remote:Command" && r.name.startsWith("k8s-"))
          .map((r) => [r.name, r.dependencies.join()]),
      );
    const [d2, d3] = [deps(before), deps(after)];
    expect([...d2.keys()].filter((k) => d3.get(k) !== d2.get(k))).toEqual([
      `k8s-${CLUSTER}-cp-0-token`,
      `k8s-${CLUSTER}-cp-0-token-revoke`,
    ]);
    // Workers join in parallel: one more does not lengthen the chain to the last join.
    expect(longestChain(after.resources)).toBe(longestChain(before.resources));
    expect(longestChain(after.resources)).toBeGreaterThan(3);
  });
});

describe("certificate renewal window", () => {
  it("takes dare:certificateRenewalDays for the timers and the admin certificate alike", async () => {
    const b = await build(1, 1, true, undefined, 120);
    const certificates = b.resources.find((r) => r.name === `k8s-${CLUSTER}-cp-0-certificates`)!;
    expect(stepEnv(certificates).RENEW_WITHIN_DAYS).toBe("120");
    const adminCert = b.resources.find((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert")!;
    expect((adminCert.inputs as any).earlyRenewalHours).toBe(120 * 24);
  });
});

describe("refused arguments", () => {
  const base = (nodes: ClusterNode[]): KubernetesClusterArgs => ({
    nodes,
    hosts: {},
    apiServer: { privateAddress: "10.0.0.1", publicAddress: "203.0.113.1", port: 6443 },
    bastion: undefined,
    sshPrivateKey: "k",
    kubernetesVersion: "1.36.4",
    network: DEFAULT_NETWORK,
    clusterName: "c",
    adminCidrs: ["192.0.2.0/24"],
    apiLoadBalancer: false,
  });
  const cpNode = (name: string): ClusterNode => ({ name, role: "control-plane", pool: "control-plane" });

  it.each([
    ["no encryption key", []],
    ["an encryption key named twice", ["key1", "key1"]],
    ["an encryption key name with capitals", ["Key1"]],
  ])("refuses %s before creating anything", async (_what, keys) => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new KubernetesCluster("c", { ...base([cpNode("a")]), hosts: { a: { name: "a" } as any }, secretsEncryptionKeys: keys });
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(/secretsEncryptionKeys .*: needs at least one key, each named once .* \(e\.g\. \["key1"\]/);
    expect(resources.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
  });
  it.each([30, 181, 90.5])("refuses a certificate renewal window of %s days before creating anything", async (days) => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new KubernetesCluster("c", { ...base([cpNode("a")]), hosts: { a: { name: "a" } as any }, certificateRenewalDays: days });
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(new RegExp(`certificateRenewalDays ${days}: must be a whole number of days from 45 to 180`));
    expect(resources.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
  });
  const workerNode = (name: string): ClusterNode => ({ name, role: "worker", pool: "workers" });

  it.each([
    ["a worker first", [workerNode("w"), cpNode("c")], /must start with a control plane/],
    ["two control planes", [cpNode("a"), cpNode("b"), workerNode("w")], /etcd needs an odd number/],
    ["a host twice", [cpNode("a"), workerNode("w"), workerNode("w")], /w appears twice/],
    ["a host the IaaS layer has no address for", [cpNode("a")], /no address from the IaaS layer for a/],
  ])("refuses %s before creating anything", async (_what, nodes, message) => {
    let error: unknown;
    const resources = await runMocked(() => {
      try {
        new KubernetesCluster("c", base(nodes));
      } catch (e) {
        error = e;
      }
    });
    expect(String(error)).toMatch(message);
    expect(resources.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
  });
});

describe("host firewall sources", () => {
  it("admits the nodes' subnet, and existing hosts outside it by address", () => {
    expect(nodeSources("10.10.0.0/24", ["10.10.0.5", "10.10.0.250"])).toEqual(["10.10.0.0/24"]);
    expect(nodeSources("10.10.0.0/24", ["10.10.0.5", "10.0.0.10"])).toEqual(["10.10.0.0/24", "10.0.0.10"]);
  });
});
