/**
 * Secrets encrypted at rest, for real: the kube-apiserver v1.36.4 and etcd that tools/engine/build.sh builds,
 * started with the API server flags the program renders into kubeadm's ClusterConfiguration (encryption,
 * automatic reload, audit policy and log rotation, profiling off; paths moved into a temporary folder) and
 * with the EncryptionConfiguration and audit policy the program sends to its control planes. A Secret
 * created through the API is read back raw from etcd: it must carry the `k8s:enc:secretbox:v1:<key>:`
 * prefix and not its value. Then the documented rotation, step by step (docs/kubernetes.md): the API server
 * re-reads the file by itself, a Secret rewritten with `replace` moves to the new key, and after the old
 * key is dropped every Secret still reads.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { KubernetesCluster } from "../../components/cluster";
import { plainParametersOf } from "../../lib/host-step";
import { DEFAULT_NETWORK, EXAMPLE_HOST_KEY } from "../../lib/config";
import { Host } from "../../lib/hosts";
import { engineDir } from "../../tools/engine/pulumi";
import { RecordedResource, SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { runMocked } from "../support/mocked";
import { ApiServer, startApiServer, waitFor } from "./apiserver";

jest.setTimeout(420_000);

const plain = (v: any) => (v && v[SPECIAL_SIG_KEY] === SECRET_SIG ? v.value : v);

/** A step's parameters as its script sees them (the plain ones in `create`, the secret ones on stdin; sourced by bash). */
function stepEnv(r: RecordedResource): Record<string, string> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dare-env-")), "env");
  fs.writeFileSync(file, plainParametersOf((r.inputs as any).create) + (plain((r.inputs as any).stdin) as string));
  const out = spawnSync("bash", ["--norc", "--noprofile", "-c", `set -a; . "$1"; set +a; env -0`, "bash", file], {
    env: {},
    encoding: "utf8",
  }).stdout;
  fs.rmSync(path.dirname(file), { recursive: true });
  return Object.fromEntries(
    out
      .split("\0")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** What the program sends the first control plane for `keys`: the pki step's files and kubeadm's ClusterConfiguration. */
async function rendered(keys: string[]) {
  const host: Host = {
    name: "cp-0",
    role: "control-plane",
    pool: "control-plane",
    address: "10.0.0.10",
    privateAddress: "10.0.0.10",
    sshUser: "ubuntu",
    port: 22,
    disks: [],
    viaBastion: false,
    hostKey: EXAMPLE_HOST_KEY,
  };
  const resources = await runMocked(() => {
    new KubernetesCluster("enc", {
      nodes: [{ name: "cp-0", role: "control-plane", pool: "control-plane" }],
      hosts: { "cp-0": host },
      apiServer: { privateAddress: "10.0.0.10", publicAddress: "203.0.113.10", port: 6443 },
      bastion: undefined,
      sshPrivateKey: "k",
      kubernetesVersion: "1.36.4",
      network: DEFAULT_NETWORK,
      clusterName: "enc",
      adminCidrs: ["192.0.2.0/24"],
      apiLoadBalancer: false,
      secretsEncryptionKeys: keys,
    });
  });
  const pki = stepEnv(resources.find((r) => r.name === "k8s-cp-0-pki")!);
  const init = stepEnv(resources.find((r) => r.name === "k8s-cp-0-init")!);
  const cluster = YAML.parseAllDocuments(init.KUBEADM_CONFIG)
    .map((d) => d.toJS())
    .find((d) => d.kind === "ClusterConfiguration");
  return {
    encryption: pki.ENCRYPTION_CONFIG,
    audit: pki.AUDIT_POLICY,
    apiServerArgs: cluster.apiServer.extraArgs as Array<{ name: string; value: string }>,
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-encryption-"));
const moved = (p: string) => path.join(dir, p.replace(/^\//, ""));
let api: ApiServer;

function etcdRaw(key: string): Buffer {
  const r = spawnSync(path.join(engineDir(), "bin", "etcdctl"), [`--endpoints=${api.etcdUrl}`, "get", key, "--print-value-only"], {
    env: { ETCDCTL_API: "3" },
  });
  if (r.status !== 0) throw new Error(`etcdctl get ${key}: ${r.stderr}`);
  return r.stdout;
}
const secretKey = (name: string) => `/registry/secrets/default/${name}`;
const prefixOf = (name: string) => /^k8s:enc:[a-z]+:v1:[a-z0-9-]+:/.exec(etcdRaw(secretKey(name)).toString("latin1"))?.[0];
const value = "dare-plain-text-marker-0123456789";

async function createSecret(name: string) {
  const created = await api.request("POST", "/api/v1/namespaces/default/secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    stringData: { password: value },
  });
  expect(created.status).toBe(201);
}
async function readSecret(name: string): Promise<string> {
  const got = await api.request("GET", `/api/v1/namespaces/default/secrets/${name}`);
  expect(got.status).toBe(200);
  return Buffer.from(got.json.data.password, "base64").toString();
}
/** What `kubectl get secrets -A -o json | kubectl replace -f -` does: every Secret PUT as it is. */
async function rewriteAll(): Promise<string[]> {
  const list = await api.request("GET", "/api/v1/secrets");
  expect(list.status).toBe(200);
  for (const item of list.json.items) {
    const put = await api.request("PUT", `/api/v1/namespaces/${item.metadata.namespace}/secrets/${item.metadata.name}`, {
      apiVersion: "v1",
      kind: "Secret",
      ...item,
    });
    expect([item.metadata.name, put.status]).toEqual([item.metadata.name, 200]);
  }
  return list.json.items.filter((i: any) => i.metadata.namespace === "default").map((i: any) => i.metadata.name);
}
/** Places the program's configuration for `keys` and waits until the API server encrypts new Secrets with `writer`. */
async function rotateTo(keys: string[], writer: string, probe: string) {
  fs.writeFileSync(moved("/etc/kubernetes/enc/encryption.yaml"), (await rendered(keys)).encryption, { mode: 0o600 });
  let n = 0;
  await waitFor(
    `new Secrets encrypted with ${writer}`,
    async () => {
      const name = `${probe}-${n++}`;
      await createSecret(name);
      return prefixOf(name) === `k8s:enc:secretbox:v1:${writer}:` ? true : undefined;
    },
    150_000,
  );
}

beforeAll(async () => {
  const first = await rendered(["key1"]);
  const args = Object.fromEntries(first.apiServerArgs.map((a) => [a.name, a.value]));
  for (const file of [args["encryption-provider-config"], args["audit-policy-file"], args["audit-log-path"]]) {
    fs.mkdirSync(path.dirname(moved(file)), { recursive: true, mode: 0o700 });
  }
  fs.writeFileSync(moved(args["encryption-provider-config"]), first.encryption, { mode: 0o600 });
  fs.writeFileSync(moved(args["audit-policy-file"]), first.audit, { mode: 0o600 });
  // The kubelets' CA (no kubelet runs here): a throwaway one where the flag points, moved like every path.
  const kubeletCa = moved(args["kubelet-certificate-authority"]);
  fs.mkdirSync(path.dirname(kubeletCa), { recursive: true });
  const made = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      path.join(dir, "kubelet-ca.key"),
      "-out",
      kubeletCa,
      "-subj",
      "/CN=kubernetes",
      "-days",
      "1",
    ],
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(made.stderr);
  // The program's flags, as kubeadm passes them, with file paths moved under the test's folder.
  api = await startApiServer({
    extraArgs: first.apiServerArgs.map(({ name, value: v }) => `--${name}=${v.startsWith("/") ? moved(v) : v}`),
  });
});

afterAll(async () => {
  await api?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("stores a Secret in etcd encrypted with the program's secretbox key, never as its value", async () => {
  await createSecret("first");
  const raw = etcdRaw(secretKey("first"));
  expect(prefixOf("first")).toBe("k8s:enc:secretbox:v1:key1:");
  expect(raw.includes(Buffer.from(value))).toBe(false);
  expect(raw.includes(Buffer.from(Buffer.from(value).toString("base64")))).toBe(false);
  expect(await readSecret("first")).toBe(value);
  // A ConfigMap is not in the configuration: stored as it is (the check above can fail).
  await api.request("POST", "/api/v1/namespaces/default/configmaps", {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "plain" },
    data: { v: value },
  });
  expect(etcdRaw("/registry/configmaps/default/plain").includes(Buffer.from(value))).toBe(true);
});

it("logs who touched the Secret at Metadata level, without its content, in the rotated audit log", async () => {
  const log = moved("/var/log/kubernetes/audit/audit.log");
  const events = await waitFor("the Secret's audit events", async () => {
    if (!fs.existsSync(log)) return undefined;
    const found = fs
      .readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((e) => e.objectRef?.resource === "secrets" && e.objectRef?.name === "first");
    return found.length >= 2 ? found : undefined;
  });
  expect(new Set(events.map((e: any) => e.verb))).toEqual(new Set(["create", "get"]));
  for (const e of events) {
    expect(e.level).toBe("Metadata");
    expect(e.requestObject).toBeUndefined();
    expect(e.responseObject).toBeUndefined();
    expect(e.user.username).toBeTruthy();
  }
  expect(fs.readFileSync(log, "utf8")).not.toContain(value);
  expect(fs.readFileSync(log, "utf8")).not.toContain(Buffer.from(value).toString("base64"));
});

it("rotates the key as docs/kubernetes.md says, with no API server restart and no Secret lost", async () => {
  // 1. The new key only decrypts: writes still use key1.
  fs.writeFileSync(moved("/etc/kubernetes/enc/encryption.yaml"), (await rendered(["key1", "key2"])).encryption, { mode: 0o600 });
  // 2. The new key first: new writes use it (the API server re-reads the file itself).
  await rotateTo(["key2", "key1"], "key2", "probe-a");
  expect(prefixOf("first")).toBe("k8s:enc:secretbox:v1:key1:");
  // 3. Every Secret rewritten: each moves to key2.
  const names = await rewriteAll();
  expect(names).toContain("first");
  for (const name of names) expect([name, prefixOf(name)]).toEqual([name, "k8s:enc:secretbox:v1:key2:"]);
  // 4. key1 dropped: everything still reads.
  await rotateTo(["key2"], "key2", "probe-b");
  for (const name of names) expect([name, await readSecret(name)]).toEqual([name, value]);
});
