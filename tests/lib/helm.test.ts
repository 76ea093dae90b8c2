/**
 * Issue 14, item 9: the CRDs of kube-prometheus-stack and Traefik move with their charts' versions.
 * Helm installs a chart's crds/ folder once and never upgrades it; here those CRDs are Pulumi resources
 * (lib/helm.ts, CHART_CRDS) pinned by the chart's version string, applied before the release
 * (installed with skipCrds), and every custom resource of their groups waits for them.
 *
 * Checked on renders of the testbed under the mock runtime (the real program; a second render with the
 * chart versions bumped), against ../shared/crds (the upstream files at the pinned tags) and against the
 * chart archives of ../shared/chart-mirror (what an air-gapped site has).
 */
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import { CHART_CRDS, chartCrdFiles, chartCrdTransform, PinnedChart, pinnedReleaseWithCrds } from "../../lib/helm";
import { CHARTS } from "../../lib/pins";
import { sharedDir } from "../../tools/validate/shared";
import { ROOT } from "../support/render";
import { runMocked } from "../support/mocked";
import { untgz } from "../support/untgz";

jest.setTimeout(180_000);

interface Rendered {
  urn: string;
  type: string;
  name: string;
  parent: string;
  custom: boolean;
  dependencies: string[];
  inputs: any;
}

/** The charts whose CRDs Helm's crds/ folder would leave behind, as the program pins them. */
const PINNED: Record<string, PinnedChart> = {
  traefik: CHARTS.traefik,
  "kube-prometheus-stack": CHARTS.kubePrometheusStack,
  // Its CRDs are in a chart of their own at the same version (crd.projectcalico.org.v1).
  "tigera-operator": CHARTS.calico,
};
const BUMPED: Record<string, string> = { traefik: "41.4.0", "kube-prometheus-stack": "88.6.0", "tigera-operator": "v3.32.2" };

function renderWith(bumps: Record<string, string>): Rendered[] {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dare-chart-crds-")), "resources.json");
  const args = [
    "--require",
    "ts-node/register/transpile-only",
    path.join(ROOT, "tests", "support", "render-charts.ts"),
    out,
    ...Object.entries(bumps).map(([chart, version]) => `${chart}=${version}`),
  ];
  const run = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", timeout: 150_000 });
  if (run.status !== 0) throw new Error(`render with ${JSON.stringify(bumps)} failed:\n${run.stderr}`);
  return JSON.parse(fs.readFileSync(out, "utf8"));
}

const releaseOf = (resources: Rendered[], chart: string) => {
  const found = resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release" && r.inputs.chart === chart);
  expect(found).toHaveLength(1);
  return found[0];
};
/** The ConfigFiles of a chart's CRDs, by plural (named `<release resource>-crd-<plural>`). */
const crdFilesOf = (resources: Rendered[], chart: string): Map<string, Rendered> => {
  const prefix = `${releaseOf(resources, chart).name}-crd-`;
  return new Map(
    resources
      .filter((r) => r.type === "kubernetes:yaml/v2:ConfigFile" && r.name.startsWith(prefix))
      .map((r) => [r.name.slice(prefix.length), r]),
  );
};

/** Everything a resource waits for: its dependencies and its parents', and theirs, transitively. */
function waitsFor(resources: Rendered[], start: Rendered): Set<string> {
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const seen = new Set<string>();
  const todo = [start.urn];
  while (todo.length > 0) {
    const r = byUrn.get(todo.pop()!);
    if (!r) continue;
    // A child registers only once its parent has; a component registers once its dependencies exist.
    for (const next of [...r.dependencies, ...(r.parent ? [r.parent] : [])]) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

interface SharedCrdFile {
  path: string;
  sha256: string;
  upstream_repo: string;
  upstream_ref: string;
  upstream_path: string;
  crds: Array<{ name: string; group: string; kind: string }>;
}
const sharedIndex = (): SharedCrdFile[] => JSON.parse(fs.readFileSync(path.join(sharedDir(), "crds", "index.json"), "utf8"));
/** The upstream URL of a ../shared/crds file: its repository's raw file at the tag it was taken from. */
const upstreamUrl = (f: SharedCrdFile) =>
  `https://raw.githubusercontent.com/${f.upstream_repo.replace(/^github\.com\//, "")}/${f.upstream_ref.replace(/^tag /, "")}/${f.upstream_path}`;

let base: Rendered[];
let bumped: Rendered[];
beforeAll(() => {
  base = renderWith({});
  bumped = renderWith(BUMPED);
});

describe.each(Object.keys(PINNED))("the CRDs of %s", (chart) => {
  const pinned = () => PINNED[chart];

  it("are Pulumi resources from the chart's source at its pinned version; the release skips its crds/ folder and comes after them", () => {
    const release = releaseOf(base, chart);
    expect(release.inputs.version).toBe(pinned().version);
    expect(release.inputs.skipCrds).toBe(true);
    const files = crdFilesOf(base, chart);
    expect([...files.keys()].sort()).toEqual(Object.keys(CHART_CRDS[chart].files).sort());
    for (const [plural, file] of files) {
      expect({ plural, url: file.inputs.file }).toEqual({ plural, url: chartCrdFiles(pinned()).find((f) => f.plural === plural)!.url });
      // The version string of the chart is the tag in the URL.
      expect(file.inputs.file).toContain(`${pinned().version}/`);
      expect(file.parent).toBe(release.parent);
      expect(release.dependencies).toContain(file.urn);
    }
  });

  it("change their pinned source when the chart's version is bumped, and stay the same resources", () => {
    const before = crdFilesOf(base, chart);
    const after = crdFilesOf(bumped, chart);
    expect(releaseOf(bumped, chart).inputs.version).toBe(BUMPED[chart]);
    // Traefik's and kube-prometheus-stack's crds/ folders hold 10 CRDs of their group, Calico's CRD chart 9 of operator.tigera.io.
    expect(before.size).toBe(chart === "tigera-operator" ? 9 : 10);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [plural, file] of before) {
      const next = after.get(plural)!;
      expect(next.urn).toBe(file.urn);
      expect(next.inputs.file).not.toBe(file.inputs.file);
      expect(next.inputs.file).toBe(file.inputs.file.replace(`${pinned().version}/`, `${BUMPED[chart]}/`));
    }
  });

  it("are waited for by every custom resource of their group the program declares", () => {
    const group = CHART_CRDS[chart].group;
    const files = crdFilesOf(base, chart);
    const kinds = new Map(
      sharedIndex()
        .flatMap((f) => f.crds)
        .filter((c) => c.group === group)
        .map((c) => [c.kind, c.name.split(".")[0]]),
    );
    const objects = base.filter((r) => r.custom && typeof r.inputs?.apiVersion === "string" && r.inputs.apiVersion.startsWith(`${group}/`));
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      const plural = kinds.get(object.inputs.kind);
      const crd = plural && files.get(plural);
      expect({ object: object.name, kind: object.inputs.kind, crd: !!crd }).toEqual({
        object: object.name,
        kind: object.inputs.kind,
        crd: true,
      });
      expect({ object: object.name, waitsForItsCrd: waitsFor(base, object).has((crd as Rendered).urn) }).toEqual({
        object: object.name,
        waitsForItsCrd: true,
      });
    }
  });

  it("are the upstream files of ../shared/crds at the pinned tag, every CRD of the chart's folder in its group", () => {
    const urls = chartCrdFiles(pinned()).map((f) => f.url);
    const shared = sharedIndex().filter((f) => f.crds.some((c) => c.group === CHART_CRDS[chart].group));
    expect(shared.map(upstreamUrl).sort()).toEqual([...urls].sort());
    for (const f of shared) {
      const text = fs.readFileSync(path.join(sharedDir(), "crds", f.path));
      expect({ file: f.path, sha256: createHash("sha256").update(text).digest("hex") }).toEqual({ file: f.path, sha256: f.sha256 });
      // The file named for a plural defines that plural's CRD.
      const plural = chartCrdFiles(pinned()).find((u) => u.url === upstreamUrl(f))!.plural;
      expect(f.crds.map((c) => c.name)).toEqual([`${plural}.${CHART_CRDS[chart].group}`]);
    }
  });

  it("come from the chart mirror's own archive on an air-gapped site: the same files, unpacked beside it", () => {
    const mirror = "http://charts.example.org:8879/";
    const files = chartCrdFiles(pinned(), mirror);
    const crdChart = CHART_CRDS[chart].crdChart;
    if (crdChart) {
      // Calico's CRD chart is not in ../shared/chart-mirror: its unpacked files at the same paths as upstream's.
      for (const { plural, url } of files) {
        expect(url).toBe(`http://charts.example.org:8879/${crdChart}-${pinned().version}/${CHART_CRDS[chart].files[plural]}`);
        expect(chartCrdFiles(pinned()).find((u) => u.plural === plural)!.url).toBe(
          `${CHART_CRDS[chart].source(pinned().version)}/${CHART_CRDS[chart].files[plural]}`,
        );
      }
      return;
    }
    const archive = untgz(path.join(sharedDir(), "chart-mirror", `${pinned().chart}-${pinned().version}.tgz`));
    const upstream = chartCrdFiles(pinned());
    for (const { plural, url } of files) {
      const prefix = `http://charts.example.org:8879/${pinned().chart}-${pinned().version}/`;
      expect(url.startsWith(prefix)).toBe(true);
      const inChart = url.slice(prefix.length);
      const content = archive.get(`${pinned().chart}/${inChart}`);
      const sharedFile = sharedIndex().find((f) => upstreamUrl(f) === upstream.find((u) => u.plural === plural)!.url)!;
      expect({ plural, inArchive: !!content }).toEqual({ plural, inArchive: true });
      expect(content!.equals(fs.readFileSync(path.join(sharedDir(), "crds", sharedFile.path)))).toBe(true);
    }
  });
});

describe("pinnedReleaseWithCrds", () => {
  it("reads the CRDs from the chart mirror when there is one, and adds them to the release's dependencies", async () => {
    let crdCount = 0;
    const resources = await runMocked(() => {
      const provider = new k8s.Provider("test", { kubeconfig: "{}" });
      const before = new k8s.core.v1.Namespace("before", {}, { provider });
      const { crds } = pinnedReleaseWithCrds(
        "t",
        {
          release: "traefik",
          chart: CHARTS.traefik,
          mirror: "http://mirror.example.org/charts",
          namespace: "traefik",
          values: {},
        },
        { provider, dependsOn: [before] },
      );
      crdCount = crds.length;
    });
    const release = resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release")!;
    const files = resources.filter((r) => r.type === "kubernetes:yaml/v2:ConfigFile");
    expect(files).toHaveLength(crdCount);
    expect(crdCount).toBe(10);
    expect((release.inputs as any).repositoryOpts.repo).toBe("http://mirror.example.org/charts");
    for (const f of files) {
      expect((f.inputs as any).file).toMatch(/^http:\/\/mirror\.example\.org\/charts\/traefik-41\.3\.0\/crds\/traefik\.io_[a-z]+\.yaml$/);
      expect(release.dependencies).toContain(f.urn);
    }
    expect(release.dependencies).toContain(resources.find((r) => r.type === "kubernetes:core/v1:Namespace")!.urn);
  });

  it("leaves a chart without a crds/ folder entry as it was", async () => {
    const resources = await runMocked(() => {
      const provider = new k8s.Provider("test", { kubeconfig: "{}" });
      pinnedReleaseWithCrds(
        "c",
        { release: "cert-manager", chart: CHARTS.certManager, namespace: "cert-manager", values: {} },
        { provider },
      );
    });
    expect(resources.filter((r) => r.type === "kubernetes:yaml/v2:ConfigFile")).toEqual([]);
    expect((resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release")!.inputs as any).skipCrds).toBeUndefined();
  });
});

describe("chartCrdTransform", () => {
  it("takes the CRDs over from Helm's field manager and keeps them (and their objects) when they leave the list", async () => {
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "middlewares.traefik.io", annotations: { a: "b" } },
      spec: {},
    };
    const result = await chartCrdTransform({
      type: "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
      name: "x:middlewares.traefik.io",
      custom: true,
      props: crd,
      opts: {},
    });
    expect((result as any).props.metadata.annotations).toEqual({ a: "b", "pulumi.com/patchForce": "true" });
    expect((result as any).props.spec).toEqual({});
    expect((result as any).opts.retainOnDelete).toBe(true);
    expect(await chartCrdTransform({ type: "kubernetes:core/v1:Namespace", name: "n", custom: true, props: {}, opts: {} })).toBeUndefined();
  });
});
