/**
 * The DARE services layer as the cluster would receive it: probes, resources, secrets, exposure,
 * RBAC and the NetworkPolicies' effective call graph, computed from the rendered policies.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError } from "../../lib/config";
import { CONFIG_KEYS } from "../../lib/config-keys";
import { DARE_WORKLOADS, isGuess, WORKLOADS } from "../../components/dare-services/workloads";
import { SECRET_SIG, SPECIAL_SIG_KEY } from "../../tools/mocks";
import { renderFiles, writeFiles } from "../../tools/render-writer";
import { validateRenderDir } from "../../tools/validate";
import { Built, buildDareLayer, configFrom } from "../support/dare-fixture";
import { allowed, Endpoint, matches } from "../support/netpol";

jest.setTimeout(120_000);

const DARE_NS = "dare";
const DEPLOYMENTS = [
  "dare-login",
  "d4p-registry",
  "exec-api",
  "exec-registry",
  "playground",
  "workflow-registry",
  "semantic-data",
  "sprov",
  "sprov-view",
];
const DATABASES = ["d4p-registry-db", "sprov-db"];

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

const objectsOf = (kind: string, ns?: string) =>
  built.objects.filter((o) => o.kind === kind && (ns === undefined || o.metadata.namespace === ns));
const podTemplates = () => [
  ...objectsOf("Deployment", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "Deployment", tpl: d.spec.template })),
  ...objectsOf("StatefulSet", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "StatefulSet", tpl: d.spec.template })),
  ...objectsOf("CronJob", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "CronJob", tpl: d.spec.jobTemplate.spec.template })),
];

describe("workloads", () => {
  it("runs every DARE service, each with a pinned image", () => {
    const names = podTemplates()
      .map((p) => p.name)
      .sort();
    expect(names).toEqual([...DEPLOYMENTS, ...DATABASES, "sprov-cronjob"].sort());
    for (const { name, tpl } of podTemplates()) {
      for (const c of tpl.spec.containers) {
        expect({ name, image: c.image }).toEqual({ name, image: expect.stringMatching(/^[^\s:]+(:\d+)?[^\s:]*:[A-Za-z0-9_][\w.-]*$/) });
        expect(c.image).not.toMatch(/:latest$/);
      }
    }
  });

  it("gives every long-running container probes, and every container requests and limits", () => {
    for (const { name, kind, tpl } of podTemplates()) {
      for (const c of tpl.spec.containers) {
        for (const field of ["requests", "limits"]) {
          expect({ name, field, cpu: c.resources?.[field]?.cpu, memory: c.resources?.[field]?.memory }).toEqual({
            name,
            field,
            cpu: expect.any(String),
            memory: expect.any(String),
          });
        }
        if (kind !== "CronJob") {
          expect({ name, liveness: Boolean(c.livenessProbe), readiness: Boolean(c.readinessProbe) }).toEqual({
            name,
            liveness: true,
            readiness: true,
          });
        }
      }
    }
  });

  it("keeps the databases on Ceph block volumes and the users' files on the CephFS volume where exec-api expects them", () => {
    const dataMounts: Record<string, string> = {};
    for (const sts of objectsOf("StatefulSet", DARE_NS)) {
      expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe("rook-ceph-block");
      dataMounts[sts.metadata.name] = sts.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === "data")?.mountPath;
    }
    // Where the official mysql and mongo images keep their data (their Dockerfiles' VOLUME).
    expect(dataMounts).toEqual({ "d4p-registry-db": "/var/lib/mysql", "sprov-db": "/data/db" });
    const pvc = objectsOf("PersistentVolumeClaim", DARE_NS).find((p) => p.spec.accessModes.includes("ReadWriteMany"));
    expect(pvc.spec.storageClassName).toBe("rook-cephfs");
    const execApi = objectsOf("Deployment", DARE_NS).find((d) => d.metadata.name === "exec-api");
    const volume = execApi.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
    const mount = execApi.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === volume.name);
    expect(mount.mountPath).toBe("/home/mpiuser/sfs");
  });

  it("labels what the Alertmanager routes match, and scrapes no DARE pod for metrics it does not export", () => {
    const route = /^(dare-login|d4p-registry|dare-shared-volumes|keycloak|sprov|cwl)$/;
    const byName = new Map(podTemplates().map((p) => [p.name, p.tpl]));
    for (const name of ["dare-login", "d4p-registry", "d4p-registry-db", "sprov", "sprov-db", "sprov-view", "workflow-registry"]) {
      expect({ name, service: byName.get(name).metadata.labels.service }).toEqual({ name, service: expect.stringMatching(route) });
    }
    expect(objectsOf("PersistentVolumeClaim", DARE_NS).map((p) => p.metadata.labels.service)).toContain("dare-shared-volumes");
    // No DARE service is known to serve /metrics: availability is probed instead (availability-probes.ts).
    for (const [name, tpl] of byName) {
      expect({ name, annotations: Object.keys(tpl.metadata.annotations ?? {}).filter((a) => a.startsWith("prometheus.io/")) }).toEqual({
        name,
        annotations: [],
      });
    }
    expect(objectsOf("ServiceMonitor", DARE_NS)).toEqual([]);
  });
});

describe("the services as the evidence shows them", () => {
  const byName = () => new Map(podTemplates().map((p) => [p.name, p.tpl]));
  const envOf = (name: string) =>
    new Map<string, any>((byName().get(name).spec.containers[0].env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));

  it("gives d4p-registry its database in a mounted local_settings.py (it reads no environment), at the Service name dj-reg-db", () => {
    const tpl = byName().get("d4p-registry");
    expect([...envOf("d4p-registry").keys()].filter((k) => k.startsWith("MYSQL"))).toEqual([]);
    const mount = tpl.spec.containers[0].volumeMounts.find((m: any) => m.mountPath.endsWith("/local_settings.py"));
    expect(mount).toMatchObject({
      mountPath: "/registry/dj_vercereg/dj_vercereg/local_settings.py",
      subPath: "local_settings.py",
      readOnly: true,
    });
    const volume = tpl.spec.volumes.find((v: any) => v.name === mount.name);
    const settings = built.resources.find(
      (r) => r.type === "kubernetes:core/v1:Secret" && (r.inputs as any).metadata.name === volume.secret.secretName,
    )!;
    const [[, text, wrapped]] = secretEntries((settings.inputs as any).stringData);
    expect(wrapped).toBe(true);
    expect(text).toContain("'HOST': 'dj-reg-db'");
    expect(text).toContain("'NAME': 'dj_vercereg'");
    expect(text).toContain("DEBUG = False");
    expect(text).toMatch(/ALLOWED_HOSTS = \[.*'dare\.example\.org'.*'d4p-registry'/);
    // start-registry.sh greps the one USER and the one PASSWORD line for the registry's superuser.
    expect(text.split("\n").filter((l) => l.includes("USER"))).toHaveLength(1);
    expect(text.split("\n").filter((l) => l.includes("PASSWORD"))).toHaveLength(1);
    const dbSecret = built.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.name === "dare-d4p-registry-db")!;
    const appPassword = secretEntries((dbSecret.inputs as any).stringData).find(([k]) => k === "MYSQL_PASSWORD")![1];
    expect(text).toContain(`'PASSWORD': '${appPassword}'`);
    const services = objectsOf("Service", DARE_NS).map((x) => x.metadata.name);
    expect(services).toContain("dj-reg-db");
    expect(services).not.toContain("d4p-registry-db");
  });

  it("is a settings file Python reads as the registry needs it", () => {
    const settings = built.resources.find(
      (r) => r.type === "kubernetes:core/v1:Secret" && (r.inputs as any).metadata.name === "d4p-registry-settings",
    )!;
    const [[, text]] = secretEntries((settings.inputs as any).stringData);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "d4p-settings-"));
    fs.writeFileSync(path.join(dir, "local_settings.py"), text);
    const out = execFileSync(
      "python3",
      [
        "-c",
        "import json, local_settings as s; print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'db': s.DATABASES['default']}))",
      ],
      { cwd: dir },
    ).toString();
    fs.rmSync(dir, { recursive: true, force: true });
    const parsed = JSON.parse(out);
    expect(parsed.debug).toBe(false);
    expect(parsed.hosts).toEqual(expect.arrayContaining(["dare.example.org", "d4p-registry", "d4p-registry.dare.svc"]));
    expect(parsed.db).toMatchObject({
      ENGINE: "django.db.backends.mysql",
      NAME: "dj_vercereg",
      USER: "d4p",
      HOST: "dj-reg-db",
      PORT: "3306",
    });
  });

  it("gives s-ProvFlow a bare database host name (its index script breaks on credentials) and MongoDB 5.0, the newest its pymongo 3.4 speaks to", () => {
    const env = envOf("sprov");
    expect(env.get("SPROV_DB_HOST")).toBe("sprov-db");
    expect(env.get("SPROV_DB_PORT")).toBe("27017");
    expect(env.get("SPROV_DB")).toBe("sprov-db");
    expect(envOf("sprov-cronjob").get("SPROV_DB_HOST")).toBe("sprov-db");
    expect(byName().get("sprov-db").spec.containers[0].image).toMatch(/^mongo:5\.0\.\d+$/);
    // Without credentials in the client, the server runs without authentication (isolated by NetworkPolicies).
    expect([...envOf("sprov-db").keys()].filter((k) => k.startsWith("MONGO_INITDB"))).toEqual([]);
    // MPI pods find it through SPROV_SERVICE_HOST: the Service is called sprov.
    const sprov = objectsOf("Service", DARE_NS).find((x) => x.metadata.name === "sprov");
    expect(sprov.spec.ports[0].port).toBe(8082);
    expect(byName().get("sprov").spec.containers[0].readinessProbe.httpGet).toEqual({ path: "/", port: 8082 });
  });

  it("keeps exec-api's and workflow-registry's local DB on a volume, one pod at a time", () => {
    for (const name of ["exec-api", "workflow-registry"]) {
      const d = objectsOf("Deployment", DARE_NS).find((x) => x.metadata.name === name);
      const claim = `${name}-data`;
      const pvc = objectsOf("PersistentVolumeClaim", DARE_NS).find((p) => p.metadata.name === claim);
      expect(pvc.spec).toMatchObject({ accessModes: ["ReadWriteOnce"], storageClassName: "rook-ceph-block" });
      const volume = d.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === claim);
      expect(d.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === volume.name).mountPath).toBe("/data");
      expect(d.spec.strategy).toEqual({ type: "Recreate" });
    }
    const others = objectsOf("PersistentVolumeClaim", DARE_NS)
      .map((p) => p.metadata.name)
      .filter((n) => n.endsWith("-data"));
    expect(others.sort()).toEqual(["exec-api-data", "workflow-registry-data"]);
  });

  it("gives dare-login exactly the settings D5.4 names", () => {
    expect([...envOf("dare-login").keys()].sort()).toEqual([
      "ADMIN_PASSWORD",
      "ADMIN_USERNAME",
      "CLIENT_ID",
      "CLIENT_SECRET",
      "KEYCLOAK_DOMAIN",
    ]);
  });
});

/** [key, plain value, sent as a secret] of a Secret's data map as the engine received it (a whole map may be wrapped). */
function secretEntries(map: any, inherited = false): Array<[string, string, boolean]> {
  if (!map) return [];
  if (map[SPECIAL_SIG_KEY] === SECRET_SIG) return secretEntries(map.value, true);
  return Object.entries<any>(map).map(([k, v]) =>
    v?.[SPECIAL_SIG_KEY] === SECRET_SIG ? [k, String(v.value), true] : [k, String(v), inherited],
  );
}

describe("secrets", () => {
  it("sends every Secret value as a Pulumi secret, and no password in any manifest", () => {
    const secrets = built.resources.filter((r) => r.type === "kubernetes:core/v1:Secret");
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    const plain: string[] = [];
    for (const s of secrets) {
      const entries = [...secretEntries((s.inputs as any).stringData), ...secretEntries((s.inputs as any).data)];
      expect(entries.length).toBeGreaterThan(0);
      for (const [key, value, wrapped] of entries) {
        expect({ secret: s.name, key, wrapped }).toEqual({ secret: s.name, key, wrapped: true });
        plain.push(value);
      }
    }
    // The generated passwords are long and appear nowhere else in plain text.
    const elsewhere = JSON.stringify(built.objects.filter((o) => o.kind !== "Secret"));
    for (const value of plain) expect(elsewhere.includes(value)).toBe(false);
  });

  it("generates the database passwords (random, distinct, 32 characters)", () => {
    const passwords = built.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword" && r.name.startsWith("dare-"));
    expect(passwords.map((p) => p.name).sort()).toEqual(["dare-mysql-app", "dare-mysql-root"]);
    for (const p of passwords) expect((p.inputs as any).length).toBeGreaterThanOrEqual(32);
    const dbSecret = built.resources.find((r) => r.type === "kubernetes:core/v1:Secret" && r.name === "dare-d4p-registry-db")!;
    const values = secretEntries((dbSecret.inputs as any).stringData).map(([, v]) => v);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toMatch(/^[A-Za-z0-9]{32}$/);
  });
});

describe("exposure", () => {
  it("has no NodePort or LoadBalancer Service", () => {
    for (const svc of built.objects.filter((o) => o.kind === "Service")) {
      expect({ name: svc.metadata.name, type: svc.spec.type ?? "ClusterIP" }).toEqual({ name: svc.metadata.name, type: "ClusterIP" });
    }
  });

  it("routes each service's paths on dare:domain, stripping the prefix only of services that answer at their root", () => {
    const ingresses = objectsOf("Ingress", DARE_NS);
    expect(ingresses).toHaveLength(1);
    const [ing] = ingresses;
    // TLS with the domain's one certificate (Traefik's default): no certificate of the layer's own.
    expect(ing.metadata.annotations["cert-manager.io/cluster-issuer"]).toBeUndefined();
    expect(ing.spec.tls).toEqual([{ hosts: ["dare.example.org"] }]);
    const paths = ing.spec.rules[0].http.paths;
    expect(ing.spec.rules[0].host).toBe("dare.example.org");
    expect(new Set(paths.map((p: any) => p.path)).size).toBe(paths.length);
    const services = new Map(objectsOf("Service", DARE_NS).map((s) => [s.metadata.name, s]));
    expect([...new Set(paths.map((p: any) => p.backend.service.name))].sort()).toEqual([...DEPLOYMENTS].sort());
    for (const p of paths) {
      const svc = services.get(p.backend.service.name);
      expect(svc.spec.ports.map((x: any) => x.port)).toContain(p.backend.service.port.number);
    }
    const route = (path: string) => paths.find((p: any) => p.path === path)?.backend.service.name;
    expect([route("/prov"), route("/sprovflow-viewer"), route("/d4p-registry"), route("/playground"), route("/run-command")]).toEqual([
      "sprov",
      "sprov-view",
      "d4p-registry",
      "playground",
      "playground",
    ]);
    const [nsName, provider] = ing.metadata.annotations["traefik.ingress.kubernetes.io/router.middlewares"].split("@");
    expect(provider).toBe("kubernetescrd");
    const mw = objectsOf("Middleware", DARE_NS).find((m) => `${DARE_NS}-${m.metadata.name}` === nsName);
    // The API and the viewer answer at / in their containers; the playground's clients call /playground and /run-command.
    expect(mw.spec.stripPrefix.prefixes).toEqual(expect.arrayContaining(["/prov", "/sprovflow-viewer", "/d4p-registry"]));
    expect(mw.spec.stripPrefix.prefixes).not.toContain("/playground");
    expect(mw.spec.stripPrefix.prefixes).not.toContain("/run-command");
  });
});

describe("exec-api's access to the Kubernetes API", () => {
  it("may create, watch and delete MPIJobs and pods in the DARE namespace and nothing beyond", () => {
    const execApi = objectsOf("Deployment", DARE_NS).find((d) => d.metadata.name === "exec-api");
    const sa = execApi.spec.template.spec.serviceAccountName;
    expect(sa).toBe("exec-api");
    const bindings = built.objects.filter(
      (o) =>
        (o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") &&
        o.subjects.some((s: any) => s.kind === "ServiceAccount" && s.name === sa && s.namespace === DARE_NS),
    );
    expect(bindings.map((b) => b.kind)).toEqual(["RoleBinding"]);
    expect(bindings[0].metadata.namespace).toBe(DARE_NS);
    expect(bindings[0].roleRef.kind).toBe("Role");
    const role = objectsOf("Role", DARE_NS).find((r) => r.metadata.name === bindings[0].roleRef.name);
    const can = (group: string, resource: string, verb: string) =>
      role.rules.some(
        (r: any) => r.apiGroups.includes(group) && r.resources.includes(resource) && (r.verbs.includes(verb) || r.verbs.includes("*")),
      );
    for (const verb of ["create", "watch", "delete"]) {
      expect(can("kubeflow.org", "mpijobs", verb)).toBe(true);
      expect(can("", "pods", verb)).toBe(true);
    }
    expect(can("", "secrets", "get")).toBe(false);
    expect(role.rules.flatMap((r: any) => r.verbs)).not.toContain("*");
    // Nobody else in the namespace carries an API token.
    for (const { name, tpl } of podTemplates().filter((p) => p.name !== "exec-api")) {
      expect({ name, token: tpl.spec.automountServiceAccountToken }).toEqual({ name, token: false });
    }
  });
});

describe("NetworkPolicies", () => {
  /** Every peer as the cluster would show it, and the edges the policies let through. */
  function edgesOf(objects: any[]): string[] {
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    const endpoints = new Map<string, Endpoint>();
    const templates = [
      ...objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet").map((d) => [d.metadata.name, d.spec.template] as const),
      ...objects.filter((o) => o.kind === "CronJob").map((d) => [d.metadata.name, d.spec.jobTemplate.spec.template] as const),
    ].filter(([, tpl]) => tpl.metadata.labels["app.kubernetes.io/part-of"] === "dare");
    for (const [name, tpl] of templates) {
      endpoints.set(name, { ns: DARE_NS, labels: tpl.metadata.labels, port: tpl.spec.containers[0].ports?.[0]?.containerPort ?? 80 });
    }
    endpoints.set("mpi-jobs", {
      ns: DARE_NS,
      labels: { "training.kubeflow.org/operator-name": "mpi-operator", "training.kubeflow.org/job-role": "worker" },
      port: 2222,
    });
    endpoints.set("keycloak", { ns: "keycloak", labels: { "app.kubernetes.io/name": "keycloakx" }, port: 8080 });
    endpoints.set("ingress-controller", { ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, port: 8443 });
    endpoints.set("monitoring", { ns: "monitoring", labels: { "app.kubernetes.io/name": "blackbox-exporter" }, port: 9115 });
    endpoints.set("backups", { ns: "dare-backups", labels: { app: "mysql-dump" }, port: 1 });
    endpoints.set("kubernetes-api", { ns: "", labels: undefined as any, ip: "10.10.0.10", port: 6443 });
    // B2DROP (HTTPS), an FDSN data centre on another port, and what must stay out of reach: the cloud's metadata service.
    endpoints.set("internet-https", { ns: "", labels: undefined as any, ip: "198.51.100.7", port: 443 });
    endpoints.set("internet-8080", { ns: "", labels: undefined as any, ip: "203.0.113.9", port: 8080 });
    endpoints.set("metadata-service", { ns: "", labels: undefined as any, ip: "169.254.169.254", port: 80 });
    const actual: string[] = [];
    for (const [a, from] of endpoints) {
      for (const [b, to] of endpoints) {
        if (a === b && a !== "mpi-jobs") continue;
        if (allowed(policies, from, to)) actual.push(`${a} -> ${b}`);
      }
    }
    // Only the DARE namespace is governed here: calls among outside peers are not this layer's business.
    const outside = new Set([
      "keycloak",
      "ingress-controller",
      "monitoring",
      "backups",
      "kubernetes-api",
      "internet-https",
      "internet-8080",
      "metadata-service",
    ]);
    return actual.filter((e) => {
      const [a, b] = e.split(" -> ");
      return !(outside.has(a) && outside.has(b));
    });
  }

  const signInClients = ["d4p-registry", "exec-api", "exec-registry", "playground", "workflow-registry", "semantic-data"];
  const expected = [
    // dare-login signs users in at Keycloak (in its namespace or at its public URL, which the ingress controller serves)
    // and creates them in the registries and exec-api; since v3.2 the other services check sign-ins through it.
    "dare-login -> keycloak",
    "dare-login -> ingress-controller",
    "dare-login -> d4p-registry",
    "dare-login -> workflow-registry",
    "dare-login -> exec-api",
    ...signInClients.map((w) => `${w} -> dare-login`),
    "exec-api -> d4p-registry",
    "exec-api -> workflow-registry",
    "exec-api -> exec-registry",
    "exec-api -> kubernetes-api",
    "exec-api -> internet-https",
    "playground -> d4p-registry",
    "d4p-registry -> d4p-registry-db",
    "sprov -> sprov-db",
    "sprov-view -> sprov",
    "sprov-cronjob -> sprov-db",
    // Workflow pods: each other (SSH, MPI), provenance to sprov, their specification from exec-api.
    "mpi-jobs -> mpi-jobs",
    "mpi-jobs -> sprov",
    "mpi-jobs -> exec-api",
    ...DEPLOYMENTS.map((w) => `ingress-controller -> ${w}`),
    ...[...DEPLOYMENTS, ...DATABASES].map((w) => `monitoring -> ${w}`),
    "backups -> d4p-registry-db",
    "backups -> sprov-db",
  ];

  it("allow exactly the calls the evidence shows the services make", () => {
    expect(edgesOf(built.objects).sort()).toEqual(expected.sort());
  });

  it("let workflow pods reach the internet only when dare:workflowInternetAccess is on, never the metadata service", async () => {
    const open = await buildDareLayer(configFrom({ workflowInternetAccess: true }));
    const edges = edgesOf(open.objects);
    expect(edges.filter((e) => !expected.includes(e)).sort()).toEqual(["mpi-jobs -> internet-8080", "mpi-jobs -> internet-https"]);
    expect(edges).not.toContain("mpi-jobs -> metadata-service");
  });

  it("let every DARE pod resolve names, and nothing else in by default", () => {
    const policies = built.objects.filter((o) => o.kind === "NetworkPolicy");
    const dns = { ns: "kube-system", labels: { "k8s-app": "kube-dns" }, port: 53 };
    for (const { name, tpl } of podTemplates()) {
      expect({ name, dns: allowed(policies, { ns: DARE_NS, labels: tpl.metadata.labels, port: 0 }, dns) }).toEqual({ name, dns: true });
    }
    const stranger = { ns: DARE_NS, labels: { app: "debug-shell" }, port: 80 };
    const target = { ns: DARE_NS, labels: { app: "exec-api", service: "exec-api" }, port: 80 };
    expect(allowed(policies, stranger, target)).toBe(false);
  });
});

describe("configuration", () => {
  it("calls each default port a guess in the configuration reference exactly where the facts table has no source for it", () => {
    const [known, guessed] = CONFIG_KEYS.services.description.split("Ports that are guesses");
    for (const w of DARE_WORKLOADS.filter((x) => WORKLOADS[x].kind === "Deployment")) {
      const mention = `${w} ${WORKLOADS[w].port}`;
      const where = isGuess(WORKLOADS[w].portSource) ? guessed : known;
      expect({ w, listed: where.includes(mention) }).toEqual({ w, listed: true });
    }
  });

  it("adds a PodDisruptionBudget exactly where a service has more than one replica", async () => {
    const scaled = await buildDareLayer(configFrom({ services: { "dare-login": { replicas: 2 }, "sprov-view": { replicas: 3 } } }));
    const pdbs = scaled.objects.filter((o) => o.kind === "PodDisruptionBudget" && o.metadata.namespace === DARE_NS);
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual(["dare-login", "sprov-view"]);
    const deployment = scaled.objects.find((o) => o.kind === "Deployment" && o.metadata.name === "dare-login");
    expect(matches(pdbs.find((p) => p.metadata.name === "dare-login").spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    expect(objectsOf("PodDisruptionBudget", DARE_NS)).toHaveLength(0);
  });

  it("takes each image and its resources from config", async () => {
    const custom = await buildDareLayer(
      configFrom({
        images: { "exec-api": "harbor.dare.example.org/dare/exec-api:v3.7.1" },
        services: { "exec-api": { port: 8080, limits: { memory: "4Gi" } } },
      }),
    );
    const d = custom.objects.find((o) => o.kind === "Deployment" && o.metadata.name === "exec-api");
    expect(d.spec.template.spec.containers[0].image).toBe("harbor.dare.example.org/dare/exec-api:v3.7.1");
    expect(d.spec.template.spec.containers[0].resources.limits).toEqual({ cpu: "1", memory: "4Gi" });
    const svc = custom.objects.find((o) => o.kind === "Service" && o.metadata.name === "exec-api");
    expect(svc.spec.ports[0].targetPort).toBe(8080);
  });

  it("rejects unpinned images, unknown services and replicated databases in one message", () => {
    let error: unknown;
    try {
      configFrom({
        images: { "exec-api": "registry.gitlab.com/project-dare/dare-platform/exec-api:latest", playground: "playground" },
        services: { "exec-apl": { replicas: 2 }, "sprov-db": { replicas: 2 } },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const key of ["dare:images.exec-api", "dare:images.playground", "dare:services.exec-apl", "dare:services.sprov-db.replicas"]) {
      expect(message).toContain(key);
    }
  });
});

describe("JupyterHub (optional)", () => {
  // The z2jh chart is not among ../shared/charts: these are the keys this layer sets, each checked
  // by hand in jupyterhub/zero-to-jupyterhub-k8s tag 4.4.0, jupyterhub/values.yaml.
  const Z2JH_4_4_0_KEYS = [
    "hub.baseUrl",
    "proxy.secretToken",
    "proxy.service.type",
    "ingress.enabled",
    "ingress.annotations",
    "ingress.ingressClassName",
    "ingress.hosts",
    "ingress.pathType",
    "ingress.tls",
    "hub.networkPolicy.egressAllowRules.cloudMetadataServer",
    "proxy.chp.networkPolicy.egressAllowRules.cloudMetadataServer",
  ];
  const leafKeys = (obj: any, prefix = ""): string[] =>
    Object.entries(obj).flatMap(([k, v]) =>
      v && typeof v === "object" && !Array.isArray(v) && !(SPECIAL_SIG_KEY in (v as object)) && !["annotations"].includes(k)
        ? leafKeys(v, `${prefix}${k}.`)
        : [`${prefix}${k}`],
    );

  it("is off by default and, when on, sets only documented keys with a generated proxy token and no public Service", async () => {
    expect(built.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release")).toHaveLength(0);
    const on = await buildDareLayer(configFrom({ jupyterhub: true }));
    const [release] = on.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release");
    const inputs = release.inputs as any;
    expect([inputs.chart, inputs.version, inputs.repositoryOpts.repo]).toEqual([
      "jupyterhub",
      "4.4.0",
      "https://hub.jupyter.org/helm-chart/",
    ]);
    for (const key of leafKeys(inputs.values)) expect(Z2JH_4_4_0_KEYS).toContain(key);
    expect(inputs.values.proxy.secretToken[SPECIAL_SIG_KEY]).toBe(SECRET_SIG);
    expect(inputs.values.proxy.service.type).toBe("ClusterIP");
    expect(inputs.namespace).toBe("jupyterhub");
  });
});

describe("validation", () => {
  it("passes the project's render checks (the API server judges the objects in tests/engine/helm-template.test.ts)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-services-"));
    writeFiles(dir, await renderFiles(built.resources, {}, []));
    const errors = await validateRenderDir(dir);
    expect(errors).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
