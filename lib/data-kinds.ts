/**
 * Which resources hold data that an ordinary configuration edit must never delete: the program protects
 * them (data-protection.ts) and the policy pack checks that it did (policy/rules.ts). Pure: no Pulumi
 * import, so the policy pack and the tests share it.
 */
import { CHARTS } from "./pins";

export interface DataKind {
  /** what is lost with it, for the refusal message and docs/operations.md */
  what: string;
  /**
   * Also retainOnDelete: when the operator lets the resource go deliberately, Pulumi forgets it but the
   * object (and so its volume) stays in the cluster, to be removed by hand once its data is safe.
   * Cloud resources (VMs, volumes) are protected only: keeping one Pulumi no longer tracks would leak it.
   */
  retainOnDelete: boolean;
  /** for kinds where only some resources hold data */
  applies?: (name: string, inputs: Record<string, unknown>) => boolean;
}

/** Namespaces whose deletion would delete volume claims (and with them, under a Delete policy, volumes). */
export const DATA_NAMESPACES = ["rook-ceph", "dare", "keycloak", "harbor", "monitoring", "jupyterhub"];

export const DATA_KINDS: Record<string, DataKind> = {
  "openstack:blockstorage/volume:Volume": { what: "OpenStack volume: a Ceph OSD's disk", retainOnDelete: false },
  "openstack:compute/volumeAttach:VolumeAttach": {
    what: "attachment of a Ceph OSD's disk (detaching it under a running OSD)",
    retainOnDelete: false,
  },
  "openstack:compute/instance:Instance": {
    what: "VM: its local disk (a control plane's holds an etcd member, the PKI and the local backups)",
    retainOnDelete: false,
  },
  "kubernetes:core/v1:PersistentVolumeClaim": { what: "volume claim and its volume", retainOnDelete: true },
  "kubernetes:postgresql.cnpg.io/v1:Cluster": { what: "PostgreSQL cluster: Keycloak's users and realm", retainOnDelete: true },
  "kubernetes:core/v1:Namespace": {
    what: "namespace holding volume claims",
    retainOnDelete: true,
    applies: (_name, inputs) => DATA_NAMESPACES.includes(String((inputs?.metadata as { name?: unknown } | undefined)?.name)),
  },
  "kubernetes:helm.sh/v3:Release": {
    what: "the Ceph cluster (CephCluster, pools, file system)",
    retainOnDelete: true,
    applies: (_name, inputs) => inputs?.chart === CHARTS.rookCluster.chart,
  },
};

/** The data kind of a resource, if it holds data. */
export function dataKindOf(type: string, name: string, inputs: Record<string, unknown>): DataKind | undefined {
  const kind = DATA_KINDS[type];
  return kind && (!kind.applies || kind.applies(name, inputs)) ? kind : undefined;
}
