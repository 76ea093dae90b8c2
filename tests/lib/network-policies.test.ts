/**
 * The walls (issue 15, item 5): the production render's NetworkPolicies, judged with NetworkPolicy's own
 * semantics (tests/support/netpol.ts: both sides, unions, endPort): default deny in every namespace the
 * program creates but those documented as exempt, the flows each namespace needs (DNS, the API server,
 * webhooks from the API server, scraping, the ingress controller to its backends, the internet only where
 * needed), and Prometheus, Alertmanager and the Ceph dashboard out of reach of other pods.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { NAMESPACES } from "../../lib/namespaces";
import { wallPolicies } from "../../lib/network-policies";
import { allowed, Endpoint } from "../support/netpol";
import { render } from "../support/render";

jest.setTimeout(180_000);

const objects: any[] = [];
beforeAll(() => {
  const r = render("production");
  if (r.status !== 0) throw new Error(`render failed: ${r.stderr}`);
  const root = path.join(r.dir, "kubernetes");
  for (const ns of fs.readdirSync(root)) {
    for (const file of fs.readdirSync(path.join(root, ns))) {
      if (file.endsWith(".yaml")) objects.push(YAML.parse(fs.readFileSync(path.join(root, ns, file), "utf8")));
    }
  }
});
const policies = () => objects.filter((o) => o.kind === "NetworkPolicy");

/** A control plane's address, as the render gives pods the API server (exec-api's egress). */
function apiAddress(): string {
  const execApi = policies().find((p) => p.metadata.namespace === "dare" && p.metadata.name === "exec-api");
  const block = execApi.spec.egress
    .flatMap((r: any) => r.to ?? [])
    .find((peer: any) => peer.ipBlock && peer.ports === undefined && /\/32$/.test(peer.ipBlock.cidr));
  return block.ipBlock.cidr.replace("/32", "");
}

const pod = (ns: string, labels: Record<string, string>, port = 0): Endpoint => ({ ns, labels, port });
const ip = (address: string, port = 0): Endpoint => ({ ns: "", labels: undefined as any, ip: address, port });
const stranger = (port = 0) => pod("default", { app: "anything" }, port);
const prometheus = (port = 0) => pod("monitoring", { "app.kubernetes.io/name": "prometheus" }, port);
const alertmanager = (port = 0) => pod("monitoring", { "app.kubernetes.io/name": "alertmanager" }, port);
const grafana = (port = 0) => pod("monitoring", { "app.kubernetes.io/name": "grafana" }, port);
const traefik = (port = 0) =>
  pod("traefik", { "app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-traefik" }, port);
const kubeDns = (port = 53) => pod("kube-system", { "k8s-app": "kube-dns" }, port);
/** The API server calling a webhook: from a control plane's address, or (VXLAN) its tunnel address in the pod range. */
const apiServerCallers = () => [ip(apiAddress()), ip("10.244.7.0")];
const INTERNET = "93.184.216.34";

const can = (from: Endpoint, to: Endpoint) => allowed(policies(), from, to);

describe("default deny", () => {
  /** Node agents on the host network, where NetworkPolicy does not apply, and Ceph, whose clients are every node's kernel. */
  const EXEMPT = [NAMESPACES.tigeraOperator.name, NAMESPACES.cloudController.name, NAMESPACES.rookCeph.name];

  it("in every namespace the program creates, but the documented exemptions; monitoring denies ingress (Prometheus scrapes everything)", () => {
    const created = objects
      .filter((o) => o.kind === "Namespace")
      .map((o) => o.metadata.name)
      .sort();
    expect(created.length).toBeGreaterThan(8);
    const denies = (ns: string, type: string) =>
      policies().some(
        (p) =>
          p.metadata.namespace === ns &&
          Object.keys(p.spec.podSelector?.matchLabels ?? {}).length === 0 &&
          !p.spec.podSelector?.matchExpressions &&
          p.spec.policyTypes.includes(type) &&
          !(type === "Ingress" ? p.spec.ingress : p.spec.egress)?.length,
      );
    const table = created
      .filter((ns) => !EXEMPT.includes(ns))
      .map((ns) => [ns, denies(ns, "Ingress"), ns === "monitoring" || denies(ns, "Egress")]);
    expect(table).toEqual(table.map(([ns]) => [ns, true, true]));
  });

  it("lets every walled namespace's pods resolve names at kube-dns", () => {
    for (const [ns, labels] of [
      ["cert-manager", { "app.kubernetes.io/name": "cert-manager" }],
      ["mpi-operator", { app: "mpi-operator" }],
      ["cnpg-system", { "app.kubernetes.io/name": "cloudnative-pg" }],
      ["traefik", traefik().labels],
      ["keycloak", { "app.kubernetes.io/name": "keycloakx" }],
      ["dare-backups", { service: "dare-backups" }],
      ["harbor", { app: "harbor" }],
      ["dare", { app: "exec-api" }],
    ] as const) {
      expect([ns, can(pod(ns, labels as any), kubeDns())]).toEqual([ns, true]);
    }
    // ... and nothing else on port 53.
    expect(can(pod("cert-manager", { "app.kubernetes.io/name": "cert-manager" }), ip("10.10.0.5", 53))).toBe(false);
  });
});

describe("Prometheus, Alertmanager, Grafana and the Ceph dashboard", () => {
  it("Prometheus answers Grafana only (and the monitoring namespace), not other pods or the ingress controller", () => {
    expect(can(grafana(), prometheus(9090))).toBe(true);
    expect(can(stranger(), prometheus(9090))).toBe(false);
    expect(can(traefik(), prometheus(9090))).toBe(false);
    expect(can(pod("dare", { app: "exec-api" }), prometheus(9090))).toBe(false);
  });

  it("Alertmanager answers Prometheus (and Grafana), no other pod", () => {
    expect(can(prometheus(), alertmanager(9093))).toBe(true);
    expect(can(grafana(), alertmanager(9093))).toBe(true);
    expect(can(stranger(), alertmanager(9093))).toBe(false);
    expect(can(traefik(), alertmanager(9093))).toBe(false);
  });

  it("Grafana is reached through the ingress controller only", () => {
    expect(can(traefik(), grafana(3000))).toBe(true);
    expect(can(stranger(), grafana(3000))).toBe(false);
  });

  it("the Ceph dashboard answers nobody (kubectl port-forward enters the pod), the mgr's Ceph and metrics ports everybody", () => {
    const mgr = (port: number) => pod("rook-ceph", { app: "rook-ceph-mgr", ceph_daemon_type: "mgr" }, port);
    for (const port of [8443, 7000]) {
      expect(can(stranger(), mgr(port))).toBe(false);
      expect(can(traefik(), mgr(port))).toBe(false);
      expect(can(prometheus(), mgr(port))).toBe(false);
    }
    expect(can(prometheus(), mgr(9283))).toBe(true);
    expect(can(stranger(), mgr(6800))).toBe(true);
    expect(can(ip("10.10.0.5"), mgr(3300))).toBe(true);
    // Other Ceph daemons are untouched.
    expect(can(stranger(), pod("rook-ceph", { app: "rook-ceph-mon" }, 3300))).toBe(true);
  });
});

describe("the DARE namespace and the API", () => {
  it("exec-api reaches the API at the control planes (after Service translation) and at the kubernetes Service's address; other DARE pods do not", () => {
    const execApi = pod("dare", { app: "exec-api" });
    expect(can(execApi, ip(apiAddress(), 6443))).toBe(true);
    expect(can(execApi, ip("10.96.0.1", 443))).toBe(true);
    expect(can(pod("dare", { app: "dare-login" }), ip("10.96.0.1", 443))).toBe(false);
    expect(can(pod("dare", { app: "dare-login" }), ip(apiAddress(), 6443))).toBe(false);
  });
});

describe("operators and their webhooks", () => {
  const certManager = (name: string, port = 0) => pod("cert-manager", { "app.kubernetes.io/name": name }, port);

  it("cert-manager: the API server reaches the webhook; the controller reaches the API and ACME; metrics for monitoring only", () => {
    for (const caller of apiServerCallers()) expect(can(caller, certManager("webhook", 10250))).toBe(true);
    expect(can(certManager("cert-manager"), ip(apiAddress(), 6443))).toBe(true);
    expect(can(certManager("cainjector"), ip("10.96.0.1", 443))).toBe(true);
    expect(can(certManager("cert-manager"), ip(INTERNET, 443))).toBe(true);
    expect(can(certManager("cainjector"), ip(INTERNET, 443))).toBe(false);
    expect(can(certManager("webhook"), ip(INTERNET, 443))).toBe(false);
    expect(can(prometheus(), certManager("cert-manager", 9402))).toBe(true);
    expect(can(stranger(), certManager("cert-manager", 9402))).toBe(false);
    expect(can(stranger(), certManager("webhook", 6443))).toBe(false);
  });

  it("mpi-operator: the conversion webhook answers the API server; the operator talks to the API only", () => {
    const conversion = pod("mpi-operator", { "app.kubernetes.io/name": "mpijob-conversion" }, 8443);
    for (const caller of apiServerCallers()) expect(can(caller, conversion)).toBe(true);
    const operator = pod("mpi-operator", { app: "mpi-operator" });
    expect(can(operator, ip(apiAddress(), 6443))).toBe(true);
    expect(can(operator, ip(INTERNET, 443))).toBe(false);
    expect(can(pod("mpi-operator", { "app.kubernetes.io/name": "mpijob-conversion" }), ip(apiAddress(), 6443))).toBe(false);
    expect(can(prometheus(), pod("mpi-operator", { app: "mpi-operator" }, 8081))).toBe(true);
    expect(can(stranger(), pod("mpi-operator", { app: "mpi-operator" }, 8081))).toBe(false);
  });

  it("CloudNativePG: webhook from the API server, the operator to Keycloak's database instances' status port", () => {
    const operator = (port = 0) => pod("cnpg-system", { "app.kubernetes.io/name": "cloudnative-pg" }, port);
    for (const caller of apiServerCallers()) expect(can(caller, operator(9443))).toBe(true);
    expect(can(operator(), pod("keycloak", { "cnpg.io/cluster": "keycloak-db" }, 8000))).toBe(true);
    expect(can(operator(), ip(apiAddress(), 6443))).toBe(true);
    expect(can(operator(), ip(INTERNET, 443))).toBe(false);
  });
});

describe("the ingress controller, Keycloak, backups, Harbor", () => {
  it("Traefik: the world on its entry points, its backends in the cluster, not the internet", () => {
    expect(can(ip(INTERNET), traefik(8443))).toBe(true);
    expect(can(ip(INTERNET), traefik(8000))).toBe(true);
    expect(can(ip(INTERNET), traefik(9100))).toBe(false);
    expect(can(prometheus(), traefik(9100))).toBe(true);
    const keycloak = pod("keycloak", { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": "keycloak" }, 8080);
    expect(can(traefik(), keycloak)).toBe(true);
    expect(can(traefik(), ip(apiAddress(), 6443))).toBe(true);
    expect(can(traefik(), ip(INTERNET, 443))).toBe(false);
    expect(can(traefik(), ip("10.10.0.5", 22))).toBe(false);
  });

  it("cert-manager's HTTP-01 solver pods for the domain's Certificate (traefik namespace) answer Traefik", () => {
    const solver = pod("traefik", { "acme.cert-manager.io/http01-solver": "true" }, 8089);
    expect(objects.some((o) => o.kind === "Certificate" && o.metadata.namespace === "traefik")).toBe(true);
    expect(can(traefik(), solver)).toBe(true);
    expect(can(stranger(), solver)).toBe(false);
  });

  it("Keycloak: its database and its own pods, the API for the database's instance manager, no internet without identity providers", () => {
    const keycloak = pod("keycloak", { "app.kubernetes.io/name": "keycloakx" });
    const db = pod("keycloak", { "cnpg.io/cluster": "keycloak-db" });
    expect(can(keycloak, { ...db, port: 5432 })).toBe(true);
    expect(can(db, ip(apiAddress(), 6443))).toBe(true);
    expect(can(keycloak, ip(apiAddress(), 6443))).toBe(false);
    expect(can(keycloak, ip(INTERNET, 443))).toBe(false);
    // With identity providers: HTTPS to the internet, for Keycloak only.
    const withIdps = Object.entries(
      wallPolicies({ api: { cidrs: [], port: 6443, serviceAddress: "10.96.0.1" }, harbor: false, identityProviders: true })[
        NAMESPACES.keycloak.name
      ],
    )
      // (the API rule's addresses are an Output here: not needed for this question)
      .filter(([name]) => name !== "allow-api-database")
      .map(([name, spec]) => ({ metadata: { name, namespace: "keycloak" }, spec }));
    expect(allowed(withIdps, keycloak, ip(INTERNET, 443))).toBe(true);
    expect(allowed(withIdps, db, ip(INTERNET, 443))).toBe(false);
  });

  it("backups: the dump jobs reach the databases and nothing else", () => {
    const dump = pod("dare-backups", { app: "mysql-dump", service: "dare-backups" });
    expect(can(dump, pod("dare", { app: "d4p-registry-db" }, 3306))).toBe(true);
    expect(can(dump, pod("keycloak", { "cnpg.io/cluster": "keycloak-db" }, 5432))).toBe(true);
    expect(can(dump, pod("dare", { app: "exec-api" }, 80))).toBe(false);
    expect(can(dump, ip(INTERNET, 443))).toBe(false);
  });

  it("Harbor: its own components and HTTPS to public registries", () => {
    const core = pod("harbor", { app: "harbor", component: "core" });
    expect(can(core, pod("harbor", { app: "harbor", component: "database" }, 5432))).toBe(true);
    expect(can(core, ip(INTERNET, 443))).toBe(true);
    expect(can(core, ip(INTERNET, 22))).toBe(false);
    expect(can(core, ip("10.10.0.5", 443))).toBe(false);
  });
});

describe("the cloud's metadata service (it serves the VMs' user data, with their SSH host keys)", () => {
  const METADATA = "169.254.169.254";
  it("answers no pod of any namespace the program creates, open egress or not", () => {
    const pods = [
      prometheus(),
      grafana(),
      alertmanager(),
      traefik(),
      pod("rook-ceph", { app: "rook-ceph-osd" }),
      pod("rook-ceph", { app: "rook-ceph-mgr" }),
      pod("keycloak", { "app.kubernetes.io/name": "keycloakx" }),
      pod("harbor", { app: "harbor", component: "core" }),
      pod("cert-manager", { "app.kubernetes.io/name": "cert-manager" }),
      pod("cnpg-system", { "app.kubernetes.io/name": "cloudnative-pg" }),
      pod("mpi-operator", { "app.kubernetes.io/name": "mpi-operator" }),
      pod("dare-backups", { app: "dump" }),
      pod("dare", { app: "exec-api" }),
      pod("dare", { app: "d4p-registry" }),
    ];
    for (const from of pods)
      expect({ from: `${from.ns}/${JSON.stringify(from.labels)}`, reaches: can(from, ip(METADATA, 80)) }).toEqual({
        from: `${from.ns}/${JSON.stringify(from.labels)}`,
        reaches: false,
      });
  });

  it("while monitoring and Ceph keep their open egress: scraping pods and nodes, mail, Ceph's peers", () => {
    expect(can(prometheus(), stranger(8080))).toBe(true);
    expect(can(prometheus(), ip("10.10.0.5", 9100))).toBe(true);
    expect(can(alertmanager(), ip(INTERNET, 587))).toBe(true);
    expect(can(pod("rook-ceph", { app: "rook-ceph-osd" }), ip("10.10.0.7", 6800))).toBe(true);
  });
});
