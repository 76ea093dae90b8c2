/**
 * The validation library (tools/validate) must be able to FAIL as well as pass: each validator is
 * exercised with a valid and an invalid fixture.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import {
  chartVersions,
  crdVersions,
  validateBuiltinObjects,
  validateCustomResource,
  validateHelmValues,
  validateRenderDir,
} from "../tools/validate";

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "demo", labels: { "app.kubernetes.io/name": "web" } },
  spec: {
    replicas: 2,
    strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" }, annotations: { "example.com/x": "y" } },
      spec: {
        containers: [
          {
            name: "web",
            image: "nginx:1.27",
            ports: [{ name: "http", containerPort: 80 }],
            resources: { limits: { cpu: "500m", memory: "256Mi" } },
            readinessProbe: { httpGet: { path: "/", port: "http" } },
            env: [{ name: "PASSWORD", valueFrom: { secretKeyRef: { name: "web", key: "password" } } }],
          },
        ],
      },
    },
  },
};

const secret = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "web", namespace: "demo" },
  type: "Opaque",
  data: { password: "[secret]" },
};

const cephCluster = {
  apiVersion: "ceph.rook.io/v1",
  kind: "CephCluster",
  metadata: { name: "rook-ceph", namespace: "rook-ceph" },
  spec: {
    cephVersion: { image: "quay.io/ceph/ceph:v19.2.3" },
    dataDirHostPath: "/var/lib/rook",
    mon: { count: 3, allowMultiplePerNode: false },
    mgr: { count: 2, modules: [{ name: "rook", enabled: true }] },
    dashboard: { enabled: true, ssl: true },
    storage: { useAllNodes: true, useAllDevices: true },
    resources: { mgr: { limits: { memory: "1Gi" } } },
  },
};

const clusterIssuer = {
  apiVersion: "cert-manager.io/v1",
  kind: "ClusterIssuer",
  metadata: { name: "letsencrypt" },
  spec: {
    acme: {
      server: "https://acme-v02.api.letsencrypt.org/directory",
      email: "ops@example.org",
      privateKeySecretRef: { name: "letsencrypt-key" },
      solvers: [{ http01: { ingress: { ingressClassName: "traefik" } } }],
    },
  },
};

const prometheusRule = {
  apiVersion: "monitoring.coreos.com/v1",
  kind: "PrometheusRule",
  metadata: { name: "dare", namespace: "monitoring" },
  spec: {
    groups: [
      {
        name: "dare",
        rules: [{ alert: "Down", expr: "up == 0", for: "5m", labels: { severity: "warning" }, annotations: { summary: "down" } }],
      },
    ],
  },
};

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

describe("built-in objects (kubernetes-models, strict)", () => {
  let results: (string[] | null)[];
  beforeAll(async () => {
    const badDeployment = clone(deployment) as Record<string, any>;
    badDeployment.spec.replica = 3;
    const badType = clone(deployment) as Record<string, any>;
    badType.spec.template.spec.containers[0].ports[0].containerPort = "eighty";
    const badSecret = clone(secret) as Record<string, any>;
    badSecret.data.password = "not base64!";
    results = await validateBuiltinObjects([deployment, badDeployment, badType, secret, badSecret, cephCluster]);
  });

  it("accepts a valid Deployment", () => {
    expect(results[0]).toEqual([]);
  });
  it("rejects an unknown field and names its path", () => {
    expect(results[1]).toEqual([expect.stringContaining("spec.replica")]);
    expect(results[1]![0]).toMatch(/unknown field/);
  });
  it("rejects a wrong type", () => {
    expect(results[2]).toEqual([expect.stringContaining("spec.template.spec.containers[0].ports[0].containerPort")]);
  });
  it("accepts the [secret] placeholder but checks real Secret data", () => {
    expect(results[3]).toEqual([]);
    expect(results[4]).toEqual([expect.stringContaining("data.password")]);
  });
  it("returns null for a kind it does not know", () => {
    expect(results[5]).toBeNull();
  });
});

describe("custom resources (shared CRDs, strict)", () => {
  it("CephCluster: valid passes, unknown fields fail", () => {
    expect(validateCustomResource(cephCluster)).toEqual([]);
    const bad = clone(cephCluster) as Record<string, any>;
    bad.spec.mon.cnt = 3;
    bad.spec.dashbord = { enabled: true };
    const errors = validateCustomResource(bad);
    expect(errors).toEqual(
      expect.arrayContaining([expect.stringContaining("spec.mon.cnt"), expect.stringContaining("spec.dashbord")]),
    );
    expect(errors).toHaveLength(2);
  });

  it("CephCluster: type errors and x-kubernetes-preserve-unknown-fields", () => {
    const bad = clone(cephCluster) as Record<string, any>;
    bad.spec.mon.count = "three";
    expect(validateCustomResource(bad)).toEqual([expect.stringContaining("spec.mon.count")]);
    const open = clone(cephCluster) as Record<string, any>;
    open.spec.network = { anything: { goes: true } }; // preserve-unknown-fields in the CRD
    expect(validateCustomResource(open)).toEqual([]);
  });

  it("ClusterIssuer: valid passes, invalid fails", () => {
    expect(validateCustomResource(clusterIssuer)).toEqual([]);
    const bad = clone(clusterIssuer) as Record<string, any>;
    bad.spec.acme.solvers[0].http01.ingress.ingressClass = "traefik";
    delete bad.spec.acme.privateKeySecretRef;
    const errors = validateCustomResource(bad);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining("spec.acme.solvers[0].http01.ingress.ingressClass"),
        expect.stringContaining("spec.acme.privateKeySecretRef: required"),
      ]),
    );
  });

  it("PrometheusRule: valid passes, invalid fails", () => {
    expect(validateCustomResource(prometheusRule)).toEqual([]);
    const bad = clone(prometheusRule) as Record<string, any>;
    bad.spec.groups[0].rules[0].fro = "5m";
    expect(validateCustomResource(bad)).toEqual([expect.stringContaining("spec.groups[0].rules[0].fro")]);
  });

  it("returns null without a CRD, and errors on an unknown version", () => {
    expect(validateCustomResource({ apiVersion: "example.com/v1", kind: "Widget" })).toBeNull();
    expect(validateCustomResource({ apiVersion: "v1", kind: "Service" })).toBeNull();
    expect(validateCustomResource({ ...cephCluster, apiVersion: "ceph.rook.io/v2" })).toEqual([
      expect.stringContaining('no version "v2"'),
    ]);
  });

  it("crdVersions() reads the folder names", () => {
    expect(crdVersions()).toMatchObject({ rook: "v1.20.6", "cert-manager": "v1.21.1", "prometheus-operator": "v0.93.1" });
  });
});

describe("Helm values (shared chart defaults)", () => {
  it("accepts known keys, rejects a typo with its full path", () => {
    expect(validateHelmValues({ chart: "traefik", version: "41.3.0", values: { deployment: { replicas: 2 } } })).toEqual([]);
    const errors = validateHelmValues({ chart: "traefik", version: "41.3.0", values: { deployment: { replcas: 2 } } });
    expect(errors).toEqual([expect.stringContaining('"deployment.replcas"')]);
  });

  it("accepts keys below empty maps and commented-out keys", () => {
    const values = {
      deployment: { podAnnotations: { "example.com/anything": "x" } }, // podAnnotations: {}
      ports: { web: { hostPort: 8000 } }, // "# hostPort: 8000"
      metrics: { datadog: { address: "127.0.0.1:8125" } }, // "#  datadog:" block
    };
    expect(validateHelmValues({ chart: "traefik", version: "41.3.0", values })).toEqual([]);
  });

  it("validates values.schema.json on the merged values", () => {
    const errors = validateHelmValues({ chart: "traefik", version: "41.3.0", values: { ports: { web: { port: "eighty" } } } });
    expect(errors).toEqual([expect.stringContaining("ports.web.port")]);
  });

  it("checks subchart values against the subchart (kube-prometheus-stack -> grafana)", () => {
    const ok = validateHelmValues({
      chart: "kube-prometheus-stack",
      version: "88.5.3",
      values: { grafana: { adminPassword: "[secret]", persistence: { enabled: true } }, global: { imageRegistry: "r" } },
    });
    expect(ok).toEqual([]);
    const bad = validateHelmValues({ chart: "kube-prometheus-stack", version: "88.5.3", values: { grafana: { adminPasword: "x" } } });
    expect(bad).toEqual([expect.stringContaining('"grafana.adminPasword"')]);
  });

  it("rejects a chart version that is not in shared/charts", () => {
    expect(validateHelmValues({ chart: "traefik", version: "41.2.0", values: {} })).toEqual([
      expect.stringContaining("traefik version 41.2.0 is not in shared/charts"),
    ]);
    expect(validateHelmValues({ chart: "no-such-chart", version: "1.0.0", values: {} })).toHaveLength(1);
  });

  it("chartVersions() lists the shared charts", () => {
    expect(chartVersions()).toMatchObject({ traefik: ["41.3.0"], "rook-ceph": ["v1.20.6"] });
  });
});

describe("validateRenderDir", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "dare-validate-"));
    const write = (rel: string, obj: unknown): void => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), YAML.stringify(obj));
    };
    const badDeployment = clone(deployment) as Record<string, any>;
    badDeployment.metadata.name = "bad";
    badDeployment.spec.replica = 3;
    write("kubernetes/demo/Deployment-web.yaml", deployment);
    write("kubernetes/demo/Deployment-bad.yaml", badDeployment);
    write("kubernetes/demo/Secret-web.yaml", secret);
    write("kubernetes/rook-ceph/CephCluster-rook-ceph.yaml", cephCluster);
    write("kubernetes/_cluster/ClusterIssuer-letsencrypt.yaml", clusterIssuer);
    write("kubernetes/demo/Widget-w.yaml", { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
    write("helm/traefik.yaml", { chart: "traefik", version: "41.3.0", repository: "https://traefik.github.io/charts", namespace: "traefik", values: { deployment: { replcas: 2 } } });
    write("helm/cert-manager.yaml", { chart: "cert-manager", version: "v1.21.1", repository: "https://charts.jetstack.io", namespace: "cert-manager", values: { crds: { enabled: true } } });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reports exactly the bad files", async () => {
    const errors = await validateRenderDir(dir);
    expect(errors).toHaveLength(3);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^kubernetes\/demo\/Deployment-bad\.yaml: Deployment\/bad: spec\.replica: unknown field/),
        expect.stringMatching(/^kubernetes\/demo\/Widget-w\.yaml: Widget\/w: unknown kind/),
        expect.stringMatching(/^helm\/traefik\.yaml: .*"deployment\.replcas"/),
      ]),
    );
  });
});

describe("DARE_SHARED_DIR override", () => {
  const saved = process.env.DARE_SHARED_DIR;
  let shared: string;
  beforeAll(() => {
    shared = fs.mkdtempSync(path.join(os.tmpdir(), "dare-shared-"));
    fs.mkdirSync(path.join(shared, "crds", "widgets", "v9.9.9"), { recursive: true });
    fs.writeFileSync(
      path.join(shared, "crds", "widgets", "v9.9.9", "crd.yaml"),
      YAML.stringify({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          names: { kind: "Widget", plural: "widgets" },
          scope: "Namespaced",
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: {
                    spec: {
                      type: "object",
                      properties: {
                        size: { "x-kubernetes-int-or-string": true },
                        note: { type: "string", nullable: true },
                        extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                      },
                    },
                  },
                },
              },
            },
          ],
        },
      }),
    );
    fs.mkdirSync(path.join(shared, "charts", "mini", "1.0.0"), { recursive: true });
    fs.writeFileSync(path.join(shared, "charts", "mini", "1.0.0", "Chart.yaml"), "apiVersion: v2\nname: mini\nversion: 1.0.0\n");
    fs.writeFileSync(
      path.join(shared, "charts", "mini", "1.0.0", "values.yaml"),
      [
        "service:",
        "  type: ClusterIP",
        "  # loadBalancerIP: \"\"",
        "  config: |",
        "    # notAKey: inside a block scalar",
        "    text: here",
        "podAnnotations: {}",
        "# topLevel:",
        "#   nested: 1",
        "",
      ].join("\n"),
    );
    process.env.DARE_SHARED_DIR = shared;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DARE_SHARED_DIR;
    else process.env.DARE_SHARED_DIR = saved;
    fs.rmSync(shared, { recursive: true, force: true });
  });

  it("reads CRDs from the override", () => {
    expect(crdVersions()).toEqual({ widgets: "v9.9.9" });
    const w = { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } };
    expect(validateCustomResource({ ...w, spec: { size: "10%", note: null, extra: { a: 1 } } })).toEqual([]);
    expect(validateCustomResource({ ...w, spec: { size: 3, sise: 3 } })).toEqual([expect.stringContaining("spec.sise")]);
    expect(validateCustomResource({ ...w, spec: { size: true } })).toEqual([expect.stringContaining("spec.size")]);
  });

  it("reads charts from the override, with the commented-key rule", () => {
    const v = (values: unknown): string[] => validateHelmValues({ chart: "mini", version: "1.0.0", values });
    expect(v({ service: { loadBalancerIP: "10.0.0.1" }, topLevel: { nested: 2 }, podAnnotations: { a: "b" } })).toEqual([]);
    expect(v({ service: { notAKey: 1 } })).toEqual([expect.stringContaining('"service.notAKey"')]);
    expect(v({ nested: 1 })).toEqual([expect.stringContaining('"nested"')]);
  });
});
