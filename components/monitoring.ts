/**
 * Monitoring layer: kube-prometheus-stack (Prometheus Operator, Prometheus, Alertmanager, Grafana,
 * node-exporter, kube-state-metrics), the DARE alert rules (components/monitoring/alerts/*.yaml), the DARE
 * dashboards (components/monitoring/dashboards/*.json) and the scrape targets of the layers below.
 *
 * The seed added Grafana's Prometheus data source by hand; here it is provisioned. Prometheus and
 * Alertmanager stay ClusterIP services (the seed's own advice): reach them with kubectl port-forward.
 * Grafana is served at https://<domain>/grafana.
 */
import * as fs from "fs";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import { pinnedReleaseWithCrds } from "../lib/helm";
import { CHARTS } from "../lib/pins";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as YAML from "yaml";
import { AlertingSpec } from "../lib/config";
import type { OidcClient } from "./identity";
import { METRICS_PORTS } from "./cluster/kubeadm-config";
import { createNamespace, NAMESPACES } from "../lib/namespaces";
import { domainTls } from "./security";
import { secretHash } from "../lib/secret-hash";
import { DARE_WORKLOADS, SHARED_FS_SERVICE, WORKLOADS } from "./dare-services/workloads";
import { NODE_EXPORTER_TEXTFILE_DIR, NODE_EXPORTER_TEXTFILE_MOUNT } from "./cluster/certificate-renewal";
import { INGRESS_CLASS } from "./networking";

/**
 * Alerts of these services go to the DARE operators, repeated hourly: every DARE workload's `service` label (its
 * descriptor's), the shared file system's and Keycloak's. The seed's route named six of them by hand and left
 * exec-api, exec-registry, playground and semantic-data to the general route (every 4 hours).
 */
export const DARE_SERVICES: string[] = [
  ...new Set([...DARE_WORKLOADS.map((w) => WORKLOADS[w].monitoringService), SHARED_FS_SERVICE, "keycloak"]),
];

const NS = NAMESPACES.monitoring.name;
/** kube-prometheus-stack names its objects after fullnameOverride: kps-prometheus, kps-alertmanager… */
const FULLNAME = "kps";
export const PROMETHEUS_URL = `http://${FULLNAME}-prometheus.${NS}.svc:9090`;
export const ALERTMANAGER_URL = `http://${FULLNAME}-alertmanager.${NS}.svc:9093`;
/** Alertmanager mounts `alertmanagerSpec.secrets` at /etc/alertmanager/secrets/<name>/ */
const SMTP_SECRET = "alertmanager-smtp";
const SMTP_PASSWORD_FILE = `/etc/alertmanager/secrets/${SMTP_SECRET}/password`;
const GRAFANA_PATH = "/grafana";

export interface MonitoringArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** becomes the `cluster` label of every series and alert (Alertmanager groups by it) */
  clusterName: string;
  /** DNS name Grafana is served under, at https://<domain>/grafana */
  domain: string;
  /** e-mail for alerts; undefined: alerts are only visible in Alertmanager and Grafana */
  alerting?: AlertingSpec;
  /** size of Prometheus' volume, GiB (default storage class) */
  prometheusStorageGb?: number;
  /** the cluster's provider (KubernetesCluster.provider) */
  provider: k8s.Provider;
  /** Grafana's client in realm dare (SsoClients.grafana): users log in through Keycloak. Undefined: the local admin login only. */
  sso?: OidcClient;
}

/** The Secret Grafana reads its OAuth client secret from, and the variable (GF_<SECTION>_<KEY>) it sets. */
export const GRAFANA_OAUTH_SECRET = "grafana-oauth";
export const GRAFANA_CLIENT_SECRET_VARIABLE = "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET";

/**
 * Grafana's `[auth.generic_oauth]` with Keycloak (grafana.com/docs/grafana/latest/setup-grafana/configure-security/
 * configure-authentication/keycloak/ and .../generic-oauth/). The client secret is not here: Grafana reads
 * GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET from the Secret GRAFANA_OAUTH_SECRET (GF_<SECTION>_<KEY> overrides
 * any setting). The browser goes to the public authorization URL; Grafana itself calls the token and
 * userinfo URLs inside the cluster. The realm role platform-admin makes a user Grafana server admin and
 * organisation Admin; everyone else in the realm is a Viewer.
 */
export function grafanaOauthSettings(sso: OidcClient): Record<string, Record<string, unknown>> {
  return {
    "auth.generic_oauth": {
      enabled: true,
      name: "DARE (Keycloak)",
      allow_sign_up: true,
      client_id: sso.clientId,
      scopes: "openid email profile",
      use_pkce: true,
      auth_url: sso.authorizationUrl,
      token_url: sso.tokenUrl,
      api_url: sso.userInfoUrl,
      email_attribute_path: "email",
      login_attribute_path: "preferred_username",
      name_attribute_path: "name",
      // JMESPath over the ID token and userinfo; re-evaluated at every login, so removing the role demotes.
      role_attribute_path: `contains(${sso.rolesClaim}[*], '${sso.adminRole}') && 'GrafanaAdmin' || 'Viewer'`,
      allow_assign_grafana_admin: true,
      // Ends the Keycloak session too, then back to Grafana's login page.
      signout_redirect_url: `${sso.logoutUrl}?client_id=${encodeURIComponent(sso.clientId)}&post_logout_redirect_uri=${encodeURIComponent(sso.postLogoutRedirectUri)}`,
    },
    // Break-glass: the login form stays for the local admin (Secret grafana-admin) when Keycloak is down.
    auth: { disable_login_form: false, oauth_auto_login: false },
    // No local sign-up: local accounts are the admin only.
    users: { allow_sign_up: false },
  };
}

/**
 * kube-prometheus-stack 88.5.3's own `prometheus-node-exporter.extraArgs` (its values.yaml), kept when the
 * textfile collector's directory is added (a Helm value list replaces, never merges).
 */
export const NODE_EXPORTER_CHART_ARGS = [
  "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run/containerd/.+|var/lib/docker/.+|var/lib/kubelet/.+)($|/)",
  "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs|erofs)$",
];

/** A rule group file of components/monitoring/alerts: its name and the groups Prometheus loads. */
export interface RuleFile {
  name: string;
  groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>;
}

export const ALERTS_DIR = path.join(__dirname, "monitoring", "alerts");
export const DASHBOARDS_DIR = path.join(__dirname, "monitoring", "dashboards");

export function ruleFiles(dir = ALERTS_DIR): RuleFile[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => ({
      name: path.basename(f, ".yaml"),
      groups: YAML.parse(fs.readFileSync(path.join(dir, f), "utf8")).groups,
    }));
}

export function dashboardFiles(dir = DASHBOARDS_DIR): Array<{ name: string; json: string }> {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({
      name: path.basename(f, ".json"),
      json: fs.readFileSync(path.join(dir, f), "utf8"),
    }));
}

/**
 * Alertmanager's configuration. It holds no secret: the SMTP password is a file from a Secret.
 * Alerts group by alertname, cluster and service; a critical inhibits the warning of the same
 * alert, cluster and service; the DARE services' alerts (the seed's route) and the platform's go
 * to the operators by e-mail, with the configured severities (critical only by default).
 */
export function alertmanagerConfig(alerting?: AlertingSpec): Record<string, unknown> {
  const receivers: Array<Record<string, unknown>> = [{ name: "null" }];
  // kube-prometheus-stack's always-firing Watchdog and InfoInhibitor are plumbing, not news.
  const routes: Array<Record<string, unknown>> = [{ receiver: "null", matchers: ['alertname=~"Watchdog|InfoInhibitor"'] }];
  let global: Record<string, unknown> = {};
  if (alerting) {
    global = {
      smtp_smarthost: alerting.smtpHost,
      smtp_from: alerting.from,
      smtp_require_tls: true,
      ...(alerting.user ? { smtp_auth_username: alerting.user, smtp_auth_password_file: SMTP_PASSWORD_FILE } : {}),
    };
    receivers.push({ name: "dare-operators", email_configs: [{ to: alerting.to.join(", "), send_resolved: true }] });
    const severity = `severity=~"${alerting.severities.join("|")}"`;
    routes.push(
      { receiver: "dare-operators", matchers: [`service=~"${DARE_SERVICES.join("|")}"`, severity], repeat_interval: "1h" },
      { receiver: "dare-operators", matchers: [severity] },
    );
  }
  return {
    global,
    route: {
      receiver: "null",
      group_by: ["alertname", "cluster", "service"],
      group_wait: "30s",
      group_interval: "5m",
      repeat_interval: "4h",
      routes,
    },
    inhibit_rules: [
      { source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ["alertname", "cluster", "service"] },
      { source_matchers: ['alertname="InfoInhibitor"'], target_matchers: ['severity="info"'], equal: ["namespace"] },
    ],
    receivers,
  };
}

/**
 * Pod label of pods a ServiceMonitor already scrapes: the annotation job below skips them, so that
 * no pod is scraped twice while it keeps the seed's annotations.
 */
export const SCRAPED_BY_SERVICE_MONITOR = { "dare.io/scraped-by": "servicemonitor" } as const;

/** Prometheus job for pods annotated prometheus.io/scrape: "true" (+ prometheus.io/path, prometheus.io/port): the seed's convention. */
export const ANNOTATED_PODS_JOB = {
  job_name: "kubernetes-pods",
  kubernetes_sd_configs: [{ role: "pod" }],
  relabel_configs: [
    { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], action: "keep", regex: "true" },
    {
      source_labels: ["__meta_kubernetes_pod_label_dare_io_scraped_by"],
      action: "drop",
      regex: SCRAPED_BY_SERVICE_MONITOR["dare.io/scraped-by"],
    },
    { source_labels: ["__meta_kubernetes_pod_phase"], action: "drop", regex: "Pending|Succeeded|Failed" },
    {
      source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
      action: "replace",
      target_label: "__metrics_path__",
      regex: "(.+)",
    },
    {
      source_labels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
      action: "replace",
      regex: "([^:]+)(?::\\d+)?;(\\d+)",
      replacement: "$1:$2",
      target_label: "__address__",
    },
    { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
    { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
    // `service` is what the alert route matches: the pod's label `service`, else its app's name (the last match wins).
    { source_labels: ["__meta_kubernetes_pod_label_app"], target_label: "service", regex: "(.+)" },
    { source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], target_label: "service", regex: "(.+)" },
    { source_labels: ["__meta_kubernetes_pod_label_service"], target_label: "service", regex: "(.+)" },
  ],
};

export interface ServiceMonitorArgs {
  /** metadata.name; default: the resource name */
  metadataName?: string;
  /** namespace of the ServiceMonitor itself */
  namespace: pulumi.Input<string>;
  /** namespace of the Service, when it is another one */
  targetNamespace?: pulumi.Input<string>;
  /** labels that select the Service */
  selector: Record<string, pulumi.Input<string>>;
  /** name of the Service port that serves metrics */
  port: string;
  /** default /metrics */
  path?: string;
  /** default 30s */
  interval?: string;
  /** endpoint relabelings (monitoring.coreos.com/v1 RelabelConfig), applied after the operator's own */
  relabelings?: Array<Record<string, unknown>>;
}

/**
 * A ServiceMonitor (Prometheus Operator). For the DARE services: call it with
 * `{ provider, parent: this, dependsOn: [monitoring] }` (the Monitoring component installs the CRD);
 * Prometheus selects ServiceMonitors in every namespace.
 */
export function serviceMonitor(
  name: string,
  args: ServiceMonitorArgs,
  opts: pulumi.CustomResourceOptions,
): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    name,
    {
      apiVersion: "monitoring.coreos.com/v1",
      kind: "ServiceMonitor",
      metadata: { name: args.metadataName ?? name, namespace: args.namespace },
      spec: {
        selector: { matchLabels: args.selector },
        ...(args.targetNamespace ? { namespaceSelector: { matchNames: [args.targetNamespace] } } : {}),
        endpoints: [
          {
            port: args.port,
            path: args.path ?? "/metrics",
            interval: args.interval ?? "30s",
            ...(args.relabelings ? { relabelings: args.relabelings } : {}),
          },
        ],
      },
    },
    opts,
  );
}

export class Monitoring extends pulumi.ComponentResource {
  /** https://<domain>/grafana */
  readonly grafanaUrl: string;
  readonly grafanaAdmin: { username: string; password: pulumi.Output<string> };
  /** in-cluster addresses (not exposed): kubectl -n monitoring port-forward svc/kps-prometheus 9090 */
  readonly prometheusUrl = PROMETHEUS_URL;
  readonly alertmanagerUrl = ALERTMANAGER_URL;
  readonly namespace = NS;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    const storageGb = args.prometheusStorageGb ?? 20;
    if (!Number.isInteger(storageGb) || storageGb < 1)
      throw new Error(`Monitoring: prometheusStorageGb must be a whole number ≥ 1 (got ${storageGb})`);
    // domain and clusterName were checked by the loader (lib/config.ts).
    super("dare:monitoring:Monitoring", name, {}, opts);
    const provider = args.provider;
    const child = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({ parent: this, provider, ...extra });
    this.grafanaUrl = `https://${args.domain}${GRAFANA_PATH}`;

    const ns = createNamespace("monitoring", child());
    const grafanaPassword = new random.RandomPassword(`${name}-grafana-admin`, { length: 32, special: false }, { parent: this });
    const grafanaSecret = new k8s.core.v1.Secret(
      `${name}-grafana-admin`,
      {
        metadata: { name: "grafana-admin", namespace: ns.metadata.name },
        stringData: { "admin-user": "admin", "admin-password": grafanaPassword.result },
      },
      child(),
    );
    const secretDeps: pulumi.Resource[] = [grafanaSecret];
    if (args.sso) {
      secretDeps.push(
        new k8s.core.v1.Secret(
          `${name}-grafana-oauth`,
          {
            metadata: { name: GRAFANA_OAUTH_SECRET, namespace: ns.metadata.name },
            stringData: { [GRAFANA_CLIENT_SECRET_VARIABLE]: args.sso.clientSecret },
          },
          child(),
        ),
      );
    }
    if (args.alerting?.smtpPassword) {
      secretDeps.push(
        new k8s.core.v1.Secret(
          `${name}-alertmanager-smtp`,
          {
            metadata: { name: SMTP_SECRET, namespace: ns.metadata.name },
            stringData: { password: args.alerting.smtpPassword },
          },
          child(),
        ),
      );
    }

    // The Prometheus Operator's CRDs are applied from the chart's source at its version, before the
    // release (helm.ts, CHART_CRDS): a chart version bump moves them too, which Helm's crds/ folder never did.
    const { release: stack, crds } = pinnedReleaseWithCrds(
      `${name}-kube-prometheus-stack`,
      {
        release: "kube-prometheus-stack",
        chart: CHARTS.kubePrometheusStack,
        mirror: args.chartMirror,
        // The operator, then Prometheus' volume from Ceph: more than Helm's default five minutes.
        timeout: 900,
        namespace: ns.metadata.name,
        values: {
          fullnameOverride: FULLNAME,
          // Replaced by the DARE rules of the same purpose (components/monitoring/alerts/workloads.yaml).
          defaultRules: { create: true, disabled: { KubePodCrashLooping: true, KubePersistentVolumeFillingUp: true } },
          // The control plane's and kube-proxy's metrics, which kubeadm-config.ts binds to every address.
          // The controller manager and scheduler serve HTTPS with a self-signed certificate kubeadm gives
          // no CA for: not verified; Prometheus still authenticates with its token, RBAC authorises.
          kubeControllerManager: {
            enabled: true,
            service: { port: METRICS_PORTS.controllerManager, targetPort: METRICS_PORTS.controllerManager },
            serviceMonitor: { https: true, insecureSkipVerify: true },
          },
          kubeScheduler: {
            enabled: true,
            service: { port: METRICS_PORTS.scheduler, targetPort: METRICS_PORTS.scheduler },
            serviceMonitor: { https: true, insecureSkipVerify: true },
          },
          // Kubelets serve certificates the cluster CA signs (serverTLSBootstrap, approved per node by the
          // kubelet-serving step): verified against the service account's ca.crt, the chart's caFile. The chart
          // skips verification by default for kubeadm's self-signed kubelet certificates.
          kubelet: { serviceMonitor: { https: true, insecureSkipVerify: false } },
          // etcd's metrics listener is plain HTTP (listen-metrics-urls), apart from its TLS client port.
          kubeEtcd: {
            enabled: true,
            service: { port: METRICS_PORTS.etcd, targetPort: METRICS_PORTS.etcd },
            serviceMonitor: { scheme: "http" },
          },
          kubeProxy: {
            enabled: true,
            service: { port: METRICS_PORTS.kubeProxy, targetPort: METRICS_PORTS.kubeProxy },
            serviceMonitor: { https: false },
          },
          // The textfile collector reads what host scripts export (the control planes' kubeadm certificate
          // expiry: k8s-certs-renew.sh), from their directory mounted read-only. prometheus-node-exporter 4.56.1
          // has no textfile option of its own: its values.yaml names `--collector.textfile.directory` under
          // extraArgs and mounts extraHostVolumeMounts (templates/daemonset.yaml). Setting extraArgs replaces
          // kube-prometheus-stack 88.5.3's two filesystem exclusions (its values.yaml), so they are repeated.
          "prometheus-node-exporter": {
            extraArgs: [...NODE_EXPORTER_CHART_ARGS, `--collector.textfile.directory=${NODE_EXPORTER_TEXTFILE_MOUNT}`],
            extraHostVolumeMounts: [
              {
                name: "dare-textfile",
                hostPath: NODE_EXPORTER_TEXTFILE_DIR,
                // Workers have none: created empty there.
                type: "DirectoryOrCreate",
                mountPath: NODE_EXPORTER_TEXTFILE_MOUNT,
                readOnly: true,
                mountPropagation: "HostToContainer",
              },
            ],
          },
          // The DARE workloads' `service` label (kube_*_labels) names the service their alerts are routed by.
          "kube-state-metrics": {
            metricLabelsAllowlist: [
              "deployments=[service]",
              "statefulsets=[service]",
              "pods=[service]",
              "persistentvolumeclaims=[service]",
            ],
          },
          alertmanager: {
            // The whole configuration as text: the chart's `config` only knows the keys of its default.
            tplConfig: true,
            stringConfig: YAML.stringify(alertmanagerConfig(args.alerting)),
            alertmanagerSpec: {
              secrets: args.alerting?.smtpPassword ? [SMTP_SECRET] : [],
              // Silences and the notification log survive a restart.
              storage: { volumeClaimTemplate: { spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } } },
            },
          },
          prometheus: {
            prometheusSpec: {
              externalLabels: { cluster: args.clusterName },
              // Select ServiceMonitors, PodMonitors and rules of every namespace, not only the chart's own.
              serviceMonitorSelectorNilUsesHelmValues: false,
              podMonitorSelectorNilUsesHelmValues: false,
              ruleSelectorNilUsesHelmValues: false,
              probeSelectorNilUsesHelmValues: false,
              scrapeConfigSelectorNilUsesHelmValues: false,
              retention: "15d",
              retentionSize: `${Math.floor(storageGb * 0.9)}GB`,
              storageSpec: {
                volumeClaimTemplate: { spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: `${storageGb}Gi` } } } },
              },
              additionalScrapeConfigs: [ANNOTATED_PODS_JOB],
            },
          },
          grafana: {
            admin: { existingSecret: grafanaSecret.metadata.name, userKey: "admin-user", passwordKey: "admin-password" },
            // Served under /grafana: Grafana builds its links from the root URL and strips the prefix itself.
            env: { GF_SERVER_ROOT_URL: this.grafanaUrl, GF_SERVER_SERVE_FROM_SUB_PATH: "true" },
            ...(args.sso
              ? {
                  "grafana.ini": grafanaOauthSettings(args.sso),
                  // One variable from one key of the Secret (envValueFrom), the client secret only.
                  envValueFrom: {
                    [GRAFANA_CLIENT_SECRET_VARIABLE]: { secretKeyRef: { name: GRAFANA_OAUTH_SECRET, key: GRAFANA_CLIENT_SECRET_VARIABLE } },
                  },
                  // A changed client secret restarts Grafana, which reads its environment only at start.
                  podAnnotations: { "dare.io/oauth-secret-hash": secretHash(args.sso.clientSecret) },
                }
              : {}),
            ingress: {
              enabled: true,
              ingressClassName: INGRESS_CLASS,
              hosts: [args.domain],
              path: GRAFANA_PATH,
              tls: domainTls(args.domain),
            },
            // The data sources are spelled out here rather than left to the chart's defaults.
            sidecar: { datasources: { defaultDatasourceEnabled: false, alertmanager: { enabled: false } } },
            additionalDataSources: [
              {
                name: "Prometheus",
                uid: "prometheus",
                type: "prometheus",
                access: "proxy",
                url: PROMETHEUS_URL,
                isDefault: true,
                jsonData: { timeInterval: "30s" },
              },
              {
                name: "Alertmanager",
                uid: "alertmanager",
                type: "alertmanager",
                access: "proxy",
                url: ALERTMANAGER_URL,
                jsonData: { implementation: "prometheus" },
              },
            ],
          },
        },
      },
      child({ dependsOn: secretDeps }),
    );

    // Objects of the operator's CRDs wait for the CRDs, and for the operator that acts on them.
    const afterStack = (extra: pulumi.CustomResourceOptions = {}) => child({ dependsOn: [...crds, stack], ...extra });

    for (const file of ruleFiles()) {
      new k8s.apiextensions.CustomResource(
        `${name}-rules-${file.name}`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PrometheusRule",
          metadata: { name: file.name, namespace: ns.metadata.name, labels: { "app.kubernetes.io/part-of": "dare-platform" } },
          spec: { groups: file.groups },
        },
        afterStack(),
      );
    }

    for (const d of dashboardFiles()) {
      new k8s.core.v1.ConfigMap(
        `${name}-dashboard-${d.name}`,
        {
          // Grafana's dashboard sidecar loads every ConfigMap with this label.
          metadata: { name: `grafana-dashboard-${d.name}`, namespace: ns.metadata.name, labels: { grafana_dashboard: "1" } },
          data: { [`${d.name}.json`]: d.json },
        },
        child(),
      );
    }

    // The layers below install before the monitoring CRDs exist, so their scrape targets are declared here.
    serviceMonitor(
      `${name}-rook-ceph-mgr`,
      {
        namespace: ns.metadata.name,
        targetNamespace: NAMESPACES.rookCeph.name,
        selector: { app: "rook-ceph-mgr" },
        port: "http-metrics",
      },
      afterStack(),
    );
    serviceMonitor(
      `${name}-cert-manager`,
      {
        namespace: ns.metadata.name,
        targetNamespace: NAMESPACES.certManager.name,
        selector: { "app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller" },
        // cert-manager 1.21 renamed its metrics port from tcp-prometheus-servicemonitor.
        port: "http-metrics",
      },
      afterStack(),
    );
    serviceMonitor(
      `${name}-keycloak`,
      {
        namespace: ns.metadata.name,
        targetNamespace: NAMESPACES.keycloak.name,
        selector: { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/component": "http" },
        port: "http-internal",
        path: "/auth/metrics",
      },
      afterStack(),
    );
    new k8s.apiextensions.CustomResource(
      `${name}-keycloak-db`,
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PodMonitor",
        metadata: { name: `${name}-keycloak-db`, namespace: ns.metadata.name },
        spec: {
          selector: { matchLabels: { "cnpg.io/cluster": "keycloak-db" } },
          namespaceSelector: { matchNames: [NAMESPACES.keycloak.name] },
          podMetricsEndpoints: [{ port: "metrics" }],
        },
      },
      afterStack(),
    );

    this.grafanaAdmin = { username: "admin", password: pulumi.secret(grafanaPassword.result) };
    this.registerOutputs({
      grafanaUrl: this.grafanaUrl,
      grafanaAdmin: this.grafanaAdmin,
      prometheusUrl: this.prometheusUrl,
      alertmanagerUrl: this.alertmanagerUrl,
    });
  }
}
