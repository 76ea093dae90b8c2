import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as YAML from "yaml";
import { KubernetesCluster } from "../../components/cluster";
import { clusterNodes } from "../../lib/host-plan";
import { DEFAULT_NETWORK, EXAMPLE_HOST_KEY, NodesSpec } from "../../lib/config";
import { plainParametersOf, readScript, wrapScript } from "../../lib/host-step";
import { Host } from "../../lib/hosts";
import { diskPath, Infrastructure, InfrastructureArgs } from "../../components/infrastructure";
import { CHARTS } from "../../lib/pins";
import { Storage } from "../../components/storage";
import { installMocks, RecordedResource, SECRET_SIG, settle, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { isSecretOutput, ofType, redacted, runMocked, unsecret, valueOf } from "../support/mocked";

const nodes = (workers: number, controlPlanes = 1, disks = 1): NodesSpec => ({
  controlPlane: { count: controlPlanes, flavor: "m1.medium" },
  pools: [{ name: "workers", count: workers, flavor: "m1.large", disks: { count: disks, sizeGb: 50 }, publicIp: false }],
});

const args = (over: Partial<InfrastructureArgs> = {}): InfrastructureArgs => ({
  provider: "openstack",
  clusterName: "dare-test",
  nodes: nodes(2),
  hosts: [],
  network: DEFAULT_NETWORK,
  adminCidrs: ["192.0.2.0/24"],
  image: "Ubuntu 24.04",
  sshUser: "ubuntu",
  apiLoadBalancer: true,
  ...over,
});

async function build(a: InfrastructureArgs) {
  let infra: Infrastructure | undefined;
  const resources = await runMocked(() => {
    infra = new Infrastructure("dare-test", a);
  });
  return { resources, infra: infra! };
}

type Rule = {
  protocol: string;
  portRangeMin: number;
  portRangeMax: number;
  remoteIpPrefix?: string;
  remoteGroupId?: string;
  securityGroupId: string;
};

describe("OpenStack security groups", () => {
  let rules: Rule[];
  beforeAll(async () => {
    const { resources } = await build(args({ nodes: nodes(2, 3) }));
    rules = ofType(resources, "openstack:networking/secGroupRule:SecGroupRule").map((r) => redacted(r));
  });

  const open = (port: number, protocol = "tcp") =>
    rules.filter((r) => r.protocol === protocol && r.portRangeMin <= port && port <= r.portRangeMax);

  it("opens only 80 and 443 to the world", () => {
    const world = rules.filter((r) => r.remoteIpPrefix === "0.0.0.0/0" || r.remoteIpPrefix === "::/0");
    expect(world.map((r) => r.portRangeMin).sort()).toEqual([443, 80]);
  });

  it("lets only admin ranges and the bastion reach SSH, and admins, members or the LB subnet reach the API", () => {
    expect(
      open(22)
        .filter((r) => r.remoteIpPrefix)
        .map((r) => r.remoteIpPrefix),
    ).toEqual(["192.0.2.0/24"]);
    // The bastion (first control plane) forwards SSH to hosts without a public address.
    expect(open(22).filter((r) => r.remoteGroupId)).toHaveLength(1);
    for (const r of open(6443)) {
      expect(r.remoteGroupId !== undefined || ["192.0.2.0/24", DEFAULT_NETWORK.cidr].includes(r.remoteIpPrefix!)).toBe(true);
    }
  });

  // ... and the metrics Prometheus scrapes from the nodes: controller manager, scheduler, etcd, kube-proxy.
  it.each([
    [2379, "tcp"],
    [2380, "tcp"],
    [10250, "tcp"],
    [179, "tcp"],
    [4789, "udp"],
    [5473, "tcp"],
    [9100, "tcp"],
    [10257, "tcp"],
    [10259, "tcp"],
    [2381, "tcp"],
    [10249, "tcp"],
  ])("keeps cluster port %i/%s between cluster members", (port, protocol) => {
    const found = open(port, protocol);
    expect(found.length).toBeGreaterThan(0);
    for (const r of found) {
      expect(r.remoteIpPrefix).toBeUndefined();
      expect(r.remoteGroupId).toBeDefined();
    }
  });

  it("does not repeat the seed's mistakes: no kubelet read-only port, no VXLAN over TCP", () => {
    expect(open(10255)).toEqual([]);
    expect(open(4789, "tcp")).toEqual([]);
  });
});

describe("OpenStack machines", () => {
  it("creates instances, volumes and attachments named by pool and index", async () => {
    const { resources } = await build(args({ nodes: nodes(2, 1, 2) }));
    const names = (type: string) =>
      ofType(resources, type)
        .map((r) => r.name)
        .sort();
    expect(names("openstack:compute/instance:Instance")).toEqual(["dare-test-cp-0", "dare-test-workers-0", "dare-test-workers-1"]);
    expect(names("openstack:blockstorage/volume:Volume")).toEqual([
      "dare-test-workers-0-disk-0",
      "dare-test-workers-0-disk-1",
      "dare-test-workers-1-disk-0",
      "dare-test-workers-1-disk-1",
    ]);
    expect(names("openstack:compute/volumeAttach:VolumeAttach")).toHaveLength(4);
    // One control plane still gets the API load balancer: the endpoint must not move when more join.
    expect(ofType(resources, "openstack:loadbalancer/loadBalancer:LoadBalancer")).toHaveLength(1);
    expect(names("openstack:networking/floatingIp:FloatingIp")).toEqual(["dare-test-api-fip", "dare-test-cp-0-fip"]);
  });

  it("puts control planes in an anti-affinity group and the API behind Octavia when there are three", async () => {
    const { resources, infra } = await build(args({ nodes: nodes(3, 3) }));
    const group = ofType(resources, "openstack:compute/serverGroup:ServerGroup")[0];
    expect(redacted(group).policies).toEqual(["anti-affinity"]);
    const cps = ofType(resources, "openstack:compute/instance:Instance").filter((r) => r.name.includes("-cp-"));
    const groupId = redacted(cps[0]).schedulerHints[0].group;
    expect(groupId).toMatch(/^[0-9a-f-]{36}$/);
    for (const cp of cps) expect(redacted(cp).schedulerHints).toEqual([{ group: groupId }]);
    const workers = ofType(resources, "openstack:compute/instance:Instance").filter((r) => !r.name.includes("-cp-"));
    for (const w of workers) expect(redacted(w).schedulerHints).toBeUndefined();
    expect(cps.every((cp) => cp.dependencies.includes(group.urn))).toBe(true);
    expect(ofType(resources, "openstack:loadbalancer/member:Member")).toHaveLength(3);
    const listener = redacted(ofType(resources, "openstack:loadbalancer/listener:Listener")[0]);
    expect(listener.protocolPort).toBe(6443);
    expect(listener.allowedCidrs).toEqual(["192.0.2.0/24", DEFAULT_NETWORK.cidr]);
    const api = await valueOf(infra.apiServer);
    const lbFip = redacted(
      ofType(resources, "openstack:networking/floatingIpAssociate:FloatingIpAssociate").find((r) => r.name === "dare-test-api-fip")!,
    );
    expect(api.publicAddress).toBe(lbFip.floatingIp);
    expect(api.port).toBe(6443);
  });

  it("can run three control planes without a load balancer, on the first one's address", async () => {
    const { resources, infra } = await build(args({ nodes: nodes(1, 3), apiLoadBalancer: false }));
    expect(ofType(resources, "openstack:loadbalancer/loadBalancer:LoadBalancer")).toHaveLength(0);
    const [api, hosts] = await Promise.all([valueOf(infra.apiServer), valueOf(infra.hosts)]);
    expect(api.privateAddress).toBe(hosts[0].privateAddress);
    expect(hosts[0].role).toBe("control-plane");
  });

  it("reaches hosts without a floating IP through the bastion and names their Ceph disks by volume id", async () => {
    const { resources, infra } = await build(args());
    const [hosts, bastion] = await Promise.all([valueOf(infra.hosts), valueOf(infra.bastion)]);
    expect(bastion?.address).toBe(hosts[0].publicAddress);
    expect(hosts.filter((h) => h.viaBastion).map((h) => h.name)).toEqual(["dare-test-workers-0", "dare-test-workers-1"]);
    const volumeIds = ofType(resources, "openstack:blockstorage/volume:Volume").map((v) => v.name);
    expect(volumeIds).toHaveLength(2);
    const disks = hosts.flatMap((h: Host) => h.disks);
    expect(disks).toHaveLength(2);
    // Named by the whole volume id, whatever the bus (disk-link.sh): see "Ceph disks on any OpenStack" below.
    for (const d of disks) expect(d).toMatch(/^\/dev\/disk\/dare\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Set(disks).size).toBe(2);
  });

  it("keeps the SSH private key secret and publishes the public key", async () => {
    const { resources, infra } = await build(args());
    expect(await isSecretOutput(infra.sshPrivateKey)).toBe(true);
    expect(await valueOf(infra.sshPublicKey)).toMatch(/^ssh-ed25519 \S+$/);
    const keypair = ofType(resources, "openstack:compute/keypair:Keypair")[0];
    expect(redacted(keypair).publicKey).toMatch(/^ssh-ed25519 /);
    const key = ofType(resources, "tls:index/privateKey:PrivateKey")[0];
    expect(redacted(key).algorithm).toBe("ED25519");
    // The component's registered outputs carry the private key only in secret form.
    const component = resources.find((r) => r.type === "dare:iaas:Infrastructure")!;
    const outputs = component.outputs as Record<string, any>;
    expect(outputs.sshPrivateKey[SPECIAL_SIG_KEY]).toBe(SECRET_SIG);
  });
});

describe("scaling", () => {
  const snapshot = async (workers: number) => {
    const { resources } = await build(args({ nodes: nodes(workers) }));
    return new Map(resources.map((r) => [r.urn, JSON.stringify({ inputs: redacted(r), deps: r.dependencies })]));
  };

  it("N to N+1 adds only the new node's resources and changes nothing else", async () => {
    const before = await snapshot(2);
    const after = await snapshot(3);
    const added = [...after.keys()].filter((u) => !before.has(u));
    const removed = [...before.keys()].filter((u) => !after.has(u));
    const changed = [...before.keys()].filter((u) => after.has(u) && after.get(u) !== before.get(u));
    expect(removed).toEqual([]);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((u) => /::(iaas-)?dare-test-workers-2(-|$)/.test(u))).toBe(true);
    // Only the list of hosts the component reports grows: no resource input changes.
    expect(changed.filter((u) => !u.endsWith("dare:iaas:Infrastructure::dare-test") && !u.includes("pulumi:pulumi:Stack"))).toEqual([]);
  });

  it("N to N-1 removes only the highest-index node's resources", async () => {
    const before = await snapshot(3);
    const after = await snapshot(2);
    const removed = [...before.keys()].filter((u) => !after.has(u));
    expect(removed.length).toBeGreaterThan(0);
    expect(removed.every((u) => /::(iaas-)?dare-test-workers-2(-|$)/.test(u))).toBe(true);
    expect([...after.keys()].filter((u) => !before.has(u))).toEqual([]);
  });
});

describe("existing hosts", () => {
  const existing = args({
    provider: "existing",
    hosts: [
      {
        name: "w-0",
        role: "workers",
        address: "10.0.0.20",
        privateAddress: "10.0.0.20",
        user: "debian",
        port: 2222,
        disks: ["/dev/sdb"],
        hostKey: EXAMPLE_HOST_KEY,
      },
      {
        name: "cp-0",
        role: "control-plane",
        address: "203.0.113.5",
        privateAddress: "10.0.0.10",
        user: "ubuntu",
        port: 22,
        disks: [],
        hostKey: EXAMPLE_HOST_KEY,
      },
    ],
  });

  it("creates no IaaS resource and passes the hosts on, control planes first", async () => {
    const { resources, infra } = await build(existing);
    expect(resources.filter((r) => r.type.startsWith("openstack:"))).toEqual([]);
    const [hosts, api, bastion] = await Promise.all([valueOf(infra.hosts), valueOf(infra.apiServer), valueOf(infra.bastion)]);
    expect(hosts.map((h) => [h.name, h.role, h.pool, h.sshUser, h.port])).toEqual([
      ["cp-0", "control-plane", "control-plane", "ubuntu", 22],
      ["w-0", "worker", "workers", "debian", 2222],
    ]);
    expect(hosts[1].disks).toEqual(["/dev/sdb"]);
    expect(api).toEqual({ privateAddress: "10.0.0.10", publicAddress: "203.0.113.5", port: 6443 });
    expect(bastion).toBeUndefined();
  });

  it("rejects contradictory arguments in the constructor, before registering anything", async () => {
    const resources = installMocks("test");
    expect(() => new Infrastructure("x", args({ provider: "existing", hosts: [] }))).toThrow(/needs at least one host/);
    expect(() => new Infrastructure("x", args({ hosts: existing.hosts }))).toThrow(/only used with provider "existing"/);
    const jump = { address: "198.51.100.7", port: 22, user: "jump", hostKey: EXAMPLE_HOST_KEY };
    expect(() => new Infrastructure("x", args({ bastion: jump }))).toThrow(/bastion is only used with provider "existing"/);
    expect(() => new Infrastructure("x", { ...existing, hosts: [{ ...existing.hosts[0], viaBastion: true }] })).toThrow(
      /hosts w-0 are reached through a bastion, but none is given/,
    );
    await settle();
    expect(resources).toEqual([]);
  });

  it("hands on a configured jump host (dare:bastion), the hosts marked as behind it, and its own key as a secret", async () => {
    const jump = { address: "198.51.100.7", port: 2222, user: "jump", hostKey: `${EXAMPLE_HOST_KEY} comment` };
    const { infra } = await build({
      ...existing,
      hosts: [{ ...existing.hosts[0], viaBastion: true }, existing.hosts[1]],
      bastion: jump,
      bastionPrivateKey: "jump-key",
    });
    const [hosts, bastion, key] = await Promise.all([valueOf(infra.hosts), valueOf(infra.bastion), valueOf(infra.bastionPrivateKey)]);
    expect(hosts.map((h) => [h.name, h.viaBastion])).toEqual([
      ["cp-0", false],
      ["w-0", true],
    ]);
    expect(bastion).toEqual({ ...jump, hostKey: EXAMPLE_HOST_KEY });
    expect(key).toBe("jump-key");
    expect(await isSecretOutput(infra.bastionPrivateKey)).toBe(true);
    // Without its own key, the hosts' key logs in to it.
    const { infra: same } = await build({ ...existing, bastion: jump });
    expect(await valueOf(same.bastionPrivateKey)).toBe(await valueOf(same.sshPrivateKey));
  });
});

describe("Ceph disks on any OpenStack: found by volume id on the host, named /dev/disk/dare/<volume id> by udev", () => {
  const CLUSTER = "dare-test";
  // The mocks give ports addresses anywhere in 10.10.0.0/16: the node subnet must hold them, as on OpenStack.
  const network = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
  const spec = nodes(2, 1, 2);
  let resources: RecordedResource[];
  let hosts: Host[];
  const commands = () => ofType(resources, "command:remote:Command");
  const diskStep = (host: string, j: number) => {
    const r = commands().find((c) => c.name === `iaas-${host}-disk-${j}`);
    if (!r) throw new Error(`no disk step ${j} on ${host}`);
    return r;
  };
  const attachment = (host: string, j: number) =>
    ofType(resources, "openstack:compute/volumeAttach:VolumeAttach").find(
      (a) => a.name === `${CLUSTER}-${host.slice(CLUSTER.length + 1)}-disk-${j}`,
    )!;
  const volumeId = (host: string, j: number) => (attachment(host, j).inputs as any).volumeId as string;
  const workers = ["dare-test-workers-0", "dare-test-workers-1"];

  beforeAll(async () => {
    let infra: Infrastructure | undefined;
    resources = await runMocked(() => {
      infra = new Infrastructure(CLUSTER, { ...args({ nodes: spec }), network });
      new Storage("storage", { provider: new k8s.Provider("test", { kubeconfig: "{}" }), hosts: infra.hosts, replicas: 2, monitors: 1 });
      new KubernetesCluster(CLUSTER, {
        nodes: clusterNodes({ provider: "openstack", clusterName: CLUSTER, nodes: spec, hosts: [] }),
        hosts: infra.hostByName,
        apiServer: infra.apiServer,
        bastion: infra.bastion,
        sshPrivateKey: infra.sshPrivateKey,
        kubernetesVersion: "1.36.4",
        network,
        clusterName: CLUSTER,
        adminCidrs: ["192.0.2.0/24"],
        apiLoadBalancer: true,
      });
    });
    hosts = await valueOf(infra!.hosts);
  });

  it("hands Rook /dev/disk/dare/<volume id> for each volume: never a bus-specific /dev/disk/by-id name", () => {
    const values = redacted(
      ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === CHARTS.rookCluster.chart)!,
    );
    expect(values.values.cephClusterSpec.storage.nodes).toEqual(
      workers.map((w) => ({
        name: w,
        devices: [0, 1].map((j) => ({ name: `/dev/disk/dare/${volumeId(w, j)}` })),
      })),
    );
    for (const w of workers) expect(hosts.find((h) => h.name === w)!.disks).toEqual([0, 1].map((j) => diskPath(volumeId(w, j))));
  });

  it("runs one step per volume on its worker (through the bastion), after the attachment: disk-link.sh, and disk-unlink.sh when it goes", () => {
    const bastion = hosts[0].publicAddress;
    for (const w of workers) {
      const host = hosts.find((h) => h.name === w)!;
      for (const j of [0, 1]) {
        const step = diskStep(w, j);
        const inputs = unsecret(step.inputs);
        expect(inputs.connection).toMatchObject({ host: host.privateAddress, proxy: { host: bastion } });
        // No secret among its parameters: all of them in the command, where a preview shows them; stdin empty.
        const parameters = plainParametersOf(inputs.create);
        expect(inputs.create).toBe(wrapScript(readScript("disk-link.sh"), parameters));
        expect(inputs.delete).toBe(wrapScript(readScript("disk-unlink.sh"), parameters));
        expect(parameters).toContain(`VOLUME_ID='${volumeId(w, j)}'\n`);
        expect(parameters).toContain(`DISK_HOST='${w}'\n`);
        expect(inputs.stdin).toBe("");
        expect(step.dependencies).toContain(attachment(w, j).urn);
        // A re-attached volume or a re-created machine updates the step (create runs again): no replacement,
        // whose delete would take away the rule the new step just installed.
        expect(inputs.triggers).toBeUndefined();
      }
    }
    // Control planes have no volumes, so no disk step.
    expect(
      commands()
        .filter((c) => /^iaas-/.test(c.name))
        .map((c) => c.name)
        .sort(),
    ).toEqual(workers.flatMap((w) => [0, 1].map((j) => `iaas-${w}-disk-${j}`)).sort());
  });

  it("makes Rook's values wait for the disk steps that create the paths they name, and every OSD step for the attachment (its OSD leaves before the detach)", () => {
    const rook = ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === CHARTS.rookCluster.chart)!;
    for (const w of workers) {
      for (const j of [0, 1]) {
        expect(rook.dependencies).toContain(diskStep(w, j).urn);
        const osd = commands().find((c) => c.name === `k8s-${CLUSTER}-cp-0-osd-${w}-disk-${j}`)!;
        expect(osd.dependencies).toContain(attachment(w, j).urn);
        expect(plainParametersOf(unsecret(osd.inputs).create)).toContain(`OSD_DEVICE='/dev/disk/dare/${volumeId(w, j)}'\n`);
      }
    }
  });
});

describe("SSH host keys: every connection pins the host's key, which OpenStack VMs get from the program at boot", () => {
  const CLUSTER = "dare-test";
  const network = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
  const spec = nodes(2, 1, 1);
  let resources: RecordedResource[];
  let hosts: Host[];
  let bastionKey: string | undefined;
  const instances = () => ofType(resources, "openstack:compute/instance:Instance");
  const keyOf = (host: string) => hosts.find((h) => h.name === host)!.hostKey;

  beforeAll(async () => {
    let infra: Infrastructure | undefined;
    resources = await runMocked(() => {
      infra = new Infrastructure(CLUSTER, { ...args({ nodes: spec }), network });
      new KubernetesCluster(CLUSTER, {
        nodes: clusterNodes({ provider: "openstack", clusterName: CLUSTER, nodes: spec, hosts: [] }),
        hosts: infra.hostByName,
        apiServer: infra.apiServer,
        bastion: infra.bastion,
        sshPrivateKey: infra.sshPrivateKey,
        kubernetesVersion: "1.36.4",
        network,
        clusterName: CLUSTER,
        adminCidrs: ["192.0.2.0/24"],
        apiLoadBalancer: true,
      });
    });
    hosts = await valueOf(infra!.hosts);
    bastionKey = (await valueOf(infra!.bastion))?.hostKey;
  });

  it("gives each VM its own ED25519 host key in cloud-init user data, secret, and never re-creates a VM for it", () => {
    expect(instances()).toHaveLength(3);
    const seen = new Set<string>();
    for (const instance of instances()) {
      // Secret in the inputs, so in the state and the render.
      expect((instance.inputs as any).userData[SPECIAL_SIG_KEY]).toBe(SECRET_SIG);
      expect(redacted(instance).userData).toBe("[secret]");
      const text: string = unsecret(instance.inputs).userData;
      expect(text.split("\n")[0]).toBe("#cloud-config");
      const cloudConfig = YAML.parse(text);
      expect(Object.keys(cloudConfig)).toEqual(["ssh_deletekeys", "ssh_keys"]);
      expect(cloudConfig.ssh_deletekeys).toBe(true);
      expect(Object.keys(cloudConfig.ssh_keys).sort()).toEqual(["ed25519_private", "ed25519_public"]);
      // ssh-keygen itself reads the private key cloud-init writes to /etc/ssh/ssh_host_ed25519_key and derives
      // the public key the connections pin.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-hostkey-"));
      try {
        fs.writeFileSync(path.join(dir, "key"), cloudConfig.ssh_keys.ed25519_private, { mode: 0o600 });
        const derived = spawnSync("ssh-keygen", ["-y", "-f", path.join(dir, "key")], { encoding: "utf8" });
        expect({ status: derived.status, stderr: derived.stderr }).toEqual({ status: 0, stderr: "" });
        expect(derived.stdout.trim()).toBe(cloudConfig.ssh_keys.ed25519_public);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(keyOf((instance.inputs as any).name)).toBe(cloudConfig.ssh_keys.ed25519_public);
      seen.add(cloudConfig.ssh_keys.ed25519_public);
      // User data is read at first boot and a change of it replaces the VM: ignored after creation.
      expect(instance.options?.ignoreChanges).toEqual(["imageName", "userData"]);
    }
    expect(seen.size).toBe(3);
  });

  it("pins every host step's connection to its host's key, and the jump through the bastion to the bastion's", () => {
    const commands = ofType(resources, "command:remote:Command");
    expect(commands.length).toBeGreaterThan(6);
    expect(bastionKey).toBe(keyOf(`${CLUSTER}-cp-0`));
    for (const command of commands) {
      // The connection (with the key) is secret as a whole: it carries the program's SSH private key.
      expect((command.inputs as any).connection[SPECIAL_SIG_KEY]).toBe(SECRET_SIG);
      const { connection } = unsecret(command.inputs);
      const host = hosts.find((h) => h.privateAddress === connection.host || h.publicAddress === connection.host)!;
      expect({ step: command.name, hostKey: connection.hostKey }).toEqual({ step: command.name, hostKey: host.hostKey });
      expect(connection.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
      if (host.viaBastion)
        expect({ step: command.name, proxyKey: connection.proxy.hostKey }).toEqual({ step: command.name, proxyKey: bastionKey });
      else expect(connection.proxy).toBeUndefined();
    }
  });
});

describe("host step output: secret in the state, and not streamed to the logs where a step holds a credential", () => {
  const CLUSTER = "dare-test";
  const network = { ...DEFAULT_NETWORK, cidr: "10.10.0.0/16" };
  const spec = nodes(1, 1, 1);
  let commands: RecordedResource[];
  const isSecretInput = (value: any) => value?.[SPECIAL_SIG_KEY] === SECRET_SIG;

  beforeAll(async () => {
    const resources = await runMocked(() => {
      const infra = new Infrastructure(CLUSTER, { ...args({ nodes: spec }), network });
      new KubernetesCluster(CLUSTER, {
        nodes: clusterNodes({ provider: "openstack", clusterName: CLUSTER, nodes: spec, hosts: [] }),
        hosts: infra.hostByName,
        apiServer: infra.apiServer,
        bastion: infra.bastion,
        sshPrivateKey: infra.sshPrivateKey,
        kubernetesVersion: "1.36.4",
        network,
        clusterName: CLUSTER,
        adminCidrs: ["192.0.2.0/24"],
        apiLoadBalancer: true,
      });
    });
    commands = ofType(resources, "command:remote:Command");
  });

  it("makes stdout and stderr of every step secret outputs (kubeadm init prints the join command with the bootstrap token)", () => {
    expect(commands.length).toBeGreaterThan(4);
    for (const command of commands) {
      // (The SDK adds `connection`, secret in the provider's schema.)
      expect({ step: command.name, secret: command.options?.additionalSecretOutputs }).toEqual({
        step: command.name,
        secret: expect.arrayContaining(["stdout", "stderr"]),
      });
    }
  });

  it("streams a step's output to the logs only when none of its parameters is a secret", () => {
    const logging = (name: RegExp) =>
      commands.filter((c) => name.test(c.name)).map((c) => ({ step: c.name, logging: (c.inputs as any).logging }));
    for (const command of commands) {
      const expected = isSecretInput((command.inputs as any).stdin) ? "none" : "stdoutAndStderr";
      expect({ step: command.name, logging: (command.inputs as any).logging }).toEqual({ step: command.name, logging: expected });
    }
    // Both kinds exist: the steps given the bootstrap token or the CA keys are quiet, a disk link is not.
    const quiet = logging(/-(init|join|token|pki)$/);
    expect(quiet.length).toBeGreaterThanOrEqual(4);
    for (const step of quiet) expect(step.logging).toBe("none");
    expect(logging(/^iaas-.*-disk-0$/).map((s) => s.logging)).toEqual(["stdoutAndStderr"]);
  });
});
