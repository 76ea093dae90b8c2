/**
 * Helm releases of pinned upstream charts (Helm 3, managed by Pulumi: no Tiller, no `helm` CLI run
 * by hand). Every chart version here matches a folder in ../shared/charts, which the render test checks.
 *
 * CRDs. Helm installs a chart's `crds/` folder on the first install only and never upgrades it, so a
 * chart version bump would leave the old CRDs behind. For the charts listed in CHART_CRDS (their CRDs are
 * a `crds/` folder), pinnedRelease applies those files itself, as Pulumi resources fetched from the
 * chart's source at the release tag of the pinned version (the same version string as the release), and
 * installs the release with `skipCrds`, after them: a version bump changes the CRDs' URLs, so Pulumi
 * updates them before the chart. Charts whose CRDs are templates (cert-manager with crds.enabled,
 * CloudNativePG, Rook) need none of this: Helm upgrades templates.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface PinnedChart {
  /** the chart's name in its repository */
  chart: string;
  /** the exact published version */
  version: string;
  /** the upstream repository URL */
  repo: string;
}

export interface PinnedReleaseArgs {
  /** Helm's release name (resources in the chart are named after it). */
  release: string;
  chart: PinnedChart;
  /**
   * a Helm repository holding the same chart versions, used instead of `chart.repo` (an offline mirror).
   * For a chart of CHART_CRDS it must also serve the chart unpacked: see chartCrdFiles.
   */
  mirror?: string;
  namespace: pulumi.Input<string>;
  values: pulumi.Input<Record<string, unknown>>;
  /** Seconds Helm waits for the release's resources to be ready (Pulumi's default: 300). */
  timeout?: number;
}

/** A chart that keeps its CRDs in a `crds/` folder: where its source lives, and the CRD files in it. */
export interface ChartCrds {
  /** raw URL of the chart's directory in its source repository at the release tag of `version` */
  source: (version: string) => string;
  /** API group of the CRDs */
  group: string;
  /** CRD plural -> the file defining it, as a path inside the chart (the same in the source tree and in the chart archive) */
  files: Readonly<Record<string, string>>;
  /**
   * The chart that ships the CRDs, at the release's version, when it is not the release's own chart
   * (Calico keeps them in a chart of their own); a mirror serves that chart unpacked under its name.
   */
  crdChart?: string;
}

const RAW = "https://raw.githubusercontent.com";
const PROMETHEUS_OPERATOR_CRDS = [
  "alertmanagerconfigs",
  "alertmanagers",
  "podmonitors",
  "probes",
  "prometheusagents",
  "prometheuses",
  "prometheusrules",
  "scrapeconfigs",
  "servicemonitors",
  "thanosrulers",
];
const CALICO_OPERATOR_CRDS = [
  "apiservers",
  "gatewayapis",
  "goldmanes",
  "imagesets",
  "installations",
  "istios",
  "managementclusterconnections",
  "tigerastatuses",
  "whiskers",
];
const TRAEFIK_CRDS = [
  "ingressroutes",
  "ingressroutetcps",
  "ingressrouteudps",
  "middlewares",
  "middlewaretcps",
  "serverstransports",
  "serverstransporttcps",
  "tlsoptions",
  "tlsstores",
  "traefikservices",
];

/**
 * The pinned charts whose CRDs Helm would never upgrade, by chart name.
 *  - kube-prometheus-stack: the Prometheus Operator's CRDs are the `crds/` folder of its local sub-chart
 *    `charts/crds` (tag kube-prometheus-stack-<version>). The chart's own answer, `crds.upgradeJob`, is
 *    "in preview, off by default", runs busybox:latest and registry.k8s.io/kubectl as a Helm hook that
 *    neither the render nor `pulumi preview` shows; not used.
 *  - traefik: `crds/` (tag v<version>); its separate traefik-crds chart has versions of its own and is not
 *    in the chart mirror. Traefik Hub's `hub.traefik.io` CRDs in the same folder are left out (Hub is off).
 *  - tigera-operator: "As of Calico v3.32, CRDs are no longer bundled in this chart and must be installed
 *    separately from the `crd.projectcalico.org.v1` chart" (the chart's README at v3.32.1), whose templates
 *    are plain CRD files (charts/crd.projectcalico.org.v1/templates, tag v3.32.1). Without them Helm refuses
 *    the release itself: its APIServer object has no kind (a real API server found it, issue 16). The
 *    operator's own group, operator.tigera.io: the kinds the chart and the program create.
 */
export const CHART_CRDS: Readonly<Record<string, ChartCrds>> = {
  "kube-prometheus-stack": {
    source: (version) => `${RAW}/prometheus-community/helm-charts/kube-prometheus-stack-${version}/charts/kube-prometheus-stack`,
    group: "monitoring.coreos.com",
    files: Object.fromEntries(PROMETHEUS_OPERATOR_CRDS.map((p) => [p, `charts/crds/crds/crd-${p}.yaml`])),
  },
  "tigera-operator": {
    source: (version) => `${RAW}/projectcalico/calico/${version}/charts/crd.projectcalico.org.v1`,
    crdChart: "crd.projectcalico.org.v1",
    group: "operator.tigera.io",
    files: Object.fromEntries(CALICO_OPERATOR_CRDS.map((p) => [p, `templates/operator.tigera.io_${p}.yaml`])),
  },
  traefik: {
    source: (version) => `${RAW}/traefik/traefik-helm-chart/v${version}/traefik`,
    group: "traefik.io",
    files: Object.fromEntries(TRAEFIK_CRDS.map((p) => [p, `crds/traefik.io_${p}.yaml`])),
  },
};

/**
 * Where each CRD file of a pinned chart is read from: the chart's source at the release tag of its version
 * or, with a mirror (air-gapped sites, dare:chartMirror), `<mirror>/<chart>-<version>/<path in chart>`
 * (`chart` being the CRD chart, for Calico), which is the mirror's own chart archive unpacked beside it:
 *   mkdir traefik-41.3.0 && tar -xzf traefik-41.3.0.tgz -C traefik-41.3.0 --strip-components=1
 * Empty for a chart that is not in CHART_CRDS.
 */
export function chartCrdFiles(chart: PinnedChart, mirror?: string): Array<{ plural: string; url: string }> {
  const crds = CHART_CRDS[chart.chart];
  if (!crds) return [];
  const base = mirror ? `${mirror.replace(/\/+$/, "")}/${crds.crdChart ?? chart.chart}-${chart.version}` : crds.source(chart.version);
  return Object.entries(crds.files).map(([plural, file]) => ({ plural, url: `${base}/${file}` }));
}

/**
 * Applied to every object of a chart's CRD files. Server-side apply takes the fields over from Helm,
 * which created the CRDs of clusters installed before (without it the first upgrade conflicts with
 * Helm's field manager), and a CRD that leaves the list stays in the cluster, with its objects, as
 * Helm's `crds/` folder always left it: deleting a CRD deletes every object of its kind.
 */
export const chartCrdTransform: pulumi.ResourceTransform = (args) => {
  if (args.type !== "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition") return undefined;
  const metadata = (args.props.metadata ?? {}) as { annotations?: Record<string, string> };
  return {
    props: { ...args.props, metadata: { ...metadata, annotations: { ...(metadata.annotations ?? {}), "pulumi.com/patchForce": "true" } } },
    opts: { ...args.opts, retainOnDelete: true },
  };
};

/** A release of a pinned chart and the CRDs applied for it (empty for a chart not in CHART_CRDS). */
export interface PinnedReleaseWithCrds {
  release: k8s.helm.v3.Release;
  crds: k8s.yaml.v2.ConfigFile[];
}

/** Like pinnedRelease; also returns the chart's CRDs, for the custom resources that need them. */
export function pinnedReleaseWithCrds(
  resourceName: string,
  args: PinnedReleaseArgs,
  opts: pulumi.CustomResourceOptions,
): PinnedReleaseWithCrds {
  const crds = chartCrdFiles(args.chart, args.mirror).map(
    ({ plural, url }) =>
      // Named by plural, not by file or version: a version bump updates the same resources.
      new k8s.yaml.v2.ConfigFile(
        `${resourceName}-crd-${plural}`,
        { file: url },
        {
          parent: opts.parent,
          provider: opts.provider,
          transforms: [chartCrdTransform],
        },
      ),
  );
  const given = opts.dependsOn;
  if (given !== undefined && !Array.isArray(given) && !pulumi.Resource.isInstance(given)) {
    throw new Error(`${resourceName}: dependsOn must be a resource or a list of them, to add the chart's CRDs to it`);
  }
  const dependsOn = given === undefined ? [] : Array.isArray(given) ? given : [given];
  const release = new k8s.helm.v3.Release(
    resourceName,
    {
      name: args.release,
      chart: args.chart.chart,
      version: args.chart.version,
      repositoryOpts: { repo: args.mirror || args.chart.repo },
      namespace: args.namespace,
      values: args.values,
      ...(args.timeout ? { timeout: args.timeout } : {}),
      // The CRDs above replace the chart's crds/ folder, which Helm would install once and never upgrade.
      ...(crds.length > 0 ? { skipCrds: true } : {}),
    },
    crds.length > 0 ? { ...opts, dependsOn: [...dependsOn, ...crds] } : opts,
  );
  return { release, crds };
}

/** One release of a pinned chart; Pulumi waits until its resources are ready, like `helm --wait`. */
export function pinnedRelease(resourceName: string, args: PinnedReleaseArgs, opts: pulumi.CustomResourceOptions): k8s.helm.v3.Release {
  return pinnedReleaseWithCrds(resourceName, args, opts).release;
}
