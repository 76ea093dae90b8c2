/**
 * What is known of each DARE workload, in one table: the configuration loader takes its defaults from it,
 * the DARE layer builds the workloads, routes, probes and NetworkPolicies from it, and the configuration
 * reference and docs/dare-services.md cite it. Every fact is either `evidence` (its public source, as
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

/** A fact with its source, or a guess with what would confirm it. */
export type Fact = { evidence: string } | { guess: string };

/** How the kubelet checks a container, and how the blackbox exporter probes its Service. */
export type Health =
  /** a real HTTP check: the path answers 2xx */
  | { http: string; source: Fact }
  /** only "the port accepts connections": every endpoint needs a sign-in, or none is known */
  | { tcp: true; source: Fact }
  | { exec: string[]; source: Fact };

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
  /** a database (kind StatefulSet): where its image keeps its data, on the StatefulSet's own volume */
  databaseDataPath?: string;
  /** talks to the Kubernetes API (starts MPIJobs): the only workload whose pods get a service account token */
  kubernetesApi?: boolean;
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
    imageProject: "gitlab.com/project-dare/d4p-registry",
  },
  "d4p-registry-db": {
    kind: "StatefulSet",
    monitoringService: "d4p-registry",
    serviceName: "dj-reg-db",
    port: 3306,
    portSource: { evidence: "dj-vercereg local_settings_template.py (HOST dj-reg-db, PORT 3306)" },
    health: { exec: ["mysqladmin", "ping", "-h", "127.0.0.1"], source: { evidence: "the official mysql image" } },
    databaseDataPath: "/var/lib/mysql",
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
    kubernetesApi: true,
    localState: { path: "/data", source: { guess: 'the release notes name a "local DB" of users; its path is not published' } },
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
    databaseDataPath: "/data/db",
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
    imageProject: "gitlab.com/project-dare/s-ProvFlow",
  },
  "sprov-cronjob": {
    kind: "CronJob",
    monitoringService: "sprov",
    serviceName: "sprov-cronjob",
    port: 27017,
    portSource: { evidence: "a job serves nothing: the value is unused" },
    health: { tcp: true, source: { guess: "a job: no probe" } },
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
