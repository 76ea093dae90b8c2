/**
 * What is known of each DARE workload, in one table: the configuration loader takes its defaults from it,
 * the DARE layer builds the workloads, their environment and API rights, routes, probes, NetworkPolicies
 * (from each entry's `calls`) and the backup jobs' targets from it, and the configuration reference and
 * docs/dare-services.md cite it. Adding a stateless service is its name in DARE_WORKLOADS, its entry here
 * and its image default in config-keys.ts (tests/components/dare-services/descriptor.test.ts). Every fact is either `evidence` (its public source, as
 * collected in ../shared/dare-services.md, "Evidence gathered later") or a `guess` (what would confirm it).
 * A guess is a default the operator can override in dare:services; nothing here pretends to know more.
 */

export const DARE_WORKLOADS = [
  "dare-login",
  "d4p-registry",
  "d4p-registry-db",
  "exec-api",
  "exec-registry",
  "playground",
  "workflow-registry",
  "semantic-data",
  "sprov",
  "sprov-db",
  "sprov-view",
  "sprov-cronjob",
] as const;
export type DareWorkload = (typeof DARE_WORKLOADS)[number];

/** Where exec-api and the execution pods expect users' files (`<sfs>/<user>/{uploads,runs,debug}`). */
export const SHARED_FS_MOUNT = "/home/mpiuser/sfs";
/** The shared file system's claim (CephFS, ReadWriteMany), which workflow pods mount too. */
export const SHARED_FS_CLAIM = "dare-sfs";
/** The `service` label of the shared file system's claim and its alerts (the seed's name). */
export const SHARED_FS_SERVICE = "dare-shared-volumes";

/** A fact with its source, or a guess with what would confirm it. */
export type Fact = { evidence: string } | { guess: string };

/** How the kubelet checks a container, and how the blackbox exporter probes its Service. */
export type Health =
  /** a real HTTP check: the path answers 2xx */
  | { http: string; source: Fact }
  /** only "the port accepts connections": every endpoint needs a sign-in, or none is known */
  | { tcp: true; source: Fact }
  | { exec: string[]; source: Fact };

/** dj-vercereg's database name (local_settings_template.py) and the registry's own user in it. */
export const MYSQL_DATABASE = "dj_vercereg";
export const MYSQL_USER = "d4p";
/** s-ProvFlow's database name: SPROV_DB's upstream default. */
export const SPROV_DATABASE = "sprov-db";

/**
 * Peers outside the DARE workloads that appear in the call graph. A workload may call keycloak,
 * kubernetes-api and the internet; the others are the callers the DARE layer adds itself (dare-services.ts).
 */
export type ExternalPeer =
  "keycloak" | "kubernetes-api" | "ingress-controller" | "monitoring" | "backups" | "mpi-jobs" | "internet-https" | "internet";
export type Peer = DareWorkload | ExternalPeer;

/** Where one variable of a workload's environment takes its value; the DARE layer resolves it. */
export type EnvSource =
  /** a literal */
  | { value: string }
  /** Keycloak and dare-login's client in it, as the A/A layer hands them over (KeycloakClient) */
  | { keycloak: "url" | "clientId" | "adminUsername" }
  /** a key of a Secret the DARE layer creates in its namespace */
  | { secret: string; key: string }
  /** another workload's Service: its bare name */
  | { serviceName: DareWorkload }
  /** … its host name `<service>.<namespace>.svc` */
  | { serviceHost: DareWorkload }
  /** … its configured port (dare:services) */
  | { servicePort: DareWorkload };

/** A database workload: where it keeps its data and how the backup job dumps it. */
export interface Database {
  /** names the dump job (`<engine>-dump`), its directory (/var/backups/dare/db/<engine>) and the dump files */
  engine: "mysql" | "mongodb";
  /** where its image keeps its data, on the StatefulSet's own volume */
  dataPath: string;
  /**
   * The backup job runs `command` in the database's own image (it ships the client), with DB_HOST and
   * DB_PORT set (and DB_USER and the password's variable when `credentials` are given); its output is the dump.
   */
  dump: {
    command: string;
    /** file name extension of the dumps */
    extension: string;
    /** who the client signs in as: a user and its password, a key of a Secret of the DARE layer; none: no authentication */
    credentials?: { username: string; secret: string; key: string; env: string };
  };
}

export interface Routes {
  /** path prefixes on the platform's host name */
  paths: string[];
  /** Traefik removes the prefix before forwarding (the service answers at its root) */
  strip: boolean;
  source: Fact;
}

export interface WorkloadFacts {
  kind: "Deployment" | "StatefulSet" | "CronJob";
  /** the value of the `service` label the Alertmanager route matches (the original guide's names: cwl, sprov, …) */
  monitoringService: string;
  /** name of its Service, which clients depend on (e.g. through the `<NAME>_SERVICE_HOST` variables) */
  serviceName: string;
  /** the container port */
  port: number;
  portSource: Fact;
  routes?: Routes;
  health: Health;
  /** mounts the shared file system (the CephFS claim) at /home/mpiuser/sfs */
  sharedFs?: boolean;
  /** a database (kind StatefulSet): its data path and how it is dumped */
  database?: Database;
  /**
   * The workloads and outside peers it calls, which its egress (and their ingress) NetworkPolicies allow
   * (../shared/dare-services.md, "Evidence gathered later", column "calls"). Every DARE service but
   * s-ProvFlow's checks sign-ins through dare-login (release notes v3.2).
   */
  calls?: Peer[];
  /** its environment, by variable name, in the order the container gets it */
  env?: Record<string, EnvSource>;
  /**
   * Talks to the Kubernetes API (calls "kubernetes-api"): its pods, the only ones with a service account
   * token, run as a ServiceAccount named after the workload, bound to a Role of these rules in the DARE namespace.
   */
  kubernetesApi?: { role: string; rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
  /** keeps data of its own outside a database ("local DB"): a volume at this path */
  localState?: { path: string; source: Fact };
  /** a settings file the program writes and mounts over the image's own (path in the container) */
  settingsFile?: { path: string; source: Fact };
  /** where its image is built: set for images that cannot be defaulted truthfully (required configuration) */
  imageProject?: string;
}

const DJ_VERCEREG = "iaklampanos/dj-vercereg (d4p-registry's ancestor): start-registry.sh runs `manage.py runserver 0.0.0.0:8000`";
const SPROV = "KNMI/s-provenance b9fa37c";
const NO_SOURCE = "its Dockerfile or Kubernetes manifest in its GitLab project";

/**
 * s-ProvFlow builds mongodb://$SPROV_DB_HOST/$SPROV_DB, and its index script runs
 * `mongo $SPROV_DB_HOST:$SPROV_DB_PORT/$SPROV_DB`: the host is a bare host name, so the database runs
 * without authentication, reachable only from s-ProvFlow and the dump job (NetworkPolicies).
 */
const SPROV_CLIENT_ENV: Record<string, EnvSource> = {
  SPROV_DB: { value: SPROV_DATABASE },
  SPROV_DB_HOST: { serviceName: "sprov-db" },
  SPROV_DB_PORT: { servicePort: "sprov-db" },
};

export const WORKLOADS: Record<DareWorkload, WorkloadFacts> = {
  "dare-login": {
    kind: "Deployment",
    monitoringService: "dare-login",
    serviceName: "dare-login",
    port: 80,
    portSource: { guess: `not published; confirm in ${NO_SOURCE} (gitlab.com/project-dare/dare-platform)` },
    routes: {
      paths: ["/dare-login"],
      strip: true,
      source: {
        guess:
          "the platform path is not published; the API docs name its endpoints /auth/, /validate-token/, /delegation-token/, /refresh-token/",
      },
    },
    // The guide's probes signed in with the realm admin's password; the request's shape is not published,
    // and a password in a probe's command line is what this project avoids: a TCP check.
    health: { tcp: true, source: { guess: "no unauthenticated health endpoint is known" } },
    // It signs users in at Keycloak and creates them in the registries and exec-api.
    calls: ["keycloak", "d4p-registry", "workflow-registry", "exec-api"],
    // D5.4's appendix names these five.
    env: {
      KEYCLOAK_DOMAIN: { keycloak: "url" },
      CLIENT_ID: { keycloak: "clientId" },
      CLIENT_SECRET: { secret: "dare-login", key: "CLIENT_SECRET" },
      ADMIN_USERNAME: { keycloak: "adminUsername" },
      ADMIN_PASSWORD: { secret: "dare-login", key: "ADMIN_PASSWORD" },
    },
  },
  "d4p-registry": {
    kind: "Deployment",
    monitoringService: "d4p-registry",
    serviceName: "d4p-registry",
    port: 8000,
    portSource: { evidence: DJ_VERCEREG },
    routes: {
      paths: ["/d4p-registry"],
      strip: true,
      source: { evidence: "DARE API docs (`/d4p-registry/…`); the registry's links carry no prefix" },
    },
    health: { tcp: true, source: { evidence: "every endpoint needs a sign-in (Django REST framework permissions)" } },
    // It reads no environment: the database is in local_settings.py, and start-registry.sh uses a regular
    // file found there instead of linking the template (root/root at dj-reg-db, DEBUG on, no allowed hosts).
    settingsFile: {
      path: "/registry/dj_vercereg/dj_vercereg/local_settings.py",
      source: {
        guess:
          "the path in dj-vercereg's image (Dockerfile, start-registry.sh); confirm it for the DARE build in gitlab.com/project-dare/d4p-registry",
      },
    },
    calls: ["dare-login", "d4p-registry-db"],
    imageProject: "gitlab.com/project-dare/d4p-registry",
  },
  "d4p-registry-db": {
    kind: "StatefulSet",
    monitoringService: "d4p-registry",
    serviceName: "dj-reg-db",
    port: 3306,
    portSource: { evidence: "dj-vercereg local_settings_template.py (HOST dj-reg-db, PORT 3306)" },
    health: { exec: ["mysqladmin", "ping", "-h", "127.0.0.1"], source: { evidence: "the official mysql image" } },
    database: {
      engine: "mysql",
      dataPath: "/var/lib/mysql",
      dump: {
        // The mysql client reads its password from MYSQL_PWD.
        command:
          'mysqldump --host="$DB_HOST" --port="$DB_PORT" --user="$DB_USER" --single-transaction --routines --events --all-databases | gzip',
        extension: "sql.gz",
        credentials: { username: "root", secret: "d4p-registry-db", key: "MYSQL_ROOT_PASSWORD", env: "MYSQL_PWD" },
      },
    },
    env: {
      MYSQL_DATABASE: { value: MYSQL_DATABASE },
      MYSQL_USER: { value: MYSQL_USER },
      MYSQL_ROOT_PASSWORD: { secret: "d4p-registry-db", key: "MYSQL_ROOT_PASSWORD" },
      MYSQL_PASSWORD: { secret: "d4p-registry-db", key: "MYSQL_PASSWORD" },
    },
  },
  "exec-api": {
    kind: "Deployment",
    monitoringService: "exec-api",
    serviceName: "exec-api",
    port: 80,
    portSource: { guess: "port 80 in the older dare-api code (nginx); v3.6 was rewritten: confirm in gitlab.com/project-dare/exec-api" },
    routes: {
      paths: ["/exec-api"],
      strip: true,
      source: { evidence: "DARE API docs (`/exec-api/run-d4p/`, …); prefix stripping is a guess" },
    },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    sharedFs: true,
    // MPIJobs and pods in its namespace, nothing else.
    kubernetesApi: {
      role: "exec-api-mpijobs",
      rules: [
        { apiGroups: ["kubeflow.org"], resources: ["mpijobs"], verbs: ["create", "get", "list", "watch", "delete"] },
        { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "watch", "delete"] },
        // /my-pods shows users their runs' logs.
        { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      ],
    },
    localState: { path: "/data", source: { guess: 'the release notes name a "local DB" of users; its path is not published' } },
    // It reads the registries, starts MPIJobs through the Kubernetes API and sends files to B2DROP
    // (b2drop.eudat.eu, no fixed address: HTTPS to public addresses).
    calls: ["dare-login", "d4p-registry", "workflow-registry", "exec-registry", "kubernetes-api", "internet-https"],
    // The older exec-api code reads these to tell workflow pods where to fetch their specification
    // (NGINX_API_SERVICE_HOST/PORT in their environment).
    env: {
      "NGINX-API-IP": { serviceHost: "exec-api" },
      "NGINX-API-PORT": { servicePort: "exec-api" },
    },
    imageProject: "gitlab.com/project-dare/exec-api",
  },
  "exec-registry": {
    kind: "Deployment",
    monitoringService: "exec-registry",
    serviceName: "exec-registry",
    port: 80,
    portSource: { guess: "not published; exec-registry is built with exec-api since v3.0" },
    routes: { paths: ["/exec-registry"], strip: true, source: { guess: "the guide exposed it; its path is not published" } },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    sharedFs: true,
    calls: ["dare-login"],
    imageProject: "gitlab.com/project-dare/exec-api (exec-registry has no public project of its own)",
  },
  playground: {
    kind: "Deployment",
    monitoringService: "playground",
    serviceName: "playground",
    port: 80,
    portSource: { guess: "nginx since v3.0; the port is not published" },
    // Clients call <host>/playground and <host>/run-command: the paths reach the service as they are.
    routes: {
      paths: ["/playground", "/run-command"],
      strip: false,
      source: { evidence: "DARE client code calls `<host>/playground` and `<host>/run-command`" },
    },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    // A guess: /run-command returns a run_dir, likely on the shared file system.
    sharedFs: true,
    calls: ["dare-login", "d4p-registry"],
    imageProject: "gitlab.com/project-dare/playground",
  },
  "workflow-registry": {
    kind: "Deployment",
    monitoringService: "cwl",
    serviceName: "workflow-registry",
    port: 8000,
    portSource: { guess: "Django's runserver default; confirm in gitlab.com/project-dare/workflow-registry" },
    routes: { paths: ["/workflow-registry"], strip: true, source: { guess: "its platform path is not published" } },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    localState: { path: "/data", source: { guess: 'the release notes name a "local DB"; its path is not published' } },
    calls: ["dare-login"],
    imageProject: "gitlab.com/project-dare/workflow-registry",
  },
  "semantic-data": {
    kind: "Deployment",
    monitoringService: "semantic-data",
    serviceName: "semantic-data",
    port: 80,
    portSource: { guess: "not published; confirm in gitlab.com/project-dare/semantic-data-discovery" },
    routes: {
      paths: ["/semantic-data"],
      strip: true,
      source: { evidence: "DARE API docs (`/semantic-data`); prefix stripping is a guess" },
    },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    calls: ["dare-login"],
    imageProject: "gitlab.com/project-dare/semantic-data-discovery",
  },
  sprov: {
    // MPI pods find it through SPROV_SERVICE_HOST/PORT: the Service must be called sprov.
    kind: "Deployment",
    monitoringService: "sprov",
    serviceName: "sprov",
    port: 8082,
    portSource: { evidence: `${SPROV}: gunicorn binds 8082` },
    routes: { paths: ["/prov"], strip: true, source: { evidence: "DARE API docs (`/prov`); the API answers at its root" } },
    health: { http: "/", source: { evidence: `${SPROV}: GET / answers "This is the s-prov service"` } },
    calls: ["sprov-db"],
    env: SPROV_CLIENT_ENV,
    imageProject: "gitlab.com/project-dare/s-ProvFlow",
  },
  "sprov-db": {
    kind: "StatefulSet",
    monitoringService: "sprov",
    serviceName: "sprov-db",
    port: 27017,
    portSource: { evidence: `${SPROV}: SPROV_DB_PORT 27017` },
    // MongoDB 5.0's image still has the legacy shell; mongosh is not what 5.0 ships everywhere.
    health: { exec: ["mongo", "--quiet", "--eval", "db.adminCommand('ping').ok"], source: { evidence: "the official mongo 5.0 image" } },
    database: {
      engine: "mongodb",
      dataPath: "/data/db",
      // No credentials: s-ProvFlow's client cannot pass any (SPROV_CLIENT_ENV); NetworkPolicies isolate it.
      dump: { command: 'mongodump --host="$DB_HOST" --port="$DB_PORT" --archive --gzip', extension: "archive.gz" },
    },
  },
  "sprov-view": {
    kind: "Deployment",
    monitoringService: "sprov",
    serviceName: "sprov-view",
    port: 8080,
    portSource: { evidence: `${SPROV}: the viewer is a Tomcat web app on 8080` },
    // Served at / in the container (http://IP:port/html/view.jsp), at /sprovflow-viewer on the platform.
    routes: {
      paths: ["/sprovflow-viewer"],
      strip: true,
      source: { evidence: `${SPROV} viewer README; DARE docs (/sprovflow-viewer/html/view.jsp)` },
    },
    health: { tcp: true, source: { guess: "no health endpoint is known" } },
    calls: ["sprov"],
    imageProject: "gitlab.com/project-dare/s-ProvFlow",
  },
  "sprov-cronjob": {
    kind: "CronJob",
    monitoringService: "sprov",
    serviceName: "sprov-cronjob",
    port: 27017,
    portSource: { evidence: "a job serves nothing: the value is unused" },
    health: { tcp: true, source: { guess: "a job: no probe" } },
    calls: ["sprov-db"],
    env: SPROV_CLIENT_ENV,
    imageProject: "gitlab.com/project-dare/s-ProvFlow",
  },
};

/** The database workloads: one instance each, their own block volume. */
export const DATABASES: DareWorkload[] = (Object.keys(WORKLOADS) as DareWorkload[]).filter((w) => WORKLOADS[w].kind === "StatefulSet");

/** Workloads whose image must be configured (no truthful default exists), with the project that builds it. */
export const REQUIRED_IMAGES: Array<[DareWorkload, string]> = (Object.keys(WORKLOADS) as DareWorkload[]).flatMap((w) =>
  WORKLOADS[w].imageProject ? [[w, WORKLOADS[w].imageProject!] as [DareWorkload, string]] : [],
);

export const isGuess = (fact: Fact): fact is { guess: string } => "guess" in fact;
