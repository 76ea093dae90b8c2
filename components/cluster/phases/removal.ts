/**
 * Ceph OSD removal: per joined host with disks, on the first control plane, nothing while it
 * stays; when the host or a disk leaves, its OSDs are taken out of Ceph first (ceph-remove-osds.sh).
 */
import * as pulumi from "@pulumi/pulumi";
import { ClusterContext, HostSteps } from "./context";
import { Initialised } from "./init";

/** Seconds the OSD removal waits for Ceph to re-replicate (every placement group active+clean) before it fails. */
export const CEPH_CLEAN_TIMEOUT_SECONDS = 3600;

/** The OSD removal steps. */
export interface OsdRemoval {
  /** per host with disks: deleted (its OSDs out, re-replicated, purged) before its node step drains it */
  osdHost: HostSteps;
  /** per disk of those hosts, keyed `<host>/<j>`: deleted before the disk's volume attachment */
  osdDisk: HostSteps;
}

/**
 * Deletes run dependents first, so each step depends on what must outlive it: a disk's step on `init`
 * and on the disk's path (a parameter the IaaS layer derives from the volume attachment); the host's
 * step on its node step (`nodes`: the drain) and on its disks' steps, so that a host leaving moves its
 * data once, for all its OSDs together.
 */
export function osdRemoval(ctx: ClusterContext, { init, nodes }: { init: Initialised; nodes: HostSteps }): OsdRemoval {
  const osdHost: HostSteps = new Map();
  const osdDisk: HostSteps = new Map();
  for (const member of ctx.others.filter((n) => (n.disks ?? 0) > 0)) {
    const osdEnv = (device: pulumi.Input<string>) => ({
      OSD_HOST: member.name,
      OSD_DEVICE: device,
      CEPH_CLEAN_TIMEOUT: String(CEPH_CLEAN_TIMEOUT_SECONDS),
      API_ENDPOINT: ctx.apiEndpoint,
    });
    const disks = Array.from({ length: member.disks! }, (_, j) => {
      const disk = ctx.step(
        ctx.first,
        `osd-${member.name}-disk-${j}`,
        "ceph-osd.sh",
        osdEnv(ctx.hostOf(member).apply((h) => h.disks[j] ?? "")),
        [init.step],
        { deleteScript: "ceph-remove-osds.sh", rerunOnNewMachine: false },
      );
      osdDisk.set(`${member.name}/${j}`, disk);
      return disk;
    });
    osdHost.set(
      member.name,
      ctx.step(ctx.first, `osd-${member.name}`, "ceph-osd.sh", osdEnv(""), [nodes.get(member.name)!, ...disks], {
        deleteScript: "ceph-remove-osds.sh",
        rerunOnNewMachine: false,
      }),
    );
  }
  return { osdHost, osdDisk };
}
