/**
 * Layer 4, storage: Rook (operator with the Ceph CSI operator) and one Ceph cluster whose OSDs are
 * exactly the hosts' disks from the IaaS layer. Two storage classes: `rook-ceph-block` (RBD,
 * ReadWriteOnce, the cluster default) and `rook-cephfs` (CephFS, ReadWriteMany, DARE's shared files).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../lib/helm";
import { CHARTS } from "../lib/pins";
import { Host } from "../lib/hosts";
import { createNamespace, NAMESPACES } from "../lib/namespaces";

export const BLOCK_STORAGE_CLASS = "rook-ceph-block";
export const SHARED_STORAGE_CLASS = "rook-cephfs";
export const RETAINED_BLOCK_STORAGE_CLASS = "rook-ceph-block-retain";
export const RETAINED_SHARED_STORAGE_CLASS = "rook-cephfs-retain";
const BLOCK_POOL = "replicapool";
const FILE_SYSTEM = "cephfs";
const SHARED_DATA_POOL = "data0";

export interface StorageArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** Provider of the cluster (KubernetesCluster.provider). */
  provider: k8s.Provider;
  /** Every host, from the IaaS layer; those with disks carry the OSDs, one per disk. */
  hosts: pulumi.Input<Host[]>;
  /** Copies of each object (block pool, file system pools); at most the number of hosts with disks. */
  replicas: number;
  /** Ceph monitors: 1, 3 or 5. */
  monitors: number;
}

/** Rook's device name: a kernel name (`sdb`) for /dev/sdb, the full path for stable udev links. */
export function rookDeviceName(disk: string): string {
  return /^\/dev\/[^/]+$/.test(disk) ? disk.slice("/dev/".length) : disk;
}

/** The CephCluster's storage section: only the listed nodes and devices, never "all devices". */
export function cephStorage(hosts: Host[]) {
  return {
    useAllNodes: false,
    useAllDevices: false,
    nodes: hosts
      .filter((h) => h.disks.length > 0)
      // By name, so that adding a host or a disk adds one entry and moves nothing else.
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((h) => ({ name: h.name, devices: h.disks.map((d) => ({ name: rookDeviceName(d) })) })),
  };
}

/** Replication of every pool; size 1 (testbed) must be allowed explicitly in Rook. */
function replicated(replicas: number) {
  return { size: replicas, requireSafeReplicaSize: replicas > 1 };
}

/** CSI secrets Rook creates in its namespace, referenced by the storage classes. */
function csiSecrets(kind: "rbd" | "cephfs") {
  const ns = NAMESPACES.rookCeph.name;
  return {
    "csi.storage.k8s.io/provisioner-secret-name": `rook-csi-${kind}-provisioner`,
    "csi.storage.k8s.io/provisioner-secret-namespace": ns,
    "csi.storage.k8s.io/controller-expand-secret-name": `rook-csi-${kind}-provisioner`,
    "csi.storage.k8s.io/controller-expand-secret-namespace": ns,
    "csi.storage.k8s.io/controller-publish-secret-name": `rook-csi-${kind}-provisioner`,
    "csi.storage.k8s.io/controller-publish-secret-namespace": ns,
    "csi.storage.k8s.io/node-stage-secret-name": `rook-csi-${kind}-node`,
    "csi.storage.k8s.io/node-stage-secret-namespace": ns,
    "csi.storage.k8s.io/fstype": "ext4",
  };
}

/** The classes' own parameters (the chart adds pool, clusterID and, for CephFS, fsName). */
const BLOCK_PARAMETERS = { imageFormat: "2", imageFeatures: "layering", ...csiSecrets("rbd") };
const SHARED_PARAMETERS = csiSecrets("cephfs");

/** Values of the rook-ceph-cluster chart: the CephCluster, one block pool, one file system. */
export function cephClusterValues(hosts: Host[], replicas: number, monitors: number) {
  return {
    operatorNamespace: NAMESPACES.rookCeph.name,
    // `ceph status` and friends: kubectl -n rook-ceph exec deploy/rook-ceph-tools -- ceph status
    toolbox: { enabled: true },
    cephClusterSpec: {
      mon: { count: monitors, allowMultiplePerNode: false },
      mgr: { count: monitors > 1 ? 2 : 1, allowMultiplePerNode: false },
      storage: cephStorage(hosts),
    },
    cephBlockPools: [
      {
        name: BLOCK_POOL,
        spec: { failureDomain: "host", replicated: replicated(replicas) },
        storageClass: {
          enabled: true,
          name: BLOCK_STORAGE_CLASS,
          isDefault: true,
          reclaimPolicy: "Delete",
          allowVolumeExpansion: true,
          volumeBindingMode: "Immediate",
          parameters: BLOCK_PARAMETERS,
        },
      },
    ],
    cephFileSystems: [
      {
        name: FILE_SYSTEM,
        spec: {
          metadataPool: { failureDomain: "host", replicated: replicated(replicas) },
          dataPools: [{ name: SHARED_DATA_POOL, failureDomain: "host", replicated: replicated(replicas) }],
          metadataServer: {
            activeCount: 1,
            // A standby MDS needs a second node; with one replica the testbed has no spare anyway.
            activeStandby: replicas > 1,
            resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "4Gi" } },
            priorityClassName: "system-cluster-critical",
          },
        },
        storageClass: {
          enabled: true,
          isDefault: false,
          name: SHARED_STORAGE_CLASS,
          pool: SHARED_DATA_POOL,
          reclaimPolicy: "Delete",
          allowVolumeExpansion: true,
          volumeBindingMode: "Immediate",
          parameters: SHARED_PARAMETERS,
        },
      },
    ],
    // No object store: nothing in DARE speaks S3.
    cephObjectStores: [],
  };
}

/**
 * The same classes with reclaimPolicy Retain, for claims that hold data (databases, the shared file system,
 * local state): deleting the claim, by mistake or with its namespace, leaves the volume (a Released PV) to be
 * bound again. Typed objects with the chart's provisioner and parameters (templates/cephblockpool.yaml and
 * cephfilesystem.yaml at v1.20.6): the chart's own classes stay as they are, since a StorageClass's
 * reclaimPolicy cannot change in place and Helm would fail to upgrade them.
 */
function retainedStorageClasses(name: string, opts: pulumi.CustomResourceOptions): void {
  const ns = NAMESPACES.rookCeph.name;
  const common = { reclaimPolicy: "Retain", allowVolumeExpansion: true, volumeBindingMode: "Immediate" };
  const notDefault = { "storageclass.kubernetes.io/is-default-class": "false" };
  new k8s.storage.v1.StorageClass(
    `${name}-block-retain`,
    {
      metadata: { name: RETAINED_BLOCK_STORAGE_CLASS, annotations: notDefault },
      provisioner: `${ns}.rbd.csi.ceph.com`,
      parameters: { pool: BLOCK_POOL, clusterID: ns, ...BLOCK_PARAMETERS },
      ...common,
    },
    opts,
  );
  new k8s.storage.v1.StorageClass(
    `${name}-shared-retain`,
    {
      metadata: { name: RETAINED_SHARED_STORAGE_CLASS, annotations: notDefault },
      provisioner: `${ns}.cephfs.csi.ceph.com`,
      parameters: { fsName: FILE_SYSTEM, pool: `${FILE_SYSTEM}-${SHARED_DATA_POOL}`, clusterID: ns, ...SHARED_PARAMETERS },
      ...common,
    },
    opts,
  );
}

export class Storage extends pulumi.ComponentResource {
  /** ReadWriteOnce class (Ceph RBD), the cluster default. */
  public readonly blockStorageClass: string;
  /** ReadWriteMany class (CephFS) for volumes pods on several nodes share. */
  public readonly sharedStorageClass: string;
  /** The block class with reclaimPolicy Retain: for claims that hold data. */
  public readonly retainedBlockStorageClass = RETAINED_BLOCK_STORAGE_CLASS;
  /** The shared class with reclaimPolicy Retain: for the shared file system. */
  public readonly retainedSharedStorageClass = RETAINED_SHARED_STORAGE_CLASS;

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    // replicas and monitors (1, 3 or 5, no more than the hosts) are the loader's checks (lib/config.ts, dare:ceph).
    super("dare:platform:Storage", name, {}, opts);
    const k8sOpts = { provider: args.provider, parent: this };

    const ns = createNamespace("rookCeph", k8sOpts);
    const operator = pinnedRelease(
      `${name}-rook-operator`,
      {
        release: "rook-ceph",
        chart: CHARTS.rookOperator,
        mirror: args.chartMirror,
        namespace: ns.metadata.name,
        values: {
          crds: { enabled: true },
          // Ceph CSI through the Ceph CSI operator (Rook 1.20's way); it drives both storage classes.
          csi: { installCsiOperator: true },
        },
      },
      k8sOpts,
    );

    const values = pulumi.output(args.hosts).apply((list) => {
      const withDisks = list.filter((h) => h.disks.length > 0).length;
      if (withDisks < args.replicas) {
        throw new Error(`${name}: ${args.replicas} replicas need ${args.replicas} hosts with disks, there are ${withDisks}`);
      }
      return cephClusterValues(list, args.replicas, args.monitors);
    });
    const cluster = pinnedRelease(
      `${name}-ceph-cluster`,
      {
        release: "rook-ceph-cluster",
        chart: CHARTS.rookCluster,
        mirror: args.chartMirror,
        namespace: ns.metadata.name,
        values,
        // The chart only declares the CephCluster; OSDs come up afterwards, under the operator's watch.
        timeout: 600,
      },
      { ...k8sOpts, dependsOn: [operator] },
    );
    retainedStorageClasses(name, { ...k8sOpts, dependsOn: [cluster] });

    this.blockStorageClass = BLOCK_STORAGE_CLASS;
    this.sharedStorageClass = SHARED_STORAGE_CLASS;
    this.registerOutputs({
      blockStorageClass: this.blockStorageClass,
      sharedStorageClass: this.sharedStorageClass,
      retainedBlockStorageClass: this.retainedBlockStorageClass,
      retainedSharedStorageClass: this.retainedSharedStorageClass,
    });
  }
}
