/**
 * Layer 8, the DARE services: dare-login, the dispel4py registry (with MySQL), exec-api and its
 * registry, the playground, the CWL workflow registry, semantic-data, s-ProvFlow (API, MongoDB, viewer,
 * cron job), the shared file system (CephFS, ReadWriteMany) and, optionally, JupyterHub.
 *
 * What is known of each workload (ports, paths, health, Service names, settings files, the peers it calls,
 * its environment, its Kubernetes API Role, a database's dump) is the table in dare-workloads.ts, each fact
 * with its source or marked as a guess. Every network path comes from one call graph (`CALL_GRAPH`: the
 * descriptors' calls and the edges below): the NetworkPolicies are derived from it, so a call the graph
 * does not name is refused. The availability probes (`probeTargets`) and the backup jobs' targets
 * (`databaseDumps`) follow the same table; no DARE service is known to export metrics, so none is scraped.
 */
import * as k8s from "@pulumi/kubernetes";
import { pinnedRelease } from "../lib/helm";
import { CHARTS } from "../lib/pins";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ImageName, ServiceSizing } from "../lib/config";
import type { DatabaseDump } from "./backups";
import {
  DARE_WORKLOADS,
  DareWorkload,
  EnvSource,
  ExternalPeer,
  MYSQL_DATABASE,
  MYSQL_USER,
  Peer,
  SHARED_FS_CLAIM,
  SHARED_FS_MOUNT,
  SHARED_FS_SERVICE,
  SPROV_DATABASE,
  WORKLOADS,
  WorkloadFacts,
} from "./dare-services/workloads";
import { createNamespace, NAMESPACES } from "../lib/namespaces";
import { API_PORT } from "../lib/host-plan";
import { domainTls } from "./security";
import type { OidcClient } from "./identity";
import { secretHash } from "../lib/secret-hash";
import { ACME_SOLVER_POLICY, INGRESS_CONTROLLER_PEER, MONITORING_PEER, NON_PUBLIC_RANGES } from "../lib/network-policies";
import { INGRESS_CLASS, INGRESS_POD_PORTS, PublicNames } from "./networking";
import { BLOCK_STORAGE_CLASS, SHARED_STORAGE_CLASS } from "./storage";

export { MYSQL_DATABASE, MYSQL_USER, SHARED_FS_CLAIM, SHARED_FS_MOUNT, SPROV_DATABASE, WORKLOADS };
export type { ExternalPeer, Peer };
/** Labels MPIJob pods carry (kubeflow/mpi-operator v2beta1 constants.go, OperatorNameLabel). */
export const MPI_JOB_POD_LABELS = { "training.kubeflow.org/operator-name": "mpi-operator" };
/** Addresses that are not "the internet" for egress rules (network-policies.ts). */
export { NON_PUBLIC_RANGES };

const ALL = [...DARE_WORKLOADS];
const SERVED = ALL.filter((w) => WORKLOADS[w].kind !== "CronJob");
const DATABASE_WORKLOADS = ALL.filter((w) => WORKLOADS[w].kind === "StatefulSet");
/**
 * Who calls whom: each workload's own calls (its descriptor's `calls`, in the table's order), then the
 * edges no workload owns. Workflow pods (MPIJobs) talk among themselves, report provenance to sprov and
 * fetch their specification from exec-api; the ingress controller reaches what is routed, the blackbox
 * exporter what has a Service, the backup jobs the databases. Internet egress for workflow pods is added
 * only when dare:workflowInternetAccess is on. The policies list each pod's rules in this order.
 */
export const CALL_GRAPH: Array<[Peer, Peer]> = [
  ...ALL.flatMap((w) => (WORKLOADS[w].calls ?? []).map((to): [Peer, Peer] => [w, to])),
  ["mpi-jobs", "mpi-jobs"],
  ["mpi-jobs", "sprov"],
  ["mpi-jobs", "exec-api"],
  ...ALL.filter((w) => WORKLOADS[w].routes).map((w): [Peer, Peer] => ["ingress-controller", w]),
  ...SERVED.map((w): [Peer, Peer] => ["monitoring", w]),
  ...DATABASE_WORKLOADS.map((w): [Peer, Peer] => ["backups", w]),
];

/** One availability probe of the blackbox exporter (components/monitoring/availability-probes.ts). */
export interface DareProbeTarget {
  /** the `service` label of its alerts, which the Alertmanager route matches */
  service: string;
  workload: DareWorkload;
  /** "cluster": the Service directly; "ingress": through the ingress controller, with the platform's host name */
  via: "cluster" | "ingress";
  /** cluster: a URL (http modules) or host:port (tcp_connect); ingress: the path on the platform's host */
  target: string;
  module: "http_2xx" | "http_reachable" | "tcp_connect";
}

/**
 * What the blackbox exporter checks for each workload: its Service (the health path where a real one is
 * known, else the port) and its first route through the ingress (2xx where the route ends at a known
 * health path, else "the application answers", which a missing backend's 502/503 is not).
 */
export function probeTargets(namespace: string, ports: Record<DareWorkload, number>): DareProbeTarget[] {
  return SERVED.flatMap((workload) => {
    const w = WORKLOADS[workload];
    const host = `${w.serviceName}.${namespace}.svc`;
    const service = w.monitoringService;
    const cluster: DareProbeTarget =
      "http" in w.health
        ? { service, workload, via: "cluster", target: `http://${host}:${ports[workload]}${w.health.http}`, module: "http_2xx" }
        : { service, workload, via: "cluster", target: `${host}:${ports[workload]}`, module: "tcp_connect" };
    if (!w.routes) return [cluster];
    const route = w.routes.paths[0];
    const healthy = "http" in w.health && w.routes.strip;
    const ingress: DareProbeTarget =
      healthy && "http" in w.health
        ? { service, workload, via: "ingress", target: `${route}${w.health.http}`, module: "http_2xx" }
        : { service, workload, via: "ingress", target: `${route}/`, module: "http_reachable" };
    return [cluster, ingress];
  });
}

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
  /** Replicas, port, requests/limits, volume size and data path per workload. */
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
  /**
   * The platform's public names and the ingress controller's in-cluster address (Networking.clusterIp):
   * every DARE pod resolves the names there (hostAliases), so https://<domain>/… works from inside the
   * cluster in both ingress modes. Without it, pods resolve the names through DNS to the public address,
   * which the namespace's egress policies do not let them reach.
   */
  publicNames?: PublicNames;
  /** Addresses (CIDR) of the Kubernetes API as pods reach it after Service translation: control planes and the API load balancer. */
  apiServerCidrs: pulumi.Input<string[]>;
  /** Port of the Kubernetes API on those addresses. */
  apiServerPort?: number;
  /** The kubernetes Service's ClusterIP (port 443), also allowed, for policy engines that judge before Service translation. */
  apiServiceAddress?: string;
  /** Block StorageClass for the databases and local state. */
  blockStorageClass?: string;
  /** ReadWriteMany StorageClass for the shared file system. */
  sharedStorageClass?: string;
  /** Workflow pods may reach the internet (dare:workflowInternetAccess). */
  workflowInternetAccess: boolean;
  /** Install JupyterHub in its own namespace at /jupyter. */
  jupyterhub: boolean;
  /** JupyterHub's client in realm dare (SsoClients.jupyterhub): users log in through Keycloak. Undefined: the chart's authenticator. */
  jupyterhubSso?: OidcClient;
}

/** The Secret JupyterHub's hub reads its OAuth client secret from (OAUTH_CLIENT_SECRET). */
export const JUPYTERHUB_OAUTH_SECRET = "jupyterhub-oauth";

/**
 * JupyterHub's hub.config for GenericOAuthenticator (OAuthenticator 17.4.0, the one in z2jh 4.4.0's hub
 * image). Any user of realm dare may log in; the realm role platform-admin makes a JupyterHub admin
 * (admin_groups, which needs manage_groups, read from the userinfo's `roles`: auth_state
 * `oauth_user.roles`). The secret is not here: OAuthenticator reads OAUTH_CLIENT_SECRET from the
 * environment when client_secret is unset (oauthenticator/oauth2.py).
 */
export function jupyterhubAuthConfig(sso: OidcClient): Record<string, unknown> {
  return {
    JupyterHub: { authenticator_class: "generic-oauth" },
    GenericOAuthenticator: {
      client_id: sso.clientId,
      oauth_callback_url: sso.redirectUri,
      authorize_url: sso.authorizationUrl,
      // The hub calls these inside the cluster (its chart's NetworkPolicy lets it reach private addresses).
      token_url: sso.tokenUrl,
      userdata_url: sso.userInfoUrl,
      logout_redirect_url: `${sso.logoutUrl}?client_id=${encodeURIComponent(sso.clientId)}&post_logout_redirect_uri=${encodeURIComponent(sso.postLogoutRedirectUri)}`,
      scope: ["openid", "profile", "email"],
      username_claim: "preferred_username",
      login_service: "DARE (Keycloak)",
      allow_all: true,
      manage_groups: true,
      auth_state_groups_key: `oauth_user.${sso.rolesClaim}`,
      admin_groups: [sso.adminRole],
    },
  };
}

/** The Secrets this layer creates, and their keys: the only ones a descriptor's `env` or dump credentials may name. */
const LAYER_SECRETS = {
  "d4p-registry-db": ["MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD"],
  "d4p-registry-settings": ["local_settings.py"],
  "dare-login": ["CLIENT_SECRET", "ADMIN_PASSWORD"],
} as const;

/**
 * Where the descriptors contradict themselves or this layer (a programming error, found before anything is
 * declared): the Kubernetes API called without a Role or the reverse, a database without its dump, a Secret
 * that this layer does not create.
 */
export function descriptorProblems(workloads: Record<DareWorkload, WorkloadFacts> = WORKLOADS): string[] {
  const problems: string[] = [];
  const secretKnown = (secret: string, key: string) => (LAYER_SECRETS as Record<string, readonly string[]>)[secret]?.includes(key) ?? false;
  for (const [workload, facts] of Object.entries(workloads)) {
    if ((facts.calls ?? []).includes("kubernetes-api") !== (facts.kubernetesApi !== undefined))
      problems.push(`${workload} calls the Kubernetes API if and only if its descriptor gives it a Role (kubernetesApi)`);
    if (facts.kind === "StatefulSet" && !facts.database)
      problems.push(`${workload} is a StatefulSet (a database) without a database descriptor (data path, dump)`);
    for (const [variable, source] of Object.entries(facts.env ?? {}))
      if ("secret" in source && !secretKnown(source.secret, source.key))
        problems.push(
          `${workload}'s ${variable} names the Secret ${source.secret} with key ${source.key}, which this layer does not create`,
        );
    const credentials = facts.database?.dump.credentials;
    if (credentials && !secretKnown(credentials.secret, credentials.key))
      problems.push(
        `${workload}'s dump names the Secret ${credentials.secret} with key ${credentials.key}, which this layer does not create`,
      );
  }
  return problems;
}

export class DareServices extends pulumi.ComponentResource {
  /** The DARE namespace. */
  public readonly namespace: string;
  /** https://<domain>: where the services are routed by path. */
  public readonly url: string;
  /** How the backup jobs dump each database (its descriptor's `database.dump`, with host, port, image and password). */
  public readonly databaseDumps: DatabaseDump[];
  /** What the blackbox exporter probes, per workload (components/monitoring/availability-probes.ts). */
  public readonly probeTargets: DareProbeTarget[];

  private readonly opts: pulumi.CustomResourceOptions;

  constructor(name: string, args: DareServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    const problems = descriptorProblems();
    if (problems.length > 0) throw new Error(`${name}: the DARE descriptors disagree:\n  - ${problems.join("\n  - ")}`);
    // Replicas of the databases and of local state, and the domain, were checked by the loader (lib/config.ts).
    if (args.publicNames && !args.publicNames.hostnames.includes(args.domain)) {
      throw new Error(`${name}: publicNames must include the domain ${args.domain} (got ${args.publicNames.hostnames.join(", ")})`);
    }
    super("dare:services:DareServices", name, {}, opts);

    this.opts = { provider: args.provider, parent: this };
    const ns = createNamespace("dare", this.opts);
    this.namespace = NAMESPACES.dare.name;
    const nsOpts = { ...this.opts, dependsOn: [ns] };
    this.url = `https://${args.domain}`;
    const ports = Object.fromEntries(ALL.map((w) => [w, args.services[w].port])) as Record<DareWorkload, number>;
    this.probeTargets = probeTargets(this.namespace, ports);

    const password = (id: string) => new random.RandomPassword(`${name}-${id}`, { length: 32, special: false }, { parent: this }).result;

    // --- Shared file system: users' uploads, runs and debug output; exec-api and MPIJobs mount it.
    new k8s.core.v1.PersistentVolumeClaim(
      `${name}-sfs`,
      {
        metadata: {
          name: SHARED_FS_CLAIM,
          namespace: this.namespace,
          labels: { service: SHARED_FS_SERVICE, "app.kubernetes.io/part-of": "dare" },
        },
        spec: {
          accessModes: ["ReadWriteMany"],
          storageClassName: args.sharedStorageClass ?? SHARED_STORAGE_CLASS,
          resources: { requests: { storage: args.sharedFilesystemSize } },
        },
      },
      nsOpts,
    );

    // --- Secrets: every value generated here or handed over as a Pulumi secret.
    const mysqlRoot = password("mysql-root");
    const mysqlApp = password("mysql-app");
    /** What each Secret holds, by name and key: the dump jobs get their copy of a database's password from here. */
    const secretValues: Record<string, Record<string, pulumi.Input<string>>> = {};
    const secret = <Id extends keyof typeof LAYER_SECRETS>(
      id: Id,
      data: Record<(typeof LAYER_SECRETS)[Id][number], pulumi.Input<string>>,
    ) => {
      secretValues[id] = data;
      return new k8s.core.v1.Secret(
        `${name}-${id}`,
        {
          metadata: { name: id, namespace: this.namespace, labels: { "app.kubernetes.io/part-of": "dare" } },
          type: "Opaque",
          stringData: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, pulumi.secret(v)])),
        },
        nsOpts,
      );
    };
    secret("d4p-registry-db", { MYSQL_ROOT_PASSWORD: mysqlRoot, MYSQL_PASSWORD: mysqlApp });
    secret("d4p-registry-settings", {
      "local_settings.py": mysqlApp.apply((pw) => d4pRegistrySettings(args.domain, this.namespace, ports["d4p-registry-db"], pw)),
    });
    secret("dare-login", {
      CLIENT_SECRET: args.keycloak.clientSecret,
      ADMIN_PASSWORD: args.keycloak.adminPassword,
    });

    // --- Identities of the workloads that call the Kubernetes API: their descriptor's Role, nothing else.
    for (const workload of ALL) {
      const api = WORKLOADS[workload].kubernetesApi;
      if (!api) continue;
      new k8s.core.v1.ServiceAccount(`${name}-${workload}`, { metadata: { name: workload, namespace: this.namespace } }, nsOpts);
      new k8s.rbac.v1.Role(`${name}-${workload}`, { metadata: { name: api.role, namespace: this.namespace }, rules: api.rules }, nsOpts);
      new k8s.rbac.v1.RoleBinding(
        `${name}-${workload}`,
        {
          metadata: { name: api.role, namespace: this.namespace },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: api.role },
          subjects: [{ kind: "ServiceAccount", name: workload, namespace: this.namespace }],
        },
        nsOpts,
      );
    }

    const envValue = (variable: string, source: EnvSource): k8s.types.input.core.v1.EnvVar => {
      if ("value" in source) return { name: variable, value: source.value };
      if ("keycloak" in source) return { name: variable, value: args.keycloak[source.keycloak] };
      if ("secret" in source) {
        return { name: variable, valueFrom: { secretKeyRef: { name: source.secret, key: source.key } } };
      }
      if ("serviceName" in source) return { name: variable, value: WORKLOADS[source.serviceName].serviceName };
      if ("serviceHost" in source) return { name: variable, value: `${WORKLOADS[source.serviceHost].serviceName}.${this.namespace}.svc` };
      return { name: variable, value: String(ports[source.servicePort]) };
    };
    const envOf = (w: DareWorkload) => Object.entries(WORKLOADS[w].env ?? {}).map(([variable, source]) => envValue(variable, source));

    this.databaseDumps = DATABASE_WORKLOADS.map((w): DatabaseDump => {
      const { engine, dump } = WORKLOADS[w].database!;
      const credentials = dump.credentials;
      return {
        engine,
        image: args.images[w],
        host: `${WORKLOADS[w].serviceName}.${this.namespace}.svc`,
        port: ports[w],
        command: dump.command,
        extension: dump.extension,
        ...(credentials
          ? {
              credentials: {
                username: credentials.username,
                password: pulumi.secret(secretValues[credentials.secret][credentials.key]),
                passwordEnv: credentials.env,
              },
            }
          : {}),
      };
    });

    for (const workload of ALL) {
      this.workload(name, workload, args, envOf(workload), nsOpts);
    }

    this.ingress(name, args, nsOpts);
    this.networkPolicies(name, args, nsOpts);
    if (args.jupyterhub) this.jupyterhub(name, args);

    this.registerOutputs({ namespace: this.namespace, url: this.url });
  }

  private workload(
    name: string,
    workload: DareWorkload,
    args: DareServicesArgs,
    env: k8s.types.input.core.v1.EnvVar[],
    opts: pulumi.CustomResourceOptions,
  ): void {
    const facts = WORKLOADS[workload];
    const sizing = args.services[workload];
    const port = sizing.port;
    const labels = {
      app: workload,
      service: facts.monitoringService,
      "app.kubernetes.io/name": workload,
      "app.kubernetes.io/part-of": "dare",
    };
    const selector = { app: workload };
    const health = facts.health;
    const probeHandler =
      "http" in health
        ? { httpGet: { path: health.http, port } }
        : "exec" in health
          ? { exec: { command: health.exec } }
          : { tcpSocket: { port } };
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [];
    const volumes: k8s.types.input.core.v1.Volume[] = [];
    if (facts.sharedFs) {
      mounts.push({ name: "sfs", mountPath: SHARED_FS_MOUNT });
      volumes.push({ name: "sfs", persistentVolumeClaim: { claimName: SHARED_FS_CLAIM } });
    }
    if (facts.settingsFile) {
      // One file over the image's own (subPath): the rest of the directory stays the image's.
      mounts.push({ name: "settings", mountPath: facts.settingsFile.path, subPath: "local_settings.py", readOnly: true });
      volumes.push({ name: "settings", secret: { secretName: `${workload}-settings` } });
    }
    if (facts.database) mounts.push({ name: "data", mountPath: facts.database.dataPath });
    if (facts.localState) {
      new k8s.core.v1.PersistentVolumeClaim(
        `${name}-${workload}-data`,
        {
          metadata: { name: `${workload}-data`, namespace: this.namespace, labels },
          spec: {
            accessModes: ["ReadWriteOnce"],
            storageClassName: args.blockStorageClass ?? BLOCK_STORAGE_CLASS,
            resources: { requests: { storage: sizing.storageSize } },
          },
        },
        opts,
      );
      mounts.push({ name: "data", mountPath: sizing.dataPath! });
      volumes.push({ name: "data", persistentVolumeClaim: { claimName: `${workload}-data` } });
    }
    const container: k8s.types.input.core.v1.Container = {
      name: workload,
      image: args.images[workload],
      env,
      ports: facts.kind === "CronJob" ? undefined : [{ name: "main", containerPort: port }],
      resources: { requests: sizing.requests, limits: sizing.limits },
      volumeMounts: mounts,
      securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: "RuntimeDefault" } },
      ...(facts.kind === "CronJob"
        ? {}
        : {
            readinessProbe: { ...probeHandler, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
            // Databases replay their logs after a crash: give them time before the first liveness check.
            livenessProbe: {
              ...probeHandler,
              initialDelaySeconds: facts.kind === "StatefulSet" ? 60 : 20,
              periodSeconds: 20,
              timeoutSeconds: 5,
              failureThreshold: 6,
            },
          }),
    };
    const podSpec: k8s.types.input.core.v1.PodSpec = {
      containers: [container],
      volumes,
      serviceAccountName: facts.kubernetesApi ? workload : undefined,
      automountServiceAccountToken: facts.kubernetesApi !== undefined,
      // https://<domain>/… (Keycloak's issuer URL among them) answered by Traefik's ClusterIP, not the public address.
      ...(args.publicNames ? { hostAliases: [{ ip: args.publicNames.address, hostnames: [...args.publicNames.hostnames] }] } : {}),
      ...(facts.kind === "StatefulSet" ? { securityContext: { fsGroup: 999 } } : {}),
    };
    const template = { metadata: { labels }, spec: podSpec };
    const metadata = { name: workload, namespace: this.namespace, labels };

    if (facts.kind === "Deployment") {
      new k8s.apps.v1.Deployment(
        `${name}-${workload}`,
        {
          metadata,
          spec: {
            replicas: sizing.replicas,
            // A ReadWriteOnce volume is attached to one node: the old pod lets go before the new one starts.
            ...(facts.localState ? { strategy: { type: "Recreate" } } : {}),
            selector: { matchLabels: selector },
            template,
          },
        },
        opts,
      );
    } else if (facts.kind === "StatefulSet") {
      new k8s.apps.v1.StatefulSet(
        `${name}-${workload}`,
        {
          metadata,
          spec: {
            replicas: 1,
            serviceName: facts.serviceName,
            selector: { matchLabels: selector },
            template,
            volumeClaimTemplates: [
              {
                metadata: { name: "data", labels: { service: facts.monitoringService } },
                spec: {
                  accessModes: ["ReadWriteOnce"],
                  storageClassName: args.blockStorageClass ?? BLOCK_STORAGE_CLASS,
                  resources: { requests: { storage: sizing.storageSize } },
                },
              },
            ],
          },
        },
        opts,
      );
    } else {
      new k8s.batch.v1.CronJob(
        `${name}-${workload}`,
        {
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
                template: { metadata: { labels }, spec: { ...podSpec, restartPolicy: "OnFailure" } },
              },
            },
          },
        },
        opts,
      );
      return;
    }

    new k8s.core.v1.Service(
      `${name}-${workload}`,
      {
        metadata: { name: facts.serviceName, namespace: this.namespace, labels },
        spec: {
          type: "ClusterIP",
          // A StatefulSet's governing Service is headless: clients reach the one pod by name.
          ...(facts.kind === "StatefulSet" ? { clusterIP: "None" } : {}),
          selector,
          ports: [{ name: "main", port, targetPort: port }],
        },
      },
      opts,
    );

    if (facts.kind === "Deployment" && sizing.replicas > 1) {
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-${workload}`,
        {
          metadata: { name: workload, namespace: this.namespace, labels },
          spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
        },
        opts,
      );
    }
  }

  private ingress(name: string, args: DareServicesArgs, opts: pulumi.CustomResourceOptions): void {
    const routed = ALL.filter((w) => WORKLOADS[w].routes);
    const stripped = routed.filter((w) => WORKLOADS[w].routes!.strip).flatMap((w) => WORKLOADS[w].routes!.paths);
    // Services that answer at their own root: Traefik removes the routing prefix before forwarding;
    // the others (playground's /playground and /run-command) get the path as it came.
    new k8s.apiextensions.CustomResource(
      `${name}-strip-prefix`,
      {
        apiVersion: "traefik.io/v1alpha1",
        kind: "Middleware",
        metadata: { name: "strip-prefix", namespace: this.namespace },
        spec: { stripPrefix: { prefixes: stripped } },
      },
      opts,
    );
    new k8s.networking.v1.Ingress(
      `${name}-ingress`,
      {
        metadata: {
          name: "dare",
          namespace: this.namespace,
          annotations: {
            "traefik.ingress.kubernetes.io/router.middlewares": `${this.namespace}-strip-prefix@kubernetescrd`,
          },
        },
        spec: {
          ingressClassName: args.ingressClassName ?? INGRESS_CLASS,
          tls: domainTls(args.domain),
          rules: [
            {
              host: args.domain,
              http: {
                paths: routed.flatMap((w) =>
                  WORKLOADS[w].routes!.paths.map((path) => ({
                    path,
                    pathType: "Prefix",
                    backend: { service: { name: WORKLOADS[w].serviceName, port: { number: args.services[w].port } } },
                  })),
                ),
              },
            },
          ],
        },
      },
      opts,
    );
  }

  /** Default deny, then exactly the edges of CALL_GRAPH (plus DNS). */
  private networkPolicies(name: string, args: DareServicesArgs, opts: pulumi.CustomResourceOptions): void {
    type Peer_ = k8s.types.input.networking.v1.NetworkPolicyPeer;
    type Port_ = k8s.types.input.networking.v1.NetworkPolicyPort;
    type Egress = k8s.types.input.networking.v1.NetworkPolicyEgressRule;
    const nsSelector = (ns: string) => ({ matchLabels: { "kubernetes.io/metadata.name": ns } });
    const tcp = (port: number): Port_ => ({ protocol: "TCP", port });
    const selectorOf = (peer: Peer): Record<string, string> => (peer === "mpi-jobs" ? MPI_JOB_POD_LABELS : { app: peer });
    const portOf = (w: DareWorkload) => args.services[w].port;
    const internet: Peer_ = { ipBlock: { cidr: "0.0.0.0/0", except: NON_PUBLIC_RANGES } };
    /** Where a call to an outside peer goes, as NetworkPolicy egress rules. */
    const egressTo = (peer: ExternalPeer): Egress[] => {
      switch (peer) {
        case "keycloak":
          // In the cluster, or through its public URL, which the ingress controller answers.
          return [
            { to: [{ namespaceSelector: nsSelector(NAMESPACES.keycloak.name) }], ports: [tcp(args.keycloakPort ?? 8080)] },
            { to: [INGRESS_CONTROLLER_PEER], ports: [tcp(args.ingressHttpsPort ?? INGRESS_POD_PORTS.websecure)] },
          ];
        case "kubernetes-api":
          return [
            {
              to: pulumi.output(args.apiServerCidrs).apply((cidrs) => cidrs.map((cidr): Peer_ => ({ ipBlock: { cidr } }))),
              ports: [tcp(args.apiServerPort ?? API_PORT)],
            },
            ...(args.apiServiceAddress ? [{ to: [{ ipBlock: { cidr: `${args.apiServiceAddress}/32` } }], ports: [tcp(443)] }] : []),
          ];
        // B2DROP (b2drop.eudat.eu) has no fixed address: HTTPS to public addresses.
        case "internet-https":
          return [{ to: [internet], ports: [tcp(443)] }];
        case "internet":
          return [{ to: [internet] }];
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
      egress: [
        {
          to: [{ namespaceSelector: nsSelector("kube-system"), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
          ports: [{ protocol: "UDP", port: 53 }, tcp(53)],
        },
      ],
    });

    const edges: Array<[Peer, Peer]> = [...CALL_GRAPH, ...(args.workflowInternetAccess ? [["mpi-jobs", "internet"] as [Peer, Peer]] : [])];
    const peers: Peer[] = [...ALL, "mpi-jobs"];
    for (const self of peers) {
      const ingress: k8s.types.input.networking.v1.NetworkPolicyIngressRule[] = [];
      const egress: Egress[] = [];
      for (const [from, to] of edges) {
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
    const sso = args.jupyterhubSso;
    const deps: pulumi.Resource[] = [ns];
    if (sso) {
      deps.push(
        new k8s.core.v1.Secret(
          `${name}-jupyterhub-oauth`,
          {
            metadata: { name: JUPYTERHUB_OAUTH_SECRET, namespace: ns.metadata.name },
            stringData: { "client-secret": sso.clientSecret },
          },
          this.opts,
        ),
      );
    }
    // The namespace's output, not its name: the release waits for the namespace to exist.
    pinnedRelease(
      `${name}-jupyterhub`,
      {
        release: "jupyterhub",
        namespace: ns.metadata.name,
        chart: CHARTS.jupyterhub,
        mirror: args.chartMirror,
        values: {
          hub: {
            baseUrl: "/jupyter",
            // The chart lets the hub and the proxy reach the cloud's metadata service (it blocks it for the
            // notebooks only): it serves the VMs' user data, with their SSH host keys.
            networkPolicy: { egressAllowRules: { cloudMetadataServer: false } },
            ...(sso
              ? {
                  config: jupyterhubAuthConfig(sso),
                  extraEnv: {
                    OAUTH_CLIENT_SECRET: { valueFrom: { secretKeyRef: { name: JUPYTERHUB_OAUTH_SECRET, key: "client-secret" } } },
                  },
                  // A changed client secret restarts the hub, which reads its environment only at start.
                  annotations: { "dare.io/oauth-secret-hash": secretHash(sso.clientSecret) },
                }
              : {}),
          },
          proxy: {
            secretToken: pulumi.secret(token.hex),
            service: { type: "ClusterIP" },
            chp: { networkPolicy: { egressAllowRules: { cloudMetadataServer: false } } },
          },
          ingress: {
            enabled: true,
            ingressClassName: args.ingressClassName ?? INGRESS_CLASS,
            hosts: [args.domain],
            pathType: "Prefix",
            tls: domainTls(args.domain),
          },
        },
      },
      { ...this.opts, dependsOn: deps },
    );
  }
}

/**
 * d4p-registry's local_settings.py: dj-vercereg's template with the platform's database, user and host
 * names, DEBUG off. Only one line may hold USER and one PASSWORD: start-registry.sh greps them to create
 * the registry's superuser.
 */
export function d4pRegistrySettings(domain: string, namespace: string, dbPort: number, password: string): string {
  const service = WORKLOADS["d4p-registry"].serviceName;
  const hosts = [domain, service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  return [
    "# Written by the DARE deployer: replaces dj-vercereg's local_settings_template.py.",
    "DEBUG = False",
    `ALLOWED_HOSTS = [${hosts.map((h) => `'${h}'`).join(", ")}]`,
    "DATABASES = {",
    "    'default': {",
    "        'ENGINE': 'django.db.backends.mysql',",
    `        'NAME': '${MYSQL_DATABASE}',`,
    `        'USER': '${MYSQL_USER}',`,
    `        'PASSWORD': '${password}',`,
    `        'HOST': '${WORKLOADS["d4p-registry-db"].serviceName}',`,
    `        'PORT': '${dbPort}',`,
    "        'OPTIONS': {'charset': 'utf8mb3'},",
    "    }",
    "}",
    "",
  ].join("\n");
}
