/**
 * Every Helm release and every Kubernetes object of both stacks' renders, checked by the real components
 * instead of validators written here:
 *
 *  - each release of the render (`helm/<release>.yaml`) is rendered by the real `helm template` (built by
 *    tools/engine/build.sh at the Helm the Kubernetes provider embeds) with the release's name, namespace,
 *    chart version from ../shared/chart-mirror served on 127.0.0.1, the program's values, `--kube-version`
 *    the pinned Kubernetes and `--api-versions` what the API server below serves (as `helm install` reads
 *    it from discovery), again after each round of new CRDs;
 *  - the CRDs go to a real kube-apiserver (tests/engine/apiserver.ts) for real: the charts' (templated ones,
 *    their `crds/` folders as Helm installs them, and for the charts of CHART_CRDS the files the program
 *    applies itself, read through the mirror as the program reads them), the program's own
 *    (components/dare-services/crds), and from ../shared/crds only those of kinds no chart or program file defines;
 *  - then the render's namespaces are created for real (only those: a release or object in a namespace
 *    the program does not create is refused), and every other object is sent with `dryRun=All`: a chart's
 *    objects as Helm sends them (create, the release namespace where the chart names none), the program's
 *    own objects by server-side apply as the Pulumi provider sends them; both with `fieldValidation=Strict`.
 *
 * Any rejected object fails the stack's test with the server's message, and so does a Pod Security
 * "would violate" warning (the namespaces warn at the level they enforce, so such a workload's Pods would
 * be refused). Each stack gets its own API server, so nothing one stack creates hides what another lacks.
 * Webhook admission has no backends here: the server runs without the two webhook admission plugins
 * (README, "The engine tier", says what that leaves unchecked). Secret contents are Pulumi secrets, which
 * the render writes as "[secret]": a Secret redacted whole gets empty data (plus the keys its type
 * requires), so its contents are not checked.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { defaultOf } from "../../lib/config-keys";
import { CHART_CRDS, chartCrdFiles } from "../../lib/helm";
import { MPI_OPERATOR_CRD_FILE, MPI_OPERATOR_CRD_SOURCE } from "../../components/dare-services/mpi-operator";
import { engineDir } from "../../tools/engine/pulumi";
import { sharedDir } from "../../tools/validate/shared";
import { readTree, render, ROOT } from "../support/render";
import { ApiServer, startApiServer, waitFor } from "./apiserver";
import { serveChartMirror } from "./support";

jest.setTimeout(900_000);

const STACKS = ["testbed", "production"] as const;
const SECRET = "[secret]";
const FIELD_MANAGER = "dare-engine-test";

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; generateName?: string; namespace?: string; [k: string]: any };
  [k: string]: any;
};
interface Release {
  name: string;
  chart: string;
  version: string;
  namespace: string;
  values: Record<string, unknown>;
}

let mirror: { url: string; close: () => Promise<void> };
const work = fs.mkdtempSync(path.join(os.tmpdir(), "dare-helm-template-"));

beforeAll(async () => {
  mirror = await serveChartMirror();
});
afterAll(async () => {
  await mirror?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The render's Kubernetes objects and Helm releases (the release is named by its file). */
function loadRender(dir: string): { objects: K8sObject[]; releases: Release[] } {
  const objects: K8sObject[] = [];
  const releases: Release[] = [];
  for (const [file, text] of readTree(dir)) {
    if (file.startsWith(`kubernetes${path.sep}`))
      objects.push(
        ...YAML.parseAllDocuments(text)
          .map((d) => d.toJS() as K8sObject)
          .filter(Boolean),
      );
    if (file.startsWith(`helm${path.sep}`)) releases.push({ name: path.basename(file, ".yaml"), ...YAML.parse(text) });
  }
  return { objects, releases };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(command)} ${args.slice(0, 3).join(" ")}: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** `helm template` of one release; its documents, CRDs included unless the program applies them itself. */
async function helmTemplate(release: Release, kubeVersion: string, apiVersions: string[]): Promise<K8sObject[]> {
  const helm = path.join(engineDir(), "bin", "helm");
  const home = path.join(work, "helm-home");
  const valuesFile = path.join(work, `values-${release.name}-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(valuesFile, JSON.stringify(release.values ?? {}));
  // Helm's own folders in the test's temporary folder: nothing read from or left in ~/.cache/helm.
  const env = {
    ...process.env,
    HELM_CACHE_HOME: path.join(home, "cache"),
    HELM_CONFIG_HOME: path.join(home, "config"),
    HELM_DATA_HOME: path.join(home, "data"),
  };
  const out = await run(
    helm,
    [
      "template",
      release.name,
      release.chart,
      "--repo",
      mirror.url,
      "--version",
      release.version,
      "--namespace",
      release.namespace,
      "--values",
      valuesFile,
      "--kube-version",
      kubeVersion,
      ...apiVersions.flatMap((v) => ["--api-versions", v]),
      // As lib/helm.ts installs: skipCrds where the program applies the chart's CRD files itself.
      CHART_CRDS[release.chart] ? "--skip-crds" : "--include-crds",
      // Test hooks run only with `helm test`, which nothing runs.
      "--skip-tests",
    ],
    env,
  );
  fs.rmSync(valuesFile);
  return YAML.parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o && typeof o === "object");
}

const isCrd = (o: K8sObject) => o.kind === "CustomResourceDefinition" && o.apiVersion.startsWith("apiextensions.k8s.io/");
const label = (o: K8sObject) =>
  `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name ?? o.metadata?.generateName ?? "?"}`;

function yamlDocs(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o && typeof o === "object");
}

/** The CRD files the program applies for a chart of CHART_CRDS, read from the served mirror as it reads them. */
async function programChartCrds(release: Release): Promise<K8sObject[]> {
  const crds: K8sObject[] = [];
  for (const { url } of chartCrdFiles({ chart: release.chart, version: release.version, repo: "" }, mirror.url)) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    crds.push(...yamlDocs(await res.text()));
  }
  return crds;
}

function filesCrds(dir: string): K8sObject[] {
  const out: K8sObject[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) out.push(...yamlDocs(fs.readFileSync(p, "utf8")).filter(isCrd));
    }
  };
  walk(dir);
  return out;
}

/** `group/version` and `group/version/Kind` of every served version of the CRDs, as `--api-versions` takes them. */
function crdApiVersions(crds: K8sObject[]): string[] {
  const out = new Set<string>();
  for (const crd of crds) {
    for (const v of crd.spec?.versions ?? []) {
      if (v.served === false) continue;
      out.add(`${crd.spec.group}/${v.name}`);
      out.add(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`);
    }
  }
  return [...out].sort();
}

/** apiVersion + kind -> the resource's plural and scope, from the API server's discovery. */
async function discovery(server: ApiServer): Promise<Resources> {
  const map: Resources = new Map();
  const groupVersions = ["v1"];
  const apis = await server.request("GET", "/apis");
  for (const g of apis.json.groups ?? []) for (const v of g.versions ?? []) groupVersions.push(v.groupVersion);
  await Promise.all(
    groupVersions.map(async (gv) => {
      const res = await server.request("GET", gv === "v1" ? "/api/v1" : `/apis/${gv}`);
      for (const r of res.json?.resources ?? []) {
        if (!String(r.name).includes("/")) map.set(`${gv}/${r.kind}`, { plural: r.name, namespaced: r.namespaced });
      }
    }),
  );
  return map;
}

/** Runs fn over items, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

function message(json: unknown): string {
  const j = json as { message?: string } | string;
  return typeof j === "string" ? j.slice(0, 500) : (j?.message ?? JSON.stringify(j).slice(0, 500));
}

/**
 * A Secret whose data the render redacted whole ("[secret]"): empty data, plus placeholders for the keys
 * its type requires (the API server's Secret validation), so the rest of it is still checked.
 */
function withoutRedactedData(o: K8sObject): K8sObject {
  if (o.kind !== "Secret" || (o.stringData !== SECRET && o.data !== SECRET)) return o;
  const required: Record<string, Record<string, string>> = {
    "kubernetes.io/tls": { "tls.crt": "redacted", "tls.key": "redacted" },
    "kubernetes.io/dockerconfigjson": { ".dockerconfigjson": "{}" },
    "kubernetes.io/dockercfg": { ".dockercfg": "{}" },
    "kubernetes.io/basic-auth": { username: "redacted", password: "redacted" },
    "kubernetes.io/ssh-auth": { "ssh-privatekey": "redacted" },
  };
  const { data: _data, stringData: _stringData, ...rest } = o;
  return { ...rest, stringData: required[o.type as string] ?? {} };
}

/** The server's other warnings (deprecations, duplicate list entries…): printed, not failed on. */
const otherWarnings: string[] = [];

type Resources = Map<string, { plural: string; namespaced: boolean }>;

/**
 * Sends one object: server-side apply (as the Pulumi provider) or create (as Helm), `fieldValidation=Strict`,
 * a dry run unless told otherwise; a namespaced object without a namespace goes to `namespace`. Returns the
 * server's refusal and its Pod Security "would violate" warnings, each naming the object.
 */
async function submit(
  server: ApiServer,
  resources: Resources,
  o: K8sObject,
  how: "apply" | "create",
  dryRun: boolean,
  namespace?: string,
): Promise<string[]> {
  const type = resources.get(`${o.apiVersion}/${o.kind}`);
  if (!type) return [`${label(o)}: the API server serves no ${o.kind} in ${o.apiVersion}`];
  const ns = type.namespaced ? (o.metadata.namespace ?? namespace) : undefined;
  const body = type.namespaced && ns ? { ...o, metadata: { ...o.metadata, namespace: ns } } : o;
  const base = `${o.apiVersion.includes("/") ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`}${ns ? `/namespaces/${ns}` : ""}/${type.plural}`;
  const query = `fieldValidation=Strict${dryRun ? "&dryRun=All" : ""}`;
  const res =
    how === "apply"
      ? await server.request(
          "PATCH",
          `${base}/${o.metadata.name}?${query}&fieldManager=${FIELD_MANAGER}&force=true`,
          body,
          "application/apply-patch+yaml",
        )
      : await server.request("POST", `${base}?${query}`, body);
  const problems = res.status >= 300 ? [`${label(body)}: ${res.status} ${message(res.json)}`] : [];
  for (const w of res.warnings.filter((text) => !/would violate PodSecurity/.test(text))) otherWarnings.push(`${label(body)}: ${w}`);
  return [...problems, ...res.warnings.filter((text) => /would violate PodSecurity/.test(text)).map((w) => `${label(body)}: ${w}`)];
}

/** Whether any string in the object still holds a redacted secret (the server cannot judge it). */
const holdsSecret = (o: unknown): boolean => JSON.stringify(o).includes(JSON.stringify(SECRET));

/**
 * The API server each check runs on, its own so no namespace or CRD of one stack hides what another lacks.
 * No webhook has a backend here: with the webhook admission plugins on, every object a chart's webhook covers
 * would be refused.
 */
function apiServerPerTest(): () => ApiServer {
  let server: ApiServer | undefined;
  beforeAll(async () => {
    server = await startApiServer({ extraArgs: ["--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook"] });
  });
  afterAll(() => server?.stop());
  return () => server!;
}

describe.each(STACKS)("the %s render", (stack) => {
  const api = apiServerPerTest();
  it("renders every Helm release with the real helm, and the API server accepts every object (dry run)", async () => {
    const server = api();
    const started = Date.now();
    otherWarnings.length = 0;
    const seconds = () => `${Math.round((Date.now() - started) / 1000)} s`;
    const kubeVersion = `v${defaultOf("kubernetesVersion")}`;
    expect(server.version).toBe(kubeVersion);
    const rendered = render(stack, [], path.join(work, stack));
    expect(rendered.status).toBe(0);
    const { objects, releases } = loadRender(rendered.dir);
    expect(releases.length).toBeGreaterThan(0);

    // CRDs the program applies (its own and the CHART_CRDS files) first, then the charts' (templated or crds/).
    const crds = new Map<string, { crd: K8sObject; from: string }>();
    const addCrd = (crd: K8sObject, from: string) => {
      if (!crds.has(crd.metadata.name!)) crds.set(crd.metadata.name!, { crd, from });
    };
    for (const crd of filesCrds(path.dirname(MPI_OPERATOR_CRD_FILE))) addCrd(crd, path.dirname(MPI_OPERATOR_CRD_SOURCE));
    for (const release of releases)
      for (const crd of await programChartCrds(release)) addCrd(crd, `${release.chart} ${release.version} (CHART_CRDS)`);

    const problems: string[] = [];
    const phases: string[] = [`rendered at ${seconds()}`];
    // CRDs for real, each waited for until Established and its kind served (discovery publishes a new group
    // a moment after Established). A refused CRD is reported, and not waited for.
    const applied = new Set<string>();
    const applyCrds = async (): Promise<void> => {
      const fresh = [...crds.values()].filter(({ crd }) => !applied.has(crd.metadata.name!));
      const served: string[] = [];
      await pool(fresh, 4, async ({ crd, from }) => {
        applied.add(crd.metadata.name!);
        // Created, not applied: each stack has a fresh server, and a create of the large CRDs costs less.
        const res = await server.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?fieldValidation=Strict", crd);
        if (res.status >= 300) {
          problems.push(`${label(crd)} (from ${from}): ${res.status} ${message(res.json)}`);
          return;
        }
        await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
          const got = await server.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
          return got.json?.status?.conditions?.some(
            (c: { type: string; status: string }) => c.type === "Established" && c.status === "True",
          )
            ? true
            : undefined;
        });
        served.push(...crdApiVersions([crd]).filter((v) => v.split("/").length === 3));
      });
      // Only the new groups' discovery documents, polled: the whole of discovery is some 40 requests.
      const groupVersions = [...new Set(served.map((v) => v.split("/").slice(0, 2).join("/")))];
      await waitFor("the new CRDs' kinds in discovery", async () => {
        const kinds = new Set<string>();
        for (const gv of groupVersions) {
          const res = await server.request("GET", `/apis/${gv}`);
          for (const r of res.status === 200 ? (res.json.resources ?? []) : []) kinds.add(`${gv}/${r.kind}`);
        }
        return served.every((v) => kinds.has(v)) ? true : undefined;
      });
    };
    await applyCrds();
    phases.push(`program's CRDs at ${seconds()}`);

    // Each release is templated with what the API server serves as `--api-versions` (`helm install` reads the
    // same from discovery), until no new CRD appears: a chart that templates CRDs adds kinds another chart may
    // test with .Capabilities.APIVersions.
    let manifests = new Map<string, K8sObject[]>();
    let resources = await discovery(server);
    for (let round = 0; ; round++) {
      if (round === 3) throw new Error("CRDs kept appearing after three rounds of helm template");
      const apiVersions = [...new Set([...resources.keys()].flatMap((v) => [v, v.split("/").slice(0, -1).join("/")]))].sort();
      manifests = new Map();
      await pool(releases, 2, async (release) => {
        manifests.set(release.name, await helmTemplate(release, kubeVersion, apiVersions));
      });
      phases.push(`templated (round ${round + 1}) at ${seconds()}`);
      for (const [name, docs] of manifests) for (const crd of docs.filter(isCrd)) addCrd(crd, `release ${name}`);
      // Custom resources of kinds no chart or program file defines: their CRDs from ../shared/crds.
      const kindsDefined = new Set([...crds.values()].map(({ crd }) => `${crd.spec.group}/${crd.spec.names.kind}`));
      const customKinds = new Set([...objects, ...[...manifests.values()].flat()].map((o) => `${o.apiVersion.split("/")[0]}/${o.kind}`));
      for (const crd of filesCrds(path.join(sharedDir(), "crds"))) {
        const kind = `${crd.spec.group}/${crd.spec.names.kind}`;
        if (customKinds.has(kind) && !kindsDefined.has(kind)) addCrd(crd, "../shared/crds");
      }
      if ([...crds.keys()].every((name) => applied.has(name))) break;
      await applyCrds();
      resources = await discovery(server);
    }

    phases.push(`templated and CRDs applied at ${seconds()}`);
    const send = async (o: K8sObject, how: "apply" | "create", dryRun: boolean, namespace?: string): Promise<void> => {
      problems.push(...(await submit(server, resources, o, how, dryRun, namespace)));
    };
    // The render's namespaces for real (labels and all, so Pod Security applies); no other: an object or
    // release in a namespace the program does not create is refused (404), as it would be by `pulumi up`.
    const namespaces = objects.filter((o) => o.apiVersion === "v1" && o.kind === "Namespace");
    for (const ns of namespaces) await send(ns, "apply", false);
    for (const release of releases) {
      const exists = await server.request("GET", `/api/v1/namespaces/${release.namespace}`);
      if (exists.status !== 200)
        problems.push(`release ${release.name}: its namespace ${release.namespace} is not created by the program (${exists.status})`);
    }

    // Every other object, dry run: the charts' as Helm creates them, the program's by server-side apply.
    const helmObjects = releases.flatMap((r) =>
      (manifests.get(r.name) ?? []).filter((o) => !isCrd(o)).map((o) => ({ o, namespace: r.namespace })),
    );
    await pool(helmObjects, 4, async ({ o, namespace }) => send(o, "create", true, namespace));
    const own = objects.filter((o) => !isCrd(o) && !(o.apiVersion === "v1" && o.kind === "Namespace")).map(withoutRedactedData);
    const unjudged = own.filter(holdsSecret).map(label);
    await pool(own, 4, async (o) => send(o, "apply", true));

    console.log(
      `${stack}: ${releases.length} releases, ${helmObjects.length} chart objects and ${own.length} objects of the program dry-run; ` +
        `${crds.size} CRDs (${
          [...crds.values()]
            .filter((c) => c.from === "../shared/crds")
            .map((c) => c.crd.metadata.name)
            .join(", ") || "none"
        } from ../shared/crds); ` +
        `redacted secrets left in: ${unjudged.join(", ") || "none"}; ${phases.join(", ")}, dry runs done at ${seconds()}; other warnings: ${otherWarnings.join("; ") || "none"}`,
    );
    expect(problems).toEqual([]);
  });
});

describe("the check itself", () => {
  const api = apiServerPerTest();
  it("runs the Helm the Kubernetes provider embeds (the version its go.mod requires)", async () => {
    const goMod = fs.readFileSync(path.join(ROOT, "tools", "engine", "modules", "pulumi-resource-kubernetes", "go.mod"), "utf8");
    const embedded = /^\s*helm\.sh\/helm\/v3 (v\S+)/m.exec(goMod)?.[1];
    expect(embedded).toMatch(/^v3\./);
    expect((await run(path.join(engineDir(), "bin", "helm"), ["version", "--template", "{{.Version}}"], process.env)).trim()).toBe(
      embedded,
    );
  });

  it("reports each object the API server refuses, with its message, and Pod Security's warnings", async () => {
    const server = api();
    const resources = await discovery(server);
    const namespace = {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: "helm-template-restricted",
        labels: {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/warn": "restricted",
        },
      },
    };
    expect(await submit(server, resources, namespace, "apply", false)).toEqual([]);
    const deployment = (name: string, container: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "helm-template-restricted" },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: "registry.invalid/x:1", ...container }] } },
        ...extra,
      },
    });
    // An unknown field (a values typo the chart passes through with toYaml), refused by strict field validation.
    expect(await submit(server, resources, deployment("typo", {}, { replica: 2 }), "create", true)).toEqual([
      expect.stringMatching(/^Deployment\/helm-template-restricted\/typo: 400 .*unknown field "spec.replica"/),
    ]);
    // A privileged container where the namespace enforces restricted: stored for a Deployment, refused for its Pods.
    expect(await submit(server, resources, deployment("privileged", { securityContext: { privileged: true } }), "apply", true)).toEqual([
      expect.stringMatching(
        /^Deployment\/helm-template-restricted\/privileged: would violate PodSecurity "restricted:latest": privileged \(container "privileged"/,
      ),
    ]);
    // A value the API server's own validation refuses.
    expect(
      await submit(
        server,
        resources,
        { apiVersion: "v1", kind: "Service", metadata: { name: "bad-port" }, spec: { ports: [{ port: 70000 }] } },
        "apply",
        true,
        "helm-template-restricted",
      ),
    ).toEqual([expect.stringMatching(/^Service\/helm-template-restricted\/bad-port: 422 .*spec.ports\[0\].port: Invalid value: 70000/)]);
  });

  it("fails on values the chart's values.schema.json refuses (real helm; tools/validate no longer checks them)", async () => {
    const release: Release = {
      name: "traefik",
      chart: "traefik",
      version: "41.3.0",
      namespace: "traefik",
      values: { ports: { web: { port: "eighty" } } },
    };
    await expect(helmTemplate(release, `v${defaultOf("kubernetesVersion")}`, [])).rejects.toThrow(
      /at '\/ports\/web\/port': got string, want integer/,
    );
  });
});
