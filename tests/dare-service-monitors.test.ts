/**
 * Issue 5's scraping of the DARE services: a ServiceMonitor for every Service whose pods export
 * metrics, and the seed's annotation job (monitoring.ts) leaving those pods to it, so that every
 * annotated pod is scraped exactly once. The relabel rules are run here on the discovery labels
 * Prometheus would give the rendered pods (Prometheus' own relabel semantics), and promtool
 * checks their syntax.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { ANNOTATED_PODS_JOB } from "../components/monitoring";
import { validateCustomResource } from "../tools/validate";
import { Built, buildDareLayer, configFrom } from "./dare-fixture";

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
  for (const [k, v] of Object.entries<string>(template.metadata.annotations ?? {})) meta[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
  const ports = template.spec.containers.flatMap((c: any) => c.ports ?? []);
  if (ports.length === 0) return [{ ...meta, __address__: podIp }];
  return ports.map((p: any) => ({ ...meta, __address__: `${podIp}:${p.containerPort}`, __meta_kubernetes_pod_container_port_name: p.name ?? "" }));
}

const subset = (small: Record<string, string> | undefined, big: Record<string, string> | undefined) =>
  Object.entries(small ?? {}).every(([k, v]) => big?.[k] === v);

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
const annotated = (tpl: any) => tpl.metadata.annotations?.["prometheus.io/scrape"] === "true";
/** The ServiceMonitors that select a Service (same namespace, or named in namespaceSelector). */
const monitorsOf = (svc: any) => built.objects.filter((o) => o.kind === "ServiceMonitor"
  && ((o.spec.namespaceSelector?.matchNames ?? [o.metadata.namespace]) as string[]).includes(svc.metadata.namespace)
  && subset(o.spec.selector.matchLabels, svc.metadata.labels));
/** The Services in front of a pod. */
const servicesOf = (tpl: any) => objectsOf("Service").filter((s) => s.spec.selector && subset(s.spec.selector, tpl.metadata.labels));

describe("ServiceMonitors of the DARE services", () => {
  it("gives every Service whose pods export metrics exactly one ServiceMonitor, on the metrics port by name and path", () => {
    const scraped = pods().filter((p) => annotated(p.tpl));
    expect(scraped.length).toBeGreaterThan(0);
    for (const { name, tpl } of scraped) {
      const services = servicesOf(tpl);
      expect({ name, services: services.length }).toEqual({ name, services: 1 });
      const monitors = monitorsOf(services[0]);
      expect({ name, monitors: monitors.length }).toEqual({ name, monitors: 1 });
      const [endpoint] = monitors[0].spec.endpoints;
      const port = services[0].spec.ports.find((p: any) => p.name === endpoint.port);
      expect({ name, targetPort: port?.targetPort }).toEqual({ name, targetPort: Number(tpl.metadata.annotations["prometheus.io/port"]) });
      expect({ name, path: endpoint.path ?? "/metrics" }).toEqual({ name, path: tpl.metadata.annotations["prometheus.io/path"] ?? "/metrics" });
    }
  });

  it("declares no ServiceMonitor without metrics behind it, and every one valid against the prometheus-operator CRD", () => {
    const monitors = built.objects.filter((o) => o.kind === "ServiceMonitor");
    for (const m of monitors) {
      const selected = objectsOf("Service").filter((s) => monitorsOf(s).includes(m));
      expect({ name: m.metadata.name, selects: selected.length }).toEqual({ name: m.metadata.name, selects: 1 });
      const behind = pods().filter((p) => subset(selected[0].spec.selector, p.tpl.metadata.labels));
      expect({ name: m.metadata.name, metrics: behind.every((p) => annotated(p.tpl)) }).toEqual({ name: m.metadata.name, metrics: true });
      expect(m.apiVersion).toBe("monitoring.coreos.com/v1");
      expect(validateCustomResource(m)).toEqual([]);
    }
  });

  it("waits for the Monitoring component, which installs the CRD", () => {
    const monitoring = built.resources.find((r) => r.type === "test:monitoring:Monitoring")!;
    const installed = built.resources.filter((r) => r.parent === monitoring.urn).map((r) => r.urn);
    const monitors = built.resources.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:ServiceMonitor");
    expect(monitors.length).toBeGreaterThan(0);
    for (const m of monitors) expect({ name: m.name, waits: installed.every((u) => m.dependencies.includes(u)) && installed.length > 0 }).toEqual({ name: m.name, waits: true });
  });

  it("labels the series with the pod's `service` label, which the Alertmanager route matches (workflow-registry is cwl)", () => {
    for (const { name, tpl } of pods().filter((p) => annotated(p.tpl))) {
      const [svc] = servicesOf(tpl);
      const [monitor] = monitorsOf(svc);
      // The operator's own relabelling comes first: `service` is the Service's name; then the endpoint's.
      const [discovered] = podTargets(DARE_NS, name, tpl).map((t) => ({ ...t, __meta_kubernetes_service_name: svc.metadata.name }));
      const target = relabel(discovered, [{ source_labels: ["__meta_kubernetes_service_name"], target_label: "service" }])!;
      const rules = (monitor.spec.endpoints[0].relabelings ?? []).map((r: any) => ({
        source_labels: r.sourceLabels, separator: r.separator, regex: r.regex, target_label: r.targetLabel, replacement: r.replacement, action: r.action,
      }));
      expect({ name, service: relabel(target, rules)?.service }).toEqual({ name, service: tpl.metadata.labels.service });
    }
  });
});

describe("the annotation job (kubernetes-pods)", () => {
  const rules = ANNOTATED_PODS_JOB.relabel_configs as RelabelRule[];

  it("scrapes every annotated DARE pod exactly once: by its ServiceMonitor, not also by annotation", () => {
    for (const { name, tpl } of pods().filter((p) => annotated(p.tpl))) {
      const byMonitor = servicesOf(tpl).flatMap(monitorsOf).length;
      const byAnnotation = podTargets(DARE_NS, name, tpl).map((t) => relabel(t, rules)).filter(Boolean).length;
      expect({ name, byMonitor, byAnnotation }).toEqual({ name, byMonitor: 1, byAnnotation: 0 });
    }
  });

  it("keeps the annotations on those pods (the seed's convention, issue 6)", () => {
    for (const { name, tpl } of pods().filter((p) => servicesOf(p.tpl).flatMap(monitorsOf).length > 0)) {
      expect({ name, port: tpl.metadata.annotations?.["prometheus.io/port"] }).toEqual({ name, port: expect.stringMatching(/^\d+$/) });
    }
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
    expect(podTargets("jupyterhub", "plain", plain).map((t) => relabel(t, rules)).filter(Boolean)).toEqual([]);
  });

  it("is accepted by promtool", () => {
    // Debian's promtool is built without Kubernetes discovery: the same rules, checked under a static target.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-scrape-"));
    try {
      const { kubernetes_sd_configs: _sd, ...job } = ANNOTATED_PODS_JOB;
      const file = path.join(dir, "prometheus.yml");
      fs.writeFileSync(file, YAML.stringify({ scrape_configs: [{ ...job, static_configs: [{ targets: ["10.244.1.5:8080"] }] }] }));
      const result = spawnSync("promtool", ["check", "config", file], { encoding: "utf8" });
      expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: expect.stringContaining("SUCCESS") });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
