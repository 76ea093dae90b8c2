/**
 * Issue 13, item 1: every resource that holds data is protected, Kubernetes ones also kept on delete, and a
 * configuration change that would stop declaring one (a renamed pool, fewer disks) is refused before anything
 * changes, with a message naming what would be lost, unless dare:allowDataLoss names it. The render runs the
 * real program against the outputs of a previous render, as the stack's last update (`--last-update`).
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { DATA_KINDS, dataKindOf } from "../../lib/data-kinds";
import { DataResource, refusalMessage, refusedLosses } from "../../lib/data-protection";
import { checkResources } from "../../policy/check-render";
import { dataResourcesProtected } from "../../policy/rules";

jest.setTimeout(240_000);

const ROOT = path.join(__dirname, "..", "..");
const TS_NODE = path.join(ROOT, "node_modules", ".bin", "ts-node");
const run = promisify(execFile);

interface Rendered {
  code: number;
  stdout: string;
  stderr: string;
  dir: string;
}

async function render(stack: string, extra: string[]): Promise<Rendered> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `data-protection-${stack}-`));
  try {
    const { stdout, stderr } = await run(
      TS_NODE,
      ["--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", stack, "--out", dir, ...extra],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
    );
    return { code: 0, stdout, stderr, dir };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, dir };
  }
}

const resourcesOf = (dir: string): any[] => JSON.parse(fs.readFileSync(path.join(dir, "resources.json"), "utf8"));

let base: Rendered;
beforeAll(async () => {
  base = await render("production", []);
  expect(base.code).toBe(0);
});

describe("protection", () => {
  it("protects every resource that holds data, and keeps the Kubernetes ones in the cluster when Pulumi lets go", () => {
    const data = resourcesOf(base.dir).filter((r) => dataKindOf(r.type, r.name, r.inputs));
    // Production: 6 VMs, 3 OSD volumes and their attachments, the data namespaces, the claims, the database, Ceph.
    const byType = (type: string) => data.filter((r) => r.type === type).length;
    expect(byType("openstack:compute/instance:Instance")).toBe(6);
    expect(byType("openstack:blockstorage/volume:Volume")).toBe(3);
    expect(byType("openstack:compute/volumeAttach:VolumeAttach")).toBe(3);
    expect(byType("kubernetes:postgresql.cnpg.io/v1:Cluster")).toBe(1);
    expect(
      data
        .filter((r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim")
        .map((r) => r.inputs.metadata.name)
        .sort(),
    ).toEqual(["dare-sfs", "exec-api-data", "workflow-registry-data"]);
    expect(
      data
        .filter((r) => r.type === "kubernetes:core/v1:Namespace")
        .map((r) => r.inputs.metadata.name)
        .sort(),
    ).toEqual(["dare", "harbor", "keycloak", "monitoring", "rook-ceph"]);
    for (const r of data) {
      const kind = DATA_KINDS[r.type];
      expect({ name: r.name, options: r.options }).toEqual({
        name: r.name,
        options: expect.objectContaining({ protect: true, ...(kind.retainOnDelete ? { retainOnDelete: true } : {}) }),
      });
    }
    // And nothing else: a stateless Deployment is not protected.
    expect(resourcesOf(base.dir).find((r) => r.type === "kubernetes:apps/v1:Deployment")?.options?.protect).toBeUndefined();
  });

  it("puts data claims on storage classes that retain the volume when the claim goes", () => {
    const objects = resourcesOf(base.dir);
    const classes = new Map(
      objects.filter((r) => r.type === "kubernetes:storage.k8s.io/v1:StorageClass").map((r) => [r.inputs.metadata.name, r.inputs]),
    );
    for (const name of ["rook-ceph-block-retain", "rook-cephfs-retain"]) expect(classes.get(name)?.reclaimPolicy).toBe("Retain");
    const claims = objects.filter((r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim");
    for (const c of claims) expect(classes.get(c.inputs.spec.storageClassName)?.reclaimPolicy).toBe("Retain");
    const databases = objects.filter((r) => r.type === "kubernetes:apps/v1:StatefulSet" && r.inputs.metadata.namespace === "dare");
    for (const d of databases)
      expect(classes.get(d.inputs.spec.volumeClaimTemplates[0].spec.storageClassName)?.reclaimPolicy).toBe("Retain");
    const keycloakDb = objects.find((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster");
    expect(classes.get(keycloakDb.inputs.spec.storage.storageClass)?.reclaimPolicy).toBe("Retain");
    // Same provisioner as the chart's classes (the CSI operator's drivers in the rook-ceph namespace).
    expect(classes.get("rook-ceph-block-retain")?.provisioner).toBe("rook-ceph.rbd.csi.ceph.com");
    expect(classes.get("rook-cephfs-retain")?.parameters).toMatchObject({ fsName: "cephfs", pool: "cephfs-data0", clusterID: "rook-ceph" });
  });

  it("records the data resources as the stack output the next update is checked against", () => {
    const outputs = JSON.parse(fs.readFileSync(path.join(base.dir, "outputs.json"), "utf8"));
    const names = outputs.dataResources.map((r: DataResource) => r.name);
    expect(names).toContain("dare-production-workers-2-disk-0");
    expect(names).toContain("dare-sfs");
    for (const r of outputs.dataResources) expect(r.urn).toMatch(/^urn:pulumi:production::dare::/);
  });
});

describe("a change that would delete data", () => {
  it("is refused before anything changes, naming each resource and how to proceed deliberately", async () => {
    // Renaming the pool renames its VMs and volumes: the old ones would be deleted.
    const renamed = await render("production", [
      "--last-update",
      path.join(base.dir, "outputs.json"),
      "--set",
      "nodes.pools[0].name=compute",
    ]);
    expect(renamed.code).toBe(2);
    expect(renamed.stderr).toMatch(/^Refusing a change that would delete data; nothing has been changed/);
    for (let i = 0; i < 3; i++) {
      expect(renamed.stderr).toContain(`- dare-production-workers-${i}-disk-0 (OpenStack volume: a Ceph OSD's disk`);
      expect(renamed.stderr).toContain(`- dare-production-workers-${i} (VM:`);
    }
    expect(renamed.stderr).toContain("pulumi config set --path 'allowDataLoss[0]' dare-production-workers-0");
    expect(renamed.stderr).toContain(
      "pulumi state unprotect 'urn:pulumi:production::dare::dare:iaas:Infrastructure$openstack:blockstorage/volume:Volume::dare-production-workers-0-disk-0'",
    );
    // A user's decision to make, not a bug: no stack trace, and no render written.
    expect(renamed.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(renamed.dir, "resources.json"))).toBe(false);
  });

  it("is refused for one removed worker and its disk, and passes once the operator names them", async () => {
    // Four workers, then three (the loader itself refuses fewer hosts with disks than Ceph replicas: 3).
    const four = await render("production", ["--set", "nodes.pools[0].count=4"]);
    const last = path.join(four.dir, "outputs.json");
    const fewer = await render("production", ["--last-update", last]);
    expect(fewer.code).toBe(2);
    const listed = fewer.stderr
      .split("\n")
      .filter((l) => l.startsWith("  - "))
      .map((l) => l.slice(4, l.indexOf(" (")));
    expect(listed.sort()).toEqual(["dare-production-workers-3", "dare-production-workers-3-disk-0", "dare-production-workers-3-disk-0"]);
    const allowed = await render("production", [
      "--last-update",
      last,
      "--set",
      "allowDataLoss[0]=dare-production-workers-3",
      "--set",
      "allowDataLoss[1]=dare-production-workers-3-disk-0",
    ]);
    expect({ code: allowed.code, stderr: allowed.stderr }).toEqual({ code: 0, stderr: "" });
  });

  it("cannot be forced below Ceph's replica count: the loader refuses fewer hosts with disks than replicas", async () => {
    const two = await render("production", ["--set", "nodes.pools[0].count=2"]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("dare:ceph.replicas = 3: 2 host(s) have disks");
  });

  it("leaves an unchanged configuration alone", async () => {
    const again = await render("production", ["--last-update", path.join(base.dir, "outputs.json")]);
    expect(again.code).toBe(0);
  });

  it("lifts the protection of a resource the operator names, for that run only", async () => {
    const allowed = await render("production", ["--set", "allowDataLoss[0]=dare-sfs"]);
    const sfs = resourcesOf(allowed.dir).find((r) => r.name === "dare-sfs");
    expect(sfs.options).toEqual({ retainOnDelete: true });
    expect(resourcesOf(base.dir).find((r) => r.name === "dare-sfs").options).toEqual({ protect: true, retainOnDelete: true });
  });
});

describe("the rule behind it", () => {
  const volume = (name: string): DataResource => ({
    urn: `urn:pulumi:p::dare::openstack:blockstorage/volume:Volume::${name}`,
    type: "openstack:blockstorage/volume:Volume",
    name,
    what: "OpenStack volume",
  });

  it("counts what the last update had and this one does not declare, less what is allowed", () => {
    expect(refusedLosses([volume("a"), volume("b")], [volume("a")], [])).toEqual([volume("b")]);
    expect(refusedLosses([volume("a"), volume("b")], [volume("a")], ["b"])).toEqual([]);
    expect(refusedLosses([], [volume("a")], [])).toEqual([]);
    expect(refusalMessage([volume("b")])).toContain("pulumi state unprotect 'urn:pulumi:p::dare::openstack:blockstorage/volume:Volume::b'");
  });

  it("is a policy: an unprotected data resource is a violation, a protected one or a stateless one is not", () => {
    expect(dataResourcesProtected("openstack:blockstorage/volume:Volume", {}, { name: "v", protect: false })).toHaveLength(1);
    expect(dataResourcesProtected("openstack:blockstorage/volume:Volume", {}, { name: "v", protect: true })).toEqual([]);
    expect(dataResourcesProtected("kubernetes:core/v1:Namespace", { metadata: { name: "dare" } }, { name: "ns-dare" })).toHaveLength(1);
    expect(
      dataResourcesProtected("kubernetes:core/v1:Namespace", { metadata: { name: "cert-manager" } }, { name: "ns-cert-manager" }),
    ).toEqual([]);
    const violations = checkResources([{ urn: "urn:x", type: "kubernetes:core/v1:PersistentVolumeClaim", name: "dare-sfs", inputs: {} }]);
    expect(violations).toEqual([expect.stringContaining("[data-resources-protected]")]);
    // The deliberate run's policy configuration makes exactly this rule advisory.
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, "policy", "allow-data-loss.json"), "utf8"))).toEqual({
      "data-resources-protected": "advisory",
    });
  });
});
