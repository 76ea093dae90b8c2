/**
 * Helm releases of pinned upstream charts (Helm 3, managed by Pulumi: no Tiller, no `helm` CLI run
 * by hand). Every chart version here matches a folder in ../shared/charts, which the render test checks.
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
  /** a Helm repository holding the same chart versions, used instead of `chart.repo` (an offline mirror) */
  mirror?: string;
  namespace: pulumi.Input<string>;
  values: pulumi.Input<Record<string, unknown>>;
  /** Seconds Helm waits for the release's resources to be ready (Pulumi's default: 300). */
  timeout?: number;
}

/** One release of a pinned chart; Pulumi waits until its resources are ready, like `helm --wait`. */
export function pinnedRelease(resourceName: string, args: PinnedReleaseArgs, opts: pulumi.CustomResourceOptions): k8s.helm.v3.Release {
  return new k8s.helm.v3.Release(resourceName, {
    name: args.release,
    chart: args.chart.chart,
    version: args.chart.version,
    repositoryOpts: { repo: args.mirror || args.chart.repo },
    namespace: args.namespace,
    values: args.values,
    ...(args.timeout ? { timeout: args.timeout } : {}),
  }, opts);
}
