/**
 * The Kubernetes layer's host steps as the engine would run them on test hosts (existing hosts, some
 * with disks): each step's `create`/`delete` command and stdin with the real secret values, in the
 * program's dependency order, and the order Pulumi deletes them in (dependents first).
 */
import { HostMirrors, KubernetesCluster } from "../../components/cluster";
import { ClusterNode } from "../../lib/host-plan";
import { plainParametersOf } from "../../lib/host-step";
import { ApiVirtualIpSpec, DEFAULT_NETWORK } from "../../lib/config";
import { Infrastructure } from "../../components/infrastructure";
import { mockPrivateKey } from "../../tools/mock-keys";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { runMocked } from "../support/mocked";
import { sshExec, TestHost } from "./harness";

/**
 * `hostKey`: the host key the step's connection pins (`connection.hostKey`); `parameters`: every parameter as the
 * script sees it, `KEY='value'` lines (the plain ones from `create`, then stdin's).
 */
export interface Step {
  name: string;
  host: string;
  create: string;
  delete?: string;
  stdin: string;
  parameters: string;
  hostKey: string;
  urn: string;
  dependencies: string[];
  /** the jump host the step's connection goes through (`connection.proxy`), when it does */
  proxy?: { host: string; port: number; user: string; hostKey: string; privateKey: string };
}

/** `hostKey`: the key the program pins for the host (default: the test host's real one, as an operator configures it). */
export interface ProgramHost {
  name: string;
  controlPlane?: boolean;
  disks?: string[];
  hostKey?: string;
  viaBastion?: boolean;
}

/** A jump host for the program (dare:bastion): a test host, the key it presents, the key to log in with. */
export interface ProgramBastion {
  host: TestHost;
  hostKey?: string;
  privateKey?: string;
}

/** The program's SSH key for cluster `cluster`: Infrastructure names it `<cluster>-ssh`, the mocks derive it from that. */
export const sshKeyOf = (cluster: string) => mockPrivateKey(`${cluster}-ssh`, "ED25519");

/** Replaces Pulumi's secret markers by their values: what the provider would send. */
export function reveal(value: any): any {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    if (value[SPECIAL_SIG_KEY] === SECRET_SIG) return reveal(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

/**
 * The program for these hosts (control planes first), its host steps in dependency order. `apiVirtualIp`: the
 * API's virtual IP (dare:apiVirtualIp), in the test subnet; `bastion`: the jump host (dare:bastion); `mirrors` as dare:mirrors gives them.
 */
export async function program(
  cluster: string,
  testHosts: TestHost[],
  spec: ProgramHost[],
  version = "1.36.4",
  { apiVirtualIp, bastion, mirrors }: { apiVirtualIp?: ApiVirtualIpSpec; bastion?: ProgramBastion; mirrors?: HostMirrors } = {},
): Promise<Step[]> {
  const byName = (name: string) => testHosts.find((h) => h.name === name)!;
  const network = { ...DEFAULT_NETWORK, cidr: "10.213.0.0/24" };
  const nodes: ClusterNode[] = spec.map((h) => ({
    name: h.name,
    role: h.controlPlane ? "control-plane" : "worker",
    pool: h.controlPlane ? "control-plane" : "workers",
    disks: h.disks?.length ?? 0,
  }));
  const resources: RecordedResource[] = await runMocked(() => {
    const infra = new Infrastructure(cluster, {
      provider: "existing",
      clusterName: cluster,
      nodes: { controlPlane: { count: 1, flavor: "-" }, pools: [] },
      hosts: spec.map((h) => ({
        name: h.name,
        role: h.controlPlane ? "control-plane" : "workers",
        address: byName(h.name).address,
        privateAddress: byName(h.name).address,
        user: byName(h.name).user,
        port: 22,
        disks: h.disks ?? [],
        hostKey: h.hostKey ?? byName(h.name).hostPublicKey,
        // As the loader does: every host behind the jump host, unless it says otherwise.
        viaBastion: h.viaBastion ?? bastion !== undefined,
      })),
      network,
      adminCidrs: ["10.213.0.0/24"],
      image: "-",
      sshUser: "dare",
      apiLoadBalancer: false,
      apiVirtualIp,
      ...(bastion
        ? {
            bastion: {
              address: bastion.host.address,
              port: 22,
              user: bastion.host.user,
              hostKey: bastion.hostKey ?? bastion.host.hostPublicKey,
            },
            bastionPrivateKey: bastion.privateKey,
          }
        : {}),
    });
    new KubernetesCluster(cluster, {
      nodes,
      hosts: infra.hostByName,
      apiServer: infra.apiServer,
      bastion: infra.bastion,
      sshPrivateKey: infra.sshPrivateKey,
      bastionPrivateKey: infra.bastionPrivateKey,
      kubernetesVersion: version,
      network,
      clusterName: cluster,
      adminCidrs: ["10.213.0.0/24"],
      apiLoadBalancer: false,
      apiVirtualIp,
      mirrors,
    });
  });
  return creationOrder(stepsOf(resources, testHosts));
}

/** The host steps of a render, with the test host each runs on. */
export function stepsOf(resources: RecordedResource[], testHosts: TestHost[]): Step[] {
  return resources
    .filter((r) => r.type === "command:remote:Command")
    .map((r): Step => {
      const inputs = reveal(r.inputs);
      const host = testHosts.find((h) => h.address === inputs.connection.host)!;
      return {
        name: r.name,
        host: host.name,
        create: inputs.create,
        delete: inputs.delete,
        stdin: inputs.stdin,
        parameters: plainParametersOf(inputs.create) + inputs.stdin,
        hostKey: inputs.connection.hostKey,
        urn: r.urn,
        dependencies: r.dependencies,
        ...(inputs.connection.proxy ? { proxy: inputs.connection.proxy } : {}),
      };
    });
}

/** The order Pulumi creates these steps in: dependencies first (ties in declaration order). */
export function creationOrder(commands: Step[]): Step[] {
  const done = new Set<string>();
  const ordered: Step[] = [];
  while (ordered.length < commands.length) {
    const ready = commands.filter(
      (c) => !done.has(c.urn) && c.dependencies.every((d) => done.has(d) || !commands.some((o) => o.urn === d)),
    );
    if (ready.length === 0) throw new Error("dependency cycle among host steps");
    for (const c of ready) {
      done.add(c.urn);
      ordered.push(c);
    }
  }
  return ordered;
}

/** The order Pulumi deletes these steps in: dependents first (ties in declaration order). */
export function deletionOrder(steps: Step[]): Step[] {
  const left = [...steps];
  const order: Step[] = [];
  while (left.length > 0) {
    const next = left.find((s) => !left.some((o) => o !== s && o.dependencies.includes(s.urn)))!;
    order.push(next);
    left.splice(left.indexOf(next), 1);
  }
  return order;
}

/** The steps of `before` that `after` no longer declares: what `pulumi up` deletes. */
export const removedSteps = (before: Step[], after: Step[]) => before.filter((s) => !after.some((a) => a.name === s.name));

/**
 * Runs a step's create or delete command on its host over SSH, as the provider does: accepting only the host
 * key the step's connection pins; `extraEnv` lines are appended to its stdin.
 */
export async function runStep(
  cluster: string,
  testHosts: TestHost[],
  step: Step,
  which: "create" | "delete" = "create",
  extraEnv: Record<string, string> = {},
) {
  const host = testHosts.find((h) => h.name === step.host)!;
  const stdin =
    step.stdin +
    Object.entries(extraEnv)
      .map(([k, v]) => `${k}='${v}'\n`)
      .join("");
  // Through the jump host when the connection names one, as the provider's `proxy`: pinned, with its own key.
  const via = step.proxy && testHosts.find((h) => h.address === step.proxy!.host);
  if (step.proxy && !via) throw new Error(`step ${step.name}: its jump host ${step.proxy.host} is no test host`);
  return sshExec(host, sshKeyOf(cluster).privateKeyOpenssh, which === "create" ? step.create : step.delete!, {
    stdin,
    hostKey: step.hostKey,
    ...(via ? { via, viaHostKey: step.proxy!.hostKey, viaPrivateKeyPem: step.proxy!.privateKey } : {}),
  });
}
