/**
 * Availability probes of the DARE services: the Prometheus blackbox exporter, in the monitoring
 * namespace, asks each service from outside the application whether it answers, in the cluster
 * (its Service) and through the ingress controller (the route users take). Prometheus scrapes one
 * `monitoring.coreos.com/v1` Probe per target; components/monitoring/alerts/dare-services.yaml alerts on
 * `probe_success == 0` with the `service` label the seed's Alertmanager route matches.
 *
 * Why probes: no DARE service is known to expose `/metrics` (../shared/dare-services.md), so scraping
 * them only produced targets that are always down.
 *
 * The exporter is installed as typed objects (no chart for it is in the offline chart mirror): a
 * ConfigMap with blackbox.yml, a Deployment (non-root, read-only root file system, no capabilities,
 * RuntimeDefault seccomp, probes on /-/healthy) and a Service. kube-prometheus-stack selects Probes of
 * every namespace (monitoring.ts: probeSelectorNilUsesHelmValues: false).
 *
 * Ingress probes do not use the public address: from a pod it is not always reachable (Octavia in
 * PROXY mode, host ports on other nodes). They ask the ingress controller's Service with the platform's
 * host name as `Host` header and TLS server name, so Traefik picks the same certificate and router as
 * for a user. The certificate is not verified: the probe tells whether the route answers; whether the
 * certificate is trusted and current is cert-manager's alerts' business (alerts/certificates.yaml:
 * CertificateExpiringSoon, CertificateNotReady), and a testbed on letsencrypt-staging or the dare-ca
 * issuer would otherwise fail every ingress probe for a reason that is not availability.
 */
import { createHash } from "crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { NAMESPACES } from "../../lib/namespaces";
import { CONFIG_KEYS } from "../../lib/config-keys";

/** Default image: the upstream release v0.28.0 (2025-12-04, tag commit 5a059bee). */
/** The pinned image (declared with the other images in config-keys.ts, dare:images.blackbox-exporter). */
export const BLACKBOX_EXPORTER_IMAGE = CONFIG_KEYS.images.default["blackbox-exporter"];

export type ProbeModule = "http_2xx" | "http_reachable" | "tcp_connect";
export const PROBE_MODULES: readonly ProbeModule[] = ["http_2xx", "http_reachable", "tcp_connect"];

export interface ProbeTarget {
  /** the `service` label of the alert (the Alertmanager route matches it): dare-login, d4p-registry, sprov, cwl, … */
  service: string;
  /** the workload probed, e.g. "sprov" (becomes the `workload` label) */
  workload: string;
  /** "cluster": the Service directly; "ingress": through the ingress controller with the platform's host name */
  via: "cluster" | "ingress";
  /** cluster: `http://sprov.dare.svc:8082/` (http modules) or `sprov.dare.svc:8082` (tcp_connect); ingress: the path on the public host, e.g. `/prov/` */
  target: string;
  module: ProbeModule;
}

export interface AvailabilityProbesArgs {
  /** the cluster's provider (KubernetesCluster.provider) */
  provider: k8s.Provider;
  /** blackbox exporter image with an explicit tag or digest, e.g. BLACKBOX_EXPORTER_IMAGE */
  image: string;
  /** the platform's public host name: `Host` header and TLS server name of the ingress probes */
  domain: string;
  /** in-cluster https URL of the ingress controller's Service, e.g. https://traefik.traefik.svc */
  ingressServiceUrl: string;
  /** what to probe: at most one target per workload and `via` */
  targets: ProbeTarget[];
  /** the Monitoring component: it creates the monitoring namespace and installs the Probe CRD */
  monitoring: pulumi.Resource;
  /** how often each target is probed (a Prometheus duration, 10s to 2m; default 30s) */
  interval?: string;
}

const NS = NAMESPACES.monitoring.name;
const NAME = "blackbox-exporter";
const PORT = 9115;
const CONFIG_DIR = "/etc/blackbox_exporter";
/** The `job` label of every probe series: the alert rules select on it. */
export const PROBE_JOB = "dare-availability";
/** Address Prometheus scrapes the probes from (Probe `prober.url`: host:port, no scheme). */
export const PROBER_ADDRESS = `${NAME}.${NS}.svc:${PORT}`;
/** Each probe gives up after this long; Prometheus' scrape timeout (10 s) is longer. */
const PROBE_TIMEOUT = "5s";

/**
 * Answers the application itself gives when it is up but the probe is not signed in or asks for a
 * path it does not serve: 2xx, 3xx (redirects are not followed), 401, 403, 404, 405. Not 5xx:
 * Traefik answers 502/503/504 when the backend is down or has no endpoint. Blackbox knows no ranges.
 */
export const REACHABLE_STATUS_CODES = [
  200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 401, 403, 404, 405,
] as const;

/**
 * Traefik's own answer for a host and path no router matches (Go's http.NotFound body). An
 * application's 404 (Django, nginx, Tomcat) says something else: through the ingress, this body means
 * the route is missing, not that the application answered.
 */
export const TRAEFIK_NOT_FOUND_BODY = "^404 page not found\\n?$";

/** The blackbox module name of a target: the ingress variants carry the host name and TLS settings. */
export function moduleName(target: Pick<ProbeTarget, "via" | "module">): string {
  return target.via === "ingress" ? `ingress_${target.module}` : target.module;
}

/**
 * blackbox.yml. Redirects are never followed: a cluster probe would follow them to the public URL,
 * which pods may not reach, and the answer of the probed endpoint itself is what counts. IPv4 first:
 * the cluster's pod and Service networks are IPv4.
 */
export function blackboxConfig(domain: string): Record<string, unknown> {
  const http = { preferred_ip_protocol: "ip4", follow_redirects: false };
  const reachable = { ...http, valid_status_codes: [...REACHABLE_STATUS_CODES] };
  const ingress = {
    headers: { Host: domain },
    tls_config: { server_name: domain, insecure_skip_verify: true },
    fail_if_not_ssl: true,
  };
  return {
    modules: {
      http_2xx: { prober: "http", timeout: PROBE_TIMEOUT, http },
      http_reachable: { prober: "http", timeout: PROBE_TIMEOUT, http: reachable },
      tcp_connect: { prober: "tcp", timeout: PROBE_TIMEOUT, tcp: { preferred_ip_protocol: "ip4" } },
      ingress_http_2xx: { prober: "http", timeout: PROBE_TIMEOUT, http: { ...http, ...ingress } },
      ingress_http_reachable: {
        prober: "http",
        timeout: PROBE_TIMEOUT,
        http: { ...reachable, ...ingress, fail_if_body_matches_regexp: [TRAEFIK_NOT_FOUND_BODY] },
      },
    },
  };
}

/** blackbox.yml as the ConfigMap holds it (plain YAML, no anchors). */
export function renderBlackboxConfig(domain: string): string {
  return YAML.stringify(blackboxConfig(domain), { aliasDuplicateObjects: false });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
/** A Service's in-cluster name, <service>.<namespace>.svc[.cluster.local]: the exporter runs in another namespace. */
const SERVICE_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

function seconds(duration: string): number | undefined {
  const m = DURATION.exec(duration);
  if (!m || duration === "") return undefined;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

function port(value: string): boolean {
  return /^\d{1,5}$/.test(value) && Number(value) >= 1 && Number(value) <= 65535;
}

/** What a valid target becomes: the URL the exporter asks, the labels of its series. */
export interface ResolvedTarget extends ProbeTarget {
  /** the exporter's `target` parameter */
  proberTarget: string;
  /** the address a person would use: the public URL for ingress probes */
  url: string;
  /** namespace of the probed Service (cluster targets, and ingress targets of a workload that has one) */
  namespace?: string;
}

/**
 * Checks the arguments and resolves every target; throws one message listing every problem.
 * Exported for the tests and for callers that want the check before building anything.
 */
export function resolveTargets(
  args: Pick<AvailabilityProbesArgs, "domain" | "ingressServiceUrl" | "targets">,
  who = "AvailabilityProbes",
): ResolvedTarget[] {
  const problems: string[] = [];
  if (!DNS_NAME.test(args.domain ?? "")) problems.push(`domain must be a DNS name (got "${args.domain}")`);
  const ingressBase = /^https:\/\/([a-z0-9.-]+)(:\d{1,5})?\/?$/.exec(args.ingressServiceUrl ?? "");
  if (!ingressBase)
    problems.push(
      `ingressServiceUrl must be an https:// URL of a Service without path, e.g. https://traefik.traefik.svc (got "${args.ingressServiceUrl}")`,
    );
  const base = (args.ingressServiceUrl ?? "").replace(/\/$/, "");
  if (!Array.isArray(args.targets) || args.targets.length === 0) problems.push("targets must list at least one target");

  const seen = new Set<string>();
  const resolved: ResolvedTarget[] = [];
  for (const [i, t] of (args.targets ?? []).entries()) {
    const where = `targets[${i}] (${t.workload ?? "?"} via ${t.via ?? "?"})`;
    const bad = (why: string) => problems.push(`${where}: ${why}`);
    if (!DNS_LABEL.test(t.service ?? "")) bad(`service must be a lower-case label such as "sprov" (got "${t.service}")`);
    if (!DNS_LABEL.test(t.workload ?? "")) bad(`workload must be a DNS label such as "sprov" (got "${t.workload}")`);
    if (t.via !== "cluster" && t.via !== "ingress") {
      bad(`via must be "cluster" or "ingress" (got "${t.via}")`);
      continue;
    }
    if (!PROBE_MODULES.includes(t.module)) {
      bad(`unknown module "${t.module}": one of ${PROBE_MODULES.join(", ")}`);
      continue;
    }
    const key = `${t.workload}/${t.via}`;
    if (seen.has(key)) bad(`duplicate: ${t.workload} is already probed via ${t.via} (one target per workload and via)`);
    seen.add(key);
    const target = t.target ?? "";

    if (t.via === "ingress") {
      if (t.module === "tcp_connect") {
        bad("tcp_connect through the ingress would only test the ingress controller's port: use http_reachable");
        continue;
      }
      if (!/^\/[^\s?#]*$/.test(target)) {
        bad(`an ingress target is a path on the public host starting with "/", e.g. "/prov/" (got "${target}")`);
        continue;
      }
      resolved.push({ ...t, proberTarget: `${base}${target}`, url: `https://${args.domain}${target}` });
      continue;
    }
    if (t.module === "tcp_connect") {
      const m = /^([^:/]+):(\d+)$/.exec(target);
      const host = m ? SERVICE_HOST.exec(m[1]) : null;
      if (!m || !host || !port(m[2])) {
        bad(`a tcp_connect target is <service>.<namespace>.svc:<port>, e.g. "sprov.dare.svc:8082" (got "${target}")`);
        continue;
      }
      resolved.push({ ...t, proberTarget: target, url: target, namespace: host[3] });
      continue;
    }
    const m = /^http:\/\/([^:/]+)(?::(\d+))?(\/[^\s#]*)?$/.exec(target);
    const host = m ? SERVICE_HOST.exec(m[1]) : null;
    if (!m || !host || (m[2] !== undefined && !port(m[2]))) {
      bad(
        `a cluster ${t.module} target is http://<service>.<namespace>.svc[:port]/path, e.g. "http://sprov.dare.svc:8082/" (got "${target}")`,
      );
      continue;
    }
    resolved.push({ ...t, proberTarget: target, url: target, namespace: host[3] });
  }
  if (problems.length > 0) throw new Error(`${who}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
  // An ingress probe is labelled with the namespace of the same workload's Service, when it is probed too.
  for (const r of resolved.filter((x) => x.via === "ingress")) {
    r.namespace = resolved.find((x) => x.via === "cluster" && x.workload === r.workload)?.namespace;
  }
  return resolved;
}

/** The labels of a target's series (and so of its alerts), besides `job` and `instance`. */
export function probeLabels(t: ResolvedTarget): Record<string, string> {
  return {
    service: t.service,
    workload: t.workload,
    via: t.via,
    module: t.module,
    url: t.url,
    ...(t.namespace ? { namespace: t.namespace } : {}),
  };
}

export class AvailabilityProbes extends pulumi.ComponentResource {
  /** Address of the exporter (host:port): kubectl -n monitoring port-forward svc/blackbox-exporter 9115, then /probe?debug=true&module=…&target=… */
  readonly proberAddress = PROBER_ADDRESS;
  /** metadata.name of each Probe, in the order of args.targets */
  readonly probeNames: string[];

  constructor(name: string, args: AvailabilityProbesArgs, opts?: pulumi.ComponentResourceOptions) {
    // The image is dare:images["blackbox-exporter"], which the loader checked (lib/config.ts, parseImage).
    const interval = args.interval ?? "30s";
    const every = seconds(interval);
    if (every === undefined || every < 10 || every > 120) {
      throw new Error(
        `${name}: interval must be a Prometheus duration from 10s to 2m, e.g. "30s" (got "${interval}"): the scrape timeout is 10s, and the alerts wait 5m`,
      );
    }
    const targets = resolveTargets(args, name);
    super("dare:monitoring:AvailabilityProbes", name, {}, opts);

    const provider = args.provider;
    // Everything waits for Monitoring: it creates the namespace and the Probe CRD.
    const child = (): pulumi.CustomResourceOptions => ({ parent: this, provider, dependsOn: [args.monitoring] });
    const labels = { "app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "dare-platform" };
    const config = renderBlackboxConfig(args.domain);

    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      {
        metadata: { name: `${NAME}-config`, namespace: NS, labels },
        data: { "blackbox.yml": config },
      },
      child(),
    );

    const restricted = { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: "RuntimeDefault" } };
    const health = { httpGet: { path: "/-/healthy", port: "http" } };
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: NAME, namespace: NS, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: {
              labels,
              // A new configuration rolls the pod.
              annotations: { "checksum/config": createHash("sha256").update(config).digest("hex") },
            },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: restricted,
              containers: [
                {
                  name: NAME,
                  image: args.image,
                  args: [`--config.file=${CONFIG_DIR}/blackbox.yml`, `--web.listen-address=:${PORT}`],
                  ports: [{ name: "http", containerPort: PORT, protocol: "TCP" }],
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                  livenessProbe: { ...health, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 },
                  readinessProbe: { ...health, periodSeconds: 10, timeoutSeconds: 5 },
                  resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                  volumeMounts: [{ name: "config", mountPath: CONFIG_DIR, readOnly: true }],
                },
              ],
              volumes: [{ name: "config", configMap: { name: configMap.metadata.name } }],
            },
          },
        },
      },
      child(),
    );

    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: NAME, namespace: NS, labels },
        spec: {
          type: "ClusterIP",
          selector: labels,
          ports: [{ name: "http", port: PORT, targetPort: "http", protocol: "TCP" }],
        },
      },
      child(),
    );

    this.probeNames = targets.map((t) => `dare-${t.workload}-${t.via}`);
    targets.forEach((t, i) => {
      new k8s.apiextensions.CustomResource(
        `${name}-${t.workload}-${t.via}`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "Probe",
          metadata: { name: this.probeNames[i], namespace: NS, labels: { "app.kubernetes.io/part-of": "dare-platform" } },
          spec: {
            jobName: PROBE_JOB,
            interval,
            module: moduleName(t),
            prober: { url: PROBER_ADDRESS, scheme: "http", path: "/probe" },
            targets: { staticConfig: { static: [t.proberTarget], labels: probeLabels(t) } },
          },
        },
        { ...child(), dependsOn: [args.monitoring, service, deployment] },
      );
    });

    this.registerOutputs({ proberAddress: this.proberAddress, probeNames: this.probeNames });
  }
}
