/**
 * The seed's annotation job (monitoring.ts, kubernetes-pods): it scrapes annotated pods once, leaves
 * pods a ServiceMonitor covers to it, and finds no DARE pod (no DARE service is known to export metrics:
 * they are probed instead, availability-probes.ts). The relabel rules are run here on the discovery
 * labels Prometheus would give the pods (Prometheus' own relabel semantics), and promtool checks their syntax.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ANNOTATED_PODS_JOB, SCRAPED_BY_SERVICE_MONITOR } from "../../../components/monitoring";
import { Built, buildDareLayer, configFrom } from "../../support/dare-fixture";

jest.setTimeout(120_000);

const DARE_NS = "dare";

interface RelabelRule {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}

/**
 * Prometheus' relabelling (keep, drop, replace), as model/relabel does it: source values joined by
 * the separator, the regex anchored at both ends, an empty replacement result removes the label.
 * Returns null when the target is dropped.
 */
function relabel(labels: Record<string, string>, rules: RelabelRule[]): Record<string, string> | null {
  let current = { ...labels };
  for (const rule of rules) {
    const value = (rule.source_labels ?? []).map((l) => current[l] ?? "").join(rule.separator ?? ";");
    const regex = new RegExp(`^(?:${rule.regex ?? "(.*)"})$`);
    const action = rule.action ?? "replace";
    if (action === "keep" && !regex.test(value)) return null;
    if (action === "drop" && regex.test(value)) return null;
    if (action === "replace" && regex.test(value)) {
      const result = value.replace(regex, rule.replacement ?? "$1");
      current = { ...current };
      if (result === "") delete current[rule.target_label!];
      else current[rule.target_label!] = result;
    }
    if (!["keep", "drop", "replace"].includes(action)) throw new Error(`relabel action ${action} not modelled here`);
  }
  return current;
}

/** Prometheus' label-name sanitising of Kubernetes label and annotation keys. */
const sanitize = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, "_");

/** The discovery labels of a pod (role: pod), one target per container port, as Prometheus builds them. */
function podTargets(namespace: string, name: string, template: any, podIp = "10.244.1.5"): Array<Record<string, string>> {
  const meta: Record<string, string> = {
    __meta_kubernetes_namespace: namespace,
    __meta_kubernetes_pod_name: `${name}-0`,
    __meta_kubernetes_pod_phase: "Running",
  };
  for (const [k, v] of Object.entries<string>(template.metadata.labels ?? {})) meta[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
  for (const [k, v] of Object.entries<string>(template.metadata.annotations ?? {}))
    meta[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
  const ports = template.spec.containers.flatMap((c: any) => c.ports ?? []);
  if (ports.length === 0) return [{ ...meta, __address__: podIp }];
  return ports.map((p: any) => ({
    ...meta,
    __address__: `${podIp}:${p.containerPort}`,
    __meta_kubernetes_pod_container_port_name: p.name ?? "",
  }));
}

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

const objectsOf = (kind: string) => built.objects.filter((o) => o.kind === kind && o.metadata.namespace === DARE_NS);
/** Pods of every DARE workload: name, template. */
const pods = () => [
  ...objectsOf("Deployment").map((d) => ({ name: d.metadata.name, tpl: d.spec.template })),
  ...objectsOf("StatefulSet").map((d) => ({ name: d.metadata.name, tpl: d.spec.template })),
  ...objectsOf("CronJob").map((d) => ({ name: d.metadata.name, tpl: d.spec.jobTemplate.spec.template })),
];
describe("the annotation job (kubernetes-pods)", () => {
  const rules = ANNOTATED_PODS_JOB.relabel_configs as RelabelRule[];

  it("finds no DARE pod: none is annotated for a scrape", () => {
    for (const { name, tpl } of pods()) {
      expect({
        name,
        targets: podTargets(DARE_NS, name, tpl)
          .map((t) => relabel(t, rules))
          .filter(Boolean),
      }).toEqual({ name, targets: [] });
    }
  });

  it("leaves an annotated pod that a ServiceMonitor covers to the ServiceMonitor, so that nothing is scraped twice", () => {
    const tpl = {
      metadata: {
        labels: { app: "operator", ...SCRAPED_BY_SERVICE_MONITOR },
        annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "8081" },
      },
      spec: { containers: [{ ports: [{ name: "metrics", containerPort: 8081 }] }] },
    };
    expect(
      podTargets("mpi-operator", "operator", tpl)
        .map((t) => relabel(t, rules))
        .filter(Boolean),
    ).toEqual([]);
  });

  it("still scrapes an annotated pod no ServiceMonitor covers, at the annotated port and path, with its service label", () => {
    const tpl = {
      metadata: {
        labels: { app: "someone-elses", service: "sprov" },
        annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9102", "prometheus.io/path": "/stats" },
      },
      spec: { containers: [{ ports: [{ name: "http", containerPort: 8080 }] }] },
    };
    const [target] = podTargets("jupyterhub", "someone-elses", tpl).map((t) => relabel(t, rules));
    expect(target).toMatchObject({ __address__: "10.244.1.5:9102", __metrics_path__: "/stats", namespace: "jupyterhub", service: "sprov" });
    // Unannotated pods stay out.
    const plain = { ...tpl, metadata: { labels: tpl.metadata.labels, annotations: {} } };
    expect(
      podTargets("jupyterhub", "plain", plain)
        .map((t) => relabel(t, rules))
        .filter(Boolean),
    ).toEqual([]);
  });

  it("is accepted by promtool", () => {
    // Debian's promtool is built without Kubernetes discovery: the same rules, checked under a static target.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-scrape-"));
    try {
      const { kubernetes_sd_configs: _sd, ...job } = ANNOTATED_PODS_JOB;
      const file = path.join(dir, "prometheus.yml");
      fs.writeFileSync(file, YAML.stringify({ scrape_configs: [{ ...job, static_configs: [{ targets: ["10.244.1.5:8080"] }] }] }));
      const result = spawnSync("promtool", ["check", "config", file], { encoding: "utf8" });
      expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({
        status: 0,
        output: expect.stringContaining("SUCCESS"),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
