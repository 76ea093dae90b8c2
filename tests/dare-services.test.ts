/**
 * The DARE services layer as the cluster would receive it: probes, resources, secrets, exposure,
 * RBAC and the NetworkPolicies' effective call graph, computed from the rendered policies.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../components/config";
import { DareServices } from "../components/dare-services";
import { installMocks, SECRET_SIG, SPECIAL_SIG_KEY } from "../tools/mocks";
import { renderFiles, writeFiles } from "../tools/render-writer";
import { validateRenderDir } from "../tools/validate";
import { Built, buildDareLayer, configFrom, monitoringStandIn } from "./dare-fixture";

jest.setTimeout(120_000);

const DARE_NS = "dare";
const DEPLOYMENTS = ["dare-login", "d4p-registry", "exec-api", "exec-registry", "playground", "workflow-registry", "semantic-data", "sprov", "sprov-view"];
const DATABASES = ["d4p-registry-db", "sprov-db"];

let built: Built;
beforeAll(async () => {
  built = await buildDareLayer(configFrom({}));
});

const objectsOf = (kind: string, ns?: string) => built.objects.filter((o) => o.kind === kind && (ns === undefined || o.metadata.namespace === ns));
const podTemplates = () => [
  ...objectsOf("Deployment", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "Deployment", tpl: d.spec.template })),
  ...objectsOf("StatefulSet", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "StatefulSet", tpl: d.spec.template })),
  ...objectsOf("CronJob", DARE_NS).map((d) => ({ name: d.metadata.name, kind: "CronJob", tpl: d.spec.jobTemplate.spec.template })),
];

describe("workloads", () => {
  it("runs every DARE service, each with a pinned image", () => {
    const names = podTemplates().map((p) => p.name).sort();
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
          expect({ name, field, cpu: c.resources?.[field]?.cpu, memory: c.resources?.[field]?.memory })
            .toEqual({ name, field, cpu: expect.any(String), memory: expect.any(String) });
        }
        if (kind !== "CronJob") {
          expect({ name, liveness: Boolean(c.livenessProbe), readiness: Boolean(c.readinessProbe) }).toEqual({ name, liveness: true, readiness: true });
        }
      }
    }
  });

  it("keeps the databases on Ceph block volumes and the users' files on the CephFS volume where exec-api expects them", () => {
    for (const sts of objectsOf("StatefulSet", DARE_NS)) {
      expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe("rook-ceph-block");
    }
    const pvc = objectsOf("PersistentVolumeClaim", DARE_NS).find((p) => p.spec.accessModes.includes("ReadWriteMany"));
    expect(pvc.spec.storageClassName).toBe("rook-cephfs");
    const execApi = objectsOf("Deployment", DARE_NS).find((d) => d.metadata.name === "exec-api");
    const volume = execApi.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
    const mount = execApi.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === volume.name);
    expect(mount.mountPath).toBe("/home/mpiuser/sfs");
  });

  it("labels what the Alertmanager routes match, and annotates what Prometheus scrapes", () => {
    const route = /^(dare-login|d4p-registry|dare-shared-volumes|keycloak|sprov|cwl)$/;
    const byName = new Map(podTemplates().map((p) => [p.name, p.tpl]));
    for (const name of ["dare-login", "d4p-registry", "d4p-registry-db", "sprov", "sprov-db", "sprov-view", "workflow-registry"]) {
      expect({ name, service: byName.get(name).metadata.labels.service }).toEqual({ name, service: expect.stringMatching(route) });
    }
    expect(objectsOf("PersistentVolumeClaim", DARE_NS).map((p) => p.metadata.labels.service)).toContain("dare-shared-volumes");
    for (const name of DEPLOYMENTS) {
      const a = byName.get(name).metadata.annotations;
      const port = Number(a["prometheus.io/port"]);
      expect({ name, scrape: a["prometheus.io/scrape"] }).toEqual({ name, scrape: "true" });
      expect(byName.get(name).spec.containers[0].ports.map((p: any) => p.containerPort)).toContain(port);
    }
  });
});

/** [key, plain value, sent as a secret] of a Secret's data map as the engine received it (a whole map may be wrapped). */
function secretEntries(map: any, inherited = false): Array<[string, string, boolean]> {
  if (!map) return [];
  if (map[SPECIAL_SIG_KEY] === SECRET_SIG) return secretEntries(map.value, true);
  return Object.entries<any>(map).map(([k, v]) => (v?.[SPECIAL_SIG_KEY] === SECRET_SIG ? [k, String(v.value), true] : [k, String(v), inherited]));
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
    expect(passwords.map((p) => p.name).sort()).toEqual(["dare-mongo-root", "dare-mongo-sprov", "dare-mysql-app", "dare-mysql-root"]);
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

  it("routes one path per service on dare:domain, with TLS from the domain certificate", () => {
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
    expect(paths.map((p: any) => p.backend.service.name).sort()).toEqual([...DEPLOYMENTS].sort());
    for (const p of paths) {
      const svc = services.get(p.backend.service.name);
      expect(svc.spec.ports.map((x: any) => x.port)).toContain(p.backend.service.port.number);
    }
    expect(paths.find((p: any) => p.backend.service.name === "sprov").path).toBe("/prov");
    // The strip-prefix middleware the Ingress names exists and leaves the viewer's context path alone.
    const [nsName, provider] = ing.metadata.annotations["traefik.ingress.kubernetes.io/router.middlewares"].split("@");
    expect(provider).toBe("kubernetescrd");
    const mw = objectsOf("Middleware", DARE_NS).find((m) => `${DARE_NS}-${m.metadata.name}` === nsName);
    expect(mw.spec.stripPrefix.prefixes).toContain("/prov");
    expect(mw.spec.stripPrefix.prefixes).not.toContain("/sprovflow-viewer");
  });
});

describe("exec-api's access to the Kubernetes API", () => {
  it("may create, watch and delete MPIJobs and pods in the DARE namespace and nothing beyond", () => {
    const execApi = objectsOf("Deployment", DARE_NS).find((d) => d.metadata.name === "exec-api");
    const sa = execApi.spec.template.spec.serviceAccountName;
    expect(sa).toBe("exec-api");
    const bindings = built.objects.filter((o) => (o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")
      && o.subjects.some((s: any) => s.kind === "ServiceAccount" && s.name === sa && s.namespace === DARE_NS));
    expect(bindings.map((b) => b.kind)).toEqual(["RoleBinding"]);
    expect(bindings[0].metadata.namespace).toBe(DARE_NS);
    expect(bindings[0].roleRef.kind).toBe("Role");
    const role = objectsOf("Role", DARE_NS).find((r) => r.metadata.name === bindings[0].roleRef.name);
    const can = (group: string, resource: string, verb: string) =>
      role.rules.some((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource) && (r.verbs.includes(verb) || r.verbs.includes("*")));
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

/** A pod as NetworkPolicies see it. */
interface Endpoint { ns: string; labels: Record<string, string>; ip?: string; port: number }

function matches(selector: any, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const ok = Object.entries<string>(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const exprs = (selector.matchExpressions ?? []).every((e: any) =>
    e.operator === "Exists" ? e.key in labels : e.operator === "In" ? e.values.includes(labels[e.key]) : e.operator === "NotIn" ? !e.values.includes(labels[e.key]) : !(e.key in labels));
  return ok && exprs;
}

function ipIn(ip: string | undefined, cidr: string): boolean {
  if (!ip) return false;
  const [base, bits] = cidr.split("/");
  const n = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const block = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / block) === Math.floor(n(base) / block);
}

function peerMatches(peer: any, policyNs: string, other: Endpoint): boolean {
  if (peer.ipBlock) return ipIn(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c: string) => ipIn(other.ip, c));
  if (other.ip && !other.labels) return false;
  const nsOk = peer.namespaceSelector ? matches(peer.namespaceSelector, { "kubernetes.io/metadata.name": other.ns }) : other.ns === policyNs;
  return nsOk && matches(peer.podSelector, other.labels);
}

function portMatches(ports: any[] | undefined, port: number): boolean {
  return !ports || ports.length === 0 || ports.some((p) => (p.port === undefined || p.port === port) && (p.protocol ?? "TCP") === "TCP");
}

/** Whether the policies in force let `from` open a TCP connection to `to` on `to.port`. */
function allowed(policies: any[], from: Endpoint, to: Endpoint): boolean {
  const side = (self: Endpoint, type: "Egress" | "Ingress", other: Endpoint) => {
    const selecting = policies.filter((p) => p.metadata.namespace === self.ns && matches(p.spec.podSelector, self.labels)
      && (p.spec.policyTypes ?? ["Ingress"]).includes(type));
    if (selecting.length === 0) return true;
    const rules = selecting.flatMap((p) => (type === "Egress" ? p.spec.egress : p.spec.ingress) ?? []);
    return rules.some((rule: any) => {
      const peers = type === "Egress" ? rule.to : rule.from;
      return (!peers || peers.some((peer: any) => peerMatches(peer, self.ns, other))) && portMatches(rule.ports, to.port);
    });
  };
  return side(from, "Egress", to) && side(to, "Ingress", from);
}

describe("NetworkPolicies", () => {
  it("allow exactly the calls the services make to each other", () => {
    const policies = built.objects.filter((o) => o.kind === "NetworkPolicy");
    const endpoints = new Map<string, Endpoint>();
    for (const { name, tpl } of podTemplates()) {
      const port = tpl.spec.containers[0].ports?.[0]?.containerPort ?? 80;
      endpoints.set(name, { ns: DARE_NS, labels: tpl.metadata.labels, port });
    }
    // Who the outside peers are, as the cluster would show them.
    endpoints.set("mpi-jobs", { ns: DARE_NS, labels: { "training.kubeflow.org/operator-name": "mpi-operator", "training.kubeflow.org/job-role": "worker" }, port: 2222 });
    endpoints.set("keycloak", { ns: "keycloak", labels: { "app.kubernetes.io/name": "keycloakx" }, port: 8080 });
    endpoints.set("ingress-controller", { ns: "traefik", labels: { "app.kubernetes.io/name": "traefik" }, port: 8443 });
    endpoints.set("monitoring", { ns: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" }, port: 9090 });
    endpoints.set("backups", { ns: "dare-backups", labels: { app: "mysql-dump" }, port: 1 });
    endpoints.set("kubernetes-api", { ns: "", labels: undefined as any, ip: "10.10.0.10", port: 6443 });

    const actual: string[] = [];
    for (const [a, from] of endpoints) {
      for (const [b, to] of endpoints) {
        if (a === b && a !== "mpi-jobs") continue;
        if (allowed(policies, from, to)) actual.push(`${a} -> ${b}`);
      }
    }
    // Only the DARE namespace is governed here: calls among outside peers are not this layer's business.
    const outside = new Set(["keycloak", "ingress-controller", "monitoring", "backups", "kubernetes-api"]);
    const dareActual = actual.filter((e) => { const [a, b] = e.split(" -> "); return !(outside.has(a) && outside.has(b)); });

    const apps = [...DEPLOYMENTS, "sprov-cronjob"];
    const expected = [
      "dare-login -> d4p-registry", "dare-login -> workflow-registry", "dare-login -> exec-api",
      "exec-api -> d4p-registry", "exec-api -> workflow-registry", "exec-api -> exec-registry", "exec-api -> kubernetes-api",
      "d4p-registry -> d4p-registry-db", "sprov -> sprov-db", "sprov-view -> sprov", "sprov-cronjob -> sprov-db",
      "mpi-jobs -> mpi-jobs",
      // Keycloak in its namespace, or at its public URL, which the ingress controller serves.
      ...apps.flatMap((w) => [`${w} -> keycloak`, `${w} -> ingress-controller`]),
      ...DEPLOYMENTS.map((w) => `ingress-controller -> ${w}`),
      ...DEPLOYMENTS.map((w) => `monitoring -> ${w}`),
      "backups -> d4p-registry-db", "backups -> sprov-db",
    ];
    expect(dareActual.sort()).toEqual(expected.sort());
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
  it("adds a PodDisruptionBudget exactly where a service has more than one replica", async () => {
    const scaled = await buildDareLayer(configFrom({ services: { "dare-login": { replicas: 2 }, "sprov-view": { replicas: 3 } } }));
    const pdbs = scaled.objects.filter((o) => o.kind === "PodDisruptionBudget");
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual(["dare-login", "sprov-view"]);
    const deployment = scaled.objects.find((o) => o.kind === "Deployment" && o.metadata.name === "dare-login");
    expect(matches(pdbs.find((p) => p.metadata.name === "dare-login").spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    expect(objectsOf("PodDisruptionBudget")).toHaveLength(0);
  });

  it("takes each image and its resources from config", async () => {
    const custom = await buildDareLayer(configFrom({
      images: { "exec-api": "harbor.dare.example.org/dare/exec-api:v3.7.1" },
      services: { "exec-api": { port: 8080, limits: { memory: "4Gi" } } },
    }));
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
        images: { "exec-api": "registry.gitlab.com/project-dare/dare-platform/exec-api:latest", "playground": "playground" },
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

  it("refuses a replicated database in the component itself", () => {
    const config = configFrom({});
    const services = { ...config.dare.services, "d4p-registry-db": { ...config.dare.services["d4p-registry-db"], replicas: 2 } };
    installMocks("test");
    expect(() => new DareServices("dare", {
      provider: new k8s.Provider("test", { kubeconfig: "{}" }),
      domain: "dare.example.org", images: config.dare.images, services, sharedFilesystemSize: "1Gi", jupyterhub: false,
      apiServerCidrs: [], monitoring: monitoringStandIn(),
      keycloak: { url: "u", realm: "r", clientId: "c", clientSecret: pulumi.secret("s"), adminUsername: "a", adminPassword: pulumi.secret("p") },
    })).toThrow(/single-instance database/);
  });
});

describe("JupyterHub (optional)", () => {
  // The z2jh chart is not among ../shared/charts: these are the keys this layer sets, each checked
  // by hand in jupyterhub/zero-to-jupyterhub-k8s tag 4.4.0, jupyterhub/values.yaml.
  const Z2JH_4_4_0_KEYS = ["hub.baseUrl", "proxy.secretToken", "proxy.service.type", "ingress.enabled", "ingress.annotations",
    "ingress.ingressClassName", "ingress.hosts", "ingress.pathType", "ingress.tls"];
  const leafKeys = (obj: any, prefix = ""): string[] => Object.entries(obj).flatMap(([k, v]) =>
    v && typeof v === "object" && !Array.isArray(v) && !(SPECIAL_SIG_KEY in (v as object)) && !["annotations"].includes(k)
      ? leafKeys(v, `${prefix}${k}.`) : [`${prefix}${k}`]);

  it("is off by default and, when on, sets only documented keys with a generated proxy token and no public Service", async () => {
    expect(built.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release")).toHaveLength(0);
    const on = await buildDareLayer(configFrom({ jupyterhub: true }));
    const [release] = on.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release");
    const inputs = release.inputs as any;
    expect([inputs.chart, inputs.version, inputs.repositoryOpts.repo]).toEqual(["jupyterhub", "4.4.0", "https://hub.jupyter.org/helm-chart/"]);
    for (const key of leafKeys(inputs.values)) expect(Z2JH_4_4_0_KEYS).toContain(key);
    expect(inputs.values.proxy.secretToken[SPECIAL_SIG_KEY]).toBe(SECRET_SIG);
    expect(inputs.values.proxy.service.type).toBe("ClusterIP");
    expect(inputs.namespace).toBe("jupyterhub");
  });
});

describe("validation", () => {
  it("passes the project's Kubernetes validation (OpenAPI and CRD schemas, strict fields)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-services-"));
    writeFiles(dir, await renderFiles(built.resources, {}, []));
    const errors = await validateRenderDir(dir);
    expect(errors).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
