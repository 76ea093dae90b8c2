/**
 * Upgrades in kubeadm's order (the first control plane, the others one at a time, then
 * the workers in waves) and the control planes' reconfiguration. The upgrade steps are no-ops at the
 * installed version, so on a fresh cluster they only add a quick check.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ClusterNode } from "../../../lib/host-plan";
import { controlPlaneConfig } from "../kubeadm-config";
import { ClusterContext, HostSteps } from "./context";
import { ControlPlanesJoined } from "./control-plane-joins";
import { Initialised } from "./init";

/** Workers without OSDs upgraded at once: a tenth of them (at least one), so capacity stays while they drain. */
export function upgradeBatchSize(workers: number): number {
  return Math.max(1, Math.ceil(workers / 10));
}

/**
 * Worker upgrades in the order they run: lists that run one after another, the hosts of a list at once.
 * Workers that hold OSDs go alone, one after another (Rook's PodDisruptionBudgets let one OSD host
 * drain at a time; a second drain would wait on them until it timed out); the others, alongside,
 * in batches of `upgradeBatchSize`.
 */
export function workerUpgradeWaves(workers: ClusterNode[]): { osd: ClusterNode[][]; other: ClusterNode[][] } {
  const osd = workers.filter((w) => (w.disks ?? 0) > 0);
  const other = workers.filter((w) => (w.disks ?? 0) === 0);
  const batch = upgradeBatchSize(other.length);
  const waves: ClusterNode[][] = [];
  for (let i = 0; i < other.length; i += batch) waves.push(other.slice(i, i + batch));
  return { osd: osd.map((w) => [w]), other: waves };
}

function upgradeStep(
  ctx: ClusterContext,
  member: ClusterNode,
  role: "first" | "control-plane" | "worker",
  dependsOn: pulumi.Resource[],
): command.remote.Command {
  return ctx.step(
    member,
    "upgrade",
    "k8s-upgrade.sh",
    {
      KUBERNETES_VERSION: ctx.args.kubernetesVersion,
      NODE_NAME: member.name,
      UPGRADE_ROLE: role,
      API_ENDPOINT: ctx.apiEndpoint,
    },
    dependsOn,
  );
}

/** The control planes upgraded. */
export interface ControlPlanesUpgraded {
  /** the upgrade step per control plane, first one first */
  upgrades: HostSteps;
  /** the last of them: the workers' joins and upgrades wait for it */
  last: command.remote.Command;
}

/**
 * The first control plane's upgrade depends on `init`; each other's on its own join
 * (`controlPlanesJoined`) and on the previous control plane's upgrade: one at a time.
 */
export function upgradeControlPlanes(
  ctx: ClusterContext,
  { init, controlPlanesJoined }: { init: Initialised; controlPlanesJoined: ControlPlanesJoined },
): ControlPlanesUpgraded {
  const upgrades: HostSteps = new Map();
  let last = upgradeStep(ctx, ctx.first, "first", [init.step]);
  upgrades.set(ctx.first.name, last);
  for (const member of ctx.controlPlanes.slice(1)) {
    last = upgradeStep(ctx, member, "control-plane", [controlPlanesJoined.joins.get(member.name)!, last]);
    upgrades.set(member.name, last);
  }
  return { upgrades, last };
}

/**
 * Per control plane, one after another (never two API servers restarting at once): its static pod
 * manifests written again from the ClusterConfiguration when that changed (dare:controlPlaneExtraArgs),
 * and on the first the kubeadm-config ConfigMap, which later joins and `kubeadm upgrade` read. Each depends
 * on its control plane being initialised or joined (`init`, `controlPlanesJoined`) and upgraded
 * (`controlPlanesUpgraded`), and on the previous one's. Returns the control-plane step per control plane.
 */
export function reconfigureControlPlanes(
  ctx: ClusterContext,
  {
    init,
    controlPlanesJoined,
    controlPlanesUpgraded,
  }: { init: Initialised; controlPlanesJoined: ControlPlanesJoined; controlPlanesUpgraded: ControlPlanesUpgraded },
): HostSteps {
  const steps: HostSteps = new Map();
  let previous: command.remote.Command | undefined;
  ctx.controlPlanes.forEach((node, i) => {
    previous = ctx.step(
      node,
      "control-plane",
      "k8s-control-plane.sh",
      {
        NODE_NAME: node.name,
        CONTROL_PLANE_CONFIG: pulumi
          .all([ctx.settings, ctx.privateAddress(node)])
          .apply(([s, address]) => controlPlaneConfig(s, { name: node.name, privateAddress: address })),
        UPLOAD_CLUSTER_CONFIGURATION: i === 0 ? "true" : "false",
        API_PORT: ctx.settings.apply((s) => String(s.apiServer.port)),
        API_ENDPOINT: ctx.apiEndpoint,
      },
      [
        i === 0 ? init.step : controlPlanesJoined.joins.get(node.name)!,
        controlPlanesUpgraded.upgrades.get(node.name)!,
        ...(previous ? [previous] : []),
      ],
    );
    steps.set(node.name, previous);
  });
  return steps;
}

/** The workers upgraded, each drained before and uncordoned after. */
export interface WorkersUpgraded {
  /** per worker, in the order the waves run */
  upgrades: HostSteps;
  /** on the first control plane (its admin.conf never leaves it), per worker: before its upgrade */
  drain: HostSteps;
  /** on the first control plane, per worker: after its upgrade */
  uncordon: HostSteps;
}

/**
 * The workers after the control planes (`controlPlanesUpgraded`), in workerUpgradeWaves: those with
 * OSDs one at a time, the others alongside in batches; each wave after the previous one's uncordons.
 * A worker's drain also depends on its join (`workersJoined`) and its node step (`nodes`): the node is
 * there and labelled.
 */
export function upgradeWorkers(
  ctx: ClusterContext,
  {
    controlPlanesUpgraded,
    workersJoined,
    nodes,
  }: { controlPlanesUpgraded: ControlPlanesUpgraded; workersJoined: HostSteps; nodes: HostSteps },
): WorkersUpgraded {
  const upgrades: HostSteps = new Map();
  const drain: HostSteps = new Map();
  const uncordon: HostSteps = new Map();
  const drainStep = (member: ClusterNode, action: "drain" | "uncordon", dependsOn: pulumi.Resource[]) =>
    ctx.step(
      ctx.first,
      `upgrade-${action}-${member.name}`,
      "k8s-drain.sh",
      {
        DRAIN_ACTION: action,
        NODE_NAME: member.name,
        KUBERNETES_VERSION: ctx.args.kubernetesVersion,
        API_ENDPOINT: ctx.apiEndpoint,
      },
      dependsOn,
    );
  const waves = workerUpgradeWaves(ctx.workers);
  for (const stream of [waves.osd, waves.other]) {
    let before: command.remote.Command[] = [controlPlanesUpgraded.last];
    for (const wave of stream) {
      const previous = before;
      before = wave.map((member) => {
        const drained = drainStep(member, "drain", [workersJoined.get(member.name)!, nodes.get(member.name)!, ...previous]);
        const upgraded = upgradeStep(ctx, member, "worker", [drained]);
        upgrades.set(member.name, upgraded);
        const back = drainStep(member, "uncordon", [upgraded]);
        drain.set(member.name, drained);
        uncordon.set(member.name, back);
        return back;
      });
    }
  }
  return { upgrades, drain, uncordon };
}
