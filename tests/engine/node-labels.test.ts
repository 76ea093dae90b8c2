/**
 * k8s-node.sh, the node step that keeps a pool's labels and taints in step, run as the first control plane
 * runs it: the real kubectl (tools/engine/build.sh, the pinned Kubernetes) against a real kube-apiserver
 * (tests/engine/apiserver.ts), on a Node object as a kubelet registers it. Its parameters are the ones the
 * program gives it (nodeLabelsAndTaints through the cluster's node step, here built from the same helpers).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { SCRIPTS_DIR } from "../../lib/host-step";
import { labelWords, MANAGED_LABELS_ANNOTATION, MANAGED_TAINTS_ANNOTATION, parseTaint, Taint, taintWords } from "../../lib/node-settings";
import { engineDir } from "../../tools/engine/pulumi";
import { ApiServer, startApiServer } from "./apiserver";

jest.setTimeout(180_000);

const NODE = "np-workers-0";
const KUBECTL = path.join(engineDir(), "bin", "kubectl");
let server: ApiServer;

beforeAll(async () => {
  // Never another kubectl from PATH (the script's PATH keeps /usr/bin for its other tools).
  if (!fs.existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: run bash tools/engine/build.sh`);
  server = await startApiServer();
  const created = await server.request("POST", "/api/v1/nodes", {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE, labels: { "kubernetes.io/hostname": NODE } },
  });
  expect(created.status).toBe(201);
});
afterAll(() => server?.stop());

const taints = (...texts: string[]) => texts.map((t) => parseTaint(t) as Taint);
/** The taint the API server's admission (TaintNodesByCondition) gives a new Node: not the step's, so it stays. */
const NOT_READY = "node.kubernetes.io/not-ready:NoSchedule";

/** Runs the node step with these labels and taints; returns its output. */
function nodeStep(labels: Record<string, string>, wanted: Taint[]): string {
  const bin = fs.mkdtempSync(path.join(server.kubeconfigPath, "..", "bin-"));
  fs.symlinkSync(KUBECTL, path.join(bin, "kubectl"));
  const result = spawnSync("bash", [path.join(SCRIPTS_DIR, "k8s-node.sh")], {
    encoding: "utf8",
    env: {
      // HOME: kubectl keeps its discovery cache there (not in the working tree).
      PATH: `${bin}:/usr/bin:/bin`,
      KUBECONFIG: server.kubeconfigPath,
      HOME: bin,
      NODE_NAME: NODE,
      NODE_ROLE: "worker",
      NODE_POOL: "workers",
      NODE_LABELS: labelWords(labels),
      NODE_TAINTS: taintWords(wanted),
      MANAGED_LABELS_ANNOTATION,
      MANAGED_TAINTS_ANNOTATION,
    },
  });
  fs.rmSync(bin, { recursive: true });
  if (result.status !== 0) throw new Error(`k8s-node.sh failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function node() {
  const res = await server.request("GET", `/api/v1/nodes/${NODE}`);
  expect(res.status).toBe(200);
  return res.json;
}
const taintTexts = (n: any) => (n.spec.taints ?? []).map((t: any) => `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`).sort();

it("uses the kubectl of the pinned Kubernetes", () => {
  const version = spawnSync(KUBECTL, ["version", "--client", "-o", "json"], {
    encoding: "utf8",
    env: { HOME: path.dirname(server.kubeconfigPath) },
  });
  expect(JSON.parse(version.stdout).clientVersion.gitVersion).toBe(server.version);
});

it("sets the pool label, the worker role, the pool's labels and taints, and records what it set", async () => {
  nodeStep(
    { "example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme" },
    taints("example.org/gpu=true:NoSchedule", "dedicated:PreferNoSchedule"),
  );
  const n = await node();
  expect(n.metadata.labels).toEqual({
    "kubernetes.io/hostname": NODE,
    "dare.io/pool": "workers",
    "node-role.kubernetes.io/worker": "",
    "example.org/gpu": "a100",
    "node.kubernetes.io/storage": "nvme",
  });
  expect(taintTexts(n)).toEqual(["dedicated:PreferNoSchedule", "example.org/gpu=true:NoSchedule", NOT_READY]);
  expect(n.metadata.annotations[MANAGED_LABELS_ANNOTATION]).toBe("example.org/gpu,node.kubernetes.io/storage");
  expect(n.metadata.annotations[MANAGED_TAINTS_ANNOTATION]).toBe("example.org/gpu=true:NoSchedule,dedicated:PreferNoSchedule");
});

it("a rerun writes nothing: the Node's resourceVersion stays", async () => {
  const before = (await node()).metadata.resourceVersion;
  nodeStep(
    { "example.org/gpu": "a100", "node.kubernetes.io/storage": "nvme" },
    taints("example.org/gpu=true:NoSchedule", "dedicated:PreferNoSchedule"),
  );
  expect((await node()).metadata.resourceVersion).toBe(before);
});

it("removes a label and a taint the configuration dropped, changes a taint's value, and leaves what someone else set", async () => {
  // An operator's own label and taint, set by hand.
  const n = await node();
  const patched = await server.request("PUT", `/api/v1/nodes/${NODE}`, {
    ...n,
    metadata: { ...n.metadata, labels: { ...n.metadata.labels, "example.org/owner": "ops" } },
    spec: { ...n.spec, taints: [...n.spec.taints, { key: "example.org/maintenance", effect: "NoSchedule" }] },
  });
  expect(patched.status).toBe(200);

  const out = nodeStep({ "example.org/gpu": "h100" }, taints("example.org/gpu=false:NoSchedule"));
  expect(out).toMatch(/label node.kubernetes.io\/storage no longer configured: removed/);
  expect(out).toMatch(/taint dedicated:PreferNoSchedule no longer configured: removed/);
  const after = await node();
  expect(after.metadata.labels).toEqual({
    "kubernetes.io/hostname": NODE,
    "dare.io/pool": "workers",
    "node-role.kubernetes.io/worker": "",
    "example.org/gpu": "h100",
    "example.org/owner": "ops",
  });
  expect(taintTexts(after)).toEqual(["example.org/gpu=false:NoSchedule", "example.org/maintenance:NoSchedule", NOT_READY]);
  expect(after.metadata.annotations[MANAGED_LABELS_ANNOTATION]).toBe("example.org/gpu");
  expect(after.metadata.annotations[MANAGED_TAINTS_ANNOTATION]).toBe("example.org/gpu=false:NoSchedule");
});

it("with nothing configured, removes only its own; a label it set and someone removed is not an error", async () => {
  const n = await node();
  const { ["example.org/gpu"]: _gone, ...labels } = n.metadata.labels;
  expect((await server.request("PUT", `/api/v1/nodes/${NODE}`, { ...n, metadata: { ...n.metadata, labels } })).status).toBe(200);
  nodeStep({}, []);
  const after = await node();
  expect(after.metadata.labels).toEqual({
    "kubernetes.io/hostname": NODE,
    "dare.io/pool": "workers",
    "node-role.kubernetes.io/worker": "",
    "example.org/owner": "ops",
  });
  expect(taintTexts(after)).toEqual(["example.org/maintenance:NoSchedule", NOT_READY]);
  expect(after.metadata.annotations[MANAGED_LABELS_ANNOTATION]).toBe("");
  expect(after.metadata.annotations[MANAGED_TAINTS_ANNOTATION]).toBe("");
  // And again: nothing to write.
  const before = after.metadata.resourceVersion;
  nodeStep({}, []);
  expect((await node()).metadata.resourceVersion).toBe(before);
});
