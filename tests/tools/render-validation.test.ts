/**
 * Renders both stacks with the render CLI, as an operator would, and checks the whole output, every
 * layer's: Helm values keys against the shared charts, chart and CRD versions against ../shared, and the
 * platform-wide rules (no NodePort, one default StorageClass and IngressClass, PSA labels on every
 * namespace, default-deny ingress where DARE workloads run). Whether the objects and values are valid
 * is decided by the real API server and helm in the engine tier (tests/engine/helm-template.test.ts).
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { CONFIG_KEYS } from "../../lib/config-keys";
import { NAMESPACES } from "../../lib/namespaces";
import { DEFAULT_DENY_POLICY } from "../../lib/network-policies";
import { crdVersions, sharedDir, validateRenderDir } from "../../tools/validate";
import { readTree, ROOT } from "../support/render";

const STACKS = ["testbed", "production"] as const;
type Stack = (typeof STACKS)[number];

interface Rendered {
  dir: string;
  objects: any[];
  releases: Array<{ file: string; chart: string; version: string; repository: string; namespace: string; values: any }>;
}

/** The render CLI in a child process; both stacks run at once. */
function renderAsync(stack: Stack, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [require.resolve("ts-node/dist/bin.js"), "--transpile-only", path.join(ROOT, "tools", "render.ts"), "--stack", stack, "--out", out],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`render --stack ${stack} exited ${code}:\n${stderr}`))));
  });
}

function load(dir: string): Rendered {
  const files = readTree(dir);
  const objects: any[] = [];
  const releases: Rendered["releases"] = [];
  for (const [file, text] of files) {
    if (file.startsWith(`kubernetes${path.sep}`)) objects.push(...YAML.parseAllDocuments(text).map((d) => d.toJS()));
    if (file.startsWith(`helm${path.sep}`)) releases.push({ file, ...YAML.parse(text) });
  }
  return { dir, objects, releases };
}

/** Every [key, value] pair anywhere in a value tree, with the path to it. */
function* walk(value: unknown, at: string[] = []): Generator<{ at: string[]; key: string; value: unknown }> {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) yield* walk(v, [...at, String(i)]);
  } else if (value && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) {
      yield { at, key, value: v };
      yield* walk(v, [...at, key]);
    }
  }
}

/** Chart -> the shared CRD project it installs, and which chart field names the CRDs' version. */
const CHART_CRDS: Record<string, { project: string; from: "version" | "appVersion" }> = {
  "tigera-operator": { project: "calico", from: "version" },
  "rook-ceph": { project: "rook", from: "version" },
  "cert-manager": { project: "cert-manager", from: "version" },
  traefik: { project: "traefik", from: "version" },
  "kube-prometheus-stack": { project: "prometheus-operator", from: "appVersion" },
  "cloudnative-pg": { project: "cloudnative-pg", from: "appVersion" },
};
const withV = (v: string) => (v.startsWith("v") ? v : `v${v}`);

const rendered = {} as Record<Stack, Rendered>;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dare-render-validation-"));

beforeAll(async () => {
  await Promise.all(STACKS.map((s) => renderAsync(s, path.join(tmp, s))));
  for (const s of STACKS) rendered[s] = load(path.join(tmp, s));
}, 240_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each(STACKS)("render of %s", (stack) => {
  const r = () => rendered[stack];

  it("is well formed: every object has apiVersion and kind, every Helm value is a key of its chart (schemas: tests/engine/helm-template.test.ts)", async () => {
    expect(r().objects.length).toBeGreaterThan(0);
    expect(r().releases.length).toBeGreaterThan(0);
    expect(await validateRenderDir(r().dir)).toEqual([]);
  }, 120_000);

  it("installs charts and CRDs at the versions in ../shared", () => {
    const crds = crdVersions();
    for (const release of r().releases) {
      const chartYaml = path.join(sharedDir(), "charts", release.chart, release.version, "Chart.yaml");
      expect(fs.existsSync(chartYaml)).toBe(true);
      expect(release.repository).toMatch(/^https:\/\//);
      const crd = CHART_CRDS[release.chart];
      if (crd) {
        const chart = YAML.parse(fs.readFileSync(chartYaml, "utf8"));
        // Some charts' Chart.yaml in git carries a placeholder; the folder name is the published version.
        const version = crd.from === "version" ? release.version : String(chart.appVersion);
        expect(`${release.chart} CRDs ${crds[crd.project]}`).toBe(`${release.chart} CRDs ${withV(version)}`);
      }
    }
  });

  it("registers every kubelet with the external cloud provider wherever OCCM runs, and passes client addresses through its load balancer", () => {
    const occm = r().releases.some((x) => x.chart === "openstack-cloud-controller-manager");
    const hostsDir = path.join(r().dir, "hosts");
    const kubeadmFiles = fs.readdirSync(hostsDir).flatMap((host) =>
      fs
        .readdirSync(path.join(hostsDir, host))
        .filter((f) => /^\d+-(init|join)\.env$/.test(f))
        .map((f) => path.join(hostsDir, host, f)),
    );
    expect(kubeadmFiles.length).toBeGreaterThan(1);
    for (const file of kubeadmFiles) {
      const config = /^KUBEADM_CONFIG='([^']*)'$/m.exec(fs.readFileSync(file, "utf8"))![1];
      const registration = YAML.parseAllDocuments(config)
        .map((d) => d.toJS())
        .find((d) => d.nodeRegistration).nodeRegistration;
      expect([file, registration.kubeletExtraArgs.some((a: any) => a.name === "cloud-provider" && a.value === "external")]).toEqual([
        file,
        occm,
      ]);
    }
    const traefik = r().releases.find((x) => x.chart === "traefik")!;
    if (traefik.values.service?.spec?.type === "LoadBalancer") {
      expect(traefik.values.service.annotations["loadbalancer.openstack.org/proxy-protocol"]).toBe("true");
      // Believed from the node subnet, where the load balancer's addresses are.
      const nodeCidr =
        YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config["dare:network"]?.cidr ??
        CONFIG_KEYS.network.default.cidr;
      for (const entryPoint of ["web", "websecure"]) expect(traefik.values.ports[entryPoint].proxyProtocol.trustedIPs).toContain(nodeCidr);
    }
  });

  it("has no Service of type NodePort, in objects or chart values", () => {
    const services = r().objects.filter((o) => o.kind === "Service");
    expect(services.filter((s) => s.spec?.type === "NodePort").map((s) => s.metadata.name)).toEqual([]);
    for (const release of r().releases) {
      const nodePorts = [...walk(release.values)].filter((e) => e.key === "type" && /^nodeport$/i.test(String(e.value)));
      expect(nodePorts.map((e) => `${release.chart}: ${[...e.at, e.key].join(".")}`)).toEqual([]);
    }
  });

  it("has exactly one default StorageClass and one default IngressClass", () => {
    const annotated = (kind: string, annotation: string) =>
      r()
        .objects.filter((o) => o.kind === kind && o.metadata?.annotations?.[annotation] === "true")
        .map((o) => o.metadata.name);
    const fromValues = (flag: string, parentKey: string) =>
      r().releases.flatMap((release) =>
        [...walk(release.values)]
          .filter((e) => e.key === flag && e.value === true && e.at[e.at.length - 1] === parentKey)
          .map(() => release.chart),
      );
    const storage = [
      ...annotated("StorageClass", "storageclass.kubernetes.io/is-default-class"),
      ...fromValues("isDefault", "storageClass"),
    ];
    const ingress = [
      ...annotated("IngressClass", "ingressclass.kubernetes.io/is-default-class"),
      ...fromValues("isDefaultClass", "ingressClass"),
    ];
    expect(storage).toHaveLength(1);
    expect(ingress).toHaveLength(1);
  });

  it("labels every namespace with its Pod Security level, and every namespaced object's namespace exists", () => {
    const namespaces = r().objects.filter((o) => o.kind === "Namespace");
    const levels = ["privileged", "baseline", "restricted"];
    for (const ns of namespaces) {
      const labels = ns.metadata.labels ?? {};
      for (const mode of ["enforce", "audit", "warn"])
        expect([ns.metadata.name, levels.includes(labels[`pod-security.kubernetes.io/${mode}`])]).toEqual([ns.metadata.name, true]);
    }
    const created = new Set([...namespaces.map((n) => n.metadata.name), "kube-system", "default"]);
    const used = [...r().objects.map((o) => o.metadata?.namespace), ...r().releases.map((x) => x.namespace)].filter(Boolean);
    expect([...new Set(used)].filter((ns) => !created.has(ns))).toEqual([]);
  });

  it("denies incoming traffic by default in every namespace that runs DARE workloads or Harbor", () => {
    const protectedNames = new Set<string>([NAMESPACES.dare.name, NAMESPACES.jupyterhub.name, NAMESPACES.harbor.name]);
    const present = r()
      .objects.filter((o) => o.kind === "Namespace" && protectedNames.has(o.metadata.name))
      .map((o) => o.metadata.name);
    for (const ns of present) {
      const denies = r().objects.filter(
        (o) =>
          o.kind === "NetworkPolicy" &&
          o.metadata.namespace === ns &&
          Object.keys(o.spec.podSelector ?? {}).length === 0 &&
          o.spec.policyTypes?.includes("Ingress") &&
          !o.spec.ingress?.length,
      );
      expect([ns, denies.length > 0]).toEqual([ns, true]);
    }
  });
});

it("turns on Harbor for production only, behind the ingress with the production issuer", () => {
  const harbor = (s: Stack) => rendered[s].releases.find((x) => x.chart === "harbor");
  expect(harbor("testbed")).toBeUndefined();
  expect(
    rendered.production.objects
      .filter((o) => o.kind === "NetworkPolicy" && o.metadata.namespace === harbor("production")!.namespace)
      .map((o) => o.metadata.name),
  ).toContain(DEFAULT_DENY_POLICY);
  expect(harbor("production")!.values.expose.ingress.annotations["cert-manager.io/cluster-issuer"]).toBe("letsencrypt-prod");
  const issuers = (s: Stack) => JSON.parse(fs.readFileSync(path.join(rendered[s].dir, "outputs.json"), "utf8")).clusterIssuer;
  expect([issuers("testbed"), issuers("production")]).toEqual(["letsencrypt-staging", "letsencrypt-prod"]);
});
