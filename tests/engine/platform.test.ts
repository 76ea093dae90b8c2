/**
 * A real `pulumi up` of every layer against a real Kubernetes API server (issue 16): the hosts of
 * up.test.ts, and on the control plane the stand-in `kubeadm init` starts etcd and kube-apiserver at the
 * pinned versions with the PKI the program placed there (control-plane.ts), where the program's kubeconfig
 * points. Every CRD must be Established, every object the state holds stored in the API server, every Helm
 * release deployed from the chart mirror with the program's values; a second run changes nothing; one more
 * DARE replica changes exactly its Deployment and adds its PodDisruptionBudget.
 *
 * Nothing runs in the pods (no kubelet, no controller manager): the stack sets dare:skipAwait, and the API
 * server runs without the admission-webhook plugins (README, "The engine tier", says what that leaves unproven).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { startHosts, stopHosts, TestHost } from "../hosts/harness";
import { bootstrapStubs } from "../hosts/stubs";
import { ApiResponse } from "./apiserver";
import { CONTROL_PLANE_LOGS, installControlPlaneBinaries, withControlPlane } from "./control-plane";
import { requireEngine, serveChartMirror, workspace, Workspace } from "./support";
import { existingHostsStack, hostName } from "./stacks";

jest.setTimeout(3_600_000);

const RUN = `p${process.pid % 10000}`;
const NAMES = [0, 1, 2].map((i) => `${RUN}-${hostName(i)}`);

let hosts: TestHost[] = [];
let mirror: { url: string; close: () => Promise<void> };
let ws: Workspace;
let api: (method: string, p: string) => Promise<ApiResponse>;
/** Whether the first up succeeded: the later tests build on it, and say so rather than run for nothing. */
let upDone = false;
const requireUp = () => {
  if (!upDone) throw new Error("the first up failed: see the first test");
};

const upArgs = ["--yes", "--skip-preview"];
const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
  const start = Date.now();
  try {
    return await f();
  } finally {
    // The README's timings come from these lines.
    console.log(`${what}: ${Math.round((Date.now() - start) / 1000)} s`);
  }
};

/** A client of the API server with the program's own admin kubeconfig (stack output `kubeconfig`). */
async function programClient(): Promise<(method: string, p: string) => Promise<ApiResponse>> {
  const kubeconfig = YAML.parse(JSON.parse(await ws.ok(["stack", "output", "kubeconfig", "--show-secrets", "--json"])));
  const cluster = kubeconfig.clusters[0].cluster;
  const user = kubeconfig.users[0].user;
  const b64 = (s: string) => Buffer.from(s, "base64");
  const agent = new https.Agent({
    ca: b64(cluster["certificate-authority-data"]),
    cert: b64(user["client-certificate-data"]),
    key: b64(user["client-key-data"]),
  });
  return (method, p) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        `${cluster.server}${p}`,
        { method, agent, headers: { accept: "application/json" }, timeout: 60_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown = text;
            try {
              json = JSON.parse(text);
            } catch {
              /* not JSON */
            }
            resolve({ status: res.statusCode ?? 0, json, warnings: [] });
          });
        },
      );
      req.on("error", reject);
      req.end();
    });
}

interface StateResource {
  type: string;
  urn: string;
  outputs?: Record<string, any>;
}
const stateResources = async (): Promise<StateResource[]> =>
  (JSON.parse(await ws.ok(["stack", "export", "--show-secrets"])).deployment.resources ?? []) as StateResource[];

/** Kind -> its plural and scope, for every group version the server serves (discovery). */
async function discovery(): Promise<Map<string, { plural: string; namespaced: boolean }>> {
  const found = new Map<string, { plural: string; namespaced: boolean }>();
  const groups = (await api("GET", "/apis")).json.groups as Array<{ versions: Array<{ groupVersion: string }> }>;
  for (const gv of ["v1", ...groups.flatMap((g) => g.versions.map((v) => v.groupVersion))]) {
    const list = (await api("GET", gv === "v1" ? "/api/v1" : `/apis/${gv}`)).json;
    for (const r of list.resources ?? []) {
      if (!r.name.includes("/")) found.set(`${gv}/${r.kind}`, { plural: r.name, namespaced: r.namespaced });
    }
  }
  return found;
}

/** `<op> <type>::<name>` of every step that changes something (the URN's type without its parents'). */
const changed = (steps: Array<{ op: string; urn: string }>) =>
  steps
    .filter((s) => s.op !== "same" && !s.urn.includes("pulumi:pulumi:Stack"))
    .map((s) => {
      const [type, name] = s.urn.split("::").slice(-2);
      return `${s.op} ${type.split("$").pop()}::${name}`;
    })
    .sort();

beforeAll(async () => {
  requireEngine();
  mirror = await serveChartMirror();
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-engine-key-"));
  const keyFile = path.join(keyDir, "dare-deployer");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dare-deployer", "-f", keyFile]);
  hosts = await startHosts(NAMES, {
    authorizedKey: fs.readFileSync(`${keyFile}.pub`, "utf8").trim(),
    stubs: withControlPlane(bootstrapStubs(NAMES)),
  });
  installControlPlaneBinaries(hosts[0]);
  ws = await workspace(
    "platform",
    existingHostsStack({
      hosts: hosts.map((h) => h.address),
      hostKeys: hosts.map((h) => h.hostPublicKey),
      chartMirror: mirror.url,
      skipAwait: true,
    }),
  );
  await ws.ok(["config", "set", "--secret", "sshPrivateKey"], { stdin: fs.readFileSync(keyFile, "utf8") });
  fs.rmSync(keyDir, { recursive: true, force: true });
});
afterAll(async () => {
  // No `pulumi destroy`: the provider deletes in the foreground, and without kube-controller-manager's
  // garbage collector and namespace controller no object with dependents, and no namespace, ever goes
  // (each delete would wait out its timeout). Stopping the hosts stops the API server with them.
  ws?.remove();
  await stopHosts(hosts);
  await mirror?.close();
});

it("first up: every layer is applied to the API server", async () => {
  const result = await timed("first up", () => ws.pulumi(["up", ...upArgs], { timeoutMs: 3_000_000 }));
  if (result.code !== 0) {
    const log = await hosts[0].exec(`tail -n 40 ${CONTROL_PLANE_LOGS}/kube-apiserver.log`);
    throw new Error(
      `pulumi up exited ${result.code}:\n${result.stdout.slice(-20_000)}\n${result.stderr.slice(-5_000)}\nkube-apiserver:\n${log.stdout}`,
    );
  }
  upDone = true;
  api = await programClient();
  expect(String((await api("GET", "/version")).json.gitVersion)).toMatch(/^v1\.36\./);

  // Every CRD established, those of every layer among them.
  const crds = (await api("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).json.items as any[];
  const notEstablished = crds.filter(
    (c) => !(c.status?.conditions ?? []).some((k: any) => k.type === "Established" && k.status === "True"),
  );
  expect(notEstablished.map((c) => c.metadata.name)).toEqual([]);
  const names = crds.map((c) => c.metadata.name);
  for (const crd of [
    "ingressroutes.traefik.io",
    "cephclusters.ceph.rook.io",
    "certificates.cert-manager.io",
    "clusters.postgresql.cnpg.io",
    "prometheusrules.monitoring.coreos.com",
    "mpijobs.kubeflow.org",
  ])
    expect(names).toContain(crd);

  // Every Kubernetes object of the state stored in the API server.
  const resources = await stateResources();
  const kinds = await discovery();
  const missing: string[] = [];
  let objects = 0;
  for (const r of resources) {
    const o = r.outputs;
    if (!r.type.startsWith("kubernetes:") || !o?.apiVersion || !o?.kind || !o?.metadata?.name) continue;
    const kind = kinds.get(`${o.apiVersion}/${o.kind}`);
    if (!kind) {
      missing.push(`${o.apiVersion} ${o.kind} (not served)`);
      continue;
    }
    const base = o.apiVersion === "v1" ? "/api/v1" : `/apis/${o.apiVersion}`;
    const ns = kind.namespaced ? `/namespaces/${o.metadata.namespace ?? "default"}` : "";
    const got = await api("GET", `${base}${ns}/${kind.plural}/${o.metadata.name}`);
    objects += 1;
    if (got.status !== 200) missing.push(`${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}: ${got.status}`);
  }
  expect(missing).toEqual([]);
  expect(objects).toBeGreaterThan(100);

  // Every Helm release deployed, as Helm records it in its release Secret.
  const releases = resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release").map((r) => r.outputs!);
  expect(releases.length).toBeGreaterThan(5);
  const secrets = (await api("GET", "/api/v1/secrets?labelSelector=owner%3Dhelm")).json.items as any[];
  const deployed = secrets
    .filter((s) => s.metadata.labels.status === "deployed")
    .map((s) => `${s.metadata.namespace}/${s.metadata.labels.name}`)
    .sort();
  expect(deployed).toEqual(releases.map((r) => `${r.namespace}/${r.name}`).sort());
  for (const r of releases) expect(r.status?.status).toBe("deployed");
});

it("second up: no changes (server-side defaults cause no diff)", async () => {
  requireUp();
  const result = await timed("second preview", () => ws.pulumi(["preview", "--expect-no-changes", "--diff"]));
  expect({ code: result.code, output: result.code === 0 ? "" : result.stdout.slice(-20_000) }).toEqual({ code: 0, output: "" });
});

it("one more DARE replica: its Deployment updated and its PodDisruptionBudget added, nothing else", async () => {
  requireUp();
  await ws.ok(["config", "set", "--path", "services.d4p-registry.replicas", "2"]);
  const plan = changed((JSON.parse(await ws.ok(["preview", "--json"])) as { steps: Array<{ op: string; urn: string }> }).steps);
  expect(plan).toEqual([
    "create kubernetes:policy/v1:PodDisruptionBudget::dare-d4p-registry",
    "update kubernetes:apps/v1:Deployment::dare-d4p-registry",
  ]);
  await timed("replica up", () => ws.ok(["up", ...upArgs]));
  // The API server holds both as the state says.
  const state = await stateResources();
  const outputsOf = (type: string) => state.find((r) => r.type === type && r.urn.endsWith("::dare-d4p-registry"))!.outputs!;
  const deployment = outputsOf("kubernetes:apps/v1:Deployment").metadata;
  const pdb = outputsOf("kubernetes:policy/v1:PodDisruptionBudget").metadata;
  expect((await api("GET", `/apis/apps/v1/namespaces/${deployment.namespace}/deployments/${deployment.name}`)).json.spec.replicas).toBe(2);
  expect((await api("GET", `/apis/policy/v1/namespaces/${pdb.namespace}/poddisruptionbudgets/${pdb.name}`)).status).toBe(200);
});
