/**
 * The monitoring layer under Pulumi's mock runtime: Grafana's data source, what is exposed, the
 * Alertmanager routing (checked by amtool itself), rules and dashboards, secrets in the render.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { AlertingSpec } from "../../lib/config";
import { DEFAULT_NETWORK } from "../../lib/config";
import { firewallRules } from "../../lib/host-plan";
import { initConfig } from "../../components/cluster/kubeadm-config";
import {
  dashboardFiles,
  Monitoring,
  MonitoringArgs,
  NODE_EXPORTER_CHART_ARGS,
  ruleFiles,
  serviceMonitor,
} from "../../components/monitoring";
import { NODE_EXPORTER_TEXTFILE_DIR, NODE_EXPORTER_TEXTFILE_MOUNT } from "../../components/cluster/certificate-renewal";
import { SCRIPTS_DIR } from "../../lib/host-step";
import { RecordedResource } from "../../tools/mocks";
import { renderFiles, writeFiles } from "../../tools/render-writer";
import { validateRenderDir } from "../../tools/validate";
import { sharedDir } from "../../tools/validate/shared";
import { CHARTS } from "../../lib/pins";
import { DARE_WORKLOADS, WORKLOADS } from "../../components/dare-services/workloads";
import { isSecretOutput, ofType, runMocked, unsecret, valueOf } from "../support/mocked";

const SMTP_PASSWORD = "smtp-password-value-0123456789";
const alerting: AlertingSpec = {
  smtpHost: "smtp.example.org:587",
  from: "alertmanager@dare.example.org",
  to: ["dare-ops@example.org"],
  user: "alertmanager",
  smtpPassword: pulumi.secret(SMTP_PASSWORD),
  severities: ["critical"],
};

async function build(over: Partial<MonitoringArgs> = {}) {
  let monitoring: Monitoring | undefined;
  const resources = await runMocked(() => {
    monitoring = new Monitoring("monitoring", {
      clusterName: "dare-testbed",
      domain: "dare.example.org",
      alerting,
      provider: new k8s.Provider("test", { kubeconfig: "{}" }),
      ...over,
    });
  });
  return { resources, monitoring: monitoring! };
}

const stackRelease = (resources: RecordedResource[]) =>
  unsecret(ofType(resources, "kubernetes:helm.sh/v3:Release").find((r) => (r.inputs as any).chart === "kube-prometheus-stack")!.inputs);

/** amtool's answer to "which receiver gets an alert with these labels". */
function receiverFor(configFile: string, labels: Record<string, string>): string {
  const args = ["config", "routes", "test", `--config.file=${configFile}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)];
  return execFileSync("amtool", args, { encoding: "utf8", stdio: "pipe" }).trim();
}

describe("Monitoring", () => {
  let resources: RecordedResource[];
  let monitoring: Monitoring;
  let release: any;
  let renderDir: string;
  let files: Record<string, string>;
  beforeAll(async () => {
    ({ resources, monitoring } = await build());
    release = stackRelease(resources);
    files = await renderFiles(resources, {}, []);
    renderDir = fs.mkdtempSync(path.join(os.tmpdir(), "monitoring-render-"));
    writeFiles(renderDir, files);
  });

  it("points Grafana's default data source at the in-cluster Prometheus service", () => {
    const sources = release.values.grafana.additionalDataSources;
    const defaults = sources.filter((s: any) => s.isDefault);
    expect(defaults).toHaveLength(1);
    // kube-prometheus-stack names the Service <fullname>-prometheus, port 9090, in the release's namespace.
    const service = `${release.values.fullnameOverride}-prometheus`;
    expect(defaults[0]).toMatchObject({ type: "prometheus", url: `http://${service}.${release.namespace}.svc:9090` });
    expect(release.values.grafana.sidecar.datasources.defaultDatasourceEnabled).toBe(false);
    // The dashboards query the provisioned data source by its uid.
    for (const d of dashboardFiles()) {
      for (const panel of JSON.parse(d.json).panels) expect(panel.datasource.uid).toBe(defaults[0].uid);
    }
  });

  it("exposes Grafana only: Prometheus and Alertmanager stay inside the cluster", () => {
    const ingresses = Object.keys(files).filter((f) => /\/ingress-/.test(f));
    expect(ingresses).toEqual([]);
    expect(release.values.grafana.ingress).toMatchObject({ enabled: true, hosts: ["dare.example.org"], path: "/grafana" });
    // TLS with the domain's one certificate (Traefik's default): no certificate of Grafana's own.
    expect(release.values.grafana.ingress.tls).toEqual([{ hosts: ["dare.example.org"] }]);
    expect(release.values.grafana.ingress.annotations?.["cert-manager.io/cluster-issuer"]).toBeUndefined();
    for (const part of ["prometheus", "alertmanager"]) {
      expect(release.values[part].ingress?.enabled ?? false).toBe(false);
      expect(["ClusterIP", undefined]).toContain(release.values[part].service?.type);
    }
    expect(monitoring.grafanaUrl).toBe("https://dare.example.org/grafana");
  });

  it("writes an Alertmanager configuration amtool accepts, with no secret in it", () => {
    const file = path.join(renderDir, "monitoring/alertmanager.yaml");
    execFileSync("amtool", ["check-config", file], { encoding: "utf8" });
    const config = YAML.parse(fs.readFileSync(file, "utf8"));
    expect(config.route.group_by).toEqual(["alertname", "cluster", "service"]);
    // The password is a file Alertmanager reads from the mounted Secret.
    expect(config.global.smtp_auth_password_file).toMatch(/^\/etc\/alertmanager\/secrets\/([a-z0-9-]+)\/password$/);
    const secretName = /secrets\/([a-z0-9-]+)\//.exec(config.global.smtp_auth_password_file)![1];
    expect(release.values.alertmanager.alertmanagerSpec.secrets).toEqual([secretName]);
    const secret = resources.find((r) => (r.inputs as any).kind === "Secret" && (r.inputs as any).metadata.name === secretName)!;
    expect(unsecret(secret.inputs).stringData.password).toBe(SMTP_PASSWORD);
  });

  it.each([
    [{ alertname: "DareServiceNoReadyReplicas", service: "dare-login", severity: "critical" }, "dare-operators"],
    [{ alertname: "KeycloakDown", service: "keycloak", severity: "critical" }, "dare-operators"],
    [{ alertname: "DareServiceDegraded", service: "sprov", severity: "warning" }, "null"],
    [{ alertname: "CephHealthNotOK", severity: "critical" }, "dare-operators"],
    [{ alertname: "CephHealthNotOK", severity: "warning" }, "null"],
    [{ alertname: "Watchdog", severity: "none" }, "null"],
  ])("routes %o to %s (amtool config routes test)", (labels, receiver) => {
    expect(receiverFor(path.join(renderDir, "monitoring/alertmanager.yaml"), labels)).toBe(receiver);
  });

  it("sends every DARE workload's alerts to the operators' hourly route: the service labels come from the descriptors", () => {
    const config = YAML.parse(fs.readFileSync(path.join(renderDir, "monitoring/alertmanager.yaml"), "utf8"));
    const hourly = config.route.routes.find((r: any) => r.repeat_interval === "1h");
    const services = new RegExp(`^(?:${/service=~"([^"]+)"/.exec(hourly.matchers.join(" "))![1]})$`);
    const missing = DARE_WORKLOADS.map((w) => WORKLOADS[w].monitoringService).filter((service) => !services.test(service));
    expect(missing).toEqual([]);
    expect(["dare-shared-volumes", "keycloak"].filter((service) => !services.test(service))).toEqual([]);
  });

  it("inhibits a warning while the critical of the same alert, cluster and service fires", () => {
    const config = YAML.parse(files["monitoring/alertmanager.yaml"]);
    expect(config.inhibit_rules).toContainEqual({
      source_matchers: ['severity="critical"'],
      target_matchers: ['severity="warning"'],
      equal: ["alertname", "cluster", "service"],
    });
  });

  it("keeps secrets out of the render and in secret outputs", async () => {
    const text = Object.values(files).join("\n");
    expect(text).not.toContain(SMTP_PASSWORD);
    expect(text).not.toContain(await valueOf(monitoring.grafanaAdmin.password));
    expect(await isSecretOutput(monitoring.grafanaAdmin.password)).toBe(true);
    expect(release.values.grafana.admin.existingSecret).toBe("grafana-admin");
  });

  it("loads every rule file as a PrometheusRule and every dashboard as a sidecar ConfigMap", () => {
    const rules = ofType(resources, "kubernetes:monitoring.coreos.com/v1:PrometheusRule").map((r) => unsecret(r.inputs));
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(rules.map((r) => ({ name: r.metadata.name, groups: r.spec.groups })).sort(byName)).toEqual(
      ruleFiles()
        .map((f) => ({ name: f.name, groups: f.groups }))
        .sort(byName),
    );
    for (const f of ruleFiles()) expect(files[`monitoring/rules/${f.name}.yaml`]).toBeDefined();
    const dashboards = ofType(resources, "kubernetes:core/v1:ConfigMap")
      .map((r) => unsecret(r.inputs))
      .filter((c) => c.metadata.labels?.grafana_dashboard === "1");
    expect(dashboards).toHaveLength(dashboardFiles().length);
  });

  it("scrapes annotated pods and selects monitors and rules of every namespace", () => {
    const spec = release.values.prometheus.prometheusSpec;
    expect(spec.externalLabels.cluster).toBe("dare-testbed");
    for (const key of ["serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues", "ruleSelectorNilUsesHelmValues"]) {
      expect(spec[key]).toBe(false);
    }
    const job = spec.additionalScrapeConfigs.find((j: any) => j.kubernetes_sd_configs?.[0]?.role === "pod");
    const keep = job.relabel_configs.find((r: any) => r.action === "keep");
    expect(keep.source_labels).toEqual(["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]);
    const targets = job.relabel_configs.map((r: any) => r.target_label);
    expect(targets).toEqual(expect.arrayContaining(["__metrics_path__", "__address__", "service"]));
  });

  it("reads the control planes' textfiles (kubeadm certificate expiry) with node-exporter, keeping the chart's own arguments", () => {
    const exporter = release.values["prometheus-node-exporter"];
    // kube-prometheus-stack's own extraArgs for the subchart, which a Helm value list replaces.
    const chartDefaults = YAML.parse(
      fs.readFileSync(path.join(sharedDir(), "charts", "kube-prometheus-stack", CHARTS.kubePrometheusStack.version, "values.yaml"), "utf8"),
    )["prometheus-node-exporter"].extraArgs;
    expect(NODE_EXPORTER_CHART_ARGS).toEqual(chartDefaults);
    expect(exporter.extraArgs).toEqual([...chartDefaults, `--collector.textfile.directory=${NODE_EXPORTER_TEXTFILE_MOUNT}`]);
    expect(exporter.extraHostVolumeMounts).toEqual([
      {
        name: "dare-textfile",
        hostPath: NODE_EXPORTER_TEXTFILE_DIR,
        type: "DirectoryOrCreate",
        mountPath: NODE_EXPORTER_TEXTFILE_MOUNT,
        readOnly: true,
        mountPropagation: "HostToContainer",
      },
    ]);
  });

  it("loads the kubeadm certificate alerts: 30 days ahead (warning), 7 days (critical), and a check that stopped succeeding", () => {
    const rules = ruleFiles()
      .find((f) => f.name === "kubeadm-certificates")!
      .groups.flatMap((g) => g.rules);
    expect(rules.map((r) => [r.alert, (r.labels as any).severity, r.expr])).toEqual([
      ["KubeadmCertificateExpiresSoon", "warning", "dare_kubeadm_certificate_expiry_timestamp_seconds - time() < 30 * 86400"],
      ["KubeadmCertificateExpiresSoon", "critical", "dare_kubeadm_certificate_expiry_timestamp_seconds - time() < 7 * 86400"],
      ["KubeadmCertificateCheckFailing", "warning", "time() - dare_kubeadm_certificate_check_timestamp_seconds > 2 * 86400"],
    ]);
    // The metrics are the ones the host script writes.
    const script = fs.readFileSync(path.join(SCRIPTS_DIR, "k8s-certs-renew.sh"), "utf8");
    for (const metric of ["dare_kubeadm_certificate_expiry_timestamp_seconds", "dare_kubeadm_certificate_check_timestamp_seconds"]) {
      expect(script).toContain(`echo "${metric}{node=`);
    }
  });

  it("monitors Rook Ceph, cert-manager and Keycloak", () => {
    const monitors = ofType(resources, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor").map((r) => unsecret(r.inputs));
    const targets = monitors.map((m) => m.spec.namespaceSelector.matchNames[0]).sort();
    expect(targets).toEqual(["cert-manager", "keycloak", "rook-ceph"]);
  });

  it("scrapes the control plane and kube-proxy where kubeadm serves their metrics, through the firewall", () => {
    const docs = YAML.parseAllDocuments(
      initConfig(
        {
          clusterName: "c",
          kubernetesVersion: "1.36.4",
          network: DEFAULT_NETWORK,
          externalCloudProvider: false,
          apiServer: { privateAddress: "10.10.0.5", publicAddress: "203.0.113.5", port: 6443 },
        },
        { name: "cp-0", privateAddress: "10.10.0.5" },
      ),
    ).map((d) => d.toJS());
    const cluster = docs.find((d) => d.kind === "ClusterConfiguration");
    const arg = (args: Array<{ name: string; value: string }> | undefined, name: string) => args?.find((a) => a.name === name)?.value;
    const rules = firewallRules({ adminCidrs: ["192.0.2.0/24"], network: DEFAULT_NETWORK }, false);
    const components = [
      // kube-controller-manager and kube-scheduler serve HTTPS on their secure ports (10257, 10259: defaults kubeadm keeps).
      {
        values: "kubeControllerManager",
        on: "controlPlane",
        bind: `${arg(cluster.controllerManager?.extraArgs, "bind-address")}:10257`,
        scheme: "https",
      },
      { values: "kubeScheduler", on: "controlPlane", bind: `${arg(cluster.scheduler?.extraArgs, "bind-address")}:10259`, scheme: "https" },
      {
        values: "kubeEtcd",
        on: "controlPlane",
        bind: new URL(arg(cluster.etcd?.local?.extraArgs, "listen-metrics-urls") ?? "http://127.0.0.1:2381").host,
        scheme: "http",
      },
      {
        values: "kubeProxy",
        on: "nodes",
        bind: docs.find((d) => d.kind === "KubeProxyConfiguration")?.metricsBindAddress ?? "127.0.0.1:10249",
        scheme: "http",
      },
    ];
    for (const c of components) {
      const values = release.values[c.values];
      expect([c.values, values.enabled]).toEqual([c.values, true]);
      const [host, port] = c.bind.split(":");
      // Not loopback: Prometheus scrapes from its pod, through the node's address.
      expect([c.values, host]).toEqual([c.values, "0.0.0.0"]);
      expect([c.values, values.service.targetPort]).toEqual([c.values, Number(port)]);
      const https = values.serviceMonitor.https ?? values.serviceMonitor.scheme === "https";
      expect([c.values, https]).toEqual([c.values, c.scheme === "https"]);
      if (https) expect(values.serviceMonitor.insecureSkipVerify).toBe(true);
      // Open where the component runs, to cluster members (Prometheus' scrapes arrive from node addresses), to nobody else.
      const open = rules.filter((r) => r.ports[0] <= Number(port) && Number(port) <= r.ports[1]);
      expect([c.values, open.some((r) => r.group === c.on && "group" in r.from)]).toEqual([c.values, true]);
      expect(open.filter((r) => "cidr" in r.from)).toEqual([]);
    }
    // Kubelets serve certificates the cluster CA signs (serverTLSBootstrap): scraped with verification.
    expect(docs.find((d) => d.kind === "KubeletConfiguration")?.serverTLSBootstrap).toBe(true);
    expect(release.values.kubelet.serviceMonitor).toMatchObject({ https: true, insecureSkipVerify: false });
  });

  it("renders objects and Helm values that pass validation", async () => {
    expect(await validateRenderDir(renderDir)).toEqual([]);
  });
});

describe("Monitoring without e-mail", () => {
  it("keeps a valid Alertmanager configuration that sends nothing", async () => {
    const { resources } = await build({ alerting: undefined });
    const files = await renderFiles(resources, {}, []);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "monitoring-quiet-"));
    writeFiles(dir, files);
    const file = path.join(dir, "monitoring/alertmanager.yaml");
    execFileSync("amtool", ["check-config", file], { encoding: "utf8" });
    expect(receiverFor(file, { alertname: "KeycloakDown", service: "keycloak", severity: "critical" })).toBe("null");
    expect(stackRelease(resources).values.alertmanager.alertmanagerSpec.secrets).toEqual([]);
  });

  it("mails warnings as well when alerting.severities says so", async () => {
    const { resources } = await build({ alerting: { ...alerting, severities: ["critical", "warning"] } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "monitoring-warn-"));
    writeFiles(dir, await renderFiles(resources, {}, []));
    const file = path.join(dir, "monitoring/alertmanager.yaml");
    expect(receiverFor(file, { alertname: "DareServiceDegraded", service: "sprov", severity: "warning" })).toBe("dare-operators");
    expect(receiverFor(file, { alertname: "PodCrashLooping", severity: "info" })).toBe("null");
  });
});

describe("serviceMonitor helper (for the DARE services)", () => {
  it("declares a ServiceMonitor on the service's port and path", async () => {
    const resources = await runMocked(() => {
      const provider = new k8s.Provider("test", { kubeconfig: "{}" });
      serviceMonitor(
        "d4p-registry",
        { namespace: "dare", selector: { app: "d4p-registry" }, port: "http", path: "/metrics" },
        { provider },
      );
    });
    const monitor = unsecret(ofType(resources, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")[0].inputs);
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: "http", path: "/metrics" });
  });
});

describe("Monitoring arguments", () => {
  it.each([[{ prometheusStorageGb: 0 }, /prometheusStorageGb/]])("rejects %o", (over, message) => {
    const provider = new k8s.Provider("reject", { kubeconfig: "{}" });
    const args: MonitoringArgs = { clusterName: "dare-testbed", domain: "dare.example.org", provider };
    expect(() => new Monitoring("bad", { ...args, ...over })).toThrow(message);
  });
});
