import * as k8s from "@pulumi/kubernetes";
import { SITE_CONFIG } from "../support/site";
import { ConfigError, EXAMPLE_HOST_KEY, loadConfig } from "../../lib/config";
import { Host } from "../../lib/hosts";
import { Infrastructure } from "../../components/infrastructure";
import { NAMESPACES } from "../../lib/namespaces";
import { CHARTS } from "../../lib/pins";
import { BLOCK_STORAGE_CLASS, rookDeviceName, SHARED_STORAGE_CLASS, Storage } from "../../components/storage";
import { RecordedResource } from "../../tools/mocks";
import { validateHelmValues } from "../../tools/validate/helm-values";
import { ofType, redacted, runMocked } from "../support/mocked";

const provider = () => new k8s.Provider("test", { kubeconfig: "{}" });
const release = (resources: RecordedResource[], chart: string) =>
  ofType(resources, "kubernetes:helm.sh/v3:Release")
    .map((r) => redacted(r))
    .find((r) => r.chart === chart);

/** The whole program's config path: stack values -> loader -> IaaS hosts -> Storage. */
async function renderFromConfig(values: Record<string, unknown>) {
  const config = loadConfig({ stack: "test", get: (k) => (values[k] === undefined ? undefined : JSON.stringify(values[k])) });
  const resources = await runMocked(() => {
    const infra = new Infrastructure(config.clusterName, {
      provider: config.provider,
      clusterName: config.clusterName,
      nodes: config.nodes,
      hosts: config.hosts,
      network: config.network,
      adminCidrs: config.adminCidrs,
      image: config.image,
      sshUser: config.sshUser,
      apiLoadBalancer: config.apiLoadBalancer,
    });
    new Storage("storage", { provider: provider(), hosts: infra.hosts, replicas: config.ceph.replicas, monitors: config.ceph.monitors });
  });
  return release(resources, CHARTS.rookCluster.chart).values;
}

const existingHosts = (w1Disks: string[]) => [
  { name: "cp-0", role: "control-plane", address: "10.0.0.10", disks: [], hostKey: EXAMPLE_HOST_KEY },
  { name: "w-0", role: "workers", address: "10.0.0.20", disks: ["/dev/sdb"], hostKey: EXAMPLE_HOST_KEY },
  { name: "w-1", role: "workers", address: "10.0.0.21", disks: w1Disks, hostKey: EXAMPLE_HOST_KEY },
  { name: "w-2", role: "workers", address: "10.0.0.22", disks: ["/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"], hostKey: EXAMPLE_HOST_KEY },
];
const base = { domain: "dare.example.org", adminCidrs: ["192.0.2.0/24"], ...SITE_CONFIG };

describe("OSDs are exactly the configured disks", () => {
  it("adds one device when a disk is added to an existing host, and changes nothing else", async () => {
    const before = await renderFromConfig({ ...base, provider: "existing", hosts: existingHosts(["/dev/sdb"]) });
    const after = await renderFromConfig({ ...base, provider: "existing", hosts: existingHosts(["/dev/sdb", "/dev/sdc"]) });
    const nodes = after.cephClusterSpec.storage.nodes;
    expect(nodes.map((n: any) => n.name)).toEqual(["w-0", "w-1", "w-2"]);
    expect(nodes.find((n: any) => n.name === "w-1").devices).toEqual([{ name: "sdb" }, { name: "sdc" }]);
    // Take the new device away again: the rest of the values, CephCluster included, is identical.
    nodes.find((n: any) => n.name === "w-1").devices.pop();
    expect(after).toEqual(before);
  });

  it("adds one node entry when an OpenStack pool gets another node with disks, and a device per added volume", async () => {
    const pool = (count: number, disks: number) => ({
      controlPlane: { count: 1, flavor: "m" },
      pools: [{ name: "workers", count, flavor: "m", disks: { count: disks, sizeGb: 50 } }],
    });
    const two = await renderFromConfig({ ...base, nodes: pool(2, 1) });
    const three = await renderFromConfig({ ...base, nodes: pool(3, 1) });
    const twoDisks = await renderFromConfig({ ...base, nodes: pool(2, 2) });
    const names = (v: any) => v.cephClusterSpec.storage.nodes.map((n: any) => n.name);
    expect(names(two)).toEqual(["dare-test-workers-0", "dare-test-workers-1"]);
    expect(names(three)).toEqual([...names(two), "dare-test-workers-2"]);
    expect(three.cephClusterSpec.storage.nodes.slice(0, 2)).toEqual(two.cephClusterSpec.storage.nodes);
    for (const [i, node] of twoDisks.cephClusterSpec.storage.nodes.entries()) {
      expect(node.devices).toHaveLength(2);
      expect(node.devices[0]).toEqual(two.cephClusterSpec.storage.nodes[i].devices[0]);
      expect(node.devices[1].name).toMatch(/^\/dev\/disk\/dare\/[0-9a-f-]{36}$/);
    }
  });

  it("never lets Rook take every device or every node", async () => {
    const values = await renderFromConfig({ ...base, provider: "existing", hosts: existingHosts([]) });
    expect(values.cephClusterSpec.storage).toMatchObject({ useAllNodes: false, useAllDevices: false });
    expect(values.cephClusterSpec.storage.nodes.map((n: any) => n.name)).toEqual(["w-0", "w-2"]);
  });

  it("names plain kernel devices the way Rook expects and keeps stable udev paths whole", () => {
    expect(rookDeviceName("/dev/sdb")).toBe("sdb");
    expect(rookDeviceName("/dev/nvme1n1")).toBe("nvme1n1");
    expect(rookDeviceName("/dev/disk/by-id/virtio-0123")).toBe("/dev/disk/by-id/virtio-0123");
  });
});

describe("Ceph cluster, pools and storage classes", () => {
  const hosts: Host[] = ["w-0", "w-1", "w-2"].map((name) => ({
    name,
    role: "worker",
    pool: "workers",
    address: "10.0.0.1",
    privateAddress: "10.0.0.1",
    sshUser: "u",
    port: 22,
    disks: ["/dev/sdb"],
    viaBastion: false,
    hostKey: EXAMPLE_HOST_KEY,
  }));
  let production: RecordedResource[];
  let testbed: RecordedResource[];
  beforeAll(async () => {
    production = await runMocked(() => new Storage("storage", { provider: provider(), hosts, replicas: 3, monitors: 3 }));
    testbed = await runMocked(() => new Storage("storage", { provider: provider(), hosts: hosts.slice(0, 1), replicas: 1, monitors: 1 }));
  });

  it("pins both Rook charts, in a privileged rook-ceph namespace, with values the charts know", () => {
    for (const resources of [production, testbed]) {
      const operator = release(resources, "rook-ceph");
      const cluster = release(resources, "rook-ceph-cluster");
      expect([operator.version, cluster.version]).toEqual(["v1.20.6", "v1.20.6"]);
      expect(operator.namespace).toBe(NAMESPACES.rookCeph.name);
      const ns = ofType(resources, "kubernetes:core/v1:Namespace")
        .map((r) => redacted(r))
        .find((n) => n.metadata.name === operator.namespace);
      // OSDs need raw devices and host paths: only "privileged" admits them.
      expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
      expect(validateHelmValues(operator)).toEqual([]);
      expect(validateHelmValues(cluster)).toEqual([]);
    }
  });

  it("has exactly one default StorageClass, rook-ceph-block, a CephFS class for shared volumes, and both again with Retain for data", () => {
    const values = release(production, "rook-ceph-cluster").values;
    const classes = [...values.cephBlockPools, ...values.cephFileSystems, ...values.cephObjectStores]
      .map((x: any) => x.storageClass)
      .filter((c: any) => c?.enabled);
    expect(classes.filter((c: any) => c.isDefault).map((c: any) => c.name)).toEqual([BLOCK_STORAGE_CLASS]);
    expect(classes.map((c: any) => c.name).sort()).toEqual([BLOCK_STORAGE_CLASS, SHARED_STORAGE_CLASS].sort());
    // The chart's classes delete a volume with its claim; the typed copies keep it, and are not the default.
    expect(classes.map((c: any) => c.reclaimPolicy)).toEqual(["Delete", "Delete"]);
    const retained = ofType(production, "kubernetes:storage.k8s.io/v1:StorageClass").map((r) => r.inputs as any);
    expect(
      retained.map((c) => [c.metadata.name, c.reclaimPolicy, c.metadata.annotations["storageclass.kubernetes.io/is-default-class"]]).sort(),
    ).toEqual([
      ["rook-ceph-block-retain", "Retain", "false"],
      ["rook-cephfs-retain", "Retain", "false"],
    ]);
  });

  it("replicates every pool as configured, across hosts, and allows a single copy only when asked", () => {
    const sizes = (resources: RecordedResource[]) => {
      const v = release(resources, "rook-ceph-cluster").values;
      return [
        ...v.cephBlockPools.map((p: any) => p.spec),
        ...v.cephFileSystems.flatMap((f: any) => [f.spec.metadataPool, ...f.spec.dataPools]),
      ].map((p: any) => ({ size: p.replicated.size, safe: p.replicated.requireSafeReplicaSize, failureDomain: p.failureDomain }));
    };
    expect(new Set(sizes(production).map((s) => JSON.stringify(s)))).toEqual(
      new Set([JSON.stringify({ size: 3, safe: true, failureDomain: "host" })]),
    );
    expect(new Set(sizes(testbed).map((s) => JSON.stringify(s)))).toEqual(
      new Set([JSON.stringify({ size: 1, safe: false, failureDomain: "host" })]),
    );
  });

  it("runs 3 monitors on production and 1 on the testbed", () => {
    expect(release(production, "rook-ceph-cluster").values.cephClusterSpec.mon.count).toBe(3);
    expect(release(testbed, "rook-ceph-cluster").values.cephClusterSpec.mon.count).toBe(1);
  });
});

describe("config loader: Ceph keys", () => {
  const load = (values: Record<string, unknown>) => {
    try {
      return loadConfig({ stack: "t", get: (k) => (values[k] === undefined ? undefined : JSON.stringify(values[k])) });
    } catch (e) {
      return e as ConfigError;
    }
  };
  const keys = (result: unknown) => (result instanceof ConfigError ? result.problems.map((p) => p.key) : []);

  it("refuses more replicas than hosts with disks, naming both numbers", () => {
    const result = load({ ...base, provider: "existing", hosts: existingHosts([]), ceph: { replicas: 3, monitors: 1 } });
    expect(keys(result)).toEqual(["ceph.replicas"]);
    expect((result as ConfigError).message).toMatch(/2 host\(s\) have disks/);
  });

  it("refuses an even monitor count and a cluster without any disk", () => {
    const nodes = {
      controlPlane: { count: 1, flavor: "m" },
      pools: [{ name: "workers", count: 3, flavor: "m", disks: { count: 0, sizeGb: 50 } }],
    };
    expect(keys(load({ ...base, nodes, ceph: { replicas: 1, monitors: 2 } }))).toEqual(
      expect.arrayContaining(["ceph.monitors", "nodes.pools[].disks.count"]),
    );
  });

  it("defaults to 3 replicas and 3 monitors where the hosts allow, fewer on a small cluster", () => {
    const big = load({
      ...base,
      nodes: {
        controlPlane: { count: 1, flavor: "m" },
        pools: [{ name: "workers", count: 4, flavor: "m", disks: { count: 1, sizeGb: 50 } }],
      },
    });
    const small = load({ ...base, provider: "existing", hosts: existingHosts([]).slice(0, 2) });
    expect(big).not.toBeInstanceOf(ConfigError);
    expect(small).not.toBeInstanceOf(ConfigError);
    expect((big as any).ceph).toEqual({ replicas: 3, monitors: 3 });
    expect((small as any).ceph).toEqual({ replicas: 1, monitors: 1 });
  });
});
