/**
 * Layer 8, the DARE services: dare-login, the dispel4py registry (with MySQL), exec-api and its
 * registry, the playground, the CWL workflow registry, semantic-data, s-ProvFlow (API, MongoDB, viewer,
 * cron job), the shared file system (CephFS, ReadWriteMany) and, optionally, JupyterHub.
 *
 * Every workload is declared from one table (`WORKLOADS`), and every network path from one call graph
 * (`CALL_GRAPH`): the NetworkPolicies are derived from it, so a call the graph does not name is refused.
 * What is known of each service comes from ../shared/dare-services.md; what is not (most ports and
 * tags) is configuration with documented defaults.
 */
import * as k8s from "@pulumi/kubernetes";
import { pinnedRelease } from "./helm";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DareWorkload, ImageName, ServiceSizing } from "./config";
import { createNamespace, NAMESPACES } from "./namespaces";
import { domainTls } from "./security";
import { SCRAPED_BY_SERVICE_MONITOR, serviceMonitor } from "./monitoring";
import { ACME_SOLVER_POLICY, INGRESS_CONTROLLER_PEER, MONITORING_PEER } from "./network-policies";

/** Where exec-api and the execution pods expect users' files (`<sfs>/<user>/{uploads,runs,debug}`). */
export const SHARED_FS_MOUNT = "/home/mpiuser/sfs";
export const SHARED_FS_CLAIM = "dare-sfs";
export const MYSQL_DATABASE = "dj_vercereg";
export const MYSQL_USER = "d4p";
export const SPROV_DATABASE = "sprov-db";
export const SPROV_USER = "sprov";
/** The z2jh chart (jupyterhub/zero-to-jupyterhub-k8s tag 4.4.0, 2026-06-10). */
export const JUPYTERHUB_CHART = { repo: "https://hub.jupyter.org/helm-chart/", chart: "jupyterhub", version: "4.4.0" };
/** Labels MPIJob pods carry (kubeflow/mpi-operator v2beta1 constants.go, OperatorNameLabel). */
export const MPI_JOB_POD_LABELS = { "training.kubeflow.org/operator-name": "mpi-operator" };

type Probe = { http: string } | { tcp: true } | { exec: string[] };

interface WorkloadSpec {
  kind: "Deployment" | "StatefulSet" | "CronJob";
  /** the value of the `service` label the Alertmanager routes match */
  monitoringService: string;
  /** path prefix on the Ingress; the prefix is stripped unless `keepPrefix` */
  ingressPath?: string;
  keepPrefix?: boolean;
  probe: Probe;
  /** mounts the shared file system at SHARED_FS_MOUNT */
  sharedFs?: boolean;
  /** exports metrics for Prometheus on its port */
  scraped: boolean;
}

const DB_PING_MYSQL = ["mysqladmin", "ping", "-h", "127.0.0.1"];
const DB_PING_MONGO = ["mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"];

/** Every DARE workload. `service` labels follow the original guide's alert route (cwl, sprov, …). */
export const WORKLOADS: Record<DareWorkload, WorkloadSpec> = {
  "dare-login": { kind: "Deployment", monitoringService: "dare-login", ingressPath: "/dare-login", probe: { tcp: true }, scraped: true },
  "d4p-registry": { kind: "Deployment", monitoringService: "d4p-registry", ingressPath: "/d4p-registry", probe: { tcp: true }, scraped: true },
  "d4p-registry-db": { kind: "StatefulSet", monitoringService: "d4p-registry", probe: { exec: DB_PING_MYSQL }, scraped: false },
  "exec-api": { kind: "Deployment", monitoringService: "exec-api", ingressPath: "/exec-api", probe: { tcp: true }, sharedFs: true, scraped: true },
  "exec-registry": { kind: "Deployment", monitoringService: "exec-registry", ingressPath: "/exec-registry", probe: { tcp: true }, sharedFs: true, scraped: true },
  "playground": { kind: "Deployment", monitoringService: "playground", ingressPath: "/playground", probe: { tcp: true }, scraped: true },
  "workflow-registry": { kind: "Deployment", monitoringService: "cwl", ingressPath: "/workflow-registry", probe: { tcp: true }, scraped: true },
  "semantic-data": { kind: "Deployment", monitoringService: "semantic-data", ingressPath: "/semantic-data", probe: { tcp: true }, scraped: true },
  // s-ProvFlow's API answers "This is the s-prov service" on GET /.
  "sprov": { kind: "Deployment", monitoringService: "sprov", ingressPath: "/prov", probe: { http: "/" }, scraped: true },
  "sprov-db": { kind: "StatefulSet", monitoringService: "sprov", probe: { exec: DB_PING_MONGO }, scraped: false },
  // Tomcat serves the viewer under its own context path, so the prefix stays.
  "sprov-view": { kind: "Deployment", monitoringService: "sprov", ingressPath: "/sprovflow-viewer", keepPrefix: true, probe: { tcp: true }, scraped: true },
  "sprov-cronjob": { kind: "CronJob", monitoringService: "sprov", probe: { tcp: true }, scraped: false },
};

/** Peers outside the DARE workloads that appear in the call graph. */
export type ExternalPeer = "keycloak" | "kubernetes-api" | "ingress-controller" | "monitoring" | "backups" | "mpi-jobs";
export type Peer = DareWorkload | ExternalPeer;

const APPS = (Object.keys(WORKLOADS) as DareWorkload[]).filter((w) => WORKLOADS[w].kind !== "StatefulSet");

/**
 * Who calls whom. dare-login creates users in the registries and exec-api; exec-api reads the
 * registries and starts MPIJobs through the Kubernetes API; every service validates tokens at Keycloak;
 * the ingress controller reaches what is exposed, Prometheus what is scraped, the backup jobs the databases.
 */
export const CALL_GRAPH: Array<[Peer, Peer]> = [
  ["dare-login", "d4p-registry"], ["dare-login", "workflow-registry"], ["dare-login", "exec-api"],
  ["exec-api", "d4p-registry"], ["exec-api", "workflow-registry"], ["exec-api", "exec-registry"], ["exec-api", "kubernetes-api"],
  ["d4p-registry", "d4p-registry-db"],
  ["sprov", "sprov-db"], ["sprov-view", "sprov"], ["sprov-cronjob", "sprov-db"],
  ["mpi-jobs", "mpi-jobs"],
  ...APPS.map((w): [Peer, Peer] => [w, "keycloak"]),
  ...(Object.keys(WORKLOADS) as DareWorkload[]).filter((w) => WORKLOADS[w].ingressPath).map((w): [Peer, Peer] => ["ingress-controller", w]),
  ...(Object.keys(WORKLOADS) as DareWorkload[]).filter((w) => WORKLOADS[w].scraped).map((w): [Peer, Peer] => ["monitoring", w]),
  ["backups", "d4p-registry-db"], ["backups", "sprov-db"],
];

export interface KeycloakClient {
  /** Keycloak's base URL as dare-login calls it, e.g. https://dare.example.org/auth */
  url: pulumi.Input<string>;
  realm: pulumi.Input<string>;
  clientId: pulumi.Input<string>;
  /** the confidential client's secret (Pulumi secret) */
  clientSecret: pulumi.Input<string>;
  /** the admin user dare-login creates users with */
  adminUsername: pulumi.Input<string>;
  /** its password (Pulumi secret) */
  adminPassword: pulumi.Input<string>;
}

export interface DareServicesArgs {
  /** Helm repository every chart of this layer is pulled from instead of its upstream one (dare:chartMirror). */
  chartMirror?: string;
  /** Provider of the cluster the services run in. */
  provider: k8s.Provider;
  /** DNS name the Ingress serves (dare:domain). */
  domain: string;
  /** Image and pinned tag per workload. */
  images: Record<ImageName, string>;
  /** Replicas, port, requests/limits and volume size per workload. */
  services: Record<DareWorkload, ServiceSizing>;
  /** Size of the shared file system (CephFS). */
  sharedFilesystemSize: string;
  /** Keycloak and dare-login's client in it, from the A/A layer. */
  keycloak: KeycloakClient;
  /** IngressClass of the ingress controller (Traefik). */
  ingressClassName?: string;
  /** Pod port Keycloak listens on inside its namespace (keycloakx: 8080). */
  keycloakPort?: number;
  /** Pod port of the ingress controller's HTTPS entry point: calls to Keycloak's public URL arrive there (Traefik: 8443). */
  ingressHttpsPort?: number;
  /** Addresses (CIDR) of the Kubernetes API as pods reach it after Service translation: control planes and the API load balancer. */
  apiServerCidrs: pulumi.Input<string[]>;
  /** Port of the Kubernetes API on those addresses. */
  apiServerPort?: number;
  /** Block StorageClass for the databases. */
  blockStorageClass?: string;
  /** ReadWriteMany StorageClass for the shared file system. */
  sharedStorageClass?: string;
  /** Install JupyterHub in its own namespace at /jupyter. */
  jupyterhub: boolean;
  /** What installs the ServiceMonitor CRD (the Monitoring component): the services' ServiceMonitors wait for it. */
  monitoring: pulumi.Resource;
}

export class DareServices extends pulumi.ComponentResource {
  /** The DARE namespace. */
  public readonly namespace: string;
  /** https://<domain>: where the services are routed by path. */
  public readonly url: string;
  /** MySQL root password of d4p-registry's database (secret), for the dump job. */
  public readonly mysqlRootPassword: pulumi.Output<string>;
  /** MongoDB root password of s-ProvFlow's database (secret), for the dump job. */
  public readonly mongoRootPassword: pulumi.Output<string>;
  /** In-cluster host names of the databases. */
  public readonly mysqlHost: string;
  public readonly mongoHost: string;
  /** The ServiceAccount exec-api starts MPIJobs as. */
  public readonly execApiServiceAccount: string;

  private readonly opts: pulumi.CustomResourceOptions;

  constructor(name: string, args: DareServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dare:services:DareServices", name, {}, opts);

    for (const [workload, sizing] of Object.entries(args.services)) {
      if (WORKLOADS[workload as DareWorkload].kind === "StatefulSet" && sizing.replicas !== 1) {
        throw new Error(`${name}: ${workload} is a single-instance database; replicas must be 1, got ${sizing.replicas}`);
      }
    }
    if (!args.domain) throw new Error(`${name}: domain is required: the Ingress serves the services under it`);

    this.opts = { provider: args.provider, parent: this };
    const ns = createNamespace("dare", this.opts);
    this.namespace = NAMESPACES.dare.name;
    const nsOpts = { ...this.opts, dependsOn: [ns] };
    this.url = `https://${args.domain}`;

    const password = (id: string) => new random.RandomPassword(`${name}-${id}`, { length: 32, special: false }, { parent: this }).result;

    // --- Shared file system: users' uploads, runs and debug output; exec-api and MPIJobs mount it.
    new k8s.core.v1.PersistentVolumeClaim(`${name}-sfs`, {
      metadata: { name: SHARED_FS_CLAIM, namespace: this.namespace, labels: { service: "dare-shared-volumes", "app.kubernetes.io/part-of": "dare" } },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: args.sharedStorageClass ?? "rook-cephfs",
        resources: { requests: { storage: args.sharedFilesystemSize } },
      },
    }, nsOpts);

    // --- Secrets: every value generated here or handed over as a Pulumi secret.
    const mysqlRoot = password("mysql-root");
    const mysqlApp = password("mysql-app");
    const mongoRoot = password("mongo-root");
    const mongoApp = password("mongo-sprov");
    this.mysqlRootPassword = pulumi.secret(mysqlRoot);
    this.mongoRootPassword = pulumi.secret(mongoRoot);
    this.mysqlHost = `d4p-registry-db.${this.namespace}.svc`;
    this.mongoHost = `sprov-db.${this.namespace}.svc`;
    const secret = (id: string, data: Record<string, pulumi.Input<string>>) =>
      new k8s.core.v1.Secret(`${name}-${id}`, {
        metadata: { name: id, namespace: this.namespace, labels: { "app.kubernetes.io/part-of": "dare" } },
        type: "Opaque",
        stringData: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, pulumi.secret(v)])),
      }, nsOpts);
    secret("d4p-registry-db", { MYSQL_ROOT_PASSWORD: mysqlRoot, MYSQL_PASSWORD: mysqlApp });
    // s-ProvFlow builds mongodb://$SPROV_DB_HOST/$SPROV_DB: the credentials ride in the host part.
    secret("sprov-db", {
      MONGO_INITDB_ROOT_PASSWORD: mongoRoot,
      SPROV_DB_PASSWORD: mongoApp,
      SPROV_DB_HOST: pulumi.interpolate`${SPROV_USER}:${mongoApp}@sprov-db`,
    });
    secret("dare-login", {
      CLIENT_SECRET: args.keycloak.clientSecret,
      ADMIN_PASSWORD: args.keycloak.adminPassword,
    });
    const fromSecret = (secretName: string, key: string, env = key): k8s.types.input.core.v1.EnvVar =>
      ({ name: env, valueFrom: { secretKeyRef: { name: secretName, key } } });

    // MongoDB creates the application user on first start (docker-entrypoint-initdb.d).
    new k8s.core.v1.ConfigMap(`${name}-sprov-db-init`, {
      metadata: { name: "sprov-db-init", namespace: this.namespace },
      data: {
        "create-sprov-user.js": [
          "// Runs once, on an empty data directory: s-ProvFlow's own user, limited to its database.",
          "db.getSiblingDB(process.env.SPROV_DB).createUser({",
          "  user: process.env.SPROV_DB_USER,",
          "  pwd: process.env.SPROV_DB_PASSWORD,",
          "  roles: [{ role: 'readWrite', db: process.env.SPROV_DB }],",
          "});",
          "",
        ].join("\n"),
      },
    }, nsOpts);

    // --- exec-api's identity: MPIJobs and pods in this namespace, nothing else.
    this.execApiServiceAccount = "exec-api";
    new k8s.core.v1.ServiceAccount(`${name}-exec-api`, {
      metadata: { name: this.execApiServiceAccount, namespace: this.namespace },
    }, nsOpts);
    new k8s.rbac.v1.Role(`${name}-exec-api`, {
      metadata: { name: "exec-api-mpijobs", namespace: this.namespace },
      rules: [
        { apiGroups: ["kubeflow.org"], resources: ["mpijobs"], verbs: ["create", "get", "list", "watch", "delete"] },
        { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "watch", "delete"] },
        // /my-pods shows users their runs' logs.
        { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      ],
    }, nsOpts);
    new k8s.rbac.v1.RoleBinding(`${name}-exec-api`, {
      metadata: { name: "exec-api-mpijobs", namespace: this.namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "exec-api-mpijobs" },
      subjects: [{ kind: "ServiceAccount", name: this.execApiServiceAccount, namespace: this.namespace }],
    }, nsOpts);

    const env: Partial<Record<DareWorkload, k8s.types.input.core.v1.EnvVar[]>> = {
      "dare-login": [
        { name: "KEYCLOAK_DOMAIN", value: args.keycloak.url },
        { name: "KEYCLOAK_REALM", value: args.keycloak.realm },
        { name: "CLIENT_ID", value: args.keycloak.clientId },
        fromSecret("dare-login", "CLIENT_SECRET"),
        { name: "ADMIN_USERNAME", value: args.keycloak.adminUsername },
        fromSecret("dare-login", "ADMIN_PASSWORD"),
      ],
      "d4p-registry": [
        { name: "MYSQL_HOST", value: "d4p-registry-db" },
        { name: "MYSQL_PORT", value: String(args.services["d4p-registry-db"].port) },
        { name: "MYSQL_DATABASE", value: MYSQL_DATABASE },
        { name: "MYSQL_USER", value: MYSQL_USER },
        fromSecret("d4p-registry-db", "MYSQL_PASSWORD"),
      ],
      "d4p-registry-db": [
        { name: "MYSQL_DATABASE", value: MYSQL_DATABASE },
        { name: "MYSQL_USER", value: MYSQL_USER },
        fromSecret("d4p-registry-db", "MYSQL_ROOT_PASSWORD"),
        fromSecret("d4p-registry-db", "MYSQL_PASSWORD"),
      ],
      "sprov-db": [
        { name: "MONGO_INITDB_ROOT_USERNAME", value: "root" },
        fromSecret("sprov-db", "MONGO_INITDB_ROOT_PASSWORD"),
        { name: "SPROV_DB", value: SPROV_DATABASE },
        { name: "SPROV_DB_USER", value: SPROV_USER },
        fromSecret("sprov-db", "SPROV_DB_PASSWORD"),
      ],
    };
    const sprovClientEnv = [
      { name: "SPROV_DB", value: SPROV_DATABASE },
      { name: "SPROV_DB_PORT", value: String(args.services["sprov-db"].port) },
      fromSecret("sprov-db", "SPROV_DB_HOST"),
    ];
    env["sprov"] = sprovClientEnv;
    env["sprov-cronjob"] = sprovClientEnv;

    for (const workload of Object.keys(WORKLOADS) as DareWorkload[]) {
      this.workload(name, workload, args, env[workload] ?? [], nsOpts);
    }

    this.ingress(name, args, nsOpts);
    this.networkPolicies(name, args, nsOpts);
    if (args.jupyterhub) this.jupyterhub(name, args);

    this.registerOutputs({ namespace: this.namespace, url: this.url });
  }

  private workload(name: string, workload: DareWorkload, args: DareServicesArgs, env: k8s.types.input.core.v1.EnvVar[], opts: pulumi.CustomResourceOptions): void {
    const spec = WORKLOADS[workload];
    const sizing = args.services[workload];
    const port = sizing.port;
    const labels = { app: workload, service: spec.monitoringService, "app.kubernetes.io/name": workload, "app.kubernetes.io/part-of": "dare" };
    const selector = { app: workload };
    const probeHandler = "http" in spec.probe ? { httpGet: { path: spec.probe.http, port } }
      : "exec" in spec.probe ? { exec: { command: spec.probe.exec } }
      : { tcpSocket: { port } };
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [];
    const volumes: k8s.types.input.core.v1.Volume[] = [];
    if (spec.sharedFs) {
      mounts.push({ name: "sfs", mountPath: SHARED_FS_MOUNT });
      volumes.push({ name: "sfs", persistentVolumeClaim: { claimName: SHARED_FS_CLAIM } });
    }
    if (workload === "sprov-db") {
      mounts.push({ name: "init", mountPath: "/docker-entrypoint-initdb.d", readOnly: true });
      volumes.push({ name: "init", configMap: { name: "sprov-db-init" } });
    }
    if (spec.kind === "StatefulSet") {
      mounts.push({ name: "data", mountPath: workload === "d4p-registry-db" ? "/var/lib/mysql" : "/data/db" });
    }
    const container: k8s.types.input.core.v1.Container = {
      name: workload,
      image: args.images[workload],
      env,
      ports: spec.kind === "CronJob" ? undefined : [{ name: "main", containerPort: port }],
      resources: { requests: sizing.requests, limits: sizing.limits },
      volumeMounts: mounts,
      securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: "RuntimeDefault" } },
      ...(spec.kind === "CronJob" ? {} : {
        readinessProbe: { ...probeHandler, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
        // Databases replay their logs after a crash: give them time before the first liveness check.
        livenessProbe: { ...probeHandler, initialDelaySeconds: spec.kind === "StatefulSet" ? 60 : 20, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
      }),
    };
    const annotations: Record<string, string> = spec.scraped
      ? { "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" }
      : {};
    const podSpec: k8s.types.input.core.v1.PodSpec = {
      containers: [container],
      volumes,
      serviceAccountName: workload === "exec-api" ? this.execApiServiceAccount : undefined,
      // Only exec-api talks to the Kubernetes API.
      automountServiceAccountToken: workload === "exec-api",
      ...(spec.kind === "StatefulSet" ? { securityContext: { fsGroup: 999 } } : {}),
    };
    // A ServiceMonitor scrapes the pods behind a Service; the annotations stay (the seed's convention),
    // and this label keeps the annotation job off those pods, so that nothing is scraped twice.
    const monitoredByService = spec.scraped && spec.kind !== "CronJob";
    const podLabels = monitoredByService ? { ...labels, ...SCRAPED_BY_SERVICE_MONITOR } : labels;
    const template = { metadata: { labels: podLabels, annotations }, spec: podSpec };
    const metadata = { name: workload, namespace: this.namespace, labels };

    if (spec.kind === "Deployment") {
      new k8s.apps.v1.Deployment(`${name}-${workload}`, {
        metadata,
        spec: { replicas: sizing.replicas, selector: { matchLabels: selector }, template },
      }, opts);
    } else if (spec.kind === "StatefulSet") {
      new k8s.apps.v1.StatefulSet(`${name}-${workload}`, {
        metadata,
        spec: {
          replicas: 1,
          serviceName: workload,
          selector: { matchLabels: selector },
          template,
          volumeClaimTemplates: [{
            metadata: { name: "data", labels: { service: spec.monitoringService } },
            spec: {
              accessModes: ["ReadWriteOnce"],
              storageClassName: args.blockStorageClass ?? "rook-ceph-block",
              resources: { requests: { storage: sizing.storageSize } },
            },
          }],
        },
      }, opts);
    } else {
      new k8s.batch.v1.CronJob(`${name}-${workload}`, {
        metadata,
        spec: {
          // The cron job's task is the image's own entry point; hourly is the platform's default.
          schedule: "0 * * * *",
          concurrencyPolicy: "Forbid",
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 3,
          jobTemplate: {
            spec: {
              backoffLimit: 2,
              activeDeadlineSeconds: 3000,
              template: { metadata: { labels, annotations }, spec: { ...podSpec, restartPolicy: "OnFailure" } },
            },
          },
        },
      }, opts);
      return;
    }

    new k8s.core.v1.Service(`${name}-${workload}`, {
      metadata: { name: workload, namespace: this.namespace, labels },
      spec: {
        type: "ClusterIP",
        // A StatefulSet's governing Service is headless: clients reach the one pod by name.
        ...(spec.kind === "StatefulSet" ? { clusterIP: "None" } : {}),
        selector,
        ports: [{ name: "main", port, targetPort: port }],
      },
    }, opts);

    if (monitoredByService) {
      serviceMonitor(`${name}-${workload}`, {
        metadataName: workload,
        namespace: this.namespace,
        selector: { "app.kubernetes.io/name": workload, "app.kubernetes.io/part-of": "dare" },
        port: "main",
        path: annotations["prometheus.io/path"],
        // The alert routes match the pods' `service` label (workflow-registry is "cwl"), not the Service's name.
        relabelings: [{ sourceLabels: ["__meta_kubernetes_pod_label_service"], targetLabel: "service", regex: "(.+)", action: "replace" }],
      }, { ...opts, dependsOn: [...(Array.isArray(opts.dependsOn) ? opts.dependsOn : []), args.monitoring] });
    }

    if (spec.kind === "Deployment" && sizing.replicas > 1) {
      new k8s.policy.v1.PodDisruptionBudget(`${name}-${workload}`, {
        metadata: { name: workload, namespace: this.namespace, labels },
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
      }, opts);
    }
  }

  private ingress(name: string, args: DareServicesArgs, opts: pulumi.CustomResourceOptions): void {
    const exposed = (Object.keys(WORKLOADS) as DareWorkload[]).filter((w) => WORKLOADS[w].ingressPath);
    const stripped = exposed.filter((w) => !WORKLOADS[w].keepPrefix).map((w) => WORKLOADS[w].ingressPath!);
    // The services answer at their own root: Traefik removes the routing prefix before forwarding.
    new k8s.apiextensions.CustomResource(`${name}-strip-prefix`, {
      apiVersion: "traefik.io/v1alpha1",
      kind: "Middleware",
      metadata: { name: "strip-prefix", namespace: this.namespace },
      spec: { stripPrefix: { prefixes: stripped } },
    }, opts);
    new k8s.networking.v1.Ingress(`${name}-ingress`, {
      metadata: {
        name: "dare",
        namespace: this.namespace,
        annotations: {
          "traefik.ingress.kubernetes.io/router.middlewares": `${this.namespace}-strip-prefix@kubernetescrd`,
        },
      },
      spec: {
        ingressClassName: args.ingressClassName ?? "traefik",
        tls: domainTls(args.domain),
        rules: [{
          host: args.domain,
          http: {
            paths: exposed.map((w) => ({
              path: WORKLOADS[w].ingressPath!,
              pathType: "Prefix",
              backend: { service: { name: w, port: { number: args.services[w].port } } },
            })),
          },
        }],
      },
    }, opts);
  }

  /** Default deny, then exactly the edges of CALL_GRAPH (plus DNS). */
  private networkPolicies(name: string, args: DareServicesArgs, opts: pulumi.CustomResourceOptions): void {
    type Peer_ = k8s.types.input.networking.v1.NetworkPolicyPeer;
    type Port_ = k8s.types.input.networking.v1.NetworkPolicyPort;
    const nsSelector = (ns: string) => ({ matchLabels: { "kubernetes.io/metadata.name": ns } });
    const tcp = (port: number): Port_ => ({ protocol: "TCP", port });
    const selectorOf = (peer: Peer): Record<string, string> => (peer === "mpi-jobs" ? MPI_JOB_POD_LABELS : { app: peer });
    const portOf = (w: DareWorkload) => args.services[w].port;
    /** Where a call to an outside peer goes, as NetworkPolicy egress rules. */
    const egressTo = (peer: ExternalPeer): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] => {
      switch (peer) {
        case "keycloak":
          // In the cluster, or through its public URL, which the ingress controller answers.
          return [
            { to: [{ namespaceSelector: nsSelector(NAMESPACES.keycloak.name) }], ports: [tcp(args.keycloakPort ?? 8080)] },
            { to: [INGRESS_CONTROLLER_PEER], ports: [tcp(args.ingressHttpsPort ?? 8443)] },
          ];
        case "kubernetes-api":
          return [{
            to: pulumi.output(args.apiServerCidrs).apply((cidrs) => cidrs.map((cidr): Peer_ => ({ ipBlock: { cidr } }))),
            ports: [tcp(args.apiServerPort ?? 6443)],
          }];
        default:
          throw new Error(`no egress to ${peer}`);
      }
    };
    const fromOutside: Partial<Record<ExternalPeer, k8s.types.input.networking.v1.NetworkPolicyPeer>> = {
      "ingress-controller": INGRESS_CONTROLLER_PEER,
      monitoring: MONITORING_PEER,
      backups: { namespaceSelector: nsSelector(NAMESPACES.backups.name) },
    };
    const policy = (id: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      new k8s.networking.v1.NetworkPolicy(`${name}-netpol-${id}`, { metadata: { name: id, namespace: this.namespace }, spec }, opts);

    policy("default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    // cert-manager's HTTP-01 solver pods, for any Ingress here that asks a Let's Encrypt issuer.
    policy("allow-acme-http01-solver", ACME_SOLVER_POLICY);
    policy("allow-dns", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [{
        to: [{ namespaceSelector: nsSelector("kube-system"), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        ports: [{ protocol: "UDP", port: 53 }, tcp(53)],
      }],
    });

    const peers: Peer[] = [...(Object.keys(WORKLOADS) as DareWorkload[]), "mpi-jobs"];
    for (const self of peers) {
      const ingress: k8s.types.input.networking.v1.NetworkPolicyIngressRule[] = [];
      const egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [];
      for (const [from, to] of CALL_GRAPH) {
        if (to === self) {
          const ports = self === "mpi-jobs" ? undefined : [tcp(portOf(self as DareWorkload))];
          const outside = fromOutside[from as ExternalPeer];
          if (outside) ingress.push({ from: [outside], ports });
          else ingress.push({ from: [{ podSelector: { matchLabels: selectorOf(from) } }], ports });
        }
        if (from === self) {
          if (to in WORKLOADS || to === "mpi-jobs") {
            const ports = to === "mpi-jobs" ? undefined : [tcp(portOf(to as DareWorkload))];
            egress.push({ to: [{ podSelector: { matchLabels: selectorOf(to) } }], ports });
          } else {
            egress.push(...egressTo(to as ExternalPeer));
          }
        }
      }
      policy(`${self}`, {
        podSelector: { matchLabels: selectorOf(self) },
        policyTypes: ["Ingress", "Egress"],
        ingress,
        egress,
      });
    }
  }

  /** JupyterHub from the upstream chart; only the keys below are set (checked in tests against z2jh 4.4.0's values.yaml). */
  private jupyterhub(name: string, args: DareServicesArgs): void {
    const ns = createNamespace("jupyterhub", this.opts);
    const token = new random.RandomBytes(`${name}-jupyterhub-proxy-token`, { length: 32 }, { parent: this });
    // The namespace's output, not its name: the release waits for the namespace to exist.
    pinnedRelease(`${name}-jupyterhub`, {
      release: "jupyterhub",
      namespace: ns.metadata.name,
      chart: JUPYTERHUB_CHART,
      mirror: args.chartMirror,
      values: {
        hub: { baseUrl: "/jupyter" },
        proxy: { secretToken: pulumi.secret(token.hex), service: { type: "ClusterIP" } },
        ingress: {
          enabled: true,
          ingressClassName: args.ingressClassName ?? "traefik",
          hosts: [args.domain],
          pathType: "Prefix",
          tls: domainTls(args.domain),
        },
      },
    }, { ...this.opts, dependsOn: [ns] });
  }
}
